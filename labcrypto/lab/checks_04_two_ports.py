"""The checks of notebook 04_two_ports: the client's half of the handoff, and a port pool.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``). The handoff
check runs the student's code against a real chat room with a port pool on
127.0.0.1; the pool check holds one port of the range busy and then lets 16
threads lease and release at once.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import secrets
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonwire
from ..allowlist import Allowlist
from ..channel import SecureChannel, encode_frame
from ..chat import ChatServer
from ..errors import LabCryptoError, PoolExhausted
from ..groups import FFDHE2048
from ..i18n import N_, Messages
from ..keys import KeyPair, PublicKey, generate
from ..ports import PortPool
from ..server import connect
from ..streams import close_stream
from .feedback import (
    HAMMER_WAIT,
    HANDOFF_WAIT,
    HIDDEN_WAIT,
    WAIT,
    CheckFailed,
    expect,
    explained_in,
    fail,
    how_it_ended,
    not_written,
    passed,
    refused_as,
)
from .harness import (
    STOP_GRACE,
    Lockstep,
    Outcome,
    call_bounded,
    in_background,
    plainly_bindable,
    range_for_a_pool,
    returned_within,
    run_bounded,
    stops_paused,
    tcp_pair,
    wait_for_event,
)

__all__ = [
    "check_follow_handoff",
    "check_offer_port",
    "check_port_pool",
    "hidden_follow_handoff",
    "hidden_offer_port",
    "hidden_port_pool",
]

# --- the client's half of the handoff ------------------------------------------------

HANDOFF = Messages({
    "stuck": N_(
        "follow_handoff did not return within {wait:.0f} s. Every recv needs a timeout "
        "(channel.recv(timeout=5)); after sending the ticket, the next message on "
        "the channel is the server's welcome."
    ),
    "raised": N_("follow_handoff raised {error}.\n{hint}"),
    "stranger": N_(
        "The server dropped your data-port connection as a stranger: the ticket "
        "must travel inside the encrypted channel — channel.rebind(new_socket), "
        "then channel.send(ticket message) — not as plain bytes on the socket."
    ),
    "refused": N_(
        "Nothing listened where you connected: use the port from the server's "
        "message (course mistake 10: a client that ignores the port it was sent)."
    ),
    "handshake port": N_(
        "Your client connected to the handshake port ({port}) again, not to the port the "
        "server offered: there the server waits for a new handshake, reads your ticket as a "
        "broken hello and drops it, and your channel cannot open what comes back (course "
        "mistake 10: a client that ignores the port it was sent). Connect to the offer's port."
    ),
    "ticket first": N_(
        "Your client sent the ticket before channel.rebind(new_socket): it went out on the "
        "handshake connection, where nobody waits for it, while the data port waited for a "
        "ticket that never came. Move the channel first (rebind), then send the ticket."
    ),
    "bytes": N_("follow_handoff returned bytes; return the decoded message (a dict)."),
    "not welcome": N_(
        "follow_handoff returned {shown}; expected the first message on the data "
        "port, the room's welcome (a dict with type 'welcome').{hint}"
    ),
    "of type": N_("a message of type {type!r}"),
    "the offer": N_(" That is the server's offer itself: connect to its port and show its ticket."),
    "as text": N_(" That is the message as text: decode it with json.loads."),
    "not moved": N_(
        "The channel still uses the handshake socket: call channel.rebind(new_socket)."
    ),
    "no join": N_(
        "Your client got the welcome, yet within {wait:.0f} s the room did not log it joining "
        "on a data port of its pool (its events: {joined}). Did it connect to the port it "
        "was offered?"
    ),
    "second": N_(
        "The first handoff worked. A second session was offered a different port and a new "
        "ticket, and follow_handoff {got}.\n{hint}"
    ),
    "reused ticket": N_(
        "The server dropped the data connection as a stranger: it showed a reused ticket. "
        "A ticket is good for one session only; read the ticket from each new offer."
    ),
    "old port": N_(
        "Nothing answered where you connected: it looks like the port of the first session "
        "(course mistake 10: a client that ignores the port it was sent). Use the port "
        "from each offer."
    ),
    "remembers": N_(
        "Read the port and the ticket from each offer; remember nothing between calls."
    ),
    "busy": N_(
        "With every port of the pool in use the server answers "
        '{{"type": "busy", "text": ...}} instead of a port; follow_handoff '
        "{got}. Raise PoolExhausted(text) then, so the caller can wait and retry."
    ),
    "passed": N_(
        "follow_handoff reads the port and ticket, moves the channel to the data port, shows "
        "the ticket there and gets the welcome; a busy pool raises PoolExhausted."
    ),
})


def _handoff_room(pool_size: int) -> tuple[ChatServer, PortPool, KeyPair, KeyPair]:
    """A reference chat room with a pool, on 127.0.0.1: ``(room, pool, alice_key, server_key)``."""
    tmp = tempfile.mkdtemp(prefix="labcrypto-check-")
    server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
    allowlist = Allowlist(Path(tmp) / "allowlist.csv")
    allowlist.add("alice", alice.public_key)
    pool = PortPool.reserve(pool_size)  # held from now on: nobody else can take them
    room = ChatServer(
        server_key, allowlist, pool=pool, ticket_timeout=3.0, name="check-handoff-room",
        connection_timeout=5.0,
    )  # fmt: skip
    room.start()
    return room, pool, alice, server_key


def _handshake_with(
    room: Any, key: KeyPair, server_key: PublicKey, timeout: float = WAIT
) -> tuple[SecureChannel, socket.socket]:
    """A secure channel to ``room``'s handshake port, as the owner of ``key``."""
    host, port = room.address
    control = connect(host, port, timeout=timeout)
    try:
        channel = SecureChannel.client(
            control, key, expected_server_key=server_key, timeout=timeout
        )
    except BaseException:
        control.close()
        raise
    return channel, control


def _one_handoff(
    follow_handoff: Callable[[Any, str], Any], room: Any, alice: KeyPair, server_key: KeyPair
) -> Outcome:
    """Handshake with ``room`` as alice, run the student's ``follow_handoff`` (bounded), close."""
    channel, control = _handshake_with(room, alice, server_key.public_key)
    try:
        return run_bounded(follow_handoff, channel, "127.0.0.1", timeout=HANDOFF_WAIT)
    finally:
        channel.close()
        control.close()


