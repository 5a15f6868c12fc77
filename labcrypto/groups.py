"""Diffie-Hellman groups: the public numbers ``p`` and ``g`` everyone agrees on.

A group is public. Alice picks a secret exponent ``a`` and publishes
``A = g^a mod p``; Bob does the same with ``b`` and ``B``; both can then
compute ``K = B^a = A^b mod p``. Anyone may know ``p``, ``g``, ``A`` and ``B``:
the secret is the exponent (the course text says "only he knows p and q" —
that is a slip; p and g are public).

What lives here (used from notebook 01 on):

* ``TOY`` — the course's numbers, ``p = 23, g = 5``: small enough to check
  by hand, and to break by trying every exponent.
* ``small_safe_prime_group(bits, seed)`` — groups of 8 to 64 bits for the
  brute-force demo, the same ones every run for the same seed.
* ``MODP2048`` (RFC 3526, group 14) and ``FFDHE2048`` (RFC 7919) — the real
  2048-bit groups. ``FFDHE2048`` is the default. Their strength is about
  103 bits (RFC 7919, appendix A; NIST rates 2048-bit groups 112), not 128:
  enough for a course, and what TLS still accepts, but a 3072-bit group or
  X25519 is what you would pick for 128.
* ``validate_public(group, y)`` — the checks a receiver must make before it
  uses a peer's public value.

Why "safe primes"? A safe prime is ``p = 2q + 1`` with ``q`` prime too. The
numbers ``1 .. p-1`` then split into a subgroup of prime order ``q`` (the
squares) and the rest. Working in the prime-order subgroup means an attacker
cannot push our secret into a tiny subgroup and learn it piece by piece
(the "small subgroup attack"); that is why we check every public value.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import SupportsInt

from .errors import InvalidPublicValue, UnknownGroup
from .i18n import N_

#: ``LABCRYPTO_ARITHMETIC=python`` makes every group use CPython's ``pow`` (the
#: benchmark compares both paths; nothing else should need it).
ARITHMETIC_ENV = "LABCRYPTO_ARITHMETIC"


@functools.cache
def _gmp_powmod_sec() -> Callable[[int, int, int], SupportsInt] | None:
    """GMP's constant-time powmod, unless gmpy2 is missing or switched off.

    Imported on first use, not with this module: gmpy2 reads its version
    through ``importlib.metadata``, which pulls in ``email``, ``zipfile`` and
    ``socket`` — a tenth of a second, and modules the protocol core keeps
    out of a notebook that only looks at ``p = 23``.
    """
    if os.environ.get(ARITHMETIC_ENV, "").strip().lower() == "python":
        return None
    try:
        import gmpy2
    except ImportError:  # pragma: no cover - a dependency; this keeps a broken venv usable
        return None

    def powmod_sec(base: int, exponent: int, modulus: int) -> SupportsInt:
        # A context of our own for each call, which lets GMP work without
        # holding Python's GIL (gmpy2's default holds it: then one thread's
        # exponentiation stalls every other thread of a server for up to
        # the interpreter's 5 ms switch interval). Fresh each time because
        # gmpy2's contexts belong to one thread; making one costs ~4 µs.
        with gmpy2.context(allow_release_gil=True):
            return gmpy2.powmod_sec(base, exponent, modulus)  # type: ignore[no-any-return]

    return powmod_sec


__all__ = [
    "ARITHMETIC_ENV",
    "FAST_ARITHMETIC_BITS",
    "FFDHE2048",
    "GROUPS",
    "MODP2048",
    "TOY",
    "Group",
    "fast_power_available",
    "get_group",
    "in_subgroup",
    "is_probable_prime",
    "jacobi_symbol",
    "power",
    "small_safe_prime_group",
    "validate_public",
]


@dataclass(frozen=True)
class Group:
    """A Diffie-Hellman group: public prime ``p``, generator ``g``.

    ``q`` is the order of ``g`` (how many distinct values ``g^x mod p``
    takes). ``exponent_bits`` is how large a secret exponent we draw: for a
    2048-bit safe-prime group, RFC 7919 (section 5.2) allows short
    exponents of at least twice the security level. A 2048-bit group is
    *not* 128-bit secure: RFC 7919 (appendix A) estimates ffdhe2048 at about
    103 bits, NIST SP 800-57 rates it 112. A 256-bit exponent is well over
    twice either figure, at a tenth of the cost of a full 2048-bit one.
    """

    name: str
    p: int
    g: int
    q: int
    exponent_bits: int | None = None

    @property
    def bits(self) -> int:
        """Size of ``p`` in bits."""
        return self.p.bit_length()

    @property
    def byte_length(self) -> int:
        """Bytes needed to write any number below ``p`` (fixed-length encodings)."""
        return (self.bits + 7) // 8

    def random_exponent(self, randbelow: Callable[[int], int]) -> int:
        """Draw a secret exponent with ``randbelow`` (pass ``secrets.randbelow``).

        The exponent is in ``[2, q-1]`` for small groups, or a random number
        of ``exponent_bits`` bits (top bit set, so never tiny) for big ones.
        """
        if self.exponent_bits is None or self.exponent_bits >= self.q.bit_length():
            return 2 + randbelow(self.q - 2)
        return (1 << (self.exponent_bits - 1)) | randbelow(1 << (self.exponent_bits - 1))

    def __repr__(self) -> str:
        if self.bits <= 64:
            return f"Group({self.name!r}, p={self.p}, g={self.g})"
        return f"Group({self.name!r}, {self.bits}-bit p, g={self.g})"


#: Groups this large get GMP's arithmetic; smaller ones (toy, the demo groups) keep ``pow``.
FAST_ARITHMETIC_BITS = 1024


def power(base: int, exponent: int, group: Group) -> int:
    """``base ** exponent mod p``: the one place the lab raises numbers to secret powers.

    Two paths, chosen here and nowhere else:

    * small groups (the toy ``p = 23``, the demo groups up to 64 bits) use
      CPython's ``pow`` — the arithmetic students read and type in the
      notebooks. ``pow`` is correct but **not constant-time**: how long it
      takes depends on the bits of the exponent, and an attacker who can
      time many exponentiations with the same secret can learn about it.
    * 2048-bit groups use GMP through ``gmpy2.powmod_sec`` (GMP's
      ``mpz_powm_sec``): about eight times faster than ``pow`` here, and
      written to take the same time and touch the same memory whatever the
      exponent's bits — what real code needs (OpenSSL's
      ``BN_mod_exp_mont_consttime`` is the same idea; an elliptic curve
      such as X25519 is what new protocols pick). GMP lets go of Python's
      GIL while it works, so the threads of a server (two handshakes, a
      chat line) run side by side on two cores. ``fast_power_available``
      says whether gmpy2 is installed; without it ``pow`` is used.

    Both paths give the same numbers (a test checks).
    """
    if exponent > 0 and group.p.bit_length() >= FAST_ARITHMETIC_BITS:  # GMP wants e > 0
        powmod_sec = _gmp_powmod_sec()
        if powmod_sec is not None:
            return int(powmod_sec(base, exponent, group.p))
    return pow(base, exponent, group.p)


def fast_power_available() -> bool:
    """Is GMP's constant-time exponentiation (gmpy2) installed (and not switched off)?"""
    return _gmp_powmod_sec() is not None


