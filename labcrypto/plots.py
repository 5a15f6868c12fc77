"""Old name of ``labcrypto.lab.plots``, kept for this term only.

This term's released notebooks call ``plots.…`` after ``from labcrypto
import plots``; the figures now live in ``labcrypto.lab.plots``. This
module goes away next term.
"""

from __future__ import annotations

from .lab.plots import (
    AGE_OF_UNIVERSE_SECONDS,
    brute_force_times,
    byte_histograms,
    caesar_scores,
    extrapolate_log10_seconds,
    fingerprint_grid,
    format_log10_seconds,
    layers,
    lease_intervals,
    pool_timeline,
    powers,
    sequence_diagram,
    transcript_steps,
)

__all__ = [
    "AGE_OF_UNIVERSE_SECONDS",
    "brute_force_times",
    "byte_histograms",
    "caesar_scores",
    "extrapolate_log10_seconds",
    "fingerprint_grid",
    "format_log10_seconds",
    "layers",
    "lease_intervals",
    "pool_timeline",
    "powers",
    "sequence_diagram",
    "transcript_steps",
]
