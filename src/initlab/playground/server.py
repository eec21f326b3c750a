"""The playground's server: Starlette (routes, static files, WebSocket) on uvicorn, in one process.

``GET /`` is the page, ``/static/...`` its modules and the vendored uPlot, and ``/ws`` the WebSocket over which a
page steers its :class:`~initlab.playground.session.Session` and receives its frames. Messages are JSON objects
with a ``type``:

=================  ==================================================================================
page -> server     meaning
=================  ==================================================================================
``setup``          ``{"query": "data=circles&arm=zeros&arm=he_normal&..."}``: the URL's state; a change of
                   a training field rebuilds the session (step 0), a change of speed, layer or network
                   view does not
``play``/``pause`` train continuously, or stop
``step``           one update now: ``speed`` steps, or ``{"steps": k}``
``reset``          re-initialize every arm from the seed
``ack``            a frame was drawn (at most :data:`WINDOW` frames are in flight, so a slow page slows
                   the training instead of queueing frames)
=================  ==================================================================================

The server answers ``setup`` (the canonical query, the equivalent command and code, the points), ``frame`` (the
views, :meth:`Session.frame`) and ``error`` (``messages``: what was wrong, in words; the page shows them).

Safety. The server binds 127.0.0.1 unless told otherwise; pages are served only under a loopback ``Host`` header
(DNS rebinding), a WebSocket from another origin is refused, and the page's Content-Security-Policy allows no
request off the server. Every value received is validated (:func:`~initlab.playground.setup.parse_setup`); an
update runs at most :data:`UPDATE_BUDGET_S` seconds of training, in a worker thread so that other pages keep being
served; a message is at most :data:`MAX_MESSAGE` bytes; at most :data:`MAX_SESSIONS` pages are open at once. A
session whose training raises is paused with the error shown; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from initlab.playground import export
from initlab.playground.session import Session
from initlab.playground.setup import SPEED, Setup, parse_setup

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: Frames sent but not yet acknowledged by the page.
WINDOW = 2
#: Seconds of training one update may take, whatever its speed asks for (at least one step is taken).
UPDATE_BUDGET_S = 0.2
#: The largest WebSocket message read (a setup query is at most 4 KiB).
MAX_MESSAGE = 64 * 1024
#: Pages open at once; each holds its own models.
MAX_SESSIONS = 8
#: Messages waiting to be handled per page; a page that sends faster than this is told so and its extra
#: messages are dropped.
MAX_QUEUED = 64
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Nothing but the server itself: scripts, styles, images and the WebSocket (CSP 3: 'self' covers ws: on the same
#: host and port).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class _Headers:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]  # fmt: skip
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class _Closed:
    """The reader's last word: the page went away."""


