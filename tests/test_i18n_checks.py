"""A wrong answer in a Russian notebook gets a Russian message that names the mistake.

Notebooks 02-05, as tests/test_i18n.py does it for 01: each case is a mistake
students make (the course's list, or the checks' own tests), run by the check
twice. In English the message names the mistake in the check's own words; in
Russian (``LABCRYPTO_LANG=ru``, what a Russian notebook's first cell sets) it
names it in Russian words, points to the Russian edition's heading, and reads
as Russian throughout: no English sentence is left in it, only code (names,
calls, quoted values).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_i18n import _ENGLISH_PROSE
from test_notebook_helpers import (
    _cipher_class,
    _dh_2048_written_in,
    _dh_server,
    _dh_variant,
    _dh_with_secret,
    _dh_without,
    _guess_from_the_most_common_byte,
    _handler_naming_its_keys_keys,
    _handoff_to_the_handshake_port,
    _loop_that_stops_on_any_error,
    _offer_port,
    _pool_class,
    _random_secret,
    _request_handler,
    _serve_one,
    _ticket_before_rebind,
)

from labcrypto import i18n
from labcrypto.errors import LabCryptoError
from labcrypto.lab import (
    checks_02_exchange,
    checks_02b_chat,
    checks_03_allowlist,
    checks_04_two_ports,
    checks_05_ftp,
)
from labcrypto.lab.feedback import CheckFailed

#: Code inside a message: quoted values and reprs ('…', b'…', "…") and `…`.
_CODE = re.compile(r"b?'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")


def english_prose(message: str) -> list[str]:
    """The lines of ``message`` that still hold English prose once code is set aside."""
    return [line for line in _CODE.sub("", message).splitlines() if _ENGLISH_PROSE.search(line)]


def test_the_prose_finder_sees_english_and_lets_code_through() -> None:
    assert english_prose("Ваш клиент упал: read the frame with read_frame(sock).")
    assert not english_prose("Читайте кадр через read_frame(sock); ключ 'no free port' — код.")
    assert not english_prose("Вызов follow_handoff вернул {'type': 'busy'}.")


def failure_in(language: str, check: Callable[..., None], *args: Any) -> str:
    """The message of the check's failure on ``args``, with ``language`` chosen."""
    os.environ[i18n.ENV_VAR] = language
    with pytest.raises(CheckFailed) as failure:
        check(*args)
    return str(failure.value)


@pytest.fixture(autouse=True)
def _language_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The language every test here sets is put back afterwards."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(i18n.ENV_VAR, "en")


def assert_named_in_russian(
    check: Callable[..., None],
    args: tuple[Any, ...],
    english: list[str],
    russian: list[str],
    section: str,
) -> str:
    """The check fails on ``args`` in both languages, naming the mistake in each.

    ``english``: words of the English message; ``russian``: the Russian words
    that name the same mistake; ``section``: the Russian edition's heading the
    message must point to. Returns the Russian message.
    """
    message_en = failure_in("en", check, *args)
    for words in english:
        assert words in message_en, message_en
    message_ru = failure_in("ru", check, *args)
    for words in russian:
        assert words in message_ru, message_ru
    assert f"→ Объяснение: блокнот {check.section.notebook}, раздел «{section}»." in message_ru
    assert english_prose(message_ru) == [], message_ru
    cited = re.search(r"course mistake (\d+)", message_en)
    if cited:  # the same mistake, cited by its number in Russian, and where to read about it
        number = cited.group(1)
        assert f"типичная ошибка № {number}" in message_ru, message_ru
        assert f"→ Типичная ошибка № {number} и как её исправить" in message_ru
    return message_ru


# --- notebook 02 -------------------------------------------------------------------------

FRAMES = "2 · Упражнение: кадры в потоке"
EXCHANGE = "Упражнение: обмен из курса по TCP, но правильно"


def _send_msg(sock, data: bytes) -> None:
    sock.sendall(len(data).to_bytes(4, "big") + data)


