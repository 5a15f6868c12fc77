"""A stranger holding the door shut: silent connections that never finish a handshake.

Connections that only connect cost a stranger nothing and cost the server a
thread and a slot until the handshake timeout. Two attacks that worked:

* the chat room takes 200 connections and 32 per address in their
  handshake: 200 silent sockets from seven addresses turned every student
  away ("server busy") for the handshake timeout, again and again;
* the file service had no per-address limit at all: 64 silent sockets
  from anyone turned everyone away, with a bare close; and 64 connections
  of one student's buggy loop that shook hands and never sent a request
  did the same for 30 s each.

Now a full server lets a newcomer take the place of a connection still in
its handshake: the oldest of the address holding the most of them, if it
holds more than the newcomer's (a flood from a few addresses gives way to
anyone else at once, however fast it reconnects), else the oldest of all
once it has had ``handshake_grace`` seconds (a real handshake takes
milliseconds). The file service has the chat's door
(``ftp.server.DOOR``), whose connections stay at the door until their
request has arrived. Each server here is small (a few slots) so the
attack is a dozen sockets; the handshake timeouts are long (30 s), so only
making room, never a timeout, can let the student in within the test.
Loopback only; every socket closed and every server stopped.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import HOST, error_code, frame, hello, raw_connect, read_frames

from labcrypto.admission import AdmissionRules
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.errors import HandshakeError
from labcrypto.ftp import FileClient, FileServer

pytestmark = pytest.mark.timeout(60)

#: Long enough that no silent connection times out during a test.
NEVER = 30.0
#: A student must get in within this (a handshake is milliseconds; this is load's slack).
PROMPTLY = 5.0


@pytest.fixture
def allowlist(tmp_path: Path, secure_keys) -> Allowlist:
    allow = Allowlist(tmp_path / "allowlist.csv")
    allow.add("alice", secure_keys("alice").public_key)
    return allow


@contextmanager
def silent(port: int, sources: list[str], count: int) -> Iterator[list]:
    """``count`` connections from each of ``sources`` that never say a word."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(raw_connect(port, source=source))
            for source in sources
            for _ in range(count)
        ]


def _past_grace(server) -> None:
    """Wait until every connection in its handshake is older than the server's grace.

    (It peeks at the server's own clock of each: on a loaded machine a
    connection may be accepted a while after the client connected.)
    """
    assert wait_until(lambda: _all_past_grace(server), server.handshake_grace + 10)


def _all_past_grace(server) -> bool:
    now = time.monotonic()
    with server._lock:
        ages = [now - since for _, since in server._in_handshake.values()]
    return bool(ages) and min(ages) > server.handshake_grace


def test_silent_strangers_from_many_addresses_cannot_fill_the_chat_room(
    secure_keys, allowlist, no_leaks
) -> None:
    server = ChatServer(
        secure_keys("server"), allowlist, max_connections=12, max_handshakes_per_source=4,
        handshake_timeout=NEVER, frame_timeout=NEVER,
    ).start()  # fmt: skip
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    try:
        with silent(server.port, sources, 4):
            assert wait_until(lambda: server.connection_count == 12)
            _past_grace(server)
            started = time.monotonic()
            with ChatClient.connect(
                HOST, server.port, secure_keys("alice"),
                server_key=secure_keys("server").public_key, timeout=PROMPTLY,
            ) as alice:  # fmt: skip
                assert alice.name == "alice"
                assert time.monotonic() - started < PROMPTLY
                assert server.members() == ["alice"]
            assert any("to let a newcomer in" in e.text for e in server.events)
    finally:
        server.stop()


def test_silent_strangers_cannot_fill_the_file_service(secure_keys, allowlist, tmp_path) -> None:
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "homes", max_connections=8,
        connection_timeout=NEVER,
    ).start()  # fmt: skip
    try:
        with silent(server.port, ["127.0.0.5"], 8):
            assert wait_until(lambda: server.connection_count == 8)
            _past_grace(server)
            client = FileClient(
                HOST, server.port, secure_keys("alice"), secure_keys("server").public_key,
                timeout=PROMPTLY,
            )  # fmt: skip
            for _ in range(3):  # each request is a connection of its own: each makes room
                assert client.ls("/") == []
    finally:
        server.stop()


def test_a_students_connections_that_never_send_a_request_cannot_fill_the_file_service(
    secure_keys, allowlist, tmp_path
) -> None:
    """A buggy loop that shakes hands and never asks: a request is part of the door."""
    allowlist.add("bob", secure_keys("bob").public_key)
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "homes", max_connections=8,
        connection_timeout=NEVER,
    ).start()  # fmt: skip
    try:
        with ExitStack() as stack:
            for _ in range(8):
                sock = stack.enter_context(raw_connect(server.port))
                SecureChannel.client(sock, secure_keys("bob"), service="files", timeout=PROMPTLY)
            assert server.connection_count == 8
            _past_grace(server)
            client = FileClient(
                HOST, server.port, secure_keys("alice"), secure_keys("server").public_key,
                timeout=PROMPTLY,
            )  # fmt: skip
            for _ in range(3):
                assert client.ls("/") == []
    finally:
        server.stop()


