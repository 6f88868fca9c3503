"""Where each config value comes from: the preset's own comment that cites it, or the command line.

Every preset key is documented in its TOML file: by a comment on its line
(with a continuation on the lines below it, indented), else by the comment
block above its table or the key itself. ``preset_sources`` reads those
comments back, so `rvi-tui report --show-config` and the app's help show,
next to each value, the source and the tag the preset gives it ([V]erified,
[S]econdary, [U]nverified, [D]erived).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_TABLE = re.compile(r"^\[([^\]]+)\]\s*(?:#\s*(.*))?$")
_KEY = re.compile(r"^([A-Za-z0-9_]+)\s*=\s*(?:\"[^\"]*\"|[^#]*?)\s*(?:#\s*(.*))?$")
_TAG = re.compile(r"\[([VSUD])\b[^\]]*\]")
TAGS = {"V": "verified", "S": "secondary", "U": "unverified", "D": "derived"}


def preset_sources(preset: str) -> dict[str, str]:
    """Each key of the preset (dotted, as the config names it) -> the comment that documents it."""
    text = resources.files(__package__).joinpath("presets", f"{preset}.toml").read_text()
    sources: dict[str, str] = {}
    table = ""
    table_note = ""
    block: list[str] = []  # the comment lines just above what comes next
    last_key = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if raw[:1].isspace() and last_key is not None:  # an indented comment continues the key's own
                sources[last_key] += " " + line.lstrip("# ")
            else:
                block.append(line.lstrip("# "))
                last_key = None
            continue
        if not line:
            last_key = None
            continue
        if m := _TABLE.match(line):
            note = " ".join(block + [m.group(2) or ""]).strip()
            if note or table.split(".")[0] != m.group(1).split(".")[0]:
                table_note = note  # [tlb.l2] without a comment of its own shares the one above [tlb.l1_4k]
            table = m.group(1) + "."
            block = []
            last_key = None
            continue
        if m := _KEY.match(line):
            key = table + m.group(1)
            own = (m.group(2) or "").strip()
            sources[key] = own or " ".join(block).strip() or table_note
            block = []
            last_key = key
    return sources


def tag_of(source: str) -> str:
    """'V', 'S', 'U' or 'D': the first tag the source carries ('' for none)."""
    m = _TAG.search(source)
    return m.group(1) if m else ""


def set_by(sets, options: Mapping[str, str]) -> dict[str, str]:
    """Each key set on the command line -> the option that set it: '--set' for each ``key=value`` of
    ``sets``, then ``options`` (key -> option), which win."""
    out = {item.partition("=")[0].strip(): "--set" for item in sets}
    out.update(options)
    return out


def config_sources(config, overridden: Mapping[str, str]) -> dict[str, str]:
    """Each key of ``config`` -> where its value comes from: ``overridden[key]`` (the option that set it,
    e.g. '--set') if given, else the preset's comment."""
    preset = preset_sources(config.preset)
    return {key: f"set by {overridden[key]}" if key in overridden else preset.get(key, "") for key in config}
