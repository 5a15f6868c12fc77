"""An attacker's code against the protocol core's remaining claims (crypto review, stop 15).

Each test plays someone on the wire (or a student on the allowlist) who
tries one thing the handshake or the channel says cannot be done: bounce a
message back to its sender, fake a goodbye, rewrite the mode or the service
in flight, pass another student's handshake off as one's own, feed the
client values from a small subgroup, replay a recorded server, or lean on a
random source that repeats itself, or seal twice with nonce 0. The other
tests show the limits the text admits, each by doing what it says falls:
toy mode protects nothing (its ticket included), keys from a static K
alone repeat across connections, trust on first use trusts the first
answer, and the allowlist tells anyone who is enrolled.

Everything here is sans-IO or runs over ``socket.socketpair()``, except one
fake server on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import gc
import hmac
import json
import os
import socket
import threading
import time
import types

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from test_channel import Conversation
from test_handshake_attacks import PinnedRandom

from labcrypto import handoff, handshake, keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import HEADER, read_frame, write_frame
from labcrypto.chat_client import ChatClient
from labcrypto.ciphers import AeadCipher, CaesarCipher, confirmation_tag
from labcrypto.errors import (
    ChannelClosed,
    DecryptionFailed,
    HandshakeError,
    InvalidPublicValue,
    KeyNotAllowed,
    ModeMismatch,
    ServerKeyChanged,
)
from labcrypto.groups import FFDHE2048, TOY
from labcrypto.handshake import ClientHandshake, ServerHandshake, encode_message, key_schedule
from labcrypto.known_servers import KnownServers

P = FFDHE2048.p
#: The smallest value outside ffdhe2048's prime-order subgroup (a non-square mod p).
NON_SQUARE = next(v for v in range(2, 100) if pow(v, FFDHE2048.q, P) != 1)


def run(client: ClientHandshake, server: ServerHandshake) -> None:
    """Carry messages between the two until neither has more to say."""
    to_server = [client.start()]
    while to_server:
        to_client = [reply for message in to_server for reply in server.receive(message)]
        to_server = [reply for message in to_client for reply in client.receive(message)]


def reordered_server_hello(fields: dict[str, object]) -> bytes:
    """A server_hello with ``fields``, in the one field order the client accepts."""
    order = ("type", "version", "static", "ephemeral", "nonce")
    return encode_message({name: fields[name] for name in order if name in fields})


# --- reflection: a message bounced back to the side that sent it ------------------------


def test_a_frame_reflected_back_to_its_sender_is_refused(secure_keys):
    """One key per direction: the client's own frame, sent back to it, does not open,
    and the same counter (nonce 0) in both directions never meets the same key."""
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        session_keys = talk.client.session.keys
        four = (
            session_keys.client_to_server,
            session_keys.server_to_client,
            session_keys.client_confirm,
            session_keys.server_confirm,
        )
        assert len(set(four)) == 4
        frame = talk.client.seal_frame("pay mallory 10 euros")
        talk.client_sock.sendall(frame)  # the server, for whom it is meant, reads it
        assert talk.server.recv(timeout=5) == b"pay mallory 10 euros"
        talk.server_sock.sendall(frame)  # the attacker writes it back toward the client
        with pytest.raises(DecryptionFailed):
            talk.client.recv(timeout=5)
    finally:
        talk.close()


def test_a_server_frame_reflected_to_the_server_is_refused(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        frame = talk.server.seal_frame("welcome, alice")
        talk.client_sock.sendall(frame)  # bounced back toward the server that sealed it
        with pytest.raises(DecryptionFailed):
            talk.server.recv(timeout=5)
    finally:
        talk.close()


# --- truncation: a goodbye made up on the wire ---------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [b"", bytes(16), os.urandom(16), os.urandom(17)],
    ids=["empty", "zero tag", "random tag", "random byte and tag"],
)
def test_a_goodbye_made_up_on_the_wire_is_not_a_clean_close(forged, secure_keys):
    """The goodbye is an *encrypted* empty message: an attacker who cuts the
    conversation short cannot make the cut look like the peer's own goodbye."""
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        talk.client_sock.sendall(HEADER.pack(len(forged)) + forged)
        with pytest.raises(DecryptionFailed):
            talk.server.recv(timeout=5)
        assert not talk.server.peer_closed
    finally:
        talk.close()


# --- downgrade and redirection by a man in the middle --------------------------------------


