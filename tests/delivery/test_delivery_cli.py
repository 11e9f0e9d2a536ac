"""``orange-fast serve`` as a real subprocess, and the CLI's structure."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from delivery_support import TOKEN

import orange_fast
from orange_fast import cli
from orange_fast.delivery import AccessTokenKey, AuthenticationFailedError, DeliveryClient, EntryType

SRC = str(Path(orange_fast.__file__).resolve().parent.parent)
WAIT = 15.0


async def start_serve(db: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orange_fast.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--db", str(db),
        "--log-level", "WARNING", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
    match = re.search(r"listening on (ws://127\.0\.0\.1:\d+)", line)
    if match is None:
        proc.kill()
        _, err = await proc.communicate()
        raise AssertionError(f"server did not start: {line!r} {err.decode()[-2000:]}")
    return proc, match.group(1)


async def stop_serve(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_serve_subprocess_persists_across_restart(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    proc, url = await start_serve(
        db, "--insecure-room-tokens", "--heartbeat-interval", "0.5", "--eviction-timeout", "10"
    )
    try:
        alice = DeliveryClient(url, "room", TOKEN, "alice", reconnect=False)
        await alice.connect()
        assert await alice.append("kp", b"hello") == 2
        entries = [await alice.next_entry(WAIT) for _ in range(2)]
        assert [(e.entry_type, e.payload) for e in entries] == [(EntryType.JOINED, b""), (EntryType.MESSAGE, b"hello")]
        await alice.close(leave=False)
    finally:
        code, out = await stop_serve(proc)
    assert code == 0
    assert "stopped" in out

    proc, url = await start_serve(db, "--insecure-room-tokens")
    try:
        again = DeliveryClient(url, "room", TOKEN, "alice", resume_from=1, reconnect=False)
        ready = await again.connect()
        assert (ready.head_seq, ready.join_seq) == (2, 0)  # log and presence came back from the file
        entry = await again.next_entry(WAIT)
        assert (entry.seq, entry.payload) == (2, b"hello")
        await again.close()
    finally:
        code, _ = await stop_serve(proc, signal.SIGINT)
    assert code == 0


def test_cli_help_lists_serve_and_rejects_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "serve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["no-such-command"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["serve", "--room-token", "missing-equals"])
    assert "ROOM=TOKEN" in capsys.readouterr().err


def test_serve_rejects_bad_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["serve", "--db", str(tmp_path / "x.db"), "--insecure-room-tokens", "--eviction-timeout", "-1"]
    assert cli.main(args) == 2
    assert "eviction_timeout" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_serve_refuses_to_start_without_credentials(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORANGE_FAST_TOKEN_KEY", raising=False)
    assert cli.main(["serve", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "--token-key" in err and "--insecure-room-tokens" in err
    assert cli.main(["serve", "--db", str(tmp_path / "x.db"), "--room-token", "r=0123456789abcdef"]) == 2
    assert "--insecure-room-tokens" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_token_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = tmp_path / "ed.pem"
    assert cli.main(["token", "--key", str(key), "--generate", "--algorithm", "EdDSA"]) == 0
    public = capsys.readouterr().out
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    assert cli.main(["token", "--key", str(key), "--generate"]) == 1  # never overwrites
    capsys.readouterr()
    assert cli.main(["token", "--key", str(key), "--room", "room", "--client", "alice", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip().encode()
    assert AccessTokenKey(public).verify(token, "room", "alice") is None
    assert cli.main(["token", "--key", str(key), "--room", "room"]) == 2
    assert "--client" in capsys.readouterr().err
    assert cli.main(["token", "--key", str(tmp_path / "missing"), "--room", "r", "--client", "c"]) == 2


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_serve_with_token_key_creates_it_and_checks_tokens(tmp_path: Path) -> None:
    key_file = tmp_path / "token.key"
    proc, url = await start_serve(tmp_path / "cli.db", "--token-key", str(key_file))
    try:
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = AccessTokenKey.from_file(key_file)
        alice = DeliveryClient(url, "room", key.issue("room", "alice"), "alice", reconnect=False)
        await alice.connect()
        impostor = DeliveryClient(url, "room", key.issue("room", "bob"), "alice", reconnect=False)
        with pytest.raises(AuthenticationFailedError):
            await impostor.connect()
        shared = DeliveryClient(url, "room", TOKEN, "carol", reconnect=False)
        with pytest.raises(AuthenticationFailedError):
            await shared.connect()
        await alice.close()
    finally:
        code, output = await stop_serve(proc)
    assert code == 0
    assert f"created a new HS256 token key in {key_file}" in output