def validate_public(group: Group, y: int) -> int:
    """Check a peer's public value ``y`` before using it; return it unchanged.

    The rules, each with its own message:

    1. ``y`` is an integer with ``2 <= y <= p-2``. The values 0, 1 and p-1
       force the shared secret to 0, 1 or ±1: an attacker who sends them
       knows ``K`` without any private key.
    2. ``y`` lies in the subgroup generated by ``g``: ``y^q mod p == 1``.
       Otherwise the attacker learns our exponent modulo a small factor.
    """
    if not isinstance(y, int) or isinstance(y, bool):
        raise InvalidPublicValue(
            N_("a public value must be an integer, got {kind}"), kind=type(y).__name__
        )
    if y < 0 or y >= group.p:
        raise InvalidPublicValue(
            N_("public value out of range: it must be below p (group {group}), got a "
               "{bits}-bit number"),
            group=group.name,
            bits=y.bit_length(),
        )
    if y in (0, 1, group.p - 1):
        shown = "p-1" if y == group.p - 1 else str(y)
        raise InvalidPublicValue(
            N_("public value {value} is forbidden: it makes the shared secret predictable "
               "(anyone can compute K without a private key)"),
            value=shown,
        )
    if not in_subgroup(group, y):
        raise InvalidPublicValue(
            N_("public value is not in the subgroup generated by g (y^q mod p != 1 in group "
               "{group}): a small-subgroup attack, or a key from another group"),
            group=group.name,
        )
    return y


def in_subgroup(group: Group, y: int) -> bool:
    """Is ``y`` in the subgroup generated by ``g``, i.e. is ``y^q mod p == 1``?

    For a safe prime (``q = (p-1)/2``) that subgroup is exactly the
    squares mod p, and Euler's criterion says ``y^q mod p`` is the Legendre
    symbol ``(y/p)``. The Jacobi-symbol algorithm below computes it like
    Euclid's gcd instead of a 2048-bit exponentiation. Both give the same
    answer; a test checks that. For 2048-bit groups GMP's ``jacobi`` does
    the same steps in C (about a hundredth of a millisecond, where the
    Python loop below takes most of one: as long as an exponentiation).
    """
    if group.q == (group.p - 1) // 2:
        return _jacobi(y, group.p) == 1
    return pow(y, group.q, group.p) == 1


def _jacobi(a: int, n: int) -> int:
    """``jacobi_symbol(a, n)``, by GMP when ``n`` is big and gmpy2 is there (same answer)."""
    if n.bit_length() >= FAST_ARITHMETIC_BITS and _gmp_powmod_sec() is not None:
        import gmpy2  # loaded already by _gmp_powmod_sec

        return int(gmpy2.jacobi(a, n))
    return jacobi_symbol(a, n)


