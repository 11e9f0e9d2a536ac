"""A recorder beside the ``orange-fast call`` demo (``orange-fast call --record DIR``).

:func:`recording` runs a joined :class:`~.member.Recorder`'s media half inside the Janus
harness's network namespace for the duration of a ``with`` block; :func:`run_recorded_call`
is the whole demo: a room of session clients, the recorder joining it, the aiortc call
through Janus, the recorder leaving (its removal commit observed on the participants).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from .member import Recorder, RecordingError

__all__ = ["recording", "run_recorded_call", "wait_converged"]


@contextlib.contextmanager
def recording(server: Any, recorder: Recorder, sfu_room: int, *, limit: float = 600.0) -> Iterator[None]:
    """Record ``sfu_room`` of the Janus harness ``server`` while the block runs.

    Raises:
        RecordingError: the recorder failed (re-raised when the block ends).
    """
    from ..harness.aio import run_bounded

    stop = threading.Event()
    failure: list[BaseException] = []

    def media() -> None:
        try:
            server.netns.run(
                lambda: run_bounded(recorder.record(server.url, sfu_room, stop=stop), timeout=limit),
                timeout=limit + 30,
            )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=media, name="recorder-media", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(limit + 60)
    if failure:
        raise RecordingError(f"the recorder failed: {type(failure[0]).__name__}: {failure[0]}") from failure[0]


def wait_converged(clients: list[Any], size: int, timeout: float, *, exclude: str | None = None) -> None:
    """Poll (from any thread) until ``clients`` share one epoch and a roster of ``size`` members
    (none named ``exclude``).

    Raises:
        TimeoutError: not converged in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {(c.epoch, c.safety.text if c.safety else None) for c in clients}
        rosters = [[r.identity for r in c.roster] for c in clients]
        if (len(states) == 1 and None not in next(iter(states)) and all(len(r) == size for r in rosters)
                and not any(exclude in r for r in rosters)):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the room did not converge on {size} members within {timeout:.0f} s")


def run_recorded_call(n: int, seconds: float, out_dir: str, *, videocodec: str = "vp8") -> dict[str, Any]:
    """The ``orange-fast call`` demo with a recorder as an extra member; returns the call's
    summary with a ``recorder`` entry (:meth:`Recorder.summary` plus what the participants
    saw after it left).

    Raises:
        JanusError, NetnsError: the SFU cannot run here.
        RecordingError, TimeoutError: the recorder could not join, record or leave.
    """
    from ..harness.aio import run_bounded
    from ..harness.call import sfu_call
    from ..harness.demo import summarize
    from ..harness.errors import JanusError
    from ..harness.janus import JanusServer, janus_available
    from ..harness.session_room import SessionRoom

    if n < 2 or seconds <= 0:
        raise ValueError("a call needs at least 2 participants and seconds > 0")
    reason = janus_available()
    if reason is not None:
        raise JanusError(f"cannot run the SFU: {reason}")
    with SessionRoom(n) as room:
        recorder = Recorder(room.url, room.room, room.token, out_dir)
        recorder.join()
        try:
            wait_converged([*room.clients, recorder.client], n + 1, 60)
            sfu_room = 100000 + secrets.randbelow(800000)
            with JanusServer() as server, recording(server, recorder, sfu_room):
                report = server.netns.run(
                    lambda: run_bounded(
                        sfu_call(server.url, n=n, seconds=seconds, videocodec=videocodec, keys=list(room.clients),
                                 room=sfu_room),
                        timeout=seconds + 90,
                    ),
                    timeout=seconds + 120,
                )
            summary = summarize(report, room.safety_numbers())
            epoch_before = room.clients[0].epoch
        finally:
            recorder.leave()
        wait_converged(room.clients, n, 60, exclude=recorder.identity)
        summary["delivery_service"] = room.url
        summary["epoch"] = epoch_before
        summary["recorder"] = recorder.summary()
        summary["recorder"]["after_leave"] = {
            "epoch": room.clients[0].epoch,
            "roster": [r.identity for r in room.clients[0].roster],
        }
    return summary