@dataclass
class _Moves:
    """What the student's code did with the channel: its ``send`` and ``rebind`` calls in
    order, and the port of the socket each ``rebind`` got."""

    calls: list[str] = field(default_factory=list)
    rebound_to: list[int] = field(default_factory=list)

    def watch(self, channel: SecureChannel) -> None:
        """Record ``channel``'s ``send`` and ``rebind`` calls (the channel stays itself)."""
        send, rebind = channel.send, channel.rebind

        def recorded_send(*args: Any, **kwargs: Any) -> None:
            self.calls.append("send")
            send(*args, **kwargs)

        def recorded_rebind(stream: Any) -> None:
            self.calls.append("rebind")
            with contextlib.suppress(OSError, AttributeError, IndexError):
                self.rebound_to.append(stream.getpeername()[1])
            rebind(stream)

        channel.send = recorded_send  # type: ignore[method-assign]
        channel.rebind = recorded_rebind  # type: ignore[method-assign]

    def ticket_first(self) -> bool:
        """Was the ticket sent before the channel moved (or did it never move)?"""
        return "send" in self.calls and self.calls[: self.calls.index("send")].count(
            "rebind"
        ) == 0


def _raised_hint(room: Any, error: BaseException, moves: _Moves | None = None) -> str:
    handshake_port = room.address[1]
    if moves is not None and handshake_port in moves.rebound_to:
        return HANDOFF["handshake port"].format(port=handshake_port)
    if moves is not None and moves.ticket_first():
        return HANDOFF["ticket first"]
    if wait_for_event(room, "stranger"):
        return HANDOFF["stranger"]
    if isinstance(error, ConnectionRefusedError):
        return HANDOFF["refused"]
    return ""


def _check_welcome(outcome: Outcome, room: Any, moves: _Moves | None = None) -> None:
    """The first handoff ended with the room's welcome on the data port."""
    status, value = outcome
    if outcome.raised(NotImplementedError):
        raise not_written("follow_handoff")
    if status == "stuck":
        raise fail(HANDOFF["stuck"], wait=HANDOFF_WAIT)
    if status == "error":
        hint = _raised_hint(room, value, moves)
        raise fail(HANDOFF["raised"], error=refused_as(value), hint=hint)
    if isinstance(value, bytes | bytearray):
        raise fail(HANDOFF["bytes"])
    if not isinstance(value, dict) or value.get("type") != "welcome":
        if isinstance(value, dict):
            shown = HANDOFF["of type"].format(type=value.get("type"))
            hint = HANDOFF["the offer"] if value.get("type") == "port" else ""
        else:
            shown = repr(value)[:60]
            hint = HANDOFF["as text"] if isinstance(value, str) and "welcome" in value else ""
        raise fail(HANDOFF["not welcome"], shown=shown, hint=hint)


def _joined_on(pool: PortPool) -> Callable[[str], bool]:
    """Does a "join" event's text name a port of ``pool`` ("… on port 41237")?"""

    def on_a_data_port(text: str) -> bool:
        return any(pool.first <= int(p) <= pool.last for p in re.findall(r"port (\d+)", text))

    return on_a_data_port


def _first_handoff(follow_handoff: Callable[..., Any], room: Any, pool: PortPool,
                   alice: KeyPair, server_key: KeyPair) -> list[str]:  # fmt: skip
    """The first session: welcome, data port, join seen. The room's join events."""
    channel, control = _handshake_with(room, alice, server_key.public_key)
    moves = _Moves()
    moves.watch(channel)
    try:
        outcome = run_bounded(follow_handoff, channel, "127.0.0.1", timeout=HANDOFF_WAIT)
        _check_welcome(outcome, room, moves)
        if channel.stream is control:
            raise fail(HANDOFF["not moved"])
        # The room logs the join just after it queues the welcome, so a client that got
        # the welcome sees its join logged at once; the wait is for a busy machine only.
        on_a_data_port = wait_for_event(room, "join", HANDOFF_WAIT, where=_joined_on(pool))
        joined = [e.text for e in list(room.events) if e.kind == "join"]
        if not on_a_data_port:
            raise fail(HANDOFF["no join"], wait=HANDOFF_WAIT, joined=joined)
        return joined
    finally:
        channel.close()
        control.close()


def _second_handoff(follow_handoff: Callable[..., Any], room: Any, pool: PortPool,
                    alice: KeyPair, server_key: KeyPair, joined: list[str]) -> None:  # fmt: skip
    """A second session on a *different* port with a new ticket: nothing may be remembered."""
    used = {int(m) for text in joined for m in re.findall(r"port (\d+)", text)}
    for _ in range(40):  # the first session's port comes back when its conversation ends
        if not pool.leased():
            break
        time.sleep(0.05)
    held = [pool.lease(timeout=WAIT) for _ in range(pool.size)]
    keep = [lease for lease in held if lease.port in used] or held[:1]
    for lease in held:
        if lease not in keep:
            lease.release()  # the only free port now is one the first session did not use
    try:
        outcome = _one_handoff(follow_handoff, room, alice, server_key)
    finally:
        for lease in keep:
            lease.release()
    status, value = outcome
    if status == "ok" and isinstance(value, dict) and value.get("type") == "welcome":
        return
    if wait_for_event(room, "stranger", 0.5):
        hint = HANDOFF["reused ticket"]
    elif outcome.raised(ConnectionRefusedError, TimeoutError):
        hint = HANDOFF["old port"]
    else:
        hint = HANDOFF["remembers"]
    raise fail(HANDOFF["second"], got=how_it_ended(*outcome, width=60), hint=hint)


def _busy_handoff(follow_handoff: Callable[..., Any], room: Any, pool: PortPool,
                  alice: KeyPair, server_key: KeyPair) -> None:  # fmt: skip
    """An exhausted pool: the offer is "busy", and the client must say so, not hang."""
    held = [pool.lease(timeout=WAIT) for _ in range(pool.size)]  # ours come back soon
    try:
        outcome = _one_handoff(follow_handoff, room, alice, server_key)
    finally:
        for lease in held:
            lease.release()
    if not outcome.raised(PoolExhausted):
        raise fail(HANDOFF["busy"], got=how_it_ended(*outcome, width=80))


