"""The wiretap: what an eavesdropper sees, and what a man in the middle can do.

A ``Wiretap`` is a small TCP relay. The client connects to the *tap's*
port; the tap opens its own connection to the real server and passes the
bytes along, both ways. Everything that crosses it is written down::

    client  ──►  Wiretap (port 0: any free port)  ──►  server
            ◄──      records every chunk           ◄──

Passive (the default): the bytes go through unchanged, exactly as they
came, and ``tap.records`` lists every chunk with its direction and time.
``tap.frames()`` cuts the stream into the protocol's frames again (with
``channel.FrameDecoder``), and ``describe(payload)`` shows a handshake
frame as the JSON it is, or a data frame as the ciphertext it is. That is
the "what Eve sees" view of notebooks 02 and 03:

* in **toy** mode, Eve sees ``p``, ``g``, ``A`` and ``B`` in the hellos,
  finds the secret exponent by trying all 22 of them, and reads every
  Caesar-shifted message (``crack_caesar`` does not even need the key);
* in **secure** mode, Eve sees the same kind of hellos, but the numbers
  are 2048 bits long and the frames after them are AES-GCM ciphertext.

Active: pass a *policy* and the tap works frame by frame. The policy sees
each frame (``TapFrame``) and decides what goes on to the other side::

    def policy(frame):           # return None: pass the frame on unchanged
        ...                      # return bytes: send this instead
                                 # return a list of bytes: send these (or [] to drop it)
                                 # frame.send_back(bytes): answer the sender

Ready-made attacks: ``FlipBit``, ``DropFrame``, ``ReplayFrame``,
``InjectPublicValue`` (0, 1 or p-1 in a hello) and ``ManInTheMiddle``,
which runs a handshake with each side using its *own* keys and then
decrypts, reads and re-encrypts everything (notebook 03).

What stops them:

* flipped, dropped, replayed frames: the AEAD tag and the message counter
  (``DecryptionFailed``) — in secure mode; toy mode notices nothing;
* 0, 1, p-1 as public values: ``groups.validate_public`` (``InvalidPublicValue``);
* the man in the middle: nothing in the mathematics! Diffie-Hellman with
  strangers is still a secret shared with a stranger. What stops him is
  *authentication*: a client that pins the server's key sees another key
  (``ServerKeyChanged``), and a server with an allowlist does not know the
  attacker's key (``KeyNotAllowed``). Without either, he reads everything,
  even in secure mode. This ``ManInTheMiddle`` opens its connection to the
  server before it answers the client, so a refusal by the server is passed
  on to the client; an attacker who only wants to fool the client does not
  need the server at all, and against him only pinning helps.

The tap relays one connection. A server that moves the conversation to a
second port (notebook 04) sends that port inside the encrypted channel, so
the client then goes there directly, around the tap: use single-port
servers with the tap.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .channel import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from .errors import LabCryptoError, MalformedMessage
from .groups import Group
from .handshake import MODES, ClientHandshake, ServerHandshake, decode_message, encode_message
from .keys import KeyPair, generate, parse_number
from .server import ThreadedServer, connect

__all__ = [
    "C2S",
    "DIRECTIONS",
    "S2C",
    "DropFrame",
    "FlipBit",
    "InjectPublicValue",
    "ManInTheMiddle",
    "Policy",
    "ReplayFrame",
    "Stolen",
    "TapConnection",
    "TapFrame",
    "TapRecord",
    "Wiretap",
    "crack_caesar",
    "describe",
    "eavesdropper_view",
    "format_view",
    "handshake_message",
    "reassemble",
    "recover_toy_secret",
]

#: Direction names: bytes from the client to the server, and back.
C2S = "c2s"
S2C = "s2c"
DIRECTIONS = {C2S: "client → server", S2C: "server → client"}

#: The message types of the handshake (everything else after them is data).
_HANDSHAKE_TYPES = {"client_hello", "server_hello", "server_finished", "client_finished", "error"}
_CHUNK = 64 * 1024


# --- what the tap writes down ----------------------------------------------------


@dataclass(frozen=True)
class TapRecord:
    """One chunk of bytes that crossed the tap, exactly as ``recv`` returned it."""

    connection: int
    direction: str
    time: float
    data: bytes

    def __repr__(self) -> str:
        return f"TapRecord(#{self.connection} {self.direction}, {len(self.data)} bytes)"


@dataclass
class TapFrame:
    """One whole frame that crossed the tap, and what the tap did with it.

    ``kind`` is ``"handshake"`` for the JSON messages at the start of a
    connection and ``"data"`` for what follows; ``data_index`` counts the
    data frames of one direction (0 = the first message after the
    handshake). ``verdict`` says what happened: ``passed``, ``changed`` or
    ``dropped``.
    """

    connection: int
    direction: str
    index: int
    time: float
    payload: bytes
    kind: str
    data_index: int | None = None
    verdict: str = "passed"
    _send_back: Callable[[bytes], None] | None = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> dict[str, Any] | None:
        """The handshake message as a dict (None for a data frame)."""
        return handshake_message(self.payload) if self.kind == "handshake" else None

    def send_back(self, payload: bytes) -> None:
        """Send a frame of our own to whoever sent this one (active policies only)."""
        if self._send_back is None:
            raise RuntimeError("send_back only works inside a policy, while the frame is live")
        self._send_back(payload)

    def describe(self) -> str:
        """One line: what an eavesdropper learns from this frame."""
        return describe(self.payload)

    def __repr__(self) -> str:
        return (
            f"TapFrame(#{self.connection} {self.direction} {self.kind} {len(self.payload)} bytes"
            f"{'' if self.verdict == 'passed' else ', ' + self.verdict})"
        )


@dataclass
class TapConnection:
    """One client connection through the tap: its chunks and frames."""

    id: int
    client: tuple[str, int]
    started: float
    records: list[TapRecord] = field(default_factory=list)
    frames: list[TapFrame] = field(default_factory=list)
    ended: float | None = None
    error: str | None = None

    def __repr__(self) -> str:
        state = "open" if self.ended is None else "closed"
        return (
            f"TapConnection(#{self.id} from {self.client[0]}:{self.client[1]}, {state}, "
            f"{len(self.records)} chunks, {len(self.frames)} frames)"
        )


# --- the policy interface ----------------------------------------------------------

PolicyResult = bytes | Sequence[bytes] | None


class Policy(Protocol):
    """Anything callable as ``policy(frame)``; see the module docstring for the answers."""

    def __call__(self, frame: TapFrame, /) -> PolicyResult: ...


class _Direction:
    """Per-direction state of one connection: the frame decoder and counters."""

    def __init__(self, max_frame: int) -> None:
        self.decoder: FrameDecoder | None = FrameDecoder(max_frame)
        self.frames = 0
        self.data_frames = 0
        self.in_handshake = True

    def classify(self, payload: bytes) -> tuple[str, int | None]:
        """``("handshake", None)`` or ``("data", n)`` for the next frame."""
        if self.in_handshake and handshake_message(payload) is not None:
            return "handshake", None
        self.in_handshake = False
        self.data_frames += 1
        return "data", self.data_frames - 1


# --- the relay ---------------------------------------------------------------------


class Wiretap(ThreadedServer):
    """A recording TCP relay to ``target`` = ``(host, port)`` of the real server.

    ``tap = Wiretap(server.address).start()``, then point the client at
    ``tap.address``. Without ``policy`` the bytes pass unchanged; with one,
    every frame goes through ``policy(frame)`` first. ``max_records`` bounds
    how many chunks are kept (the rest are relayed but not recorded).
    """

    def __init__(
        self,
        target: tuple[str, int],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        policy: Policy | None = None,
        name: str | None = None,
        connection_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_records: int = 100_000,
    ) -> None:
        super().__init__(host, port, name=name, connection_timeout=connection_timeout)
        self.target = target
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.max_frame = max_frame
        self.max_records = max_records
        self._tap_lock = threading.Lock()
        self._tap_connections: list[TapConnection] = []
        self._records: list[TapRecord] = []
        self._next_id = 0

    # --- what it saw -----------------------------------------------------------

    @property
    def records(self) -> list[TapRecord]:
        """Every chunk so far, in the order the tap received them (a copy)."""
        with self._tap_lock:
            return list(self._records)

    @property
    def connections(self) -> list[TapConnection]:
        """Every connection so far, oldest first."""
        with self._tap_lock:
            return list(self._tap_connections)

    def frames(self, direction: str | None = None, connection: int | None = None) -> list[TapFrame]:
        """Every whole frame so far, optionally of one direction or one connection."""
        with self._tap_lock:
            found = [f for c in self._tap_connections for f in c.frames]
        found.sort(key=lambda f: f.time)
        return [
            f
            for f in found
            if (direction is None or f.direction == direction)
            and (connection is None or f.connection == connection)
        ]

    def stream(self, direction: str, connection: int | None = None) -> bytes:
        """All bytes of one direction joined, as one long byte string."""
        return b"".join(
            r.data
            for r in self.records
            if r.direction == direction and (connection is None or r.connection == connection)
        )

    def clear(self) -> None:
        """Forget what was recorded so far (connections still open keep relaying)."""
        with self._tap_lock:
            self._records.clear()
            for conn in self._tap_connections:
                conn.records.clear()
                conn.frames.clear()
            self._tap_connections[:] = [c for c in self._tap_connections if c.ended is None]

    # --- one connection --------------------------------------------------------

    def handle(self, conn: socket.socket, address: tuple[str, int]) -> None:
        """Open our own connection to the target, then relay until one side is done."""
        with self._tap_lock:
            self._next_id += 1
            tap_conn = TapConnection(self._next_id, address, time.time())
            self._tap_connections.append(tap_conn)
        try:
            upstream = connect(*self.target, timeout=self.connect_timeout)
        except OSError as exc:
            tap_conn.error = f"cannot reach the server {self.target[0]}:{self.target[1]}: {exc}"
            tap_conn.ended = time.time()
            self.emit("error", f"#{tap_conn.id}: {tap_conn.error}")
            return
        self.emit("connect", f"#{tap_conn.id}: {address[0]}:{address[1]} → {self.target[1]}")
        try:
            upstream.settimeout(self.connection_timeout)
            self._relay(tap_conn, conn, upstream)
        except (OSError, LabCryptoError) as exc:
            tap_conn.error = f"{type(exc).__name__}: {exc}"
            self.emit("error", f"#{tap_conn.id}: {tap_conn.error}")
        finally:
            tap_conn.ended = time.time()
            with contextlib.suppress(OSError):
                upstream.close()
            self.emit("close", f"#{tap_conn.id} closed")

    def _relay(self, tap_conn: TapConnection, client: socket.socket, server: socket.socket) -> None:
        """Move bytes both ways in this one thread until both sides are done.

        ``select`` wakes us when either socket has bytes (or every
        ``poll_interval`` to check whether the tap is stopping). The loop
        ends when both directions reached end of stream, the tap stops, or
        nothing moved for ``connection_timeout`` seconds.
        """
        sides = {C2S: (client, server), S2C: (server, client)}
        state = {d: _Direction(self.max_frame) for d in sides}
        open_directions = {C2S, S2C}
        last_activity = time.monotonic()
        while self.running and open_directions:
            watch = [sides[d][0] for d in open_directions]
            readable, _, _ = select.select(watch, [], [], self.poll_interval)
            if not readable:
                if time.monotonic() - last_activity > self.connection_timeout:
                    self.emit("timeout", f"#{tap_conn.id}: idle, closed")
                    return
                continue
            last_activity = time.monotonic()
            for direction in [d for d in open_directions if sides[d][0] in readable]:
                source, dest = sides[direction]
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    return  # reset or shut down (stop()): end both directions
                if not data:
                    open_directions.discard(direction)
                    with contextlib.suppress(OSError):
                        dest.shutdown(socket.SHUT_WR)  # pass the end of stream along
                    continue
                self._record(tap_conn, direction, data)
                self._pass_on(tap_conn, direction, data, state[direction], source, dest)

    def _record(self, tap_conn: TapConnection, direction: str, data: bytes) -> None:
        with self._tap_lock:
            if len(self._records) >= self.max_records:
                return
            record = TapRecord(tap_conn.id, direction, time.time(), data)
            self._records.append(record)
            tap_conn.records.append(record)

    def _pass_on(
        self,
        tap_conn: TapConnection,
        direction: str,
        data: bytes,
        state: _Direction,
        source: socket.socket,
        dest: socket.socket,
    ) -> None:
        """Cut ``data`` into frames; forward raw (passive) or per the policy (active)."""
        frames: list[bytes] = []
        if state.decoder is not None:
            try:
                frames = state.decoder.feed(data)
            except LabCryptoError:
                state.decoder = None  # not our protocol (or an attack): stop framing
                if self.policy is not None:
                    raise
        if self.policy is None:
            dest.sendall(data)  # passive: exactly the bytes that came
        out: list[bytes] = []
        for payload in frames:
            frame = self._new_frame(tap_conn, direction, payload, state, source)
            if self.policy is not None:
                replacement = _as_frames(self.policy(frame), payload)
                frame.verdict = _verdict(payload, replacement)
                frame._send_back = None
                out.extend(replacement)
        if out:
            dest.sendall(b"".join(encode_frame(p, self.max_frame) for p in out))

    def _new_frame(
        self,
        tap_conn: TapConnection,
        direction: str,
        payload: bytes,
        state: _Direction,
        source: socket.socket,
    ) -> TapFrame:
        kind, data_index = state.classify(payload)
        frame = TapFrame(
            tap_conn.id, direction, state.frames, time.time(), payload, kind, data_index
        )
        frame._send_back = lambda p: source.sendall(encode_frame(p, self.max_frame))
        state.frames += 1
        with self._tap_lock:
            if len(tap_conn.frames) < self.max_records:
                tap_conn.frames.append(frame)
        return frame

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.running else "stopped"
        mode = "passive" if self.policy is None else f"active ({type(self.policy).__name__})"
        target = f"{self.target[0]}:{self.target[1]}"
        return f"<Wiretap {where} → {target}, {mode}, {len(self.records)} chunks>"


def _as_frames(result: PolicyResult, original: bytes) -> list[bytes]:
    """A policy's answer as the list of frames to send on."""
    if result is None:
        return [original]
    if isinstance(result, bytes | bytearray | memoryview):
        return [bytes(result)]
    frames = list(result)
    if not all(isinstance(p, bytes | bytearray) for p in frames):
        raise TypeError("a policy must return None, bytes, or a list of bytes")
    return [bytes(p) for p in frames]


