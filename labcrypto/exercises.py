"""The checks behind the notebooks' exercises: feedback in plain words.

Each ``check_...`` function takes the function a student wrote, runs it on
cases the reference implementation answers, and either prints one short
line saying what passed, or raises ``CheckFailed`` — an ``AssertionError``,
so nbgrader counts it as a failed test — whose message says what was
expected, what came back, and which known mistake of this lab it looks
like (the numbers refer to the mistakes list of the course notes: "mistake
8" is a key file overwritten on every run, and so on).

The checks never need a network or a server, and each finishes in well
under a second, so a graded cell can never hang. Used by notebooks
01_keys (public value, shared secret, key file), 02_exchange (framing,
breaking the toy cipher, the message loop), 03_allowlist (the CSV check, a
new student), 04_two_ports (the client's handoff, a port pool) and 05_ftp
(the home-folder path check, a recursive ``du``). The checks of 03-05 run
the student's code against real servers on 127.0.0.1, each bounded by
timeouts.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import secrets
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .ciphers import CaesarCipher
from .errors import ChannelClosed, ConnectionLost, LabCryptoError
from .groups import FFDHE2048, TOY, Group, is_probable_prime, small_safe_prime_group
from .keys import KeyPair, generate
from .ports import free_port_range

__all__ = [
    "SECTIONS",
    "CheckFailed",
    "DhOutcome",
    "check_break_caesar",
    "check_dh_client",
    "check_du",
    "check_follow_handoff",
    "check_framing",
    "check_is_allowed",
    "check_join_as_new_student",
    "check_load_or_create_key",
    "check_message_loop",
    "check_my_numbers",
    "check_port_pool",
    "check_public_value",
    "check_safe_path",
    "check_shared_secret",
    "free_port_range",
    "run_dh_server",
    "tcp_pair",
]

#: Where each exercise is explained: check cell grade id -> (notebook, section heading).
#: A failing check ends with a pointer to that section (tests/test_grading.py checks that
#: every heading is really in its notebook).
SECTIONS: dict[str, tuple[str, str]] = {
    "check_public_value": ("01_keys", "2 · Exercise: compute a public value"),
    "check_shared_secret": ("01_keys", "3 · Exercise: the shared secret, and values to refuse"),
    "check_my_numbers": ("01_keys", "Exercise: your own numbers"),
    "check_load_or_create_key": ("01_keys", "6 · Exercise: a key file of your own"),
    "check_framing": ("02_exchange", "2 · Exercise: frames on a stream"),
    "check_dh_client": ("02_exchange", "Exercise: the course's exchange over TCP, done right"),
    "check_break_caesar": ("02_exchange", "Exercise: read it without the key"),
    "check_chat_loop": (
        "02_exchange",
        "6 · Exercise: a message loop that knows nothing about keys (task 2)",
    ),
    "check_is_allowed": ("03_allowlist", "6 · Exercise: the allowlist check"),
    "check_join_as_new_student": ("03_allowlist", "7 · Exercise: a new student joins"),
    "check_follow_handoff": ("04_two_ports", "3 · Exercise: the client's half of the handoff"),
    "check_port_pool": ("04_two_ports", "5 · Exercise: a port pool"),
    "check_safe_path": ("05_ftp", "5 · Exercise: the path check"),
    "check_du": ("05_ftp", "6 · Exercise: `du` on the API"),
}

_Check = TypeVar("_Check", bound=Callable[..., None])


def _explained_in(grade_id: str) -> Callable[[_Check], _Check]:
    """Decorate a check: its failures end with the section that explains the exercise."""
    notebook, heading = SECTIONS[grade_id]
    pointer = f"\n→ Explained in notebook {notebook}, section «{heading}»."

    def decorate(check: _Check) -> _Check:
        @functools.wraps(check)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            try:
                check(*args, **kwargs)
            except CheckFailed as failure:
                text = str(failure)
                if "→ Explained in" in text:
                    raise
                raise CheckFailed(text + pointer) from None

        return wrapper  # type: ignore[return-value]

    return decorate


class CheckFailed(LabCryptoError, AssertionError):
    """An exercise check that did not pass; the message says why and what to try."""


def _fail(message: str) -> CheckFailed:
    return CheckFailed("\n" + message.strip())


def _passed(message: str) -> None:
    # The one place the package prints: a check's result, in the notebook's own
    # thread, in the check cell the student just ran.
    print(f"✔ {message}")


def _code_of(func: Callable[..., Any]) -> str:
    """The source of ``func`` without comments and docstrings ("" if unavailable)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return ""
    source = re.sub(r'("""|\'\'\')(.|\n)*?\1', "", source)
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


def _call(func: Callable[..., Any], *args: Any) -> Any:
    """Call the student's function; turn "not written yet" into a friendly failure."""
    try:
        return func(*args)
    except NotImplementedError:
        raise _fail(
            f"{func.__name__} is not written yet: replace `raise NotImplementedError()` "
            "with your code, run that cell, then run this one again."
        ) from None


# --- notebook 01: public value ---------------------------------------------------


@_explained_in("check_public_value")
def check_public_value(public_value: Callable[[Group, int], int]) -> None:
    """``public_value(group, a)`` must return ``g^a mod p``, fast, for any group."""
    if re.search(r"\*\*", _code_of(public_value)):
        raise _fail(
            "Your code uses `**`. `g ** a % p` first computes the whole power g^a and only "
            "then reduces it: for a real 256-bit secret that number has about 10^76 digits, "
            "and the cell would never finish. Use pow(g, a, p): it reduces at every step."
        )
    cases = [(TOY, a) for a in range(2, TOY.q)]
    small = small_safe_prime_group(32)
    cases += [(small, small.random_exponent(secrets.randbelow)) for _ in range(3)]
    cases += [(FFDHE2048, FFDHE2048.random_exponent(secrets.randbelow))]
    for group, a in cases:
        p, g = group.p, group.g
        got = _call(public_value, group, a)
        want = pow(g, a, p)
        if got == want:
            continue
        where = f"public_value({group!r}, a={a if a < 10**6 else 'a big secret'})"
        if not isinstance(got, int):
            raise _fail(f"{where} returned {type(got).__name__} {got!r:.60}; expected an int.")
        hints = [
            (
                pow(a, g, p),
                "you computed a^g mod p: the base and exponent are swapped. "
                "A = g^a mod p: the public g is the base, your secret a the exponent.",
            ),
            (a, "you returned the secret a itself: never send a, send A = g^a mod p."),
            (g * a % p, "you multiplied g·a; A is a power, g^a mod p."),
            (pow(g, a, p - 1), "you reduced mod p-1; A = g^a mod p."),
        ]
        if a < 200:
            hints.append(
                (g**a, "the result is not reduced mod p: forgot `% p` (or pow's 3rd argument)?")
            )
        hint = next((text for value, text in hints if got == value), "")
        shown = got if abs(got) < 10**12 else f"a {got.bit_length()}-bit number"
        raise _fail(
            f"{where} returned {shown}, expected {want if want < 10**12 else 'g^a mod p'}.\n"
            + (f"It looks like {hint}" if hint else "Check: A = pow(group.g, a, group.p).")
        )
    _passed(f"public_value is right on {len(cases)} cases, from p = 23 up to 2048 bits.")


# --- notebook 01: shared secret ---------------------------------------------------


def _invalid_values(group: Group) -> list[tuple[int, str]]:
    values = [
        (0, "0 makes K = 0"),
        (1, "1 makes K = 1 whatever your secret"),
        (group.p - 1, "p-1 makes K = ±1"),
        (group.p, "p is out of range"),
        (group.p + 7, "a number ≥ p is out of range"),
    ]
    if group.q == (group.p - 1) // 2:
        # A non-square lies outside the prime-order subgroup (small-subgroup attack).
        outsider = next(y for y in range(2, 1000) if pow(y, group.q, group.p) != 1)
        values.append((outsider, f"{outsider} is not in the subgroup generated by g"))
    return values


