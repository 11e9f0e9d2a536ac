"""The one place the web tests start Node, the delivery server and Python peers.

* :data:`WEB` / :func:`require_build` -- the ``web/`` package; tests skip with a reason when
  node/npm or the build (``npm ci && npm run build`` in ``web/``, done by ``scripts/setup.sh``)
  are absent.
* :class:`Oracle` -- a long-lived ``node dist-test/test/tools/oracle.js`` answering JSON requests
  (one per line), used by the differential tests.
* :func:`start_server` -- a real :class:`~orange_fast.delivery.DeliveryServer` over a real SQLite
  file on 127.0.0.1 (adapt here when the server's token scheme changes).
* :func:`node_env` -- environment of a Node subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST_TEST = WEB / "dist-test"
ORACLE_JS = DIST_TEST / "test" / "tools" / "oracle.js"
SESSION_JS = DIST_TEST / "test" / "tools" / "session_peer.js"
TOKEN = b"test-room-token-0123456789abcdef"


def node() -> str | None:
    """Path of ``node`` (20 or later), or None."""
    return shutil.which("node")


def require_node() -> str:
    """``node`` and ``npm`` with ``web/node_modules`` installed, else skip."""
    exe = node()
    if exe is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed (apt-get install nodejs npm): web tests skipped")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 20:
        pytest.skip(f"node {version} is too old: the web client needs node >= 20 (global WebCrypto, ts-mls)")
    if not (WEB / "node_modules").is_dir():
        pytest.skip("web/node_modules absent: run `npm ci` in web/ (scripts/setup.sh does)")
    return exe


def require_build() -> str:
    """``node`` plus the compiled test tools (``npm run build -- --tests`` in web/), built here if needed."""
    exe = require_node()
    if not ORACLE_JS.exists():
        subprocess.run([exe, "build.mjs", "--tests"], cwd=WEB, check=True, timeout=120, capture_output=True)
    return exe


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ORANGE_FAST_VECTORS", str(ROOT.parent / "shared" / "vectors"))
    return env


class Oracle:
    """A Node process answering one JSON request per line (see web/test/tools/oracle.ts)."""

    def __init__(self) -> None:
        exe = require_build()
        self.proc = subprocess.Popen(
            [exe, str(ORACLE_JS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=node_env(),
        )

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; return the decoded answer (``{"error": name}`` on a JS exception)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node oracle exited (code {self.proc.poll()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def start_server(db: Path, **kwargs: Any) -> Any:
    """A real DeliveryServer on 127.0.0.1 (ephemeral port) over the SQLite file ``db``, with the
    session tests' helper and timeouts that leave room for Node processes."""
    from session.session_client_support import start_server as start_session_server

    return await start_session_server(db, **{"heartbeat_interval": 0.5, "eviction_timeout": 5.0, **kwargs})


class NodePeer:
    """A Node session participant (web/test/tools/session_peer.ts) in its own process."""

    def __init__(self, proc: Any, client_id: str) -> None:
        self.proc = proc
        self.client_id = client_id

    @classmethod
    async def start(cls, url: str, client_id: str, room: str = "room", token: bytes = TOKEN, **config: Any) -> NodePeer:
        import asyncio

        exe = require_build()
        proc = await asyncio.create_subprocess_exec(
            exe, str(SESSION_JS), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=node_env()
        )
        peer = cls(proc, client_id)
        cfg = {"tickIntervalMs": 100, "gracePeriodMs": 500, "appendTimeoutMs": 5000, **config}
        answer = await peer.ask("start", url=url, room=room, token=token.hex(), client=client_id, config=cfg)
        assert answer == {"ok": True}, answer
        return peer

    async def ask(self, op: str, timeout: float = 30.0, **fields: Any) -> Any:
        import asyncio

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"node peer {self.client_id} exited")
        return json.loads(line)

    async def kill(self) -> None:
        """Stop abruptly (no BYE), as a crashed browser tab would."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def close(self) -> None:
        import asyncio

        if self.proc.returncode is None:
            try:
                await self.ask("leave", timeout=10)
            except (RuntimeError, asyncio.TimeoutError, BrokenPipeError, ConnectionResetError):
                pass
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                await self.kill()


async def start_python_client(
    url: str, client_id: str, room: str = "room", token: bytes = TOKEN, **config_fields: Any
) -> Any:
    """A Python SessionClient with the fast timers the web tests use (``config_fields``: SessionConfig overrides)."""
    from orange_fast.session.client import SessionClient, SessionConfig

    config = SessionConfig(**{"tick_interval": 0.1, "grace_period": 0.5, "append_timeout": 5.0, **config_fields})
    options = {"backoff_initial": 0.02, "backoff_max": 0.2, "connect_timeout": 3.0}
    client = SessionClient(url, room, token, client_id, config=config, delivery_options=options)
    await client.start()
    return client


async def run_delivery_probe(**args: Any) -> dict[str, Any]:
    """Run web/test/tools/delivery_probe.ts once; return its JSON report."""
    import asyncio

    exe = require_build()
    proc = await asyncio.create_subprocess_exec(
        exe, str(DIST_TEST / "test" / "tools" / "delivery_probe.js"), json.dumps(args),
        stdout=asyncio.subprocess.PIPE, env=node_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


class Room:
    """A delivery server with Node and Python participants, all stopped by :func:`room`."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.nodes: list[NodePeer] = []
        self.pys: list[Any] = []

    async def add_node(self, client_id: str) -> NodePeer:
        peer = await NodePeer.start(self.server.url, client_id)
        self.nodes.append(peer)
        return peer

    async def add_python(self, client_id: str, **config_fields: Any) -> Any:
        client = await start_python_client(self.server.url, client_id, **config_fields)
        self.pys.append(client)
        return client


@contextlib.asynccontextmanager
async def room(db: Path) -> AsyncIterator[Room]:
    """Start a server over ``db``; on exit every participant leaves and the server stops."""
    r = Room(await start_server(db))
    try:
        yield r
    finally:
        for n in r.nodes:
            await n.close()
        for p in r.pys:
            await p.leave()
        await r.server.stop()
