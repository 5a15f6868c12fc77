"""How long does each notebook take a student? What can be measured, and a model for the rest.

Measured, per notebook and per language edition (from ``notebooks/src/``, the
same sources the notebooks are built from):

* **prose** — words in the markdown cells (the text a student reads);
* **demo code** — lines of the code cells a student reads and runs but does
  not write (not the check cells: those are one call each);
* **written** — lines a student must write: the non-blank, non-comment lines
  inside the ``### BEGIN SOLUTION`` regions, which the students' edition
  replaces with ``raise NotImplementedError()``;
* **exercises** — graded check cells plus free-text answers;
* **kernel** — "Run All" of the instructor's edition, headless, in seconds
  (``--run``; ``bench/notebooks.py`` does the running).

The rest is a **model, not a stopwatch**: no student was timed per notebook
except one trial (the old notebook 02 took 70–90 minutes), so these minutes
are an estimate with a range, from the assumptions below. Each assumption has
a low (fast student) and a high (slow student) value; the estimate is the
range between the two totals, and the middle is what the notebook states.

* **Reading speed.** The course is taught in Russian. Silent reading of
  ordinary text runs at about 180 words a minute in Russian and 230 in
  English for native readers (Trauzettel-Klosinski et al., IReST, 2012;
  Brysbaert, 2019). Technical text with formulas and identifiers is read
  more slowly, and English as a second language more slowly still: the
  model takes 100–160 words a minute for the Russian edition (native) and
  70–120 for the English one (the same students in their second language).
* **Reading demo code:** 3–8 seconds a line (a line is read, then run).
* **Writing:** 0.6–1.0 minutes a written line — a line of a solution here is
  thought about more than typed: the framing loop, the checks of a group.
* **Retry factor:** 1.2–1.5 on writing and on the kernel's time: a first
  attempt fails a check, the student reads its message and runs again.
* **A free-text answer:** 2–5 minutes. **An interactive panel** (sliders, a
  chat box): 1–3 minutes of playing with it.

**An appendix, "Going further".** A notebook may end with an optional
section headed ``## Going further`` (Russian ``## Для желающих``), after its
Summary. The model counts it apart: the time a notebook states (**Time:**) is
its core, what a class session must hold, and the appendix's own minutes are
stated beside it in the same first cell ("and about N more for the optional
*Going further*"), from the same paces, so a student who plans the whole
notebook sees the whole. This is honest only for material that is optional in
fact, so ``tests/test_notebook_time.py`` holds the appendix to what a
program can check — no exercise, no free-text answer, no solution in it; it
starts after the Summary; both editions put it at the same cell — and a
reviewer to the rest: no goal of the notebook, no Summary bullet and no later
notebook may rely on it. (The kernel time of ``--run`` is "Run All" of the
whole notebook, appendix included, and is charged to the core: a few seconds
too many, never too few.) Moving a section there is a decision about the
course, not about the number.

The one calibration point: the old notebook 02 (before it was split into 02
and 02b, git ``627e34e``) comes out of this model at about 62–99 minutes,
English edition, against the 70–90 minutes the trial measured. A new trial
should replace these numbers, not the other way round.

    .venv/bin/python tools/notebook_time.py            # the table from the sources (no kernel)
    .venv/bin/python tools/notebook_time.py --run      # also "Run All" each notebook, headless
    .venv/bin/python tools/notebook_time.py --lang ru  # the Russian edition only
    .venv/bin/python tools/notebook_time.py --run --only 04_two_ports   # one notebook's kernel

``tests/test_notebook_time.py`` checks that the time each notebook states
(**Time:** about N minutes / **Время:** около N минут) lies in this range,
so the stated number cannot silently go stale when a notebook grows; the same
for the appendix's number.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks  # noqa: E402

SOURCES = ROOT / "notebooks" / "src"
LANGUAGES = ("en", "ru")


@dataclass(frozen=True)
class Pace:
    """One end of the model's range: how fast one kind of student goes."""

    words_per_minute: dict[str, float]  #: reading speed per edition
    seconds_per_code_line: float
    minutes_per_written_line: float
    retry: float
    minutes_per_answer: float
    minutes_per_panel: float


