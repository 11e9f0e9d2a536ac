"""Hooks for tests and benchmarks that need a client to fail the way a real one does.

Not part of the session API: an application ends a session with
:meth:`~.client.SessionClient.leave`.
"""

from __future__ import annotations

from .client import SessionClient

__all__ = ["crash"]


async def crash(client: SessionClient) -> None:
    """Stop ``client`` abruptly, as a killed process would: no BYE, so the delivery
    service evicts it after its heartbeat timeout."""
    await client._shutdown(leave=False, timeout=1.0)  # the hook this module exists for
