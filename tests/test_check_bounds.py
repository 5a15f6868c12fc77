"""Every check ends within its own bound, with a message that says what took too long.

A student's answer that never returns (a loop whose condition never changes, a wait
for input that never comes) must not hang the notebook, nor nbgrader's grading until
its 30 s cell timeout ends it with a bare ``KeyboardInterrupt``: each check runs the
student's code in a helper thread with a deadline (``harness.call_bounded``) and fails
at that deadline, naming the call. Each wrong answer here is far on the wrong side of
the bound: it spins (stopped between two bytecodes at the deadline) or waits inside
C, where nothing can stop it (then the test lets it go once the verdict is in),
for a minute at most. The notebook 03 join check also replaces ``KnownServers.check``
while it runs: the replacement must touch only the student's thread and always go away.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_notebook_helpers import _enrol, _join

from labcrypto import groups, keys
from labcrypto.known_servers import KnownServers
from labcrypto.lab import (
    checks_01_keys,
    checks_02_exchange,
    checks_02b_chat,
    checks_03_allowlist,
    checks_04_two_ports,
    checks_05_ftp,
    harness,
)
from labcrypto.lab.feedback import JOIN_WAIT, PURE_WAIT, WAIT, CheckFailed

#: How much longer than its bound a check may take in all: its own set-up (keys, a
#: chat room), the grace a stopped thread gets, and a loaded machine's delays.
SLACK = 2.0


class Endless:
    """Student code that never returns, until the test calls ``stop()`` (60 s at most,
    so that no thread outlives a broken test).

    ``how="spin"`` loops in Python; ``how="wait"`` blocks inside C (an event's wait,
    as a ``recv`` with no timeout would), which no exception can interrupt.
    """

    def __init__(self, how: str) -> None:
        self.how = how
        self.stopped = threading.Event()
        self.entered = threading.Event()  #: set once the student's code has started

    def stop(self) -> None:
        self.stopped.set()

    def __call__(self, *args: Any) -> Any:
        self.entered.set()
        if self.how == "wait":
            self.stopped.wait(60)
        else:
            deadline = time.monotonic() + 60
            while not self.stopped.is_set() and time.monotonic() < deadline:
                pass
        raise TimeoutError("stopped by the test")


def _never_called(*args: Any) -> Any:
    raise AssertionError("the check stops at the endless function before this one")


#: Each check that calls the student's code (given the endless function), its bound, and
#: the call its message names.
CHECKS: dict[str, tuple[Callable[[Any], None], float, str]] = {
    "send_msg": (
        lambda send_msg: checks_02_exchange.check_framing(send_msg, _never_called),
        WAIT,
        "send_msg(sock, b'hello')",
    ),
    "break_caesar": (checks_02b_chat.check_break_caesar, PURE_WAIT, "break_caesar(<"),
    "chat_loop": (checks_02b_chat.check_chat_loop, PURE_WAIT, "chat_loop(channel, ['hello'"),
    "is_allowed": (checks_03_allowlist.check_is_allowed, PURE_WAIT, "is_allowed('allowlist.csv'"),
    "load_or_create_key": (
        checks_01_keys.check_load_or_create_key,
        PURE_WAIT,
        "load_or_create_key('student.key')",
    ),
    "join_as_new_student": (
        checks_03_allowlist.check_join_as_new_student,
        JOIN_WAIT,
        "join_as_new_student('dave'",
    ),
    "safe_path": (checks_05_ftp.check_safe_path, PURE_WAIT, "safe_path(home, '/')"),
}

#: "took too long", in the words of ``feedback.TOO_SLOW``, for each bound.
TOO_LONG = "did not finish within {bound:g} s, so the check stopped it"


def _named(endless: Endless, name: str) -> Callable[..., Any]:
    """``endless`` as a function called ``name`` (the message shows the student's name)."""

    def student_code(*args: Any) -> Any:
        return endless(*args)

    student_code.__name__ = name
    return student_code


@pytest.mark.parametrize("how", ["spin", "wait"])
@pytest.mark.parametrize("name", list(CHECKS))
def test_a_check_stops_code_that_never_returns_and_says_so(name, how, no_leaks) -> None:
    check, bound, call = CHECKS[name]
    endless = Endless(how)
    start = time.monotonic()
    try:
        with pytest.raises(CheckFailed) as info:
            check(_named(endless, name))
        spent = time.monotonic() - start
    finally:
        endless.stop()
    message = str(info.value)
    assert endless.entered.is_set(), "the student's code was called"
    assert TOO_LONG.format(bound=bound) in message, message
    assert call in message, message
    assert bound <= spent < bound + SLACK, f"{name} ended after {spent:.1f} s (bound {bound} s)"


@pytest.mark.parametrize("name", list(CHECKS))
def test_a_check_says_in_russian_what_took_too_long(name, monkeypatch, no_leaks) -> None:
    from labcrypto import i18n

    monkeypatch.setenv(i18n.ENV_VAR, "ru")
    check, bound, call = CHECKS[name]
    endless = Endless("spin")
    try:
        with pytest.raises(CheckFailed) as info:
            check(_named(endless, name))
    finally:
        endless.stop()
    message = str(info.value)
    assert f"Вызов {call}" in message and f"не завершился за {bound:g} с" in message, message
    why = message.split("проверка его остановила.")[1].split("→")[0]
    assert re.search("[а-я]{5}", why) and "never" not in why, message  # its reason, in Russian


def _checked_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "exercise-check"]


