"""The chat room on real TCP (loopback): one port, both modes.

Several clients in one room, the operator's messages, the allowlist
refusing a key before anything encrypted is sent, server-key pinning and
trust on first use, clear errors, re-running "start" on one port, stop()
under load, and clients that misbehave (cut a frame, send garbage, never
read) while the others keep chatting. The two-port handoff is in
``test_handoff.py``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import refusal

from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import (
    FrameDecoder,
    SecureChannel,
    encode_frame,
    read_frame,
    write_frame,
)
from labcrypto.chat import (
    MAX_TEXT,
    SERVER_NAME,
    ChatClient,
    ChatMessage,
    ChatServer,
    ChatSettings,
)
from labcrypto.errors import (
    ChannelClosed,
    ConnectionLost,
    KeyNotAllowed,
    LabCryptoError,
    LineRefused,
    PoolExhausted,
    ServerKeyChanged,
)
from labcrypto.groups import TOY
from labcrypto.handshake import ClientHandshake, decode_message, encode_message
from labcrypto.known_servers import KnownServers
from labcrypto.ports import PortPool
from labcrypto.server import running_servers

HOST = "127.0.0.1"
NAMES = ["server", "alice", "bob", "carol", "dave", "mallory", "server2"]

Keyring = Callable[[str], keys.KeyPair]


@pytest.fixture(params=["secure", "toy"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def keyring(mode: str, secure_keys: Keyring) -> Keyring:
    """Distinct key pairs by name. Toy keys use fixed exponents: the toy group has
    only 20 public values, so random toy keys would often collide."""
    if mode == "secure":
        return secure_keys

    def toy(name: str) -> keys.KeyPair:
        x = 2 + NAMES.index(name)
        return keys.KeyPair(TOY, x, pow(TOY.g, x, TOY.p))

    return toy


@pytest.fixture
def allowlist(tmp_path: Path, keyring: Keyring) -> Allowlist:
    """alice, bob, carol and dave are allowed; mallory is not."""
    allow = Allowlist(tmp_path / "allowlist.csv", keyring("alice").group)  # the room's group
    for name in ("alice", "bob", "carol", "dave"):
        allow.add(name, keyring(name).public_key)
    return allow


@pytest.fixture
def known(tmp_path: Path) -> KnownServers:
    return KnownServers(tmp_path / "known_servers.csv")


@pytest.fixture
def server(mode: str, keyring: Keyring, allowlist: Allowlist, no_leaks: None):
    srv = ChatServer(keyring("server"), allowlist, mode=mode).start()
    yield srv
    srv.stop()


def join(srv: ChatServer, name: str, keyring: Keyring, known: KnownServers, **kw) -> ChatClient:
    return ChatClient.connect(
        HOST, srv.port, keyring(name), mode=srv.mode, known_servers=known, timeout=5.0, **kw
    )


def lines(client: ChatClient, count: int, timeout: float = 5.0) -> list[ChatMessage]:
    """The next ``count`` chat lines (notices skipped), waiting at most ``timeout`` in all."""
    got: list[ChatMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        message = client.recv(max(0.01, deadline - time.monotonic()))
        if message.kind == "message":
            got.append(message)
    return got


def raw_session(srv: ChatServer, key: keys.KeyPair) -> tuple[socket.socket, SecureChannel]:
    """A hand-made client: handshake, read the welcome, hand back the raw socket too."""
    sock = socket.create_connection((HOST, srv.port), timeout=5.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    channel = SecureChannel.client(sock, key, srv.mode, timeout=5.0)
    assert decode_message(channel.recv(5.0))["type"] == "welcome"
    return sock, channel


# --- the room ---------------------------------------------------------------------


def test_messages_reach_everyone_tagged_with_allowlist_names(server, keyring, known):
    names = ["alice", "bob", "carol"]
    clients = [join(server, name, keyring, known) for name in names]
    try:
        assert [c.name for c in clients] == names
        assert wait_until(lambda: sorted(server.members()) == names)
        for client in clients:
            client.send(f"hello from {client.name}")
        for client in clients:
            got = lines(client, 3)
            assert sorted((m.sender, m.text) for m in got) == [
                (name, f"hello from {name}") for name in names
            ]
            assert all(abs(m.time - time.time()) < 30 for m in got)
    finally:
        for client in clients:
            client.close()


def test_the_sender_gets_its_own_line_back_as_confirmation(server, keyring, known):
    with join(server, "alice", keyring, known) as alice:
        alice.send("only me here")
        (line,) = lines(alice, 1)
        assert (line.sender, line.text) == ("alice", "only me here")


def test_operator_message_reaches_everyone_and_the_hooks(server, keyring, known):
    heard: list[ChatMessage] = []
    server.on_message = heard.append
    events: list[str] = []
    server.listeners.append(lambda event: events.append(event.kind))
    widget: list[ChatMessage] = []
    alice = join(server, "alice", keyring, known, on_message=widget.append)
    bob = join(server, "bob", keyring, known)
    try:
        assert wait_until(lambda: len(server.members()) == 2)
        sent = server.say("the lab closes at six")
        for client in (alice, bob):
            (line,) = lines(client, 1)
            assert (line.sender, line.text) == (SERVER_NAME, "the lab closes at six")
        assert heard == [sent] and list(server.history) == [sent]
        assert "message" in events
        assert wait_until(lambda: any(m.text == "the lab closes at six" for m in widget))
    finally:
        alice.close()
        bob.close()


def test_joins_and_leaves_are_announced_and_logged(server, keyring, known):
    alice = join(server, "alice", keyring, known)
    with join(server, "bob", keyring, known):
        notice = alice.recv(5.0)
        while notice.text != "bob joined":
            notice = alice.recv(5.0)
        assert notice.kind == "notice" and notice.sender == SERVER_NAME
    notice = alice.recv(5.0)
    assert (notice.kind, notice.text) == ("notice", "bob left")
    alice.close()
    kinds = [event.kind for event in server.events]
    assert kinds.count("join") == 2
    assert wait_until(lambda: [e.kind for e in server.events].count("leave") == 2)
    # Both closed cleanly: each said goodbye, so the log gives no reason (no "cut").
    leaves = [event.text for event in server.events if event.kind == "leave"]
    assert sorted(leaves) == ["alice left", "bob left"]


def test_members_and_iteration_end_after_the_timeout(server, keyring, known):
    with join(server, "alice", keyring, known) as alice:
        alice.send("one")
        alice.send("two")
        got = [m.text for m in alice.iter_messages(timeout=0.3) if m.kind == "message"]
        assert got == ["one", "two"]
        assert server.members() == ["alice"]
    assert wait_until(lambda: server.members() == [])


def test_recv_times_out_and_reports_the_end_of_the_chat(mode, keyring, allowlist, known, no_leaks):
    srv = ChatServer(keyring("server"), allowlist, mode=mode).start()
    alice = join(srv, "alice", keyring, known)
    with pytest.raises(TimeoutError, match=r"within 0\.1 s"):
        for _ in range(10):
            alice.recv(0.1)  # skip the join notice, then time out
    srv.stop()
    with pytest.raises((ChannelClosed, ConnectionLost)):
        for _ in range(10):
            alice.recv(5.0)
    assert not alice.connected
    with pytest.raises(ChannelClosed, match="connect again"):
        alice.send("anyone?")
    alice.close()


# --- the allowlist ----------------------------------------------------------------


def test_unknown_key_refused_before_any_encrypted_byte(server, keyring, known):
    mallory = keyring("mallory")
    sock = socket.create_connection((HOST, server.port), timeout=5.0)
    received = b""
    try:
        handshake = ClientHandshake(mallory, server.mode)
        write_frame(sock, handshake.start())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # read everything until the server hangs up
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    frames = FrameDecoder().feed(received)
    # Every byte the server sent is one plain JSON error: no server_hello, nothing encrypted.
    assert [decode_message(frame)["type"] for frame in frames] == ["error"]
    assert decode_message(frames[0])["code"] == "not_allowed"
    with pytest.raises(KeyNotAllowed, match="allowlist"):
        join(server, "mallory", keyring, known)

    def rejected() -> list[str]:
        return [e.text for e in server.events if e.kind == "rejected"]

    assert wait_until(lambda: len(rejected()) == 2)
    assert all(mallory.fingerprint in text for text in rejected())
    assert server.members() == []


def test_a_key_removed_from_the_allowlist_is_refused_next_time(server, keyring, known, allowlist):
    with join(server, "dave", keyring, known) as dave:
        assert dave.name == "dave"
    allowlist.remove("dave")
    with pytest.raises(KeyNotAllowed):
        join(server, "dave", keyring, known)


def test_the_log_names_the_key_a_client_claimed_without_its_private_key(
    server, keyring, known, no_leaks
):
    """Issue 18 §4: mallory presents alice's listed key with her own private number. Her
    real client gives up at the server's proof; a made-up proof of hers is refused. Either
    way the log says what happened: alice's key, never proved (not a bare ConnectionLost)."""
    alice, mallory = keyring("alice"), keyring("mallory")
    fake = keys.KeyPair(alice.group, mallory.private, alice.public)
    with pytest.raises(LabCryptoError):
        join(server, "alice", lambda name: fake, known)
    with socket.create_connection((HOST, server.port), timeout=5.0) as sock:
        client = ClientHandshake(fake, server.mode)
        write_frame(sock, client.start())
        read_frame(sock), read_frame(sock)  # the server's hello and proof: she cannot check them
        write_frame(sock, encode_message({"type": "client_finished", "confirm": "00" * 32}))
        assert decode_message(read_frame(sock))["type"] == "error"

    def failed() -> list[str]:
        return [e.text for e in server.events if e.kind == "handshake-failed"]

    assert wait_until(lambda: len(failed()) == 2)
    claimed = f"presented alice's key ({alice.fingerprint}) but did not prove it holds the"
    assert all(claimed in text for text in failed()), failed()
    assert failed()[0].endswith("it hung up before its proof")
    assert "could not prove it holds the private key" in failed()[1]
    assert "ConnectionLost" not in " ".join(failed())


