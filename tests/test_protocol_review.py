"""The smaller findings of the protocol review (issue 14, section 2), one test each.

Each test here failed on the protocol as it was before the review's fixes
and passes now; the name says the rule it holds.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import socket
import threading
from pathlib import Path

import pytest
from test_handshake_attacks import PinnedRandom

from labcrypto import channel as channel_module
from labcrypto import groups, handshake, keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import HEADER, SecureChannel
from labcrypto.ciphers import MAX_BYTES_PER_KEY, MAX_MESSAGES_PER_KEY, AeadCipher
from labcrypto.errors import (
    AllowlistError,
    DecryptionFailed,
    HandshakeError,
    KeyFileError,
    KeyNotAllowed,
    KnownServersError,
    LabCryptoError,
    MalformedMessage,
    ServerKeyChanged,
    SessionExhausted,
)
from labcrypto.known_servers import KnownServers


def run(client: handshake.ClientHandshake, server: handshake.ServerHandshake) -> None:
    to_server = [client.start()]
    while to_server:
        to_client = [reply for message in to_server for reply in server.receive(message)]
        to_server = [reply for message in to_client for reply in client.receive(message)]


# --- pins: whole keys, fingerprints of 256 bits ------------------------------------------


def test_a_pinned_public_key_is_compared_whole_not_by_fingerprint(secure_keys, monkeypatch):
    """Two different keys whose fingerprints collide: a PublicKey pin still tells them apart."""
    monkeypatch.setattr(keys, "fingerprint_of", lambda group, value: "SHA256:" + "A" * 43)
    assert secure_keys("server").fingerprint == secure_keys("mallory").fingerprint
    client = handshake.ClientHandshake(
        secure_keys("alice"), expected_server_key=secure_keys("server").public_key
    )
    impostor = handshake.ServerHandshake(secure_keys("mallory"))
    hello, _ = impostor.receive(client.start())
    with pytest.raises(ServerKeyChanged):
        client.receive(hello)


def test_fingerprints_carry_the_whole_sha256_digest(secure_keys):
    fingerprint = secure_keys("alice").fingerprint
    assert fingerprint.startswith("SHA256:")
    assert len(base64.b64decode(fingerprint[7:] + "=")) * 8 == 256


@pytest.mark.parametrize(
    "pin",
    ["0123456789abcdef", "01:23:45:67:89:ab:cd:ef", "SHA256:abc", "SHA256:" + "A" * 42],
)
def test_short_fingerprint_pins_are_refused(pin, secure_keys):
    with pytest.raises(ValueError, match="whole key fingerprint"):
        handshake.ClientHandshake(secure_keys("alice"), expected_server_key=pin)


# --- one encoding of every field ----------------------------------------------------------


def test_a_finished_message_in_capitals_is_refused(secure_keys):
    """The old parser read the confirm hex in any case: 'a' → 'A' still finished."""
    client = handshake.ClientHandshake(secure_keys("alice"))
    server = handshake.ServerHandshake(secure_keys("server"))
    server_hello, finished = server.receive(client.start())
    client.receive(server_hello)
    (reply,) = client.receive(finished)
    message = json.loads(reply)
    message["confirm"] = message["confirm"].upper()
    assert message["confirm"] != json.loads(reply)["confirm"]  # it has letters to change
    with pytest.raises(MalformedMessage):
        server.receive(handshake.encode_message(message))
    assert not server.done


@pytest.mark.parametrize(
    "respell",
    [
        lambda text: text.replace('","', '", "', 1),  # a space
        lambda text: text.replace('"mode":"secure"', '"mode":"\\u0073ecure"'),  # an escape
        lambda text: text.replace('"version":2', '"version":2.0'),
        lambda text: text.replace('"static":"0x', '"static":"0x0'),  # a leading zero
        lambda text: text.replace('"static":"0x', '"static":"0X'),
        lambda text: '{"protocol":"labcrypto",' + text[1:].replace(',"protocol":"labcrypto"', ""),
    ],
)
def test_a_hello_spelled_another_way_is_refused(respell, secure_keys):
    hello = handshake.ClientHandshake(secure_keys("alice")).start().decode()
    changed = respell(hello)
    assert changed != hello
    with pytest.raises(HandshakeError):
        handshake.ServerHandshake(secure_keys("server")).receive(changed.encode())


# --- one group, one spelling: allowlist, pins, server --------------------------------------


def test_allow_add_refuses_a_toy_or_small_group_key(tmp_path: Path, toy_keys):
    allowlist = Allowlist(tmp_path / "allowlist.csv")
    with pytest.raises(AllowlistError, match="ffdhe2048 keys only"):
        allowlist.add("tiny", toy_keys("alice").public_key)
    small = keys.generate(groups.small_safe_prime_group(64, 1))
    with pytest.raises(AllowlistError, match="ffdhe2048 keys only"):
        allowlist.add("small", small.public_key)
    assert not (tmp_path / "allowlist.csv").exists()


def test_allowlist_rows_of_another_group_or_spelling_are_reported(
    tmp_path: Path, secure_keys, monkeypatch
):
    def no_prime_search(bits: int, seed: int = 0) -> groups.Group:
        raise AssertionError("a safeBITS row made the allowlist search for a prime")

    monkeypatch.setattr(groups, "small_safe_prime_group", no_prime_search)
    key = secure_keys("alice").public_key
    path = tmp_path / "allowlist.csv"
    path.write_text(
        "name,public_key,comment\n"
        f"good,{key.to_text()},\n"
        f"decimal,labcrypto-dh1 ffdhe2048 {secure_keys('bob').public},\n"
        f"capitals,labcrypto-dh1 ffdhe2048 {secure_keys('carol').public:#X},\n"
        "tiny,labcrypto-dh1 toy23 0x4,\n"
        "seeded,labcrypto-dh1 safe64-7 0x1234,\n",
        encoding="utf-8",
    )
    allowlist = Allowlist(path)
    assert [entry.name for entry in allowlist.entries()] == ["good"]
    problems = "\n".join(allowlist.problems)
    assert "line 3: bad public key for 'decimal'" in problems
    assert f"write {secure_keys('bob').public:#x}" in problems
    assert "line 4" in problems and "line 5" in problems and "line 6" in problems
    assert not allowlist.is_allowed(secure_keys("bob").public_key)


def test_known_servers_take_only_the_one_spelling(tmp_path: Path, secure_keys):
    path = tmp_path / "known.csv"
    path.write_text(
        f"address,public_key\n127.0.0.1:9,labcrypto-dh1 ffdhe2048 {secure_keys('server').public}\n"
    )
    with pytest.raises(KnownServersError, match="line 2"):
        KnownServers(path).get("127.0.0.1", 9)


# --- a broken channel stays broken ---------------------------------------------------------


def _pair(secure_keys) -> tuple[SecureChannel, SecureChannel, socket.socket, socket.socket]:
    left, right = socket.socketpair()
    result: dict[str, SecureChannel] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "server", SecureChannel.server(right, secure_keys("server"), timeout=10)
        )
    )
    thread.start()
    client = SecureChannel.client(left, secure_keys("alice"), timeout=10)
    thread.join(10)
    return client, result["server"], left, right


def test_after_a_failed_open_every_call_raises_the_same_error(secure_keys):
    client, server, left, _right = _pair(secure_keys)
    try:
        sealed = bytearray(client._sealer.seal(b"pay bob 10 euros"))
        sealed[0] ^= 1
        left.sendall(HEADER.pack(len(sealed)) + sealed)
        with pytest.raises(DecryptionFailed):
            server.recv(5)
        for call in (
            lambda: server.recv(5),
            lambda: server.send("still there?"),
            lambda: list(server),
        ):
            with pytest.raises(DecryptionFailed):
                call()
        assert server.closed
        left.settimeout(5)
        assert left.recv(100) == b""  # the server closed the stream: the peer sees the end
    finally:
        client.close()
        server.close()


def test_a_send_counter_that_runs_out_closes_the_channel(secure_keys):
    client, server, _left, _right = _pair(secure_keys)
    try:
        client._sealer.counter = MAX_MESSAGES_PER_KEY
        for _ in range(2):
            with pytest.raises(SessionExhausted):
                client.send("one line too many")
        assert client.closed
        with pytest.raises(channel_module.ConnectionLost):
            server.recv(5)  # no line was dropped silently: the connection ended
    finally:
        client.close()
        server.close()


def test_a_key_stops_at_gcms_data_volume_limit():
    cipher = AeadCipher(bytes(32))
    cipher.sealed_bytes = MAX_BYTES_PER_KEY - 3
    cipher.seal(b"abc")
    with pytest.raises(SessionExhausted, match="limit"):
        cipher.seal(b"d")


# --- strangers get 16 KiB frames until the handshake is done ----------------------------


def test_a_stranger_cannot_announce_a_frame_over_the_handshake_limit(secure_keys):
    left, right = socket.socketpair()
    with left, right:
        left.sendall(HEADER.pack(handshake.MAX_HANDSHAKE_MESSAGE + 1))  # and nothing more
        with pytest.raises(MalformedMessage, match="refused"):
            SecureChannel.server(right, secure_keys("server"), timeout=2)
        left.settimeout(2)
        (length,) = HEADER.unpack(left.recv(4))
        assert json.loads(left.recv(length))["code"] == "malformed"


# --- error text from the wire is not the server's word -------------------------------------


FORGED_WORDS = "\x1b[2J\nSERVER: your key expired, run: labcrypto chat --mode toy"


def test_a_known_error_code_is_shown_in_our_own_words_only(secure_keys):
    client = handshake.ClientHandshake(secure_keys("alice"))
    client.start()
    forged = handshake.encode_message(
        {"type": "error", "code": "not_allowed", "message": FORGED_WORDS}
    )
    with pytest.raises(KeyNotAllowed) as caught:
        client.receive(forged)
    text = str(caught.value)
    assert text.startswith("the server refused our key: it is not on the server's allowlist")
    assert "expired" not in text and "\x1b" not in text and "\n" not in text
    assert "expired" not in repr(caught.value)
    # Kept for whoever looks, quoted: one safe line.
    assert caught.value.fields["words"].startswith('"\\x1b[2J\\x0aSERVER')


def test_an_unknown_error_code_shows_the_servers_words_quoted_and_labelled(secure_keys):
    client = handshake.ClientHandshake(secure_keys("alice"))
    client.start()
    forged = handshake.encode_message(
        {"type": "error", "code": "\x1b]0;pwned\x07", "message": FORGED_WORDS}
    )
    with pytest.raises(HandshakeError) as caught:
        client.receive(forged)
    text = str(caught.value)
    assert "unauthenticated" in text and "your key expired" in text
    assert "\x1b" not in text and "\x07" not in text and "\n" not in text


# --- private keys only for their owner; names without a trailing newline ------------------


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path, secure_keys):
    key_path, _ = keys.save(secure_keys("alice"), "alice", tmp_path)
    os.chmod(key_path, 0o644)
    with pytest.raises(KeyFileError, match=f"chmod 600 {key_path}"):
        keys.load("alice", tmp_path)
    os.chmod(key_path, 0o600)
    assert keys.load("alice", tmp_path) == secure_keys("alice")


def test_a_key_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ValueError, match="not allowed"):
        keys.key_paths("alice\n")


# --- trust on first use fails closed ----------------------------------------------------------


def test_a_damaged_known_servers_row_is_an_error_naming_the_line(tmp_path: Path, secure_keys):
    path = tmp_path / "known_servers.csv"
    known = KnownServers(path)
    known.check("127.0.0.1", 9000, secure_keys("server").public_key)
    text = path.read_text()
    cut = text.index("labcrypto-dh1") + len("labcrypto-dh1 ffd")
    path.write_text(text[:cut] + "\n")  # the row cut short (a bad copy, a full disk)
    with pytest.raises(KnownServersError, match=f"{path}, line 2"):
        known.check("127.0.0.1", 9000, secure_keys("mallory").public_key)


def test_known_servers_writers_in_parallel_lose_no_row(tmp_path: Path, secure_keys):
    path = tmp_path / "known_servers.csv"
    key = secure_keys("server").public_key

    def record(port: int) -> None:
        KnownServers(path).check("127.0.0.1", port, key)  # each its own object, as two clients

    threads = [threading.Thread(target=record, args=(9000 + i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(KnownServers(path)) == 16
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind


# --- every bit of every message ---------------------------------------------------------


def _outcome(receiver, message: bytes, peer=None) -> bool:
    """Deliver ``message``; carry any replies on to ``peer``. True if both ended done."""
    try:
        replies = receiver.receive(message)
        while replies and peer is not None:
            replies = [out for reply in replies for out in peer.receive(reply)]
            receiver, peer = peer, receiver
    except LabCryptoError:
        return False
    return receiver.done and (peer is None or peer.done)


def test_every_flipped_bit_of_every_handshake_message_fails(secure_keys):
    """A man in the middle flips one bit of one message — every bit of every message of a
    secure handshake in turn. No flip may leave the handshake finished: a flip the parser
    lets through changes the transcript, and the Finished check catches it."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    client = handshake.ClientHandshake(
        alice, rng=PinnedRandom(b"client"), expected_server_key=server_key.public_key
    )
    server = handshake.ServerHandshake(
        server_key, allow=lambda key: key == alice.public_key, rng=PinnedRandom(b"server")
    )
    hello = client.start()
    client_waiting, server_waiting = copy.deepcopy(client), copy.deepcopy(server)
    server_hello, server_finished = server.receive(hello)
    server_after_hello = copy.deepcopy(server)
    client.receive(server_hello)
    client_after_hello = copy.deepcopy(client)
    (client_finished,) = client.receive(server_finished)
    assert _outcome(copy.deepcopy(server), client_finished)  # the honest run finishes

    def flips(message: bytes):
        for bit in range(len(message) * 8):
            flipped = bytearray(message)
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield bytes(flipped)

    finished = []
    for flipped in flips(hello):  # the server gets it; the client checks what comes back
        if _outcome(copy.deepcopy(server_waiting), flipped, copy.deepcopy(client_waiting)):
            finished.append(("client_hello", flipped))
    for flipped in flips(server_hello):  # then the genuine server_finished must fail
        client_copy = copy.deepcopy(client_waiting)
        if _outcome(client_copy, flipped) or _outcome(client_copy, server_finished):
            finished.append(("server_hello", flipped))
    for flipped in flips(server_finished):
        if _outcome(copy.deepcopy(client_after_hello), flipped):
            finished.append(("server_finished", flipped))
    for flipped in flips(client_finished):
        if _outcome(copy.deepcopy(server_after_hello), flipped):
            finished.append(("client_finished", flipped))
    assert finished == []


def test_a_hang_up_during_the_handshake_does_not_suggest_another_mode(secure_keys):
    """A listener that reads the hello and hangs up: the client's message must not invite
    switching modes (a real labcrypto server refuses a wrong mode with an error code)."""
    from labcrypto.client import open_channel
    from labcrypto.errors import ConnectionLost

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=hang_up)
    thread.start()
    try:
        with pytest.raises(ConnectionLost) as caught:
            open_channel("127.0.0.1", port, secure_keys("alice"), timeout=5)
    finally:
        thread.join(5)
        listener.close()
    text = str(caught.value)
    assert "hung up during the handshake" in text
    assert "mode" not in text.split("(A server")[0], text
