"""Property tests of every parser that reads bytes from the network (issue 8).

The rule for each: arbitrary input gives either a valid result or the
module's own error (``ProtocolError`` and its kin, or ``FileServiceError``
for a file request) — never a ``KeyError``, ``TypeError``,
``UnicodeError``... and never a hang. test_channel and test_handshake
fuzz the frame decoder and the server's side of the handshake; this file
adds the frame *reader* over a real socket, the client's side of the
handshake, and the JSON inside the channel: chat lines, chat requests,
the handoff's port and ticket messages, file requests and file replies.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labcrypto import channel, chat_messages, client, ftp, groups, handoff, handshake, keys
from labcrypto.errors import (
    ChannelClosed,
    FileServiceError,
    HandoffFailed,
    LineRefused,
    ProtocolError,
)
from labcrypto.ftp import wire as ftp_wire

pytestmark = pytest.mark.timeout(120)

_SERVER_KEY = keys.generate(groups.FFDHE2048)
_CLIENT_KEY = keys.generate(groups.FFDHE2048)

#: Any JSON value, a few levels deep.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)  # fmt: skip
#: Text that looks like a path, with the characters that make paths dangerous.
path_text = st.lists(
    st.sampled_from(["a", "b", "/", ".", "..", "\x00", "\\", "\u2215", " ", "\n", "é", "\ud800"]),
    max_size=8,
).map("".join)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- frames over a real socket ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_frame_reader_on_arbitrary_bytes_reads_frames_or_raises_its_own_errors(data, limit):
    left, right = socket.socketpair()
    try:
        right.settimeout(2)
        left.sendall(data)
        left.shutdown(socket.SHUT_WR)
        reader = channel.FrameReader(limit)
        got = 0
        for _ in range(len(data) + 1):  # each frame uses >= 4 bytes: bounded
            try:
                got += 4 + len(reader.read(right))
            except ChannelClosed:
                assert got == len(data)  # a clean end only at a frame boundary
                return
            except ProtocolError:
                return
        raise AssertionError("the reader did not stop")
    finally:
        left.close()
        right.close()


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=40))
def test_frame_timeout_cuts_a_stalled_frame_and_never_a_whole_one(head):
    left, right = socket.socketpair()
    try:
        right.settimeout(0.05)
        reader = channel.FrameReader(frame_timeout=0.1)
        left.sendall(channel.HEADER.pack(len(head) + 1) + head)  # one byte short
        errors = []
        for _ in range(20):  # 20 x 0.05 s: well past the frame timeout
            try:
                reader.read(right)
            except TimeoutError:
                continue
            except ProtocolError as exc:
                errors.append(exc)
                break
        assert errors and type(errors[0]).__name__ == "PeerTooSlow"
    finally:
        left.close()
        right.close()


# --- the client's side of the handshake ------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), json_values.map(_json_bytes)))
def test_client_handshake_on_arbitrary_server_bytes(data):
    client_side = handshake.ClientHandshake(_CLIENT_KEY)
    client_side.start()
    try:
        client_side.receive(data)
    except ProtocolError:
        assert client_side.state == "failed"


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "version", "static", "nonce", "ephemeral", "code", "message"]),
        json_values,
    )
)
def test_client_handshake_on_arbitrary_server_objects(message):
    message.setdefault("type", "server_hello")
    client_side = handshake.ClientHandshake(_CLIENT_KEY, ephemeral=True)
    client_side.start()
    try:
        client_side.receive(_json_bytes(message))
    except ProtocolError:
        pass


# --- the chat's messages inside the channel ---------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_values.map(_json_bytes)))
def test_chat_request_parser(data):
    try:
        text = chat_messages.parse_say(data)
    except (ProtocolError, LineRefused):
        return
    assert isinstance(text, str) and 0 < len(text) <= chat_messages.MAX_TEXT


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(st.sampled_from(["type", "from", "text", "time"]), json_values).map(
            _json_bytes
        ),
    )
)
def test_chat_line_parser(data):
    try:
        line = chat_messages.decode_line(data)
    except ProtocolError:
        return
    assert isinstance(line.sender, str) and isinstance(line.text, str)
    assert line.kind in ("message", "notice")


# --- the handoff's messages ---------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "port", "ticket", "expires_in"]), json_values))
def test_port_message_parser(message):
    try:
        port, ticket = client._port_fields(message)
    except HandoffFailed:
        return
    assert 1 <= port <= 65535 and isinstance(ticket, str) and ticket


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_values.map(_json_bytes)))
def test_ticket_checker_only_ever_says_yes_or_no(data):
    ticket = os.urandom(32).hex()
    check = handoff._ticket_checker(ticket)
    assert check(data) is False
    assert check(handoff.ticket_message(ticket)) is True


# --- the file service's messages ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_values.map(_json_bytes)))
def test_file_message_parser(data):
    try:
        message = ftp_wire.decode(data)
    except ProtocolError:
        return
    assert isinstance(message, dict)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["ok", "error", "message", "result"]), json_values))
def test_file_reply_parser(reply):
    try:
        assert ftp_wire.raise_if_error(reply)["ok"] is True
    except FileServiceError as exc:
        assert type(exc) in ftp_wire.WIRE_ERRORS.values()


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_listing_entry_parser(item):
    try:
        entry = ftp_wire.listing_entry(item)
    except ProtocolError:
        return
    assert set(entry) == {"name", "kind", "size", "mtime"}


class FakeChannel:
    """Plays the client's side of one request: the request, then the stream ends."""

    class session:
        fingerprint = "0" * 16

    def __init__(self, request: bytes) -> None:
        self.incoming = [request]
        self.sent: list[bytes] = []

    def recv(self, timeout: float | None = None) -> bytes:
        if not self.incoming:
            raise ChannelClosed("the fake client has nothing more to say")
        return self.incoming.pop(0)

    def send(self, message: bytes | str) -> None:
        self.sent.append(message.encode() if isinstance(message, str) else bytes(message))