def test_without_allowlist_everyone_is_named_by_fingerprint(mode, keyring, known, no_leaks):
    with (
        ChatServer(keyring("server"), None, mode=mode) as srv,
        join(srv, "mallory", keyring, known) as client,
    ):
        assert client.name == keyring("mallory").fingerprint


# --- knowing the server ------------------------------------------------------------


def test_trust_on_first_use_records_then_refuses_a_changed_key(mode, keyring, allowlist, known):
    first = ChatServer(keyring("server"), allowlist, mode=mode).start()
    port = first.port
    try:
        with join(first, "alice", keyring, known):
            pass
        assert known.get(HOST, port) == keyring("server").public_key
        with join(first, "alice", keyring, known):  # same key: accepted quietly
            pass
    finally:
        first.stop()
    impostor = ChatServer(keyring("server2"), allowlist, mode=mode, port=port).start()
    try:
        with pytest.raises(ServerKeyChanged) as caught:
            join(impostor, "alice", keyring, known)
        text = str(caught.value)
        assert keyring("server").fingerprint in text
        assert keyring("server2").fingerprint in text
        assert str(known.path) in text
        assert wait_until(lambda: impostor.members() == [])
        assert known.forget(HOST, port)  # what the student does once the change is confirmed
        with join(impostor, "alice", keyring, known):
            pass
    finally:
        impostor.stop()


