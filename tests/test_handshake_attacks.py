"""What a stolen key gives a thief, mode by mode; and the key schedule's known answers.

Each attacker below knows exactly what a thief would: the stolen private
key, the public keys, everything on the wire, and secrets he made himself.
He computes every Diffie-Hellman result those let him compute, and uses the
handshake's own key schedule (``handshake.key_schedule``). In ``static``
mode that is enough; in ``secure`` mode it is not, whatever he tries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable

import pytest

from labcrypto import keys
from labcrypto.ciphers import AeadCipher, confirmation_tag, derive_session_keys
from labcrypto.errors import DecryptionFailed, HandshakeError
from labcrypto.groups import FFDHE2048
from labcrypto.handshake import (
    PROTOCOL,
    PROTOCOL_VERSION,
    ClientHandshake,
    ServerHandshake,
    encode_message,
    key_schedule,
)

P = FFDHE2048.p


def run(client: ClientHandshake, server: ServerHandshake) -> None:
    """Carry messages between the two until both are done."""
    to_server = [client.start()]
    while to_server:
        to_client = [reply for message in to_server for reply in server.receive(message)]
        to_server = [reply for message in to_client for reply in client.receive(message)]
    assert client.done and server.done


def guesses(secret_exponents: list[int], public_values: list[int]) -> list[int]:
    """Every DH value the thief can compute: a public value to a power he knows."""
    return [pow(y, e, P) for e in secret_exponents for y in public_values]


def value(message: bytes, name: str) -> int:
    return int(json.loads(message)[name], 16)


# --- a stolen server key: can the thief log in as alice? ----------------------------


def log_in_as_alice(
    mode: str,
    stolen_b: int,
    alice: keys.PublicKey,
    server_key: keys.KeyPair,
    se_guess: Callable[[list[int]], int] | None = None,
) -> ServerHandshake:
    """The thief, holding the server's private key, claims alice's public key.

    Returns the server's handshake after his client_finished (``done`` if
    he got in). ``se_guess`` picks his value for the one term he cannot
    compute (secure mode only) from the list of everything he can.
    """
    server = ServerHandshake(server_key, mode, allow=lambda key: key == alice)
    mine = keys.generate(FFDHE2048)  # the thief's own ephemeral key
    hello_fields = {
        "type": "client_hello",
        "protocol": PROTOCOL,
        "version": PROTOCOL_VERSION,
        "service": "chat",
        "mode": mode,
        "group": FFDHE2048.name,
        "static": f"{alice.value:#x}",
    }
    if mode == "secure":
        hello_fields["ephemeral"] = f"{mine.public:#x}"
    hello_fields["nonce"] = secrets.token_hex(32)
    hello = encode_message(hello_fields)
    server_hello, _ = server.receive(hello)
    B = value(server_hello, "static")
    terms = {"ss": pow(alice.value, stolen_b, P)}  # A^b: the stolen key meets alice's public key
    if mode == "secure":
        Y = value(server_hello, "ephemeral")
        terms["ee"] = pow(Y, mine.private, P)
        terms["es"] = pow(B, mine.private, P)  # his ephemeral with the server's static key
        assert se_guess is not None  # se = Y^a = A^y: needs alice's a or the server's y
        terms["se"] = se_guess(guesses([stolen_b, mine.private], [alice.value, B, mine.public, Y]))
    session, th = key_schedule(mode, terms, hello, server_hello)
    finished = {
        "type": "client_finished",
        "confirm": confirmation_tag(session.client_confirm, th).hex(),
    }
    server.receive(encode_message(finished))
    return server


def test_static_mode_a_stolen_server_key_logs_in_as_any_student(secure_keys):
    """Key-compromise impersonation: this is what the static-only exchange lacks."""
    alice, server_key = secure_keys("alice").public_key, secure_keys("server")
    server = log_in_as_alice("static", server_key.private, alice, server_key)
    assert server.done and server.session is not None and server.session.peer_key == alice


def test_secure_mode_a_stolen_server_key_cannot_log_in_as_a_student(secure_keys):
    alice, server_key = secure_keys("alice").public_key, secure_keys("server")
    for index in range(8):  # each value the thief can compute, tried as se in turn
        with pytest.raises(HandshakeError, match="could not prove"):
            log_in_as_alice(
                "secure", server_key.private, alice, server_key, lambda known, i=index: known[i]
            )


# --- a stolen client key: can the thief pose as the server alice pinned? -------------


def pose_as_server(
    mode: str,
    stolen_a: int,
    alice: keys.KeyPair,
    server: keys.PublicKey,
    es_guess: Callable[[list[int]], int] | None = None,
) -> ClientHandshake:
    """The thief holds alice's private key and answers her as the (pinned) server."""
    client = ClientHandshake(alice, mode, expected_server_key=server)
    hello = client.start()
    A = value(hello, "static")
    mine = keys.generate(FFDHE2048)  # the thief's own ephemeral key
    reply = {"type": "server_hello", "version": PROTOCOL_VERSION, "static": f"{server.value:#x}"}
    if mode == "secure":
        reply["ephemeral"] = f"{mine.public:#x}"
    reply["nonce"] = secrets.token_hex(32)
    server_hello = encode_message(reply)
    terms = {"ss": pow(server.value, stolen_a, P)}  # B^a: alice's stolen key meets B
    if mode == "secure":
        X = value(hello, "ephemeral")
        terms["ee"] = pow(X, mine.private, P)
        terms["se"] = pow(A, mine.private, P)  # alice's static key with his ephemeral
        assert es_guess is not None  # es = B^x = X^b: needs the server's b or alice's x
        terms["es"] = es_guess(guesses([stolen_a, mine.private], [A, server.value, X, mine.public]))
    session, th = key_schedule(mode, terms, hello, server_hello)
    finished = {
        "type": "server_finished",
        "confirm": confirmation_tag(session.server_confirm, th).hex(),
    }
    client.receive(server_hello)
    client.receive(encode_message(finished))
    return client


