"""Old name of the exercise checks, kept for this term only: use ``labcrypto.lab``.

The checks now live with their notebook in ``labcrypto.lab.checks_01_keys``
… ``checks_05_ftp``. This module re-exports what this term's released
notebooks call (``exercises.check_…``, ``exercises.free_port_range``),
because nbgrader puts the released check cells back into every submission
it grades. It goes away next term; tests/test_grading.py grades a
submission made with this term's release through it.
"""

from __future__ import annotations

from .lab.checks_01_keys import (
    check_load_or_create_key,
    check_my_numbers,
    check_public_value,
    check_shared_secret,
)
from .lab.checks_02_exchange import check_dh_client, check_framing
from .lab.checks_02b_chat import check_break_caesar, check_chat_loop
from .lab.checks_03_allowlist import check_is_allowed, check_join_as_new_student
from .lab.checks_04_two_ports import check_follow_handoff, check_port_pool
from .lab.checks_05_ftp import check_du, check_safe_path
from .lab.feedback import CheckFailed
from .ports import free_port_range

__all__ = [
    "CheckFailed",
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
]

#: The old name of ``check_chat_loop`` (its check cell's grade id was always check_chat_loop).
check_message_loop = check_chat_loop
