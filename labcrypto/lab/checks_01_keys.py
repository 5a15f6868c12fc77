"""The checks of notebook 01_keys: a public value, the shared secret, your own numbers, a key file.

Each exercise has a visible check (``check_...``: run it as often as you
like; it says what is wrong and which known mistake it looks like) and,
right after it, the hidden test nbgrader puts back when it grades
(``hidden_...``: cases made from your student id; its failures say only
which section to re-read). None of them needs a network.
"""

from __future__ import annotations

import ast
import re
import secrets
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..groups import FFDHE2048, TOY, Group, small_safe_prime_group
from ..i18n import N_, Messages, _
from ..keys import generate
from .feedback import (
    HIDDEN_WAIT,
    PURE_WAIT,
    CheckFailed,
    code_of,
    expect,
    explained_in,
    fail,
    passed,
    refuse_whole_power,
    refused_as,
    syntax_of,
)
from .harness import FAIR_SEEDS, call_bounded, returned_within, seeded_random
from .variants import derive, student_id, variant

__all__ = [
    "check_load_or_create_key",
    "check_my_numbers",
    "check_public_value",
    "check_shared_secret",
    "hidden_key_file",
    "hidden_my_numbers",
    "hidden_public_value",
    "hidden_shared_secret",
]

SHOWN_UP_TO = 10**12  #: larger numbers are described by their size, not printed
SMALL_SECRET_BITS = 64  #: a private number shorter than this is refused as guessable


def _shown(value: int, limit: int = SHOWN_UP_TO) -> str:
    if abs(value) < limit:
        return str(value)
    return _("a {bits}-bit number").format(bits=value.bit_length())


def _hint(got: Any, hints: list[tuple[int, str]]) -> str:
    """The text of the first known wrong answer that ``got`` equals ("" if none)."""
    return next((text for value, text in hints if got == value), "")


# --- public value -------------------------------------------------------------------

PUBLIC_VALUE = Messages(
    {
        "power operator": N_(
            "Your code uses `**`. `g ** a % p` first computes the whole power g^a and only "
            "then reduces it: for a real 256-bit secret that number has about 10^76 digits, "
            "and the cell would never finish. Use pow(g, a, p): it reduces at every step."
        ),
        "not an int": N_("{where} returned {kind} {got!r:.60}; expected an int."),
        "wrong": N_("{where} returned {got}, which is not g^a mod p.\n{hint}"),
        "slow": N_(
            "A loop that multiplies by g once for each unit of a needs about 2^{bits} steps for "
            "this {bits}-bit a (a real secret has 256 bits). pow(g, a, p) squares and "
            "multiplies: about 2·{bits} steps."
        ),
        "swapped": N_(
            "It looks like you computed a^g mod p: the base and exponent are swapped. "
            "A = g^a mod p: the public g is the base, your secret a the exponent."
        ),
        "secret": N_(
            "It looks like you returned the secret a itself: never send a, send A = g^a mod p."
        ),
        "product": N_("It looks like you multiplied g·a; A is a power, g^a mod p."),
        "mod p-1": N_("It looks like you reduced mod p-1; A = g^a mod p."),
        "not reduced": N_(
            "It looks like the result is not reduced mod p: forgot `% p` (or pow's 3rd argument)?"
        ),
        "globals": N_(
            "It looks like you used the p = 23 or g = 5 of the cells above, not this group's: "
            "inside the function take them from `group` (group.p, group.g), or the function "
            "works only for the course's group."
        ),
        "no hint": N_("Check: A = pow(group.g, a, group.p)."),
        "float": N_(
            "public_value raised {error} in a {bits}-bit group: a float (math.pow, float(), "
            "the / operator) holds about 16 digits and nothing above 1.8·10^308, and a "
            "2048-bit number has 617 digits. Keep to integers: pow(g, a, p) (and // to divide)."
        ),
        "passed": N_("public_value is right on {count} cases, from p = 23 up to 2048 bits."),
    }
)


def _with_toy_numbers(base: int, exponent: int, p: int) -> list[int]:
    """What a function gets that uses the notebook's global p = 23 (or g = 5) instead of
    its group's: with base g that is also g = 5."""
    return [pow(base, exponent, TOY.p), pow(TOY.g, exponent, TOY.p), pow(TOY.g, exponent, p)]


