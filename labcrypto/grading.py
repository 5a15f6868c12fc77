"""Grading support: each student's own numbers, and the hidden tests.

Two things live here, both used by the notebooks' check cells:

**Per-student variants.** Copying a classmate's numbers should not work, so
each student gets a toy group, a secret and a peer's public value of their
own, made from their student id. ``student_id(STUDENT_ID)`` decides whose
numbers these are, in this order:

1. the environment variable ``LABCRYPTO_STUDENT_ID`` (an instructor grading
   one student, or a JupyterHub that sets it for everyone);
2. while nbgrader autogrades (``NBGRADER_EXECUTION`` is set and the notebook
   runs in ``.../autograded/<student>/<assignment>/``): the ``<student>``
   folder — the id the instructor collected the submission under, which the
   student cannot change;
3. the ``STUDENT_ID = "..."`` the student typed in the notebook's first cell;
4. ``JUPYTERHUB_USER`` (the hub login), or ``""`` (everyone alike).

``variant(student_id)`` turns the id into the numbers with a hash, so the
autograder derives exactly what the student saw. Answers *computed* in the
notebook from ``my = variant(...)`` are right under any id; answers pasted
from someone else are wrong for everyone but that someone.

**Hidden tests.** nbgrader removes ``### BEGIN HIDDEN TESTS`` regions from
the student's copy, but a failing test's traceback lands in the feedback the
student reads. So each hidden region is a single call of a ``hidden_...``
function below, and every failure becomes one ``CheckFailed`` with generic
words: which exercise, which section to re-read — never the inputs or the
expected values. (The package is public, so a student may read this file:
it holds the method, which the reference implementation shows anyway, and
no answers, which depend on the student id.)

Used by every notebook (01–05) in its check cells; ``GRADING.md`` explains
the grading side to instructors.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ciphers import CaesarCipher
from .exercises import SECTIONS, CheckFailed
from .groups import FFDHE2048, Group, small_safe_prime_group

__all__ = [
    "ENV_VAR",
    "Variant",
    "hidden_break_caesar",
    "hidden_chat_loop",
    "hidden_dh_client",
    "hidden_du",
    "hidden_follow_handoff",
    "hidden_framing",
    "hidden_is_allowed",
    "hidden_join",
    "hidden_key_file",
    "hidden_my_numbers",
    "hidden_port_pool",
    "hidden_public_value",
    "hidden_safe_path",
    "hidden_shared_secret",
    "nbgrader_student",
    "student_id",
    "variant",
]

#: The environment variable that names the student (wins over everything else).
ENV_VAR = "LABCRYPTO_STUDENT_ID"

VARIANT_BITS = 24  # a toy p of 24 bits: numbers a student can read, a group per student

_MESSAGES = [
    "meet me behind the library at six",
    "the spare key is under the blue flower pot",
    "bring the lab notes and two coffees",
    "the quiz answers are in the second drawer",
    "do not tell anyone about the surprise party",
    "the wifi password is written on the fridge",
]


# --- whose numbers ---------------------------------------------------------------


def nbgrader_student(cwd: Path | None = None) -> str:
    """The student id nbgrader is grading right now, or ``""`` when it is not grading.

    ``nbgrader autograde`` runs each submission in
    ``<course>/autograded/<student>/<assignment>/`` with ``NBGRADER_EXECUTION``
    set; the ``<student>`` folder is the id.
    """
    if not os.environ.get("NBGRADER_EXECUTION"):
        return ""
    here = (cwd or Path.cwd()).resolve()
    if here.parent.parent.name == "autograded":
        return here.parent.name
    return ""


def student_id(cell_value: str = "") -> str:
    """Whose numbers this notebook uses (see the module docstring for the order)."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    graded = nbgrader_student()
    if graded:
        return graded
    if str(cell_value).strip():
        return str(cell_value).strip()
    return os.environ.get("JUPYTERHUB_USER", "").strip()


@dataclass(frozen=True)
class Variant:
    """One student's numbers: a toy group, Alice's secret ``a``, Bob's public ``B``, a message."""

    student_id: str
    group: Group
    a: int
    B: int
    message: bytes
    shift: int

    @property
    def p(self) -> int:
        return self.group.p

    @property
    def g(self) -> int:
        return self.group.g

    @property
    def ciphertext(self) -> bytes:
        """The message as Eve captured it: Caesar-shifted by ``shift`` (toy mode)."""
        return CaesarCipher(self.shift).seal(self.message)

    def __repr__(self) -> str:
        who = repr(self.student_id) if self.student_id else "nobody (set STUDENT_ID)"
        return f"Variant(for {who}: p={self.p}, g={self.g}, a={self.a}, B={self.B})"


