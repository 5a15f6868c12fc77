"""The wiretap: what an eavesdropper sees, and which attacks fail (and why).

A small echo server (``ThreadedServer`` + ``SecureChannel.server``) stands
in for the chat server; the client is a plain ``SecureChannel.client``
that connects to the tap instead of the server.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from conftest import wait_until

from labcrypto import groups, keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import (
    ChannelClosed,
    ConnectionLost,
    DecryptionFailed,
    InvalidPublicValue,
    KeyNotAllowed,
    LabCryptoError,
    ServerKeyChanged,
)
from labcrypto.server import ThreadedServer, connect
from labcrypto.wiretap import (
    C2S,
    S2C,
    DropFrame,
    FlipBit,
    InjectPublicValue,
    ManInTheMiddle,
    ReplayFrame,
    TapFrame,
    Wiretap,
    crack_caesar,
    describe,
    eavesdropper_view,
    format_view,
    reassemble,
    recover_toy_secret,
)

SECRET = b"meet me at the library at noon"
SECOND = b"bring the exam answers and some coffee"


class EchoServer(ThreadedServer):
    """Answers every message with ``echo: <message>``; records why a client failed."""

    def __init__(
        self, key: keys.KeyPair, mode: str, allow: Callable[[keys.PublicKey], bool] | None
    ) -> None:
        super().__init__(connection_timeout=5.0)
        self.key, self.mode, self.allow = key, mode, allow

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        try:
            channel = SecureChannel.server(conn, self.key, self.mode, allow=self.allow, timeout=5)
        except LabCryptoError as exc:
            self.emit("rejected", f"{type(exc).__name__}: {exc}")
            return
        with channel:
            for _ in range(50):
                try:
                    message = channel.recv(timeout=5)
                except ChannelClosed:
                    return
                except LabCryptoError as exc:
                    self.emit("failed", f"{type(exc).__name__}: {exc}")
                    return
                channel.send(b"echo: " + message)

    def failures(self) -> str:
        return " ".join(e.text for e in self.events if e.kind in ("rejected", "failed"))


@pytest.fixture
def keyring(
    secure_keys: Callable[[str], keys.KeyPair], toy_keys: Callable[[str], keys.KeyPair]
) -> Callable[[str, str], keys.KeyPair]:
    """``keyring(mode, name)``. In the toy group (20 keys) names may collide; avoid that."""

    def get(mode: str, name: str) -> keys.KeyPair:
        if mode == "secure":
            return secure_keys(name)
        taken = {toy_keys(n).public for n in ("alice", "server") if n != name}
        pair = toy_keys(name)
        for _ in range(200):
            if pair.public not in taken:
                return pair
            pair = keys.generate(groups.TOY)
        raise AssertionError("could not find a free toy key")

    return get


@contextmanager
def lab(
    keyring: Callable[[str, str], keys.KeyPair],
    mode: str = "secure",
    *,
    policy: object = None,
    allowlist: bool = False,
) -> Iterator[tuple[EchoServer, Wiretap]]:
    """An echo server, and a tap in front of it; both stopped at the end."""
    alice = keyring(mode, "alice").public_key
    allow = (lambda key: key == alice) if allowlist else None
    server = EchoServer(keyring(mode, "server"), mode, allow).start()
    tap = Wiretap(server.address, policy=policy, connection_timeout=5.0)  # type: ignore[arg-type]
    try:
        tap.start()
        yield server, tap
    finally:
        tap.stop()
        server.stop()


def open_client(
    tap: Wiretap,
    keyring: Callable[[str, str], keys.KeyPair],
    mode: str = "secure",
    *,
    pin: bool = False,
) -> SecureChannel:
    """Alice connects to the tap (thinking it is the server)."""
    sock = connect(*tap.address, timeout=5)
    pinned = keyring(mode, "server").public_key if pin else None
    try:
        return SecureChannel.client(
            sock, keyring(mode, "alice"), mode, expected_server_key=pinned, timeout=5
        )
    except BaseException:
        sock.close()
        raise


def chat(channel: SecureChannel, *messages: bytes) -> list[bytes]:
    """Send each message and collect its echo; close politely."""
    with channel:
        replies = []
        for message in messages:
            channel.send(message)
            replies.append(channel.recv(timeout=5))
        return replies


def attacker_key(keyring: Callable[[str, str], keys.KeyPair], mode: str) -> keys.KeyPair:
    """Mallory's key pair: never the same as Alice's or the server's (toy group is tiny)."""
    taken = {keyring(mode, "alice").public, keyring(mode, "server").public}
    for _ in range(200):
        pair = keys.generate(keys.get_group("ffdhe2048" if mode == "secure" else "toy23"))
        if pair.public not in taken:
            return pair
    raise AssertionError("no free key")


