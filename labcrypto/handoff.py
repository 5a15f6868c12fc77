"""The two-port handoff (task 4): handshake on one port, conversation on another.

Notebook 04_two_ports tells the story. The server listens on one well-known
*handshake port*. After a client finishes the handshake there, the server:

1. leases a port from its ``PortPool`` — the lease is a socket that is
   already bound and listening, so no other program can grab the port
   between "pick a port" and "listen on it" (course mistake 10);
2. sends, as the FIRST encrypted message of the session::

       {"type": "port", "port": 9107, "ticket": "<64 hex digits>", "expires_in": 10}

   (an exhausted pool sends ``{"type": "busy", "text": ...}`` instead and
   closes: the client raises ``PoolExhausted``, it never hangs);
3. waits, for at most ``expires_in`` seconds, for ONE connection on that
   port whose first frame is the encrypted message ``{"type": "ticket",
   "ticket": ...}`` with the same ticket.

Why the ticket is safe: the data-port connection does not start a new
handshake. It *continues the session*: the client's first frame there is
sealed as the session's next client-to-server message (AES-GCM with the
next counter nonce), so only the client that did the handshake can make a
frame that even decrypts. The ticket inside adds a check that also works
in toy mode (a Caesar cipher cannot tell a stranger from the client), but
only against a stranger who did not see the offer: whoever listens reads
toy-mode traffic, the ticket included, at a glance.
Tickets are compared with ``hmac.compare_digest`` (no timing hints).

A stranger who connects first is dropped and does not use up the session:
its frame is tried on a *copy* of the receive counter
(``SecureChannel.open_candidate``), and the server keeps waiting for the
real client until the ticket expires. A crowd of strangers cannot keep
the real client out either: each connection must send its one frame
within ``CANDIDATE_DEADLINE`` seconds (the real client sends it at once),
and when ``MAX_CANDIDATES`` connections wait, the oldest silent one makes
room for the newcomer rather than the newcomer being refused. The pool
hands out its ports in random order, so nobody can wait at the next one.
Once the real client is in, the port accepts nobody else (a replayed
ticket finds the door shut). When the ticket expires or the conversation
ends, the port goes back to the pool, exactly once (``Lease.release``).

After a successful handoff the server speaks first (the chat server sends
its welcome), and only then does the client close its handshake
connection; until then the server watches that connection, so a client
that gives up early frees the port at once.

This module has both halves: ``offer_data_port`` for the server and
``present_ticket`` for the client. ``labcrypto.client.open_channel`` uses
the client half for you.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import jsonwire
from .channel import FrameDecoder, SecureChannel
from .errors import HandoffFailed, LabCryptoError, PoolExhausted, ProtocolError, in_english
from .i18n import N_
from .ports import EXHAUSTED, Lease, PairPool, PortPool
from .server import connect
from .streams import close_stream
from .untrusted import quote, said_by_code

__all__ = [
    "CANDIDATE_DEADLINE",
    "DEFAULT_TICKET_TIMEOUT",
    "MAX_CANDIDATES",
    "TICKET_BYTES",
    "busy_message",
    "offer_data_port",
    "port_message",
    "present_ticket",
    "ticket_message",
]

#: A ticket is 32 random bytes from ``secrets`` (64 hex digits).
TICKET_BYTES = 32
#: How long the client has to come to the data port.
DEFAULT_TICKET_TIMEOUT = 10.0
#: A ticket frame is about 120 bytes; a candidate that sends more is not our client.
_MAX_TICKET_FRAME = 1024
#: At most this many connections wait on a data port at once (the oldest silent one
#: is dropped to make room for a newcomer).
MAX_CANDIDATES = 16
#: Connections the kernel may queue on a data port before we accept them.
_BACKLOG = 128
#: Seconds a connection on a data port has to send its whole first frame.
CANDIDATE_DEADLINE = 2.0
#: How often the wait wakes up to check the deadline and the server's stop flag.
_POLL_SECONDS = 0.1


# --- the messages ----------------------------------------------------------------


def port_message(port: int, ticket: str, expires_in: float) -> bytes:
    """The server's first encrypted message: where to go, and the ticket to show there."""
    return jsonwire.encode(
        {"type": "port", "port": port, "ticket": ticket, "expires_in": expires_in}
    )


#: Why a server turns a client away with ``busy``, by code: what the client shows, in
#: its reader's language, filled in with the message's ``params``. A code the client
#: does not know (or a ``busy`` without one) shows the server's ``text``, quoted.
BUSY_REASONS = {
    "no free port": N_(
        "the server is busy: no free port in {range} ({size} ports: {leased} leased, {held} "
        "held by other programs). Wait a moment and connect again."
    ),
    "sessions": N_(
        "the server is busy for your key: it already has {limit} conversations open there "
        "(the most one key may hold): close one first, then connect again."
    ),
}
BUSY_UNKNOWN = N_("the server is busy ({words}). Wait a moment and connect again.")


