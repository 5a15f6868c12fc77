"""The handshake, as two state machines that take bytes in and give bytes out.

No sockets here ("sans-IO", like h11): a ``ClientHandshake`` and a
``ServerHandshake`` pass small JSON messages, and *you* carry the bytes
between them — by hand in a notebook cell, over ``socket.socketpair()`` in
a test, or over TCP in ``channel``/``server``. The same code runs in all
three, which is why a notebook can step through it before any socket exists.

The states and what moves each side from one to the next are in ONE table,
``TRANSITIONS``, just below the imports. Anything not in the table — a
message out of order, twice, or after a failure — is an error, and every
error leaves the handshake in ``FAILED`` for good.

The conversation (every message is readable JSON on the wire)::

    client                                              server
    client_hello {protocol, version, service, mode,
                  group, static=A, ephemeral=X, nonce} ──►  check protocol, version,
                                                            service, mode, group;
                                                            A and X valid; A allowed (task 3)
                                                    ◄──  server_hello {version, static=B,
                                                                       ephemeral=Y, nonce}
                                                    ◄──  server_finished {confirm=HMAC}
    check B (pinned?), derive the same keys,
    check the server's HMAC
    client_finished {confirm=HMAC}                  ──►  check the client's HMAC
    ...both now hold the session keys: encrypted frames follow (``channel``)

Three modes, one code path:

``"secure"`` (the default everywhere)
    ffdhe2048 and AES-256-GCM. Both sides bring their long-term *static*
    key (A = g^a, B = g^b) and a fresh *ephemeral* key made for this
    handshake only (X = g^x, Y = g^y). Four Diffie-Hellman results are
    mixed into the keys, as in the Noise protocol's KK pattern:

    ====  ====================  ===========  ===========  =============================
    term  who with whom         client: K =  server: K =  what it buys
    ====  ====================  ===========  ===========  =============================
    ee    ephemeral×ephemeral   Y^x          X^y          forward secrecy
    es    client eph×server st  B^x          X^b          only the real server (b) can
                                                          finish: a stolen *client* key
                                                          cannot pose as the server
    se    client st×server eph  Y^a          A^y          only the real client (a) can
                                                          finish: a stolen *server* key
                                                          cannot log in as a student
    ss    static×static         B^a          A^b          binds both identities
    ====  ====================  ===========  ===========  =============================

    A thief with both long-term keys (a and b) and a recording can compute
    es, se and ss, but not ee: x and y were never written anywhere.

``"static"``
    The course's own exchange: ``K = B^a = A^b`` from the static keys only,
    then HKDF and AES-256-GCM. Kept so the notebooks can show, by attacking
    it, what it lacks: whoever steals *one* private key reads every
    recorded session of that key, and can pose as anyone who talks to it —
    with the server's ``b`` the thief computes ``A^b`` and logs in as any
    allowed student ("key-compromise impersonation").

``"toy"``
    p = 23, g = 5, static keys only, and a Caesar shift by K: for seeing the
    numbers and breaking them in class. It protects *nothing*: a listener
    finds every private key from its public value in 22 tries, so pinning,
    the allowlist and the confirm HMACs stop no one (he finishes the
    handshake as the pinned server or as any listed student), and the one
    shift for both directions, with no tag, lets him read, change, bounce
    back or make up any message, the goodbye included
    (``tests/test_attack_core.py`` does each).

How the keys come out (``ciphers.derive_session_keys``)::

    session keys = HKDF(ikm = ee || es || se || ss   (only ss in static/toy),
                        salt = nonce_c || nonce_s,
                        info = label || transcript hash)

The transcript hash covers both hello messages byte for byte, and the
client's hello names the protocol, its version, the service (``"chat"``,
``"files"``), the mode and the group: a man in the middle who changes any
byte, or a handshake meant for the file service that he sends on to the
chat, makes the two sides derive different keys, and the ``confirm`` HMACs
fail.

Beside TLS 1.3 and Noise (what a reviewer compares):

* **Negotiation.** There is none to tamper with: the client offers exactly
  one mode (one group, one cipher), the server takes it or refuses, and a
  refused client never tries a weaker one. Everything named is in the
  transcript. TLS 1.3's Finished covers every message so far; here both
  cover the two hellos, each under its own key: nothing else was said.
* **Keys.** One HKDF extract (salt: both nonces; input: the DH results at
  fixed length) and one expand (info: ``"labcrypto v2 session keys"`` and
  the transcript hash) cut by position into four 32-byte keys: client to
  server, server to client, and the two confirm keys. TLS 1.3 expands each
  secret with a label of its own (``"c ap traffic"``, ``"s ap traffic"``,
  ``"finished"``); Noise mixes one DH result at a time into a chaining key
  and splits it at the end. Different bookkeeping, the same guarantee:
  every key depends on every DH result and the whole transcript, and
  knowing one key tells nothing about the others.
* **Authentication.** Implicit, as in Noise KK and WireGuard: only the
  holder of a static private key can compute the terms that use it. The
  Finished HMACs make it explicit and early: the client knows the server
  at ``server_finished``, before it sends any data; the server knows the
  client at ``client_finished``, before it reads any. TLS 1.3 instead
  *signs* the transcript with the certificate's key (CertificateVerify).
* **Records.** AES-256-GCM with the message counter as the nonce, under a
  key new for each session and direction. TLS 1.3 XORs the counter with a
  per-key secret IV as well, a hardening for attacks on many keys at once.
* **What TLS 1.3 has and this has not:** certificates (keys are pinned or
  listed instead); identity hiding (both static keys cross in the clear,
  so a listener learns who talks); a key update inside one connection
  (a key stops at 2^38 bytes and the connection ends); resumption.

Every field has exactly one encoding: compact JSON with the fields in a
fixed order, numbers as lowercase ``0x`` hex without leading zeros,
nonces and confirm values as lowercase hex. A message that decodes to the
right values but is spelled any other way is refused, so no flipped bit of
any message can leave the handshake working.

The server checks the client's static key with the caller's ``allow``
predicate *before* it makes its ephemeral key or sends anything that
depends on a secret. An unknown key gets a plain ``error`` message and the
handshake ends.

The random source (ephemeral exponents and nonces) is a parameter, ``rng``
(default: the ``secrets`` module), so a test can pin it and check the key
schedule against known answers. ``ephemeral_keys`` may hand this side its
fresh ephemeral key pair instead (a function that returns a new one on
each call: ``key_pool.EphemeralPool.take`` makes them ahead of time, each
used once); the handshake refuses one of another group, or one it has seen
already in this process's last few handshakes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import jsonwire
from .ciphers import (
    AeadCipher,
    CaesarCipher,
    SessionKeys,
    confirmation_tag,
    derive_session_keys,
)
from .errors import (
    HandshakeError,
    InvalidPublicValue,
    KeyNotAllowed,
    LabCryptoError,
    MalformedJSON,
    MalformedMessage,
    ModeMismatch,
    ServerKeyChanged,
    ServiceMismatch,
    UnexpectedMessage,
    UnknownGroup,
    VersionMismatch,
    in_english,
)
from .groups import FFDHE2048, TOY, Group
from .i18n import N_
from .keys import (
    KeyPair,
    PublicKey,
    RandomSource,
    fingerprint_of,
    generate,
    parse_fingerprint,
)
from .untrusted import quote

__all__ = [
    "CLIENT_STATES",
    "MAX_HANDSHAKE_MESSAGE",
    "MODES",
    "PROTOCOL",
    "PROTOCOL_VERSION",
    "SERVER_STATES",
    "SERVICES",
    "TERMS",
    "TRANSITIONS",
    "ClientHandshake",
    "ServerHandshake",
    "Session",
    "decode_message",
    "encode_message",
    "key_schedule",
    "transcript_hash",
]

# --- the state machine, in one table -------------------------------------------------

START = "start"
WAIT_SERVER_HELLO = "wait_server_hello"
WAIT_SERVER_FINISHED = "wait_server_finished"
WAIT_CLIENT_HELLO = "wait_client_hello"
WAIT_CLIENT_FINISHED = "wait_client_finished"
DONE = "done"
FAILED = "failed"

#: ``(role, state, event) -> next state``. The only moves there are; any other
#: event in any state is an error, and every error moves to ``FAILED``.
#:
#: ====== ====================== ========================= ====================== ========
#: role   state                  event                     next state             sends
#: ====== ====================== ========================= ====================== ========
#: client start                  start()                   wait_server_hello      client_hello
#: client wait_server_hello      server_hello              wait_server_finished   —
#: client wait_server_finished   server_finished           done                   client_finished
#: server wait_client_hello      client_hello              wait_client_finished   server_hello,
#:                                                                                server_finished
#: server wait_client_finished   client_finished           done                   —
#: either any state              error, or a bad message   failed                 (server: error)
#: ====== ====================== ========================= ====================== ========
TRANSITIONS: dict[tuple[str, str, str], str] = {
    ("client", START, "start"): WAIT_SERVER_HELLO,
    ("client", WAIT_SERVER_HELLO, "server_hello"): WAIT_SERVER_FINISHED,
    ("client", WAIT_SERVER_FINISHED, "server_finished"): DONE,
    ("server", WAIT_CLIENT_HELLO, "client_hello"): WAIT_CLIENT_FINISHED,
    ("server", WAIT_CLIENT_FINISHED, "client_finished"): DONE,
}
CLIENT_STATES = (START, WAIT_SERVER_HELLO, WAIT_SERVER_FINISHED, DONE, FAILED)
SERVER_STATES = (WAIT_CLIENT_HELLO, WAIT_CLIENT_FINISHED, DONE, FAILED)

# --- what the protocol is ------------------------------------------------------------

#: The protocol's name and version: both are in every client hello, so in the transcript.
PROTOCOL = "labcrypto"
PROTOCOL_VERSION = 2
#: Which group each mode uses.
MODES: dict[str, Group] = {"secure": FFDHE2048, "static": FFDHE2048, "toy": TOY}
#: The DH results each mode mixes into HKDF, in this order (see the module doc).
TERMS: dict[str, tuple[str, ...]] = {
    "secure": ("ee", "es", "se", "ss"),
    "static": ("ss",),
    "toy": ("ss",),
}
#: The modes that add fresh ephemeral keys (and the es, se, ee terms) to every handshake.
_EPHEMERAL_MODES = frozenset(mode for mode, terms in TERMS.items() if "ee" in terms)
#: Service labels (domain separation: a chat handshake cannot be replayed at the file service).
SERVICES = ("chat", "files")
#: The public values of the ephemeral keys handed in through ``ephemeral_keys`` lately
#: (up to 1024, then it starts over): one seen again is refused (a key source that
#: repeats itself is a broken one).
_RECENT_EPHEMERALS: set[int] = set()
#: A handshake message is a few hundred bytes; anything much bigger is an attack.
MAX_HANDSHAKE_MESSAGE = 16 * 1024
_NONCE_BYTES = 32

#: Each message's fields, in their one order. ``ephemeral`` only in secure mode.
_FIELDS: dict[str, tuple[str, ...]] = {
    "client_hello": (
        "type", "protocol", "version", "service", "mode", "group", "static", "ephemeral", "nonce"
    ),
    "server_hello": ("type", "version", "static", "ephemeral", "nonce"),
    "server_finished": ("type", "confirm"),
    "client_finished": ("type", "confirm"),
    "error": ("type", "code", "message"),
}

#: Server error codes: the exception the client raises for each, and the fixed local
#: text it shows, in the reader's language. The server's own words travel too, but
#: nothing has authenticated them yet: the client shows them (quoted and labelled,
#: ``UNKNOWN_ERROR``) only for a code it does not know.
_ERRORS: dict[str, tuple[type[HandshakeError], str]] = {
    "not_allowed": (
        KeyNotAllowed,
        N_("the server refused our key: it is not on the server's allowlist. Ask the "
           "instructor to add your .pub file (labcrypto allow add NAME NAME.pub), "
           "then connect again."),
    ),
    "version": (
        VersionMismatch,
        N_("the server does not speak {protocol} version {version}: one side has an older "
           "labcrypto."),
    ),
    "mode": (
        ModeMismatch,
        N_("the server refused the mode this client asked for; the client never falls back "
           "to a weaker one. Check the address and port with the instructor."),
    ),
    "service": (
        ServiceMismatch,
        N_("the server at this address offers another service (chat or files): "
           "check the address and port."),
    ),
    "group": (UnknownGroup, N_("the server refused the Diffie-Hellman group of our key.")),
    "invalid_value": (InvalidPublicValue, N_("the server refused one of our public values.")),
    "malformed": (MalformedMessage, N_("the server could not read our handshake message.")),
    "unexpected": (UnexpectedMessage, N_("the server got a handshake message out of order.")),
    "busy": (
        HandshakeError,
        N_("the server is busy: it has as many connections as it takes right now. "
           "Wait a moment and connect again."),
    ),
    "failed": (HandshakeError, N_("the server ended the handshake.")),
}
#: A handshake asked to take an event its table has no row for: by role, and whether
#: it had already failed.
_CANNOT_TAKE = {
    ("client", False): N_("the client's handshake cannot take {event} in state {state}"),
    ("server", False): N_("the server's handshake cannot take {event} in state {state}"),
    ("client", True): N_(
        "the client's handshake cannot take {event} in state {state} (it already failed: "
        "start a new one)"
    ),
    ("server", True): N_(
        "the server's handshake cannot take {event} in state {state} (it already failed: "
        "start a new one)"
    ),
}
#: A code this client does not know: the server's words, quoted and labelled.
UNKNOWN_ERROR = N_(
    "the server ended the handshake with error {code} (its words, unauthenticated: {words})."
)
_CODE_OF: dict[type[HandshakeError], str] = {kind: code for code, (kind, _) in _ERRORS.items()}

_HEX_NUMBER = re.compile(r"0x0|0x[1-9a-f][0-9a-f]*")
_HEX_BYTES_32 = re.compile(r"[0-9a-f]{64}")


# --- messages on the wire ------------------------------------------------------------


def encode_message(message: dict[str, Any]) -> bytes:
    """A message as compact UTF-8 JSON bytes (``jsonwire.encode``)."""
    return jsonwire.encode(message)


def decode_message(data: bytes) -> dict[str, Any]:
    """Parse one small JSON message with a ``"type"``, or raise ``MalformedMessage``.

    The 16 KiB limit is checked before parsing; duplicate keys, lone
    surrogates and NaN are refused (``jsonwire.decode``). Never ``pickle``:
    unpickling bytes from the network runs the sender's code (course
    mistake 7). JSON can only ever produce plain data.
    """
    try:
        message = jsonwire.decode(data, MAX_HANDSHAKE_MESSAGE)
    except MalformedJSON as exc:
        raise MalformedMessage(N_("handshake message: {error}"), error=exc) from None
    if not isinstance(message.get("type"), str):
        raise MalformedMessage(N_('a handshake message must be a JSON object with a "type"'))
    return message


def _parse(data: bytes, wanted: str, ephemeral: bool) -> dict[str, Any]:
    """Decode one handshake message of type ``wanted`` and check its one encoding.

    The fields must be exactly ``_FIELDS[wanted]`` in that order (without
    ``ephemeral`` unless ``ephemeral``), and re-encoding the parsed message
    must give back the very bytes that arrived: so ``"\\u0073ecure"``, a
    space, ``1.0`` or a reordered field is refused, not quietly accepted.
    """
    message = decode_message(data)
    kind = message["type"]
    if kind != wanted:
        raise UnexpectedMessage(
            N_("expected {wanted}, got {got}"), wanted=repr(wanted), got=quote(kind, 40)
        )
    names = tuple(n for n in _FIELDS[wanted] if ephemeral or n != "ephemeral")
    if tuple(message) != names:
        raise MalformedMessage(
            N_("{wanted}: the fields must be exactly {names}, in that order; got {got}"),
            wanted=wanted,
            names=", ".join(names),
            got=quote(", ".join(message), 200),
        )
    if encode_message(message) != bytes(data):
        raise MalformedMessage(
            N_("{wanted}: not in its one canonical encoding (compact JSON)"), wanted=wanted
        )
    return message


def _field(message: dict[str, Any], name: str, kind: type) -> Any:
    """``message[name]``, checked to be of type ``kind``."""
    value = message.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedMessage(
            N_("{message}: field {name} must be a {kind}, got {got}"),
            message=quote(message.get("type"), 40),
            name=repr(name),
            kind=kind.__name__,
            got=type(value).__name__,
        )
    return value


def _public_field(message: dict[str, Any], name: str, group: Group) -> PublicKey:
    """A public value in its one spelling (``0x`` + lowercase hex), validated in ``group``."""
    text = _field(message, name, str)
    if len(text) > 2 + 2 * group.byte_length:
        raise InvalidPublicValue(
            N_("{name}: a {length}-character number is out of range"), name=name, length=len(text)
        )
    if not _HEX_NUMBER.fullmatch(text):
        raise MalformedMessage(
            N_("{message}: field {name} must be 0x and lowercase hex without leading zeros, "
               "got {got}"),
            message=message["type"],
            name=repr(name),
            got=quote(text, 20),
        )
    return PublicKey(group, int(text, 16))  # PublicKey validates the value when it is made


def _hex32_field(message: dict[str, Any], name: str) -> str:
    """A 32-byte value (nonce, confirm) as exactly 64 lowercase hex digits."""
    text = _field(message, name, str)
    if not _HEX_BYTES_32.fullmatch(text):
        raise MalformedMessage(
            N_("{message}: field {name} must be 64 lowercase hex digits"),
            message=message["type"],
            name=repr(name),
        )
    return str(text)


def transcript_hash(client_hello: bytes, server_hello: bytes) -> bytes:
    """SHA-256 over both hellos, each with its 4-byte length, exactly as sent."""
    digest = hashlib.sha256()
    for part in (client_hello, server_hello):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()


def key_schedule(
    mode: str, terms: dict[str, int], client_hello: bytes, server_hello: bytes
) -> tuple[SessionKeys, bytes]:
    """The session keys and the transcript hash, from the DH results and both hellos.

    ``terms`` maps each name of ``TERMS[mode]`` to its DH result. Both
    sides call this with the same numbers; so can anyone who knows them —
    which is why the notebooks' thief, and the tests' attackers, use it:
    the question is only which terms a stolen key lets them compute.
    """
    group = MODES[mode]
    nonces = [
        bytes.fromhex(_hex32_field(decode_message(hello), "nonce"))
        for hello in (client_hello, server_hello)
    ]
    th = transcript_hash(client_hello, server_hello)
    ikm = [terms[name].to_bytes(group.byte_length, "big") for name in TERMS[mode]]
    return derive_session_keys(ikm, nonces[0], nonces[1], th), th


# --- the result ----------------------------------------------------------------------


@dataclass
class Session:
    """What a finished handshake gives each side.

    ``numbers`` holds what a notebook shows: in toy mode ``p, g, A, B, K``
    themselves; otherwise only public things (sizes and fingerprints: the
    DH results are 2048-bit secrets). ``transcript`` lists every message
    as ``(sender, message)`` in order. ``ephemeral`` is True in secure mode.
    """

    role: str
    mode: str
    group: Group
    ephemeral: bool
    local_key: PublicKey
    peer_key: PublicKey
    keys: SessionKeys
    service: str = "chat"
    toy_secret: int | None = field(default=None, repr=False)
    numbers: dict[str, Any] = field(default_factory=dict, repr=False)
    transcript: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)
    _ciphers: tuple[AeadCipher | CaesarCipher, AeadCipher | CaesarCipher] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this session's keys: different for every session."""
        return self.keys.fingerprint

    def ciphers(self) -> tuple[AeadCipher | CaesarCipher, AeadCipher | CaesarCipher]:
        """``(send_cipher, receive_cipher)`` for this side: made on the first call (counters
        at 0), the same two objects on every later call.

        Why not a fresh pair each time: a second sealer would count from 0 again
        under the same key, and two messages sealed with one nonce break AES-GCM
        (their XOR shows, and the tag can be forged). One pair per session, so a
        re-run notebook cell or a second channel carries on the count instead.
        """
        if self._ciphers is None:
            pair: tuple[AeadCipher | CaesarCipher, AeadCipher | CaesarCipher]
            if self.mode == "toy":
                assert self.toy_secret is not None
                pair = CaesarCipher(self.toy_secret), CaesarCipher(self.toy_secret)
            else:
                c2s = AeadCipher(self.keys.client_to_server)
                s2c = AeadCipher(self.keys.server_to_client)
                pair = (c2s, s2c) if self.role == "client" else (s2c, c2s)
            self._ciphers = pair
        return self._ciphers


