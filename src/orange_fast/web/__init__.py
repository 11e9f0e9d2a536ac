"""The browser client's bundle (TypeScript in ``web/``, built by ``scripts/setup.sh``).

``bundle_path()`` is the one ESM file (``orange-fast.js``) a page imports: SFrame on WebCrypto,
the delivery protocol, the designated-committer session on ts-mls (see ``docs/protocol.md``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLE_NAME", "bundle_path"]

BUNDLE_NAME = "orange-fast.js"


def bundle_path() -> Path | None:
    """Path of the bundled browser client, or None when it was not built (no node/npm at setup)."""
    path = Path(__file__).with_name(BUNDLE_NAME)
    return path if path.is_file() else None