def all_ended(tap: Wiretap) -> bool:
    return bool(tap.connections) and all(c.ended is not None for c in tap.connections)


# --- the passive eavesdropper ------------------------------------------------------------


def test_passive_tap_in_secure_mode_sees_handshake_json_and_ciphertext_only(
    keyring, no_leaks
) -> None:
    with lab(keyring, "secure") as (_, tap):
        replies = chat(open_client(tap, keyring), SECRET, SECOND)
        assert replies == [b"echo: " + SECRET, b"echo: " + SECOND]  # the tap is transparent
        assert wait_until(lambda: all_ended(tap))
        records = tap.records
        frames = tap.frames()

    everything = b"".join(r.data for r in records)
    assert {r.direction for r in records} == {C2S, S2C}
    for secret in (SECRET, SECOND, b"library", b"echo: "):
        assert secret not in everything
    hello = tap.frames(C2S)[0]
    assert hello.kind == "handshake" and hello.message["type"] == "client_hello"
    assert hello.message["group"] == "ffdhe2048"
    kinds = [(f.direction, f.kind) for f in frames if f.kind == "handshake"]
    assert sorted(kinds) == sorted([(C2S, "handshake")] * 2 + [(S2C, "handshake")] * 2)
    data = [f for f in frames if f.kind == "data"]
    # Alice: 2 messages + her goodbye; the server: 2 echoes (its goodbye may race her close).
    assert len([f for f in data if f.direction == C2S]) == 3
    assert len([f for f in data if f.direction == S2C]) >= 2
    for frame in data:
        assert describe(frame.payload).startswith(f"{len(frame.payload)} bytes of ciphertext: ")
        assert frame.message is None
    # Frequency analysis gets nothing out of AES-GCM.
    message_frame = next(f for f in data if f.direction == C2S)
    assert crack_caesar(message_frame.payload)[1] != SECRET
    # Reassembling the raw chunks gives the same frames the tap saw live.
    assert [f.payload for f in reassemble(records)] == [f.payload for f in frames]


def test_passive_tap_in_toy_mode_is_broken_by_trying_256_shifts(keyring, no_leaks) -> None:
    with lab(keyring, "toy") as (_, tap):
        assert chat(open_client(tap, keyring, "toy"), SECRET) == [b"echo: " + SECRET]
        assert wait_until(lambda: all_ended(tap))
        frames = tap.frames()

    stream = tap.stream(C2S)
    assert SECRET not in stream  # shifted, so not readable as is...
    first = next(f for f in frames if f.direction == C2S and f.kind == "data")
    shift, plaintext = crack_caesar(first.payload)  # ...but no key is needed
    assert plaintext == SECRET
    # And Eve can even compute K from the hellos: p = 23 has 22 exponents to try.
    assert recover_toy_secret(frames) % 256 == shift
    reply = next(f for f in frames if f.direction == S2C and f.kind == "data")
    assert crack_caesar(reply.payload)[1] == b"echo: " + SECRET


def test_view_helpers_show_what_eve_sees(keyring, no_leaks) -> None:
    with lab(keyring, "toy") as (_, tap):
        chat(open_client(tap, keyring, "toy"), b"hi")
        assert wait_until(lambda: all_ended(tap))
    rows = eavesdropper_view(tap.frames())
    assert rows[0]["direction"] == "client → server"
    assert rows[0]["eve sees"].startswith("client_hello: ")
    assert "group=toy23" in rows[0]["eve sees"]
    alice = keyring("toy", "alice").public
    assert f"static={alice}" in rows[0]["eve sees"]  # toy numbers are shown whole
    assert rows[0]["ms"] == 0 and all(r["ms"] >= 0 for r in rows)
    table = format_view(rows)
    assert table.splitlines()[0].split() == [
        "ms",
        "conn",
        "direction",
        "kind",
        "bytes",
        "eve",
        "sees",
    ]
    assert len(table.splitlines()) == len(rows) + 1