def _is_int(value: Any) -> bool:
    """An int, and not a bool (nor a float that equals one: 2.0 == 2 in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _public_value_cases() -> list[tuple[Group, int]]:
    cases = [(TOY, a) for a in range(2, TOY.q)]
    small = small_safe_prime_group(32)
    cases += [(small, small.random_exponent(secrets.randbelow)) for _ in range(3)]
    cases += [(FFDHE2048, FFDHE2048.random_exponent(secrets.randbelow))]
    return cases


def _public_value_failure(group: Group, a: int, got: Any) -> Exception:
    p, g = group.p, group.g
    shown_a = a if a < 10**6 else _("a big secret")
    where = f"public_value({group!r}, a={shown_a})"
    if not _is_int(got):
        return fail(PUBLIC_VALUE["not an int"], where=where, kind=type(got).__name__, got=got)
    hints = [
        (pow(a, g, p), PUBLIC_VALUE["swapped"]),
        (a, PUBLIC_VALUE["secret"]),
        (g * a % p, PUBLIC_VALUE["product"]),
        (pow(g, a, p - 1), PUBLIC_VALUE["mod p-1"]),
    ]
    if a < 200:
        hints.append((g**a, PUBLIC_VALUE["not reduced"]))
    if group.p != TOY.p:
        hints += [(toy, PUBLIC_VALUE["globals"]) for toy in _with_toy_numbers(g, a, p)]
    return fail(
        PUBLIC_VALUE["wrong"],
        where=where,
        got=_shown(got),
        hint=_hint(got, hints) or PUBLIC_VALUE["no hint"],
    )


@explained_in("01_keys", N_("2 · Exercise: compute a public value"))
def check_public_value(public_value: Callable[[Group, int], int]) -> None:
    """``public_value(group, a)`` must return ``g^a mod p``, fast, for any group."""
    if re.search(r"\*\*", code_of(public_value)):
        raise fail(PUBLIC_VALUE["power operator"])
    refuse_whole_power(public_value)
    cases = _public_value_cases()
    deadline = time.monotonic() + PURE_WAIT
    for group, a in cases:
        try:
            got = call_bounded(
                public_value, group, a,
                what=f"public_value({group!r}, a = {_shown(a)})",
                why=PUBLIC_VALUE["slow"].format(bits=a.bit_length()),
                deadline=deadline,
            )  # fmt: skip
        except OverflowError as exc:
            raise fail(PUBLIC_VALUE["float"], error=refused_as(exc), bits=group.bits) from exc
        if not _is_int(got) or got != pow(group.g, a, group.p):
            raise _public_value_failure(group, a, got)
    passed(PUBLIC_VALUE["passed"], count=len(cases))


@check_public_value.hidden
def hidden_public_value(public_value: Callable[[Group, int], int], typed_id: str = "") -> None:
    """``public_value`` on this student's group and on a 2048-bit exponent."""
    mine = variant(student_id(typed_id))
    got = returned_within(public_value, mine.group, mine.a, timeout=HIDDEN_WAIT)
    expect(got == pow(mine.g, mine.a, mine.p))
    exponent = (1 << 255) | derive(mine.student_id, "big-a")
    got = returned_within(public_value, FFDHE2048, exponent, timeout=HIDDEN_WAIT)
    expect(got == pow(2, exponent, FFDHE2048.p))


# --- shared secret ------------------------------------------------------------------

