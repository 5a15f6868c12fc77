"""The handshake, as two state machines that take bytes in and give bytes out.

No sockets here ("sans-IO", like h11): a ``ClientHandshake`` and a
``ServerHandshake`` pass small JSON messages, and *you* carry the bytes
between them — by hand in a notebook cell, over ``socket.socketpair()`` in
a test, or over TCP in ``channel``/``server``. The same code runs in all
three, which is why a notebook can step through it before any socket exists.

The conversation (every message is readable JSON on the wire)::

    client                                              server
    client_hello  {version, mode, group, static=A,
                   nonce_c [, ephemeral=A']}      ──►   check version, mode, group,
                                                         A is a valid value,
                                                         A is on the allowlist  (task 3)
                                                  ◄──   server_hello {static=B, nonce_s
                                                                      [, ephemeral=B']}
                                                  ◄──   server_finished {confirm=HMAC}
    check B (pinned?), derive the same keys,
    check the server's HMAC
    client_finished {confirm=HMAC}                ──►   check the client's HMAC
    ...both now hold the session keys: encrypted frames follow (``channel``)

How both sides get the same keys, and why only they can:

* ``K = B^a mod p = A^b mod p`` — each side combines its *own private* key
  with the *other's public* key. (The course text describes this as a
  double encryption; it is not: there is one shared number, and one
  symmetric cipher keyed from it.)
* In ephemeral mode (the file service, task 5) both sides also make a
  fresh key pair for this session only, and ``K' = B'^a' = A'^b'`` is mixed
  in: stealing a long-term key later cannot decrypt a recorded session
  (forward secrecy).
* ``session keys = HKDF(K [, K'], nonces, transcript hash)``
  (``ciphers.derive_session_keys``). The transcript hash covers both hello
  messages byte for byte, so a man in the middle who swaps a key makes the
  two sides derive different keys — and the ``confirm`` HMACs fail.

The server checks the client's static key with the caller's ``allow``
predicate *before* it sends anything that depends on a secret. An unknown
key gets a plain ``error`` message and the handshake ends.

Modes: ``"secure"`` (the default: ffdhe2048, AES-256-GCM) and ``"toy"``
(the course's p = 23, g = 5 and a Caesar shift by K: for seeing the numbers
and breaking them in class).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    MalformedMessage,
    ServerKeyChanged,
    UnexpectedMessage,
    UnknownGroup,
    VersionMismatch,
)
from .groups import FFDHE2048, TOY, Group
from .keys import KeyPair, PublicKey, generate, parse_number

__all__ = [
    "MAX_HANDSHAKE_MESSAGE",
    "MODES",
    "PROTOCOL_VERSION",
    "ClientHandshake",
    "ServerHandshake",
    "Session",
    "decode_message",
    "encode_message",
]

PROTOCOL_VERSION = 1
#: Which group each mode uses.
MODES: dict[str, Group] = {"secure": FFDHE2048, "toy": TOY}
#: A handshake message is a few hundred bytes; anything much bigger is an attack.
MAX_HANDSHAKE_MESSAGE = 16 * 1024
_NONCE_BYTES = 32

# Server error codes and the exception the client raises for each.
_ERROR_CODES: dict[str, type[HandshakeError]] = {
    "not_allowed": KeyNotAllowed,
    "version": VersionMismatch,
    "group": UnknownGroup,
    "invalid_value": InvalidPublicValue,
    "malformed": MalformedMessage,
    "unexpected": UnexpectedMessage,
    "failed": HandshakeError,
}


# --- messages on the wire ------------------------------------------------------


def encode_message(message: dict[str, Any]) -> bytes:
    """A message as compact UTF-8 JSON bytes (what travels, inside one frame)."""
    return json.dumps(message, separators=(",", ":")).encode()


def decode_message(data: bytes) -> dict[str, Any]:
    """Parse one handshake message, or raise ``MalformedMessage`` saying why.

    Never ``pickle``: unpickling bytes from the network runs the sender's
    code (course mistake 7). JSON can only ever produce plain data.
    """
    if len(data) > MAX_HANDSHAKE_MESSAGE:
        raise MalformedMessage(f"handshake message of {len(data)} bytes is too large")
    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"a handshake message must be UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedMessage('a handshake message must be a JSON object with a "type"')
    return message


def _field(message: dict[str, Any], name: str, kind: type) -> Any:
    """``message[name]``, checked to exist and to be of type ``kind``."""
    value = message.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedMessage(
            f"{message.get('type')}: field {name!r} must be a {kind.__name__}, "
            f"got {type(value).__name__}"
        )
    return value


def _public_field(message: dict[str, Any], name: str, group: Group) -> PublicKey:
    """A public value sent as hex text, parsed and validated (once) in ``group``."""
    text = _field(message, name, str)
    if len(text) > 2 * group.byte_length + 2 + 16:
        raise InvalidPublicValue(f"{name}: a {len(text)}-character number is out of range")
    try:
        value = parse_number(text)
    except ValueError as exc:
        raise MalformedMessage(f"{message['type']}: field {name!r}: {exc}") from None
    return PublicKey(group, value)  # PublicKey validates the value when it is made


def _nonce_field(message: dict[str, Any]) -> bytes:
    text = _field(message, "nonce", str)
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise MalformedMessage(f"{message['type']}: the nonce must be hex") from None
    if len(nonce) != _NONCE_BYTES:
        raise MalformedMessage(f"{message['type']}: the nonce must be {_NONCE_BYTES} bytes")
    return nonce


def _confirm_field(message: dict[str, Any]) -> bytes:
    try:
        return bytes.fromhex(_field(message, "confirm", str))
    except ValueError:
        raise MalformedMessage(f"{message['type']}: 'confirm' must be hex") from None


def _transcript_hash(client_hello: bytes, server_hello: bytes) -> bytes:
    """SHA-256 over both hellos, each with its length, exactly as sent."""
    digest = hashlib.sha256()
    for part in (client_hello, server_hello):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()


def _dh_bytes(group: Group, value: int) -> bytes:
    """A DH result as fixed-length big-endian bytes (the HKDF input)."""
    return value.to_bytes(group.byte_length, "big")


# --- the result ----------------------------------------------------------------


@dataclass
class Session:
    """What a finished handshake gives each side.

    ``numbers`` holds what a notebook shows: in toy mode ``p, g, A, B, K``
    themselves; in secure mode only public things (sizes and fingerprints:
    ``K`` is 2048 bits and secret). ``transcript`` lists every message as
    ``(sender, message)`` in order.
    """

    role: str
    mode: str
    group: Group
    ephemeral: bool
    local_key: PublicKey
    peer_key: PublicKey
    keys: SessionKeys
    toy_secret: int | None = field(default=None, repr=False)
    numbers: dict[str, Any] = field(default_factory=dict, repr=False)
    transcript: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this session's keys: different for every session."""
        return self.keys.fingerprint

    def ciphers(self) -> tuple[AeadCipher | CaesarCipher, AeadCipher | CaesarCipher]:
        """``(send_cipher, receive_cipher)`` for this side, fresh (counters at 0)."""
        if self.mode == "toy":
            assert self.toy_secret is not None
            return CaesarCipher(self.toy_secret), CaesarCipher(self.toy_secret)
        c2s, s2c = AeadCipher(self.keys.client_to_server), AeadCipher(self.keys.server_to_client)
        return (c2s, s2c) if self.role == "client" else (s2c, c2s)


