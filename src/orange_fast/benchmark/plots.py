"""PNG plots of a call-benchmark result (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots", "PLOT_FILES"]

PLOT_FILES = ("call_cpu.png", "call_latency.png")
_STYLE = {
    "ours": {"label": "orange_fast", "color": "#e8710a", "marker": "o"},
    "ours_per_frame": {"label": "orange_fast, per-frame decrypt", "color": "#b5179e", "marker": "D"},
    "naive": {"label": "cryptography (straightforward SFrame)", "color": "#1f77b4", "marker": "s"},
    "limit": {"label": "C-loop limit (same OpenSSL)", "color": "#2ca02c", "marker": "^"},
}


def write_plots(result: dict[str, Any], directory: Path) -> list[Path]:
    """Write the cost and latency plots against participant count; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    rows = result["results"]
    ns = [r["participants"] for r in rows]
    cfg = result["config"]
    subtitle = (f"{cfg['sframe_suite_name']}, video {cfg['traffic']['video_bitrate'] / 1e6:g} Mbit/s "
                f"@ {cfg['traffic']['video_fps']:g} fps + Opus {cfg['traffic']['audio_fps']:g} fps per sender")
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for name, st in _STYLE.items():
        ys = [r["contenders"][name]["cpu_us_per_media_s"]["total"] for r in rows]
        ax.plot(ns, ys, marker=st["marker"], color=st["color"], label=st["label"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("participants in the call (N)")
    ax.set_ylabel("crypto CPU per participant\n(µs per second of media)")
    ax.set_title("SFrame cost per participant\n" + subtitle, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = directory / PLOT_FILES[0]
    fig.savefig(path)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for name, st in _STYLE.items():
        p50 = [r["contenders"][name]["latency_us"]["total"]["p50"] for r in rows]
        p99 = [r["contenders"][name]["latency_us"]["total"]["p99"] for r in rows]
        ax.plot(ns, p99, marker=st["marker"], color=st["color"], label=st["label"] + " p99")
        ax.plot(ns, p50, marker=st["marker"], color=st["color"], linestyle="--", alpha=0.6,
                label=st["label"] + " p50")
    ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="target p99 at N=64: 50 µs")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("participants in the call (N)")
    ax.set_ylabel("added latency per frame, encrypt + decrypt (µs)")
    ax.set_title("Added latency per frame (decrypt = receiver's tick batch)\n" + subtitle, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = directory / PLOT_FILES[1]
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written
