"""The MLS key schedule (RFC 9420 §8): epoch secrets, Welcome secrets, PSK secret, exporter.

Public names:

* ``EpochSecrets`` -- all secrets of one epoch: ``joiner_secret``, ``welcome_secret``, ``sender_data_secret``,
  ``encryption_secret``, ``exporter_secret``, ``epoch_authenticator``, ``external_secret``, ``confirmation_key``,
  ``membership_key``, ``resumption_psk``, ``init_secret``; methods ``export(label, context, length)``
  (MLS-Exporter, context hashed), ``external_key_pair()``, ``external_pub``, ``welcome_key_nonce()``;
  ``to_bytes()`` / ``from_bytes(suite, data)``. ``repr`` shows no secret.
* ``key_schedule(suite, init_secret, commit_secret, psk_secret, group_context) -> EpochSecrets``
* ``derive_joiner_secret(suite, init_secret, commit_secret, group_context)``
* ``epoch_secrets_from_joiner(suite, joiner_secret, psk_secret, group_context) -> EpochSecrets``
* ``welcome_secret_from_joiner(suite, joiner_secret, psk_secret)``, ``welcome_key_nonce(suite, welcome_secret)``
* ``mls_exporter(suite, exporter_secret, label, context, length)``
* ``external_key_pair(suite, external_secret) -> (priv, pub)``
* ``external_init_secret_sender(suite, external_pub) -> (kem_output, init_secret)`` and
  ``external_init_secret_receiver(suite, external_priv, kem_output) -> init_secret``
* ``PSKInput`` (``psk_id: PreSharedKeyID``, ``psk: bytes``), ``compute_psk_secret(suite, psks)``
* ``zero_secret(suite)``

``group_context`` arguments accept a ``GroupContext`` or its TLS encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

from .codec import Reader, Writer
from .errors import DecodeError
from .suite import Suite, get_suite

__all__ = [
    "EpochSecrets",
    "key_schedule",
    "derive_joiner_secret",
    "epoch_secrets_from_joiner",
    "welcome_secret_from_joiner",
    "welcome_key_nonce",
    "mls_exporter",
    "external_key_pair",
    "external_init_secret_sender",
    "external_init_secret_receiver",
    "PSKInput",
    "compute_psk_secret",
    "zero_secret",
]

_EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"

_FIELDS = (
    "joiner_secret",
    "welcome_secret",
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "epoch_authenticator",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
    "init_secret",
)


def _gc_bytes(group_context: Any) -> bytes:
    if isinstance(group_context, (bytes, bytearray, memoryview)):
        return bytes(group_context)
    return group_context.to_bytes()


def zero_secret(suite: "int | Suite") -> bytes:
    """The all-zero secret of Nh bytes (e.g. psk_secret without PSKs, commit_secret without path)."""
    return bytes(get_suite(suite).nh)


def derive_joiner_secret(suite: "int | Suite", init_secret: bytes, commit_secret: bytes, group_context: Any) -> bytes:
    s = get_suite(suite)
    return s.expand_with_label(s.kdf_extract(init_secret, commit_secret), "joiner", _gc_bytes(group_context), s.nh)


def welcome_secret_from_joiner(suite: "int | Suite", joiner_secret: bytes, psk_secret: bytes) -> bytes:
    s = get_suite(suite)
    return s.derive_secret(s.kdf_extract(joiner_secret, psk_secret), "welcome")


def welcome_key_nonce(suite: "int | Suite", welcome_secret: bytes) -> tuple[bytes, bytes]:
    """``(welcome_key, welcome_nonce)`` used to encrypt the GroupInfo of a Welcome."""
    s = get_suite(suite)
    return (s.expand_with_label(welcome_secret, "key", b"", s.nk),
            s.expand_with_label(welcome_secret, "nonce", b"", s.nn))


def mls_exporter(suite: "int | Suite", exporter_secret: bytes, label: Union[str, bytes], context: bytes,
                 length: int) -> bytes:
    """MLS-Exporter(Label, Context, Length) = ExpandWithLabel(DeriveSecret(exporter, Label), "exported",
    Hash(Context), Length)."""
    s = get_suite(suite)
    if not 0 <= length <= 0xFFFF:
        raise ValueError("exporter length out of range")
    return s.expand_with_label(s.derive_secret(exporter_secret, label), "exported", s.hash(bytes(context)), length)


def external_key_pair(suite: "int | Suite", external_secret: bytes) -> tuple[bytes, bytes]:
    """``KEM.DeriveKeyPair(external_secret)`` -> ``(external_priv, external_pub)``."""
    return get_suite(suite).derive_key_pair(external_secret)


def external_init_secret_sender(suite: "int | Suite", external_pub: bytes) -> tuple[bytes, bytes]:
    """Joiner side of an external commit: ``(kem_output, init_secret)``."""
    s = get_suite(suite)
    enc, ctx = s.hpke.setup_base_s(bytes(external_pub), b"")
    return enc, ctx.export(_EXTERNAL_INIT_LABEL, s.nh)


def external_init_secret_receiver(suite: "int | Suite", external_priv: bytes, kem_output: bytes) -> bytes:
    """Member side of an external commit: the init_secret from the ExternalInit kem_output."""
    s = get_suite(suite)
    ctx = s.hpke.setup_base_r(bytes(kem_output), bytes(external_priv), b"")
    return ctx.export(_EXTERNAL_INIT_LABEL, s.nh)


@dataclass(repr=False)
class EpochSecrets:
    """The secrets of one epoch (the epoch_secret itself is not retained)."""

    suite: Suite
    joiner_secret: bytes
    welcome_secret: bytes
    sender_data_secret: bytes
    encryption_secret: bytes
    exporter_secret: bytes
    epoch_authenticator: bytes
    external_secret: bytes
    confirmation_key: bytes
    membership_key: bytes
    resumption_psk: bytes
    init_secret: bytes

    def __repr__(self) -> str:
        return f"EpochSecrets({self.suite.cipher_suite.name})"

    def export(self, label: Union[str, bytes], context: bytes, length: int) -> bytes:
        """MLS-Exporter for this epoch."""
        return mls_exporter(self.suite, self.exporter_secret, label, context, length)

    def external_key_pair(self) -> tuple[bytes, bytes]:
        return external_key_pair(self.suite, self.external_secret)

    @property
    def external_pub(self) -> bytes:
        return self.external_key_pair()[1]

    def welcome_key_nonce(self) -> tuple[bytes, bytes]:
        return welcome_key_nonce(self.suite, self.welcome_secret)

    def to_bytes(self) -> bytes:
        w = Writer().u16(int(self.suite.cipher_suite))
        for f in _FIELDS:
            w.opaque(getattr(self, f))
        return w.getvalue()

    @classmethod
    def from_bytes(cls, suite: "int | Suite", data: bytes) -> "EpochSecrets":
        s = get_suite(suite)
        r = Reader(data)
        if r.u16() != int(s.cipher_suite):
            raise DecodeError("EpochSecrets of another cipher suite")
        vals = [r.opaque() for _ in _FIELDS]
        r.finish()
        return cls(s, *vals)


def epoch_secrets_from_joiner(suite: "int | Suite", joiner_secret: bytes, psk_secret: bytes,
                              group_context: Any) -> EpochSecrets:
    """Everything derived from the joiner_secret, the psk_secret and the new GroupContext."""
    s = get_suite(suite)
    member_prk = s.kdf_extract(joiner_secret, psk_secret)
    welcome_secret = s.derive_secret(member_prk, "welcome")
    epoch_secret = s.expand_with_label(member_prk, "epoch", _gc_bytes(group_context), s.nh)
    d = s.derive_secret
    return EpochSecrets(
        suite=s,
        joiner_secret=joiner_secret,
        welcome_secret=welcome_secret,
        sender_data_secret=d(epoch_secret, "sender data"),
        encryption_secret=d(epoch_secret, "encryption"),
        exporter_secret=d(epoch_secret, "exporter"),
        epoch_authenticator=d(epoch_secret, "authentication"),
        external_secret=d(epoch_secret, "external"),
        confirmation_key=d(epoch_secret, "confirm"),
        membership_key=d(epoch_secret, "membership"),
        resumption_psk=d(epoch_secret, "resumption"),
        init_secret=d(epoch_secret, "init"),
    )


def key_schedule(suite: "int | Suite", init_secret: bytes, commit_secret: bytes, psk_secret: bytes,
                 group_context: Any) -> EpochSecrets:
    """Full key schedule step from the previous epoch's init_secret (RFC 9420 §8)."""
    gc = _gc_bytes(group_context)
    joiner = derive_joiner_secret(suite, init_secret, commit_secret, gc)
    return epoch_secrets_from_joiner(suite, joiner, psk_secret, gc)


@dataclass(repr=False)
class PSKInput:
    """One PSK to inject: its ``PreSharedKeyID`` (from messages) and the secret value."""

    psk_id: Any  # messages.PreSharedKeyID
    psk: bytes

    def __repr__(self) -> str:
        return "PSKInput(...)"


def compute_psk_secret(suite: "int | Suite", psks: Sequence[PSKInput]) -> bytes:
    """psk_secret (RFC 9420 §8.4); all-zero when ``psks`` is empty."""
    s = get_suite(suite)
    count = len(psks)
    if count > 0xFFFF:
        raise ValueError("too many PSKs")
    secret = bytes(s.nh)
    zero = bytes(s.nh)
    for index, p in enumerate(psks):
        extracted = s.kdf_extract(zero, p.psk)
        w = Writer()
        p.psk_id.encode(w)
        w.u16(index).u16(count)
        psk_input = s.expand_with_label(extracted, "derived psk", w.getvalue(), s.nh)
        secret = s.kdf_extract(psk_input, secret)
    return secret