def test_the_file_service_tells_one_address_over_its_share_it_is_busy(
    secure_keys, allowlist, tmp_path
) -> None:
    door = AdmissionRules(max_per_source=3, free_failures=None)
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "homes", door=door, connection_timeout=NEVER
    ).start()
    try:
        with silent(server.port, ["127.0.0.6"], 3):
            assert wait_until(lambda: server.admission.waiting("127.0.0.6") == 3)
            with raw_connect(server.port, source="127.0.0.6") as late:
                late.sendall(frame(hello(secure_keys("alice"), service="files")))
                assert error_code(read_frames(late, timeout=PROMPTLY)) == "busy"
            client = FileClient(  # another address is not held up
                HOST, server.port, secure_keys("alice"), secure_keys("server").public_key,
                timeout=PROMPTLY,
            )  # fmt: skip
            assert client.ls("/") == []
    finally:
        server.stop()


def test_a_full_server_never_cuts_short_a_handshake_among_equals(secure_keys, allowlist) -> None:
    """Connections from as many addresses as there are (a class joining at once) keep
    their places while younger than the grace: the newcomer is told busy instead."""
    server = ChatServer(
        secure_keys("server"), allowlist, max_connections=4, handshake_timeout=NEVER
    )
    server.handshake_grace = NEVER
    server.start()
    try:
        sources = ["127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10"]
        with silent(server.port, sources, 1) as held:
            assert wait_until(lambda: server.connection_count == 4)
            with pytest.raises(HandshakeError, match="busy"):
                ChatClient.connect(
                    HOST, server.port, secure_keys("alice"),
                    server_key=secure_keys("server").public_key, timeout=PROMPTLY,
                )  # fmt: skip
            for sock in held:  # none of them was closed
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
    finally:
        server.stop()


def test_a_fast_flood_from_a_few_addresses_gives_way_to_anyone_else(
    secure_keys, allowlist, no_leaks
) -> None:
    """Connections as fast as the flood can make them, from six addresses: the room is
    always full of young ones, and closing only the old ones let almost nobody in (with
    a 200-place room, 9 joins in 10 were refused). The address holding the most
    places gives one up to a newcomer from an address holding fewer, at once."""
    server = ChatServer(
        secure_keys("server"), allowlist, max_connections=20, max_handshakes_per_source=8,
        handshake_timeout=NEVER, frame_timeout=NEVER,
    ).start()  # fmt: skip
    stop = threading.Event()
    made = [0]

    def flood() -> None:
        held: list[socket.socket] = []
        try:
            for i in range(200_000):  # bounded; stops at `stop`
                if stop.is_set():
                    return
                sock = socket.socket()
                sock.setblocking(False)
                sock.bind((f"127.0.0.{11 + i % 6}", 0))
                sock.connect_ex((HOST, server.port))  # loopback: done at once, no wait
                held.append(sock)
                made[0] += 1
                if len(held) > 300:  # a few hundred descriptors at most
                    held.pop(0).close()
                if i % 20 == 0:
                    time.sleep(0.001)
        finally:
            for sock in held:
                sock.close()

    flooder = threading.Thread(target=flood, name="flood", daemon=True)
    flooder.start()
    try:
        assert wait_until(lambda: server.connection_count >= 20 and made[0] > 1000, 10)
        joined = 0
        for _ in range(5):
            with ChatClient.connect(
                HOST, server.port, secure_keys("alice"),
                server_key=secure_keys("server").public_key, timeout=PROMPTLY,
            ) as alice:  # fmt: skip
                joined += alice.name == "alice"
        assert joined == 5
    finally:
        stop.set()
        flooder.join(10)
        server.stop()


def test_threads_stay_bounded_while_strangers_keep_coming(secure_keys, allowlist, no_leaks) -> None:
    """Waves of silent connections, each past the grace: the room makes room, within bounds."""
    server = ChatServer(
        secure_keys("server"), allowlist, max_connections=10, max_handshakes_per_source=None,
        handshake_timeout=NEVER, frame_timeout=NEVER,
    ).start()  # fmt: skip
    before = threading.active_count()
    bound = server.max_connections + server.max_making_room + 2  # + accept thread, slack
    most = 0
    try:
        with ExitStack() as stack:
            for _ in range(3):  # three waves of 15: each finds the room full of older ones
                for _ in range(15):
                    stack.enter_context(raw_connect(server.port, source="127.0.0.8"))
                deadline = time.monotonic() + server.handshake_grace + 10
                while time.monotonic() < deadline:  # until the wave is past the grace
                    most = max(most, threading.active_count() - before)
                    time.sleep(0.05)
                    if _all_past_grace(server):
                        break
            assert most <= bound, (most, bound)
            with ChatClient.connect(
                HOST, server.port, secure_keys("alice"),
                server_key=secure_keys("server").public_key, timeout=PROMPTLY,
            ) as alice:  # fmt: skip
                assert alice.name == "alice"
    finally:
        server.stop()
