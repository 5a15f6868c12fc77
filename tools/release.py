"""Make the students' version of the notebooks with nbgrader's own ``generate_assignment``.

The notebooks in ``notebooks/`` are the instructor's version (solutions and
hidden tests in place). nbgrader turns each into what students get: every
``### BEGIN SOLUTION`` region replaced by ``raise NotImplementedError()``,
hidden tests removed, outputs cleared, the check cells locked, nbgrader's
metadata (grade ids, points, checksums) kept so ``autograde`` can grade the
submissions later. One notebook is one nbgrader assignment, named after it
(``01_keys``, ``02_exchange``, ``02b_chat`` … ``05_ftp``): one assignment per class session.

    python tools/release.py                  # release/01_keys.ipynb … (a throwaway course)
    python tools/release.py --out DIR        # the same, into DIR
    python tools/release.py --course DIR     # set up (or refresh) a real nbgrader course in DIR:
                                             #   DIR/nbgrader_config.py, DIR/source/<id>/<id>.ipynb,
                                             #   then generate_assignment → DIR/release/<id>/
    python tools/release.py --course DIR --exchange EXCHANGE   # also set nbgrader's exchange folder
    python tools/release.py --lang ru        # the Russian edition (notebooks/ru/) → release/ru/

The two editions have the same assignment ids, grade ids and points (only the
prose differs), so ``--lang`` works with every other option; a course grades
one edition's source, and a test checks that the two releases agree.

It runs the ``nbgrader`` that sits next to this Python (``.venv/bin/nbgrader``),
in the course folder, exactly as an instructor would type it. GRADING.md
walks through the rest: collect, autograde, export.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "COURSE_ID",
    "EDITIONS",
    "assignments",
    "generate",
    "main",
    "nbgrader_command",
    "nbgrader_env",
    "notebooks_of",
    "release_to",
    "write_course",
]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Where each language's edition of the notebooks is built (tools/build_notebooks.py).
EDITIONS = {"en": NOTEBOOKS, "ru": NOTEBOOKS / "ru"}
#: What nbgrader puts where a solution was, in each edition's language: a student of
#: the Russian edition reads «ВАШ КОД ЗДЕСЬ», not nbgrader's English. The code stub
#: keeps ``raise NotImplementedError()``: the checks say "not written yet" on it.
STUBS = {
    "en": {"code": "# YOUR CODE HERE\nraise NotImplementedError()", "text": "YOUR ANSWER HERE"},
    "ru": {"code": "# ВАШ КОД ЗДЕСЬ\nraise NotImplementedError()", "text": "ВАШ ОТВЕТ ЗДЕСЬ"},
}
MISTAKES = "MISTAKES.md"  #: the course's mistakes list, next to the notebooks
COURSE_ID = "labcrypto"

CONFIG = """\
# nbgrader settings for the labcrypto course (written by tools/release.py; edit freely).
c = get_config()  # noqa: F821

c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}
# One assignment per notebook, named after it: {assignments}
# Each check finishes in a few seconds; nbgrader's default of 30 s per cell is plenty.
c.Execute.timeout = 30
# Private keys never travel through nbgrader (release, submit, collect, feedback):
# the lab keeps them in ~/.labcrypto/keys, outside every assignment folder; this is
# the second lock (the same list as hub/nbgrader_config.py).
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.key", "keys"
]
# What replaces a solution, in the language of this course's edition.
c.ClearSolutions.code_stub = {{"python": {code_stub!r}}}
c.ClearSolutions.text_stub = {text_stub!r}
{exchange}"""


def edition_of(notebook_dir: Path) -> str:
    """The language of the edition in ``notebook_dir`` (English for any other folder)."""
    for lang, folder in EDITIONS.items():
        if Path(notebook_dir).resolve() == folder.resolve():
            return lang
    return "en"


def notebooks_of(lang: str) -> Path:
    """The folder of one edition's notebooks: ``"en"`` → notebooks/, ``"ru"`` → notebooks/ru/."""
    if lang not in EDITIONS:
        raise ValueError(f"no edition in {lang!r}: choose one of {sorted(EDITIONS)}")
    return EDITIONS[lang]


def assignments(notebook_dir: Path = NOTEBOOKS) -> list[str]:
    """The assignment ids: one per notebook, ``01_keys``, ``02_exchange``, ``02b_chat`` …
    ``05_ftp`` (02 is two class sessions: 02 and 02b)."""
    return sorted(path.stem for path in notebook_dir.glob("[0-9][0-9]*_*.ipynb"))