@explained_in("04_two_ports", N_("3 · Exercise: the client's half of the handoff"))
def check_follow_handoff(follow_handoff: Callable[[Any, str], Any]) -> None:
    """``follow_handoff(channel, host)`` must read the port offer, move, show the ticket."""
    room, pool, alice, server_key = _handoff_room(2)
    try:
        joined = _first_handoff(follow_handoff, room, pool, alice, server_key)
        _second_handoff(follow_handoff, room, pool, alice, server_key, joined)
        _busy_handoff(follow_handoff, room, pool, alice, server_key)
    finally:
        room.stop()
        pool.close()
    passed(HANDOFF["passed"])


@check_follow_handoff.hidden
def hidden_follow_handoff(
    follow_handoff: Callable[..., Any], room: Any, key: Any, server_key: Any
) -> None:
    """A handoff into the notebook's own room, as another student."""
    channel, control = _handshake_with(room, key, server_key.public_key, timeout=5)
    try:
        welcome = returned_within(follow_handoff, channel, "127.0.0.1", timeout=HIDDEN_WAIT)
        expect(isinstance(welcome, dict) and welcome.get("type") == "welcome")
        expect(channel.stream is not control)
    finally:
        channel.close()
        control.close()


# --- the server's half of the handoff -------------------------------------------------

OFFER_PORT = Messages(
    {
        "no offer": N_(
            "The client got no encrypted offer within {wait:.0f} s ({error}). Lease a port "
            "from the pool, then send the offer through the channel, as the session's first "
            "message: channel.send(json.dumps({{\"type\": \"port\", \"port\": port, "
            "\"ticket\": ticket}}))."
        ),
        "bad offer": N_(
            "The client could not read your offer ({shown}): send JSON with \"type\": "
            "\"port\", the leased port (an int) and the ticket (a str)."
        ),
        "not leased": N_(
            "Your offer names port {port}, which the pool did not lease to you: lease a port "
            "with pool.lease() and offer that one."
        ),
        "short ticket": N_(
            "Your ticket has {bits} bits of randomness; make it at least 128 "
            "(secrets.token_hex(32) gives 256), or a stranger can guess it."
        ),
        "same ticket": N_(
            "Two sessions got the same ticket: a ticket must be new for every offer "
            "(secrets.token_hex(32) each time), or one session's ticket opens another's port."
        ),
        "stuck": N_(
            "offer_port did not return within {wait:.0f} s of the client showing its ticket. "
            "Accept with a timeout (sock.settimeout) and return (conn, port, sock) once the "
            "ticket holder is in."
        ),
        "raised": N_("offer_port raised {error} when the client came with its ticket.{hint}"),
        "shape": N_(
            "offer_port returned {got}; return (conn, port, sock): the data connection of "
            "the ticket holder and the lease (port and listening socket), still held."
        ),
        "not client": N_(
            "offer_port returned a connection that is not the ticket holder's (its peer: "
            "{who}): return the connection on which the ticket came."
        ),
        "not rebound": N_(
            "The channel still talks over the handshake connection: after the ticket, call "
            "channel.rebind(conn) so the conversation goes on over the data port."
        ),
        "released early": N_(
            "The port went back to the pool while the conversation still uses it: keep the "
            "lease (return port and sock); the caller releases it when the conversation ends."
        ),
        "stranger in": N_(
            "{stranger} connected to the offered port before the real client, and offer_port "
            "took that connection as the client's. Only the holder of the ticket may come in: "
            "read one frame from each connection, try it with channel.open_candidate(frame, "
            "shows_ticket), and drop the connection when that gives None."
        ),
        "stranger ends it": N_(
            "{stranger} connected to the offered port before the real client, and offer_port "
            "{got}: a stranger used up the session. Drop that connection (conn.close()) and "
            "keep waiting, until the timeout, for the one that shows the ticket."
        ),
        "stranger broke it": N_(
            "{stranger} connected to the offered port before the real client, and after that "
            "the channel was broken ({error}): its frame was read as the session's next "
            "message. Try a newcomer's frame with channel.open_candidate(frame, check): on a "
            "copy of the counter, so a stranger changes nothing."
        ),
        "never came stuck": N_(
            "The client never came to the offered port, and offer_port was still waiting "
            "{wait:.0f} s after its timeout of {timeout:.0f} s: accept with a timeout "
            "(sock.settimeout(what is left)) and stop when the time is up."
        ),
        "never came returned": N_(
            "The client never came to the offered port, and offer_port {got}; "
            "give the port back (pool.release(port, sock)) and raise HandoffFailed."
        ),
        "kept": N_(
            "{stranger} connected to the offered port before the real client, and {wait:.0f} s "
            "later offer_port had neither let it in nor hung up on it, while the real client "
            "waited. Read one frame from each newcomer with a timeout (conn.settimeout(1)), and "
            "close the connection (conn.close()) of anyone whose frame does not show the ticket."
        ),
        "never came kept": N_(
            "The client never came, offer_port gave up, but the port never went back to the "
            "pool: call pool.release(port, sock) before you raise, or the pool runs dry."
        ),
        "passed": N_(
            "offer_port offers a leased port and a fresh ticket in the channel, drops strangers "
            "(no ticket, a wrong ticket, a replayed frame) without losing the session, admits "
            "the ticket holder, and gives the port back when nobody comes."
        ),
    }
)

#: The strangers on the data port, in the words of the messages.
STRANGERS = Messages(
    {
        "garbage": N_("A stranger who sent a frame of random bytes"),
        "wrong ticket": N_("A connection that showed a wrong ticket"),
        "replay": N_("A stranger who replayed a frame recorded from an earlier session"),
        "old ticket": N_("A connection that showed the ticket of an earlier session"),
        "silent": N_("A stranger who connected and sent nothing"),
        "too long": N_("A stranger who announced a frame of 4 GB"),
    }
)

