"""The file service against a hostile (or unlucky) class: limits that hold, clean ends.

Each case here is one finding of the attack run on the file service
(issue 15): the quota under concurrent uploads, deep folder trees, huge
folders, what a ``kill -9`` leaves behind, a tampered upload frame,
``rmdir .``, ``rename`` racing another client, and malformed requests
from a peer that did authenticate. Every case ends with the leak check
(``no_leaks``) and, where it matters, a well-behaved request that must
still work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import raw_connect

from labcrypto import jail as jail_module
from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel
from labcrypto.errors import (
    BadPathName,
    ConnectionLost,
    FileServiceError,
    QuotaExceeded,
    TransferFailed,
)
from labcrypto.ftp import FileClient, FileServer, run_command
from labcrypto.jail import MAX_DEPTH, MAX_LISTING, MAX_PATH_BYTES, Jail
from labcrypto.keys import KeyPair
from labcrypto.wiretap import C2S, FlipBit, Wiretap

pytestmark = pytest.mark.timeout(180)

KIB = 1024


@pytest.fixture
def allowlist(tmp_path: Path, secure_keys: Callable[[str], KeyPair]) -> Allowlist:
    allowed = Allowlist(tmp_path / "allowlist.csv")
    for name in ("alice", "bob"):
        allowed.add(name, secure_keys(name).public_key)
    return allowed


@pytest.fixture
def make_server(
    tmp_path: Path, secure_keys: Callable[[str], KeyPair], allowlist: Allowlist, no_leaks: None
) -> Iterator[Callable[..., FileServer]]:
    """``make_server(quota=...)``: a started file server on ``tmp_path/root``, stopped after."""
    started: list[FileServer] = []

    def make(**options: object) -> FileServer:
        server = FileServer(
            secure_keys("server"), allowlist, tmp_path / "root", connection_timeout=5.0, **options
        )
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()


def client(server: FileServer, secure_keys: Callable[[str], KeyPair], **options) -> FileClient:
    return FileClient("127.0.0.1", server.port, secure_keys("alice"), **options)


def raw_request(server: FileServer, key: KeyPair, payload: bytes) -> dict | None:
    """Send ``payload`` as the request frame; the reply as JSON, or None if the server hung up."""
    with raw_connect(server.port) as sock:
        channel = SecureChannel.client(sock, key, service="files", timeout=5.0)
        try:
            channel.send(payload)
            return json.loads(channel.recv(5.0))
        except Exception:
            return None
        finally:
            channel.close()


def home(tmp_path: Path) -> Path:
    return tmp_path / "root" / "alice"


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".labcrypto-upload-")]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback (the connection thread's catch-all logs one)."""
    return [r.getMessage() for r in caplog.records if r.exc_info]


# --- the quota holds under concurrency ---------------------------------------------------


def _paused_upload(
    alice: FileClient, source: Path, started: threading.Event, go_on: threading.Event
) -> tuple[threading.Thread, list[object]]:
    """Upload ``source`` in a thread that pauses after its first frame until ``go_on``."""
    outcome: list[object] = []

    def progress(done: int, total: int) -> None:
        if not started.is_set():
            started.set()
            assert go_on.wait(20), "the test never let the first upload go on"

    def run() -> None:
        try:
            outcome.append(alice.put(source, progress=progress))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="paused-upload")
    thread.start()
    return thread, outcome