class Connection:
    """One page: its session, whether it plays, and the frames in flight."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.setup = Setup()
        self.session: Session | None = None
        self.playing = False
        self.inflight = 0
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send_text(message if isinstance(message, str) else json.dumps(message))

    async def error(self, *messages: str) -> None:
        await self.send({"type": "error", "messages": list(messages)})

    async def read(self) -> None:
        """Put every message the page sends on the queue (parsed, or the reason it is not a message)."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    item: Any = ValueError("a binary message; the playground speaks JSON text.")
                else:
                    try:
                        item = json.loads(text)
                    except ValueError:
                        item = ValueError(f"a message that is not JSON: {text[:80]!r}")
                is_ack = isinstance(item, dict) and item.get("type") == "ack"
                if self.queue.qsize() >= MAX_QUEUED and not is_ack:
                    continue  # dropped; acks are always kept so the window cannot stall
                self.queue.put_nowait(item)
        except WebSocketDisconnect:
            pass
        finally:
            self.queue.put_nowait(_Closed())

    async def run(self) -> None:
        reader = asyncio.create_task(self.read())
        try:
            while True:
                if self.playing and self.session is not None and self.inflight < WINDOW and self.queue.empty():
                    await self.update()
                    continue
                item = await self.queue.get()
                if isinstance(item, _Closed):
                    break
                await self.handle(item)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def handle(self, item: Any) -> None:
        if isinstance(item, Exception):
            await self.error(f"the server could not read {item}")
            return
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            await self.error(f"a message must be a JSON object with a 'type', got {str(item)[:80]!r}.")
            return
        kind = item["type"]
        if kind == "ack":
            self.inflight = max(0, self.inflight - 1)
        elif kind == "setup":
            query = item.get("query", "")
            if not isinstance(query, str):
                await self.error("setup: 'query' must be a string, the URL's query.")
                return
            await self.configure(query)
        elif kind in ("play", "pause"):
            self.playing = kind == "play" and self.session is not None
            await self.send({"type": "playing", "playing": self.playing})
        elif kind == "step":
            steps = item.get("steps", self.setup.speed)
            if isinstance(steps, bool) or not isinstance(steps, int) or not SPEED[0] <= steps <= SPEED[1]:
                await self.error(f"step: 'steps' must be a whole number in [{SPEED[0]}, {SPEED[1]}], got {steps!r}.")
            elif self.session is not None:
                await self.update(steps)
        elif kind == "reset":
            if self.session is not None:
                await self.compute(self._reset)
        else:
            allowed = "setup, play, pause, step, reset, ack"
            await self.error(f"unknown message type {kind[:40]!r}; the playground understands {allowed}.")

    async def compute(self, fn: Callable[[], str]) -> None:
        """Run ``fn`` in a worker thread and send the frame it returns; an exception pauses the page with its
        message."""
        self.inflight += 1
        try:
            text = await asyncio.to_thread(fn)
        except Exception as exc:  # any failure of one page's training is reported to that page
            log.exception("playground session failed")
            self.playing = False
            await self.error(f"training stopped: {type(exc).__name__}: {exc}")
            self.inflight -= 1
            await self.send({"type": "playing", "playing": False})
            return
        await self.send(text)

    async def configure(self, query: str) -> None:
        setup, errors = parse_setup(query, self.setup)
        if self.session is not None and setup.same_training(self.session.setup):
            self.setup = setup
            self.session.setup = setup
            await self.send({"type": "setup", "query": setup.to_query(), "live": True, "errors": errors,
                             **export.equivalents(setup)})  # fmt: skip
            return
        try:
            session = await asyncio.to_thread(Session, setup)
        except (ValueError, TypeError, RuntimeError, OSError) as exc:
            # A scheme that does not apply to this network (dirac on a dense layer), missing data: keep what runs.
            await self.error(*errors, f"this setup cannot be built: {exc}")
            if self.session is None and setup != Setup():
                await self.configure("")
            return
        self.setup, self.session = setup, session
        self.inflight = 0
        await self.send({"type": "setup", "query": setup.to_query(), "live": False, "errors": errors,
                         **export.equivalents(setup), **session.describe()})  # fmt: skip
        await self.compute(lambda: self._frame(findings=True))

    def _frame(self, findings: bool | None = None) -> str:
        assert self.session is not None  # the caller checked; not user input
        s = self.setup
        return json.dumps(self.session.frame(layer=s.layer, network=s.net, findings=findings))

    def _reset(self) -> str:
        assert self.session is not None
        self.session.reset()
        return self._frame(findings=True)

    async def update(self, steps: int | None = None) -> None:
        """One update: ``steps`` (default: the setup's speed) steps of every arm, and the new frame."""

        def advance() -> str:
            assert self.session is not None
            self.session.advance(steps or self.setup.speed, UPDATE_BUDGET_S)
            return self._frame()

        await self.compute(advance)


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


class _Sessions:
    """Counts the open pages."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


def _same_origin(ws: WebSocket) -> bool:
    """A browser sends ``Origin``; it must be this server (a page elsewhere must not drive it). Clients that send
    none (scripts, the benchmark) are allowed: they could reach the port anyway."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    host = ws.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def create_app(
    *, allowed_hosts: list[str] | None = None, on_startup: Callable[[], None] | None = None,
    max_sessions: int = MAX_SESSIONS,
) -> Starlette:  # fmt: skip
    """The ASGI application. ``allowed_hosts``: ``Host`` headers served (default: the loopback names);
    ``on_startup``: called once the server is about to accept connections."""
    sessions = _Sessions(max_sessions)

    async def websocket(ws: WebSocket) -> None:
        if not _same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        if sessions.open >= sessions.limit:
            await ws.send_text(json.dumps({"type": "error", "messages": [
                f"{sessions.limit} pages are already open on this playground; close one and reload."]}))  # fmt: skip
            await ws.close(code=1013)
            return
        sessions.open += 1
        try:
            await Connection(ws).run()
        finally:
            sessions.open -= 1

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        yield

    hosts = allowed_hosts or [h.strip("[]") for h in LOOPBACK_HOSTS]
    return Starlette(
        routes=[
            Route("/", _index),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            WebSocketRoute("/ws", websocket),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=[*hosts, *LOOPBACK_HOSTS]), Middleware(_Headers)],
        lifespan=lifespan,
    )


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one, chosen by the system)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(
    host: str = "127.0.0.1", port: int = 0, *, on_ready: Callable[[str], None] | None = None, threads: int = 1
) -> None:
    """Serve the playground until interrupted. ``on_ready(url)`` is called once it accepts connections (the CLI
    prints the URL and opens the browser there). ``threads``: torch's intra-op threads (1: small models gain
    nothing from more, and two processes that both use every core slow each other down many times over)."""
    import torch
    import uvicorn

    torch.set_num_threads(threads)
    sock = bind(host, port)
    url = url_of(sock, host)
    loopback = host.strip("[]") in [h.strip("[]") for h in LOOPBACK_HOSTS]
    startup = (lambda: on_ready(url)) if on_ready else None
    app = create_app(allowed_hosts=None if loopback else ["*"], on_startup=startup)
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", http="h11", ws_max_size=MAX_MESSAGE,
                            ws_per_message_deflate=False, lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
    log.info("playground at %s", url)
    uvicorn.Server(config).run(sockets=[sock])
