"""Server-wide resource limits of the delivery service: pure bookkeeping, the server does the I/O.

* :class:`ServerLimits`: the caps (connections, per-address connections and HELLO rate, rooms in
  memory, join payload size, overload threshold, log retention).
* :class:`AddressTable`: per-address connection counts and HELLO token buckets, in a table of
  bounded size (so that many addresses cannot grow it without end).
* :class:`OverloadGauge`: event-loop lag samples in, "shed new connections?" out, with hysteresis.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, replace

from .ratelimit import TokenBucket

__all__ = ["AddressTable", "OverloadGauge", "ServerLimits"]


def _check_cap(name: str, value: object, allow_none: bool = True, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{name} must be a positive number" + (" or None" if allow_none else ""))


@dataclass(frozen=True)
class ServerLimits:
    """Caps that keep strangers and load spikes from exhausting one node.

    Attributes:
        max_connections: open WebSocket connections (beyond it: SERVER_BUSY, close 1013).
        max_connections_per_address: open connections per remote IP address (RATE_LIMITED, fatal).
        hellos_per_second_per_address / hello_burst_per_address: HELLO attempts per remote IP
            address (token bucket; beyond it: RATE_LIMITED, fatal, before any check or storage access).
        max_address_entries: size bound of the per-address table (oldest idle entries go first).
        max_rooms: rooms held in memory (a room is in memory while a client is connected to it or
            present in it; beyond it: SERVER_BUSY for a HELLO that needs one more).
        max_join_payload: largest HELLO join payload in bytes (the session layer sends none; a
            KeyPackage fits easily).
        overload_lag: smoothed event-loop lag in seconds above which new connections are shed
            with SERVER_BUSY until it falls below half of it (None: never shed on lag; the
            embedded default, since a loaded test machine would shed its own tests).
        room_retention: seconds after which the log of a room that nobody is present in, and
            that nothing was appended to meanwhile, is deleted from storage (None: keep forever).

    ``None`` disables a cap.  The defaults are those of the embedded API (tests and benchmarks
    run thousands of clients from 127.0.0.1, so there are no per-address caps);
    :meth:`public` gives the defaults of ``orange-fast serve``.
    """

    max_connections: int | None = 20_000
    max_connections_per_address: int | None = None
    hellos_per_second_per_address: float | None = None
    hello_burst_per_address: float = 40.0
    max_address_entries: int = 65_536
    max_rooms: int | None = 20_000
    max_join_payload: int = 4096
    overload_lag: float | None = None
    room_retention: float | None = None

    def __post_init__(self) -> None:
        _check_cap("max_connections", self.max_connections)
        _check_cap("max_connections_per_address", self.max_connections_per_address)
        _check_cap("hellos_per_second_per_address", self.hellos_per_second_per_address)
        _check_cap("hello_burst_per_address", self.hello_burst_per_address, allow_none=False)
        _check_cap("max_address_entries", self.max_address_entries, allow_none=False)
        _check_cap("max_rooms", self.max_rooms)
        _check_cap("max_join_payload", self.max_join_payload, allow_none=False, allow_zero=True)
        _check_cap("overload_lag", self.overload_lag)
        _check_cap("room_retention", self.room_retention)

    @classmethod
    def public(cls, **overrides: object) -> ServerLimits:
        """Defaults for a server reachable by strangers (``orange-fast serve``)."""
        base = cls(
            max_connections=10_000,
            max_rooms=10_000,
            max_connections_per_address=64,
            hellos_per_second_per_address=10.0,
            hello_burst_per_address=40.0,
            overload_lag=0.25,
            room_retention=7 * 24 * 3600.0,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]


class _Address:
    __slots__ = ("connections", "hellos")

    def __init__(self, hellos: TokenBucket | None) -> None:
        self.connections = 0
        self.hellos = hellos


class AddressTable:
    """Per-address connection counts and HELLO buckets.  Time is passed in (seconds, monotonic).

    Entries with no open connection are dropped oldest first once the table holds
    ``max_address_entries`` (so it never holds more than that, or one more than the number of
    addresses with an open connection, which ``max_connections`` bounds); a dropped entry's HELLO
    bucket starts full again when the address returns, which costs at most one burst per eviction
    and keeps the memory bound.
    """

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self._table: collections.OrderedDict[str, _Address] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def _entry(self, address: str, now: float) -> _Address:
        entry = self._table.get(address)
        if entry is not None:
            self._table.move_to_end(address)
            return entry
        self._trim(self.limits.max_address_entries - 1)
        rate = self.limits.hellos_per_second_per_address
        bucket = TokenBucket(rate, self.limits.hello_burst_per_address, now) if rate is not None else None
        entry = self._table[address] = _Address(bucket)
        return entry

    def open(self, address: str, now: float) -> bool:
        """Count a new connection from ``address``; False (and nothing counted) if over the cap."""
        cap = self.limits.max_connections_per_address
        entry = self._entry(address, now)
        if cap is not None and entry.connections >= cap:
            self._forget_if_idle(address, entry)
            return False
        entry.connections += 1
        return True

    def close(self, address: str) -> None:
        """A connection counted by :meth:`open` ended."""
        entry = self._table.get(address)
        if entry is None:
            return
        entry.connections = max(0, entry.connections - 1)
        self._forget_if_idle(address, entry)

    def hello(self, address: str, now: float) -> bool:
        """Take one HELLO from ``address``'s bucket; False if it is empty."""
        entry = self._entry(address, now)
        return entry.hellos is None or entry.hellos.try_consume(1, now)

    def _forget_if_idle(self, address: str, entry: _Address) -> None:
        # Without a HELLO rate there is nothing to remember about an address with no connection.
        if entry.connections == 0 and entry.hellos is None:
            self._table.pop(address, None)
        self._trim(self.limits.max_address_entries)

    def _trim(self, size: int) -> None:
        """Drop the oldest entries without a connection until at most ``size`` remain (if possible)."""
        while len(self._table) > size:
            idle = next((a for a, e in self._table.items() if e.connections == 0), None)
            if idle is None:
                return
            del self._table[idle]


class OverloadGauge:
    """Event-loop lag in, shed decision out.

    The lag is smoothed (exponential moving average, weight ``alpha`` per sample) so that one
    pause (a GC run, a slow disk write) does not shed; sustained lag does.  Shedding starts when
    the average exceeds ``threshold`` and stops when it falls below half of it.
    """

    def __init__(self, threshold: float | None, alpha: float = 0.2) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.threshold = threshold
        self.alpha = alpha
        self.shedding = False
        self.lag = 0.0

    def observe(self, lag: float) -> bool:
        """Record one lag sample (seconds); return whether new connections are shed now."""
        self.lag += self.alpha * (max(0.0, lag) - self.lag)
        if self.threshold is None:
            return False
        if self.lag > self.threshold:
            self.shedding = True
        elif self.lag < self.threshold / 2:
            self.shedding = False
        return self.shedding
