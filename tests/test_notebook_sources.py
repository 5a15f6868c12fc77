"""The notebook sources' format, and the two editions built from one source.

``tools/build_notebooks.py`` reads ``# %%`` cell markers. These tests hold
what the format promises: a marker that breaks a rule is refused with its
file and line; a Russian twin translates the cell above it and nothing else
(code, nbgrader roles, grade ids and points are identical in both editions);
the cells still lacking Russian text are listed; a twin whose English
text changed after it was written is refused until it is updated and
re-marked (``en=``); and a stale or orphaned Russian notebook is caught
like a stale English one.

``tests/data/notebook_src/09_twins.py`` is a tiny source with one cell of
each kind, all but two of them with a Russian twin.
"""

from __future__ import annotations

import ast
import contextlib
import shutil
from pathlib import Path

import nbformat
import pytest
from notebook_builder import build_notebooks

FIXTURES = Path(__file__).resolve().parent / "data" / "notebook_src"
TWINS = FIXTURES / "09_twins.py"


def _write(tmp_path: Path, text: str) -> Path:
    """``text`` as a source file, its twins marked as a translator marks them (``--mark``),
    so each case meets only the rule it is about."""
    source = tmp_path / "01_case.py"
    source.write_text(text, encoding="utf-8")
    with contextlib.suppress(build_notebooks.SourceError):  # the case's own error, below
        build_notebooks.mark(source)
    return source


def _is_docstring(statement: ast.AST) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _code_without_prose(text: str) -> str:
    """The code of a cell with comments and docstrings gone: what no translation may change
    (but the language ``set_language`` selects, compared on its own)."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            body.pop(0)
    return ast.unparse(tree).replace("set_language('ru')", "set_language('en')")


def _languages_selected(text: str) -> list[str]:
    """The language of each ``set_language("…")`` call in a cell's code."""
    return [
        node.args[0].value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "set_language"
    ]


# --- two editions ---------------------------------------------------------------------


def test_the_editions_differ_only_in_prose() -> None:
    editions = build_notebooks.editions(TWINS)
    assert set(editions) == {"en", "ru"}
    en, ru = editions["en"], editions["ru"]
    assert [c.id for c in en.cells] == [c.id for c in ru.cells]
    translated = set()
    for english, russian in zip(en.cells, ru.cells, strict=True):
        assert english.cell_type == russian.cell_type, english.id
        assert english.metadata == russian.metadata, f"{english.id}: nbgrader metadata differs"
        if english.cell_type == "code":
            assert _code_without_prose(english.source) == _code_without_prose(russian.source)
            regions = [line for line in english.source.splitlines() if "###" in line]
            assert regions == [line for line in russian.source.splitlines() if "###" in line]
        if english.source != russian.source:
            translated.add(english.id)
    # Each twin's text is in the Russian edition; the two cells without a twin stay English.
    assert translated == {
        "intro",
        "language",
        "setup",
        "public_value",
        "check_public_value",
        "why_secret",
    }
    # The first code cell selects each edition's own language.
    first_en = next(c for c in en.cells if c.cell_type == "code")
    first_ru = next(c for c in ru.cells if c.cell_type == "code")
    assert _languages_selected(first_en.source) == ["en"]
    assert _languages_selected(first_ru.source) == ["ru"]
    assert ru.cells[0].source.startswith("# 09 · Близнецы")
    assert "учебная группа" in ru.cells[2].source and "toy group" in en.cells[2].source
    assert ru.cells[-1].source == en.cells[-1].source == "The end."


def test_the_editions_keep_nbgrader_roles_points_and_ids() -> None:
    ru = build_notebooks.editions(TWINS)["ru"]
    grading = {c.id: c.metadata.get("nbgrader") for c in ru.cells}
    assert grading["public_value"]["solution"] is True
    assert grading["check_public_value"]["points"] == 2
    assert grading["why_secret"]["points"] == 1 and grading["why_secret"]["grade"] is True
    assert grading["cleanup"]["locked"] is True and grading["cleanup"]["grade"] is False
    assert grading["intro"] is None and grading["setup"] is None


def test_missing_russian_text_is_listed() -> None:
    assert build_notebooks.missing_translations(TWINS) == ["09_twins.py:70 outro"]