@pytest.mark.parametrize("form", ["PublicKey", "pub file", "fingerprint"])
def test_pinned_server_key_in_each_form(server, keyring, form, tmp_path):
    server_pair = keyring("server")
    if form == "PublicKey":
        pin: object = server_pair.public_key
    elif form == "pub file":
        pin = keys.save(server_pair, "server", tmp_path / "k")[1]
    else:
        pin = server_pair.fingerprint
    with ChatClient.connect(HOST, server.port, keyring("alice"), mode=server.mode, server_key=pin):
        pass
    with pytest.raises(ServerKeyChanged, match="expected"):
        ChatClient.connect(
            HOST, server.port, keyring("alice"), mode=server.mode,
            server_key=keyring("server2").public_key,
        )  # fmt: skip


# --- errors a student meets ---------------------------------------------------------


def test_connection_refused_says_what_to_check(mode, keyring, known):
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(ConnectionRefusedError, match="server cell running"):
        ChatClient.connect(HOST, port, keyring("alice"), mode=mode, known_servers=known)


def test_wrong_mode_is_a_clear_handshake_error(mode, keyring, allowlist, known, no_leaks):
    with ChatServer(keyring("server"), allowlist, mode=mode) as srv:
        other = "toy" if mode == "secure" else "secure"
        with pytest.raises(ValueError, match="mode"):
            ChatServer(keyring("server"), allowlist, mode=other)
        sock = socket.create_connection((HOST, srv.port), timeout=5.0)
        try:
            hello = ClientHandshake(keyring("alice"), mode).start()
            bad = decode_message(hello) | {"mode": other}
            write_frame(sock, encode_message(bad))
            reply = decode_message(FrameDecoder().feed(sock.recv(65536))[0])
            assert reply["type"] == "error" and mode in reply["message"]
        finally:
            sock.close()


