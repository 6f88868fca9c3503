"""`rvi-tui serve`: the app in web browsers, for a classroom. Each tab runs an app process of its own, drawn in
the page by textual-serve (xterm.js); this module adds what makes it safe to run for a room.

* **What a tab may run** is chosen by the server: the `rvi-tui` options it was started with, and at most one
  of a built-in workload (``/?workload=NAME``), a trace or a session file from the `--data` directories
  (``/?trace=KEY``, ``/?session=KEY``, keys from ``offered.py``; the guided tour's are ``tours/…``). The browser names an entry; it never sends a
  path or a command. The app is started from an argument list (never a shell) in a folder of the server's own,
  and inside it the browser's keys can only pick among what is offered (the picker shows no path field, and
  exports become downloads: ``app.py``).
* **Limits**: at most `max_sessions` apps at once (a tab beyond them gets a busy page, or, if the last place
  went while its page loaded, a closed session that says so); an app whose tab sent no key for
  `idle_timeout_s` ends; a closed tab, a lost connection or the server stopping ends the app: asked to quit
  first, then its process group terminated, then killed (``AppProcess.stop``).

Every app opened and ended is one line on the server's output, with its process id.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from .offered import offered_files

WEB_DIR = Path(__file__).resolve().parent / "web"
# Peak RSS of one served app, stepped and run (README, "Serving a class", says how it was measured).
APP_RSS_MB = 300
MEMORY_SHARE = 0.75  # of the memory available when the server starts, what its apps may take
QUIT_GRACE_S = 3.0  # an app asked to quit gets this long before it is terminated, then as long before a kill
TERM_SIZE = ((20, 400), (10, 200))  # the columns and rows a browser may ask for (a huge terminal costs memory)
KINDS = ("workload", "trace", "session")

log = logging.getLogger("rvi-tui.serve")


def default_max_sessions(meminfo: str = "/proc/meminfo") -> int:
    """How many apps fit: MEMORY_SHARE of the memory available now, APP_RSS_MB each (at least 1)."""
    available = None
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return 4
    return max(1, int(available * MEMORY_SHARE) // (APP_RSS_MB << 20))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    max_sessions: int
    idle_timeout_s: float  # 0: never
    app_options: tuple[str, ...]  # `rvi-tui` options every tab's app gets
    default_source: tuple[str, ...]  # what a tab opened without a choice runs (--workload/--trace … or nothing)
    data_dirs: tuple[str, ...] = ()


class Refused(Exception):
    """A tab asked for something the server does not offer (the message says what, for the page)."""


class AppProcess(AppService):
    """One tab's app: textual-serve's protocol, but started from an argument list in its own process group and
    folder, its terminal size bounded, the time of its last key kept, and its end made sure of."""

    def __init__(self, argv: list[str], cwd: str, **kwargs) -> None:
        super().__init__(" ".join(argv), **kwargs)
        self.argv = argv
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.last_input = time.monotonic()
        self._stopping = asyncio.Lock()

    async def _open_app_process(self, width: int = 80, height: int = 24):
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width, height), cwd=self.cwd,
            start_new_session=True)
        self._process, self._stdin = self.process, self.process.stdin
        return self.process

    async def start(self, width: int, height: int) -> None:
        await super().start(*bounded_size(width, height))

    async def set_terminal_size(self, width: int, height: int) -> None:
        self.last_input = time.monotonic()
        await super().set_terminal_size(*bounded_size(width, height))

    async def send_bytes(self, data: bytes) -> bool:
        self.last_input = time.monotonic()
        return await super().send_bytes(data)

    async def ended(self) -> int | None:
        """Wait until the app's output has ended and the process has exited; its exit status."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return await self.process.wait() if self.process is not None else None

    async def stop(self) -> None:
        """Ask the app to quit; if it has not ended QUIT_GRACE_S later, terminate its process group, and kill it
        QUIT_GRACE_S after that. Safe to call twice."""
        async with self._stopping:
            if self.process is None:
                return
            if self.process.returncode is None:
                await self.send_meta({"type": "quit"})
                try:
                    await asyncio.wait_for(self.process.wait(), QUIT_GRACE_S)
                except asyncio.TimeoutError:
                    for sig in (signal.SIGTERM, signal.SIGKILL):
                        try:
                            os.killpg(self.process.pid, sig)
                            await asyncio.wait_for(self.process.wait(), QUIT_GRACE_S)
                            break
                        except ProcessLookupError:
                            break
                        except asyncio.TimeoutError:
                            pass
            # textual-serve's own ending (its downloads, its reader, which meets the end of the app's output now)
            try:
                await asyncio.wait_for(super().stop(), QUIT_GRACE_S)
            except asyncio.TimeoutError:
                log.warning("app pid %d: its output did not end with it", self.process.pid)
            except Exception as e:  # textual-serve's reader met a damaged packet: the app has ended all the same
                log.warning("app pid %d: %s: %s", self.process.pid, type(e).__name__, e)


