"""Responsiveness while the engine runs flat out: printed, not asserted (it depends on the machine).

    pytest tests/test_tui_bench.py -s        # or: python -m rvi_tui.tui.bench

Only the design cap is asserted: the UI never redraws faster than 20 Hz.
"""

from __future__ import annotations

from rvi_tui.tui.bench import measure, report


async def test_key_latency_and_refresh_rate_while_running(capsys):
    result = await measure(seconds=3.0, keys=12, params={"jobs": 2000})  # runs for a minute: the keys find it running
    with capsys.disabled():
        print("\n" + report(result))
    assert result["keys"] == 12 and result["engine_state_during_keys"] == "running"
    assert result["refresh_hz"] <= 20.5
    assert result["latency_ms_max"] != float("inf")  # every key changed the panes
