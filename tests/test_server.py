"""ThreadedServer: the lifecycle a notebook needs (start, re-run, stop, registry)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from labcrypto.server import PortInUse, ThreadedServer, connect, running_servers, stop_all


class Echo(ThreadedServer):
    """Echo each chunk back, like the course's first threaded server."""

    def handle(self, conn, address):
        while data := conn.recv(4096):
            conn.sendall(data)


class Crashing(ThreadedServer):
    def handle(self, conn, address):
        raise RuntimeError("bug in a student's handler")


def echo_once(port: int, data: bytes = b"ping") -> bytes:
    with connect("127.0.0.1", port, timeout=2) as sock:
        sock.sendall(data)
        return sock.recv(100)


def test_start_returns_once_listening_on_the_port_it_reports(no_leaks):
    with Echo(port=0) as server:
        assert server.running and server.port > 0
        assert echo_once(server.port) == b"ping"
        assert server in running_servers()
    assert not server.running and server not in running_servers()


def test_rerunning_start_on_the_same_port_twenty_times_replaces_the_old_server(no_leaks):
    first = Echo(port=0).start()
    port = first.port
    servers = [first] + [Echo(port=port).start() for _ in range(20)]
    assert [s.running for s in servers] == [False] * 20 + [True]
    assert running_servers() == [servers[-1]]
    assert echo_once(port) == b"ping"
    servers[-1].stop()


def test_a_named_server_on_port_zero_replaces_its_previous_run(no_leaks):
    old = Echo(port=0, name="chat-demo").start()
    new = Echo(port=0, name="chat-demo").start()
    other = Echo(port=0, name="another").start()
    assert not old.running and new.running and other.running
    stop_all()


def test_a_port_held_by_another_program_is_a_clear_error(no_leaks):
    outsider = socket.socket()
    outsider.bind(("127.0.0.1", 0))
    outsider.listen()
    try:
        with pytest.raises(PortInUse, match="another program"):
            Echo(port=outsider.getsockname()[1]).start()
    finally:
        outsider.close()


def test_connect_to_nothing_says_what_to_do():
    with Echo(port=0) as server:
        port = server.port
    with pytest.raises(ConnectionRefusedError, match="server cell running"):
        connect("127.0.0.1", port, timeout=1)


def test_stop_closes_connections_and_joins_threads_under_load(no_leaks):
    server = Echo(port=0).start()
    stop_sending = threading.Event()

    def chatter():
        try:
            with connect("127.0.0.1", server.port, timeout=2) as sock:
                while not stop_sending.is_set():
                    sock.sendall(b"x" * 1000)
                    sock.recv(1000)
        except OSError:
            pass  # the server went away: expected

    clients = [threading.Thread(target=chatter) for _ in range(10)]
    for thread in clients:
        thread.start()
    deadline = time.monotonic() + 5
    while server.connection_count < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connection_count == 10
    started = time.monotonic()
    server.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert server.threads() == [] and server.connection_count == 0
    stop_sending.set()
    for thread in clients:
        thread.join(5)


def test_a_crashing_handler_does_not_kill_the_server(no_leaks):
    with Crashing(port=0) as server:
        for _ in range(3):
            with connect("127.0.0.1", server.port, timeout=2) as sock:
                assert sock.recv(10) == b""  # closed by the server after the error
        deadline = time.monotonic() + 2
        while len([e for e in server.events if e.kind == "error"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert server.running
        first_error = next(e for e in server.events if e.kind == "error")
        assert "bug in a student's handler" in first_error.text


def test_max_connections_refuses_the_extra_client(no_leaks):
    with Echo(port=0, max_connections=2) as server:
        held = [connect("127.0.0.1", server.port) for _ in range(2)]
        for sock in held:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        with connect("127.0.0.1", server.port, timeout=2) as extra:
            assert extra.recv(10) == b""
        for sock in held:
            sock.close()


def test_a_silent_client_is_dropped_after_the_connection_timeout(no_leaks):
    with Echo(port=0, connection_timeout=0.3) as server, connect("127.0.0.1", server.port) as sock:
        sock.settimeout(3)
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 2


def test_events_reach_listeners_and_a_broken_listener_is_ignored(no_leaks):
    seen = []

    def broken(event):
        raise ValueError("widget bug")

    server = Echo(port=0)
    server.listeners += [broken, seen.append]
    server.start()
    server.stop()
    assert [e.kind for e in seen] == ["start", "stop"]