def _verdict(original: bytes, sent: list[bytes]) -> str:
    if not sent:
        return "dropped"
    return "passed" if sent == [original] else "changed"


# --- reading what was recorded ------------------------------------------------------


def handshake_message(payload: bytes) -> dict[str, Any] | None:
    """The handshake JSON message in ``payload``, or None if it is not one."""
    try:
        message = decode_message(payload)
    except MalformedMessage:
        return None
    return message if message["type"] in _HANDSHAKE_TYPES else None


def reassemble(records: Iterable[TapRecord], max_frame: int = DEFAULT_MAX_FRAME) -> list[TapFrame]:
    """Cut recorded chunks back into frames, per connection and direction.

    This is what an eavesdropper does with a packet capture: the stream
    has no message boundaries, but the 4-byte lengths put them back.
    Bytes that never completed a frame are left out.
    """
    states: dict[tuple[int, str], _Direction] = {}
    frames: list[TapFrame] = []
    for record in records:
        key = (record.connection, record.direction)
        state = states.setdefault(key, _Direction(max_frame))
        if state.decoder is None:
            continue
        try:
            payloads = state.decoder.feed(record.data)
        except LabCryptoError:
            state.decoder = None
            continue
        for payload in payloads:
            kind, data_index = state.classify(payload)
            frames.append(
                TapFrame(
                    record.connection,
                    record.direction,
                    state.frames,
                    record.time,
                    payload,
                    kind,
                    data_index,
                )
            )
            state.frames += 1
    return frames


