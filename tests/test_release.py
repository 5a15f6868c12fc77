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