class _Handshake:
    """What both sides share: state, transcript, the key schedule."""

    role = ""

    def __init__(self, static: KeyPair, mode: str, ephemeral: bool) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        if static.group != MODES[mode]:
            raise ValueError(
                f"{mode} mode uses group {MODES[mode].name}, but the key is {static.group.name}"
            )
        if ephemeral and mode == "toy":
            raise ValueError("ephemeral keys are an option of secure mode only")
        self.static = static
        self.mode = mode
        self.group = MODES[mode]
        self.ephemeral = ephemeral
        self.state = "start"
        self.session: Session | None = None
        self.transcript: list[tuple[str, dict[str, Any]]] = []
        self._nonce = secrets.token_bytes(_NONCE_BYTES)
        self._eph: KeyPair | None = generate(self.group) if ephemeral else None

    @property
    def done(self) -> bool:
        """True once the session keys are derived and confirmed."""
        return self.state == "done"

    def _expect(self, message: dict[str, Any], wanted: str) -> None:
        if message["type"] != wanted:
            raise UnexpectedMessage(
                f"expected {wanted!r} in state {self.state!r}, got {message['type']!r}"
            )

    def _fail(self) -> None:
        self.state = "failed"

    def _check_state(self, wanted: str) -> None:
        if self.state != wanted:
            raise UnexpectedMessage(
                f"the {self.role} handshake is in state {self.state!r}, not {wanted!r}"
                + (" (it already failed: start a new one)" if self.state == "failed" else "")
            )

    def _derive(
        self,
        client_hello: bytes,
        server_hello: bytes,
        peer_static: PublicKey,
        peer_ephemeral: PublicKey | None,
        client_nonce: bytes,
        server_nonce: bytes,
    ) -> tuple[SessionKeys, bytes, int]:
        """The key schedule: DH results → HKDF → session and confirmation keys."""
        static_secret = self.static.shared_secret(peer_static)
        dh_results = []
        if self._eph is not None and peer_ephemeral is not None:
            dh_results.append(_dh_bytes(self.group, self._eph.shared_secret(peer_ephemeral)))
        dh_results.append(_dh_bytes(self.group, static_secret))
        th = _transcript_hash(client_hello, server_hello)
        keys = derive_session_keys(dh_results, client_nonce, server_nonce, th)
        return keys, th, static_secret

    def _make_session(
        self,
        keys: SessionKeys,
        peer_static: PublicKey,
        secret: int,
        peer_eph: PublicKey | None,
    ) -> Session:
        me = self.static.public_key
        a, b = (me, peer_static) if self.role == "client" else (peer_static, me)
        if self.mode == "toy":
            numbers: dict[str, Any] = {"p": self.group.p, "g": self.group.g}
            numbers.update(A=a.value, B=b.value, K=secret)
        else:
            numbers = {
                "group": self.group.name,
                "p_bits": self.group.bits,
                "A": a.fingerprint,
                "B": b.fingerprint,
                "K_bits": secret.bit_length(),
            }
            if self._eph is not None and peer_eph is not None:
                mine = self._eph.fingerprint
                theirs = peer_eph.fingerprint
                numbers["A_ephemeral"], numbers["B_ephemeral"] = (
                    (mine, theirs) if self.role == "client" else (theirs, mine)
                )
        return Session(
            role=self.role,
            mode=self.mode,
            group=self.group,
            ephemeral=self._eph is not None,
            local_key=self.static.public_key,
            peer_key=peer_static,
            keys=keys,
            toy_secret=secret if self.mode == "toy" else None,
            numbers=numbers,
            transcript=self.transcript,
        )