#: Seconds offer_port is given to wait for the client in the check: longer than a stranger
#: may stay (``STRANGER_WAIT``), so a stranger held until then is not let go by the timeout.
OFFER_TIMEOUT = 6.0
NEVER_TIMEOUT = 1.0  #: its timeout when the client never comes
#: Seconds a stranger on the data port may stay connected before offer_port must have hung
#: up on it: one that sends nothing is read with a timeout (the notebook says 1 s).
STRANGER_WAIT = 2 * WAIT


class _CheckPool:
    """The pool the check hands to offer_port: ``lease() -> (port, sock)``,
    ``release(port, sock)``, on ports held by a ``PortPool``; it notes every release."""

    def __init__(self, size: int) -> None:
        self.ports = PortPool.reserve(size)
        self.leases: dict[int, Any] = {}
        self.released: list[int] = []
        self.lock = threading.Lock()

    def lease(self) -> tuple[int, socket.socket]:
        lease = self.ports.lease()
        with self.lock:
            self.leases[lease.port] = lease
        return lease.port, lease.socket

    def release(self, port: int, sock: socket.socket) -> None:
        with self.lock:
            lease = self.leases.pop(port, None)
            self.released.append(port)
        if lease is not None:
            lease.release()

    def release_all(self) -> None:
        """Give back whatever offer_port still holds (the check is done with it)."""
        for port in list(self.leases):
            self.release(port, self.leases[port].socket)

    def close(self) -> None:
        self.ports.close()


class _Session:
    """One client session with the check's server key, over a fresh TCP pair."""

    def __init__(self, server_key: KeyPair, client_key: KeyPair) -> None:
        self.server_end, self.client_end = tcp_pair(3 * WAIT)
        done: list[SecureChannel] = []
        helper = threading.Thread(
            target=lambda: done.append(SecureChannel.server(self.server_end, server_key)),
            daemon=True,
        )
        helper.start()
        try:
            self.client = SecureChannel.client(
                self.client_end, client_key, expected_server_key=server_key.public_key,
                timeout=3 * WAIT,
            )  # fmt: skip
        finally:
            helper.join(3 * WAIT)
        self.server = done[0]
        self.others: list[socket.socket] = []

    def sealed_next(self, message: dict[str, Any]) -> bytes:
        """A frame sealed as the client's next message, *without* using up that message."""
        return encode_frame(copy.copy(self.client._sealer).seal(jsonwire.encode(message)))

    def connect(self, port: int) -> socket.socket:
        sock = connect("127.0.0.1", port, timeout=3 * WAIT)
        self.others.append(sock)
        return sock

    def close(self) -> None:
        for sock in [*self.others, self.server_end, self.client_end]:
            close_stream(sock)


def _start_offer(offer_port: Callable[..., Any], session: _Session, pool: _CheckPool,
                 timeout: float) -> tuple[threading.Thread, list[Outcome]]:  # fmt: skip
    """Run the student's ``offer_port`` in the background, bounded; its outcome goes in the list."""
    box: list[Outcome] = []

    def run() -> None:
        box.append(run_bounded(offer_port, session.server, pool, timeout, timeout=timeout + WAIT))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _verdict(thread: threading.Thread, box: list[Outcome], within: float) -> Outcome:
    """The outcome, taken once: after at most ``within`` seconds."""
    thread.join(within + STOP_GRACE)
    return box[0] if box else Outcome("stuck", None)


def _read_offer(session: _Session, pool: _CheckPool, seen: set[str],
                box: list[Outcome]) -> dict[str, Any]:  # fmt: skip
    """The offer as the client reads it: port leased to offer_port, a fresh long ticket."""
    try:
        raw = session.client.recv(timeout=WAIT + 1)
    except (OSError, LabCryptoError) as exc:
        ended = box[0] if box else None  # offer_port may have raised before any offer
        if ended is not None and ended.raised(NotImplementedError):
            raise not_written("offer_port") from None
        why = refused_as(ended.value if ended is not None and ended.status == "error" else exc)
        raise fail(OFFER_PORT["no offer"], wait=WAIT + 1, error=why) from None
    try:
        offer = jsonwire.decode(raw, 4096)
    except LabCryptoError:
        offer = None
    port, ticket = (offer or {}).get("port"), (offer or {}).get("ticket")
    if not (isinstance(offer, dict) and offer.get("type") == "port" and isinstance(port, int)
            and isinstance(ticket, str)):  # fmt: skip
        raise fail(OFFER_PORT["bad offer"], shown=repr(raw)[:80])
    if port not in pool.leases:
        raise fail(OFFER_PORT["not leased"], port=port)
    bits = len(set(ticket)) and int(len(ticket) * math.log2(max(2, len(set(ticket)))))
    if bits < 128:
        raise fail(OFFER_PORT["short ticket"], bits=bits)
    if ticket in seen:
        raise fail(OFFER_PORT["same ticket"])
    seen.add(ticket)
    return offer


def _strangers_then_client(offer_port: Callable[..., Any], keys: tuple[KeyPair, KeyPair],
                           pool: _CheckPool, seen: set[str], strangers: list[str],
                           earlier: dict[str, Any]) -> None:  # fmt: skip
    """One session: the offer; ``strangers`` first on the offered port, each of whom must
    be hung up on without ending the session; then the client with its ticket, admitted.
    The verdict is taken once, when offer_port has had WAIT after the client came."""
    session = _Session(*keys)
    pool.released.clear()  # this session's releases only
    try:
        thread, box = _start_offer(offer_port, session, pool, OFFER_TIMEOUT)
        offer = _read_offer(session, pool, seen, box)
        port, ticket = offer["port"], offer["ticket"]
        frames: dict[str, Callable[[], bytes]] = {
            "silent": lambda: b"",
            "too long": lambda: struct.pack("!I", 0xFFFFFFFF),
            "garbage": lambda: encode_frame(secrets.token_bytes(48)),
            "wrong ticket": lambda: session.sealed_next({"type": "ticket", "ticket": "0" * 64}),
            "replay": lambda: earlier["frame"],
            "old ticket": lambda: session.sealed_next(
                {"type": "ticket", "ticket": earlier["ticket"]}
            ),
        }
        came: dict[tuple[str, int], str] = {}
        for kind in strangers:
            with contextlib.suppress(OSError):
                sock = session.connect(port)
                came[sock.getsockname()] = kind
                sock.sendall(frames[kind]())
                if not _hung_up(sock, STRANGER_WAIT) and not box:
                    raise fail(OFFER_PORT["kept"], stranger=STRANGERS[kind], wait=STRANGER_WAIT)
            if box:
                break  # offer_port has ended: this stranger is the one it met last
        frame = session.client.seal_frame(jsonwire.encode({"type": "ticket", "ticket": ticket}))
        data = None
        with contextlib.suppress(OSError):
            data = session.connect(port)
            data.sendall(frame)
            session.client.rebind(data)
        outcome = _verdict(thread, box, WAIT)
        _judge(outcome, session, data, pool, port, came)
        session.server.send(b"welcome")
        if session.client.recv(timeout=WAIT) != b"welcome":
            raise fail(OFFER_PORT["not rebound"])
        earlier.update(frame=frame, ticket=ticket)
    finally:
        session.close()
        pool.release_all()


