"""Ephemeral keys made ahead (key_pool) and the remembered static×static term (keys):
each ephemeral pair is used by one handshake only, and neither changes the session keys."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labcrypto import groups, handshake, keys
from labcrypto.allowlist import Allowlist
from labcrypto.errors import InvalidPublicValue
from labcrypto.ftp import FileClient, FileServer
from labcrypto.key_pool import EphemeralPool
from labcrypto.keys import KeyPair


def run_handshake(client: handshake.ClientHandshake, server: handshake.ServerHandshake) -> None:
    """Carry the messages between two sans-IO handshakes until both are done."""
    replies = server.receive(client.start())
    for message in [out for reply in replies for out in client.receive(reply)]:
        server.receive(message)
    assert client.done and server.done


def ephemerals_of(session: handshake.Session) -> tuple[str, str]:
    """The client's and the server's ephemeral public values, from a session's transcript."""
    hellos = {message["type"]: message for _, message in session.transcript}
    return hellos["client_hello"]["ephemeral"], hellos["server_hello"]["ephemeral"]


# --- the pool ----------------------------------------------------------------------------------


def test_a_pair_is_handed_out_once_and_the_pool_keeps_no_copy() -> None:
    pool = EphemeralPool(groups.FFDHE2048)
    first = pool.take()  # nothing made ahead yet: made on the spot
    assert (pool.made_on_the_spot, pool.taken_ready) == (1, 0)
    pool.refill()
    pool.refill()  # size 1: a second refill makes nothing
    assert pool.ready == 1
    second = pool.take()
    assert (pool.made_on_the_spot, pool.taken_ready) == (1, 1)
    assert pool.ready == 0  # taken means gone from the pool
    third = pool.take()
    assert len({first.public, second.public, third.public}) == 3
    assert all(pair.group is groups.FFDHE2048 for pair in (first, second, third))
    pool.refill()
    pool.clear()
    assert pool.ready == 0


