"""``tools/release.py``'s command line does what GRADING.md says, and refuses what it cannot do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def release(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python tools/release.py ARGV`` as an instructor types it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "release.py"), *argv],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_exchange_without_a_course_is_refused_before_anything_is_made(tmp_path) -> None:
    """--exchange is written into the course's nbgrader_config.py: without --course it used
    to be dropped without a word, and the release went on as if it had not been given."""
    out = tmp_path / "out"
    done = release("--exchange", str(tmp_path / "exchange"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2
    assert "--exchange goes with --course" in done.stderr
    assert not out.exists() and not (tmp_path / "exchange").exists()
    alone = release("--exchange", str(tmp_path / "exchange"), cwd=tmp_path)
    assert alone.returncode == 2 and "--course" in alone.stderr


def test_out_and_course_are_one_or_the_other(tmp_path) -> None:
    done = release("--out", "a", "--course", "b", cwd=tmp_path)
    assert done.returncode == 2 and "not allowed with" in done.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _released_stubs(course: Path, assignment: str) -> tuple[list[str], list[str]]:
    """The code and the markdown of ``assignment``'s released notebook, cell by cell."""
    import nbformat

    nb = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", 4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    text = [c.source for c in nb.cells if c.cell_type == "markdown"]
    return code, text


def test_the_russian_course_puts_russian_words_where_the_solutions_were(tmp_path) -> None:
    """nbgrader writes "# YOUR CODE HERE" and "YOUR ANSWER HERE" where it removes a
    solution; a student of the Russian edition reads them in Russian (03 has both: code
    to write and the answer graded by hand)."""
    done = release("--lang", "ru", "--course", str(tmp_path / "ru"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    code, text = _released_stubs(tmp_path / "ru", "03_allowlist")
    assert any("# ВАШ КОД ЗДЕСЬ" in c and "raise NotImplementedError()" in c for c in code)
    assert "ВАШ ОТВЕТ ЗДЕСЬ" in [t.strip() for t in text]
    assert not any("YOUR CODE HERE" in c for c in code)
    assert not any("YOUR ANSWER HERE" in t for t in text)
    english = release("--course", str(tmp_path / "en"), cwd=tmp_path)
    assert english.returncode == 0, english.stderr
    code, text = _released_stubs(tmp_path / "en", "03_allowlist")
    assert any("# YOUR CODE HERE" in c and "raise NotImplementedError()" in c for c in code)
    assert "YOUR ANSWER HERE" in [t.strip() for t in text]
