"""A threaded TCP server that behaves inside a Jupyter kernel.

The course's earlier lab built an echo server with one thread per client.
This is the same idea with the lifecycle a notebook needs:

* ``start()`` returns as soon as the socket listens. ``port=0`` asks the
  OS for a free port; ``server.port`` tells you which one you got.
* Re-running the cell that starts a server on the same port *replaces* the
  old server of this kernel (it is stopped and joined first) instead of
  failing with "Address already in use". A port held by another program
  is a clear ``PortInUse`` error. With ``port=0`` give the server a
  ``name``: starting a server replaces the running one of the same name,
  so re-running a cell never leaves an orphan behind.
* ``stop()`` closes the listening socket and every connection and joins
  every thread, within a bounded time. ``with Server(...) as s:`` stops it
  for you, and every server still running is stopped when the kernel exits.
* Threads never ``print`` (the text would land in whatever cell runs at
  that moment); they log, and keep recent events in ``server.events``
  for widgets to show.
* ``running_servers()`` lists what this kernel holds; ``stop_all()`` stops it.

Subclasses override ``handle(conn, address)``: it runs in its own thread
for each connection, with a socket that already has a timeout. A server
that authenticates its clients can also set ``admission``
(``labcrypto.admission``): then each source address gets a fair share of
the door, and a connection turned away is told why in ``busy_reply``'s
words before it is closed (``handshake_busy_reply`` says it in the
handshake's words). Such a server also keeps a stranger from holding the
door shut: when it is full, a newcomer takes the place of a connection
still in its handshake (``_make_room`` says which), and ``wait_at_the_door``
holds back an address whose handshakes keep failing.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import logging
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from . import jsonwire
from .admission import Admission
from .channel import encode_frame
from .errors import LabCryptoError, NoAnswer, NotListening, in_english
from .i18n import N_
from .streams import close_stream
from .untrusted import quote

__all__ = [
    "Event",
    "PortInUse",
    "ThreadedServer",
    "connect",
    "handshake_busy_reply",
    "running_servers",
    "status",
    "stop_all",
]

log = logging.getLogger("labcrypto.server")


class PortInUse(LabCryptoError):
    """The port is taken by another program (not by a server of this kernel)."""


@dataclass(frozen=True)
class Event:
    """Something a server did, for logs and widgets: ``(time, kind, text)``."""

    time: float
    kind: str
    text: str


# The servers this process (this kernel) is running. It is the one piece of
# global state in the package, on purpose: it is what lets a re-run cell find
# and stop the server the previous run started.
_running: dict[int, ThreadedServer] = {}
_running_lock = threading.Lock()
_ids = itertools.count(1)


def running_servers() -> list[ThreadedServer]:
    """Every server of this process that is listening now."""
    with _running_lock:
        return list(_running.values())


def status() -> list[dict[str, object]]:
    """What this kernel holds: one row per running server (for a table or a widget).

    Each row names the server, its address, how many clients are connected,
    its threads, and the ports it has leased from a pool (if it has one).
    """
    rows: list[dict[str, object]] = []
    for server in running_servers():
        pool = getattr(server, "pool", None)
        rows.append(
            {
                "server": server.name,
                "address": f"{server.host}:{server.port}",
                "connected": server.connection_count,
                "threads": len(server.threads()),
                "leased ports": pool.leased() if pool is not None else [],
            }
        )
    return rows


def stop_all(timeout: float = 5.0) -> int:
    """Stop every server of this process; return how many were stopped."""
    servers = running_servers()
    for server in servers:
        server.stop(timeout)
    return len(servers)


atexit.register(stop_all)


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """Open a TCP connection with a timeout and ``TCP_NODELAY``.

    Errors say what to do next: "connection refused" means nothing listens
    on that port (is the server cell running? is the port right?).
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise NotListening(
            N_("nothing is listening on {address}. Is the server cell running, and is this "
               "the port it printed?"),
            address=f"{host}:{port}",
        ) from None
    except TimeoutError:
        raise NoAnswer(
            N_("no answer from {address} within {seconds} s: check the host and port"),
            address=f"{host}:{port}",
            seconds=timeout,
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def handshake_busy_reply(text: str) -> bytes:
    """A plain handshake ``error`` frame with code ``busy``: a turned-away client shows
    "the server is busy" in its own language (``text`` is the English reason)."""
    return encode_frame(jsonwire.encode({"type": "error", "code": "busy", "message": text[:300]}))


class ThreadedServer:
    """Listens on ``(host, port)`` and runs ``handle`` in a thread per connection.

    ``connection_timeout`` bounds every blocking operation on a client's
    socket (a client that goes silent is dropped after that long);
    ``max_connections`` bounds how many clients are served at once (a
    student's runaway loop cannot exhaust the server's threads).
    """

    #: How often the accept loop wakes up to check whether it should stop.
    poll_interval = 0.1
    #: How long a connection we turned away may still read our answer.
    linger_seconds = 1.0
    #: At most this many turned-away connections wait to be closed at once.
    max_lingering = 256
    #: With ``admission``: a connection still in its handshake after this many seconds
    #: may be closed to make room for a newcomer when the server is full. A real
    #: client's handshake takes milliseconds; a stranger's silent one, the whole timeout.
    handshake_grace = 1.0
    #: At most this many connections closed to make room may still be ending at once
    #: (so threads stay under ``max_connections`` plus this). Only half of them may be
    #: closed for their age: the rest stay for a newcomer from a smaller address.
    max_making_room = 32

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str | None = None,
        connection_timeout: float = 30.0,
        max_connections: int = 200,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.named = name is not None
        self.name = name or f"{type(self).__name__}-{next(_ids)}"
        self.connection_timeout = connection_timeout
        self.max_connections = max_connections
        self.events: deque[Event] = deque(maxlen=1000)
        self.listeners: list[Callable[[Event], None]] = []
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._conn_ids = itertools.count(1)
        #: Per-source limits on handshakes (None: every connection is let in).
        self.admission: Admission | None = None
        # Admitted, no verdict yet: the source address and when the connection came.
        self._in_handshake: dict[socket.socket, tuple[str, float]] = {}
        self._made_room: set[socket.socket] = set()  # closed by _make_room, still ending
        self._lingering: deque[tuple[float, socket.socket]] = deque()
        self._turned_away = 0
        self._rooms_made = 0

    # --- lifecycle ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port we listen on (the real one, also when you asked for port 0)."""
        if self._listener is None:
            raise RuntimeError("the server is not running: call start() first")
        return self._listener.getsockname()[1]

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to give to clients."""
        return self.host, self.port

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._listener is not None and not self._stopping.is_set()

    def start(self) -> ThreadedServer:
        """Bind, listen, start the accept thread; return once clients can connect."""
        if self.running:
            return self
        self._replace_previous_server()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.requested_port))
        except OSError as exc:
            listener.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    N_("port {port} on {host} is used by another program (not by a server of "
                       "this notebook). Choose another port, or port=0 for a free one."),
                    port=self.requested_port,
                    host=self.host,
                ) from None
            raise
        listener.listen(64)
        listener.settimeout(self.poll_interval)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{self.name}-accept", daemon=True
        )
        with _running_lock:
            _running[id(self)] = self
        self._accept_thread.start()
        self.emit("start", f"{self.name} listening on {self.host}:{self.port}")
        return self

    def _replace_previous_server(self) -> None:
        """Stop a server of this process on our port, or with our name: the re-run case."""
        for other in running_servers():
            if other is self or not other.running:
                continue
            same_port = self.requested_port != 0 and other.port == self.requested_port
            same_name = self.named and other.named and other.name == self.name
            if same_port or same_name:
                other.stop()
                self.emit("replace", f"stopped the previous {other.name} (re-run cell)")

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection; join every thread.

        Returns within about ``timeout`` seconds even if a handler is stuck;
        such a thread is named in a warning in the log (it is a daemon
        thread, so it cannot keep the kernel from exiting).
        """
        if self._listener is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_lingering(everything=True)
        self.on_stop()
        with self._lock:
            connections = list(self._connections.items())
        # Shut down (do not close) each connection: that wakes a handler blocked in
        # recv, and its own thread closes the socket. Closing it from here could
        # free the file descriptor number while the handler is still using it.
        for conn, _ in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for conn, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s: thread %s did not stop in time", self.name, thread.name)
                close_stream(conn)
        with _running_lock:
            _running.pop(id(self), None)
        self.emit("stop", f"{self.name} stopped")
        self._listener = None

    def on_stop(self) -> None:
        """Hook for subclasses: release what they hold (ports, files) when stopping."""

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- connections --------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """How many clients are connected right now."""
        with self._lock:
            return len(self._connections)

    def threads(self) -> list[threading.Thread]:
        """The threads this server runs now (accept loop and connections)."""
        with self._lock:
            threads = list(self._connections.values())
        if self._accept_thread is not None and self._accept_thread.is_alive():
            threads.insert(0, self._accept_thread)
        return threads

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            self._close_lingering()
            try:
                conn, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                time.sleep(self.poll_interval)  # e.g. out of file descriptors: back off
                continue
            self._start_connection(conn, address)

    def _start_connection(self, conn: socket.socket, address: tuple[str, int]) -> None:
        conn.settimeout(self.connection_timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.admission is not None:
            refusal = self.admission.admit(address[0])
            if refusal is not None:
                self._turn_away(conn, address, refusal)
                return
        # Decide under the lock, tell (emit) after it: a listener may ask connection_count.
        with self._lock:
            full = len(self._connections) - len(self._made_room) >= self.max_connections
            closed = self._make_room(address[0]) if full else None
            if not full or closed is not None:
                if self.admission is not None:
                    self._in_handshake[conn] = (address[0], time.monotonic())
                thread = threading.Thread(
                    target=self._run_handler,
                    args=(conn, address),
                    name=f"{self.name}-conn-{next(self._conn_ids)}",
                    daemon=True,
                )
                self._connections[conn] = thread
        if full and closed is None:
            if self.admission is not None:
                self.admission.finished(address[0], None)
            self._turn_away(conn, address, f"server full: {self.max_connections} clients connected")
            return
        if closed is not None:
            self._tell_room_made(*closed)
        thread.start()

    def _run_handler(self, conn: socket.socket, address: tuple[str, int]) -> None:
        try:
            self.handle(conn, address)
        except Exception as exc:  # a handler bug must not kill the server
            if not self._stopping.is_set():
                why = quote(in_english(exc), 200)
                self.emit("error", f"{address[0]}:{address[1]}: {type(exc).__name__}: {why}")
                log.debug("handler error", exc_info=True)
        finally:
            self.handshake_finished(conn, None)
            close_stream(conn)
            with self._lock:
                self._connections.pop(conn, None)
                self._made_room.discard(conn)

    def handshake_finished(self, conn: socket.socket, ok: bool | None) -> None:
        """Tell ``admission`` how the handshake on ``conn`` ended (later calls do nothing).

        ``ok``: True (authenticated: it no longer counts against its source),
        False (failed: counts as a failure of its source), None (no verdict).
        """
        with self._lock:
            source, _ = self._in_handshake.pop(conn, (None, 0.0))
        if source is not None and self.admission is not None:
            self.admission.finished(source, ok)

    def _make_room(self, newcomer: str) -> tuple[str, float] | None:
        """Close a connection still in its handshake to let a newcomer in (lock held).

        Without this, a stranger holds the door shut with connections that
        never finish their handshake: 200 silent sockets from seven
        addresses (32 each, the per-source cap) filled the chat room, and
        every student was turned away until the handshake timeout, again
        and again. The one closed (``_victim``) is shut down (its thread
        ends the handshake and cleans up) and counts as a failed handshake
        of its source. Returns its source and seconds in the handshake;
        None if no connection may be closed, or too many closed ones are
        still ending (``max_making_room``; half of it for closing by age:
        a flood replacing its own connections, which age together, must not
        use up what a newcomer from elsewhere needs).
        """
        if self.admission is None or len(self._made_room) >= self.max_making_room:
            return None
        conn, by_age = self._victim(newcomer)
        if conn is None or (by_age and len(self._made_room) >= self.max_making_room // 2):
            return None
        source, since = self._in_handshake.pop(conn)
        self._made_room.add(conn)
        self.admission.finished(source, False)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)  # wakes its handler; that thread closes it
        return source, time.monotonic() - since

    def _victim(self, newcomer: str) -> tuple[socket.socket | None, bool]:
        """The connection a newcomer from address ``newcomer`` may replace (lock held),
        and whether it is chosen for its age.

        First choice: the oldest connection of the address with the most
        connections in their handshake, if that address holds more of them
        than the newcomer's would. However fast a flood from a few
        addresses reconnects, anyone else gets in at once (with age alone,
        a flood of 8,000 connections a second from 12 addresses kept the
        room full of young ones and turned 9 students in 10 away). Else the
        oldest connection of all, once it has had ``handshake_grace``
        seconds: a real client's handshake takes milliseconds, and one of a
        crowd of equals is never cut short.
        """
        if not self._in_handshake:
            return None, False
        held = Counter(source for source, _ in self._in_handshake.values())
        largest, count = held.most_common(1)[0]
        if largest != newcomer and count > held[newcomer] + 1:
            # Oldest first: the dict keeps the order in which connections came.
            oldest = (c for c, (source, _) in self._in_handshake.items() if source == largest)
            return next(oldest), False
        conn, (_, since) = next(iter(self._in_handshake.items()))
        return (conn if time.monotonic() - since >= self.handshake_grace else None), True

    def wait_at_the_door(self, conn: socket.socket, source: str) -> bool:
        """Wait the pause ``admission`` asks of ``source`` (its handshakes keep failing).

        True if ``conn`` should not be served after all: the server is
        stopping, or it closed ``conn`` meanwhile to make room (a pause
        must not keep a closed connection's thread, and its place, waiting).
        """
        pause = self.admission.pause_for(source) if self.admission is not None else 0.0
        deadline = time.monotonic() + pause
        while (left := deadline - time.monotonic()) > 0:  # ends at the deadline
            if self._stopping.wait(min(left, self.poll_interval)):
                return True
            with self._lock:
                if conn in self._made_room:
                    return True
        return False

    def _tell_room_made(self, source: str, waited: float) -> None:
        """Log that ``_make_room`` closed a connection (the first, then every 100th)."""
        self._rooms_made += 1
        if self._rooms_made == 1 or self._rooms_made % 100 == 0:
            self.emit(
                "busy",
                f"server full: closed a connection from {quote(source)} after {waited:.1f} s "
                f"in its handshake, to let a newcomer in ({self._rooms_made} so far)",
            )

    # --- turning connections away ---------------------------------------------------

    def busy_reply(self, text: str) -> bytes:
        """The bytes that tell a turned-away client why (override; default: none)."""
        return b""

    def _turn_away(self, conn: socket.socket, address: tuple[str, int], text: str) -> None:
        """Answer ``text`` in the protocol's words, then close ``conn`` without a reset.

        The answer is sent and our side shut for writing at once; the socket
        is closed a moment later by the accept loop, after reading what the
        client sent meanwhile (closing with unread data would send a reset,
        and the client might never see the answer).
        """
        reply = self.busy_reply(text)
        try:
            conn.setblocking(False)
            if reply:
                conn.send(reply)  # a few hundred bytes: the socket buffer takes them
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            close_stream(conn)
            return
        self._lingering.append((time.monotonic() + self.linger_seconds, conn))
        while len(self._lingering) > self.max_lingering:
            close_stream(self._lingering.popleft()[1])
        self._turned_away += 1
        if self._turned_away == 1 or self._turned_away % 100 == 0:
            self.emit(
                "busy",
                f"{quote(address[0])} turned away: {text} ({self._turned_away} so far)",
            )

    def _close_lingering(self, everything: bool = False) -> None:
        """Close the turned-away connections whose time is up (accept thread only)."""
        now = time.monotonic()
        while self._lingering and (everything or self._lingering[0][0] <= now):
            _, conn = self._lingering.popleft()
            with contextlib.suppress(OSError):
                for _ in range(16):  # drop what it sent, so close() sends no reset
                    if not conn.recv(65536):
                        break
            close_stream(conn)

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        """Serve one connection. Override this; the default just closes it."""

    # --- events -------------------------------------------------------------------

    def emit(self, kind: str, text: str) -> None:
        """Record an event: logged, kept in ``events``, passed to each listener."""
        event = Event(time.time(), kind, text)
        self.events.append(event)
        log.info("%s: %s", self.name, text)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken widget must not break the server
                log.debug("event listener failed", exc_info=True)

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.name} {where}, {self.connection_count} connected>"