def test_02_one_recv_taken_as_one_message(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_framing,
        (_send_msg, lambda sock: sock.recv(1024)[4:]),
        ["read one recv(1024) as one message", "course mistake 6"],
        ["приняла один recv(1024) за целое сообщение", "TCP не сохраняет границы сообщений"],
        FRAMES,
    )


def test_02_a_delimiter_instead_of_a_length(no_leaks) -> None:
    def send_line(sock, data: bytes) -> None:
        sock.sendall(data + b"\n")

    assert_named_in_russian(
        checks_02_exchange.check_framing,
        (send_line, lambda sock: sock.recv(1024)),
        ["There is no length in front"],
        ["Перед сообщением нет длины", "получатель не может узнать, где оно кончается"],
        FRAMES,
    )


def test_02_the_shared_secret_sent_to_compare(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_variant(check=False, send_k=True),),
        ["The shared secret was sent on the wire"],
        ["Общий секрет ушёл в сеть", "раздел «1 · Идея на маленьких числах»"],
        EXCHANGE,
    )


def test_02_a_pickle_on_the_wire(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_variant(check=False, pickled=True),),
        ["dh_client sent a pickle", "course mistake 7"],
        ["dh_client отправила pickle", "выполнить pickle.loads на байтах из сети"],
        EXCHANGE,
    )


def test_02_a_composite_p_accepted(no_leaks) -> None:
    message = assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_variant(check=False),),
        ["A hostile server", "answered with its public value", "p is not prime"],
        ["Враждебный сервер: ваш клиент ответил своим открытым значением", "p не простое"],
        EXCHANGE,
    )
    assert "дискретный логарифм находится легко" in message


def test_02b_a_caesar_never_broken() -> None:
    assert_named_in_russian(
        checks_02b_chat.check_break_caesar,
        (lambda ciphertext: ciphertext,),
        ["It returned the ciphertext unchanged."],
        ["Она вернула шифртекст без изменений."],
        "Упражнение: прочитать без ключа",
    )


def test_02b_a_key_guessed_from_the_most_common_byte() -> None:
    assert_named_in_russian(
        checks_02b_chat.check_break_caesar,
        (_guess_from_the_most_common_byte,),
        ["most common byte is not a space", "unreliable"],
        ["самый частый байт — не пробел", "ненадёжно"],
        "Упражнение: прочитать без ключа",
    )


def test_02b_a_loop_that_swallows_the_channel_s_errors(no_leaks) -> None:
    assert_named_in_russian(
        checks_02b_chat.check_chat_loop,
        (_loop_that_stops_on_any_error,),
        ["as if it had finished", "course mistake 11"],
        ["будто закончил работу", "Пропускайте ошибку канала наружу"],
        "4 · Упражнение: цикл сообщений, который ничего не знает о ключах (задание 2)",
    )


def test_02b_a_loop_that_reaches_into_the_channel(no_leaks) -> None:
    assert_named_in_russian(
        checks_02b_chat.check_chat_loop,
        (lambda channel, lines: [channel.stream for _ in lines],),
        ["The loop used channel.stream", "(task 2)"],
        ["Цикл обратился к channel.stream", "дело канала, а не цикла (задание 2)"],
        "4 · Упражнение: цикл сообщений, который ничего не знает о ключах (задание 2)",
    )


def test_02_a_secret_from_random(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_with_secret(_random_secret),),
        ["comes from the `random` module", "course mistake 2"],
        ["ваш секрет a берётся из модуля `random`", "Его числа предсказуемы"],
        EXCHANGE,
    )


def test_02_a_constant_secret(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_with_secret(lambda p: 63),),
        ["for an a below 65536", "course mistake 2"],
        ["A вашего клиента равно g^a mod p при a меньше 65536"],
        EXCHANGE,
    )


def test_02_b_checked_only_against_0_1_and_p_1(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_without("B subgroup"),),
        ["This B is not in the subgroup"],
        ["Это B не лежит в подгруппе", "Сравнить B с 0, 1 и p-1 недостаточно"],
        EXCHANGE,
    )


