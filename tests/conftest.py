"""Shared test helpers: where the official vectors live.

The vectors are read from ``../shared/vectors`` beside the project root, or from the
directory named by ``ORANGE_FAST_VECTORS``.  Tests that need a file skip with a clear
reason when it is absent (a fresh clone without ``shared/``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def vectors_dir() -> Path:
    """Directory of the official test vectors (``ORANGE_FAST_VECTORS`` overrides)."""
    env = os.environ.get("ORANGE_FAST_VECTORS")
    if env:
        return Path(env)
    return PROJECT_ROOT.parent / "shared" / "vectors"


def load_vectors(relpath: str) -> Any:
    """Load ``<vectors>/<relpath>`` as JSON, or skip the calling test with the reason."""
    path = vectors_dir() / relpath
    if not path.is_file():
        pytest.skip(
            f"test vectors not found at {path}; set ORANGE_FAST_VECTORS to the shared/vectors directory"
        )
    with path.open("rb") as fh:
        return json.load(fh)
