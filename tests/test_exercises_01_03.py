"""Wrong answers a student pass of the Russian edition found in notebooks 01-03.

Each test is one answer a student wrote that a check mishandled: passed it, named
another mistake, or hung the kernel. Each runs the check in English and in Russian
(``assert_named_in_russian``): the message names the real mistake in both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_i18n_checks import _language_restored, assert_named_in_russian, failure_in

from labcrypto import groups, keys
from labcrypto.lab import checks_01_keys, checks_02_exchange, checks_03_allowlist
from labcrypto.lab.feedback import whole_power_in

__all__ = ["_language_restored"]  # the fixture that puts the language back, used here too

KEYS = "6 · Упражнение: свой файл ключа"
SECRET = "3 · Упражнение: общий секрет и значения, которые надо отвергать"
PUBLIC = "2 · Упражнение: вычислите открытое значение"


class Ran(Exception):
    """Raised by a wrong answer if the check runs it at all."""


# --- a power without its modulus: refused before it runs -------------------------------


def _public_value_whole(group, a):
    if group is not None:
        raise Ran  # the check must refuse it from its code: running it hangs the kernel
    return pow(group.g, a) % group.p


def _shared_secret_whole(group, my_secret, peer_public):
    groups.validate_public(group, peer_public)
    if group is not None:
        raise Ran
    return peer_public**my_secret % group.p


def _key_file_whole(path, group=groups.FFDHE2048):
    if group is not None:
        raise Ran
    private = keys.generate(group).private
    return keys.KeyPair(group, private, pow(group.g, private) % group.p)


def _dh_client_whole(sock, min_bits=2048):
    if sock is not None:
        raise Ran
    hello = {"p": 23, "g": 5, "B": 8}
    a = 6
    big_k = hello["B"] ** a
    return big_k % hello["p"]


def _dh_server_whole(sock, group):
    if sock is not None:
        raise Ran
    b = group.random_exponent(__import__("secrets").randbelow)
    return pow(group.g, b) % group.p


@pytest.mark.parametrize(
    ("check", "answer", "written"),
    [
        (checks_01_keys.check_public_value, _public_value_whole, "pow(group.g, a)"),
        (checks_01_keys.check_shared_secret, _shared_secret_whole, "peer_public**my_secret"),
        (checks_01_keys.check_load_or_create_key, _key_file_whole, "pow(group.g, private)"),
        (checks_02_exchange.check_dh_client, _dh_client_whole, 'hello["B"] ** a'),
        (checks_03_allowlist.check_dh_server, _dh_server_whole, "pow(group.g, b)"),
    ],
)
def test_a_power_without_its_modulus_is_refused_before_it_runs(check, answer, written) -> None:
    """``pow(B, a) % p`` never ends in C holding the interpreter's lock, so no deadline
    of a check stops it: the kernel hung for good (shared_secret), or a "2 s" check took
    30 s and blamed a loop (public_value). The check reads the code and refuses it."""
    start = time.monotonic()
    message = assert_named_in_russian(
        check,
        (answer,),
        ["computes a power without a modulus", f"`{written}`", "third argument"],
        ["возводит в степень без модуля", f"`{written}`", "третьим аргументом"],
        {
            "01_keys": {
                checks_01_keys.check_public_value: PUBLIC,
                checks_01_keys.check_shared_secret: SECRET,
                checks_01_keys.check_load_or_create_key: KEYS,
            }.get(check, ""),
            "02_exchange": "Упражнение: обмен из курса по TCP, но правильно",
            "03_allowlist": "Упражнение: серверная половина обмена",
        }[check.section.notebook],
    )
    assert "ядро зависло бы" in message
    assert time.monotonic() - start < 5


def test_a_power_is_refused_in_a_helper_the_answer_calls() -> None:
    def power(base, exponent, modulus):
        return base**exponent % modulus

    def public_value(group, a):
        return power(group.g, a, group.p)

    assert whole_power_in(public_value) == "base**exponent"


def test_powers_that_end_quickly_are_not_refused() -> None:
    def fine(sock, min_bits=2048, p=23, g=5, a=6):
        x = 2**min_bits
        y = p**2
        z = pow(g, a, p) + pow(g, a, mod=p) + pow(2, min_bits) + pow(p, 2)
        return x + y + z + (1 << min_bits)

    assert whole_power_in(fine) is None
    assert whole_power_in(lambda group, a: pow(group.g, a, group.p)) is None


# --- notebook 01: shared_secret --------------------------------------------------------


def _refuses_with(exception):
    def shared_secret(group, my_secret, peer_public):
        if not 1 < peer_public < group.p - 1 or pow(peer_public, group.q, group.p) != 1:
            raise exception
        return pow(peer_public, my_secret, group.p)

    return shared_secret


def test_a_value_refused_with_an_assert_is_named() -> None:
    """An assert used to refuse a value ended the check with a bare AssertionError and no
    words: the student took it for the refusal working."""

    def shared_secret(group, my_secret, peer_public):
        assert 1 < peer_public < group.p - 1 and pow(peer_public, group.q, group.p) == 1
        return pow(peer_public, my_secret, group.p)

    assert_named_in_russian(
        checks_01_keys.check_shared_secret,
        (shared_secret,),
        ["but with AssertionError(", "catches ValueError", "python -O"],
        ["но через AssertionError(", "ловит ValueError", "python -O"],
        SECRET,
    )


def test_a_value_refused_with_another_exception_is_named() -> None:
    message = assert_named_in_russian(
        checks_01_keys.check_shared_secret,
        (_refuses_with(Exception("плохое значение")),),
        ["but with Exception('плохое значение')", "catches ValueError"],
        ["но через Exception('плохое значение')", "ловит ValueError"],
        SECRET,
    )
    assert "python -O" not in message
    checks_01_keys.check_shared_secret(_refuses_with(ValueError("bad")))


def test_a_refusal_by_returning_none_says_none() -> None:
    """It said "returned a number instead of refusing it" of a None."""

    def shared_secret(group, my_secret, peer_public):
        try:
            groups.validate_public(group, peer_public)
        except ValueError:
            return None
        return pow(peer_public, my_secret, group.p)

    message = assert_named_in_russian(
        checks_01_keys.check_shared_secret,
        (shared_secret,),
        ["returned None instead of refusing it", "course mistake 1"],
        ["вернула None вместо отказа"],
        SECRET,
    )
    assert "число" not in message.split("вместо")[0]


def test_the_notebook_s_p_inside_the_function_is_named() -> None:
    p, g = groups.TOY.p, groups.TOY.g  # the notebook's globals, as the function sees them

    def shared_secret(group, my_secret, peer_public):
        groups.validate_public(group, peer_public)
        return pow(peer_public, my_secret, p)

    def public_value(group, a):
        return pow(g, a, p)

    assert_named_in_russian(
        checks_01_keys.check_shared_secret,
        (shared_secret,),
        ["p = 23 of the cells above", "group.p"],
        ["p = 23 из ячеек выше", "group.p"],
        SECRET,
    )
    assert_named_in_russian(
        checks_01_keys.check_public_value,
        (public_value,),
        ["p = 23 or g = 5 of the cells above", "group.g"],
        ["p = 23 или g = 5 из ячеек выше", "group.g"],
        PUBLIC,
    )


# --- notebook 01: load_or_create_key ----------------------------------------------------


def _key_file(group_of_new=None, public_on_reload=None):
    def load_or_create_key(path, group=groups.FFDHE2048):
        group = group_of_new or group
        path = Path(path)
        if path.exists():
            private = keys.parse_number(path.read_text().split(":", 1)[1])
            public = (public_on_reload or (lambda grp, x: pow(grp.g, x, grp.p)))(group, private)
            return keys.KeyPair(group, private, public)
        pair = keys.generate(group)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w") as file:
            file.write(f"private: {pair.private:#x}\n")
        return pair

    return load_or_create_key


def test_a_pair_rebuilt_wrong_from_the_file_fails() -> None:
    """The reloaded pair was never checked: a public value built as private^g on reload
    passed the check and the hidden test."""
    swapped = _key_file(public_on_reload=lambda grp, x: pow(x, grp.g, grp.p))
    assert_named_in_russian(
        checks_01_keys.check_load_or_create_key,
        (swapped,),
        ["rebuilt from the file does not fit together"],
        ["восстановила из файла, не сходится"],
        KEYS,
    )
    assert "A hidden test of this exercise failed" in failure_in(
        "en", checks_01_keys.hidden_key_file, swapped
    )
    checks_01_keys.check_load_or_create_key(_key_file())


def test_a_key_in_the_toy_group_is_named_as_such() -> None:
    """keys.generate(groups.TOY) draws from secrets: the message blamed a small secret
    and told the student to use keys.generate, which they did."""
    message = assert_named_in_russian(
        checks_01_keys.check_load_or_create_key,
        (_key_file(group_of_new=groups.TOY),),
        ["The key is in toy23", "2048-bit group"],
        ["Ключ в группе toy23", "2048-битной группе"],
        KEYS,
    )
    assert "типичная ошибка № 2" not in message


def test_a_key_saved_elsewhere_reads_as_russian() -> None:
    """The folder's listing was a Python list, or «в папке лежит: пусто»."""

    def elsewhere(path, group=groups.FFDHE2048):
        return keys.generate(group)

    message = failure_in("ru", checks_01_keys.check_load_or_create_key, elsewhere)
    assert "во всей его папке тоже ничего нет" in message, message
    assert "пусто" not in message and "[" not in message


