"""Every cost default cites a source, tagged as shared/notes/translation-facts.md tags facts, and the
figures a study leans on are not unverified recollections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rvi_tui.engine as engine_pkg

PRESETS = sorted((Path(engine_pkg.__file__).parent / "presets").glob("*.toml"))
TAG = re.compile(r"\[(V|S|U|D)\b")


def cost_keys_with_sources(path: Path) -> dict[str, str]:
    """key -> its source text: the comment on its line and the comment block just above it."""
    out, section, block, key = {}, None, [], None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section, block, key = stripped, [], None
        elif stripped.startswith("#") and line.startswith(" ") and key:  # a comment continued under its key
            out[key] += " " + stripped
        elif stripped.startswith("#"):
            block.append(stripped)
            key = None
        elif "=" in stripped and section == "[cost]":
            key = stripped.split("=")[0].strip()
            out[key] = " ".join(block) + " " + stripped.partition("#")[2]
            block = []
        elif not stripped:
            block, key = [], None
    return out


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_cost_default_carries_a_source_tag(path):
    sources = cost_keys_with_sources(path)
    assert len(sources) > 10
    untagged = [k for k, text in sources.items() if not TAG.search(text)]
    assert untagged == []


def test_modern_dram_latency_and_page_clearing_are_sourced():
    sources = cost_keys_with_sources(next(p for p in PRESETS if p.stem == "modern"))
    for key in ("ref_dram", "clear_4k", "guest_pf"):
        assert "[U" not in sources[key] and TAG.search(sources[key]), key