def _short_number(text: str) -> str:
    """A hex number as the eavesdropper would note it: small ones whole, big ones cut."""
    try:
        value = parse_number(text)
    except ValueError:
        return text[:20]
    if value.bit_length() <= 64:
        return str(value)
    return f"{text[:10]}…({value.bit_length()} bits)"


def describe(payload: bytes) -> str:
    """One line for a frame: the handshake message it carries, or its ciphertext."""
    message = handshake_message(payload)
    if message is None:
        preview = payload[:16].hex(" ")
        more = " …" if len(payload) > 16 else ""
        return f"{len(payload)} bytes of ciphertext: {preview}{more}"
    shown = []
    for key, value in message.items():
        if key == "type":
            continue
        if key in ("static", "ephemeral") and isinstance(value, str):
            value = _short_number(value)
        elif key in ("nonce", "confirm") and isinstance(value, str):
            value = value[:12] + "…"
        shown.append(f"{key}={value}")
    return f"{message['type']}: " + ", ".join(shown)


def eavesdropper_view(frames: Iterable[TapFrame]) -> list[dict[str, Any]]:
    """One row per frame: time (ms from the first), direction, kind, size, what Eve sees."""
    frames = list(frames)
    start = min((f.time for f in frames), default=0.0)
    return [
        {
            "ms": round(1000 * (f.time - start), 1),
            "conn": f.connection,
            "direction": DIRECTIONS.get(f.direction, f.direction),
            "kind": f.kind,
            "bytes": len(f.payload),
            "eve sees": describe(f.payload),
        }
        for f in frames
    ]


