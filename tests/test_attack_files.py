"""The file service against a student who means harm or makes mistakes: nothing lost.

Each case is an attack of the second attack run (attack2) that found a
weakness; the fix is named in each test's docstring. Loopback only, every
server stopped (``no_leaks``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import raw_connect

from labcrypto.allowlist import Allowlist
from labcrypto.atomic_file import TEMP_PREFIX
from labcrypto.channel import SecureChannel
from labcrypto.errors import BadPathName, FileServiceError
from labcrypto.ftp import FileClient, FileServer, run_command, store
from labcrypto.keys import KeyPair

pytestmark = pytest.mark.timeout(60)

MIB = 1 << 20


@pytest.fixture
def allowlist(tmp_path: Path, secure_keys: Callable[[str], KeyPair]) -> Allowlist:
    allowed = Allowlist(tmp_path / "allowlist.csv")
    allowed.add("alice", secure_keys("alice").public_key)
    return allowed


@pytest.fixture
def serve(
    tmp_path: Path, secure_keys: Callable[[str], KeyPair], allowlist: Allowlist, no_leaks: None
) -> Iterator[Callable[[], FileServer]]:
    """``serve()``: a file server on ``tmp_path/root`` (a new one on each call), stopped after."""
    started: list[FileServer] = []

    def start() -> FileServer:
        server = FileServer(secure_keys("server"), allowlist, tmp_path / "root")
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def _client(server: FileServer, secure_keys: Callable[[str], KeyPair]) -> FileClient:
    server_key = secure_keys("server").public_key
    return FileClient("127.0.0.1", server.port, secure_keys("alice"), server_key)


UPLOAD_NAME = f"{TEMP_PREFIX}notes.part"


@pytest.mark.parametrize("how", ["put", "rename", "mkdir", "put into"])
def test_a_file_cannot_take_the_name_of_an_upload_still_arriving(
    serve, secure_keys, tmp_path: Path, how: str
) -> None:
    """The server hides ``.labcrypto-upload-*.part`` files and deletes them when it starts
    (what a crash left behind). A student's notes uploaded or renamed to such a name
    vanished from ``ls`` and were gone after the next restart. ``jail.check_name``
    refuses the name now, and says why."""
    notes = tmp_path / "notes.txt"
    notes.write_text("a term of notes")
    first = serve()
    alice = _client(first, secure_keys)
    alice.put(notes, "notes.txt")
    with pytest.raises(BadPathName, match="upload still arriving"):
        if how == "put":
            alice.put(notes, UPLOAD_NAME)
        elif how == "rename":
            alice.rename("notes.txt", UPLOAD_NAME)
        elif how == "mkdir":
            alice.mkdir(UPLOAD_NAME)
        else:
            alice.put(notes, f"{UPLOAD_NAME}/notes.txt")
    first.stop()
    again = _client(serve(), secure_keys)  # a restart cleans up what crashes left
    assert [entry.name for entry in again.ls("/")] == ["notes.txt"]
    assert (tmp_path / "root" / "alice" / "notes.txt").read_text() == "a term of notes"


def test_uploads_leave_part_of_the_disk_free_for_everyone(
    secure_keys, allowlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaks
) -> None:
    """Without a quota (ftp-serve's default) one student's loop of uploads could fill the
    disk that the whole class and the instructor's server live on. ``keep_free`` bytes
    stay free, counting the uploads still arriving; the disk is a stand-in here with
    10 MiB free, so the figures do not depend on what else this machine writes."""
    real = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda path: real._replace(free=10 * MIB))
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "root", keep_free=8 * MIB
    ).start()
    try:
        alice = _client(server, secure_keys)
        small, big = tmp_path / "small.bin", tmp_path / "big.bin"
        small.write_bytes(b"s" * (3 * MIB // 2))
        big.write_bytes(b"b" * (3 * MIB))
        alice.put(small, "doc.bin")  # 10 - 1.5 >= 8
        with pytest.raises(FileServiceError, match="keeps 8388608 bytes of its disk free"):
            alice.put(big, "doc.bin", overwrite=True)  # 10 - 3 < 8
        assert (tmp_path / "root" / "alice" / "doc.bin").read_bytes() == small.read_bytes()
        with raw_connect(server.port) as sock:  # an upload still arriving holds its share
            channel = SecureChannel.client(sock, secure_keys("alice"), service="files", timeout=5.0)
            args = {"path": "slow.bin", "size": 3 * MIB // 2}
            channel.send(json.dumps({"command": "put", "args": args}).encode())
            assert json.loads(channel.recv(5.0))["ok"]
            with pytest.raises(FileServiceError, match="disk free"):
                alice.put(small, "other.bin")  # 10 - 1.5 - 1.5 < 8
        home = tmp_path / "root" / "alice"
        assert wait_until(lambda: sorted(p.name for p in home.iterdir()) == ["doc.bin"])
    finally:
        server.stop()


def test_a_put_cut_at_every_byte_keeps_the_old_version_and_leaves_nothing(
    serve, secure_keys, tmp_path: Path
) -> None:
    """Found nothing, kept as a guard: the request, the data record and the end record
    of a small upload, cut after each of their bytes in turn, by a close (FIN) and by a
    reset (RST). Only the whole stream replaces the file; no cut leaves a part file, a
    thread or a connection behind, and the server answers the next request."""
    server = serve()
    home = tmp_path / "root" / "alice"
    old = tmp_path / "old.bin"
    old.write_bytes(b"the old version " * 8)
    alice = _client(server, secure_keys)
    alice.put(old, "f.bin")
    new = bytes(range(64))
    args = {"path": "f.bin", "size": len(new), "overwrite": True}

    def upload_cut_at(cut: int, reset: bool) -> int:
        """Upload ``new`` by hand, stopping after ``cut`` bytes; how many bytes the whole is."""
        with raw_connect(server.port) as sock:
            channel = SecureChannel.client(sock, secure_keys("alice"), service="files", timeout=5.0)
            request = channel.seal_frame(json.dumps({"command": "put", "args": args}).encode())
            data = channel.seal_frame(new) + channel.seal_frame(json.dumps({"end": 64}).encode())
            sock.sendall(request[:cut])
            if cut > len(request):
                assert json.loads(channel.recv(5.0))["ok"]  # the server's go-ahead
                sock.sendall(data[: cut - len(request)])
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return len(request) + len(data)

    def settled() -> bool:
        return server.connection_count == 0 and [p.name for p in home.iterdir()] == ["f.bin"]

    whole = upload_cut_at(0, reset=False)
    for cut in range(whole):  # ~200 bytes: a few seconds
        for reset in (False, True):
            upload_cut_at(cut, reset)
            assert wait_until(settled), (cut, reset, sorted(p.name for p in home.iterdir()))
            assert (home / "f.bin").read_bytes() == old.read_bytes(), (cut, reset)
    assert [entry.name for entry in alice.ls("/")] == ["f.bin"]
    upload_cut_at(whole, reset=False)  # the whole stream, then gone without reading
    assert wait_until(lambda: (home / "f.bin").read_bytes() == new)


def test_a_name_a_terminal_would_obey_is_listed_quoted(serve, secure_keys, tmp_path: Path) -> None:
    """The file service never stores such a name, but a file put into a home by other
    means (or another server) could have one: ``labcrypto ftp ls`` printed it raw, and
    the student's terminal cleared itself and took a new title."""
    home = tmp_path / "root" / "alice"
    home.mkdir(parents=True, mode=0o700)
    (home / "a\x1b[2J\x1b]0;owned\x07b").write_text("x")
    (home / "line\nbreak").write_text("y")
    (home / "notes.txt").write_text("z")
    shown = run_command(_client(serve(), secure_keys), "ls")
    assert not any(char in shown for char in "\x1b\x07"), repr(shown)
    assert len(shown.splitlines()) == 3, shown  # "line\nbreak" stays on one line
    assert '"a\\x1b[2J\\x1b]0;owned\\x07b"' in shown and '"line\\x0abreak"' in shown
    assert shown.splitlines()[-1].endswith("  notes.txt")  # a plain name stays plain


def test_one_students_stuck_transfers_cannot_hold_every_connection(
    secure_keys, allowlist, tmp_path: Path, no_leaks
) -> None:
    """A transfer holds its connection while data flows, and a stuck one (a progress
    callback waiting for input, a loop that never sends) for the whole timeout: one
    student's stuck uploads held all 64 connections and the class was turned away.
    One key may have ``max_requests_per_key`` requests under way; the next is told so."""
    allowlist.add("bob", secure_keys("bob").public_key)
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "root", max_connections=8,
        max_requests_per_key=4, connection_timeout=30.0,
    ).start()  # fmt: skip
    try:
        with contextlib.ExitStack() as stack:
            for i in range(4):  # announced, never sent
                sock = stack.enter_context(raw_connect(server.port))
                channel = SecureChannel.client(sock, secure_keys("bob"), service="files")
                args = {"path": f"stuck{i}.bin", "size": 1000}
                channel.send(json.dumps({"command": "put", "args": args}).encode())
                assert json.loads(channel.recv(5.0))["ok"]
            bob = FileClient(
                "127.0.0.1", server.port, secure_keys("bob"), secure_keys("server").public_key
            )
            with pytest.raises(FileServiceError, match="4 requests under way"):
                bob.ls("/")
            assert _client(server, secure_keys).ls("/") == []  # alice is served
        assert wait_until(lambda: server.connection_count == 0)
        assert bob.ls("/") == []  # bob's stuck ones are gone: he is served again
    finally:
        server.stop()