def test_a_code_cell_a_student_reads_needs_its_twin_too(tmp_path: Path) -> None:
    """A check cell's docstring or a demo's comment is prose: listed until translated;
    nbgrader's region lines and a ``noqa`` are not."""
    source = _write(
        tmp_path,
        '# %% solution grade_id=quiet\n'
        'x = 1  # noqa: F401\n'
        '### BEGIN SOLUTION\n'
        'y = 2\n'
        '### END SOLUTION\n'
        '\n'
        '# %% id=commented\n'
        'z = 3  # the third value\n'
        '\n'
        '# %% tests grade_id=check points=1\n'
        '"""Check the values."""\n'
        'assert x == 1\n',
    )
    assert build_notebooks.missing_translations(source) == [
        "01_case.py:7 commented",
        "01_case.py:10 check",
    ]


def test_build_all_writes_and_checks_the_russian_edition(tmp_path: Path) -> None:
    sources, notebooks = tmp_path / "src", tmp_path / "notebooks"
    sources.mkdir()
    notebooks.mkdir()
    shutil.copy(TWINS, sources)
    written = build_notebooks.build_all(sources=sources, notebooks=notebooks)
    assert written == ["notebooks/09_twins.ipynb", "notebooks/ru/09_twins.ipynb"]
    russian = notebooks / "ru" / "09_twins.ipynb"
    assert "Близнецы" in russian.read_text(encoding="utf-8")
    assert build_notebooks.build_all(check=True, sources=sources, notebooks=notebooks) == []

    stored = russian.read_text(encoding="utf-8")
    russian.write_text(stored.replace("Близнецы", "Близнец"), encoding="utf-8")
    stale = build_notebooks.build_all(check=True, sources=sources, notebooks=notebooks)
    assert stale == ["notebooks/ru/09_twins.ipynb"]

    orphan = notebooks / "ru" / "08_gone.ipynb"
    orphan.write_text(stored, encoding="utf-8")
    russian.write_text(stored, encoding="utf-8")
    orphaned = build_notebooks.build_all(check=True, sources=sources, notebooks=notebooks)
    assert orphaned == ["notebooks/ru/08_gone.ipynb"]
    build_notebooks.build_all(sources=sources, notebooks=notebooks)
    assert not orphan.exists()


def test_a_source_without_twins_has_only_the_english_edition(tmp_path: Path) -> None:
    source = _write(tmp_path, "# %% [markdown] id=intro\n# Hello.\n\n# %% id=code\n1 + 1\n")
    assert list(build_notebooks.editions(source)) == ["en"]
    nb = build_notebooks.build(source)
    assert [(c.cell_type, c.id, c.source) for c in nb.cells] == [
        ("markdown", "intro", "Hello."),
        ("code", "code", "1 + 1"),
    ]


def test_building_twice_gives_the_same_bytes() -> None:
    first = nbformat.writes(build_notebooks.editions(TWINS)["ru"])
    again = nbformat.writes(build_notebooks.editions(TWINS)["ru"])
    assert first == again and '"outputs": []' in first


# --- what the format refuses ------------------------------------------------------------

