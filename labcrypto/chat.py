"""The chat room: the course's message exchange, encrypted, for a whole class.

Notebook 02_exchange starts a ``ChatServer`` on one port; 03_allowlist
turns the allowlist on; 04_two_ports gives it a ``PortPool`` so every
conversation moves to a port of its own after the handshake. The CLI's
``labcrypto serve`` / ``labcrypto chat`` use the same two classes.

How the room works:

* Each client runs the handshake with its static key. The server checks
  the key against the ``Allowlist`` *inside* the handshake, before it sends
  anything encrypted; an unknown key is refused with a plain error message
  and the refusal is logged with the key's fingerprint.
* Every message a client sends is delivered to every connected client —
  the sender too, which is its confirmation that the server got it —
  tagged with the sender's name from the allowlist (not with a name the
  client chose: the key decides who you are).
* ``server.say(text)`` sends an operator message to everyone, as "server".
* Inside the encrypted channel, messages are small JSON objects, never
  ``pickle`` (course mistake 7)::

      client → server   {"type": "say", "text": "hi"}
      server → client   {"type": "welcome", "name": "alice", "members": [...]}
                        {"type": "message", "from": "alice", "text": "hi", "time": ...}
                        {"type": "notice",  "from": "server", "text": "bob joined", ...}

* A line is handed to each member's socket without waiting for it; what
  a member's socket cannot take at once waits in that member's buffer for
  its own writer thread. So one slow or dead client never blocks the
  room: its writer times out, or its buffer overflows, and it is dropped
  while everyone else chats on.
  A client that sends garbage or disconnects in the middle of a frame is
  dropped too.
* Every line costs the server one send per member, so one client in a
  loop could flood the room. The room carries at most ``max_room_rate``
  lines a second; each member may say an equal share of it (after a
  burst of ``LINE_BURST`` lines). A member over its share is told to slow
  down, and the server simply reads its next line later: nothing is lost,
  and TCP makes the flooder wait while everyone else chats on.

Threads never ``print``: the server reports joins, leaves, refusals and
pool use through ``emit`` (``server.events``, ``server.listeners``), and
each chat line through ``server.on_message`` and ``server.history``. The
client hands each incoming message to ``client.messages`` (a queue that
``recv`` reads) and to an optional ``on_message`` callback for widgets.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .allowlist import Allowlist
from .channel import SecureChannel
from .client import Known, ServerKey, open_channel
from .errors import (
    ChannelClosed,
    ConnectionLost,
    HandoffFailed,
    KeyNotAllowed,
    LabCryptoError,
    MalformedMessage,
    PoolExhausted,
    ProtocolError,
)
from .handoff import DEFAULT_TICKET_TIMEOUT, offer_data_port
from .handshake import MODES, decode_message, encode_message
from .keys import KeyPair, PublicKey
from .ports import PortPool
from .server import ThreadedServer

__all__ = ["LINE_BURST", "MAX_TEXT", "SERVER_NAME", "ChatClient", "ChatMessage", "ChatServer"]

log = logging.getLogger("labcrypto.chat")

#: The name operator messages and notices are tagged with.
SERVER_NAME = "server"
#: The longest chat message, in characters.
MAX_TEXT = 4000
#: Lines a member may say at once before its share of the room's rate applies.
LINE_BURST = 50


@dataclass(frozen=True)
class ChatMessage:
    """One line of the chat: who sent it, what it says, when the server got it.

    ``kind`` is ``"message"`` for what people (or the operator) said and
    ``"notice"`` for the server's announcements (joins, leaves, warnings).
    """

    sender: str
    text: str
    time: float
    kind: str = "message"


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"a chat message is text (str), got {type(text).__name__}")
    if not text.strip():
        raise ValueError("cannot send an empty chat message")
    if len(text) > MAX_TEXT:
        raise ValueError(f"a chat message has at most {MAX_TEXT} characters, got {len(text)}")
    return text


def _encode_line(message: ChatMessage) -> bytes:
    return encode_message(
        {"type": message.kind, "from": message.sender, "text": message.text, "time": message.time}
    )


def _decode_line(data: bytes) -> ChatMessage:
    """A server's ``message`` or ``notice``, checked field by field."""
    fields = decode_message(data)
    sender, text, when = fields.get("from"), fields.get("text"), fields.get("time")
    if (
        fields["type"] not in ("message", "notice")
        or not isinstance(sender, str)
        or not isinstance(text, str)
        or not isinstance(when, (int, float))
    ):
        raise MalformedMessage(f"not a chat line: {data[:80]!r}")
    return ChatMessage(sender, text, float(when), fields["type"])