# --- notebook 02: framing ----------------------------------------------------------------

FRAMES = "2 · Упражнение: кадры в потоке"
EXCHANGE = "Упражнение: обмен из курса по TCP, но правильно"
MAX_MESSAGE = 1 << 20


def _send_msg(sock, data: bytes) -> None:
    sock.sendall(len(data).to_bytes(4, "big") + data)


def _recv_exactly(sock, count: int) -> bytes:
    buffer = b""
    while len(buffer) < count:
        chunk = sock.recv(count - len(buffer))
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    return buffer


def _recv_msg(sock, limit_refused=lambda length: length > MAX_MESSAGE) -> bytes:
    length = int.from_bytes(_recv_exactly(sock, 4), "big")
    if limit_refused(length):
        raise ValueError("too big")
    return _recv_exactly(sock, length)


def test_a_message_of_exactly_the_limit_is_let_through(no_leaks) -> None:
    """``length >= MAX_MESSAGE`` refused the largest message allowed and passed."""
    assert_named_in_russian(
        checks_02_exchange.check_framing,
        (_send_msg, lambda sock: _recv_msg(sock, lambda length: length >= MAX_MESSAGE)),
        ["exactly max_message = 1048576 bytes is allowed", "length > max_message"],
        ["ровно в max_message = 1048576 байт разрешено", "length > max_message"],
        FRAMES,
    )
    checks_02_exchange.check_framing(_send_msg, _recv_msg)