def test_code_that_catches_the_stop_is_stopped_too(no_leaks) -> None:
    """A loop with a bare ``except:`` (course mistake 11) swallows the ``Overtime`` raised
    in it at the deadline: once stopped by a trace function, which Python then switched
    off, it spun on for ever in the kernel, slowing every cell after it. It is stopped
    again and again until it ends."""
    released = threading.Event()

    def break_caesar(ciphertext: bytes) -> bytes:
        deadline, tries = time.monotonic() + 60, 0
        while True:
            try:  # nearly every line of the loop is inside the try
                tries += 1
                tries %= 1000
                if released.is_set() or time.monotonic() > deadline:
                    return b""
            except:  # noqa: E722 - the mistake under test
                pass

    try:
        with pytest.raises(CheckFailed, match="did not finish within 2 s"):
            checks_02b_chat.check_break_caesar(break_caesar)
        gone = time.monotonic() + 3
        while _checked_threads() and time.monotonic() < gone:
            time.sleep(0.05)
        assert not _checked_threads(), "the student's loop still runs after the check"
    finally:
        released.set()


# --- the hidden tests of the same exercises -----------------------------------------------


class _Room:
    address = ("127.0.0.1", 9)  # never reached: the student's code never returns


def _hidden(name: str, tmp_path: Path) -> Callable[[Callable[..., Any]], None]:
    alice, carol = keys.generate(groups.TOY), keys.generate(groups.TOY)
    people = {"alice": alice, "carol": carol}
    path = tmp_path / "allowlist.csv"
    return {
        "is_allowed": lambda f: checks_03_allowlist.hidden_is_allowed(f, path, people),
        "key_file": checks_01_keys.hidden_key_file,
        "join": lambda f: checks_03_allowlist.hidden_join(f, tmp_path, path, _Room(), alice),
        "safe_path": lambda f: checks_05_ftp.hidden_safe_path(f, tmp_path),
        "framing": lambda f: checks_02_exchange.hidden_framing(f, _never_called),
    }[name]