# --- the server ------------------------------------------------------------------


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

    def offer(self, message: bytes) -> bool:
        """Seal ``message`` for this member and send it, or queue it; False if too slow."""
        with self._lock:
            if not self.alive:
                return True
            try:
                frame = self.channel.seal_frame(message)
                sent = 0
                if not self._pending and not self._writing:
                    sent = self._now.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0  # the socket's buffer is full: the writer will wait for it
            except (OSError, LabCryptoError):
                return True  # the connection is gone; its reader notices and cleans up
            frame = frame[sent:]
            if frame:
                self._pending += frame
                self._wake.notify()
            return len(self._pending) <= self.max_pending

    def _write_loop(self) -> None:
        """Send what ``offer`` could not, in order; bounded by ``alive`` and the socket timeout."""
        while self.alive:
            with self._lock:
                if not self._pending:
                    self._wake.wait(0.5)
                    continue
                chunk = bytes(self._pending)
                self._pending.clear()
                self._writing = True
            try:
                self.stream.sendall(chunk)
            except OSError as exc:
                self.drop(f"sending failed ({type(exc).__name__}: {exc})")
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
        """Stop the writer thread and wait for it (at most ``timeout`` seconds)."""
        with self._lock:
            self.alive = False
            self._wake.notify()
        if self.writer.ident is not None:
            self.writer.join(timeout)
        self._now.close()


