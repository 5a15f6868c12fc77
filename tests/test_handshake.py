"""The sans-IO handshake: two objects passing bytes, no sockets."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labcrypto import groups, handshake
from labcrypto.errors import (
    HandshakeError,
    InvalidPublicValue,
    KeyNotAllowed,
    MalformedMessage,
    ModeMismatch,
    ProtocolError,
    ServerKeyChanged,
    ServiceMismatch,
    UnexpectedMessage,
    UnknownGroup,
    VersionMismatch,
)


def run(client, server):
    """Carry messages between the two until both are done; return both sessions."""
    to_server = [client.start()]
    while to_server:
        to_client = [reply for message in to_server for reply in server.receive(message)]
        to_server = [reply for message in to_client for reply in client.receive(message)]
    assert client.done and server.done
    return client.session, server.session


@pytest.mark.parametrize("mode", ["secure", "static", "toy"])
def test_both_sides_derive_the_same_keys(mode, secure_keys, toy_keys):
    make = toy_keys if mode == "toy" else secure_keys
    alice, server_key = make("alice"), make("server")
    client = handshake.ClientHandshake(alice, mode)
    server = handshake.ServerHandshake(server_key, mode, allow=lambda k: k == alice.public_key)
    c, s = run(client, server)
    assert c.keys == s.keys
    assert c.peer_key == server_key.public_key and s.peer_key == alice.public_key
    assert c.ephemeral == s.ephemeral == (mode == "secure")
    assert c.service == s.service == "chat"
    c_send, c_recv = c.ciphers()
    s_send, s_recv = s.ciphers()
    assert s_recv.open(c_send.seal(b"hello server")) == b"hello server"
    assert c_recv.open(s_send.seal(b"hello client")) == b"hello client"
    assert [who for who, _ in c.transcript] == ["client", "server", "server", "client"]


def test_toy_mode_shows_the_course_numbers(toy_keys):
    alice, bob = toy_keys("alice"), toy_keys("bob")
    c, s = run(handshake.ClientHandshake(alice, "toy"), handshake.ServerHandshake(bob, "toy"))
    numbers = c.numbers
    assert (numbers["p"], numbers["g"]) == (23, 5)
    assert numbers["A"] == pow(5, alice.private, 23) and numbers["B"] == pow(5, bob.private, 23)
    assert numbers["K"] == pow(numbers["B"], alice.private, 23)
    assert numbers["K"] == pow(numbers["A"], bob.private, 23)
    assert s.numbers == numbers


def test_secure_mode_never_shows_the_shared_secret(secure_keys):
    c, _ = run(
        handshake.ClientHandshake(secure_keys("alice")),
        handshake.ServerHandshake(secure_keys("server")),
    )
    secret = secure_keys("alice").shared_secret(secure_keys("server").public_key)
    shown = json.dumps(c.numbers) + json.dumps(c.transcript) + repr(c)
    assert f"{secret:x}" not in shown and str(secret) not in shown


def test_every_session_has_fresh_keys(secure_keys):
    fingerprints = {
        run(
            handshake.ClientHandshake(secure_keys("alice")),
            handshake.ServerHandshake(secure_keys("server")),
        )[0].fingerprint
        for _ in range(10)
    }
    assert len(fingerprints) == 10


def test_secure_mode_uses_fresh_key_pairs_every_time(secure_keys):
    seen = set()
    for _ in range(5):
        c, _ = run(
            handshake.ClientHandshake(secure_keys("alice")),
            handshake.ServerHandshake(secure_keys("server")),
        )
        seen.add((c.numbers["A_ephemeral"], c.numbers["B_ephemeral"]))
    assert len(seen) == 5


def test_unknown_client_key_is_refused_before_anything_secret_is_sent(secure_keys):
    carol = secure_keys("carol")
    server = handshake.ServerHandshake(secure_keys("server"), allow=lambda key: False)
    hello = handshake.ClientHandshake(carol).start()
    with pytest.raises(KeyNotAllowed, match=re.escape(carol.fingerprint)):
        server.receive(hello)
    assert server.session is None and server._keys is None
    error = handshake.decode_message(handshake.ServerHandshake.error_message(KeyNotAllowed("x")))
    assert error["type"] == "error" and error["code"] == "not_allowed"


def test_client_turns_the_servers_refusal_into_a_clear_error(secure_keys):
    client = handshake.ClientHandshake(secure_keys("carol"))
    server = handshake.ServerHandshake(secure_keys("server"), allow=lambda key: False)
    try:
        server.receive(client.start())
    except KeyNotAllowed as exc:
        reply = handshake.ServerHandshake.error_message(exc)
    with pytest.raises(KeyNotAllowed, match="allow add"):
        client.receive(reply)


def test_pinning_catches_a_different_server_key(secure_keys):
    client = handshake.ClientHandshake(
        secure_keys("alice"), expected_server_key=secure_keys("server").public_key
    )
    impostor = handshake.ServerHandshake(secure_keys("mallory"))
    hello, _ = impostor.receive(client.start())
    with pytest.raises(ServerKeyChanged, match=re.escape(secure_keys("mallory").fingerprint)):
        client.receive(hello)


def test_pinning_by_fingerprint_accepts_the_right_server(secure_keys):
    fingerprint = secure_keys("server").fingerprint
    c, _ = run(
        handshake.ClientHandshake(secure_keys("alice"), expected_server_key=f" {fingerprint}\n"),
        handshake.ServerHandshake(secure_keys("server")),
    )
    assert c.peer_key == secure_keys("server").public_key


def test_knowing_a_public_key_is_not_enough(secure_keys):
    """Mallory presents Alice's public key without her private key: the finish fails."""
    alice, server_key = secure_keys("alice"), secure_keys("server")
    fake = type(alice)(alice.group, secure_keys("mallory").private, alice.public)
    server = handshake.ServerHandshake(server_key, allow=lambda k: k == alice.public_key)
    client = handshake.ClientHandshake(fake)
    replies = server.receive(client.start())
    with pytest.raises(HandshakeError, match="could not prove"):
        for message in replies:
            client.receive(message)