SHARED_SECRET = Messages(
    {
        "not an int": N_("shared_secret returned {kind} {got!r:.60} {where}; expected an int (K)."),
        "wrong": N_(
            "shared_secret gave {got} {where}; that is not K = B^a mod p, the one number "
            "both sides must get.\n{hint}"
        ),
        "slow": N_(
            "A loop that multiplies once for each unit of the secret needs about 2^{bits} "
            "steps here; pow(B, a, p) squares and multiplies: about 2·{bits} steps."
        ),
        "where small": N_("with p = {p}, a = {a}, b = {b} (A = {A}, B = {B})"),
        "where big": N_("in the 2048-bit group"),
        "own public": N_(
            "It looks like you computed your own public value g^a mod p. K uses the "
            "*peer's* public value as the base: K = B^a mod p."
        ),
        "exponent": N_(
            "It looks like the peer's public value is used as the exponent (course "
            "mistake 4). K = B^a mod p: the base is the peer's B, the exponent your a."
        ),
        "product": N_("It looks like you multiplied B·a; K is a power: B^a mod p."),
        "peer": N_("It looks like you returned the peer's public value itself."),
        "not reduced": N_("It looks like K is not reduced mod p (forgot `% p`?)."),
        "globals": N_(
            "It looks like you used the p = 23 of the cells above, not this group's: inside "
            "the function take it from `group` (group.p)."
        ),
        "other exception": N_(
            "shared_secret({group}, a, {value}) refused the value, as it should, but with "
            "{error}: whoever calls it catches ValueError, the error of a value that must "
            "not be used (groups.validate_public raises InvalidPublicValue, a ValueError), "
            "and lets any other error through as a bug.{assertion}"
        ),
        "assertion": N_(
            " An assert is not a way to refuse input either: `python -O` removes every "
            "assert, and the value would then be used."
        ),
        "accepted": N_(
            "shared_secret({group}, a, {value}) returned {result} instead of refusing it: "
            "{why}. An attacker who sends this value knows K without any private key "
            "(course mistake 1: public values never checked).\n"
            "Call groups.validate_public(group, peer_public) first: it raises "
            "InvalidPublicValue, a ValueError."
        ),
        "zero": N_("0 makes K = 0"),
        "one": N_("1 makes K = 1 whatever your secret"),
        "minus one": N_("p-1 makes K = ±1"),
        "p": N_("p is out of range"),
        "above p": N_("a number ≥ p is out of range"),
        "outsider": N_("{value} is not in the subgroup generated by g"),
        "passed": N_(
            "shared_secret agrees on both sides in {count} exchanges (up to 2048 "
            "bits) and refuses the 0, 1, p-1, out-of-range and out-of-subgroup values."
        ),
    }
)


def _invalid_values(group: Group) -> list[tuple[int, str]]:
    """Public values ``shared_secret`` must refuse, each with why."""
    values = [
        (0, SHARED_SECRET["zero"]),
        (1, SHARED_SECRET["one"]),
        (group.p - 1, SHARED_SECRET["minus one"]),
        (group.p, SHARED_SECRET["p"]),
        (group.p + 7, SHARED_SECRET["above p"]),
    ]
    if group.q == (group.p - 1) // 2:
        # A non-square lies outside the prime-order subgroup (small-subgroup attack).
        outsider = next(y for y in range(2, 1000) if pow(y, group.q, group.p) != 1)
        values.append((outsider, SHARED_SECRET["outsider"].format(value=outsider)))
    return values


def _exchanges() -> list[tuple[Group, int, int]]:
    """(group, a, b): the textbook example (A = 8, B = 19, K = 2), random toy ones, a real one."""
    trials = [(TOY, 6, 15)]
    # keys.generate never makes a public value of 1 or p-1 (they would be refused).
    trials += [(TOY, generate(TOY).private, generate(TOY).private) for _ in range(5)]
    trials.append((FFDHE2048, generate(FFDHE2048).private, generate(FFDHE2048).private))
    return trials


def _secret_of(
    shared_secret: Callable[[Group, int, int], int], group: Group, mine: int, peer: int,
    deadline: float,
) -> Any:  # fmt: skip
    """One bounded call ``shared_secret(group, mine, peer)``; its result, or what it raised."""
    return call_bounded(
        shared_secret, group, mine, peer,
        what=f"shared_secret({group!r}, {_shown(mine)}, {_shown(peer)})",
        why=SHARED_SECRET["slow"].format(bits=mine.bit_length()),
        deadline=deadline,
    )  # fmt: skip