@_explained_in("check_shared_secret")
def check_shared_secret(shared_secret: Callable[[Group, int, int], int]) -> None:
    """``shared_secret(group, my_secret, peer_public)`` must return ``peer^my mod p``,
    the same number on both sides, and refuse public values that must not be used."""
    trials = [(TOY, 6, 15)]  # the textbook example: A = 8, B = 19, K = 2
    # keys.generate never makes a public value of 1 or p-1 (they would be refused).
    trials += [(TOY, generate(TOY).private, generate(TOY).private) for _ in range(5)]
    big_a, big_b = generate(FFDHE2048), generate(FFDHE2048)
    trials.append((FFDHE2048, big_a.private, big_b.private))
    for group, a, b in trials:
        p, g = group.p, group.g
        public_a, public_b = pow(g, a, p), pow(g, b, p)
        want = pow(public_b, a, p)
        got_alice = _call(shared_secret, group, a, public_b)
        got_bob = _call(shared_secret, group, b, public_a)
        small = p < 1000
        where = (
            f"with p = {p}, a = {a}, b = {b} (A = {public_a}, B = {public_b})"
            if small
            else "in the 2048-bit group"
        )
        if got_alice == want and got_bob == want:
            continue
        got = got_alice if got_alice != want else got_bob
        mine, peer = (a, public_b) if got_alice != want else (b, public_a)
        if not isinstance(got, int):
            raise _fail(
                f"shared_secret returned {type(got).__name__} {got!r:.60} {where}; "
                "expected an int (K)."
            )
        hints = [
            (
                pow(g, mine, p),
                "you computed your own public value g^a mod p. K uses the "
                "*peer's* public value as the base: K = B^a mod p.",
            ),
            (
                pow(mine, peer, p),
                "the peer's public value is used as the exponent (course "
                "mistake 4). K = B^a mod p: the base is the peer's B, the exponent your a.",
            ),
            (peer * mine % p, "you multiplied B·a; K is a power: B^a mod p."),
            (peer, "you returned the peer's public value itself."),
        ]
        if small:
            hints.append((peer**mine, "K is not reduced mod p (forgot `% p`?)."))
        hint = next((text for value, text in hints if got == value), "")
        shown_want = want if small else "B^a mod p"
        shown_got = got if small or abs(got) < 10**12 else f"a {got.bit_length()}-bit number"
        raise _fail(
            f"shared_secret gave {shown_got} {where}; expected K = {shown_want}, and the same "
            "number on both sides.\n" + (f"It looks like {hint}" if hint else "")
        )
    for group in (TOY, FFDHE2048):
        for value, why in _invalid_values(group):
            try:
                result = shared_secret(group, 6, value)
            except NotImplementedError:
                raise _fail("shared_secret is not written yet.") from None
            except ValueError:
                continue  # refused, as it should (InvalidPublicValue is a ValueError)
            shown = "p-1" if value == group.p - 1 else ("p" if value == group.p else value)
            shown = shown if not isinstance(shown, int) or shown < 10**6 else "a big number"
            raise _fail(
                f"shared_secret({group.name}, a, {shown}) returned "
                f"{result if isinstance(result, int) and result < 10**6 else 'a number'} "
                f"instead of refusing it: {why}. An attacker who sends this value knows K "
                "without any private key (course mistake 1: public values never checked).\n"
                "Call groups.validate_public(group, peer_public) first: it raises "
                "InvalidPublicValue, a ValueError."
            )
    _passed(
        f"shared_secret agrees on both sides in {len(trials)} exchanges (up to 2048 "
        "bits) and refuses the 0, 1, p-1, out-of-range and out-of-subgroup values."
    )


# --- notebook 01: your own numbers ----------------------------------------------------