@pytest.mark.parametrize(
    "name, module",
    [
        ("is_allowed", checks_03_allowlist),
        ("key_file", checks_01_keys),
        ("join", checks_03_allowlist),
        ("safe_path", checks_05_ftp),
        ("framing", checks_02_exchange),
    ],
)
def test_a_hidden_test_stops_code_that_never_returns(name, module, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(module, "HIDDEN_WAIT", 0.5)
    hidden = _hidden(name, tmp_path)
    endless = Endless("spin")
    start = time.monotonic()
    try:
        with pytest.raises(CheckFailed) as info:
            hidden(endless)
        spent = time.monotonic() - start
    finally:
        endless.stop()
    assert "hidden test" in str(info.value)
    assert spent < 0.5 + SLACK, spent


def test_the_hidden_handoff_stops_code_that_never_returns(monkeypatch, no_leaks) -> None:
    monkeypatch.setattr(checks_04_two_ports, "HIDDEN_WAIT", 0.5)
    room, pool, alice, server_key = checks_04_two_ports._handoff_room(1)
    endless = Endless("spin")
    start = time.monotonic()
    try:
        with pytest.raises(CheckFailed, match="hidden test"):
            checks_04_two_ports.hidden_follow_handoff(endless, room, alice, server_key)
        assert time.monotonic() - start < 0.5 + SLACK
    finally:
        endless.stop()
        room.stop()
        pool.close()


# --- the join check's stand-in for KnownServers.check ---------------------------------------


@pytest.fixture
def real_check() -> Iterator[Callable[..., bool]]:
    """``KnownServers.check`` before the test; the test fails if it is not back after."""
    before = KnownServers.check
    yield before
    assert KnownServers.check is before, "the join check left KnownServers.check replaced"


def test_the_stand_in_refuses_only_in_the_students_thread(tmp_path, real_check, no_leaks) -> None:
    """While the student's code runs under the check, another thread of the kernel (the
    notebook's own client, say) still records a new server as usual."""
    elsewhere = KnownServers(tmp_path / "known_servers.csv")
    server_key = keys.generate(groups.TOY).public_key
    recorded: list[bool] = []

    def join_while_another_thread_connects(*args: Any) -> Any:
        other = threading.Thread(
            target=lambda: recorded.append(elsewhere.check("127.0.0.1", 4242, server_key))
        )
        other.start()
        other.join(5)
        return _join(*args)

    checks_03_allowlist.check_join_as_new_student(join_while_another_thread_connects)
    assert recorded == [True, False]  # written down the first time, matched the second
    assert elsewhere.get("127.0.0.1", 4242) == server_key


def test_the_stand_in_is_taken_out_after_a_refusal_and_after_a_timeout(
    real_check, no_leaks
) -> None:
    from labcrypto.chat import ChatClient

    def unpinned(name, key_dir, allowlist_path, address, server_key):
        key = _enrol(name, key_dir, allowlist_path)
        return ChatClient.connect(*address, key, timeout=5)

    with pytest.raises(CheckFailed, match="without pinning"):
        checks_03_allowlist.check_join_as_new_student(unpinned)
    assert KnownServers.check is real_check
    endless = Endless("wait")
    try:
        with pytest.raises(CheckFailed, match="did not finish"):
            checks_03_allowlist.check_join_as_new_student(endless)
        assert KnownServers.check is real_check  # while the student's thread still waits
    finally:
        endless.stop()


def test_a_join_that_catches_the_refusal_is_still_unpinned(real_check, no_leaks) -> None:
    """The refusal is an exception in the student's thread; code that catches every
    exception and goes on must not turn "not pinned" into another verdict."""
    from labcrypto.chat import ChatClient

    def swallows(name, key_dir, allowlist_path, address, server_key):
        key = _enrol(name, key_dir, allowlist_path)
        try:
            return ChatClient.connect(*address, key, timeout=5)
        except Exception:  # course mistake 11: whatever went wrong, try the other way
            return ChatClient.connect(*address, key, server_key=server_key, timeout=5)

    with pytest.raises(CheckFailed) as info:
        checks_03_allowlist.check_join_as_new_student(swallows)
    assert "without pinning the server's key" in str(info.value)
    assert not (keys.default_dir() / "known_servers.csv").exists()


# --- notebook 04: a busy port that never races, a join that is waited for, one deadline ------


_bindable = harness.plainly_bindable


def test_the_busy_first_port_is_never_free_for_a_moment(monkeypatch) -> None:
    """The port pool's check keeps the first port of its range busy ("another program
    holds it"). It used to find a free range, let every port go, then bind the first one
    again: under load something else bound it in between (EADDRINUSE, once). Forced here:
    a thief tries to bind the first port each time the reservation lets any port go."""
    from labcrypto import ports

    stolen: list[socket.socket] = []
    first_of: list[int] = []

    def thief() -> None:
        if not first_of:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", first_of[0]))
            stolen.append(sock)
        except OSError:
            sock.close()

    real_reserve, real_release, real_close = (
        ports.PortPool.reserve.__func__, ports.Lease.release, ports.PortPool.close,
    )  # fmt: skip

    def reserve(cls, size, *args, **kwargs):
        pool = real_reserve(cls, size, *args, **kwargs)
        first_of.append(pool.first)
        return pool

    def release(self):
        real_release(self)
        thief()

    def close(self):
        real_close(self)
        thief()

    monkeypatch.setattr(ports.PortPool, "reserve", classmethod(reserve))
    monkeypatch.setattr(ports.Lease, "release", release)
    monkeypatch.setattr(ports.PortPool, "close", close)
    try:
        with harness.range_for_a_pool(4, first_busy=True) as first:
            assert not stolen, "the busy port was free for a moment"
            assert not _bindable(first)
            with socket.create_connection(("127.0.0.1", first), timeout=2):
                pass  # it listens, as another program's server would
            assert all(_bindable(port) for port in range(first + 1, first + 4))
        for sock in stolen:
            sock.close()
        stolen.clear()
        assert _bindable(first), "let go when the block ends"
    finally:
        for sock in stolen:
            sock.close()


def _time_wait_on(port: int) -> None:
    """Leave a TIME_WAIT on ``port``, as one of the package's servers (``SO_REUSEADDR``)
    leaves one after a connection it closed first: for about a minute, ``PortPool.reserve``
    binds the port but a plain ``bind`` does not."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    served, _ = listener.accept()
    served.close()  # the server's end closes first: it is the one left in TIME_WAIT
    client.close()
    listener.close()


@pytest.fixture
def a_range_after_a_server(monkeypatch) -> Iterator[int]:
    """The first port of a range with a TIME_WAIT on its second port, which the next
    ``PortPool.reserve`` of two or more ports draws first (then at random again)."""
    from labcrypto import ports

    with ports.PortPool.reserve(3) as found:
        first = found.first
    _time_wait_on(first + 1)
    assert not harness.plainly_bindable(first + 1)
    drawn = [first - ports._RESERVE_FIRST]
    real = ports.secrets

    class Draws:
        @staticmethod
        def randbelow(limit: int) -> int:
            return drawn.pop() if drawn else real.randbelow(limit)

    monkeypatch.setattr(ports, "secrets", Draws)
    yield first


def test_a_range_a_plain_bind_cannot_take_is_not_given_to_a_pool(a_range_after_a_server) -> None:
    """A right pool (no ``SO_REUSEADDR``, as students write it) lost a port, and its
    points, when ``range_for_a_pool`` handed over a port with a TIME_WAIT on it ("neither
    thread got the free port", once under load): such a range is passed over."""
    with harness.range_for_a_pool(2) as first:
        assert first != a_range_after_a_server
        assert all(_bindable(port) for port in (first, first + 1))


def test_a_right_pool_keeps_its_points_after_a_server_used_its_range(
    a_range_after_a_server,
) -> None:
    """The same, through the check: the reference pool passes the forced race and the
    hidden test (each lost the port on this range before)."""
    from test_notebook_helpers import _pool_class

    checks_04_two_ports._race(_pool_class())
    checks_04_two_ports.hidden_port_pool(_pool_class())


def test_neither_thread_getting_a_port_another_program_took_is_undecided() -> None:
    """If the race's free port is bound by someone else when neither thread got it, no
    pool could have handed it out: no failure (the check's other parts still run)."""
    from test_notebook_helpers import _pool_class

    taken: list[socket.socket] = []
    leases: list[int] = []

    class AnotherProgramTakesTheLast(_pool_class()):
        def __init__(self, first, last, host="127.0.0.1"):
            super().__init__(first, last, host)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, last))
            taken.append(sock)

        def lease(self):
            leases.append(1)
            return super().lease()

    try:
        checks_04_two_ports._race(AnotherProgramTakesTheLast)
    finally:
        for sock in taken:
            sock.close()
    assert len(leases) == 3, "the first lease, then two racing for the last port"


