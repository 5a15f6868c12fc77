"""The checks of notebook 05_ftp: your own seal and open, a fresh key pair for every
request, the path check, a recursive ``du``.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``, run on the
notebook's own home folder and file client). ``check_my_cipher`` is the other
side of an encrypted conversation (it derives the keys as the notebook says,
and flips a bit, and replays a message); ``check_request_handler`` is the
client of the student's request handler over TCP on 127.0.0.1, and then a
thief who recorded a request and stole both static keys; ``check_du`` runs
the student's code against a real file server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import secrets
import socket
import tempfile
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..allowlist import Allowlist
from ..channel import encode_frame, read_frame, write_frame
from ..errors import ChannelClosed, LabCryptoError, in_english
from ..ftp import FileClient, FileServer
from ..groups import FFDHE2048, power, validate_public
from ..handshake import transcript_hash
from ..i18n import N_, Messages
from ..keys import KeyPair, PublicKey, generate
from ..streams import set_timeout
from .feedback import (
    HIDDEN_WAIT,
    PURE_WAIT,
    SERVICE_WAIT,
    WAIT,
    CheckFailed,
    code_of,
    expect,
    explained_in,
    fail,
    how_it_ended,
    not_written,
    passed,
    refused_as,
)
from .harness import Outcome, call_bounded, returned_within, run_bounded, tcp_connection

__all__ = [
    "check_du",
    "check_my_cipher",
    "check_request_handler",
    "check_safe_path",
    "hidden_du",
    "hidden_my_cipher",
    "hidden_request_handler",
    "hidden_safe_path",
]

# --- your own seal and open ---------------------------------------------------------

MY_CIPHER = Messages(
    {
        "too long": N_(
            "{call} did not return within {wait:.0f} s. Sealing or opening one short message "
            "takes microseconds: look for a loop that never ends."
        ),
        "raised": N_(
            "{call} raised {error}. Build each direction's key with HKDF-SHA256 from K, then "
            "seal with AESGCM(key).encrypt(nonce, plaintext, None)."
        ),
        "key size": N_(
            "{call} raised {error}. AES takes a key of 16, 24 or 32 bytes, and K is the "
            "256 bytes of a Diffie-Hellman result: K is not a key. Derive each direction's "
            "32-byte key from K with HKDF-SHA256."
        ),
        "not bytes": N_("{call} returned {got}; seal and open take and return bytes."),
        "no tag": N_(
            "Your client sealed a {size}-byte message into {got} bytes: no room for the "
            "16-byte authentication tag of AES-GCM, so nothing can tell a changed message "
            "from the one you sent, and the receiver opens whatever arrives.{how} That is "
            "the course's weak encryption (course mistake 5: Caesar, XOR, AES-ECB), not "
            "AES-GCM: seal with AESGCM(key).encrypt(nonce, plaintext, None)."
        ),
        "xor K": N_(
            " It is the message XORed with the bytes of K: K is used as the key itself, the "
            "same key stream for every message, and two messages XORed together give away "
            "both."
        ),
        "nonce reuse": N_(
            "Sealing the same message twice gave the same bytes: every message was sealed "
            "with the same nonce (nonce reuse). With AES-GCM, two messages under one key and "
            "one nonce give away the XOR of their plaintexts, and anyone who sees them can "
            "forge the tag. Count the messages this side has sealed and use the count as the "
            "nonce."
        ),
        "raw K": N_(
            "A message sealed by your cipher opens with the bytes of K themselves as the AES "
            "key: K was used as the key (raw K as key). K is a number with structure, not a "
            "uniformly random key, and one K would serve both directions. Derive each "
            "direction's key from K with HKDF-SHA256 and its own info label."
        ),
        "one key": N_(
            "The client and the server sealed the same first message into the same bytes: "
            "both directions use one key (and so the same nonces). Then a message the client "
            "sent can be reflected back to it as if the server had sent it, and the two "
            "directions' first messages share a key and a nonce. Derive one key per "
            'direction: info=b"client to server" and info=b"server to client".'
        ),
        "swapped": N_(
            "Your client sealed with the server-to-client key: the client seals with the key "
            'derived with info=b"client to server", and opens with the other one.'
        ),
        "nonce sent": N_(
            "Your sealed message is 12 bytes longer than AES-GCM's output: it looks like the "
            "nonce travels with the message. Here both sides count the messages, so the "
            "nonce is never sent, and a replayed or reordered message cannot open."
        ),
        "cannot open": N_(
            "A correct server could not open what your client sealed (message {index} of "
            "3). Check each step against the description: HKDF-SHA256, 32 bytes, no salt, "
            'info=b"client to server"; nonce = the count of messages sealed before, '
            "as 12 big-endian bytes; seal returns AESGCM(key).encrypt(nonce, plaintext, None)."
        ),
        "cannot read": N_(
            "Your client could not open message {index} of 3 that a correct server sealed: "
            "its open {outcome}. Open with the server-to-client key and the count of "
            "messages opened before as the nonce."
        ),
        "tampered": N_(
            "A message with one flipped bit ({where}) was not refused: open {outcome}. "
            "The tag is what makes AES-GCM authenticated encryption: open must raise when "
            "the tag does not match (AESGCM.decrypt raises InvalidTag; do not catch it and "
            "go on, and do not decrypt without checking the tag)."
        ),
        "in the ciphertext": N_("in the ciphertext"),
        "in the tag": N_("in the tag"),
        "one counter": N_(
            "Your client opened the server's first message, sealed a reply, and then could "
            "not open the server's second message: its open {outcome}. The reply moved the "
            "count that open uses (one counter for both directions). Each direction is a "
            "conversation of its own: count the messages this side has sealed and, "
            "separately, the messages it has opened."
        ),
        "counted a refusal": N_(
            "After refusing a message with a flipped bit, your open could not open the "
            "genuine message that came next: it {outcome}. The receiver counts the messages "
            "it has opened, and a refused one was not opened: move the count on only once "
            "decrypt has succeeded, or a single forged message cuts the conversation."
        ),
        "replayed": N_(
            "The same message, delivered twice, opened twice: open {outcome} on the "
            "replay. A receiver that takes the nonce from the message accepts an old "
            "message again. Count the messages you opened and use the count as the nonce."
        ),
        "passed": N_(
            "MyCipher: keys from HKDF, one per direction; a new nonce for every message; a "
            "correct peer opens your messages and you open its; a flipped bit and a replay "
            "are refused."
        ),
    }
)

_LABELS = (b"client to server", b"server to client")
_SAME = b"the same message, sealed twice"


def _direction_key(k_bytes: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(k_bytes)


def _nonce(count: int) -> bytes:
    return count.to_bytes(12, "big")


def _opens(key: bytes, nonce: bytes, data: bytes) -> bytes | None:
    """What a correct receiver gets from ``data`` with ``key`` and ``nonce`` (None: refused)."""
    try:
        return AESGCM(key).decrypt(nonce, data, None)
    except (InvalidTag, ValueError, TypeError):
        return None


def _student_call(call_text: str, func: Callable[..., Any], *args: Any) -> Any:
    """One call of the student's code, bounded; a failure names the call."""
    status, value = run_bounded(func, *args, timeout=WAIT)
    if status == "stuck":
        raise fail(MY_CIPHER["too long"], call=call_text, wait=WAIT)
    if status == "error":
        if isinstance(value, NotImplementedError):
            raise not_written("MyCipher")
        if isinstance(value, ValueError) and "key must be" in str(value).lower():
            raise fail(MY_CIPHER["key size"], call=call_text, error=refused_as(value))
        raise fail(MY_CIPHER["raised"], call=call_text, error=refused_as(value))
    return value


