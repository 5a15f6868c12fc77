"""A check that grades students gives the same verdict on every run: no luck in it.

Each test here pins one way a verdict could depend on the machine, the load or a
random draw, by forcing the interleaving that used to decide it (a reader whose
thread wakes late, a server that ends just after its time, an allocation that fails
at once) or by fixing what used to be drawn. Every wrong answer here is far on the
wrong side of every bound: it never relies on finishing a little before or after a
wait.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time

import pytest
from test_notebook_helpers import _dh_reference_after_read, _fails

from labcrypto import groups
from labcrypto.channel import read_frame, write_frame
from labcrypto.lab import checks_02_exchange, checks_03_allowlist, harness
from labcrypto.lab.feedback import WAIT, CheckFailed

#: How long the "late" readers below sleep between reading a header and its payload: far
#: longer than a whole frame takes to dribble one byte per segment (a few ms a byte).
LATE = 0.4


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _late_single_recv(sock: socket.socket) -> bytes:
    """A frame reader with course mistake 6 that a loaded machine used to hide.

    It reads the 4 header bytes in a loop, then, its thread waking late (as a thread does
    on a busy machine), takes one recv() as the whole payload. Over a connection that
    delivers one byte per segment, that recv() got the whole payload whenever the bytes
    had all arrived by then.
    """
    (length,) = struct.unpack("!I", _recv_exactly(sock, 4))
    if length > 1 << 16:
        raise ValueError("frame too large")
    time.sleep(LATE)
    return sock.recv(length)


# --- dribble: every recv() gets one byte, however late the reader ----------------------


def test_dribble_hands_a_late_reader_one_byte_per_recv() -> None:
    with harness.tcp_connection() as (left, right):
        sender = harness.dribble(left, b"0123456789", reader=right, timeout=3 * WAIT)
        pieces = []
        for _ in range(10):
            time.sleep(0.05)  # 50 ms late each time: the old 2 ms gap sent 25 bytes meanwhile
            pieces.append(right.recv(100))
        sender.join(WAIT)
    assert pieces == [bytes([b]) for b in b"0123456789"]
    assert not sender.is_alive()


def test_dribble_stops_when_the_reader_stops_reading() -> None:
    with harness.tcp_connection() as (left, right):
        start = time.monotonic()
        sender = harness.dribble(left, b"0123456789", reader=right, timeout=0.5)
        sender.join(5)
        assert not sender.is_alive()
        assert time.monotonic() - start < 4
        assert right.recv(100) == b"0"  # it never sent a second byte nobody read


def test_framing_check_catches_a_single_recv_however_late_the_reader_wakes(no_leaks) -> None:
    def send_msg(sock, data):
        sock.sendall(struct.pack("!I", len(data)) + data)

    def recv_msg(sock):  # only the dribbled message is read late and with one recv()
        (length,) = struct.unpack("!I", _recv_exactly(sock, 4))
        if length > 1 << 20:
            raise ValueError("too big")
        if length != len(b"split into single bytes"):
            return _recv_exactly(sock, length)
        time.sleep(LATE)
        return sock.recv(length)

    for _ in range(2):
        _fails(
            lambda f: checks_02_exchange.check_framing(send_msg, f),
            recv_msg,
            "one byte per TCP segment",
        )


def _late_client(sock, min_bits=2048):
    """The reference dh_client, but its frame read as :func:`_late_single_recv` does."""
    hello = json.loads(_late_single_recv(sock))
    return _dh_reference_after_read(sock, hello["p"], hello["g"], hello["B"], min_bits)


def test_dh_client_check_catches_a_single_recv_however_late_the_reader_wakes(no_leaks) -> None:
    for _ in range(2):
        _fails(checks_02_exchange.check_dh_client, _late_client, "one byte per TCP segment")


def _late_delivery_pair(delay: float):
    """A ``tcp_pair`` whose bytes reach the other end ``delay`` seconds after they were
    sent, each way, as a loaded machine may deliver them (the kernel's network work
    waits for a processor too)."""
    real_pair = harness.tcp_pair

    def pair(timeout: float = WAIT):
        left, relay_left = real_pair(timeout)
        relay_right, right = real_pair(timeout)

        def forward(source, target):
            try:
                while chunk := source.recv(1 << 16):
                    time.sleep(delay)
                    target.sendall(chunk)
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                source.close()
                target.close()

        for args in ((relay_left, relay_right), (relay_right, relay_left)):
            threading.Thread(target=forward, args=args, daemon=True).start()
        return left, right

    return pair


def test_dh_client_check_reads_every_byte_however_late_it_arrives(monkeypatch, no_leaks) -> None:
    """The check used to read what the client sent for 50 ms after it returned: bytes a
    loaded machine delivered later were not there, and a right client failed ("its message
    was not a JSON object with an A"). It now reads to the end of the stream. Forced: the
    bytes arrive 0.3 s late."""
    from test_notebook_helpers import _dh_reference

    monkeypatch.setattr(harness, "tcp_pair", _late_delivery_pair(0.3))
    outcome = harness.run_dh_server(_dh_reference, groups.small_safe_prime_group(64, 1))
    assert outcome.status == "ok" and outcome.A is not None and outcome.problems == []
    assert outcome.shared == outcome.value


def test_dh_server_check_sees_a_secret_sent_however_late_it_arrives(monkeypatch, no_leaks) -> None:
    """The same for the server's check: a server that sends K on the wire and returns used
    to keep its points when its last bytes came after the check's 50 ms look."""

    def sends_k(sock, group):
        shared = _reference_server()(sock, group)
        write_frame(sock, str(shared).encode())
        return shared

    monkeypatch.setattr(harness, "tcp_pair", _late_delivery_pair(0.3))
    run = checks_03_allowlist._run_server(sends_k, groups.small_safe_prime_group(64, 1), "whole")
    assert run.status == "ok" and run.client_k == run.value
    assert str(run.client_k).encode() in run.sent


def _reference_server(read=read_frame, before_return=None):
    def dh_server(sock, group):
        b = group.random_exponent(secrets.randbelow)
        hello = {"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)}
        write_frame(sock, json.dumps(hello).encode())
        data = read(sock)
        if len(data) > 1 << 16:
            raise ValueError("frame too large")
        public = json.loads(data).get("A")  # no A: validate_public refuses None (ValueError)
        groups.validate_public(group, public)
        if before_return is not None:
            before_return()
        return pow(public, b, group.p)

    return dh_server


def test_dh_server_check_catches_a_single_recv_however_late_the_reader_wakes(no_leaks) -> None:
    for _ in range(2):
        _fails(
            checks_03_allowlist.check_dh_server,
            _reference_server(read=_late_single_recv),
            "its frame one byte per TCP segment",
            "TCP does not keep message boundaries",
        )


# --- socket timeouts never equal the wait that decides the verdict ------------------------


def test_the_student_end_waits_longer_than_every_verdict(no_leaks) -> None:
    """recv_msg, dh_client and dh_server each get a socket whose own timeout ends well
    after the check's wait: a read that never ends is "stuck" at the wait, never a
    timeout error racing it (which a hostile case would have taken for a refusal)."""
    seen: list[float | None] = []

    def send_msg(sock, data):
        sock.sendall(struct.pack("!I", len(data)) + data)

    def recv_msg(sock):
        seen.append(sock.gettimeout())
        (length,) = struct.unpack("!I", _recv_exactly(sock, 4))
        if length > 1 << 20:
            raise ValueError("too big")
        return _recv_exactly(sock, length)

    checks_02_exchange.check_framing(send_msg, recv_msg)

    def client(sock, min_bits=2048):
        seen.append(sock.gettimeout())
        raise ValueError("refuses every server")

    harness.run_dh_server(client, groups.small_safe_prime_group(64))

    def server(sock, group):
        seen.append(sock.gettimeout())
        write_frame(sock, b"{}")  # a hello the check cannot use: it fails at once
        raise ValueError("says nothing useful")

    with pytest.raises(CheckFailed):
        checks_03_allowlist.check_dh_server(server)
    assert seen and all(t is not None and t >= 2 * WAIT for t in seen), seen


# --- a verdict taken once, from a snapshot -------------------------------------------------


def test_dh_server_that_ends_after_its_wait_is_stuck_on_every_run(monkeypatch, no_leaks) -> None:
    """A server that is still running when the check's WAIT ends is "stuck", even if it
    returns the right K while the check reads what it sent (forced here: the check's read
    lets the server go, then waits until the server's thread has ended)."""
    release = threading.Event()
    read_sent = harness.read_sent

    def read_after_the_server_ended(sock, *args, **kwargs):
        release.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            t.name == "exercise-check" for t in threading.enumerate()
        ):
            time.sleep(0.01)
        return read_sent(sock, *args, **kwargs)

    monkeypatch.setattr(checks_03_allowlist, "read_sent", read_after_the_server_ended)
    late = _reference_server(before_return=lambda: release.wait(60))
    try:
        _fails(checks_03_allowlist.check_dh_server, late, "did not return within")
    finally:
        release.set()


def test_dh_server_that_cannot_allocate_4_gb_has_not_refused_it(no_leaks) -> None:
    """Whether allocating 4 GB fails at once (MemoryError) or succeeds and then waits for
    bytes that never come depends on the machine: neither is a refusal."""

    def reads_any_length(sock):
        (length,) = struct.unpack("!I", _recv_exactly(sock, 4))
        if length > 1 << 30:
            raise MemoryError  # what recv(length) raises on a machine with less memory
        return _recv_exactly(sock, length)

    server = _reference_server(read=reads_any_length)
    message = _fails(checks_03_allowlist.check_dh_server, server, "announced a message of 4 GB")
    assert "MemoryError" in message


def test_dh_server_that_never_speaks_is_told_so_at_once(no_leaks) -> None:
    def never_speaks(sock, group):
        return int(sock.recv(10) or 0)

    start = time.monotonic()
    _fails(checks_03_allowlist.check_dh_server, never_speaks, "sent no hello within")
    assert time.monotonic() - start < WAIT + 2  # one wait for the hello, not a second one


# --- the same group on every run ----------------------------------------------------------


def test_dh_client_check_offers_the_same_group_on_every_run(no_leaks) -> None:
    offered: set[tuple[int, int]] = set()

    def spy(sock, min_bits=2048):
        hello = json.loads(read_frame(sock))
        offered.add((hello["p"], hello["g"]))
        raise ValueError("refuses")

    for _ in range(3):
        with pytest.raises(CheckFailed):
            checks_02_exchange.check_dh_client(spy)
    assert len(offered) == 1


def test_dh_client_that_accepts_only_g_2_fails_on_every_run(no_leaks) -> None:
    def only_g_2(sock, min_bits=2048):
        hello = json.loads(read_frame(sock))
        if hello["g"] != 2:
            raise ValueError("g must be 2")
        raise AssertionError("never reached: the check's group has g = 3")

    for _ in range(3):
        _fails(checks_02_exchange.check_dh_client, only_g_2, "fair")


def test_dh_server_check_uses_the_same_group_on_every_run(no_leaks) -> None:
    given: set[tuple[int, int]] = set()

    def spy(sock, group):
        given.add((group.p, group.g))
        write_frame(sock, b"{}")  # a hello the check cannot use: it fails at once
        raise ValueError("says nothing useful")

    for _ in range(3):
        with pytest.raises(CheckFailed):
            checks_03_allowlist.check_dh_server(spy)
    assert len(given) == 1


def test_dh_server_whose_hello_says_g_2_fails_on_every_run(no_leaks) -> None:
    def hello_with_g_2(sock, group):
        b = group.random_exponent(secrets.randbelow)
        hello = {"p": group.p, "g": 2, "B": pow(group.g, b, group.p)}
        write_frame(sock, json.dumps(hello).encode())
        public = json.loads(read_frame(sock))["A"]
        groups.validate_public(group, public)
        return pow(public, b, group.p)

    for _ in range(3):
        _fails(checks_03_allowlist.check_dh_server, hello_with_g_2, "does not offer the group")


# --- the check's own work is not the student's time -------------------------------------


def test_shared_secret_check_does_its_own_work_before_the_students_time(monkeypatch) -> None:
    """On a loaded machine the check's own 2048-bit powers once ate most of PURE_WAIT, and
    a right answer was "too slow". Forced here: the check's own work takes longer than the
    whole bound; the student's right answer must still pass."""
    from labcrypto.lab import checks_01_keys
    from labcrypto.lab.feedback import PURE_WAIT

    real = checks_01_keys._invalid_values

    def slow_invalid_values(group):
        time.sleep(PURE_WAIT / 2)  # twice: longer than the whole bound
        return real(group)

    monkeypatch.setattr(checks_01_keys, "_invalid_values", slow_invalid_values)

    def good(grp, a, peer):
        groups.validate_public(grp, peer)
        return pow(peer, a, grp.p)

    checks_01_keys.check_shared_secret(good)


# --- hidden tests never hang the grading -------------------------------------------------


class _Endless:
    """Student code that never returns: it spins until the test calls ``stop()`` (or 60 s
    at most, so that no thread outlives a broken test)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def __call__(self, *args):
        deadline = time.monotonic() + 60
        while not self.stopped.is_set() and time.monotonic() < deadline:
            pass
        raise TimeoutError("stopped by the test")


HIDDEN_TESTS = ["public_value", "shared_secret", "break_caesar", "chat_loop", "du"]


def _hidden_tests(tmp_path):
    from labcrypto.lab import checks_01_keys, checks_02b_chat, checks_05_ftp

    (tmp_path / "a.txt").write_bytes(b"x" * 10)
    return {
        "public_value": (checks_01_keys, lambda f: checks_01_keys.hidden_public_value(f, "s7")),
        "shared_secret": (checks_01_keys, lambda f: checks_01_keys.hidden_shared_secret(f, "s7")),
        "break_caesar": (checks_02b_chat, lambda f: checks_02b_chat.hidden_break_caesar(f, "s7")),
        "chat_loop": (checks_02b_chat, checks_02b_chat.hidden_chat_loop),
        "du": (checks_05_ftp, lambda f: checks_05_ftp.hidden_du(f, None, tmp_path)),
    }


@pytest.mark.parametrize(
    "name", ["public_value", "shared_secret", "break_caesar", "chat_loop", "du"]
)
def test_a_hidden_test_stops_code_that_never_returns(name, tmp_path, monkeypatch) -> None:
    module, hidden = _hidden_tests(tmp_path)[name]
    monkeypatch.setattr(module, "HIDDEN_WAIT", 0.5, raising=False)
    endless = _Endless()
    failures: list[BaseException] = []

    def grade() -> None:
        try:
            hidden(endless)
        except BaseException as exc:
            failures.append(exc)

    grader = threading.Thread(target=grade, daemon=True)
    try:
        grader.start()
        grader.join(10)
        assert not grader.is_alive(), "the hidden test is still waiting for the student's code"
    finally:
        endless.stop()
        grader.join(5)
    assert len(failures) == 1 and isinstance(failures[0], CheckFailed), failures
    assert "hidden test" in str(failures[0])


# --- a secret from a small range is refused by its size, not by a lucky repeat -----------


def test_a_key_drawn_from_a_small_range_fails_on_every_run(tmp_path) -> None:
    """Drawn from 1000 numbers, two keys were equal about one run in a thousand: only those
    runs failed. Forced here: the draws never repeat, yet the check fails."""
    import os

    from labcrypto import keys
    from labcrypto.lab import checks_01_keys

    draws = iter(range(1000, 2000))

    def load_or_create_key(path, group=groups.FFDHE2048):
        if path.exists():
            private = keys.parse_number(path.read_text().split(":", 1)[1])
            return keys.KeyPair(group, private, pow(group.g, private, group.p))
        private = next(draws)  # course mistake 2: random.randint(1000, 1999), but never twice
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w") as file:
            file.write(f"private: {private:#x}\n")
        return keys.KeyPair(group, private, pow(group.g, private, group.p))

    for _ in range(2):
        _fails(checks_01_keys.check_load_or_create_key, load_or_create_key, "only 10 bits")


def test_a_dh_server_with_b_from_a_small_range_fails_on_every_run(no_leaks) -> None:
    """Drawn from 100 numbers, three connections repeated a B about one run in thirty: only
    those runs failed. Forced here: the draws never repeat, yet the check fails."""
    draws = iter(range(10, 100))

    def dh_server(sock, group):
        b = next(draws)  # course mistake 2: random.randint(10, 99), but never twice
        hello = {"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)}
        write_frame(sock, json.dumps(hello).encode())
        public = json.loads(read_frame(sock))["A"]
        groups.validate_public(group, public)
        return pow(public, b, group.p)

    for _ in range(2):
        _fails(checks_03_allowlist.check_dh_server, dh_server, "for a b below 65536", "mistake 2")


def test_a_secret_from_random_is_caught_on_every_run_and_secrets_never(no_leaks) -> None:
    """The check tells ``random`` from ``secrets`` by seeding ``random`` alike for two fair
    runs: a client drawing from ``random`` sends the same A twice on every run, whatever
    ``random`` held before (the test draws from it in between, as a notebook does), and
    the reference, whose two draws from ``secrets`` coincide with a chance of 2^-62, never
    does."""
    import random

    from test_notebook_helpers import _dh_reference, _dh_with_secret, _random_secret

    client = _dh_with_secret(_random_secret)
    for run in range(5):
        random.seed(run)
        random.random()
        _fails(checks_02_exchange.check_dh_client, client, "comes from the `random` module")
        checks_02_exchange.check_dh_client(_dh_reference)
        checks_02_exchange.hidden_dh_client(_dh_reference)
        with pytest.raises(CheckFailed):
            checks_02_exchange.hidden_dh_client(client)
