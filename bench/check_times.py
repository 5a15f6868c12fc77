"""How long does each visible check take with the instructor's answer? (GRADING.md's figure)

Runs every notebook of ``notebooks/`` headless (the instructor's edition, so
every answer is the source solution), as ``bench/notebooks.py`` does, and
times each check cell alone. The hidden tests are cut out of the check cells
first: what is timed is the visible check a student runs, ``checks.check_…``.
Prints one row per check, the slowest, and the machine's load average before
and after (a check's time grows with the load: the checks run the student's
code traced, and wait on sockets and threads).

    .venv/bin/python bench/check_times.py [--only 04] 2>/dev/null

Figures, not pass/fail; each check's bound is in ``labcrypto/lab/feedback.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from notebooks import CELL_TIMEOUT, NOTEBOOK_DIR, kernelspec

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
CHECK = re.compile(r"checks\.(check_\w+)\(")


def passed(cell: nbformat.NotebookNode) -> bool:
    """Did the check cell print its "✔" line?"""
    return any("✔" in out.get("text", "") for out in cell.get("outputs", []))


def time_checks(path: Path, tmp: Path) -> list[tuple[str, float, bool]]:
    """Run one notebook in a fresh copy of notebooks/: (check, seconds, passed?) per check."""
    work = tmp / f"run-{time.monotonic_ns()}"
    shutil.copytree(NOTEBOOK_DIR, work, ignore=shutil.ignore_patterns("keys", ".ipynb_*"))
    nb = nbformat.read(work / path.name, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(work)}},
    )  # fmt: skip
    times: list[tuple[str, float, bool]] = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            named = CHECK.search(cell.source)
            if named:
                cell.source = HIDDEN.sub("", cell.source)
            start = time.perf_counter()
            client.execute_cell(cell, index)
            if named:
                times.append((named.group(1), time.perf_counter() - start, passed(cell)))
    shutil.rmtree(work, ignore_errors=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only notebooks whose name contains this")
    args = parser.parse_args()
    notebooks = [p for p in sorted(NOTEBOOK_DIR.glob("0*.ipynb")) if args.only in p.name]
    load = os.getloadavg()
    print(f"each visible check once, source solutions, headless; {sys.executable}")
    print(f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'notebook':<16}{'check':<28}{'seconds':>8}  passed")
    slowest = ("", 0.0)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["JUPYTER_PATH"] = str(kernelspec(tmp / "jupyter"))
        os.environ["MPLBACKEND"] = "Agg"
        for path in notebooks:
            for check, seconds, ok in time_checks(path, tmp):
                print(f"{path.stem:<16}{check:<28}{seconds:8.2f}  {'yes' if ok else 'NO'}")
                slowest = max(slowest, (check, seconds), key=lambda row: row[1])
    load = os.getloadavg()
    print(f"slowest: {slowest[0]} {slowest[1]:.2f} s")
    print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
