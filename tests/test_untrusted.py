"""Text a peer chose, shown in a log or a message: one quoted line, nothing raw."""

from __future__ import annotations

import socket

import pytest

from labcrypto.streams import close_stream, set_timeout
from labcrypto.untrusted import quote, said_by_code, unsafe_characters

HOSTILE = [
    "toy\x1b[2J",  # clear the screen
    "x\x1b]0;owned\x07",  # retitle the terminal
    "ok\nalice: fake line",  # forge a second log line
    "a\r\x00b",
    "\u202egnp.exe",  # right-to-left override
    "zero\u200bwidth",
    "\ud800",  # a lone surrogate
    "line\u2028sep",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_quote_leaves_no_control_or_format_character(text: str) -> None:
    shown = quote(text)
    assert shown.isprintable(), shown
    assert unsafe_characters(text), "the hostile sample must contain something to escape"


def test_quote_keeps_russian_and_marks_quotes() -> None:
    assert quote("Привет, мир") == '"Привет, мир"'
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


def test_quote_shows_bad_utf8_bytes_as_hex() -> None:
    assert quote(b"ab\xff") == '"ab\\xff"'


def test_quote_cuts_long_values() -> None:
    shown = quote("я" * 10_000, limit=50)
    assert shown == '"' + "я" * 50 + '…"'


def test_unsafe_characters_lists_each_once() -> None:
    assert unsafe_characters("a\x1b\x1bb\u202e") == ["\\x1b", "\\u202e"]
    assert unsafe_characters("Привет, world!") == []


def test_close_stream_wakes_a_blocked_reader_and_never_raises() -> None:
    import threading
    import time

    left, right = socket.socketpair()
    set_timeout(left, 10.0)
    ended: list[object] = []

    def read() -> None:
        try:
            ended.append(left.recv(10))
        except OSError as exc:
            ended.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)  # let it block in recv(); close() alone would not wake it on Linux
    close_stream(left)
    reader.join(3.0)
    assert not reader.is_alive(), "the reader still waits: the stream was not shut down"
    close_stream(left)  # twice: still quiet
    close_stream(object())  # not a stream at all: nothing to do
    right.close()


# --- jsonwire: one encoding out, one strict parser in ---------------------------

from labcrypto import jsonwire  # noqa: E402
from labcrypto.errors import MalformedJSON, ProtocolError  # noqa: E402


def test_encode_sends_utf8_not_escapes() -> None:
    data = jsonwire.encode({"text": "Привет"})
    assert "Привет".encode() in data and b"\\u" not in data
    assert len(data) == len('{"text":""}') + 2 * len("Привет")


def test_decode_round_trips() -> None:
    message = {"type": "say", "text": "Ёжик в тумане ́", "n": [1, 2.5, None, True]}
    assert jsonwire.decode(jsonwire.encode(message), 1000) == message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a":1,"a":2}', "twice"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":"\\ud800"}', "surrogate"),
        (b'{"a":[["\\udfff"]]}', "surrogate"),
        (b'{"\\ud800":1}', "surrogate"),
        (b'{"a":"\\u00e9\\udc00"}', "surrogate"),  # behind another escape
        (b'{"a":"\xed\xa0\x80"}', "UTF-8"),  # a surrogate written as UTF-8 bytes, no escape
        (b'{"a":"\xff"}', "UTF-8"),
        (b"[1,2]", "object"),
        (b'{"a":', "JSON"),
        (b"[" * 100_000, "deeply"),
        (b'{"a":' + b"1" * 5000 + b"}", "too large to use"),  # Python's own limit is 4,300
        (b'{"a":-' + b"9" * 101 + b"}", "too large to use"),  # just over ours
        (b'{"a":1e400}', "too large to use"),  # infinity by another spelling
        (b'{"a":-1e400}', "too large to use"),
        (b'{"a":1' + b"0" * 400 + b'.0}', "too large to use"),
    ],
)
def test_decode_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedJSON, match=reason) as caught:
        jsonwire.decode(data, len(data))
    assert isinstance(caught.value, ProtocolError)


def test_a_number_of_up_to_the_limit_is_read() -> None:
    longest = "9" * jsonwire.MAX_NUMBER_CHARACTERS
    assert jsonwire.decode(f'{{"a":{longest}}}'.encode(), 1000) == {"a": int(longest)}
    assert jsonwire.decode(b'{"a":1.5e308}', 1000) == {"a": 1.5e308}


def test_decode_checks_size_before_parsing() -> None:
    data = jsonwire.encode({"text": "я" * 100})
    jsonwire.decode(data, len(data))
    with pytest.raises(MalformedJSON, match="over the limit"):
        jsonwire.decode(data, len(data) - 1)


def test_decode_never_echoes_control_characters() -> None:
    with pytest.raises(MalformedJSON) as caught:
        jsonwire.decode(b'{"\x1b[2J":1,"\x1b[2J":2}', 100)
    assert str(caught.value).isprintable()


def test_a_refusal_by_code_is_said_in_our_words_or_not_at_all():
    """A peer's code and values fill our template only if the code is ours and the
    values fit it; the values are the peer's, so a terminal escape comes out quoted."""
    templates = {"busy": "no free port in {first}..{last}", "named": "no such file {name}"}
    assert said_by_code(templates, "busy", {"first": 20000, "last": 20009}) == (
        templates["busy"], {"first": 20000, "last": 20009}
    )
    template, values = said_by_code(templates, "named", {"name": "a\x1b[2Jb"})
    assert template == templates["named"]
    assert values["name"] == quote("a\x1b[2Jb") and "\x1b" not in values["name"]
    long_name = "x" * 300
    assert said_by_code(templates, "named", {"name": long_name}, limit=80)[1]["name"] == quote(
        long_name, 80
    )
    assert said_by_code(templates, "unknown", {}) is None
    assert said_by_code(templates, "busy", {"first": 1}) is None  # {last} missing
    assert said_by_code(templates, "busy", "not a dict") is None
    assert said_by_code(templates, ["busy"], {}) is None
