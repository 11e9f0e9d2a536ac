"""Rebuild the README's benchmark section from the last full benchmark runs.

Run the benchmarks first (they write ``bench/results/``)::

    .venv/bin/orange-fast bench --json bench/results/call-full.json        # also call.md + plots
    .venv/bin/orange-fast bench frames --json bench/results/frames.json --markdown bench/results/frames.md
    .venv/bin/orange-fast bench mls --markdown bench/results/mls.md
    .venv/bin/orange-fast bench session --markdown bench/results/session.md
    python scripts/readme_bench.py

The plots are copied to ``docs/bench/`` (``bench/results/`` is not committed) and the
text between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md is replaced.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "bench"


def _read(name: str) -> str:
    path = RESULTS / name
    if not path.is_file():
        sys.exit(f"readme_bench: {path} is missing; run the benchmarks first (see this script's docstring)")
    return path.read_text().strip()


def _frame_targets() -> str:
    """Issue 2's targets, from frames.json: measured value and verdict per target."""
    data = json.loads(_read("frames.json"))
    rows = []
    gcm = [c for c in data["cases"] if c["suite"] == 4]
    small = [c for c in gcm if c["size"] <= 1024]

    def line(name: str, value: str, ok: bool) -> None:
        rows.append(f"| {name} | {value} | {'met' if ok else '**not met**'} |")

    if small:
        worst_naive = min(c["ratios"]["naive_over_single"] for c in small)
        worst_limit = max(c["ratios"]["single_over_limit"] for c in small)
        line("single call, AES-128-GCM, 64 B–1 KiB: ≥ 5× the `cryptography` SFrame",
             f"{worst_naive:.2f}× (worst size and direction)", worst_naive >= 5)
        line("… and within 1.6× of the C loop", f"{worst_limit:.2f}× (worst)", worst_limit <= 1.6)
    batch = [c for c in data["cases"] if c["size"] <= 65536]
    if batch:
        best_form = [max(c["ratios"]["batch_throughput_vs_limit"], c["ratios"]["packed_throughput_vs_limit"])
                     for c in batch]
        line("batch: ≥ 0.9× the C loop's throughput at every size (best of list/packed form)",
             f"{min(best_form):.2f}× (worst case)", min(best_form) >= 0.9)
    big = [c for c in gcm if c["size"] == 65536 and c["op"] == "encrypt"]
    if big and "bare_over_single" in big[0]["ratios"]:
        r = big[0]["ratios"]["bare_over_single"]
        line("64 KiB single call: ≥ 1.2× `cryptography`'s bare `AESGCM.encrypt`", f"{r:.2f}×", r >= 1.2)
    threads = data.get("threads") or {}
    if threads:
        packed = min(v["packed_2t_over_1t"] for v in threads.values())
        line("two threads, batched: ≥ 1.8× one thread (packed batch, worst size)", f"{packed:.2f}×", packed >= 1.8)
    return "| target (issue 2) | measured | verdict |\n|---|---|---|\n" + "\n".join(rows)


def build() -> str:
    call_md = _read("call.md")
    call = json.loads(_read("call-full.json"))
    by_n = {c["participants"]: c for c in call["results"]}
    n32 = by_n.get(32)
    limit_note = ""
    if n32 is not None:
        r = n32["ratios"]
        limit_note = (
            f"At N = 32, the C-loop limit itself is {r['cpu_naive_over_limit']:.2f}× below the "
            f"`cryptography` baseline, and orange_fast is {r['cpu_ours_over_limit']:.2f}× the limit. "
            "So the ≥ 4× target cannot be met on this CPU. Video bytes dominate the cost, and without "
            "AVX-512 OpenSSL's AES-GCM runs at about 4 GB/s, close to what `cryptography`'s bundled "
            "OpenSSL does on large frames."
        )
    DOCS.mkdir(parents=True, exist_ok=True)
    for png in ("call_cpu.png", "call_latency.png"):
        shutil.copyfile(RESULTS / png, DOCS / png)
    return f"""### Calls: crypto cost per participant (`orange-fast bench`)

Every participant encrypts its own video and Opus audio and decrypts the N−1 other participants' streams. The keys
come from a real MLS group of N members through `session/keys.py`. The same traffic is run, in the same run, with
the straightforward `cryptography` SFrame a user would write (`benchmark/naive.py`) and with a C loop over the same
OpenSSL (the limit).

{call_md}

{limit_note}

![crypto CPU per participant](docs/bench/call_cpu.png)
![added latency per frame](docs/bench/call_latency.png)

### Frames: per-frame cost against `cryptography` and the C-loop limit (`orange-fast bench frames`)

What each column measures:

- *single*: one `encrypt`/`decrypt` call per frame, from a Python loop.
- *into*: `encrypt_into`/`decrypt_into`.
- *batch*: a list of frames per call; *packed*: one array and offsets per call, into a reused output.
- *C-loop limit*: the same per-frame EVP sequence in C over the same OpenSSL.
- *naive*: the straightforward SFrame on `cryptography`'s `AESGCM` (cached cipher object; header and nonce built in
  Python). For suite 1 it uses `Cipher(CTR)` with `hmac`.
- *bare AESGCM*: `AESGCM.encrypt` alone, with no SFrame work.

Batches hold up to 1,024 frames (about 2 MiB).

{_read("frames.md")}

{_frame_targets()}

The small-frame cases are dominated by fixed per-call costs, and shared machines make them the noisiest. On
this VM they move by up to ±30% between runs. For example, single/limit for a 64 B AES-128-GCM encrypt measured
1.6×, 1.9× and 2.7× in three runs within an hour, while the C-loop figure stayed at 170–180 ns. The ratios of the
large frames are stable. The list
batch allocates one `bytes` object per frame while holding the GIL, so it scales less across threads than the packed
form, which writes into a reused array.

### MLS: orange_fast against AWS mls-rs (`orange-fast bench mls`)

{_read("mls.md")}

### Session: join and leave on loopback (`orange-fast bench session`)

{_read("session.md")}"""


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        sys.exit("readme_bench: README.md lacks the bench markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + build() + "\n" + end + tail)
    print("README.md benchmark section rebuilt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
