"""The chat server's notices reach each member in the member's own language (issue 16).

A server must not answer in the language its process happens to run in: it
sends each notice as a code with parameters, plus its English text, and the
client (``ChatClient``, and through it the chat panel and ``labcrypto chat``)
shows it in its reader's language. Text someone else chose, inside a notice,
is shown only through ``untrusted.quote`` — in English and in Russian, and
also when a hostile server sends the notice.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from conftest import wait_until
from hostile_clients import say

from labcrypto import i18n
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel
from labcrypto.chat import ChatClient, ChatMessage, ChatServer
from labcrypto.chat_client import in_language
from labcrypto.chat_messages import (
    MAX_TEXT,
    NOTICES,
    REFUSALS,
    decode_line,
    encode_line,
    notice,
    say_message,
)
from labcrypto.errors import MalformedMessage
from labcrypto.untrusted import quote

HOST = "127.0.0.1"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"


@pytest.fixture
def russian(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process (server and clients alike) speaks Russian, as a Russian notebook's does."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    i18n.set_language("ru")


@pytest.fixture
def room(secure_keys, tmp_path: Path, no_leaks: None):
    allow = Allowlist(tmp_path / "allowlist.csv", secure_keys("alice").group)
    for name in ("alice", "bob", "carol"):
        allow.add(name, secure_keys(name).public_key)
    server = ChatServer(secure_keys("server"), allow, idle_timeout=None).start()
    yield server
    server.stop()


def _client(room: ChatServer, secure_keys, name: str) -> ChatClient:
    return ChatClient.connect(
        HOST, room.port, secure_keys(name), server_key=secure_keys("server").public_key, timeout=5
    )


def _raw(room: ChatServer, secure_keys, name: str) -> tuple[socket.socket, SecureChannel]:
    """A hand-made member that reads the lines exactly as they travel."""
    sock = socket.create_connection((HOST, room.port), timeout=5.0)
    channel = SecureChannel.client(sock, secure_keys(name), timeout=5.0)
    assert json.loads(channel.recv(5.0))["type"] == "welcome"
    return sock, channel


def _next_notice(read, code: str, timeout: float = 5.0, **params):
    """The next notice with ``code`` (and these ``params``) that ``read(seconds)`` returns."""
    deadline = time.monotonic() + timeout
    while True:
        line = read(max(0.05, deadline - time.monotonic()))
        found = line.kind == "notice" and line.code == code
        if found and params.items() <= dict(line.params).items():
            return line


def _russian(text: str) -> bool:
    return any(letter in text.lower() for letter in CYRILLIC)


def test_a_russian_client_reads_joins_and_leaves_in_russian_off_an_english_wire(
    room, secure_keys, russian
) -> None:
    sock, wire = _raw(room, secure_keys, "carol")
    with sock, _client(room, secure_keys, "alice") as alice:
        with _client(room, secure_keys, "bob"):
            joined = _next_notice(alice.recv, "joined", name="bob")
        left = _next_notice(alice.recv, "left", name="bob")
        assert joined.text == "bob входит в чат" and left.text == "bob выходит из чата"
        assert joined.sender == "server" and dict(joined.params) == {"name": "bob"}
        # On the wire: the code, its parameters and English, whatever the server's process speaks.
        on_wire = [decode_line(wire.recv(5.0)) for _ in range(4)]
        assert [(line.code, line.text) for line in on_wire] == [
            ("joined", "carol joined"), ("joined", "alice joined"), ("joined", "bob joined"),
            ("left", "bob left"),
        ]  # fmt: skip


def test_an_english_client_reads_what_the_server_wrote(room, secure_keys, monkeypatch) -> None:
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    with _client(room, secure_keys, "alice") as alice, _client(room, secure_keys, "bob"):
        assert _next_notice(alice.recv, "joined", name="bob").text == "bob joined"


@pytest.mark.parametrize(
    ("data", "code", "russian_words"),
    [
        (say(""), "empty", "не может быть пустым"),
        (say("ж" * (MAX_TEXT + 1)), "too long", f"не больше {MAX_TEXT} символов"),
        (json.dumps({"type": "\x1b[2Jshout\u202e", "text": "x"}).encode(), "not say", "типа"),
        (b"\x00not json", "malformed json", "в позиции 0 ожидалось значение"),
    ],
    ids=["empty", "over the limit", "control characters in the type", "not JSON"],
)
def test_a_refused_line_is_explained_in_the_members_language(
    room, secure_keys, russian, data: bytes, code: str, russian_words: str
) -> None:
    sock, channel = _raw(room, secure_keys, "carol")
    with sock:
        channel.send(data)
        line = _next_notice(lambda t: decode_line(channel.recv(t)), "refused")
        assert "carol" in room.members(), "the member chats on"
    assert dict(line.params)["reason"] == code
    assert line.text.startswith("message refused: ")  # the wire: English
    shown = in_language(line).text  # what carol's ChatClient shows her
    assert shown.startswith("сообщение отклонено: ") and russian_words in shown, shown
    assert "\x1b" not in shown and "\u202e" not in shown and "\x00" not in shown
    if code == "malformed json":  # the parser's reason in our words, its position kept
        assert "a value is missing at byte 0" in line.text and "Expecting" not in line.text
        assert "Expecting" not in shown and "missing" not in shown
    if code == "not say":  # the type the sender chose, quoted on both ends
        assert quote("\x1b[2Jshout\u202e", 120) in line.text
        assert quote("\x1b[2Jshout\u202e", 120) in shown


def test_an_idle_member_is_told_why_in_its_language(secure_keys, tmp_path, russian, no_leaks):
    allow = Allowlist(tmp_path / "allowlist.csv", secure_keys("alice").group)
    allow.add("alice", secure_keys("alice").public_key)
    with ChatServer(secure_keys("server"), allow, idle_timeout=0.3, send_timeout=0.2) as server:
        with _client(server, secure_keys, "alice") as alice:
            told = _next_notice(alice.recv, "idle")
        assert "вы молчали" in told.text and "0 с" in told.text
        assert wait_until(lambda: "alice" not in server.members())


def _from_server(code: str, **params) -> ChatMessage:
    """A notice line as any server could send it, decoded as a client decodes it."""
    words = "the server's own words"
    line = ChatMessage("server", words, 0.0, "notice", code, tuple(params.items()))
    return decode_line(encode_line(line))


def test_a_hostile_servers_notice_cannot_reach_the_screen_raw(russian) -> None:
    """The client does not trust the server either: every text parameter it fills in is
    shown through quote() if it holds a control or bidi character."""
    evil = "bob\x1b]0;pwned\x07\u202e"
    shown = in_language(_from_server("joined", name=evil)).text
    assert shown == f"{quote(evil, len(evil))} входит в чат"
    refused = in_language(_from_server("refused", reason="not say", got=evil)).text
    assert quote(evil, 120) in refused and "\x1b" not in refused
    assert in_language(_from_server("joined", name="bob")).text == "bob входит в чат"


def test_a_notice_the_client_cannot_fill_in_keeps_the_servers_text(russian) -> None:
    for line in (
        _from_server("explode"),  # a code this client does not know
        _from_server("joined"),  # its parameter is missing
        _from_server("refused", reason="no such reason"),
    ):
        assert in_language(line).text == "the server's own words"


@pytest.mark.parametrize(
    "params",
    [[1, 2], {"name": ["bob"]}, {"name": True}, {f"p{i}": 1 for i in range(9)}],
    ids=["a list", "a list value", "a bool", "nine parameters"],
)
def test_a_notice_with_malformed_parameters_is_refused(params) -> None:
    data = json.dumps(
        {"type": "notice", "from": "server", "text": "x", "time": 0, "code": "joined",
         "params": params}
    ).encode()  # fmt: skip
    with pytest.raises(MalformedMessage):
        decode_line(data)


def test_every_notice_and_reason_has_its_russian(russian) -> None:
    for text in [*NOTICES.values(), *REFUSALS.values()]:
        assert _russian(i18n.gettext(text)), text
    assert notice("joined", 0.0, name="x").text == "x joined", "the server writes English"


def test_the_chat_panel_shows_a_refused_line_in_russian(russian) -> None:
    pytest.importorskip("ipywidgets")
    from labcrypto.lab.widgets import ChatPanel

    sent: list[bytes] = []
    panel = ChatPanel(lambda text: sent.append(say_message(text)))
    assert not panel.submit("one line\u202e reversed")
    assert not sent
    assert panel.lines[-1].startswith("ошибка: LineRefused: сообщение чата — одна строка")
    assert "\\u202e" in panel.lines[-1] and "\u202e" not in panel.lines[-1]
