"""Ciphers: the course's toy Caesar shift, and the real thing (AES-256-GCM).

Diffie-Hellman gives both sides the same number ``K``. A cipher turns that
shared number into protected messages. This module has two, used through
the same two-method interface (``seal`` / ``open``), so the rest of the lab
can switch between them with one parameter (``mode="toy"`` or
``"secure"``):

``CaesarCipher`` — the course's cipher, insecure on purpose. Every byte is
shifted by ``K mod 256``. There are only 256 keys, an eavesdropper tries
them all in a blink (notebook 02b does), and nothing stops a tampered,
replayed or made-up message; the same shift serves both directions, so a
message bounced back to its sender reads as the peer's. ``caesar_text``
shifts Unicode characters instead, for the notebook's by-hand demos.

``AeadCipher`` — what real protocols (TLS 1.3, SSH, WireGuard) do:

1. **Key derivation (HKDF-SHA256).** A DH result ``K`` is a number with
   structure, not a uniformly random key. HKDF hashes the DH results of
   the handshake (four in secure mode: ``ee, es, se, ss``; one in the
   static and toy modes) together with both sides' random nonces and a
   hash of the handshake transcript into independent keys: one for
   client→server, one for server→client, and confirmation keys. Fresh
   nonces mean fresh session keys, even with the same ``K``.
2. **Authenticated encryption (AES-256-GCM).** Each message is encrypted
   and given a 16-byte tag; a single flipped bit makes ``open`` fail.
3. **Counter nonces.** Message *n* in a direction is sealed with nonce
   *n*; the receiver expects exactly *n*. A replayed or reordered
   message is opened with the wrong nonce and fails too, and so does the
   message after a dropped one. (Dropping the *last* messages is caught
   one layer up: the channel's goodbye is sealed too, so a conversation
   cut short ends without it.) Each direction has its own key, so a
   message bounced back to its sender fails as well, although both
   directions count from 0.
4. **Limits of one key.** The counter must never repeat (2^64 - 1
   messages), but that is not the limit that bites first: AES-GCM's
   guarantees weaken with the *amount of data* sealed under one key.
   TLS 1.3 (RFC 8446, section 5.5) stops at about 2^24.5 full 16 KiB
   records, about 2^38.5 bytes; we stop a key at 2^38 bytes (256 GiB) per
   direction. Past either limit ``seal`` raises ``SessionExhausted`` and
   the channel closes: a new connection makes a new key.

Nothing here is hand-rolled: AES-GCM and HKDF come from the
``cryptography`` package. Used by ``handshake`` and ``channel``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DecryptionFailed, SessionExhausted
from .i18n import N_

__all__ = [
    "MAX_BYTES_PER_KEY",
    "MAX_MESSAGES_PER_KEY",
    "TAG_SIZE",
    "AeadCipher",
    "CaesarCipher",
    "SessionKeys",
    "caesar_text",
    "confirmation_tag",
    "derive_session_keys",
]

#: Bytes that AES-GCM adds to every message (the authentication tag).
TAG_SIZE = 16
_KEY_SIZE = 32  # AES-256
#: The counter must never wrap around (a repeated nonce breaks GCM outright).
MAX_MESSAGES_PER_KEY = 2**64 - 1
#: GCM's data-volume limit for one key (see the module doc): 256 GiB per direction.
MAX_BYTES_PER_KEY = 2**38
#: The HKDF label: the protocol and its version, so no other protocol derives these keys.
_LABEL = b"labcrypto v2"
#: ``AESGCM.encrypt_into``/``decrypt_into`` (cryptography 47 and later): no new object per record.
_ENCRYPT_INTO = hasattr(AESGCM, "encrypt_into")

# Unicode has 0x110000 code points, but 0xD800-0xDFFF (surrogates) cannot be
# written as UTF-8, so the toy text cipher shifts within the other ones.
_SURROGATES = range(0xD800, 0xE000)
_ALPHABET_SIZE = 0x110000 - len(_SURROGATES)


def caesar_text(shift: int, text: str) -> str:
    """Shift every character of ``text`` by ``shift`` code points (negative undoes it).

    ``caesar_text(-k, caesar_text(k, m)) == m`` for any Unicode text ``m``.
    This is the course's "generalized Caesar over character codes".
    """

    def to_index(char: str) -> int:
        code = ord(char)
        return code - len(_SURROGATES) if code >= _SURROGATES.stop else code

    def from_index(index: int) -> str:
        return chr(index + len(_SURROGATES) if index >= _SURROGATES.start else index)

    return "".join(from_index((to_index(c) + shift) % _ALPHABET_SIZE) for c in text)


class CaesarCipher:
    """The toy cipher: add ``K mod 256`` to every byte. Insecure on purpose.

    It has the same ``seal`` / ``open`` methods as ``AeadCipher`` so a
    channel can use either. ``open`` cannot detect tampering: there is no
    tag, so any bytes "decrypt" to something.
    """

    def __init__(self, key: int) -> None:
        self.shift = key % 256
        self._encrypt_table = bytes((b + self.shift) % 256 for b in range(256))
        self._decrypt_table = bytes((b - self.shift) % 256 for b in range(256))

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        """Shift every byte forward by the key."""
        return bytes(plaintext).translate(self._encrypt_table)

    def open(self, ciphertext: bytes | bytearray | memoryview) -> bytes:
        """Shift every byte back."""
        return bytes(ciphertext).translate(self._decrypt_table)

    def seal_into(self, plaintext: bytes | memoryview, out: memoryview) -> int:
        """``seal`` into the start of ``out``; returns the bytes written (as many as given)."""
        out[: len(plaintext)] = self.seal(plaintext)
        return len(plaintext)

    def open_into(self, ciphertext: bytes | memoryview, out: memoryview) -> int:
        """``open`` into the start of ``out``; returns the bytes written."""
        out[: len(ciphertext)] = self.open(ciphertext)
        return len(ciphertext)

    def __repr__(self) -> str:
        return f"CaesarCipher(shift={self.shift})"


class AeadCipher:
    """AES-256-GCM in one direction, with a message counter as the nonce.

    One object seals (the sender's) or opens (the receiver's) the messages
    of one direction, in order. The 12-byte nonce is the message number;
    it never travels on the wire, both sides count. That is what makes a
    replayed or reordered frame fail: it is opened with the wrong number.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_SIZE:
            raise ValueError(f"AES-256 needs a {_KEY_SIZE}-byte key, got {len(key)} bytes")
        self._aead = AESGCM(key)
        self.counter = 0
        self.sealed_bytes = 0

    def _next_nonce(self) -> bytes:
        if self.counter >= MAX_MESSAGES_PER_KEY:
            raise SessionExhausted(
                N_("this session key has sealed its last message (the counter would repeat): "
                   "open a new connection for a new key")
            )
        nonce = self.counter.to_bytes(12, "big")
        self.counter += 1
        return nonce

    def seal(self, plaintext: bytes, associated_data: bytes | None = None) -> bytes:
        """Encrypt and authenticate the next message; returns ciphertext + 16-byte tag."""
        self._count(len(plaintext))
        return self._aead.encrypt(self._next_nonce(), plaintext, associated_data)

    def _count(self, size: int) -> None:
        """Count ``size`` more bytes sealed under this key, or refuse past GCM's limit."""
        if self.sealed_bytes + size > MAX_BYTES_PER_KEY:
            raise SessionExhausted(
                N_("this session key has sealed {sealed} bytes; AES-GCM's limit for one key "
                   "is {limit}: open a new connection for a new key"),
                sealed=self.sealed_bytes,
                limit=MAX_BYTES_PER_KEY,
            )
        self.sealed_bytes += size

    def open(self, ciphertext: bytes, associated_data: bytes | None = None) -> bytes:
        """Check and decrypt the next message, or raise ``DecryptionFailed``.

        After a failure this direction is dead (the counter has moved on):
        a channel must close, never try to resynchronise.
        """
        nonce = self._next_nonce()
        try:
            return self._aead.decrypt(nonce, ciphertext, associated_data)
        except InvalidTag:
            raise self._failure() from None

    def seal_into(self, plaintext: bytes | memoryview, out: memoryview) -> int:
        """``seal`` into the start of ``out`` instead of a new object; returns the bytes written.

        For bulk data (the file service's 512 KiB records): the channel seals
        every record into the same buffer, so no 512 KiB object is made, and
        then copied, per record. ``cryptography`` 47 encrypts straight into
        the buffer; older versions (the lab allows 42 and later) copy once.
        """
        self._count(len(plaintext))
        size = len(plaintext) + TAG_SIZE
        nonce = self._next_nonce()
        if _ENCRYPT_INTO:
            self._aead.encrypt_into(nonce, plaintext, None, out[:size])
        else:
            out[:size] = self._aead.encrypt(nonce, plaintext, None)
        return size

    def open_into(self, ciphertext: bytes | memoryview, out: memoryview) -> int:
        """``open`` into the start of ``out``; returns the plaintext's length.

        Raises ``DecryptionFailed`` like ``open``. On a failure ``out`` may
        already hold the unchecked bytes: never use them (the channel closes).
        """
        size = len(ciphertext) - TAG_SIZE
        nonce = self._next_nonce()
        try:
            if size < 0:  # not even a tag
                raise InvalidTag
            if _ENCRYPT_INTO:
                self._aead.decrypt_into(nonce, ciphertext, None, out[:size])
            else:
                out[:size] = self._aead.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise self._failure() from None
        return size

    def _failure(self) -> DecryptionFailed:
        return DecryptionFailed(
            N_("message {number} failed authentication: it was tampered with, replayed, "
               "reordered, or sealed with another key"),
            number=self.counter - 1,
        )

    def __repr__(self) -> str:
        return f"AeadCipher(AES-256-GCM, next message {self.counter})"