def _sealed(cipher: Any, plaintext: bytes, who: str) -> bytes:
    got = _student_call(f"{who}.seal({plaintext[:12]!r}…)", cipher.seal, plaintext)
    if not isinstance(got, bytes | bytearray):
        raise fail(MY_CIPHER["not bytes"], call=f"{who}.seal", got=how_it_ended("ok", got))
    return bytes(got)


def _raw_k_candidates(k_bytes: bytes) -> list[bytes]:
    """The keys a student who uses K itself as the key may have cut from it."""
    return [k_bytes[:n] for n in (16, 24, 32)] + [k_bytes[-n:] for n in (16, 24, 32)]


def _xored_with_k(sealed: bytes, plaintext: bytes, k_bytes: bytes) -> bool:
    """Is ``sealed`` the plaintext XORed with the bytes of K (from the front or the back,
    repeated as needed), or with one byte of K?"""
    stream = bytes(a ^ b for a, b in zip(sealed, plaintext, strict=True))
    repeated = [(k_bytes * (len(stream) // len(k_bytes) + 1))[: len(stream)]]
    repeated.append((k_bytes[::-1] * (len(stream) // len(k_bytes) + 1))[: len(stream)])
    one_byte = len(set(stream)) == 1 and stream[:1] in (k_bytes[:1], k_bytes[-1:])
    return one_byte or stream in repeated


def _check_sealing(make: Callable[..., Any], k_bytes: bytes) -> None:
    """The client's sealed messages: fresh nonces, derived keys, one per direction."""
    client = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    server = _student_call("MyCipher(K, i_am_client=False)", make, k_bytes, False)
    sealed = [_sealed(client, _SAME, "client") for _ in range(3)]
    # No room for a tag: Caesar, XOR or AES-ECB (course mistake 5), whatever its nonces.
    if len(sealed[0]) < len(_SAME) + 16:
        xored = len(sealed[0]) == len(_SAME) and _xored_with_k(sealed[0], _SAME, k_bytes)
        how = MY_CIPHER["xor K"] if xored else ""
        raise fail(MY_CIPHER["no tag"], size=len(_SAME), got=len(sealed[0]), how=how)
    if len(set(sealed)) < len(sealed):
        raise fail(MY_CIPHER["nonce reuse"])
    first = sealed[0]
    for key in _raw_k_candidates(k_bytes):
        if _opens(key, _nonce(0), first) or _opens(key, first[:12], first[12:]):
            raise fail(MY_CIPHER["raw K"])
    if _sealed(server, _SAME, "server") == first:
        raise fail(MY_CIPHER["one key"])
    to_server, to_client = (_direction_key(k_bytes, label) for label in _LABELS)
    if _opens(to_client, _nonce(0), first) is not None:
        raise fail(MY_CIPHER["swapped"])
    for index, data in enumerate(sealed):
        if _opens(to_server, _nonce(index), data) != _SAME:
            if len(data) == len(_SAME) + 16 + 12:
                raise fail(MY_CIPHER["nonce sent"])
            raise fail(MY_CIPHER["cannot open"], index=index + 1)


def _open_outcome(cipher: Any, data: bytes) -> tuple[str, Any]:
    status, value = run_bounded(cipher.open, data, timeout=WAIT)
    if status == "stuck":
        raise fail(MY_CIPHER["too long"], call="client.open(…)", wait=WAIT)
    if status == "error" and isinstance(value, NotImplementedError):
        raise not_written("MyCipher.open")
    return status, value


def _check_opening(make: Callable[..., Any], k_bytes: bytes) -> None:
    """The client opens a correct server's messages, and refuses a flipped bit and a replay."""
    to_client = AESGCM(_direction_key(k_bytes, _LABELS[1]))
    texts = [b"welcome", b"", b"x" * 5000]
    client = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    reply: bytes | None = None  #: what the client sealed between two messages it opened
    for index, text in enumerate(texts):
        status, value = _open_outcome(client, to_client.encrypt(_nonce(index), text, None))
        if status != "ok" or value != text:
            outcome = how_it_ended(status, value, 40)
            to_server = _direction_key(k_bytes, _LABELS[0])
            if reply is not None and _opens(to_server, _nonce(1), reply):
                raise fail(MY_CIPHER["one counter"], outcome=outcome)  # the reply took nonce 1
            raise fail(MY_CIPHER["cannot read"], index=index + 1, outcome=outcome)
        if index == 0:  # a conversation: the client answers between the server's messages
            reply = _sealed(client, b"thanks", "client")
    sealed = to_client.encrypt(_nonce(0), b"pay 10 euros to bob", None)
    for position, where in ((4, "in the ciphertext"), (-1, "in the tag")):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        fresh = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
        status, value = _open_outcome(fresh, bytes(tampered))
        if status == "ok":
            outcome = how_it_ended(status, value, 40)
            raise fail(MY_CIPHER["tampered"], where=MY_CIPHER[where], outcome=outcome)
        status, value = _open_outcome(fresh, sealed)  # the genuine one, after the refusal
        if status != "ok" or value != b"pay 10 euros to bob":
            outcome = how_it_ended(status, value, 40)
            raise fail(MY_CIPHER["counted a refusal"], outcome=outcome)
    fresh = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    _open_outcome(fresh, sealed)
    status, value = _open_outcome(fresh, sealed)
    if status == "ok":
        raise fail(MY_CIPHER["replayed"], outcome=how_it_ended(status, value, 40))


@explained_in("05_ftp", N_("Exercise: your own seal and open"))
def check_my_cipher(make: Callable[..., Any]) -> None:
    """``MyCipher(K, i_am_client)``: per-direction keys from K, counter nonces, AES-GCM.

    The check is the other side: it derives the keys as described, opens
    what your client sealed and seals what your client must open; then it
    flips one bit of a message (refused, and the genuine one still opens after
    it) and delivers another one twice.
    """
    k_bytes = secrets.token_bytes(256)  # the size of K from a 2048-bit group
    _check_sealing(make, k_bytes)
    _check_opening(make, k_bytes)
    passed(MY_CIPHER["passed"])


@check_my_cipher.hidden
def hidden_my_cipher(make: Callable[..., Any]) -> None:
    """A K of another length; both directions, many messages, a flipped bit."""
    returned_within(_both_directions, make, bytes(range(48)), timeout=2 * WAIT)


def _both_directions(make: Callable[..., Any], k_bytes: bytes) -> None:
    """Each side of MyCipher against a correct other side: 20 messages each way, a flipped bit."""
    for i_am_client, label, other in ((True, 0, 1), (False, 1, 0)):
        mine = make(k_bytes, i_am_client)
        sends, receives = (_direction_key(k_bytes, _LABELS[n]) for n in (label, other))
        for count in range(20):
            text = f"message {count}".encode()
            expect(_opens(sends, _nonce(count), mine.seal(text)) == text)
            expect(mine.open(AESGCM(receives).encrypt(_nonce(count), text, None)) == text)
        genuine = AESGCM(receives).encrypt(_nonce(20), b"tampered", None)
        bad = bytearray(genuine)
        bad[0] ^= 0x80
        refused = False
        try:
            mine.open(bytes(bad))
        except Exception:
            refused = True
        expect(refused)
        expect(mine.open(genuine) == b"tampered")  # a refused message was not counted


# --- a fresh key pair for every request ----------------------------------------------

REQUEST_HANDLER = Messages(
    {
        "no hello": N_(
            "Your handler sent no hello within {wait:.0f} s of the client's: read the "
            "client's hello, then send yours at once (write_frame), before you read "
            "anything else. The client cannot seal its command until it has your Y."
        ),
        "returned early": N_(
            "Your handler returned without sending its hello: read the client's hello, then "
            "send yours with write_frame(sock, ...) before anything else."
        ),
        "bad hello": N_(
            "The client could not read your hello ({error}): send one frame holding JSON "
            'with your ephemeral public value, {{"ephemeral": hex(Y)}}.'
        ),
        "no Y": N_(
            "Your hello carries no ephemeral public value: without Y the client cannot "
            "compute K' = Y^x, so it cannot derive the request's keys at all. Send the "
            'public value of the key pair you made for this request: {{"ephemeral": hex(Y)}}.'
        ),
        "bad Y": N_(
            "Your hello's Y is not a valid public value of the group: Y = g^y mod p, from a "
            "key pair made for this request with keys.generate(server_key.group)."
        ),
        "echoed X": N_(
            "Your hello's Y is the client's own X, sent back: the server made no ephemeral "
            "key of its own (it reuses the client's). Then K' can only be X^b, your static b "
            "again, and whoever steals b later reads every recorded request. Make a key pair "
            "for this request (keys.generate(server_key.group)) and send its public value."
        ),
        "static Y": N_(
            "Your hello's Y is your static public key B: nothing on the server's side is "
            "fresh, and K' then needs only the static b, which a thief may steal later. "
            "Make a new key pair for every request and send its public value."
        ),
        "stuck": N_(
            "With a fair client, your handler did not finish within {wait:.0f} s: it is "
            "waiting for bytes that never come. The client sends exactly two frames: its "
            "hello, then (after your hello) its sealed command."
        ),
        "raised": N_("With a fair client, your handler raised {error}.{hint}"),
        "shadowed": N_(
            " Your function assigns a variable named {name}, the name of the module {name} "
            "the notebook imported: Python then takes {name} as that variable in the whole "
            "function, even in the lines before the assignment, where it has no value yet. "
            "Give your variable a name of its own."
        ),
        "recv": N_(
            " Your handler reads with recv: TCP keeps no message boundaries, and every frame "
            "starts with its 4-byte length, so one recv is not one message (course mistake "
            "6). Read each frame with read_frame(sock)."
        ),
        "hex": N_(
            " The numbers in the hello are hexadecimal text ('0x…'): read them with "
            "int(text, 16)."
        ),
        "unknown name": N_(
            " Python does not know the name {name} here: a typo, or an import the cell no "
            "longer has (the template's cell starts with the imports it needs)."
        ),
        "no answer": N_(
            "With a fair client, your handler opened the command but sent no sealed answer: "
            "send AESGCM(request_keys[32:]).encrypt(bytes(12), answer(command), None) in one frame."
        ),
        "answer unreadable": N_(
            "Your handler opened the client's command, but the client could not open your "
            "answer: seal it with the server-to-client key request_keys[32:] (not the key the "
            "client sealed with) and the nonce bytes(12)."
        ),
        "cannot open": N_(
            "The client and your handler derived different keys (your handler {outcome}), "
            "and none of the usual mistakes explains it. Check each step against the "
            "description: K = A^b and K' = X^y as 256 big-endian bytes each; HKDF-SHA256, 64 "
            'bytes, no salt, info = b"labcrypto 05 request" + transcript_hash(client_hello, '
            "server_hello) over both hellos exactly as sent; input K' bytes + K bytes."
        ),
        "only K": N_(
            "Your keys come from K = A^b alone: K' = X^y never goes into HKDF (computed but "
            "not mixed in). So a thief who recorded this request and later stole the static "
            "keys derived the same keys, and read it: {stolen}. Derive from K' bytes + K bytes."
        ),
        "es": N_(
            "Your K' is X^b, the client's ephemeral key with your static b: a thief who "
            "recorded this request and later stole b computed it as you did, and read it: "
            "{stolen}. K' = X^y, with the y of the key pair you make for this request."
        ),
        "no K": N_(
            "Your keys come from K' alone: K = A^b is not mixed in, so nothing ties them to "
            "the two static keys, and a man in the middle who sends his own Y gets the "
            "client's keys. Derive from K' bytes + K bytes."
        ),
        "swapped": N_(
            "Your HKDF input is K bytes + K' bytes; the description, and the client, put K' "
            "first: K' bytes + K bytes. Either order is safe, but both sides must use the "
            "same one."
        ),
        "four terms": N_(
            "You mixed in all four terms of labcrypto's handshake (ee, es, se, ss): a good "
            "idea, but here the client mixes in only K' and K. Derive from K' bytes + K "
            "bytes, so both sides get the same keys."
        ),
        "not bound": N_(
            "Your keys are not bound to the transcript: info holds no hash of the hellos. "
            "Then nothing makes the two sides notice a changed hello. Use info = "
            'b"labcrypto 05 request" + transcript_hash(client_hello, server_hello).'
        ),
        "client hello only": N_(
            "Your transcript hash covers only the client's hello: your own hello, with Y in "
            "it, is not bound to the keys. Hash both hellos exactly as they were sent: "
            "transcript_hash(client_hello, server_hello)."
        ),
        "re-encoded": N_(
            "Your transcript hash covers the client's hello as your code wrote it again "
            "(json.dumps of what json.loads read), not the bytes that came: JSON can write "
            "one object in many ways (spacing, order, escapes), and the client hashed the "
            "bytes it sent. Hash both hellos exactly as they were sent and received."
        ),
        "plain hash": N_(
            "Your transcript hash is sha256(client_hello + server_hello): without the "
            "lengths, two different pairs of hellos can give the same bytes. Use "
            "transcript_hash(client_hello, server_hello) from labcrypto.handshake, which "
            "writes each hello's length before it."
        ),
        "same Y": N_(
            "Two requests got the same Y: your ephemeral key pair is made once (when the "
            "server starts, or when the cell runs), not for every request. A y that lives "
            "as long as the server is a second static key: whoever takes it from the "
            "server's memory reads every recorded request, and a request replayed byte for "
            "byte gets the same keys again. Make the key pair inside the handler."
        ),
        "same keys": N_(
            "Two requests derived the same keys: every request must have keys of its own. "
            "Make a new key pair for every request and mix its K' into the keys."
        ),
        "replayed": N_(
            "A recorded request, sent again byte for byte, was carried out again (answer "
            "was called with its command): a fresh Y gives the replay new keys, under which "
            "the old sealed command cannot open. Make y new for every request and mix K' = "
            "X^y into the keys."
        ),
        "thief": N_(
            "A thief who recorded a request and later stole both static keys (a and b) "
            "read it: {stolen}. Only K' = X^y keeps a recording closed: y must be made "
            "for the request, never stored, and mixed into the keys."
        ),
        "passed": N_(
            "handle_request makes a fresh key pair for every request (two requests: two Ys, "
            "two sets of keys), mixes K' = X^y with K = A^b into HKDF bound to both hellos, "
            "refuses a replayed request, and a thief with both stolen static keys cannot "
            "open the recording."
        ),
    }
)

#: HKDF's info label of the exercise; the transcript hash follows it.
REQUEST_INFO = b"labcrypto 05 request"
_COMMAND = b"cat exam/answers.txt"
_ANSWER = b"1 B, 2 C, 3 A, 4 D"
_NONCE = bytes(12)  # each key seals one message only
#: Seconds for all the requests that look for the handler's mistake (ten, about 50 ms each).
DIAGNOSIS_WAIT = 15.0
#: Seconds the client waits for the handler's hello, and for the handler to end after the
#: client's last frame. A right handler needs milliseconds, but it runs traced (so that a
#: loop that never ends can be stopped), which a loaded machine makes up to ~100x slower;
#: a stuck handler waits for ever, far past any bound.
REQUEST_WAIT = 5 * WAIT


@dataclass(frozen=True)
class _Schedule:
    """A way to derive a request's keys: which DH results in which order, bound how."""

    terms: tuple[str, ...]  #: "ee" = K' (X^y = Y^x), "ss" = K (A^b = B^a), "es" = X^b, "se" = Y^a
    binding: str = "transcript"  #: what follows the label in HKDF's info (see ``_info``)


_SPEC = _Schedule(("ee", "ss"))
#: The schedules of known mistakes, tried one request each when the spec's keys fail.
_MISTAKES: list[tuple[str, _Schedule]] = [
    ("only K", _Schedule(("ss",))),
    ("es", _Schedule(("es", "ss"))),
    ("no K", _Schedule(("ee",))),
    ("swapped", _Schedule(("ss", "ee"))),
    ("client hello only", _Schedule(("ee", "ss"), "client hello")),
    ("not bound", _Schedule(("ee", "ss"), "none")),
    ("plain hash", _Schedule(("ee", "ss"), "plain")),
    ("re-encoded", _Schedule(("ee", "ss"), "re-encoded")),
    ("four terms", _Schedule(("ee", "es", "se", "ss"))),
    ("only K", _Schedule(("ss",), "none")),
    ("es", _Schedule(("es",))),
]


def _info(binding: str, client_hello: bytes, server_hello: bytes) -> bytes:
    if binding == "transcript":
        return REQUEST_INFO + transcript_hash(client_hello, server_hello)
    if binding == "client hello":
        return REQUEST_INFO + hashlib.sha256(client_hello).digest()
    if binding == "plain":
        return REQUEST_INFO + hashlib.sha256(client_hello + server_hello).digest()
    if binding == "re-encoded":  # the client's hello parsed, then written again by json.dumps
        return REQUEST_INFO + transcript_hash(json.dumps(json.loads(client_hello)).encode(),
                                              server_hello)  # fmt: skip
    return REQUEST_INFO


def _request_keys(
    schedule: _Schedule, terms: dict[str, int], client_hello: bytes, server_hello: bytes
) -> bytes:
    """64 bytes: the client-to-server key, then the server-to-client key."""
    ikm = b"".join(terms[name].to_bytes(256, "big") for name in schedule.terms)
    info = _info(schedule.binding, client_hello, server_hello)
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(ikm)


@dataclass
class _Request:
    """One request of the check's client to the student's handler, as the client saw it."""

    status: str = "stuck"  #: how the handler ended: "ok", "error" or "stuck"
    value: Any = None  #: what it returned or raised
    client_hello: bytes = b""
    sealed_command: bytes = b""
    server_hello: bytes | None = None  #: the handler's first frame (None: none came)
    hello_error: str = ""  #: why that frame could not be read
    later: list[bytes] = field(default_factory=list)  #: the handler's frames after its hello
    X: int = 0  #: the client's ephemeral public value
    Y: int | None = None  #: the handler's, as read from its hello
    keys: bytes = b""  #: the 64 bytes of keys the client derived
    answer: bytes | None = None  #: the handler's sealed answer, opened by the client
    carried_out: list[bytes] = field(default_factory=list)  #: the commands answer() got
    timed_out: bool = False  #: no hello came within WAIT (the handler is stuck)


def _read_y(request: _Request) -> None:
    """The handler's Y from its hello (``request.hello_error`` says why not)."""
    try:
        hello = json.loads(request.server_hello or b"")
        value = hello.get("ephemeral") if isinstance(hello, dict) else None
    except ValueError as exc:
        request.hello_error = refused_as(exc)
        return
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value, 16)
    if isinstance(value, int) and not isinstance(value, bool):
        request.Y = value


def _client_terms(
    request: _Request, x: KeyPair, client: KeyPair, server: PublicKey
) -> dict[str, int]:
    """The DH results the check's client can compute (x and a are its own)."""
    assert request.Y is not None
    group = server.group
    return {
        "ee": power(request.Y, x.private, group),
        "es": power(server.value, x.private, group),
        "se": power(request.Y, client.private, group),
        "ss": power(server.value, client.private, group),
    }


def _play_client(
    sock: socket.socket,
    request: _Request,
    client: KeyPair,
    server: PublicKey,
    schedule: _Schedule,
) -> None:
    """The check's client: its hello, the handler's hello, the sealed command."""
    x = generate(server.group)
    request.X = x.public
    hello = {"ephemeral": f"{x.public:#x}", "static": f"{client.public:#x}"}
    # Compact JSON, not json.dumps's default spacing: a handler that hashes the hello as
    # json.dumps(json.loads(...)) writes it again, hashes other bytes, and fails every run.
    request.client_hello = json.dumps(hello, separators=(",", ":")).encode()
    try:
        write_frame(sock, request.client_hello)
        request.server_hello = read_frame(sock, max_size=1 << 16)
    except TimeoutError:
        request.timed_out = True  # no hello within REQUEST_WAIT: the verdict is "stuck"
        return
    except (ChannelClosed, ConnectionError):
        return  # the handler ended (or closed its socket) without a hello
    except (LabCryptoError, OSError) as exc:
        request.hello_error = refused_as(exc)
        return
    _read_y(request)
    if request.Y is None or not 2 <= request.Y <= server.group.p - 2:
        with contextlib.suppress(OSError):  # nothing to seal: the handler's next read ends
            sock.shutdown(socket.SHUT_WR)
        return
    terms = _client_terms(request, x, client, server)
    request.keys = _request_keys(schedule, terms, request.client_hello, request.server_hello)
    request.sealed_command = AESGCM(request.keys[:32]).encrypt(_NONCE, _COMMAND, None)
    with contextlib.suppress(OSError):  # the handler may have hung up already
        write_frame(sock, request.sealed_command)


def _replay(sock: socket.socket, request: _Request, recorded: _Request) -> None:
    """An attacker's client: a recorded request's two frames, sent again byte for byte."""
    request.client_hello, request.sealed_command = recorded.client_hello, recorded.sealed_command
    request.X = recorded.X
    with contextlib.suppress(OSError):  # the handler may have hung up already
        sock.sendall(encode_frame(recorded.client_hello) + encode_frame(recorded.sealed_command))


def _frames_until_closed(sock: socket.socket, count: int = 4) -> list[bytes]:
    """The frames the handler sent before its socket was shut down (at most ``count``)."""
    frames: list[bytes] = []
    with contextlib.suppress(TimeoutError, LabCryptoError, OSError):
        while len(frames) < count:
            frames.append(read_frame(sock))
    return frames


def _run_request(
    handle: Callable[..., Any],
    server_key: KeyPair,
    client: KeyPair,
    schedule: _Schedule = _SPEC,
    replay: _Request | None = None,
) -> _Request:
    """One request over TCP: the student's handler in a bounded thread, the client here.

    When the handler ends, its socket is shut down for writing, so the client
    reads everything it sent and then the end. The verdict is taken once: a
    handler still running ``REQUEST_WAIT`` seconds after the client's last frame is
    "stuck", even if it ends a moment later when the check closes its socket.
    """
    request = _Request()
    carried_out: list[bytes] = []

    def answer(command: bytes) -> bytes:
        carried_out.append(bytes(command))
        return _ANSWER

    with tcp_connection(timeout=3 * REQUEST_WAIT) as (server_sock, client_sock):
        set_timeout(client_sock, REQUEST_WAIT)
        done = threading.Event()
        ended: list[Outcome] = []

        def serve() -> None:
            outcome = run_bounded(handle, server_sock, server_key, answer, timeout=3 * REQUEST_WAIT)
            ended.append(outcome)
            with contextlib.suppress(OSError):
                server_sock.shutdown(socket.SHUT_WR)
            done.set()

        threading.Thread(target=serve, name="exercise-check", daemon=True).start()
        if replay is None:
            _play_client(client_sock, request, client, server_key.public_key, schedule)
        else:
            _replay(client_sock, request, replay)
            with contextlib.suppress(TimeoutError, LabCryptoError, OSError):
                request.server_hello = read_frame(client_sock, max_size=1 << 16)
        if not request.timed_out and done.wait(REQUEST_WAIT):
            request.status, request.value = ended[0]
            request.later = _frames_until_closed(client_sock)
        request.carried_out = list(carried_out)
        if not done.is_set():
            # The verdict is taken. End of stream from the client ends a handler that waits
            # for more frames; closing its socket under it would not wake it if the number
            # of that socket is at once reused by the next connection.
            with contextlib.suppress(OSError):
                client_sock.shutdown(socket.SHUT_WR)
            done.wait(WAIT)
    if request.keys and request.later:
        request.answer = _opens(request.keys[32:], _NONCE, request.later[0])
    return request


def _thief_reads(recorded: _Request, stolen_b: KeyPair, stolen_a: KeyPair) -> bytes | None:
    """The attacker: a recording, and both static private keys stolen later.

    He reads A, X and Y from the recorded hellos and computes every DH result
    the stolen a and b give him (K = A^b, X^b, Y^a); then he tries each way
    of feeding them to HKDF, with each binding, on the recorded sealed
    command. What he cannot compute is K' = X^y = Y^x: x and y were never
    stored. Returns the command if any attempt opens it.
    """
    if recorded.server_hello is None or recorded.Y is None or not recorded.sealed_command:
        return None
    group = stolen_b.group
    hello = json.loads(recorded.client_hello)
    big_a, big_x = int(hello["static"], 16), int(hello["ephemeral"], 16)
    known = {
        "ss": power(big_a, stolen_b.private, group),
        "es": power(big_x, stolen_b.private, group),
        "se": power(recorded.Y, stolen_a.private, group),
    }
    for size in (1, 2, 3):
        for names in itertools.permutations(known, size):
            for binding in ("transcript", "none", "client hello", "plain"):
                keys = _request_keys(
                    _Schedule(names, binding), known, recorded.client_hello, recorded.server_hello
                )
                opened = _opens(keys[:32], _NONCE, recorded.sealed_command)
                if opened is not None:
                    return opened
    return None


def _name_hint(handle: Callable[..., Any], error: BaseException) -> str:
    """What a NameError of the handler means: a variable that shadows a module the
    notebook imported (``keys = ...`` in a function that also calls ``keys.generate``,
    an ``UnboundLocalError``), or a name Python does not know at all."""
    if not isinstance(error, NameError):
        return ""
    name = getattr(error, "name", None)
    if not name:
        found = re.search(r"'(\w+)'", str(error))
        name = found.group(1) if found else None
    if not name:
        return ""
    if isinstance(error, UnboundLocalError):
        module = getattr(handle, "__globals__", {}).get(name)
        if isinstance(module, types.ModuleType):
            return REQUEST_HANDLER["shadowed"].format(name=name)
        return ""
    return REQUEST_HANDLER["unknown name"].format(name=name)


def _raised(handle: Callable[..., Any], error: BaseException) -> CheckFailed:
    """The failure for a handler that raised on a fair client."""
    hint = _name_hint(handle, error)
    if not hint and isinstance(error, ValueError) and "with base 10: '0x" in str(error):
        hint = REQUEST_HANDLER["hex"]
    elif not hint and isinstance(error, ValueError) and ".recv(" in code_of(handle):
        hint = REQUEST_HANDLER["recv"]  # a frame's length read as JSON (or as text)
    return fail(REQUEST_HANDLER["raised"], error=refused_as(error), hint=hint)


def _hello_problem(
    request: _Request, server_key: KeyPair, handle: Callable[..., Any]
) -> CheckFailed | None:
    """What is wrong with the handler's hello, if anything."""
    if request.status == "error" and isinstance(request.value, NotImplementedError):
        return not_written("handle_request")
    if request.server_hello is None and request.status == "error":
        return _raised(handle, request.value)
    if request.server_hello is None and request.status == "ok":
        return fail(REQUEST_HANDLER["returned early"])
    if request.server_hello is None and request.hello_error:
        return fail(REQUEST_HANDLER["bad hello"], error=request.hello_error)
    if request.server_hello is None:
        return fail(REQUEST_HANDLER["no hello"], wait=REQUEST_WAIT)
    if request.hello_error:
        return fail(REQUEST_HANDLER["bad hello"], error=request.hello_error)
    if request.Y is None:
        return fail(REQUEST_HANDLER["no Y"])
    if request.Y == request.X:
        return fail(REQUEST_HANDLER["echoed X"])
    if server_key.public == request.Y:
        return fail(REQUEST_HANDLER["static Y"])
    try:
        validate_public(server_key.group, request.Y)
    except LabCryptoError:
        return fail(REQUEST_HANDLER["bad Y"])
    return None


def _which_mistake(
    handle: Callable[..., Any], server_key: KeyPair, client: KeyPair, first: _Request
) -> CheckFailed:
    """The handler's keys are not the client's: find the known mistake it makes, if any.

    The client makes one more request for each mistaken key schedule (keys from
    K alone, K' = X^b, no transcript, ...): the one the handler answers is the
    one it uses. When that one needs no ephemeral secret, the thief's own code
    opens the recording, and the message shows what he read.
    """
    deadline = time.monotonic() + DIAGNOSIS_WAIT  # a safety net: each request is bounded too
    for name, schedule in _MISTAKES:
        if time.monotonic() > deadline:
            break
        request = _run_request(handle, server_key, client, schedule)
        if request.status == "stuck":
            break
        if request.answer != _ANSWER:
            continue
        stolen = _thief_reads(request, server_key, client)
        return fail(REQUEST_HANDLER[name], stolen=repr(stolen))
    outcome = how_it_ended(first.status, first.value, 60)
    return fail(REQUEST_HANDLER["cannot open"], outcome=outcome)


def _fair_request(handle: Callable[..., Any], server_key: KeyPair, client: KeyPair) -> _Request:
    """One request as the exercise describes it, answered right; else the failure."""
    request = _run_request(handle, server_key, client)
    problem = _hello_problem(request, server_key, handle)
    if problem is not None:
        raise problem
    if request.answer == _ANSWER and request.carried_out == [_COMMAND]:
        return request
    if request.status == "stuck":
        raise fail(REQUEST_HANDLER["stuck"], wait=REQUEST_WAIT)
    if request.carried_out == [_COMMAND]:
        if not request.later:
            raise fail(REQUEST_HANDLER["no answer"])
        raise fail(REQUEST_HANDLER["answer unreadable"])
    if request.status == "error" and not isinstance(request.value, InvalidTag):
        raise _raised(handle, request.value)
    raise _which_mistake(handle, server_key, client, request)


@explained_in("05_ftp", N_("Exercise: a fresh key pair for every request"))
def check_request_handler(handle: Callable[..., Any]) -> None:
    """``handle_request(sock, server_key, answer)``: one request of the encrypted file server.

    The check is the client, over TCP on 127.0.0.1: two fair requests (each must
    open, with a Y and keys of its own), the first one replayed byte for byte
    (it must not be carried out), then a thief with both static private keys
    tries every way he can to open the recording of the first.
    """
    server_key, client = generate(FFDHE2048), generate(FFDHE2048)
    first = _fair_request(handle, server_key, client)
    second = _fair_request(handle, server_key, client)
    if first.Y == second.Y:
        raise fail(REQUEST_HANDLER["same Y"])
    if first.keys == second.keys:
        raise fail(REQUEST_HANDLER["same keys"])
    if _run_request(handle, server_key, client, replay=first).carried_out:
        raise fail(REQUEST_HANDLER["replayed"])
    stolen = _thief_reads(first, server_key, client)
    if stolen is not None:
        raise fail(REQUEST_HANDLER["thief"], stolen=repr(stolen))
    passed(REQUEST_HANDLER["passed"])


@check_request_handler.hidden
def hidden_request_handler(handle: Callable[..., Any]) -> None:
    """Other keys; three requests, each answered, each with its own Y; the thief reads none;
    the last one replayed is not carried out."""
    server_key, client = generate(FFDHE2048), generate(FFDHE2048)
    requests: list[_Request] = []
    for _ in range(3):
        request = _run_request(handle, server_key, client)
        expect(request.answer == _ANSWER and request.carried_out == [_COMMAND])
        expect(_thief_reads(request, server_key, client) is None)
        requests.append(request)
    expect(len({request.Y for request in requests}) == 3)
    expect(not _run_request(handle, server_key, client, replay=requests[-1]).carried_out)


# --- the path check ------------------------------------------------------------------

SAFE_PATH = Messages({
    "refused inside": N_(
        "safe_path(home, {requested!r}) raised {error}, but that path stays in the home: "
        "it leads to {want}. {hint}"
    ),
    "elsewhere": N_(
        "safe_path(home, {requested!r}) returned {got!r:.100}; it should be {want}. {hint}"
    ),
    "the home": N_("the home folder itself"),
    "under the home": N_("home / {relative!r}"),
    "not yet": N_("a path that does not exist yet"),
    "leading slash": N_(
        "A leading '/' means the top of the home, not of the server's disk: "
        "strip it (requested.lstrip('/')) before joining it under the home."
    ),
    "wrong refusal": N_(
        "safe_path(home, {requested!r}) raised {error}; the task asks for PermissionError "
        "for a path outside the home: the server answers a refusal of access with its own "
        "reply, and any other error means a bug."
    ),
    "let out": N_(
        "safe_path(home, {requested!r}) returned {got!r:.100} instead of refusing: it "
        "leads outside the home.\n{hint}"
    ),
    "sibling": N_(
        "The sibling folder 'alice2' starts with the home's name 'alice': a "
        "string test such as str(path).startswith(str(home)) lets it in (course "
        "mistake 13). Compare path components: Path.is_relative_to(home)."
    ),
    "link": N_(
        "The path goes through a symbolic link that leads out of the home. "
        "Resolve links first (Path.resolve() / os.path.realpath), then check."
    ),
    "dots": N_("Resolve '..' first (Path.resolve()), then check it is under the home."),
    "slow": N_(
        "Mapping one path takes microseconds: is there a loop that never ends (say, one "
        "that removes '../' until no '..' is left: '..' alone never goes)?"
    ),
    "passed": N_(
        "safe_path keeps every path in the home ('/' is its top) and refuses '..', the "
        "sibling alice2, and links that lead out."
    ),
})


def _same_place(got: Any, want: Path) -> bool:
    try:
        place: str | bytes = os.fspath(got)
    except TypeError:
        return False
    return os.path.realpath(place) == os.path.realpath(want)


def _homes(root: Path) -> Path:
    """alice's home (with a link out to her neighbour alice2 and one to /etc) under ``root``."""
    home, sibling = root / "alice", root / "alice2"
    (home / "docs").mkdir(parents=True)
    sibling.mkdir()
    (home / "docs" / "a.txt").write_text("alice's notes")
    (sibling / "secret.txt").write_text("alice2's secret")
    (home / "out").symlink_to(sibling)  # a link inside the home that leads out
    (home / "docs" / "system").symlink_to("/etc")
    return home


def _mapped(safe_path: Callable[[Path, str], Any], home: Path, requested: str,
            deadline: float) -> Any:  # fmt: skip
    """One bounded call ``safe_path(home, requested)``: its result, or what it raised."""
    return call_bounded(
        safe_path, home, requested,
        what=f"safe_path(home, {requested!r})",
        why=SAFE_PATH["slow"],
        deadline=deadline,
    )  # fmt: skip


def _check_inside(
    safe_path: Callable[[Path, str], Any], root: Path, home: Path, deadline: float
) -> None:
    """Paths inside the home map to their place under it ('/' is the home's top)."""
    inside = [
        ("/", home, ""),
        ("docs/a.txt", home / "docs" / "a.txt", ""),
        ("/docs/./a.txt", home / "docs" / "a.txt", ""),
        ("docs/../docs/a.txt", home / "docs" / "a.txt", ""),
        ("new/file.txt", home / "new" / "file.txt", SAFE_PATH["not yet"]),
        ("/etc/passwd", home / "etc" / "passwd", SAFE_PATH["leading slash"]),
    ]
    for requested, want, hint in inside:
        if want == home:
            shown = SAFE_PATH["the home"]
        else:
            relative = str(want.relative_to(home))
            shown = SAFE_PATH["under the home"].format(relative=relative)
        try:
            got = _mapped(safe_path, home, requested, deadline)
        except CheckFailed:
            raise
        except Exception as exc:
            if requested.startswith("/"):
                hint = SAFE_PATH["leading slash"]  # home / "/" is "/", outside the home
            raise fail(
                SAFE_PATH["refused inside"],
                requested=requested,
                error=refused_as(exc),
                want=shown,
                hint=hint,
            ) from None
        if not _same_place(got, want):
            if requested.startswith("/") and _same_place(got, Path(requested)):
                hint = SAFE_PATH["leading slash"]  # home / "/x" is "/x": the leading slash won
            raise fail(
                SAFE_PATH["elsewhere"], requested=requested, got=got, want=shown, hint=hint
            )


def _check_outside(safe_path: Callable[[Path, str], Any], home: Path, deadline: float) -> None:
    """Paths that lead out of the home — by '..', a look-alike sibling, a link — are refused."""
    outside = [
        ("..", SAFE_PATH["dots"]),
        ("../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("/../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("docs/../../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("out/secret.txt", SAFE_PATH["link"]),
        ("docs/system/passwd", SAFE_PATH["link"]),
    ]
    for requested, hint in outside:
        try:
            got = _mapped(safe_path, home, requested, deadline)
        except CheckFailed:
            raise
        except (PermissionError, LabCryptoError):
            continue  # refused, as the task asks (or with the package's own PathRefused)
        except Exception as exc:
            raise fail(
                SAFE_PATH["wrong refusal"], requested=requested, error=refused_as(exc)
            ) from None
        raise fail(SAFE_PATH["let out"], requested=requested, got=got, hint=hint)


@explained_in("05_ftp", N_("5 · Exercise: the path check"))
def check_safe_path(safe_path: Callable[[Path, str], Any]) -> None:
    """``safe_path(home, requested)`` maps a client's path into the home or refuses it."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        home = _homes(Path(tmp))
        deadline = time.monotonic() + PURE_WAIT  # one bound for all the paths
        _check_inside(safe_path, Path(tmp), home, deadline)
        _check_outside(safe_path, home, deadline)
    passed(SAFE_PATH["passed"])


@check_safe_path.hidden
def hidden_safe_path(safe_path: Callable[[Path, str], Any], home: Path) -> None:
    """The notebook's own home folder: its top, and three ways out."""
    top = returned_within(safe_path, home, "/", timeout=HIDDEN_WAIT)
    expect(Path(top).resolve() == home.resolve())
    for escape in ("../bob/private.txt", "system/passwd", "docs/../../bob"):
        try:
            returned_within(safe_path, home, escape, timeout=HIDDEN_WAIT)
        except (PermissionError, LabCryptoError):
            continue
        expect(False)


# --- a recursive du -----------------------------------------------------------------------

DU = Messages({
    "stuck": N_("du did not finish within {wait:.0f} s: does it recurse forever?{hint}"),
    "raised": N_("du(client, {path!r}) raised {error}.{hint}"),
    "link": N_(
        " ls on a link is refused (the jail never follows links): count only "
        "entries of kind 'file', recurse into kind 'dir', skip the rest."
    ),
    "wrong": N_(
        "du(client, {path!r}) returned {got!r}; the files under {path} hold {want} "
        "bytes.\n{hint}"
    ),
    "top only": N_(
        "Only the files at the top were counted: recurse into every folder, building each "
        "sub-path as path.rstrip('/') + '/' + entry.name."
    ),
    "how to count": N_(
        "Add up the sizes of the entries of kind 'file', recurse into those of kind 'dir' "
        "(path.rstrip('/') + '/' + entry.name), skip the rest."
    ),
    "not a number": N_(
        "du(client, {path!r}) returned {got!r:.80}; return the total, a number of bytes "
        "(an int): add the sizes of the files and what each recursive call returns."
    ),
    "local disk": N_(
        " Your du reads the disk of this machine ({call}): the files are on the server. "
        "List them with client.ls(path)."
    ),
    "uses cd": N_(
        " Your du calls cd: the client's working folder then moves under your recursion, and "
        "names are looked up in the wrong place. Do not cd: pass full paths to ls."
    ),
    "sub-path": N_(
        " An entry's name is only its last part ('old', not '/docs/old'): ls(entry.name) "
        "looks for it in the wrong folder. Build each sub-path as "
        "path.rstrip('/') + '/' + entry.name and recurse on that."
    ),
    "moved": N_(
        "After du, the client's working folder is {cwd!r}: do not cd; pass "
        "full paths to ls instead (a helper must not move the user)."
    ),
    "passed": N_(
        "du adds up every file under a folder, recursing through the API, skipping links."
    ),
})

_SIZES = {
    "top.txt": 100,
    "docs/a.txt": 1000,
    "docs/b.bin": 2345,
    "docs/old/c.txt": 30,
    "docs/old/deeper/d.txt": 7,
    "music/song.mp3": 5000,
}


def _fill_home(home: Path) -> None:
    """Files of known sizes in nested folders, an empty folder, and a link to /etc."""
    for name, size in _SIZES.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(b"x" * size)
    (home / "empty").mkdir()
    (home / "docs" / "etc").symlink_to("/etc")  # ls shows it as a "link"


#: What a du that walks the local disk calls instead of ``client.ls``.
_LOCAL_CALLS = ("os.walk(", "os.listdir(", "os.scandir(", ".iterdir(", ".rglob(", ".glob(")


def _local_disk_hint(du: Callable[[Any, str], int]) -> str:
    """" Your du reads the disk of this machine …", if its code walks the local disk."""
    code = code_of(du)
    called = [call for call in _LOCAL_CALLS if call in code]
    return DU["local disk"].format(call=called[0] + "…)") if called else ""


def _du_hint(du: Callable[[Any, str], int], error: BaseException) -> str:
    """Why ``du`` raised: a link it tried to list, a cd, or a sub-path built from the name alone."""
    if "link" in in_english(error):  # the English words, whatever the language
        return DU["link"]
    if ".cd(" in code_of(du):
        return DU["uses cd"]
    if isinstance(error, LabCryptoError):
        return DU["sub-path"]
    return ""


def _check_total(du: Callable[[Any, str], int], client: FileClient, path: str, want: int) -> None:
    status, got = run_bounded(du, client, path, timeout=SERVICE_WAIT)
    if status == "error" and isinstance(got, NotImplementedError):
        raise not_written("du")
    if status == "stuck":
        raise fail(DU["stuck"], wait=SERVICE_WAIT, hint=_local_disk_hint(du))
    if status == "error":
        raise fail(DU["raised"], path=path, error=refused_as(got), hint=_du_hint(du, got))
    if got == want:
        return
    if not isinstance(got, int) or isinstance(got, bool):
        raise fail(DU["not a number"], path=path, got=got)
    top_level = sum(s for n, s in _SIZES.items() if "/" not in n)
    hint = DU["top only"] if path == "/" and got == top_level else DU["how to count"]
    hint += _local_disk_hint(du)
    raise fail(DU["wrong"], path=path, got=got, want=want, hint=hint)


@explained_in("05_ftp", N_("6 · Exercise: `du` on the API"))
def check_du(du: Callable[[Any, str], int]) -> None:
    """``du(client, path)``: total bytes of the files under ``path``, via ``client.ls``."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        allowlist = Allowlist(Path(tmp) / "allowlist.csv")
        allowlist.add("alice", alice.public_key)
        _fill_home(Path(tmp) / "homes" / "alice")
        server = FileServer(
            server_key, allowlist, Path(tmp) / "homes", name="check-du-server",
            connection_timeout=5.0,
        ).start()  # fmt: skip
        try:
            client = FileClient(*server.address, alice, server_key.public_key, timeout=5.0)
            _check_total(du, client, "/", sum(_SIZES.values()))
            _check_total(du, client, "/docs", 1000 + 2345 + 30 + 7)
            if client.cwd != "/":
                raise fail(DU["moved"], cwd=client.cwd)
        finally:
            server.stop()
    passed(DU["passed"])


@check_du.hidden
def hidden_du(du: Callable[[Any, str], int], client: Any, home: Path) -> None:
    """``du`` of the notebook's own home, compared with the disk."""
    files = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    total = returned_within(du, client, "/", timeout=HIDDEN_WAIT)
    expect(total == sum(p.stat().st_size for p in files))