def test_02_min_bits_written_into_the_code(no_leaks) -> None:
    assert_named_in_russian(
        checks_02_exchange.check_dh_client,
        (_dh_2048_written_in,),
        ["its code never reads min_bits"],
        ["её код ни разу не читает min_bits", "предел, вписанный в код"],
        EXCHANGE,
    )


# --- notebook 03 -------------------------------------------------------------------------

DH_SERVER = "Упражнение: серверная половина обмена"
ALLOWLIST = "6 · Упражнение: проверка по списку"


def test_03_a_public_value_never_checked(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_dh_server,
        (_dh_server(validate="none"),),
        ["A hostile client sent A = 0", "K = 0 whatever your b"],
        ["Враждебный клиент отправил A = 0", "A = 0 даёт K = 0 при любом вашем b"],
        DH_SERVER,
    )


def test_03_one_secret_b_for_every_client(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_dh_server,
        (_dh_server(fixed_b=True),),
        ["Two connections got the same B"],
        ["получили одно и то же B", "один секрет b для всех клиентов"],
        DH_SERVER,
    )


def test_03_an_a_made_a_number_whatever_came(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_dh_server,
        (_dh_server(coerce=True),),
        ["sent A as a string of digits", "(int(...))"],
        ["отправил A строкой из цифр", "A должно быть целым"],
        DH_SERVER,
    )


def test_03_a_server_that_raises_before_its_hello(no_leaks) -> None:
    def typo(sock, group):
        return grup.p  # noqa: F821 - the typo under test

    assert_named_in_russian(
        checks_03_allowlist.check_dh_server,
        (typo,),
        ["raised NameError(", "before it sent its hello"],
        ["выбросил NameError(", "раньше, чем отправил приветствие", "опечатка или импорт"],
        DH_SERVER,
    )


def test_03_an_allowlist_searched_as_text() -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_is_allowed,
        (lambda path, key: key.to_text() in Path(path).read_text(),),
        ["Compare keys, not text", "capital hex digits"],
        ["Сравнивайте ключи, а не текст", "заглавными шестнадцатеричными цифрами"],
        ALLOWLIST,
    )


def _same_key(cell: str | None, key: Any) -> bool:
    from labcrypto.keys import PublicKey

    try:
        return PublicKey.from_text(cell or "") == key
    except (ValueError, LabCryptoError):
        return False


def test_03_a_revoked_student_let_in() -> None:
    def forgets_comments(path, key):  # csv.DictReader reads "# carol,…" as a row like any other
        import csv

        with open(path, newline="", encoding="utf-8") as file:
            return any(_same_key(row.get("public_key"), key) for row in csv.DictReader(file))

    assert_named_in_russian(
        checks_03_allowlist.check_is_allowed,
        (forgets_comments,),
        ["the instructor commented it out", "are comments: skip them"],
        ["преподаватель закомментировал её", "комментарии: пропускайте их"],
        ALLOWLIST,
    )


SERVE_ONE = "Упражнение: проверка внутри рукопожатия"


def test_03_the_key_checked_after_the_welcome(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (_serve_one("after the welcome"),),
        ["A client whose key is not on the allowlist", "checks the key too late"],
        ["Клиент, чьего ключа нет в списке разрешённых", "проверяет ключ слишком поздно"],
        SERVE_ONE,
    )


def test_03_an_allowlist_read_once_and_kept(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (_serve_one("cached"),),
        ["after his row was removed", "(a cache)"],
        ["после того, как его строку удалили", "(кэш)"],
        SERVE_ONE,
    )


def test_03_no_allowlist_file_lets_everyone_in(no_leaks) -> None:
    assert_named_in_russian(
        checks_03_allowlist.check_serve_one,
        (_serve_one("fail open"),),
        ["after the allowlist file was deleted", "fail closed"],
        ["после того, как файл списка удалили", "должен отказывать всем"],
        SERVE_ONE,
    )