def test_a_server_that_never_answers_times_out_clearly(mode, keyring, known, no_leaks):
    silent = socket.socket()
    silent.bind((HOST, 0))
    silent.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"the lab.s server \(labcrypto\)"):
            ChatClient.connect(
                HOST, silent.getsockname()[1], keyring("alice"), mode=mode,
                known_servers=known, timeout=0.3,
            )  # fmt: skip
        assert time.monotonic() - started < 3
    finally:
        silent.close()


# --- in a kernel: re-run and stop ----------------------------------------------------


def test_rerunning_start_twenty_times_on_one_port(mode, keyring, allowlist, known, no_leaks):
    port = ChatServer(keyring("server"), allowlist, mode=mode).start()
    fixed = port.port
    port.stop()
    threads_before = threading.active_count()
    for round_number in range(20):
        srv = ChatServer(keyring("server"), allowlist, mode=mode, port=fixed).start()
        assert srv.port == fixed
        assert [s for s in running_servers() if s.running] == [srv]
        if round_number % 5 == 0:
            client = join(srv, "alice", keyring, known)
            client.send(f"round {round_number}")
            assert lines(client, 1)[0].text == f"round {round_number}"
            client.close()
    srv.stop()
    assert wait_until(lambda: threading.active_count() <= threads_before)


