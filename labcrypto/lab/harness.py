"""The checks' test bench: bounded threads, TCP peers on 127.0.0.1, bytes one at a time.

A check runs the student's code against a real peer and must never hang a
graded cell, so everything here is bounded in time:

* ``run_bounded(func, *args)`` runs the student's function in a helper thread
  and gives up after a timeout: a Python loop is stopped there, and the caller
  closes the sockets, which ends any wait still reading them; ``in_background``
  does the same without waiting;
* ``tcp_pair()`` / ``tcp_connection()`` / ``socket_pair()`` — two ends of one
  connection, with timeouts;
* ``dribble(sock, data)`` sends bytes one TCP segment at a time, as a slow
  network may deliver them;
* ``run_dh_server(dh_client, group, ...)`` plays the server of the course's
  exchange, fair or hostile, for one run of a student's client
  (``composite`` and ``prime_not_safe`` make the hostile p, ``outside_subgroup``
  the hostile g);
* ``echo_channel()`` is a secure channel to a peer that echoes each message,
  ``SendRecvOnly`` and ``ReplyingChannel`` stand-ins with no network at all
  (the first refuses anything but send and recv); ``wait_for_event``
  waits for a server to log something.

Used by the checks modules of this package; nothing here is for students.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import random
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..channel import SecureChannel
from ..errors import LabCryptoError, PoolExhausted
from ..groups import TOY, Group, is_probable_prime, small_safe_prime_group
from ..i18n import N_
from ..keys import KeyPair, generate
from ..ports import PortPool
from ..streams import close_stream, set_timeout
from .feedback import PURE_WAIT, WAIT, expect, fail, not_written, too_slow

__all__ = [
    "FAIR_SEEDS",
    "HEADER",
    "POLL",
    "DhOutcome",
    "Lockstep",
    "Outcome",
    "Overtime",
    "Pair",
    "ReplyingChannel",
    "SendRecvOnly",
    "call_bounded",
    "composite",
    "dribble",
    "echo_channel",
    "frame_json",
    "has_small_exponent",
    "in_background",
    "outside_subgroup",
    "plainly_bindable",
    "prime_not_safe",
    "range_for_a_pool",
    "read_available",
    "read_sent",
    "returned_within",
    "run_bounded",
    "run_dh_server",
    "seeded_random",
    "socket_pair",
    "stops_paused",
    "tcp_connection",
    "tcp_pair",
    "toy_key_pair",
    "wait_for_event",
]

try:  # what a socket has received and nobody has read yet (not on Windows)
    from fcntl import ioctl
    from termios import FIONREAD
except ImportError:  # pragma: no cover - Windows: dribble falls back to a fixed gap
    ioctl = None  # type: ignore[assignment]

HEADER = struct.Struct("!I")  #: the 4-byte big-endian length in front of every frame
DRIBBLE_GAP = 0.002  #: seconds between two one-byte segments, where nothing paces them
DRIBBLE_POLL = 0.0005  #: seconds between two looks at whether the reader took its byte
POLL = 0.05  #: seconds between two looks at a server's events
STOP_GRACE = 0.2  #: seconds a stopped run gets to unwind after its deadline
#: Seconds a run that outlived its deadline keeps being told to stop (``_stop``).
STOP_TRYING = 30.0


class Outcome(NamedTuple):
    """How a bounded run ended: ``("ok", result)``, ``("error", exc)`` or ``("stuck", None)``."""

    status: str
    value: Any

    def raised(self, *kinds: type[BaseException]) -> bool:
        """Did the run raise one of ``kinds``?"""
        return self.status == "error" and isinstance(self.value, kinds)


class Overtime(BaseException):
    """Raised inside the student's code when its time is up (a ``BaseException``, so an
    ``except Exception`` in that code cannot swallow it)."""


def _stop(worker: threading.Thread, over: threading.Event, lock: threading.Lock) -> None:
    """Raise ``Overtime`` in ``worker`` now, and again every ``POLL`` seconds until it
    ends (``STOP_TRYING`` seconds at most), from a thread of its own.

    CPython's ``PyThreadState_SetAsyncExc`` makes the exception appear in that
    thread between two of its bytecodes, so a loop written in Python (say, ``a``
    multiplications instead of ``pow(g, a, p)``) stops at the deadline instead of
    running on in the background. It is sent again and again because code that
    catches everything (a bare ``except:`` inside a ``while True``, course mistake
    11) swallows one; a later one lands outside the ``try`` and ends the loop.
    Code that waits inside C (a ``recv`` with no timeout) only sees it when the
    wait ends: there the check closes the socket. While a traced check runs
    (``stops_paused``), and once this gives up, no stop is left pending.

    ``over`` is set (under ``lock``) once the student's code is done: from then on
    nothing is sent, and the check's own clean-up in that thread is never cut.
    Nothing here slows the student's code while it runs (a trace function, which
    this replaced, made pure-Python answers about ten times slower, and so their
    verdicts depend on the machine's load).
    """

    def shoot() -> bool:
        with lock, _STOPS.lock:
            if over.is_set() or not worker.is_alive():
                return False
            if not _STOPS.paused:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(worker.ident or 0), ctypes.py_object(Overtime)
                )
            return True

    def keep_stopping() -> None:
        give_up = time.monotonic() + STOP_TRYING
        with _STOPS.lock:
            _STOPS.workers.add(worker)
        try:
            while shoot() and time.monotonic() < give_up:
                over.wait(POLL)
        finally:
            with _STOPS.lock:
                _STOPS.workers.discard(worker)
                if worker.is_alive():  # given up on: it waits inside C for good
                    _withdraw(worker.ident or 0)
            _absorb()

    threading.Thread(target=keep_stopping, name="exercise-check-stopper", daemon=True).start()


class _Stops:
    """The runs being stopped now (``_stop``), and whether stops are paused
    (``stops_paused``): one lock for both, so no stop is sent once a pause began."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: set[threading.Thread] = set()
        self.paused = 0  #: how many ``stops_paused`` blocks run now


