"""Attacks on what crosses the wiretap: breaking toy mode, and changing frames in flight.

Passive (toy mode only):

* ``crack_caesar(ciphertext)`` tries all 256 shifts and keeps the one
  that reads most like English — no key needed;
* ``recover_toy_secret(frames)`` finds the shared ``K`` from the two
  hellos alone, by trying every exponent of the tiny group.

Active (policies for ``Wiretap(policy=...)``): ``FlipBit``, ``DropFrame``,
``ReplayFrame``, ``InjectPublicValue`` (0, 1 or p-1 in a hello) and
``ManInTheMiddle``, which runs a handshake with each side using its *own*
keys, then decrypts, reads and re-encrypts everything (notebook 03).
What stops each of them is told in the ``wiretap`` package's docstring.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import LabCryptoError
from ..groups import Group
from ..handshake import MODES, ClientHandshake, ServerHandshake, encode_message
from ..i18n import N_, gettext
from ..keys import KeyPair, generate, parse_number
from .capture import C2S, DIRECTIONS, S2C, TapFrame, handshake_message
from .relay import PolicyResult

__all__ = [
    "DropFrame",
    "FlipBit",
    "InjectPublicValue",
    "ManInTheMiddle",
    "ReplayFrame",
    "Stolen",
    "crack_caesar",
    "recover_toy_secret",
]


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

    def _fail(self, state: _MitmState, frame: TapFrame, why: str, **values: object) -> list[bytes]:
        """Give up on this connection and note why: ``why`` is an English template (``N_``),
        written down in the language of the notebook that runs him (``failures`` is his
        notebook, not a server's log)."""
        state.gave_up = True
        self.failures.append(f"#{frame.connection}: {gettext(why).format(**values)}")
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
            return self._fail(state, frame, "{kind}: {error}", kind=type(exc).__name__, error=exc)

    def _from_client(self, state: _MitmState, frame: TapFrame) -> PolicyResult:
        message = frame.message
        if state.to_client is None:
            if not message or message["type"] != "client_hello" or message.get("mode") not in MODES:
                return self._fail(state, frame, N_("the first frame was not a client hello"))
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
            return self._fail(state, frame, N_("the server spoke first"))
        if not state.to_server.done:
            message = frame.message
            if message is not None and message["type"] == "error":
                try:  # his side of the handshake reads the refusal as any client does
                    state.to_server.receive(frame.payload)
                except LabCryptoError as exc:
                    refused = N_("the server refused the man in the middle: {error}")
                    self._fail(state, frame, refused, error=exc)
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
