"""Tests for labcrypto.ports: a pool of listening ports, leased and given back."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from labcrypto.errors import LabCryptoError, PoolExhausted
from labcrypto.ports import Lease, PortPool, free_port_range

HOST = "127.0.0.1"


@pytest.fixture
def make_pool() -> Iterator:
    """Make pools of ``size`` fresh ports; every pool is closed at the end of the test.

    ``held=True`` (the default): ``PortPool.reserve``, which holds its free
    ports. ``held=False``: a plain pool on a range that was free a moment
    ago, for the cases where another program takes a port of the pool.
    """
    pools: list[PortPool] = []

    def make(size: int, held: bool = True) -> PortPool:
        pool = PortPool.reserve(size, HOST)
        if not held:
            pool.close()
            pool = PortPool(pool.first, pool.last, HOST)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def can_bind(port: int) -> bool:
    """Could another program listen on ``port`` right now?

    With ``SO_REUSEADDR``, as servers set it: a port whose last connection
    is in TIME_WAIT counts as free, one with a listening socket does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def port_range(pool: PortPool) -> set[int]:
    return set(range(pool.first, pool.last + 1))


# --- the range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "words"),
    [
        (0, 10, "between 1 and 65535"),
        (10, 65536, "between 1 and 65535"),
        (-5, 10, "between 1 and 65535"),
        (5000, 4999, "empty"),
        (True, 10, "int"),
        ("5000", 5010, "int"),
    ],
)
def test_a_bad_range_is_refused(first: object, last: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        PortPool(first, last)  # type: ignore[arg-type]


def test_size_counts_both_ends() -> None:
    pool = PortPool(40000, 40009)
    assert pool.size == 10
    assert pool.available == 10
    assert pool.leased() == []


# --- lease and release ------------------------------------------------------------------


def test_a_lease_is_a_listening_socket_on_its_port(make_pool) -> None:
    pool = make_pool(3, held=False)  # so that the port is free for anyone after release
    with pool.lease() as lease:
        assert lease.port in port_range(pool)
        assert lease.socket.getsockname() == (HOST, lease.port)
        assert not can_bind(lease.port)  # nobody else can take it: no bind-close-bind race
        lease.socket.settimeout(5)
        with socket.create_connection((HOST, lease.port), timeout=5) as client:
            server_side, _ = lease.socket.accept()
            with server_side:
                client.sendall(b"ping")
                assert server_side.recv(4) == b"ping"
        assert pool.leased() == [lease.port]
        assert pool.available == 2
    assert lease.released
    assert lease.socket.fileno() == -1  # closed by release
    assert pool.leased() == []
    assert pool.available == 3
    assert can_bind(lease.port)


def test_leases_get_different_ports_and_release_is_idempotent(make_pool) -> None:
    pool = make_pool(3)
    leases = [pool.lease() for _ in range(3)]
    assert {lease.port for lease in leases} == port_range(pool)
    assert pool.leased() == sorted(port_range(pool))
    first = leases[0]
    first.release()
    first.release()
    first.release()
    assert pool.available == 1
    again = pool.lease()
    assert again.port == first.port
    with pytest.raises(PoolExhausted):  # released three times, returned once
        pool.lease()
    for lease in [again, *leases[1:]]:
        lease.release()
    assert pool.available == 3


def test_an_exhausted_pool_says_which_range_and_what_to_do(make_pool) -> None:
    pool = make_pool(2)
    held = [pool.lease(), pool.lease()]
    started = time.monotonic()
    with pytest.raises(PoolExhausted) as info:
        pool.lease()
    assert time.monotonic() - started < 0.5  # timeout=0: no waiting
    message = str(info.value)
    assert f"{pool.first}-{pool.last}" in message
    assert "2 leased" in message
    assert "try again" in message
    assert isinstance(info.value, LabCryptoError)
    for lease in held:
        lease.release()


def test_a_waiting_lease_gets_the_port_another_thread_releases(make_pool) -> None:
    pool = make_pool(1)
    holder = pool.lease()
    got: list[Lease] = []
    errors: list[BaseException] = []

    def wait_for_port() -> None:
        try:
            got.append(pool.lease(timeout=5))
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_port)
    started = time.monotonic()
    waiter.start()
    time.sleep(0.1)
    assert got == [] and errors == []  # still waiting
    holder.release()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert errors == []
    assert [lease.port for lease in got] == [holder.port]
    assert time.monotonic() - started < 4  # woken by the release, not by the timeout
    got[0].release()


