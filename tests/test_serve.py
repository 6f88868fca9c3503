"""`rvi-tui serve` without a browser: what a tab may open, refusals, the options each tab's app gets, limits seen
over HTTP and a WebSocket (the browser tests are in test_serve_browser.py)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys

import pytest

pytest.importorskip("textual_serve")

import aiohttp  # noqa: E402  (textual-serve's own dependency)
from rvi_tui.tui import serve  # noqa: E402
from rvi_tui.tui.cli import app_argv, build_parser, main  # noqa: E402
from rvi_tui.tui.offered import offered_files  # noqa: E402

from serve_helpers import Served, alive, wait_until  # noqa: E402


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A --data directory: two traces, a session file, and things that must not be offered."""
    tmp_path = tmp_path_factory.mktemp("data")
    d = tmp_path / "lesson"
    (d / "week2").mkdir(parents=True)
    (d / "ls.txt").write_text("".join(f"R {0x10000 + 64 * i:#x}\n" for i in range(300)))
    (d / "week2" / "stride.lackey").write_text(" L 0001000,8\n S 0002000,8\n")
    from rvi_tui.tui.sessionfile import tour_paths

    shutil.copy(tour_paths()[0], d / "tour.rvi.json")
    (d / "notes.md").write_text("not a trace")
    (d / ".hidden.txt").write_text("R 0x1000\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("R 0x1000\n")
    (d / "escape.txt").symlink_to(secret)  # a link out of the directory
    os.mkfifo(d / "pipe.txt")  # reading it would hang
    return d


def test_offered_files_are_the_regular_traces_and_sessions_inside_the_directories(data, tmp_path):
    other = tmp_path / "x" / "lesson"  # same base name: a distinct label
    other.mkdir(parents=True)
    (other / "a.npy").write_bytes(b"")
    (tmp_path / "tours").mkdir()  # a directory named like the guided tour's label gets another one
    found = offered_files([str(data), str(other), str(tmp_path / "tours")])
    assert {k: f.kind for k, f in found.items() if not k.startswith("tours/")} == {
        "lesson/ls.txt": "trace", "lesson/tour.rvi.json": "session", "lesson/week2/stride.lackey": "trace",
        "lesson-2/a.npy": "trace"}
    assert found["lesson/ls.txt"].path == str(data / "ls.txt")
    tours = {k: f.kind for k, f in found.items() if k.startswith("tours/")}
    assert tours == {"tours/1-cold-2d-walk.rvi.json": "session", "tours/2-shadow-sync-after-fork.rvi.json": "session",
                     "tours/3-large-page-walk.rvi.json": "session"}


def test_app_argv_gives_each_tab_every_option_of_the_serve_command():
    argv = ["serve", "--mode", "shadow", "--no-mouse", "--data", "/d1", "--data", "/d2", "--preset", "barcelona-2008",
            "--set", "tlb.l2.entries=1536", "--set", "pwc.enabled=false", "--guest-page", "2m", "--host-page", "2m",
            "--levels", "5", "--session", "/s.rvi.json", "--workload", "tlbstress", "--format", "text", "--ifetch", "--skip-bad-lines",
            "--slice", "5k", "--footprint", "64m", "--accesses", "200k", "--seed", "7", "--param", "a=1",
            "--max-sessions", "3", "--host", "127.0.0.2"]
    args = build_parser().parse_args(argv)
    given = app_argv(args, source=False) + app_argv(args, source=True)
    app = build_parser().parse_args(given)
    options = [a for a in build_parser()._actions if a.option_strings and a.dest not in ("help", "list_workloads", "export_dir")]
    for action in options:
        assert getattr(app, action.dest) == getattr(args, action.dest), action.dest
    # every app option was given a value other than its default above, so each one is known to reach the tab
    untested = {a.dest for a in options if getattr(args, a.dest) == a.default}
    assert untested == {"trace"}, untested  # --trace excludes --workload
    assert "--max-sessions" not in given and "--host" not in given
    assert "--workload" not in app_argv(args, source=False) and "--seed" not in app_argv(args, source=True)


def test_serve_without_the_web_extra_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "textual_serve"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "rvi_tui.tui.serve")
    monkeypatch.delattr("rvi_tui.tui.serve", raising=False)
    code, out, err = run("serve")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "pip install 'rvi-tui[web]'" in err


