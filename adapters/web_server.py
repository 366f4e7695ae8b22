"""The browser page's server: the page's files and its websocket on one port, one
``WebTransport`` per page, the websocket open only to the page's own origin (and those
allowed), ``GET /health``."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from importlib import resources
from urllib.parse import urlsplit

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voiceagent.adapters.peer_socket import REFUSED_CLOSE_S, close_and_drop, converse
from voiceagent.adapters.web_transport import WebTransport
from voiceagent.wire_text import printable

logger = logging.getLogger(__name__)

SOCKET_PATH = "/ws"
HARD_MAX_BYTES = 1024 * 1024  # beyond this the socket itself is closed (1009)
MAX_PAGES = 8  # pages talking at once; beyond, the upgrade gets 503
CLOSE_TIMEOUT_S = 2.0
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})
# The page's files are its own: scripts and connections to this origin only, no inline code.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

RunPage = Callable[[WebTransport], Awaitable[None]]


def page_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (content, content type) of every file of the page (package data:
    voiceagent/web-page/)."""
    files: dict[str, tuple[bytes, str]] = {}
    for item in (resources.files("voiceagent") / "web-page").iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if item.is_file() and suffix in CONTENT_TYPES:
            files["/" + item.name] = (item.read_bytes(), CONTENT_TYPES[suffix])
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class WebServer:
    """Serves the page on ``http://host:port/`` and its websocket on ``/ws``: each page's
    socket becomes a ``WebTransport`` that ``run_page`` runs (a ``Session`` of the agent);
    the socket closes when it returns. An upgrade from an origin that is not the page's
    own (nor in ``allow_origins``) gets 403; beyond ``max_pages`` at once, 503."""

    def __init__(
        self,
        run_page: RunPage,
        *,
        output_rate: int,
        host: str = "127.0.0.1",
        port: int = 8080,
        allow_origins: Iterable[str] = (),
        max_pages: int = MAX_PAGES,
        files: Mapping[str, tuple[bytes, str]] | None = None,
    ) -> None:
        self.run_page = run_page
        self.output_rate = output_rate
        self.host, self.port = host, port
        self.allow_origins = {origin.rstrip("/").lower() for origin in allow_origins}
        self.max_pages = max_pages
        self.files = dict(files) if files is not None else page_files()
        self.pages = 0  # talking now
        self.pages_served = 0
        self.refused: Counter[int] = Counter()  # HTTP status -> upgrades refused
        self.malformed: Counter[str] = Counter()  # over every page served
        self.transports: list[WebTransport] = []  # the pages talking now
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8080/``."""
        host = self.host if self.host not in WILDCARD else "127.0.0.1"
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=HARD_MAX_BYTES,
            # a page that does not answer our close (a flood still sending) is dropped soon
            close_timeout=REFUSED_CLOSE_S,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop accepting and end every page's socket (1001, going away)."""
        if self._server is None:
            return
        self._server.close(close_connections=True)
        with anyio.move_on_after(timeout_s):
            await self._server.wait_closed()

    def own_origins(self, host_header: str | None) -> set[str]:
        """The origins of the page as served: this host and port, by every loopback name
        when it listens on loopback, by the Host asked for when it listens everywhere."""
        names = {self.host.lower()}
        if self.host.lower() in LOOPBACK:
            names |= LOOPBACK
        if self.host in WILDCARD and host_header:
            names.add(urlsplit(f"http://{host_header}").hostname or "")
        names = {f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names if n}
        return {f"http://{name}:{self.port}" for name in names}

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        if not origin:
            return False  # every browser sends one: a socket without it is no page's
        origin = origin.rstrip("/").lower()
        return origin in self.allow_origins or origin in self.own_origins(host_header)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/health":  # malformed: messages skipped, by kind, over every page
            malformed = self.malformed + sum((t.malformed for t in self.transports), Counter())
            health = {"status": "ok", "pages": self.pages, "malformed": dict(malformed)}
            return _respond(connection, 200, json.dumps(health), "application/json")
        if path != SOCKET_PATH:
            found = self.files.get(path)
            if found is None:
                return _respond(connection, 404, f"nothing at {printable(path)}\n", "text/plain")
            body, kind = found
            return _respond(connection, 200, body, kind)
        origin = request.headers.get("Origin")
        if not self.origin_allowed(origin, request.headers.get("Host")):
            logger.warning("refused a websocket from origin %s (not the page's own; "
                           "--allow-origin adds one)", printable(origin))  # fmt: skip
            self.refused[403] += 1
            return _respond(connection, 403, "origin not allowed\n", "text/plain")
        if self.pages >= self.max_pages:
            self.refused[503] += 1
            response = _respond(connection, 503, f"busy: {self.pages} pages\n", "text/plain")
            response.headers["Retry-After"] = "1"
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        if (connection.request.path if connection.request else "").split("?")[0] != SOCKET_PATH:
            return
        request = connection.request
        origin = request.headers.get("Origin", "") if request else ""
        transport = WebTransport(self.output_rate, origin=time.monotonic(),
                                 metadata={"origin": origin})  # fmt: skip
        self.pages += 1
        self.pages_served += 1
        self.transports.append(transport)

        async def run() -> None:
            try:
                await self.run_page(transport)
            except Exception:
                logger.exception("a page's session failed")

        try:
            await converse(connection, transport, partial(self._read, connection, transport), run)
        finally:
            self.pages -= 1
            self.transports.remove(transport)
            self.malformed.update(transport.malformed)
            await connection.close()

    async def _read(self, connection: ServerConnection, transport: WebTransport) -> None:
        try:
            async for message in connection:
                try:
                    transport.receive(message)
                except Exception:  # one bad message must not end the page
                    logger.exception("a message from the page could not be handled")
                if transport.refusal is not None:
                    await close_and_drop(connection, transport.refusal)
                    return
        except ConnectionClosed:
            pass
        finally:
            transport.hang_up()


def _respond(
    connection: ServerConnection, status: int, body: str | bytes, content_type: str
) -> Response:
    response = connection.respond(status, "")
    raw = body.encode() if isinstance(body, str) else body
    headers = Headers((k, v) for k, v in response.headers.raw_items()
                      if k not in ("Content-Type", "Content-Length"))  # fmt: skip
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(raw))
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    response.headers = headers
    response.body = raw
    return response
