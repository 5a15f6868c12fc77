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