@pytest.fixture(scope="module")
def file_server() -> Iterator[ftp.FileServer]:
    """A file server that is never started: the fuzz calls its request handling directly."""

    class Everyone:
        def is_allowed(self, key: keys.PublicKey) -> bool:
            return True

        def name_of(self, key: keys.PublicKey) -> str:
            return "fuzz"

    with tempfile.TemporaryDirectory() as root:
        server = ftp.FileServer(_SERVER_KEY, Everyone(), root, max_upload=1000, max_cat=1000)
        home = Path(root) / "fuzz"
        home.mkdir()
        (home / "f.txt").write_text("hello")
        yield server


request_objects = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(sorted(ftp.COMMANDS)) | json_values,
        "cwd": path_text | json_values,
        "args": st.dictionaries(
            st.sampled_from(["path", "old", "new", "size", "overwrite"]),
            path_text | json_values,
        )
        | json_values,
    },
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(request_objects.map(_json_bytes), st.binary(max_size=100)))
def test_file_requests_get_a_reply_or_a_clean_refusal(file_server, data):
    """``_serve`` handles anything: no exception escapes to the connection thread."""
    fake = FakeChannel(data)
    file_server._serve(fake, "fuzz")  # type: ignore[arg-type]
    for payload in fake.sent[:1]:
        reply = json.loads(payload)
        assert isinstance(reply.get("ok"), bool)
        if reply["ok"] is False:
            assert reply["error"] in ftp_wire.WIRE_ERRORS
    root = Path(file_server.root)
    assert sorted(p.name for p in root.iterdir()) == ["fuzz"]  # nothing outside the home


def test_the_fake_channel_reaches_every_real_handler(file_server) -> None:
    """Each command, fed through the fake channel, gets a reply from its real handler."""
    (Path(file_server.root) / "fuzz" / "f.txt").write_text("hello")
    for command in file_server._commands():
        fake = FakeChannel(_json_bytes({"command": command, "args": {"path": "f.txt"}}))
        file_server._serve(fake, "fuzz")  # type: ignore[arg-type]
        assert fake.sent, command
