"""Where the official vectors live (``tests/`` is on sys.path via pytest's ``pythonpath``).

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


def missing_reason(relpath: str) -> str:
    """The skip reason used when a vector file is absent."""
    return (
        f"test vectors not found at {vectors_dir() / relpath}; "
        "set ORANGE_FAST_VECTORS to the shared/vectors directory"
    )


def read_vectors(relpath: str) -> Any | None:
    """Load ``<vectors>/<relpath>`` as JSON, or return None when it is absent.

    For module-level parametrisation: pair it with ``skip_if_missing(relpath)``.
    """
    path = vectors_dir() / relpath
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return json.load(fh)


def skip_if_missing(relpath: str) -> pytest.MarkDecorator:
    """A skip mark for tests that need ``relpath``."""
    return pytest.mark.skipif(
        not (vectors_dir() / relpath).is_file(), reason=missing_reason(relpath)
    )


def load_vectors(relpath: str) -> Any:
    """Load ``<vectors>/<relpath>`` as JSON, or skip the calling test with the reason."""
    data = read_vectors(relpath)
    if data is None:
        pytest.skip(missing_reason(relpath))
    return data
