"""`orange-fast serve --web`: the call page next to the delivery service, its origin allowed (real processes)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orange_fast.web.serve import PAGE_FILES, WebServer, page_available

pytestmark = [pytest.mark.timeout(120)]

if page_available() is not None:
    pytest.skip(page_available() or "", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, method: str = "GET") -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), ""


def test_web_server_serves_only_the_page_files() -> None:
    async def scenario() -> list[tuple[int, bytes, str]]:
        config = {"ws": "ws://127.0.0.1:1", "janus": "http://127.0.0.1:2/janus"}
        async with WebServer("127.0.0.1", 0, config=config) as web:
            urls = [web.url, web.url + "call-worker.js", web.url + "config.json?x=1", web.url + "../../etc/passwd",
                    web.url + "serve.py", web.url + "call.js"]
            out = [await asyncio.to_thread(_get, u) for u in urls]
            out.append(await asyncio.to_thread(_get, web.url, "POST"))
            return out

    page, worker, config, traversal, source, module, post = asyncio.run(scenario())
    here = Path(sys.modules["orange_fast.web.serve"].__file__ or "").parent
    assert page[0] == 200 and page[1] == (here / PAGE_FILES["/"][0]).read_bytes() and page[2].startswith("text/html")
    assert worker[0] == 200 and worker[2] == "text/javascript" and module[0] == 200
    assert config[0] == 200 and config[1] == b'{"ws": "ws://127.0.0.1:1", "janus": "http://127.0.0.1:2/janus"}'
    assert traversal[0] == 404 and source[0] == 404
    assert post[0] == 405


def test_serve_web_prints_the_url_and_allows_only_its_own_origin(tmp_path: Path) -> None:
    websockets = pytest.importorskip("websockets")
    port = _free_port()
    web_port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orange_fast.cli", "serve", "--insecure-room-tokens", "--db", str(tmp_path / "d.db"),
         "--port", str(port), "--web", "--web-port", str(web_port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("call page" in line for line in lines):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            lines.append(line)
        assert any(f"open http://127.0.0.1:{web_port}/?room=" in line for line in lines), lines
        status, body, _ = _get(f"http://127.0.0.1:{web_port}/config.json")
        assert status == 200 and f"ws://127.0.0.1:{port}".encode() in body

        async def handshake(origin: str) -> bool:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}", origin=origin, open_timeout=10):
                    return True
            except websockets.exceptions.InvalidStatus:
                return False

        assert asyncio.run(handshake(f"http://127.0.0.1:{web_port}")) is True
        assert asyncio.run(handshake("http://evil.example")) is False
    finally:
        proc.terminate()
        proc.wait(timeout=20)
