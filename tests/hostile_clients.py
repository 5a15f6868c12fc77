"""Helpers for tests/test_hostile.py: a class's servers, hand-made bad clients, a leak check.

``Lab`` runs the three servers a class uses (a one-port chat room, a chat
room with the two-port handoff, the file service) with short timeouts so
a hostile case ends in seconds. ``Snapshot`` counts what a case could
leak (threads, open file descriptors, leased ports, connections) and
``Lab.settle`` waits, bounded, until the counts are back where they were.
``Lab.check_healthy`` is the well-behaved client every case ends with.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import HEADER, SecureChannel
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.ftp import FileClient, FileServer
from labcrypto.handshake import ClientHandshake, decode_message, encode_message
from labcrypto.ports import PortPool

HOST = "127.0.0.1"
#: People on the allowlist; "mallory" is not on it.
STUDENTS = ("alice", "bob", "carol", "dave", "erin")
#: Every timeout of the lab's servers: short, so a stalled client is cut off in seconds.
TIMEOUT = 1.5
#: How long a case may take to give back what it used.
SETTLE = 10.0


def open_fds() -> int:
    """How many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


@dataclass(frozen=True)
class Snapshot:
    """What a hostile case could leak, counted at one moment."""

    threads: int
    fds: int
    leased: tuple[int, ...]
    connections: dict[str, int] = field(compare=False)

    def leaks_since(self, before: Snapshot) -> list[str]:
        """What is up since ``before`` (empty: nothing leaked)."""
        problems = []
        if self.threads > before.threads:
            problems.append(f"threads {before.threads} -> {self.threads}")
        if self.fds > before.fds:
            problems.append(f"fds {before.fds} -> {self.fds}")
        if len(self.leased) > len(before.leased):
            problems.append(f"leased ports {before.leased} -> {self.leased}")
        busy = {name: n for name, n in self.connections.items() if n}
        if busy:
            problems.append(f"connections still open: {busy}")
        return problems


class Lab:
    """The servers of one class, with short timeouts. ``stop()`` stops them all."""

    def __init__(self, root: Path, keyring: Callable[[str], keys.KeyPair]) -> None:
        self.keyring = keyring
        self.server_key = keyring("server")
        self.allowlist = Allowlist(root / "allowlist.csv")
        for name in STUDENTS:
            self.allowlist.add(name, keyring(name).public_key)
        self.pool = PortPool.reserve(2)
        # Every case attacks from 127.0.0.1, so the per-address slow-down after failed
        # handshakes would slow the well-behaved client of each check too: it is off
        # here, and test_hostile tests it on a server of its own, from another address.
        common: dict[str, Any] = {
            "handshake_timeout": TIMEOUT,
            "frame_timeout": TIMEOUT,
            "free_failed_handshakes": None,
        }
        self.room = ChatServer(self.server_key, self.allowlist, name="hostile-room", **common)
        self.pooled = ChatServer(
            self.server_key,
            self.allowlist,
            pool=self.pool,
            ticket_timeout=1.0,
            name="hostile-pooled",
            **common,
        )
        self.files_root = root / "files"
        self.files = FileServer(
            self.server_key,
            self.allowlist,
            self.files_root,
            max_upload=16 << 20,
            connection_timeout=TIMEOUT,
            name="hostile-files",
        )
        self.servers: list[Any] = [self.room, self.pooled, self.files]
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        """Stop every server and close the pool."""
        for server in self.servers:
            server.stop()
        self.pool.close()

    # --- counting ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Threads, fds, leased ports and connections now."""
        return Snapshot(
            threading.active_count(),
            open_fds(),
            tuple(self.pool.leased()),
            {server.name: server.connection_count for server in self.servers},
        )

    def settle(self, before: Snapshot, timeout: float = SETTLE) -> list[str]:
        """Wait (at most ``timeout`` s) until nothing is up since ``before``; the leaks left."""
        deadline = time.monotonic() + timeout
        while True:
            problems = self.snapshot().leaks_since(before)
            if not problems or time.monotonic() > deadline:
                if problems:
                    names = sorted(t.name for t in threading.enumerate())
                    problems.append(f"threads now: {names}")
                return problems
            time.sleep(0.05)

    # --- the well-behaved client -----------------------------------------------------

    def chat(self, server: ChatServer, name: str = "alice", timeout: float = 5.0) -> ChatClient:
        """A well-behaved member of ``server``'s room (the caller closes it)."""
        return ChatClient.connect(
            HOST, server.port, self.keyring(name), server_key=self.server_key.public_key,
            timeout=timeout,
        )  # fmt: skip

    def file_client(self, name: str = "alice") -> FileClient:
        """A well-behaved file-service client."""
        return FileClient(HOST, self.files.port, self.keyring(name), self.server_key.public_key)

    def check_healthy(self) -> None:
        """Every server still serves a well-behaved client (raises if one does not)."""
        for server in (self.room, self.pooled):
            assert server.running, f"{server.name} stopped"
            with self.chat(server) as client:
                line = f"still there? {random.random()}"
                client.send(line)
                deadline = time.monotonic() + 5.0
                while True:  # notices (joins, leaves of others) may come first
                    message = client.recv(max(0.05, deadline - time.monotonic()))
                    if message.text == line:
                        break
        assert isinstance(self.file_client().ls("/"), list)