FAST = Pace({"en": 100, "ru": 140}, 4, 0.8, 1.25, 2, 1.5)
SLOW = Pace({"en": 70, "ru": 100}, 7, 1.0, 1.4, 5, 3)

#: The kernel term of the test's static estimate: "Run All" of any notebook alone takes
#: seconds (bench/notebooks.py; 7 s for the chat notebook), so at most a minute is allowed.
KERNEL_BOUND_SECONDS = 60.0

#: Code cells that show an interactive panel a student plays with (sliders, a chat box).
PANEL_CALLS = re.compile(r"\bwidgets\.([a-z_]*sliders|side_by_side)\(")

STATED = {
    "en": re.compile(r"\*\*Time:\*\* about (\d+) minutes"),
    "ru": re.compile(r"\*\*Время:\*\* около (\d+) минут"),
}

#: The appendix's minutes, stated in the same first cell after the **Time:**.
STATED_FURTHER = {
    "en": re.compile(r"about (\d+) more for the optional \*Going further\*"),
    "ru": re.compile(r"ещё около (\d+) минут на необязательный раздел «Для желающих»"),
}

#: The heading that opens a notebook's optional appendix (the rest of the notebook).
APPENDIX = {
    "en": re.compile(r"^## Going further\b"),
    "ru": re.compile(r"^## Для желающих\b"),
}


@dataclass(frozen=True)
class Counts:
    """What one edition of one notebook asks of a student, counted from its cells."""

    words: int
    code_lines: int
    written_lines: int
    exercises: int
    answers: int
    panels: int
    stated: int | None  #: the minutes the notebook states, if it does
    further_stated: int | None = None  #: the minutes it states for its appendix, if any


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _solution_lines(text: str) -> int:
    """Lines a student writes: code inside the ``### BEGIN/END SOLUTION`` regions."""
    written, inside = 0, False
    for line in text.splitlines():
        mark = line.strip()
        if mark == "### BEGIN SOLUTION":
            inside = True
        elif mark == "### END SOLUTION":
            inside = False
        elif inside and mark and not mark.startswith("#"):
            written += 1
    return written


def _words(markdown: str) -> int:
    return len(re.findall(r"\w+", markdown))


def split(notebook: Any, lang: str) -> tuple[list[Any], list[Any]]:
    """(core, appendix): the cells before the ``## Going further`` heading and from it on."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and APPENDIX[lang].match(cell.source):
            return list(notebook.cells[:index]), list(notebook.cells[index:])
    return list(notebook.cells), []


def count(notebook: Any, lang: str) -> Counts:
    """The counts of one built edition's core (an nbformat node with nbgrader's metadata)."""
    return count_cells(split(notebook, lang)[0], lang)


def count_further(notebook: Any, lang: str) -> Counts | None:
    """The counts of the edition's optional appendix, or None if it has none."""
    appendix = split(notebook, lang)[1]
    return count_cells(appendix, lang) if appendix else None


def count_cells(cells: list[Any], lang: str) -> Counts:
    """What a run of cells asks of a student: words, lines, exercises, the stated minutes."""
    words = code = written = exercises = answers = panels = 0
    stated = further_stated = None
    for cell in cells:
        grade = cell.metadata.get("nbgrader", {})
        text = cell.source
        if cell.cell_type == "markdown":
            if grade.get("solution") and grade.get("grade"):
                answers += 1  # a free-text answer the student writes
                continue
            words += _words(text)
            found = STATED[lang].search(text)
            if found and stated is None:
                stated = int(found.group(1))
            found = STATED_FURTHER[lang].search(text)
            if found and further_stated is None:
                further_stated = int(found.group(1))
        elif grade.get("solution"):
            written += _solution_lines(text)
            code += len(_code_lines(text)) - _solution_lines(text)
        elif grade.get("grade"):
            exercises += 1  # a check cell: one call, run, read
        else:
            code += len(_code_lines(text))
            panels += bool(PANEL_CALLS.search(text))
    return Counts(
        words, code, written, exercises + answers, answers, panels, stated, further_stated
    )