def test_a_changed_handshake_byte_breaks_the_confirmation(secure_keys):
    client = handshake.ClientHandshake(secure_keys("alice"))
    server = handshake.ServerHandshake(secure_keys("server"))
    hello = json.loads(client.start())
    hello["nonce"] = "00" * 32  # a man in the middle rewrites the client's nonce
    server_hello, finished = server.receive(handshake.encode_message(hello))
    client.receive(server_hello)
    with pytest.raises(HandshakeError, match="could not prove"):
        client.receive(finished)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"version": 1}, VersionMismatch),
        ({"version": 3}, VersionMismatch),
        ({"protocol": "tls"}, VersionMismatch),
        ({"mode": "toy"}, ModeMismatch),
        ({"mode": "static"}, ModeMismatch),
        ({"mode": "\x1b[2Jsecure"}, ModeMismatch),
        ({"service": "files"}, ServiceMismatch),
        ({"group": "modp2048"}, UnknownGroup),
        ({"static": "0x1"}, InvalidPublicValue),
        ({"static": "0x0"}, InvalidPublicValue),
        ({"static": hex(groups.FFDHE2048.p - 1)}, InvalidPublicValue),
        ({"static": hex(groups.FFDHE2048.p)}, InvalidPublicValue),
        ({"static": "0x" + "f" * 5000}, InvalidPublicValue),
        ({"static": "0x7"}, InvalidPublicValue),  # 7 is not a square mod p
        ({"static": 12345}, MalformedMessage),
        ({"nonce": "abcd"}, MalformedMessage),
        ({"nonce": None}, MalformedMessage),
        ({"version": True}, MalformedMessage),
        ({"type": "client_finished"}, UnexpectedMessage),
        ({"ephemeral": "0x1"}, InvalidPublicValue),
    ],
)
def test_bad_client_hellos_get_specific_errors(change, error, secure_keys):
    hello = json.loads(handshake.ClientHandshake(secure_keys("alice")).start())
    hello.update(change)
    server = handshake.ServerHandshake(secure_keys("server"))
    with pytest.raises(error) as caught:
        server.receive(handshake.encode_message(hello))
    assert "\x1b" not in str(caught.value)  # peer-chosen text only ever quoted
    with pytest.raises(UnexpectedMessage, match="failed"):
        server.receive(handshake.encode_message(hello))  # a failed handshake stays failed


def test_the_servers_own_key_is_refused(secure_keys):
    server_key = secure_keys("server")
    server = handshake.ServerHandshake(server_key)
    with pytest.raises(KeyNotAllowed, match="own public key"):
        server.receive(handshake.ClientHandshake(server_key).start())


def test_a_secure_server_refuses_static_only_clients(secure_keys):
    """The file service's old ``require_ephemeral`` is what secure mode always does."""
    for server in (
        handshake.ServerHandshake(secure_keys("server")),
        handshake.ServerHandshake(secure_keys("server"), require_ephemeral=True),
    ):
        with pytest.raises(ModeMismatch, match="static"):
            server.receive(handshake.ClientHandshake(secure_keys("alice"), "static").start())
    with pytest.raises(ValueError, match="fresh"):
        handshake.ClientHandshake(secure_keys("alice"), ephemeral=False)
    with pytest.raises(ValueError, match="part of secure mode"):
        handshake.ServerHandshake(secure_keys("server"), "static", require_ephemeral=True)


def test_out_of_order_messages(secure_keys):
    client = handshake.ClientHandshake(secure_keys("alice"))
    with pytest.raises(UnexpectedMessage):
        client.receive(b'{"type":"server_hello"}')  # before start()
    with pytest.raises(UnexpectedMessage, match="already failed"):
        client.start()
    client = handshake.ClientHandshake(secure_keys("alice"))
    client.start()
    with pytest.raises(UnexpectedMessage):
        client.start()


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[1,2]", b'{"no":"type"}', b"\xff\xfe", b"[" * 10000, b"1" * 20000],
)
def test_garbage_is_a_malformed_message(data, secure_keys):
    with pytest.raises(MalformedMessage):
        handshake.ServerHandshake(secure_keys("server")).receive(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_ever_raise_protocol_errors(data):
    server = handshake.ServerHandshake(_SERVER_KEY)
    try:
        server.receive(data)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "version", "mode", "group", "static", "nonce", "ephemeral"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=80),
                  st.lists(st.integers(), max_size=3)),
    )
)
def test_arbitrary_json_objects_only_ever_raise_protocol_errors(message):
    message.setdefault("type", "client_hello")
    try:
        handshake.ServerHandshake(_SERVER_KEY).receive(json.dumps(message).encode())
    except ProtocolError:
        pass


def test_modes_and_groups_must_match(toy_keys, secure_keys):
    with pytest.raises(ValueError, match="uses group"):
        handshake.ClientHandshake(toy_keys("alice"), "secure")
    with pytest.raises(ValueError, match="part of secure mode"):
        handshake.ClientHandshake(toy_keys("alice"), "toy", ephemeral=True)
    with pytest.raises(ValueError, match="mode must be"):
        handshake.ServerHandshake(secure_keys("server"), "fast")


from labcrypto import keys as _keys  # noqa: E402  (one key for the property tests)

_SERVER_KEY = _keys.generate()
