"""A minimal UDP frame relay: the SFU stand-in of the loopback call benchmark.

Every datagram it receives from a registered participant is forwarded unchanged to every *other* registered
participant (selective forwarding with everyone subscribed to everyone).  It never looks into the payload
beyond the first byte: ``b"R"`` registers the sender's address, ``b"M"`` is media to forward, ``b"Q"`` asks
the relay to stop.  The relay holds no keys and sees only SFrame ciphertext.

Run as its own process::

    python -m orange_fast.benchmark.relay --host 127.0.0.1 --port 0

It prints ``PORT <n>`` on one line of stdout once it is listening, then serves until ``b"Q"``, SIGTERM or
SIGINT.  It binds only the address it is given (use 127.0.0.0/8).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

__all__ = ["RelayProtocol", "REGISTER", "MEDIA", "QUIT", "main"]

REGISTER = 0x52  # b"R"
MEDIA = 0x4D  # b"M"
QUIT = 0x51  # b"Q"


class RelayProtocol(asyncio.DatagramProtocol):
    """Forward media datagrams to every registered address except the sender's."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.peers: list[tuple[str, int]] = []
        self.forwarded = 0
        self.dropped = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data or self.transport is None:
            self.dropped += 1
            return
        kind = data[0]
        if kind == MEDIA:
            send = self.transport.sendto
            for peer in self.peers:
                if peer != addr:
                    send(data, peer)
                    self.forwarded += 1
        elif kind == REGISTER:
            if addr not in self.peers:
                self.peers.append(addr)
            self.transport.sendto(b"R", addr)  # acknowledgement
        elif kind == QUIT:
            if not self.done.done():
                self.done.set_result(None)
        else:
            self.dropped += 1


async def serve(host: str, port: int) -> None:
    """Listen on ``host:port`` and relay until told to stop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, proto = await loop.create_datagram_endpoint(lambda: RelayProtocol(done), local_addr=(host, port))

    def stop() -> None:
        if not done.done():
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            pass
    sock = transport.get_extra_info("socket")
    try:
        import socket

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    except OSError:  # pragma: no cover - best effort
        pass
    print(f"PORT {transport.get_extra_info('sockname')[1]}", flush=True)
    try:
        await done
    finally:
        transport.close()
    print(f"FORWARDED {proto.forwarded} DROPPED {proto.dropped}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orange_fast.benchmark.relay", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("port must be within 0..65535")
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