def test_two_concurrent_uploads_cannot_both_fit_a_quota_meant_for_one(
    make_server, secure_keys, tmp_path: Path
) -> None:
    """Two 600 kB uploads to a 1 MB quota, the second while the first arrives: one is refused."""
    server = make_server(quota=1_000_000)
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(os.urandom(600_000))
    second.write_bytes(os.urandom(600_000))
    started, go_on = threading.Event(), threading.Event()
    slow = client(server, secure_keys, chunk_size=64 * KIB)
    thread, outcome = _paused_upload(slow, first, started, go_on)
    try:
        assert started.wait(20)
        with pytest.raises(QuotaExceeded) as refused:
            client(server, secure_keys).put(second)
    finally:
        go_on.set()
        thread.join(30)
    assert "uploads still arriving hold 600000 more; 600000 more do not fit" in str(refused.value)
    assert not isinstance(outcome[0], Exception), outcome
    assert sorted(os.listdir(home(tmp_path))) == ["first.bin"]
    # The booking ends with the upload: what is left of the quota is usable again.
    third = tmp_path / "third.bin"
    third.write_bytes(os.urandom(400_000))
    client(server, secure_keys).put(third)  # 600 000 + 400 000 = the quota exactly
    (tmp_path / "one-byte.bin").write_bytes(b"1")
    with pytest.raises(QuotaExceeded, match="1000000 of its 1000000 bytes; 1 more do not fit"):
        client(server, secure_keys).put(tmp_path / "one-byte.bin")
    assert sum(p.stat().st_size for p in home(tmp_path).iterdir()) == 1_000_000


def test_the_quota_is_checked_again_at_commit(make_server, secure_keys, tmp_path: Path) -> None:
    """Space taken while an upload arrives (here: by the instructor) is seen at commit."""
    server = make_server(quota=1_000_000)
    source = tmp_path / "late.bin"
    source.write_bytes(os.urandom(600_000))
    started, go_on = threading.Event(), threading.Event()
    thread, outcome = _paused_upload(
        client(server, secure_keys, chunk_size=64 * KIB), source, started, go_on
    )
    try:
        assert started.wait(20)
        (home(tmp_path) / "from-the-instructor.bin").write_bytes(b"i" * 500_000)
    finally:
        go_on.set()
        thread.join(30)
    assert isinstance(outcome[0], QuotaExceeded), outcome
    assert "500000 of its 1000000" in str(outcome[0])
    assert sorted(os.listdir(home(tmp_path))) == ["from-the-instructor.bin"]  # nothing half


# --- deep folder trees -------------------------------------------------------------------


def _nest(top: Path, depth: int) -> None:
    """``depth`` nested folders ``d/d/d/...`` under ``top``, made without recursion."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


@pytest.fixture
def nest() -> Iterator[Callable[[Path, int], None]]:
    """``_nest``, and the trees it made removed afterwards, deepest folder first.

    pytest's own clean-up of old temporary folders uses ``shutil.rmtree``, which
    recurses on Python 3.11: a 1,100-deep tree left behind crashes a later run.
    """
    made: list[tuple[Path, int]] = []

    def make(top: Path, depth: int) -> None:
        made.append((top, depth))
        _nest(top, depth)

    yield make
    for top, depth in made:
        for level in range(depth, 0, -1):  # "d/" * 1100 is 2,200 bytes: within PATH_MAX
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(top / ("d/" * level))


def test_mkdir_stops_at_the_depth_limit_and_uploads_keep_working(
    make_server, secure_keys, tmp_path: Path
) -> None:
    """Nested mkdirs end with a clear refusal at MAX_DEPTH + 1; quota and uploads still work."""
    server = make_server(quota=10_000_000)
    alice = client(server, secure_keys)
    path = ""
    refusal = None
    for level in range(1, 1_100):  # bounded: the refusal must come at MAX_DEPTH + 1
        path += "/d"
        try:
            alice.mkdir(path)
        except BadPathName as exc:
            refusal = (level, str(exc))
            break
    assert refusal is not None and refusal[0] == MAX_DEPTH + 1
    assert f"at most {MAX_DEPTH} levels" in refusal[1]
    (tmp_path / "n.txt").write_text("deep enough")
    deepest = "/d" * (MAX_DEPTH - 1)
    assert alice.put(tmp_path / "n.txt", f"{deepest}/n.txt").size == len("deep enough")
    assert alice.put(tmp_path / "n.txt").remote == "/n.txt"


def test_a_tree_deeper_than_python_recursion_gets_a_reply_not_a_crash(
    make_server, secure_keys, tmp_path: Path, caplog: pytest.LogCaptureFixture, nest
) -> None:
    """1,100 nested folders made on the server's disk: the quota scan answers, never recurses."""
    caplog.set_level(logging.DEBUG)
    server = make_server(quota=10_000_000)
    home(tmp_path).mkdir(parents=True)
    nest(home(tmp_path), 1_100)
    (tmp_path / "n.txt").write_text("hello")
    with pytest.raises(FileServiceError, match="nested more than 256 levels deep"):
        client(server, secure_keys).put(tmp_path / "n.txt")
    assert tracebacks(caplog) == []
    assert [e.name for e in client(server, secure_keys).ls()] == ["d"]  # the service is fine