def test_a_policy_that_only_watches_changes_nothing(keyring, no_leaks) -> None:
    seen: list[TapFrame] = []
    with lab(keyring, policy=seen.append) as (_, tap):
        assert chat(open_client(tap, keyring), SECRET) == [b"echo: " + SECRET]
        assert wait_until(lambda: all_ended(tap))
    assert len(seen) == len(tap.frames()) >= 6
    assert all(f.verdict == "passed" for f in tap.frames())


def test_tap_whose_server_is_down_says_so(keyring, no_leaks) -> None:
    server = EchoServer(keyring("secure", "server"), "secure", None).start()
    address = server.address
    server.stop()
    with Wiretap(address, connection_timeout=5.0, connect_timeout=1.0) as tap:
        sock = connect(*tap.address, timeout=5)
        try:
            with pytest.raises(ConnectionLost):
                SecureChannel.client(sock, keyring("secure", "alice"), timeout=5)
        finally:
            sock.close()
        assert wait_until(lambda: all_ended(tap))
        assert "cannot reach the server" in (tap.connections[0].error or "")


# --- the man in the middle ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["toy", "secure"])
def test_man_in_the_middle_reads_everything_without_pinning_or_allowlist(
    keyring, mode, no_leaks
) -> None:
    """Crypto strength does not help against a stranger: secure mode falls too."""
    mallory = attacker_key(keyring, mode)
    mitm = ManInTheMiddle(mallory)
    with lab(keyring, mode, policy=mitm) as (_, tap):
        channel = open_client(tap, keyring, mode)
        fooled_by = channel.session.peer_key
        assert chat(channel, SECRET, SECOND) == [b"echo: " + SECRET, b"echo: " + SECOND]
        assert wait_until(lambda: all_ended(tap))
    assert fooled_by == mallory.public_key  # Alice "talked to the server" with Mallory's key
    assert fooled_by != keyring(mode, "server").public_key
    assert mitm.succeeded
    assert mitm.stolen_text(C2S) == [SECRET.decode(), SECOND.decode()]
    assert mitm.stolen_text(S2C) == ["echo: " + SECRET.decode(), "echo: " + SECOND.decode()]
    assert not mitm.failures


def test_man_in_the_middle_is_caught_by_pinning(keyring, no_leaks) -> None:
    mitm = ManInTheMiddle()
    with lab(keyring, policy=mitm) as (_, tap):
        with pytest.raises(ServerKeyChanged, match="fingerprint"):
            open_client(tap, keyring, pin=True)
        assert wait_until(lambda: all_ended(tap))
    assert not mitm.stolen
    assert not mitm.succeeded


@pytest.mark.parametrize("pin", [False, True])
def test_man_in_the_middle_is_refused_by_the_allowlist(keyring, pin, no_leaks) -> None:
    mitm = ManInTheMiddle()
    with lab(keyring, policy=mitm, allowlist=True) as (server, tap):
        with pytest.raises(KeyNotAllowed, match="allowlist"):
            open_client(tap, keyring, pin=pin)
        assert wait_until(lambda: all_ended(tap))
        assert wait_until(lambda: "KeyNotAllowed" in server.failures())
        # The same client, without the attacker in between, is welcome.
        direct = connect(*server.address, timeout=5)
        channel = SecureChannel.client(direct, keyring("secure", "alice"), timeout=5)
        assert chat(channel, b"hello") == [b"echo: hello"]
    assert not mitm.stolen
    assert not mitm.succeeded
    assert any("refused" in f for f in mitm.failures)


# --- tampering with values and frames -------------------------------------------------------


@pytest.mark.parametrize("direction", [C2S, S2C])
@pytest.mark.parametrize("value", [0, 1, "p-1"])
def test_injected_public_values_are_rejected(keyring, value, direction, no_leaks) -> None:
    inject = InjectPublicValue(value, direction)
    with lab(keyring, policy=inject, allowlist=True) as (server, tap):
        with pytest.raises(InvalidPublicValue):
            open_client(tap, keyring, pin=True)
        if direction == C2S:  # the server saw the bad value and said why
            assert wait_until(lambda: "InvalidPublicValue" in server.failures())
    assert inject.hits == 1
    assert SECRET not in tap.stream(C2S)


