"""SecureChannel and framing, over socket.socketpair() (no network needed)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labcrypto import channel
from labcrypto.errors import (
    ChannelClosed,
    ConnectionLost,
    DecryptionFailed,
    FrameTooLarge,
    KeyNotAllowed,
    ProtocolError,
    ServerKeyChanged,
)


class Conversation:
    """A client and a server channel over a socketpair; the server runs in a thread."""

    def __init__(self, client_key, server_key, mode="secure", **client_options):
        self.client_sock, self.server_sock = socket.socketpair()
        self.client_sock.settimeout(5)
        self.server: channel.SecureChannel | None = None
        self.server_error: Exception | None = None

        def serve():
            try:
                self.server = channel.SecureChannel.server(
                    self.server_sock, server_key, mode, timeout=5
                )
            except Exception as exc:  # recorded for the test to look at
                self.server_error = exc

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            self.client = channel.SecureChannel.client(
                self.client_sock, client_key, mode, timeout=5, **client_options
            )
        except Exception:
            self.client_sock.close()  # the server thread sees the end and stops waiting
            raise
        finally:
            thread.join(10)

    def close(self):
        for sock in (self.client_sock, self.server_sock):
            sock.close()


@pytest.mark.parametrize("mode", ["secure", "toy"])
def test_a_full_conversation_in_both_modes(mode, secure_keys, toy_keys):
    keys = secure_keys if mode == "secure" else toy_keys
    talk = Conversation(keys("alice"), keys("server"), mode)
    try:
        client, server = talk.client, talk.server
        assert server is not None and client.session.keys == server.session.keys
        for text in ["hello", "héllo wörld ✓", "x" * 100_000]:
            client.send(text)
            assert server.recv_text() == text
            server.send(text.upper())
            assert client.recv_text() == text.upper()
        client.close()
        with pytest.raises(ChannelClosed):
            server.recv()
        assert list(server) == []
    finally:
        talk.close()


def test_secure_frames_hide_the_plaintext(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    wire = []
    talk.client.on_wire = lambda direction, data: wire.append(data)
    talk.client.send("the secret plan")
    assert talk.server.recv() == b"the secret plan"
    assert b"secret" not in b"".join(wire)
    talk.close()


def test_toy_frames_are_just_shifted(toy_keys):
    talk = Conversation(toy_keys("alice"), toy_keys("server"), "toy")
    wire = []
    talk.client.on_wire = lambda direction, data: wire.append(data)
    talk.client.send("attack at dawn")
    talk.server.recv()
    ciphertext = wire[0][4:]
    guesses = {bytes((b - k) % 256 for b in ciphertext) for k in range(256)}
    assert b"attack at dawn" in guesses  # 256 tries break it
    talk.close()


def _raw_frame(talk, payload: bytes) -> None:
    talk.client_sock.sendall(struct.pack("!I", len(payload)) + payload)


def test_a_flipped_bit_is_caught(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    sealed = talk.client._sealer.seal(b"pay bob 10 euros")
    tampered = bytearray(sealed)
    tampered[4] ^= 0x01
    _raw_frame(talk, bytes(tampered))
    with pytest.raises(DecryptionFailed):
        talk.server.recv()
    with pytest.raises(DecryptionFailed):
        talk.server.recv()  # no second chance after a failure: the same error again
    talk.close()


def test_replayed_and_reordered_frames_are_caught(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    first = talk.client._sealer.seal(b"one")
    second = talk.client._sealer.seal(b"two")
    _raw_frame(talk, first)
    assert talk.server.recv() == b"one"
    _raw_frame(talk, first)  # replay
    with pytest.raises(DecryptionFailed):
        talk.server.recv()
    talk.close()

    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    first = talk.client._sealer.seal(b"one")
    second = talk.client._sealer.seal(b"two")
    _raw_frame(talk, second)  # reordered
    with pytest.raises(DecryptionFailed):
        talk.server.recv()
    talk.close()


def test_an_oversized_length_is_refused_before_reading(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    talk.client_sock.sendall(struct.pack("!I", 2**32 - 1))  # "4 GiB follow"
    with pytest.raises(FrameTooLarge, match="Refused before reading"):
        talk.server.recv(timeout=2)
    talk.close()


def test_a_cut_connection_is_not_a_clean_close(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    talk.client_sock.sendall(struct.pack("!I", 100) + b"half")
    talk.client_sock.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionLost, match="middle of a frame"):
        talk.server.recv()
    talk.close()

    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    talk.client_sock.shutdown(socket.SHUT_WR)  # gone without a goodbye
    with pytest.raises(ConnectionLost, match="without a goodbye"):
        talk.server.recv()
    talk.close()


def test_goodbye_is_sent_once_and_leaves_the_stream_open_for_reading(secure_keys):
    """``goodbye`` before ``close`` (what a client with a reader thread does): the peer
    sees one clean goodbye, never a cut, and our side can still read its reply."""
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    talk.client.goodbye()
    talk.client.goodbye()  # a second call sends nothing
    with pytest.raises(ChannelClosed, match="closed the conversation"):
        talk.server.recv(timeout=2)
    talk.server.send(b"bye to you too")
    assert talk.client.recv(timeout=2) == b"bye to you too"
    talk.client.close()  # no second goodbye: the server's stream holds nothing more
    talk.server_sock.settimeout(2)
    assert talk.server_sock.recv(100) == b""
    talk.close()


def test_a_timeout_mid_frame_keeps_the_stream_in_step(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    frame = channel.encode_frame(talk.client._sealer.seal(b"slow message"))
    talk.client_sock.sendall(frame[:7])
    with pytest.raises(TimeoutError):
        talk.server.recv(timeout=0.2)
    talk.client_sock.sendall(frame[7:])
    assert talk.server.recv(timeout=2) == b"slow message"
    talk.close()


def test_send_refuses_empty_and_oversized_messages(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    with pytest.raises(ValueError, match="empty"):
        talk.client.send(b"")
    with pytest.raises(FrameTooLarge, match="split"):
        talk.client.send(b"x" * (talk.client.max_message + 1))
    received = []
    reader = threading.Thread(target=lambda: received.append(talk.server.recv(timeout=5)))
    reader.start()
    talk.client.send(b"x" * talk.client.max_message)  # exactly the limit is fine
    reader.join(5)
    assert len(received[0]) == talk.client.max_message
    talk.close()


def test_the_allowlist_refusal_reaches_the_client(secure_keys):
    client_sock, server_sock = socket.socketpair()
    errors = []

    def serve():
        try:
            channel.SecureChannel.server(server_sock, secure_keys("server"), allow=lambda k: False)
        except KeyNotAllowed as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    with pytest.raises(KeyNotAllowed, match="allowlist"):
        channel.SecureChannel.client(client_sock, secure_keys("carol"), timeout=5)
    thread.join(5)
    assert len(errors) == 1
    client_sock.close()
    server_sock.close()


def test_a_pinned_client_refuses_the_wrong_server(secure_keys):
    with pytest.raises(ServerKeyChanged):
        Conversation(
            secure_keys("alice"), secure_keys("mallory"),
            expected_server_key=secure_keys("server").public_key,
        )


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_frame_decoder_handles_any_split(chunk):
    messages = [b"", b"a", b"hello", bytes(range(256)) * 3]
    stream = b"".join(channel.encode_frame(m) for m in messages)
    decoder = channel.FrameDecoder()
    got = []
    for i in range(0, len(stream), chunk):
        got += decoder.feed(stream[i : i + chunk])
    assert got == messages and decoder.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=64))
def test_frame_decoder_on_arbitrary_bytes_never_crashes_with_a_foreign_error(data, limit):
    decoder = channel.FrameDecoder(max_size=limit)
    try:
        frames = decoder.feed(data)
    except ProtocolError:
        return
    assert all(len(f) <= limit for f in frames)
    assert sum(4 + len(f) for f in frames) + decoder.pending == len(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=5), st.data())
def test_frame_reader_reads_back_what_was_written(messages, data):
    left, right = socket.socketpair()
    try:
        left.settimeout(2)
        right.settimeout(2)
        for message in messages:
            channel.write_frame(left, message)
        left.shutdown(socket.SHUT_WR)
        reader = channel.FrameReader()
        assert [bytes(reader.read(right)) for _ in messages] == messages
        with pytest.raises(ChannelClosed):
            reader.read(right)
    finally:
        left.close()
        right.close()
