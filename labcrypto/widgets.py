"""Old name of ``labcrypto.lab.widgets``, kept for this term only.

This term's released notebooks call ``widgets.…`` after ``from labcrypto
import widgets``; the panels now live in ``labcrypto.lab.widgets``. This
module goes away next term.
"""

from __future__ import annotations

from .lab import widgets as _moved
from .lab.widgets import *  # noqa: F403  (the whole module, under its old name)

__all__ = _moved.__all__