def _digest(student: str, purpose: str) -> int:
    data = f"labcrypto-variant|{purpose}|{student}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def variant(student: str) -> Variant:
    """The numbers of ``student`` (the same id always gives the same numbers)."""
    student = str(student).strip()
    group = small_safe_prime_group(VARIANT_BITS, seed=_digest(student, "group") % 1_000_000)
    a = 2 + _digest(student, "a") % (group.q - 3)
    b = 2 + _digest(student, "b") % (group.q - 3)
    message = _MESSAGES[_digest(student, "message") % len(_MESSAGES)].encode()
    shift = 1 + _digest(student, "shift") % 255
    return Variant(student, group, a, pow(group.g, b, group.p), message, shift)


# --- hidden tests ----------------------------------------------------------------------


@contextlib.contextmanager
def _hidden(grade_id: str) -> Iterator[None]:
    """Turn any failure inside into one generic ``CheckFailed`` (nothing of the test shown)."""
    notebook, heading = SECTIONS.get(grade_id, ("", ""))
    where = f" Re-read notebook {notebook}, section «{heading}»." if heading else ""
    try:
        yield
    except NotImplementedError:
        raise CheckFailed(
            "\nNot written yet: the exercise above still raises NotImplementedError."
        ) from None
    except Exception as exc:
        raised = (
            ""
            if isinstance(exc, AssertionError)
            else (f" (your code raised {type(exc).__name__} on one of them)")
        )
        raise CheckFailed(
            f"\nA hidden test of this exercise failed{raised}. Hidden tests try cases the "
            f"visible check does not show, some made from your student id; their details "
            f"are not shown.{where} Then try your code on inputs of your own."
        ) from None


def _expect(condition: bool) -> None:
    if not condition:
        raise AssertionError  # no message: _hidden replaces it with generic words


def hidden_public_value(public_value: Callable[[Group, int], int], cell_id: str = "") -> None:
    """``public_value`` on this student's group and on a 2048-bit exponent."""
    with _hidden("check_public_value"):
        mine = variant(student_id(cell_id))
        _expect(public_value(mine.group, mine.a) == pow(mine.g, mine.a, mine.p))
        exponent = (1 << 255) | _digest(mine.student_id, "big-a")
        _expect(public_value(FFDHE2048, exponent) == pow(2, exponent, FFDHE2048.p))


def hidden_shared_secret(
    shared_secret: Callable[[Group, int, int], int], cell_id: str = ""
) -> None:
    """``shared_secret`` in this student's group, and refusals there."""
    with _hidden("check_shared_secret"):
        mine = variant(student_id(cell_id))
        _expect(shared_secret(mine.group, mine.a, mine.B) == pow(mine.B, mine.a, mine.p))
        for bad in (0, 1, mine.p - 1, mine.p):
            try:
                shared_secret(mine.group, mine.a, bad)
            except ValueError:
                continue
            _expect(False)


def hidden_my_numbers(cell_id: str, my_A: Any, my_K: Any) -> None:
    """``my_A`` and ``my_K`` are this student's numbers (computed under the graded id)."""
    with _hidden("check_my_numbers"):
        _expect(my_A is not None and my_K is not None)
        mine = variant(student_id(cell_id))
        _expect(my_A == pow(mine.g, mine.a, mine.p))
        _expect(my_K == pow(mine.B, mine.a, mine.p))


