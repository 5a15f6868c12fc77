"""Old name of ``labcrypto.lab.plots``, kept for this term only.

This term's released notebooks call ``plots.…`` after ``from labcrypto
import plots``; the figures now live in ``labcrypto.lab.plots``. This
module goes away next term.
"""

from __future__ import annotations

from .lab import plots as _moved
from .lab.plots import *  # noqa: F403  (the whole module, under its old name)

__all__ = _moved.__all__