def _check_one_exchange(
    shared_secret: Callable[[Group, int, int], int], group: Group, a: int, b: int,
    deadline: float,
) -> None:  # fmt: skip
    p, g = group.p, group.g
    public_a, public_b = pow(g, a, p), pow(g, b, p)
    want = pow(public_b, a, p)
    got_alice = _secret_of(shared_secret, group, a, public_b, deadline)
    got_bob = _secret_of(shared_secret, group, b, public_a, deadline)
    if _is_int(got_alice) and _is_int(got_bob) and got_alice == want and got_bob == want:
        return
    small = p < 1000
    where = (
        SHARED_SECRET["where small"].format(p=p, a=a, b=b, A=public_a, B=public_b)
        if small
        else SHARED_SECRET["where big"]
    )
    alice_wrong = not (_is_int(got_alice) and got_alice == want)
    got = got_alice if alice_wrong else got_bob
    mine, peer = (a, public_b) if alice_wrong else (b, public_a)
    if not _is_int(got):
        raise fail(SHARED_SECRET["not an int"], kind=type(got).__name__, got=got, where=where)
    hints = [
        (pow(g, mine, p), SHARED_SECRET["own public"]),
        (pow(mine, peer, p), SHARED_SECRET["exponent"]),
        (peer * mine % p, SHARED_SECRET["product"]),
        (peer, SHARED_SECRET["peer"]),
    ]
    if small:
        hints.append((peer**mine, SHARED_SECRET["not reduced"]))
    else:
        hints.append((pow(peer, mine, TOY.p), SHARED_SECRET["globals"]))
    shown = got if small else _shown(got)
    raise fail(SHARED_SECRET["wrong"], got=shown, where=where, hint=_hint(got, hints))


def _result_shown(result: Any) -> str:
    """What shared_secret returned for a value it should have refused, as the student
    reads it: a small number as it is, a big one by its size, anything else as code."""
    if isinstance(result, int) and not isinstance(result, bool):
        return str(result) if result < 10**6 else _("a number")
    shown = repr(result)
    return shown if len(shown) <= 40 else shown[:40] + "…"


def _check_refusals(
    shared_secret: Callable[[Group, int, int], int],
    group: Group,
    invalid: list[tuple[int, str]],
    deadline: float,
) -> None:
    """``shared_secret`` refuses each of the ``invalid`` values (from ``_invalid_values``)."""
    for value, why in invalid:
        shown: Any = "p-1" if value == group.p - 1 else ("p" if value == group.p else value)
        shown = shown if not isinstance(shown, int) or shown < 10**6 else _("a big number")
        try:
            result = _secret_of(shared_secret, group, 6, value, deadline)
        except ValueError:
            continue  # refused, as it should (InvalidPublicValue is a ValueError)
        except CheckFailed:
            raise  # not written yet, or too slow: the check's own words
        except Exception as exc:  # refused, but not as a ValueError
            assertion = SHARED_SECRET["assertion"] if isinstance(exc, AssertionError) else ""
            raise fail(
                SHARED_SECRET["other exception"],
                group=group.name,
                value=shown,
                error=refused_as(exc),
                assertion=assertion,
            ) from None
        raise fail(
            SHARED_SECRET["accepted"],
            group=group.name,
            value=shown,
            result=_result_shown(result),
            why=why,
        )


@explained_in("01_keys", N_("3 · Exercise: the shared secret, and values to refuse"))
def check_shared_secret(shared_secret: Callable[[Group, int, int], int]) -> None:
    """``shared_secret(group, my_secret, peer_public)`` must return ``peer^my mod p``,
    the same number on both sides, and refuse public values that must not be used."""
    refuse_whole_power(shared_secret)
    trials = _exchanges()
    # The check's own work comes before the student's time starts: finding the value
    # outside the 2048-bit subgroup takes six 2048-bit powers, which on a loaded 2-core
    # machine once ate most of the 2 s the message says the student's code had.
    refusals = [(group, _invalid_values(group)) for group in (TOY, FFDHE2048)]
    deadline = time.monotonic() + PURE_WAIT
    for group, a, b in trials:
        _check_one_exchange(shared_secret, group, a, b, deadline)
    for group, invalid in refusals:
        _check_refusals(shared_secret, group, invalid, deadline)
    passed(SHARED_SECRET["passed"], count=len(trials))


