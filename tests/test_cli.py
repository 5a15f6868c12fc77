"""The ``labcrypto`` command line: fast commands in-process, the class scenario as processes."""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labcrypto import keys
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatMessage, ChatServer
from labcrypto.cli import _format_line, build_parser, main
from labcrypto.ftp import FileServer

REPO = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- keygen ----------------------------------------------------------------------


def test_keygen_writes_both_files_and_prints_the_fingerprint(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "keygen", "alice", "--dir", str(tmp_path))
    assert code == 0
    pair = keys.load("alice", tmp_path)  # loads, and checks .pub against .key
    assert f"fingerprint: {pair.fingerprint}" in out
    assert str(tmp_path / "alice.key") in out and str(tmp_path / "alice.pub") in out
    assert (tmp_path / "alice.key").stat().st_mode & 0o777 == 0o600
    assert pair.group.name == "ffdhe2048"


def test_keygen_refuses_to_overwrite_without_force(tmp_path, capsys) -> None:
    run(capsys, "keygen", "alice", "--dir", str(tmp_path))
    before = keys.load("alice", tmp_path)
    code, out, err = run(capsys, "keygen", "alice", "--dir", str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("error: ") and "--force" in err
    assert keys.load("alice", tmp_path) == before  # untouched
    code, out, _ = run(capsys, "keygen", "alice", "--dir", str(tmp_path), "--force")
    assert code == 0
    after = keys.load("alice", tmp_path)
    assert after != before and after.fingerprint in out


def test_a_key_name_in_cyrillic_is_refused_saying_latin_letters(
    tmp_path, capsys, monkeypatch
) -> None:
    """A Russian student's first try is often their name in Cyrillic: the rule says *Latin*
    letters (Cyrillic ones are letters too), in the student's language, and nothing is made."""
    code, _, err = run(capsys, "keygen", "Иван", "--dir", str(tmp_path))
    assert code == 1 and "use Latin letters" in err, err
    monkeypatch.setenv("LABCRYPTO_LANG", "ru")
    code, _, err = run(capsys, "keygen", "Иван", "--dir", str(tmp_path))
    assert code == 1 and "латинские буквы" in err, err
    assert list(tmp_path.iterdir()) == []


def test_keygen_toy_group_and_bad_arguments(tmp_path, capsys) -> None:
    assert run(capsys, "keygen", "eve", "--dir", str(tmp_path), "--group", "toy23")[0] == 0
    assert keys.load("eve", tmp_path).group.name == "toy23"
    code, _, err = run(capsys, "keygen", "../evil", "--dir", str(tmp_path))
    assert code == 1 and "not allowed" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["keygen", "x", "--group", "rsa"])
    assert exit_info.value.code == 2


# --- allow -----------------------------------------------------------------------


def test_allow_add_list_remove(tmp_path, capsys) -> None:
    csv = str(tmp_path / "allow.csv")
    for name in ("alice", "bob"):
        run(capsys, "keygen", name, "--dir", str(tmp_path))
    alice = keys.load("alice", tmp_path)

    code, out, _ = run(
        capsys, "allow", "--allowlist", csv, "add", "alice", str(tmp_path / "alice.pub")
    )
    assert code == 0 and alice.fingerprint in out
    assert Allowlist(csv).name_of(alice.public_key) == "alice"
    pub = str(tmp_path / "bob.pub")
    assert (
        run(capsys, "allow", "add", "bob", pub, "--allowlist", csv, "--comment", "group B")[0] == 0
    )

    code, out, _ = run(capsys, "allow", "list", "--allowlist", csv)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].split()[:2] == ["alice", alice.fingerprint]
    assert lines[1].startswith("bob") and lines[1].endswith("group B")

    code, _, err = run(capsys, "allow", "add", "carol", pub, "--allowlist", csv)
    assert code == 1 and "already on the allowlist as 'bob'" in err  # one key is one person

    assert run(capsys, "allow", "remove", "alice", "--allowlist", csv)[0] == 0
    assert not Allowlist(csv).is_allowed(alice.public_key)
    code, _, err = run(capsys, "allow", "remove", "alice", "--allowlist", csv)
    assert code == 1 and err.startswith("error: ") and "not on the allowlist" in err


