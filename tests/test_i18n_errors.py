"""Errors raised into a notebook speak the notebook's language; logs and the wire stay English.

Each case raises one of the lab's errors the way a student meets it (through
the real code: a handshake, a frame reader, a pool, a refusal from a server),
with ``set_language("ru")`` as a Russian notebook's first cell does. Its
``str`` — the last line of the traceback — must read as Russian (no English
sentence left once code and quoted values are set aside: the detector of
``test_i18n_checks``), must still name the values it is about, and its
English (``in_english``, ``args``, ``repr``) must not change: that is what a
server logs and sends. A server running in a Russian process still logs and
answers in English.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import wait_until
from test_i18n import _COMMAND
from test_i18n_checks import english_prose as prose_outside_code

from labcrypto import atomic_file, handshake, i18n, jail, jsonwire, keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import HEADER, FrameReader
from labcrypto.chat import ChatClient, ChatServer
from labcrypto.ciphers import AeadCipher
from labcrypto.client import _port_fields, resolve_server_key
from labcrypto.errors import (
    AllowlistError,
    BadKeyName,
    BadKeyText,
    ConnectionLost,
    DecryptionFailed,
    FileServiceError,
    HandoffFailed,
    HandshakeError,
    InvalidPublicValue,
    KeyFileError,
    KeyNotAllowed,
    KnownServersError,
    LabCryptoError,
    MalformedJSON,
    NameNotOnAllowlist,
    NoAnswer,
    NotListening,
    PathOutsideHome,
    PoolExhausted,
    ServerKeyChanged,
    UnknownGroup,
    UploadTooLarge,
    in_english,
)
from labcrypto.ftp import FileClient, FileServer, wire
from labcrypto.ftp.wire import raise_if_error
from labcrypto.groups import TOY, get_group, validate_public
from labcrypto.handoff import busy_error
from labcrypto.keys import KeyPair
from labcrypto.known_servers import KnownServers
from labcrypto.lab import vocabulary
from labcrypto.ports import PortPool
from labcrypto.server import connect
from labcrypto.wiretap import ManInTheMiddle, Wiretap

HOST = "127.0.0.1"
#: Distinct people's keys in the toy group (two random ones collide one time in 20).
_EXPONENTS = {"server": 3, "alice": 4, "mallory": 5, "other server": 6, "third": 7}


def generate_for(name: str) -> KeyPair:
    x = _EXPONENTS[name]
    return KeyPair(TOY, x, pow(TOY.g, x, TOY.p))


_CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _russian(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here runs in a Russian process, as a Russian notebook's kernel does."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    i18n.set_language("ru")
    yield


def english_prose(text: str) -> list[str]:
    """English sentences left in ``text``, once code, quoted values and the ``labcrypto``
    commands it shows (never translated) are set aside."""
    return prose_outside_code(_COMMAND.sub("", text))


def raised(action: Callable[[], object], kind: type[LabCryptoError]) -> LabCryptoError:
    with pytest.raises(kind) as caught:
        action()
    return caught.value


# --- how each error is met -------------------------------------------------------


def _not_allowed_on_the_server() -> None:
    server = handshake.ServerHandshake(generate_for("server"), "toy", allow=lambda key: False)
    server.receive(handshake.ClientHandshake(generate_for("alice"), "toy").start())


def _not_allowed_from_the_server() -> None:
    client = handshake.ClientHandshake(generate_for("alice"), "toy")
    client.start()
    refusal = {"type": "error", "code": "not_allowed", "message": "is not on the allowlist"}
    client.receive(handshake.encode_message(refusal))


def _pinned_key_changed() -> None:
    pinned = generate_for("other server").public_key
    server = handshake.ServerHandshake(generate_for("server"), "toy")
    client = handshake.ClientHandshake(generate_for("alice"), "toy", expected_server_key=pinned)
    for message in server.receive(client.start()):
        client.receive(message)


def _known_server_key_changed(tmp_path: Path) -> Callable[[], object]:
    known = KnownServers(tmp_path / "known_servers.csv")
    known.check(HOST, 5000, generate_for("server").public_key)
    return lambda: known.check(HOST, 5000, generate_for("other server").public_key)


def _pool_exhausted() -> None:
    pool = PortPool.reserve(1, HOST)
    try:
        with pool.lease(timeout=0):
            pool.lease(timeout=0)
    finally:
        pool.close()


def _tampered_frame() -> None:
    key = bytes(32)
    sealed = bytearray(AeadCipher(key).seal(b"hello"))
    sealed[0] ^= 1
    AeadCipher(key).open(bytes(sealed))


def _cut_frame() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(HEADER.pack(10) + b"abc")
        left.close()
        right.settimeout(2)
        FrameReader(1024).read(right)


#: (name, the action that raises it, its class, values its text must name)
CASES = [
    ("KeyNotAllowed, server", _not_allowed_on_the_server, KeyNotAllowed, ["SHA256:"]),
    ("KeyNotAllowed, from the server", _not_allowed_from_the_server, KeyNotAllowed,
     ["labcrypto allow add NAME NAME.pub"]),
    ("ServerKeyChanged, pinned", _pinned_key_changed, ServerKeyChanged, ["SHA256:"]),
    ("InvalidPublicValue", lambda: validate_public(TOY, 1), InvalidPublicValue, ["1"]),
    ("InvalidPublicValue, p-1", lambda: validate_public(TOY, TOY.p - 1), InvalidPublicValue,
     ["p-1"]),
    ("PoolExhausted", _pool_exhausted, PoolExhausted, ["127.0.0.1:"]),
    ("DecryptionFailed", _tampered_frame, DecryptionFailed, ["0"]),
    ("ConnectionLost", _cut_frame, ConnectionLost, ["3", "10"]),
    ("MalformedJSON", lambda: jsonwire.decode(b'{"a": 1} x', 100), MalformedJSON, ["9"]),
    ("MalformedJSON, a key twice", lambda: jsonwire.decode(b'{"a":1,"a":2}', 100),
     MalformedJSON, ['"a"']),
    ("HandoffFailed", lambda: _port_fields({"port": 70000, "ticket": "t"}), HandoffFailed,
     ["70000"]),
]  # fmt: skip


def assert_russian_and_named(error: LabCryptoError, names: list[str]) -> str:
    text = str(error)
    assert _CYRILLIC.search(text), text
    assert english_prose(text) == [], text
    for value in names:
        assert value in text, (value, text)
    assert "{" not in text.replace("{...}", ""), f"a placeholder left unfilled: {text}"
    english = in_english(error)
    assert not _CYRILLIC.search(english), english
    assert error.args == (english,) and repr(error) == f"{type(error).__name__}({text!r})"
    for value in names:
        assert value in english, (value, english)
    return text


@pytest.mark.parametrize(("action", "kind", "names"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_an_error_reads_russian_in_a_russian_notebook(action, kind, names) -> None:
    error = raised(action, kind)
    assert_russian_and_named(error, names)


def test_a_changed_server_key_warns_in_russian_and_names_both_fingerprints(tmp_path) -> None:
    error = raised(_known_server_key_changed(tmp_path), ServerKeyChanged)
    text = assert_russian_and_named(error, [f"{HOST}:5000", str(tmp_path)])
    assert text.startswith("ВНИМАНИЕ") and text.count("SHA256:") == 2


def test_the_same_error_reads_english_again_in_an_english_process() -> None:
    error = raised(_pool_exhausted, PoolExhausted)
    russian = str(error)
    i18n.set_language("en")
    assert str(error) == in_english(error) != russian
    assert str(error).startswith("no free port in 127.0.0.1:")


def test_an_error_survives_pickling_with_both_languages() -> None:
    error = raised(lambda: validate_public(TOY, 1), InvalidPublicValue)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidPublicValue and isinstance(copy, ValueError)
    assert str(copy) == str(error) and copy.args == error.args


def test_a_translation_that_lost_a_placeholder_falls_back_to_english(monkeypatch) -> None:
    error = raised(_pool_exhausted, PoolExhausted)
    monkeypatch.setattr("labcrypto.errors.gettext", lambda text: "нет порта {nothing}")
    assert str(error) == in_english(error)


# --- refusals from a server: said from their code ------------------------------------


def test_a_busy_pool_is_said_from_its_code_not_the_servers_words() -> None:
    message = {
        "type": "busy",
        "text": "server busy: no free port in 127.0.0.1:5000-5000 (words of the server)",
        "code": "no free port",
        "params": {"range": "127.0.0.1:5000-5000", "size": 1, "leased": 1, "held": 0},
    }
    text = assert_russian_and_named(busy_error(message), ["127.0.0.1:5000-5000"])
    assert "words of the server" not in text


def test_an_unknown_busy_code_shows_the_servers_words_quoted() -> None:
    for message in (
        {"type": "busy", "text": "full\x1b[2J, come back later", "code": "mystery", "params": {}},
        {"type": "busy", "text": "full\x1b[2J, come back later"},
        {"type": "busy", "text": "x", "code": "no free port", "params": {"range": "r"}},
    ):
        text = str(busy_error(message))
        assert "сервер занят" in text and "\x1b" not in text
        assert english_prose(text) == [], text  # the server's words are there, quoted


def test_an_unknown_handshake_error_code_shows_the_servers_words_quoted() -> None:
    client = handshake.ClientHandshake(generate_for("alice"), "toy")
    client.start()
    refusal = {"type": "error", "code": "maintenance", "message": "back at five\x1b[2J"}
    error = raised(lambda: client.receive(handshake.encode_message(refusal)), HandshakeError)
    assert_russian_and_named(error, ['"maintenance"', '"back at five\\x1b[2J"'])


# --- a server in a Russian process: a Russian student, an English log ---------------


@pytest.fixture
def room(tmp_path: Path, no_leaks: None) -> Iterator[tuple[ChatServer, dict]]:
    people = {name: generate_for(name) for name in ("server", "alice", "mallory")}
    allow = Allowlist(tmp_path / "allowlist.csv", TOY)
    allow.add("alice", people["alice"].public_key)
    pool = PortPool.reserve(1, HOST)
    server = ChatServer(people["server"], allow, mode="toy", pool=pool).start()
    yield server, people
    server.stop()
    pool.close()


def _join(server: ChatServer, key) -> ChatClient:
    return ChatClient.connect(
        HOST, server.port, key, mode="toy", server_key=server.key.public_key, timeout=5
    )


def test_a_russian_server_refuses_and_logs_in_english_while_its_student_reads_russian(
    room,
) -> None:
    server, people = room
    error = raised(lambda: _join(server, people["mallory"]), KeyNotAllowed)
    assert_russian_and_named(error, ["labcrypto allow add"])
    with _join(server, people["alice"]):
        busy = raised(lambda: _join(server, people["alice"]), PoolExhausted)
        assert_russian_and_named(busy, [f"{HOST}:"])
        assert "сервер занят" in str(busy)
    assert wait_until(lambda: {"rejected", "busy"} <= {event.kind for event in server.events})
    logged = [event.text for event in server.events if event.kind in ("rejected", "busy")]
    assert any("is not on the allowlist" in text for text in logged), logged
    assert any("no free port" in text for text in logged), logged
    assert not any(_CYRILLIC.search(event.text) for event in server.events), server.events


def test_a_socket_error_inside_a_lab_error_is_kept_as_the_system_said_it() -> None:
    reason = ConnectionResetError(104, "Connection reset by peer")
    lost = i18n.N_("lost the chat connection: {error}; connect again")
    error = ConnectionLost(lost, error=reason)
    assert "Connection reset by peer" in str(error) and _CYRILLIC.search(str(error))


def test_a_nested_lab_error_speaks_the_same_language_as_its_outer_one() -> None:
    inner = raised(lambda: jsonwire.decode(b"", 100), MalformedJSON)
    outer = handshake.MalformedMessage(i18n.N_("handshake message: {error}"), error=inner)
    assert english_prose(str(outer)) == [] and _CYRILLIC.search(str(outer))
    assert in_english(outer) == "handshake message: " + in_english(inner)


# --- the file service: refusals said from their code ---------------------------------


@pytest.fixture
def files(
    tmp_path: Path, secure_keys, no_leaks: None
) -> Iterator[tuple[FileServer, FileClient]]:
    allow = Allowlist(tmp_path / "allowlist.csv")
    allow.add("alice", secure_keys("alice").public_key)
    server = FileServer(secure_keys("server"), allow, tmp_path / "root", max_upload=100).start()
    client = FileClient(
        HOST, server.port, secure_keys("alice"), server_key=secure_keys("server").public_key
    )
    yield server, client
    server.stop()


def test_the_file_service_refuses_in_russian_and_logs_in_english(files, tmp_path) -> None:
    server, client = files
    client.mkdir("docs")
    missing = raised(lambda: client.rm("/docs/nothing.txt"), FileServiceError)
    assert_russian_and_named(missing, ["/docs/nothing.txt", "ls"])
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 101)
    too_large = raised(lambda: client.put(big, "big.bin"), UploadTooLarge)
    assert_russian_and_named(too_large, ["101", "100"])
    (tmp_path / "root" / "alice" / "docs" / "etc").symlink_to("/etc")
    link = raised(lambda: client.cat("docs/etc/passwd"), PathOutsideHome)
    assert_russian_and_named(link, ["/docs/etc"])
    above = raised(lambda: client.cd("../.."), PathOutsideHome)
    assert_russian_and_named(above, ["'../..'"])
    assert wait_until(lambda: sum(event.kind == "denied" for event in server.events) >= 3)
    denied = [event.text for event in server.events if event.kind == "denied"]
    assert any("no such file or folder" in text for text in denied), denied
    assert not any(_CYRILLIC.search(event.text) for event in server.events), server.events


def test_a_file_refusal_with_an_unknown_code_shows_the_servers_words_quoted() -> None:
    for reply in (
        {"ok": False, "error": "PathOutsideHome", "message": "nope\x1b[2J", "code": "new"},
        {"ok": False, "error": "QuotaExceeded", "message": "nope\x1b[2J"},
        {"ok": False, "error": "FileServiceError", "message": "nope\x1b[2J",
         "code": "not found", "params": {}},  # its values missing
    ):  # fmt: skip
        error = raised(lambda reply=reply: raise_if_error(reply), FileServiceError)
        assert type(error).__name__ == reply["error"]
        text = assert_russian_and_named(error, ['"nope\\x1b[2J"'])
        assert "\x1b" not in text


def test_a_file_refusal_from_a_hostile_server_is_quoted_where_it_could_act() -> None:
    reply = {"ok": False, "error": "FileServiceError", "message": "x", "code": "not found",
             "params": {"path": "/a\x1b]0;owned\x07"}}  # fmt: skip
    error = raised(lambda: raise_if_error(reply), FileServiceError)
    assert "\x1b" not in str(error) and "\x07" not in str(error)
    assert '"/a\\x1b]0;owned\\x07"' in str(error)


# --- the man in the middle writes his notes in the notebook's language -------------------


def test_mallorys_notes_are_russian_when_the_allowlist_stops_him(room) -> None:
    server, people = room
    mallory = ManInTheMiddle(generate_for("third"))
    with Wiretap(server.address, policy=mallory, name="i18n-mitm").start() as tap:
        alice = people["alice"]
        connect = lambda: ChatClient.connect(  # noqa: E731
            *tap.address, alice, mode="toy", known_servers=False, timeout=5
        )
        raised(connect, KeyNotAllowed)
        assert wait_until(lambda: bool(mallory.failures))
    note = mallory.failures[0]
    assert note.startswith("#") and "сервер отказал «человеку посередине»" in note, note
    assert english_prose(note) == [], note


# --- sentences the notebooks' code builds ------------------------------------------------

NOTEBOOK_SOURCES = Path(__file__).resolve().parent.parent / "notebooks" / "src"


def _sentence_templates() -> list[str]:
    """The template of every ``vocabulary.sentence("...", ...)`` call in the notebooks' code."""
    found = []
    for source in sorted(NOTEBOOK_SOURCES.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sentence"
            ):
                assert node.args and isinstance(node.args[0], ast.Constant), ast.unparse(node)
                found.append(node.args[0].value)
    return found


