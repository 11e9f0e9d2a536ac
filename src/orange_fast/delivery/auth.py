"""Who may enter which room as which client: signed access tokens, or (insecure) shared room tokens.

The HELLO frame carries one opaque token (1-255 bytes).  An :class:`Authenticator` decides, in two
steps, whether the HELLO may proceed:

1. :meth:`Authenticator.authenticate` is pure (no I/O, no state): it checks the token against the
   HELLO's room and client id.  The server calls it before touching storage, so a stranger's junk
   HELLO costs one signature check and nothing else: no room, no disk write, no lasting memory.
2. :meth:`Authenticator.room_access` is given the room's stored token hash (``None`` if the room
   does not exist) and says whether to enter, to create the room first, or to refuse.

Two implementations:

* :class:`AccessTokens` (secure, what ``orange-fast serve`` uses): per-client signed JWTs (HS256 or
  EdDSA/Ed25519) with claims ``room``, ``sub`` (the client id), ``nbf`` and ``exp``.  A client id
  can only be used, and so superseded, by the holder of a token issued for that id and room; a room
  is created only by a valid token for it.  Issue tokens with :meth:`AccessTokenKey.issue` or
  ``orange-fast token``.
* :class:`TokenPolicy` (insecure shared room tokens): every member holds the room token, so any
  member can connect under any other member's client id.  Kept for tests, demos and embedded use.

Tokens are never logged, stored or put in exception messages.
"""

from __future__ import annotations

import abc
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import protocol as P
from .entry import check_id
from .errors import ErrorCode
from .storage import token_hash

__all__ = [
    "KEY_ENV_VAR",
    "MAX_CLOCK_SKEW",
    "Access",
    "AccessTokenKey",
    "AccessTokens",
    "Authenticator",
    "Refusal",
    "TokenPolicy",
]

KEY_ENV_VAR = "ORANGE_FAST_TOKEN_KEY"
"""Environment variable that may hold the token key itself (same text as a key file)."""

MAX_CLOCK_SKEW = 30.0
"""Seconds of leeway on ``nbf``/``exp`` for clocks of issuer and server that disagree a little."""

_MIN_SECRET = 32
_HS256 = "HS256"
_EDDSA = "EdDSA"


@dataclass(frozen=True)
class Refusal:
    """Why a HELLO is refused: the ERROR code and a short detail (never a secret)."""

    code: ErrorCode
    detail: str


@dataclass(frozen=True)
class Access:
    """The outcome of :meth:`Authenticator.room_access`.

    Exactly one of: ``refusal`` set (refuse), ``create_hash`` set (create the room with this token
    hash, then enter), or neither (enter the existing room).
    """

    refusal: Refusal | None = None
    create_hash: bytes | None = None


class Authenticator(abc.ABC):
    """Decides whether a HELLO may enter its room under its client id."""

    insecure: bool = False
    """True if one member can impersonate another (shared room tokens)."""

    @abc.abstractmethod
    def authenticate(self, hello: P.Hello) -> Refusal | None:
        """Pure check of the HELLO's token (no I/O, no state change); None if it passes."""

    @abc.abstractmethod
    def room_access(self, hello: P.Hello, stored_hash: bytes | None) -> Access:
        """Given the room's stored token hash (None: no such room), enter, create or refuse."""