def format_view(rows: Sequence[dict[str, Any]], width: int = 100) -> str:
    """The rows of ``eavesdropper_view`` as a plain-text table (cut at ``width``)."""
    if not rows:
        return "(nothing recorded)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line[:width].rstrip() for line in lines)


# --- breaking toy mode ----------------------------------------------------------------

# How often each letter appears in English text (percent): frequency analysis,
# as in the course's lab on symmetric ciphers. A space counts like a letter.
_ENGLISH = {
    " ": 18.0, "e": 12.7, "t": 9.1, "a": 8.2, "o": 7.5, "i": 7.0, "n": 6.7, "s": 6.3,
    "h": 6.1, "r": 6.0, "d": 4.3, "l": 4.0, "c": 2.8, "u": 2.8, "m": 2.4, "w": 2.4,
    "f": 2.2, "g": 2.0, "y": 2.0, "p": 1.9, "b": 1.5, "v": 1.0, "k": 0.8, "j": 0.2,
    "x": 0.2, "q": 0.1, "z": 0.1,
}  # fmt: skip


def _english_score(text: bytes) -> float:
    """Higher for bytes that look like English: letter frequencies, minus junk."""
    score = 0.0
    for byte in text:
        char = chr(byte).lower()
        if char in _ENGLISH:
            score += _ENGLISH[char]
        elif not (32 <= byte < 127):
            score -= 20.0  # control bytes and non-ASCII: not a plain message
    return score / max(1, len(text))