class ClientHandshake(_Handshake):
    """The client's side. Call ``start()``, then feed each server message to ``receive``.

    ``expected_server_key`` pins the server: a ``PublicKey``, or a
    fingerprint string. With it, a man in the middle who presents his own
    key is caught (``ServerKeyChanged``). Without it the client accepts any
    server key and you must check ``server_key`` yourself (trust on first use).
    """

    role = "client"

    def __init__(
        self,
        static: KeyPair,
        mode: str = "secure",
        *,
        ephemeral: bool = False,
        expected_server_key: PublicKey | str | None = None,
    ) -> None:
        super().__init__(static, mode, ephemeral)
        self.expected_server_key = expected_server_key
        self.server_key: PublicKey | None = None
        self._hello = b""
        self._server_hello = b""
        self._keys: SessionKeys | None = None
        self._th = b""
        self._secret = 0
        self._peer_eph: PublicKey | None = None

    def start(self) -> bytes:
        """The first message: ``client_hello``."""
        self._check_state("start")
        message: dict[str, Any] = {
            "type": "client_hello",
            "version": PROTOCOL_VERSION,
            "mode": self.mode,
            "group": self.group.name,
            "static": f"{self.static.public:#x}",
            "nonce": self._nonce.hex(),
        }
        if self._eph is not None:
            message["ephemeral"] = f"{self._eph.public:#x}"
        self._hello = encode_message(message)
        self.transcript.append(("client", message))
        self.state = "wait_server_hello"
        return self._hello

    def receive(self, data: bytes) -> list[bytes]:
        """Take one message from the server; return the messages to send back."""
        try:
            message = decode_message(data)
            if message["type"] == "error":
                self.transcript.append(("server", message))
                raise _server_error(message)
            if self.state == "wait_server_hello":
                self._expect(message, "server_hello")
                self._on_server_hello(data, message)
                return []
            self._check_state("wait_server_finished")
            self._expect(message, "server_finished")
            return [self._on_server_finished(message)]
        except LabCryptoError:
            self._fail()
            raise

    def _on_server_hello(self, data: bytes, message: dict[str, Any]) -> None:
        if _field(message, "version", int) != PROTOCOL_VERSION:
            raise VersionMismatch(f"the server speaks protocol {message['version']}")
        server_key = _public_field(message, "static", self.group)
        self._check_pin(server_key)
        if server_key == self.static.public_key:
            raise HandshakeError("the server presented our own public key (a reflection attack)")
        peer_eph = None
        if self._eph is not None:
            peer_eph = _public_field(message, "ephemeral", self.group)
        self.transcript.append(("server", message))
        self.server_key, self._server_hello, self._peer_eph = server_key, data, peer_eph
        self._keys, self._th, self._secret = self._derive(
            self._hello, data, server_key, peer_eph, self._nonce, _nonce_field(message)
        )
        self.state = "wait_server_finished"

    def _check_pin(self, server_key: PublicKey) -> None:
        expected = self.expected_server_key
        if expected is None:
            return
        wanted = expected.fingerprint if isinstance(expected, PublicKey) else expected
        wanted = wanted.replace(":", "").strip().lower()
        if not hmac.compare_digest(wanted, server_key.fingerprint):
            raise ServerKeyChanged(
                f"the server's key has fingerprint {server_key.fingerprint}, but we expected "
                f"{wanted}. Someone may be in the middle — or the server got a new key. "
                "Do not continue until you have checked the fingerprint with the instructor."
            )

    def _on_server_finished(self, message: dict[str, Any]) -> bytes:
        assert self._keys is not None and self.server_key is not None
        expected = confirmation_tag(self._keys.server_confirm, self._th)
        if not hmac.compare_digest(expected, _confirm_field(message)):
            raise HandshakeError(
                "the server could not prove it derived the same keys: someone changed the "
                "handshake in flight, or the server does not hold the private key it claims"
            )
        self.transcript.append(("server", message))
        reply = {
            "type": "client_finished",
            "confirm": confirmation_tag(self._keys.client_confirm, self._th).hex(),
        }
        self.transcript.append(("client", reply))
        self.session = self._make_session(self._keys, self.server_key, self._secret, self._peer_eph)
        self.state = "done"
        return encode_message(reply)


