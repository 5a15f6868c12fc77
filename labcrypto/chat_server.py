"""The chat room's server: ``ChatServer`` and the settings it runs with (notebooks 02-05).

The story of the room is in ``labcrypto.chat``; this module is the
server's half: one thread per member reading what it says, one thread
at a time sending the room's lines to everyone (``ChatServer._deliver``),
a writer thread per member for what its socket cannot take at once, and
the room's limits (``ChatSettings``):

* the door: at most ``max_handshakes_per_source`` connections from one
  address in their handshake at once, and a pause for an address whose
  handshakes keep failing (``labcrypto.admission``); a client turned away
  gets a plain ``error`` message with code ``busy`` that says why;
* at most ``max_sessions_per_key`` conversations per key (one allowed
  key cannot hold every data port), and a member silent for
  ``idle_timeout`` seconds is told so and closed;
* a line the room does not carry (too long, control or bidi characters,
  not a ``say`` message, bad JSON) gets a notice saying why, and the
  member chats on; only broken *frames* (tampered, replayed, cut) end
  the conversation, because after them the channel cannot be trusted.

Everything a client chose (its text, a field of its hello) reaches the
log only through ``untrusted.quote``.

The server speaks no language of its own to the members: each notice
goes out as a code and its parameters (``chat_messages.NOTICES``) with
its English text, and each member's client shows it in its own language.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from .admission import Admission, AdmissionRules, HeldPerKey
from .allowlist import Allowlist
from .channel import SecureChannel
from .chat_messages import (
    SERVER_NAME,
    ChatMessage,
    check_text,
    encode,
    encode_line,
    notice,
    parse_say,
    refusal_of,
)
from .errors import (
    ChannelClosed,
    ConnectionLost,
    HandoffFailed,
    KeyNotAllowed,
    LabCryptoError,
    LineRefused,
    PoolExhausted,
    ProtocolError,
    in_english,
)
from .handoff import DEFAULT_TICKET_TIMEOUT, busy_message, offer_data_port
from .handshake import MODES
from .keys import KeyPair, PublicKey
from .ports import PairPool, PortPool, as_port_pool
from .server import ThreadedServer, handshake_busy_reply
from .streams import close_after_peer, close_stream
from .untrusted import quote

__all__ = ["LINE_BURST", "ChatServer", "ChatSettings"]

log = logging.getLogger("labcrypto.chat")

#: Lines a member may say at once before its share of the room's rate applies.
LINE_BURST = 50
#: After a member's goodbye, how long we wait for it to close its end first (seconds).
GOODBYE_LINGER = 1.0
#: When the server stops, how long it spends saying goodbye to its members (seconds).
STOP_GOODBYE_WAIT = 1.0


class _Member:
    """One connected client on the server side: its channel, name and send buffer.

    A line for this member is sealed and handed to its socket at once if
    the socket takes it without waiting (almost always: the kernel keeps a
    send buffer). Whatever does not fit waits in ``pending``, in order,
    for the member's writer thread, which has ``send_timeout`` to get it
    out. So nobody ever waits for a slow member; a member whose pending
    bytes pass ``max_pending``, or whose writer times out, is dropped.
    """

    def __init__(
        self, name: str, channel: SecureChannel, stream: socket.socket, who: str, max_pending: int
    ) -> None:
        self.name = name
        self.channel = channel
        self.stream = stream
        self.who = who
        self.max_pending = max_pending
        self.alive = True
        self.closing = False  # finish() asked: send what is pending, then stop
        self.reason = ""
        self.tokens = float(LINE_BURST)  # lines it may say now (see ChatServer._throttle)
        self.refilled = time.monotonic()
        self.warned = 0.0  # when it was last told to slow down
        self._pending = bytearray()
        self._writing = False
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # A second handle on the same connection that never waits. (A socket
        # with a timeout first waits until it can send; this one sends what
        # fits at once, or raises BlockingIOError.) The reader keeps ``stream``.
        self._now = stream.dup()
        self._now.setblocking(False)
        self.writer = threading.Thread(
            target=self._write_loop, name=f"chat-out-{name}", daemon=True
        )

    def offer(self, *messages: bytes) -> bool:
        """Seal ``messages`` for this member and send them, or queue them; False if too slow.

        Several messages go out in one ``send``: one system call (and one
        wake-up of the member's client) for a batch of the room's lines.
        """
        with self._lock:
            if not self.alive:
                return True
            try:
                frames = b"".join(self.channel.seal_frame(message) for message in messages)
                sent = 0
                if not self._pending and not self._writing:
                    sent = self._now.send(frames)
            except (BlockingIOError, InterruptedError):
                sent = 0  # the socket's buffer is full: the writer will wait for it
            except (OSError, LabCryptoError):
                return True  # the connection is gone; its reader notices and cleans up
            if sent < len(frames):
                self._pending += memoryview(frames)[sent:]
                self._wake.notify()
            return len(self._pending) <= self.max_pending

    def _write_loop(self) -> None:
        """Send what ``offer`` could not, in order; bounded by ``alive`` and the socket timeout.

        After ``finish`` it still sends what is pending (the last notice
        says why the member is closed), then stops.
        """
        while True:
            with self._lock:
                if not self._pending:
                    if not self.alive or self.closing:
                        return
                    self._wake.wait(0.5)
                    continue
                if not self.alive:
                    return
                chunk = bytes(self._pending)
                self._pending.clear()
                self._writing = True
            try:
                self.stream.sendall(chunk)
            except OSError as exc:
                self.drop(f"sending failed ({type(exc).__name__}: {in_english(exc)})")
                return
            finally:
                with self._lock:
                    self._writing = False

    def drop(self, reason: str) -> None:
        """Mark the member gone and wake its reader (which then cleans up)."""
        if self.alive:
            self.alive, self.reason = False, reason
        with contextlib.suppress(OSError):
            self.stream.shutdown(socket.SHUT_RDWR)

    def wake_reader(self) -> None:
        """Make the reader's ``recv`` return, but keep the socket usable for a goodbye."""
        with contextlib.suppress(OSError):
            self.stream.shutdown(socket.SHUT_RD)

    def finish(self, timeout: float) -> None:
        """Let the writer send what is pending, then stop it (wait at most ``timeout`` s)."""
        with self._lock:
            self.closing = True
            self._wake.notify()
        if self.writer.ident is not None:
            self.writer.join(timeout)
        with self._lock:
            self.alive = False
        self._now.close()


@dataclass(frozen=True)
class ChatSettings:
    """The limits and timeouts of a chat room, each with a default a class can live with.

    Times are in seconds. ``ChatServer(key, allowlist, send_timeout=0.5)``
    changes one of them for one server; ``ChatSettings(...)`` holds a set
    you reuse (``ChatServer(key, allowlist, settings=strict)``).

    ``ticket_timeout``: how long a client has to come to its data port
    (with a ``PortPool``). ``handshake_timeout`` bounds the whole handshake
    and ``frame_timeout`` each message from its first byte to its last, so
    a client that sends a byte a second is dropped too.
    ``send_timeout``: a member that does not take a message within this
    time is dropped; ``max_pending``: bytes waiting for one member before
    it counts as too slow. ``idle_timeout``: close a member silent this
    long, telling it why (None: never). ``max_room_rate``: lines per
    second the whole room carries, shared equally among the members
    (None: no limit); each line costs one seal and one send per member,
    so 500 lines/s in a room of 40 is already 20,000 sends a second —
    about what one core of the server can do beside its other work.
    ``max_sessions_per_key``: conversations one key may hold at once
    (None: no limit). ``max_handshakes_per_source``:
    connections from one address still in their handshake
    (None: no limit); after ``free_failed_handshakes`` failures in a
    minute (None: no slow-down), each handshake from that address waits
    ``failure_pause`` seconds first, doubling with each further failure up
    to 2 s (``labcrypto.admission``). ``connection_timeout`` and
    ``max_connections`` are ``ThreadedServer``'s.
    """

    ticket_timeout: float = DEFAULT_TICKET_TIMEOUT
    handshake_timeout: float = 10.0
    frame_timeout: float = 10.0
    send_timeout: float = 2.0
    max_pending: int = 1 << 20
    idle_timeout: float | None = 900.0
    max_room_rate: float | None = 500.0
    max_sessions_per_key: int | None = 8
    max_handshakes_per_source: int | None = 32
    free_failed_handshakes: int | None = 10
    failure_pause: float = 0.25
    connection_timeout: float = 30.0
    max_connections: int = 200


class ChatServer(ThreadedServer):
    """A chat room over ``SecureChannel``, one thread per client (plus its writer).

    ``key``: the server's static ``KeyPair`` (its group must match ``mode``).
    ``allowlist``: who may join; None lets every valid key in, named by its
    fingerprint (only for notebook 03's "what goes wrong" demo).
    ``pool``: None for one port (notebook 02), or a ``PortPool`` for the
    two-port handoff (notebook 04); a pool of your own with ``lease() ->
    (port, sock)`` and ``release(port, sock)`` works too (``as_port_pool``).
    ``host``, ``port`` and ``name`` are ``ThreadedServer``'s. The limits
    and timeouts are a ``ChatSettings`` (``settings``); any of its fields
    may also be given by name, which changes just that one:
    ``ChatServer(key, allowlist, idle_timeout=60)``.
    """

    def __init__(
        self,
        key: KeyPair,
        allowlist: Allowlist | None = None,
        *,
        mode: str = "secure",
        pool: PortPool | PairPool | Any = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        settings: ChatSettings | None = None,
        **changes: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if key.group != MODES[mode]:
            raise ValueError(
                f"{mode} mode uses group {MODES[mode].name}, but the server key is in "
                f"{key.group.name}: load or make a key for this mode"
            )
        settings = _with_changes(settings or ChatSettings(), changes)
        super().__init__(
            host,
            port,
            name=name,
            connection_timeout=settings.connection_timeout,
            max_connections=settings.max_connections,
        )
        self.key = key
        self.allowlist = allowlist
        self.mode = mode
        self.pool = as_port_pool(pool)
        self.settings = settings
        self.admission = Admission(
            AdmissionRules(
                max_per_source=settings.max_handshakes_per_source,
                free_failures=settings.free_failed_handshakes,
                first_pause=settings.failure_pause,
            )
        )
        self._sessions = HeldPerKey()  # the conversations each key holds
        #: Called with every ``ChatMessage`` the room delivers (from a server thread).
        self.on_message: Callable[[ChatMessage], None] | None = None
        #: The last 1000 messages of the room, oldest first.
        self.history: deque[ChatMessage] = deque(maxlen=1000)
        self._room: list[_Member] = []
        self._room_lock = threading.Lock()
        # Lines waiting for the room's sender, and whether a thread is that sender now
        # (both under _outbox_lock; see _deliver).
        self._outbox: list[bytes] = []
        self._sending = False
        self._outbox_lock = threading.Lock()

    # --- what the operator does -----------------------------------------------------

    def say(self, text: str) -> ChatMessage:
        """Send an operator message to everyone in the room, tagged ``"server"``."""
        message = ChatMessage(SERVER_NAME, check_text(text), time.time())
        self._deliver(message)
        return message

    def members(self) -> list[str]:
        """The names of the connected clients, in the order they joined."""
        with self._room_lock:
            return [member.name for member in self._room if member.alive]

    def on_stop(self) -> None:
        """Say goodbye to every member, then wake its thread so ``stop()`` can join it.

        A member told goodbye reads "the server ended the chat"; one whose
        connection is only shut down reads "lost the connection", as after a
        crash. Each member's writer first sends what is pending (``finish``),
        so the goodbye is the last frame it gets. All of it within
        ``STOP_GOODBYE_WAIT`` seconds: a member that does not read is only
        shut down.
        """
        with self._room_lock:
            room = list(self._room)
        deadline = time.monotonic() + STOP_GOODBYE_WAIT
        for member in room:
            member.finish(max(0.0, deadline - time.monotonic()))
            if not member.writer.is_alive() and time.monotonic() < deadline:
                member.channel.goodbye()  # the writer is done: nothing else sends now
            member.wake_reader()

    # --- one connection -------------------------------------------------------------

    def busy_reply(self, text: str) -> bytes:
        """A plain handshake ``error`` frame, code ``busy``: the client shows ``text``."""
        return handshake_busy_reply(text)

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        """Handshake, (handoff), then chat until the client leaves."""
        who = f"{address[0]}:{address[1]}"
        if self.wait_at_the_door(conn, address[0]):  # its handshakes keep failing: slow it down
            return
        channel = self._handshake(conn, who)
        if channel is None:
            return
        key = channel.session.peer_key
        name = self._name_of(key)
        stream, lease = conn, None
        if not self._sessions.take(key, self.settings.max_sessions_per_key):
            limit = self.settings.max_sessions_per_key
            self.emit("busy", f"{name} ({who}) turned away: already {limit} sessions")
            with contextlib.suppress(OSError, LabCryptoError):
                channel.send(
                    busy_message(
                        f"your key already has {limit} conversations open on this server "
                        f"(the most one key may hold): close one first",
                        "sessions",
                        limit=limit,
                    )
                )
            channel.close()
            return
        try:
            if self.pool is not None:
                try:
                    lease, stream = offer_data_port(
                        channel,
                        conn,
                        self.pool,
                        ticket_timeout=self.settings.ticket_timeout,
                        stopping=self._stopping,
                        on_event=self.emit,
                    )
                except PoolExhausted as exc:
                    why = in_english(exc)
                    self.emit("busy", f"{name} ({who}) turned away, pool busy: {why}")
                    return
                except HandoffFailed as exc:
                    why = quote(in_english(exc), 200)
                    self.emit("handoff-failed", f"{name} ({who}): {why}")
                    return
            said_goodbye = self._chat(channel, stream, name, who, control=conn if lease else None)
            if said_goodbye:  # answer it, and let the client close first: see close_after_peer
                channel.goodbye()
                close_after_peer(channel.stream, GOODBYE_LINGER)
        finally:
            channel.close()
            self._sessions.give_back(key)
            if lease is not None:
                lease.release()
                self.emit("pool", f"port {lease.port} returned to the pool")

    def _handshake(self, conn: socket.socket, who: str) -> SecureChannel | None:
        """Run the handshake; None (and an event saying why) if the client is refused."""
        offered: list[PublicKey] = []

        def allow(key: PublicKey) -> bool:
            offered.append(key)
            return self.allowlist is None or self.allowlist.is_allowed(key)

        try:
            channel = SecureChannel.server(
                conn,
                self.key,
                self.mode,
                allow=allow,
                timeout=self.settings.handshake_timeout,
                frame_timeout=self.settings.frame_timeout,
            )
        except KeyNotAllowed as exc:
            self.handshake_finished(conn, False)
            key = f"key {offered[-1].fingerprint}" if offered else "a key"
            why = quote(in_english(exc), 200)
            self.emit("rejected", f"{who} refused: {key} is not allowed ({why})")
        except (LabCryptoError, OSError) as exc:
            stopping = self._stopping.is_set()
            self.handshake_finished(conn, None if stopping else False)
            if not stopping:
                self.emit("handshake-failed", f"{who}{self._claimed(offered, exc)}")
        else:
            self.handshake_finished(conn, True)
            return channel
        return None

    def _claimed(self, offered: list[PublicKey], exc: BaseException) -> str:
        """Why a handshake failed, for the log. A client whose key passed the allowlist had
        one step left, its proof (client_finished): so say whose key it presented and that
        it never proved holding the private half (a client that hangs up there found our
        proof wrong, or knows it cannot make its own)."""
        text = f": {type(exc).__name__}: {quote(in_english(exc), 200)}"
        if not offered:
            return text
        key = offered[-1]
        name = self.allowlist.name_of(key) if self.allowlist is not None else None
        whose = f"{name}'s key ({key.fingerprint})" if name else f"the key {key.fingerprint}"
        if isinstance(exc, ConnectionLost):
            text = ": it hung up before its proof"
        return f" presented {whose} but did not prove it holds the private key{text}"

    def _name_of(self, key: PublicKey) -> str:
        """The allowlist name of ``key``, or its fingerprint without an allowlist."""
        name = self.allowlist.name_of(key) if self.allowlist is not None else None
        return name or key.fingerprint

    def _chat(
        self,
        channel: SecureChannel,
        stream: socket.socket,
        name: str,
        who: str,
        control: socket.socket | None,
    ) -> bool:
        """Chat as ``name`` until it leaves; True if it left with a goodbye."""
        stream.settimeout(self.settings.send_timeout)
        member = _Member(name, channel, stream, who, self.settings.max_pending)
        with self._room_lock:  # welcome first, then every line said after it, none lost
            if self._stopping.is_set():
                member.finish(0)
                return False
            members = [m.name for m in self._room if m.alive]
            member.offer(encode({"type": "welcome", "name": name, "members": [*members, name]}))
            self._room.append(member)
        member.writer.start()
        if control is not None:
            close_stream(control)  # the handshake port has done its job
        where = f" on port {stream.getsockname()[1]}" if control is not None else ""
        self.emit("join", f"{name} joined from {who}{where}")
        self._notice("joined", name=name)
        try:
            return self._read_loop(member)
        finally:
            with self._room_lock:
                self._room.remove(member)
            member.finish(self.settings.send_timeout)
            why = f" ({quote(member.reason, 200)})" if member.reason else ""
            self.emit("leave", f"{name} left{why}")
            if not self._stopping.is_set():
                self._notice("left", name=name)

    def _read_loop(self, member: _Member) -> bool:
        """Deliver what ``member`` says until it leaves, breaks the channel, idles, or we stop.

        A message the room cannot carry gets a notice saying why, and the
        loop goes on; a frame that breaks the *channel* ends it. True if the
        member left with a goodbye.
        """
        idle = self.settings.idle_timeout
        last_heard = time.monotonic()
        while member.alive and not self._stopping.is_set():
            try:
                data = member.channel.recv()
            except TimeoutError:
                if idle and time.monotonic() - last_heard > idle:
                    member.reason = f"silent for {idle:.0f} s"
                    self._tell(member, "idle", seconds=round(idle))
                    return False
                continue
            except ChannelClosed:
                return True  # a clean goodbye
            except (LabCryptoError, OSError) as exc:
                if member.alive and not self._stopping.is_set():
                    member.drop(f"{type(exc).__name__}: {in_english(exc)}")
                return False
            last_heard = time.monotonic()
            if not self._throttle(member):  # every message counts, refused ones too
                return False
            try:
                text = parse_say(data)
            except (LineRefused, ProtocolError) as exc:
                self._tell(member, "refused", **refusal_of(exc))
                continue
            self._deliver(ChatMessage(member.name, text, time.time()))
        return False

    def _throttle(self, member: _Member) -> bool:
        """Wait until ``member`` may say its next line; False if we are stopping meanwhile.

        A token bucket: the member earns its share of ``max_room_rate``
        lines each second, up to ``LINE_BURST``, and each line spends one.
        While it waits, its reader does not read, so TCP slows the sender down.
        """
        if self.settings.max_room_rate is None:
            return True
        with self._room_lock:
            rate = self.settings.max_room_rate / max(1, len(self._room))
        now = time.monotonic()
        member.tokens = min(LINE_BURST, member.tokens + (now - member.refilled) * rate)
        member.refilled = now
        if member.tokens < 1:
            if now - member.warned > 10:
                member.warned = now
                self._tell(member, "slow down", rate=round(rate))
            deadline = now + (1 - member.tokens) / rate
            while time.monotonic() < deadline:  # bounded by the deadline
                if not member.alive or self._stopping.is_set():
                    return False
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            member.tokens, member.refilled = 1.0, time.monotonic()
        member.tokens -= 1
        return True

    # --- delivering -------------------------------------------------------------------

    def _deliver(self, message: ChatMessage) -> None:
        """Give ``message`` to every member (and to ``history``, ``on_message``, events).

        One thread at a time sends the room's lines; the first one with a line
        to deliver becomes that sender. A line that comes while another
        thread sends waits in ``_outbox``, and the sender takes it with
        everything else waiting on its next round: each member then gets all
        of them in one ``send``. So under load the room makes one system call
        per member for a batch of lines instead of one per line, every member
        gets the lines in the same order, and no thread waits for another's
        member lock (when every reader sent its own line, member by member,
        they queued behind each other at each lock: a wake-up per member and
        line, tens of milliseconds per line on a busy machine).
        """
        if message.kind == "message":
            self.history.append(message)
            self.emit("message", f"{message.sender}: {quote(message.text, 200)}")
            if self.on_message is not None:
                try:
                    self.on_message(message)
                except Exception:  # a broken widget must not break the room
                    log.debug("on_message callback failed", exc_info=True)
        with self._outbox_lock:
            self._outbox.append(encode_line(message))
            if self._sending:
                return  # the thread sending now takes it on its next round
            self._sending = True
        try:
            while True:  # ends when the outbox is empty (the room's rate limit bounds it)
                with self._outbox_lock:
                    lines, self._outbox = self._outbox, []
                    if not lines:
                        self._sending = False
                        return
                self._send_to_room(lines)
        except BaseException:
            with self._outbox_lock:
                self._sending = False
            raise

    def _send_to_room(self, lines: list[bytes]) -> None:
        """Hand ``lines`` to every member (one ``send`` each); drop a member too slow for them."""
        with self._room_lock:
            room = list(self._room)
        for member in room:
            if member.alive and not member.offer(*lines):
                member.drop(f"too slow: over {self.settings.max_pending} bytes waiting")

    def _notice(self, code: str, **params: str | int | float) -> None:
        """Tell every member: notice ``code`` (``chat_messages.NOTICES``) with ``params``."""
        self._deliver(notice(code, time.time(), **params))

    def _tell(self, member: _Member, code: str, **params: str | int | float) -> None:
        """Tell one member: notice ``code`` with ``params``."""
        member.offer(encode_line(notice(code, time.time(), **params)))


def _with_changes(settings: ChatSettings, changes: dict[str, Any]) -> ChatSettings:
    """``settings`` with the fields named in ``changes`` replaced; a wrong name says which."""
    known = {field.name for field in fields(ChatSettings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(
            f"ChatServer() got an unexpected keyword argument {unknown[0]!r}; "
            f"its settings are {', '.join(sorted(known))}"
        )
    return replace(settings, **changes)