@check_shared_secret.hidden
def hidden_shared_secret(
    shared_secret: Callable[[Group, int, int], int], typed_id: str = ""
) -> None:
    """``shared_secret`` in this student's group, and refusals there."""
    mine = variant(student_id(typed_id))
    got = returned_within(shared_secret, mine.group, mine.a, mine.B, timeout=HIDDEN_WAIT)
    expect(got == pow(mine.B, mine.a, mine.p))
    for bad in (0, 1, mine.p - 1, mine.p):
        try:
            returned_within(shared_secret, mine.group, mine.a, bad, timeout=HIDDEN_WAIT)
        except ValueError:
            continue
        expect(False)


# --- your own numbers -----------------------------------------------------------------

MY_NUMBERS = Messages(
    {
        "not written": N_(
            "my_A and my_K are not written yet: replace the `None`s (and the "
            "`raise NotImplementedError()`) with your computation, run that cell, then this one."
        ),
        "not an int": N_("{name} is {kind} {value!r:.40}; it should be an int."),
        "out of range": N_(
            "{name} = {value} is not between 1 and p-1 = {top}: it does not fit your group "
            "at all. Either it is not reduced mod p, or it was computed for another student's "
            "numbers (copied?). Compute it from `my`, which comes from your student id."
        ),
        "wrong A": N_(
            "my_A = {value} is not g^a mod p for your group (p = {p}, g = {g}, a = {a}).\n{hint}"
        ),
        "A swapped": N_(
            "It looks like the base and exponent are swapped: A = g^a mod p, pow(my.g, my.a, my.p)."
        ),
        "A product": N_("It looks like you multiplied g·a; A is a power: pow(my.g, my.a, my.p)."),
        "A is K": N_("It looks like that is K, not A: A uses g as the base."),
        "A no hint": N_("Did you use your own group `my` (not the toy p = 23)?"),
        "wrong K": N_(
            "my_K = {value} is not the key you share with Bob (B = {B}, your a = {a}).\n{hint}"
        ),
        "K own public": N_(
            "It looks like you used your own public value A as the base; "
            "K = B^a mod p uses Bob's B."
        ),
        "K exponent": N_(
            "It looks like Bob's public value is used as the exponent (course mistake 4): "
            "K = B^a mod p."
        ),
        "K is A": N_(
            "It looks like my_K equals my_A: that is your public value, not the shared key."
        ),
        "K is B": N_("It looks like my_K is Bob's public value itself."),
        "K product": N_("It looks like you multiplied B·a; K is a power: pow(my.B, my.a, my.p)."),
        "K no hint": N_("K = pow(B, a, p)."),
        "whose": N_("student id {student!r}"),
        "nobody": N_(
            "no student id (set STUDENT_ID in the first cell: your instructor grades with yours)"
        ),
        "passed": N_("my_A and my_K are right for your group p = {p}, g = {g} ({who})."),
    }
)