@pytest.mark.parametrize("argv, message", [
    (("--data", "/no/such/dir"), "--data /no/such/dir: not a directory"),
    (("--max-sessions", "0"), "--max-sessions 0: must be at least 1"),
    (("--idle-timeout", "-1"), "--idle-timeout -1: must be 0"),
    (("--workload", "nope"), "unknown workload 'nope'"),
    (("--set", "tlb.nope=1"), "tlb.nope"),
])
def test_serve_mistakes_are_one_line_and_exit_2(argv, message):
    code, out, err = run("serve", *argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_default_max_sessions_follows_the_memory_available(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25165824 kB\nMemAvailable:   16777216 kB\n")  # 16 GiB available
    assert serve.default_max_sessions(str(meminfo)) == int(16 * 1024 * serve.MEMORY_SHARE) // serve.APP_RSS_MB
    meminfo.write_text("MemAvailable:   102400 kB\n")
    assert serve.default_max_sessions(str(meminfo)) == 1


def test_a_non_loopback_address_is_announced_as_open_to_anyone_who_reaches_the_port():
    def startup(host):
        out = io.StringIO()
        server = serve.RviServer(serve.ServeOptions(host=host, port=8123, max_sessions=2, idle_timeout_s=60,
                                                    app_options=(), default_source=()), out)
        asyncio.run(server.on_startup(None))
        os.rmdir(server.workdir)
        return out.getvalue()

    assert "warning" not in startup("127.0.0.1") and "http://127.0.0.1:8123/" in startup("127.0.0.1")
    text = startup("0.0.0.0")
    assert "warning: listening on 0.0.0.0: anyone who can reach port 8123" in text


async def test_an_app_that_does_not_quit_is_ended_with_its_process_group(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "QUIT_GRACE_S", 0.3)
    # an "app" that ignores the request to quit and has started a child of its own
    script = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
              "print('__GANGLION__', flush=True); time.sleep(60)")

    async def ignore(*args, **kwargs):
        return None

    from textual_serve.download_manager import DownloadManager

    app = serve.AppProcess([sys.executable, "-c", script], str(tmp_path), write_bytes=ignore, write_str=ignore,
                           close=ignore, download_manager=DownloadManager())
    await app.start(80, 24)
    pid = app.process.pid
    children = lambda: open(f"/proc/{pid}/task/{pid}/children").read().split()  # noqa: E731
    child = int((await asyncio.to_thread(wait_until, children, 10, "the app's child"))[0])
    await app.stop()
    assert app.process.returncode == -15  # terminated: it did not quit when asked
    await asyncio.to_thread(wait_until, lambda: not alive(child), 5, "its child to end")
    await app.stop()  # a second stop is harmless


@pytest.fixture(scope="module")
def served(data):
    server = Served(data.parent, "--data", str(data), "--max-sessions", "1", "--mode", "shadow", "--seed", "7",
                    "--set", "tlb.l2.entries=1536")
    yield server
    server.stop()


@pytest.mark.parametrize("query", ["?trace=../../etc/passwd", "?trace=/etc/passwd", "?trace=lesson/notes.md",
                                   "?trace=lesson/escape.txt", "?trace=lesson/pipe.txt", "?trace=lesson/.hidden.txt",
                                   "?workload=nope", "?workload=seq&trace=lesson/ls.txt", "?trace=lesson/tour.rvi.json",
                                   "?command=ls"])
def test_a_page_for_a_path_or_name_the_server_does_not_offer_is_refused(served, query):
    opened = len(served.app_pids())
    status, body = served.get("/" + query)
    expected = 200 if query == "?command=ls" else 404  # an unknown parameter is ignored: the default run
    assert status == expected and ("Not offered here" in body) == (expected == 404)
    assert len(served.app_pids()) == opened


@pytest.mark.parametrize("path", ["/ws/trace/..%2F..%2Fetc%2Fpasswd", "/ws/trace//etc/passwd", "/ws/trace/lesson/../../secret.txt",
                                  "/ws/workload/nope", "/ws/command/ls", "/ws/session/lesson/ls.txt"])
def test_the_socket_that_starts_an_app_refuses_what_is_not_offered(served, path):
    opened = len(served.app_pids())
    assert served.get(path)[0] == 404
    assert len(served.app_pids()) == opened


def test_links_list_what_is_offered_and_open_it(served):
    status, body = served.get("/links")
    assert status == 200
    for link in ("/?workload=tlbstress", "/?trace=lesson%2Fls.txt", "/?trace=lesson%2Fweek2%2Fstride.lackey",
                 "/?session=lesson%2Ftour.rvi.json", "/?session=tours%2F1-cold-2d-walk.rvi.json"):
        assert f'href="{link}"' in body
    assert "secret" not in body and "escape" not in body and "notes.md" not in body
    status, page = served.get("/?trace=lesson/week2/stride.lackey")
    assert status == 200 and f'"ws://127.0.0.1:{served.port}/ws/trace/lesson/week2/stride.lackey"' in page
    status, page = served.get("/?workload=seq")
    assert status == 200 and f'"ws://127.0.0.1:{served.port}/ws/workload/seq"' in page


async def open_tab(served, path="/ws"):
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(served.url.replace("http", "ws") + path + "?width=100&height=30")
    return session, ws


async def test_a_tab_runs_the_options_of_the_serve_command_and_a_tab_beyond_the_cap_is_told_so(served, data):
    opened = len(served.app_pids())
    session, ws = await open_tab(served, "/ws/trace/lesson/ls.txt")
    try:
        pid = (await asyncio.to_thread(wait_until, lambda: served.app_pids()[opened:], 20, "the app"))[0]
        cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
        assert cmdline[1:3] == ["-m", "rvi_tui.tui.cli"]
        for option in (["--mode", "shadow"], ["--seed", "7"], ["--set", "tlb.l2.entries=1536"],
                       ["--data", str(data)], ["--trace", str(data / "ls.txt")]):
            assert any(cmdline[i:i + 2] == option for i in range(len(cmdline))), (option, cmdline)
        assert os.path.basename(os.readlink(f"/proc/{pid}/cwd")).startswith("rvi-tui-serve-")  # the server's own
        # the cap is 1: the page says busy, and a socket that gets past the page is closed saying so
        status, body = await asyncio.to_thread(served.get, "/")
        assert status == 503 and "all 1 sessions are in use" in body and 'http-equiv="refresh"' in body
        extra_session, extra = await open_tab(served)
        message = await extra.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE and extra.close_code == 1013
        assert "busy" in message.extra
        await extra_session.close()
        assert len(served.app_pids()) == opened + 1
    finally:
        await ws.close()
        await session.close()
    await asyncio.to_thread(wait_until, lambda: not alive(pid) and served.closed(pid), 15, "the app to end")


def test_a_session_link_starts_the_app_on_that_session_file(served, data):
    status, _ = served.get("/?session=lesson/tour.rvi.json")
    assert status == 200

    async def check():
        opened = len(served.app_pids())
        session, ws = await open_tab(served, "/ws/session/lesson/tour.rvi.json")
        try:
            pid = (await asyncio.to_thread(wait_until, lambda: served.app_pids()[opened:], 20, "the app"))[0]
            cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
            assert ["--session", str(data / "tour.rvi.json")] in [cmdline[i:i + 2] for i in range(len(cmdline))]
        finally:
            await ws.close()
            await session.close()

    asyncio.run(check())