def jacobi_symbol(a: int, n: int) -> int:
    """The Jacobi symbol ``(a/n)`` for odd ``n > 0``: 1, -1, or 0.

    The rules used: ``(2/n) = -1`` exactly when ``n mod 8`` is 3 or 5, and
    quadratic reciprocity, ``(a/n) = -(n/a)`` exactly when both are 3 mod 4.
    """
    if n <= 0 or n % 2 == 0:
        raise ValueError("the Jacobi symbol needs an odd positive n")
    a %= n
    result = 1
    while a:
        twos = (a & -a).bit_length() - 1  # how many factors of 2 divide a
        a >>= twos
        if twos % 2 == 1 and n % 8 in (3, 5):
            result = -result
        a, n = n, a
        if a % 4 == 3 and n % 4 == 3:
            result = -result
        a %= n
    return result if n == 1 else 0


# --- primality ---------------------------------------------------------------

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def is_probable_prime(n: int, rounds: int = 40, rng: random.Random | None = None) -> bool:
    """Miller-Rabin primality test.

    For ``n < 3.3 * 10^24`` the first 13 primes as bases give an exact
    answer; above that, ``rounds`` random bases make a wrong "prime" answer
    less likely than ``4^-rounds``.
    """
    if n < 2:
        return False
    for small in _SMALL_PRIMES:
        if n % small == 0:
            return n == small
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    if n < 3_317_044_064_679_887_385_961_981:
        bases: list[int] = list(_SMALL_PRIMES[:13])
    else:
        rng = rng or random.Random(n)
        bases = [rng.randrange(2, n - 1) for _ in range(rounds)]
    for base in bases:
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def small_safe_prime_group(bits: int, seed: int = 0) -> Group:
    """Make a ``bits``-bit safe-prime group for demos (8 <= bits <= 64).

    Reproducible: the same ``(bits, seed)`` always gives the same group,
    so a notebook's plot looks the same on every run. Never use these for
    real secrets: a 64-bit discrete log is within reach of a laptop.
    ``g`` generates the subgroup of prime order ``q = (p-1)/2``.
    """
    if not 8 <= bits <= 64:
        raise ValueError(f"bits must be between 8 and 64, got {bits}")
    rng = random.Random(f"labcrypto-safe-prime-{bits}-{seed}")
    while True:
        # q has bits-1 bits, top bit set, odd; then p = 2q + 1 has exactly `bits` bits.
        q = rng.getrandbits(bits - 1) | (1 << (bits - 2)) | 1
        p = 2 * q + 1
        if is_probable_prime(q) and is_probable_prime(p):
            break
    g = next(h for h in range(2, p) if pow(h, q, p) == 1)  # the first square other than 1
    return Group(name=f"safe{bits}-{seed}", p=p, g=g, q=q)


# --- the named groups ---------------------------------------------------------

#: The course's numbers. 5 generates all 22 non-zero values mod 23, so q = 22.
TOY = Group(name="toy23", p=23, g=5, q=22)

#: RFC 3526, section 3: the 2048-bit MODP group (group 14), g = 2.
#: p = 2^2048 - 2^1984 - 1 + 2^64 * ( [2^1918 pi] + 124476 )
_MODP2048_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D"
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
MODP2048 = Group(
    name="modp2048", p=_MODP2048_P, g=2, q=(_MODP2048_P - 1) // 2, exponent_bits=256
)

#: RFC 7919, appendix A.1: ffdhe2048, g = 2.
#: p = 2^2048 - 2^1984 + {[2^1918 * e] + 560316} * 2^64 - 1
_FFDHE2048_P = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1"
    "D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9"
    "7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD6561"
    "2433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE735"
    "30ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB"
    "B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB19"
    "0B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD73"
    "3BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA"
    "886B423861285C97FFFFFFFFFFFFFFFF",
    16,
)
FFDHE2048 = Group(
    name="ffdhe2048", p=_FFDHE2048_P, g=2, q=(_FFDHE2048_P - 1) // 2, exponent_bits=256
)

#: Every group a key file or handshake may name, by name.
GROUPS: dict[str, Group] = {grp.name: grp for grp in (TOY, MODP2048, FFDHE2048)}


def get_group(name: str) -> Group:
    """Look a group up by name (``"toy23"``, ``"modp2048"``, ``"ffdhe2048"``, ``"safe32-0"``)."""
    key = name.strip().lower()
    if key in GROUPS:
        return GROUPS[key]
    if key.startswith("safe") and "-" in key:
        bits_text, _, seed_text = key[4:].partition("-")
        if bits_text.isdigit() and seed_text.isdigit():
            return small_safe_prime_group(int(bits_text), int(seed_text))
    known = ", ".join(sorted(GROUPS))
    raise UnknownGroup(
        N_("unknown group {name}; known groups: {known} (or safeBITS-SEED)"),
        name=repr(name),
        known=known,
    )