@pytest.mark.parametrize(
    ("rewrite", "server_mode", "service"),
    [
        ({"mode": "static", "ephemeral": None}, "static", "chat"),  # drop the ephemeral key
        ({"service": "files"}, "secure", "files"),  # a chat session sent to the file service
    ],
    ids=["secure to static", "chat to files"],
)
def test_a_man_in_the_middle_cannot_downgrade_or_redirect_the_handshake(
    rewrite, server_mode, service, secure_keys
):
    """He rewrites alice's hello for a server (the real key) that accepts the weaker
    mode or the other service; the server answers, he patches its hello for alice's
    parser, and alice's check of the server's proof fails: the hello is in the transcript."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    client = ClientHandshake(alice, expected_server_key=server_key.public_key)
    hello = json.loads(client.start())
    for name, value in rewrite.items():
        if value is None:
            del hello[name]
        else:
            hello[name] = value
    server = ServerHandshake(server_key, server_mode, service=service)
    server_hello, finished = server.receive(encode_message(hello))  # accepted as it came
    reply = json.loads(server_hello)
    reply.setdefault("ephemeral", f"{keys.generate(FFDHE2048).public:#x}")  # his own Y
    client.receive(reordered_server_hello(reply))
    with pytest.raises(HandshakeError, match="could not prove"):
        client.receive(finished)
    assert client.session is None and client.state == "failed"


def test_a_downgrade_to_the_toy_group_cannot_even_start(secure_keys, toy_keys):
    """Rewritten to toy mode, alice's hello still carries her 2048-bit keys, which no toy
    server can take; to get further he must send a toy key of his own, which is his own
    handshake, not alice's (and her secure client reads no mode from the server at all)."""
    hello = json.loads(ClientHandshake(secure_keys("alice")).start())
    del hello["ephemeral"]
    hello.update(mode="toy", group=TOY.name)
    server = ServerHandshake(toy_keys("server"), "toy")
    with pytest.raises(InvalidPublicValue):
        server.receive(encode_message(hello))
    assert server.state == "failed" and server._keys is None


# --- identity misbinding (unknown key share) ------------------------------------------------


