"""Old name of ``labcrypto.lab.widgets``, kept for this term only.

This term's released notebooks call ``widgets.…`` after ``from labcrypto
import widgets``; the panels now live in ``labcrypto.lab.widgets``. This
module goes away next term.
"""

from __future__ import annotations

from .lab.widgets import (
    ChatPanel,
    WireView,
    exchange_table,
    file_view,
    kernel_status,
    key_exchange_sliders,
    progress,
    side_by_side,
    table,
)

__all__ = [
    "ChatPanel",
    "WireView",
    "exchange_table",
    "file_view",
    "kernel_status",
    "key_exchange_sliders",
    "progress",
    "side_by_side",
    "table",
]