@dataclass(frozen=True)
class TokenPolicy(Authenticator):
    """INSECURE shared room tokens: who may enter which room, by one token per room.

    * Rooms listed in ``tokens`` accept exactly that token (this overrides a stored token).
    * Other rooms that exist in the storage accept the token stored when they were created.
    * A HELLO for a room that does not exist creates it, with the HELLO's token as the room
      token, if ``allow_room_creation`` and the token has at least ``min_token_length`` bytes;
      otherwise it is refused with ROOM_NOT_ALLOWED.

    Every member holds the room token, so any member can connect as any other member's client
    id (and supersede it): use :class:`AccessTokens` wherever members do not trust each other.
    Tokens are compared in constant time on their SHA-256; they are never logged or stored.
    """

    tokens: Mapping[str, bytes] = field(default_factory=dict)
    allow_room_creation: bool = True
    min_token_length: int = 16
    insecure = True

    def __post_init__(self) -> None:
        hashes: dict[str, bytes] = {}
        for room, token in dict(self.tokens).items():
            check_id(room, "room id")
            if not isinstance(token, bytes) or not 1 <= len(token) <= P.MAX_TOKEN_LENGTH:
                raise ValueError("configured tokens must be 1-255 bytes")
            hashes[room] = token_hash(token)
        object.__setattr__(self, "_hashes", hashes)
        if not isinstance(self.min_token_length, int) or not 1 <= self.min_token_length <= P.MAX_TOKEN_LENGTH:
            raise ValueError("min_token_length must be in [1, 255]")

    def __repr__(self) -> str:
        return (
            f"TokenPolicy(configured_rooms={sorted(self.tokens)}, allow_room_creation={self.allow_room_creation}, "
            f"min_token_length={self.min_token_length})"
        )

    def configured_hash(self, room: str) -> bytes | None:
        """The SHA-256 of the configured token of ``room``, if any."""
        return self._hashes.get(room)  # type: ignore[attr-defined, no-any-return]

    def authenticate(self, hello: P.Hello) -> Refusal | None:
        configured = self.configured_hash(hello.room)
        if configured is not None and not hmac.compare_digest(configured, token_hash(hello.token)):
            return Refusal(ErrorCode.AUTH_FAILED, "wrong room token")
        return None

    def room_access(self, hello: P.Hello, stored_hash: bytes | None) -> Access:
        offered = token_hash(hello.token)
        configured = self.configured_hash(hello.room)
        if configured is not None:
            if not hmac.compare_digest(configured, offered):
                return Access(Refusal(ErrorCode.AUTH_FAILED, "wrong room token"))
            return Access(create_hash=configured if stored_hash is None else None)
        if stored_hash is None:
            if not self.allow_room_creation:
                return Access(Refusal(ErrorCode.ROOM_NOT_ALLOWED, "no such room"))
            if len(hello.token) < self.min_token_length:
                return Access(Refusal(
                    ErrorCode.AUTH_FAILED, f"a new room needs a token of at least {self.min_token_length} bytes"
                ))
            return Access(create_hash=offered)
        if not hmac.compare_digest(stored_hash, offered):
            return Access(Refusal(ErrorCode.AUTH_FAILED, "wrong room token"))
        return Access()