def test_static_mode_a_stolen_client_key_poses_as_the_pinned_server(secure_keys):
    alice, server = secure_keys("alice"), secure_keys("server").public_key
    client = pose_as_server("static", alice.private, alice, server)
    assert client.done and client.session is not None and client.session.peer_key == server


def test_secure_mode_a_stolen_client_key_cannot_pose_as_the_pinned_server(secure_keys):
    alice, server = secure_keys("alice"), secure_keys("server").public_key
    for index in range(8):
        with pytest.raises(HandshakeError, match="could not prove"):
            pose_as_server("secure", alice.private, alice, server, lambda known, i=index: known[i])


# --- a recording, and both long-term keys stolen later ----------------------------------


@pytest.mark.parametrize("mode", ["static", "secure"])
def test_a_recording_and_both_static_keys(mode, secure_keys):
    """Static mode: both keys open the recording. Secure mode: nothing the thief can
    compute opens it (forward secrecy: ``ee`` needs an ephemeral private key)."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    client, server = ClientHandshake(alice, mode), ServerHandshake(server_key, mode)
    hello = client.start()
    server_hello, finished = server.receive(hello)
    client.receive(server_hello)
    server.receive(client.receive(finished)[0])
    assert client.session is not None
    sealed = client.session.ciphers()[0].seal(b"the answers are in docs/answers.txt")

    a, b = alice.private, server_key.private
    A, B = alice.public, server_key.public
    terms = {"ss": pow(B, a, P)}
    candidates = [0]
    if mode == "secure":
        X, Y = value(hello, "ephemeral"), value(server_hello, "ephemeral")
        terms["es"], terms["se"] = pow(X, b, P), pow(Y, a, P)
        candidates = guesses([a, b], [A, B, X, Y])
    opened = []
    for ee in candidates:
        keys_, _ = key_schedule(mode, {**terms, "ee": ee}, hello, server_hello)
        try:
            opened.append(AeadCipher(keys_.client_to_server).open(sealed))
        except DecryptionFailed:
            pass
    if mode == "static":
        assert opened == [b"the answers are in docs/answers.txt"]
    else:
        assert opened == []


# --- known answers for the key schedule ----------------------------------------------


class PinnedRandom:
    """A stand-in for ``secrets`` whose every answer follows from a seed (tests only)."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.count = seed, 0

    def token_bytes(self, nbytes: int) -> bytes:
        self.count += 1
        return hashlib.shake_256(self.seed + self.count.to_bytes(4, "big")).digest(nbytes)

    def randbelow(self, bound: int) -> int:
        size = (bound.bit_length() + 7) // 8 + 8  # 64 extra bits: the bias is negligible
        return int.from_bytes(self.token_bytes(size), "big") % bound


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with the standard library, to check ``ciphers`` against."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_derive_session_keys_is_rfc5869_hkdf():
    dh = [bytes(range(256)), bytes(255 - i for i in range(256))]
    nonce_c, nonce_s, th = b"\x01" * 32, b"\x02" * 32, hashlib.sha256(b"transcript").digest()
    derived = derive_session_keys(dh, nonce_c, nonce_s, th)
    okm = hkdf_sha256(b"".join(dh), nonce_c + nonce_s, b"labcrypto v2 session keys" + th, 128)
    assert derived.client_to_server + derived.server_to_client == okm[:64]
    assert derived.client_confirm + derived.server_confirm == okm[64:]