def test_a_recv_msg_that_returns_str_is_told_to_return_bytes(no_leaks) -> None:
    """It was told that a delimiter such as '\\n' can occur inside the data."""
    message = assert_named_in_russian(
        checks_02_exchange.check_framing,
        (_send_msg, lambda sock: _recv_msg(sock).decode("utf-8", "replace")),
        ["returned str 'two\\nlines'", "bytes, not str"],
        ["вернула str 'two\\nlines'", "bytes, а не str"],
        FRAMES,
    )
    assert "Разделитель" not in message


def test_a_send_whose_result_is_ignored_fails(no_leaks) -> None:
    """Two bare sock.send calls passed: on loopback they happen to send everything."""

    def send_msg(sock, data):
        sock.send(len(data).to_bytes(4, "big"))
        sock.send(data)

    def send_msg_counting(sock, data):
        data = len(data).to_bytes(4, "big") + data
        while data:
            sent = sock.send(data)
            data = data[sent:]

    assert_named_in_russian(
        checks_02_exchange.check_framing,
        (send_msg, _recv_msg),
        ["`sock.send(len(data).to_bytes(4, \"big\"))` and ignores what it returns", "sendall"],
        ["не смотрит, что тот вернул", "sendall"],
        FRAMES,
    )
    checks_02_exchange.check_framing(send_msg_counting, _recv_msg)


# --- notebook 02: dh_client ---------------------------------------------------------------


def _dh_client(*, bits_refused=None, returned=None, waits=False, sends=True):
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    def dh_client(sock, min_bits=2048):
        hello = json.loads(read_frame(sock))
        p, g, big_b = hello["p"], hello["g"], hello["B"]
        if (bits_refused or (lambda bits: bits < min_bits))(p.bit_length()):
            raise ValueError("p too small")
        if not groups.is_probable_prime(p) or not groups.is_probable_prime((p - 1) // 2):
            raise ValueError("p is not a safe prime")
        group = groups.Group("offered", p, g, (p - 1) // 2)
        groups.validate_public(group, g)
        groups.validate_public(group, big_b)
        a = group.random_exponent(secrets.randbelow)
        if sends:
            write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
        if waits:
            read_frame(sock)
        shared = pow(big_b, a, p)
        return returned(shared) if returned else shared

    return dh_client


def test_a_p_of_exactly_min_bits_refused_is_an_off_by_one(no_leaks) -> None:
    """``<= min_bits`` was told it read one recv(1024) as one message (the hello had
    arrived whole)."""
    min_bits = {}

    def at_most(bits):
        return bits <= min_bits["value"]

    def dh_client(sock, min_bits_given=2048):
        min_bits["value"] = min_bits_given
        return _dh_client(bits_refused=at_most)(sock, min_bits_given)

    message = assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (dh_client,),
        ["with min_bits = 63 it accepted the same group", "p.bit_length() < min_bits"],
        ["при min_bits = 63 приняла ту же группу", "p.bit_length() < min_bits"],
        EXCHANGE,
    )
    assert "recv(1024)" not in message


def test_a_fair_group_refused_is_not_blamed_on_framing(no_leaks) -> None:
    message = assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_client(bits_refused=lambda bits: bits < 100),),
        ["on a fair server: p is a 64-bit safe prime", "refuses a group it must accept"],
        ["хотя сервер был честным: p — 64-битное безопасное простое", "должна принимать"],
        EXCHANGE,
    )
    assert "recv(1024)" not in message