@dataclass(frozen=True)
class SessionKeys:
    """The keys one handshake produces; both sides compute the same ones."""

    client_to_server: bytes
    server_to_client: bytes
    client_confirm: bytes
    server_confirm: bytes

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this session's keys (safe to show: a hash of a hash)."""
        material = self.client_to_server + self.server_to_client
        return sha256(b"labcrypto session fingerprint" + material).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SessionKeys(fingerprint={self.fingerprint})"


def derive_session_keys(
    secrets: list[bytes], client_nonce: bytes, server_nonce: bytes, transcript_hash: bytes
) -> SessionKeys:
    """HKDF-SHA256 from the DH results to four independent 32-byte keys.

    ``keys = HKDF(ikm = dh_1 || dh_2 ..., salt = client_nonce || server_nonce,
    info = "labcrypto v2 session keys" || transcript_hash)``; each DH result
    is written as fixed-length bytes (256 for a 2048-bit group), so the
    parts cannot slide into each other. Mixing in the transcript
    binds the keys to everything both sides saw: if an attacker changed
    any handshake byte, the two sides end up with different keys and the
    confirmation step fails.
    """
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=4 * _KEY_SIZE,
        salt=client_nonce + server_nonce,
        info=_LABEL + b" session keys" + transcript_hash,
    )
    okm = hkdf.derive(b"".join(secrets))
    parts = [okm[i : i + _KEY_SIZE] for i in range(0, len(okm), _KEY_SIZE)]
    return SessionKeys(*parts)


def confirmation_tag(key: bytes, transcript_hash: bytes) -> bytes:
    """HMAC-SHA256 of the transcript: proof that the sender derived the same keys."""
    return hmac.new(key, _LABEL + b" confirm" + transcript_hash, sha256).digest()