def test_03_a_join_that_trusts_any_server(no_leaks) -> None:
    from labcrypto import keys
    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient

    def unpinned(name, key_dir, allowlist_path, address, server_key):
        key = keys.load_or_create(name, key_dir)
        if Allowlist(allowlist_path).name_of(key.public_key) is None:
            Allowlist(allowlist_path).add(name, key.public_key)
        host, port = address
        return ChatClient.connect(host, port, key, timeout=5)  # server_key never passed on

    assert_named_in_russian(
        checks_03_allowlist.check_join_as_new_student,
        (unpinned,),
        ["On the first call the function connected without pinning the server's key"],
        ["При первом вызове функция подключилась, не закрепив ключ сервера"],
        "7 · Упражнение: новый студент",
    )


# --- notebook 04 -------------------------------------------------------------------------

HANDOFF = "3 · Упражнение: клиентская половина передачи соединения"
POOL = "5 · Упражнение: пул портов"


def test_04_the_offer_returned_as_the_welcome(no_leaks) -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_follow_handoff,
        (lambda channel, host: json.loads(channel.recv(5)),),
        ["That is the server's offer itself"],
        ["Это само предложение сервера", "приветствие комнаты"],
        HANDOFF,
    )


def test_04_a_busy_pool_taken_for_a_welcome(no_leaks) -> None:
    from test_notebook_helpers import _reference_follow_handoff

    def ignores_busy(channel, host):
        try:
            return _reference_follow_handoff(channel, host)
        except LabCryptoError:
            return {"type": "busy"}

    message = assert_named_in_russian(
        checks_04_two_ports.check_follow_handoff,
        (ignores_busy,),
        ["follow_handoff returned {'type': 'busy'}", "Raise PoolExhausted"],
        ["вызов follow_handoff вернул {'type': 'busy'}", "выбрасывайте PoolExhausted(text)"],
        HANDOFF,
    )
    assert "returned" not in message  # how_it_ended speaks Russian too


def test_04_a_pool_without_a_lock() -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_port_pool,
        (_pool_class(lock=False),),
        ["take turns", "threading.Lock"],
        ["Два потока вызвали lease() одновременно", "threading.Lock"],
        POOL,
    )


def test_04_a_release_that_leaves_the_socket_open() -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_port_pool,
        (_pool_class(close_on_release=False),),
        ["left its socket open"],
        ["оставила его сокет открытым"],
        POOL,
    )


def test_04_a_port_handed_out_that_could_not_be_bound() -> None:
    class BindsNothing(_pool_class()):  # type: ignore[misc]
        def lease(self):  # "the next free port" from its own list, never bound to check
            import socket

            from labcrypto.errors import PoolExhausted

            with self.lock:
                if not self.free:
                    raise PoolExhausted("no free port")
                return self.free.pop(0), socket.socket()

    assert_named_in_russian(
        checks_04_two_ports.check_port_pool,
        (BindsNothing,),
        ["a port you could not bind is not yours", "course mistake 10"],
        ["порт, который вы не смогли привязать, — не ваш"],
        POOL,
    )


def test_04_a_pool_that_loses_ports() -> None:
    class LosesPorts(_pool_class()):  # type: ignore[misc]
        def release(self, port, sock):
            sock.close()

    assert_named_in_russian(
        checks_04_two_ports.check_port_pool,
        (LosesPorts,),
        ["a port got lost"],
        ["Порт потерялся", "не вернули вовсе"],
        POOL,
    )


# --- notebook 05 -------------------------------------------------------------------------

def test_04_a_client_that_goes_back_to_the_handshake_port(no_leaks) -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_follow_handoff,
        (_handoff_to_the_handshake_port,),
        ["connected to the handshake port", "course mistake 10"],
        ["снова подключился к порту рукопожатия"],
        HANDOFF,
    )


def test_04_a_ticket_sent_before_the_move(no_leaks) -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_follow_handoff,
        (_ticket_before_rebind,),
        ["sent the ticket before channel.rebind(new_socket)"],
        ["отправил билет раньше, чем вызвал channel.rebind(new_socket)"],
        HANDOFF,
    )


