"""``orange-fast bench delivery``: argument checks and the table (the load machinery itself is exercised by
tests/delivery/test_delivery_faults.py with real nodes and a real PostgreSQL)."""

from __future__ import annotations

import pytest

from orange_fast import cli
from orange_fast.benchmark.delivery import (
    DeliveryCase,
    format_delivery_table,
    run_delivery_case,
)


@pytest.mark.parametrize("args", [
    ["--clients", "0"], ["--clients", "6000"], ["--nodes", "4"], ["--stores", "redis"], ["--duration", "1000"],
    ["--placement", "random"],
])
def test_bad_arguments_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "delivery", *args]) == 2
    assert "orange-fast bench delivery" in capsys.readouterr().err


def test_bad_cases_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="one writer"):
        run_delivery_case(DeliveryCase("sqlite", 2, 8, 1.0), "/nonexistent/x.db")
    with pytest.raises(ValueError, match="placement"):
        run_delivery_case(DeliveryCase("postgresql", 2, 8, 1.0, placement="x"), "postgresql://127.0.0.1:1/x")


def test_table_lists_steady_and_kill_cases() -> None:
    steady = {"store": "postgresql", "nodes": 2, "placement": "room", "clients": 16, "held": 16,
              "appends_per_s": 16.0, "latency_p50_ms": 2.0, "latency_p99_ms": 9.0, "cpu_per_node": [0.1, 0.1],
              "db_cpu": 0.05, "generator_cpu": 0.02, "rss_per_connection_kb": 30.0, "append_errors": 0}
    kill = dict(steady, killed_clients=8, reconnected=8, reconnect_p50_ms=150.0, reconnect_p99_ms=200.0,
                acked=40, acked_lost=0, duplicates=0)
    text = format_delivery_table({"cases": [steady, kill], "cpus": 2, "room_size": 8, "duration": 5.0,
                                  "durable": False})
    assert "NOT DURABLE" in text
    assert "| postgresql | 2 | room | 16 | 16 | 16.0 | 2.0 | 9.0 | [0.1, 0.1] | 0.05 | 0.02 | 30.0 | 0 |" in text
    assert "| 2 | 16 | 8 | 8 | 150.0 / 200.0 | 40 | 0 | 0 |" in text