def test_an_allowed_student_cannot_pass_alices_handshake_off_as_her_own(secure_keys):
    """Eve is on the allowlist too. She puts her static key into alice's hello (keeping
    alice's ephemeral X), hoping the server binds alice's session to Eve's name or
    alice's words to Eve. Alice sees the server's proof fail; the server never finishes
    with Eve, whatever Eve computes with her own key."""
    alice, eve, server_key = secure_keys("alice"), secure_keys("eve"), secure_keys("server")
    allowed = {alice.public_key, eve.public_key}
    client = ClientHandshake(alice, expected_server_key=server_key.public_key)
    original = client.start()
    swapped = json.loads(original)
    swapped["static"] = f"{eve.public:#x}"
    swapped_hello = encode_message(swapped)

    server = ServerHandshake(server_key, allow=allowed.__contains__)
    server_hello, finished = server.receive(swapped_hello)
    client.receive(server_hello)
    with pytest.raises(HandshakeError, match="could not prove"):
        client.receive(finished)  # alice's transcript has her own hello

    X = int(swapped["ephemeral"], 16)
    publics = [alice.public, server_key.public, X]
    for guess in range(4 * 4):
        server = ServerHandshake(server_key, allow=allowed.__contains__)
        server_hello, _ = server.receive(swapped_hello)
        Y = int(json.loads(server_hello)["ephemeral"], 16)
        known = [pow(y, eve.private, P) for y in [*publics, Y]]
        terms = {
            "ss": pow(server_key.public, eve.private, P),  # E^b = B^e
            "se": pow(Y, eve.private, P),  # E^y = Y^e
            "ee": known[guess % 4],  # X^y: needs alice's x or the server's y
            "es": known[guess // 4],  # X^b: needs alice's x or the server's b
        }
        session_keys, th = key_schedule("secure", terms, swapped_hello, server_hello)
        confirm = confirmation_tag(session_keys.client_confirm, th).hex()
        with pytest.raises(HandshakeError, match="could not prove"):
            server.receive(encode_message({"type": "client_finished", "confirm": confirm}))
        assert server.session is None


# --- invalid and small-subgroup values sent to the client -----------------------------------


@pytest.mark.parametrize("field", ["static", "ephemeral"])
@pytest.mark.parametrize(
    "value",
    [1, P - 1, NON_SQUARE, P + 1],
    ids=["1", "p-1", "outside the subgroup", "above p"],
)
def test_the_client_refuses_a_bad_value_from_the_server(field, value, secure_keys):
    """Unpinned, so only the value check can stop it: 1 and p-1 make K predictable, a
    non-square leaks the client's secret modulo 2, a number above p is out of range."""
    client = ClientHandshake(secure_keys("alice"))
    server = ServerHandshake(secure_keys("server"))
    server_hello, _ = server.receive(client.start())
    fields = json.loads(server_hello)
    fields[field] = f"{value:#x}"
    with pytest.raises(InvalidPublicValue):
        client.receive(reordered_server_hello(fields))
    assert client.state == "failed" and client._keys is None


def test_a_server_that_shows_the_clients_own_key_is_refused(secure_keys):
    """Reflection in the handshake: alice's own public key comes back as the server's."""
    alice = secure_keys("alice")
    client = ClientHandshake(alice)
    server_hello, _ = ServerHandshake(secure_keys("server")).receive(client.start())
    fields = json.loads(server_hello)
    fields["static"] = f"{alice.public:#x}"
    with pytest.raises(HandshakeError, match="reflection"):
        client.receive(reordered_server_hello(fields))


# --- replay of a recorded server, and randomness that repeats -------------------------------


def test_a_recorded_server_replayed_to_a_new_client_gets_nowhere(secure_keys):
    """Eve recorded the server's two messages; alice connects again and Eve answers with
    the recording (the right, pinned key in it). Alice's fresh nonce and ephemeral key
    make the old proof wrong."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    first = ClientHandshake(alice, expected_server_key=server_key.public_key)
    recorded = ServerHandshake(server_key).receive(first.start())
    again = ClientHandshake(alice, expected_server_key=server_key.public_key)
    again.start()
    again.receive(recorded[0])
    with pytest.raises(HandshakeError, match="could not prove"):
        again.receive(recorded[1])


@pytest.mark.parametrize("stuck", ["client", "server"])
def test_one_side_whose_randomness_repeats_still_never_reuses_a_key(stuck, secure_keys):
    """A broken random source on one side repeats its nonce and ephemeral key exactly;
    the other side's fresh ones still give new keys, so the message counter (nonce 0,
    1, ...) never runs twice under one AES-GCM key."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    seen = []
    for _ in range(2):
        rng = PinnedRandom(b"stuck")  # the same answers every time
        client = ClientHandshake(alice, rng=rng if stuck == "client" else None)
        server = ServerHandshake(server_key, rng=rng if stuck == "server" else None)
        run(client, server)
        assert client.session is not None
        sender = 0 if stuck == "client" else 1
        seen.append((client.transcript[sender][1], client.session.keys))
    (first_hello, first_keys), (second_hello, second_keys) = seen
    assert first_hello == second_hello  # the stuck side really repeated itself
    assert first_keys.client_to_server != second_keys.client_to_server
    assert first_keys.server_to_client != second_keys.server_to_client


# --- comparisons of secrets ------------------------------------------------------------------


def test_the_proofs_and_fingerprint_pins_are_compared_in_constant_time(secure_keys, monkeypatch):
    """Both Finished values and a fingerprint pin go through ``hmac.compare_digest``,
    not ``==`` (which stops at the first differing byte and tells the timing)."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.extend((a, b))
        return real(a, b)

    monkeypatch.setattr(handshake.hmac, "compare_digest", spy)
    server_key = secure_keys("server")
    client = ClientHandshake(secure_keys("alice"), expected_server_key=server_key.fingerprint)
    server = ServerHandshake(server_key)
    run(client, server)
    assert client.done and server.done
    proofs = {m["confirm"].encode() for _, m in client.transcript if "confirm" in m}
    assert len(proofs) == 2 and proofs <= set(compared)
    assert server_key.fingerprint.encode() in compared


# --- the limits the text admits: toy mode protects nothing -----------------------------------


def _toy_private(public: int) -> int:
    """Eve's whole attack on a toy key: try the 22 exponents (notebook 01)."""
    return next(x for x in range(1, TOY.q + 1) if pow(TOY.g, x, TOY.p) == public)


def test_toy_mode_lets_a_listener_pose_as_either_side(toy_keys):
    """From the public keys alone Eve finds both private keys, so pinning and the
    allowlist check nothing in toy mode: she finishes as the pinned server and as alice."""
    alice, server_key = toy_keys("alice"), toy_keys("server")
    fake_server = keys.KeyPair(TOY, _toy_private(server_key.public), server_key.public)
    client = ClientHandshake(alice, "toy", expected_server_key=server_key.public_key)
    run(client, ServerHandshake(fake_server, "toy"))
    assert client.done and client.session.peer_key == server_key.public_key

    fake_alice = keys.KeyPair(TOY, _toy_private(alice.public), alice.public)
    server = ServerHandshake(server_key, "toy", allow=lambda key: key == alice.public_key)
    run(ClientHandshake(fake_alice, "toy"), server)
    assert server.done and server.session.peer_key == alice.public_key