SAFE_PATH = "5 · Упражнение: проверка пути"
DU = "6 · Упражнение: `du` поверх API"


def test_05_a_jail_that_compares_strings() -> None:
    def compares_strings(home, requested):
        place = os.path.realpath(Path(home) / requested.lstrip("/"))
        if place.startswith(os.path.realpath(home)):
            return Path(place)
        raise PermissionError(requested)

    assert_named_in_russian(
        checks_05_ftp.check_safe_path,
        (compares_strings,),
        ["The sibling folder 'alice2'", "course mistake 13"],
        ["Имя соседней папки 'alice2'", "ведёт за пределы домашней папки"],
        SAFE_PATH,
    )


def test_05_a_jail_that_follows_links_out() -> None:
    def lexical_only(home, requested):  # '..' undone on the text; links never looked at
        place = Path(os.path.abspath(Path(home) / requested.lstrip("/")))
        if place.is_relative_to(os.path.abspath(home)):
            return place
        raise PermissionError(requested)

    assert_named_in_russian(
        checks_05_ftp.check_safe_path,
        (lexical_only,),
        ["symbolic link that leads out of the home"],
        ["символическую ссылку, ведущую за пределы домашней папки"],
        SAFE_PATH,
    )


def test_05_a_leading_slash_that_escapes() -> None:
    assert_named_in_russian(
        checks_05_ftp.check_safe_path,
        (lambda home, requested: Path(home) / requested,),
        ["it should be the home folder itself", "A leading '/'"],
        ["должна была вернуть саму домашнюю папку", "Ведущий '/' означает вершину домашней папки"],
        SAFE_PATH,
    )


def test_05_du_that_counts_the_top_only(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_du,
        (lambda client, path="/": sum(e.size for e in client.ls(path)),),
        ["Only the files at the top were counted"],
        ["Посчитаны только файлы верхнего уровня"],
        DU,
    )


def test_05_du_that_moves_the_user(no_leaks) -> None:
    def moves(client, path="/"):  # a walk with a list of folders to do, left in the last one
        total, folders = 0, [path]
        while folders:
            folder = folders.pop()
            client.cd(folder)
            for entry in client.ls(folder):
                if entry.kind == "dir":
                    folders.append(folder.rstrip("/") + "/" + entry.name)
                total += entry.size if entry.kind == "file" else 0
        return total

    assert_named_in_russian(
        checks_05_ftp.check_du,
        (moves,),
        ["do not cd"],
        ["рабочая папка клиента", "не делайте cd"],
        DU,
    )


def test_05_one_nonce_for_every_message(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_my_cipher,
        (_cipher_class(fixed_nonce=True),),
        ["nonce reuse"],
        ["повторное использование nonce"],
        "Упражнение: свои seal и open",
    )


def test_05_a_cipher_that_xors_with_k(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_my_cipher,
        (_cipher_class(xor_k=True),),
        ["no room for the 16-byte authentication tag", "XORed with the bytes of K", "mistake 5"],
        ["тега аутентификации AES-GCM места нет", "сложенное по XOR с байтами K"],
        "Упражнение: свои seal и open",
    )


def test_05_a_refused_message_counted_as_opened(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_my_cipher,
        (_cipher_class(counts_refusals=True),),
        ["a refused one was not opened"],
        ["отвергнутое открыто не было"],
        "Упражнение: свои seal и open",
    )


def test_05_a_hello_hashed_as_json_dumps_writes_it(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_request_handler,
        (_request_handler("re-encoded"),),
        ["as your code wrote it again"],
        ["в каком ваш код записал его заново"],
        "Упражнение: новая пара ключей для каждого запроса",
    )


def test_05_a_variable_named_like_a_module(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_request_handler,
        (_handler_naming_its_keys_keys,),
        ["the name of the module keys"],
        ["так же называется модуль keys", "Дайте переменной собственное имя"],
        "Упражнение: новая пара ключей для каждого запроса",
    )


