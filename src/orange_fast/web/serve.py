"""A tiny static HTTP server for the call page (``orange-fast serve --web`` and the harness).

It serves only the shipped files (``call.html`` as ``/``, ``call.js``, ``call-worker.js``,
``orange-fast.js``) and ``/config.json`` (the delivery-service and Janus URLs the page uses when
its URL does not name them).  GET and HEAD only; anything else is 404/405.  Plain asyncio, no
dependency; bind it to 127.0.0.1 (a secure context for WebCrypto and getUserMedia) or put TLS in
front of it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

__all__ = ["PAGE_FILES", "WebServer", "page_available"]

PAGE_FILES = {
    "/": ("call.html", "text/html; charset=utf-8"),
    "/call.html": ("call.html", "text/html; charset=utf-8"),
    "/call.js": ("call.js", "text/javascript"),
    "/call-worker.js": ("call-worker.js", "text/javascript"),
    "/orange-fast.js": ("orange-fast.js", "text/javascript"),
}
_HERE = Path(__file__).parent


def page_available(root: Path = _HERE) -> str | None:
    """``None`` if the call page is built, else why not (for skips and the CLI)."""
    missing = sorted({name for name, _ in PAGE_FILES.values() if not (root / name).is_file()})
    if missing:
        return f"the call page is not built ({', '.join(missing)} missing): run scripts/setup.sh (needs node/npm)"
    return None


class WebServer:
    """Serves the call page on ``host:port`` (0 = any free port); :attr:`url` once started."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, config: dict[str, Any] | None = None,
                 root: Path = _HERE) -> None:
        self.host = host
        self.port = port
        self.root = root
        self.config = dict(config or {})
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        reason = page_available(self.root)
        if reason is not None:
            raise FileNotFoundError(reason)
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, target, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = target.split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"method not allowed\n"
            elif path == "/config.json":
                status, ctype, body = "200 OK", "application/json", json.dumps(self.config).encode()
            elif path in PAGE_FILES:
                name, ctype = PAGE_FILES[path]
                status, body = "200 OK", (self.root / name).read_bytes()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n".encode()
                + (body if method != "HEAD" else b"")
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError, OSError):
            pass
        finally:
            writer.close()