def test_toy_mode_takes_reflected_changed_and_made_up_frames(toy_keys):
    """One shift for both directions and no tag: a frame bounced back opens, a changed
    one opens to something else, and an empty frame from anyone is a clean goodbye."""
    talk = Conversation(toy_keys("alice"), toy_keys("server"), "toy")
    try:
        frame = talk.client.seal_frame("hello")
        talk.server_sock.sendall(frame)  # reflected back to alice
        assert talk.client.recv(timeout=5) == b"hello"
        changed = bytearray(talk.client.seal_frame("pay 10"))
        changed[-1] = (changed[-1] + 1) % 256
        talk.client_sock.sendall(bytes(changed))
        assert talk.server.recv(timeout=5) == b"pay 11"
        talk.client_sock.sendall(HEADER.pack(0))  # Eve's goodbye
        with pytest.raises(ChannelClosed):
            talk.server.recv(timeout=5)
        assert talk.server.peer_closed and talk.server.failure is None
    finally:
        talk.close()



def test_toy_mode_lets_a_listener_take_the_data_port_with_the_ticket(toy_keys):
    """Task 4's ticket stops a stranger only if the stranger cannot read the offer: in toy
    mode Eve reads it from the wire (K from the two public keys) and shows the ticket as
    the session's next message before alice does."""
    talk = Conversation(toy_keys("alice"), toy_keys("server"), "toy")
    try:
        offer = talk.server.seal_frame(handoff.port_message(9107, "ab" * 32, 10))
        hellos = [message for _, message in talk.client.session.transcript[:2]]
        a = _toy_private(int(hellos[0]["static"], 16))
        shared = pow(int(hellos[1]["static"], 16), a, TOY.p)
        eve = CaesarCipher(shared)
        ticket = json.loads(eve.open(offer[HEADER.size :]))["ticket"]
        forged = eve.seal(handoff.ticket_message(ticket))
        taken = talk.server.open_candidate(forged, lambda m: json.loads(m)["ticket"] == ticket)
        assert taken is not None
    finally:
        talk.close()


# --- nonce reuse across sessions: why the key schedule takes the hellos' nonces -----------------


def test_a_counter_under_keys_from_a_static_k_alone_repeats_across_connections(secure_keys):
    """Keys made from the static ``K = A^b`` alone (notebook 05's exercise scheme, fine there
    only because its K is fresh) are the same on every connection, and a counter that starts
    at 0 again reuses nonces: Eve XORs two recorded first messages and reads the second from
    the first. The lab's static mode, with the same K, still makes new keys every time."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    shared = alice.shared_secret(server_key.public_key).to_bytes(256, "big")

    def first_message(plaintext: bytes) -> bytes:
        key = HKDF(hashes.SHA256(), 32, None, b"client to server").derive(shared)
        return AESGCM(key).encrypt((0).to_bytes(12, "big"), plaintext, None)

    known, secret = b'{"command": "ls", "cwd": "/"}', b'{"command": "cat", "args": 1}'
    one, two = first_message(known), first_message(secret)
    assert bytes(a ^ b ^ c for a, b, c in zip(one, two, known, strict=False)) == secret

    session_keys = []
    for _ in range(2):
        client = ClientHandshake(alice, "static")
        run(client, ServerHandshake(server_key, "static"))
        assert client.session is not None
        session_keys.append(client.session.keys.client_to_server)
    assert session_keys[0] != session_keys[1]


def test_a_session_never_hands_out_a_second_sealer_that_counts_from_zero(secure_keys):
    """A re-run notebook cell, or a second channel on one session, asks ``ciphers()``
    again: it must carry on the count, never seal a second message with nonce 0."""
    client, server = ClientHandshake(secure_keys("alice")), ServerHandshake(secure_keys("server"))
    run(client, server)
    assert client.session is not None
    first = client.session.ciphers()[0].seal(b"first")
    second = client.session.ciphers()[0].seal(b"second")
    reader = AeadCipher(client.session.keys.client_to_server)
    assert reader.open(first) == b"first"
    assert reader.open(second) == b"second"


# --- what the allowlist and trust on first use do not protect ---------------------------------


def test_trust_on_first_use_writes_down_a_man_in_the_middle_met_first(tmp_path, secure_keys):
    """The first connection trusts whatever key answers: Mallory, in the middle that once,
    is recorded, and the real server is refused afterwards; another port starts over."""
    known = KnownServers(tmp_path / "known_servers.csv")
    mallory, server = secure_keys("mallory").public_key, secure_keys("server").public_key
    assert known.check("127.0.0.1", 9090, mallory) is True  # first contact: recorded
    with pytest.raises(ServerKeyChanged):
        known.check("127.0.0.1", 9090, server)
    assert known.check("127.0.0.1", 9091, mallory) is True  # another port: first contact again


def test_anyone_can_ask_whether_a_public_key_is_on_the_allowlist(tmp_path, secure_keys):
    """No proof of the private key is needed to learn who is enrolled: a listed public key
    gets the server's hello, an unlisted one ``not_allowed``. (Finishing needs the key.)"""
    allowlist = Allowlist(tmp_path / "allowlist.csv")
    allowlist.add("alice", secure_keys("alice").public_key)
    probe = keys.generate(FFDHE2048)  # the prober's own private number, anyone's public key

    def answer(public: int) -> str:
        posing = keys.KeyPair(FFDHE2048, probe.private, public)
        server = ServerHandshake(secure_keys("server"), allow=allowlist.is_allowed)
        try:
            replies = server.receive(ClientHandshake(posing).start())
        except KeyNotAllowed:
            return "not_allowed"
        return json.loads(replies[0])["type"]

    assert answer(secure_keys("alice").public) == "server_hello"
    assert answer(secure_keys("carol").public) == "not_allowed"


