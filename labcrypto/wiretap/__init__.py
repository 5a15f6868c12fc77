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

The package: ``capture`` (what the tap writes down, and Eve's view of
it), ``relay`` (the ``Wiretap`` itself) and ``attacks`` (breaking toy
mode, and the ready-made policies). Everything is re-exported here, so
``from labcrypto import wiretap; wiretap.Wiretap(...)`` is all a notebook needs.

The tap relays one connection. A server that moves the conversation to a
second port (notebook 04) sends that port inside the encrypted channel, so
the client then goes there directly, around the tap: use single-port
servers with the tap.
"""

from __future__ import annotations

from .attacks import (
    DropFrame,
    FlipBit,
    InjectPublicValue,
    ManInTheMiddle,
    ReplayFrame,
    Stolen,
    crack_caesar,
    recover_toy_secret,
)
from .capture import (
    C2S,
    DIRECTIONS,
    S2C,
    TapConnection,
    TapFrame,
    TapRecord,
    describe,
    eavesdropper_view,
    format_view,
    handshake_message,
    reassemble,
)
from .relay import Policy, Wiretap

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