class ChatServer(ThreadedServer):
    """A chat room over ``SecureChannel``, one thread per client (plus its writer).

    ``key``: the server's static ``KeyPair`` (its group must match ``mode``).
    ``allowlist``: who may join; None lets every valid key in, named by its
    fingerprint (only for notebook 03's "what goes wrong" demo).
    ``pool``: None for one port (notebook 02), or a ``PortPool`` for the
    two-port handoff (notebook 04), with ``ticket_timeout`` seconds for the
    client to come to its data port.
    ``send_timeout``: a member that does not take a message within this
    time is dropped; ``max_pending``: bytes waiting for one member before
    it counts as too slow. ``idle_timeout``: drop a member silent this long
    (None: never). ``max_room_rate``: lines per second the whole room
    carries, shared equally among the members (None: no limit).
    ``handshake_timeout`` bounds the whole handshake and
    ``frame_timeout`` each message from its first byte to its last, so a
    client that sends a byte a second is dropped too. The rest is
    ``ThreadedServer``'s.
    """

    def __init__(
        self,
        key: KeyPair,
        allowlist: Allowlist | None = None,
        *,
        mode: str = "secure",
        pool: PortPool | None = None,
        ticket_timeout: float = DEFAULT_TICKET_TIMEOUT,
        handshake_timeout: float = 10.0,
        frame_timeout: float = 10.0,
        send_timeout: float = 2.0,
        max_pending: int = 1 << 20,
        idle_timeout: float | None = None,
        max_room_rate: float | None = 2000.0,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        connection_timeout: float = 30.0,
        max_connections: int = 200,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if key.group != MODES[mode]:
            raise ValueError(
                f"{mode} mode uses group {MODES[mode].name}, but the server key is in "
                f"{key.group.name}: load or make a key for this mode"
            )
        super().__init__(
            host,
            port,
            name=name,
            connection_timeout=connection_timeout,
            max_connections=max_connections,
        )
        self.key = key
        self.allowlist = allowlist
        self.mode = mode
        self.pool = pool
        self.ticket_timeout = ticket_timeout
        self.handshake_timeout = handshake_timeout
        self.frame_timeout = frame_timeout
        self.send_timeout = send_timeout
        self.max_pending = max_pending
        self.idle_timeout = idle_timeout
        self.max_room_rate = max_room_rate
        #: Called with every ``ChatMessage`` the room delivers (from a server thread).
        self.on_message: Callable[[ChatMessage], None] | None = None
        #: The last 1000 messages of the room, oldest first.
        self.history: deque[ChatMessage] = deque(maxlen=1000)
        self._room: list[_Member] = []
        self._room_lock = threading.Lock()

    # --- what the operator does -----------------------------------------------------

    def say(self, text: str) -> ChatMessage:
        """Send an operator message to everyone in the room, tagged ``"server"``."""
        message = ChatMessage(SERVER_NAME, _check_text(text), time.time())
        self._deliver(message)
        return message

    def members(self) -> list[str]:
        """The names of the connected clients, in the order they joined."""
        with self._room_lock:
            return [member.name for member in self._room if member.alive]

    def on_stop(self) -> None:
        """Wake every member's thread so ``stop()`` can join it quickly."""
        with self._room_lock:
            room = list(self._room)
        for member in room:
            member.wake_reader()

    # --- one connection -------------------------------------------------------------

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        """Handshake, (handoff), then chat until the client leaves."""
        who = f"{address[0]}:{address[1]}"
        channel = self._handshake(conn, who)
        if channel is None:
            return
        name = self._name_of(channel.session.peer_key)
        stream, lease = conn, None
        try:
            if self.pool is not None:
                try:
                    lease, stream = offer_data_port(
                        channel,
                        conn,
                        self.pool,
                        ticket_timeout=self.ticket_timeout,
                        stopping=self._stopping,
                        on_event=self.emit,
                    )
                except PoolExhausted as exc:
                    self.emit("busy", f"{name} ({who}) turned away, pool busy: {exc}")
                    return
                except HandoffFailed as exc:
                    self.emit("handoff-failed", f"{name} ({who}): {exc}")
                    return
            self._chat(channel, stream, name, who, control=conn if lease else None)
        finally:
            channel.close()
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
            return SecureChannel.server(
                conn,
                self.key,
                self.mode,
                allow=allow,
                timeout=self.handshake_timeout,
                frame_timeout=self.frame_timeout,
            )
        except KeyNotAllowed as exc:
            key = f"key {offered[-1].fingerprint}" if offered else "a key"
            self.emit("rejected", f"{who} refused: {key} is not allowed ({exc})")
        except (LabCryptoError, OSError) as exc:
            if not self._stopping.is_set():
                self.emit("handshake-failed", f"{who}: {type(exc).__name__}: {exc}")
        return None

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
    ) -> None:
        stream.settimeout(self.send_timeout)
        member = _Member(name, channel, stream, who, self.max_pending)
        with self._room_lock:  # welcome first, then every line said after it, none lost
            if self._stopping.is_set():
                member.finish(0)
                return
            members = [m.name for m in self._room if m.alive]
            member.offer(
                encode_message({"type": "welcome", "name": name, "members": [*members, name]})
            )
            self._room.append(member)
        member.writer.start()
        if control is not None:
            _close(control)  # the handshake port has done its job
        where = f" on port {stream.getsockname()[1]}" if control is not None else ""
        self.emit("join", f"{name} joined from {who}{where}")
        self._notice(f"{name} joined")
        try:
            self._read_loop(member)
        finally:
            with self._room_lock:
                self._room.remove(member)
            member.finish(self.send_timeout)
            self.emit("leave", f"{name} left" + (f" ({member.reason})" if member.reason else ""))
            if not self._stopping.is_set():
                self._notice(f"{name} left")

    def _read_loop(self, member: _Member) -> None:
        """Deliver what ``member`` says until it leaves, breaks the protocol, or we stop."""
        last_heard = time.monotonic()
        while member.alive and not self._stopping.is_set():
            try:
                data = member.channel.recv()
            except TimeoutError:
                if self.idle_timeout and time.monotonic() - last_heard > self.idle_timeout:
                    member.drop(f"silent for {self.idle_timeout:.0f} s")
                continue
            except ChannelClosed:
                return  # a clean goodbye
            except (LabCryptoError, OSError) as exc:
                if member.alive and not self._stopping.is_set():
                    member.drop(f"{type(exc).__name__}: {exc}")
                return
            last_heard = time.monotonic()
            try:
                text = self._parse_say(data)
            except ProtocolError as exc:
                member.drop(f"broke the chat protocol: {exc}")
                return
            if len(text) > MAX_TEXT or not text.strip():
                self._tell(member, f"message refused: 1 to {MAX_TEXT} characters, please")
                continue
            if not self._throttle(member):
                return
            self._deliver(ChatMessage(member.name, text, time.time()))

    def _throttle(self, member: _Member) -> bool:
        """Wait until ``member`` may say its next line; False if we are stopping meanwhile.

        A token bucket: the member earns its share of ``max_room_rate``
        lines each second, up to ``LINE_BURST``, and each line spends one.
        While it waits, its reader does not read, so TCP slows the sender down.
        """
        if self.max_room_rate is None:
            return True
        with self._room_lock:
            rate = self.max_room_rate / max(1, len(self._room))
        now = time.monotonic()
        member.tokens = min(LINE_BURST, member.tokens + (now - member.refilled) * rate)
        member.refilled = now
        if member.tokens < 1:
            if now - member.warned > 10:
                member.warned = now
                self._tell(
                    member,
                    f"slow down: at most {rate:.0f} lines per second each in this room; "
                    "your next lines wait",
                )
            deadline = now + (1 - member.tokens) / rate
            while time.monotonic() < deadline:  # bounded by the deadline
                if not member.alive or self._stopping.is_set():
                    return False
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            member.tokens, member.refilled = 1.0, time.monotonic()
        member.tokens -= 1
        return True

    @staticmethod
    def _parse_say(data: bytes) -> str:
        fields = decode_message(data)
        text = fields.get("text")
        if fields["type"] != "say" or not isinstance(text, str):
            raise MalformedMessage(f"expected a 'say' message with text, got {data[:80]!r}")
        return text

    # --- delivering -------------------------------------------------------------------

    def _deliver(self, message: ChatMessage) -> None:
        """Give ``message`` to every member (and to ``history``, ``on_message``, events)."""
        if message.kind == "message":
            self.history.append(message)
            self.emit("message", f"{message.sender}: {message.text}")
            if self.on_message is not None:
                try:
                    self.on_message(message)
                except Exception:  # a broken widget must not break the room
                    log.debug("on_message callback failed", exc_info=True)
        payload = _encode_line(message)
        with self._room_lock:
            room = list(self._room)
        for member in room:
            if member.alive and not member.offer(payload):
                member.drop(f"too slow: over {self.max_pending} bytes waiting")

    def _notice(self, text: str) -> None:
        self._deliver(ChatMessage(SERVER_NAME, text, time.time(), "notice"))

    def _tell(self, member: _Member, text: str) -> None:
        member.offer(_encode_line(ChatMessage(SERVER_NAME, text, time.time(), "notice")))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