def test_a_late_join_event_is_waited_for(monkeypatch, no_leaks) -> None:
    """The room logs a join just after it queues the welcome; on a loaded machine the
    log came after the check's 1 s look and a right answer failed. Forced: 1.5 s late."""
    from test_notebook_helpers import _reference_follow_handoff

    from labcrypto.chat import ChatServer

    real_emit = ChatServer.emit

    def late_join(self, kind, text, *args, **kwargs):
        if kind == "join":
            time.sleep(1.5)
        return real_emit(self, kind, text, *args, **kwargs)

    monkeypatch.setattr(ChatServer, "emit", late_join)
    checks_04_two_ports.check_follow_handoff(_reference_follow_handoff)


def test_a_join_never_logged_is_a_clear_verdict_in_bounded_time(monkeypatch, no_leaks) -> None:
    from test_notebook_helpers import _reference_follow_handoff

    from labcrypto.chat import ChatServer

    real_emit = ChatServer.emit

    def no_join(self, kind, text, *args, **kwargs):
        if kind != "join":
            return real_emit(self, kind, text, *args, **kwargs)
        return None

    monkeypatch.setattr(ChatServer, "emit", no_join)
    monkeypatch.setattr(checks_04_two_ports, "HANDOFF_WAIT", 2.0)
    start = time.monotonic()
    with pytest.raises(CheckFailed) as info:
        checks_04_two_ports.check_follow_handoff(_reference_follow_handoff)
    assert "within 2 s the room did not log it joining" in str(info.value)
    assert time.monotonic() - start < 2.0 + 2 * SLACK


class _StuckPool:
    """A pool whose every lease gets stuck (spinning in Python, or waiting inside C)."""

    def __init__(self, how: str) -> None:
        self.endless = Endless(how)

    def lease(self) -> Any:
        return self.endless()

    def release(self, port: int, sock: Any) -> None:
        pass


