"""Hostile clients against a class's servers (issue 8): each case bounded, nothing leaks.

One ``Lab`` (a one-port chat room, a chat room with the two-port handoff,
the file service; see tests/hostile_clients.py) serves the whole module,
so the cases hit servers that have already seen every earlier attack.
After EVERY case, the autouse fixture checks that each server still
answers a well-behaved client and that threads, open file descriptors,
leased ports and connections are back where they started (bounded wait).

The unit-level versions of several attacks live in test_channel,
test_handshake, test_handoff and test_ftp; here they run against the
running servers, with the after-every-case rule on top.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import (
    HOST,
    TIMEOUT,
    Lab,
    chat_session,
    closed_by_peer,
    error_code,
    frame,
    hello,
    open_fds,
    raw_connect,
    read_frames,
    refusal,
    say,
    trickle,
)

from labcrypto import groups, jail
from labcrypto.channel import SecureChannel
from labcrypto.chat import LINE_BURST, ChatClient, ChatMessage, ChatServer
from labcrypto.errors import FileServiceError, HandoffFailed, LabCryptoError, PoolExhausted
from labcrypto.ftp import FileClient, FileServer
from labcrypto.handoff import MAX_CANDIDATES, ticket_message
from labcrypto.handshake import ClientHandshake, decode_message

pytestmark = pytest.mark.timeout(60)

P = groups.FFDHE2048.p
#: A peer that breaks the protocol must be cut off this fast (no timeout involved).
AT_ONCE = 2.0
#: A stalled peer must be cut off by this time (the servers' timeouts + slack).
STALLED = TIMEOUT + 2.0 + 1.5


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, secure_keys) -> Iterator[Lab]:
    threads, fds = threading.active_count(), open_fds()
    the_lab = Lab(tmp_path_factory.mktemp("hostile"), secure_keys)
    yield the_lab
    the_lab.stop()
    assert wait_until(lambda: threading.active_count() <= threads, 10), threading.enumerate()
    assert wait_until(lambda: open_fds() <= fds, 10), f"{open_fds()} fds open, {fds} before"


@pytest.fixture(autouse=True)
def after_every_case(lab: Lab) -> Iterator[None]:
    """Before: a quiet lab. After: it still serves, and nothing is left over."""
    assert wait_until(lambda: not any(lab.snapshot().connections.values()), 10)
    before = lab.snapshot()
    yield
    lab.check_healthy()
    leaks = lab.settle(before)
    assert not leaks, leaks


class Watcher:
    """A well-behaved member who records every line of the room."""

    def __init__(self, lab: Lab, name: str = "carol") -> None:
        self.texts: list[str] = []
        self.client = ChatClient.connect(
            HOST,
            lab.room.port,
            lab.keyring(name),
            server_key=lab.server_key.public_key,
            on_message=lambda m: self.texts.append(m.text),
        )

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def watcher(lab: Lab) -> Iterator[Watcher]:
    w = Watcher(lab)
    yield w
    w.close()


# --- handshake -----------------------------------------------------------------------


def _outside_subgroup() -> int:
    """The smallest value in [2, p-2] that is not in the prime-order subgroup."""
    y = 2
    while groups.in_subgroup(groups.FFDHE2048, y):
        y += 1
    return y


BAD_HELLOS: list[tuple[str, Callable[[Lab], bytes], str]] = [
    ("not json", lambda lab: b"{nope", "malformed"),
    ("not utf-8", lambda lab: b"\xff\xfe\x00", "malformed"),
    ("json array", lambda lab: b"[1, 2, 3]", "malformed"),
    ("json string", lambda lab: b'"client_hello"', "malformed"),
    ("no type", lambda lab: b'{"version": 1}', "malformed"),
    ("deep nesting", lambda lab: b"[" * 5_000 + b"]" * 5_000, "malformed"),
    ("a 5,000-digit number", lambda lab: b'{"type":"client_hello","version":' + b"1" * 5_000 + b"}",
     "malformed"),
    ("1e400", lambda lab: hello(lab.keyring("bob"))[:-1] + b',"n":1e400}', "malformed"),
    ("oversized message", lambda lab: hello(lab.keyring("bob"), pad="x" * 20_000), "malformed"),
    ("version as text", lambda lab: hello(lab.keyring("bob"), version="1"), "malformed"),
    ("version true", lambda lab: hello(lab.keyring("bob"), version=True), "malformed"),
    ("static as number", lambda lab: hello(lab.keyring("bob"), static=12345), "malformed"),
    ("static not hex", lambda lab: hello(lab.keyring("bob"), static="0xzz"), "malformed"),
    ("no static", lambda lab: hello(lab.keyring("bob"), static=None), "malformed"),
    ("short nonce", lambda lab: hello(lab.keyring("bob"), nonce="00" * 8), "malformed"),
    ("nonce list", lambda lab: hello(lab.keyring("bob"), nonce=[1, 2]), "malformed"),
    ("old version", lambda lab: hello(lab.keyring("bob"), version=1), "version"),
    ("unknown version", lambda lab: hello(lab.keyring("bob"), version=3), "version"),
    ("toy mode", lambda lab: hello(lab.keyring("bob"), mode="toy"), "mode"),
    ("static mode", lambda lab: hello(lab.keyring("bob"), mode="static"), "mode"),
    ("file service", lambda lab: hello(lab.keyring("bob"), service="files"), "service"),
    ("unknown group", lambda lab: hello(lab.keyring("bob"), group="modp2048"), "group"),
    ("made-up group", lambda lab: hello(lab.keyring("bob"), group="x" * 500), "group"),
    ("finished first", lambda lab: b'{"type":"client_finished","confirm":"00"}', "unexpected"),
    ("value 0", lambda lab: hello(lab.keyring("bob"), static="0x0"), "invalid_value"),
    ("value 1", lambda lab: hello(lab.keyring("bob"), static="0x1"), "invalid_value"),
    ("value p-1", lambda lab: hello(lab.keyring("bob"), static=f"{P - 1:#x}"), "invalid_value"),
    ("value p", lambda lab: hello(lab.keyring("bob"), static=f"{P:#x}"), "invalid_value"),
    ("value p+2", lambda lab: hello(lab.keyring("bob"), static=f"{P + 2:#x}"), "invalid_value"),
    ("value 2^4096", lambda lab: hello(lab.keyring("bob"), static=hex(1 << 4096)), "invalid_value"),
    (
        "outside the subgroup",
        lambda lab: hello(lab.keyring("bob"), static=f"{_outside_subgroup():#x}"),
        "invalid_value",
    ),
    (
        "ephemeral p-1",
        lambda lab: hello(lab.keyring("bob"), ephemeral=f"{P - 1:#x}"),
        "invalid_value",
    ),
    ("unknown key", lambda lab: hello(lab.keyring("mallory")), "not_allowed"),
    ("the server's own key", lambda lab: hello(lab.server_key), "not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "code"),
    [(make, code) for _, make, code in BAD_HELLOS],
    ids=[name for name, _, _ in BAD_HELLOS],
)
def test_a_bad_first_message_gets_one_error_and_the_door(lab: Lab, payload, code: str) -> None:
    with raw_connect(lab.room.port) as sock:
        started = time.monotonic()
        sock.sendall(frame(payload(lab)))
        frames = read_frames(sock, timeout=AT_ONCE + 1)
        assert time.monotonic() - started < AT_ONCE, "the server should answer and close at once"
    assert error_code(frames) == code
    assert len(frames) == 1, "one plain error, nothing encrypted"
    assert lab.room.members() == []


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff\xff", (2 << 20).to_bytes(4, "big") + b"x" * 100, b"\x00\x00\x00\x00"],
    ids=["4 GiB length", "2 MiB length", "zero-length frame"],
)
def test_a_bad_frame_before_the_handshake_is_cut_at_once(lab: Lab, data: bytes) -> None:
    with raw_connect(lab.room.port) as sock:
        sock.sendall(data)
        assert closed_by_peer(sock, AT_ONCE) is not None


def test_a_truncated_hello_then_hang_up(lab: Lab) -> None:
    whole = frame(hello(lab.keyring("bob")))
    with raw_connect(lab.room.port) as sock:
        sock.sendall(whole[: len(whole) // 2])
        sock.shutdown(1)  # SHUT_WR: "that is all you get"
        assert closed_by_peer(sock, AT_ONCE) is not None


def test_a_client_that_stops_halfway_is_timed_out(lab: Lab) -> None:
    with raw_connect(lab.pooled.port) as sock:
        sock.sendall(frame(hello(lab.keyring("bob"))))
        started = time.monotonic()
        replies = read_frames(sock, timeout=STALLED)  # hello, finished, then the door
        waited = time.monotonic() - started
    assert [decode_message(r)["type"] for r in replies] == ["server_hello", "server_finished"]
    assert TIMEOUT * 0.5 < waited < STALLED
    assert lab.pool.leased() == []  # no port was leased for it


def test_one_byte_per_second_does_not_hold_the_handshake_open(lab: Lab) -> None:
    """A per-recv timeout alone never fires here: every byte comes within it."""
    data = frame(hello(lab.keyring("bob")))  # ~600 bytes: ten minutes at this pace
    assert lab.room.settings.send_timeout > 1.0
    with raw_connect(lab.room.port) as sock:
        cut_after = trickle(sock, data, interval=1.0, limit=STALLED + 2)
    assert cut_after is not None and cut_after < TIMEOUT + 1.5, cut_after
    assert any(e.kind == "handshake-failed" for e in list(lab.room.events)[-5:])


def _record_session(lab: Lab) -> tuple[bytes, bytes, bytes]:
    """A real session by hand: (client_hello, client_finished, server nonce) as sent."""
    handshake = ClientHandshake(lab.keyring("alice"))
    with raw_connect(lab.room.port) as sock:
        first = handshake.start()
        sock.sendall(frame(first))
        channel_frames = read_frames_exact(sock, 2)
        finished = b""
        for payload in channel_frames:
            for out in handshake.receive(payload):
                finished = out
        sock.sendall(frame(finished))
        assert handshake.done
        nonce = decode_message(channel_frames[0])["nonce"].encode()
    return first, finished, nonce


def read_frames_exact(sock, count: int) -> list[bytes]:
    """Exactly ``count`` frames (the peer stays open)."""
    sock.settimeout(5.0)
    out = []
    for _ in range(count):
        header = _recv_exactly(sock, 4)
        out.append(_recv_exactly(sock, int.from_bytes(header, "big")))
    return out


def _recv_exactly(sock, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed early"
        data += chunk
    return bytes(data)


def test_a_replayed_session_start_gets_nowhere(lab: Lab, watcher: Watcher) -> None:
    first, finished, old_nonce = _record_session(lab)
    assert wait_until(lambda: "alice" not in lab.room.members())  # the real session ended
    with raw_connect(lab.room.port) as sock:
        sock.sendall(frame(first))
        hello_back, _ = read_frames_exact(sock, 2)
        assert decode_message(hello_back)["nonce"].encode() != old_nonce  # fresh server nonce
        sock.sendall(frame(finished))  # the old proof does not fit the new keys
        frames = read_frames(sock, timeout=AT_ONCE)
    assert error_code(frames) == "failed"
    assert "alice" not in lab.room.members()


# --- after the handshake ---------------------------------------------------------------


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _flip_last(data: bytes) -> bytes:
    return _flip(data, 8 * len(data) - 1)


def _swapped(first: bytes, second: bytes) -> bytes:
    return second + first


TRANSPORT: list[tuple[str, Callable[[SecureChannel], bytes]]] = [
    ("4 GiB length", lambda ch: b"\xff\xff\xff\xff"),
    ("zero-length frame", lambda ch: frame(b"")),
    ("random bytes", lambda ch: random.Random(8).randbytes(3000)),
    ("short frame", lambda ch: frame(b"tiny")),
    ("flipped bit in ciphertext", lambda ch: _flip(ch.seal_frame(say("evil 1")), 8 * 10 + 3)),
    ("flipped bit in the tag", lambda ch: _flip_last(ch.seal_frame(say("evil 2")))),
    ("reordered", lambda ch: _swapped(ch.seal_frame(say("evil 3")), ch.seal_frame(say("evil 4")))),
    # The goodbye is an encrypted empty message; the test reaches for the channel's
    # own sealer because ``send`` refuses to send one by itself.
    ("frames after close", lambda ch: frame(ch._sealer.seal(b"")) + ch.seal_frame(say("evil 7"))),
]  # fmt: skip


@pytest.mark.parametrize("attack", [a for _, a in TRANSPORT], ids=[n for n, _ in TRANSPORT])
def test_a_bad_frame_after_the_handshake_is_cut_at_once(lab: Lab, watcher: Watcher, attack) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        sock.sendall(attack(channel))
        assert closed_by_peer(sock, AT_ONCE) is not None
    time.sleep(0.1)
    assert not [t for t in watcher.texts if t.startswith("evil")], watcher.texts
    assert wait_until(lambda: "bob" not in lab.room.members())


def _still_chats(channel: SecureChannel, watcher: Watcher) -> None:
    """The member's next plain line reaches the room."""
    text = f"still here {random.random()}"
    channel.send(say(text))
    assert wait_until(lambda: text in watcher.texts, AT_ONCE + 2)


