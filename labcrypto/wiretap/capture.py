"""What crossed the tap, and what an eavesdropper reads in it.

Everything a ``Wiretap`` writes down is plain data: ``TapRecord`` (one
chunk exactly as ``recv`` returned it), ``TapFrame`` (one whole frame of
the protocol, cut from the chunks) and ``TapConnection`` (both). The
functions here read them the way Eve reads a packet capture:

* ``reassemble(records)`` cuts chunks back into frames (the 4-byte
  lengths put the message boundaries back);
* ``describe(payload)`` shows a handshake frame as the JSON it is, or a
  data frame as the ciphertext it is;
* ``eavesdropper_view(frames)`` and ``format_view(rows)``: the "what Eve
  sees" table of notebooks 02 and 03.

No sockets or threads here: a notebook can feed these recorded bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..channel import DEFAULT_MAX_FRAME, FrameDecoder
from ..errors import LabCryptoError, MalformedMessage
from ..handshake import decode_message
from ..i18n import _, ngettext
from ..keys import parse_number

__all__ = [
    "C2S",
    "DIRECTIONS",
    "S2C",
    "FrameCutter",
    "TapConnection",
    "TapFrame",
    "TapRecord",
    "describe",
    "eavesdropper_view",
    "format_view",
    "handshake_message",
    "reassemble",
]

#: Direction names: bytes from the client to the server, and back.
C2S = "c2s"
S2C = "s2c"
DIRECTIONS = {C2S: "client → server", S2C: "server → client"}

#: The message types of the handshake (everything else after them is data).
_HANDSHAKE_TYPES = {"client_hello", "server_hello", "server_finished", "client_finished", "error"}

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


class FrameCutter:
    """One direction of one connection: cuts its bytes into frames and counts them."""

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
    states: dict[tuple[int, str], FrameCutter] = {}
    frames: list[TapFrame] = []
    for record in records:
        key = (record.connection, record.direction)
        state = states.setdefault(key, FrameCutter(max_frame))
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
    return _("{start}…({bits} bits)").format(start=text[:10], bits=value.bit_length())


def describe(payload: bytes) -> str:
    """One line for a frame: the handshake message it carries, or its ciphertext.

    The words are in the reader's language (a notebook shows them to a student);
    the message fields are shown as they travel.
    """
    message = handshake_message(payload)
    if message is None:
        preview = payload[:16].hex(" ") + (" …" if len(payload) > 16 else "")
        count = len(payload)
        text = ngettext(
            "{count} byte of ciphertext: {preview}", "{count} bytes of ciphertext: {preview}", count
        )
        return text.format(count=count, preview=preview)
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