def busy_message(text: str, code: str = "", **params: object) -> bytes:
    """The server's first encrypted message when it turns the client away.

    ``text`` is the English reason; ``code`` (a key of ``BUSY_REASONS``) and its
    ``params`` let the client say it in its own language (``busy_error``).
    """
    message: dict[str, object] = {"type": "busy", "text": text}
    if code:
        message["code"], message["params"] = code, params
    return jsonwire.encode(message)


def busy_error(message: dict[str, object]) -> PoolExhausted:
    """The ``PoolExhausted`` a client raises for the server's ``busy`` message, said
    from its code; the server's own text (quoted) only for a code it does not know."""
    said = said_by_code(BUSY_REASONS, message.get("code"), message.get("params"), limit=80)
    if said is not None:
        template, values = said
        return PoolExhausted(template, **values)
    text = message.get("text")
    return PoolExhausted(BUSY_UNKNOWN, words=quote(text if isinstance(text, str) else "", 300))


def ticket_message(ticket: str) -> bytes:
    """The client's first encrypted message on the data port."""
    return jsonwire.encode({"type": "ticket", "ticket": ticket})


def _ticket_checker(ticket: str) -> Callable[[bytes], bool]:
    """A function that says whether a decrypted message carries exactly ``ticket``."""
    expected = ticket.encode("ascii")

    def check(message: bytes) -> bool:
        try:
            fields = jsonwire.decode(message, _MAX_TICKET_FRAME)
        except ProtocolError:
            return False
        shown = fields.get("ticket")
        if fields.get("type") != "ticket" or not isinstance(shown, str):
            return False
        return hmac.compare_digest(shown.encode("utf-8", "replace"), expected)

    return check


# --- the server's half -------------------------------------------------------------


def offer_data_port(
    channel: SecureChannel,
    control: socket.socket,
    pool: PortPool | PairPool,
    *,
    ticket_timeout: float = DEFAULT_TICKET_TIMEOUT,
    lease_wait: float = 0.0,
    stopping: threading.Event | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> tuple[Lease, socket.socket]:
    """Move a freshly opened ``channel`` from ``control`` to a port of ``pool``.

    Returns ``(lease, data_socket)``: the channel now talks over
    ``data_socket``, and the caller must ``lease.release()`` when the
    conversation ends (a ``with lease:`` block does it). ``control`` is left
    open; close it once you have sent your first message on the data port.

    Raises ``PoolExhausted`` after telling the client "busy", or
    ``HandoffFailed`` when the ticket expired, the client left, or the
    server is stopping (``stopping`` set); the port is back in the pool then.
    ``on_event(kind, text)`` hears about strangers and the port used.
    """
    emit = on_event or (lambda kind, text: None)
    try:
        lease = pool.lease(timeout=lease_wait)
    except PoolExhausted as exc:
        with contextlib.suppress(OSError, LabCryptoError):
            text = f"server busy: {in_english(exc)}"
            if exc.template == EXHAUSTED:
                channel.send(busy_message(text, "no free port", **exc.fields))
            else:
                channel.send(busy_message(text))
        raise
    try:
        # A deep backlog: a burst of strangers must not fill it, or the real
        # client's connection would wait for a retransmission (a second or more).
        lease.socket.listen(_BACKLOG)
        ticket = secrets.token_hex(TICKET_BYTES)
        channel.send(port_message(lease.port, ticket, ticket_timeout))
        of = f" of {pool.size}" if pool.size is not None else ""
        emit("pool", f"port {lease.port} leased ({len(pool.leased())}{of} in use)")
        deadline = time.monotonic() + ticket_timeout
        data = _wait_for_ticket(channel, lease, ticket, control, deadline, stopping, emit)
    except BaseException:
        lease.release()
        emit("pool", f"port {lease.port} returned to the pool")
        raise
    channel.rebind(data)
    _refuse_further_connections(lease.socket)
    return lease, data


def _refuse_further_connections(listener: socket.socket) -> None:
    """Stop listening (a replayed ticket finds the door shut) but keep the port leased.

    On Linux, ``shutdown`` on a listening socket stops it listening while it
    stays bound; elsewhere late comers wait in the backlog until the lease
    is released.
    """
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)


@dataclass
class _Candidate:
    """A connection on the data port that has not shown the ticket yet."""

    decoder: FrameDecoder
    arrived: float  # time.monotonic() when we accepted it

    @property
    def late(self) -> bool:
        return time.monotonic() - self.arrived > CANDIDATE_DEADLINE