# --- no fallback: a refusal is never answered with a weaker mode --------------------------------


def test_a_client_told_mode_refused_never_tries_a_weaker_mode(tmp_path, secure_keys):
    """A man in the middle answers every hello with the server's ``mode`` refusal, hoping
    the client will come back in static or toy mode. One hello arrives, in secure mode,
    and the client stops with ``ModeMismatch``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    hellos: list[dict[str, object]] = []
    stop = threading.Event()

    def refuse_every_mode() -> None:
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                hellos.append(json.loads(read_frame(conn)))
                write_frame(conn, ServerHandshake.error_message(ModeMismatch("refused")))

    thread = threading.Thread(target=refuse_every_mode)
    thread.start()
    try:
        with pytest.raises(ModeMismatch):
            ChatClient.connect(
                "127.0.0.1",
                listener.getsockname()[1],
                secure_keys("alice"),
                known_servers=KnownServers(tmp_path / "known.csv"),
                timeout=5,
            )
        time.sleep(0.5)  # room for a second try, if the client made one
    finally:
        stop.set()
        thread.join(15)
        listener.close()
    assert not thread.is_alive()
    assert [hello["mode"] for hello in hellos] == ["secure"]


# --- forward secrecy needs the ephemeral exponents forgotten -------------------------------------


def _reachable_numbers(*roots: object) -> set[int]:
    """Every int a thief finds by following references from ``roots`` (not into modules,
    classes or functions: those lead to the whole interpreter, not to this session)."""
    seen: set[int] = set()
    numbers: set[int] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, int) and not isinstance(obj, bool):
            numbers.add(obj)
        todo.extend(gc.get_referents(obj))
    return numbers


def test_a_finished_handshake_keeps_no_ephemeral_exponent(secure_keys):
    """What forward secrecy rests on: once the keys are made, neither side's handshake nor
    its session holds ``x`` or ``y`` any more (a thief who reads them later finds the
    static keys and the session keys, never a way back to a recorded session's ``ee``)."""
    client = ClientHandshake(secure_keys("alice"), rng=PinnedRandom(b"client"))
    server = ServerHandshake(secure_keys("server"), rng=PinnedRandom(b"server"))
    run(client, server)
    exponents = []
    for seed in (b"client", b"server"):
        rng = PinnedRandom(seed)
        rng.token_bytes(32)  # the nonce comes first, then the ephemeral exponent
        exponents.append(FFDHE2048.random_exponent(rng.randbelow))
    x, y = exponents
    assert pow(FFDHE2048.g, x, P) == int(client.transcript[0][1]["ephemeral"], 16)
    found = _reachable_numbers(client, server, client.session, server.session)
    assert secure_keys("alice").private in found  # the search does find private numbers
    assert x not in found and y not in found
