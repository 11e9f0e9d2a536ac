"""SFrame cipher suites (RFC 9605 §4.5, §8.1; suites 6-8 from draft-barnes-sframe-iana-256)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CipherSuite", "SuiteParams"]


@dataclass(frozen=True)
class SuiteParams:
    """Sizes of a suite, in bytes, with the RFC's names."""

    hash_name: str  #: "sha256" or "sha512": HKDF and (CTR suites) HMAC hash
    Nh: int  #: hash output size
    Nka: int  #: AES key size inside a CTR+HMAC key (0 for GCM suites)
    Nk: int  #: AEAD key size (Nka + Nh for CTR+HMAC suites)
    Nn: int  #: nonce size
    Nt: int  #: tag size
    gcm: bool  #: AES-GCM (True) or AES-CTR + HMAC (False)


_PARAMS = {
    1: SuiteParams("sha256", 32, 16, 48, 12, 10, False),
    2: SuiteParams("sha256", 32, 16, 48, 12, 8, False),
    3: SuiteParams("sha256", 32, 16, 48, 12, 4, False),
    4: SuiteParams("sha256", 32, 0, 16, 12, 16, True),
    5: SuiteParams("sha512", 64, 0, 32, 12, 16, True),
    6: SuiteParams("sha512", 64, 32, 96, 12, 10, False),
    7: SuiteParams("sha512", 64, 32, 96, 12, 8, False),
    8: SuiteParams("sha512", 64, 32, 96, 12, 4, False),
}


class CipherSuite(enum.IntEnum):
    """SFrame cipher suites by their IANA ids.

    1-5 are RFC 9605's; 6-8 come from draft-barnes-sframe-iana-256 (AES-256-CTR with
    HMAC-SHA512) and have official vectors too.
    """

    AES_128_CTR_HMAC_SHA256_80 = 1
    AES_128_CTR_HMAC_SHA256_64 = 2
    AES_128_CTR_HMAC_SHA256_32 = 3
    AES_128_GCM_SHA256_128 = 4
    AES_256_GCM_SHA512_128 = 5
    AES_256_CTR_HMAC_SHA512_80 = 6
    AES_256_CTR_HMAC_SHA512_64 = 7
    AES_256_CTR_HMAC_SHA512_32 = 8

    @property
    def params(self) -> SuiteParams:
        """All sizes of this suite."""
        return _PARAMS[int(self)]

    @property
    def Nh(self) -> int:  # noqa: N802 - RFC name
        """Hash output size in bytes."""
        return _PARAMS[int(self)].Nh

    @property
    def Nka(self) -> int:  # noqa: N802
        """AES key size within a CTR+HMAC key (0 for the GCM suites)."""
        return _PARAMS[int(self)].Nka

    @property
    def Nk(self) -> int:  # noqa: N802
        """Key size in bytes; also the MLS exporter length for RFC 9605 §5.2."""
        return _PARAMS[int(self)].Nk

    @property
    def Nn(self) -> int:  # noqa: N802
        """Nonce size in bytes."""
        return _PARAMS[int(self)].Nn

    @property
    def Nt(self) -> int:  # noqa: N802
        """Authentication tag size in bytes."""
        return _PARAMS[int(self)].Nt

    @property
    def is_gcm(self) -> bool:
        """True for the AES-GCM suites, False for AES-CTR + HMAC."""
        return _PARAMS[int(self)].gcm