# --- hand-made clients -------------------------------------------------------------


def raw_connect(port: int, timeout: float = 5.0, source: str | None = None) -> socket.socket:
    """A plain TCP connection with ``TCP_NODELAY`` and a timeout.

    ``source``: another loopback address to come from (``127.0.0.2``...),
    for the rules a server keeps per source address.
    """
    where = (source, 0) if source is not None else None
    sock = socket.create_connection((HOST, port), timeout=timeout, source_address=where)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def frame(payload: bytes) -> bytes:
    """A frame by hand (no length check: hostile clients lie)."""
    return HEADER.pack(len(payload)) + payload


def read_frames(sock: socket.socket, timeout: float = 5.0) -> list[bytes]:
    """Every frame the peer sends until it closes (bounded by ``timeout`` overall)."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    frames = []
    while len(data) >= HEADER.size:
        (length,) = HEADER.unpack_from(data)
        if len(data) < HEADER.size + length:
            break
        frames.append(bytes(data[HEADER.size : HEADER.size + length]))
        del data[: HEADER.size + length]
    return frames


def closed_by_peer(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the peer closed ``sock`` (reading and dropping what it sends), or None."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
        if not chunk:
            return time.monotonic() - started
    return None


def error_code(frames: list[bytes]) -> str | None:
    """The ``code`` of the plain ``error`` message among ``frames``, if any."""
    for payload in frames:
        try:
            message = decode_message(payload)
        except Exception:
            continue
        if message.get("type") == "error":
            return str(message.get("code"))
    return None


def hello(key: keys.KeyPair, **changes: Any) -> bytes:
    """A client_hello for ``key``, with fields changed (None deletes a field)."""
    message: dict[str, Any] = json.loads(ClientHandshake(key).start())  # a real secure hello
    for name, value in changes.items():
        if value is None:
            message.pop(name, None)
        else:
            message[name] = value
    return encode_message(message)


def chat_session(server: ChatServer, key: keys.KeyPair) -> tuple[socket.socket, SecureChannel]:
    """A hand-made chat member on a one-port room: handshake done, welcome read."""
    sock = raw_connect(server.port)
    channel = SecureChannel.client(sock, key, timeout=5.0)
    assert decode_message(channel.recv(5.0))["type"] == "welcome"
    return sock, channel


def refusal(channel: SecureChannel, timeout: float = 5.0) -> str:
    """The text of the next "message refused ..." notice a chat member gets."""
    deadline = time.monotonic() + timeout
    while True:
        line = decode_message(channel.recv(max(0.05, deadline - time.monotonic())))
        if line["type"] == "notice" and line["text"].startswith("message refused"):
            return str(line["text"])


def say(text: str) -> bytes:
    """A chat ``say`` message."""
    return encode_message({"type": "say", "text": text})


def trickle(sock: socket.socket, data: bytes, interval: float, limit: float) -> float | None:
    """Send ``data`` one byte every ``interval`` s; seconds until the peer cut us off.

    None if all of it went out, or ``limit`` s passed, without the peer
    closing the connection.
    """
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > limit:
            return None
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        # Reading tells us at once whether the server has hung up.
        sock.settimeout(interval)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
        if not chunk:
            return time.monotonic() - started
    return None
