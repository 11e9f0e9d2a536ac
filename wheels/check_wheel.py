"""Check a built wheel: manylinux tag, no bundled shared libcrypto, only PyInit_* exported."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def check(wheel: Path) -> list[str]:
    problems = []
    if "manylinux" not in wheel.name and "musllinux" not in wheel.name and sys.platform.startswith("linux"):
        problems.append(f"{wheel.name}: not a manylinux/musllinux wheel")
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        names = zf.namelist()
        bundled = [n for n in names if ".libs/" in n and ("crypto" in n or "ssl" in n)]
        if bundled:
            problems.append(f"bundles shared OpenSSL libraries: {bundled}")
        for name in names:
            if name.endswith(".so"):
                path = Path(zf.extract(name, tmp))
                out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True,
                                     text=True, check=True).stdout
                exported = [line.split()[-1] for line in out.splitlines() if line.split()[1:2] in (["T"], ["D"], ["B"])]
                extra = [s for s in exported if not s.startswith("PyInit_")]
                if extra:
                    problems.append(f"{name} exports more than PyInit_*: {extra[:10]}")
                needed = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                                        check=True).stdout
                if "libcrypto" in needed or "libssl" in needed:
                    problems.append(f"{name} links a shared libcrypto/libssl")
    return problems


def main() -> int:
    problems = []
    for arg in sys.argv[1:]:
        problems += check(Path(arg))
        print(f"checked {Path(arg).name}")
    for p in problems:
        print("wheel check:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