def crack_caesar(ciphertext: bytes) -> tuple[int, bytes]:
    """Try all 256 byte shifts; return ``(shift, plaintext)`` that reads most like English.

    No key needed: this is why a cipher with 256 keys is no cipher.
    """
    candidates = ((shift, bytes((b - shift) % 256 for b in ciphertext)) for shift in range(256))
    return max(candidates, key=lambda c: _english_score(c[1]))


def recover_toy_secret(frames: Iterable[TapFrame]) -> int:
    """Eve's shortcut in toy mode: the shared ``K`` from the two hellos alone.

    She reads ``p, g`` (the group), ``A`` and ``B`` on the wire, tries
    every exponent ``a`` until ``g^a mod p == A`` (22 tries for p = 23),
    then computes ``K = B^a mod p`` exactly like the client.
    """
    hellos: dict[str, dict[str, Any]] = {}
    for frame in frames:
        message = handshake_message(frame.payload) if frame.kind == "handshake" else None
        if message and message["type"] in ("client_hello", "server_hello"):
            hellos.setdefault(message["type"], message)
    if len(hellos) < 2:
        raise ValueError("both hellos are needed: record a whole handshake first")
    group: Group = MODES["toy"]
    if hellos["client_hello"].get("group") != group.name:
        raise ValueError("only toy mode is small enough to break by trying every exponent")
    big_a = parse_number(hellos["client_hello"]["static"])
    big_b = parse_number(hellos["server_hello"]["static"])
    for a in range(1, group.p):  # bounded: at most p-1 tries
        if pow(group.g, a, group.p) == big_a:
            return pow(big_b, a, group.p)
    raise ValueError(f"no exponent gives A = {big_a}: is this really group {group.name}?")


# --- ready-made attacks ---------------------------------------------------------------


class _OneFrame:
    """Base of the attacks that hit one data frame of one direction (by its ``data_index``)."""

    def __init__(self, direction: str = S2C, data_index: int = 0) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be {C2S!r} or {S2C!r}, got {direction!r}")
        self.direction = direction
        self.data_index = data_index
        self.hits = 0

    def _is_target(self, frame: TapFrame) -> bool:
        return frame.direction == self.direction and frame.data_index == self.data_index

    def __call__(self, frame: TapFrame) -> PolicyResult:
        if not self._is_target(frame):
            return None
        self.hits += 1
        return self.attack(frame.payload)

    def attack(self, payload: bytes) -> PolicyResult:
        raise NotImplementedError


