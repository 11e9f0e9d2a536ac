"""Publish and subscribe aiortc peer connections in a Janus VideoRoom."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from .errors import JanusError
from .janus import JanusClient, JanusHandle

__all__ = ["create_room", "publish", "subscribe"]


async def create_room(
    client: JanusClient, room: int, *, videocodec: str = "vp8", audiocodec: str = "opus", publishers: int = 16
) -> None:
    """Create a VideoRoom ``room`` (no periodic keyframe requests, generous bitrate)."""
    handle = await client.attach()
    data, _ = await handle.message(
        {
            "request": "create",
            "room": room,
            "publishers": publishers,
            "videocodec": videocodec,
            "audiocodec": audiocodec,
            "bitrate": 1500000,
            "fir_freq": 0,
            "permanent": False,
        }
    )
    if data.get("videoroom") != "created":
        raise JanusError(f"room {room} not created: {data}")
    await client.request({"janus": "detach"}, f"/{client.session_id}/{handle.id}")


async def publish(client: JanusClient, room: int, pc: RTCPeerConnection, display: str) -> tuple[JanusHandle, int]:
    """Join ``room`` as a publisher and publish ``pc``'s tracks; return the handle and feed id."""
    handle = await client.attach()
    data, _ = await handle.message({"request": "join", "ptype": "publisher", "room": room, "display": display})
    if data.get("videoroom") != "joined":
        raise JanusError(f"unexpected answer to join: {data}")
    feed = int(data["id"])
    await pc.setLocalDescription(await pc.createOffer())
    data, jsep = await handle.message(
        {"request": "publish", "display": display}, {"type": "offer", "sdp": pc.localDescription.sdp}
    )
    if jsep is None:
        raise JanusError(f"Janus sent no answer to the publish offer: {data}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type=jsep["type"]))
    await handle.trickle_complete()
    await wait_feed(client, room, feed)
    return handle, feed


async def wait_feed(client: JanusClient, room: int, feed: int, timeout: float = 15.0) -> None:
    """Wait until Janus lists ``feed`` as an active publisher of ``room`` (media is up)."""
    handle = await client.attach()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            data, _ = await handle.message({"request": "listparticipants", "room": room})
            for participant in data.get("participants", []):
                if int(participant.get("id", -1)) == feed and participant.get("publisher"):
                    return
            if loop.time() > deadline:
                raise JanusError(f"feed {feed} did not become active in room {room}")
            await asyncio.sleep(0.05)
    finally:
        await client.request({"janus": "detach"}, f"/{client.session_id}/{handle.id}")


async def subscribe(
    client: JanusClient, room: int, pc: RTCPeerConnection, feeds: list[int]
) -> tuple[JanusHandle, dict[str, int]]:
    """Subscribe ``pc`` to ``feeds`` (all their streams) in ``room``; return the handle and mid -> feed."""
    handle = await client.attach()
    data, jsep = await handle.message(
        {"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": f} for f in feeds]}
    )
    if jsep is None:
        raise JanusError(f"Janus sent no offer to the subscriber: {data}")
    mids = {str(s["mid"]): int(s["feed_id"]) for s in data.get("streams", []) if "feed_id" in s}
    await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type=jsep["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    await handle.message({"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp})
    await handle.trickle_complete()
    return handle, mids


def stream_feeds(data: dict[str, Any]) -> list[int]:
    """Feed ids listed in a VideoRoom 'publishers' answer."""
    return [int(p["id"]) for p in data.get("publishers", [])]