def test_allow_list_of_a_missing_file_says_nobody(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "allow", "list", "--allowlist", str(tmp_path / "none.csv"))
    assert code == 0 and "nobody" in out


# --- help ------------------------------------------------------------------------


def _commands() -> list[list[str]]:
    return [
        [],
        ["keygen"],
        ["allow"],
        ["allow", "add"],
        ["allow", "list"],
        ["allow", "remove"],
        ["serve"],
        ["chat"],
        ["ftp-serve"],
        ["ftp"],
    ]


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "labcrypto")
def test_every_command_has_help_with_an_example(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "labcrypto " + " ".join(command) in out  # the example uses the command itself
    assert "example:" in out or "five commands" in out


def test_missing_required_argument_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["chat", "--message", "hi"])  # no --key
    assert exit_info.value.code == 2
    assert "--key" in capsys.readouterr().err
    for command in ("keygen", "allow", "serve", "chat", "ftp-serve", "ftp"):
        assert command in build_parser().format_help()


# --- chat and ftp against servers in this process ---------------------------------


@pytest.fixture
def classroom(tmp_path: Path, secure_keys) -> Iterator[Path]:
    """keys/ with server, alice (allowed) and bob (not), in ``tmp_path``."""
    folder = tmp_path / "keys"
    for name in ("server", "alice", "bob"):
        keys.save(secure_keys(name), name, folder)
    Allowlist(folder / "allowlist.csv").add("alice", secure_keys("alice").public_key)
    yield folder


def test_chat_messages_come_back_and_exit_0(classroom, secure_keys, capsys, no_leaks) -> None:
    allowlist = Allowlist(classroom / "allowlist.csv")
    with ChatServer(secure_keys("server"), allowlist) as server:
        code, out, err = run(
            capsys,
            "chat",
            "--port", str(server.port),
            "--key", "alice",
            "--keys-dir", str(classroom),
            "--server-key", str(classroom / "server.pub"),
            "--message", "first", "second",
        )  # fmt: skip
        assert code == 0, err
        lines = out.splitlines()
        assert "alice: first" in lines and "alice: second" in lines
        assert lines.index("alice: first") < lines.index("alice: second")
        assert [m.text for m in server.history] == ["first", "second"]


def test_chat_failures_are_one_line_errors(classroom, secure_keys, capsys, no_leaks) -> None:
    errors = []
    with ChatServer(secure_keys("server"), Allowlist(classroom / "allowlist.csv")) as server:
        base = ["chat", "--port", str(server.port), "--keys-dir", str(classroom), "--message", "x"]
        errors.append((run(capsys, *base, "--key", "bob"), "allowlist"))
        wrong_pin = ["--server-key", str(classroom / "bob.pub")]  # not the server's key
        errors.append((run(capsys, *base, "--key", "alice", *wrong_pin), "fingerprint"))
        errors.append((run(capsys, *base, "--key", "nobody"), "labcrypto keygen nobody"))
    # The server is gone now: same command, nothing listens on that port any more.
    errors.append((run(capsys, *base, "--key", "alice"), "nothing is listening"))
    for (code, out, err), wanted in errors:
        assert code == 1, (wanted, err)
        assert wanted in err
        assert err.startswith("error: ") and err.count("\n") == 1  # one line
        assert out == ""


def test_chat_trusts_on_first_use_and_records_the_server(
    classroom, secure_keys, capsys, no_leaks
) -> None:
    with ChatServer(secure_keys("server"), Allowlist(classroom / "allowlist.csv")) as server:
        port = server.port
        argv = ["chat", "--port", str(port), "--key", "alice"]
        code, _, err = run(capsys, *argv, "--keys-dir", str(classroom), "--message", "hi")
        assert code == 0, err
        assert "mode: secure" in err  # the mode is said on connect (issue 14)
        # As ssh does, the first visit shows the key it now trusts, to compare by hand;
        # a second visit, or a pinned key, says nothing of the kind.
        fingerprint = secure_keys("server").public_key.fingerprint
        assert f"first visit to 127.0.0.1:{port}: its key {fingerprint} is now trusted" in err
        assert "known_servers.csv" in err and "--server-key" in err
        code, _, err = run(capsys, *argv, "--keys-dir", str(classroom), "--message", "again")
        assert code == 0 and "first visit" not in err, err
        pinned = ["--server-key", str(classroom / "server.pub")]
        code, _, err = run(capsys, *argv, "--keys-dir", str(classroom), *pinned, "--message", "x")
        assert code == 0 and "first visit" not in err, err
    known = (classroom / "known_servers.csv").read_text()
    assert f"127.0.0.1:{port}" in known
    assert secure_keys("server").public_key.to_text() in known