def pinned_handshake() -> tuple[ClientHandshake, ServerHandshake, keys.KeyPair, keys.KeyPair]:
    alice = keys.generate(FFDHE2048, PinnedRandom(b"alice's long-term key"))
    server_key = keys.generate(FFDHE2048, PinnedRandom(b"the server's long-term key"))
    client = ClientHandshake(alice, rng=PinnedRandom(b"client"))
    server = ServerHandshake(server_key, rng=PinnedRandom(b"server"))
    return client, server, alice, server_key


def test_pinned_random_sources_give_the_same_handshake_twice():
    first, second = pinned_handshake(), pinned_handshake()
    run(first[0], first[1])
    run(second[0], second[1])
    assert first[0].transcript == second[0].transcript
    assert first[0].session.keys == second[0].session.keys == second[1].session.keys


def test_secure_key_schedule_known_answer():
    """The four DH terms recomputed with plain ``pow`` and HKDF written out give the keys
    the handshake derived; the frozen digests catch any change to the wire format."""
    client, server, alice, server_key = pinned_handshake()
    run(client, server)
    (_, hello), (_, reply) = client.transcript[0], client.transcript[1]
    hello_bytes, reply_bytes = encode_message(hello), encode_message(reply)
    rng_c, rng_s = PinnedRandom(b"client"), PinnedRandom(b"server")
    rng_c.token_bytes(32)  # the client's nonce comes first, then its ephemeral exponent
    x = FFDHE2048.random_exponent(rng_c.randbelow)
    rng_s.token_bytes(32)
    y = FFDHE2048.random_exponent(rng_s.randbelow)
    a, b = alice.private, server_key.private
    g = FFDHE2048.g
    terms = [pow(g, x * y, P), pow(g, x * b, P), pow(g, a * y, P), pow(g, a * b, P)]  # ee es se ss
    th = hashlib.sha256(
        b"".join(len(m).to_bytes(4, "big") + m for m in (hello_bytes, reply_bytes))
    ).digest()
    okm = hkdf_sha256(
        b"".join(t.to_bytes(256, "big") for t in terms),
        bytes.fromhex(hello["nonce"]) + bytes.fromhex(reply["nonce"]),
        b"labcrypto v2 session keys" + th,
        128,
    )
    session = client.session
    assert session.keys.client_to_server + session.keys.server_to_client == okm[:64]
    assert (
        client.transcript[3][1]["confirm"]
        == hmac.new(okm[64:96], b"labcrypto v2 confirm" + th, hashlib.sha256).hexdigest()
    )
    frozen = {
        "client_hello": hashlib.sha256(hello_bytes).hexdigest()[:16],
        "server_hello": hashlib.sha256(reply_bytes).hexdigest()[:16],
        "keys": hashlib.sha256(okm).hexdigest()[:16],
    }
    assert frozen == KNOWN_ANSWER


#: Frozen from the run above (SHA-256 prefixes): a change here is a change of the protocol.
KNOWN_ANSWER = {
    "client_hello": "5df2fd92bc2f0d5f",
    "server_hello": "64abc8dd460a8725",
    "keys": "8a6e556fb1b0e0e0",
}
