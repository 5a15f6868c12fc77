"""The file service's messages: what a request and a reply look like on the wire.

Every request and every reply is one JSON object in one encrypted frame,
written and read with ``labcrypto.jsonwire`` (UTF-8, duplicate keys and
lone surrogates refused, size checked before parsing)::

    request  {"command": "ls", "cwd": "/docs", "args": {"path": "."}}
    reply    {"ok": true, "result": [...]}
    refusal  {"ok": false, "error": "PathOutsideHome", "message": "..."}

An error travels by its class *name*, and the client turns the name back
into a class through a fixed table (``WIRE_ERRORS``): a name from the
network never picks an arbitrary class. Everything in a request is
untrusted input, so each argument is checked for its type (``argument``)
and each listing entry for its fields (``listing_entry``) before use.

Used by ``ftp.server`` and ``ftp.client`` (notebook 05_ftp).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import jsonwire
from ..atomic_file import REFUSALS as FILE_REFUSALS
from ..channel import DEFAULT_MAX_FRAME
from ..errors import (
    BadPathName,
    FileServiceError,
    PathOutsideHome,
    PathRefused,
    ProtocolError,
    QuotaExceeded,
    TransferFailed,
    UploadTooLarge,
    in_english,
)
from ..i18n import N_
from ..jail import REFUSALS as JAIL_REFUSALS
from ..untrusted import quote, said_by_code

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_CAT",
    "DEFAULT_MAX_UPLOAD",
    "MAX_MESSAGE",
    "MAX_PAGES",
    "PAGE_BYTES",
    "WIRE_ERRORS",
    "Progress",
    "argument",
    "decode",
    "encode",
    "error_reply",
    "listing_entry",
    "listing_pages",
    "meant_as_object",
    "raise_if_error",
]

#: Plaintext bytes per data frame. Big frames keep the per-frame Python work
#: small next to the bytes moved; 512 KiB + the 16-byte tag is under the 1 MiB limit.
CHUNK_SIZE = 512 * 1024
#: Largest upload the server accepts unless told otherwise (2 GiB).
DEFAULT_MAX_UPLOAD = 2 << 30
#: Largest file ``cat`` shows (bigger files: use ``get``).
DEFAULT_MAX_CAT = 1 << 20
#: Largest JSON message (request or reply): what one frame can carry.
MAX_MESSAGE = DEFAULT_MAX_FRAME
#: A listing travels in pages of at most this many bytes of JSON each
#: (4,500 names of 250 bytes make 1.4 MB: over one frame, six pages).
PAGE_BYTES = 256 * 1024
#: The most pages a client accepts for one listing (MAX_LISTING long names fit in 16).
MAX_PAGES = 64

#: Why the file service refuses a request or a transfer, by code: the English template
#: of each refusal (the message id of its translation). With the jail's own and those
#: of ``atomic_file`` these are ``ALL_REFUSALS``: a refusal that travels carries its
#: code and values (``error_reply``), and the client says it in its reader's language
#: (``raise_if_error``). A refusal with a code the client does not know shows the
#: server's English text, quoted.
REFUSALS = {
    "bad argument": N_("bad request: {name} must be {kind}"),
    "bad request": N_("bad request: {error}"),
    "negative size": N_("bad request: a negative size"),
    "not allowed": N_("your key is not allowed"),
    "requests per key": N_(
        "your key already has {limit} requests under way on this server (the most one key "
        "may have): let them finish, then try again"
    ),
    "unknown command": N_("unknown command {command}: try help"),
    "not a folder": N_("{path} is not a folder"),
    "too big for cat": N_(
        "{path} has {size} bytes, over the {limit}-byte limit of cat: use get to download it"
    ),
    "upload too large": N_("{size} bytes is over this server's upload limit of {limit} bytes"),
    "dot path": N_(
        "cannot {command} {path}: a path ending in '.' or '..' names a folder by where you "
        "stand (POSIX refuses it too): cd .. and {command} it by its name"
    ),
    "broken off": N_("the request was broken off ({error}); nothing was kept"),
    "disk full, upload": N_(
        "the server's disk is full ({error}): the upload was not kept and your previous "
        "version is untouched. Tell the instructor"
    ),
    "disk reserve": N_(
        "the server keeps {keep} bytes of its disk free for everyone, and {size} more bytes "
        "would go below that: the upload was not kept and your previous version is "
        "untouched. Tell the instructor"
    ),
    "quota": N_(
        "your home uses {used} of its {quota} bytes; {size} more do not fit. Remove some "
        "files (rm), or wait for your other uploads, and try again"
    ),
    "quota, pending": N_(
        "your home uses {used} of its {quota} bytes and uploads still arriving hold "
        "{reserved} more; {size} more do not fit. Remove some files (rm), or wait for your "
        "other uploads, and try again"
    ),
    "shrank": N_("the file shrank while it was being sent ({done} of {size} bytes)"),
    "too much": N_("the sender sent more than the {size} bytes it announced; nothing was kept"),
    "no end record": N_(
        "the data was followed by something other than the end record; nothing was kept"
    ),
    "wrong end": N_(
        "the sender ended after {claimed} bytes, not the {size} announced; nothing was kept"
    ),
    "digest": N_("the file's SHA-256 does not match what the sender computed; nothing was kept"),
}
ALL_REFUSALS = {**FILE_REFUSALS, **JAIL_REFUSALS, **REFUSALS}
_CODE_OF = {template: code for code, template in ALL_REFUSALS.items()}
#: A refusal whose code this client does not know: the server's words, quoted.
UNKNOWN_REFUSAL = N_("the server refused the request: {words}")

#: ``progress(done_bytes, total_bytes)``, called after every frame of a transfer.
Progress = Callable[[int, int], None]

#: The errors that may travel from the server to the client, by name. A fixed
#: table: the client never turns a name from the network into an arbitrary class.
WIRE_ERRORS: dict[str, type[FileServiceError]] = {
    cls.__name__: cls
    for cls in (
        FileServiceError,
        PathRefused,
        PathOutsideHome,
        BadPathName,
        TransferFailed,
        UploadTooLarge,
        QuotaExceeded,
    )
}


def encode(message: dict[str, Any]) -> bytes:
    """A request or reply as the bytes of one frame (compact UTF-8 JSON)."""
    return jsonwire.encode(message)


def decode(data: bytes) -> dict[str, Any]:
    """A JSON object from the peer (never ``pickle``: course mistake 7).

    Raises ``MalformedJSON`` (a ``ProtocolError``) for anything else.
    """
    return jsonwire.decode(data, MAX_MESSAGE)


def meant_as_object(data: bytes) -> bool:
    """Does ``data`` at least start like a JSON object (``{``)?

    The server answers a flawed request (a duplicate key, invalid UTF-8 in
    a path) with a refusal that says what is wrong; bytes that are not even
    meant as an object are not a request of this protocol, and get no answer.
    """
    return bytes(data[:64]).lstrip()[:1] == b"{"


def error_reply(exc: FileServiceError) -> dict[str, Any]:
    """The refusal that tells the client what went wrong: the error's class, its English
    message (cut at 1000 characters) and, for a refusal of ``ALL_REFUSALS``, its code
    and values, so that the client can say it in its reader's language."""
    name = type(exc).__name__ if type(exc).__name__ in WIRE_ERRORS else "FileServiceError"
    reply: dict[str, Any] = {"ok": False, "error": name, "message": in_english(exc)[:1000]}
    code = _CODE_OF.get(exc.template)
    if code is not None:
        values = {key: value for key, value in exc.fields.items() if _plain(value)}
        if len(values) == len(exc.fields):
            reply["code"], reply["params"] = code, values
    return reply


def raise_if_error(reply: dict[str, Any]) -> dict[str, Any]:
    """Return a successful reply; raise the error an unsuccessful one carries.

    A known code is said in the reader's language from its values; otherwise the
    server's English message is shown quoted (nothing has checked those words).
    """
    if reply.get("ok") is True:
        return reply
    kind = WIRE_ERRORS.get(str(reply.get("error")), FileServiceError)
    said = said_by_code(ALL_REFUSALS, reply.get("code"), reply.get("params"))
    if said is not None:
        template, values = said
        raise kind(template, **values)
    message = reply.get("message")
    raise kind(UNKNOWN_REFUSAL, words=quote(message if isinstance(message, str) else "", 1000))


def _plain(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def argument(args: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """One argument of a request, checked for type (a request is untrusted input)."""
    value = args.get(name, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FileServiceError(REFUSALS["bad argument"], name=repr(name), kind=kind.__name__)
    return value


def listing_pages(entries: list[dict[str, Any]], page_bytes: int = PAGE_BYTES) -> list[list]:
    """Cut a listing into pages of at most ``page_bytes`` of JSON each (at least one page)."""
    pages: list[list[dict[str, Any]]] = [[]]
    size = 0
    for entry in entries:
        length = len(encode(entry)) + 1  # and its comma
        if pages[-1] and size + length > page_bytes:
            pages.append([])
            size = 0
        pages[-1].append(entry)
        size += length
    return pages


def listing_entry(item: Any) -> dict[str, Any]:
    """A listing entry from the server, checked before it becomes a ``FileInfo``."""
    if not isinstance(item, dict):
        raise ProtocolError(N_("the server sent a listing entry that is not an object"))
    try:
        return {
            "name": str(item["name"]),
            "kind": str(item["kind"]),
            "size": int(item["size"]),
            "mtime": float(item["mtime"]),
        }
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ProtocolError(N_("the server sent a malformed listing entry")) from None