_STOPS = _Stops()


class _Absorbed(BaseException):
    """A stop this module raises in the thread that calls ``_absorb``, and takes there."""


def _withdraw(ident: int) -> None:
    """Take back a stop (``Overtime``) that thread ``ident`` has not taken yet.

    Why it matters: while an exception sent with ``PyThreadState_SetAsyncExc``
    waits to be taken, CPython 3.11 keeps a flag set for the whole interpreter,
    and only the thread it is meant for clears it, by taking it. A thread that
    waits inside C for good (a port pool's lock its own code never released)
    never does, and every *traced* thread (``Lockstep``, the port thief of
    checks_04, a debugger) then spins at its next call for as long as the flag
    stays: a student's pool that kept its lock made every later check of the
    pool in that kernel fail with "lease() never returned", the right answer
    too. Call ``_absorb`` after, to clear the flag.
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)


def _absorb() -> None:
    """Clear the interpreter's "a stop is pending" flag: this thread sends a stop to
    itself and takes it (taking one is what clears the flag)."""
    try:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(threading.get_ident()), ctypes.py_object(_Absorbed)
        )
        for _ in range(1000):  # taken at the first backward jump
            pass
    except _Absorbed:
        pass


@contextlib.contextmanager
def stops_paused() -> Iterator[None]:
    """``with stops_paused():`` no stop is pending in any thread, nor sent, inside the block.

    For a check that traces the student's code (``sys.settrace``): a stop pending
    for a run that waits inside C would make the traced threads spin (``_withdraw``
    says why). The runs still being stopped get their next stop after the block.
    """
    with _STOPS.lock:
        _STOPS.paused += 1
        for worker in _STOPS.workers:
            _withdraw(worker.ident or 0)
    _absorb()
    try:
        yield
    finally:
        with _STOPS.lock:
            _STOPS.paused -= 1


def run_bounded(func: Callable[..., Any], *args: Any, timeout: float = WAIT) -> Outcome:
    """Run ``func(*args)`` in a helper thread and wait at most ``timeout`` seconds for it.

    The verdict is taken once, at the deadline: what the code returned or raised
    by then, else "stuck". A run still going is then stopped (``_stop``): a
    student's endless loop does not keep a core busy after the check has given up
    on it; it gets ``STOP_GRACE`` seconds to unwind (its ``with`` blocks close what
    they opened) before this returns.
    """
    outcome: list[Outcome] = []
    over = threading.Event()  #: the student's code is done: do not interrupt it any more
    lock = threading.Lock()  #: ``over`` is set under it, so a stop never hits a later thread

    def run() -> None:
        try:
            try:
                outcome.append(Outcome("ok", func(*args)))
            except Overtime:
                outcome.append(Outcome("stuck", None))
            except BaseException as exc:  # handed to the main thread, which explains it
                outcome.append(Outcome("error", exc))
            finally:
                with lock:
                    over.set()
        except Overtime:
            pass  # a stop that came as the student's code ended: nothing to undo

    worker = threading.Thread(target=run, name="exercise-check", daemon=True)
    worker.start()
    worker.join(timeout)
    verdict = outcome[0] if outcome else Outcome("stuck", None)
    if worker.is_alive() and not over.is_set():
        _stop(worker, over, lock)
        worker.join(STOP_GRACE)
    return verdict


def _runnable(native_id: int | None) -> bool:
    """Is this thread of ours running, or ready to run and waiting only for a processor?

    Linux tells (state ``R`` in ``/proc/self/task/<id>/stat``); a thread blocked on a
    lock, a socket or a sleep is ``S``. Elsewhere this says False, and ``Lockstep``
    falls back on its patience alone.
    """
    try:
        with open(f"/proc/self/task/{native_id}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] == "R"
    except (OSError, IndexError):
        return False


class Lockstep:
    """Threads that take turns at every line of the student's code: a race made certain.

    Two threads that call a pool's ``lease()`` at once rarely meet at the
    racy point by themselves (between reading the list of free ports and
    taking a port from it). Here each thread, at each new line of code from
    ``filename`` (the student's), waits for its turn and then hands the turn
    on: the threads run the student's lines alternately, so both are inside
    ``lease()`` at once, every time.

    Nobody runs a line before every thread has reached its first one (or ended
    without any): a thread slow to start on a loaded machine does not let the
    other run ``lease()`` alone.

    A thread whose turn it is but that does not take it within ``patience``
    seconds, and that is not on its way (inside this class, or running or ready to
    run by the operating system's account, ``_runnable``), is waiting on something
    else (a lock the other thread holds, say): it counts as *away*, and the others
    run on without waiting for it until it reaches its next line. So a pool with a
    lock costs one ``patience``, not one per line, and a thread that has finished
    is never waited for; a thread that is only short of a processor keeps its turn.

    After ``deadline`` (a ``time.monotonic()`` value) the student's code stops
    at its next line (``Overtime``) and ``overtime`` is set: the race was not
    decided, which says nothing against the code.
    """

    def __init__(self, count: int, filename: str, deadline: float, patience: float = 0.5):
        self.count, self.filename = count, filename
        self.deadline, self.patience = deadline, patience
        self.turn = 0
        self.arrived: set[int] = set()  #: threads that reached the student's code
        self.away: set[int] = set()  #: threads not to wait for (blocked elsewhere, or done)
        self.inside: set[int] = set()  #: threads in the tracer now: on their way to a turn
        self.native_ids: dict[int, int] = {}  #: each thread's id for the operating system
        self.overtime = False  #: did the deadline stop a thread?
        self.changed = threading.Condition()

    def run(self, index: int, func: Callable[[], None]) -> None:
        """Run ``func()`` as thread number ``index`` (0 … count-1) of the lockstep."""
        self.native_ids[index] = threading.get_native_id()
        with stops_paused():  # traced: no stop may be pending meanwhile
            sys.settrace(self._tracer(index))
            try:
                func()
            except Overtime:
                self.overtime = True
            finally:
                sys.settrace(None)
                with self.changed:
                    self.away.add(index)  # finished: nobody waits for it any more
                    self._pass_turn(index)

    def _pass_turn(self, index: int) -> None:
        """Give the turn to the next thread that is not away (lock held)."""
        for step in range(1, self.count + 1):
            candidate = (index + step) % self.count
            if candidate not in self.away or candidate == index:
                self.turn = candidate
                break
        self.changed.notify_all()

    def _mine(self, index: int) -> bool:
        """May ``index`` run its line now (lock held)?"""
        everyone = len(self.arrived | self.away) == self.count
        return everyone and (self.turn == index or self.turn in self.away)

    def _on_its_way(self, index: int) -> bool:
        """Will ``index`` take its turn without anyone's help (lock held)?"""
        return index in self.inside or _runnable(self.native_ids.get(index))

    def _take_turn(self, index: int) -> None:
        """Wait for ``index``'s turn (lock held); mark a thread that keeps it as away."""
        self.arrived.add(index)
        self.away.discard(index)
        self.changed.notify_all()  # an arrival may be what the others wait for
        while not self._mine(index):
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.overtime = True
                raise Overtime
            if self.changed.wait(min(self.patience, left)) or self._mine(index):
                continue
            if len(self.arrived | self.away) == self.count and not self._on_its_way(self.turn):
                self.away.add(self.turn)  # it did not come: blocked (on a lock we hold?)
        self._pass_turn(index)

    def _tracer(self, index: int) -> Callable[..., Any]:
        def on_line(frame: Any, event: str, arg: Any) -> Any:
            if time.monotonic() > self.deadline:
                self.overtime = True
                raise Overtime
            if event == "line":
                self.inside.add(index)
                try:
                    with self.changed:
                        self._take_turn(index)
                finally:
                    self.inside.discard(index)
            return on_line

        def on_call(frame: Any, event: str, arg: Any) -> Any:
            return on_line if frame.f_code.co_filename == self.filename else None

        return on_call


def call_bounded(
    func: Callable[..., Any],
    *args: Any,
    what: str,
    why: str = "",
    deadline: float,
    bound: float = PURE_WAIT,
) -> Any:
    """Call the student's ``func(*args)`` in a helper thread, stopped at ``deadline``
    (a ``time.monotonic()`` value): its result, or the exception it raised.

    ``what`` names the call for the student ("public_value(…)"), ``why`` says
    what usually makes it slow. A check that calls the student's code many
    times gives every call the same deadline, so the whole check stays within
    its bound whatever the number of cases; ``bound`` is that bound in seconds,
    as the message shows it.
    """
    outcome = run_bounded(func, *args, timeout=max(0.0, deadline - time.monotonic()))
    if outcome.raised(NotImplementedError):
        raise not_written(getattr(func, "__name__", "your code"))
    if outcome.status == "stuck":
        raise too_slow(what, bound, why)
    if outcome.status == "error":
        raise outcome.value
    return outcome.value


def returned_within(func: Callable[..., Any], *args: Any, timeout: float = WAIT) -> Any:
    """For a hidden test: what the student's ``func(*args)`` returned, run as
    ``run_bounded`` runs it (stopped at ``timeout``).

    What it raised is raised again, as it is (the hidden test turns it into its one
    generic failure, or into "not written yet"); a run stopped at its deadline is a
    failed test. A hidden test that called the student's code directly would hang the
    grading of the whole notebook on a loop that never ends.
    """
    status, value = run_bounded(func, *args, timeout=timeout)
    if status == "error":
        raise value
    expect(status == "ok")
    return value


def in_background(func: Callable[..., Any], *args: Any, timeout: float = WAIT) -> threading.Thread:
    """Start ``run_bounded(func, *args)`` in a thread of its own (a sender the check does
    not wait for); join the returned thread when done."""
    thread = threading.Thread(
        target=run_bounded, args=(func, *args), kwargs={"timeout": timeout}, daemon=True
    )
    thread.start()
    return thread


def tcp_pair(timeout: float = WAIT) -> tuple[socket.socket, socket.socket]:
    """Two ends of one real TCP connection on 127.0.0.1, each with ``timeout`` and NODELAY.

    The checks act as the network peer on one end: with ``TCP_NODELAY``, bytes
    sent a few milliseconds apart leave as separate TCP segments, as they
    would across a real network.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        left = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            right, _ = listener.accept()
        except BaseException:
            left.close()
            raise
    finally:
        listener.close()
    for sock in (left, right):
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return left, right


Pair = tuple[socket.socket, socket.socket]  #: two ends of one connection


@contextlib.contextmanager
def tcp_connection(timeout: float = WAIT) -> Iterator[Pair]:
    """``with tcp_connection() as (left, right):`` a ``tcp_pair``, shut down and closed after."""
    pair = tcp_pair(timeout)
    try:
        yield pair
    finally:
        for sock in pair:
            close_stream(sock)


def socket_pair(timeout: float = WAIT) -> tuple[socket.socket, socket.socket]:
    """Two connected sockets (no TCP), each with ``timeout``."""
    left, right = socket.socketpair()
    left.settimeout(timeout)
    right.settimeout(timeout)
    return left, right


def read_available(sock: socket.socket, limit: int = 1 << 16, wait: float = 0.3) -> bytes:
    """Everything that arrives on ``sock`` within ``wait`` seconds (up to ``limit`` bytes).

    The socket's own timeout is put back afterwards: a check that gave the student's end
    a longer timeout than its verdict wait keeps it.
    """
    before = sock.gettimeout()
    set_timeout(sock, wait)
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(limit)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass  # the wait is over (TimeoutError), or the peer reset the connection after its bytes
    set_timeout(sock, before)
    return data


def read_sent(reader: socket.socket, writer: socket.socket, wait: float = WAIT) -> bytes:
    """Every byte ``writer`` has sent to ``reader``, its end of the same connection.

    ``writer`` is shut for writing first (if the student's code has not closed it), and
    ``reader`` reads until the end of the stream, which comes after every byte sent
    before it: the bytes are all there however late a loaded machine delivers them (a
    read for a fixed moment, say 50 ms, may find a right answer's bytes not yet arrived
    and fail it). ``wait`` bounds each read, in case the end never comes.
    """
    with contextlib.suppress(OSError):
        writer.shutdown(socket.SHUT_WR)
    return read_available(reader, wait=wait)


def _unread(sock: socket.socket) -> int | None:
    """How many bytes ``sock`` has received that nobody has read yet (None: cannot tell)."""
    if ioctl is None:
        return None  # pragma: no cover - Windows
    return int.from_bytes(ioctl(sock.fileno(), FIONREAD, bytes(4)), sys.byteorder, signed=True)


def _wait_until_read(reader: socket.socket | None, deadline: float) -> bool:
    """After a byte was sent: wait ``DRIBBLE_GAP``, then until ``reader`` holds no unread
    byte (False: it did not read by ``deadline``).

    The gap comes first because an empty queue means "read" only once the byte has
    arrived: loopback delivers it within the send call, or (if the kernel defers its
    network work) moments later.
    """
    time.sleep(DRIBBLE_GAP)
    if reader is None or _unread(reader) is None:
        return True
    while _unread(reader):
        if time.monotonic() > deadline:
            return False
        time.sleep(DRIBBLE_POLL)
    return True


def dribble(
    sock: socket.socket, data: bytes, reader: socket.socket | None = None, timeout: float = WAIT
) -> threading.Thread:
    """Send ``data`` one byte per TCP segment from a started thread; join it when done.

    ``reader`` is the other end of the connection, the one the student's code reads.
    Given it, each byte leaves only once the byte before it has been read, so every
    ``recv()`` of the student's code returns exactly one byte, on every run: a loaded
    machine, where the student's thread may wake long after several bytes arrived, cannot
    hand a whole message to a single ``recv()`` and pass a wrong answer. Bytes that are
    not read within ``timeout`` seconds (say, the student's code stopped reading) end the
    sending; give a ``timeout`` longer than the check's own wait, so that the sender never
    gives up on code that is still within its time.
    """

    def send_each_byte() -> None:
        deadline = time.monotonic() + timeout
        try:
            for i in range(len(data)):
                sock.sendall(data[i : i + 1])
                if not _wait_until_read(reader, deadline):
                    return  # the student's code stopped reading: the check says so
        except (OSError, ValueError):
            pass  # the check gave up and closed the sockets

    sender = threading.Thread(target=send_each_byte, name="exercise-check-dribble", daemon=True)
    sender.start()
    return sender


def frame_json(data: dict[str, Any]) -> bytes:
    """``data`` as one frame: JSON behind its 4-byte length."""
    body = json.dumps(data).encode()
    return HEADER.pack(len(body)) + body


def toy_key_pair() -> tuple[KeyPair, KeyPair]:
    """Two different toy keys (the toy group has only 20 keys: two draws often collide)."""
    client_key, server_key = generate(TOY), generate(TOY)
    for _ in range(100):
        if server_key.public != client_key.public:
            break
        server_key = generate(TOY)
    return client_key, server_key


def _echo(channel: SecureChannel) -> None:
    """Answer each message on ``channel`` with ``b"echo: "`` + it, until it closes.

    Bounded: a check sends a handful of lines, and each wait ends after ``WAIT`` seconds.
    """
    for _ in range(100):
        try:
            data = channel.recv(timeout=WAIT)
            channel.send(b"echo: " + data)
        except (LabCryptoError, OSError):
            break
    channel.close()


def _serve_echo(sock: socket.socket, key: KeyPair) -> None:
    try:
        channel = SecureChannel.server(sock, key, "toy", timeout=WAIT)
    except (LabCryptoError, OSError):
        return  # the client's side reports what went wrong
    _echo(channel)


@contextlib.contextmanager
def echo_channel() -> Iterator[SecureChannel]:
    """A client's ``SecureChannel`` (toy keys: fast) to a peer thread that echoes each message."""
    client_key, server_key = toy_key_pair()
    left, right = socket_pair()
    peer = threading.Thread(target=_serve_echo, args=(right, server_key), daemon=True)
    peer.start()
    channel = None
    try:
        channel = SecureChannel.client(left, client_key, "toy", timeout=WAIT)
        yield channel
    finally:
        if channel is not None:
            channel.close()
        left.close()
        peer.join(WAIT)
        right.close()


class SendRecvOnly:
    """A stand-in channel, no network, with only ``send``/``recv``/``recv_text``.

    It answers each message with ``b"echo: "`` + it and records every call
    in ``calls``. A ``recv`` with nothing to answer fails with the text
    ``recv_first``; any other attribute fails with ``other_method`` (filled
    with its ``name``): a message loop must use nothing else.
    """

    def __init__(self, recv_first: str, other_method: str) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._pending: list[bytes] = []
        self._recv_first = recv_first
        self._other_method = other_method

    def send(self, message: bytes | str) -> None:
        data = message.encode() if isinstance(message, str) else bytes(message)
        self.calls.append(("send", data))
        self._pending.append(b"echo: " + data)

    def recv(self, timeout: float | None = None) -> bytes:
        self.calls.append(("recv", timeout))
        if not self._pending:
            raise fail(self._recv_first)
        return self._pending.pop(0)

    def recv_text(self, timeout: float | None = None) -> str:
        return self.recv(timeout).decode()

    def __getattr__(self, name: str) -> Any:
        raise fail(self._other_method, name=name)


class ReplyingChannel:
    """A stand-in channel, no network: it answers each line with ``re: <line>``."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: bytes | str) -> None:
        self.sent.append(message.decode() if isinstance(message, bytes) else message)

    def recv_text(self, timeout: float | None = None) -> str:
        return "re: " + self.sent[-1]

    def recv(self, timeout: float | None = None) -> bytes:
        return self.recv_text(timeout).encode()


PLAIN_TRIES = 20  #: reserved ranges ``range_for_a_pool`` tries before it gives up


def plainly_bindable(port: int, host: str = "127.0.0.1") -> bool:
    """Can a socket *without* ``SO_REUSEADDR`` bind ``port`` right now, as most
    students' pools bind their ports?

    Not the same as "free": a connection that ended on a port whose listener set
    ``SO_REUSEADDR`` (the package's servers do) leaves a TIME_WAIT for a minute, which
    ``PortPool.reserve`` binds through and a plain ``bind`` does not. The probe is
    bound and closed, never listening, so it leaves nothing behind.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _reserve_for_a_student(size: int, first_busy: bool) -> PortPool:
    """``PortPool.reserve(size)``, its ports let go (but the first, if ``first_busy``),
    each of them one that a plain ``bind`` takes: else another range."""
    for _ in range(PLAIN_TRIES):
        reserved = PortPool.reserve(size)
        reserved.hold = False  # a port given back from now on is let go, not held again
        if first_busy:
            for lease in [reserved.lease() for _ in range(size)]:
                if lease.port != reserved.first:
                    lease.release()  # free for the student's pool
        else:
            reserved.close()
        let_go = range(reserved.first + int(first_busy), reserved.first + size)
        if all(plainly_bindable(port) for port in let_go):
            return reserved
        reserved.close()
    raise PoolExhausted(
        N_("found no {size} consecutive free ports on {host}; try again"),
        size=size,
        host="127.0.0.1",
    )


@contextlib.contextmanager
def range_for_a_pool(size: int, *, first_busy: bool = False) -> Iterator[int]:
    """``with range_for_a_pool(size) as first:`` ``size`` consecutive free ports, for a
    pool the student wrote, from ``first`` on.

    ``PortPool.reserve`` finds them and holds them; they are let go only here, as
    they are handed over, because the student's pool binds its ports itself. The
    range lies below the ephemeral ports, so the system never gives one to a
    connection meanwhile; only a program that binds ports on purpose could take one.
    Each port let go is one a plain ``bind`` takes (``plainly_bindable``): a range
    with a TIME_WAIT that only ``SO_REUSEADDR`` gets through is passed over, or a
    right pool without that option would lose a port and its points (it did, one
    run in a hundred or so, where earlier tests had left such TIME_WAITs).

    ``first_busy=True`` keeps the first port taken until the block ends, listening,
    as another program's port would be: the pool must skip it. Its socket is the
    very one the reservation bound, never let go in between (a port closed and bound
    again can be taken by anyone in that moment: course mistake 10, which the check
    of the port pool made itself until it failed once under load).
    """
    reserved = _reserve_for_a_student(size, first_busy)
    try:
        yield reserved.first
    finally:
        reserved.close()  # lets go of the busy first port too


def wait_for_event(
    server: Any, kind: str, seconds: float = 1.0, where: Callable[[str], bool] | None = None
) -> bool:
    """Has ``server`` logged an event of ``kind`` (whose text satisfies ``where``, if
    given), waiting up to ``seconds`` for it?"""
    deadline = time.monotonic() + seconds
    while True:
        if any(e.kind == kind and (where is None or where(e.text)) for e in list(server.events)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


# --- the server of the course's exchange ------------------------------------------------


@dataclass
class DhOutcome:
    """What happened when a student's ``dh_client`` met the check's server."""

    status: str  #: "ok" (returned), "error" (raised) or "stuck" (did not return in time)
    value: Any  #: what it returned, or the exception it raised
    sent: bytes  #: every byte the client sent to the server
    shared: int | None = None  #: the server's K, if the client sent a usable A
    A: int | None = None  #: the client's public value as read from its frame
    problems: list[str] = field(default_factory=list)  #: what the server could not read

    @property
    def secret_on_wire(self) -> bool:
        """Did the server's K travel over the wire (in decimal, hex or as raw bytes)?"""
        k = self.shared
        if k is None or k < 1 << 16:
            return False
        text = self.sent.decode("latin-1").lower()
        raw = k.to_bytes((k.bit_length() + 7) // 8, "big")
        return str(k) in text or f"{k:x}" in text or raw in self.sent


def _server_secret(group: Group, p: int, g: int) -> tuple[int, int]:
    """The server's ``b`` and ``B = g^b mod p``.

    ``b`` is even, so ``B`` is a square mod p and passes the client's check of B
    even when a hostile ``g`` is not (a g outside the subgroup): each hostile
    case is refused by the one check it is about. ``B`` is never 0, 1 or p-1.
    """
    b, big_b = 0, 1
    for _ in range(20):
        b = 2 * max(1, group.random_exponent(secrets.randbelow) // 2)
        big_b = pow(g, b, p)
        if big_b not in (0, 1, p - 1):
            break
    return b, big_b


def _read_public(outcome: DhOutcome, b: int, p: int) -> None:
    """Read the client's ``{"A": ...}`` frame from what it sent; fill in ``A`` and ``K``."""
    if len(outcome.sent) < 4:
        return
    (length,) = HEADER.unpack(outcome.sent[:4])
    try:
        message = json.loads(outcome.sent[4 : 4 + length])
        public = message["A"] if isinstance(message, dict) else None
    except (ValueError, KeyError):
        public = None
        outcome.problems.append('its message was not a JSON object with an "A"')
    if isinstance(public, int) and 1 < public < p - 1:
        outcome.A = public
        outcome.shared = pow(public, b, p)


def run_dh_server(
    dh_client: Callable[..., int],
    group: Group,
    *,
    p: int | None = None,
    g: int | None = None,
    B: int | None = None,
    min_bits: int | None = None,
    split: bool = False,
    glued: bool = False,
    header: bytes | None = None,
    timeout: float = WAIT,
) -> DhOutcome:
    """Be the server for one run of ``dh_client(sock, min_bits)`` over TCP on 127.0.0.1.

    The server speaks first: one frame ``{"p": ..., "g": ..., "B": ...}`` (JSON,
    numbers as ints). ``p``/``g``/``B`` replace the fair values to play a hostile
    server; ``split`` sends the frame one byte per TCP segment; ``glued`` sends a
    second frame in the same segment; ``header`` sends only these bytes (say, an
    oversized length). Then it reads what the client sent back.
    """
    p = group.p if p is None else p
    g = group.g if g is None else g
    b, big_b = _server_secret(group, p, g)
    big_b = big_b if B is None else B
    wire = frame_json({"p": p, "g": g, "B": big_b})
    if glued:
        wire += frame_json({"type": "note", "text": "a second message, in the same segment"})
    if header is not None:
        wire = header
    server, client = tcp_pair(timeout)
    # The client's socket waits longer than the check: a client reading bytes that never
    # come is "stuck" at ``timeout`` on every run, never a timeout error racing it.
    set_timeout(client, 3 * timeout)
    sender = None
    try:
        if split:
            sender = dribble(server, wire, reader=client, timeout=3 * timeout)
        else:
            server.sendall(wire)
        status, value = run_bounded(dh_client, client, min_bits or group.bits, timeout=timeout)
        sent = read_sent(server, client)  # the client has returned or is stuck
    finally:
        close_stream(server)
        close_stream(client)
        if sender is not None:
            sender.join(timeout)
    outcome = DhOutcome(status, value, sent)
    _read_public(outcome, b, p)
    return outcome


# --- hostile groups for the server -------------------------------------------------------


def composite(bits: int) -> tuple[int, tuple[int, int]]:
    """An odd composite number of ``bits`` bits, the product of two primes of half the size."""
    for seed in range(1000):
        low = small_safe_prime_group(bits // 2, seed).p
        other = small_safe_prime_group(bits - bits // 2, seed + 1).p
        if (low * other).bit_length() == bits:
            return low * other, (low, other)
    raise RuntimeError("no composite found")  # pragma: no cover


def prime_not_safe(bits: int) -> int:
    """A prime ``p`` of ``bits`` bits with ``(p-1)/2`` not prime, and 2 a square mod p.

    The same ``p`` on every run (a check must not pass or fail by luck). With
    ``p ≡ 7 (mod 8)`` the number 2 is a square mod p, so ``g = 2`` and every
    ``B = 2^b`` pass the check "``y^((p-1)/2) mod p == 1``" — only a client that
    tests whether ``(p-1)/2`` is prime refuses this group.
    """
    rng = random.Random(f"prime-not-safe-{bits}")  # not secret: a fixed hostile group
    for _ in range(100_000):
        p = rng.getrandbits(bits) | (1 << (bits - 1)) | 7
        if p % 8 == 7 and is_probable_prime(p) and not is_probable_prime((p - 1) // 2):
            return p
    raise RuntimeError("no such prime found")  # pragma: no cover


def outside_subgroup(group: Group) -> int:
    """The smallest ``g`` of ``group`` outside the subgroup of order q (``g^q mod p = p-1``).

    Such a g is a fine number between 2 and p-2, yet ``A = g^a`` tells
    anyone whether ``a`` is even; only a check of ``g`` itself (``g^q mod p
    == 1``, as ``groups.validate_public`` does) refuses it.
    """
    return next(y for y in range(2, group.p) if pow(y, group.q, group.p) != 1)


# --- secrets that are not secret (course mistake 2) ------------------------------------

SMALL_EXPONENT = 1 << 16  #: a secret exponent below this is found by trying them all (a few ms)


def has_small_exponent(group: Group, values: set[int], limit: int = SMALL_EXPONENT) -> bool:
    """Is one of ``values`` equal to ``g^x mod p`` for some ``x`` below ``limit``?

    What an eavesdropper does with a public value made from a small secret: try every
    exponent up to ``limit`` (65536 multiplications, a few milliseconds).
    """
    power = 1
    for _ in range(limit):
        power = power * group.g % group.p
        if power in values:
            return True
    return False


#: The seeds of ``random`` for three fair runs of a student's code: the same twice, then
#: another. Three secrets alike: a constant; the first two alike: drawn from ``random``.
FAIR_SEEDS = (1, 1, 2)


@contextlib.contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Inside the block, the ``random`` module's shared generator starts from ``seed``;
    after it, its state is what it was before.

    Two runs of a student's code, each in ``seeded_random(1)``, draw the same numbers
    from ``random`` (``random.randint``, ``random.getrandbits``, …): a secret that comes
    out the same in both comes from ``random`` or is a constant, on every run of the
    check. ``secrets`` reads the operating system's generator, which no seed touches.
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)