def test_a_deep_tree_does_not_stop_uploads_without_a_quota(
    make_server, secure_keys, tmp_path: Path, nest
) -> None:
    server = make_server()
    home(tmp_path).mkdir(parents=True)
    nest(home(tmp_path), 1_100)
    (tmp_path / "n.txt").write_text("hello")
    assert client(server, secure_keys).put(tmp_path / "n.txt").size == 5


@pytest.mark.parametrize(
    ("cwd", "path", "match"),
    [
        ("/" + "w" * MAX_PATH_BYTES, ".", "working folder is too long"),  # 4097 bytes
        ("/" + "ж" * (MAX_PATH_BYTES // 2), ".", "working folder is too long"),  # 2 bytes a letter
        ("/d" * MAX_DEPTH, "d", f"at most {MAX_DEPTH} levels"),
        ("/" + "/".join(["я" * 100] * 20), "я" * 100, "together are over"),  # 4020 + 201 bytes
    ],
    ids=["ascii", "cyrillic", "depth", "joined"],
)
def test_the_working_folder_in_a_request_is_capped(
    make_server, secure_keys, cwd: str, path: str, match: str
) -> None:
    server = make_server()
    request = {"command": "ls", "cwd": cwd, "args": {"path": path}}
    reply = raw_request(server, secure_keys("alice"), json.dumps(request).encode())
    assert reply is not None and reply["ok"] is False
    assert reply["error"] == "BadPathName" and match in reply["message"], reply


# --- large folders -----------------------------------------------------------------------


def test_a_folder_too_big_for_one_frame_is_listed_in_pages(
    make_server, secure_keys, tmp_path: Path
) -> None:
    """4,500 names of 250 bytes (Cyrillic: 2 bytes a letter) make a 1.4 MB listing."""
    server = make_server()
    folder = home(tmp_path) / "big"
    folder.mkdir(parents=True)
    names = sorted(f"{i:05d}" + "ф" * 122 + "x" for i in range(4_500))
    assert {len(n.encode()) for n in names} == {250}
    for name in names:
        (folder / name).touch()
    alice = client(server, secure_keys)
    listing = alice.ls("big")
    assert [e.name for e in listing] == names
    assert listing.truncated is False
    shown = run_command(alice, "ls big").splitlines()
    assert len(shown) == 4_500 and shown[-1].endswith(names[-1])


def test_a_listing_over_the_limit_says_it_was_cut(make_server, secure_keys, tmp_path: Path) -> None:
    server = make_server()
    folder = home(tmp_path) / "huge"
    folder.mkdir(parents=True)
    for i in range(MAX_LISTING + 1):
        (folder / f"{i:06d}").touch()
    alice = client(server, secure_keys)
    listing = alice.ls("huge")
    assert len(listing) == MAX_LISTING and listing.truncated is True
    assert "cut: the folder has more entries" in run_command(alice, "ls huge").splitlines()[-1]
    (folder / "000000").unlink()  # exactly MAX_LISTING: whole, and not marked cut
    assert alice.ls("huge").truncated is False


# --- what a crash leaves behind ----------------------------------------------------------


def test_kill_9_during_an_upload_leaves_a_part_file_that_the_next_start_removes(
    tmp_path: Path, secure_keys, allowlist: Allowlist, no_leaks: None
) -> None:
    keys.save(secure_keys("server"), "server", tmp_path / "keys")
    script = (
        "import sys\n"
        "from labcrypto import keys\n"
        "from labcrypto.allowlist import Allowlist\n"
        "from labcrypto.ftp import FileServer\n"
        "server = FileServer(keys.load('server', sys.argv[1] + '/keys'),\n"
        "                    Allowlist(sys.argv[1] + '/allowlist.csv'), sys.argv[1] + '/root')\n"
        "print(server.start().port, flush=True)\n"
        "import threading; threading.Event().wait(120)\n"
    )
    serve = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        port = int(serve.stdout.readline())
        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(4 << 20))

        def kill_after_first_frame(done: int, total: int) -> None:
            if serve.poll() is None:
                serve.send_signal(signal.SIGKILL)
                serve.wait(10)

        alice = FileClient("127.0.0.1", port, secure_keys("alice"), chunk_size=256 * KIB)
        with pytest.raises((TransferFailed, OSError, FileServiceError)):
            alice.put(source, progress=kill_after_first_frame)
    finally:
        if serve.poll() is None:
            serve.kill()
        serve.wait(10)
        if serve.stdout is not None:
            serve.stdout.close()
    assert len(leftovers(home(tmp_path))) == 1  # what kill -9 leaves: nobody cleaned up
    server = FileServer(secure_keys("server"), allowlist, tmp_path / "root").start()
    try:
        assert leftovers(home(tmp_path)) == []
        said = [e.text for e in server.events if e.kind == "cleanup"]
        assert len(said) == 1 and "removed 1 unfinished upload(s)" in said[0]
    finally:
        server.stop()


# --- a tampered upload frame ---------------------------------------------------------------


def test_a_tampered_upload_frame_gets_a_refusal_not_a_traceback(
    make_server, secure_keys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The second data frame of an upload fails authentication: the server answers why."""
    caplog.set_level(logging.DEBUG)
    server = make_server()
    with raw_connect(server.port) as sock:
        channel = SecureChannel.client(sock, secure_keys("alice"), service="files", timeout=5.0)
        args = {"path": "t.bin", "size": 3 * 64 * KIB}
        channel.send(json.dumps({"command": "put", "cwd": "/", "args": args}))
        assert json.loads(channel.recv(5.0))["ok"] is True
        frames = [channel.seal_frame(os.urandom(64 * KIB)) for _ in range(3)]
        tampered = bytearray(frames[1])
        tampered[-1] ^= 1  # one bit of the second frame's tag
        sock.sendall(frames[0] + bytes(tampered))
        # The server's channel closes itself on the failed frame (no second chances,
        # issue 14): the client sees the connection end, not a reply under that key.
        with pytest.raises(ConnectionLost):
            channel.recv(5.0)
        channel.close()
    # the server logs after its side has closed
    assert wait_until(lambda: "broken off" in caplog.text and "authentication" in caplog.text)
    assert tracebacks(caplog) == []
    assert leftovers(tmp_path / "root") == [] and not (home(tmp_path) / "t.bin").exists()
    assert client(server, secure_keys).ls() == []


def test_a_tampered_upload_frame_through_a_wiretap_fails_the_put_cleanly(
    make_server, secure_keys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = make_server()
    flip = FlipBit(direction=C2S, data_index=2, bit=100)  # 0: request, 1-: the file's frames
    tap = Wiretap(server.address, policy=flip, connection_timeout=5.0).start()
    try:
        source = tmp_path / "t.bin"
        source.write_bytes(os.urandom(256 * KIB))
        alice = FileClient("127.0.0.1", tap.port, secure_keys("alice"), chunk_size=64 * KIB)
        with pytest.raises(FileServiceError, match=r"authentication|nothing was kept|confirmed"):
            alice.put(source)
    finally:
        tap.stop()
    assert flip.hits == 1
    assert wait_until(lambda: any("broken off" in e.text for e in server.events))
    assert tracebacks(caplog) == []
    assert leftovers(tmp_path / "root") == [] and not (home(tmp_path) / "t.bin").exists()
    assert client(server, secure_keys).ls() == []  # and the next request works


# --- rmdir . and rename's race ---------------------------------------------------------------


@pytest.mark.parametrize("path", [".", "./", "..", "sub/..", ""])
def test_rmdir_dot_is_refused_as_posix_does(make_server, secure_keys, path: str) -> None:
    server = make_server()
    alice = client(server, secure_keys)
    alice.mkdir("docs")
    alice.mkdir("docs/sub")
    alice.mkdir("docs/empty")
    alice.cd("docs/empty")
    if path == "sub/..":
        alice.cd("..")
    with pytest.raises(FileServiceError, match="POSIX refuses it too"):
        alice.rmdir(path)
    assert sorted(e.name for e in alice.ls("/docs")) == ["empty", "sub"]


def test_rename_never_overwrites_a_file_created_between_check_and_act(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client's upload lands on the new name just after the check: it survives."""
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "mine.txt").write_text("mine")
    real_exists = Jail.exists

    def exists_then_someone_uploads(self: Jail, names: tuple[str, ...]) -> bool:
        answer = real_exists(self, names)
        if names == ("theirs.txt",):
            (tmp_path / "alice" / "theirs.txt").write_text("theirs")
        return answer

    monkeypatch.setattr(Jail, "exists", exists_then_someone_uploads)
    with Jail.open(tmp_path, "alice") as jail, pytest.raises(FileServiceError, match="exists"):
        jail.rename(("mine.txt",), ("theirs.txt",))
    assert (tmp_path / "alice" / "theirs.txt").read_text() == "theirs"
    assert (tmp_path / "alice" / "mine.txt").read_text() == "mine"


@pytest.mark.parametrize("method", ["renameat2", "fallback"])
def test_rename_noreplace_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """With renameat2 and without it (link-then-unlink, mkdir-then-rename): never replaces."""
    if method == "renameat2" and jail_module._RENAMEAT2 is None:
        pytest.skip("this C library has no renameat2")
    if method == "fallback":
        monkeypatch.setattr(jail_module, "_RENAMEAT2", None)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for kind in ("file", "dir"):
            old, taken, free = f"{kind}-old", f"{kind}-taken", f"{kind}-free"
            if kind == "file":
                (tmp_path / old).write_text("old")
            else:
                (tmp_path / old).mkdir()
                (tmp_path / old / "inside").write_text("in")
            (tmp_path / taken).write_text("taken")
            with pytest.raises(FileExistsError):
                jail_module.rename_noreplace(fd, old, fd, taken)
            assert (tmp_path / taken).read_text() == "taken" and (tmp_path / old).exists()
            jail_module.rename_noreplace(fd, old, fd, free)
            assert not (tmp_path / old).exists()
            assert (tmp_path / free).exists()
    finally:
        os.close(fd)


# --- malformed requests from an authenticated peer ---------------------------------------------


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b'{"command": "ls", "cwd": "/", "args": {"path": "\xff\xfe"}}', "must be UTF-8"),
        (b'{"command": "ls", "command": "rm", "args": {"path": "x"}}', "appears twice"),
        (b'{"command": "ls", "args": {"path": 7}}', "'path' must be str"),
        (b'{"command": "ls", "args": ["."]}', "'args' must be dict"),
        (b'{"command": "put", "args": {"path": "x", "size": "12"}}', "'size' must be int"),
        (b'{"command": "ls", "cwd": 7}', "'cwd' must be str"),
    ],
    ids=["invalid-utf8", "duplicate-key", "path-type", "args-type", "size-type", "cwd-type"],
)
def test_a_malformed_request_gets_a_refusal_and_the_next_one_works(
    make_server, secure_keys, payload: bytes, match: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = make_server()
    reply = raw_request(server, secure_keys("alice"), payload)
    assert reply is not None, "the server hung up instead of answering"
    assert reply["ok"] is False and reply["error"] == "FileServiceError"
    assert match in reply["message"]
    assert client(server, secure_keys).ls() == []
    assert tracebacks(caplog) == []


def test_the_command_word_reaches_the_log_quoted(make_server, secure_keys) -> None:
    server = make_server()
    evil = "\x1b[2J\x1b]0;owned\x07ls\nalice: ls ok"
    reply = raw_request(server, secure_keys("alice"), json.dumps({"command": evil}).encode())
    assert reply is not None and reply["ok"] is False
    assert not any(char in reply["message"] for char in "\x1b\x07\n")
    assert wait_until(lambda: any(e.kind == "denied" for e in server.events))
    logged = [e.text for e in server.events if e.kind == "denied"]
    assert logged and all(not any(c in text for c in "\x1b\x07\n") for text in logged)
    assert "\\x1b[2J" in logged[-1]
