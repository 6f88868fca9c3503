"""The app as `rvi-tui serve` runs it in a browser tab (Textual's web driver, faked here by `is_web`): the picker
offers only what the server offers, and `e` and `s` hand their files to the browser instead of writing them."""

from __future__ import annotations

import json

from rvi_tui.tui.app import RviApp
from textual.widgets import OptionList

from test_tui import SIZE, SMALL, ready, settle, step_ops, wait_for


def lesson(tmp_path):
    data = tmp_path / "lesson"
    data.mkdir()
    (data / "ls.txt").write_text("".join(f"R {0x10000 + 64 * i:#x}\n" for i in range(300)))
    return data


TOURS = ["tours/1-cold-2d-walk.rvi.json", "tours/2-shadow-sync-after-fork.rvi.json", "tours/3-large-page-walk.rvi.json"]


async def test_a_served_app_opens_only_offered_files_and_exports_and_saves_as_downloads(tmp_path, monkeypatch):
    data = lesson(tmp_path)
    monkeypatch.setattr(RviApp, "is_web", property(lambda self: True))
    delivered = []
    monkeypatch.setattr(RviApp, "deliver_text", lambda self, f, **kw: delivered.append((kw, f.read())))
    app = RviApp(**SMALL, export_dir=str(tmp_path / "exports"), data_dirs=(str(data),))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("w")
        await pilot.pause(0.1)
        assert not app.screen.query("#trace")  # no field to type a path into
        offered = app.screen.query_one("#offered", OptionList)
        assert [str(o.prompt) for o in offered.options] == TOURS + ["lesson/ls.txt"]
        offered.focus()
        offered.highlighted = 3
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.spec.trace == str(data / "ls.txt"), what="the offered trace")
        await ready(pilot, app)
        await step_ops(pilot, app, 2)
        await settle(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: len(delivered) == 2, what="two downloads")
        await pilot.press("t")  # the study's worker processes are not for a served tab
        await pilot.pause(0.1)
        assert app.screen is app.main_screen and any("not in a browser tab" in n.message for n in app._notifications)
        await pilot.press("s")
        await wait_for(pilot, lambda: len(delivered) == 3, what="the session file")
    (json_kw, json_text), (svg_kw, svg_text), (session_kw, session_text) = delivered
    assert json_kw["mime_type"] == "application/json" and json_kw["save_filename"].endswith(".json")
    document = json.loads(json_text)
    assert document["ops_done"] == 2 and document["run"]["trace"] == str(data / "ls.txt")
    assert svg_kw["mime_type"] == "image/svg+xml" and svg_text.lstrip().startswith("<svg")
    assert session_kw["save_filename"].endswith(".rvi.json")
    assert json.loads(session_text)["view"]["op"] == 2
    assert not (tmp_path / "exports").exists()  # nothing written on the server


async def test_the_picker_reopens_an_offered_session_at_its_op_and_mode(tmp_path):
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("w")
        await pilot.pause(0.1)
        offered = app.screen.query_one("#offered", OptionList)
        offered.focus()
        offered.highlighted = 1  # the guided tour's shadow sync after fork: op 2359, shadow view
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.runner.session is not None and app.runner.session.ops_done == 2359
                       and app.view_mode == "shadow", what="the session's op and mode")


async def test_in_a_terminal_the_picker_offers_the_data_directories_beside_a_typed_path(tmp_path):
    app = RviApp(**SMALL, data_dirs=(str(lesson(tmp_path)),))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("w")
        await pilot.pause(0.1)
        assert app.screen.query_one("#trace")
        assert [str(o.prompt) for o in app.screen.query_one("#offered", OptionList).options] == TOURS + ["lesson/ls.txt"]


def test_a_served_apps_packets_stay_whole_when_two_threads_write_at_once():
    """Textual's web driver writes the screen from one thread and download chunks from another; with the lock
    each packet arrives whole (without it, the same writes came out interleaved in every run tried)."""
    import os
    import threading
    from types import SimpleNamespace

    from rvi_tui.tui.web_driver import write_whole_packets

    read_end, write_end = os.pipe()
    driver = SimpleNamespace(fileno=write_end, _write=None)
    write_whole_packets(driver)

    def writer(tag: bytes, count: int, size: int) -> None:
        for _ in range(count):
            driver._write(b"P" + size.to_bytes(4, "big") + tag * size)

    received = bytearray()
    reader = threading.Thread(target=lambda: [received.extend(c) for c in iter(lambda: os.read(read_end, 1 << 16), b"")])
    writers = [threading.Thread(target=writer, args=(b"a", 60, 70_000)),
               threading.Thread(target=writer, args=(b"b", 600, 5_000))]
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    os.close(write_end)
    reader.join()
    os.close(read_end)
    packets, at = [], 0
    while at < len(received):
        size = int.from_bytes(received[at + 1:at + 5], "big")
        payload = bytes(received[at + 5:at + 5 + size])
        assert received[at:at + 1] == b"P" and len(payload) == size and len(set(payload)) == 1, f"damaged at {at}"
        packets.append(payload[:1])
        at += 5 + size
    assert packets.count(b"a") == 60 and packets.count(b"b") == 600
