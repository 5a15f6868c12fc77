"""``SecureChannel``: frames plus encryption over any byte stream (task 2).

TCP is a stream of bytes, not of messages: one ``send`` may arrive as three
``recv`` results, or two sends as one. Taking one ``recv(1024)`` as one
message is the classic bug (course mistake 6). So every message on the
wire is a *frame*: a 4-byte big-endian length, then that many bytes::

    +--------+--------+--------+--------+------------------- ... ---+
    |     length (unsigned, big-endian) |  payload (length bytes)    |
    +--------+--------+--------+--------+------------------- ... ---+

The length is checked against a limit (default 1 MiB) *before* reading the
payload, so a peer cannot make us allocate 4 GiB by sending four bytes.

``SecureChannel`` runs the handshake (``handshake``) over frames, then
encrypts every frame with the session's cipher. Until the handshake is
done a frame may be at most 16 KiB (``MAX_HANDSHAKE_MESSAGE``): a stranger
who has proved nothing cannot make us buffer a megabyte. A message loop sees only
``send`` and ``recv``: that is the separation task 2 asks for — key
generation and encryption live here, the loop knows nothing about them.

The stream can be anything with ``sendall`` and ``recv_into`` (a socket,
either end of ``socket.socketpair()``); this module opens no sockets itself.

Closing: ``close()`` first sends an encrypted empty message ("close
notify", as in TLS), so the peer can tell a clean goodbye from a
connection cut by an attacker or a crash (``ConnectionLost``). That
holds in the secure and static modes, where the goodbye is sealed; in toy
mode an empty frame from anyone is a goodbye (toy mode protects nothing).

Failing: a frame that fails authentication, a cut or an oversized frame,
or a session key that has sealed all it may (``SessionExhausted``) closes
the channel for good, and every later ``send`` or ``recv`` raises the same
error again — a loop ``for message in channel`` ends with that error, never
as if the peer had said goodbye.
"""

from __future__ import annotations

import copy
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from .ciphers import TAG_SIZE
from .errors import (
    ChannelClosed,
    ConnectionLost,
    FrameTooLarge,
    LabCryptoError,
    MalformedMessage,
    NoAnswer,
    PeerTooSlow,
    ProtocolError,
)
from .handshake import MAX_HANDSHAKE_MESSAGE, ClientHandshake, ServerHandshake, Session
from .i18n import N_
from .key_pool import EphemeralPool
from .keys import KeyPair, PublicKey, RandomSource
from .streams import close_stream, set_timeout

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER",
    "ByteStream",
    "FrameDecoder",
    "FrameReader",
    "SecureChannel",
    "encode_frame",
    "read_frame",
    "write_frame",
]

_T = TypeVar("_T")

#: The 4-byte length in front of every frame: "!I" = network order, unsigned int.
HEADER = struct.Struct("!I")
#: Largest frame payload we accept by default (1 MiB).
DEFAULT_MAX_FRAME = 1 << 20


class ByteStream(Protocol):
    """What a channel needs from a stream: a socket has all of these."""

    def sendall(self, data: bytes | memoryview, /) -> None: ...
    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int: ...


def _check_length(length: int, max_size: int) -> None:
    if length > max_size:
        raise FrameTooLarge(
            N_("the peer announced a frame of {length} bytes; the limit is {limit}. "
               "Refused before reading it."),
            length=length,
            limit=max_size,
        )