def hidden_key_file(load_or_create_key: Callable[[Path], Any]) -> None:
    """One more key file, in a fresh folder: private, reused, consistent."""
    with _hidden("check_load_or_create_key"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nested name.key"
        first = load_or_create_key(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        again = load_or_create_key(path)
        _expect(again.private == first.private)
        _expect(path.read_text(encoding="utf-8", errors="replace") == text)
        _expect(path.stat().st_mode & 0o077 == 0)
        _expect(pow(first.group.g, first.private, first.group.p) == first.public)


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    from .exercises import tcp_pair

    return tcp_pair()


def hidden_framing(
    send_msg: Callable[[socket.socket, bytes], None], recv_msg: Callable[[socket.socket], bytes]
) -> None:
    """Payloads that look like headers, several messages in a row, over TCP."""
    with _hidden("check_framing"):
        left, right = _tcp_pair()
        try:
            payloads = [b"\x00\x00\x00\x05 looks like a header", b"\x00" * 4, b"z" * 70_000]
            for payload in payloads[:2]:
                send_msg(left, payload)
            left.sendall(struct.pack("!I", 3) + b"abc")
            _expect(recv_msg(right) == payloads[0])
            _expect(recv_msg(right) == payloads[1])
            _expect(recv_msg(right) == b"abc")
        finally:
            left.close()
            right.close()


def hidden_dh_client(dh_client: Callable[..., int]) -> None:
    """The client against a fair server in another group, and against a g of order 2."""
    from .exercises import run_dh_server

    with _hidden("check_dh_client"):
        group = small_safe_prime_group(64, seed=7)
        outcome = run_dh_server(dh_client, group)
        _expect(outcome.status == "ok" and outcome.value == outcome.shared)
        _expect(not outcome.secret_on_wire)
        bad = run_dh_server(dh_client, group, g=group.p - 1)
        _expect(bad.status == "error" and isinstance(bad.value, ValueError))


def hidden_break_caesar(break_caesar: Callable[[bytes], bytes], cell_id: str = "") -> None:
    """This student's own captured message."""
    with _hidden("check_break_caesar"):
        mine = variant(student_id(cell_id))
        _expect(break_caesar(mine.ciphertext) == mine.message)


def hidden_chat_loop(chat_loop: Callable[[Any, list[str]], list[str]]) -> None:
    """A loop with no lines, and replies that differ from the lines."""

    class Echo:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, message: bytes | str) -> None:
            self.sent.append(message.decode() if isinstance(message, bytes) else message)

        def recv_text(self, timeout: float | None = None) -> str:
            return "re: " + self.sent[-1]

        def recv(self, timeout: float | None = None) -> bytes:
            return self.recv_text(timeout).encode()

    with _hidden("check_chat_loop"):
        _expect(chat_loop(Echo(), ["a", "b"]) == ["re: a", "re: b"])
        _expect(chat_loop(Echo(), []) == [])


def hidden_is_allowed(is_allowed: Callable[[Path, Any], bool], path: Path, people: dict) -> None:
    """The notebook's own allowlist: alice on it, carol not."""
    with _hidden("check_is_allowed"):
        _expect(is_allowed(path, people["alice"].public_key) is True)
        _expect(is_allowed(path, people["carol"].public_key) is False)


def hidden_join(
    join: Callable[..., Any], key_dir: Path, path: Path, room: Any, server_key: Any
) -> None:
    """Dave joins the notebook's own room."""
    from .allowlist import Allowlist
    from .keys import load

    with _hidden("check_join_as_new_student"):
        client = join("dave", key_dir, path, room.address, server_key.public_key)
        try:
            _expect(client.name == "dave")
            _expect(Allowlist(path).name_of(load("dave", key_dir).public_key) == "dave")
        finally:
            client.close()


def hidden_follow_handoff(
    follow_handoff: Callable[..., Any], room: Any, key: Any, server_key: Any
) -> None:
    """A handoff into the notebook's own room, as another student."""
    from .channel import SecureChannel
    from .server import connect

    with _hidden("check_follow_handoff"):
        control = connect(*room.address, timeout=5)
        channel = None
        try:
            channel = SecureChannel.client(
                control, key, expected_server_key=server_key.public_key, timeout=5
            )
            welcome = follow_handoff(channel, "127.0.0.1")
            _expect(isinstance(welcome, dict) and welcome.get("type") == "welcome")
            _expect(channel.stream is not control)
        finally:
            if channel is not None:
                channel.close()
            control.close()


def hidden_port_pool(pool_class: Callable[..., Any]) -> None:
    """A two-port pool: both ports, and a released port comes back."""
    from .exercises import free_port_range

    with _hidden("check_port_pool"):
        first = free_port_range(2)
        pool = pool_class(first, first + 1, "127.0.0.1")
        leases = [pool.lease(), pool.lease()]
        try:
            _expect({port for port, _ in leases} == {first, first + 1})
            port, sock = leases.pop(0)
            pool.release(port, sock)
            leases.append(pool.lease())
            _expect(leases[-1][0] == port)
        finally:
            for port, sock in leases:
                with contextlib.suppress(Exception):
                    pool.release(port, sock)


def hidden_safe_path(safe_path: Callable[[Path, str], Any], home: Path) -> None:
    """The notebook's own home folder: its top, and three ways out."""
    with _hidden("check_safe_path"):
        _expect(Path(safe_path(home, "/")).resolve() == home.resolve())
        for escape in ("../bob/private.txt", "system/passwd", "docs/../../bob"):
            try:
                safe_path(home, escape)
            except (PermissionError, ValueError):
                continue
            _expect(False)


def hidden_du(du: Callable[[Any, str], int], client: Any, home: Path) -> None:
    """``du`` of the notebook's own home, compared with the disk."""
    with _hidden("check_du"):
        files = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
        _expect(du(client, "/") == sum(p.stat().st_size for p in files))
