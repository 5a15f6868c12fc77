"""Showing text that someone else sent: in a log, an error message or a terminal.

A peer — even a stranger who has not finished a handshake — chooses the
bytes of a ``mode`` field, a file name or a chat line. Printed raw, those
bytes can forge a second log line (``\\n``), clear the instructor's screen
or retitle the terminal (``ESC[2J``, ``ESC]0;…BEL``), or reverse the
text that follows (bidi overrides such as U+202E). So:

* ``quote(value)`` turns any client-supplied value into one safe, visibly
  quoted line: control, format (bidi) and surrogate characters become
  ``\\x..``/``\\u....`` escapes, and a long value is cut with ``…``.
  Use it for *every* client-supplied string that goes into a log or an
  error message.
* ``unsafe_characters(text)`` lists what ``quote`` would escape; services
  that *refuse* such text (chat lines, names) use it to say why.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

__all__ = ["quote", "said_by_code", "unsafe_characters"]

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (bidi marks, zero-width), surrogate, private-use, unassigned,
line and paragraph separators."""


def _is_unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def unsafe_characters(text: str) -> list[str]:
    """The characters of ``text`` that ``quote`` escapes, each once, escaped (``['\\x1b']``)."""
    seen: dict[str, None] = {}
    for char in text:
        if _is_unsafe(char):
            seen.setdefault(_escape(char), None)
    return list(seen)


def quote(value: object, limit: int = 80) -> str:
    """``value`` as one safe line in quotes, for logs and messages: ``'mode "toy\\x1b[2J"'``.

    Bytes are decoded as UTF-8 with invalid bytes shown as ``\\x..``; any
    other non-string is shown with ``repr``. At most ``limit`` characters of
    the value are kept (the rest becomes ``…``), so a megabyte field cannot
    flood a log.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        # Invalid UTF-8 bytes become U+DC80..U+DCFF here and are shown as \\x.. below.
        text = bytes(value).decode("utf-8", errors="surrogateescape")
    elif isinstance(value, str):
        text = value
    else:
        text = repr(value)
    shown = "".join(_show(char) for char in text[:limit])
    return f'"{shown}{"…" if len(text) > limit else ""}"'


def _show(char: str) -> str:
    """One character as it appears inside ``quote``'s quotes."""
    if char in '"\\':
        return "\\" + char
    if 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{ord(char) - 0xDC00:02x}"
    return _escape(char) if _is_unsafe(char) else char


def said_by_code(
    templates: Mapping[str, str], code: object, params: object, limit: int = 200
) -> tuple[str, dict[str, object]] | None:
    """A refusal a peer sent as a code and its values, ready to say in our own words.

    ``(templates[code], values)`` when ``code`` is one we know and ``params`` fill its
    template; ``None`` otherwise, and the caller shows the peer's own words, quoted.
    The peer chose every value: numbers stay numbers, and text is quoted when it
    holds a character a terminal acts on or is longer than ``limit``.
    """
    if not (isinstance(code, str) and code in templates and isinstance(params, dict)):
        return None
    values = {str(name): _peer_value(value, limit) for name, value in params.items()}
    try:
        templates[code].format(**values)
    except (KeyError, IndexError, ValueError):
        return None
    return templates[code], values


def _peer_value(value: object, limit: int) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else repr(value)
    return quote(text, limit) if unsafe_characters(text) or len(text) > limit else text