def test_k_returned_as_bytes_is_told_to_be_an_int(no_leaks) -> None:
    """It was told the server computed another K, with the repr cut inside an escape."""
    message = assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_client(returned=lambda k: k.to_bytes(256, "big")),),
        ["dh_client returned bytes b'\\x00", "…: return K itself, the int"],
        ["dh_client вернула bytes b'\\x00", "должна вернуть сам K — целое число"],
        EXCHANGE,
    )
    assert "другое K" not in message


def test_a_client_waiting_after_its_a_is_told_so(no_leaks) -> None:
    """It was asked whether it read one recv(1024) as one message."""
    message = assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_client(waits=True),),
        ["sent its A and then kept waiting", "Return K once A is sent"],
        ["отправила своё A и потом ещё", "Отправив A, верните K"],
        EXCHANGE,
    )
    assert "recv(1024)" not in message


def test_a_client_that_sends_nothing_is_told_so(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_client(sends=False),),
        ["returned without sending anything"],
        ["ничего не отправив"],
        EXCHANGE,
    )
    checks_02_exchange.check_dh_client(_dh_client())


# --- notebook 03 ----------------------------------------------------------------------------

DH_SERVER = "Упражнение: серверная половина обмена"
ALLOWED = "6 · Упражнение: проверка по списку"
SERVE_ONE = "Упражнение: проверка внутри рукопожатия"
JOIN = "7 · Упражнение: новый студент"


def test_k_returned_as_str_by_dh_server_is_told_to_be_an_int(no_leaks) -> None:
    """It was told the client computed another K and to use the b of its B."""
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    def dh_server(sock, group):
        b = group.random_exponent(secrets.randbelow)
        write_frame(sock, json.dumps({"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)})
                    .encode())  # fmt: skip
        public = json.loads(read_frame(sock)).get("A")
        if not isinstance(public, int):
            raise ValueError("no integer A")
        groups.validate_public(group, public)
        return str(pow(public, b, group.p))

    message = assert_named_in_russian(
        checks_03_allowlist.check_dh_server,
        (dh_server,),
        ["dh_server returned str '", "return K itself, the int"],
        ["dh_server вернула str '", "должна вернуть сам K — целое число"],
        DH_SERVER,
    )
    assert "другой K" not in message


def test_an_allowlist_row_returned_is_shown_cut() -> None:
    """The whole row was shown: a 2048-bit key in hex, 500 characters of it."""
    import csv

    from labcrypto.errors import LabCryptoError
    from labcrypto.keys import PublicKey

    def is_allowed(path, key):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                try:
                    if len(row) > 1 and PublicKey.from_text(row[1]) == key:
                        return row
                except (ValueError, LabCryptoError):
                    continue
        return None

    message = assert_named_in_russian(
        checks_03_allowlist.check_is_allowed,
        (is_allowed,),
        ["is_allowed returned ['alice'", "…; return True or False"],
        ["is_allowed вернула ['alice'", "…; возвращайте True или False"],
        ALLOWED,
    )
    assert len(message.splitlines()[1]) < 160, message


def test_a_name_python_does_not_know_in_is_allowed_is_named() -> None:
    """A NameError was blamed on the file's unreadable rows."""

    def is_allowed(path, key):
        return Path(path).exists() and keys_that_are_listed(path, key)  # noqa: F821

    message = assert_named_in_russian(
        checks_03_allowlist.check_is_allowed,
        (is_allowed,),
        ["NameError(", "Python does not know a name"],
        ["NameError(", "Python не знает имени"],
        ALLOWED,
    )
    assert "try/except" not in message


def _handshake(sock, handshake) -> None:
    from labcrypto.channel import read_frame, write_frame

    while not handshake.done:
        for reply in handshake.receive(read_frame(sock)):
            write_frame(sock, reply)


def test_a_refusal_swallowed_by_serve_one_fails(no_leaks) -> None:
    """A serve_one that sent the refusal and then returned None passed."""
    from labcrypto.allowlist import Allowlist
    from labcrypto.channel import SecureChannel, write_frame
    from labcrypto.errors import LabCryptoError
    from labcrypto.handshake import ServerHandshake

    def serve_one(sock, server_key, allowlist_path):
        handshake = ServerHandshake(server_key, allow=Allowlist(allowlist_path).is_allowed)
        try:
            _handshake(sock, handshake)
        except LabCryptoError as exc:
            write_frame(sock, ServerHandshake.error_message(exc))
            return None
        channel = SecureChannel(sock, handshake.session)
        channel.send("welcome")
        return channel

    assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (serve_one,),
        ["returned None instead of raising the error again", "course mistake 11"],
        ["вернула None, а не выбросила ошибку снова", "типичная ошибка № 11"],
        SERVE_ONE,
    )


def test_a_welcome_sent_in_plain_bytes_is_named(no_leaks) -> None:
    from labcrypto.allowlist import Allowlist
    from labcrypto.channel import SecureChannel, write_frame
    from labcrypto.handshake import ServerHandshake

    def serve_one(sock, server_key, allowlist_path):
        handshake = ServerHandshake(server_key, allow=Allowlist(allowlist_path).is_allowed)
        _handshake(sock, handshake)
        write_frame(sock, b"welcome")
        return SecureChannel(sock, handshake.session)

    assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (serve_one,),
        ["sent 'welcome' as plain bytes", "anyone on the line reads it"],
        ["отправил 'welcome' открытыми байтами", "прочтёт любой на линии"],
        SERVE_ONE,
    )


