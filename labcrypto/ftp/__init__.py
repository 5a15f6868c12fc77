"""The encrypted file service (task 5): the course's FTP server, made secure.

The course's file server works **one request per connection**: connect,
send one command, get the reply, close. This one keeps that shape and
puts a full key exchange in front of every request::

    client                                         server
    connect ──────────────────────────────────────► accept
    handshake with a *fresh* ephemeral key pair ◄─► fresh pair too; static key
                                                    checked against the allowlist
    {"command": "ls", "cwd": "/docs", "args": {...}} ──►
                                                ◄── {"ok": true, "result": [...]}
    close                                           close

* **New keys every time.** Like every secure handshake, each request's
  makes new ephemeral Diffie-Hellman key pairs on both sides and mixes
  them into the session keys, so every request has its own keys
  (``FileClient.sessions`` lists their fingerprints: they never repeat).
  Stealing a long-term key later does not open recorded traffic (forward
  secrecy). Who you are comes from your long-term (static) key and the
  allowlist, checked on every request — and because the keys also mix your
  static key with the server's fresh one (the ``se`` term of
  ``labcrypto.handshake``), even a thief with the server's private key
  cannot log in as you. The handshake names the service (``"files"``).
* **No session on the server.** The working directory is the client's:
  it is sent with each request. ``cd`` only asks the server whether the
  folder exists.
* **A home you cannot leave.** Each user works in ``root/<name on the
  allowlist>``, created on first use and shown as ``/``. The ``jail``
  module refuses every way out (``..``, links, odd names).
* **Whole files or nothing.** ``put`` and ``get`` stream the file in
  sealed records of 512 KiB, never holding it in memory, and end with a
  sealed *end record*. Each record is authenticated and numbered, so a
  changed, replayed, reordered or missing one is caught; the receiver
  takes exactly the announced size and then needs the end record. It
  writes into a temporary file and renames it into place (after
  ``fsync``) only when all of that holds: a transfer cut anywhere leaves
  the previous version untouched and no half file. (Why no SHA-256 of
  the whole file: ``ftp.transfer``.)

A transfer, on the wire (after the handshake; every frame is encrypted)::

    put:  request {size} ──► ◄── {"ok": true}   data, data, ..., {"end": size} ──► ◄── reply
    get:  request ──► ◄── {"ok": true, "size"}   ◄── data, data, ..., {"end": size}

The package, one idea a module:

* ``wire``     — requests and replies (JSON through ``labcrypto.jsonwire``),
  the errors that may travel, the limits;
* ``transfer`` — a whole file through a channel: sealed data records,
  then the end record (and why they need no whole-file digest);
* ``store``    — where an upload goes while it arrives (a temporary file,
  committed only when whole);
* ``server``   — ``FileServer``; ``client`` — ``FileClient`` and ``Transfer``;
* ``shell``    — the text commands of ``labcrypto ftp`` (``run_command``).

Used by notebook 05_ftp and by ``labcrypto ftp-serve`` / ``labcrypto ftp``.
"""

from __future__ import annotations

from ..jail import FileInfo
from .client import FileClient, Transfer
from .server import FileServer
from .shell import COMMANDS, run_command
from .wire import CHUNK_SIZE, DEFAULT_MAX_CAT, DEFAULT_MAX_UPLOAD, Progress

__all__ = [
    "CHUNK_SIZE",
    "COMMANDS",
    "DEFAULT_MAX_CAT",
    "DEFAULT_MAX_UPLOAD",
    "FileClient",
    "FileInfo",
    "FileServer",
    "Progress",
    "Transfer",
    "run_command",
]
