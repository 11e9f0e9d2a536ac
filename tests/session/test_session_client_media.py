"""Session keys drive the aiortc hooks' framing: Opus/VP8 frames across an epoch change."""

from __future__ import annotations

from pathlib import Path

import pytest
from session_client_support import close_all, start_client, start_server, wait_converged

from orange_fast.rtc.framing import transform_for
from orange_fast.sframe import UnknownKeyError

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_codec_frames_follow_epochs_with_a_grace_period(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db")
    clients = []
    try:
        for name in ("a", "b"):
            clients.append(await start_client(server.url, name))
        await wait_converged(clients)
        a, b = clients
        opus = transform_for("audio/opus")
        vp8 = transform_for("video/VP8")
        gen_a = a.key_generation()
        kid_old = a.send_kid()
        assert kid_old is not None
        old_audio = opus.protect(a.context, kid_old, b"\x01opus-frame")
        old_video = vp8.protect(a.context, kid_old, bytes(range(40)))
        assert opus.unprotect(b.context, old_audio) == (kid_old, b"\x01opus-frame")
        # An epoch change (a joiner): new send KID, new generation (the hooks force a keyframe) ...
        clients.append(await start_client(server.url, "c"))
        await wait_converged(clients)
        kid_new = a.send_kid()
        assert kid_new is not None and kid_new != kid_old and a.key_generation() > gen_a
        # ... frames already in flight under the old KID still decrypt during the grace period ...
        assert vp8.unprotect(b.context, old_video) == (kid_old, bytes(range(40)))
        # ... the old send key is no longer used for new frames, and the newcomer reads new ones only.
        new_audio = opus.protect(a.context, kid_new, b"\x02opus-frame")
        assert opus.unprotect(clients[2].context, new_audio) == (kid_new, b"\x02opus-frame")
        with pytest.raises(UnknownKeyError):
            opus.unprotect(clients[2].context, old_audio)
    finally:
        await close_all(clients)
        await server.stop()