def _wait_for_ticket(
    channel: SecureChannel,
    lease: Lease,
    ticket: str,
    control: socket.socket,
    deadline: float,
    stopping: threading.Event | None,
    emit: Callable[[str, str], None],
) -> socket.socket:
    """Accept connections on the lease until one shows the ticket; return that socket.

    One thread watches everything with ``selectors``: the listening socket,
    each candidate connection (a stranger who connects and says nothing
    cannot block the real client: it is dropped after
    ``CANDIDATE_DEADLINE``, or earlier to make room), and the handshake
    connection (if the client hangs up there, it is not coming).
    """
    check = _ticket_checker(ticket)
    candidates: dict[socket.socket, _Candidate] = {}  # oldest first

    def drop(sock: socket.socket, why: str) -> None:
        selector.unregister(sock)
        del candidates[sock]
        close_stream(sock)
        emit("stranger", f"port {lease.port}: dropped a connection {why}")

    lease.socket.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(lease.socket, selectors.EVENT_READ)
    selector.register(control, selectors.EVENT_READ)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HandoffFailed(
                    N_("nobody came to port {port} with the ticket in time; port released"),
                    port=lease.port,
                )
            if stopping is not None and stopping.is_set():
                raise HandoffFailed(N_("the server is stopping"))
            for sock in [sock for sock, waiting in candidates.items() if waiting.late]:
                drop(sock, f"silent for {CANDIDATE_DEADLINE:.0f} s")
            for key, _ in selector.select(min(remaining, _POLL_SECONDS)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is lease.socket:
                    if len(candidates) >= MAX_CANDIDATES:
                        drop(_oldest_silent(candidates), "to make room for a newer one")
                    _accept_candidate(sock, selector, candidates)
                elif sock is control:
                    raise HandoffFailed(N_("the client hung up before coming to the data port"))
                elif sock in candidates:
                    verdict = _read_candidate(sock, candidates[sock].decoder, channel, check)
                    if verdict == "ticket":
                        selector.unregister(sock)
                        del candidates[sock]
                        sock.setblocking(True)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        return sock
                    if verdict == "drop":
                        drop(sock, "without the ticket")
    finally:
        for sock in candidates:
            close_stream(sock)
        selector.close()


def _oldest_silent(candidates: dict[socket.socket, _Candidate]) -> socket.socket:
    """The candidate to drop for a newcomer: the oldest that has sent nothing at all.

    (If every one has sent something, the oldest: it had its chance.)
    """
    for sock, waiting in candidates.items():
        if waiting.decoder.pending:
            continue
        try:
            sock.recv(1, socket.MSG_PEEK)  # bytes waiting: maybe the real client's ticket
        except (BlockingIOError, InterruptedError):
            return sock  # nothing sent yet
        except OSError:
            return sock
    return next(iter(candidates))


def _accept_candidate(
    listener: socket.socket,
    selector: selectors.BaseSelector,
    candidates: dict[socket.socket, _Candidate],
) -> None:
    """Accept one connection on the data port and start watching it."""
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, TimeoutError, InterruptedError):
        return
    conn.setblocking(False)
    candidates[conn] = _Candidate(FrameDecoder(_MAX_TICKET_FRAME), time.monotonic())
    selector.register(conn, selectors.EVENT_READ)


def _read_candidate(
    conn: socket.socket,
    decoder: FrameDecoder,
    channel: SecureChannel,
    check: Callable[[bytes], bool],
) -> str:
    """Read what ``conn`` sent and judge it: ``"ticket"``, ``"wait"`` or ``"drop"``.

    ``"ticket"``: its one frame is the ticket, sealed as the session's next
    message (the channel has taken it). ``"wait"``: part of a frame so far.
    ``"drop"``: it hung up, sent too much, or sent anything else.
    """
    try:
        data = conn.recv(4096)
        frames = decoder.feed(data) if data else None
    except (BlockingIOError, InterruptedError):
        return "wait"
    except (OSError, ProtocolError):
        return "drop"
    if frames == []:
        return "wait"
    if frames is None or len(frames) != 1 or decoder.pending:
        return "drop"  # the real client sends its ticket, then waits for the server
    return "ticket" if channel.open_candidate(frames[0], check) is not None else "drop"


# --- the client's half ----------------------------------------------------------


def present_ticket(
    channel: SecureChannel, host: str, port: int, ticket: str, timeout: float = 5.0
) -> socket.socket:
    """Connect to the data port, move ``channel`` there and show the ticket.

    Returns the new socket (the channel already uses it). The server's
    answer is the next message on the channel; if the server did not accept
    the ticket it closes the connection, and that ``recv`` fails.
    """
    try:
        data = connect(host, port, timeout)
    except ConnectionRefusedError:
        raise HandoffFailed(
            N_("the server sent us to port {port}, but nothing listens there: the ticket may "
               "have expired (connect again), or a firewall blocks the data ports"),
            port=port,
        ) from None
    try:
        channel.rebind(data)
        channel.send(ticket_message(ticket))
    except BaseException:
        data.close()
        raise
    return data
