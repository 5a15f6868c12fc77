"""streams.close_after_peer: the side that closes second keeps no TIME_WAIT on its port."""

from __future__ import annotations

import socket
import threading
import time

from labcrypto.lab.harness import plainly_bindable, range_for_a_pool
from labcrypto.streams import close_after_peer, close_stream


def _accepted_on(port: int) -> tuple[socket.socket, socket.socket]:
    """A connection to ``port`` (a listener bound without SO_REUSEADDR, closed after
    accepting): (the server's end, the client's end)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    server, _ = listener.accept()
    listener.close()
    return server, client


def _close_later(sock: socket.socket, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), sock.close()), daemon=True)
    thread.start()
    return thread


def test_waiting_for_the_peer_to_close_first_keeps_the_port_bindable() -> None:
    with range_for_a_pool(1) as port:
        server, client = _accepted_on(port)
    closer = _close_later(client, 0.2)
    close_after_peer(server, timeout=5)
    closer.join(5)
    assert plainly_bindable(port)


def test_closing_first_is_what_loses_the_port() -> None:
    """The same connection closed by the server first: the port is in TIME_WAIT."""
    with range_for_a_pool(1) as port:
        server, client = _accepted_on(port)
    close_stream(server)
    client.recv(1)  # the server's FIN has arrived
    client.close()
    assert not plainly_bindable(port)


def test_a_peer_that_never_closes_costs_the_timeout_and_no_more() -> None:
    with range_for_a_pool(1) as port:
        server, client = _accepted_on(port)
    try:
        started = time.monotonic()
        close_after_peer(server, timeout=0.3)
        assert 0.25 <= time.monotonic() - started < 3
        assert server.fileno() == -1  # closed anyway
    finally:
        client.close()


def test_a_peer_that_keeps_sending_is_read_only_up_to_max_bytes() -> None:
    with range_for_a_pool(1) as port:
        server, client = _accepted_on(port)
    try:
        client.sendall(b"x" * 50_000)
        started = time.monotonic()
        close_after_peer(server, timeout=30, max_bytes=10_000)
        assert time.monotonic() - started < 5  # stopped by the byte bound, not the 30 s
        assert server.fileno() == -1
    finally:
        client.close()