def test_every_sentence_a_notebook_builds_has_its_russian() -> None:
    templates = _sentence_templates()
    assert len(set(templates)) >= 10, templates  # 01, 03, 04, 05 build sentences
    assert set(templates) <= vocabulary.SENTENCES, set(templates) - vocabulary.SENTENCES
    for template in templates:
        assert _CYRILLIC.search(i18n.gettext(template)), template


def test_a_sentence_reads_russian_and_keeps_its_values() -> None:
    said = vocabulary.sentence("timed {first} to {last} bits in {seconds:.1f} s",
                               first=8, last=23, seconds=2.54)  # fmt: skip
    assert said == "замерено от 8 до 23 бит за 2,5 с"  # a decimal comma in Russian
    pool = vocabulary.sentence(
        "{visitors} visitors, {busy} busy answers, {leased} ports still leased",
        visitors=16, busy=3, leased=0,
    )
    assert english_prose(pool) == [] and all(str(n) in pool for n in (16, 3, 0)), pool
    error = raised(_tampered_frame, DecryptionFailed)
    opened = vocabulary.sentence("cannot open it: {error}", error=error)
    assert english_prose(opened) == [] and _CYRILLIC.search(opened), opened
    i18n.set_language("en")
    assert vocabulary.sentence("data port {port}", port=5001) == "data port 5001"
    assert vocabulary.sentence("not listed {x}", x=1) == "not listed 1"  # shown as written