def _judge(outcome: Outcome, session: _Session, data: socket.socket | None, pool: _CheckPool,
           port: int, came: dict[tuple[str, int], str]) -> None:  # fmt: skip
    """offer_port returned the ticket holder's connection, rebound the channel, kept the lease."""
    if outcome.raised(NotImplementedError):
        raise not_written("offer_port")
    stranger = STRANGERS[list(came.values())[-1]] if came else ""  # the last one it met
    if outcome.status == "stuck":
        raise fail(OFFER_PORT["stuck"], wait=WAIT)
    if outcome.status == "error":
        if came and (session.server.failure is not None or session.server.closed):
            raise fail(OFFER_PORT["stranger broke it"], stranger=stranger,
                       error=refused_as(outcome.value))  # fmt: skip
        if came:
            raise fail(OFFER_PORT["stranger ends it"], stranger=stranger,
                       got=how_it_ended(*outcome, width=60))  # fmt: skip
        raise fail(OFFER_PORT["raised"], error=refused_as(outcome.value), hint="")
    got = outcome.value
    if not (isinstance(got, tuple) and len(got) == 3 and isinstance(got[0], socket.socket)):
        raise fail(OFFER_PORT["shape"], got=repr(got)[:80])
    try:
        peer = got[0].getpeername()
    except OSError:
        peer = None
    if peer in came:
        raise fail(OFFER_PORT["stranger in"], stranger=STRANGERS[came[peer]])
    if data is None or peer != data.getsockname():
        raise fail(OFFER_PORT["not client"], who=peer)
    if session.server.stream is not got[0]:
        raise fail(OFFER_PORT["not rebound"])
    if port in pool.released:
        raise fail(OFFER_PORT["released early"])


def _never_comes(offer_port: Callable[..., Any], keys: tuple[KeyPair, KeyPair],
                 pool: _CheckPool, seen: set[str]) -> None:  # fmt: skip
    """The client reads the offer and never comes: the port goes back after the timeout."""
    session = _Session(*keys)
    pool.released.clear()
    try:
        thread, box = _start_offer(offer_port, session, pool, NEVER_TIMEOUT)
        offer = _read_offer(session, pool, seen, box)
        outcome = _verdict(thread, box, NEVER_TIMEOUT + WAIT)
        if outcome.status == "stuck":
            raise fail(OFFER_PORT["never came stuck"], wait=WAIT, timeout=NEVER_TIMEOUT)
        if outcome.status == "ok":
            raise fail(OFFER_PORT["never came returned"], got=how_it_ended(*outcome, width=60))
        if offer["port"] not in pool.released:
            raise fail(OFFER_PORT["never came kept"])
    finally:
        session.close()
        pool.release_all()


def _hung_up(sock: socket.socket, wait: float) -> bool:
    """Did the other end close ``sock`` within ``wait`` seconds?"""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ConnectionAbortedError):
        return True
    except OSError:
        return False


@explained_in("04_two_ports", N_("Exercise: the server's half of the handoff"))
def check_offer_port(offer_port: Callable[..., Any]) -> None:
    """``offer_port(channel, pool, timeout)`` against real clients and strangers over TCP."""
    keys = (generate(FFDHE2048), generate(FFDHE2048))
    pool = _CheckPool(2)
    seen: set[str] = set()
    earlier: dict[str, Any] = {}
    try:
        _strangers_then_client(offer_port, keys, pool, seen, [], earlier)
        _strangers_then_client(offer_port, keys, pool, seen, ["garbage", "wrong ticket"], earlier)
        _strangers_then_client(offer_port, keys, pool, seen,
                               ["replay", "old ticket", "too long", "silent"], earlier)  # fmt: skip
        _never_comes(offer_port, keys, pool, seen)
    finally:
        pool.close()
    passed(OFFER_PORT["passed"])


@check_offer_port.hidden
def hidden_offer_port(offer_port: Callable[..., Any]) -> None:
    """One more session, a stranger with a wrong ticket first: the client gets in."""
    pool = _CheckPool(1)
    try:
        keys = (generate(FFDHE2048), generate(FFDHE2048))
        _strangers_then_client(offer_port, keys, pool, set(), ["wrong ticket"], {})
    finally:
        pool.close()


# --- a port pool --------------------------------------------------------------------------

