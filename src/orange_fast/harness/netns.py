"""Network namespaces for the SFU harness: create, run code inside, always clean up.

Janus skips loopback interfaces for ICE, so the harness gives it (and the peers) a
namespace of their own with ``lo`` and a veth pair carrying a namespace-local
loopback-range address (``127.0.0.2`` by default).  Nothing is visible outside the
namespace, and deleting it removes the veth pair too.

Code runs inside with :meth:`Netns.run` (a fresh thread that ``setns``-es into the
namespace: sockets, threads and subprocesses it creates stay there) or
:meth:`Netns.popen` (``ip netns exec``).  Requires root and iproute2.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import secrets
import shutil
import subprocess
import threading
import weakref
from typing import Any, Callable, TypeVar

from .errors import NetnsError

__all__ = ["Netns", "netns_available"]

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000
_live: "weakref.WeakSet[Netns]" = weakref.WeakSet()


def netns_available() -> str | None:
    """``None`` if namespaces can be created here, else the reason why not."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = Netns(prefix="ofprobe")
    try:
        probe.create()
    except NetnsError as exc:
        return f"cannot create a network namespace: {exc}"
    finally:
        probe.delete()
    return None


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise NetnsError(f"'ip {' '.join(args)}' failed: {proc.stderr.strip()}")


class Netns:
    """A network namespace with ``lo`` up and a veth pair holding ``address``."""

    def __init__(self, name: str | None = None, *, address: str = "127.0.0.2", prefix: str = "ofast") -> None:
        if name is None:
            name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise ValueError("invalid namespace name")
        self.name = name
        self.address = address
        self.interface = "ofv0"
        self._created = False

    def __repr__(self) -> str:
        return f"Netns({self.name!r}, address={self.address!r})"

    def __enter__(self) -> "Netns":
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def create(self) -> None:
        """Create the namespace and its interfaces (idempotent).

        Namespaces (and their processes) left behind by a killed run of this harness
        (same prefix, owner process gone) are removed first.
        """
        if self._created:
            return
        sweep_stale(self.name.rsplit("-", 2)[0])
        _ip("netns", "add", self.name)
        self._created = True
        _live.add(self)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "link", "add", self.interface, "type", "veth", "peer", "name", "ofv1")
            _ip("-n", self.name, "addr", "add", f"{self.address}/32", "dev", self.interface)
            _ip("-n", self.name, "link", "set", self.interface, "up")
            _ip("-n", self.name, "link", "set", "ofv1", "up")
        except NetnsError:
            self.delete()
            raise

    def delete(self) -> None:
        """Delete the namespace (and with it the veth pair); never raises."""
        if not self._created:
            return
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20)
        self._created = False
        _live.discard(self)

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen:
        """Start a process inside the namespace."""
        if not self._created:
            raise NetnsError("namespace not created")
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def run(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` in a new thread inside the namespace; return its result or raise its error."""
        if not self._created:
            raise NetnsError("namespace not created")
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                _enter(self.name)
                result["value"] = fn(*args)
            except BaseException as exc:  # handed to the caller
                result["error"] = exc

        thread = threading.Thread(target=target, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise NetnsError(f"code in namespace {self.name} did not finish within {timeout} s")
        if "error" in result:
            raise result["error"]
        return result["value"]


def sweep_stale(prefix: str) -> list[str]:
    """Delete namespaces ``<prefix>-<pid>-<hex>`` whose creating process is gone; return their names."""
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    removed = []
    for line in proc.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != prefix or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, timeout=20)
        for text in pids.stdout.split():
            if text.isdigit():
                try:
                    os.kill(int(text), 9)
                except (ProcessLookupError, PermissionError):
                    pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        removed.append(name)
    return removed


def _enter(name: str) -> None:
    """Move the calling thread into namespace ``name``."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns into {name} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


@atexit.register
def _cleanup() -> None:
    for ns in list(_live):
        ns.delete()