def test_ftp_says_which_key_it_trusts_on_the_first_visit(
    classroom, secure_keys, tmp_path, capsys, no_leaks
) -> None:
    allowlist = Allowlist(classroom / "allowlist.csv")
    with FileServer(secure_keys("server"), allowlist, tmp_path / "homes") as server:
        argv = ["ftp", "--port", str(server.port), "--keys-dir", str(classroom), "--key", "alice"]
        code, _, err = run(capsys, *argv, "-c", "pwd", "-c", "ls")
        assert code == 0, err
        fingerprint = secure_keys("server").public_key.fingerprint
        assert err.count("first visit") == 1 and fingerprint in err, err
        code, _, err = run(capsys, *argv, "pwd")
        assert code == 0 and "first visit" not in err, err


def test_ftp_commands(classroom, secure_keys, tmp_path, capsys, no_leaks) -> None:
    allowlist = Allowlist(classroom / "allowlist.csv")
    local = tmp_path / "notes.txt"
    local.write_text("bring coffee\n")
    with FileServer(secure_keys("server"), allowlist, tmp_path / "homes") as server:
        argv = ["ftp", "--port", str(server.port), "--keys-dir", str(classroom)]
        code, out, err = run(
            capsys, *argv, "--key", "alice",
            "-c", "mkdir docs", "-c", f"put {local} docs/notes.txt", "-c", "cat docs/notes.txt",
        )  # fmt: skip
        assert code == 0, err
        assert "bring coffee" in out
        assert (tmp_path / "homes" / "alice" / "docs" / "notes.txt").read_text() == "bring coffee\n"
        code, _, err = run(capsys, *argv, "--key", "alice", "-c", "cat ../../etc/passwd")
        assert code == 1 and err.startswith("error: ")
        code, _, err = run(capsys, *argv, "--key", "bob", "-c", "ls")
        assert code == 1 and "allowlist" in err


# --- the class, end to end, as separate processes -----------------------------------------


