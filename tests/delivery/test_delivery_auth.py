"""Per-client access tokens (issue 9 finding 3): signed JWTs bind a connection to one room and one client id.

Expected outcomes come from how each token is built here (signed with another key, expired by
construction, ...), never from the verifier under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from delivery_support import TOKEN, ClientFactory, ServerFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from orange_fast.delivery import (
    AccessTokenKey,
    AccessTokens,
    AuthenticationFailedError,
    DeliveryClient,
    EntryType,
    ErrorCode,
    RoomNotAllowedError,
    SupersededError,
)
from orange_fast.delivery import protocol as P

pytestmark = [pytest.mark.timeout(60)]

SECRET = "s" * 43
OTHER_SECRET = "o" * 43
WAIT = 5.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, object]) -> bytes:
    """An alg=none JWT, built by hand."""
    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}.".encode()


def hs_key() -> AccessTokenKey:
    return AccessTokenKey(SECRET)


# ------------------------------------------------------------------ the verifier, offline


def test_issued_token_verifies_for_its_room_and_client_only() -> None:
    key = hs_key()
    token = key.issue("room", "alice", 60)
    assert len(token) <= P.MAX_TOKEN_LENGTH and token.isascii()
    assert key.verify(token, "room", "alice") is None
    assert key.verify(token, "room", "bob") is not None
    assert key.verify(token, "other", "alice") is not None


@pytest.mark.parametrize(
    "claims, detail",
    [
        ({"room": "room", "sub": "alice", "nbf": 0, "exp": 1000}, "expired"),  # 1970
        ({"room": "room", "sub": "alice", "nbf": 4_000_000_000, "exp": 4_000_000_100}, "not yet valid"),  # 2096
        ({"room": "elsewhere", "sub": "alice", "nbf": 0, "exp": 4_000_000_000}, "another room"),
        ({"room": "room", "sub": "mallory", "nbf": 0, "exp": 4_000_000_000}, "another client"),
        ({"room": "room", "sub": "alice", "exp": 4_000_000_000}, "invalid"),  # nbf missing
        ({"room": "room", "sub": "alice", "nbf": 0}, "invalid"),  # exp missing
        ({"sub": "alice", "nbf": 0, "exp": 4_000_000_000}, "invalid"),  # room missing
        ({"room": "room", "nbf": 0, "exp": 4_000_000_000}, "invalid"),  # sub missing
    ],
)
def test_claims_are_enforced(claims: dict[str, object], detail: str) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256").encode()
    refusal = hs_key().verify(token, "room", "alice")
    assert refusal is not None and refusal.code == ErrorCode.AUTH_FAILED
    assert detail in refusal.detail
    assert SECRET not in refusal.detail and token.decode() not in refusal.detail


def test_wrong_key_alg_none_tampering_and_alg_confusion_are_refused() -> None:
    key = hs_key()
    good = {"room": "room", "sub": "alice", "nbf": int(time.time()), "exp": int(time.time()) + 60}
    wrong_key = jwt.encode(good, OTHER_SECRET, algorithm="HS256").encode()
    alg_none = unsigned(good)
    valid = key.issue("room", "alice", 60)
    head, _claims, sig = valid.split(b".")
    forged_claims = b64(json.dumps({**good, "sub": "mallory"}).encode()).encode()
    tampered = b".".join([head, forged_claims, sig])
    ed = AccessTokenKey(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # alg confusion: an HMAC token keyed with the server's public key text (built by hand: PyJWT refuses)
    signing_input = (b64(json.dumps({"alg": "HS256"}).encode()) + "." + b64(json.dumps(good).encode())).encode()
    mac = hmac.new(ed.public_pem(), signing_input, hashlib.sha256).digest()
    confused = signing_input + b"." + b64(mac).encode()
    for token in (wrong_key, alg_none, tampered):
        refusal = key.verify(token, "room", "alice")
        assert refusal is not None and refusal.detail == "invalid access token", token
    assert key.verify(tampered, "room", "mallory") is not None
    # an EdDSA server accepts EdDSA tokens only
    assert ed.verify(confused, "room", "alice") is not None
    assert ed.verify(ed.issue("room", "alice", 60), "room", "alice") is None


def test_eddsa_public_key_verifies_but_cannot_issue(tmp_path: Path) -> None:
    issuer = AccessTokenKey.generate(tmp_path / "ed.pem", "EdDSA")
    assert (tmp_path / "ed.pem").stat().st_mode & 0o777 == 0o600
    verifier = AccessTokenKey(issuer.public_pem())
    token = issuer.issue("room", "alice", 60)
    assert verifier.verify(token, "room", "alice") is None
    with pytest.raises(ValueError, match="only verify"):
        verifier.issue("room", "alice")
    with pytest.raises(FileExistsError):
        AccessTokenKey.generate(tmp_path / "ed.pem")


def test_bad_keys_and_oversize_tokens_are_refused_and_reprs_hide_keys() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        AccessTokenKey("short")
    with pytest.raises(ValueError, match="PEM"):
        AccessTokenKey("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    key = hs_key()
    with pytest.raises(ValueError, match="255"):
        key.issue("r" * 64, "c" * 64)
    assert SECRET not in repr(key) and SECRET not in repr(AccessTokens(key))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=255))
def test_arbitrary_bytes_are_refused_without_raising(token: bytes) -> None:
    refusal = hs_key().verify(token, "room", "alice")
    assert refusal is not None and refusal.code == ErrorCode.AUTH_FAILED


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_a_valid_token_is_refused(data: st.DataObject) -> None:
    key = hs_key()
    token = bytearray(key.issue("room", "alice", 600))
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
    if token[i] == replacement:
        return
    original = bytes(token)
    token[i] = replacement
    if base64_equivalent(original, bytes(token)):
        return  # the last base64 char of a part may carry unused bits: same decoded bytes
    assert key.verify(bytes(token), "room", "alice") is not None


def base64_equivalent(a: bytes, b: bytes) -> bool:
    pa, pb = a.split(b"."), b.split(b".")
    if len(pa) != len(pb):
        return False
    try:
        return all(base64.urlsafe_b64decode(x + b"==") == base64.urlsafe_b64decode(y + b"==") for x, y in zip(pa, pb))
    except ValueError:
        return False


# ------------------------------------------------------------------ against a running server


@pytest.mark.asyncio
async def test_member_cannot_take_over_another_client_id(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    """Issue 9 finding 3: on main, any member's DeliveryClient(url, room, token, "alice") supersedes alice."""
    key = hs_key()
    server = await make_server(auth=AccessTokens(key))
    alice = await make_client(server, "alice", token=key.issue("room", "alice"), reconnect=False)
    mallory = await make_client(server, "mallory", token=key.issue("room", "mallory"), reconnect=False)
    # mallory, a member with a valid token of her own, connects as alice
    impostor = DeliveryClient(server.url, "room", key.issue("room", "mallory"), "alice", reconnect=False)
    with pytest.raises(AuthenticationFailedError, match="another client id"):
        await impostor.connect()
    # alice is untouched: still connected, and her appends are still hers
    assert alice.connected and alice.failure is None
    seq = await alice.append("kp", b"from alice")
    entries = [await mallory.next_entry(WAIT) for _ in range(3)]
    assert [(e.entry_type, e.sender) for e in entries] == [
        (EntryType.JOINED, "alice"), (EntryType.JOINED, "mallory"), (EntryType.MESSAGE, "alice")
    ]
    assert entries[-1].seq == seq == 3
    assert server.refusals["AUTH_FAILED"] == 1
    # alice herself may reconnect and supersede her old connection
    again = await make_client(server, "alice", token=key.issue("room", "alice"), resume_from=3, reconnect=False)
    assert again.connected
    await superseded(alice)