def _check_in_group(name: str, value: Any, p: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(MY_NUMBERS["not an int"], name=name, kind=type(value).__name__, value=value)
    if not 0 < value < p:
        raise fail(MY_NUMBERS["out of range"], name=name, value=value, top=p - 1)


def _check_my_a(my: Any, my_A: int) -> None:
    p, g, a, big_b = my.p, my.g, my.a, my.B
    if my_A == pow(g, a, p):
        return
    hints = [
        (pow(a, g, p), MY_NUMBERS["A swapped"]),
        (g * a % p, MY_NUMBERS["A product"]),
        (pow(big_b, a, p), MY_NUMBERS["A is K"]),
    ]
    hint = _hint(my_A, hints) or MY_NUMBERS["A no hint"]
    raise fail(MY_NUMBERS["wrong A"], value=my_A, p=p, g=g, a=a, hint=hint)


def _check_my_k(my: Any, my_A: int, my_K: int) -> None:
    p, a, big_b = my.p, my.a, my.B
    if my_K == pow(big_b, a, p):
        return
    hints = [
        (pow(my_A, a, p), MY_NUMBERS["K own public"]),
        (pow(a, big_b, p), MY_NUMBERS["K exponent"]),
        (my_A, MY_NUMBERS["K is A"]),
        (big_b, MY_NUMBERS["K is B"]),
        (big_b * a % p, MY_NUMBERS["K product"]),
    ]
    hint = _hint(my_K, hints) or MY_NUMBERS["K no hint"]
    raise fail(MY_NUMBERS["wrong K"], value=my_K, B=big_b, a=a, hint=hint)


@explained_in("01_keys", N_("Exercise: your own numbers"))
def check_my_numbers(my: Any, my_A: Any, my_K: Any) -> None:
    """``my_A = g^a mod p`` and ``my_K = B^a mod p`` in the student's own group ``my``.

    The expected numbers are never shown: only which step looks wrong.
    """
    if my_A is None or my_K is None:
        raise fail(MY_NUMBERS["not written"])
    _check_in_group("my_A", my_A, my.p)
    _check_in_group("my_K", my_K, my.p)
    _check_my_a(my, my_A)
    _check_my_k(my, my_A, my_K)
    who = (
        MY_NUMBERS["whose"].format(student=my.student_id) if my.student_id else MY_NUMBERS["nobody"]
    )
    passed(MY_NUMBERS["passed"], p=my.p, g=my.g, who=who)


@check_my_numbers.hidden
def hidden_my_numbers(typed_id: str, my_A: Any, my_K: Any) -> None:
    """``my_A`` and ``my_K`` are this student's numbers (computed under the graded id)."""
    expect(my_A is not None and my_K is not None)
    mine = variant(student_id(typed_id))
    expect(my_A == pow(mine.g, mine.a, mine.p))
    expect(my_K == pow(mine.B, mine.a, mine.p))


# --- the key file ---------------------------------------------------------------------

KEY_FILE = Messages(
    {
        "not a pair": N_(
            "load_or_create_key returned {kind}; "
            "return the KeyPair (keys.generate(group) makes one)."
        ),
        "does not fit": N_(
            "The key pair returned does not fit together: public != g^private "
            "mod p. Build it with keys.generate(group), or KeyPair(group, private, "
            "pow(group.g, private, group.p)) after loading."
        ),
        "not saved": N_(
            "Nothing was saved at the path you were given ({name}); "
            "the folder holds {files}. Write the key to `path`."
        ),
        "not saved, empty": N_(
            "Nothing was saved at the path you were given ({name}), and nothing anywhere "
            "else in its folder either. Write the key to `path`."
        ),
        "readable": N_(
            "The key file has mode {mode:#o} ({shown}): other "
            "users of the machine can read your private key (course mistake 8).\n"
            "Create it private from the start: "
            "fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
            "then open(fd, 'w').\n(path.chmod(0o600) after writing leaves a moment "
            "when others could read it.)"
        ),
        "no private": N_(
            "The file does not contain your private number a{public}. A key file must keep a "
            "(not A, and never a shared secret K: K changes with every peer and session; "
            "course mistake 8). Write it as text, e.g. f'private: {{pair.private:#x}}'."
        ),
        "holds public": N_(" — it holds the public value A, which cannot be turned back into a"),
        "chmod after": N_(
            "Your function writes the key file and only then makes it private (`{call}`). "
            "Until then the file has the usual mode (-rw-r--r--): anyone on the machine can "
            "open it, and a file opened before the chmod stays readable through that handle "
            "(course mistake 8). Create it private from the start: "
            "os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), then open(fd, 'w')."
        ),
        "rewritten": N_(
            "The second call rewrote the key file: the key file was overwritten, so every "
            "run makes you a new person (course mistake 8). Reuse the key that is there; "
            "a key overwritten on every run means the server's allowlist no longer knows "
            "you tomorrow."
        ),
        "reloaded does not fit": N_(
            "The pair your function rebuilt from the file does not fit together: its public "
            "value is not `g^private mod p`, so on every run after the first you would show "
            "the server a key nobody holds. After loading the private number, the public one "
            "is `pow(group.g, private, group.p)`."
        ),
        "unreadable": N_(
            "The first call wrote the key file; the second call, reading that same file back, "
            "raised {error}. Read the file the way you wrote it: a number written in hex "
            "is read back with int(text, 16) (or, with its 0x, f'{{private:#x}}', with "
            "keys.parse_number(text)), not with int(text)."
        ),
        "another key": N_(
            "The second call returned a different key than the first, although "
            "the file was there: load it instead of generating a new one "
            "(course mistake 8: a new key on every run)."
        ),
        "small secret": N_(
            "The private number has only {bits} bits: whoever tries every number up to there "
            "finds it, and a second key drawn from so few numbers may be the same one (course "
            "mistake 2). Use keys.generate(group): it draws 256 bits from `secrets`."
        ),
        "random": N_(
            "With random.seed set to the same number, two new key files got the same "
            "private number, and another seed gave another: your secret comes from the "
            "`random` module (course mistake 2). Its numbers are predictable: anyone who "
            "sees a few of them, or guesses the seed, computes the rest. Use "
            "keys.generate(group), which draws it from `secrets`."
        ),
        "constant": N_(
            "Two different key files got the same private number: the secret is "
            "a constant (course mistake 2). Use keys.generate(group), which draws "
            "it from `secrets`."
        ),
        "small group": N_(
            "The key is in {group} ({bits} bits): a real key belongs in "
            "the 2048-bit group (groups.FFDHE2048, the default of keys.generate)."
        ),
        "slow": N_(
            "Making a key and writing it to a file takes milliseconds: is there a loop that "
            "never ends (say, one that waits for a file to appear, or draws numbers until a "
            "condition that never holds)?"
        ),
        "passed": N_(
            "load_or_create_key keeps one private key in a file only you can read, reuses it "
            "on the next run, and makes a different one for another file."
        ),
    }
)


def _numbers_in(text: str) -> set[int]:
    """Every hex (0x...) or decimal number written in ``text``."""
    found = {int(h, 16) for h in re.findall(r"0[xX]([0-9a-fA-F]+)", text)}
    found |= {int(d) for d in re.findall(r"(?<![0-9a-fA-FxX])([0-9]+)(?![0-9a-fA-FxX])", text)}
    found |= {int(h, 16) for h in re.findall(r"\b([0-9a-fA-F]{16,})\b", text)}
    return found


def _check_pair(pair: Any) -> None:
    if not all(hasattr(pair, attr) for attr in ("private", "public", "group")):
        raise fail(KEY_FILE["not a pair"], kind=type(pair).__name__)
    group = pair.group
    if pow(group.g, pair.private, group.p) != pair.public:
        raise fail(KEY_FILE["does not fit"])


def _check_saved_privately(path: Path, pair: Any) -> str:
    """The key file exists, only its owner can read it, and it holds ``a``: its text."""
    if not path.exists():
        files = sorted(f.name for f in path.parent.iterdir())
        if not files:
            raise fail(KEY_FILE["not saved, empty"], name=path.name)
        raise fail(KEY_FILE["not saved"], name=path.name, files=", ".join(files))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise fail(KEY_FILE["readable"], mode=mode, shown=stat.filemode(path.stat().st_mode))
    text = path.read_text(encoding="utf-8", errors="replace")
    numbers = _numbers_in(text)
    if pair.private not in numbers:
        public = KEY_FILE["holds public"] if pair.public in numbers else ""
        raise fail(KEY_FILE["no private"], public=public)
    return text


def _chmod_after_writing(load_or_create_key: Callable[..., Any]) -> str | None:
    """A ``chmod`` in ``load_or_create_key`` when nothing there creates the file with a
    mode of its own (``os.open`` with a mode, ``mode=``, ``os.umask``): the file was
    made readable by others and made private afterwards. The call as written, or None.

    The mode a file had for a moment cannot be seen afterwards, so the code decides."""
    parsed = syntax_of(load_or_create_key)
    if parsed is None:
        return None
    tree, source = parsed
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]

    def name(call: ast.Call) -> str:
        func = call.func
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")

    chmods = [call for call in calls if name(call) in ("chmod", "fchmod", "lchmod")]
    own_mode = any(
        (name(call) == "open" and isinstance(call.func, ast.Attribute) and len(call.args) >= 3)
        or name(call) == "umask"
        or any(keyword.arg == "mode" for keyword in call.keywords)
        for call in calls
    )
    if not chmods or own_mode:
        return None
    return ast.get_source_segment(source, chmods[0]) or "chmod(…)"