PORT_POOL = Messages({
    "lease shape": N_(
        "lease() returned {got!r:.80}; return (port, sock): the port number and the "
        "socket you bound and listen on."
    ),
    "lease failed": N_(
        "lease() {what} with {left} free ports left (one port of the range, "
        "{first}, is held by another program: skip it)."
    ),
    "busy port": N_(
        "lease() returned port {first}, which another program holds: binding "
        "it failed, and a port you could not bind is not yours (course mistake "
        "10). Skip it and try the next."
    ),
    "outside": N_("lease() returned port {port}, outside the range given."),
    "other socket": N_(
        "lease() returned port {port} with a socket bound to "
        "{bound}: return the socket you bound to that port, "
        "still open (bind, close and bind again is a race: course mistake 10)."
    ),
    "not listening": N_(
        "Nothing listens on leased port {port}: call sock.listen() before "
        "returning it, so the client's connection is not refused."
    ),
    "stolen": N_(
        "Port {port} was bound during your lease(), then free again before lease() "
        "returned, and another program took it in that moment (the check did, on purpose: "
        "on a busy server some program will). Bind, close and bind again is a race "
        "(course mistake 10): keep the socket you bound, make it listen, and return that "
        "very socket."
    ),
    "closed socket": N_(
        "lease() returned port {port} with a closed socket: return the socket you bound "
        "and listen on, still open (release() closes it, not lease())."
    ),
    "closed while leased": N_(
        "The socket of leased port {port} was closed by later leases: each leased socket "
        "stays open, and listening, until release(port, sock) closes it."
    ),
    "not the listener": N_(
        "A connection to leased port {port} did not arrive on the socket lease() returned: "
        "return the very socket you bound to the port and listen on (a socket bound, "
        "closed and bound again is another socket: course mistake 10)."
    ),
    "twice": N_("lease() handed out the same port twice: {ports}."),
    "waits when full": N_("With every port leased, lease() waited forever: raise PoolExhausted."),
    "full": N_(
        "With every port leased, lease() {got}; it must raise PoolExhausted "
        "(with a message such as 'no free port, try again in a moment')."
    ),
    "threads stuck": N_(
        "16 threads leasing and releasing did not finish within {wait:.0f} s: a lease or "
        "release waits forever (a lock never released? a wait without a timeout?)."
    ),
    "threads": N_(
        "With 16 threads at once: {problem}. Guard the list of free ports with a "
        "threading.Lock, held while you take a port from it and while you give it back."
    ),
    "leased twice": N_("port {port} was leased to two threads at once"),
    "lease raised": N_("lease() raised {error}"),
    "release raised": N_("release() raised {error}"),
    "slow init": N_(
        "Making the pool only remembers a range of ports: is there a loop that never ends "
        "(say, one that binds every port of the range, or waits for one)?"
    ),
    "release stuck": N_(
        "release(port, sock) did not return within {wait:.0f} s once the pool had been full: "
        "it waits for something that never comes, most likely the lock, still held by a "
        "lease() that left without releasing it (lock.acquire(), then an exception such as "
        "PoolExhausted before lock.release()). A with block releases a lock however the "
        "block ends."
    ),
    "busy lost": N_(
        "Port {first} was held by another program when your pool first tried it; that program "
        "has let it go since, yet your pool never leases it again: a port whose bind failed "
        "was dropped from the pool for good, and the pool shrinks each time that happens. "
        "Skip such a port for this lease, but keep it in the pool, to be tried again later."
    ),
    "lost": N_(
        "After the threads released everything, only {count} of {size} "
        "ports could be leased again: a port got lost (released twice, or "
        "never put back)."
    ),
    "race": N_(
        "Two threads called lease() at once while one port was free, and the check made them "
        "take turns line by line inside it: {problem}. Between reading the free ports and "
        "taking one, the other thread ran. Guard the list of free ports with a "
        "threading.Lock, held while you take a port from it and while you give it back."
    ),
    "race none": N_("neither thread got the free port"),
    "race twice": N_("both threads got port {port}"),
    "race raised": N_("one lease() raised {error}"),
    "not closed": N_(
        "release({port}, sock) gave the port back but left its socket open: the port stays "
        "bound, so the next lease cannot bind it and the pool seems to lose ports. Close "
        "the socket in release(), then give the port back."
    ),
    "passed": N_(
        "The pool skips a busy port and leases it once it is free, returns listening "
        "sockets, refuses when full, and survived 16 threads: no port leased twice, none lost."
    ),
})

POOL_SIZE = 6  #: ports the check's pool hands out (its range holds one more, kept busy)
THREADS = 16  #: threads that lease and release at once
ROUNDS = 30  #: leases each thread tries
#: Seconds the forced race may take; past them it is undecided (not a failure).
RACE_WAIT = 4.0
#: Seconds a racing thread waits for the other to take its turn before running on
#: without it (it is blocked: on the lock the first thread holds, if the pool has one).
RACE_PATIENCE = 0.5


def _lease_of(pool: Any) -> tuple[int, socket.socket]:
    got = pool.lease()
    if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], socket.socket)):
        raise fail(PORT_POOL["lease shape"], got=got)
    return got


class _PortThief:
    """Another program on the machine, as quick as can be, while the student's lease() runs.

    Before each line of the student's code it tries to bind every port of the
    range. A port that was bound at an earlier line (by the pool) and is free
    again now, it binds and keeps: a pool that binds a port, closes it and
    binds it again (course mistake 10) finds the port taken on every run, not
    once a term on a busy server. A correct pool never lets go of a port it
    is about to hand out, so the thief never gets one of those.
    """

    def __init__(self, host: str, ports: range, student_file: str) -> None:
        self.host, self.ports, self.student_file = host, ports, student_file
        self.seen_bound: set[int] = set()
        self.stolen: dict[int, socket.socket] = {}

    def _probe(self) -> None:
        for port in self.ports:
            if port in self.stolen:
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                self.seen_bound.add(port)
                continue
            if port in self.seen_bound:
                self.stolen[port] = sock  # the pool let go of it: it is ours now
            else:
                sock.close()

    def lease(self, pool: Any) -> tuple[int, socket.socket]:
        """``pool.lease()``, with the thief watching between its lines (keeps the caller's
        trace function, if it has one)."""
        outer = sys.gettrace()

        def on_event(frame: Any, event: str, arg: Any) -> Any:
            if outer is not None:
                outer(frame, event, arg)
            if event == "line" and frame.f_code.co_filename == self.student_file:
                self._probe()
            return on_event

        with stops_paused():  # traced: no stop may be pending meanwhile
            sys.settrace(on_event)
            try:
                return _lease_of(pool)
            finally:
                sys.settrace(outer)

    def close(self) -> None:
        for sock in self.stolen.values():
            sock.close()
        self.stolen.clear()


def _listens_on(sock: socket.socket, port: int) -> bool:
    """Does a connection to ``port`` arrive on this very ``sock`` (not some other socket)?"""
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    except OSError:
        return False
    with client:
        try:
            sock.settimeout(WAIT)
            conn, _ = sock.accept()
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
    # Closed with a reset, not a FIN: no TIME_WAIT left on the port, which the
    # student's pool binds again later (most do it without SO_REUSEADDR).
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    return True