# --- key files, the allowlist, known servers: what notebooks 01 and 03 meet ----------------


def test_key_file_and_allowlist_errors_read_russian(tmp_path: Path) -> None:
    alice = generate_for("alice")
    key_path, _ = keys.save(alice, "alice", tmp_path)
    os.chmod(key_path, 0o644)
    readable = raised(lambda: keys.load("alice", tmp_path), KeyFileError)
    assert_russian_and_named(readable, [f"chmod 600 {key_path}", "0644"])
    pin = raised(lambda: keys.parse_fingerprint("SHA256:short"), BadKeyText)
    assert isinstance(pin, ValueError)  # `except ValueError` still catches it
    assert_russian_and_named(pin, ["'SHA256:short'", "`labcrypto keygen`"])
    wrapped = raised(lambda: resolve_server_key("SHA256:short"), KeyFileError)
    assert_russian_and_named(wrapped, ["server_key", "'SHA256:short'"])
    name = raised(lambda: keys.key_paths("ivan@uni.ru", tmp_path), BadKeyName)
    assert isinstance(name, ValueError)  # `except ValueError` still catches it
    assert_russian_and_named(name, ["'ivan@uni.ru'", "'_', '-'"])
    allow = Allowlist(tmp_path / "allowlist.csv", TOY)
    allow.add("alice", alice.public_key)
    wrong_name = raised(lambda: allow.add("ivan@uni.ru", generate_for("server").public_key),
                        AllowlistError)  # fmt: skip
    assert_russian_and_named(wrong_name, ["'ivan@uni.ru'"])
    twice = raised(lambda: allow.add("Alice", generate_for("third").public_key), AllowlistError)
    assert_russian_and_named(twice, ["'Alice'", str(tmp_path / "allowlist.csv")])
    missing = raised(lambda: allow.remove("bob"), NameNotOnAllowlist)
    assert_russian_and_named(missing, ["'bob'", "alice"])
    (tmp_path / "known_servers.csv").write_text("127.0.0.1:5000,not a key\n")
    damaged = raised(
        lambda: KnownServers(tmp_path / "known_servers.csv").check(HOST, 5000, alice.public_key),
        KnownServersError,
    )
    assert_russian_and_named(damaged, ["127.0.0.1:5000"])
    unknown = raised(lambda: get_group("ffdhe1024"), UnknownGroup)
    assert_russian_and_named(unknown, ["'ffdhe1024'", "ffdhe2048"])


