"""JSON messages on the wire: one encoding out, one strict parser in.

Every JSON message of the lab — handshake hellos, chat lines, port offers,
file requests — goes through these two functions, so every service agrees
on what a well-formed message is:

* ``encode(message)`` writes compact UTF-8 JSON. Non-ASCII text travels as
  UTF-8 (``"Привет"`` is 12 bytes), not as ``\\u041f`` escapes (6 bytes a
  letter): a limit measured in bytes then means the same for every script.
* ``decode(data, max_size)`` accepts exactly one JSON *object* and refuses,
  with ``MalformedJSON`` naming the reason, anything a careful parser would
  not guess about: bytes over ``max_size`` (checked before parsing), invalid
  UTF-8, a duplicate key (``{"a":1,"a":2}`` — which value wins differs
  between parsers, so an attacker could show a checker one value and a user
  another), ``NaN``/``Infinity``, a number too large to use (see
  ``MAX_NUMBER_CHARACTERS``), and lone surrogates (``"\\ud800"``, which
  cannot be encoded back to UTF-8 and crash whoever forwards them).

Never ``pickle``: unpickling bytes from the network runs the sender's code
(course mistake 7). JSON can only ever produce plain data.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import MalformedJSON
from .i18n import N_
from .untrusted import quote

__all__ = ["MAX_NUMBER_CHARACTERS", "REASONS", "decode", "encode", "malformed"]

#: The longest number a message may hold, in characters. Python itself refuses to
#: turn more than 4,300 digits into an ``int`` (the work grows with the square of
#: the length), but with a plain ``ValueError`` that no caller of ``decode``
#: expects: a chat member who sent ``{"n": 111…1}`` (5,000 ones) was dropped
#: without a word, and a file request or a hello got no reply at all. No message
#: of the lab needs more than the 19 digits of a file size.
MAX_NUMBER_CHARACTERS = 100

#: Why ``decode`` refuses a message, by code: each code's English template (the
#: message id of its translation). ``MalformedJSON.code`` names one, and its
#: ``fields`` fill it in, so a server can send the code and its numbers to a
#: client that shows them in its reader's language (``chat_messages``).
REASONS = {
    "too large": N_("a message of {size} bytes is over the limit of {limit}"),
    "not utf-8": N_("a message must be UTF-8 (bad byte at {position})"),
    "too deep": N_("a message nests too deeply"),
    "not an object": N_("a message must be one JSON object, in curly braces"),
    "surrogate": N_("a message holds a lone surrogate (not valid Unicode text)"),
    "duplicate key": N_("a message must be one JSON object: the key {key} appears twice"),
    "constant": N_("a message must be one JSON object: {name} is not a number JSON allows"),
    "big number": N_("a message holds a number too large to use: {number}"),
    # What Python's json parser says, in a few words of our own and its position.
    "expecting value": N_(
        "a message must be one JSON object: a value is missing at byte {position}"
    ),
    "expecting name": N_(
        "a message must be one JSON object: a key in double quotes is missing at byte {position}"
    ),
    "expecting colon": N_('a message must be one JSON object: ":" is missing at byte {position}'),
    "expecting comma": N_('a message must be one JSON object: "," is missing at byte {position}'),
    "unterminated string": N_(
        "a message must be one JSON object: the string at byte {position} is never closed"
    ),
    "control character": N_(
        "a message must be one JSON object: a control character inside a string at byte "
        "{position}"
    ),
    "bad escape": N_(
        "a message must be one JSON object: a bad \\ escape at byte {position}"
    ),
    "extra data": N_(
        "a message must be one JSON object: something follows it at byte {position}"
    ),
    "trailing comma": N_(
        "a message must be one JSON object: a comma before the closing bracket at byte "
        "{position}"
    ),
    "not json": N_("a message must be one JSON object: it is not JSON at byte {position}"),
}

#: The start of each message of Python's json parser, and our code for it.
_PARSER_MESSAGES = (
    ("Expecting value", "expecting value"),
    ("Expecting property name", "expecting name"),
    ("Expecting ':'", "expecting colon"),
    ("Expecting ','", "expecting comma"),
    ("Unterminated string", "unterminated string"),
    ("Invalid control character", "control character"),
    ("Invalid \\", "bad escape"),
    ("Extra data", "extra data"),
    ("Illegal trailing comma", "trailing comma"),
)


def malformed(code: str, **fields: object) -> MalformedJSON:
    """The ``MalformedJSON`` for reason ``code`` (a key of ``REASONS``), filled with ``fields``."""
    error = MalformedJSON(REASONS[code], **fields)
    error.code = code
    return error


def encode(message: dict[str, Any]) -> bytes:
    """``message`` as compact UTF-8 JSON bytes (what travels, inside one frame)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes, max_size: int) -> dict[str, Any]:
    """Parse one JSON object of at most ``max_size`` bytes, or raise ``MalformedJSON``."""
    if len(data) > max_size:
        raise malformed("too large", size=len(data), limit=max_size)
    try:
        text = bytes(data).decode("utf-8")
        message = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_no_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except UnicodeDecodeError as exc:
        raise malformed("not utf-8", position=exc.start) from None
    except RecursionError:
        raise malformed("too deep") from None
    except json.JSONDecodeError as exc:
        raise malformed(_parser_code(exc.msg), position=exc.pos) from None
    if not isinstance(message, dict):
        raise malformed("not an object")
    if "\\u" in text:  # only a \u escape can make a surrogate: UTF-8 bytes never decode to one
        _check_strings(message)
    return message


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build one JSON object, refusing a key that appears twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise malformed("duplicate key", key=quote(key))
        result[key] = value
    return result


#: One UTF-16 surrogate code point: never valid on its own in Unicode text.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_strings(message: dict[str, Any]) -> None:
    """Refuse lone surrogates anywhere in ``message`` (keys and values, at any depth).

    Only called when the text has a ``\\u`` escape: valid UTF-8 never decodes
    to a surrogate, so a message without escapes (nearly all of them, and
    every handshake message) cannot hold one, and the walk — most of the
    cost of parsing a hello with two 2048-bit numbers — is skipped.
    """
    pending: list[Any] = [message]
    while pending:  # a loop, not recursion: the peer chooses the depth
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise malformed("surrogate")


def _no_constant(name: str) -> Any:
    raise malformed("constant", name=name)


def _int(text: str) -> int:
    """A JSON integer, refused when longer than ``MAX_NUMBER_CHARACTERS``."""
    if len(text) > MAX_NUMBER_CHARACTERS:
        raise malformed("big number", number=quote(text, 20))
    return int(text)


def _float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when too long or not finite.

    ``1e400`` is valid JSON, but as a ``float`` it becomes infinity: the very
    value ``NaN``/``Infinity`` are refused for, reached by another spelling.
    """
    value = float(text)
    if len(text) > MAX_NUMBER_CHARACTERS or not math.isfinite(value):
        raise malformed("big number", number=quote(text, 20))
    return value


def _parser_code(parser_message: str) -> str:
    """Our code for what Python's json parser said (its English words are not shown:
    they would stay English in a Russian notebook; the position is kept)."""
    for start, code in _PARSER_MESSAGES:
        if parser_message.startswith(start):
            return code
    return "not json"