def test_a_serve_one_that_reads_on_after_the_handshake_reads_as_a_sentence(no_leaks) -> None:
    """«ни одного зашифрованного сообщения не пришло, прежде чем serve_one так и не вернул
    управление»: the words for "never returned" do not fit that sentence."""
    from labcrypto.allowlist import Allowlist
    from labcrypto.channel import read_frame, write_frame
    from labcrypto.handshake import ServerHandshake

    def serve_one(sock, server_key, allowlist_path):
        handshake = ServerHandshake(server_key, allow=Allowlist(allowlist_path).is_allowed)
        while True:
            for reply in handshake.receive(read_frame(sock)):
                write_frame(sock, reply)

    message = assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (serve_one,),
        ["sent no encrypted message and did not end", "stop reading"],
        ["не отправила ни одного зашифрованного сообщения и не закончила работу"],
        SERVE_ONE,
    )
    assert "прежде чем serve_one так и не" not in message


def test_a_join_that_connects_to_another_room_is_told_so(no_leaks) -> None:
    """Dave connected to the notebook's own room: he was told to add his key to the list,
    which he had done."""
    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient, ChatServer

    with tempfile_dir() as tmp:
        other_key = keys.generate(groups.FFDHE2048)
        other_room = ChatServer(other_key, Allowlist(tmp / "other.csv"), name="other").start()
        try:

            def join(name, key_dir, allowlist_path, address, server_key):
                key = keys.load_or_create(name, key_dir)
                listed = Allowlist(allowlist_path)
                if not listed.is_allowed(key.public_key):
                    listed.add(name, key.public_key)
                return ChatClient.connect(
                    *other_room.address, key, server_key=other_key.public_key, timeout=5
                )

            message = assert_named_in_russian(
                checks_03_allowlist.check_join_as_new_student,
                (join,),
                ["not the server at the address your function was given", "`address`"],
                ["не тот, что по выданному вашей функции адресу", "`address`"],
                JOIN,
            )
        finally:
            other_room.stop()
    assert "Добавьте *открытый* ключ" not in message


def tempfile_dir():
    import contextlib
    import tempfile

    @contextlib.contextmanager
    def made() -> Path:
        with tempfile.TemporaryDirectory(prefix="labcrypto-test-") as tmp:
            yield Path(tmp)

    return made()


