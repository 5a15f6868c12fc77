"""The file service: commands, homes, the jail over the wire, whole-or-nothing transfers."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_until

from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel
from labcrypto.errors import (
    ChannelClosed,
    ConnectionLost,
    FileServiceError,
    KeyNotAllowed,
    PathOutsideHome,
    QuotaExceeded,
    ServerKeyChanged,
    TransferFailed,
    UploadTooLarge,
)
from labcrypto.ftp import FileClient, FileServer, run_command
from labcrypto.keys import KeyPair
from labcrypto.server import connect

MIB = 1 << 20


@pytest.fixture
def service(
    tmp_path: Path, secure_keys: Callable[[str], KeyPair], no_leaks: None
) -> Iterator[FileServer]:
    """A file server for alice, bob and alice2 (the sibling-prefix trap), with an outside secret."""
    allowlist = Allowlist(tmp_path / "allowlist.csv")
    for name in ("alice", "bob", "alice2"):
        allowlist.add(name, secure_keys(name).public_key)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("outside secret")
    server = FileServer(
        secure_keys("server"), allowlist, tmp_path / "root", max_upload=8 * MIB, max_cat=64_000
    ).start()
    yield server
    server.stop()


@pytest.fixture
def client_for(
    service: FileServer, secure_keys: Callable[[str], KeyPair]
) -> Callable[[str], FileClient]:
    def make(name: str) -> FileClient:
        return FileClient("127.0.0.1", service.port, secure_keys(name))

    return make


def data_file(path: Path, size: int, seed: int = 0) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary upload files still lying around."""
    return [p.name for p in folder.rglob("*") if p.name.startswith(".labcrypto-upload-")]


# --- every command -------------------------------------------------------------------------


def test_every_command_happy_path(client_for: Callable, service: FileServer, tmp_path: Path):
    alice = client_for("alice")
    assert alice.ls() == []
    assert alice.mkdir("docs") == "/docs"
    assert alice.cd("docs") == "/docs" == alice.pwd()
    source = data_file(tmp_path / "notes.bin", 3 * MIB + 17)
    sent = alice.put(source)
    assert (sent.remote, sent.size) == ("/docs/notes.bin", source.stat().st_size)
    stored = tmp_path / "root" / "alice" / "docs" / "notes.bin"  # the server's copy, on its disk
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sent.sha256
    (tmp_path / "hello.txt").write_text("hello, Bob\n")
    alice.put(tmp_path / "hello.txt", "/docs/hello.txt")
    assert alice.cat("hello.txt") == "hello, Bob\n"
    listing = alice.ls()
    assert [(e.name, e.kind, e.size) for e in listing] == [
        ("hello.txt", "file", 11),
        ("notes.bin", "file", 3 * MIB + 17),
    ]
    assert [e.name for e in alice.ls("/")] == ["docs"]
    assert alice.rename("notes.bin", "/moved.bin") == "/moved.bin"
    assert alice.mkdir("/archive") == "/archive"
    assert alice.rename("/moved.bin", "/archive") == "/archive/moved.bin"  # into a folder
    back = alice.get("/archive/moved.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    assert back.sha256 == sent.sha256
    assert alice.rm("/archive/moved.bin") == "/archive/moved.bin"
    assert alice.rmdir("/archive") == "/archive"
    assert alice.cd("..") == "/"
    assert [e.name for e in alice.ls()] == ["docs"]
    home = tmp_path / "root" / "alice"
    assert sorted(os.listdir(home / "docs")) == ["hello.txt"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        (lambda c, t: c.ls("missing"), FileServiceError, "no such"),
        (lambda c, t: c.cd("file.txt"), FileServiceError, "not a folder"),
        (lambda c, t: c.cd("missing"), FileServiceError, "no such"),
        (lambda c, t: c.mkdir("dir"), FileServiceError, "already exists"),
        (lambda c, t: c.mkdir("missing/sub"), FileServiceError, "no such"),
        (lambda c, t: c.rmdir("dir"), FileServiceError, "not empty"),
        (lambda c, t: c.rmdir("file.txt"), FileServiceError, "not a folder|file"),
        (lambda c, t: c.rm("dir"), FileServiceError, "rmdir"),
        (lambda c, t: c.rm("missing"), FileServiceError, "no such"),
        (lambda c, t: c.rename("missing", "x"), FileServiceError, "no such"),
        (lambda c, t: c.rename("file.txt", "dir/inner.txt"), FileServiceError, "exists"),
        (lambda c, t: c.cat("dir"), FileServiceError, "not a regular file|folder"),
        (lambda c, t: c.cat("big.bin"), FileServiceError, "use get"),
        (lambda c, t: c.get("missing", t / "x"), FileServiceError, "no such"),
        (lambda c, t: c.get("file.txt", t / "exists.txt"), FileServiceError, "already exists"),
        (lambda c, t: c.put(t / "exists.txt", "file.txt"), FileServiceError, "already exists"),
        (lambda c, t: c.put(t / "exists.txt", "dir"), FileServiceError, "already exists"),
        (lambda c, t: c.put(t / "huge.bin"), UploadTooLarge, "limit"),
    ],
)
def test_command_errors(client_for: Callable, tmp_path: Path, action, error, match) -> None:
    alice = client_for("alice")
    (tmp_path / "exists.txt").write_text("local")
    data_file(tmp_path / "big.bin", 64_001)
    os.truncate(data_file(tmp_path / "huge.bin", 0), 9 * MIB)  # sparse: instant
    alice.put(tmp_path / "exists.txt", "file.txt")
    alice.put(tmp_path / "big.bin")
    alice.mkdir("dir")
    alice.put(tmp_path / "exists.txt", "dir/inner.txt")
    with pytest.raises(error, match=match):
        action(alice, tmp_path)
    assert alice.cat("file.txt") == "local"  # nothing changed, the server still serves
    assert (tmp_path / "exists.txt").read_text() == "local"
    assert leftovers(tmp_path) == []


