"""Shared fixtures: key pairs made once per session, and a leak check for servers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
