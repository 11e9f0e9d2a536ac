"""The UDP frame relay (SFU stand-in) forwards to every other registered participant, unchanged."""

from __future__ import annotations

import socket

import pytest

from orange_fast.benchmark.loopback import _start_relay, _stop_relay


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def test_relay_forwards_to_others_only() -> None:
    proc, port = _start_relay()
    relay = ("127.0.0.1", port)
    socks = [_sock() for _ in range(3)]
    try:
        for s in socks:
            s.sendto(b"R", relay)
            assert s.recvfrom(100)[0] == b"R"
        payload = b"M" + bytes(range(256)) * 40
        socks[0].sendto(payload, relay)
        for s in socks[1:]:
            assert s.recvfrom(65536)[0] == payload
        socks[0].settimeout(0.3)
        with pytest.raises(socket.timeout):
            socks[0].recvfrom(65536)
        socks[1].sendto(b"X-unknown", relay)  # ignored, counted as dropped
    finally:
        summary = _stop_relay(proc, port)
        for s in socks:
            s.close()
    assert proc.returncode == 0
    assert summary.splitlines()[-1] == "FORWARDED 2 DROPPED 1"