def test_overwrite_only_when_asked(client_for: Callable, tmp_path: Path) -> None:
    alice = client_for("alice")
    (tmp_path / "v1.txt").write_text("one")
    (tmp_path / "v2.txt").write_text("two")
    alice.put(tmp_path / "v1.txt", "f.txt")
    with pytest.raises(FileServiceError, match="already exists"):
        alice.put(tmp_path / "v2.txt", "f.txt")
    assert alice.cat("f.txt") == "one"
    alice.put(tmp_path / "v2.txt", "f.txt", overwrite=True)
    assert alice.cat("f.txt") == "two"
    alice.get("f.txt", tmp_path / "v1.txt", overwrite=True)
    assert (tmp_path / "v1.txt").read_text() == "two"
    alice.rename("f.txt", "g.txt")
    alice.put(tmp_path / "v1.txt", "f.txt")
    with pytest.raises(FileServiceError, match="exists"):
        alice.rename("f.txt", "g.txt")
    alice.rename("f.txt", "g.txt", overwrite=True)
    assert [e.name for e in alice.ls()] == ["g.txt"]


def test_quota(tmp_path: Path, secure_keys: Callable[[str], KeyPair], no_leaks: None) -> None:
    allowlist = Allowlist(tmp_path / "allowlist.csv")
    allowlist.add("alice", secure_keys("alice").public_key)
    with FileServer(secure_keys("server"), allowlist, tmp_path / "root", quota=3000) as server:
        alice = FileClient("127.0.0.1", server.port, secure_keys("alice"))
        data_file(tmp_path / "a", 2000)
        data_file(tmp_path / "b", 1500)
        alice.put(tmp_path / "a")
        with pytest.raises(QuotaExceeded, match="2000 of its 3000"):
            alice.put(tmp_path / "b")
        alice.put(tmp_path / "b", "a", overwrite=True)  # replacing frees the old size
        (tmp_path / "c").write_bytes(b"c" * 1000)
        alice.put(tmp_path / "c")  # 1500 + 1000 fits
        assert sorted(e.name for e in alice.ls()) == ["a", "c"]


