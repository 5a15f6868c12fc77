"""Build the notebooks from their sources: ``notebooks/src/NAME.py`` → ``notebooks/NAME.ipynb``.

A source is a Python file that calls four functions, one per cell, in order:

    md(text)                         a markdown cell
    code(text)                       a code cell (a demo: it must run with no exercise solved)
    solution(grade_id, text)         an exercise cell: text holds ### BEGIN/END SOLUTION
    tests(grade_id, points, text)    the check cell right after it (may hold hidden tests)
    answer(grade_id, points, text)   a free-text answer (markdown), graded by hand: text is
                                     the model answer, which nbgrader replaces with
                                     "YOUR ANSWER HERE" in the student's version

Text is dedented and stripped, so sources read like the notebook. The
built notebooks carry no outputs and no execution counts, and cell ids are
derived from the cell's position, so building twice gives the same bytes.

    python tools/build_notebooks.py           # write every notebook
    python tools/build_notebooks.py --check   # fail if a notebook differs from its source

The exercise cells use nbgrader's metadata (schema 3), so an instructor can
run ``nbgrader generate_assignment`` / ``autograde`` on them as they are.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

__all__ = ["build", "build_all", "main"]

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"
NOTEBOOKS = ROOT / "notebooks"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "version": "3.11"}


def _text(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook that ``source`` describes."""
    cells: list[nbformat.NotebookNode] = []

    def md(text: str) -> None:
        cells.append(new_markdown_cell(_text(text)))

    def code(text: str) -> None:
        cells.append(new_code_cell(_text(text)))

    def solution(grade_id: str, text: str) -> None:
        body = _text(text)
        if "### BEGIN SOLUTION" not in body or "### END SOLUTION" not in body:
            raise ValueError(f"{source.name}: solution cell {grade_id} has no solution region")
        cell = new_code_cell(body)
        cell.metadata["nbgrader"] = {
            "grade": False,
            "solution": True,
            "locked": False,
            "task": False,
            "grade_id": grade_id,
            "schema_version": 3,
        }
        cells.append(cell)

    def tests(grade_id: str, points: int, text: str) -> None:
        cell = new_code_cell(_text(text))
        cell.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": True,
            "points": points,
            "grade_id": grade_id,
            "schema_version": 3,
        }
        cells.append(cell)

    def answer(grade_id: str, points: int, text: str) -> None:
        # nbgrader's "manually graded answer": a markdown cell that is both a
        # solution (cleared for students) and graded (points, by a person).
        cell = new_markdown_cell(_text(text))
        cell.metadata["nbgrader"] = {
            "grade": True,
            "solution": True,
            "locked": False,
            "task": False,
            "points": points,
            "grade_id": grade_id,
            "schema_version": 3,
        }
        cells.append(cell)

    runpy.run_path(
        str(source),
        init_globals={
            "md": md,
            "code": code,
            "solution": solution,
            "tests": tests,
            "answer": answer,
        },
    )
    for index, cell in enumerate(cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell["id"] = grade_id or f"cell-{index:03d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    nbformat.validate(nb)
    return nb


def _dump(nb: Any) -> str:
    return nbformat.writes(nb) + "\n"


def build_all(check: bool = False) -> list[str]:
    """Build (or with ``check``, compare) every notebook; return the names that differ."""
    differ = []
    for source in sorted(SOURCES.glob("*.py")):
        target = NOTEBOOKS / f"{source.stem}.ipynb"
        text = _dump(build(source))
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            differ.append(target.name)
            if not check:
                target.write_text(text, encoding="utf-8")
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    differ = build_all(check=args.check)
    if args.check and differ:
        sys.stderr.write(f"out of date (run tools/build_notebooks.py): {', '.join(differ)}\n")
        return 1
    for name in differ:
        sys.stderr.write(f"wrote notebooks/{name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