class FlipBit(_OneFrame):
    """Flip one bit of one data frame in flight (``bit`` counts from the payload's start)."""

    def __init__(self, direction: str = S2C, data_index: int = 0, bit: int = 0) -> None:
        super().__init__(direction, data_index)
        self.bit = bit

    def attack(self, payload: bytes) -> PolicyResult:
        changed = bytearray(payload)
        changed[(self.bit // 8) % len(changed)] ^= 1 << (self.bit % 8)
        return bytes(changed)


class DropFrame(_OneFrame):
    """Make one data frame disappear (the receiver gets the next one in its place)."""

    def attack(self, payload: bytes) -> PolicyResult:
        return []


class ReplayFrame(_OneFrame):
    """Deliver one data frame twice (the classic replay: "pay Bob 100 €" again)."""

    def attack(self, payload: bytes) -> PolicyResult:
        return [payload, payload]


class InjectPublicValue:
    """Replace the static public value in a hello with ``value``: 0, 1, ``"p-1"`` or any int.

    ``direction=C2S`` rewrites the client's hello (the server must refuse
    it), ``S2C`` the server's (the client must refuse it). With 0, 1 or p-1
    the attacker would know ``K`` without any private key — if it were
    accepted.
    """

    def __init__(self, value: int | str, direction: str = C2S) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be {C2S!r} or {S2C!r}, got {direction!r}")
        if value != "p-1" and not isinstance(value, int):
            raise ValueError(f'value must be an int or "p-1", got {value!r}')
        self.value = value
        self.direction = direction
        self.hits = 0
        self._group_name: str | None = None  # learnt from the client's hello

    def _number(self) -> int:
        if self.value != "p-1":
            return int(self.value)
        group = next((g for g in MODES.values() if g.name == self._group_name), None)
        if group is None:
            raise ValueError(f"cannot tell p: unknown group {self._group_name!r}")
        return group.p - 1

    def __call__(self, frame: TapFrame) -> PolicyResult:
        message = frame.message
        if not message:
            return None
        if message["type"] == "client_hello":
            self._group_name = message.get("group")
        wanted = "client_hello" if self.direction == C2S else "server_hello"
        if frame.direction != self.direction or message["type"] != wanted:
            return None
        message["static"] = f"{self._number():#x}"
        self.hits += 1
        return encode_message(message)


@dataclass(frozen=True)
class Stolen:
    """A message the man in the middle decrypted: where it went, when, and what it said."""

    connection: int
    direction: str
    time: float
    plaintext: bytes


class _MitmState:
    """The man in the middle's two handshakes and two channels for one connection."""

    def __init__(self) -> None:
        self.to_client: ServerHandshake | None = None  # he plays the server to the client
        self.to_server: ClientHandshake | None = None  # and the client to the server
        self.held: list[bytes] = []  # his answers to the client, until the server accepts him
        self.queued: list[bytes] = []  # server plaintext waiting for the client's side
        self.client_ciphers: tuple[Any, Any] | None = None  # (seal to client, open from client)
        self.server_ciphers: tuple[Any, Any] | None = None  # (seal to server, open from server)
        self.gave_up = False


class ManInTheMiddle:
    """The classic attack on unauthenticated Diffie-Hellman, as a wiretap policy.

    When the client's hello passes, he keeps it and sends the server a
    hello of his own (his key). When the server accepts him, he answers
    the client as if he were the server (his key again). Now there are two
    sessions: client ↔ attacker and attacker ↔ server. Every data frame is
    opened with one session's key, written down in ``stolen``, sealed with
    the other's, and passed on; neither side notices anything.

    ``key`` is his key pair; by default he makes one in the group the
    client asks for. He fails — and ``failures`` says why — if the client
    pins the server's key (it sees his key instead: ``ServerKeyChanged``)
    or the server has an allowlist (his key is not on it: ``KeyNotAllowed``,
    which he passes on to the client).
    """

    def __init__(self, key: KeyPair | None = None) -> None:
        self.key = key
        self.stolen: list[Stolen] = []
        self.failures: list[str] = []
        self._keys: dict[str, KeyPair] = {}
        self._states: dict[int, _MitmState] = {}
        self._lock = threading.Lock()

    @property
    def succeeded(self) -> bool:
        """True once he sits in a finished handshake with both sides."""
        with self._lock:
            states = list(self._states.values())
        return any(s.client_ciphers and s.server_ciphers for s in states)

    def stolen_text(self, direction: str | None = None) -> list[str]:
        """The stolen messages as text, optionally of one direction."""
        return [
            s.plaintext.decode("utf-8", errors="replace")
            for s in list(self.stolen)
            if direction is None or s.direction == direction
        ]

    def _key_for(self, mode: str, avoid: int) -> KeyPair:
        """His key pair for ``mode``: the given one, or a fresh one (never the client's)."""
        group = MODES[mode]
        if self.key is not None and self.key.group == group:
            return self.key
        pair = self._keys.get(mode)
        for _ in range(100):  # the toy group has only 20 keys: avoid the client's own
            if pair is not None and pair.public != avoid:
                break
            pair = generate(group)
        assert pair is not None
        self._keys[mode] = pair
        return pair

    def _fail(self, state: _MitmState, frame: TapFrame, why: str) -> list[bytes]:
        state.gave_up = True
        self.failures.append(f"#{frame.connection}: {why}")
        return []

    def __call__(self, frame: TapFrame) -> PolicyResult:
        with self._lock:
            state = self._states.setdefault(frame.connection, _MitmState())
        if state.gave_up:
            return []
        try:
            if frame.direction == C2S:
                return self._from_client(state, frame)
            return self._from_server(state, frame)
        except LabCryptoError as exc:
            return self._fail(state, frame, f"{type(exc).__name__}: {exc}")

    def _from_client(self, state: _MitmState, frame: TapFrame) -> PolicyResult:
        message = frame.message
        if state.to_client is None:
            if not message or message["type"] != "client_hello" or message.get("mode") not in MODES:
                return self._fail(state, frame, "the first frame was not a client hello")
            mode = message["mode"]
            client_key = parse_number(str(message.get("static", "0")))
            key = self._key_for(mode, avoid=client_key)
            state.to_client = ServerHandshake(key, mode)
            state.held = state.to_client.receive(frame.payload)
            state.to_server = ClientHandshake(key, mode, ephemeral="ephemeral" in message)
            return [state.to_server.start()]  # his own hello goes to the server
        if state.client_ciphers is None:
            state.to_client.receive(frame.payload)  # the client's finished message
            assert state.to_client.session is not None
            state.client_ciphers = state.to_client.session.ciphers()
            seal = state.client_ciphers[0]
            for plaintext in state.queued:  # what the server said in the meantime
                frame.send_back(seal.seal(plaintext))
            state.queued.clear()
            return []
        return self._relay(state, frame, state.client_ciphers[1], state.server_ciphers)

    def _from_server(self, state: _MitmState, frame: TapFrame) -> PolicyResult:
        if state.to_server is None:
            return self._fail(state, frame, "the server spoke first")
        if not state.to_server.done:
            message = frame.message
            if message is not None and message["type"] == "error":
                self._fail(state, frame, f"the server refused him: {message.get('message')}")
                return [frame.payload]  # pass the refusal on: the client sees it too
            for reply in state.to_server.receive(frame.payload):
                frame.send_back(reply)  # his finished message, to the server
            if not state.to_server.done:
                return []
            assert state.to_server.session is not None
            state.server_ciphers = state.to_server.session.ciphers()
            held, state.held = state.held, []
            return held  # now he answers the client, as "the server"
        assert state.server_ciphers is not None
        plaintext = state.server_ciphers[1].open(frame.payload)
        self._steal(frame, plaintext)
        if state.client_ciphers is None:
            state.queued.append(plaintext)
            return []
        return [state.client_ciphers[0].seal(plaintext)]

    def _relay(
        self, state: _MitmState, frame: TapFrame, opener: Any, onward: tuple[Any, Any] | None
    ) -> PolicyResult:
        assert onward is not None
        plaintext = opener.open(frame.payload)
        self._steal(frame, plaintext)
        return [onward[0].seal(plaintext)]

    def _steal(self, frame: TapFrame, plaintext: bytes) -> None:
        if plaintext:  # an empty message is the goodbye; nothing to steal
            self.stolen.append(Stolen(frame.connection, frame.direction, time.time(), plaintext))

    def __repr__(self) -> str:
        state = "in the middle" if self.succeeded else "waiting"
        return f"<ManInTheMiddle {state}, {len(self.stolen)} messages stolen>"