def test_each_file_refusal_code_means_one_thing() -> None:
    tables = (atomic_file.REFUSALS, jail.REFUSALS, wire.REFUSALS)
    codes = [code for table in tables for code in table]
    assert len(codes) == len(set(codes)) == len(wire.ALL_REFUSALS)
    templates = list(wire.ALL_REFUSALS.values())
    assert len(templates) == len(set(templates)), "one template, one code (error_reply finds it)"


# --- waits that ran out, and nobody listening: still Python's own kinds -------------------


def test_nobody_listening_and_no_answer_read_russian_and_stay_what_python_calls_them() -> None:
    with socket.socket() as probe:  # a port that nothing listens on: bound, never listening
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        refused = raised(lambda: connect(HOST, port, timeout=2), NotListening)
    assert isinstance(refused, ConnectionRefusedError) and not isinstance(refused, LabCryptoError)
    assert_russian_and_named(refused, [f"{HOST}:{port}"])
    with socket.socket() as silent:  # listens, accepts (the kernel does), never answers
        silent.bind((HOST, 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with connect(HOST, port, timeout=2) as sock:
            late = raised(lambda: _handshake_of(sock, port), NoAnswer)
    assert isinstance(late, TimeoutError) and not isinstance(late, LabCryptoError)
    assert_russian_and_named(late, [f"{HOST}:{port}", "0.3"])
    copy = pickle.loads(pickle.dumps(late))
    assert type(copy) is NoAnswer and str(copy) == str(late)


def _handshake_of(sock: socket.socket, port: int) -> object:
    from labcrypto.client import _handshake

    return _handshake(sock, generate_for("alice"), "toy", None, 0.3, HOST, port)


def test_a_labelled_dict_shows_its_keys_in_russian_and_its_values_as_they_are() -> None:
    shown = vocabulary.labelled({"the server logged": "refused: key", "nobody's key": 1})
    assert shown == {"сервер записал в журнал": "refused: key", "nobody's key": 1}


def test_a_handshake_fed_out_of_order_says_so_in_russian() -> None:
    server = handshake.ServerHandshake(generate_for("server"), "toy")
    finished = handshake.encode_message({"type": "client_finished", "confirm": "0" * 64})
    error = raised(lambda: server.receive(finished), handshake.UnexpectedMessage)
    assert_russian_and_named(error, ["'client_finished'"])
    again = raised(lambda: server.receive(finished), handshake.UnexpectedMessage)
    assert "начните новое" in assert_russian_and_named(again, ["'failed'"])