def encode_frame(payload: bytes, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """Length prefix + payload, as one ``bytes`` (send it with one ``sendall``)."""
    if len(payload) > max_size:
        raise FrameTooLarge(
            N_("a {size}-byte frame is over the {limit}-byte limit: split the data"),
            size=len(payload),
            limit=max_size,
        )
    return HEADER.pack(len(payload)) + payload


def write_frame(stream: ByteStream, payload: bytes, max_size: int = DEFAULT_MAX_FRAME) -> None:
    """Send one frame. Header and payload go in one ``sendall``: two small writes
    would each wait on Nagle's algorithm and delayed ACKs (~40 ms)."""
    stream.sendall(encode_frame(payload, max_size))


class FrameDecoder:
    """Sans-IO frame parser: ``feed`` it any bytes, get whole frames back.

    Bytes may arrive one at a time or many frames at once; the decoder
    keeps what it has not used yet. Used by the wiretap and the tests.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame it completes (maybe none)."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            _check_length(length, self.max_size)
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return frames


class FrameReader:
    """Reads frames from a blocking stream with ``recv_into``, without extra copies.

    If the stream times out in the middle of a frame, the part already read
    is kept and the next ``read`` continues from there, so a timeout never
    shifts the stream out of step.

    A socket timeout bounds each ``recv``, not a whole frame: a peer that
    sends one byte a second ("slowloris") would never trip it. So a frame
    that has begun must be whole within ``frame_timeout`` seconds (None: no
    limit), or ``PeerTooSlow`` is raised; ``read(..., deadline=)`` bounds
    one whole read (the handshake uses it).
    """

    def __init__(
        self, max_size: int = DEFAULT_MAX_FRAME, frame_timeout: float | None = None
    ) -> None:
        self.max_size = max_size
        self.frame_timeout = frame_timeout
        self._header = bytearray(HEADER.size)
        self._payload: bytearray | memoryview | None = None  # None while reading a header
        self._filled = 0  # bytes of the current buffer (header or payload) read so far
        self._started = 0.0  # time.monotonic() when the current frame's first byte came

    def _check_time(
        self, stream: ByteStream, buffer: bytearray | memoryview, deadline: float | None
    ) -> None:
        """Before each ``recv``: is the read's deadline or the frame's time up?"""
        now = time.monotonic()
        if deadline is not None:
            if now >= deadline:
                raise NoAnswer(N_("the peer did not send what it had to in time"))
            set_timeout(stream, deadline - now)  # the last recv may not overshoot
        begun = buffer is not self._header or self._filled > 0
        if begun and self.frame_timeout is not None and now - self._started > self.frame_timeout:
            raise PeerTooSlow(
                N_("a frame took over {seconds} s to arrive: the peer stalled (or sends a byte "
                   "now and then to hold the connection); dropped"),
                seconds=self.frame_timeout,
            )

    def _fill(
        self, stream: ByteStream, buffer: bytearray | memoryview, deadline: float | None
    ) -> None:
        """Read into ``buffer`` until it is full, remembering progress in ``_filled``."""
        view = memoryview(buffer)
        while self._filled < len(buffer):
            if deadline is not None or self.frame_timeout is not None:
                self._check_time(stream, buffer, deadline)
            n = stream.recv_into(view[self._filled :])
            if n == 0:
                if buffer is self._header and self._filled == 0:
                    raise ChannelClosed(N_("end of stream"))
                raise ConnectionLost(
                    N_("the connection closed in the middle of a frame ({got} of {size} "
                       "bytes read)"),
                    got=self._filled,
                    size=len(buffer),
                )
            if self._filled == 0 and buffer is self._header:
                self._started = time.monotonic()
            self._filled += n

    def read(
        self, stream: ByteStream, deadline: float | None = None, into: bytearray | None = None
    ) -> bytearray | memoryview:
        """The next frame's payload. ``ChannelClosed`` at a clean end of stream;
        ``TimeoutError`` if it is not whole by ``deadline`` (a ``time.monotonic()``).

        With ``into`` (at least ``max_size`` bytes) the payload is read into
        that buffer and returned as a view of it, valid until the next read:
        bulk transfers reuse one buffer instead of making one per frame.
        """
        if self._payload is None:
            self._fill(stream, self._header, deadline)
            (length,) = HEADER.unpack(self._header)
            _check_length(length, self.max_size)
            if into is not None and len(into) >= length:
                self._payload = memoryview(into)[:length]
            else:
                self._payload = bytearray(length)
            self._filled = 0
        self._fill(stream, self._payload, deadline)
        payload, self._payload, self._filled = self._payload, None, 0
        return payload


def read_frame(stream: ByteStream, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """Read exactly one frame (``ChannelClosed`` if the stream ended cleanly first)."""
    return bytes(FrameReader(max_size).read(stream))


def _handshake_frame(
    reader: FrameReader, stream: ByteStream, deadline: float | None, peer: str
) -> bytes:
    """One handshake frame (at most 16 KiB), with the handshake's own errors."""
    try:
        return bytes(reader.read(stream, deadline))
    except ChannelClosed:
        raise ConnectionLost(
            N_("the server closed the connection during the handshake")
            if peer == "server"
            else N_("the client closed the connection during the handshake")
        ) from None
    except FrameTooLarge as exc:  # refused before reading it
        raise MalformedMessage(N_("handshake frame refused: {error}"), error=exc) from None


class SecureChannel:
    """An encrypted, framed conversation over a stream, after a handshake.

    Make one with ``SecureChannel.client(...)`` or ``SecureChannel.server(...)``
    (they run the handshake), then ``send`` and ``recv`` messages. Any
    authentication failure closes the channel: no second chances.

    Sending and receiving may happen in two different threads (a chat
    client reads in the background while the notebook sends).
    """

    def __init__(
        self, stream: ByteStream, session: Session, *, max_frame: int = DEFAULT_MAX_FRAME
    ) -> None:
        self.stream = stream
        self.session = session
        self.max_frame = max_frame
        self._sealer, self._opener = session.ciphers()
        self._reader = FrameReader(max_frame)
        # Reused for every frame: sending seals into _send_buffer (grown to the
        # largest frame so far), recv_into reads into _recv_buffer (made on first use).
        self._send_buffer = bytearray()
        self._recv_buffer: bytearray | None = None
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self.closed = False
        self._said_goodbye = False
        #: The error that broke this channel; raised again by every later call.
        self.failure: LabCryptoError | None = None
        self.peer_closed = False
        #: Optional hook ``(direction, wire_bytes)`` for notebooks that show the traffic.
        self.on_wire: Callable[[str, bytes], None] | None = None

    # --- opening ----------------------------------------------------------------

    @classmethod
    def client(
        cls,
        stream: ByteStream,
        static: KeyPair,
        mode: str = "secure",
        *,
        service: str = "chat",
        expected_server_key: PublicKey | str | None = None,
        timeout: float | None = 10.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        rng: RandomSource | None = None,
        ephemeral: bool | None = None,
        ephemeral_pool: EphemeralPool | None = None,
    ) -> SecureChannel:
        """Run the client handshake over ``stream``; return the open channel.

        ``service`` must be what the server offers (``"chat"``, ``"files"``).
        ``ephemeral`` is kept for old callers: secure mode always uses them.
        ``ephemeral_pool``: the handshake takes its fresh ephemeral key pair
        from it, and while the server works out its half we make the pair
        for the next handshake (``key_pool``); without one the pair is made
        in the handshake, while the server waits for our hello.
        """
        handshake = ClientHandshake(
            static,
            mode,
            service=service,
            expected_server_key=expected_server_key,
            rng=rng,
            ephemeral=ephemeral,
            ephemeral_keys=None if ephemeral_pool is None else ephemeral_pool.take,
        )
        set_timeout(stream, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        write_frame(stream, handshake.start())
        if ephemeral_pool is not None and handshake.ephemeral:
            ephemeral_pool.refill()  # the server is busy with its half meanwhile
        reader = FrameReader(MAX_HANDSHAKE_MESSAGE)
        while not handshake.done:
            for reply in handshake.receive(_handshake_frame(reader, stream, deadline, "server")):
                write_frame(stream, reply)
        set_timeout(stream, timeout)  # the deadline shortened it
        assert handshake.session is not None
        channel = cls(stream, handshake.session, max_frame=max_frame)
        reader.max_size = max_frame  # the handshake is done: full-size frames from now on
        channel._reader = reader
        return channel

    @classmethod
    def server(
        cls,
        stream: ByteStream,
        static: KeyPair,
        mode: str = "secure",
        *,
        service: str = "chat",
        allow: Callable[[PublicKey], bool] | None = None,
        timeout: float | None = 10.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        frame_timeout: float | None = None,
        rng: RandomSource | None = None,
        require_ephemeral: bool = False,
        ephemeral_pool: EphemeralPool | None = None,
    ) -> SecureChannel:
        """Run the server handshake over ``stream``; return the open channel.

        ``timeout`` bounds the *whole* handshake, not just each ``recv``: a
        client that sends a byte a second is cut off all the same
        (``TimeoutError``). ``frame_timeout``: afterwards, each frame must
        arrive whole within that many seconds (``PeerTooSlow``; None: no limit).
        ``ephemeral_pool``: as for ``client`` (the next pair is made while
        the client works out its half).

        On a refused client (not allowed, bad value, wrong version) it sends
        the client one plain ``error`` message and re-raises, so the caller
        can log it and close the connection. Nothing encrypted was sent.
        """
        handshake = ServerHandshake(
            static,
            mode,
            service=service,
            allow=allow,
            rng=rng,
            require_ephemeral=require_ephemeral,
            ephemeral_keys=None if ephemeral_pool is None else ephemeral_pool.take,
        )
        set_timeout(stream, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        reader = FrameReader(MAX_HANDSHAKE_MESSAGE)  # a stranger gets 16 KiB, not 1 MiB
        while not handshake.done:
            try:
                replies = handshake.receive(_handshake_frame(reader, stream, deadline, "client"))
            except LabCryptoError as exc:
                try:
                    write_frame(stream, ServerHandshake.error_message(exc))
                except OSError:
                    pass  # the client is already gone; nothing to tell it
                raise
            if replies:
                # One sendall for both hello and finished: one packet, no Nagle stall.
                stream.sendall(b"".join(encode_frame(r, max_frame) for r in replies))
                if ephemeral_pool is not None and handshake.ephemeral:
                    ephemeral_pool.refill()  # the client is busy with its half meanwhile
        set_timeout(stream, timeout)  # the deadline shortened it
        assert handshake.session is not None
        channel = cls(stream, handshake.session, max_frame=max_frame)
        reader.max_size = max_frame  # the client proved its key: full-size frames from now on
        reader.frame_timeout = frame_timeout
        channel._reader = reader
        return channel

    # --- talking ----------------------------------------------------------------

    @property
    def max_message(self) -> int:
        """The largest message ``send`` accepts (the frame limit minus the tag)."""
        return self.max_frame - (0 if self.session.mode == "toy" else TAG_SIZE)

    def send(self, message: bytes | bytearray | memoryview | str) -> None:
        """Encrypt and send one message (``str`` is sent as UTF-8)."""
        data = message.encode("utf-8") if isinstance(message, str) else memoryview(message)
        if not data:
            raise ValueError("cannot send an empty message (empty means 'goodbye' on the wire)")
        if len(data) > self.max_message:
            raise FrameTooLarge(
                N_("a {size}-byte message is over the {limit}-byte limit: split it into "
                   "several messages"),
                size=len(data),
                limit=self.max_message,
            )
        self._send_sealed(data)

    def seal_frame(self, message: bytes | str) -> bytes:
        """Encrypt one message into a whole frame, *without* sending it.

        For servers that do their own writing: the chat room seals a line
        for each member and hands it to that member's socket without
        waiting for it. Send the frames in the order they were sealed (each
        carries the next message counter) and do not mix with ``send``.
        """
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if not data:
            raise ValueError("cannot seal an empty message (empty means 'goodbye' on the wire)")
        if len(data) > self.max_message:
            raise FrameTooLarge(
                N_("a {size}-byte message is over the {limit}-byte limit: split it into "
                   "several messages"),
                size=len(data),
                limit=self.max_message,
            )
        with self._send_lock:
            self._check_open()
            frame = encode_frame(self._guarded(self._sealer.seal, data), self.max_frame)
            if self.on_wire is not None:
                self.on_wire("sent", frame)
            return frame

    def _check_open(self) -> None:
        """Raise the error that broke the channel, or ``ChannelClosed`` after ``close``."""
        if self.failure is not None:
            raise copy.copy(self.failure).with_traceback(None)
        if self.closed:
            raise ChannelClosed(N_("this channel is closed; open a new connection"))

    def _fail(self, exc: LabCryptoError) -> None:
        """Break the channel for good: remember why, close the stream (no goodbye)."""
        if self.failure is None:
            self.failure = exc
        self.closed = True
        close_stream(self.stream)

    def _guarded(self, step: Callable[..., _T], *args: object) -> _T:
        """Run one cipher step; a failure (tampering, a key used up) breaks the channel."""
        try:
            return step(*args)
        except ProtocolError as exc:
            self._fail(exc)
            raise

    def _send_sealed(self, data: bytes | memoryview) -> None:
        """Seal ``data`` into the send buffer behind room for the header, then send
        header, ciphertext and tag with one ``sendall``: no new object, no copy,
        one write (two small writes would each wait on Nagle's algorithm)."""
        with self._send_lock:
            self._check_open()
            needed = HEADER.size + len(data) + TAG_SIZE
            if len(self._send_buffer) < needed:
                self._send_buffer = bytearray(needed)
            buffer = memoryview(self._send_buffer)
            length = self._guarded(self._sealer.seal_into, data, buffer[HEADER.size :])
            HEADER.pack_into(buffer, 0, length)
            frame = buffer[: HEADER.size + length]
            if self.on_wire is not None:
                self.on_wire("sent", bytes(frame))
            self.stream.sendall(frame)

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message. Raises ``ChannelClosed`` once the peer said goodbye,
        ``TimeoutError`` if nothing whole arrived within ``timeout`` seconds
        (the partial frame is kept for the next call), ``DecryptionFailed`` or
        ``ConnectionLost`` if the stream was tampered with or cut."""
        with self._recv_lock:
            payload = self._read_payload(timeout)
            message = self._guarded(self._opener.open, payload)
            if not message:
                self.peer_closed = True
                raise ChannelClosed(N_("the peer has closed the conversation"))
            return message

    def recv_into(self, buffer: bytearray, timeout: float | None = None) -> memoryview:
        """``recv`` for bulk data: the next message, decrypted into ``buffer``.

        Returns a view of the start of ``buffer`` holding the message (it
        changes when ``buffer`` does). The frame is read into a buffer the
        channel keeps and decrypted from there into yours, so a file
        transfer makes no new object per frame. ``buffer`` must have room
        for the largest message (``max_message`` bytes). Same errors as ``recv``.
        """
        if len(buffer) < self.max_message:
            raise ValueError(f"recv_into needs a buffer of {self.max_message} bytes")
        with self._recv_lock:
            if self._recv_buffer is None:
                self._recv_buffer = bytearray(self.max_frame)
            payload = self._read_payload(timeout, self._recv_buffer)
            out = memoryview(buffer)
            length = self._guarded(self._opener.open_into, payload, out)
            if not length:
                self.peer_closed = True
                raise ChannelClosed(N_("the peer has closed the conversation"))
            return out[:length]

    def _read_payload(
        self, timeout: float | None, into: bytearray | None = None
    ) -> bytearray | memoryview:
        """The next frame's payload, still sealed (call with ``_recv_lock`` held)."""
        if self.failure is not None:
            self._check_open()  # raises the error that broke the channel
        if self.peer_closed:
            raise ChannelClosed(N_("the peer has closed the conversation"))
        if timeout is not None:
            set_timeout(self.stream, timeout)
        try:
            payload = self._reader.read(self.stream, into=into)
        except ChannelClosed:
            self._fail(
                ConnectionLost(
                    N_(
                        "the connection ended without a goodbye: the peer crashed, "
                        "or someone cut the connection"
                    )
                )
            )
            self._check_open()  # raises the failure (the first one, if another came first)
            raise
        except ProtocolError as exc:  # an oversized, stalled or cut frame
            self._fail(exc)
            raise
        if self.on_wire is not None:
            self.on_wire("received", HEADER.pack(len(payload)) + bytes(payload))
        return payload

    def recv_text(self, timeout: float | None = None) -> str:
        """The next message, decoded from UTF-8."""
        return self.recv(timeout).decode("utf-8", errors="replace")

    # --- moving to another stream (task 4: the data port) ------------------------

    def open_candidate(self, payload: bytes, check: Callable[[bytes], bool]) -> bytes | None:
        """Try ``payload`` as the next message we receive; keep it only if it is good.

        The server of task 4 uses this on the first frame of each connection
        to its data port. The frame counts only if it decrypts as this
        session's next message *and* ``check(message)`` is true (the ticket
        matches); then the receive counter moves on and the message is
        returned. Otherwise nothing changes and ``None`` is returned, so a
        stranger's frame cannot use up the real client's session.
        """
        with self._recv_lock:
            trial = copy.copy(self._opener)  # same key, its own copy of the counter
            try:
                message = trial.open(bytes(payload))
            except ProtocolError:
                return None
            if not message or not check(message):
                return None
            self._opener = trial
            return message

    def rebind(self, stream: ByteStream) -> None:
        """Carry on this conversation over another stream (task 4's data port).

        The keys and message counters come along: the next frame sent or
        received on ``stream`` is simply the session's next message, so the
        new connection is bound to this session without a new handshake.
        The old stream is not closed (close it yourself) and bytes of a
        partial frame read from it are dropped.
        """
        with self._send_lock, self._recv_lock:
            if self.closed:
                raise ChannelClosed(N_("this channel is closed; open a new connection"))
            self.stream = stream
            self._reader = FrameReader(self.max_frame, self._reader.frame_timeout)

    def __iter__(self) -> Iterator[bytes]:
        """Yield messages until the peer closes cleanly."""
        while True:
            try:
                yield self.recv()
            except ChannelClosed:
                return

    def goodbye(self) -> None:
        """Tell the peer we are done: an encrypted empty message, sent once.

        The stream stays open, so another thread may still read what is on its
        way; ``close`` says goodbye too, if this was not called first. The
        goodbye is sealed like any message, so a stranger on the wire cannot
        fake one (except in toy mode, whose Caesar shift seals nothing): a
        connection cut without it is reported as ``ConnectionLost``.
        """
        if self.closed or self._said_goodbye:
            return
        self._said_goodbye = True
        try:
            set_timeout(self.stream, 1.0)
            self._send_sealed(b"")
        except (OSError, LabCryptoError):
            pass  # the peer is gone already: closing is all that is left

    def close(self) -> None:
        """Say goodbye (an encrypted empty message) and close the stream. Idempotent."""
        if self.closed:
            return
        try:
            self.goodbye()
        finally:
            self.closed = True
            close_stream(self.stream)

    def __enter__(self) -> SecureChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"SecureChannel({self.session.mode}, {self.session.role}, {state}, "
            f"session {self.session.fingerprint})"
        )