def _check_socket(port: int, sock: socket.socket, *, leased_later: bool = False) -> None:
    """``sock`` is open, bound to ``port``, and the one listening there."""
    if sock.fileno() == -1:
        key = "closed while leased" if leased_later else "closed socket"
        raise fail(PORT_POOL[key], port=port)
    bound = sock.getsockname()[1]
    if bound != port:
        raise fail(PORT_POOL["other socket"], port=port, bound=bound)
    if not _listens_on(sock, port):
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
            raise fail(PORT_POOL["not the listener"], port=port)
        raise fail(PORT_POOL["not listening"], port=port)


def _lease_one(pool: Any, first: int, left: int) -> tuple[int, socket.socket]:
    """One lease, bounded, watched by a thief; a listening socket bound to a free port."""
    code = getattr(getattr(type(pool), "lease", None), "__code__", None)
    thief = _PortThief("127.0.0.1", range(first + 1, first + POOL_SIZE + 1),
                       code.co_filename if code else "")  # fmt: skip
    try:
        outcome = run_bounded(thief.lease, pool)
        stolen = sorted(thief.stolen)
    finally:
        thief.close()
    if outcome.raised(NotImplementedError):
        raise not_written(type(pool).__name__)
    if outcome.raised(CheckFailed):
        raise outcome.value
    if outcome.status == "ok" and outcome.value[1].fileno() == -1:
        raise fail(PORT_POOL["closed socket"], port=outcome.value[0])
    if stolen and (outcome.status != "ok" or outcome.value[0] in stolen):
        raise fail(PORT_POOL["stolen"], port=stolen[0])
    if outcome.status != "ok":
        what = how_it_ended(*outcome)
        raise fail(PORT_POOL["lease failed"], what=what, left=left, first=first)
    port, sock = outcome.value
    if port == first:
        raise fail(PORT_POOL["busy port"], first=first)
    if not first <= port <= first + POOL_SIZE:
        raise fail(PORT_POOL["outside"], port=port)
    _check_socket(port, sock)
    return port, sock


def _check_full(pool: Any) -> None:
    outcome = run_bounded(pool.lease)
    if outcome.status == "stuck":
        raise fail(PORT_POOL["waits when full"])
    if not outcome.raised(PoolExhausted):
        got = how_it_ended(*outcome) if outcome.status == "ok" else refused_as(outcome.value)
        raise fail(PORT_POOL["full"], got=got)


def _release_each(pool: Any, leased: list[tuple[int, socket.socket]]) -> None:
    for port, sock in leased:
        with contextlib.suppress(Exception):
            pool.release(port, sock)


def _release_all(pool: Any, leased: list[tuple[int, socket.socket]]) -> None:
    """Give back what the check leased (a clean-up: a release that hangs is left
    behind after ``WAIT``)."""
    run_bounded(_release_each, pool, leased)


def _check_leases(pool: Any, first: int) -> None:
    """Every port but the busy one, each once; then a full pool refuses."""
    leased: list[tuple[int, socket.socket]] = []
    try:
        for _ in range(POOL_SIZE):
            leased.append(_lease_one(pool, first, POOL_SIZE - len(leased)))
        ports = [p for p, _ in leased]
        if len(set(ports)) != len(ports):
            raise fail(PORT_POOL["twice"], ports=sorted(ports))
        for port, sock in leased:  # still open and listening, after the leases that followed
            _check_socket(port, sock, leased_later=True)
        _check_full(pool)
    finally:
        released = run_bounded(_release_each, pool, leased)
    if released.status == "stuck":
        raise fail(PORT_POOL["release stuck"], wait=WAIT)
    for port, sock in leased:
        if sock.fileno() != -1:
            sock.close()
            raise fail(PORT_POOL["not closed"], port=port)


def _lease_in_a_race(pool: Any, got: list[Any], problems: list[str]) -> None:
    """One of the two racing threads: one lease, kept (the check releases it)."""
    try:
        got.append(pool.lease())
    except PoolExhausted:
        got.append(None)
    except Exception as exc:  # reported to the student by _race
        problems.append(PORT_POOL["race raised"].format(error=refused_as(exc)))


def _still_free(first: int, held: Any) -> bool:
    """Is the race's free port (of ``first`` and ``first + 1``, the one not ``held``)
    one that anyone may bind now? If another program took it meanwhile, no pool
    could have handed it out: "neither thread got it" would be no fault of the pool's."""
    return all(plainly_bindable(port) for port in (first, first + 1) if port != held)