class AccessTokenKey:
    """The key that signs (issuer) and/or verifies (server) access tokens.

    Key text formats (a key file, or the :data:`KEY_ENV_VAR` environment variable):

    * an Ed25519 private key in PEM (``-----BEGIN PRIVATE KEY-----``): signs and verifies, EdDSA;
    * an Ed25519 public key in PEM (``-----BEGIN PUBLIC KEY-----``): verifies only, EdDSA;
    * anything else: an HS256 shared secret, the text itself with surrounding whitespace removed,
      at least 32 bytes (:meth:`generate` writes 43 base64url characters, 256 bits).

    ``repr`` never shows the key.
    """

    def __init__(self, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        data = data.strip()
        self._signing: Any
        self._verifying: Any
        if data.startswith(b"-----BEGIN"):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import (
                Ed25519PrivateKey,
                Ed25519PublicKey,
            )

            self.algorithm = _EDDSA
            if b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
                try:
                    private = serialization.load_pem_private_key(data, password=None)
                except (ValueError, TypeError) as exc:
                    raise ValueError("token key: unreadable PEM private key") from exc
                if not isinstance(private, Ed25519PrivateKey):
                    raise ValueError("token key: only Ed25519 PEM keys are supported")
                self._signing, self._verifying = private, private.public_key()
            else:
                try:
                    public = serialization.load_pem_public_key(data)
                except (ValueError, TypeError) as exc:
                    raise ValueError("token key: unreadable PEM public key") from exc
                if not isinstance(public, Ed25519PublicKey):
                    raise ValueError("token key: only Ed25519 PEM keys are supported")
                self._signing, self._verifying = None, public
        else:
            if len(data) < _MIN_SECRET:
                raise ValueError(f"token key: an HS256 secret needs at least {_MIN_SECRET} bytes")
            self.algorithm = _HS256
            self._signing = self._verifying = data

    def __repr__(self) -> str:
        return f"AccessTokenKey(algorithm={self.algorithm!r}, can_sign={self.can_sign})"

    @property
    def can_sign(self) -> bool:
        return self._signing is not None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AccessTokenKey:
        """Load a key file (see the class docstring for the formats)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"token key: cannot read {os.fspath(path)!r}: {exc.strerror}") from None
        return cls(data)

    @staticmethod
    def generate(path: str | os.PathLike[str], algorithm: str = _HS256) -> AccessTokenKey:
        """Create a new key file (mode 0600; refuses to overwrite) and return the key.

        ``algorithm`` is ``"HS256"`` (shared secret: issuer and server hold the same file) or
        ``"EdDSA"`` (Ed25519 private key; give the server the public key or this file).
        """
        if algorithm == _HS256:
            text = (secrets.token_urlsafe(32) + "\n").encode("ascii")
        elif algorithm == _EDDSA:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import (
                Ed25519PrivateKey,
            )

            text = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        else:
            raise ValueError("algorithm must be HS256 or EdDSA")
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text)
        return AccessTokenKey(text)

    def public_pem(self) -> bytes:
        """The Ed25519 public key in PEM (EdDSA keys only): what a verifying server needs."""
        if self.algorithm != _EDDSA:
            raise ValueError("an HS256 secret has no public part")
        from cryptography.hazmat.primitives import serialization

        return bytes(self._verifying.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))

    def issue(self, room: str, client_id: str, ttl: float = 3600.0, *, now: float | None = None) -> bytes:
        """A signed access token (ASCII bytes, at most 255) for ``client_id`` in ``room``.

        Valid from ``now`` for ``ttl`` seconds.  Raises ValueError if this key cannot sign, or if
        the ids are so long that the token would not fit a HELLO (HS256 leaves room for about
        105 characters of room + client id, EdDSA for about 75).
        """
        if not self.can_sign:
            raise ValueError("this key can only verify (an Ed25519 public key)")
        check_id(room, "room id")
        check_id(client_id, "client id")
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        import jwt

        issued = int(time.time() if now is None else now)
        claims = {"room": room, "sub": client_id, "nbf": issued, "exp": issued + max(1, int(ttl))}
        token = jwt.encode(claims, self._signing, algorithm=self.algorithm, headers={"typ": None}).encode("ascii")
        if len(token) > P.MAX_TOKEN_LENGTH:
            raise ValueError(
                f"the token would be {len(token)} bytes, over the {P.MAX_TOKEN_LENGTH} a HELLO carries: "
                "use shorter room or client ids" + (" (or an HS256 key)" if self.algorithm == _EDDSA else "")
            )
        return token

    def verify(self, token: bytes, room: str, client_id: str, *, leeway: float = MAX_CLOCK_SKEW) -> Refusal | None:
        """Check signature, algorithm, ``nbf``/``exp`` (with ``leeway``), ``room`` and ``sub``."""
        import jwt

        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            return Refusal(ErrorCode.AUTH_FAILED, "access token is not a JWT")
        try:
            claims = jwt.decode(
                text,
                self._verifying,
                algorithms=[self.algorithm],  # only this key's algorithm: no "none", no confusion
                options={"require": ["exp", "nbf", "sub", "room"], "verify_signature": True},
                leeway=leeway,
            )
        except jwt.ExpiredSignatureError:
            return Refusal(ErrorCode.AUTH_FAILED, "access token expired")
        except jwt.ImmatureSignatureError:
            return Refusal(ErrorCode.AUTH_FAILED, "access token not yet valid")
        except Exception:  # noqa: BLE001 - any malformation or bad signature: one answer, no detail
            return Refusal(ErrorCode.AUTH_FAILED, "invalid access token")
        if not isinstance(claims, dict) or claims.get("room") != room:
            return Refusal(ErrorCode.AUTH_FAILED, "access token is for another room")
        if claims.get("sub") != client_id:
            return Refusal(ErrorCode.AUTH_FAILED, "access token is for another client id")
        return None


@dataclass(frozen=True)
class AccessTokens(Authenticator):
    """Per-client signed access tokens (secure; the CLI default).

    Args:
        key: the verifying :class:`AccessTokenKey`.
        allow_room_creation: a valid token for an unknown room creates it (else ROOM_NOT_ALLOWED).
        leeway: clock skew tolerated on ``nbf``/``exp``, in seconds.

    A room created here gets a random stored token hash that nobody knows: the stored hash is
    ignored in this mode, and a later switch back to shared room tokens cannot enter it by guessing.
    """

    key: AccessTokenKey
    allow_room_creation: bool = True
    leeway: float = MAX_CLOCK_SKEW

    def __repr__(self) -> str:
        return f"AccessTokens({self.key!r}, allow_room_creation={self.allow_room_creation}, leeway={self.leeway})"

    def authenticate(self, hello: P.Hello) -> Refusal | None:
        return self.key.verify(hello.token, hello.room, hello.client_id, leeway=self.leeway)

    def room_access(self, hello: P.Hello, stored_hash: bytes | None) -> Access:
        if stored_hash is not None:
            return Access()
        if not self.allow_room_creation:
            return Access(Refusal(ErrorCode.ROOM_NOT_ALLOWED, "no such room"))
        return Access(create_hash=token_hash(secrets.token_bytes(32)))
