"""Record an E2EE call *as a member*: join the room's MLS group, subscribe to every publisher
through the SFU, decrypt with the group's SFrame keys and write one file per remote.

* :class:`~.member.Recorder`: the recording member (session half + media half).
* :mod:`.writer`: the files (PyAV, Matroska: H.264 video, Opus audio).
* :mod:`.naming`: files are named from the MLS identity the frames' KIDs name.
* :mod:`.demo`: a recorder beside the ``orange-fast call`` demo (``--record DIR``).
* :mod:`.command`: ``orange-fast record``.

Heavy imports (aiortc, PyAV, MLS) happen inside the functions that need them.
"""

from __future__ import annotations

from .member import Recorder, RecordingError, format_summary

__all__ = ["Recorder", "RecordingError", "format_summary"]
