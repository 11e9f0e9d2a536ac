"""Which VideoRoom events answer no request (harness/janus.py).

A publisher's handle receives "the room's publisher list changed" events at any time; one that
arrived between a publish request and its answer was once taken for the answer (a CI failure:
"Janus sent no answer to the publish offer"). These payloads are Janus 1.x's, as logged then.
"""

from __future__ import annotations

import pytest

from orange_fast.harness.janus import _is_notification

NOTIFICATIONS = [
    {"videoroom": "event", "room": 629454, "publishers": [
        {"id": 4385021791826284, "display": "browser-2", "audio_codec": "opus", "video_codec": "vp8",
         "streams": [{"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "fec": True},
                     {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"}]}]},
    {"videoroom": "event", "room": 1234, "unpublished": 4385021791826284},
    {"videoroom": "event", "room": 1234, "leaving": 4385021791826284},
]
ANSWERS = [
    {"videoroom": "event", "room": 1234, "configured": "ok", "audio_codec": "opus", "video_codec": "vp8"},
    {"videoroom": "joined", "room": 1234, "id": 1, "private_id": 2, "publishers": []},
    {"videoroom": "attached", "room": 1234, "streams": []},
    {"videoroom": "event", "room": 1234, "started": "ok"},
    {"videoroom": "event", "error_code": 426, "error": "No such room"},
    {"videoroom": "event", "room": 1234},
    {},
]


@pytest.mark.parametrize("data", NOTIFICATIONS)
def test_publisher_list_changes_are_notifications(data: dict) -> None:
    assert _is_notification(data)


@pytest.mark.parametrize("data", ANSWERS)
def test_answers_and_errors_are_not_notifications(data: dict) -> None:
    assert not _is_notification(data)