def test_threads_taking_and_refilling_at_once_never_share_a_pair() -> None:
    pool = EphemeralPool(groups.FFDHE2048, size=2)
    taken: list[list[KeyPair]] = [[] for _ in range(4)]

    def work(mine: list[KeyPair]) -> None:
        for _ in range(15):
            pool.refill()
            mine.append(pool.take())

    threads = [threading.Thread(target=work, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    publics = [pair.public for mine in taken for pair in mine]
    assert len(publics) == 60
    assert len(set(publics)) == 60
    assert pool.taken_ready > 0  # the pool did hand out pairs made ahead


def test_a_pool_needs_room_for_one() -> None:
    with pytest.raises(ValueError):
        EphemeralPool(groups.FFDHE2048, size=0)


# --- the handshake refuses a source that repeats itself ------------------------------------------


def test_the_handshake_refuses_an_ephemeral_pair_it_has_seen(secure_keys) -> None:
    reused = keys.generate(groups.FFDHE2048)
    first = handshake.ClientHandshake(secure_keys("alice"), ephemeral_keys=lambda: reused)
    first.start()
    again = handshake.ClientHandshake(secure_keys("alice"), ephemeral_keys=lambda: reused)
    with pytest.raises(ValueError, match="used before"):
        again.start()


def test_the_handshake_refuses_an_ephemeral_pair_of_another_group(secure_keys) -> None:
    wrong = keys.generate(groups.MODP2048)
    client = handshake.ClientHandshake(secure_keys("alice"), ephemeral_keys=lambda: wrong)
    with pytest.raises(ValueError, match="modp2048"):
        client.start()


def test_pooled_handshakes_agree_and_each_has_its_own_ephemeral_pairs(secure_keys) -> None:
    alice, server_key = secure_keys("alice"), secure_keys("server")
    client_pool, server_pool = EphemeralPool(), EphemeralPool()
    seen: list[str] = []
    for _ in range(6):
        client_pool.refill()
        server_pool.refill()
        client = handshake.ClientHandshake(alice, ephemeral_keys=client_pool.take)
        server = handshake.ServerHandshake(server_key, ephemeral_keys=server_pool.take)
        run_handshake(client, server)
        assert client.session is not None and server.session is not None
        assert client.session.keys == server.session.keys
        seen += ephemerals_of(client.session)
    assert client_pool.taken_ready == server_pool.taken_ready == 6
    assert len(set(seen)) == 12


# --- the file service: every request its own pair, on both sides ----------------------------------


@pytest.fixture
def file_service(
    tmp_path: Path, secure_keys: Callable[[str], KeyPair], no_leaks: None
) -> Iterator[FileServer]:
    allowlist = Allowlist(tmp_path / "allowlist.csv")
    allowlist.add("alice", secure_keys("alice").public_key)
    server = FileServer(secure_keys("server"), allowlist, tmp_path / "root").start()
    yield server
    server.stop()


def test_no_two_requests_share_an_ephemeral_key(
    file_service: FileServer, secure_keys, monkeypatch
) -> None:
    """Both pools are used (pairs made while waiting), and no pair serves two requests."""
    alice = FileClient("127.0.0.1", file_service.port, secure_keys("alice"))
    seen: list[str] = []
    original = handshake.ClientHandshake._make_session

    def record(self: handshake.ClientHandshake, peer: keys.PublicKey) -> handshake.Session:
        session = original(self, peer)
        seen.extend(ephemerals_of(session))
        return session

    monkeypatch.setattr(handshake.ClientHandshake, "_make_session", record)
    for _ in range(12):
        alice.ls()
    assert len(seen) == 24
    assert len(set(seen)) == 24  # 12 client and 12 server ephemeral keys, all different
    # The first request had nothing made ahead; each later one took the pair made
    # while the previous one waited (the server refills before it reads our finished).
    assert alice.ephemeral_pool.taken_ready == file_service.ephemeral_pool.taken_ready == 11


def test_a_stopped_server_drops_the_pairs_it_made_ahead(
    file_service: FileServer, secure_keys
) -> None:
    FileClient("127.0.0.1", file_service.port, secure_keys("alice")).ls()
    assert file_service.ephemeral_pool.ready == 1
    file_service.stop()
    assert file_service.ephemeral_pool.ready == 0


# --- the static×static term, remembered --------------------------------------------------------


def test_the_remembered_static_secret_is_the_shared_secret(monkeypatch, secure_keys) -> None:
    mine, peer = keys.generate(groups.FFDHE2048), secure_keys("bob").public_key
    expected = pow(peer.value, mine.private, groups.FFDHE2048.p)
    calls: list[int] = []
    real_power = keys.power

    def counting_power(base: int, exponent: int, group: groups.Group) -> int:
        calls.append(base)
        return real_power(base, exponent, group)

    monkeypatch.setattr(keys, "power", counting_power)
    assert mine.static_shared_secret(peer) == expected
    assert mine.static_shared_secret(peer) == expected
    assert calls == [peer.value]  # computed once, then remembered
    assert mine.shared_secret(peer) == expected  # the plain method still computes every time
    assert len(calls) == 2


def test_the_remembered_static_secrets_are_bounded_and_checked(secure_keys, monkeypatch) -> None:
    mine = keys.generate(groups.FFDHE2048)
    peers = [keys.generate(groups.FFDHE2048).public_key for _ in range(3)]
    for peer in peers:
        mine.static_shared_secret(peer)
    assert len(mine._static_secrets) == 3
    monkeypatch.setattr(KeyPair, "REMEMBERED_PEERS", 3)
    mine.static_shared_secret(secure_keys("bob").public_key)  # the fourth: starts over
    assert len(mine._static_secrets) == 1
    other_group = keys.generate(groups.MODP2048).public_key
    with pytest.raises(InvalidPublicValue):
        mine.static_shared_secret(other_group)
