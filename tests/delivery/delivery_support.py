"""Shared constants and types of the delivery tests (fixtures are in conftest.py beside this file)."""

from __future__ import annotations

from typing import Awaitable, Callable

from orange_fast.delivery import DeliveryClient, DeliveryServer

TOKEN = b"test-room-token-0123456789abcdef"

ServerFactory = Callable[..., Awaitable[DeliveryServer]]
ClientFactory = Callable[..., Awaitable[DeliveryClient]]
