"""``harness.Lockstep`` makes a race certain, whatever the machine's load.

The port pool's check runs two threads through the student's ``lease()`` line by
line, taking turns, so that a pool without a lock loses the race on every run. A
check that grades must give the same score every time: the turns must not fall
apart when one thread is slow to start or is short of a processor for a while (a
loaded machine), and must not wait for ever for a thread blocked on a lock.

The "student's code" here is compiled under a file name of its own, ``<racy>``,
so only its lines take turns: the helpers around it in this file run freely.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from labcrypto.lab import harness

STUDENT_FILE = "<racy>"
_RACY_SOURCE = '''
def add_one(box, work):
    work()
    seen = box["n"]
    box["n"] = seen + 1


def add_one_locked(box, lock):
    with lock:
        seen = box["n"]
        box["n"] = seen + 1
'''
_racy: dict[str, Any] = {}
exec(compile(_RACY_SOURCE, STUDENT_FILE, "exec"), _racy)


def _nothing() -> None:
    pass


def _race(funcs: list[Callable[[], None]], patience: float, wait: float = 30.0) -> harness.Lockstep:
    """Run ``funcs`` in lockstep, one thread each; the lockstep once all have ended."""
    lockstep = harness.Lockstep(len(funcs), STUDENT_FILE, time.monotonic() + wait, patience)
    threads = [
        threading.Thread(target=lockstep.run, args=(index, func), daemon=True)
        for index, func in enumerate(funcs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(wait + 5)
    assert not any(thread.is_alive() for thread in threads)
    return lockstep


def test_two_threads_lose_an_update_on_every_run() -> None:
    """Both read the counter before either writes it: 1, not 2, every time."""
    for _ in range(5):
        box = {"n": 0}
        add = functools.partial(_racy["add_one"], box, _nothing)
        lockstep = _race([add, add], patience=0.5)
        assert not lockstep.overtime
        assert box["n"] == 1


def test_a_thread_slow_to_start_is_waited_for() -> None:
    """On a loaded machine the second thread may reach the student's code long after
    the first: the first used to give up on it after one patience and run ``lease()``
    alone (a pool without a lock then passed, about one run in fifteen under load).
    Forced: the second thread starts 4 patiences late, outside the student's code."""
    box = {"n": 0}
    add = _racy["add_one"]

    def late() -> None:
        time.sleep(0.8)
        add(box, _nothing)

    lockstep = _race([lambda: add(box, _nothing), late], patience=0.2)
    assert not lockstep.overtime
    assert box["n"] == 1


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux tells a runnable thread")
def test_a_thread_short_of_a_processor_keeps_its_turn() -> None:
    """A thread in the middle of a line that takes long (here: work in C that lets go
    of the GIL, as a thread the operating system has not yet given a processor) is
    running, not blocked: the other waits for it instead of running on alone."""
    box = {"n": 0}
    add = _racy["add_one"]

    def work() -> None:
        hashlib.pbkdf2_hmac("sha256", b"key", b"salt", 1_000_000)  # 0.3-1.5 s, GIL let go

    lockstep = _race([lambda: add(box, _nothing), lambda: add(box, work)], patience=0.1)
    assert not lockstep.overtime
    assert box["n"] == 1


def test_a_thread_blocked_on_a_lock_costs_one_patience() -> None:
    """A pool with a lock: the second thread waits on it while the first holds it, so
    the first runs on without it after one patience, and both add."""
    box = {"n": 0}
    lock = threading.Lock()
    add = _racy["add_one_locked"]
    started = time.monotonic()
    lockstep = _race([lambda: add(box, lock), lambda: add(box, lock)], patience=0.5)
    assert not lockstep.overtime
    assert box["n"] == 2
    assert time.monotonic() - started < 20 * 0.5  # one patience, not one per line

