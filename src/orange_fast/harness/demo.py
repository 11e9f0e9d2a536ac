"""The ``orange-fast call`` demo: N aiortc participants with E2EE through a Janus SFU.

:func:`run_call` starts Janus (Debian's package, in a network namespace the harness
creates; needs root), runs the call with synthetic video and audio, and returns a
summary; :func:`format_summary` renders it for humans.  The CLI wiring lives in
:mod:`orange_fast.harness.command` (``orange-fast call``), which imports this module, never the reverse.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .aio import run_bounded
from .call import ChurnPlan, sfu_call, tone_for
from .errors import JanusError
from .janus import JanusServer, janus_available
from ..rtc.keys import FrameKeys
from ..rtc.transition import TransitionPolicy

__all__ = ["run_call", "summarize", "format_summary"]


def run_call(
    n: int = 3,
    seconds: float = 5.0,
    *,
    videocodec: str = "vp8",
    keys: Sequence[FrameKeys] | None = None,
    safety_numbers: Sequence[str] | None = None,
    before_media: Callable[[], None] | None = None,
    churn: ChurnPlan | None = None,
    transitions: TransitionPolicy | None = None,
) -> dict[str, Any]:
    """Run an ``n``-party call for ``seconds`` and return :func:`summarize`'s summary.

    ``keys`` (one provider per participant, e.g. from ``orange_fast.session``) defaults
    to static demo keys; ``safety_numbers`` are shown per participant when given.
    ``churn`` adds joins, leaves and self-updates (static keys); the summary then has
    ``churn`` (per change and pair) and ``transitions`` (the totals).

    Raises:
        JanusError: Janus or network namespaces are unavailable (the message says why).
    """
    if n < 2:
        raise ValueError("a call needs at least 2 participants")
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    if keys is not None and len(keys) != n:
        raise ValueError("one key provider per participant is needed")
    reason = janus_available()
    if reason is not None:
        raise JanusError(f"cannot run the SFU: {reason}")
    with JanusServer() as server:
        if before_media is not None:
            before_media()
        report = server.netns.run(
            lambda: run_bounded(
                sfu_call(
                    server.url,
                    n=n,
                    seconds=seconds,
                    videocodec=videocodec,
                    keys=list(keys) if keys else None,
                    churn=churn,
                    transitions=transitions,
                ),
                timeout=seconds + 90,
            ),
            timeout=seconds + 120,
        )
    return summarize(report, safety_numbers)


def summarize(report: dict[str, Any], safety_numbers: Sequence[str] | None = None) -> dict[str, Any]:
    """The demo's JSON object: per participant frames sent / decrypted per remote and
    safety number, the keyless observer's decoded frames, and what the SFU saw."""
    participants = []
    for p in report["participants"]:
        remotes = {}
        for remote, data in p["remotes"].items():
            remotes[remote] = {
                "video_frames_decoded": data.get("video_frames", 0),
                "video_frames_verified": data.get("video_valid", 0),
                "audio_frames_decoded": data.get("audio_frames", 0),
                "audio_hz": data.get("audio_hz", 0.0),
                "audio_hz_expected": tone_for(int(remote)),
            }
        recv = [r for r in p["e2ee"]["subscriber"].get("recv", []) if r["codec"]]
        decrypted = sum(r["decrypted"] for r in recv)
        drops: dict[str, int] = {}
        for r in recv:
            for reason, count in r["dropped"].items():
                drops[reason] = drops.get(reason, 0) + count
        encrypted = sum(s["encrypted"] for s in p["e2ee"]["publisher"].get("send", []))
        participants.append(
            {
                "index": p["index"],
                "frames_sent": p["frames_sent"],
                "frames_encrypted": encrypted,
                "frames_decrypted": decrypted,
                "frames_decrypted_per_remote": remotes,
                "frames_dropped": drops,
                "tracks_bound_to_sender": sum(1 for r in recv if r.get("bound_sender") is not None),
                "safety_number": safety_numbers[p["index"]] if safety_numbers else None,
            }
        )
    keyless = report.get("keyless_observer", {})
    extra: dict[str, Any] = {}
    if "churn" in report:
        extra = {"churn": report["churn"]["changes"], "churn_plan": report["churn"]["plan"],
                 "transitions": report["churn"]["transitions"]}
    return {
        "room": report["room"],
        "videocodec": report["videocodec"],
        "seconds": report["elapsed"],
        "participants": participants,
        "keyless_observer": {
            "decoded_frames": keyless.get("decoded_video_frames", 0) + keyless.get("decoded_audio_frames", 0),
        },
        "sfu_view": report.get("sfu_view", {}),
        **extra,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`summarize`'s output."""
    lines = [f"E2EE call through Janus (room {summary['room']}, {summary['videocodec']}, {summary['seconds']:.1f} s)"]
    for p in summary["participants"]:
        sent = p["frames_sent"]
        kind = f" ({p['kind']} {p.get('identity') or ''})".replace(" )", ")") if "kind" in p else ""
        lines.append(
            f"participant {p['index']}{kind}: sent {sent['video']} video + {sent['audio']} audio frames, "
            f"encrypted {p['frames_encrypted']}, decrypted {p['frames_decrypted']}"
            + (f", safety number {p['safety_number']}" if p["safety_number"] else "")
        )
        for remote, r in sorted(p["frames_decrypted_per_remote"].items()):
            # browsers report no picture check or tone; a browser's fake microphone has no expected tone
            verified = f" ({r['video_frames_verified']} verified)" if "video_frames_verified" in r else ""
            tone = f", tone {r['audio_hz']:.0f} Hz" if "audio_hz" in r else ""
            expected = r.get("audio_hz_expected")
            tone += f" (expected {expected:.0f})" if tone and expected is not None else ""
            lines.append(
                f"    from {remote}: {r['video_frames_decoded']} pictures{verified}, "
                f"{r['audio_frames_decoded']} audio frames{tone}"
            )
    lines.append(f"keyless observer decoded {summary['keyless_observer']['decoded_frames']} frames")
    view = summary.get("sfu_view") or {}
    if view:
        lines.append(
            f"SFU forwarded {view['captured_payloads']} payloads to a plain subscriber: "
            f"{view['identical_to_sender_ciphertext']} identical to the senders' SFrame ciphertext, "
            f"{view['plaintext_windows_found']} of {view['plaintext_windows_checked']} plaintext windows found; "
            f"sample {view['sample']}..."
        )
    t = summary.get("transitions")
    if t:
        lines.append(
            f"churn: {t['epoch_changes']} epoch changes, frames lost video {t['frames_lost']['video']} "
            f"audio {t['frames_lost']['audio']}, keyframes forced {t['keyframes_forced']}, dropped {t['dropped']}, "
            f"{t['held_frames']} frames held (p50 {t['hold_ms_p50']} ms, p99 {t['hold_ms_p99']} ms), "
            f"removed members decoded {t['removed_decoded_after_removal']} frames after their removal"
        )
    return "\n".join(lines)