def _race(pool_class: Callable[..., Any]) -> None:
    """Two threads inside ``lease()`` at once, taking turns at every line, for the last port.

    A pool of two ports of its own, one of them leased first. The same
    interleaving on every run (``Lockstep``): a pool without a lock loses the
    race every time, not one run in five. A race still undecided at its
    deadline (a very busy machine, a pool with a lock that made the threads
    wait) counts for nothing either way: the hammer after it still runs; so does
    a port that neither thread got because another program holds it.
    """
    with range_for_a_pool(2) as first:
        made = run_bounded(pool_class, first, first + 1, "127.0.0.1")
    if made.status != "ok":
        return  # not written yet, broken or slow: the checks after this one say how
    pool = made.value
    held = run_bounded(pool.lease)
    if held.status != "ok" or not (isinstance(held.value, tuple) and len(held.value) == 2):
        return  # the lease itself goes wrong: _check_leases says how
    got: list[Any] = []
    problems: list[str] = []
    # The file of lease()'s code: a notebook cell's own file name in a kernel
    # (inspect.getsourcefile(class) fails for a class defined in a notebook).
    code = getattr(getattr(type(pool), "lease", None), "__code__", None)
    deadline = time.monotonic() + RACE_WAIT
    lockstep = Lockstep(2, code.co_filename if code else "", deadline, patience=RACE_PATIENCE)

    def lease() -> None:
        _lease_in_a_race(pool, got, problems)

    threads = [threading.Thread(target=lockstep.run, args=(n, lease), daemon=True) for n in (0, 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 1)
        decided = not lockstep.overtime and not any(thread.is_alive() for thread in threads)
        leases = [lease for lease in got if lease is not None]
        ports = [port for port, _ in leases]
        if not problems and len(set(ports)) != len(ports):
            problems.append(PORT_POOL["race twice"].format(port=ports[0]))
        if not problems and not leases and decided and _still_free(first, held.value[0]):
            problems.append(PORT_POOL["race none"])
        if problems:
            raise fail(PORT_POOL["race"], problem=problems[0])
    finally:
        _release_all(pool, [held.value] + [lease for lease in got if lease is not None])


def _rounds(pool: Any, holding: set[int], lock: threading.Lock, problems: list[str]) -> None:
    """One thread of the hammer: lease, hold a moment, release; note anything wrong."""
    for _ in range(ROUNDS):
        try:
            port, sock = pool.lease()
        except PoolExhausted:
            time.sleep(0.001)
            continue
        except Exception as exc:  # reported to the student by _hammer
            problems.append(PORT_POOL["lease raised"].format(error=refused_as(exc)))
            return
        with lock:
            if port in holding:
                problems.append(PORT_POOL["leased twice"].format(port=port))
            holding.add(port)
        time.sleep(0.0005)
        with lock:
            holding.discard(port)
        try:
            pool.release(port, sock)
        except Exception as exc:
            problems.append(PORT_POOL["release raised"].format(error=refused_as(exc)))
            return


def _lease_and_release(pool: Any, holding: set[int], lock: threading.Lock,
                       problems: list[str], finished: list[bool]) -> None:  # fmt: skip
    """``_rounds``, then a mark in ``finished`` (none if its deadline stopped it)."""
    _rounds(pool, holding, lock, problems)
    finished.append(True)


def _hammer(pool: Any) -> None:
    """16 threads lease and release at once; no double lease, and every port comes back.

    One deadline for all of them (``HAMMER_WAIT``, as the message says): each thread
    runs as ``run_bounded`` runs the student's code, stopped at its next line of
    Python when the time is up, and the verdict is taken once, at the deadline.
    """
    holding: set[int] = set()
    problems: list[str] = []
    finished: list[bool] = []
    args = (pool, holding, threading.Lock(), problems, finished)
    deadline = time.monotonic() + HAMMER_WAIT
    threads = [
        in_background(_lease_and_release, *args, timeout=HAMMER_WAIT) for _ in range(THREADS)
    ]
    for thread in threads:  # the same moment for all: a join never adds to the one before
        thread.join(max(0.0, deadline + STOP_GRACE - time.monotonic()))
    ended, found = len(finished), list(problems)  # one look, once the time is up
    if found:
        raise fail(PORT_POOL["threads"], problem=found[0])
    if ended < THREADS:
        raise fail(PORT_POOL["threads stuck"], wait=HAMMER_WAIT)


def _lease_all(pool: Any, again: list[tuple[int, socket.socket]], count: int = POOL_SIZE) -> None:
    """Lease ``count`` ports of the pool into ``again`` (PoolExhausted once one is lost)."""
    for _ in range(count):
        again.append(pool.lease())


def _check_none_lost(pool: Any) -> None:
    again: list[tuple[int, socket.socket]] = []
    try:
        outcome = run_bounded(_lease_all, pool, again)
        if outcome.raised(PoolExhausted):
            raise fail(PORT_POOL["lost"], count=len(again), size=POOL_SIZE)
        if outcome.status == "stuck":
            raise fail(PORT_POOL["waits when full"])
        if outcome.status == "error":
            raise fail(PORT_POOL["lease raised"], error=refused_as(outcome.value))
    finally:
        _release_all(pool, list(again))


def _check_busy_port_back(pool: Any, first: int) -> None:
    """The other program has let go of the first port: the pool leases it too now."""
    again: list[tuple[int, socket.socket]] = []
    try:
        outcome = run_bounded(_lease_all, pool, again, POOL_SIZE + 1)
        if outcome.status == "stuck":
            raise fail(PORT_POOL["waits when full"])
        if first not in [port for port, _ in again]:
            if outcome.status == "error" and not outcome.raised(PoolExhausted):
                raise fail(PORT_POOL["lease raised"], error=refused_as(outcome.value))
            raise fail(PORT_POOL["busy lost"], first=first)
    finally:
        _release_all(pool, list(again))


@explained_in("04_two_ports", N_("5 · Exercise: a port pool"))
def check_port_pool(pool_class: Callable[..., Any]) -> None:
    """A pool class with ``lease() -> (port, sock)`` and ``release(port, sock)``, hammered."""
    _race(pool_class)
    # The first port of the range stays busy (another program holds it): leases skip it.
    with range_for_a_pool(POOL_SIZE + 1, first_busy=True) as first:
        pool = call_bounded(
            pool_class, first, first + POOL_SIZE, "127.0.0.1",
            what=f"{getattr(pool_class, '__name__', 'MyPortPool')}({first}, {first + POOL_SIZE})",
            why=PORT_POOL["slow init"],
            deadline=time.monotonic() + WAIT,
            bound=WAIT,
        )  # fmt: skip
        _check_leases(pool, first)
        _hammer(pool)
        _check_none_lost(pool)
    _check_busy_port_back(pool, first)  # the block let the busy port go
    passed(PORT_POOL["passed"])


@check_port_pool.hidden
def hidden_port_pool(pool_class: Callable[..., Any]) -> None:
    """A two-port pool: both ports, and a released port comes back."""
    with range_for_a_pool(2) as first:
        pool = returned_within(pool_class, first, first + 1, "127.0.0.1", timeout=HIDDEN_WAIT)
    leases = [returned_within(pool.lease, timeout=HIDDEN_WAIT) for _ in range(2)]
    try:
        expect({port for port, _ in leases} == {first, first + 1})
        port, sock = leases.pop(0)
        returned_within(pool.release, port, sock, timeout=HIDDEN_WAIT)
        leases.append(returned_within(pool.lease, timeout=HIDDEN_WAIT))
        expect(leases[-1][0] == port)
    finally:
        _release_all(pool, leases)
