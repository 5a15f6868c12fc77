"""The chat room's messages: what one line is, and how it travels (notebooks 02-05).

Inside the encrypted channel, messages are small JSON objects, never
``pickle`` (course mistake 7)::

    client → server   {"type": "say", "text": "hi"}
    server → client   {"type": "welcome", "name": "alice", "members": [...]}
                      {"type": "message", "from": "alice", "text": "hi", "time": ...}
                      {"type": "notice",  "from": "server", "text": "bob joined", ...}

Both ends (``labcrypto.chat_server`` and ``labcrypto.chat_client``) use
the helpers here, so they agree on every rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedMessage
from .handshake import decode_message, encode_message

__all__ = ["MAX_TEXT", "SERVER_NAME", "ChatMessage", "check_text", "decode_line", "encode_line"]

#: The name operator messages and notices are tagged with.
SERVER_NAME = "server"
#: The longest chat message, in characters.
MAX_TEXT = 4000


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
    if not isinstance(text, str):
        raise TypeError(f"a chat message is text (str), got {type(text).__name__}")
    if not text.strip():
        raise ValueError("cannot send an empty chat message")
    if len(text) > MAX_TEXT:
        raise ValueError(f"a chat message has at most {MAX_TEXT} characters, got {len(text)}")
    return text


def encode_line(message: ChatMessage) -> bytes:
    return encode_message(
        {"type": message.kind, "from": message.sender, "text": message.text, "time": message.time}
    )


def decode_line(data: bytes) -> ChatMessage:
    """A server's ``message`` or ``notice``, checked field by field."""
    fields = decode_message(data)
    sender, text, when = fields.get("from"), fields.get("text"), fields.get("time")
    if (
        fields["type"] not in ("message", "notice")
        or not isinstance(sender, str)
        or not isinstance(text, str)
        or not isinstance(when, (int, float))
    ):
        raise MalformedMessage(f"not a chat line: {data[:80]!r}")
    return ChatMessage(sender, text, float(when), fields["type"])
