"""Churn during the demo call (``orange-fast call --churn``): joins, leaves and self-updates.

Used by :func:`orange_fast.harness.call.sfu_call`.  Members (the call's participant records:
``index``, ``keys`` (static demo keys), ``video``/``audio`` tracks, ``sinks`` and ``hooks``
per feed, ``pub_e2ee``) process each commit after their own delay, so receivers see frames of
an epoch they have not reached; :func:`churn_report` counts, per change and per pair of members
present on both sides of it, the frames sent, decoded and dropped around it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..rtc.keys import FrameKeys, StaticFrameKeys
from ..rtc.stats import percentile

__all__ = ["ChurnPlan", "churn_report", "run_churn"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChurnPlan:
    """Epoch changes during a call (``--churn``): joins, leaves and self-updates at given times.

    Each member processes each commit ``U(0, jitter)`` seconds after it is issued, and member
    ``slow`` another ``delay`` seconds later (a slow handshake path): senders switch keys as
    soon as they have processed it, so receivers see frames of an epoch they have not
    reached.  ``window`` seconds after each change the counters are sampled again.
    """

    events: tuple[tuple[float, str], ...]
    delay: float = 0.0
    slow: int = 1
    jitter: float = 0.03
    window: float = 1.2
    seed: int = 13

    @classmethod
    def default(cls, seconds: float, *, delay: float = 0.0) -> ChurnPlan:
        """Seven changes (join, update, leave, update, join, leave, update) spread over ``seconds``."""
        if seconds < 8:
            raise ValueError("a churn call needs at least 8 seconds")
        if not 0 <= delay <= 1.0:
            raise ValueError("the injected delay must be within 0..1 s")
        kinds = ("join", "update", "leave", "update", "join", "leave", "update")
        step = (seconds - 1.5 - 1.4) / len(kinds)
        return cls(tuple((round(1.5 + i * step, 3), k) for i, k in enumerate(kinds)), delay=delay)


def _sample(members: list[Any], feeds: dict[int, int]) -> dict[str, Any]:
    """The counters now: frames each member sent; per (receiver, sender, kind) frames decoded,
    the receive hook's drops by reason and held frames; each sender's forced keyframes."""
    sent = {m.index: (m.video.sent if m.video else 0, m.audio.sent if m.audio else 0) for m in members}
    recv: dict[tuple[int, int, str], dict[str, Any]] = {}
    for m in members:
        for feed, sink in m.sinks:
            if feed in feeds:
                recv.setdefault((m.index, feeds[feed], sink.kind), {})["frames"] = sink.frames
        for feed, hook in m.hooks:
            if feed in feeds:
                snap = hook.stats.snapshot()
                slot = recv.setdefault((m.index, feeds[feed], snap["kind"]), {})
                slot["dropped"] = dict(snap["dropped"])
    keyframes = {
        m.index: sum(s["keyframes_forced_by_key_change"] for s in (m.pub_e2ee.stats()["send"] if m.pub_e2ee else []))
        for m in members
    }
    return {"sent": sent, "recv": recv, "keyframes": keyframes}


def _sample_after(change: dict[str, Any], members: list[Any], feeds: dict[int, int]) -> None:
    change["after"] = _sample(members, feeds)


def _advance(keys: FrameKeys, epoch: int, present: frozenset[int]) -> None:
    try:
        keys.advance_epoch(epoch, members=set(present))  # type: ignore[attr-defined]
    except ValueError:  # pragma: no cover - a member that is already past this epoch
        logger.warning("member could not advance to epoch %d", epoch)


def _expire(keys: FrameKeys, epoch: int) -> None:
    try:
        keys.expire_epoch(epoch)  # type: ignore[attr-defined]
    except ValueError:  # already gone (same low bits) or still current
        pass


async def run_churn(
    plan: ChurnPlan,
    members: list[Any],
    feeds: dict[int, int],
    start: float,
    join: Callable[[int, int, set[int]], Any],
    grace: float = 2.0,
) -> list[dict[str, Any]]:
    """Apply ``plan``'s changes: every present member processes each commit after its own delay."""
    loop = asyncio.get_running_loop()
    rng = random.Random(plan.seed)
    present = {m.index for m in members}
    next_index = max(present) + 1
    epoch = max(k.epochs[-1] for k in (m.keys for m in members) if isinstance(k, StaticFrameKeys))
    changes: list[dict[str, Any]] = []
    for at, kind in plan.events:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - start)))
        change: dict[str, Any] = {"kind": kind, "at": round(time.monotonic() - start, 3)}
        change["before"] = _sample(members, feeds)
        epoch += 1
        after = set(present)
        if kind == "join":
            actor = next_index
            next_index += 1
            after.add(actor)
        elif kind == "leave":
            actor = max(present - {0, plan.slow})
            after.discard(actor)
        else:
            actor = sorted(present)[len(changes) % len(present)]
        change.update(
            {"epoch": epoch, "member": actor, "present_before": sorted(present), "present_after": sorted(after)}
        )
        for m in members:
            if m.index in after and m.index in present:
                delay = rng.uniform(0.0, plan.jitter) + (plan.delay if m.index == plan.slow else 0.0)
                loop.call_later(delay, _advance, m.keys, epoch, frozenset(after))
                loop.call_later(delay + grace, _expire, m.keys, epoch - 1)
        loop.call_later(plan.window, _sample_after, change, members, feeds)
        changes.append(change)
        if kind == "leave":
            leaver = next(m for m in members if m.index == actor)
            if leaver.publisher is not None:
                await asyncio.wait({asyncio.ensure_future(leaver.publisher.close())}, timeout=5)
        elif kind == "join":
            await join(actor, epoch, present)
        present = after
    await asyncio.sleep(max(0.0, plan.window + 0.2 - (time.monotonic() - start - changes[-1]["at"])))
    return changes


