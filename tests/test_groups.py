"""Groups: the RFC constants, safe primes, and the validation of public values."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from labcrypto import groups
from labcrypto.errors import InvalidPublicValue, UnknownGroup

DATA = Path(__file__).parent / "data"


def rfc_hex(filename: str) -> int:
    """The prime as printed in an RFC excerpt: the block of 8-digit hex words."""
    text = (DATA / filename).read_text()
    words = re.findall(r"^\s+((?:[0-9A-F]{8} ?)+)$", text, flags=re.MULTILINE)
    return int("".join(words).replace(" ", ""), 16)


def floor_e_times_2_to(bits: int) -> int:
    """floor(2^bits * e), from the series e = sum 1/k!, in integers."""
    one = 1 << (bits + 64)
    total, term, k = 0, one, 0
    while term:
        total, k = total + term, k + 1
        term //= k
    return total >> 64


def floor_pi_times_2_to(bits: int) -> int:
    """floor(2^bits * pi), from Machin's formula pi = 16 atan(1/5) - 4 atan(1/239)."""
    one = 1 << (bits + 64)

    def atan_inv(x: int) -> int:
        total, term, n, sign = 0, one // x, 1, 1
        while term:
            total += sign * (term // n)
            term, n, sign = term // (x * x), n + 2, -sign
        return total

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 64


def test_ffdhe2048_matches_rfc7919_hex_and_formula():
    assert groups.FFDHE2048.p == rfc_hex("rfc7919_appendix_a1.txt")
    formula = 2**2048 - 2**1984 + (floor_e_times_2_to(1918) + 560316) * 2**64 - 1
    assert groups.FFDHE2048.p == formula
    assert groups.FFDHE2048.g == 2


def test_modp2048_matches_rfc3526_hex_and_formula():
    assert groups.MODP2048.p == rfc_hex("rfc3526_section3.txt")
    formula = 2**2048 - 2**1984 - 1 + 2**64 * (floor_pi_times_2_to(1918) + 124476)
    assert groups.MODP2048.p == formula
    assert groups.MODP2048.g == 2


@pytest.mark.parametrize("group", [groups.FFDHE2048, groups.MODP2048], ids=lambda g: g.name)
def test_rfc_groups_are_safe_primes_and_g_generates_the_prime_order_subgroup(group):
    assert group.p.bit_length() == 2048
    assert groups.is_probable_prime(group.p, rounds=8)
    assert groups.is_probable_prime(group.q, rounds=8)
    assert group.p == 2 * group.q + 1
    assert pow(group.g, group.q, group.p) == 1


def test_toy_group_is_the_course_numbers():
    assert (groups.TOY.p, groups.TOY.g) == (23, 5)
    assert len({pow(5, x, 23) for x in range(1, 23)}) == groups.TOY.q


def test_miller_rabin_agrees_with_trial_division():
    def by_trial(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))

    assert [n for n in range(3000) if groups.is_probable_prime(n)] == [
        n for n in range(3000) if by_trial(n)
    ]
    assert not groups.is_probable_prime(3215031751)  # a strong pseudoprime to bases 2, 3, 5, 7


@pytest.mark.parametrize("bits", [8, 12, 16, 24, 32, 48, 64])
def test_small_safe_prime_groups(bits):
    group = groups.small_safe_prime_group(bits, seed=3)
    assert group.p.bit_length() == bits
    assert groups.is_probable_prime(group.p) and groups.is_probable_prime(group.q)
    assert group.p == 2 * group.q + 1
    assert pow(group.g, group.q, group.p) == 1 and group.g != 1
    assert groups.small_safe_prime_group(bits, seed=3) == group  # reproducible
    assert groups.get_group(group.name) == group


def test_small_safe_prime_group_rejects_sizes_outside_the_demo_range():
    for bits in (7, 65):
        with pytest.raises(ValueError, match="between 8 and 64"):
            groups.small_safe_prime_group(bits)


def test_different_seeds_give_different_groups():
    assert len({groups.small_safe_prime_group(32, seed).p for seed in range(5)}) == 5


@pytest.mark.parametrize(
    "value, rule",
    [
        (0, "forbidden"),
        (1, "forbidden"),
        ("p-1", "forbidden"),
        ("p", "out of range"),
        ("p+5", "out of range"),
        (-3, "out of range"),
        ("non-square", "not in the subgroup"),
    ],
)
def test_validate_public_names_the_rule_that_failed(value, rule):
    group = groups.FFDHE2048
    if value == "non-square":
        value = next(y for y in range(3, 100) if pow(y, group.q, group.p) != 1)
    elif isinstance(value, str):
        value = eval(value, {"p": group.p})  # the test's own table of expressions
    with pytest.raises(InvalidPublicValue, match=rule):
        groups.validate_public(group, value)