def test_05_a_jail_that_refuses_with_value_error() -> None:
    def value_error(home, requested):
        place = Path(home).resolve() / requested.lstrip("/")
        if not place.resolve().is_relative_to(Path(home).resolve()):
            raise ValueError(requested)
        return place.resolve()

    assert_named_in_russian(
        checks_05_ftp.check_safe_path,
        (value_error,),
        ["the task asks for PermissionError"],
        ["задание требует PermissionError"],
        SAFE_PATH,
    )


# --- what every check shares -------------------------------------------------------------


def test_an_exercise_not_written_yet_says_so_in_russian() -> None:
    def break_caesar(ciphertext: bytes) -> bytes:
        raise NotImplementedError()

    message = assert_named_in_russian(
        checks_02b_chat.check_break_caesar,
        (break_caesar,),
        ["break_caesar is not written yet"],
        ["Код break_caesar ещё не написан", "выполните ту ячейку"],
        "Упражнение: прочитать без ключа",
    )
    assert message.count("→ Объяснение") == 1


def test_a_hidden_test_fails_with_russian_generic_words(no_leaks) -> None:
    def hidden() -> None:
        checks_02_exchange.hidden_framing(_send_msg, lambda sock: sock.recv(1024)[4:])

    def run(language: str) -> str:
        os.environ[i18n.ENV_VAR] = language
        with pytest.raises(CheckFailed) as failure:
            hidden()
        return str(failure.value)

    assert "A hidden test of this exercise failed" in run("en")
    russian = run("ru")
    assert "Скрытый тест этого упражнения не пройден" in russian
    assert "Перечитайте раздел «2 · Упражнение: кадры в потоке» блокнота 02_exchange" in russian
    assert english_prose(russian) == []

    def crashes(ciphertext: bytes) -> bytes:
        raise KeyError("shift")

    os.environ[i18n.ENV_VAR] = "ru"
    with pytest.raises(CheckFailed) as failure:
        checks_02b_chat.hidden_break_caesar(crashes)
    assert "(на одном из них ваш код выбросил KeyError)" in str(failure.value)


def test_05_one_counter_for_both_directions(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_my_cipher,
        (_cipher_class(one_counter=True),),
        ["one counter for both directions"],
        ["один счётчик на оба направления"],
        "Упражнение: свои seal и open",
    )


def test_05_a_handler_that_reads_with_recv(no_leaks) -> None:
    assert_named_in_russian(
        checks_05_ftp.check_request_handler,
        (_request_handler("recv"),),
        ["one recv is not one message", "mistake 6"],
        ["один recv — это не одно сообщение", "read_frame(sock)"],
        "Упражнение: новая пара ключей для каждого запроса",
    )


def test_05_the_top_of_the_home_refused() -> None:
    def joins_the_slash(home, requested):
        home = Path(home).resolve()
        target = (home / requested).resolve()
        if not target.is_relative_to(home):
            raise PermissionError(requested)
        return target

    assert_named_in_russian(
        checks_05_ftp.check_safe_path,
        (joins_the_slash,),
        ["it leads to the home folder itself", "A leading '/'"],
        ["не выходит из домашней папки: он ведёт в саму домашнюю папку", "Ведущий '/'"],
        SAFE_PATH,
    )


def test_04_a_stranger_who_sends_nothing_holds_the_port() -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_offer_port,
        (_offer_port(read_timeout=None),),
        ["A stranger who connected and sent nothing", "conn.settimeout(1)"],
        ["Посторонний, не отправивший ни байта, подключился", "offer_port всё ещё не впустила"],
        "Упражнение: серверная половина передачи соединения",
    )


def test_04_a_pool_that_drops_a_busy_port() -> None:
    assert_named_in_russian(
        checks_04_two_ports.check_port_pool,
        (_pool_class(keeps_busy=False),),
        ["never leases it again"],
        ["ваш пул больше его не выдаёт", "оставьте его в пуле"],
        POOL,
    )
