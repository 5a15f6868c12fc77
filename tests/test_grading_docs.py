"""GRADING.md and GRADING.ru.md say what the notebooks really grade: each assignment's
points, automatic and by hand, as nbgrader's metadata in the notebooks has them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = {"GRADING.md": ROOT / "notebooks", "GRADING.ru.md": ROOT / "notebooks" / "ru"}
POINTS = re.compile(r"\((\d+)\)")


def graded_points(notebook: Path) -> tuple[int, dict[str, int]]:
    """(automatic points, {grade id: points} of the answers graded by hand) of a notebook.

    nbgrader: a cell with ``grade`` and ``solution`` is an answer graded by hand; a
    cell with ``grade`` alone is a test cell, graded automatically."""
    auto, by_hand = 0, {}
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        if meta.get("solution"):
            by_hand[meta["grade_id"]] = int(meta["points"])
        else:
            auto += int(meta["points"])
    return auto, by_hand


def table(doc: str) -> dict[str, tuple[int, int]]:
    """The doc's "what gets graded" table: {assignment: (automatic points, points by hand)}."""
    rows = {}
    for line in (ROOT / doc).read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"`0\d\w*`", cells[0]):
            auto = sum(int(n) for n in POINTS.findall(cells[2]))
            by_hand = sum(int(n) for n in POINTS.findall(cells[3]))
            rows[cells[0].strip("`")] = (auto, by_hand)
    return rows


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_the_table_has_every_assignment_with_its_points(doc: str) -> None:
    notebooks = sorted(DOCS[doc].glob("0*.ipynb"))
    assert len(notebooks) == 6
    expected = {}
    for notebook in notebooks:
        auto, by_hand = graded_points(notebook)
        expected[notebook.stem] = (auto, sum(by_hand.values()))
    assert table(doc) == expected


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_the_answers_graded_by_hand_are_named_where_max_score_is_explained(doc: str) -> None:
    """The paragraph on grades.csv names each answer graded by hand, and no other notebook
    (it used to say "03 and 05": 05 has none)."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    paragraph = next(p for p in text.split("\n\n") if "`max_score` " in p and "Formgrader" in p)
    by_hand = {}
    for notebook in sorted(DOCS[doc].glob("0*.ipynb")):
        for grade_id, points in graded_points(notebook)[1].items():
            by_hand[grade_id] = (notebook.stem[:2], points)
    assert by_hand, "at least one answer is graded by hand"
    for grade_id, (number, _points) in by_hand.items():
        assert f"`{grade_id}`" in paragraph and number in paragraph, (doc, grade_id)
    named = set(re.findall(r"\b0\d\b", paragraph))
    assert named == {number for number, _points in by_hand.values()}, (doc, named)


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_the_student_id_cell_shown_is_the_one_after_the_imports(doc: str) -> None:
    """"In notebooks 01 and 02b, the code cell right after the imports reads …": the
    lines shown (comments aside) are that cell's, in both editions."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    shown = re.search(r"\n```python\n(STUDENT_ID.*?)```", text, re.DOTALL)
    assert shown, doc
    wanted = [line.split("#")[0].rstrip() for line in shown.group(1).splitlines()]
    for name in ("01_keys", "02b_chat"):
        cells = json.loads((DOCS[doc] / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
        assert "set_language" in code[0] and "import " in code[1], name  # language, imports
        lines = [line.split("#")[0].rstrip() for line in code[2].splitlines()]
        assert lines[: len(wanted)] == wanted, (doc, name, code[2])