@pytest.mark.parametrize("how", ["spin", "wait"])
def test_the_hammer_has_one_deadline_for_its_16_threads(how, monkeypatch, no_leaks) -> None:
    """16 stuck threads used to be waited for one after the other, each for the whole
    bound (160 s for "10 s"): one deadline for all, as the message says."""
    monkeypatch.setattr(checks_04_two_ports, "HAMMER_WAIT", 1.0)
    pool = _StuckPool(how)
    start = time.monotonic()
    try:
        with pytest.raises(CheckFailed) as info:
            checks_04_two_ports._hammer(pool)
        spent = time.monotonic() - start
    finally:
        pool.endless.stop()
    assert "16 threads leasing and releasing did not finish within 1 s" in str(info.value)
    assert 1.0 <= spent < 1.0 + SLACK, spent


def test_the_hammer_reports_what_a_thread_found(no_leaks) -> None:
    from test_notebook_helpers import _pool_class

    class RefusesToTakeBack(_pool_class()):
        def release(self, port, sock):
            sock.close()
            raise ValueError("not mine")

    size = checks_04_two_ports.POOL_SIZE
    with harness.range_for_a_pool(size) as first:
        pool = RefusesToTakeBack(first, first + size - 1)
    with pytest.raises(CheckFailed, match=r"16 threads at once: release\(\) raised ValueError"):
        checks_04_two_ports._hammer(pool)


def _traced_run(paused: bool) -> bool:
    """Did a thread running traced Python calls (as ``Lockstep`` and the port thief do)
    finish within 3 s? ``paused``: inside ``harness.stops_paused()``."""
    done = threading.Event()

    def traced() -> None:
        with harness.stops_paused() if paused else contextlib.nullcontext():
            sys.settrace(lambda *args: None)
            try:
                for number in range(100):
                    _named(len, "a Python function").__name__.upper()  # a traced call
                    str(number)
            finally:
                sys.settrace(None)
        done.set()

    threading.Thread(target=traced, daemon=True).start()
    return done.wait(3)


def test_a_stop_that_code_waiting_in_c_never_takes_leaves_traced_threads_alone(
    monkeypatch, no_leaks
) -> None:
    """A stop sent to code that waits inside C for good (a lock its own code never
    released) stayed pending, and CPython 3.11 then makes every traced thread spin at its
    next call until it is taken: the port pool's race and thief (both traced) never
    returned, so every later check of the pool in that kernel failed. A traced check
    pauses the stops; once the stops give up, none is left pending."""
    monkeypatch.setattr(harness, "STOP_TRYING", 1.0)
    lock = threading.Lock()
    lock.acquire()
    try:
        outcome = harness.run_bounded(lock.acquire, timeout=0.1)  # never returns
        assert outcome.status == "stuck"
        time.sleep(5 * harness.POLL)  # several stops sent meanwhile
        assert _traced_run(paused=True), "a traced check froze while a stuck run was stopped"
        time.sleep(harness.STOP_TRYING)  # the stops have given up by now
        assert _traced_run(paused=False), "a stop was left pending for a run stuck in C"
    finally:
        lock.release()  # the stuck run ends now (and so does a frozen traced thread)


def test_a_pool_that_keeps_its_lock_leaves_the_next_check_of_the_pool_working(
    no_leaks,
) -> None:
    """A student's pool that raises PoolExhausted with its lock held (lock.acquire()
    without a release on that path) deadlocks the check's release; the right pool
    written next, in the same kernel, passed no more ("lease() never returned")."""
    from test_notebook_helpers import _pool_class

    from labcrypto.errors import PoolExhausted

    kept: list[threading.Lock] = []

    class KeepsItsLock:
        def __init__(self, first: int, last: int, host: str = "127.0.0.1") -> None:
            self.host, self.free = host, list(range(first, last + 1))
            self.lock = threading.Lock()
            kept.append(self.lock)

        def lease(self) -> Any:
            self.lock.acquire()
            for port in list(self.free):
                sock = socket.socket()
                try:
                    sock.bind((self.host, port))
                except OSError:
                    sock.close()
                    continue
                sock.listen()
                self.free.remove(port)
                self.lock.release()
                return port, sock
            raise PoolExhausted("no free port")  # the mistake: the lock stays held

        def release(self, port: int, sock: socket.socket) -> None:
            sock.close()
            with self.lock:
                self.free.append(port)

    try:
        with pytest.raises(CheckFailed, match=r"release\(port, sock\) did not return within 2 s"):
            checks_04_two_ports.check_port_pool(KeepsItsLock)
        start = time.monotonic()
        checks_04_two_ports.check_port_pool(_pool_class())
        assert time.monotonic() - start < 5
    finally:
        for lock in kept:
            if lock.locked():
                lock.release()  # lets the stuck clean-up of the wrong pool end