def test_validate_public_accepts_real_public_values():
    rng = random.Random(1)
    for _ in range(20):
        y = pow(2, rng.getrandbits(256), groups.FFDHE2048.p)
        assert groups.validate_public(groups.FFDHE2048, y) == y


def test_validate_public_rejects_non_integers():
    with pytest.raises(InvalidPublicValue, match="integer"):
        groups.validate_public(groups.TOY, "5")
    with pytest.raises(InvalidPublicValue):
        groups.validate_public(groups.TOY, True)


def test_fast_subgroup_check_agrees_with_exponentiation():
    rng = random.Random(7)
    for group in (groups.FFDHE2048, groups.small_safe_prime_group(40, 1)):
        for _ in range(100):
            y = rng.randrange(2, group.p - 1)
            assert groups.in_subgroup(group, y) == (pow(y, group.q, group.p) == 1)


def test_jacobi_symbol_matches_eulers_criterion_for_small_primes():
    for p in (3, 5, 7, 11, 13, 101, 103):
        for a in range(p):
            euler = pow(a, (p - 1) // 2, p)
            assert groups.jacobi_symbol(a, p) == (-1 if euler == p - 1 else euler)


def test_unknown_group_name():
    with pytest.raises(UnknownGroup, match="unknown group"):
        groups.get_group("ffdhe9999")
    assert groups.get_group(" FFDHE2048 ") is groups.FFDHE2048


def test_random_exponents_use_the_group_sizes():
    import secrets

    big = [groups.FFDHE2048.random_exponent(secrets.randbelow) for _ in range(50)]
    assert all(e.bit_length() == 256 for e in big)
    assert len(set(big)) == 50
    small = {groups.TOY.random_exponent(secrets.randbelow) for _ in range(500)}
    assert small <= set(range(2, groups.TOY.q))


def test_gmp_and_cpython_arithmetic_give_the_same_numbers(monkeypatch):
    """groups.power: GMP's powmod_sec for 2048-bit groups, CPython's pow for small ones.
    Both paths must agree, on random numbers and on the edges (exponent 0 and 1, base 1)."""
    import secrets

    assert groups.fast_power_available(), "gmpy2 is a dependency: pip install -r requirements.txt"
    cases = [(1, 5), (7, 0), (7, 1)] + [
        (secrets.randbelow(groups.FFDHE2048.p), secrets.randbits(256)) for _ in range(20)
    ]
    for group in (groups.FFDHE2048, groups.MODP2048):
        for base, exponent in cases:
            assert groups.power(base, exponent, group) == pow(base, exponent, group.p)
    monkeypatch.setenv(groups.ARITHMETIC_ENV, "python")
    groups._gmp_powmod_sec.cache_clear()
    try:
        assert not groups.fast_power_available()
        base, exponent = cases[-1]
        assert groups.power(base, exponent, groups.FFDHE2048) == pow(
            base, exponent, groups.FFDHE2048.p
        )
    finally:
        monkeypatch.delenv(groups.ARITHMETIC_ENV)
        groups._gmp_powmod_sec.cache_clear()
    assert groups.fast_power_available()


def test_gmp_and_python_jacobi_symbols_agree():
    import secrets

    import gmpy2

    p = groups.FFDHE2048.p
    values = [0, 1, 2, p - 1, p - 2] + [secrets.randbelow(p) for _ in range(200)]
    for value in values:
        assert groups._jacobi(value, p) == groups.jacobi_symbol(value, p) == gmpy2.jacobi(value, p)


def test_gmp_lets_go_of_the_gil_while_it_works(monkeypatch):
    """groups.power runs GMP in a context that releases the GIL (gmpy2's default holds it,
    and then one thread's exponentiation stalls every other thread of a server)."""
    import threading

    import gmpy2

    seen: list[bool] = []
    real = gmpy2.powmod_sec

    def spy(base, exponent, modulus):
        seen.append(gmpy2.get_context().allow_release_gil)
        return real(base, exponent, modulus)

    monkeypatch.setattr(gmpy2, "powmod_sec", spy)
    group = groups.FFDHE2048
    assert groups.power(5, 1 << 255 | 12345, group) == pow(5, 1 << 255 | 12345, group.p)
    # In a fresh thread too (gmpy2's contexts belong to one thread each).
    thread = threading.Thread(target=groups.power, args=(7, 1 << 255 | 99, group))
    thread.start()
    thread.join(10)
    assert seen == [True, True]
    assert not gmpy2.get_context().allow_release_gil  # the caller's own context is untouched
