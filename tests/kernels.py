"""A ``python3`` kernelspec that runs *this* interpreter, for tests that start kernels.

Put the folder first on JUPYTER_PATH: a user-wide ``python3`` kernelspec (say,
from another Python) would otherwise win, and the notebooks would run
without this venv.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["write_kernelspec"]


def write_kernelspec(folder: Path, python: Path | None = None) -> Path:
    """Write ``folder/kernels/python3/kernel.json`` for ``python`` (default: this
    interpreter); return ``folder``."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [
            str(python or sys.executable), "-m", "ipykernel_launcher", "-f", "{connection_file}"
        ],
        "display_name": "Python 3 (labcrypto)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder
