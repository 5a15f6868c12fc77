"""Bulk records without copies: seal_into/open_into, SecureChannel.recv_into, ftp.transfer."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_channel import Conversation

from labcrypto import ciphers
from labcrypto.errors import ChannelClosed, DecryptionFailed, TransferFailed
from labcrypto.ftp import transfer, wire

# --- the cipher: sealing into a buffer is the same as sealing into a new object --------------


def _pair() -> tuple[ciphers.AeadCipher, ciphers.AeadCipher]:
    key = os.urandom(32)
    return ciphers.AeadCipher(key), ciphers.AeadCipher(key)


@given(st.lists(st.binary(max_size=3000), max_size=8), st.integers(0, 64))
def test_seal_into_and_open_into_speak_the_same_records_as_seal_and_open(messages, spare):
    """Records sealed into a buffer open with ``open``, and the other way round."""
    sender, receiver = _pair()
    copy_sender, copy_receiver = _pair()
    for message in messages:
        out = memoryview(bytearray(len(message) + ciphers.TAG_SIZE + spare))
        length = sender.seal_into(message, out)
        assert length == len(message) + ciphers.TAG_SIZE
        assert receiver.open(bytes(out[:length])) == message
        sealed = copy_sender.seal(message)
        plain = memoryview(bytearray(len(message) + spare))
        assert copy_receiver.open_into(sealed, plain) == len(message)
        assert plain[: len(message)] == message


def test_open_into_refuses_a_flipped_bit_a_replay_and_a_stub():
    sender, receiver = _pair()
    out = memoryview(bytearray(100))
    first, second = sender.seal(b"first record"), sender.seal(b"second record")
    flipped = bytearray(first)
    flipped[3] ^= 0x10
    with pytest.raises(DecryptionFailed):
        receiver.open_into(flipped, out)
    for record in (first, b"short"):  # a replay (the counter moved on); fewer bytes than a tag
        fresh = ciphers.AeadCipher.__new__(ciphers.AeadCipher)
        fresh._aead, fresh.counter = receiver._aead, 1
        with pytest.raises(DecryptionFailed):
            fresh.open_into(record, out)
    fresh = ciphers.AeadCipher.__new__(ciphers.AeadCipher)
    fresh._aead, fresh.counter = receiver._aead, 1
    assert fresh.open_into(second, out) == len(b"second record")


# --- the channel: recv_into -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["secure", "toy"])
def test_recv_into_reads_what_send_sent_and_the_goodbye(mode, secure_keys, toy_keys):
    keys = secure_keys if mode == "secure" else toy_keys
    talk = Conversation(keys("alice"), keys("server"), mode)
    try:
        client, server = talk.client, talk.server
        assert server is not None
        buffer = bytearray(server.max_message)
        messages = [b"x", os.urandom(300_000), bytearray(b"a bytearray"), b"z" * client.max_message]
        # More than the socket buffers hold: send in a thread while this one reads.
        sender = threading.Thread(target=lambda: [client.send(memoryview(m)) for m in messages])
        sender.start()
        for message in messages:
            assert server.recv_into(buffer) == message
        sender.join(10)
        client.send("text")
        assert server.recv() == b"text"  # recv and recv_into share the stream
        client.close()
        with pytest.raises(ChannelClosed):
            server.recv_into(buffer)
    finally:
        talk.close()


def test_recv_into_catches_a_flipped_bit_and_refuses_a_small_buffer(secure_keys):
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        server = talk.server
        assert server is not None
        with pytest.raises(ValueError, match="buffer"):
            server.recv_into(bytearray(1000))
        record = bytearray(talk.client.seal_frame(b"attack at dawn"))
        record[-1] ^= 1
        talk.client_sock.sendall(record)
        with pytest.raises(DecryptionFailed):
            server.recv_into(bytearray(server.max_message))
        with pytest.raises(DecryptionFailed):  # no second chances: the channel stays broken
            server.recv_into(bytearray(server.max_message))
    finally:
        talk.close()


# --- ftp.transfer: records, then the end record ----------------------------------------------


def _send_in_thread(talk: Conversation, path: Path, chunk: int) -> threading.Thread:
    fd = os.open(path, os.O_RDONLY)

    def send() -> None:
        try:
            transfer.send_file(talk.client, fd, path.stat().st_size, chunk, None)
        finally:
            os.close(fd)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("size", [0, 1, 65_536, 300_001])
def test_a_file_arrives_whole_through_send_file_and_receive_file(secure_keys, tmp_path, size):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(size))
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        assert talk.server is not None
        thread = _send_in_thread(talk, source, chunk=65_536)
        parts: list[bytes] = []
        progress: list[int] = []
        result = transfer.receive_file(
            talk.server,
            lambda data: parts.append(bytes(data)),
            size,
            lambda done, total: progress.append(done),
        )
        thread.join(10)
        assert result is None  # the sender asked for no digest check
        assert b"".join(parts) == source.read_bytes()
        assert progress == sorted(progress) and progress[-1:] == ([size] if size else [])
    finally:
        talk.close()


class _Stored(bytearray):
    """A sink that keeps what it gets, and can hash it (``stored_sha256``)."""

    def sha256(self) -> str:
        return hashlib.sha256(self).hexdigest()


@pytest.mark.parametrize("right", [True, False])
def test_an_old_style_digest_end_record_is_checked(secure_keys, right):
    """``{"sha256": ...}`` alone (the first version's end record) is checked on the stored bytes."""
    data = os.urandom(10_000)
    sent = hashlib.sha256(data).hexdigest() if right else "00" * 32
    talk = Conversation(secure_keys("alice"), secure_keys("server"))
    try:
        assert talk.server is not None
        talk.client.send(data)
        talk.client.send(wire.encode({"sha256": sent}))
        stored = _Stored()
        if right:
            assert transfer.receive_file(talk.server, stored.extend, 10_000, None, stored.sha256)
        else:
            with pytest.raises(TransferFailed, match="SHA-256"):
                transfer.receive_file(talk.server, stored.extend, 10_000, None, stored.sha256)
    finally:
        talk.close()