def cli(*argv: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m labcrypto ...`` in ``cwd``, as a student's terminal would run it."""
    return subprocess.run(
        [sys.executable, "-m", "labcrypto", *argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The server's first stdout line, waited for at most ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"the server printed nothing within {timeout} s") from None


def test_serve_warns_about_its_own_key_and_shows_its_limits(tmp_path) -> None:
    assert cli("keygen", "server", cwd=tmp_path).returncode == 0
    added = cli("allow", "add", "oops", "keys/server.pub", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    serve = subprocess.Popen(
        [sys.executable, "-m", "labcrypto", "serve", "--port", "0", "--pool", "none",
         "--idle-timeout", "60", "--max-sessions-per-key", "3"],
        cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert _first_line(serve, timeout=20).startswith("listening on")
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0
        assert serve.stdout is not None and serve.stderr is not None
        out, err = serve.stdout.read(), serve.stderr.read()  # the rest, after the first line
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(timeout=5)
        for stream in (serve.stdout, serve.stderr):
            if stream is not None:
                stream.close()
    assert "warning: the server's own key is on the allowlist as 'oops'" in err
    assert "labcrypto allow remove oops" in err
    assert "closed after 60 s; conversations per key: 3" in out


def test_chat_output_shows_control_characters_escaped() -> None:
    hostile = ChatMessage("alice", "\x1b]0;owned\x07\x1b[2J\nbob: fake", 0.0)
    shown = _format_line(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\n" not in shown
    assert shown == 'alice: "\\x1b]0;owned\\x07\\x1b[2J\\x0abob: fake"'
    assert _format_line(ChatMessage("alice", "привет, 👋", 0.0)) == "alice: привет, 👋"
    assert _format_line(ChatMessage("server", "bob\u202e joined", 0.0, "notice")).startswith(
        '* "bob\\u202e'
    )


def test_class_scenario_end_to_end(tmp_path) -> None:
    """keygen two students and a server, allow one, serve, chat, refuse, Ctrl-C."""
    for name in ("alice", "bob", "server"):
        assert cli("keygen", name, cwd=tmp_path).returncode == 0
    added = cli("allow", "add", "alice", "keys/alice.pub", cwd=tmp_path)
    assert added.returncode == 0, added.stderr

    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "labcrypto", "serve", "--port", "0"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        first = _first_line(serve, timeout=20)
        assert first.startswith("listening on 127.0.0.1:"), first
        port = first.strip().rsplit(":", 1)[1]

        alice = cli(
            "chat", "--port", port, "--key", "alice", "--server-key", "keys/server.pub",
            "--message", "hello class", cwd=tmp_path,
        )  # fmt: skip
        assert alice.returncode == 0, alice.stderr
        assert "alice: hello class" in alice.stdout.splitlines()

        bob = cli("chat", "--port", port, "--key", "bob", "--message", "hi", cwd=tmp_path)
        assert bob.returncode != 0
        assert bob.stderr.startswith("error: ") and "allowlist" in bob.stderr
        assert "bob" not in bob.stdout

        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(timeout=5)
        if serve.stdout is not None:
            serve.stdout.close()
        log.close()
    events = (tmp_path / "serve.log").read_text()
    assert "alice joined" in events and "alice left" in events
    assert "is not allowed" in events  # bob's refusal, with his key's fingerprint
    assert keys.load("bob", tmp_path / "keys").fingerprint in events


def test_file_service_end_to_end_and_sigterm(tmp_path) -> None:
    """ftp-serve and ftp as processes; SIGTERM stops the server cleanly (exit 0)."""
    for name in ("alice", "server"):
        assert cli("keygen", name, cwd=tmp_path).returncode == 0
    assert cli("allow", "add", "alice", "keys/alice.pub", cwd=tmp_path).returncode == 0
    (tmp_path / "notes.txt").write_text("bring coffee\n")
    serve = _ftp_serve(tmp_path, "--root", "homes")
    try:
        port = _first_line(serve, timeout=20).strip().rsplit(":", 1)[1]
        done = cli(
            "ftp", "--port", port, "--key", "alice", "--server-key", "keys/server.pub",
            "-c", "put notes.txt", "-c", "ls", cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "notes.txt" in done.stdout.splitlines()[-1]
        assert (tmp_path / "homes" / "alice" / "notes.txt").read_text() == "bring coffee\n"

        # The interactive shell, fed from a pipe: an error does not end it, exit does.
        shell = subprocess.run(
            [sys.executable, "-m", "labcrypto", "ftp", "--port", port, "--key", "alice",
             "--server-key", "keys/server.pub"],
            input="mkdir docs\ncd docs\npwd\ncat ../../etc/passwd\nput notes.txt\nls\nexit\n",
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert shell.returncode == 0, shell.stderr
        assert "ftp:/docs> /docs" in shell.stdout  # the prompt follows cd; pwd answers
        assert "error:" in shell.stderr and "root:" not in shell.stdout
        assert (tmp_path / "homes" / "alice" / "docs" / "notes.txt").exists()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=10) == 0
    finally:
        _stop(serve)


def _ftp_serve(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    """``labcrypto ftp-serve --port 0 OPTIONS`` started in ``tmp_path``, stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "labcrypto", "ftp-serve", "--port", "0", *options],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop(serve: subprocess.Popen[str]) -> None:
    """Kill ``serve`` if it still runs, and close its pipe."""
    if serve.poll() is None:
        serve.kill()
        serve.wait(timeout=5)
    if serve.stdout is not None:
        serve.stdout.close()


@pytest.mark.parametrize(
    ("option", "lowered_by"), [([], 10), (["--nice", "3"], 3), (["--nice", "0"], 0)]
)
def test_ftp_serve_lowers_its_own_cpu_priority(
    tmp_path, option: list[str], lowered_by: int
) -> None:
    """ftp-serve yields the CPU to a chat on the same machine: niceness +10 by default
    (bench/classroom.py --mixed --separate-services measured why), --nice N, 0 keeps it."""
    assert cli("keygen", "server", cwd=tmp_path).returncode == 0
    serve = _ftp_serve(tmp_path, *option)
    try:
        assert "listening on" in _first_line(serve, timeout=20)  # niced before it listens
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, serve.pid) == min(19, mine + lowered_by)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=10) == 0
    finally:
        _stop(serve)


# A script that delivers SIGTERM at every point of the server's waiting loop in turn:
# a tracer counts the steps of the main thread (lines, calls, returns, in the loop and
# in everything it calls) and raises the signal at step k, for k = 1, 2, ... The handler
# then runs right there, so a handler that takes a lock the loop holds for a moment
# (threading.Event.set() inside Event.wait()) hangs for good at some k.
_SIGTERM_AT_EVERY_STEP = """
import faulthandler, signal, sys
from labcrypto import cli

faulthandler.dump_traceback_later(30, exit=True)  # a hang ends with the stack that hung

def stop_at_step(k):
    steps = 0

    def tracer(frame, event, arg):
        nonlocal steps
        steps += 1
        if steps == k:
            signal.raise_signal(signal.SIGTERM)
        return tracer

    with cli._stop_on_signals() as stop:
        sys.settrace(tracer)
        try:
            cli._wait_until_stopped(stop, lambda: True, poll=0.001)
        finally:
            sys.settrace(None)
    return steps

for k in range(1, 80):
    steps = stop_at_step(k)
    assert steps >= k, (k, steps)
print("stopped at each of 79 steps")
"""


def test_sigterm_at_any_moment_stops_the_server_loop() -> None:
    """The CI once saw ``ftp-serve`` ignore a SIGTERM sent right after it started: the
    handler waited for a lock its own thread held. Here the signal lands at each step of
    the waiting loop in turn; every one of them must end the loop."""
    done = subprocess.run(
        [sys.executable, "-c", _SIGTERM_AT_EVERY_STEP],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"the loop hung on a signal:\n{done.stderr[-3000:]}"
    assert "stopped at each of 79 steps" in done.stdout


@pytest.mark.parametrize("keep_free", ["huge", "0"])
def test_ftp_serve_keeps_the_disk_free_that_keep_free_asks(tmp_path, keep_free: str) -> None:
    """--keep-free BYTES: an upload that would leave less free on the disk is refused in
    words and leaves nothing; 0 turns the limit off. "huge" asks for more than the disk
    has free, so any upload is refused whatever else this machine writes meanwhile."""
    for name in ("alice", "server"):
        assert cli("keygen", name, cwd=tmp_path).returncode == 0
    assert cli("allow", "add", "alice", "keys/alice.pub", cwd=tmp_path).returncode == 0
    (tmp_path / "notes.txt").write_text("bring coffee\n")
    wanted = str(shutil.disk_usage(tmp_path).total) if keep_free == "huge" else keep_free
    serve = _ftp_serve(tmp_path, "--root", "homes", "--keep-free", wanted)
    try:
        port = _first_line(serve, timeout=20).strip().rsplit(":", 1)[1]
        done = cli(
            "ftp", "--port", port, "--key", "alice", "--server-key", "keys/server.pub",
            "put", "notes.txt", cwd=tmp_path,
        )  # fmt: skip
        uploaded = tmp_path / "homes" / "alice" / "notes.txt"
        if keep_free == "huge":
            assert done.returncode != 0
            assert f"keeps {wanted} bytes of its disk free" in done.stderr
            assert not uploaded.exists()
            assert os.listdir(tmp_path / "homes" / "alice") == []
        else:
            assert done.returncode == 0, done.stderr
            assert uploaded.read_text() == "bring coffee\n"
    finally:
        _stop(serve)


def test_ftp_serve_refuses_a_negative_keep_free(tmp_path) -> None:
    done = cli("ftp-serve", "--port", "0", "--keep-free", "-1", cwd=tmp_path)
    assert done.returncode != 0
    assert "--keep-free" in done.stderr


def test_ftp_serve_refuses_to_raise_its_priority(tmp_path) -> None:
    done = cli("ftp-serve", "--port", "0", "--nice", "-1", cwd=tmp_path)
    assert done.returncode != 0
    assert "--nice" in done.stderr and "root" in done.stderr


def test_ftp_takes_one_command_as_words_like_the_tools_students_know(tmp_path) -> None:
    """``labcrypto ftp --key alice ls``: the words after the options are one command."""
    for name in ("alice", "server"):
        assert cli("keygen", name, cwd=tmp_path).returncode == 0
    assert cli("allow", "add", "alice", "keys/alice.pub", cwd=tmp_path).returncode == 0
    (tmp_path / "notes.txt").write_text("bring coffee\n")
    allowlist = Allowlist(tmp_path / "keys" / "allowlist.csv")
    server_key = keys.load("server", tmp_path / "keys")
    with FileServer(server_key, allowlist, tmp_path / "homes") as server:
        base = ["ftp", "--port", str(server.port), "--key", "alice"]
        pinned = [*base, "--server-key", "keys/server.pub"]
        assert cli(*pinned, "mkdir", "docs", cwd=tmp_path).returncode == 0
        # "-f" and a name with a space reach the command as the shell split them.
        done = cli(*pinned, "put", "-f", "notes.txt", "docs/my notes.txt", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "notes.txt -> /docs/my notes.txt" in done.stdout
        listing = cli(*pinned, "ls", "docs", cwd=tmp_path)
        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.rstrip().endswith("my notes.txt")
        shown = cli(*pinned, "cat", "docs/my notes.txt", cwd=tmp_path)
        assert shown.stdout == "bring coffee\n\n"
        assert (tmp_path / "homes" / "alice" / "docs" / "my notes.txt").exists()

        refused = cli(*pinned, "cat", "../../etc/passwd", cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.startswith("error: ")
        unknown = cli(*pinned, "frobnicate", cwd=tmp_path)
        assert unknown.returncode == 1 and "unknown command 'frobnicate'" in unknown.stderr
        both = cli(*pinned, "-c", "ls", "ls", cwd=tmp_path)
        assert both.returncode == 1 and "not both" in both.stderr
        # No --server-key: the first visit is remembered in known_servers, as with -c.
        assert cli(*base, "pwd", cwd=tmp_path).stdout == "/\n"
        known = (tmp_path / "keys" / "known_servers.csv").read_text()
        assert server_key.public_key.to_text() in known


# --- what --help tells a reader is true ------------------------------------------


def test_an_existing_file_is_replaced_with_f_and_the_error_says_so(
    classroom, secure_keys, tmp_path, capsys, monkeypatch, no_leaks
) -> None:
    """put, get and rename onto a name that exists: the error names -f, the shell's word
    for it (not the library's ``overwrite=True``, which nobody types in a terminal), in
    both languages; with -f the same commands replace the file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("old\n")
    home = tmp_path / "homes" / "alice"
    allowlist = Allowlist(classroom / "allowlist.csv")
    with FileServer(secure_keys("server"), allowlist, home.parent) as server:
        argv = ["ftp", "--port", str(server.port), "--keys-dir", str(classroom), "--key", "alice"]
        code, _, err = run(capsys, *argv, "-c", "put notes.txt", "-c", "put notes.txt b.txt")
        assert code == 0, err
        refused = {"put notes.txt": "/notes.txt already exists:",
                   "get notes.txt": "notes.txt already exists here:",
                   "rename b.txt notes.txt": "/notes.txt already exists:"}  # fmt: skip
        for line, start in refused.items():
            code, out, err = run(capsys, *argv, "-c", line)
            assert code == 1 and out == "", line
            assert err.startswith(f"error: {start}") and "add -f to replace it" in err, err
            assert "overwrite" not in err, err
        monkeypatch.setenv("LABCRYPTO_LANG", "ru")
        for line in refused:
            code, _, err = run(capsys, *argv, "-c", line)
            assert code == 1 and "добавьте -f" in err, err
        monkeypatch.delenv("LABCRYPTO_LANG")

        (tmp_path / "notes.txt").write_text("new\n")
        code, _, err = run(capsys, *argv, "-c", "put -f notes.txt")
        assert code == 0, err
        assert (home / "notes.txt").read_text() == "new\n"
        code, _, err = run(
            capsys, *argv, "-c", "rename -f b.txt notes.txt", "-c", "get -f notes.txt"
        )
        assert code == 0, err
        assert (tmp_path / "notes.txt").read_text() == "old\n"  # b.txt was the old upload
        assert not (home / "b.txt").exists()


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """(command path, action) for every argument of every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_says_what_it_is(monkeypatch) -> None:
    """`labcrypto COMMAND --help` explains each option (and its default where it has one),
    in both languages: a bare ``--host HOST`` line left a reader guessing."""
    for lang in ("en", "ru"):
        monkeypatch.setenv("LABCRYPTO_LANG", lang)
        found = list(_options(build_parser()))
        assert len(found) > 40
        for path, action in found:
            where = f"labcrypto {' '.join(path)} {action.dest} ({lang})"
            assert action.help, where
            default = action.default
            if default in (None, False, "", argparse.SUPPRESS) or not action.option_strings:
                continue
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown in action.help, (where, shown, action.help)


def _overview_commands() -> list[str]:
    """The command lines of `labcrypto --help`'s "a class in five commands", as printed."""
    text = build_parser().format_help()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line.startswith("labcrypto ")]


def test_the_class_in_five_commands_runs_as_printed(tmp_path, monkeypatch) -> None:
    """The five commands `labcrypto --help` prints, typed into a shell by someone with no
    LABCRYPTO_KEYS in a folder of their own: every one works, and chat's line comes back.
    (The only change: serve listens on a free port, and chat is told that port, since
    9090 may be taken on a test machine.) The Russian help prints the same commands."""
    commands = _overview_commands()
    monkeypatch.setenv("LABCRYPTO_LANG", "ru")
    assert _overview_commands() == commands
    monkeypatch.delenv("LABCRYPTO_LANG")
    assert [c.split()[1] for c in commands] == ["keygen", "keygen", "allow", "serve", "chat"]
    env = {k: v for k, v in _env().items() if k != "LABCRYPTO_KEYS"}
    env["HOME"] = str(tmp_path / "home")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    work = tmp_path / "work"
    work.mkdir()

    def shell(line: str) -> subprocess.CompletedProcess[str]:
        line = line.replace("labcrypto ", f"{sys.executable} -m labcrypto ", 1)
        return subprocess.run(["bash", "-c", line], cwd=work, env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    keygen_server, keygen_alice, allow, serve_line, chat_line = commands
    for line in (keygen_server, keygen_alice, allow):
        done = shell(line)
        assert done.returncode == 0, (line, done.stderr)
    serve = subprocess.Popen(
        [sys.executable, "-m", "labcrypto", *serve_line.split()[1:], "--port", "0"],
        cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = _first_line(serve, timeout=30).strip().rsplit(":", 1)[1]
        chat = shell(f"{chat_line} --port {port}")
        assert chat.returncode == 0, chat.stderr
        assert "alice: hi" in chat.stdout.splitlines()
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
    finally:
        _stop(serve)
    assert (tmp_path / "home" / ".labcrypto" / "keys" / "alice.key").exists()


def test_a_server_key_that_is_neither_a_file_nor_a_fingerprint_names_the_option(
    classroom, capsys
) -> None:
    """A typo in ``--server-key`` (a missing file, a shortened fingerprint) is said in the
    option's own name, before any connection: it used to say "server_key", the name of a
    Python argument the person at the terminal never saw."""
    short = keys.load("server", classroom).public_key.fingerprint[:20]
    for value in ("no-such-server.pub", short):
        code, out, err = run(
            capsys, "chat", "--port", "1", "--key", "alice", "--keys-dir", str(classroom),
            "--server-key", value, "--message", "hi",
        )  # fmt: skip
        assert code == 1 and out == ""
        assert err.startswith(f'error: --server-key "{value}": there is no such file'), err
        assert "server_key" not in err and "nothing is listening" not in err


def _documented_line(doc: str, start: str) -> str:
    """The one line of ``doc``'s shell blocks that starts with ``start``, as printed."""
    text = (REPO / doc).read_text(encoding="utf-8")
    found = [line.split("  #")[0].strip() for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, (doc, start, found)
    return found[0]


@pytest.mark.parametrize("doc", ["GRADING.md", "GRADING.ru.md"])
def test_the_allowlist_loop_of_grading_runs_again_for_a_late_student(tmp_path, doc) -> None:
    """GRADING's `for pub in class/*.pub; do labcrypto allow add …; done`, typed into bash in
    the course folder: then again after a late student's .pub arrives. The second run adds
    the late student and says the others are already there, with no error for them."""
    loop = _documented_line(doc, "for pub in class/*.pub")
    env = {k: v for k, v in _env().items() if k != "LABCRYPTO_KEYS"}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "class").mkdir()
    students = tmp_path / "students"
    for name in ("alice", "bob", "carol"):
        assert cli("keygen", name, "--dir", str(students), cwd=tmp_path).returncode == 0

    def hand_in(name: str, key_of: str) -> None:
        shutil.copyfile(students / f"{key_of}.pub", tmp_path / "class" / f"{name}.pub")

    hand_in("alice", "alice")
    hand_in("bob", "bob")
    script = f'labcrypto() {{ "{sys.executable}" -m labcrypto "$@"; }}\nset -e\n{loop}\n'

    def run_loop() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    first = run_loop()
    assert first.returncode == 0, first.stderr
    hand_in("carol", "carol")  # late
    again = run_loop()
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert again.stdout.count("already on") == 2 and "added carol" in again.stdout, again.stdout
    allowlist = Allowlist(tmp_path / "home" / ".labcrypto" / "keys" / "allowlist.csv")
    assert [entry.name for entry in allowlist.entries()] == ["alice", "bob", "carol"]
    # The same name with another key is still refused: that is a different person's key.
    hand_in("carol", "bob")
    assert run_loop().returncode != 0


def _interactive_chat(classroom: Path, port: int) -> subprocess.Popen[str]:
    """``labcrypto chat`` with no --message, its keyboard a pipe the test types into."""
    return subprocess.Popen(
        [sys.executable, "-m", "labcrypto", "chat", "--port", str(port), "--key", "alice",
         "--keys-dir", str(classroom), "--server-key", str(classroom / "server.pub")],
        env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.05)


def test_interactive_chat_says_why_it_ends_when_the_server_stops(classroom, secure_keys) -> None:
    """Typed lines go out (two typed at once too); when the instructor stops the server the
    chat ends at once with exit 1 and the reason, not at the student's next line."""
    server = ChatServer(secure_keys("server"), Allowlist(classroom / "allowlist.csv"))
    server.start()
    chat = _interactive_chat(classroom, server.port)
    try:
        assert chat.stdin is not None
        chat.stdin.write("hello\n")
        chat.stdin.flush()
        chat.stdin.write("one\ntwo\n")  # one write: both lines, neither held back
        chat.stdin.flush()
        _wait_for(lambda: [m.text for m in server.history] == ["hello", "one", "two"])
        server.stop()
        assert chat.wait(timeout=30) == 1  # the keyboard (stdin) is still open
        err = chat.stderr.read() if chat.stderr else ""
        last = err.strip().splitlines()[-1]
        # The reader's words for the end: a stopped ChatServer says goodbye to each member.
        assert last.startswith("error: the server ended the chat"), err
    finally:
        server.stop()
        if chat.poll() is None:
            chat.kill()
        chat.communicate(timeout=30)


def test_interactive_chat_ends_with_ctrl_d_or_quit(classroom, secure_keys, no_leaks) -> None:
    with ChatServer(secure_keys("server"), Allowlist(classroom / "allowlist.csv")) as server:
        for typed in ("bye\n", "/quit\n"):  # Ctrl-D: the end of the input
            chat = _interactive_chat(classroom, server.port)
            try:
                _out, err = chat.communicate(typed, timeout=30)
            finally:
                if chat.poll() is None:
                    chat.kill()
                    chat.communicate(timeout=30)
            assert chat.returncode == 0, err
            assert "error" not in err, err
        assert [m.text for m in server.history] == ["bye"]
