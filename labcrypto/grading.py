"""Old name of the student variants and hidden tests, kept for this term only.

Each hidden test now sits beside its visible check in
``labcrypto.lab.checks_01_keys`` … ``checks_05_ftp``, and the per-student
numbers live in ``labcrypto.lab.variants``. This module re-exports what this
term's released notebooks and submissions call (``grading.variant``,
``grading.student_id``, ``grading.hidden_…``): nbgrader puts the hidden
tests back into every submission it grades. It goes away next term;
tests/test_grading.py grades a submission made with this term's release
through it.
"""

from __future__ import annotations

from .lab.checks_01_keys import (
    hidden_key_file,
    hidden_my_numbers,
    hidden_public_value,
    hidden_shared_secret,
)
from .lab.checks_02_exchange import hidden_dh_client, hidden_framing
from .lab.checks_02b_chat import hidden_break_caesar, hidden_chat_loop
from .lab.checks_03_allowlist import hidden_is_allowed, hidden_join
from .lab.checks_04_two_ports import hidden_follow_handoff, hidden_port_pool
from .lab.checks_05_ftp import hidden_du, hidden_safe_path
from .lab.variants import ENV_VAR, Variant, nbgrader_student, student_id, variant

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