BAD_MESSAGES = [
    ("not a say message", b'{"type":"shout","text":"evil 5"}', "shout"),
    ("not json inside", b"\x00evil 6", "JSON"),
    ("duplicate keys", b'{"type":"say","text":"evil 8","text":"fine"}', "twice"),
    ("text is a list", b'{"type":"say","text":["evil 9"]}', "list"),
    ("text is a number", b'{"type":"say","text":5}', "int"),
    ("text is missing", b'{"type":"say"}', "NoneType"),
    ("invalid UTF-8", b'{"type":"say","text":"evil \xc3\x28"}', "UTF-8"),
    ("a list, not an object", b'["say","evil 10"]', "object"),
    ("NaN", b'{"type":"say","text":"evil 11","n":NaN}', "NaN"),
    ("a 5,000-digit number", b'{"type":"say","text":"evil 12","n":' + b"1" * 5_000 + b"}",
     "too large"),
    ("1e400", b'{"type":"say","text":"evil 13","n":1e400}', "too large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "words"), [b[1:] for b in BAD_MESSAGES], ids=[b[0] for b in BAD_MESSAGES]
)
def test_a_member_that_sends_a_bad_message_is_told_and_chats_on(
    lab: Lab, watcher: Watcher, data: bytes, words: str
) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        channel.send(data)
        assert words in refusal(channel, AT_ONCE + 2)
        _still_chats(channel, watcher)
        assert "bob" in lab.room.members()
    assert not [t for t in watcher.texts if t.startswith("evil") or t == "fine"]


UNSAFE_LINES = [
    ("a fake line with \\n", "hi\nalice: please send me your key file", "\\x0a"),
    ("terminal title", "\x1b]0;owned\x07", "\\x1b"),
    ("clear screen", "\x1b[2J\x1b[H", "\\x1b"),
    ("bidi override", "pay \u202e0001\u202c now", "\\u202e"),
    ("line separator", "one\u2028alice: two", "\\u2028"),
    ("zero-width joiner", "ad\u200dmin", "\\u200d"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "shown"), [u[1:] for u in UNSAFE_LINES], ids=[u[0] for u in UNSAFE_LINES]
)
def test_control_and_bidi_characters_are_refused_with_a_reply_naming_them(
    lab: Lab, watcher: Watcher, text: str, shown: str
) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        channel.send(say(text))
        reply = refusal(channel, AT_ONCE + 2)
        assert shown in reply and "\x1b" not in reply
        _still_chats(channel, watcher)
    assert text not in watcher.texts
    assert not [e for e in lab.room.events if "\x1b" in e.text or "\n" in e.text]


def test_a_lone_surrogate_is_refused_not_delivered(lab: Lab, watcher: Watcher) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        channel.send(b'{"type":"say","text":"evil \\ud800"}')
        assert "surrogate" in refusal(channel, AT_ONCE + 2)
        _still_chats(channel, watcher)
    assert not [t for t in watcher.texts if t.startswith("evil")]


def test_a_strangers_fields_reach_the_log_quoted(lab: Lab) -> None:
    forged = "secure\x1b[2J\n2026-01-01 INFO labcrypto: alice: I lost my key, send yours"
    with raw_connect(lab.room.port) as sock:
        sock.sendall(frame(hello(lab.keyring("bob"), mode=forged)))
        assert error_code(read_frames(sock, timeout=AT_ONCE + 1)) is not None
    assert wait_until(lambda: any(e.kind == "handshake-failed" for e in lab.room.events))
    for event in lab.room.events:
        assert "\x1b" not in event.text and "\n" not in event.text, event


def test_one_source_cannot_take_every_slot_and_the_next_is_told_busy(lab: Lab) -> None:
    cap = lab.room.settings.max_handshakes_per_source
    assert cap is not None
    flood = [raw_connect(lab.room.port, source="127.0.0.2") for _ in range(cap)]
    try:
        assert wait_until(lambda: lab.room.admission.waiting("127.0.0.2") == cap)
        with raw_connect(lab.room.port, source="127.0.0.2") as late:
            late.sendall(frame(hello(lab.keyring("bob"))))
            frames = read_frames(late, timeout=AT_ONCE + 1)
        assert error_code(frames) == "busy"
        message = decode_message(frames[0])["message"]
        assert "busy" in message and "127.0.0.2" in message and "try again" in message
        with lab.chat(lab.room, "erin") as erin:  # from 127.0.0.1: gets in at once
            assert erin.name == "erin"
    finally:
        for sock in flood:
            sock.close()


def test_a_source_whose_handshakes_keep_failing_is_slowed_down(lab: Lab) -> None:
    free, pause = 3, 1.0  # a long first pause: a quick answer is far below it, even under load
    server = ChatServer(
        lab.server_key, lab.allowlist, name="hostile-slowdown", handshake_timeout=TIMEOUT,
        free_failed_handshakes=free, failure_pause=pause,
    ).start()  # fmt: skip
    try:

        def answer_time() -> float:
            with raw_connect(server.port, source="127.0.0.3") as sock:
                started = time.monotonic()
                sock.sendall(frame(hello(lab.keyring("mallory"))))
                assert error_code(read_frames(sock, timeout=AT_ONCE + 5)) == "not_allowed"
                return time.monotonic() - started

        quick = [answer_time() for _ in range(free)]
        slowed = [answer_time() for _ in range(2)]
        assert max(quick) < pause, quick
        assert slowed[0] >= pause * 0.9 and slowed[1] >= 2 * pause * 0.9, slowed
        started = time.monotonic()  # someone from another address is not slowed
        with ChatClient.connect(
            HOST, server.port, lab.keyring("alice"), server_key=lab.server_key.public_key
        ) as alice:
            assert alice.name == "alice"
        assert time.monotonic() - started < pause + AT_ONCE
    finally:
        server.stop()


def test_a_crowd_on_the_data_port_cannot_keep_the_client_out(lab: Lab) -> None:
    control, channel, port, ticket = _port_offer(lab)
    crowd: list = []
    try:
        crowd.extend(raw_connect(port) for _ in range(MAX_CANDIDATES + 8))
        with control, raw_connect(port) as data:
            data.sendall(channel.seal_frame(ticket_message(ticket)))
            channel.rebind(data)
            assert decode_message(channel.recv(5.0))["type"] == "welcome"
            channel.close()
    finally:
        for sock in crowd:
            sock.close()


def test_a_replayed_frame_is_delivered_once_then_the_sender_is_cut(
    lab: Lab, watcher: Watcher
) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        sealed = channel.seal_frame(say("only once"))
        sock.sendall(sealed)
        assert wait_until(lambda: "only once" in watcher.texts)
        sock.sendall(sealed)
        assert closed_by_peer(sock, AT_ONCE) is not None
    assert watcher.texts.count("only once") == 1


def test_one_byte_per_second_after_the_handshake_is_cut_off(lab: Lab, watcher: Watcher) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        data = channel.seal_frame(say("slow " * 40))
        cut_after = trickle(sock, data, interval=1.0, limit=STALLED + 2)
    assert cut_after is not None and cut_after < TIMEOUT + 1.5, cut_after
    assert not [t for t in watcher.texts if t.startswith("slow")]


def test_a_frame_that_stalls_halfway_is_cut_off(lab: Lab) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    with sock:
        data = channel.seal_frame(say("stalled"))
        sock.sendall(data[: len(data) // 2])
        cut_after = closed_by_peer(sock, STALLED + 1)
    assert cut_after is not None and cut_after < STALLED, cut_after


def test_a_flood_of_small_frames_does_not_starve_the_others(lab: Lab) -> None:
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        sock.settimeout(2.0)
        for i in range(200_000):  # bounded; stops at `stop` or when the server drops us
            if stop.is_set():
                return
            try:
                sock.sendall(channel.seal_frame(say(f"f{i}")))
            except (OSError, LabCryptoError):
                return
            sent[0] += 1

    flooder = threading.Thread(target=flood, name="flooder", daemon=True)
    echoed = threading.Event()
    wanted = [""]

    def watch(message: ChatMessage) -> None:
        if message.text == wanted[0]:
            echoed.set()

    client = ChatClient.connect(
        HOST, lab.room.port, lab.keyring("alice"), server_key=lab.server_key.public_key,
        on_message=watch,
    )  # fmt: skip
    try:
        flooder.start()
        assert wait_until(lambda: sent[0] > 1000, 10), "the flood did not get going"
        round_trips = []
        for i in range(15):
            wanted[0] = f"polite {i}"
            echoed.clear()
            started = time.monotonic()
            client.send(wanted[0])
            assert echoed.wait(5.0), f"round trip {i} starved ({sent[0]} flood frames)"
            round_trips.append(time.monotonic() - started)
        assert statistics.median(round_trips) < 0.5, round_trips  # every one within 5 s, above
    finally:
        stop.set()
        flooder.join(5)
        client.close()
        # What bob sent and the room has not read yet (a receive buffer's worth, over a
        # thousand frames) is read at bob's share of the room's rate, ~170 lines a second:
        # 9.2 s of the 10 s the lab gives a closed connection to go, measured at load 28
        # (it failed there). The measurement is done: the room may read the rest at once.
        usual = lab.room.settings
        lab.room.settings = replace(usual, max_room_rate=None)
        sock.close()
        wait_until(lambda: not any(lab.snapshot().connections.values()), 10)
        lab.room.settings = usual


def test_a_flooder_is_slowed_to_its_share_and_told_so(lab: Lab, watcher: Watcher) -> None:
    # carol and bob: 30 lines a second each, after a burst
    usual = lab.room.settings
    lab.room.settings = replace(usual, max_room_rate=60.0)
    sock, channel = chat_session(lab.room, lab.keyring("bob"))
    try:
        assert sorted(lab.room.members()) == ["bob", "carol"]
        sock.settimeout(5.0)
        started = time.monotonic()
        sock.sendall(b"".join(channel.seal_frame(say(f"spam {i}")) for i in range(400)))
        time.sleep(2.0)
        got = len([t for t in watcher.texts if t.startswith("spam")])
        elapsed = time.monotonic() - started
        assert LINE_BURST <= got <= LINE_BURST + 30 * elapsed + 10, (got, elapsed)
        notices = []
        for _ in range(LINE_BURST + 10):  # bob's own copies come first, then the notice
            text = json.loads(channel.recv(2.0))["text"]
            if text.startswith("slow down"):
                notices.append(text)
                break
        assert notices and "30 lines per second" in notices[0]
        with lab.chat(lab.room, "alice") as alice:  # the room still answers at once
            t = time.monotonic()
            alice.send("not spam")
            while alice.recv(5.0).text != "not spam":
                pass
            assert time.monotonic() - t < 1.0
    finally:
        sock.close()
        lab.room.settings = usual
    spam = [t for t in watcher.texts if t.startswith("spam")]
    assert spam == [f"spam {i}" for i in range(len(spam))]  # in order, none lost before the cut


# --- the two-port handoff ----------------------------------------------------------------


def _port_offer(lab: Lab, name: str = "bob"):
    """A hand-made session on the pooled room: (control socket, channel, port, ticket)."""
    sock = raw_connect(lab.pooled.port)
    channel = SecureChannel.client(sock, lab.keyring(name), timeout=5.0)
    offer = decode_message(channel.recv(5.0))
    assert offer["type"] == "port"
    return sock, channel, offer["port"], offer["ticket"]


def _expires(lab: Lab, port: int) -> bool:
    return wait_until(lambda: port not in lab.pool.leased(), 1.0 + 3.0)


@pytest.mark.parametrize("stranger", ["silent", "garbage", "a plain ticket", "wrong ticket"])
def test_the_data_port_refuses_strangers_and_frees_the_port(lab: Lab, stranger: str) -> None:
    control, channel, port, ticket = _port_offer(lab)
    with control, raw_connect(port) as data:
        if stranger == "garbage":
            data.sendall(os.urandom(200))
        elif stranger == "a plain ticket":
            data.sendall(frame(ticket_message(ticket)))  # right ticket, not encrypted
        elif stranger == "wrong ticket":  # encrypted right, but not the ticket
            data.sendall(channel.seal_frame(ticket_message("00" * 32)))
        if stranger != "silent":
            assert closed_by_peer(data, AT_ONCE) is not None
        assert _expires(lab, port)  # nobody with the ticket came: the port goes back
        assert closed_by_peer(data, AT_ONCE) is not None


def test_another_sessions_ticket_is_refused_and_the_owner_still_gets_in(lab: Lab) -> None:
    control_a, channel_a, port_a, ticket_a = _port_offer(lab, "bob")
    control_b, channel_b, port_b, _ = _port_offer(lab, "dave")
    with control_a, control_b, raw_connect(port_a) as thief, raw_connect(port_a) as owner:
        thief.sendall(channel_b.seal_frame(ticket_message(ticket_a)))
        assert closed_by_peer(thief, AT_ONCE) is not None
        owner.sendall(channel_a.seal_frame(ticket_message(ticket_a)))
        channel_a.rebind(owner)
        assert decode_message(channel_a.recv(5.0))["type"] == "welcome"
        channel_a.close()
        assert _expires(lab, port_b)


def test_an_expired_ticket_finds_the_door_shut(lab: Lab) -> None:
    control, channel, port, ticket = _port_offer(lab)
    with control:
        assert _expires(lab, port)
        with pytest.raises((HandoffFailed, OSError, LabCryptoError)):
            data = raw_connect(port, timeout=2.0)
            with data:
                data.sendall(channel.seal_frame(ticket_message(ticket)))
                channel.rebind(data)
                channel.recv(2.0)


def test_pool_exhaustion_is_told_at_once_and_recovers(lab: Lab) -> None:
    holders = [lab.chat(lab.pooled, name) for name in ("bob", "dave")]
    try:
        assert len(lab.pool.leased()) == lab.pool.size
        started = time.monotonic()
        with pytest.raises(PoolExhausted):
            lab.chat(lab.pooled, "erin")
        assert time.monotonic() - started < AT_ONCE
        holders.pop().close()
        assert wait_until(lambda: len(lab.pool.leased()) < lab.pool.size)
        with lab.chat(lab.pooled, "erin") as late:
            assert late.data_port is not None
    finally:
        for client in holders:
            client.close()


# --- the file service ------------------------------------------------------------------


def _raw_request(lab: Lab, request: object, name: str = "alice") -> dict | None:
    """Send any JSON value as the request; the server's reply, or None if it hung up."""
    with raw_connect(lab.files.port) as sock:
        channel = SecureChannel.client(sock, lab.keyring(name), service="files", timeout=5.0)
        channel.send(json.dumps(request))
        try:
            return json.loads(channel.recv(5.0))
        except LabCryptoError:
            return None
        finally:
            channel.close()


RAW_REQUESTS: list[object] = [
    [],
    "ls",
    {"command": None},
    {"command": "../ls"},
    {"command": "__init__"},
    {"command": "_put"},
    {"command": "ls", "args": []},
    {"command": "ls", "args": {"path": ["..", ".."]}},
    {"command": "ls", "args": {"path": 7}},
    {"command": "ls", "cwd": ["/"]},
    {"command": "ls", "cwd": "/../.."},
    {"command": "ls", "cwd": "\x00"},
    {"command": "ls", "args": {"path": "\ud800"}},
    {"command": "ls", "args": {"path": "/" * 5000}},
    {"command": "cat", "args": {"path": "../../../../etc/passwd"}},
    {"command": "cd", "args": {"path": "/proc/self/root"}},
    {"command": "rename", "args": {"old": "a", "new": None}},
    {"command": "rename", "args": {"old": "/", "new": "x"}},
    {"command": "put", "args": {"path": "x", "size": -1}},
    {"command": "put", "args": {"path": "x", "size": 1.5}},
    {"command": "put", "args": {"path": "x", "size": True}},
    {"command": "put", "args": {"path": "x", "size": 10**30}},
    {"command": "put", "args": {"path": "/", "size": 1}},
    {"command": "put", "args": {"path": "..", "size": 1}},
    {"command": "put", "args": {"path": "x", "size": 1, "overwrite": "yes"}},
    {"command": "get", "args": {"path": "."}},
    {"command": "rmdir", "args": {"path": "/"}},
]


@pytest.mark.parametrize("request_", RAW_REQUESTS, ids=[str(r)[:40] for r in RAW_REQUESTS])
def test_odd_requests_get_a_refusal_and_touch_nothing(lab: Lab, request_: object) -> None:
    outside = sorted(p for p in lab.files_root.parent.rglob("*") if "files/alice" not in str(p))
    reply = _raw_request(lab, request_)
    if isinstance(request_, dict):
        assert reply is not None and reply["ok"] is False, reply
        assert reply["error"] in {
            "FileServiceError", "PathRefused", "PathOutsideHome", "BadPathName", "UploadTooLarge",
        }  # fmt: skip
    else:
        assert reply is None  # not even an object: the server says nothing and hangs up
    after = sorted(p for p in lab.files_root.parent.rglob("*") if "files/alice" not in str(p))
    assert after == outside


@pytest.mark.parametrize("number", [b"1" * 5_000, b"1e400"], ids=["5,000 digits", "1e400"])
def test_a_number_too_large_to_use_gets_a_refusal_not_a_hang_up(lab: Lab, number: bytes) -> None:
    """Python refuses over 4,300 digits with a bare ValueError: the request was dropped."""
    with raw_connect(lab.files.port) as sock:
        channel = SecureChannel.client(sock, lab.keyring("alice"), service="files", timeout=5.0)
        channel.send(b'{"command":"ls","args":{"path":"/","n":' + number + b"}}")
        reply = json.loads(channel.recv(5.0))
        channel.close()
    assert reply["ok"] is False and "too large" in reply["message"], reply


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".labcrypto-upload-")]


def _cut_upload(lab: Lab, path: str, data: bytes, cut_at: int) -> None:
    """Upload by hand and drop the connection after ``cut_at`` bytes of the request and data."""
    with raw_connect(lab.files.port) as sock:
        channel = SecureChannel.client(sock, lab.keyring("alice"), service="files", timeout=5.0)
        args = {"path": path, "size": len(data), "overwrite": True}
        wire = channel.seal_frame(json.dumps({"command": "put", "cwd": "/", "args": args}))
        sock.sendall(wire)
        assert json.loads(channel.recv(5.0))["ok"]
        stream = b"".join(
            channel.seal_frame(data[i : i + 256 * 1024]) for i in range(0, len(data), 256 * 1024)
        ) + channel.seal_frame(json.dumps({"sha256": hashlib.sha256(data).hexdigest()}))
        sock.sendall(stream[: min(cut_at, len(stream) - 1)])


def test_uploads_cut_at_random_offsets_keep_the_old_version(lab: Lab, tmp_path: Path) -> None:
    alice = lab.file_client()
    old = tmp_path / "old.bin"
    old.write_bytes(random.Random(1).randbytes(300_000))
    alice.put(old, "cut.bin", overwrite=True)
    new = random.Random(2).randbytes(1_000_000 + 77)
    rng = random.Random(3)
    home = lab.files_root / "alice"
    for cut_at in [0, 3, 262_160, *(rng.randrange(1, 1_000_200) for _ in range(5))]:
        _cut_upload(lab, "cut.bin", new, cut_at)
        assert wait_until(lambda: lab.files.connection_count == 0 and not _leftovers(home))
        assert (home / "cut.bin").read_bytes() == old.read_bytes(), f"cut at {cut_at}"


def test_two_clients_writing_one_name_at_once_leave_one_whole_file(
    lab: Lab, tmp_path: Path
) -> None:
    versions = []
    for i in range(2):
        path = tmp_path / f"v{i}.bin"
        path.write_bytes(random.Random(10 + i).randbytes(3 << 20))
        versions.append(path)
    home = lab.files_root / "alice"

    def upload(path: Path, barrier: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            barrier.wait(5)
            lab.file_client().put(path, "race.bin", overwrite=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    for _ in range(3):
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=upload, args=(v, barrier, errors)) for v in versions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert (home / "race.bin").read_bytes() in [v.read_bytes() for v in versions]
        assert not _leftovers(home)


def _limit_writes(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Make the storage layer fail with ENOSPC once one file passes ``limit`` bytes."""
    real_write = jail.AtomicFile.write

    def write(self: jail.AtomicFile, data: bytes | memoryview) -> None:
        if self.size + len(data) > limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, data)

    monkeypatch.setattr(jail.AtomicFile, "write", write)


def _full_disk_story(client: FileClient, home: Path, tmp_path: Path, big: int) -> None:
    """v1 is stored; a too-big v2 meets a full disk; v1 is intact; a small file still fits."""
    v1, v2, small = tmp_path / "v1.bin", tmp_path / "v2.bin", tmp_path / "small.bin"
    v1.write_bytes(random.Random(1).randbytes(200_000))
    v2.write_bytes(random.Random(2).randbytes(big))
    small.write_bytes(b"still room for this")
    client.put(v1, "doc.bin", overwrite=True)
    with pytest.raises(FileServiceError, match="disk is full"):
        client.put(v2, "doc.bin", overwrite=True)
    assert (home / "doc.bin").read_bytes() == v1.read_bytes()
    assert not _leftovers(home)
    client.put(small, "small.bin", overwrite=True)
    assert (home / "small.bin").read_bytes() == small.read_bytes()


def test_a_full_disk_keeps_the_previous_version(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected in the storage layer, so it runs anywhere (CI without root)."""
    _limit_writes(monkeypatch, 1 << 20)
    _full_disk_story(lab.file_client(), lab.files_root / "alice", tmp_path, big=3 << 20)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (needs root and a mount-capable container; skipped otherwise)."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs root to mount a tmpfs; the injected case covers it")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode()[:100]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def test_a_really_full_disk_keeps_the_previous_version(
    lab: Lab, tmp_path: Path, small_tmpfs: Path
) -> None:
    with FileServer(
        lab.server_key, lab.allowlist, small_tmpfs, connection_timeout=TIMEOUT, keep_free=0
    ) as srv:  # keep_free=0: the disk itself must fill up
        client = FileClient(HOST, srv.port, lab.keyring("alice"), lab.server_key.public_key)
        _full_disk_story(client, small_tmpfs / "alice", tmp_path, big=3 << 20)
        assert shutil.disk_usage(small_tmpfs).used < 1 << 20  # the failed upload gave it back
