"""The chat room's messages: what one line is, and how it travels (notebooks 02-05).

Inside the encrypted channel, messages are small JSON objects, never
``pickle`` (course mistake 7), written and read by ``labcrypto.jsonwire``
(UTF-8 on the wire, duplicate keys and lone surrogates refused)::

    client → server   {"type": "say", "text": "hi"}
    server → client   {"type": "welcome", "name": "alice", "members": [...]}
                      {"type": "message", "from": "alice", "text": "hi", "time": ...}
                      {"type": "notice",  "from": "server", "text": "bob joined", ...}

What a line may hold, the same for both ends (``check_text``):

* at most ``MAX_TEXT`` characters — counted as Python counts them
  (``len``: code points), so the limit is the same for Latin, Cyrillic,
  combining accents or emoji. On the wire that is at most 4 bytes a
  character as UTF-8; ``MAX_SAY_BYTES`` leaves room even for a client
  that escapes every character as ``\\uXXXX`` (12 bytes for an emoji);
* no control, format (bidi, zero-width) or separator characters: a line
  is one line of visible text, so nobody can start a fake
  ``alice: ...`` line with ``\\n``, clear a terminal with ``ESC[2J`` or
  reverse the text after it with U+202E (``labcrypto.untrusted``).

Both ends (``labcrypto.chat_server`` and ``labcrypto.chat_client``) use
the helpers here, so they agree on every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import jsonwire
from .errors import LineRefused, MalformedMessage
from .untrusted import quote, unsafe_characters

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_SAY_BYTES",
    "MAX_TEXT",
    "SERVER_NAME",
    "ChatMessage",
    "check_text",
    "decode_line",
    "encode",
    "encode_line",
    "parse_say",
    "say_message",
]

#: The name operator messages and notices are tagged with.
SERVER_NAME = "server"
#: The longest chat message, in characters (code points), whatever the script.
MAX_TEXT = 4000
#: The largest ``say`` message the server reads: ``MAX_TEXT`` characters even if
#: every one is escaped as a 12-byte surrogate pair, plus the JSON around them.
MAX_SAY_BYTES = 12 * MAX_TEXT + 1024
#: The largest line (``message``, ``notice``, ``welcome``) a client reads.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ChatMessage:
    """One line of the chat: who sent it, what it says, when the server got it.

    ``kind`` is ``"message"`` for what people (or the operator) said and
    ``"notice"`` for the server's announcements (joins, leaves, warnings).
    """

    sender: str
    text: str
    time: float
    kind: str = "message"


def check_text(text: str) -> str:
    """``text`` if the room carries it as one line; else ``LineRefused`` saying why."""
    if not isinstance(text, str):
        raise TypeError(f"a chat message is text (str), got {type(text).__name__}")
    if not text.strip():
        raise LineRefused("a chat message cannot be empty")
    if len(text) > MAX_TEXT:
        raise LineRefused(
            f"a chat message has at most {MAX_TEXT} characters; this one has {len(text)}"
        )
    unsafe = unsafe_characters(text)
    if unsafe:
        shown = ", ".join(unsafe[:8]) + (", …" if len(unsafe) > 8 else "")
        raise LineRefused(
            f"a chat message is one line of visible text; this one holds control, format "
            f"or bidi characters ({shown}): remove them"
        )
    return text


def encode(message: dict[str, Any]) -> bytes:
    """Any chat message as bytes: compact UTF-8 JSON (``jsonwire.encode``)."""
    return jsonwire.encode(message)


def say_message(text: str) -> bytes:
    """The client's ``say`` message for ``text`` (checked first)."""
    return encode({"type": "say", "text": check_text(text)})


def parse_say(data: bytes) -> str:
    """The text of a client's ``say`` message.

    Raises ``LineRefused`` for text the room does not carry (too long,
    empty, control characters), and ``MalformedJSON`` or
    ``MalformedMessage`` for anything that is not a ``say`` message at all.
    All three are answered with a notice, and the member chats on.
    """
    if len(data) > MAX_SAY_BYTES:
        raise LineRefused(
            f"a chat message has at most {MAX_TEXT} characters; this one is {len(data)} bytes long"
        )
    message = jsonwire.decode(data, MAX_SAY_BYTES)
    kind, text = message.get("type"), message.get("text")
    if kind != "say":
        raise MalformedMessage(f'expected a message of type "say", got type {quote(kind, 40)}')
    if not isinstance(text, str):
        raise MalformedMessage(
            f'a "say" message needs "text" as a string, got {type(text).__name__}'
        )
    return check_text(text)


def encode_line(message: ChatMessage) -> bytes:
    """A ``message`` or ``notice`` as the server sends it to each member."""
    return encode(
        {"type": message.kind, "from": message.sender, "text": message.text, "time": message.time}
    )


def decode_line(data: bytes) -> ChatMessage:
    """A server's ``message`` or ``notice``, checked field by field."""
    fields = jsonwire.decode(data, MAX_LINE_BYTES)
    kind, sender, text = fields.get("type"), fields.get("from"), fields.get("text")
    when = fields.get("time")
    if (
        kind not in ("message", "notice")
        or not isinstance(sender, str)
        or not isinstance(text, str)
        or not isinstance(when, int | float)
        or isinstance(when, bool)
    ):
        raise MalformedMessage(f"not a chat line: {quote(data, 80)}")
    return ChatMessage(sender, text, float(when), kind)
