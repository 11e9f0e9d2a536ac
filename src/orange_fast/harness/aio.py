"""A bounded ``asyncio.run`` for calls: a stuck task can delay shutdown, never hang it."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, TypeVar

__all__ = ["run_bounded"]

T = TypeVar("T")


def run_bounded(coro: Coroutine[Any, Any, T], timeout: float, *, shutdown_timeout: float = 5.0) -> T:
    """Run ``coro`` in a fresh event loop, at most ``timeout`` seconds.

    Unlike :func:`asyncio.run`, leftover tasks (aiortc keeps several per peer
    connection) get ``shutdown_timeout`` seconds to finish after cancellation instead
    of an unbounded wait.

    Raises:
        asyncio.TimeoutError: ``coro`` did not finish in time.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=shutdown_timeout))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