def _key_from(load_or_create_key: Callable[[Path], Any], path: Path, deadline: float) -> Any:
    """One bounded call ``load_or_create_key(path)``: its result, or what it raised."""
    return call_bounded(
        load_or_create_key, path,
        what=f"load_or_create_key({path.name!r})",
        why=KEY_FILE["slow"],
        deadline=deadline,
    )  # fmt: skip


def _check_reused(
    load_or_create_key: Callable[[Path], Any], path: Path, first: Any, deadline: float
) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        second = _key_from(load_or_create_key, path, deadline)
    except CheckFailed:
        raise
    except Exception as exc:  # its own file, read back: what it writes, it cannot read
        raise fail(KEY_FILE["unreadable"], error=refused_as(exc)) from exc
    if path.read_text(encoding="utf-8", errors="replace") != text:
        raise fail(KEY_FILE["rewritten"])
    if getattr(second, "private", None) != first.private:
        raise fail(KEY_FILE["another key"])
    if getattr(second, "public", None) != first.public:
        raise fail(KEY_FILE["reloaded does not fit"])


@explained_in("01_keys", N_("6 · Exercise: a key file of your own"))
def check_load_or_create_key(load_or_create_key: Callable[[Path], Any]) -> None:
    """``load_or_create_key(path)`` must keep one private key in a private text file."""
    refuse_whole_power(load_or_create_key)
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "student.key"
        deadline = time.monotonic() + PURE_WAIT  # one bound for the four calls
        seed, *other_seeds = FAIR_SEEDS
        with seeded_random(seed):
            first = _key_from(load_or_create_key, path, deadline)
        _check_pair(first)
        _check_saved_privately(path, first)
        chmod = _chmod_after_writing(load_or_create_key)
        if chmod is not None:
            raise fail(KEY_FILE["chmod after"], call=chmod)
        _check_reused(load_or_create_key, path, first, deadline)
        privates = [first.private]
        for number, other_seed in enumerate(other_seeds):
            with seeded_random(other_seed):
                other = _key_from(load_or_create_key, Path(tmp) / f"other-{number}.key", deadline)
            privates.append(other.private)
        # A toy group's secrets are small whatever draws them: name the group first.
        if first.group.bits < 2048:
            raise fail(KEY_FILE["small group"], group=first.group.name, bits=first.group.bits)
        # A secret from a small range is refused by its size: two draws from it may or may
        # not be equal, and a verdict that hangs on that would change from run to run.
        if first.private.bit_length() < SMALL_SECRET_BITS:
            raise fail(KEY_FILE["small secret"], bits=first.private.bit_length())
        problem = _secret_problem(privates)
        if problem is not None:
            raise fail(problem)
    passed(KEY_FILE["passed"])