def test_flipped_bit_from_the_server_is_caught(keyring, no_leaks) -> None:
    with lab(keyring, policy=FlipBit(S2C, data_index=0, bit=77), allowlist=True) as (_, tap):
        channel = open_client(tap, keyring, pin=True)
        with channel:
            channel.send(SECRET)
            with pytest.raises(DecryptionFailed):
                channel.recv(timeout=5)
    assert next(f.verdict for f in tap.frames(S2C) if f.kind == "data") == "changed"


def test_flipped_bit_from_the_client_is_caught_by_the_server(keyring, no_leaks) -> None:
    with lab(keyring, policy=FlipBit(C2S, data_index=0), allowlist=True) as (server, tap):
        channel = open_client(tap, keyring, pin=True)
        with channel:
            channel.send(SECRET)
            with pytest.raises((ConnectionLost, ChannelClosed)):
                channel.recv(timeout=5)  # the server hung up instead of answering
        assert wait_until(lambda: "DecryptionFailed" in server.failures())


def test_flipped_bit_in_toy_mode_goes_unnoticed(keyring, no_leaks) -> None:
    """The contrast: Caesar has no tag, so the client gets a changed message and no error."""
    with lab(keyring, "toy", policy=FlipBit(S2C, data_index=0, bit=1)) as (_, tap):
        replies = chat(open_client(tap, keyring, "toy"), SECRET)
    assert replies[0] != b"echo: " + SECRET
    assert len(replies[0]) == len(b"echo: " + SECRET)


def test_replayed_frame_is_caught(keyring, no_leaks) -> None:
    replay = ReplayFrame(S2C, data_index=0)
    with lab(keyring, policy=replay, allowlist=True) as (_, tap):
        channel = open_client(tap, keyring, pin=True)
        with channel:
            channel.send(SECRET)
            assert channel.recv(timeout=5) == b"echo: " + SECRET  # the original is fine
            with pytest.raises(DecryptionFailed):
                channel.recv(timeout=5)  # the copy is not
    assert replay.hits == 1


def test_dropped_frame_is_caught(keyring, no_leaks) -> None:
    with lab(keyring, policy=DropFrame(S2C, data_index=0), allowlist=True) as (_, tap):
        channel = open_client(tap, keyring, pin=True)
        with channel:
            channel.send(SECRET)
            channel.send(SECOND)
            with pytest.raises(DecryptionFailed):
                channel.recv(timeout=5)  # message 1 arrives where message 0 was expected
    assert next(f.verdict for f in tap.frames(S2C) if f.kind == "data") == "dropped"


# --- against the real chat room -------------------------------------------------------------


def chat_room_lab(keyring, mode: str, allowlist_path=None) -> ChatServer:
    allowlist = None
    if allowlist_path is not None:
        allowlist = Allowlist(allowlist_path)
        allowlist.add("alice", keyring(mode, "alice").public_key)
    return ChatServer(keyring(mode, "server"), allowlist, mode=mode, connection_timeout=5.0)


def test_man_in_the_middle_reads_the_chat_room_in_toy_mode(keyring, no_leaks) -> None:
    mitm = ManInTheMiddle(attacker_key(keyring, "toy"))
    with chat_room_lab(keyring, "toy") as room, Wiretap(room.address, policy=mitm) as tap:
        host, port = tap.address
        alice = keyring("toy", "alice")
        with ChatClient.connect(host, port, alice, mode="toy", known_servers=False) as client:
            client.send("the exam is on friday")
            mine = next(m for m in client.iter_messages(5) if m.kind == "message")
        assert mine.text == "the exam is on friday"
        assert wait_until(lambda: any("friday" in t for t in mitm.stolen_text(S2C)))
    assert any("friday" in text for text in mitm.stolen_text(C2S))
    assert any('"welcome"' in text for text in mitm.stolen_text(S2C))  # sent before Alice spoke


def test_man_in_the_middle_fails_against_the_chat_room_with_pin_and_allowlist(
    keyring, tmp_path, no_leaks
) -> None:
    mitm = ManInTheMiddle()
    room = chat_room_lab(keyring, "secure", tmp_path / "allowlist.csv")
    with room, Wiretap(room.address, policy=mitm) as tap:
        host, port = tap.address
        server_pub = keyring("secure", "server").public_key
        with pytest.raises((KeyNotAllowed, ServerKeyChanged)):
            ChatClient.connect(host, port, keyring("secure", "alice"), server_key=server_pub)
        assert wait_until(lambda: any(e.kind == "rejected" for e in room.events))
    assert not mitm.stolen and not mitm.succeeded