def nbgrader_command() -> list[str]:
    """How to run this environment's nbgrader (the script next to the interpreter)."""
    script = Path(sys.executable).parent / "nbgrader"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nbgrader"]


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: this interpreter's ``bin`` first on ``PATH``.

    nbgrader runs the ``alembic`` command (its database migrations) by name, so
    ``.venv/bin/nbgrader`` without an activated venv fails with "No such file or
    directory: 'alembic'". Activating the venv (``source .venv/bin/activate``) does
    the same as this.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _copy_mistakes(notebook_dir: Path, folder: Path) -> None:
    """Put the course's mistakes list (``MISTAKES.md``, which the checks' messages cite)
    next to the notebooks in ``folder``, if ``notebook_dir`` has one."""
    mistakes = Path(notebook_dir) / MISTAKES
    if mistakes.exists():
        shutil.copyfile(mistakes, Path(folder) / MISTAKES)


def write_course(
    course: Path, notebook_dir: Path = NOTEBOOKS, exchange: Path | None = None
) -> list[str]:
    """Lay out an nbgrader course in ``course``: config and ``source/<id>/<id>.ipynb``.

    Existing files in ``course`` (the gradebook, submissions, grades) are kept;
    the source notebooks and the config are replaced. Returns the assignment ids.
    """
    course = Path(course).resolve()
    ids = assignments(notebook_dir)
    for assignment in ids:
        folder = course / "source" / assignment
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook_dir / f"{assignment}.ipynb", folder / f"{assignment}.ipynb")
        _copy_mistakes(notebook_dir, folder)  # released with each assignment
    exchange_line = ""
    if exchange is not None:
        exchange_line = f"c.Exchange.root = {str(Path(exchange).resolve())!r}\n"
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(
            root=str(course),
            course_id=COURSE_ID,
            assignments=", ".join(ids),
            code_stub=STUBS[edition_of(notebook_dir)]["code"],
            text_stub=STUBS[edition_of(notebook_dir)]["text"],
            exchange=exchange_line,
        ),
        encoding="utf-8",
    )
    return ids


def generate(course: Path, assignment: str) -> Path:
    """``nbgrader generate_assignment ASSIGNMENT --force`` in ``course``; the release folder."""
    course = Path(course).resolve()
    result = subprocess.run(
        [*nbgrader_command(), "generate_assignment", assignment, "--force"],
        cwd=course,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    released = course / "release" / assignment
    if result.returncode != 0 or not (released / f"{assignment}.ipynb").exists():
        raise RuntimeError(
            f"nbgrader generate_assignment {assignment} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return released


def release_to(out: Path, notebook_dir: Path = NOTEBOOKS) -> list[Path]:
    """The students' notebooks, made in a throwaway course, copied flat into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="labcrypto-course-") as tmp:
        for assignment in write_course(Path(tmp), notebook_dir):
            released = generate(Path(tmp), assignment) / f"{assignment}.ipynb"
            target = out / released.name
            shutil.copyfile(released, target)
            written.append(target)
    _copy_mistakes(notebook_dir, out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out", type=Path, help="folder for the release (default: release/, or release/ru/)"
    )
    where.add_argument("--course", type=Path, help="set up an nbgrader course folder here")
    parser.add_argument("--exchange", type=Path, help="nbgrader exchange folder (with --course)")
    parser.add_argument(
        "--lang", choices=sorted(EDITIONS), default="en", help="which edition (default: en)"
    )
    args = parser.parse_args(argv)
    if args.exchange is not None and args.course is None:
        # Without a course there is no nbgrader_config.py to write it into: say so
        # rather than make a release that silently knows nothing of the exchange.
        parser.error("--exchange goes with --course (it is written into DIR/nbgrader_config.py)")
    notebook_dir = notebooks_of(args.lang)
    if args.course is not None:
        ids = write_course(args.course, notebook_dir, exchange=args.exchange)
        for assignment in ids:
            released = generate(args.course, assignment)
            sys.stderr.write(f"released {assignment}: {released}\n")
        sys.stderr.write(
            f"course ready in {args.course.resolve()} (nbgrader_config.py, source/, release/, "
            "gradebook.db); next: see GRADING.md (in Russian: GRADING.ru.md)\n"
        )
        return 0
    out = args.out
    if out is None:
        out = ROOT / "release" if args.lang == "en" else ROOT / "release" / args.lang
    for path in release_to(out, notebook_dir):
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