def churn_report(
    plan: ChurnPlan, changes: list[dict[str, Any]], members: list[Any], feeds: dict[int, int]
) -> dict[str, Any]:
    """Per change and per ordered pair of members present on both sides of it: the frames the
    sender sent in the window (change time to ``window`` s later), the frames the receiver
    decoded of them, and the frames the receive hook dropped; and the totals (``transitions``).

    Video "decoded" counts the pictures whose drawn index lies in the sender's window;
    audio "decoded" the frames the receiver's track delivered during the window.
    """
    by_index = {m.index: m for m in members}
    lost = {"video": 0, "audio": 0}
    missing_pictures = 0
    dropped: dict[str, int] = {}
    keyframes = 0
    rows = []
    for change in changes:
        before, after = change["before"], change.get("after") or change["before"]
        stayers = sorted(set(change["present_before"]) & set(change["present_after"]))
        pairs = []
        for s in stayers:
            for r in stayers:
                if r == s:
                    continue
                entry: dict[str, Any] = {"sender": s, "receiver": r}
                for k, kind in enumerate(("video", "audio")):
                    b, a = before["recv"].get((r, s, kind), {}), after["recv"].get((r, s, kind), {})
                    s0, s1 = before["sent"].get(s, (0, 0))[k], after["sent"].get(s, (0, 0))[k]
                    drops = {
                        reason: n - b.get("dropped", {}).get(reason, 0)
                        for reason, n in a.get("dropped", {}).items()
                        if n - b.get("dropped", {}).get(reason, 0) > 0
                    }
                    if kind == "video":
                        sink = next(
                            (sk for f, sk in by_index[r].sinks if feeds.get(f) == s and sk.kind == "video"), None
                        )
                        seen = set(sink.valid_indices) if sink is not None else set()
                        missing = [i for i in range(s0, s1) if i not in seen]
                        decoded = (s1 - s0) - len(missing)
                        missing_pictures += len(missing)
                    else:
                        missing = []
                        decoded = a.get("frames", 0) - b.get("frames", 0)
                    entry[kind] = {"sent": s1 - s0, "decoded": decoded, "dropped": sum(drops.values())}
                    if missing:
                        entry[kind]["missing"] = missing[:32]
                    lost[kind] += sum(drops.values())
                    for reason, n in drops.items():
                        dropped[reason] = dropped.get(reason, 0) + n
                pairs.append(entry)
        forced = sum(after["keyframes"].get(i, 0) - before["keyframes"].get(i, 0) for i in after["keyframes"])
        keyframes += forced
        rows.append(
            {key: change[key] for key in ("kind", "at", "epoch", "member", "present_before", "present_after")}
            | {"keyframes_forced": forced, "pairs": pairs}
        )
    holds = [v for m in members for _, h in m.hooks for v in h.stats.snapshot()["hold_ms"]]
    removed = _decoded_after_removal(changes, by_index)
    return {
        "plan": {"events": [list(e) for e in plan.events], "delay_ms": round(plan.delay * 1000), "slow": plan.slow,
                 "jitter_ms": round(plan.jitter * 1000), "window_s": plan.window},
        "changes": rows,
        "transitions": {
            "epoch_changes": len(changes),
            "frames_lost": lost,
            "keyframes_forced": keyframes,
            "dropped": dropped,
            "pictures_missing": missing_pictures,
            "held_frames": len(holds),
            "hold_ms_p50": round(percentile(holds, 0.5), 1),
            "hold_ms_p99": round(percentile(holds, 0.99), 1),
            "removed_decoded_after_removal": removed,
        },
    }


def _decoded_after_removal(changes: list[dict[str, Any]], by_index: dict[int, Any]) -> int:
    """Frames a removed member decrypted under the KID of its removal epoch or any later one."""
    total = 0
    for change in changes:
        if change["kind"] != "leave":
            continue
        leaver = by_index[change["member"]]
        layout = leaver.keys.layout  # type: ignore[attr-defined]
        later = {layout.low_bits(c["epoch"]) for c in changes if c["epoch"] >= change["epoch"]}
        for _, hook in leaver.hooks:
            for kid, n in hook.stats.snapshot()["decrypted_by_kid"].items():
                if layout.epoch_bits_of(int(kid)) in later:
                    total += n
    return total
