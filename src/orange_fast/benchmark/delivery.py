"""``orange-fast bench delivery``: the delivery service under load, SQLite vs PostgreSQL, 1-3 nodes.

Each case starts ``nodes`` real ``orange-fast serve`` processes on one store (a SQLite file, or a
database on a PostgreSQL server this benchmark starts in a temp folder, fsync on), connects
``clients`` :class:`~orange_fast.delivery.DeliveryClient` objects from this process in rooms of 8
(spread round-robin over the nodes, each given every node's URL), and makes every client append
one 200-500 B message per second for ``duration`` seconds.  Measured:

* clients held (connected at the end), appends/s acknowledged, append errors;
* append→delivery latency p50/p99: from just before the APPEND to the ENTRY at every receiver
  (this process's clock; the load generator shares the machine's cores with the nodes);
* RSS per connection (node RSS growth / its connections) and CPU per node (cores);
* with ``kill``: one node is killed with SIGKILL halfway; its clients fail over to the others and
  resume.  Afterwards every acknowledged append is looked up in the store: lost ones (must be 0)
  and duplicates (must be 0) are counted; reconnection time p50/p99 is from the kill to READY.

Everything listens on 127.0.0.1.  Load is bounded (``MAX_CLIENTS`` clients, ``MAX_DURATION`` s).
The components (:class:`NodeProcess`, :class:`Load`) are also used by the fault tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..delivery import DeliveryClient, LogEntry

__all__ = [
    "DeliveryCase",
    "Load",
    "NodeProcess",
    "format_delivery_table",
    "run_delivery_bench",
    "run_delivery_case",
    "verify_acked",
]

MAX_CLIENTS = 5000
MAX_DURATION = 300.0
ROOM_SIZE = 8
TOKEN = b"orange-fast-bench-delivery-token"
_HEADER = struct.Struct(">IId")  # client index, counter, send time (monotonic)
_KIND = "bench"


def _load_test_flags() -> tuple[str, ...]:
    """``serve`` flags for a load test from 127.0.0.1, where this version of ``serve`` has them.

    Shared room tokens (the generator's clients all know the room token), no per-address caps
    (every client comes from 127.0.0.1) and no overload shedding (the benchmark measures where
    latency runs away).
    """
    import argparse

    from ..delivery import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    known = {option for action in parser._actions for option in action.option_strings}
    wanted = (("--insecure-room-tokens",), ("--max-connections-per-address", "0"), ("--hellos-per-second", "0"),
              ("--overload-lag", "0"))
    return tuple(part for flag in wanted if flag[0] in known for part in flag)


class NodeProcess:
    """One ``orange-fast serve`` process (started with ``--port 0``; :attr:`url` parsed from its banner)."""

    def __init__(self, db: str, *, eviction_timeout: float = 15.0, heartbeat_interval: float = 5.0,
                 extra: tuple[str, ...] = ()) -> None:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orange_fast.cli", "serve", "--host", "127.0.0.1", "--port", "0", "--db", db,
             "--log-level", "WARNING", "--eviction-timeout", str(eviction_timeout),
             "--heartbeat-interval", str(heartbeat_interval), "--rate-messages", "1000", *_load_test_flags(), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (ws://127\.0\.0\.1:\d+)", line)
        if match is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"delivery node did not start: {line!r}")
        self.url = match.group(1)
        self.pid = self.proc.pid

    def __repr__(self) -> str:
        return f"NodeProcess(pid={self.pid}, url={self.url!r})"

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def kill(self) -> None:
        """SIGKILL, as a machine failure would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children, plus children it already reaped (PostgreSQL's backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid:
            total += sum(int(x) for x in fields[11:15]) / tick
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _room_of(index: int) -> str:
    return f"bench-room-{index // ROOM_SIZE}"


@dataclass
class Load:
    """``clients`` DeliveryClients in rooms of 8, appending ``rate`` messages per second each.

    Client ``i`` gets every URL, starting with ``urls[i % len(urls)]`` (``placement="spread"``: every
    room on every node) or with its room's node (``"room"``: a room on one node, as a load balancer
    routing by room would do), and ``retry_appends`` (so a
    lost acknowledgement is retried with the same request id).  ``absent`` extra clients (one per
    room, at most) connect to ``urls[0]`` only, without reconnection, and never append: when that
    node dies they stay away and must be evicted.
    """

    urls: list[str]
    clients: int
    rate: float = 1.0
    absent: int = 0
    placement: str = "spread"
    connect_batch: int = 50
    seed: int = 1
    latencies: list[float] = field(default_factory=list)
    acked: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    errors: int = 0
    sent: int = 0
    _clients: list[DeliveryClient] = field(default_factory=list)
    _absent: list[DeliveryClient] = field(default_factory=list)
    _stop: asyncio.Event | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def _on_entry(self, entry: LogEntry) -> None:
        if entry.kind == _KIND and len(entry.payload) >= _HEADER.size:
            sent = _HEADER.unpack_from(entry.payload)[2]
            self.latencies.append(time.monotonic() - sent)

    async def connect(self) -> None:
        """Connect every client (in batches, so the nodes are not hit by thousands of HELLOs at once)."""
        n = len(self.urls)
        for start in range(0, self.clients, self.connect_batch):
            batch = []
            for i in range(start, min(self.clients, start + self.connect_batch)):
                k = (i // ROOM_SIZE if self.placement == "room" else i) % n
                urls = self.urls[k:] + self.urls[:k]
                batch.append(DeliveryClient(urls, _room_of(i), TOKEN, f"c{i}", on_entry=self._on_entry,
                                            retry_appends=True, backoff_initial=0.05, backoff_max=1.0,
                                            connect_timeout=10.0))
            await asyncio.gather(*(c.connect() for c in batch))
            self._clients.extend(batch)
        for k in range(min(self.absent, (self.clients + ROOM_SIZE - 1) // ROOM_SIZE)):
            client = DeliveryClient(self.urls[0], _room_of(k * ROOM_SIZE), TOKEN, f"absent{k}", reconnect=False)
            await client.connect()
            self._absent.append(client)

    @property
    def absent_ids(self) -> list[tuple[str, str]]:
        return [(c.room, c.client_id) for c in self._absent]

    def start(self) -> None:
        """Start appending (each client at a random phase of its period)."""
        self._stop = asyncio.Event()
        rng = random.Random(self.seed)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._appender(i, c, rng.random(), rng.randrange(1 << 30)))
                       for i, c in enumerate(self._clients)]

    async def _appender(self, index: int, client: DeliveryClient, phase: float, seed: int) -> None:
        assert self._stop is not None
        rng = random.Random(seed)
        period = 1.0 / self.rate
        loop = asyncio.get_running_loop()
        next_at = loop.time() + phase * period
        counter = 0
        while not self._stop.is_set():
            delay = next_at - loop.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    return
                except asyncio.TimeoutError:
                    pass
            next_at = max(next_at + period, loop.time())
            counter += 1
            header = _HEADER.pack(index, counter, time.monotonic())
            payload = header + os.urandom(rng.randrange(200, 501) - _HEADER.size)
            self.sent += 1
            try:
                seq = await client.append(_KIND, payload, timeout=30.0)
            except Exception:  # noqa: BLE001 - counted: refusals, timeouts, a client that ended
                self.errors += 1
                continue
            self.acked[index, counter] = (client.room, seq)

    async def stop(self) -> None:
        """Stop appending (waits for appends in flight)."""
        if self._stop is not None:
            self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.stop()
        await asyncio.gather(*(c.close(leave=False, timeout=2.0) for c in self._clients + self._absent),
                             return_exceptions=True)

    def held(self) -> int:
        return sum(1 for c in self._clients if c.connected)

    def clients_on(self, url: str) -> list[DeliveryClient]:
        return [c for c in self._clients if c.connected and c.url == url]

    async def reconnection_times(self, moved: list[DeliveryClient], since: float, timeout: float) -> list[float]:
        """Seconds from ``since`` (monotonic) until each of ``moved`` is READY again (polled every 5 ms)."""
        before = {id(c): c.connections for c in moved}
        times: dict[int, float] = {}
        deadline = time.monotonic() + timeout
        while len(times) < len(moved) and time.monotonic() < deadline:
            now = time.monotonic()
            for c in moved:
                if id(c) not in times and c.connections > before[id(c)] and c.connected:
                    times[id(c)] = now - since
            await asyncio.sleep(0.005)
        return sorted(times.values())


async def verify_acked(store: Any, load: Load) -> tuple[int, int]:
    """(lost, duplicated): acknowledged appends missing from the store, and payloads stored twice."""
    lost = duplicated = 0
    rooms = sorted({room for room, _ in load.acked.values()})
    for room in rooms:
        entries = await store.read(room, 0, 1_000_000)
        by_seq = {e.seq: e for e in entries}
        seen: dict[tuple[int, int], int] = {}
        for e in entries:
            if e.kind == _KIND:
                key = _HEADER.unpack_from(e.payload)[:2]
                seen[key] = seen.get(key, 0) + 1
        duplicated += sum(n - 1 for n in seen.values() if n > 1)
        for key, (r, seq) in load.acked.items():
            if r != room:
                continue
            entry = by_seq.get(seq)
            if entry is None or entry.kind != _KIND or tuple(_HEADER.unpack_from(entry.payload)[:2]) != key:
                lost += 1
    return lost, duplicated


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class DeliveryCase:
    store: str  # "sqlite" or "postgresql"
    nodes: int
    clients: int
    duration: float = 20.0
    kill: bool = False
    placement: str = "room"
    durable: bool = True
    """False: SQLite ``synchronous=NORMAL`` (PostgreSQL's fsync is set when its server starts)."""


async def _run_case_async(case: DeliveryCase, dbs: list[str], progress: Callable[[str], None],
                          db_pid: int | None) -> dict[str, Any]:
    extra = ("--synchronous", "NORMAL") if case.store == "sqlite" and not case.durable else ()
    nodes = [NodeProcess(dbs[0], eviction_timeout=15.0, heartbeat_interval=5.0, extra=extra)
             for _ in range(case.nodes)]
    load = Load([n.url for n in nodes], case.clients, placement=case.placement)
    try:
        idle_rss = [n.rss_bytes() for n in nodes]
        t0 = time.monotonic()
        await load.connect()
        connect_s = time.monotonic() - t0
        per_node = {n.url: len(load.clients_on(n.url)) for n in nodes}
        progress(f"{case.store} nodes={case.nodes} clients={case.clients}: connected in {connect_s:.1f}s, loading")
        cpu0 = [n.cpu_seconds() for n in nodes]
        db_cpu0 = tree_cpu_seconds(db_pid) if db_pid else 0.0
        gen_cpu0 = time.process_time()
        load.start()
        await asyncio.sleep(case.duration / 2 if case.kill else 2.0)  # warm-up (kill: first half)
        result: dict[str, Any] = {}
        if case.kill:
            victim = nodes[0]
            moved = load.clients_on(victim.url)
            kill_at = time.monotonic()
            victim.kill()
            times = await load.reconnection_times(moved, kill_at, timeout=max(10.0, case.duration / 2))
            result.update(killed_clients=len(moved), reconnected=len(times),
                          reconnect_p50_ms=_ms(_percentile(times, 50)), reconnect_p99_ms=_ms(_percentile(times, 99)))
            await asyncio.sleep(max(0.0, case.duration / 2 - (time.monotonic() - kill_at)))
        else:
            load.latencies.clear()
            sent0, t1 = len(load.acked), time.monotonic()
            await asyncio.sleep(case.duration)
            result["appends_per_s"] = round((len(load.acked) - sent0) / (time.monotonic() - t1), 1)
        elapsed = time.monotonic() - t0 - connect_s
        live = [n for n in nodes if n.proc.poll() is None]
        result.update(
            store=case.store, nodes=case.nodes, clients=case.clients, held=load.held(),
            append_errors=load.errors,
            latency_p50_ms=_ms(_percentile(load.latencies, 50)), latency_p99_ms=_ms(_percentile(load.latencies, 99)),
            cpu_per_node=[round((n.cpu_seconds() - c) / elapsed, 2) for n, c in zip(nodes, cpu0) if n in live],
            generator_cpu=round((time.process_time() - gen_cpu0) / elapsed, 2),
            db_cpu=round((tree_cpu_seconds(db_pid) - db_cpu0) / elapsed, 2) if db_pid else None,
            placement=case.placement if case.nodes > 1 else "-",
            rss_per_connection_kb=round(sum(max(0, n.rss_bytes() - r) for n, r in zip(nodes, idle_rss) if n in live)
                                        / max(1, sum(per_node[n.url] for n in live)) / 1024, 1),
        )
        await load.stop()
        if case.kill:
            from ..delivery.pgstorage import PostgresStorage

            store = PostgresStorage(dbs[0], min_connections=1, max_connections=2)
            await store.open()
            try:
                result["acked"] = len(load.acked)
                result["acked_lost"], result["duplicates"] = await verify_acked(store, load)
            finally:
                await store.close()
        return result
    finally:
        try:
            await asyncio.wait_for(load.close(), 60)
        except asyncio.TimeoutError:
            pass
        for n in nodes:
            n.stop()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def run_delivery_case(case: DeliveryCase, db: str, progress: Callable[[str], None] = lambda _: None,
                      db_pid: int | None = None) -> dict[str, Any]:
    """Run one case against ``db`` (a SQLite path or a PostgreSQL URL; ``db_pid``: its postmaster, for CPU)."""
    if not 0 < case.clients <= MAX_CLIENTS or not 0 < case.duration <= MAX_DURATION or not 1 <= case.nodes <= 3:
        raise ValueError(f"need 0 < clients <= {MAX_CLIENTS}, 0 < duration <= {MAX_DURATION}, 1 <= nodes <= 3")
    if case.store == "sqlite" and case.nodes != 1:
        raise ValueError("a SQLite file has one writer: one node")
    if case.placement not in ("room", "spread"):
        raise ValueError("placement must be 'room' or 'spread'")
    return asyncio.run(_run_case_async(case, [db], progress, db_pid))


def run_delivery_bench(
    clients: tuple[int, ...], nodes: tuple[int, ...], stores: tuple[str, ...], duration: float, kill: bool,
    progress: Callable[[str], None] = lambda _: None, durable: bool = True, placements: tuple[str, ...] = ("room",),
) -> dict[str, Any]:
    """Every (store, nodes, clients) case (SQLite: one node only), plus kill -9 cases; one PostgreSQL server.

    ``durable=False`` is a diagnostic (no fsync: PostgreSQL ``fsync=off``, SQLite ``NORMAL``): it shows
    where the CPU, rather than the disk's commit rate, is the limit.
    """
    from ..delivery.pglocal import LocalPostgres

    results: list[dict[str, Any]] = []
    pg: LocalPostgres | None = None
    databases = iter(range(1, 1_000_000))
    tmp = Path(tempfile.mkdtemp(prefix="orange-fast-bench-delivery-"))
    try:
        for store in stores:
            for n in nodes:
                if store == "sqlite" and n != 1:
                    continue
                for c in clients:
                    for placement in placements if n > 1 else placements[:1]:
                        if store == "postgresql":
                            if pg is None:
                                pg = LocalPostgres(fsync=durable)
                                pg.init()
                                pg.start()
                            db = pg.create_database(f"bench{next(databases)}")
                        else:
                            db = str(tmp / f"bench{next(databases)}.db")
                        case = DeliveryCase(store, n, c, duration, placement=placement, durable=durable)
                        pg_pid = pg.pid if pg and store != "sqlite" else None
                        results.append(run_delivery_case(case, db, progress, pg_pid))
                        progress(f"done: {results[-1]}")
        if kill and "postgresql" in stores:
            for n in sorted(x for x in nodes if x >= 2):
                for c in clients:
                    assert pg is not None
                    db = pg.create_database(f"bench{next(databases)}")
                    results.append(run_delivery_case(
                        DeliveryCase("postgresql", n, c, duration, kill=True, placement=placements[0], durable=durable),
                        db, progress, pg.pid))
                    progress(f"done: {results[-1]}")
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"cases": results, "cpus": os.cpu_count(), "room_size": ROOM_SIZE, "rate_per_client": 1.0,
            "duration": duration, "durable": durable}


def format_delivery_table(result: dict[str, Any]) -> str:
    """Markdown tables: steady load, then kill -9."""
    def f(v: Any) -> str:
        return "-" if v is None else str(v)

    lines = [
        (f"Delivery service, rooms of {result['room_size']}, one 200-500 B append per client per second, "
         f"{result['duration']:g} s per case, {result['cpus']} cores shared by nodes, PostgreSQL and load generator"
         + ("." if result.get("durable", True) else "; NOT DURABLE (no fsync): a CPU diagnostic.")),
        "",
        ("| store | nodes | placement | clients | held | appends/s | p50 ms | p99 ms | CPU per node | PostgreSQL CPU "
         "| generator CPU | RSS/conn KB | errors |"),
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["cases"]:
        if "killed_clients" in r:
            continue
        lines.append(f"| {r['store']} | {r['nodes']} | {r['placement']} | {r['clients']} | {r['held']} | "
                     f"{f(r.get('appends_per_s'))} | {f(r['latency_p50_ms'])} | {f(r['latency_p99_ms'])} | "
                     f"{r['cpu_per_node']} | {f(r['db_cpu'])} | {r['generator_cpu']} | {r['rss_per_connection_kb']} | "
                     f"{r['append_errors']} |")
    kills = [r for r in result["cases"] if "killed_clients" in r]
    if kills:
        lines += [
            "",
            "kill -9 of one node halfway (clients fail over to the others and resume):",
            "",
            "| nodes | clients | clients moved | reconnected | reconnect p50 / p99 ms | acked | acked lost "
            "| duplicates |",
            "|---:|---:|---:|---:|---|---:|---:|---:|",
        ]
        for r in kills:
            lines.append(f"| {r['nodes']} | {r['clients']} | {r['killed_clients']} | {r['reconnected']} | "
                         f"{f(r['reconnect_p50_ms'])} / {f(r['reconnect_p99_ms'])} | {r['acked']} | "
                         f"{r['acked_lost']} | {r['duplicates']} |")
    return "\n".join(lines)