class ServerHandshake(_Handshake):
    """The server's side. Feed each client message to ``receive``; send what it returns.

    ``allow(public_key) -> bool`` is the allowlist check (task 3); it runs
    before the server sends anything. ``None`` allows every valid key
    (only for demos: notebook 03 shows what goes wrong).
    ``require_ephemeral=True`` refuses clients that bring no fresh key (the
    file service, task 5).
    """

    role = "server"

    def __init__(
        self,
        static: KeyPair,
        mode: str = "secure",
        *,
        allow: Callable[[PublicKey], bool] | None = None,
        require_ephemeral: bool = False,
    ) -> None:
        super().__init__(static, mode, ephemeral=False)
        self.allow = allow
        self.require_ephemeral = require_ephemeral
        self.client_key: PublicKey | None = None
        self._keys: SessionKeys | None = None
        self._th = b""
        self.state = "wait_client_hello"

    def receive(self, data: bytes) -> list[bytes]:
        """Take one message from the client; return the messages to send back."""
        try:
            message = decode_message(data)
            if self.state == "wait_client_hello":
                self._expect(message, "client_hello")
                return self._on_client_hello(data, message)
            self._check_state("wait_client_finished")
            self._expect(message, "client_finished")
            self._on_client_finished(message)
            return []
        except LabCryptoError:
            self._fail()
            raise

    def _on_client_hello(self, data: bytes, message: dict[str, Any]) -> list[bytes]:
        version = _field(message, "version", int)
        if version != PROTOCOL_VERSION:
            raise VersionMismatch(
                f"this server speaks protocol version {PROTOCOL_VERSION}, the client {version}"
            )
        mode = _field(message, "mode", str)
        if mode != self.mode:
            raise VersionMismatch(f"this server runs in {self.mode} mode, the client asked {mode}")
        group_name = _field(message, "group", str)
        if group_name != self.group.name:
            raise UnknownGroup(f"this server uses group {self.group.name}, not {group_name[:40]!r}")
        client_key = _public_field(message, "static", self.group)
        client_nonce = _nonce_field(message)
        peer_eph = None
        if "ephemeral" in message:
            peer_eph = _public_field(message, "ephemeral", self.group)
        elif self.require_ephemeral:
            raise MalformedMessage("this server needs a fresh ephemeral key on every request")
        if client_key == self.static.public_key:
            raise KeyNotAllowed(
                "the client presented the server's own public key (a reflection attack; "
                "in the toy group, with only 20 possible keys, it also happens by chance: "
                "make another key)"
            )
        self.client_key = client_key
        self.transcript.append(("client", message))
        if self.allow is not None and not self.allow(client_key):
            raise KeyNotAllowed(
                f"the key with fingerprint {client_key.fingerprint} is not on the allowlist"
            )
        # Only now, with an allowed client, do we do anything secret.
        if peer_eph is not None:
            self._eph = generate(self.group)
        reply: dict[str, Any] = {
            "type": "server_hello",
            "version": PROTOCOL_VERSION,
            "static": f"{self.static.public:#x}",
            "nonce": self._nonce.hex(),
        }
        if self._eph is not None:
            reply["ephemeral"] = f"{self._eph.public:#x}"
        hello = encode_message(reply)
        self.transcript.append(("server", reply))
        self._keys, self._th, secret = self._derive(
            data, hello, client_key, peer_eph, client_nonce, self._nonce
        )
        finished = {
            "type": "server_finished",
            "confirm": confirmation_tag(self._keys.server_confirm, self._th).hex(),
        }
        self.transcript.append(("server", finished))
        self._pending = (secret, peer_eph)
        self.state = "wait_client_finished"
        return [hello, encode_message(finished)]

    def _on_client_finished(self, message: dict[str, Any]) -> None:
        assert self._keys is not None and self.client_key is not None
        expected = confirmation_tag(self._keys.client_confirm, self._th)
        if not hmac.compare_digest(expected, _confirm_field(message)):
            raise HandshakeError(
                "the client could not prove it holds the private key of the public key it sent"
            )
        self.transcript.append(("client", message))
        secret, peer_eph = self._pending
        self.session = self._make_session(self._keys, self.client_key, secret, peer_eph)
        self.state = "done"

    @staticmethod
    def error_message(exc: LabCryptoError) -> bytes:
        """The plain ``error`` message to send the client before closing.

        It tells the client which rule it broke (so a student sees "not on
        the allowlist", not a bare reset) but never anything secret: a
        failed confirmation is just "failed".
        """
        code = next((c for c, kind in _ERROR_CODES.items() if type(exc) is kind), "failed")
        text = str(exc) if code != "failed" else "the handshake failed"
        return encode_message({"type": "error", "code": code, "message": text[:300]})


def _server_error(message: dict[str, Any]) -> HandshakeError:
    """Turn the server's ``error`` message into the matching exception."""
    code = message.get("code")
    text = message.get("message")
    text = text[:300] if isinstance(text, str) else "no reason given"
    kind = _ERROR_CODES.get(code, HandshakeError) if isinstance(code, str) else HandshakeError
    if kind is KeyNotAllowed:
        return KeyNotAllowed(
            f"the server refused our key: {text}. Ask the instructor to add your .pub file "
            "to the allowlist (labcrypto allow add NAME keys/NAME.pub), then connect again"
        )
    return kind(f"the server refused the handshake: {text}")
