"""RFC 9420 wire structures: moved into a package, see ``framing``."""

from __future__ import annotations

from ..suite import CipherSuite, SignatureKeyPair, Suite, get_suite  # noqa: F401
from .framing import *  # noqa: F401,F403
from .framing import __all__  # noqa: F401
from .framing import ContentBody, MLSBody, NodeValue, ProposalBody  # noqa: F401
