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
  another), ``NaN``/``Infinity``, and lone surrogates (``"\\ud800"``, which
  cannot be encoded back to UTF-8 and crash whoever forwards them).

Never ``pickle``: unpickling bytes from the network runs the sender's code
(course mistake 7). JSON can only ever produce plain data.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import MalformedJSON
from .untrusted import quote

__all__ = ["decode", "encode"]


def encode(message: dict[str, Any]) -> bytes:
    """``message`` as compact UTF-8 JSON bytes (what travels, inside one frame)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes, max_size: int) -> dict[str, Any]:
    """Parse one JSON object of at most ``max_size`` bytes, or raise ``MalformedJSON``."""
    if len(data) > max_size:
        raise MalformedJSON(f"a message of {len(data)} bytes is over the limit of {max_size}")
    try:
        text = bytes(data).decode("utf-8")
        message = json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise MalformedJSON(f"a message must be UTF-8 (bad byte at {exc.start})") from None
    except RecursionError:
        raise MalformedJSON("a message nests too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError, or one of ours below
        raise MalformedJSON(f"a message must be one JSON object: {_reason(exc)}") from None
    if not isinstance(message, dict):
        raise MalformedJSON("a message must be one JSON object {...}")
    if "\\u" in text:  # only a \u escape can make a surrogate: UTF-8 bytes never decode to one
        _check_strings(message)
    return message


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build one JSON object, refusing a key that appears twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {quote(key)} appears twice")
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
            raise MalformedJSON("a message holds a lone surrogate (not valid Unicode text)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _reason(exc: ValueError) -> str:
    """The parser's reason, without echoing the peer's bytes back."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at byte {exc.pos}"
    return str(exc)