BODY = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
SOLUTION = "# %% solution grade_id=f\n" + BODY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# %% [markdown] id=a\n# Hi\n\n# %% [markdown] lang=ru id=b\n# Привет\n", "must follow"),
        ("# %% id=a\n1\n\n# %% [markdown] lang=ru id=a\n# Привет\n", "must follow"),
        ("# %% id=a\nx = 1  # one\n\n# %% lang=ru id=a\nx = 2  # один\n", "changes the code"),
        (
            SOLUTION + "\n# %% lang=ru grade_id=f\ndef f():\n    return 1\n",
            "changes the code",
        ),
        (SOLUTION + "\n# %% lang=ru grade_id=f points=1\n" + BODY, "only lang="),
        ("# %% [markdown] id=a\n# Hi\n\n# %% [markdown] lang=de id=a\n# Hallo\n", "language"),
        ("# %% id=a\n1\n\n# %% id=a\n2\n", "used twice"),
        ("# %% id=a grade_id=b\n1\n", "exactly one of id= and grade_id="),
        ("# %% id=a b\n1\n", "unknown word"),
        ("# %% id=a colour=red\n1\n", "unknown key"),
        ("# %% id=a b\n1\n", "roles:"),
        ("# %% id=a\n1\n\n# %% id=b c\n2\n", "01_case.py:4:"),
        ("# %% solution id=a\n1\n", "needs grade_id="),
        ("# %% grade_id=a\n1\n", "grade_id= belongs"),
        ("# %% solution grade_id=f\ndef f():\n    return 1\n", "no solution region"),
        ("# %% tests grade_id=t\nassert True\n", "needs points=N"),
        ("# %% tests grade_id=t points=0\nassert True\n", "needs points=N"),
        ("# %% solution grade_id=f points=1\n" + BODY, "only tests and answer"),
        ("# %% [markdown] solution grade_id=a\n# x\n", "is a code cell"),
        ("# %% answer grade_id=a points=1\nx = 1\n", "[markdown] answer"),
        ("# %% id=a\n### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS\n", "tests cell"),
        ("# %% id=a\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "outside a solution"),
        ("# %% [markdown] id=a\nHello\n", "a markdown line is '# text'"),
        ("# %% [markdown] id=a\n#Hello\n", "a markdown line is '# text'"),
        ("x = 1\n# %% id=a\n1\n", "before the first"),
        ("# only a comment\n", "no `# %%` cells"),
        ("# %% id=a/b\n1\n", "is not 1-64 letters"),
        ("# %% id=a en=1234abcd\n1\n", "en= belongs on a lang= twin"),
        ("# %% [markdown] id=a\n# Hi\n\n# %% [markdown] lang=ru id=a en=x\n# Привет\n", "8 hex"),
    ],
)
def test_a_broken_source_is_refused_with_its_place(
    tmp_path: Path, text: str, message: str
) -> None:
    source = _write(tmp_path, text)
    with pytest.raises(build_notebooks.SourceError, match=r"01_case\.py") as info:
        build_notebooks.parse(source)
    assert message in str(info.value)


LANGUAGE_EN = 'from labcrypto.i18n import set_language\n\nset_language("en")\n'
LANGUAGE_RU = 'from labcrypto.i18n import set_language\n\nset_language("ru")\n'
INTRO = "# %% [markdown] id=intro\n# Hi\n\n# %% [markdown] lang=ru id=intro\n# Привет\n\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A twin that keeps English, an English cell that says Russian, a computed language.
        ("# %% id=a\n" + LANGUAGE_EN + "\n# %% lang=ru id=a\n" + LANGUAGE_EN, "('ru')"),
        ("# %% id=a\n" + LANGUAGE_RU, "set_language('en')"),
        ('# %% id=a\nset_language("e" + "n")\n', "as a literal"),
        ('# %% id=a\nset_language(code="en")\n', "as a literal"),
        ('# %% id=a\ni18n.set_language("ru")\n', "set_language('en')"),
    ],
)
def test_the_language_switch_passes_its_cells_language(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(build_notebooks.SourceError, match=r"01_case\.py:\d+") as info:
        build_notebooks.parse(_write(tmp_path, text))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Translated, but no cell selects the language; then not in the first code cell.
        (INTRO + "# %% id=a\n1\n", "selects the language in its first code cell"),
        (INTRO + "# %% id=a\n1\n\n# %% id=b\n" + LANGUAGE_EN, "in its first code cell"),
        # The switch is there, but the Russian edition would run the English one.
        (INTRO + "# %% id=a\n" + LANGUAGE_EN, "needs a lang=ru twin"),
    ],
)
def test_a_translated_source_selects_each_editions_language_first(
    tmp_path: Path, text: str, message: str
) -> None:
    source = _write(tmp_path, text)
    build_notebooks.parse(source)  # each cell is fine on its own
    with pytest.raises(build_notebooks.SourceError, match=r"01_case\.py") as info:
        build_notebooks.editions(source)
    assert message in str(info.value)