@_explained_in("check_my_numbers")
def check_my_numbers(my: Any, my_A: Any, my_K: Any) -> None:
    """``my_A = g^a mod p`` and ``my_K = B^a mod p`` in the student's own group ``my``.

    The expected numbers are never shown: only which step looks wrong.
    """
    if my_A is None or my_K is None:
        raise _fail(
            "my_A and my_K are not written yet: replace the `None`s (and the "
            "`raise NotImplementedError()`) with your computation, run that cell, then this one."
        )
    p, g, a, big_b = my.p, my.g, my.a, my.B
    for name, value in (("my_A", my_A), ("my_K", my_K)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(f"{name} is {type(value).__name__} {value!r:.40}; it should be an int.")
        if not 0 < value < p:
            raise _fail(
                f"{name} = {value} is not between 1 and p-1 = {p - 1}: it does not fit your group "
                "at all. Either it is not reduced mod p, or it was computed for another student's "
                "numbers (copied?). Compute it from `my`, which comes from your student id."
            )
    if my_A != pow(g, a, p):
        hints = [
            (
                pow(a, g, p),
                "the base and exponent are swapped: A = g^a mod p, pow(my.g, my.a, my.p).",
            ),
            (g * a % p, "you multiplied g·a; A is a power: pow(my.g, my.a, my.p)."),
            (pow(big_b, a, p), "that is K, not A: A uses g as the base."),
        ]
        hint = next((text for value, text in hints if my_A == value), "")
        raise _fail(
            f"my_A = {my_A} is not g^a mod p for your group (p = {p}, g = {g}, a = {a}).\n"
            + (
                f"It looks like {hint}"
                if hint
                else "Did you use your own group `my` (not the toy p = 23)?"
            )
        )
    if my_K != pow(big_b, a, p):
        hints = [
            (
                pow(my_A, a, p),
                "you used your own public value A as the base; K = B^a mod p uses Bob's B.",
            ),
            (
                pow(a, big_b, p),
                "Bob's public value is used as the exponent (course mistake 4): K = B^a mod p.",
            ),
            (my_A, "my_K equals my_A: that is your public value, not the shared key."),
            (big_b, "my_K is Bob's public value itself."),
            (big_b * a % p, "you multiplied B·a; K is a power: pow(my.B, my.a, my.p)."),
        ]
        hint = next((text for value, text in hints if my_K == value), "")
        raise _fail(
            f"my_K = {my_K} is not the key you share with Bob (B = {big_b}, your a = {a}).\n"
            + (f"It looks like {hint}" if hint else "K = pow(B, a, p).")
        )
    who = (
        f"student id {my.student_id!r}"
        if my.student_id
        else ("no student id (set STUDENT_ID in the first cell: your instructor grades with yours)")
    )
    _passed(f"my_A and my_K are right for your group p = {p}, g = {g} ({who}).")


# --- notebook 01: the key file ------------------------------------------------------


def _numbers_in(text: str) -> set[int]:
    """Every hex (0x...) or decimal number written in ``text``."""
    found = {int(h, 16) for h in re.findall(r"0[xX]([0-9a-fA-F]+)", text)}
    found |= {int(d) for d in re.findall(r"(?<![0-9a-fA-FxX])([0-9]+)(?![0-9a-fA-FxX])", text)}
    found |= {int(h, 16) for h in re.findall(r"\b([0-9a-fA-F]{16,})\b", text)}
    return found


@_explained_in("check_load_or_create_key")
def check_load_or_create_key(load_or_create_key: Callable[[Path], Any]) -> None:
    """``load_or_create_key(path)`` must keep one private key in a private text file."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "student.key"
        first = _call(load_or_create_key, path)
        for attr in ("private", "public", "group"):
            if not hasattr(first, attr):
                raise _fail(
                    f"load_or_create_key returned {type(first).__name__}; return the "
                    "KeyPair (keys.generate(group) makes one)."
                )
        group = first.group
        if pow(group.g, first.private, group.p) != first.public:
            raise _fail(
                "The key pair returned does not fit together: public != g^private "
                "mod p. Build it with keys.generate(group), or KeyPair(group, private, "
                "pow(group.g, private, group.p)) after loading."
            )
        if not path.exists():
            files = sorted(f.name for f in Path(tmp).iterdir())
            raise _fail(
                f"Nothing was saved at the path you were given ({path.name}); "
                f"the folder holds {files or 'nothing'}. Write the key to `path`."
            )
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise _fail(
                f"The key file has mode {mode:#o} ({stat.filemode(path.stat().st_mode)}): other "
                "users of the machine can read your private key (course mistake 8).\n"
                "Create it private from the start: "
                "fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
                "then open(fd, 'w').\n(path.chmod(0o600) after writing leaves a moment "
                "when others could read it.)"
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        numbers = _numbers_in(text)
        if first.private not in numbers:
            saved_public = first.public in numbers
            raise _fail(
                "The file does not contain your private number a"
                + (
                    " — it holds the public value A, which cannot be turned back into a"
                    if saved_public
                    else ""
                )
                + ". A key file must keep a (not A, and never a shared secret K: K "
                "changes with every peer and session; course mistake 8). Write it as text, "
                "e.g. f'private: {pair.private:#x}'."
            )
        second = _call(load_or_create_key, path)
        if path.read_text(encoding="utf-8", errors="replace") != text:
            raise _fail(
                "The second call rewrote the key file: the key file was overwritten, so every "
                "run makes you a new person (course mistake 8). Reuse the key that is there; "
                "a key overwritten on every run means the server's allowlist no longer knows "
                "you tomorrow."
            )
        if getattr(second, "private", None) != first.private:
            raise _fail(
                "The second call returned a different key than the first, although "
                "the file was there: load it instead of generating a new one "
                "(course mistake 8: a new key on every run)."
            )
        other = _call(load_or_create_key, Path(tmp) / "other.key")
        if other.private == first.private:
            raise _fail(
                "Two different key files got the same private number: the secret is "
                "a constant (course mistake 2). Use keys.generate(group), which draws "
                "it from `secrets`."
            )
        if group.bits < 2048:
            raise _fail(
                f"The key is in {group.name} ({group.bits} bits): a real key belongs in "
                "the 2048-bit group (groups.FFDHE2048, the default of keys.generate)."
            )
    _passed(
        "load_or_create_key keeps one private key in a file only you can read, reuses it "
        "on the next run, and makes a different one for another file."
    )


# --- notebook 02: framing ------------------------------------------------------------

_HEADER = struct.Struct("!I")
_WAIT = 2.0  # seconds a check waits for the student's code on a socket


def _in_thread(func: Callable[..., Any], *args: Any, timeout: float = _WAIT) -> tuple[str, Any]:
    """Run ``func(*args)`` in a helper thread: ``("ok", result)``, ``("error", exc)`` or
    ``("stuck", None)`` if it did not return within ``timeout`` (the caller then closes
    the sockets, which ends any loop still reading them)."""
    outcome: list[tuple[str, Any]] = []

    def run() -> None:
        try:
            outcome.append(("ok", func(*args)))
        except BaseException as exc:  # handed to the main thread, which explains it
            outcome.append(("error", exc))

    worker = threading.Thread(target=run, name="exercise-check", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else ("stuck", None)


#: The words for course mistake 6, used by every check that catches it.
RECV_AS_MESSAGE = (
    "your function read one recv(1024) as one message — TCP does not keep message "
    "boundaries (course mistake 6)"
)


def tcp_pair(timeout: float = _WAIT) -> tuple[socket.socket, socket.socket]:
    """Two ends of one real TCP connection on 127.0.0.1, each with ``timeout`` and NODELAY.

    The checks act as the network peer on one end: with ``TCP_NODELAY``, bytes
    sent a few milliseconds apart leave as separate TCP segments, as they
    would across a real network.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        left = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            right, _ = listener.accept()
        except BaseException:
            left.close()
            raise
    finally:
        listener.close()
    for sock in (left, right):
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return left, right


def _pair() -> tuple[socket.socket, socket.socket]:
    left, right = socket.socketpair()
    left.settimeout(_WAIT)
    right.settimeout(_WAIT)
    return left, right


def _close_all(*socks: socket.socket) -> None:
    """Shut down, then close: ``shutdown`` wakes a thread still blocked in ``recv`` on it."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _read_raw(sock: socket.socket, limit: int = 1 << 16, wait: float = 0.3) -> bytes:
    """Everything available on ``sock`` within a short wait."""
    sock.settimeout(wait)
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(limit)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    sock.settimeout(_WAIT)
    return data


def _receive(
    recv_msg: Callable[[socket.socket], bytes], sock: socket.socket, what: str, hint: str = ""
) -> bytes:
    status, value = _in_thread(recv_msg, sock)
    if status == "stuck":
        raise _fail(
            f"recv_msg did not return within {_WAIT:.0f} s when {what}. It is still "
            f"waiting for bytes that never come (or loops forever).{hint}"
        )
    if status == "error":
        if isinstance(value, NotImplementedError):
            raise _fail("recv_msg is not written yet: replace `raise NotImplementedError()`.")
        if isinstance(value, TimeoutError):
            raise _fail(
                f"recv_msg waited for more bytes than were sent when {what}: read "
                f"exactly 4 header bytes, then exactly `length` bytes.{hint}"
            )
        raise _fail(
            f"recv_msg raised {type(value).__name__}: {value} when {what}. TCP may deliver "
            "fewer bytes than recv() asked for: loop until you have all 4 header bytes, then "
            "all `length` payload bytes (course mistake 6)."
        )
    return value


@_explained_in("check_framing")
def check_framing(
    send_msg: Callable[[socket.socket, bytes], None],
    recv_msg: Callable[[socket.socket], bytes],
    max_message: int = 1 << 20,
) -> None:
    """``send_msg``/``recv_msg`` must keep message boundaries on a real TCP connection."""
    left, right = tcp_pair()
    try:
        _call(send_msg, left, b"hello")
        raw = _read_raw(right)
        want = _HEADER.pack(5) + b"hello"
        if raw != want:
            hint = ""
            if raw.startswith(b"hello"):
                hint = (
                    "there is no length in front: the receiver cannot know where the "
                    "message ends (course mistake 6). "
                )
            elif raw[:4] == (5).to_bytes(4, "little"):
                hint = "the length is little-endian; the network order is big-endian ('!I'). "
            raise _fail(
                f"send_msg(sock, b'hello') put {raw!r} on the wire; expected {want!r} "
                f"(4-byte big-endian length, then the bytes). {hint}"
                "Use struct.pack('!I', len(data)) + data, in one sendall."
            )
        for payload, what in [
            (b"two\nlines", "the message holds a newline"),
            (bytes(range(256)), "the message holds every byte value"),
            (b"x" * 100_000, "the message is 100 kB long"),
            (b"", "the message is empty"),
        ]:
            sender = threading.Thread(
                target=_in_thread, args=(send_msg, left, payload), daemon=True
            )
            sender.start()
            got = _receive(recv_msg, right, what)
            sender.join(_WAIT)
            if got != payload:
                shown = f"{len(got)} bytes" if isinstance(got, bytes | bytearray) else repr(got)
                hint = (
                    " A delimiter such as '\\n' can occur inside the data: only a length "
                    "works for any bytes (course mistake 6)."
                    if b"\n" in payload
                    else ""
                )
                hint += (
                    f" It looks like {RECV_AS_MESSAGE}: one recv() returns whatever has "
                    "arrived, not the whole message. Loop until you have `length` bytes."
                    if len(payload) > 60000
                    else ""
                )
                raise _fail(
                    f"When {what}, recv_msg returned {shown} instead of the "
                    f"{len(payload)} bytes sent.{hint}"
                )

        message = b"split into single bytes"
        frame = _HEADER.pack(len(message)) + message

        def dribble() -> None:
            try:
                for i in range(len(frame)):
                    left.sendall(frame[i : i + 1])
                    threading.Event().wait(0.002)
            except OSError:
                pass  # the check gave up and closed the socket

        dribbler = threading.Thread(target=dribble, daemon=True)
        dribbler.start()
        got = _receive(recv_msg, right, "the message arrived one byte at a time")
        dribbler.join(_WAIT)
        if got != message:
            raise _fail(
                f"The message arrived one byte per TCP segment, and recv_msg returned {got!r}: "
                f"{RECV_AS_MESSAGE}. TCP may cut a message anywhere. Loop until you have all "
                "4 header bytes, then all `length` payload bytes."
            )

        left.sendall(_HEADER.pack(3) + b"one" + _HEADER.pack(3) + b"two")
        first = _receive(recv_msg, right, "two messages arrived in one piece")
        second = _receive(
            recv_msg,
            right,
            "reading the second of two messages sent together",
            " Both arrived in one TCP segment, and the first call took the second message's "
            f"bytes with it: {RECV_AS_MESSAGE}. Read exactly `length` bytes, never more.",
        )
        if (first, second) != (b"one", b"two"):
            raise _fail(
                f"Two messages arrived in one TCP segment; recv_msg returned {first!r} and then "
                f"{second!r}, expected b'one' and b'two': {RECV_AS_MESSAGE}. Read exactly "
                "`length` bytes, never more: the rest belongs to the next message."
            )

        left.sendall(_HEADER.pack(0xFFFF_FFF0))
        status, value = _in_thread(recv_msg, right)
        if status != "error" or not isinstance(value, ValueError | LabCryptoError):
            raise _fail(
                f"A peer announced a message of 4 GB (more than max_message = {max_message}); "
                + (
                    "recv_msg kept waiting for it"
                    if status == "stuck"
                    else f"recv_msg {'returned' if status == 'ok' else 'raised'} "
                    f"{type(value).__name__}"
                )
                + ". Check the length against the limit *before* reading, and raise "
                "ValueError: otherwise four bytes from anyone make you allocate 4 GB."
            )
    finally:
        _close_all(left, right)

    left, right = tcp_pair()
    try:
        left.sendall(_HEADER.pack(10) + b"abc")
        left.close()
        status, value = _in_thread(recv_msg, right)
        if status == "stuck":
            raise _fail(
                "The peer closed after 3 of 10 bytes and recv_msg never returned. "
                "recv() returning b'' means the connection is closed: raise "
                "ConnectionError then, do not loop forever."
            )
        if status == "ok":
            raise _fail(
                f"The peer closed after 3 of 10 bytes, and recv_msg returned {value!r} "
                "as if it were a whole message. Raise ConnectionError instead."
            )
        if not isinstance(value, ConnectionError | EOFError | ConnectionLost | ChannelClosed):
            raise _fail(
                f"The peer closed after 3 of 10 bytes; recv_msg raised "
                f"{type(value).__name__}: {value}. Raise ConnectionError."
            )
    finally:
        _close_all(left, right)
    _passed(
        "send_msg/recv_msg keep every message whole: split into single bytes, two in one "
        "piece, newlines and binary data, 100 kB; a 4 GB length and a cut connection "
        "are refused."
    )


# --- notebook 02: the course's exchange over TCP ----------------------------------------


@dataclass
class DhOutcome:
    """What happened when a student's ``dh_client`` met the check's server."""

    status: str  #: "ok" (returned), "error" (raised) or "stuck" (did not return in time)
    value: Any  #: what it returned, or the exception it raised
    sent: bytes  #: every byte the client sent to the server
    shared: int | None = None  #: the server's K, if the client sent a usable A
    A: int | None = None  #: the client's public value as read from its frame
    problems: list[str] = field(default_factory=list)  #: what the server could not read

    @property
    def secret_on_wire(self) -> bool:
        """Did the server's K travel over the wire (in decimal, hex or as raw bytes)?"""
        k = self.shared
        if k is None or k < 1 << 16:
            return False
        text = self.sent.decode("latin-1").lower()
        raw = k.to_bytes((k.bit_length() + 7) // 8, "big")
        return str(k) in text or f"{k:x}" in text or raw in self.sent


def _frame_json(data: dict[str, Any]) -> bytes:
    body = json.dumps(data).encode()
    return _HEADER.pack(len(body)) + body


def run_dh_server(
    dh_client: Callable[..., int],
    group: Group,
    *,
    p: int | None = None,
    g: int | None = None,
    B: int | None = None,
    min_bits: int | None = None,
    split: bool = False,
    glued: bool = False,
    header: bytes | None = None,
    timeout: float = _WAIT,
) -> DhOutcome:
    """Be the server for one run of ``dh_client(sock, min_bits)`` over TCP on 127.0.0.1.

    The server speaks first: one frame ``{"p": ..., "g": ..., "B": ...}`` (JSON,
    numbers as ints). ``p``/``g``/``B`` replace the fair values to play a hostile
    server; ``split`` sends the frame one byte per TCP segment; ``glued`` sends a
    second frame in the same segment; ``header`` sends only these bytes (say, an
    oversized length). Then it reads what the client sent back.
    """
    p = group.p if p is None else p
    g = group.g if g is None else g
    b = group.random_exponent(secrets.randbelow)
    big_b = pow(g, b, p) if B is None else B
    for _ in range(20):  # with a hostile p or g, let the client fail on p or g, not on B = 1
        if B is not None or big_b not in (0, 1, p - 1):
            break
        b = group.random_exponent(secrets.randbelow)
        big_b = pow(g, b, p)
    wire = _frame_json({"p": p, "g": g, "B": big_b})
    if glued:
        wire += _frame_json({"type": "note", "text": "a second message, in the same segment"})
    if header is not None:
        wire = header
    server, client = tcp_pair(timeout)
    dribbler = None
    try:
        if split:

            def dribble() -> None:
                try:
                    for i in range(len(wire)):
                        server.sendall(wire[i : i + 1])
                        threading.Event().wait(0.002)
                except OSError:
                    pass  # the check gave up and closed the socket

            dribbler = threading.Thread(target=dribble, name="exercise-check-dribble", daemon=True)
            dribbler.start()
        else:
            server.sendall(wire)
        status, value = _in_thread(dh_client, client, min_bits or group.bits, timeout=timeout)
        if dribbler is not None:
            dribbler.join(timeout)
        sent = _read_raw(server, wait=0.05)  # the client has returned: its bytes are here
    finally:
        _close_all(server, client)
        if dribbler is not None:
            dribbler.join(timeout)
    outcome = DhOutcome(status, value, sent)
    if len(sent) >= 4:
        (length,) = _HEADER.unpack(sent[:4])
        try:
            message = json.loads(sent[4 : 4 + length])
            public = message["A"] if isinstance(message, dict) else None
        except (ValueError, KeyError):
            public = None
            outcome.problems.append('its message was not a JSON object with an "A"')
        if isinstance(public, int) and 1 < public < p - 1:
            outcome.A = public
            outcome.shared = pow(public, b, p)
    return outcome


def _dh_case_failed(outcome: DhOutcome, what: str) -> CheckFailed:
    """The failure for a run of the fair server that did not give the same K on both sides."""
    if outcome.status == "stuck":
        return _fail(
            f"dh_client did not return within {_WAIT:.0f} s when {what}. It is waiting for bytes "
            f"that never come: {RECV_AS_MESSAGE}? Read exactly 4 header bytes, then `length`."
        )
    sent = outcome.sent
    if sent.startswith(b"\x80") or sent[4:5] == b"\x80":
        return _fail(
            "dh_client sent a pickle (course mistake 7): the receiver would run pickle.loads on "
            "bytes from the network, which lets the sender run any code on its machine. Send "
            'JSON: write_frame(sock, json.dumps({"A": A}).encode()).'
        )
    if sent[:1] == b"{":
        return _fail(
            "dh_client sent JSON with no length in front: the server cannot know where your "
            "message ends (course mistake 6). Send it as a frame: write_frame(sock, data)."
        )
    if outcome.status == "error":
        exc = outcome.value
        if isinstance(exc, ValueError | KeyError | IndexError | UnicodeDecodeError):
            return _fail(
                f"When {what}, dh_client raised {_refused_as(exc)}. The server's hello was fair; "
                f"it looks like {RECV_AS_MESSAGE}: read the frame with read_frame(sock) (or "
                "your recv_msg), which returns exactly one message however it arrives."
            )
        return _fail(f"When {what}, dh_client raised {_refused_as(exc)} on a fair server.")
    if outcome.problems or outcome.A is None:
        return _fail(
            "The server could not read your public value: send one frame holding "
            '{"A": A} as JSON, with A = g^a mod p (an int between 2 and p-2).'
        )
    got = outcome.value
    if got != outcome.shared:
        hint = ""
        if got == outcome.A:
            hint = " It returned its own public value A: K = B^a mod p."
        return _fail(
            f"dh_client returned {got!r:.60}, but the server computed another K from your A: "
            f"both sides must get the same number.{hint} Use the same secret a for A = g^a mod p "
            "and for K = B^a mod p."
        )
    return _fail("unreachable")  # pragma: no cover


def _composite(bits: int) -> tuple[int, tuple[int, int]]:
    """An odd composite number of ``bits`` bits, the product of two primes of half the size."""
    for seed in range(1000):
        low = small_safe_prime_group(bits // 2, seed).p
        other = small_safe_prime_group(bits - bits // 2, seed + 1).p
        if (low * other).bit_length() == bits:
            return low * other, (low, other)
    raise RuntimeError("no composite found")  # pragma: no cover


def _prime_not_safe(bits: int) -> int:
    """A prime ``p`` of ``bits`` bits with ``(p-1)/2`` not prime."""
    rng = secrets.SystemRandom()
    for _ in range(100_000):
        p = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        if is_probable_prime(p) and not is_probable_prime((p - 1) // 2):
            return p
    raise RuntimeError("no such prime found")  # pragma: no cover


@_explained_in("check_dh_client")
def check_dh_client(dh_client: Callable[..., int]) -> None:
    """``dh_client(sock, min_bits)``: the client's half of the course's exchange, done right.

    The check is the server, over TCP on 127.0.0.1: first fair (the hello whole,
    cut into single-byte segments, glued to a second message), then hostile
    (p not prime, p not safe, p too small, g of order 2, B = 1, a 4 GB length).
    """
    group = small_safe_prime_group(64, seed=secrets.randbelow(10_000))
    fair = [
        ("the server's hello arrived whole", {}),
        ("the server's hello arrived one byte per TCP segment", {"split": True}),
        ("the server's hello and a second message arrived in one TCP segment", {"glued": True}),
    ]
    for what, how in fair:
        outcome = run_dh_server(dh_client, group, **how)
        if outcome.status == "error" and isinstance(outcome.value, NotImplementedError):
            raise _fail(
                "dh_client is not written yet: replace `raise NotImplementedError()` with your "
                "code, run that cell, then run this one again."
            )
        if outcome.secret_on_wire:
            raise _fail(
                "The shared secret was sent on the wire (course mistake 3): the bytes your "
                "client sent contain K. Eve reads everything on the wire; each side computes K, "
                "nobody sends it (notebook 01, section «1 · The idea in small numbers»). Send "
                "only A."
            )
        if outcome.status != "ok" or outcome.value != outcome.shared:
            raise _dh_case_failed(outcome, what)

    (composite, factors), not_safe = _composite(64), _prime_not_safe(64)
    hostile = [
        (
            {"p": composite, "g": 2},
            f"p is not prime: p = {composite} = {factors[0]} × {factors[1]}, and with a "
            "composite p the discrete logarithm is easy. Check "
            "groups.is_probable_prime(p) (course mistake 1: p = 123456, 54, 42).",
        ),
        (
            {"p": not_safe, "g": 2},
            f"p is prime but not a safe prime: (p-1)/2 = {(not_safe - 1) // 2} is not prime, "
            "so g may generate a small subgroup. Check that q = (p-1)/2 is prime too.",
        ),
        (
            {"p": 23, "g": 2},
            "p = 23 is a toy group (5 bits), far below min_bits: refuse groups with "
            "p.bit_length() < min_bits (course mistake 1: p = 7, 23, 151).",
        ),
        (
            {"g": group.p - 1},
            "g = p-1: its only powers are 1 and p-1, so K is one of two numbers anyone can "
            "guess (g never checked: course mistake 1). Check g like a public value: "
            "groups.validate_public(group, g).",
        ),
        (
            {"B": 1},
            "B = 1 makes K = 1 whatever your secret: validate the server's B with "
            "groups.validate_public(group, B) before using it.",
        ),
        (
            {"header": _HEADER.pack(0xFFFF_FFF0)},
            "The server announced a message of 4 GB: check the length against a limit before "
            "reading (read_frame does), or four bytes from anyone make you allocate 4 GB.",
        ),
    ]
    for how, why in hostile:
        outcome = run_dh_server(dh_client, group, **how)
        refused = outcome.status == "error" and isinstance(
            outcome.value, ValueError | LabCryptoError | ConnectionError
        )
        if refused and not outcome.sent:
            continue
        if outcome.status == "stuck":
            done = "kept waiting"
        elif outcome.sent:
            done = "answered with its public value"
        elif outcome.status == "ok":
            done = f"returned {outcome.value!r:.40}"
        else:
            done = f"raised {_refused_as(outcome.value)}"
        raise _fail(
            f"A hostile server: your client {done}; it must refuse (raise ValueError) before "
            f"sending anything.\n{why}"
        )
    _passed(
        "dh_client agrees on K with the server whatever the TCP segments, never sends K, and "
        "refuses a composite p, an unsafe p, a toy p, g = p-1, B = 1 and a 4 GB length."
    )


# --- notebook 02: breaking the toy cipher ---------------------------------------------

_PLAINTEXTS = [
    "meet me at the library at noon, and bring the notes",
    "the password for the lab machines is on the whiteboard",
    '{"type":"say","text":"did anyone finish the second task yet?"}',
    "Caesar had only twenty five keys; this toy cipher has two hundred and fifty six",
    "attack at dawn",
]


@_explained_in("check_break_caesar")
def check_break_caesar(break_caesar: Callable[[bytes], bytes]) -> None:
    """``break_caesar(ciphertext)`` must find the plaintext of a toy-mode frame, with no key."""
    for text in _PLAINTEXTS:
        plaintext = text.encode()
        shift = 1 + secrets.randbelow(255)
        ciphertext = CaesarCipher(shift).seal(plaintext)
        try:
            got = _call(break_caesar, ciphertext)
        except ValueError as exc:
            if "range(0, 256)" not in str(exc):
                raise
            raise _fail(
                f"break_caesar raised {_refused_as(exc)}: a shifted byte went below 0 or above "
                "255, so the shift does not wrap around. Undo a shift with (b - k) % 256."
            ) from None
        if got == plaintext:
            continue
        if isinstance(got, str):
            raise _fail(
                "break_caesar returned a str; return the bytes (plaintext.decode() "
                "is for showing them)."
            )
        hint = ""
        if got == ciphertext:
            hint = "It returned the ciphertext unchanged."
        elif isinstance(got, bytes | bytearray) and got == bytes(
            (b + shift) % 256 for b in ciphertext
        ):
            hint = "It shifted the wrong way: undo the shift with (b - k) % 256."
        raise _fail(
            f"For a message shifted by {shift}, break_caesar returned "
            f"{bytes(got)[:24]!r}… instead of {plaintext[:40]!r}… {hint}\n"
            "Try all 256 shifts, score each candidate (+1 per lowercase letter or space, -1 per "
            "byte outside printable ASCII), and keep the best. Remember % 256: shifts wrap."
        )
    _passed(f"break_caesar read {len(_PLAINTEXTS)} toy-mode messages without the key.")


# --- notebook 02: the message loop ---------------------------------------------------


class _OnlySendRecv:
    """A stand-in channel with only ``send``/``recv``/``recv_text``: anything else is a fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._pending: list[bytes] = []

    def send(self, message: bytes | str) -> None:
        data = message.encode() if isinstance(message, str) else bytes(message)
        self.calls.append(("send", data))
        self._pending.append(b"echo: " + data)

    def recv(self, timeout: float | None = None) -> bytes:
        self.calls.append(("recv", timeout))
        if not self._pending:
            raise _fail(
                "The loop called recv() with nothing sent that could be answered: send a "
                "line, then receive its reply (here recv would wait forever)."
            )
        return self._pending.pop(0)

    def recv_text(self, timeout: float | None = None) -> str:
        return self.recv(timeout).decode()

    def __getattr__(self, name: str) -> Any:
        raise _fail(
            f"The loop used channel.{name}. The message loop may only call channel.send(...) "
            "and channel.recv(...) / recv_text(...): keys, ciphers, frames and sockets are the "
            "channel's business, not the loop's (task 2)."
        )


_FORBIDDEN = {
    "pickle": "pickle (course mistake 7: unpickling network bytes runs the sender's code)",
    "socket": "sockets (the channel owns the socket)",
    "seal": "the cipher's seal/open (the channel encrypts)",
    "cipher": "ciphers (the channel encrypts)",
    "pow(": "pow (key exchange belongs to the handshake, not the loop)",
    "key": "keys (the loop should know nothing about keys)",
}


def _echo_server(channel_factory: Callable[[], Any], ready: list[Any]) -> None:
    try:
        channel = channel_factory()
    except (LabCryptoError, OSError) as exc:
        ready.append(exc)
        return
    ready.append(channel)
    for _ in range(100):  # bounded: a check sends a handful of lines
        try:
            data = channel.recv(timeout=_WAIT)
        except (LabCryptoError, OSError):
            break
        try:
            channel.send(b"echo: " + data)
        except (LabCryptoError, OSError):
            break
    channel.close()


@_explained_in("check_chat_loop")
def check_message_loop(chat_loop: Callable[[Any, list[str]], list[str]]) -> None:
    """``chat_loop(channel, lines)`` sends each line, collects each reply, uses only send/recv."""
    code = _code_of(chat_loop)
    body = code.split(":", 1)[1] if ":" in code else code
    for token, what in _FORBIDDEN.items():
        if token in body.lower():
            raise _fail(
                f"The loop mentions {what}. It should only call channel.send and "
                "channel.recv: that separation is task 2."
            )
    lines = ["hello", "how are you?", "bye"]
    fake = _OnlySendRecv()
    replies = _call(chat_loop, fake, list(lines))
    want = [f"echo: {line}" for line in lines]
    if replies != want:
        if isinstance(replies, list) and replies and isinstance(replies[0], bytes | bytearray):
            raise _fail(
                "The replies are bytes; return them as text (channel.recv_text(), or .decode())."
            )
        raise _fail(
            f"With lines {lines} and a server that answers 'echo: <line>', the loop "
            f"returned {replies!r}; expected {want!r}."
        )
    sent = [data for kind, data in fake.calls if kind == "send"]
    if sent != [line.encode() for line in lines]:
        raise _fail(f"The loop sent {sent!r}; send each line once, in order.")

    # The same loop over a real encrypted channel (toy keys: fast), with a real server thread.
    from .channel import SecureChannel  # here, not at the top: the check imports lazily

    client_key, server_key = generate(TOY), generate(TOY)
    for _ in range(100):  # the toy group has only 20 keys: two draws often collide
        if server_key.public != client_key.public:
            break
        server_key = generate(TOY)
    left, right = _pair()
    ready: list[Any] = []
    server = threading.Thread(
        target=_echo_server,
        args=(lambda: SecureChannel.server(right, server_key, "toy", timeout=_WAIT), ready),
        daemon=True,
    )
    server.start()
    channel = None
    try:
        channel = SecureChannel.client(left, client_key, "toy", timeout=_WAIT)
        status, value = _in_thread(chat_loop, channel, ["over a real channel", "done"], timeout=5)
        if status != "ok" or value != ["echo: over a real channel", "echo: done"]:
            shown = "did not finish" if status == "stuck" else repr(value)
            raise _fail(f"Over a real SecureChannel the loop {status}: {shown}.")
    finally:
        if channel is not None:
            channel.close()
        left.close()
        server.join(_WAIT)
        right.close()
    _passed(
        "chat_loop talks through channel.send/recv only, and works over a real encrypted channel."
    )


# --- shared by the checks of notebooks 03-05 -------------------------------------------


def _refused_as(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:160]}"


# --- notebook 03: the allowlist check ---------------------------------------------------


def _prefix_pair() -> tuple[Any, Any]:
    """Two valid 2048-bit public keys whose hex texts start alike: ``0xV`` and ``0xVk``."""
    from .groups import validate_public
    from .keys import PublicKey

    for _ in range(1000):  # about 1 in 2 candidates is a valid value: ends in a few tries
        short = secrets.randbelow(FFDHE2048.p >> 4)
        for digit in range(16):
            try:
                validate_public(FFDHE2048, short)
                validate_public(FFDHE2048, short * 16 + digit)
            except ValueError:
                continue
            return PublicKey(FFDHE2048, short), PublicKey(FFDHE2048, short * 16 + digit)
    raise RuntimeError("could not make two keys with a common prefix")


@_explained_in("check_is_allowed")
def check_is_allowed(is_allowed: Callable[[Path, Any], bool]) -> None:
    """``is_allowed(path, key)`` must read the CSV on every call and compare keys by value."""

    alice, bob, carol, dave = (generate(FFDHE2048).public_key for _ in range(4))
    listed, prefix_of_it = _prefix_pair()  # "0xV" is a prefix of "0xVk" as text
    upper = f"0x{alice.value:0{2 * FFDHE2048.byte_length}X}"  # leading zeros, capitals
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "allowlist.csv"
        rows = [
            "name,public_key,comment",
            f"alice,  labcrypto-dh1   ffdhe2048   {upper}  ,written with capitals",
            f'bob,{bob.to_text()},"group A, lab 2"',
            "",
            f"# carol,{carol.to_text()},revoked: commented out by the instructor",
            "eve,not a key at all,a row that cannot be read",
            f'frank,{prefix_of_it.to_text()},"dave sent {dave.to_text()} by mail; not added"',
            "",
        ]
        path.write_text("\n".join(rows), encoding="utf-8")
        cases = [
            (alice, True, "alice's row spells her key in capital hex digits, with extra spaces"),
            (bob, True, "bob's row is plain (its comment contains a comma, in quotes)"),
            (
                carol,
                False,
                "carol's row starts with '#': the instructor commented it out (revoked)",
            ),
            (dave, False, "dave's key appears only inside frank's comment, not as a key"),
            (listed, False, "this key's text is the start of frank's key text, a different key"),
            (prefix_of_it, True, "frank's key is on the list"),
        ]
        for key, want, why in cases:
            try:
                got = _call(is_allowed, path, key)
            except CheckFailed:
                raise
            except Exception as exc:
                raise _fail(
                    f"is_allowed raised {_refused_as(exc)} on a file with a header, a comment "
                    "line, a blank line and an unreadable row ('eve,not a key at all'). Skip "
                    "what cannot be read (try/except around PublicKey.from_text): one bad row "
                    "must not lock the whole class out."
                ) from None
            if got is want:
                continue
            if got not in (True, False):
                raise _fail(f"is_allowed returned {got!r}; return True or False.")
            hints = {
                "capital": "Compare keys, not text: PublicKey.from_text(cell) == key. "
                "0x00ab, 0xAB and 171 are the same number, so the same key.",
                "commented": "Lines starting with '#' are comments: skip them. A revoked "
                "student whose row was commented out must not get in.",
                "comment,": "A key mentioned somewhere in the file is not on the list: only "
                "the public_key column counts. Searching the file's text for the key "
                "(`key.to_text() in text`) is the bug.",
                "start": "Searching for the key's text finds it inside a longer key: "
                "'0x12' is in '0x123'. Parse each row's key and compare with ==.",
            }
            hint = next((h for word, h in hints.items() if word in why), "")
            if "quotes" in why:
                hint = "Read the file with the csv module (csv.reader), which handles quotes."
            raise _fail(
                f"is_allowed(path, key) returned {got} for a key where {why}; expected {want}."
                f"\n{hint}"
            )
        # Revocation: the file changes, the answer must change with it.
        path.write_text("\n".join(r for r in rows if not r.startswith("bob,")), encoding="utf-8")
        if _call(is_allowed, path, bob) is not False:
            raise _fail(
                "After bob's row was deleted from the file, is_allowed still said True: read "
                "the file on every call (or when it changed). A cached list makes revocation "
                "need a server restart."
            )
    _passed(
        "is_allowed compares keys by value (any spelling), reads only the key column, skips "
        "comments and bad rows, and sees a revocation at once."
    )


# --- notebook 03: a new student ----------------------------------------------------------


@_explained_in("check_join_as_new_student")
def check_join_as_new_student(join: Callable[..., Any]) -> None:
    """``join(name, key_dir, allowlist_path, address, server_key)`` must enrol and connect."""
    from .allowlist import Allowlist
    from .chat import ChatServer
    from .keys import load

    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        key_dir, path = Path(tmp) / "keys", Path(tmp) / "allowlist.csv"
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        Allowlist(path).add("alice", alice.public_key, "already here")
        room = ChatServer(
            server_key, Allowlist(path), name="check-join-room", connection_timeout=5.0
        ).start()
        clients: list[Any] = []
        try:
            for attempt in ("first", "second"):
                try:
                    client = _call(join, "dave", key_dir, path, room.address, server_key.public_key)
                except CheckFailed:
                    raise
                except Exception as exc:
                    raise _fail(_join_hint(exc, attempt, path)) from None
                clients.append(client)
                if getattr(client, "name", None) != "dave":
                    raise _fail(
                        f"On the {attempt} call the function returned {client!r:.80}; return the "
                        "ChatClient that ChatClient.connect(...) gave you (its .name is the name "
                        "the server knows you by: 'dave')."
                    )
            key_file = key_dir / "dave.key"
            if not key_file.exists():
                raise _fail(f"There is no {key_file.name} in key_dir: save dave's key there.")
            dave = load("dave", key_dir)
            entries = {e.name: e for e in Allowlist(path).entries()}
            if "alice" not in entries:
                raise _fail(
                    "alice's row is gone from the allowlist: add a row, do not rewrite the file."
                )
            if entries.get("dave") is None or entries["dave"].key != dave.public_key:
                raise _fail("The allowlist has no row 'dave' with the key in dave.key.")
            if stat.S_IMODE(key_file.stat().st_mode) & 0o077:
                raise _fail("dave.key can be read by others: use keys.load_or_create / keys.save.")
        finally:
            for client in clients:
                with contextlib.suppress(OSError, LabCryptoError):
                    client.close()
            room.stop()
    _passed(
        "dave got a key, a row on the allowlist (alice's row kept) and into the room — twice, "
        "reusing his key and row the second time."
    )


def _join_hint(exc: BaseException, attempt: str, path: Path) -> str:
    from .errors import AllowlistError, KeyNotAllowed

    text = f"On the {attempt} call, the function raised {_refused_as(exc)}.\n"
    if isinstance(exc, KeyNotAllowed):
        return text + (
            "The server does not know the key dave connected with. Add dave's *public* key to "
            "the allowlist file you were given (allowlist_path), and connect with the same key "
            "pair (a new key on every run is course mistake 8)."
        )
    if isinstance(exc, AllowlistError) and attempt == "second":
        return text + (
            "The first call worked; the second must too (a re-run cell). Add the row only if "
            "the key is not on the list yet: Allowlist(path).is_allowed(key.public_key)."
        )
    if isinstance(exc, AllowlistError | OSError) and "exists" in str(exc):
        return text + "Reuse dave's key if it is there: keys.load_or_create(name, key_dir)."
    return text + f"(The allowlist file is {path.name}; the server is at the address given.)"


# --- notebook 04: the client's half of the handoff -----------------------------------


def _handoff_room(pool_size: int) -> tuple[Any, Any, Any, KeyPair]:
    """A reference chat room with a pool, on 127.0.0.1: ``(room, pool, alice_key, server_key)``."""
    from .allowlist import Allowlist
    from .chat import ChatServer
    from .ports import PortPool

    tmp = tempfile.mkdtemp(prefix="labcrypto-check-")
    server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
    allowlist = Allowlist(Path(tmp) / "allowlist.csv")
    allowlist.add("alice", alice.public_key)
    first = free_port_range(pool_size)
    pool = PortPool(first, first + pool_size - 1)
    room = ChatServer(
        server_key, allowlist, pool=pool, ticket_timeout=3.0, name="check-handoff-room",
        connection_timeout=5.0,
    ).start()  # fmt: skip
    return room, pool, alice, server_key


def _handshake_with(room: Any, alice: KeyPair, server_key: KeyPair) -> tuple[Any, socket.socket]:
    from .channel import SecureChannel
    from .server import connect

    control = connect(*room.address, timeout=_WAIT)
    try:
        channel = SecureChannel.client(
            control, alice, expected_server_key=server_key.public_key, timeout=_WAIT
        )
    except BaseException:
        control.close()
        raise
    return channel, control


def _wait_for_event(server: Any, kind: str, seconds: float = 1.0) -> bool:
    """Has ``server`` logged an event of ``kind`` (waiting up to ``seconds`` for it)?"""
    for _ in range(int(seconds / 0.05)):
        if any(e.kind == kind for e in list(server.events)):
            return True
        threading.Event().wait(0.05)
    return False


@_explained_in("check_follow_handoff")
def check_follow_handoff(follow_handoff: Callable[[Any, str], Any]) -> None:
    """``follow_handoff(channel, host)`` must read the port offer, move, show the ticket."""
    from .errors import PoolExhausted

    room, pool, alice, server_key = _handoff_room(2)
    try:
        channel, control = _handshake_with(room, alice, server_key)
        try:
            status, value = _in_thread(follow_handoff, channel, "127.0.0.1", timeout=8.0)
            if status == "error" and isinstance(value, NotImplementedError):
                raise _fail(
                    "follow_handoff is not written yet: replace `raise NotImplementedError()` "
                    "with your code, run that cell, then run this one again."
                )
            if status == "stuck":
                raise _fail(
                    "follow_handoff did not return within 8 s. Every recv needs a timeout "
                    "(channel.recv(timeout=5)); after sending the ticket, the next message on "
                    "the channel is the server's welcome."
                )
            if status == "error":
                hint = ""
                if _wait_for_event(room, "stranger"):
                    hint = (
                        "The server dropped your data-port connection as a stranger: the ticket "
                        "must travel inside the encrypted channel — channel.rebind(new_socket), "
                        "then channel.send(ticket message) — not as plain bytes on the socket."
                    )
                elif isinstance(value, ConnectionRefusedError):
                    hint = (
                        "Nothing listened where you connected: use the port from the server's "
                        "message (course mistake 10: a client that ignores the port it was sent)."
                    )
                raise _fail(f"follow_handoff raised {_refused_as(value)}.\n{hint}")
            if isinstance(value, bytes | bytearray):
                raise _fail("follow_handoff returned bytes; return the decoded message (a dict).")
            if not isinstance(value, dict) or value.get("type") != "welcome":
                shown = value.get("type") if isinstance(value, dict) else repr(value)[:60]
                hint = (
                    " That is the server's offer itself: connect to its port and show its ticket."
                    if shown == "port"
                    else ""
                )
                raise _fail(
                    f"follow_handoff returned {shown!r}; expected the first message on the data "
                    f"port, the room's welcome (a dict with type 'welcome').{hint}"
                )
            if channel.stream is control:
                raise _fail(
                    "The channel still uses the handshake socket: call channel.rebind(new_socket)."
                )
            _wait_for_event(room, "join")  # logged just after the welcome is queued
            joined = [e.text for e in room.events if e.kind == "join"]
            if not any(f"port {p}" in " ".join(joined) for p in range(pool.first, pool.last + 1)):
                raise _fail(f"The room did not see you join on a data port (events: {joined}).")
        finally:
            channel.close()
            control.close()

        _second_handoff(follow_handoff, room, pool, alice, server_key, joined)

        # An exhausted pool: the offer is "busy", and the client must say so, not hang.
        held = [pool.lease(timeout=_WAIT) for _ in range(pool.size)]  # ours come back soon
        try:
            status, value = _one_handoff(follow_handoff, room, alice, server_key)
        finally:
            for lease in held:
                lease.release()
        if status != "error" or not isinstance(value, PoolExhausted):
            got = {"ok": "returned " + repr(value)[:80], "stuck": "never returned"}.get(
                status, f"raised {_refused_as(value)}"
            )
            raise _fail(
                "With every port of the pool in use the server answers "
                '{"type": "busy", "text": ...} instead of a port; follow_handoff '
                f"{got}. Raise PoolExhausted(text) then, so the caller can wait and retry."
            )
    finally:
        room.stop()
        pool.close()
    _passed(
        "follow_handoff reads the port and ticket, moves the channel to the data port, shows "
        "the ticket there and gets the welcome; a busy pool raises PoolExhausted."
    )


def _one_handoff(
    follow_handoff: Callable[[Any, str], Any], room: Any, alice: KeyPair, server_key: KeyPair
) -> tuple[str, Any]:
    """Handshake with ``room`` as alice, run the student's ``follow_handoff`` (bounded), close."""
    channel, control = _handshake_with(room, alice, server_key)
    try:
        return _in_thread(follow_handoff, channel, "127.0.0.1", timeout=8.0)
    finally:
        channel.close()
        control.close()


def _second_handoff(
    follow_handoff: Callable[[Any, str], Any],
    room: Any,
    pool: Any,
    alice: KeyPair,
    server_key: KeyPair,
    joined: list[str],
) -> None:
    """A second session on a *different* port with a new ticket: nothing may be remembered."""
    used = {int(m) for text in joined for m in re.findall(r"port (\d+)", text)}
    for _ in range(40):  # the first session's port comes back when its conversation ends
        if not pool.leased():
            break
        threading.Event().wait(0.05)
    held = [pool.lease(timeout=_WAIT) for _ in range(pool.size)]
    keep = [lease for lease in held if lease.port in used] or held[:1]
    for lease in held:
        if lease not in keep:
            lease.release()  # the only free port now is one the first session did not use
    try:
        status, value = _one_handoff(follow_handoff, room, alice, server_key)
    finally:
        for lease in keep:
            lease.release()
    if status == "ok" and isinstance(value, dict) and value.get("type") == "welcome":
        return
    if _wait_for_event(room, "stranger", 0.5):
        hint = (
            "The server dropped the data connection as a stranger: it showed a reused ticket. "
            "A ticket is good for one session only; read the ticket from each new offer."
        )
    elif status == "error" and isinstance(value, ConnectionRefusedError | TimeoutError):
        hint = (
            "Nothing answered where you connected: it looks like the port of the first session "
            "(course mistake 10: a client that ignores the port it was sent). Use the port "
            "from each offer."
        )
    else:
        hint = "Read the port and the ticket from each offer; remember nothing between calls."
    got = {"ok": "returned " + repr(value)[:60], "stuck": "never returned"}.get(
        status, f"raised {_refused_as(value)}"
    )
    raise _fail(
        "The first handoff worked. A second session was offered a different port and a new "
        f"ticket, and follow_handoff {got}.\n{hint}"
    )


# --- notebook 04: a port pool ---------------------------------------------------------------


def _lease_of(pool: Any) -> tuple[int, socket.socket]:
    got = pool.lease()
    if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], socket.socket)):
        raise _fail(
            f"lease() returned {got!r:.80}; return (port, sock): the port number and the "
            "socket you bound and listen on."
        )
    return got


@_explained_in("check_port_pool")
def check_port_pool(pool_class: Callable[..., Any]) -> None:
    """A pool class with ``lease() -> (port, sock)`` and ``release(port, sock)``, hammered."""
    from .errors import PoolExhausted

    size = 6
    first = free_port_range(size + 1)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", first))  # another program holds the first port
    blocker.listen(1)
    try:
        pool = _call(pool_class, first, first + size, "127.0.0.1")
        leased: list[tuple[int, socket.socket]] = []
        try:
            for _ in range(size):
                status, value = _in_thread(_lease_of, pool)
                if status == "error" and isinstance(value, NotImplementedError):
                    raise _fail(
                        "The pool is not written yet: replace `raise NotImplementedError()`."
                    )
                if status == "error" and isinstance(value, CheckFailed):
                    raise value
                if status != "ok":
                    what = "never returned" if status == "stuck" else "raised " + _refused_as(value)
                    raise _fail(
                        f"lease() {what} "
                        f"with {size - len(leased)} free ports left (one port of the range, "
                        f"{first}, is held by another program: skip it)."
                    )
                port, sock = value
                leased.append(value)
                if port == first:
                    raise _fail(
                        f"lease() returned port {first}, which another program holds: binding "
                        "it failed, and a port you could not bind is not yours (course mistake "
                        "10). Skip it and try the next."
                    )
                if not first <= port <= first + size:
                    raise _fail(f"lease() returned port {port}, outside the range given.")
                if sock.getsockname()[1] != port:
                    raise _fail(
                        f"lease() returned port {port} with a socket bound to "
                        f"{sock.getsockname()[1]}: return the socket you bound to that port, "
                        "still open (bind, close and bind again is a race: course mistake 10)."
                    )
                try:
                    probe = socket.create_connection(("127.0.0.1", port), timeout=_WAIT)
                    probe.close()
                except OSError:
                    raise _fail(
                        f"Nothing listens on leased port {port}: call sock.listen() before "
                        "returning it, so the client's connection is not refused."
                    ) from None
            ports = [p for p, _ in leased]
            if len(set(ports)) != len(ports):
                raise _fail(f"lease() handed out the same port twice: {sorted(ports)}.")
            status, value = _in_thread(pool.lease)
            if status == "stuck":
                raise _fail("With every port leased, lease() waited forever: raise PoolExhausted.")
            if status != "error" or not isinstance(value, PoolExhausted):
                got = "returned " + repr(value)[:60] if status == "ok" else _refused_as(value)
                raise _fail(
                    f"With every port leased, lease() {got}; it must raise PoolExhausted "
                    "(with a message such as 'no free port, try again in a moment')."
                )
        finally:
            for port, sock in leased:
                with contextlib.suppress(Exception):
                    pool.release(port, sock)
        _hammer(pool, first, size)
    finally:
        blocker.close()
    _passed(
        "The pool skips a busy port, returns listening sockets, refuses when full, and "
        "survived 16 threads: no port leased twice, none lost."
    )


def _hammer(pool: Any, first: int, size: int) -> None:
    """16 threads lease and release at once; no double lease, and every port comes back."""
    from .errors import PoolExhausted

    holding: set[int] = set()
    lock = threading.Lock()
    problems: list[str] = []

    def worker() -> None:
        for _ in range(30):
            try:
                port, sock = pool.lease()
            except PoolExhausted:
                threading.Event().wait(0.001)
                continue
            except Exception as exc:  # reported to the student below
                problems.append(f"lease() raised {_refused_as(exc)}")
                return
            with lock:
                if port in holding:
                    problems.append(f"port {port} was leased to two threads at once")
                holding.add(port)
            threading.Event().wait(0.0005)
            with lock:
                holding.discard(port)
            try:
                pool.release(port, sock)
            except Exception as exc:
                problems.append(f"release() raised {_refused_as(exc)}")
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    if any(thread.is_alive() for thread in threads):
        raise _fail(
            "16 threads leasing and releasing did not finish within 10 s: a lease or release "
            "waits forever (a lock never released? a wait without a timeout?)."
        )
    if problems:
        raise _fail(
            f"With 16 threads at once: {problems[0]}. Guard the list of free ports with a "
            "threading.Lock, held while you take a port from it and while you give it back."
        )
    again: list[tuple[int, socket.socket]] = []
    try:
        for _ in range(size):
            try:
                again.append(pool.lease())
            except PoolExhausted:
                raise _fail(
                    f"After the threads released everything, only {len(again)} of {size} "
                    "ports could be leased again: a port got lost (released twice, or "
                    "never put back)."
                ) from None
    finally:
        for port, sock in again:
            with contextlib.suppress(Exception):
                pool.release(port, sock)


# --- notebook 05: the path check ----------------------------------------------------------


def _same_place(got: Any, want: Path) -> bool:
    try:
        return os.path.realpath(os.fspath(got)) == os.path.realpath(want)
    except TypeError:
        return False


@_explained_in("check_safe_path")
def check_safe_path(safe_path: Callable[[Path, str], Any]) -> None:
    """``safe_path(home, requested)`` maps a client's path into the home or refuses it."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        root = Path(tmp)
        home, sibling = root / "alice", root / "alice2"
        (home / "docs").mkdir(parents=True)
        sibling.mkdir()
        (home / "docs" / "a.txt").write_text("alice's notes")
        (sibling / "secret.txt").write_text("alice2's secret")
        (home / "out").symlink_to(sibling)  # a link inside the home that leads out
        (home / "docs" / "system").symlink_to("/etc")
        inside = [
            ("/", home, ""),
            ("docs/a.txt", home / "docs" / "a.txt", ""),
            ("/docs/./a.txt", home / "docs" / "a.txt", ""),
            ("docs/../docs/a.txt", home / "docs" / "a.txt", ""),
            ("new/file.txt", home / "new" / "file.txt", "a path that does not exist yet"),
            (
                "/etc/passwd",
                home / "etc" / "passwd",
                "A leading '/' means the top of the home, not of the server's disk: "
                "strip it (requested.lstrip('/')) before joining it under the home.",
            ),
        ]
        for requested, want, hint in inside:
            try:
                got = _call(safe_path, home, requested)
            except CheckFailed:
                raise
            except Exception as exc:
                raise _fail(
                    f"safe_path(home, {requested!r}) raised {_refused_as(exc)}, but that path "
                    f"is inside the home ({want.relative_to(root)}). {hint}"
                ) from None
            if not _same_place(got, want):
                if requested.startswith("/") and _same_place(got, Path(requested)):
                    hint = inside[-1][2]  # home / "/x" is "/x": the leading slash won
                raise _fail(
                    f"safe_path(home, {requested!r}) returned {got!r:.100}; expected the place "
                    f"{want.relative_to(root)} under the home. {hint}"
                )
        outside = [
            ("..", ""),
            ("../alice2/secret.txt", "sibling"),
            ("/../alice2/secret.txt", "sibling"),
            ("docs/../../alice2/secret.txt", "sibling"),
            ("out/secret.txt", "link"),
            ("docs/system/passwd", "link"),
        ]
        for requested, kind in outside:
            try:
                got = _call(safe_path, home, requested)
            except CheckFailed:
                raise
            except (PermissionError, ValueError, LabCryptoError):
                continue  # refused, as it should
            except Exception as exc:
                raise _fail(
                    f"safe_path(home, {requested!r}) raised {_refused_as(exc)}; refuse a path "
                    "outside the home with PermissionError (or ValueError)."
                ) from None
            hint = {
                "sibling": "The sibling folder 'alice2' starts with the home's name 'alice': a "
                "string test such as str(path).startswith(str(home)) lets it in (course "
                "mistake 13). Compare path components: Path.is_relative_to(home).",
                "link": "The path goes through a symbolic link that leads out of the home. "
                "Resolve links first (Path.resolve() / os.path.realpath), then check.",
            }.get(kind, "Resolve '..' first (Path.resolve()), then check it is under the home.")
            raise _fail(
                f"safe_path(home, {requested!r}) returned {got!r:.100} instead of refusing: it "
                f"leads outside the home.\n{hint}"
            )
    _passed(
        "safe_path keeps every path in the home ('/' is its top) and refuses '..', the "
        "sibling alice2, and links that lead out."
    )


# --- notebook 05: a recursive du ------------------------------------------------------------


@_explained_in("check_du")
def check_du(du: Callable[[Any, str], int]) -> None:
    """``du(client, path)``: total bytes of the files under ``path``, via ``client.ls``."""
    from .allowlist import Allowlist
    from .ftp import FileClient, FileServer

    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        allowlist = Allowlist(Path(tmp) / "allowlist.csv")
        allowlist.add("alice", alice.public_key)
        home = Path(tmp) / "homes" / "alice"
        sizes = {
            "top.txt": 100,
            "docs/a.txt": 1000,
            "docs/b.bin": 2345,
            "docs/old/c.txt": 30,
            "docs/old/deeper/d.txt": 7,
            "music/song.mp3": 5000,
        }
        for name, size in sizes.items():
            (home / name).parent.mkdir(parents=True, exist_ok=True)
            (home / name).write_bytes(b"x" * size)
        (home / "empty").mkdir()
        (home / "docs" / "etc").symlink_to("/etc")  # ls shows it as a "link"
        server = FileServer(
            server_key, allowlist, Path(tmp) / "homes", name="check-du-server",
            connection_timeout=5.0,
        ).start()  # fmt: skip
        try:
            client = FileClient(*server.address, alice, server_key.public_key, timeout=5.0)
            for path, want in [("/", sum(sizes.values())), ("/docs", 1000 + 2345 + 30 + 7)]:
                status, got = _in_thread(du, client, path, timeout=10.0)
                if status == "error" and isinstance(got, NotImplementedError):
                    raise _fail(
                        "du is not written yet: replace `raise NotImplementedError()` with your "
                        "code, run that cell, then run this one again."
                    )
                if status == "stuck":
                    raise _fail("du did not finish within 10 s: does it recurse forever?")
                if status == "error":
                    hint = (
                        " ls on a link is refused (the jail never follows links): count only "
                        "entries of kind 'file', recurse into kind 'dir', skip the rest."
                        if "link" in str(got)
                        else ""
                    )
                    raise _fail(f"du(client, {path!r}) raised {_refused_as(got)}.{hint}")
                if got == want:
                    continue
                top_level = sum(s for n, s in sizes.items() if "/" not in n)
                hint = ""
                if path == "/" and got == top_level:
                    hint = "Only the files at the top were counted: recurse into every folder."
                raise _fail(
                    f"du(client, {path!r}) returned {got!r}; the files under {path} hold {want} "
                    f"bytes.\n{hint} Build each sub-path as path.rstrip('/') + '/' + entry.name."
                )
            if client.cwd != "/":
                raise _fail(
                    f"After du, the client's working folder is {client.cwd!r}: do not cd; pass "
                    "full paths to ls instead (a helper must not move the user)."
                )
        finally:
            server.stop()
    _passed("du adds up every file under a folder, recursing through the API, skipping links.")