def _secret_problem(privates: list[int]) -> str | None:
    """Why the secret is not secret (course mistake 2), from three new key files' private
    numbers: the first two made with ``random`` seeded alike, the third with another seed.
    ``secrets`` ignores seeds: two of its draws coincide with a chance below 2^-2000."""
    if privates[0] == privates[1] != privates[2]:
        return KEY_FILE["random"]
    if len(set(privates)) < len(privates):
        return KEY_FILE["constant"]
    return None


@check_load_or_create_key.hidden
def hidden_key_file(load_or_create_key: Callable[[Path], Any]) -> None:
    """One more key file, in a fresh folder: private, reused, consistent; and new files
    with ``random`` seeded as in the check: a fresh secret each."""
    with tempfile.TemporaryDirectory() as tmp:
        privates = []
        for number, seed in enumerate(FAIR_SEEDS):
            with seeded_random(seed):
                pair = returned_within(
                    load_or_create_key, Path(tmp) / f"seeded-{number}.key", timeout=HIDDEN_WAIT
                )
            privates.append(pair.private)
        expect(_secret_problem(privates) is None)
        path = Path(tmp) / "nested name.key"
        first = returned_within(load_or_create_key, path, timeout=HIDDEN_WAIT)
        text = path.read_text(encoding="utf-8", errors="replace")
        again = returned_within(load_or_create_key, path, timeout=HIDDEN_WAIT)
        expect(again.private == first.private and again.public == first.public)
        expect(path.read_text(encoding="utf-8", errors="replace") == text)
        expect(path.stat().st_mode & 0o077 == 0)
        expect(_chmod_after_writing(load_or_create_key) is None)
        expect(pow(first.group.g, first.private, first.group.p) == first.public)
