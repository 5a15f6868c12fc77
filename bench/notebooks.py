"""How long does "Run All" take for each notebook? (issue 8's figure)

Runs every notebook of ``notebooks/`` headless with ``nbclient``, as the
tests do: in a temporary copy of the folder (the key files it writes land
there), with a kernel of *this* interpreter (a private ``python3``
kernelspec first on ``JUPYTER_PATH``, so a user-wide kernel of another
Python cannot win). Prints, per notebook, the kernel start and the
"Run All" time (median of ``--runs``), the number of code cells and the
slowest cell.

    .venv/bin/python bench/notebooks.py [--runs 1] [--only 02]

The instructor's version runs (solutions in place), so every cell runs
to the end. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
CELL_TIMEOUT = 120


def kernelspec(base: Path) -> Path:
    """A ``python3`` kernelspec under ``base`` that runs this interpreter."""
    spec_dir = base / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (labcrypto bench)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return base


def run_once(path: Path, tmp: Path) -> tuple[float, float, float, int, int]:
    """Run one notebook in a fresh copy of notebooks/.

    Returns (kernel start s, Run All s, slowest cell s, its index, code cells).
    """
    work = tmp / f"run-{time.monotonic_ns()}"
    shutil.copytree(NOTEBOOK_DIR, work, ignore=shutil.ignore_patterns("keys", ".ipynb_*"))
    nb = nbformat.read(work / path.name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(work)}},
    )
    cell_times: list[tuple[float, int]] = []
    started = time.perf_counter()
    with client.setup_kernel():
        kernel_ready = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t = time.perf_counter()
            client.execute_cell(cell, index)
            cell_times.append((time.perf_counter() - t, index))
        done = time.perf_counter()
    slowest, slowest_index = max(cell_times) if cell_times else (0.0, -1)
    shutil.rmtree(work, ignore_errors=True)
    return kernel_ready - started, done - kernel_ready, slowest, slowest_index, len(cell_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per notebook (median)")
    parser.add_argument("--only", default="", help="only notebooks whose name contains this")
    args = parser.parse_args()
    notebooks = [p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if args.only in p.name]
    if not notebooks:
        print(f"no notebook matches {args.only!r} in {NOTEBOOK_DIR}")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["JUPYTER_PATH"] = str(kernelspec(tmp / "jupyter"))
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        print(f"Run All, headless (nbclient), median of {args.runs} run(s); {sys.executable}")
        print(
            f"{'notebook':<18}{'kernel s':>9}{'run all s':>11}{'cells':>7}"
            f"{'slowest cell':>14}{'at':>6}"
        )
        total = 0.0
        for path in notebooks:
            runs = [run_once(path, tmp) for _ in range(args.runs)]
            run_all = statistics.median(r[1] for r in runs)
            kernel = statistics.median(r[0] for r in runs)
            slow = max(runs, key=lambda r: r[2])
            total += run_all
            print(
                f"{path.stem:<18}{kernel:9.2f}{run_all:11.2f}{slow[4]:7d}"
                f"{slow[2]:12.2f} s{slow[3]:6d}"
            )
        print(f"{'all notebooks':<18}{'':9}{total:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