async def superseded(client: DeliveryClient) -> None:
    """Read entries until the client fails; it must fail with SUPERSEDED."""
    with pytest.raises(SupersededError):
        for _ in range(100):
            await client.next_entry(WAIT)


@pytest.mark.asyncio
async def test_shared_room_tokens_still_allow_the_takeover(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    """The embedded default (shared room tokens) keeps main's behaviour, which is why the CLI does not use it."""
    server = await make_server()
    alice = await make_client(server, "alice", reconnect=False)
    await make_client(server, "alice", token=TOKEN, reconnect=False)  # "mallory" with the room token
    await superseded(alice)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "wrong-room", "wrong-key", "alg-none", "junk"])
async def test_bad_tokens_are_refused_and_create_nothing(make_server: ServerFactory, case: str) -> None:
    key = hs_key()
    server = await make_server(auth=AccessTokens(key))
    now = int(time.time())
    claims = {"room": "room", "sub": "alice", "nbf": now, "exp": now + 60}
    token = {
        "expired": key.issue("room", "alice", 60, now=now - 3600),
        "not-yet-valid": key.issue("room", "alice", 60, now=now + 3600),
        "wrong-room": key.issue("other", "alice", 60),
        "wrong-key": jwt.encode(claims, OTHER_SECRET, algorithm="HS256").encode(),
        "alg-none": unsigned(claims),
        "junk": b"x" * 200,
    }[case]
    client = DeliveryClient(server.url, "room", token, "alice", reconnect=False)
    with pytest.raises(AuthenticationFailedError):
        await client.connect()
    assert await server.storage.get_room("room") is None  # no room created
    assert server.rooms_in_memory == 0


@pytest.mark.asyncio
async def test_room_creation_only_with_a_valid_token(
    make_server: ServerFactory, make_client: ClientFactory, tmp_path: Path
) -> None:
    key = hs_key()
    server = await make_server(auth=AccessTokens(key, allow_room_creation=False))
    with pytest.raises(RoomNotAllowedError):
        await DeliveryClient(server.url, "new", key.issue("new", "alice"), "alice", reconnect=False).connect()
    assert await server.storage.get_room("new") is None
    creator = await make_server(auth=AccessTokens(key), db=tmp_path / "creator.db")
    client = await make_client(creator, "alice", room="new", token=key.issue("new", "alice"), reconnect=False)
    entry = await client.next_entry(WAIT)
    assert (entry.entry_type, entry.sender) == (EntryType.JOINED, "alice")
    assert await creator.storage.get_room("new") is not None


@pytest.mark.asyncio
async def test_origin_allowlist(make_server: ServerFactory) -> None:
    key = hs_key()
    server = await make_server(auth=AccessTokens(key), allowed_origins=["https://app.example"])
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, origin="https://evil.example", open_timeout=WAIT)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    for origin in ("https://app.example", None):  # the allowed browser origin, and a non-browser client
        ws = await connect(server.url, origin=origin, open_timeout=WAIT)  # type: ignore[arg-type]
        await ws.send(P.encode(P.Hello("room", key.issue("room", "alice"), "alice")))
        ready = P.decode_server_frame(await asyncio.wait_for(ws.recv(), WAIT))
        assert isinstance(ready, P.Ready)
        await ws.close()


@pytest.mark.asyncio
async def test_client_takes_a_token_source_for_reconnects(make_server: ServerFactory) -> None:
    key = hs_key()
    server = await make_server(auth=AccessTokens(key, leeway=0))
    issued: list[bytes] = []

    def fresh() -> bytes:
        issued.append(key.issue("room", "alice", 60))
        return issued[-1]

    client = DeliveryClient(server.url, "room", fresh, "alice", backoff_initial=0.02, backoff_max=0.1)
    try:
        await client.connect()
        client.abort_connection()
        await asyncio.wait_for(wait_reconnected(client), WAIT)
        assert len(issued) == 2
    finally:
        await client.close()


async def wait_reconnected(client: DeliveryClient) -> None:
    while client.connections < 2:
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_hostile_tokens_against_a_running_server(make_server: ServerFactory, make_client: ClientFactory) -> None:
    """Random bytes and one-character mutations of a valid token.

    AUTH_FAILED each, nothing stored, members unaffected.
    """
    import random

    key = hs_key()
    server = await make_server(auth=AccessTokens(key))
    member = await make_client(server, "member", token=key.issue("room", "member"), reconnect=False)
    rng = random.Random(9)
    valid = key.issue("room", "alice", 600)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    tokens = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 256))) for _ in range(20)]
    for _ in range(20):
        mutated = bytearray(valid)
        i = rng.randrange(len(mutated))
        mutated[i] = rng.choice([c for c in alphabet if c != mutated[i]])
        if not base64_equivalent(valid, bytes(mutated)):
            tokens.append(bytes(mutated))
    for token in tokens:
        async with connect(server.url, open_timeout=WAIT) as ws:
            await ws.send(P.encode(P.Hello("room", token, "alice")))
            reply = P.decode_server_frame(await asyncio.wait_for(ws.recv(), WAIT))
            assert isinstance(reply, P.Error) and reply.code == ErrorCode.AUTH_FAILED and reply.fatal
    assert server.refusals["AUTH_FAILED"] == len(tokens)
    assert (await server.storage.get_room("room")).head == 1  # type: ignore[union-attr]  # only the member's JOINED
    assert member.connected and await member.append("k", b"still here") == 2