def test_a_wait_is_bounded_by_its_timeout(make_pool) -> None:
    pool = make_pool(1)
    with pool.lease():
        started = time.monotonic()
        with pytest.raises(PoolExhausted, match="try again"):
            pool.lease(timeout=0.2)
        waited = time.monotonic() - started
    assert 0.19 <= waited < 2


def test_waiting_forever_and_bad_durations_are_refused(make_pool) -> None:
    pool = make_pool(1)
    with pytest.raises(ValueError, match="forever"):
        pool.lease(timeout=None)
    with pytest.raises(ValueError, match="timeout"):
        pool.lease(timeout=-1)
    with pytest.raises(ValueError, match="ttl"):
        pool.lease(ttl=0)
    assert pool.available == 1


def can_listen(port: int) -> bool:
    """Could another program *listen* on ``port`` right now (a server, with SO_REUSEADDR)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            sock.listen(1)
        except OSError:
            return False
        return True


def test_a_reserved_pool_holds_its_free_ports_until_closed(make_pool) -> None:
    pool = make_pool(4)
    assert pool.hold
    assert not any(can_listen(port) for port in port_range(pool))  # free, yet held
    with pytest.raises(ConnectionRefusedError):  # held, but nobody listens yet
        socket.create_connection((HOST, pool.first), timeout=5)
    leases = [pool.lease() for _ in range(pool.size)]
    for lease in leases:
        lease.release()
    assert not any(can_listen(lease.port) for lease in leases)  # held again once back
    pool.close()
    assert all(can_listen(port) for port in port_range(pool))


def test_a_plain_pool_holds_its_ports_when_asked(make_pool) -> None:
    first = make_pool(3, held=False).first
    with PortPool(first, first + 2, HOST, hold=True) as pool:
        assert not any(can_listen(port) for port in port_range(pool))
        with pool.lease() as lease:
            assert lease.socket.getsockname() == (HOST, lease.port)
    assert all(can_listen(port) for port in port_range(pool))


def test_leases_get_their_ports_in_an_order_nobody_can_predict(make_pool) -> None:
    pool = make_pool(16)
    orders = []
    for _ in range(2):
        leases = [pool.lease() for _ in range(pool.size)]
        orders.append([lease.port for lease in leases])
        for lease in leases:
            lease.release()
    assert sorted(orders[0]) == sorted(port_range(pool))
    assert orders[0] != sorted(orders[0])  # not first to last (1 chance in 16! that it is)
    assert orders[0] != orders[1]


def test_free_port_range_is_on_its_way_out() -> None:
    with pytest.warns(PendingDeprecationWarning, match="PortPool.reserve"):
        first = free_port_range(2, HOST)
    assert 1 <= first < 65535


def test_reserve_says_when_it_finds_no_range() -> None:
    with pytest.raises(ValueError, match="size"):
        PortPool.reserve(0)
    with pytest.raises(PoolExhausted, match="no 3 consecutive free ports"):
        PortPool.reserve(3, HOST, tries=0)


# --- ports other programs hold -------------------------------------------------------------


def test_a_port_held_by_another_program_is_skipped(make_pool) -> None:
    pool = make_pool(3, held=False)
    outsider = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        outsider.bind((HOST, pool.first))
        outsider.listen(1)
        leases = [pool.lease(), pool.lease()]
        assert pool.first not in {lease.port for lease in leases}
        assert {lease.port for lease in leases} == port_range(pool) - {pool.first}
        with pytest.raises(PoolExhausted, match="1 held by other programs"):
            pool.lease()
        assert outsider.getsockname() == (HOST, pool.first)  # still the outsider's
    finally:
        outsider.close()
    third = pool.lease()  # let go of by the outsider: usable again
    assert third.port == pool.first
    for lease in [*leases, third]:
        lease.release()
    assert pool.available == 3


def test_a_waiting_lease_notices_when_another_program_lets_go(make_pool) -> None:
    pool = make_pool(1, held=False)
    outsider = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    outsider.bind((HOST, pool.first))
    outsider.listen(1)
    timer = threading.Timer(0.15, outsider.close)
    timer.start()
    try:
        started = time.monotonic()
        lease = pool.lease(timeout=3)
        assert lease.port == pool.first
        assert time.monotonic() - started < 2.5
        lease.release()
    finally:
        timer.cancel()
        timer.join(timeout=2)
        outsider.close()


# --- time to live ----------------------------------------------------------------------------


def wait_until_expired(lease: Lease) -> None:
    deadline = time.monotonic() + 2
    while not lease.expired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lease.expired


def test_an_expired_lease_is_reclaimed_exactly_once(make_pool) -> None:
    pool = make_pool(1)
    old = pool.lease(ttl=0.05)
    assert old.expires_at is not None and not old.expired
    assert pool.leased() == [old.port]
    wait_until_expired(old)

    assert pool.leased() == []  # reclaimed lazily, here
    assert old.released
    assert old.socket.fileno() == -1
    old.release()  # after reclaim: a no-op
    assert pool.available == 1

    new = pool.lease()
    assert new.port == old.port
    with pytest.raises(PoolExhausted):  # the port came back once, not twice
        pool.lease()
    old.release()  # must not take the port from its new holder
    assert pool.leased() == [new.port]
    assert new.socket.fileno() != -1
    new.release()
    assert pool.available == 1


def test_a_waiting_lease_gets_a_port_when_a_ttl_runs_out(make_pool) -> None:
    pool = make_pool(1)
    old = pool.lease(ttl=0.1)
    started = time.monotonic()
    new = pool.lease(timeout=3)
    assert new.port == old.port
    assert 0.05 <= time.monotonic() - started < 2.5
    assert old.released and not new.released
    new.release()


def test_release_before_the_ttl_and_a_lease_without_ttl(make_pool) -> None:
    pool = make_pool(2)
    short = pool.lease(ttl=30)
    forever = pool.lease()
    assert forever.expires_at is None and not forever.expired
    short.release()
    assert pool.leased() == [forever.port]
    forever.release()


# --- close ------------------------------------------------------------------------------------


def test_close_releases_everything_and_wakes_waiters(make_pool) -> None:
    pool = make_pool(2)
    leases = [pool.lease(), pool.lease()]
    errors: list[BaseException] = []

    def wait_for_port() -> None:
        try:
            pool.lease(timeout=5)
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_port)
    waiter.start()
    time.sleep(0.1)
    pool.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], PoolExhausted)
    assert "closed" in str(errors[0])
    assert all(lease.released and lease.socket.fileno() == -1 for lease in leases)
    assert pool.available == 2 and pool.leased() == []
    with pytest.raises(PoolExhausted, match="closed"):
        pool.lease()
    leases[0].release()  # after close: a no-op
    assert pool.available == 2


# --- threads ---------------------------------------------------------------------------------


def test_many_threads_never_share_a_port_and_lose_none(make_pool) -> None:
    pool = make_pool(6)
    threads_count, cycles = 16, 40
    holding: set[int] = set()
    guard = threading.Lock()
    failures: list[str] = []
    done = [0] * threads_count

    def worker(slot: int) -> None:
        deadline = time.monotonic() + 20
        for cycle in range(cycles):
            if time.monotonic() > deadline:
                failures.append(f"thread {slot} ran out of time")
                return
            try:
                lease = pool.lease(timeout=5)
            except PoolExhausted as exc:
                failures.append(f"thread {slot}: {exc}")
                return
            try:
                with guard:
                    if lease.port in holding:
                        failures.append(f"port {lease.port} leased twice at once")
                    holding.add(lease.port)
                if lease.socket.getsockname()[1] != lease.port:
                    failures.append(f"socket not on port {lease.port}")
                if cycle % 3 == 0:
                    time.sleep(0.001)
                with guard:
                    holding.discard(lease.port)
            finally:
                lease.release()
                if cycle % 5 == 0:
                    lease.release()  # a double release must change nothing
            done[slot] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert done == [cycles] * threads_count
    assert pool.leased() == []
    assert pool.available == pool.size
    every = [pool.lease() for _ in range(pool.size)]  # and each port is there exactly once
    assert {lease.port for lease in every} == port_range(pool)
    with pytest.raises(PoolExhausted):
        pool.lease()
    for lease in every:
        lease.release()