def bounded_size(width: int, height: int) -> tuple[int, int]:
    (wmin, wmax), (hmin, hmax) = TERM_SIZE
    return min(max(width, wmin), wmax), min(max(height, hmin), hmax)


class RviServer(Server):
    """textual-serve's server with rvi-tui's choices, limits and pages."""

    def __init__(self, options: ServeOptions, out) -> None:
        super().__init__("rvi-tui", host=options.host, port=options.port, title="rvi-tui",
                         templates_path=str(WEB_DIR))
        self.options = options
        self.out = out
        self.tabs: dict[AppProcess, web.WebSocketResponse] = {}
        self.opened = 0
        self.workdir = tempfile.mkdtemp(prefix="rvi-tui-serve-")

    # --- what a tab may run ------------------------------------------------------------------------------
    def builtin_workloads(self) -> list[tuple[str, str]]:
        from ..workloads.registry import list_workloads

        return list_workloads()

    def source_argv(self, kind: str | None, key: str | None) -> list[str]:
        """The app options that run `kind` `key` (None: the server's default); Refused if it is not offered."""
        if kind is None:
            return list(self.options.default_source)
        if kind == "workload":
            if key in dict(self.builtin_workloads()):
                return ["--workload", key]
            raise Refused(f"no built-in workload {key!r}")
        if kind in ("trace", "session"):
            entry = offered_files(list(self.options.data_dirs)).get(key)
            if entry is not None and entry.kind == kind:
                return [f"--{kind}", entry.path]
            raise Refused(f"no {kind} {key!r} is offered here")
        raise Refused(f"cannot open a {kind!r}")

    def choice(self, query) -> tuple[str | None, str | None]:
        chosen = [kind for kind in KINDS if kind in query]
        if len(chosen) > 1:
            raise Refused(f"a link opens one of {', '.join(KINDS)}, not {' and '.join(chosen)}")
        if not chosen:
            return None, None
        kind = chosen[0]
        self.source_argv(kind, query[kind])  # refused now rather than after the page loads
        return kind, query[kind]

    def full(self) -> bool:
        return len(self.tabs) >= self.options.max_sessions

    # --- routes ------------------------------------------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = web.Application()
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/links", self.handle_links, name="links"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.get("/ws/{kind}/{key:.+}", self.handle_websocket, name="websocket-choice"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.static("/static", self.statics_path, name="static"),
        ])
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        app.on_cleanup.append(self.on_cleanup)
        return app

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        try:
            kind, key = self.choice(request.query)
        except Refused as e:
            return self.refused_page(str(e))
        if self.full():
            return self.busy_page()
        path = "/ws" if kind is None else f"/ws/{kind}/{quote(key, safe='/')}"
        scheme = "wss" if request.secure else "ws"
        font_size = min(max(to_int(request.query.get("fontsize", "16"), 16), 6), 48)
        return aiohttp_jinja2.render_template("index.html", request, {
            "title": f"rvi-tui · {key}" if key else "rvi-tui", "font_size": font_size,
            "ws_url": f"{scheme}://{request.host}{path}"})

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        kind, key = request.match_info.get("kind"), request.match_info.get("key")
        try:
            source = self.source_argv(kind, key)
        except Refused as e:
            raise web.HTTPNotFound(text=f"rvi-tui: {e}") from None
        ws = web.WebSocketResponse(heartbeat=15)
        await ws.prepare(request)
        if self.full():
            await ws.close(code=1013, message=self.busy_text().encode()[:120])
            return ws
        argv = [sys.executable, "-m", "rvi_tui.tui.cli", *self.options.app_options, *source]
        app = AppProcess(argv, self.workdir, write_bytes=ws.send_bytes, write_str=ws.send_str, close=ws.close,
                         download_manager=self.download_manager)
        self.tabs[app] = ws
        self.opened += 1
        number, what = self.opened, f"{kind} {key}" if kind else "default run"
        watchers: list[asyncio.Task] = []
        try:
            await app.start(to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24))
            self.say(f"tab {number} opened ({what}): app pid {app.process.pid}; "
                     f"{len(self.tabs)} of {self.options.max_sessions} in use")
            watchers = [asyncio.create_task(self.end_when_idle(ws, app)),
                        asyncio.create_task(self.close_when_app_ends(ws, app))]
            await self._process_messages(ws, app)
        except Exception as e:  # a malformed message from the page, a failed start: this tab ends, not the server
            log.warning("tab %d: %s: %s", number, type(e).__name__, e)
        finally:
            for task in watchers:
                task.cancel()
            await app.stop()
            del self.tabs[app]
            if not ws.closed:
                await ws.close()
            code = app.process.returncode if app.process is not None else None
            self.say(f"tab {number} closed: app pid {app.process.pid if app.process else '-'} ended (exit {code}); "
                     f"{len(self.tabs)} of {self.options.max_sessions} in use")
        return ws

    async def end_when_idle(self, ws: web.WebSocketResponse, app: AppProcess) -> None:
        limit = self.options.idle_timeout_s
        if not limit:
            return
        while (left := app.last_input + limit - time.monotonic()) > 0:
            await asyncio.sleep(left)
        await ws.close(code=4000, message=f"No key for {minutes(limit)}: this app has ended.".encode())

    async def close_when_app_ends(self, ws: web.WebSocketResponse, app: AppProcess) -> None:
        code = await app.ended()
        if not ws.closed:
            await ws.close(code=1000 if code == 0 else 1011,
                           message=b"The app has quit." if code == 0 else
                           f"The app stopped (exit status {code}); the server's output says why.".encode())

    # --- pages -------------------------------------------------------------------------------------------
    def busy_text(self) -> str:
        return f"The server is busy: all {self.options.max_sessions} sessions are in use. Try again in a minute."

    def busy_page(self) -> web.Response:
        return page(503, "rvi-tui: busy", f"<p>{html.escape(self.busy_text())}</p>"
                    "<p>This page tries again by itself every 30 seconds.</p>",
                    head='<meta http-equiv="refresh" content="30">', headers={"Retry-After": "30"})

    def refused_page(self, why: str) -> web.Response:
        return page(404, "rvi-tui: not offered", f"<p>Not offered here: {html.escape(why)}.</p>"
                    '<p><a href="/links">What this server offers</a></p>')

    async def handle_links(self, request: web.Request) -> web.Response:
        def item(kind: str, key: str, note: str = "") -> str:
            href = "/?" + urlencode({kind: key})
            return f'<li><a href="{html.escape(href)}">{html.escape(key)}</a> {html.escape(note)}</li>'

        files = offered_files(list(self.options.data_dirs)).values()
        body = [f"<p>{len(self.tabs)} of {self.options.max_sessions} sessions in use. "
                '<a href="/">The default run</a>.</p>', "<h2>Built-in workloads</h2><ul>",
                *(item("workload", name, desc) for name, desc in self.builtin_workloads()), "</ul>"]
        for kind, title in (("session", "Sessions (tours/: the guided tour)"), ("trace", "Traces")):
            entries = [item(kind, f.key) for f in files if f.kind == kind]
            if entries:
                body += [f"<h2>{title}</h2><ul>", *entries, "</ul>"]
        return page(200, "rvi-tui: what this server offers", "".join(body))

    # --- lifecycle ---------------------------------------------------------------------------------------
    def initialize_logging(self) -> None:
        logging.basicConfig(level=logging.WARNING, format="rvi-tui serve: %(message)s")

    def say(self, text: str) -> None:
        print(f"rvi-tui serve: {text}", file=self.out, flush=True)

    async def on_startup(self, app: web.Application) -> None:
        o = self.options
        shown = f"[{o.host}]" if ":" in o.host else o.host
        self.say(f"serving the app on http://{shown}:{o.port}/ (links: http://{shown}:{o.port}/links); Ctrl+C stops")
        self.say(f"at most {o.max_sessions} apps at once (about {APP_RSS_MB} MB each)"
                 + (f"; a tab idle for {minutes(o.idle_timeout_s)} ends" if o.idle_timeout_s else ""))
        if not is_loopback(o.host):
            self.say(f"warning: listening on {o.host}: anyone who can reach port {o.port} of this machine can "
                     "use it (there is no login)")

    async def on_shutdown(self, app: web.Application) -> None:
        for ws in list(self.tabs.values()):
            await ws.close(code=1001, message=b"The server has stopped.")
        await asyncio.gather(*(app_process.stop() for app_process in list(self.tabs)))

    async def on_cleanup(self, app: web.Application) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minute{'' if seconds == 60 else 's'}"


def page(status: int, title: str, body: str, *, head: str = "", headers: dict | None = None) -> web.Response:
    text = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>{head}'
            '<style>body{font-family:monospace;background:#0c181f;color:#eee;margin:2em}a{color:#ac5af4}</style>'
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(status=status, text=text, content_type="text/html", headers=headers)


def serve(options: ServeOptions, out) -> int:
    """Serve until interrupted (Ctrl+C or SIGTERM); every app is ended before this returns."""
    server = RviServer(options, out)
    server.serve()
    server.say(f"stopped ({server.opened} tab{'' if server.opened == 1 else 's'} served)")
    return 0
