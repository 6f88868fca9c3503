"""Configuration: TOML presets shipped in the package, overridden by ``key=value`` pairs.

A config is a flat mapping of dotted keys (``tlb.l2.entries``) to typed
values. Presets carry every key, so an override can only change a key that
exists, with a value of the same type; anything else is a one-line
``ConfigError`` naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources

from .errors import ConfigError

DEFAULT_PRESET = "modern"


def preset_names() -> list[str]:
    files = resources.files(__package__).joinpath("presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def flatten(table: Mapping, prefix: str = "") -> dict:
    """Nested tables -> dotted keys (a preset's TOML, a summary's figures)."""
    flat = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _parse_value(key: str, text: str, like):
    text = text.strip()
    if isinstance(like, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "on", "yes"):
            return True
        if lowered in ("false", "0", "off", "no"):
            return False
        raise ConfigError(f"config {key}: expected true or false, got {text!r}")
    if isinstance(like, int):
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            raise ConfigError(f"config {key}: expected an integer, got {text!r}") from None
    if isinstance(like, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"config {key}: expected a number, got {text!r}") from None
    return text


class Config(Mapping):
    """An immutable, validated flat config."""

    def __init__(self, values: Mapping, preset: str):
        self._values = dict(values)
        self.preset = preset
        validate(self._values)

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise ConfigError(f"unknown config key '{key}'") from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def with_overrides(self, overrides: Mapping) -> Config:
        """A new config with typed values replaced (keys must exist)."""
        values = dict(self._values)
        for key, value in overrides.items():
            if key not in values:
                raise ConfigError(f"unknown config key '{key}' (see `rvi-tui report --show-config`)")
            like = values[key]
            if isinstance(value, str) and not isinstance(like, str):
                value = _parse_value(key, value, like)
            elif isinstance(like, bool) != isinstance(value, bool) or type(like) is not type(value) and not (
                isinstance(like, float) and isinstance(value, int)
            ):
                raise ConfigError(f"config {key}: expected {type(like).__name__}, got {value!r}")
            values[key] = value
        return Config(values, self.preset)


def key_value_pairs(items, option: str, form: str = "key=value") -> dict[str, str]:
    """Options of the form KEY=VALUE (--set, --param, --compare) as a dict: keys stripped, values as given."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} expects {form}, got {item!r}")
        pairs[key.strip()] = value
    return pairs


def load(preset: str = DEFAULT_PRESET, sets: Iterable[str] = (), overrides: Mapping | None = None) -> Config:
    """Load a preset, then apply ``key=value`` strings and an overrides mapping."""
    if preset not in preset_names():
        raise ConfigError(f"unknown preset '{preset}' (known: {', '.join(preset_names())})")
    text = resources.files(__package__).joinpath("presets", f"{preset}.toml").read_text()
    config = Config(flatten(tomllib.loads(text)), preset)
    pairs = key_value_pairs(sets, "--set")
    if pairs:
        config = config.with_overrides(pairs)
    if overrides:
        config = config.with_overrides(overrides)
    return config


def _check(cond: bool, key: str, message: str, values: Mapping) -> None:
    if not cond:
        raise ConfigError(f"config {key} = {values.get(key)!r}: {message}")


# Bounds on numbers, so that no value can overflow a counter or ask for memory no host has.
MAX_ENTRIES = 1 << 20  # TLB and walk-cache entries per structure (a current L2 TLB has 3,072)
MAX_CACHE_KIB = 1 << 18  # 256 MiB per data-cache level (a current L3 has 32-96 MiB)
MAX_COST = 1_000_000  # cycles per event: a VM exit is ~1,400; 10^6 x 10^11 accesses x 24 refs stays in int64
MAX_FLOOD_THRESHOLD = 1_000_000
MIN_SHADOW_PAGES = 64  # KVM_MIN_ALLOC_MMU_PAGES: KVM never caps the shadow-page cache below it (notes §4.4)
MAX_SHADOW_PAGES = 1 << 32


def _check_geometry(values: Mapping, entries_key: str, ways_key: str) -> None:
    entries, ways = values[entries_key], values[ways_key]
    _check(isinstance(entries, int) and 0 <= entries <= MAX_ENTRIES, entries_key,
           f"must be an integer from 0 to {MAX_ENTRIES:,}", values)
    if entries:
        _check(isinstance(ways, int) and 1 <= ways <= entries, ways_key, f"must be between 1 and {entries_key} ({entries})", values)
        _check(entries % ways == 0, entries_key, f"must be a multiple of {ways_key} ({ways})", values)


def validate(values: Mapping) -> None:
    for key in ("guest.levels", "host.levels"):
        _check(values[key] in (4, 5), key, "must be 4 or 5", values)
    _check(values["guest.page"] in ("4k", "2m", "1g"), "guest.page", "must be 4k, 2m or 1g", values)
    _check(values["host.page"] in ("4k", "2m", "1g"), "host.page", "must be 4k, 2m or 1g", values)
    for key in ("cost.guest_pf", "cost.host_page_alloc"):  # each measurement includes one 4 KiB clear
        _check(values[key] >= values["cost.clear_4k"], key, f"must be at least cost.clear_4k ({values['cost.clear_4k']})", values)
    mem = values["guest.mem_gib"]
    _check(isinstance(mem, int) and 1 <= mem <= 1 << 16 and mem & (mem - 1) == 0, "guest.mem_gib", "must be a power of two from 1 to 65536", values)
    for name in ("l1_4k", "l1_2m", "l1_1g", "l2"):
        _check_geometry(values, f"tlb.{name}.entries", f"tlb.{name}.ways")
    for cache in ("pwc", "nwc"):
        for level in range(2, 6):
            _check_geometry(values, f"{cache}.l{level}_entries", f"{cache}.l{level}_ways")
    _check_geometry(values, "ntlb.entries", "ntlb.ways")
    for level in ("l1d", "l2", "l3"):
        kib, ways = values[f"cache.{level}_kib"], values[f"cache.{level}_ways"]
        _check(isinstance(kib, int) and 1 <= kib <= MAX_CACHE_KIB, f"cache.{level}_kib",
               f"must be an integer from 1 to {MAX_CACHE_KIB:,}", values)
        lines = kib * 1024 // 64
        _check(isinstance(ways, int) and 1 <= ways <= lines and lines % ways == 0, f"cache.{level}_ways", f"must divide the {lines} lines", values)
    for key, value in values.items():
        if key.startswith("cost."):
            _check(isinstance(value, int) and 0 <= value <= MAX_COST, key,
                   f"must be a whole number of cycles from 0 to {MAX_COST:,}", values)
    _check(1 <= values["shadow.flood_threshold"] <= MAX_FLOOD_THRESHOLD, "shadow.flood_threshold",
           f"must be from 1 to {MAX_FLOOD_THRESHOLD:,}", values)
    max_pages = values["shadow.max_pages"]
    _check(max_pages == 0 or MIN_SHADOW_PAGES <= max_pages <= MAX_SHADOW_PAGES, "shadow.max_pages",
           f"must be 0 (KVM's default cap: 2% of guest memory) or from {MIN_SHADOW_PAGES} (KVM_MIN_ALLOC_MMU_PAGES, "
           f"the least KVM allows) to {MAX_SHADOW_PAGES:,}", values)
    prefetch = values["shadow.prefetch"]
    _check(isinstance(prefetch, int) and 1 <= prefetch <= 512 and prefetch & (prefetch - 1) == 0,
           "shadow.prefetch", "must be a power of two from 1 to 512", values)
