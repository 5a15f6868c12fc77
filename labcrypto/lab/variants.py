"""Each student's own numbers, made from the student id.

Copying a classmate's numbers should not work, so each student gets a toy
group, a secret and a peer's public value of their own, made from their
student id. ``student_id(STUDENT_ID)`` decides whose numbers these are, in
this order:

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
from someone else are wrong for everyone but that someone. (The package is
public, so a student may read this file: it holds the method and no
answers, which depend on the student id.)

Used by notebooks 01 and 02 (``my``) and by the hidden tests of their
checks; ``GRADING.md`` explains the grading side to instructors.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..ciphers import CaesarCipher
from ..groups import Group, small_safe_prime_group
from ..i18n import _

__all__ = [
    "ENV_VAR",
    "VARIANT_BITS",
    "Variant",
    "derive",
    "nbgrader_student",
    "student_id",
    "variant",
]

#: The environment variable that names the student (wins over everything else).
ENV_VAR = "LABCRYPTO_STUDENT_ID"

VARIANT_BITS = 24  #: a toy p of 24 bits: numbers a student can read, a group per student

_MESSAGES = [
    "meet me behind the library at six",
    "the spare key is under the blue flower pot",
    "bring the lab notes and two coffees",
    "the quiz answers are in the second drawer",
    "do not tell anyone about the surprise party",
    "the wifi password is written on the fridge",
]


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


def student_id(typed_id: str = "") -> str:
    """Whose numbers this notebook uses; ``typed_id`` is the ``STUDENT_ID`` of the
    notebook's first cell (see the module docstring for the order)."""
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    graded = nbgrader_student()
    if graded:
        return graded
    if str(typed_id).strip():
        return str(typed_id).strip()
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
        # The first thing a notebook shows: in the student's language (labcrypto.i18n).
        who = repr(self.student_id) if self.student_id else _("nobody (set STUDENT_ID)")
        return _("Variant(for {who}: p={p}, g={g}, a={a}, B={B})").format(
            who=who, p=self.p, g=self.g, a=self.a, B=self.B
        )


def derive(student: str, purpose: str) -> int:
    """A 64-bit number for ``student`` and ``purpose``: always the same for the same two."""
    data = f"labcrypto-variant|{purpose}|{student}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def variant(student: str) -> Variant:
    """The numbers of ``student`` (the same id always gives the same numbers)."""
    student = str(student).strip()
    group = small_safe_prime_group(VARIANT_BITS, seed=derive(student, "group") % 1_000_000)
    a = 2 + derive(student, "a") % (group.q - 3)
    b = 2 + derive(student, "b") % (group.q - 3)
    message = _MESSAGES[derive(student, "message") % len(_MESSAGES)].encode()
    shift = 1 + derive(student, "shift") % 255
    return Variant(student, group, a, pow(group.g, b, group.p), message, shift)
