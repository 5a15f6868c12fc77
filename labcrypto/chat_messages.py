"""The chat room's messages: what one line is, and how it travels (notebooks 02-05).

Inside the encrypted channel, messages are small JSON objects, never
``pickle`` (course mistake 7), written and read by ``labcrypto.jsonwire``
(UTF-8 on the wire, duplicate keys and lone surrogates refused)::

    client → server   {"type": "say", "text": "hi"}
    server → client   {"type": "welcome", "name": "alice", "members": [...]}
                      {"type": "message", "from": "alice", "text": "hi", "time": ...}
                      {"type": "notice",  "from": "server", "text": "bob joined",
                       "code": "joined", "params": {"name": "bob"}, ...}

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

The server's notices (joins, leaves, a refused line, a warning) carry a
``code`` and its ``params`` beside the English ``text``. A server must not
answer in whatever language its process happens to run in; each member
reads the notice in *its* language instead: ``chat_client`` fills in the
translation of ``NOTICES[code]`` (``REFUSALS`` for a refused line's
reason) with the same ``params``. A client that does not know a code shows
the English ``text``. Parameters that hold text someone else chose (the
``UNTRUSTED_PARAMS``) are only ever shown through ``untrusted.quote``, on
both ends; any other text parameter is quoted too if it holds a control or
bidi character (a hostile server could send one).

Both ends (``labcrypto.chat_server`` and ``labcrypto.chat_client``) use
the helpers here, so they agree on every rule. This module translates
nothing itself: ``N_`` only marks the English texts for the catalog, and
``notice_text`` takes the translation function from its caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import jsonwire
from .errors import LineRefused, MalformedJSON, MalformedMessage, in_english
from .i18n import N_
from .untrusted import quote, unsafe_characters

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_SAY_BYTES",
    "MAX_TEXT",
    "NOTICES",
    "REFUSALS",
    "SERVER_NAME",
    "UNTRUSTED_PARAMS",
    "ChatMessage",
    "check_text",
    "decode_line",
    "encode",
    "encode_line",
    "notice",
    "notice_text",
    "parse_say",
    "refusal_of",
    "refusal_text",
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
#: The most parameters a notice carries.
MAX_PARAMS = 8

#: The parameter of a notice or refusal: a name, a number, a piece of text.
Param = str | int | float

#: Why the room refuses a line, by code. The English text is the message id of its
#: translation; ``{got}`` and ``{detail}`` hold what the sender chose (or a parser's
#: words about it), so they are shown only through ``quote``.
REFUSALS = {
    "empty": N_("a chat message cannot be empty"),
    "too long": N_("a chat message has at most {limit} characters; this one has {length}"),
    "too many bytes": N_(
        "a chat message has at most {limit} characters; this one is {size} bytes long"
    ),
    "unsafe": N_(
        "a chat message is one line of visible text; this one holds control, format "
        "or bidi characters ({shown}): remove them"
    ),
    "not say": N_('expected a message of type "say", got type {got}'),
    "text not str": N_('a "say" message needs "text" as a string, got {got}'),
    "malformed": N_("not a JSON chat message: {detail}"),
    # {json} is the parser's reason (a code of ``jsonwire.REASONS``), filled in with
    # the numbers beside it in the reader's language: see ``refusal_text``.
    "malformed json": N_("not a JSON chat message: {json}"),
}

#: The server's notices, by code (``refused``: its ``reason`` is a code of ``REFUSALS``).
NOTICES = {
    "joined": N_("{name} joined"),
    "left": N_("{name} left"),
    "refused": N_("message refused: {reason}"),
    "idle": N_(
        "closed: you said nothing for {seconds} s (this room's idle limit); connect again to chat"
    ),
    "slow down": N_(
        "slow down: at most {rate} lines per second each in this room; your next lines wait"
    ),
}

#: Parameters that hold text a client chose: shown through ``quote`` on every end,
#: at most ``UNTRUSTED_LIMIT`` characters of it.
UNTRUSTED_PARAMS = frozenset({"got", "detail"})
UNTRUSTED_LIMIT = 120


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
    #: A notice's code (a key of ``NOTICES``) and its parameters; empty for a message.
    code: str = ""
    params: tuple[tuple[str, Param], ...] = ()


def _as_written(text: str) -> str:
    return text


def _shown_param(name: str, value: Param) -> Param:
    """A parameter as it may appear in a notice: someone else's text always quoted,
    other text quoted only if it holds a character a terminal would act on."""
    if not isinstance(value, str):
        return value
    if name in UNTRUSTED_PARAMS:
        return quote(value, UNTRUSTED_LIMIT)
    return quote(value, len(value)) if unsafe_characters(value) else value


def notice_text(
    code: str, params: Mapping[str, Param], translate: Callable[[str], str] = _as_written
) -> str:
    """The text of notice ``code`` with ``params`` filled in, each text parameter made safe.

    ``translate`` turns an English text into the reader's language; the server
    leaves it as written (English), a client passes ``i18n.gettext``. Raises
    ``KeyError`` for an unknown code or a missing parameter.
    """
    if code == "refused":
        reason = refusal_text(str(params["reason"]), params, translate)
        return translate(NOTICES[code]).format(reason=reason)
    return _fill(translate(NOTICES[code]), params)


def refusal_text(
    code: str, params: Mapping[str, Param], translate: Callable[[str], str] = _as_written
) -> str:
    """Why a line was refused (``REFUSALS[code]``), filled in as ``notice_text`` does.

    A ``malformed json`` refusal carries the parser's own reason as a code
    (``params["json"]``, a key of ``jsonwire.REASONS``) and its numbers: that
    sentence is filled in first, in the same language."""
    if code == "malformed json":
        others = {name: value for name, value in params.items() if name != "json"}
        why = _fill(translate(jsonwire.REASONS[str(params["json"])]), others)
        return translate(REFUSALS[code]).format(json=why)
    return _fill(translate(REFUSALS[code]), params)


def _fill(template: str, params: Mapping[str, Param]) -> str:
    return template.format(**_shown_params(params))


def _shown_params(params: Mapping[str, Param]) -> dict[str, Param]:
    return {name: _shown_param(name, value) for name, value in params.items()}


def notice(code: str, time: float, **params: Param) -> ChatMessage:
    """A notice from the server: its code and parameters, and its English text."""
    return ChatMessage(
        SERVER_NAME, notice_text(code, params), time, "notice", code, tuple(params.items())
    )


def _refused(code: str, **params: Param) -> LineRefused:
    """The ``LineRefused`` for reason ``code``: its template, code and parameters (its
    ``str`` is in the reader's language, its ``args`` English)."""
    return LineRefused(REFUSALS[code], code, params, **_shown_params(params))


def refusal_of(error: Exception) -> dict[str, Param]:
    """The parameters of a ``refused`` notice for ``error`` (what ``parse_say`` raised).

    A server sends these; each client fills in the reason in its own language.
    ``detail`` is always the English text, for a client that does not know the code.
    """
    if isinstance(error, LineRefused) and error.code in REFUSALS:
        return {**error.params, "reason": error.code}
    if isinstance(error, MalformedJSON) and error.code:
        numbers = {
            name: value
            for name, value in error.fields.items()
            if isinstance(value, str | int | float) and name not in ("reason", "json", "detail")
        }
        params = {**numbers, "reason": "malformed json", "json": error.code,
                  "detail": in_english(error)}  # fmt: skip
        try:
            refusal_text("malformed json", params)  # does it fill in? (it always should)
        except (KeyError, IndexError, ValueError):
            pass
        else:
            return params
    return {"reason": "malformed", "detail": in_english(error)}


def check_text(text: str) -> str:
    """``text`` if the room carries it as one line; else ``LineRefused`` saying why."""
    if not isinstance(text, str):
        raise TypeError(f"a chat message is text (str), got {type(text).__name__}")
    if not text.strip():
        raise _refused("empty")
    if len(text) > MAX_TEXT:
        raise _refused("too long", limit=MAX_TEXT, length=len(text))
    unsafe = unsafe_characters(text)
    if unsafe:
        # The escapes (\x1b, \u202e) are printable already: safe to show as they are.
        raise _refused("unsafe", shown=", ".join(unsafe[:8]) + (", …" if len(unsafe) > 8 else ""))
    return text


def encode(message: dict[str, Any]) -> bytes:
    """Any chat message as bytes: compact UTF-8 JSON (``jsonwire.encode``)."""
    return jsonwire.encode(message)


def say_message(text: str) -> bytes:
    """The client's ``say`` message for ``text`` (checked first)."""
    return encode({"type": "say", "text": check_text(text)})


def parse_say(data: bytes) -> str:
    """The text of a client's ``say`` message.

    Raises ``LineRefused`` for a line the room does not carry (not a
    ``say`` message, text that is too long, empty, or holds control
    characters), and ``MalformedJSON`` for bytes that are not one JSON
    object at all. Both are answered with a notice, and the member chats on.
    """
    if len(data) > MAX_SAY_BYTES:
        raise _refused("too many bytes", limit=MAX_TEXT, size=len(data))
    message = jsonwire.decode(data, MAX_SAY_BYTES)
    kind, text = message.get("type"), message.get("text")
    if kind != "say":
        got = kind if isinstance(kind, str) else repr(kind)
        # One character over what is shown, so that quote() marks the cut with "…".
        raise _refused("not say", got=got[: UNTRUSTED_LIMIT + 1])
    if not isinstance(text, str):
        raise _refused("text not str", got=type(text).__name__)
    return check_text(text)


def encode_line(message: ChatMessage) -> bytes:
    """A ``message`` or ``notice`` as the server sends it to each member."""
    line: dict[str, Any] = {
        "type": message.kind, "from": message.sender, "text": message.text, "time": message.time
    }  # fmt: skip
    if message.code:
        line["code"], line["params"] = message.code, dict(message.params)
    return encode(line)


def _is_param(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def decode_line(data: bytes) -> ChatMessage:
    """A server's ``message`` or ``notice``, checked field by field."""
    fields = jsonwire.decode(data, MAX_LINE_BYTES)
    kind, sender, text = fields.get("type"), fields.get("from"), fields.get("text")
    when = fields.get("time")
    code, params = fields.get("code", ""), fields.get("params", {})
    if (
        kind not in ("message", "notice")
        or not isinstance(sender, str)
        or not isinstance(text, str)
        or not isinstance(when, int | float)
        or isinstance(when, bool)
        or not isinstance(code, str)
        or not isinstance(params, dict)
        or len(params) > MAX_PARAMS
        or not all(_is_param(value) for value in params.values())
    ):
        raise MalformedMessage(N_("not a chat line: {data}"), data=quote(data, 80))
    return ChatMessage(sender, text, float(when), kind, code, tuple(params.items()))