# --- the client ------------------------------------------------------------------

_END = object()  # put in the queue when the conversation is over


class ChatClient:
    """One member of a chat room: ``send`` lines, ``recv`` or iterate what arrives.

    Make one with ``ChatClient.connect(host, port, key, ...)``. A background
    thread reads the server's messages and puts each ``ChatMessage`` in
    ``messages`` (what ``recv`` reads) and, if set, calls
    ``on_message(message)`` — from that thread, so a widget callback must
    only update widget values, never ``print``. Your own lines come back
    too: that is the server's confirmation. Use it in a ``with`` block, or
    call ``close()``.
    """

    def __init__(
        self,
        channel: SecureChannel,
        welcome: dict[str, Any],
        *,
        on_message: Callable[[ChatMessage], None] | None = None,
        timeout: float = 5.0,
        queue_size: int = 10_000,
    ) -> None:
        name, members = welcome.get("name"), welcome.get("members")
        if welcome.get("type") != "welcome" or not isinstance(name, str):
            raise MalformedMessage("the server did not welcome us to a chat: is it a chat server?")
        self.channel = channel
        #: Our name in the room, as the server's allowlist has it.
        self.name = name
        #: Who was in the room when we joined (ourselves included).
        self.members_at_join = [m for m in members if isinstance(m, str)] if members else []
        self.on_message = on_message
        self.messages: queue.Queue[Any] = queue.Queue(queue_size)
        self.timeout = timeout
        self.data_port: int | None = None
        self._error: LabCryptoError | None = None
        self._closing = threading.Event()
        _settimeout(channel, timeout)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"chat-client-{name}", daemon=True
        )
        self._reader.start()

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        key: KeyPair,
        *,
        server_key: ServerKey = None,
        known_servers: Known = None,
        mode: str = "secure",
        timeout: float = 5.0,
        on_message: Callable[[ChatMessage], None] | None = None,
    ) -> ChatClient:
        """Join the chat at ``host:port`` with our ``key``; follow a handoff if offered.

        ``server_key`` pins the server (a ``PublicKey``, a ``.pub`` path or a
        fingerprint). Without it the key is checked against
        ``known_servers`` (trust on first use; see ``labcrypto.client``).
        Raises ``KeyNotAllowed``, ``ServerKeyChanged``, ``PoolExhausted``,
        ``ConnectionRefusedError`` or ``TimeoutError``, each saying what to do.
        """
        opened = open_channel(
            host,
            port,
            key,
            server_key=server_key,
            known_servers=known_servers,
            mode=mode,
            timeout=timeout,
        )
        try:
            client = cls(opened.channel, opened.first, on_message=on_message, timeout=timeout)
        except BaseException:
            opened.channel.close()
            raise
        client.data_port = opened.data_port
        return client

    # --- talking ----------------------------------------------------------------------

    def send(self, text: str) -> None:
        """Send one line to the room (it comes back to us too, as confirmation)."""
        _check_text(text)
        if self._closing.is_set() or self._error is not None:
            raise ChannelClosed("this chat connection is closed; connect again")
        try:
            self.channel.send(encode_message({"type": "say", "text": text}))
        except OSError as exc:
            raise ConnectionLost(
                f"could not send to the chat server ({exc}); connect again"
            ) from None

    def recv(self, timeout: float | None = 5.0) -> ChatMessage:
        """The next incoming message; ``TimeoutError`` if none within ``timeout`` seconds.

        Once the conversation is over (and everything that arrived has been
        read), raises ``ChannelClosed`` or ``ConnectionLost`` saying why.
        """
        try:
            item = self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no chat message arrived within {timeout} s") from None
        if item is _END:
            self._put(_END)  # keep telling later callers, too
            assert self._error is not None
            raise self._error
        return item

    def iter_messages(self, timeout: float = 5.0) -> Iterator[ChatMessage]:
        """Yield incoming messages until none arrives for ``timeout`` s or the chat ends."""
        while True:
            try:
                yield self.recv(timeout)
            except (TimeoutError, ChannelClosed, ConnectionLost):
                return

    def __iter__(self) -> Iterator[ChatMessage]:
        return self.iter_messages(self.timeout)

    @property
    def connected(self) -> bool:
        """True until we close or the server ends the conversation."""
        return self._error is None and not self._closing.is_set()

    # --- the background reader ----------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            try:
                message = _decode_line(self.channel.recv())
            except TimeoutError:
                continue
            except ChannelClosed:
                self._finish(ChannelClosed("the server ended the chat (stopped, or dropped us)"))
                return
            except (LabCryptoError, OSError) as exc:
                if self._closing.is_set():
                    break
                self._finish(ConnectionLost(f"lost the chat connection: {exc}; connect again"))
                return
            self._put(message)
            if self.on_message is not None:
                try:
                    self.on_message(message)
                except Exception:  # a broken widget must not stop the reader
                    log.debug("on_message callback failed", exc_info=True)
        self._finish(ChannelClosed("this chat connection is closed; connect again"))

    def _finish(self, error: LabCryptoError) -> None:
        if self._error is None:
            self._error = error
        self._put(_END)

    def _put(self, item: object) -> None:
        """Queue ``item``; when the queue is full, the oldest message makes room."""
        for _ in range(3):
            try:
                self.messages.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self.messages.get_nowait()

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Say goodbye, close the connection and stop the reader thread. Idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        # Wake the reader first and wait for it, *then* close the socket: closing
        # a socket that another thread is about to read lets the OS give its
        # number to the next socket opened, and the reader would wait on that one.
        shutdown = getattr(self.channel.stream, "shutdown", None)
        if shutdown is not None:
            with contextlib.suppress(OSError):
                shutdown(socket.SHUT_RD)  # reading ends; the goodbye can still be sent
        self._reader.join(self.timeout + 1.0)
        self.channel.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        port = f", data port {self.data_port}" if self.data_port else ""
        return f"<ChatClient {self.name} {state}{port}>"


def _settimeout(channel: SecureChannel, timeout: float) -> None:
    settimeout = getattr(channel.stream, "settimeout", None)
    if settimeout is not None:
        settimeout(timeout)