def test_notebook_02_says_how_many_keys_the_toy_group_has() -> None:
    """It said 20: twenty exponents, but keys.generate refuses the one whose public
    value is p-1, so there are 19 keys."""
    import re

    source = (Path(__file__).parent.parent / "notebooks/src/02_exchange.py").read_text("utf-8")
    stated = re.findall(r"toy group has only (\d+) keys|всего (\d+) ключей", source)
    toy = groups.TOY
    exponents = range(2, toy.q)  # what toy.random_exponent draws from
    publics = {pow(toy.g, x, toy.p) for x in exponents} - {1, toy.p - 1}  # as keys.generate
    assert len(stated) == 2, stated
    assert {int(en or ru) for en, ru in stated} == {len(publics)}


def test_a_russian_sentence_writes_a_decimal_comma() -> None:
    """01's timing said «замерено от 8 до 24 бит за 3.3 с»: Russian writes 3,3."""
    from labcrypto import i18n
    from labcrypto.lab import vocabulary

    template = "timed {first} to {last} bits in {seconds:.1f} s"
    try:
        i18n.set_language("ru")
        assert vocabulary.sentence(template, first=8, last=24, seconds=3.3) == (
            "замерено от 8 до 24 бит за 3,3 с"
        )
        i18n.set_language("en")
        assert vocabulary.sentence(template, first=8, last=24, seconds=3.3) == (
            "timed 8 to 24 bits in 3.3 s"
        )
    finally:
        i18n.set_language("en")


def test_a_key_file_made_private_only_after_writing_fails() -> None:
    """write_text, then chmod(0o600): the check's own message said this leaves a moment
    when others can read the key, and then let it pass."""

    def load_or_create_key(path, group=groups.FFDHE2048):
        path = Path(path)
        if path.exists():
            private = keys.parse_number(path.read_text().split(":", 1)[1])
            return keys.KeyPair(group, private, pow(group.g, private, group.p))
        pair = keys.generate(group)
        path.write_text(f"private: {pair.private:#x}\n")
        path.chmod(0o600)
        return pair

    assert_named_in_russian(
        checks_01_keys.check_load_or_create_key,
        (load_or_create_key,),
        ["only then makes it private (`path.chmod(0o600)`)", "course mistake 8"],
        ["только потом закрывает его от других (`path.chmod(0o600)`)"],
        KEYS,
    )
    assert "A hidden test of this exercise failed" in failure_in(
        "en", checks_01_keys.hidden_key_file, load_or_create_key
    )
    checks_01_keys.check_load_or_create_key(_key_file())  # os.open with 0o600: no chmod needed


def test_a_key_file_that_cannot_be_read_back_says_which_call() -> None:
    """Written as bare hex and read with int(text): a raw ValueError about a 64-digit
    literal, with nothing saying it came from reading back the function's own file."""

    def load_or_create_key(path, group=groups.FFDHE2048):
        path = Path(path)
        if path.exists():
            private = int(path.read_text().strip())
            return keys.KeyPair(group, private, pow(group.g, private, group.p))
        pair = keys.generate(group)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w") as file:
            file.write(f"{pair.private:x}")
        return pair

    message = assert_named_in_russian(
        checks_01_keys.check_load_or_create_key,
        (load_or_create_key,),
        ["the second call, reading that same file back, raised ValueError(", "int(text, 16)"],
        ["второй, читая этот же файл обратно, выбросил ValueError(", "int(text, 16)"],
        KEYS,
    )
    assert "private: 0x" not in message  # the key file's content is never shown


def test_a_float_answer_is_named_as_a_float() -> None:
    """float(pow(...)) passed every small case (2.0 == 2) and ended in a bare
    OverflowError; math.pow ended in 'math range error' with no word of floats."""
    import math

    assert_named_in_russian(
        checks_01_keys.check_public_value,
        (lambda group, a: float(pow(group.g, a, group.p)),),
        ["returned float 2.0; expected an int"],
        ["вернула float 2.0"],
        PUBLIC,
    )
    assert_named_in_russian(
        checks_01_keys.check_public_value,
        (lambda group, a: int(math.pow(group.g, a)) % group.p,),
        ["public_value raised OverflowError(", "a float (math.pow"],
        ["public_value выбросила OverflowError(", "число с плавающей точкой"],
        PUBLIC,
    )

    def shared_secret(group, my_secret, peer_public):
        groups.validate_public(group, peer_public)
        return float(pow(peer_public, my_secret, group.p))

    assert_named_in_russian(
        checks_01_keys.check_shared_secret,
        (shared_secret,),
        ["shared_secret returned float 2.0", "expected an int (K)"],
        ["shared_secret вернула float 2.0"],
        SECRET,
    )