def test_the_language_switch_is_the_only_code_a_twin_changes(tmp_path: Path) -> None:
    switch = "# %% id=a\n" + LANGUAGE_EN + "\n# %% lang=ru id=a\n" + LANGUAGE_RU
    editions = build_notebooks.editions(_write(tmp_path, INTRO + switch))
    assert _languages_selected(editions["ru"].cells[1].source) == ["ru"]
    assert _languages_selected(editions["en"].cells[1].source) == ["en"]
    sneaky = "# %% id=a\n" + LANGUAGE_EN + "\n# %% lang=ru id=a\n" + LANGUAGE_RU + "x = 1\n"
    with pytest.raises(build_notebooks.SourceError, match="changes the code"):
        build_notebooks.parse(_write(tmp_path, sneaky))


def test_a_code_twin_may_change_comments_and_docstrings(tmp_path: Path) -> None:
    source = _write(
        tmp_path,
        SOLUTION.replace("def f():\n", 'def f():\n    """One."""  # the answer\n')
        + '\n# %% lang=ru grade_id=f\ndef f():\n    """Один."""  # ответ\n'
        + "    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
    )
    (cell,) = build_notebooks.parse(source)
    assert '"""Один."""' in cell.translations["ru"] and '"""One."""' in cell.text


# --- a twin that falls behind its English text ---------------------------------------------

TWO = (
    "# %% [markdown] id=a\n# Alice sends A.\n\n# %% [markdown] lang=ru id=a\n# Алиса шлёт A.\n\n"
    "# %% [markdown] id=b\n# Bob sends B.\n\n# %% [markdown] lang=ru id=b\n# Боб шлёт B.\n"
)


def test_a_twin_whose_english_changed_is_refused_until_re_marked(tmp_path: Path) -> None:
    source = _write(tmp_path, TWO)
    assert [c.translations["ru"] for c in build_notebooks.parse(source)] == [
        "Алиса шлёт A.", "Боб шлёт B.",
    ]  # fmt: skip
    source.write_text(
        source.read_text(encoding="utf-8").replace("Bob sends B.", "Bob sends B = g^b."),
        encoding="utf-8",
    )
    with pytest.raises(build_notebooks.SourceError) as info:
        build_notebooks.parse(source)
    message = str(info.value)
    assert message.startswith("01_case.py:10:") and "English text of b" in message
    assert "python tools/build_notebooks.py --mark 01_case.py:b" in message
    # The build of the whole lab (and so `--check` and the tests) stops on it too.
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    with pytest.raises(build_notebooks.SourceError, match="changed after"):
        build_notebooks.build_all(check=True, sources=tmp_path, notebooks=notebooks)
    # The translator updates the Russian and re-marks that cell; only its marker changes.
    before = source.read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join(before).replace("Боб шлёт B.", "Боб шлёт B = g^b.") + "\n")
    assert build_notebooks.mark(source, {"b"}) == ["01_case.py:10 b"]
    after = source.read_text(encoding="utf-8").splitlines()
    assert [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y] == [9, 10]
    assert build_notebooks.parse(source)[1].translations["ru"] == "Боб шлёт B = g^b."
    assert build_notebooks.mark(source) == [], "nothing left to mark"


def test_a_twin_without_its_mark_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "01_case.py"
    source.write_text(TWO, encoding="utf-8")
    with pytest.raises(build_notebooks.SourceError, match=r"01_case\.py:4:.*does not say") as info:
        build_notebooks.parse(source)
    assert "--mark 01_case.py:a" in str(info.value)
    with pytest.raises(build_notebooks.SourceError, match="no cell c"):
        build_notebooks.mark(source, {"c"})


def test_the_mark_ignores_trailing_spaces_and_blank_lines_only() -> None:
    mark = build_notebooks.english_hash
    assert mark("Hi  \nthere\n\n") == mark("Hi\nthere")
    assert mark("Hi there") != mark("Hi  there") != mark("Hi\n\nthere")


# --- the lab's own sources ----------------------------------------------------------------

LAB_SOURCES = sorted(build_notebooks.SOURCES.glob("*.py"))


@pytest.mark.parametrize("source", LAB_SOURCES, ids=[s.stem for s in LAB_SOURCES])
def test_every_prose_cell_of_the_lab_has_its_russian_text(source: Path) -> None:
    """The Russian edition is complete: a new or renamed markdown cell needs its twin."""
    missing = build_notebooks.missing_translations(source)
    assert not missing, (
        f"markdown cells with no Russian text (add a `lang=ru` twin below each): {missing}"
    )
