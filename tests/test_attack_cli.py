"""The instructor's servers as the CLI starts them, under a class's worth of attacks.

``labcrypto serve`` (the chat room, with its port pool and handoff) and
``labcrypto ftp-serve`` run as processes, as in class. While a
well-behaved student chats (a round trip every 0.2 s) and lists files
(every 0.3 s), strangers and buggy clients try, in turn: hundreds of
silent connections from many addresses; hellos with terminal escapes,
bidi overrides and forged log lines in every field, duplicate keys, deep
nesting and huge numbers; frames over the limit; handshakes trickled a
byte at a time; a member who never reads beside one who floods the room
with long Russian lines; names with escapes; uploads cut at every stage.

Then: the student never saw an error; each server's threads come back to
where they were and its memory stays bounded; its log (stderr) holds no
raw control character; and SIGTERM stops it at once with exit code 0.
Everything runs on loopback, every loop is bounded, both processes are
killed if anything goes wrong.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import frame, hello, raw_connect, read_frames, trickle

from labcrypto import keys
from labcrypto.channel import SecureChannel
from labcrypto.chat import ChatClient
from labcrypto.ftp import FileClient
from labcrypto.handoff import ticket_message
from labcrypto.ports import PortPool

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[1]
#: What a field of a hostile hello holds: a screen clear, a retitle, a forged log line.
EVIL = "x\x1b[2J\x1b]0;owned\x07\n12:00:00 alice joined\u202e"
#: Characters that must never reach the instructor's terminal raw.
RAW = ("\x1b", "\x07", "\u202e", "\r")


def _cli(cwd: Path, env: dict[str, str], *argv: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "labcrypto", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


class Served:
    """One server process: its port, its stderr file, its threads and memory."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path, *argv: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labcrypto", *argv],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=log.open("w"), text=True,
        )  # fmt: skip
        line = _first_line(self.process, 30)
        assert "listening on" in line, line
        self.port = int(line.strip().rsplit(":", 1)[1])

    def status(self) -> tuple[int, int]:
        """(resident memory in MiB, threads) from /proc."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) // 1024, int(fields["Threads"])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"the server printed nothing within {timeout} s"
    return lines[0]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Served, Served, Callable[[str], keys.KeyPair]]]:
    env = dict(os.environ, LABCRYPTO_KEYS=str(tmp_path / "keys"), PYTHONPATH=str(REPO))
    for name in ("server", "alice", "bob", "mallory"):
        _cli(tmp_path, env, "keygen", name)
    for name in ("alice", "bob"):
        _cli(tmp_path, env, "allow", "add", name, f"keys/{name}.pub")
    pool = PortPool.reserve(10)  # a free range for the conversation ports
    first, last = pool.first, pool.last
    pool.close()
    started: list[Served] = []
    try:
        started.append(
            Served(tmp_path, env, tmp_path / "serve.err",
                   "serve", "--port", "0", "--pool", f"{first}-{last}")
        )  # fmt: skip
        started.append(
            Served(tmp_path, env, tmp_path / "ftp.err",
                   "ftp-serve", "--port", "0", "--root", "homes", "--nice", "0")
        )  # fmt: skip
        yield started[0], started[1], lambda name: keys.load(name, tmp_path / "keys")
    finally:
        for served in started:
            served.kill()


class Student:
    """A well-behaved student: chat round trips and ``ls`` in two threads, errors kept."""

    def __init__(self, chat: Served, files: Served, key: keys.KeyPair, server: keys.PublicKey):
        self.stop = threading.Event()
        self.round_trips: list[float] = []
        self.listings = 0
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._chat, args=(chat.port, key, server), daemon=True),
            threading.Thread(target=self._files, args=(files.port, key, server), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _chat(self, port: int, key: keys.KeyPair, server: keys.PublicKey) -> None:
        try:
            with ChatClient.connect("127.0.0.1", port, key, server_key=server, timeout=10) as me:
                for i in range(10_000):  # bounded; ends at `stop`
                    if self.stop.is_set():
                        return
                    line, started = f"polite {i}", time.monotonic()
                    me.send(line)
                    while me.recv(10).text != line:
                        pass
                    self.round_trips.append(time.monotonic() - started)
                    self.stop.wait(0.2)
        except Exception as exc:  # the test reports it
            self.errors.append(f"chat: {exc!r}")

    def _files(self, port: int, key: keys.KeyPair, server: keys.PublicKey) -> None:
        client = FileClient("127.0.0.1", port, key, server, timeout=10)
        for _ in range(10_000):  # bounded; ends at `stop`
            if self.stop.is_set():
                return
            try:
                client.ls("/")
                self.listings += 1
            except Exception as exc:  # the test reports it
                self.errors.append(f"ls: {exc!r}")
            self.stop.wait(0.3)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(20)


# --- the attacks ---------------------------------------------------------------------


def silent_crowds(chat: Served, files: Served) -> None:
    """240 silent connections to the chat from 8 addresses, 90 to the files from 3."""
    held = []
    try:
        for port, sources, count in ((chat.port, 8, 30), (files.port, 3, 30)):
            for i in range(sources):
                for _ in range(count):
                    held.append(raw_connect(port, source=f"127.0.{7 + sources}.{i + 1}"))
        time.sleep(3)
    finally:
        for sock in held:
            sock.close()


def bad_hellos(chat: Served, files: Served, key: Callable[[str], keys.KeyPair]) -> None:
    """Escapes in every field, broken JSON, huge numbers, frames over the limit."""
    for port in (chat.port, files.port):
        payloads = [hello(key("bob"), **{field: EVIL}) for field in
                    ("mode", "service", "group", "protocol", "type", "version")]  # fmt: skip
        payloads += [
            b"[" * 5000, b'{"type":"client_hello","n":' + b"1" * 6000 + b"}",
            ('{"' + EVIL + '":1,"' + EVIL + '":2}').encode(), hello(key("mallory")),
            b"\xff" * 50,
        ]  # fmt: skip
        for payload in payloads:
            with raw_connect(port) as sock:
                sock.sendall(frame(payload))
                read_frames(sock, 5)
        for header in (b"\xff\xff\xff\xff", ((1 << 20) + 1).to_bytes(4, "big")):
            with raw_connect(port) as sock:
                sock.sendall(header)
                read_frames(sock, 5)


def slow_handshakes(chat: Served, files: Served, key: Callable[[str], keys.KeyPair]) -> None:
    """Five hellos a byte at a time to each server, for 4 s."""

    def one(port: int) -> None:
        with raw_connect(port) as sock:
            trickle(sock, frame(hello(key("bob"))), interval=0.2, limit=4)

    threads = [
        threading.Thread(target=one, args=(s.port,)) for s in (chat, files) for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)


def _member(chat: Served, key: keys.KeyPair) -> tuple[list, SecureChannel]:
    """A hand-made member through the handoff: (sockets, channel), welcome read."""
    control = raw_connect(chat.port)
    channel = SecureChannel.client(control, key, timeout=10)
    offer = json.loads(channel.recv(10))
    data = raw_connect(offer["port"])
    data.sendall(channel.seal_frame(ticket_message(offer["ticket"])))
    channel.rebind(data)
    assert json.loads(channel.recv(10))["type"] == "welcome"
    return [control, data], channel


def deaf_member_and_flooder(chat: Served, key: Callable[[str], keys.KeyPair]) -> None:
    """One member never reads; another floods 3 s of 1,900-letter Russian lines."""
    deaf, _ = _member(chat, key("bob"))
    loud, channel = _member(chat, key("bob"))
    try:
        loud[1].settimeout(5)
        line = json.dumps({"type": "say", "text": "флуд " + "я" * 1900}).encode()
        ends = time.monotonic() + 3
        while time.monotonic() < ends:  # bounded by the clock
            try:
                loud[1].sendall(channel.seal_frame(line))
            except OSError:
                break
    finally:
        for sock in deaf + loud:
            sock.close()


def evil_names_and_cut_uploads(files: Served, key: Callable[[str], keys.KeyPair]) -> None:
    """Escapes in a command, a path and a working folder; uploads cut at each stage."""
    bob = FileClient("127.0.0.1", files.port, key("bob"), key("server").public_key, timeout=10)
    for attempt in (lambda: bob.mkdir(EVIL), lambda: bob.ls(EVIL), lambda: bob.rename("a", EVIL)):
        with pytest.raises(Exception):  # noqa: B017 - refused, whatever the words
            attempt()
    with raw_connect(files.port) as sock:
        channel = SecureChannel.client(sock, key("bob"), service="files", timeout=10)
        channel.send(json.dumps({"command": EVIL, "cwd": EVIL}).encode())
        assert json.loads(channel.recv(10))["ok"] is False
    data = os.urandom(3 << 20)
    for cut in (0, 1, 100, 1 << 20, (3 << 20) - 1):
        with raw_connect(files.port) as sock:
            channel = SecureChannel.client(sock, key("bob"), service="files", timeout=10)
            args = {"path": "cut.bin", "size": len(data)}
            channel.send(json.dumps({"command": "put", "args": args}).encode())
            assert json.loads(channel.recv(10))["ok"]
            chunks = (data[i : i + (512 << 10)] for i in range(0, len(data), 512 << 10))
            sock.sendall(b"".join(channel.seal_frame(chunk) for chunk in chunks)[:cut])


def test_the_cli_servers_keep_serving_a_student_through_every_attack(servers, tmp_path) -> None:
    chat, files, key = servers
    before = {served: served.status() for served in (chat, files)}
    student = Student(chat, files, key("alice"), key("server").public_key)
    peak = dict(before)
    try:
        assert wait_until(lambda: student.round_trips and student.listings, 20)
        for attack in (
            lambda: silent_crowds(chat, files),
            lambda: bad_hellos(chat, files, key),
            lambda: slow_handshakes(chat, files, key),
            lambda: deaf_member_and_flooder(chat, key),
            lambda: evil_names_and_cut_uploads(files, key),
        ):
            attack()
            for served in (chat, files):
                rss, threads = served.status()
                peak[served] = (max(peak[served][0], rss), max(peak[served][1], threads))
        time.sleep(1)  # the student's last round trips, after the attacks
    finally:
        student.finish()
    assert not student.errors, student.errors
    assert student.round_trips and statistics.median(student.round_trips) < 1.0
    for served in (chat, files):
        # Threads: bounded during the attacks, back to where they were after.
        assert peak[served][1] <= before[served][1] + 200 + 32 + 8, (served.log.name, peak)
        assert wait_until(lambda s=served: s.status()[1] <= before[s][1] + 1, 30), (
            served.log.name, served.status(), before[served],
        )  # fmt: skip
        assert served.status()[0] - before[served][0] < 100, (served.log.name, peak)
        started = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
        assert time.monotonic() - started < 20
        log = served.log.read_text()
        assert not [line for line in log.splitlines() if any(c in line for c in RAW)]
        assert "\\x1b" in log  # the escapes did reach the log: shown, not obeyed
    assert not list((tmp_path / "homes").rglob(".labcrypto-upload-*"))


def test_a_classmate_cannot_take_the_pool_of_labcrypto_serve(tmp_path) -> None:
    """On a hub every student's programs share the machine with the class server. The
    pool's ports were bound only when leased: a classmate who bound all of them first
    shut the class out ("no free port ... held by other programs"). serve holds them."""
    env = dict(os.environ, LABCRYPTO_KEYS=str(tmp_path / "keys"), PYTHONPATH=str(REPO))
    for name in ("server", "alice"):
        _cli(tmp_path, env, "keygen", name)
    _cli(tmp_path, env, "allow", "add", "alice", "keys/alice.pub")
    pool = PortPool.reserve(5)
    first, last = pool.first, pool.last
    pool.close()
    serve = Served(
        tmp_path, env, tmp_path / "serve.err", "serve", "--port", "0", "--pool", f"{first}-{last}"
    )
    squatted = []
    try:
        for port in range(first, last + 1):  # the classmate's program
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
                squatted.append(sock)
            except OSError:
                sock.close()
        key = keys.load("alice", tmp_path / "keys")
        server_key = keys.load("server", tmp_path / "keys").public_key
        with ChatClient.connect(
            "127.0.0.1", serve.port, key, server_key=server_key, timeout=10
        ) as alice:
            assert first <= alice.data_port <= last
        assert squatted == []
    finally:
        for sock in squatted:
            sock.close()
        serve.kill()
