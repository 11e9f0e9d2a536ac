"""End to end: a delivery-service process and 6+ session-client processes on 127.0.0.1.

Clients join, leave, crash (SIGKILL) and reconnect; every survivor converges on one epoch
with equal epoch authenticators and safety numbers (printed as JSON lines), members decrypt
each other's frames, a removed member no longer decrypts new frames, and a newcomer cannot
decrypt frames from before it joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

import orange_fast

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

SRC = str(Path(orange_fast.__file__).resolve().parents[1])
TOKEN = "e2e-room-token-0123456789"
ROOM = "e2e"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["ORANGE_FAST_ROOM_TOKEN"] = TOKEN
    return env


class Runner:
    """One ``orange_fast.session.runner`` process."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.state: dict[str, Any] | None = None
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, url: str, name: str) -> "Runner":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orange_fast.session.runner", "--url", url, "--room", ROOM, "--id", name,
            "--tick", "0.1", "--grace", "0.5",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_env(),
        )
        return cls(name, proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            msg = json.loads(line)
            if msg["type"] == "state":
                self.state = msg
            elif msg["type"] != "started":
                await self.replies.put(msg)

    async def ask(self, line: str, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def encrypt(self, payload: bytes) -> bytes:
        reply = await self.ask("encrypt " + payload.hex())
        assert reply["type"] == "frame" and reply["ct"], reply
        return bytes.fromhex(reply["ct"])

    async def decrypt(self, ct: bytes) -> bytes | None:
        reply = await self.ask("decrypt " + ct.hex())
        assert reply["type"] == "decrypted", reply
        return bytes.fromhex(reply["pt"]) if reply["ok"] else None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        self.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 5)
        self.reader.cancel()


def _key(r: Runner) -> tuple[Any, ...] | None:
    s = r.state
    if s is None or s["epoch"] is None:
        return None
    return (s["gen"], s["epoch"], s["auth"], s["safety"], tuple(sorted(s["roster"])), s["idle"])


async def wait_converged(runners: list[Runner], timeout: float = 30.0) -> dict[str, Any]:
    names = tuple(sorted(r.name for r in runners))

    async def loop() -> None:
        while True:
            keys = {_key(r) for r in runners}
            if len(keys) == 1:
                (k,) = keys
                if k is not None and k[4] == names:
                    # the last state line may predate idleness: confirm with a fresh status
                    statuses = [await r.ask("status") for r in runners]
                    if len({(s["gen"], s["epoch"], s["auth"], s["safety"]) for s in statuses}) == 1 and all(
                        s["idle"] and tuple(sorted(s["roster"])) == names for s in statuses
                    ):
                        return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("no convergence: " + repr({r.name: r.state for r in runners})) from None
    assert runners[0].state is not None
    return runners[0].state


async def all_decrypt(runners: list[Runner]) -> None:
    for sender in runners:
        payload = f"frame from {sender.name}".encode()
        for receiver in runners:
            if receiver is not sender:
                assert await receiver.decrypt(await sender.encrypt(payload)) == payload, (sender.name, receiver.name)


async def test_processes_join_leave_crash_reconnect_and_converge(tmp_path: Path) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orange_fast.cli", "serve", "--host", "127.0.0.1", "--port", "0",
        "--db", str(tmp_path / "ds.db"), "--heartbeat-interval", "0.2", "--eviction-timeout", "1.0",
        "--synchronous", "NORMAL", "--log-level", "WARNING", "--insecure-room-tokens",
        stdout=asyncio.subprocess.PIPE, env=_env(),
    )
    runners: dict[str, Runner] = {}
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), 20)).decode()
        match = re.search(r"ws://127\.0\.0\.1:\d+", line)
        assert match, line
        url = match.group(0)
        for i in range(6):
            runners[f"p{i}"] = await Runner.start(url, f"p{i}")
        live = list(runners.values())
        state = await wait_converged(live, 60)
        assert len(state["roster"]) == 6 and len(state["safety"].split()) == 12
        await all_decrypt(live)
        before = await runners["p0"].encrypt(b"before the newcomer")

        # p2 leaves (its process stays to be asked), p3 crashes, p4 crashes and comes back at once.
        leave = await runners["p2"].ask("leave")
        assert leave["type"] == "left" and leave["epoch"] is None
        runners["p3"].kill()
        runners["p4"].kill()
        await runners["p4"].stop()
        runners["p4"] = await Runner.start(url, "p4")
        live = [runners[n] for n in ("p0", "p1", "p4", "p5")]
        await wait_converged(live, 40)
        after = await runners["p1"].encrypt(b"after the removals")
        assert await runners["p0"].decrypt(after) == b"after the removals"
        assert await runners["p2"].decrypt(after) is None  # removed: no key for the new epoch

        # A newcomer and the crashed p3 (a new process) join.
        await runners["p3"].stop()
        runners["p3"] = await Runner.start(url, "p3")
        runners["p6"] = await Runner.start(url, "p6")
        live = [runners[n] for n in ("p0", "p1", "p3", "p4", "p5", "p6")]
        await wait_converged(live, 40)
        assert await runners["p6"].decrypt(before) is None  # the newcomer cannot read older frames
        await all_decrypt(live)
        newest = await runners["p6"].encrypt(b"newest")
        assert await runners["p2"].decrypt(newest) is None
    finally:
        for r in runners.values():
            await r.stop()
        with contextlib.suppress(ProcessLookupError):
            server.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.wait(), 10)
        except asyncio.TimeoutError:
            server.kill()
            await server.wait()