def test_progress_reports_every_frame(client_for: Callable, tmp_path: Path) -> None:
    alice = client_for("alice")
    source = data_file(tmp_path / "p.bin", 2 * MIB + 5)
    calls: list[tuple[int, int]] = []
    alice.put(source, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 5  # 512 KiB frames
    assert calls[-1] == (source.stat().st_size, source.stat().st_size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    calls.clear()
    alice.get("p.bin", tmp_path / "q.bin", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (source.stat().st_size,) * 2


def test_empty_file_round_trip(client_for: Callable, tmp_path: Path) -> None:
    alice = client_for("alice")
    (tmp_path / "empty").write_bytes(b"")
    assert alice.put(tmp_path / "empty").size == 0
    alice.get("empty", tmp_path / "empty2")
    assert (tmp_path / "empty2").read_bytes() == b""


def test_run_command_text(client_for: Callable, tmp_path: Path) -> None:
    alice = client_for("alice")
    assert "put [-f] LOCAL [REMOTE]" in run_command(alice, "help")
    assert run_command(alice, "mkdir 'my docs'") == "made /my docs"
    assert run_command(alice, "cd 'my docs'") == "/my docs"
    assert run_command(alice, "pwd") == "/my docs"
    (tmp_path / "t.txt").write_text("text\n")
    assert "-> /my docs/t.txt" in run_command(alice, f"put {tmp_path / 't.txt'}")
    assert "MB/s" in run_command(alice, f"put -f {tmp_path / 't.txt'}")
    assert run_command(alice, "cat t.txt") == "text\n"
    assert "t.txt" in run_command(alice, "ls")
    assert run_command(alice, "mv t.txt u.txt") == "renamed to /my docs/u.txt"
    assert run_command(alice, "") == ""
    for bad in ("frobnicate", "cd", "rename a", "ls a b", "cat 'unclosed"):
        with pytest.raises(ValueError):
            run_command(alice, bad)
    with pytest.raises(PathOutsideHome):
        run_command(alice, "cd ../..")


# --- identity, homes, fresh keys -------------------------------------------------------------


def test_two_clients_have_separate_homes(client_for: Callable, tmp_path: Path) -> None:
    alice, bob = client_for("alice"), client_for("bob")
    (tmp_path / "a.txt").write_text("alice's diary")
    alice.put(tmp_path / "a.txt", "/diary.txt")
    assert bob.ls() == []
    with pytest.raises(FileServiceError, match="no such"):
        bob.cat("/diary.txt")
    with pytest.raises(PathOutsideHome):
        bob.cat("../alice/diary.txt")
    (tmp_path / "b.txt").write_text("bob's")
    bob.put(tmp_path / "b.txt", "/diary.txt")
    assert alice.cat("/diary.txt") == "alice's diary"
    assert bob.cat("/diary.txt") == "bob's"
    assert sorted(os.listdir(tmp_path / "root")) == ["alice", "bob"]


def test_unknown_key_is_refused_on_every_request(
    client_for: Callable, service: FileServer, secure_keys: Callable[[str], KeyPair]
) -> None:
    mallory = FileClient("127.0.0.1", service.port, secure_keys("mallory"))
    for _ in range(3):
        with pytest.raises(KeyNotAllowed):
            mallory.ls()
    alice = client_for("alice")
    alice.mkdir("x")
    service.allowlist.remove("alice")  # the instructor deletes her row
    with pytest.raises(KeyNotAllowed):
        alice.ls()
    assert not (service.root / "mallory").exists()


def test_server_key_is_pinned(
    client_for: Callable, service: FileServer, secure_keys: Callable[[str], KeyPair]
) -> None:
    alice = client_for("alice")
    alice.ls()
    assert alice.server_key == secure_keys("server").public_key  # pinned on first use
    wrong = FileClient(
        "127.0.0.1", service.port, secure_keys("alice"), server_key=secure_keys("bob").public_key
    )
    with pytest.raises(ServerKeyChanged):
        wrong.ls()


def test_every_request_has_fresh_session_keys(client_for: Callable, tmp_path: Path) -> None:
    alice = client_for("alice")
    (tmp_path / "f").write_text("x")
    alice.put(tmp_path / "f")
    for number in range(99):
        alice.cat("f") if number % 2 else alice.ls()
    assert len(alice.sessions) == 100
    assert len(set(alice.sessions)) == 100
    assert alice.last_session == alice.sessions[-1]


def test_requests_without_ephemeral_keys_are_refused(
    service: FileServer, secure_keys: Callable[[str], KeyPair]
) -> None:
    with connect("127.0.0.1", service.port) as sock, pytest.raises(Exception, match="fresh"):
        SecureChannel.client(sock, secure_keys("alice"), ephemeral=False)


# --- the jail over the wire --------------------------------------------------------------------

ESCAPES: list[tuple[str, Callable[[FileClient, Path], object]]] = [
    ("dotdot ls", lambda c, t: c.ls("..")),
    ("dotdot cat", lambda c, t: c.cat("../../outside/secret.txt")),
    ("absolute dotdot", lambda c, t: c.cat("/../../outside/secret.txt")),
    ("dotdot after a folder", lambda c, t: c.cat("docs/../../../outside/secret.txt")),
    ("cd above home", lambda c, t: c.cd("../..")),
    ("get etc passwd", lambda c, t: c.get("../../../../etc/passwd", t / "pw")),
    ("put above home", lambda c, t: c.put(t / "up.txt", "../evil.txt")),
    ("sibling prefix mkdir", lambda c, t: c.mkdir("../alice2/x")),
    ("sibling prefix rename", lambda c, t: c.rename("docs/f.txt", "../alice2/f.txt")),
    ("sibling prefix cat", lambda c, t: c.cat("/../alice2/secret.txt")),
    ("real absolute path", lambda c, t: c.cat(str(t / "outside" / "secret.txt"))),
    ("link to outside folder", lambda c, t: c.cat("link_dir/secret.txt")),
    ("link to outside file", lambda c, t: c.cat("link_file")),
    ("get through link", lambda c, t: c.get("link_file", t / "stolen")),
    ("cd into link", lambda c, t: c.cd("link_dir")),
    ("mkdir through link", lambda c, t: c.mkdir("link_dir/new")),
    ("put through link", lambda c, t: c.put(t / "up.txt", "link_dir/up.txt")),
    ("overwrite a link", lambda c, t: c.put(t / "up.txt", "link_file", overwrite=True)),
    ("rm through link", lambda c, t: c.rm("link_dir/secret.txt")),
    ("NUL byte", lambda c, t: c.cat("docs/f.txt\x00.png")),
    ("backslashes", lambda c, t: c.cat("..\\..\\outside\\secret.txt")),
    ("control character", lambda c, t: c.mkdir("evil\nname")),
    ("division slash", lambda c, t: c.cat("..\u2215..\u2215outside\u2215secret.txt")),
    ("fraction slash", lambda c, t: c.mkdir("a\u2044b")),
    ("fullwidth solidus", lambda c, t: c.cat("..\uff0f..\uff0foutside")),
    ("big solidus", lambda c, t: c.mkdir("x\u29f8y")),
    ("one-dot leaders", lambda c, t: c.cat("\u2024\u2024/\u2024\u2024/outside/secret.txt")),
    ("right-to-left override", lambda c, t: c.mkdir("txt.\u202eexe")),
    ("overlong name", lambda c, t: c.mkdir("n" * 300)),
    ("overlong path", lambda c, t: c.ls("/".join(["d" * 250] * 20))),
    ("rmdir home", lambda c, t: c.rmdir("/")),
    ("rm home", lambda c, t: c.rm(".")),
    ("rename home", lambda c, t: c.rename("/", "/moved")),
    ("rename onto home", lambda c, t: c.rename("docs", "/docs/..")),
    ("cwd above home", lambda c, t: FileClient.ls(_with_cwd(c, "/../.."), ".")),
]


def _with_cwd(client: FileClient, cwd: str) -> FileClient:
    """A client whose working folder was tampered with (cwd is client-side state)."""
    client.cwd = cwd
    return client


@pytest.mark.parametrize(("name", "attempt"), ESCAPES, ids=[name for name, _ in ESCAPES])
def test_escape_attempts_are_refused(
    client_for: Callable, service: FileServer, tmp_path: Path, name: str, attempt: Callable
) -> None:
    root = tmp_path / "root"
    alice = client_for("alice")
    alice.mkdir("docs")
    (tmp_path / "up.txt").write_text("payload")
    alice.put(tmp_path / "up.txt", "docs/f.txt")
    client_for("alice2").ls()  # the sibling's home exists
    (root / "alice2" / "secret.txt").write_text("alice2 secret")
    os.symlink(tmp_path / "outside", root / "alice" / "link_dir")
    os.symlink(tmp_path / "outside" / "secret.txt", root / "alice" / "link_file")
    before = sorted(str(p) for p in tmp_path.rglob("*") if "root/alice/" not in str(p))

    with pytest.raises(FileServiceError):
        attempt(alice, tmp_path)

    assert (tmp_path / "outside" / "secret.txt").read_text() == "outside secret"
    assert (root / "alice2" / "secret.txt").read_text() == "alice2 secret"
    assert os.listdir(tmp_path / "outside") == ["secret.txt"]
    assert os.listdir(root / "alice2") == ["secret.txt"]
    after = sorted(str(p) for p in tmp_path.rglob("*") if "root/alice/" not in str(p))
    assert after == before  # nothing appeared anywhere outside alice's home
    assert sorted(os.listdir(root / "alice")) == ["docs", "link_dir", "link_file"]
    fresh = client_for("alice")
    assert [e.name for e in fresh.ls("docs")] == ["f.txt"]  # and the server still serves


def test_escape_list_is_long_enough() -> None:
    assert len({name for name, _ in ESCAPES}) >= 20


# --- whole files or nothing ----------------------------------------------------------------------


class CuttingStream:
    """A socket that lets ``budget`` bytes through after the handshake, then drops the line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.budget: int | None = None
        self.sent = 0

    def sendall(self, data: bytes) -> None:
        if self.budget is not None and self.sent + len(data) > self.budget:
            self.sock.sendall(data[: self.budget - self.sent])
            self.sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("cut")
        self.sock.sendall(data)
        if self.budget is not None:
            self.sent += len(data)

    def recv_into(self, buffer: memoryview, nbytes: int = 0) -> int:
        return self.sock.recv_into(buffer, nbytes)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


def raw_upload(
    port: int, key: KeyPair, path: str, data: bytes, cut_at: int | None, digest: str | None = None
) -> dict | None:
    """Upload ``data`` by hand, cutting the TCP stream after ``cut_at`` bytes (None: no cut)."""
    stream = CuttingStream(connect("127.0.0.1", port))
    try:
        channel = SecureChannel.client(stream, key, service="files")
        stream.budget = cut_at
        request = {"command": "put", "cwd": "/", "args": {"path": path, "size": len(data)}}
        request["args"]["overwrite"] = True
        channel.send(json.dumps(request))
        assert json.loads(channel.recv())["ok"]
        for start in range(0, len(data), 512 * 1024):
            channel.send(data[start : start + 512 * 1024])
        channel.send(json.dumps({"sha256": digest or hashlib.sha256(data).hexdigest()}))
        return json.loads(channel.recv())
    except ConnectionResetError:
        return None
    finally:
        stream.close()


def test_upload_cut_at_random_offsets_leaves_nothing(
    client_for: Callable, service: FileServer, tmp_path: Path, secure_keys: Callable
) -> None:
    alice = client_for("alice")
    old = data_file(tmp_path / "old.bin", 100_000, seed=1)
    alice.put(old, "f.bin")
    new = random.Random(2).randbytes(2 * MIB + 1234)
    wire_total = 100 + len(new) + 5 * 20 + 200  # request, data, 5 frame overheads, digest
    rng = random.Random(42)
    offsets = [0, 1, 60, 524_300, 4 * 524_304 + 2] + [
        rng.randrange(wire_total - 300) for _ in range(5)
    ]
    home = tmp_path / "root" / "alice"
    for offset in offsets:
        assert raw_upload(service.port, secure_keys("alice"), "f.bin", new, offset) is None
        assert wait_until(lambda: leftovers(home) == [] and service.connection_count == 0)
        assert (home / "f.bin").read_bytes() == old.read_bytes(), f"cut at {offset}"
        assert sorted(os.listdir(home)) == ["f.bin"]
    reply = raw_upload(service.port, secure_keys("alice"), "f.bin", new, None)
    assert reply is not None and reply["ok"]
    assert (home / "f.bin").read_bytes() == new


def alice_with_an_old_f(client_for: Callable, tmp_path: Path) -> FileClient:
    """Alice's client, after she stored "old" as /f."""
    alice = client_for("alice")
    (tmp_path / "old").write_text("old")
    alice.put(tmp_path / "old", "f")
    return alice


def test_upload_with_a_wrong_digest_is_not_kept(
    client_for: Callable, service: FileServer, tmp_path: Path, secure_keys: Callable
) -> None:
    alice = alice_with_an_old_f(client_for, tmp_path)
    reply = raw_upload(service.port, secure_keys("alice"), "f", b"new data", None, "00" * 32)
    assert reply is not None and reply["error"] == "TransferFailed"
    assert alice.cat("f") == "old"
    assert leftovers(tmp_path) == []


def upload_ending_with(
    port: int, key: KeyPair, path: str, data: bytes, ending: list[bytes]
) -> dict | None:
    """Upload ``data`` by hand in 512 KiB records, then send the records ``ending`` and wait
    for the reply (None if the server hangs up without one)."""
    with SecureChannel.client(connect("127.0.0.1", port), key, service="files") as channel:
        args = {"path": path, "size": len(data), "overwrite": True}
        channel.send(json.dumps({"command": "put", "cwd": "/", "args": args}))
        assert json.loads(channel.recv())["ok"]
        for start in range(0, len(data), 512 * 1024):
            channel.send(data[start : start + 512 * 1024])
        for record in ending:
            channel.send(record)
        if not ending:
            return None  # `with` says goodbye: every data byte sent, no end record
        try:
            return json.loads(channel.recv(timeout=5.0))
        except (ChannelClosed, ConnectionLost):
            return None


def test_an_upload_without_its_end_record_is_not_kept(
    client_for: Callable, service: FileServer, tmp_path: Path, secure_keys: Callable
) -> None:
    """All the data arrives, authentic, but the sender stops before the end record."""
    alice = alice_with_an_old_f(client_for, tmp_path)
    data = random.Random(5).randbytes(MIB + 99)
    assert upload_ending_with(service.port, secure_keys("alice"), "f", data, []) is None
    assert wait_until(lambda: service.connection_count == 0)
    assert alice.cat("f") == "old"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "ending",
    [
        [b'{"end": 1048675}'],  # one byte short of what was sent
        [b'{"end": 1048677}'],  # one byte more
        [b'{"end": "1048676"}'],  # the right number, as text
        [b'{"end": true}'],
        [b'{"size": 1048676}'],  # not an end record
        [b"more data instead of the end"],
        [b'{"end": 1048676, "sha256": "' + b"00" * 32 + b'"}'],  # the size is right, the digest not
    ],
)
def test_an_upload_with_a_wrong_end_record_is_not_kept(
    client_for: Callable,
    service: FileServer,
    tmp_path: Path,
    secure_keys: Callable,
    ending: list[bytes],
) -> None:
    alice = alice_with_an_old_f(client_for, tmp_path)
    data = random.Random(6).randbytes(MIB + 100)
    reply = upload_ending_with(service.port, secure_keys("alice"), "f", data, ending)
    assert reply is not None and reply["error"] == "TransferFailed", reply
    assert alice.cat("f") == "old"
    assert leftovers(tmp_path) == []


def test_a_digest_in_the_end_record_is_checked_against_the_stored_file(
    service: FileServer, tmp_path: Path, secure_keys: Callable
) -> None:
    data = random.Random(7).randbytes(MIB + 3)
    digest = hashlib.sha256(data).hexdigest()
    ending = [json.dumps({"end": len(data), "sha256": digest}).encode()]
    reply = upload_ending_with(service.port, secure_keys("alice"), "f", data, ending)
    assert reply is not None and reply["ok"], reply
    assert reply["result"]["sha256"] == digest  # what the server read back from its disk
    assert (tmp_path / "root" / "alice" / "f").read_bytes() == data
    plain = upload_ending_with(
        service.port, secure_keys("alice"), "g", data, [json.dumps({"end": len(data)}).encode()]
    )
    assert plain is not None and plain["ok"] and "sha256" not in plain["result"]


def test_a_download_without_its_end_record_leaves_no_local_file(
    client_for: Callable, service: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sends every data byte but never the end record: the client keeps nothing."""
    alice = client_for("alice")
    source = data_file(tmp_path / "source.bin", 2 * MIB + 5)
    alice.put(source, "f.bin")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "f.bin").write_text("previous version")

    def send_without_end(channel: SecureChannel, fd: int, size: int, *rest: object) -> None:
        for start in range(0, size, 512 * 1024):  # every data record, and no end record
            channel.send(os.pread(fd, 512 * 1024, start))

    monkeypatch.setattr("labcrypto.ftp.server.send_file", send_without_end)
    with pytest.raises(TransferFailed, match="nothing was kept"):
        alice.get("f.bin", tmp_path / "local", overwrite=True)
    assert os.listdir(tmp_path / "local") == ["f.bin"]
    assert (tmp_path / "local" / "f.bin").read_text() == "previous version"


def test_download_cut_leaves_no_local_file(
    client_for: Callable, service: FileServer, tmp_path: Path
) -> None:
    alice = client_for("alice")
    alice.ls()  # makes her home
    with open(tmp_path / "root" / "alice" / "big.bin", "wb") as out:
        for _ in range(64):  # bigger than what the loopback buffers can hold
            out.write(os.urandom(MIB))
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "big.bin").write_text("previous version")

    class Stop(Exception):
        pass

    def give_up(done: int, total: int) -> None:
        if done >= MIB:
            raise Stop  # the user pressed "stop" in the notebook

    with pytest.raises(Stop):
        alice.get("big.bin", tmp_path / "local", overwrite=True, progress=give_up)
    assert os.listdir(tmp_path / "local") == ["big.bin"]
    assert (tmp_path / "local" / "big.bin").read_text() == "previous version"

    def stop_server(done: int, total: int) -> None:
        if done >= MIB:
            service.stop()  # the server dies in the middle

    with pytest.raises(TransferFailed, match="nothing was kept"):
        alice.get("big.bin", tmp_path / "local", overwrite=True, progress=stop_server)
    assert os.listdir(tmp_path / "local") == ["big.bin"]
    assert (tmp_path / "local" / "big.bin").read_text() == "previous version"


def test_concurrent_uploads_of_one_name_give_one_whole_file(
    client_for: Callable, service: FileServer, tmp_path: Path
) -> None:
    sources = [data_file(tmp_path / f"s{i}", 3 * MIB + i, seed=i) for i in range(4)]
    digests = {hashlib.sha256(s.read_bytes()).hexdigest() for s in sources}
    errors: list[Exception] = []

    def upload(source: Path, overwrite: bool) -> None:
        try:
            client_for("alice").put(source, "same.bin", overwrite=overwrite)
        except FileServiceError as exc:
            errors.append(exc)

    home = tmp_path / "root" / "alice"
    for overwrite in (True, False):
        if overwrite is False:
            (home / "same.bin").unlink()
        errors.clear()
        threads = [threading.Thread(target=upload, args=(s, overwrite)) for s in sources]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        landed = hashlib.sha256((home / "same.bin").read_bytes()).hexdigest()
        assert landed in digests  # one whole upload, never a mix
        assert leftovers(home) == []
        if overwrite:
            assert errors == []
        else:  # no-clobber: exactly one wins, the others are told the file exists
            assert len(errors) == len(sources) - 1
            assert all("already exists" in str(e) for e in errors)


# --- memory ------------------------------------------------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent(
    """
    import os, sys, tempfile
    from pathlib import Path
    from labcrypto import groups, keys
    from labcrypto.allowlist import Allowlist
    from labcrypto.ftp import FileClient, FileServer

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    work = Path(sys.argv[1])
    size = int(sys.argv[2])
    with open(work / "big.bin", "wb") as out:
        for _ in range(size >> 20):
            out.write(os.urandom(1 << 20))
    server_key, client_key = keys.generate(groups.FFDHE2048), keys.generate(groups.FFDHE2048)
    allowlist = Allowlist(work / "allow.csv")
    allowlist.add("alice", client_key.public_key)
    with FileServer(server_key, allowlist, work / "root", max_upload=size) as server:
        client = FileClient("127.0.0.1", server.port, client_key, timeout=60)
        client.ls()
        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS")
        up = client.put(work / "big.bin")
        down = client.get("big.bin", work / "back.bin")
        growth = status("VmHWM") - before
    assert up.sha256 == down.sha256
    print(growth, up.mb_per_s, down.mb_per_s)
    """
)


def test_200_mib_both_ways_in_bounded_memory(tmp_path: Path) -> None:
    """Client and server in one process: the peak RSS grows far less than the file."""
    size = 200 * MIB
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(tmp_path), str(size)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    growth, up, down = result.stdout.split()  # growth in bytes, MB/s up and down
    assert int(growth) < 32 * MIB, f"peak RSS grew {int(growth) / MIB:.1f} MiB for {size} bytes"
    assert (tmp_path / "back.bin").stat().st_size == size
    assert float(up) > 0 and float(down) > 0