def minutes(counts: Counts, lang: str, pace: Pace, kernel_seconds: float) -> float:
    """The model's minutes for one edition at one pace."""
    reading = counts.words / pace.words_per_minute[lang]
    code = counts.code_lines * pace.seconds_per_code_line / 60
    writing = counts.written_lines * pace.minutes_per_written_line * pace.retry
    kernel = kernel_seconds / 60 * pace.retry
    return (
        reading
        + code
        + writing
        + kernel
        + counts.answers * pace.minutes_per_answer
        + counts.panels * pace.minutes_per_panel
    )


def estimate(counts: Counts, lang: str, kernel_seconds: tuple[float, float]) -> tuple[float, float]:
    """(low, high) minutes: fast student and first kernel time, slow student and second."""
    return (
        minutes(counts, lang, FAST, kernel_seconds[0]),
        minutes(counts, lang, SLOW, kernel_seconds[1]),
    )


def editions(source: Path) -> dict[str, Any]:
    """Each language edition of one source, built in memory (never from a stale .ipynb)."""
    return build_notebooks.editions(source)


def sources() -> list[Path]:
    return sorted(SOURCES.glob("[0-9][0-9]*_*.py"))


def kernel_times(names: list[str]) -> dict[str, float]:
    """ "Run All" of each instructor notebook, headless, in seconds (bench/notebooks.py)."""
    import os
    import tempfile

    sys.path.insert(0, str(ROOT / "bench"))
    import notebooks as bench  # bench/notebooks.py

    times = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["JUPYTER_PATH"] = str(bench.kernelspec(tmp / "jupyter"))
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        for name in names:
            _start, run_all, *_ = bench.run_once(bench.NOTEBOOK_DIR / f"{name}.ipynb", tmp)
            times[name] = run_all
    return times


def _row(
    name: str,
    lang: str,
    counts: Counts,
    shown: str,
    kernel: tuple[float, float],
    stated: int | None,
) -> str:
    low, high = estimate(counts, lang, kernel)
    return (
        f"{name:<14}{lang:>5}{counts.words:7d}{counts.code_lines:6d}"
        f"{counts.written_lines:7d}{counts.exercises:4d}{shown:>8}"
        f"{f'{low:.0f}–{high:.0f}':>12}{(low + high) / 2:8.0f}"
        f"{stated if stated else '—':>8}"
    )


def table(
    langs: tuple[str, ...], measured: dict[str, float] | None, only: str | None = None
) -> list[str]:
    """The table's lines: counts, the range, the middle and what each notebook states
    (a notebook's optional appendix on a line of its own, ``+ further``)."""
    head = (
        f"{'notebook':<14}{'lang':>5}{'words':>7}{'demo':>6}{'write':>7}{'ex':>4}"
        f"{'kernel':>8}{'model min':>12}{'middle':>8}{'stated':>8}"
    )
    lines = [head]
    for source in sources():
        if only and only not in source.stem:
            continue
        built = editions(source)
        for lang in langs:
            if lang not in built:
                continue
            counts = count(built[lang], lang)
            if measured is None:
                kernel, shown = (0.0, KERNEL_BOUND_SECONDS), "≤60s"
            else:
                kernel, shown = (measured[source.stem],) * 2, f"{measured[source.stem]:.0f}s"
            lines.append(_row(source.stem, lang, counts, shown, kernel, counts.stated))
            further = count_further(built[lang], lang)
            if further is not None:
                lines.append(
                    _row("  + further", lang, further, "—", (0.0, 0.0), counts.further_stated)
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help='also time "Run All" of each notebook')
    parser.add_argument("--lang", choices=LANGUAGES, help="one edition only")
    parser.add_argument("--only", metavar="NAME", help="the notebooks whose name contains NAME")
    args = parser.parse_args(argv)
    langs = (args.lang,) if args.lang else LANGUAGES
    names = [s.stem for s in sources() if not args.only or args.only in s.stem]
    measured = kernel_times(names) if args.run else None
    print("\n".join(table(langs, measured, args.only)))
    print(
        "words: prose read; demo: code lines read and run; write: solution lines written; "
        "ex: graded exercises.\nmodel min: fast–slow student (a model, not a stopwatch: see "
        "the docstring of tools/notebook_time.py); stated: the notebook's **Time:** (for "
        "+ further, the minutes it states for its optional appendix)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