# --- what both sides share -------------------------------------------------------------


class _Handshake:
    """State, transcript and the key schedule, the same for both sides."""

    role = ""

    def __init__(
        self,
        static: KeyPair,
        mode: str,
        service: str,
        rng: RandomSource | None,
        state: str,
        ephemeral_keys: Callable[[], KeyPair] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if static.group != MODES[mode]:
            raise ValueError(
                f"{mode} mode uses group {MODES[mode].name}, but the key is {static.group.name}"
            )
        if not isinstance(service, str) or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", service):
            raise ValueError(f"a service label is a short lowercase word, got {service!r}")
        self.static = static
        self.mode = mode
        self.service = service
        self.group = MODES[mode]
        self.ephemeral = mode in _EPHEMERAL_MODES
        self.rng: RandomSource = rng if rng is not None else secrets
        self.ephemeral_keys = ephemeral_keys
        self.state = state
        self.session: Session | None = None
        self.transcript: list[tuple[str, dict[str, Any]]] = []
        # Scratch of the handshake in progress, filled in as messages pass.
        self._nonce = self.rng.token_bytes(_NONCE_BYTES)
        self._eph: KeyPair | None = None  # our ephemeral key pair (secure mode)
        self._peer_eph: PublicKey | None = None
        self._client_hello = b""
        self._server_hello = b""
        self._th = b""  # the transcript hash
        self._keys: SessionKeys | None = None
        self._toy_secret: int | None = None

    @property
    def done(self) -> bool:
        """True once the session keys are derived and confirmed."""
        return self.state == DONE

    def _move(self, event: str) -> None:
        """Take the transition ``event`` from the current state, as the table says."""
        key = (self.role, self.state, event)
        if key not in TRANSITIONS:
            template = _CANNOT_TAKE[self.role, self.state == FAILED]
            raise UnexpectedMessage(template, event=repr(event), state=repr(self.state))
        self.state = TRANSITIONS[key]

    def _can(self, event: str) -> bool:
        return (self.role, self.state, event) in TRANSITIONS

    def _make_ephemeral(self) -> None:
        if not self.ephemeral:
            return
        if self.ephemeral_keys is None:
            self._eph = generate(self.group, self.rng)
            return
        pair = self.ephemeral_keys()
        if pair.group != self.group:
            raise ValueError(f"an ephemeral key of group {pair.group.name}, not {self.group.name}")
        if pair.public in _RECENT_EPHEMERALS:  # each is used once, or it is not ephemeral
            raise ValueError("ephemeral_keys gave a key pair this process has used before")
        if len(_RECENT_EPHEMERALS) >= 1024:
            _RECENT_EPHEMERALS.clear()
        _RECENT_EPHEMERALS.add(pair.public)
        self._eph = pair

    def _dh_terms(self, peer_static: PublicKey, peer_eph: PublicKey | None) -> dict[str, int]:
        """The Diffie-Hellman results this side can compute, by name (see the module doc).

        Each is ``peer_value ^ own_private mod p``; which of our two keys
        meets which of the peer's decides the term's name. The client's key
        comes first in a name: ``es`` is the client's ephemeral with the
        server's static key.
        """
        terms = {"ss": self.static.static_shared_secret(peer_static)}  # the same every time
        if self._eph is not None:
            assert peer_eph is not None
            mine_eph_theirs_static = self._eph.shared_secret(peer_static)
            mine_static_theirs_eph = self.static.shared_secret(peer_eph)
            terms["ee"] = self._eph.shared_secret(peer_eph)
            if self.role == "client":
                terms["es"], terms["se"] = mine_eph_theirs_static, mine_static_theirs_eph
            else:
                terms["es"], terms["se"] = mine_static_theirs_eph, mine_eph_theirs_static
        return terms

    def _derive(self, peer_static: PublicKey) -> None:
        """The key schedule: DH results → HKDF over the transcript → session keys."""
        terms = self._dh_terms(peer_static, self._peer_eph)
        self._keys, self._th = key_schedule(
            self.mode, terms, self._client_hello, self._server_hello
        )
        if self.mode == "toy":
            self._toy_secret = terms["ss"]

    def _confirm(self, sender: str) -> str:
        """The ``confirm`` value ``sender`` sends: HMAC of the transcript, in hex."""
        assert self._keys is not None
        key = self._keys.client_confirm if sender == "client" else self._keys.server_confirm
        return confirmation_tag(key, self._th).hex()

    def _check_confirm(self, message: dict[str, Any], sender: str, failure: str) -> None:
        expected = self._confirm(sender).encode("ascii")
        got = _hex32_field(message, "confirm").encode("ascii")
        if not hmac.compare_digest(expected, got):
            raise HandshakeError(failure)

    def _make_session(self, peer_static: PublicKey) -> Session:
        assert self._keys is not None
        me = self.static.public_key
        a, b = (me, peer_static) if self.role == "client" else (peer_static, me)
        numbers: dict[str, Any]
        if self.mode == "toy":
            numbers = {"p": self.group.p, "g": self.group.g, "A": a.value, "B": b.value}
            numbers["K"] = self._toy_secret
        else:
            numbers = {
                "group": self.group.name,
                "p_bits": self.group.bits,
                "A": a.fingerprint,
                "B": b.fingerprint,
                "K_bits": self.group.bits,
            }
            if self._eph is not None and self._peer_eph is not None:
                # Our own value needs no check (we made it): no PublicKey, no Jacobi symbol.
                mine = fingerprint_of(self.group, self._eph.public)
                theirs = self._peer_eph.fingerprint
                numbers["A_ephemeral"], numbers["B_ephemeral"] = (
                    (mine, theirs) if self.role == "client" else (theirs, mine)
                )
        session = Session(
            role=self.role,
            mode=self.mode,
            group=self.group,
            ephemeral=self.ephemeral,
            local_key=me,
            peer_key=peer_static,
            keys=self._keys,
            service=self.service,
            toy_secret=self._toy_secret,
            numbers=numbers,
            transcript=self.transcript,
        )
        self._eph = None  # forget our ephemeral private key: that is what forward secrecy needs
        return session


# --- the client ----------------------------------------------------------------------


class ClientHandshake(_Handshake):
    """The client's side. Call ``start()``, then feed each server message to ``receive``.

    ``expected_server_key`` pins the server: a ``PublicKey`` (compared
    whole), or its fingerprint (``SHA256:`` and 43 base64 characters, as
    ``labcrypto keygen`` and ssh show it). With it, a man in the middle who
    presents his own key is caught (``ServerKeyChanged``). Without it the
    client accepts any server key and you must check ``server_key``
    yourself (trust on first use).

    ``ephemeral`` is kept for old callers: secure mode always makes fresh
    ephemeral keys (``True`` is accepted there); the static-only exchange
    is ``mode="static"``.
    """

    role = "client"

    def __init__(
        self,
        static: KeyPair,
        mode: str = "secure",
        *,
        service: str = "chat",
        expected_server_key: PublicKey | str | None = None,
        rng: RandomSource | None = None,
        ephemeral: bool | None = None,
        ephemeral_keys: Callable[[], KeyPair] | None = None,
    ) -> None:
        _check_ephemeral_option(mode, ephemeral)
        super().__init__(static, mode, service, rng, START, ephemeral_keys)
        if isinstance(expected_server_key, str):
            expected_server_key = parse_fingerprint(expected_server_key)
        self.expected_server_key: PublicKey | str | None = expected_server_key
        self.server_key: PublicKey | None = None

    def start(self) -> bytes:
        """The first message: ``client_hello``."""
        self._move("start")
        self._make_ephemeral()
        message: dict[str, Any] = {
            "type": "client_hello",
            "protocol": PROTOCOL,
            "version": PROTOCOL_VERSION,
            "service": self.service,
            "mode": self.mode,
            "group": self.group.name,
            "static": f"{self.static.public:#x}",
        }
        if self._eph is not None:
            message["ephemeral"] = f"{self._eph.public:#x}"
        message["nonce"] = self._nonce.hex()
        self._client_hello = encode_message(message)
        self.transcript.append(("client", message))
        return self._client_hello

    def receive(self, data: bytes) -> list[bytes]:
        """Take one message from the server; return the messages to send back."""
        try:
            if self.state == FAILED:
                self._move("receive")  # raises: a failed handshake takes nothing more
            kind = decode_message(data)["type"]
            if kind == "error":
                raise self._server_error(data)
            if self._can("server_hello") and kind == "server_hello":
                self._on_server_hello(data)
                return []
            if self._can("server_finished") and kind == "server_finished":
                return [self._on_server_finished(data)]
            self._move(kind)  # raises UnexpectedMessage: not in the table
            return []
        except LabCryptoError:
            self.state = FAILED
            raise

    def _on_server_hello(self, data: bytes) -> None:
        message = _parse(data, "server_hello", self.ephemeral)
        if _field(message, "version", int) != PROTOCOL_VERSION:
            raise VersionMismatch(
                N_("the server speaks protocol version {version}"), version=message["version"]
            )
        server_key = _public_field(message, "static", self.group)
        self._check_pin(server_key)
        if server_key == self.static.public_key:
            raise HandshakeError(
                N_("the server presented our own public key (a reflection attack)")
            )
        if self.ephemeral:
            self._peer_eph = _public_field(message, "ephemeral", self.group)
        _hex32_field(message, "nonce")
        self.transcript.append(("server", message))
        self.server_key, self._server_hello = server_key, bytes(data)
        self._derive(server_key)
        self._move("server_hello")

    def _check_pin(self, server_key: PublicKey) -> None:
        expected = self.expected_server_key
        if expected is None:
            return
        if isinstance(expected, PublicKey):
            ok = expected == server_key  # the whole key, not a fingerprint of it
            wanted = expected.fingerprint
        else:
            wanted = expected
            ok = hmac.compare_digest(wanted.encode(), server_key.fingerprint.encode())
        if not ok:
            raise ServerKeyChanged(
                N_("the server's key has fingerprint {got}, but we expected {wanted}. Someone "
                   "may be in the middle — or the server got a new key. Do not continue until "
                   "you have checked the fingerprint with the instructor."),
                got=server_key.fingerprint,
                wanted=wanted,
            )

    def _on_server_finished(self, data: bytes) -> bytes:
        message = _parse(data, "server_finished", False)
        self._check_confirm(
            message,
            "server",
            N_("the server could not prove it derived the same keys: someone changed the "
               "handshake in flight, or the server does not hold the private key it claims"),
        )
        self.transcript.append(("server", message))
        reply = {"type": "client_finished", "confirm": self._confirm("client")}
        self.transcript.append(("client", reply))
        assert self.server_key is not None
        self.session = self._make_session(self.server_key)
        self._move("server_finished")
        return encode_message(reply)

    def _server_error(self, data: bytes) -> HandshakeError:
        """The server's ``error`` message as the matching exception, in our own words.

        Nothing has authenticated the server yet: anyone on the path can
        send this message. So a known code is shown in our own words (in the
        reader's language), and the server's text only for a code we do not
        know, quoted and labelled. The server's words stay on the error
        (``fields["words"]``, quoted) for whoever wants to look.
        """
        try:
            message = _parse(data, "error", False)
            code = _field(message, "code", str)
            text = _field(message, "message", str)
        except LabCryptoError:
            return HandshakeError(
                N_("the server ended the handshake with an unreadable error message")
            )
        self.transcript.append(("server", message))
        if code in _ERRORS:
            kind, local = _ERRORS[code]
            words = quote(text, 200)
            return kind(local, code=code, words=words, protocol=PROTOCOL, version=PROTOCOL_VERSION)
        return HandshakeError(UNKNOWN_ERROR, code=quote(code, 40), words=quote(text, 200))


def _check_ephemeral_option(mode: str, ephemeral: bool | None) -> None:
    """The old ``ephemeral=`` option: only what the mode does anyway is accepted."""
    if ephemeral is None:
        return
    if ephemeral and mode not in _EPHEMERAL_MODES:
        raise ValueError(f"ephemeral keys are part of secure mode; {mode} mode has none")
    if not ephemeral and mode in _EPHEMERAL_MODES:
        raise ValueError(
            "secure mode always makes fresh ephemeral keys on both sides; for the course's "
            'static-only exchange use mode="static"'
        )


# --- the server ----------------------------------------------------------------------


class ServerHandshake(_Handshake):
    """The server's side. Feed each client message to ``receive``; send what it returns.

    ``allow(public_key) -> bool`` is the allowlist check (task 3); it runs
    before the server makes its ephemeral key or sends anything. ``None``
    allows every valid key (only for demos: notebook 03 shows what goes
    wrong). ``service`` names what this server offers (``"chat"``,
    ``"files"``); a client asking for another is refused.
    ``require_ephemeral`` is kept for old callers: secure mode always
    requires them, and it is refused in the other modes.
    """

    role = "server"

    def __init__(
        self,
        static: KeyPair,
        mode: str = "secure",
        *,
        service: str = "chat",
        allow: Callable[[PublicKey], bool] | None = None,
        rng: RandomSource | None = None,
        require_ephemeral: bool = False,
        ephemeral_keys: Callable[[], KeyPair] | None = None,
    ) -> None:
        if require_ephemeral:
            _check_ephemeral_option(mode, True)
        super().__init__(static, mode, service, rng, WAIT_CLIENT_HELLO, ephemeral_keys)
        self.allow = allow
        self.client_key: PublicKey | None = None

    def receive(self, data: bytes) -> list[bytes]:
        """Take one message from the client; return the messages to send back."""
        try:
            if self.state == FAILED:
                self._move("receive")  # raises: a failed handshake takes nothing more
            kind = decode_message(data)["type"]
            if self._can("client_hello") and kind == "client_hello":
                return self._on_client_hello(data)
            if self._can("client_finished") and kind == "client_finished":
                self._on_client_finished(data)
                return []
            self._move(kind)  # raises UnexpectedMessage: not in the table
            return []
        except LabCryptoError:
            self.state = FAILED
            raise

    def _check_hello_header(self, data: bytes) -> None:
        """Protocol, version, service, mode, group: checked before the exact field list,
        so a client of another mode is told so (not "wrong fields")."""
        message = decode_message(data)
        protocol = message.get("protocol")
        version = message.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise MalformedMessage(
                N_("client_hello: the version must be a number, got {got}"), got=quote(version, 20)
            )
        if protocol != PROTOCOL or version != PROTOCOL_VERSION:
            raise VersionMismatch(
                N_("this server speaks {protocol} version {version}, the client {got_protocol} "
                   "version {got_version}"),
                protocol=PROTOCOL,
                version=PROTOCOL_VERSION,
                got_protocol=quote(protocol, 40),
                got_version=quote(version, 20),
            )
        service = message.get("service")
        if service != self.service:
            raise ServiceMismatch(
                N_("this server offers the {service} service, the client asked for {got}"),
                service=self.service,
                got=quote(service, 40),
            )
        mode = message.get("mode")
        if mode != self.mode:
            raise ModeMismatch(
                N_("this server runs in {mode} mode, the client asked for {got}"),
                mode=self.mode,
                got=quote(mode, 40),
            )
        group = message.get("group")
        if group != self.group.name:
            raise UnknownGroup(
                N_("this server uses group {group}, not {got}"),
                group=self.group.name,
                got=quote(group, 40),
            )

    def _on_client_hello(self, data: bytes) -> list[bytes]:
        self._check_hello_header(data)
        message = _parse(data, "client_hello", self.ephemeral)
        client_key = _public_field(message, "static", self.group)
        if self.ephemeral:
            self._peer_eph = _public_field(message, "ephemeral", self.group)
        _hex32_field(message, "nonce")
        if client_key == self.static.public_key:
            raise KeyNotAllowed(
                N_("the client presented the server's own public key (a reflection attack; "
                   "in the toy group, with only 20 possible keys, it also happens by chance: "
                   "make another key)")
            )
        self.client_key = client_key
        self.transcript.append(("client", message))
        if self.allow is not None and not self.allow(client_key):
            raise KeyNotAllowed(
                N_("the key with fingerprint {fingerprint} is not on the allowlist"),
                fingerprint=client_key.fingerprint,
            )
        # Only now, with an allowed client, do we do anything secret.
        self._make_ephemeral()
        reply: dict[str, Any] = {
            "type": "server_hello",
            "version": PROTOCOL_VERSION,
            "static": f"{self.static.public:#x}",
        }
        if self._eph is not None:
            reply["ephemeral"] = f"{self._eph.public:#x}"
        reply["nonce"] = self._nonce.hex()
        self._client_hello, self._server_hello = bytes(data), encode_message(reply)
        self.transcript.append(("server", reply))
        self._derive(client_key)
        finished = {"type": "server_finished", "confirm": self._confirm("server")}
        self.transcript.append(("server", finished))
        self._move("client_hello")
        return [self._server_hello, encode_message(finished)]

    def _on_client_finished(self, data: bytes) -> None:
        message = _parse(data, "client_finished", False)
        self._check_confirm(
            message,
            "client",
            N_("the client could not prove it holds the private key of the public key it sent"),
        )
        self.transcript.append(("client", message))
        assert self.client_key is not None
        self.session = self._make_session(self.client_key)
        self._move("client_finished")

    @staticmethod
    def error_message(exc: LabCryptoError) -> bytes:
        """The plain ``error`` message to send the client before closing.

        It tells the client which rule it broke (so a student sees "not on
        the allowlist", not a bare reset) but never anything secret: a
        failed confirmation is just "failed".
        """
        code = _CODE_OF.get(type(exc), "failed") if isinstance(exc, HandshakeError) else "failed"
        text = in_english(exc) if code != "failed" else "the handshake failed"
        return encode_message({"type": "error", "code": code, "message": text[:300]})