def test_stop_under_load_returns_in_bounded_time(mode, keyring, allowlist, known, no_leaks):
    srv = ChatServer(keyring("server"), allowlist, mode=mode).start()
    clients = [join(srv, name, keyring, known) for name in ("alice", "bob", "carol", "dave")]
    go = threading.Event()
    errors: list[BaseException] = []

    def chatter(client: ChatClient) -> None:
        go.wait(5)
        for i in range(100_000):  # bounded; ends when the server is gone
            try:
                client.send(f"{client.name} {i}")
            except LabCryptoError:
                return
            except BaseException as exc:  # anything else is a bug
                errors.append(exc)
                return

    threads = [threading.Thread(target=chatter, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    go.set()
    assert wait_until(lambda: len(srv.history) > 50)
    started = time.monotonic()
    srv.stop(timeout=5.0)
    assert time.monotonic() - started < 5.0
    assert srv.threads() == []
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    for client in clients:
        client.close()
    assert errors == []


# --- clients that misbehave -----------------------------------------------------------


def test_a_client_cut_mid_frame_is_dropped_and_the_room_goes_on(server, keyring, known):
    alice = join(server, "alice", keyring, known)
    bob = join(server, "bob", keyring, known)
    sock, _channel = raw_session(server, keyring("carol"))
    assert wait_until(lambda: "carol" in server.members())
    sock.sendall(encode_frame(b"x" * 100)[:30])  # 30 of 104 bytes, then gone
    sock.close()
    assert wait_until(lambda: "carol" not in server.members())
    alice.send("still here?")
    bob.send("yes")
    for client in (alice, bob):
        assert sorted(m.text for m in lines(client, 2)) == ["still here?", "yes"]
    alice.close()
    bob.close()


def test_garbage_from_a_member_never_disturbs_the_others(server, keyring, known):
    """Unsealed garbage: secure mode cannot decrypt it (the member is dropped, the
    channel is broken); toy mode's Caesar "decrypts" it to junk that is refused
    with a notice. Either way the others' lines all arrive, in order."""
    alice = join(server, "alice", keyring, known)
    bob = join(server, "bob", keyring, known)
    sock, channel = raw_session(server, keyring("carol"))

    def talk(client: ChatClient) -> None:
        for i in range(20):
            client.send(f"{client.name} {i}")
            time.sleep(0.005)

    talkers = [threading.Thread(target=talk, args=(c,)) for c in (alice, bob)]
    for thread in talkers:
        thread.start()
    try:
        sock.sendall(encode_frame(b"\x00not a message\xff" * 4) * 3)
        if server.mode == "secure":
            # The server hangs up on carol (it may first send her lines that were queued).
            assert wait_until(lambda: "carol" not in server.members())
            sock.settimeout(5.0)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sock.recv(65536):
                pass
        else:
            assert refusal(channel).startswith("message refused")
            assert "carol" in server.members()
    finally:
        for thread in talkers:
            thread.join(10)
        sock.close()
    for client in (alice, bob):
        got = lines(client, 40)
        for name in ("alice", "bob"):
            assert [m.text for m in got if m.sender == name] == [f"{name} {i}" for i in range(20)]
    assert wait_until(lambda: any(e.kind == "leave" and "carol" in e.text for e in server.events))
    alice.close()
    bob.close()


def echoed(channel: SecureChannel, text: str, timeout: float = 5.0) -> bool:
    """Does ``text`` come back to this member as a line of the room (within ``timeout``)?"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = decode_message(channel.recv(max(0.05, deadline - time.monotonic())))
        if line["type"] == "message" and line["text"] == text:
            return True
    return False


# --- what a line may hold ----------------------------------------------------------------

SCRIPTS = {
    "3000 Cyrillic": "Привет, " * 375,  # 3,000 characters, 5,250 bytes of UTF-8
    "4000 Cyrillic": "ж" * MAX_TEXT,
    "4000 with combining accents": "е\u0301" * (MAX_TEXT // 2),  # a letter, then its accent
    "4000 emoji": "\U0001f600" * MAX_TEXT,  # 4 bytes each in UTF-8, 12 as JSON escapes
}


@pytest.mark.parametrize("text", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_a_line_up_to_the_limit_arrives_whole_in_any_script(server, keyring, known, text):
    assert len(text) <= MAX_TEXT
    with join(server, "alice", keyring, known) as alice, join(server, "bob", keyring, known) as bob:
        alice.send(text)
        for client in (alice, bob):
            (line,) = lines(client, 1)
            assert (line.sender, line.text) == ("alice", text)
        assert alice.connected and "alice" in server.members()


@pytest.mark.parametrize(
    "text",
    ["ж" * (MAX_TEXT + 1), "\U0001f600" * (MAX_TEXT + 1), "x" * 200_000],
    ids=["4001 Cyrillic", "4001 emoji", "200,000 ASCII"],
)
def test_a_line_over_the_limit_gets_a_clear_reply_and_the_session_stays(server, keyring, text):
    sock, channel = raw_session(server, keyring("carol"))
    with sock:
        # The way any JSON library would send it: escaped (\u0436), the longest form.
        channel.send(json.dumps({"type": "say", "text": text}).encode())
        reply = refusal(channel)
        assert f"at most {MAX_TEXT} characters" in reply
        channel.send(encode_message({"type": "say", "text": "and now a short one"}))
        assert echoed(channel, "and now a short one")
    assert not [m for m in server.history if len(m.text) > MAX_TEXT]


def test_lines_travel_as_utf8_not_as_escapes(server, keyring, known):
    sent: list[bytes] = []
    with join(server, "alice", keyring, known) as alice:
        sock, channel = raw_session(server, keyring("carol"))
        with sock:
            plain_send = alice.channel.send
            alice.channel.send = lambda data: (sent.append(bytes(data)), plain_send(data))[1]
            alice.send("Привет")
            deadline = time.monotonic() + 5
            while True:
                data = channel.recv(max(0.05, deadline - time.monotonic()))
                if b'"message"' in data:
                    break
    assert "Привет".encode() in sent[0] and b"\\u" not in sent[0]
    assert "Привет".encode() in data and b"\\u" not in data


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("hi\nalice: send me your key", "\\x0a"),
        ("\x1b]0;pwned\x07", "\\x1b"),
        ("\x1b[2J", "\\x1b"),
        ("abc\u202edcba", "\\u202e"),
        ("line\u2028break", "\\u2028"),
    ],
)
def test_the_client_refuses_control_and_bidi_characters_before_sending(
    server, keyring, known, text, shown
):
    with join(server, "alice", keyring, known) as alice:
        with pytest.raises(LineRefused, match=re.escape(shown)):
            alice.send(text)
        with pytest.raises(ValueError):  # LineRefused is a ValueError, as before
            alice.send("")
        assert alice.connected


# --- limits on members ----------------------------------------------------------------------


def test_an_idle_member_is_told_why_and_closed(mode, keyring, allowlist, known, no_leaks):
    assert ChatSettings().idle_timeout is not None  # on by default
    with ChatServer(
        keyring("server"), allowlist, mode=mode, idle_timeout=0.3, send_timeout=0.2
    ) as srv:
        with join(srv, "alice", keyring, known) as alice:
            deadline = time.monotonic() + 5
            texts = []
            with pytest.raises((ChannelClosed, ConnectionLost)):
                while time.monotonic() < deadline:
                    texts.append(alice.recv(max(0.05, deadline - time.monotonic())).text)
            assert any("said nothing for" in t and "idle" in t for t in texts), texts
        assert wait_until(lambda: "alice" not in srv.members())


def test_one_key_holds_at_most_max_sessions_per_key(mode, keyring, allowlist, known, no_leaks):
    with ChatServer(keyring("server"), allowlist, mode=mode, max_sessions_per_key=2) as srv:
        first, second = join(srv, "alice", keyring, known), join(srv, "alice", keyring, known)
        try:
            with pytest.raises(PoolExhausted, match="2 conversations open"):
                join(srv, "alice", keyring, known)
            with join(srv, "bob", keyring, known) as bob:  # another key is not affected
                assert bob.name == "bob"
            first.close()
            assert wait_until(lambda: srv.members().count("alice") == 1)
            with join(srv, "alice", keyring, known) as again:
                assert again.name == "alice"
        finally:
            first.close()
            second.close()
        assert any(e.kind == "busy" and "alice" in e.text for e in srv.events)


def test_settings_are_one_object_and_old_keywords_still_work(keyring, allowlist, mode):
    strict = ChatSettings(send_timeout=0.5, idle_timeout=60)
    srv = ChatServer(keyring("server"), allowlist, mode=mode, settings=strict, max_pending=4096)
    assert srv.settings.send_timeout == 0.5 and srv.settings.idle_timeout == 60
    assert srv.settings.max_pending == 4096 and strict.max_pending != 4096
    with pytest.raises(TypeError, match="idle_timeout"):  # names the settings there are
        ChatServer(keyring("server"), allowlist, mode=mode, idle_timout=5)


def test_members_talking_at_once_all_hear_every_line_in_one_order(server, keyring, known):
    """Four members say 40 lines each at the same moment. The room sends its lines
    from one thread at a time (several lines to a member in one send under load), so
    every member hears all 160, each sender's in the order said, and all members hear
    them in the same order: nobody sees a different conversation."""
    names = ["alice", "bob", "carol", "dave"]
    heard: dict[str, list[str]] = {name: [] for name in names}
    clients = [
        join(server, name, keyring, known, on_message=lambda m, n=name: heard[n].append(m.text))
        for name in names
    ]
    start = threading.Barrier(len(clients))

    def talk(client: ChatClient) -> None:
        start.wait(5)
        for i in range(40):
            client.send(f"{client.name} {i}")

    talkers = [threading.Thread(target=talk, args=(c,)) for c in clients]
    try:
        for thread in talkers:
            thread.start()
        for thread in talkers:
            thread.join(10)
        said = {f"{name} {i}" for name in names for i in range(40)}
        assert wait_until(lambda: all(said <= set(texts) for texts in heard.values()), 10)
        orders = [[text for text in heard[name] if text in said] for name in names]
        for order in orders:
            assert len(order) == len(said)
            for name in names:
                in_order = [f"{name} {i}" for i in range(40)]
                assert [text for text in order if text.startswith(name)] == in_order
        assert all(order == orders[0] for order in orders)
    finally:
        for client in clients:
            client.close()


def test_unread_messages_past_the_queue_are_counted_not_dropped_silently(
    server, keyring, known
):
    seen: list[ChatMessage] = []
    with join(server, "alice", keyring, known, queue_size=5, on_message=seen.append) as alice:
        with join(server, "bob", keyring, known) as bob:
            for i in range(12):
                bob.send(f"line {i}")
            assert wait_until(lambda: any(m.text == "line 11" for m in seen))
        assert wait_until(lambda: seen[-1].text == "bob left")  # then nothing more comes
        assert alice.missed == len(seen) - 5 > 0  # everything past the 5 newest
        assert [alice.recv(1.0).text for _ in range(4)] == [m.text for m in seen[-5:-1]]
        assert "unread messages dropped" in repr(alice)


def test_a_member_that_stalls_for_a_few_seconds_loses_no_line(
    mode, keyring, allowlist, known, no_leaks
):
    """A student's kernel busy for 3 s (a long cell) stops reading; the lines for
    it wait in the server and all arrive, in order, once it reads again."""
    with ChatServer(keyring("server"), allowlist, mode=mode) as srv:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(5.0)
        try:
            stalled.connect((HOST, srv.port))
            channel = SecureChannel.client(stalled, keyring("carol"), mode, timeout=5.0)
            with join(srv, "alice", keyring, known) as alice:
                assert wait_until(lambda: "carol" in srv.members())
                sent = [f"{i} " + "y" * 2000 for i in range(300)]  # ~600 kB: under max_pending
                for text in sent:
                    alice.send(text)
                time.sleep(3.0)  # carol reads nothing meanwhile
                got = []
                deadline = time.monotonic() + 20
                while len(got) < len(sent) and time.monotonic() < deadline:
                    line = decode_message(channel.recv(max(0.05, deadline - time.monotonic())))
                    if line["type"] == "message":
                        got.append(line["text"])
                assert got == sent
                assert "carol" in srv.members()
        finally:
            stalled.close()


def test_a_client_that_never_reads_is_dropped_not_waited_for(
    mode, keyring, allowlist, known, no_leaks
):
    srv = ChatServer(
        keyring("server"), allowlist, mode=mode, send_timeout=0.3, max_pending=64 * 1024
    ).start()
    alice: ChatClient | None = None
    slow: socket.socket | None = None
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(5.0)
        slow.connect((HOST, srv.port))
        SecureChannel.client(slow, keyring("carol"), mode, timeout=5.0)  # then never reads
        alice = join(srv, "alice", keyring, known)
        assert wait_until(lambda: "carol" in srv.members())
        text = "z" * 3000
        started = time.monotonic()
        for i in range(3000):  # about 9 MB at most: more than any socket buffer
            alice.send(f"{i} {text}")
            assert lines(alice, 1)[0].text.startswith(f"{i} ")  # alice reads; carol never does
            if "carol" not in srv.members():
                break
        assert "carol" not in srv.members()
        assert time.monotonic() - started < 10

        def leaves() -> list[str]:
            return [e.text for e in srv.events if e.kind == "leave" and "carol" in e.text]

        assert wait_until(lambda: leaves() != [])
        reason = leaves()[0]
        assert "too slow" in reason or "sending failed" in reason
        alice.send("the room goes on")
        deadline = time.monotonic() + 10
        while alice.recv(max(0.01, deadline - time.monotonic())).text != "the room goes on":
            pass
    finally:
        for thing in (alice, slow):
            if thing is not None:
                thing.close()
        srv.stop()


@pytest.mark.parametrize("pooled", [False, True], ids=["one port", "pool"])
def test_a_stopped_server_says_goodbye_to_every_member(
    mode, keyring, allowlist, known, pooled: bool, no_leaks
):
    """When the instructor stops the room, each member reads "the server ended the chat"
    (a goodbye, sealed), not "lost the connection" as after a crash: stop() used to shut
    the handshake port's connections down before their threads could say goodbye."""
    pool = PortPool.reserve(2, HOST) if pooled else None
    srv = ChatServer(keyring("server"), allowlist, mode=mode, pool=pool).start()
    clients = [join(srv, name, keyring, known) for name in ("alice", "bob")]
    try:
        for client in clients:
            client.send(f"{client.name} is here")
        assert wait_until(lambda: len(srv.history) == 2)
        srv.stop(timeout=5.0)
        for client in clients:
            assert wait_until(lambda client=client: client.ended_because is not None)
            assert isinstance(client.ended_because, ChannelClosed), repr(client.ended_because)
    finally:
        for client in clients:
            client.close()
        srv.stop()
        if pool is not None:
            pool.close()
