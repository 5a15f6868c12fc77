"""Shared fixtures: key pairs made once per session, a leak check for servers, and a
watch on every test for the child processes and threads it leaves running."""

from __future__ import annotations

import glob
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labcrypto import groups, keys
from labcrypto.server import running_servers, stop_all

# The suite reads the English messages (a Russian locale on the machine would
# otherwise translate them); tests of the Russian ones ask for it themselves.
os.environ["LABCRYPTO_LANG"] = "en"


@pytest.fixture(autouse=True)
def own_keys_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's ``$LABCRYPTO_KEYS`` is its ``tmp_path/keys``: no test touches ~/.labcrypto."""
    monkeypatch.setenv(keys.KEYS_ENV, str(tmp_path / "keys"))


@pytest.fixture(scope="session")
def secure_keys() -> Callable[[str], keys.KeyPair]:
    """``secure_keys("alice")``: an ffdhe2048 key pair, the same one for a name all session."""
    made: dict[str, keys.KeyPair] = {}

    def get(name: str) -> keys.KeyPair:
        if name not in made:
            made[name] = keys.generate(groups.FFDHE2048)
        return made[name]

    return get


@pytest.fixture(scope="session")
def toy_keys() -> Callable[[str], keys.KeyPair]:
    """``toy_keys("alice")``: a toy-group key pair, the same one for a name all session.

    The toy group has only 20 usable public values, so two random keys
    collide often; these are kept distinct, like different people's keys.
    """
    made: dict[str, keys.KeyPair] = {}

    def get(name: str) -> keys.KeyPair:
        while name not in made:
            pair = keys.generate(groups.TOY)
            if all(pair.public != other.public for other in made.values()):
                made[name] = pair
        return made[name]

    return get


def open_fd_count() -> int:
    """How many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves servers, threads or file descriptors behind."""
    threads_before = threading.active_count()
    fds_before = open_fd_count()
    yield
    leftover_servers = running_servers()
    stop_all()
    assert not leftover_servers, f"servers left running: {leftover_servers}"
    assert wait_until(lambda: threading.active_count() <= threads_before), (
        f"threads left: {[t.name for t in threading.enumerate()]}"
    )
    assert wait_until(lambda: open_fd_count() <= fds_before), (
        f"file descriptors: {open_fd_count()} open, {fds_before} before"
    )


# --- what a test leaves running -------------------------------------------------------
#
# The suite runs serially on a 2-core CI machine: a process or thread one test leaves
# running takes CPU from every test after it, whose waits then fail far from the leak.
# Every test is watched: a child process or a non-daemon thread it started that is still
# running LEAK_GRACE seconds after it ended is named at the end of the run (and such a
# process is stopped, so that it loads nothing more). Daemon threads are not counted:
# the checks' helper threads are daemons that end on their own (STOP_TRYING at most).

LEAK_GRACE = 10.0  #: seconds a test's processes and threads get to end after it
LEFT_RUNNING: list[str] = []  #: what tests left running, one line each


def child_processes() -> dict[int, str]:
    """This process's children that still run (Linux; none elsewhere): pid -> command."""
    found: dict[int, str] = {}
    for listing in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            with open(listing) as f:
                pids = [int(pid) for pid in f.read().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[0] == "Z":
                        continue  # ended, not yet reaped: it loads nothing
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    found[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except (OSError, IndexError):
                continue
    return found


def _running_threads() -> dict[int, str]:
    return {t.ident or 0: t.name for t in threading.enumerate() if not t.daemon and t.is_alive()}


@pytest.fixture(autouse=True)
def leaves_nothing_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Note (and stop) the child processes and non-daemon threads a test leaves running."""
    processes_before, threads_before = set(child_processes()), set(_running_threads())
    yield

    def left() -> tuple[dict[int, str], dict[int, str]]:
        processes = {p: c for p, c in child_processes().items() if p not in processes_before}
        threads = {i: n for i, n in _running_threads().items() if i not in threads_before}
        return processes, threads

    if not any(left()) or wait_until(lambda: not any(left()), LEAK_GRACE, 0.1):
        return
    processes, threads = left()
    for pid, command in processes.items():
        LEFT_RUNNING.append(f"{request.node.nodeid}: process {pid} ({command[:100]}); stopped")
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for name in threads.values():
        LEFT_RUNNING.append(f"{request.node.nodeid}: thread {name!r}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name what tests left running, where the end of the run shows it."""
    if LEFT_RUNNING:
        terminalreporter.section("tests that left processes or threads running", red=True)
        for line in LEFT_RUNNING:
            terminalreporter.write_line(line)
