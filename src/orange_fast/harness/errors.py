"""Typed exceptions of :mod:`orange_fast.harness` (the Janus SFU and network-namespace harness)."""

from __future__ import annotations

__all__ = ["HarnessError", "JanusError", "NetnsError"]


class HarnessError(Exception):
    """Base class of every :mod:`orange_fast.harness` failure."""


class JanusError(HarnessError):
    """The Janus harness could not start, or Janus answered a request with an error."""


class NetnsError(HarnessError):
    """A network namespace could not be created, entered or removed."""
