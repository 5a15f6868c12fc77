"""Build the notebooks from their sources: ``notebooks/src/NAME.py`` → ``notebooks/NAME.ipynb``.

A source is a plain Python file cut into cells by ``# %%`` markers, the
"percent format" that VS Code, PyCharm, Spyder and jupytext all read, so an
editor shows it as cells and ruff lints its code. The code cells are the
file's code; a markdown cell is a block of comments (``# `` is taken off
each line). Each marker names the cell's role and a stable id::

    # %% [markdown] id=intro                     a markdown cell
    # %% id=imports                              a code cell (a demo: it must run
                                                 with no exercise solved)
    # %% solution grade_id=public_value          an exercise: holds ### BEGIN/END SOLUTION
    # %% tests grade_id=check_public_value points=1
                                                 the check cell right after it; hidden
                                                 tests go inside it between
                                                 ### BEGIN/END HIDDEN TESTS, as nbgrader
                                                 wants them
    # %% [markdown] answer grade_id=q_replay points=2
                                                 a free-text answer graded by hand: the
                                                 text is the model answer, which nbgrader
                                                 replaces with "YOUR ANSWER HERE" for
                                                 students
    # %% locked grade_id=setup                   a cell students cannot edit (code or
                                                 [markdown])
    # %% [markdown] lang=ru id=intro             the Russian text of the markdown cell
                                                 just above it (same id)
    # %% lang=ru grade_id=public_value           the Russian comments and docstrings of
                                                 the code cell just above it: the code
                                                 itself must be the same

(Every twin marker also ends with ``en=HASH``, the English text it was
written against: see "A twin that falls behind" below.)

Every cell has exactly one id: ``grade_id=`` for the cells nbgrader grades or
locks (it is both the nbgrader grade id and the notebook's cell id), ``id=``
for the others. Ids are names, not positions: a new cell gets a new short id
(letters, digits, ``-``, ``_``) and the others keep theirs, so a diff of the
built notebook or of a translation shows only what changed. (The cells that
existed when the sources became Python files kept their old ids,
``cell-000``, ``cell-001``, …, so the built notebooks did not change.) Lines
before the first marker are the file's own comments and are not built.

Two languages, one source. A cell's Russian text is a ``lang=ru`` twin
written *immediately after* the English cell, with the same id (``id=`` or
``grade_id=``, as the English marker has it). The alternative, a catalog of
translations keyed by cell id (a ``.po`` file), keeps the sources shorter,
but the translator and the reviewer would no longer see the two texts side
by side, and an English cell that changes would not show its twin in the
same diff. Twins keep one place per cell; the id (checked against the cell
above) makes a misplaced twin an error rather than a silent mix-up, and
:func:`missing_translations` lists the English cells that hold prose (markdown,
or a code cell's comments and docstrings) and have no twin yet; a test
fails on any in the lab's sources. Roles, grade ids and points are written once, on the English
marker, so they are the same in both editions by construction. A code cell
may have a twin too, for the comments and docstrings a student reads; the
build refuses a code twin whose code differs from the English cell in
anything else (compared as Python syntax trees with the docstrings blanked,
plus nbgrader's ``###`` region lines) but the language it selects (below).
When a source has at least one
Russian twin, the build also writes ``notebooks/ru/NAME.ipynb``: every cell
with a twin shows its Russian text, the others (until the translation is
complete) their English text.

One line of code does differ between the editions: the language the lab's
messages (checks, widgets, plots) are shown in. Each notebook's first code
cell (``id=language``) calls ``set_language("en")``, and its ``lang=ru``
twin calls ``set_language("ru")``. That string is the one exception to
"code twins change only prose", and the build checks it both ways: every
``set_language(...)`` call in a cell must pass that cell's own language as a
literal (so a twin cannot keep ``"en"``, nor an English cell say ``"ru"``),
and a source with twins must select the language in its first code cell,
with a twin in each of its languages (so no edition forgets to). Why a
twin and not the build writing the line itself: the source then shows
exactly what each edition runs, the translator sees both lines side by
side, and the exception is one literal the build verifies, not a text
substitution nobody reads. Why a cell of its own (three lines, just before
the imports): a twin of the imports cell would repeat every import, and
would break each time someone changes one. Why the English edition calls it too: on a
server whose locale or ``LABCRYPTO_LANG`` says Russian, the English notebook
would otherwise mix English prose with Russian checks.

Why our own parser and not jupytext. The format is jupytext's percent
format, so jupytext and the editors read these files; but the build reads
them with the code below because (1) the output must be byte-for-byte
reproducible, and jupytext's notebook output (its own metadata, its cell-id
policy) changes between its releases — one dependency fewer to pin; (2)
nbgrader's metadata is a nested dictionary with a schema that jupytext's
flat ``key="value"`` cell metadata would still need translating, with our
checks (a solution cell holds a solution region, hidden tests only in check
cells, points where nbgrader needs them); (3) bilingual twins are not a
jupytext idea, and would need a second pass anyway; (4) errors name the
file and line of the marker.

A twin that falls behind. When someone edits an English cell and not its
twin, the Russian edition would silently say something else. So every twin
marker carries ``en=`` and the first 8 hex digits of the SHA-256 of the
English text it translates (``# %% [markdown] lang=ru id=intro en=3f2a9c1b``);
the build refuses a twin whose English text no longer has that hash, naming
the cell and the command that re-marks it once the Russian is updated::

    python tools/build_notebooks.py --mark 03_allowlist.py:cell-016   # one cell's twins
    python tools/build_notebooks.py --mark 03_allowlist.py            # every twin of a file

A new twin is marked the same way. (Only the text counts: lines' trailing
spaces and the blank lines around a cell do not change the hash.) The mark
is a hash, not a copy of the English text, so a diff stays readable; it
cannot say *what* changed, but ``git log -p`` on the source does.

The built notebooks carry no outputs and no execution counts, so building
twice gives the same bytes.

    python tools/build_notebooks.py             # write every notebook (both editions)
    python tools/build_notebooks.py --check     # fail if a notebook differs from its source
    python tools/build_notebooks.py --missing   # list the cells with no Russian text yet
    python tools/build_notebooks.py --mark FILE[:ID] …   # the twins are up to date again

The exercise cells use nbgrader's metadata (schema 3), so an instructor can
run ``nbgrader generate_assignment`` / ``autograde`` on them as they are.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

__all__ = [
    "Cell",
    "SourceError",
    "build",
    "build_all",
    "editions",
    "main",
    "mark",
    "missing_translations",
    "parse",
]

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"
NOTEBOOKS = ROOT / "notebooks"

ENGLISH = "en"
TRANSLATIONS = ("ru",)  # the languages a twin may have; each gets notebooks/LANG/

LANGUAGE_CALL = "set_language"  # labcrypto.i18n's switch: the one code a twin may change

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "version": "3.11"}

MARKER = re.compile(r"^# %%(?P<header>(?: .*)?)$")
CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
POINTS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")
WORD = re.compile(r"[^\W\d_]{3,}")  # a word of three letters or more: prose, not a symbol
MARK = re.compile(r"^[0-9a-f]{8}$")  # a twin's en=: the English text's hash
ROLES = ("solution", "tests", "answer", "locked")
KEYS = ("id", "grade_id", "points", "lang", "en")


class SourceError(ValueError):
    """A notebook source that does not follow the format; the message names file and line."""


@dataclass
class Cell:
    """One cell of a source, with the translations of its text."""

    kind: str  # "markdown" or "code"
    role: str | None  # one of ROLES, or None for a plain cell
    id: str
    points: int | float | None
    text: str
    where: str  # "NAME.py:LINE" of its marker, for messages
    translations: dict[str, str] = field(default_factory=dict)  # language → text


@dataclass
class _Marker:
    """What a ``# %%`` line says, and the lines of its cell (numbered, for messages)."""

    kind: str
    role: str | None
    id: str
    points: int | float | None
    lang: str
    where: str  # "NAME.py:LINE" of the marker
    mark: str | None = None  # a twin's en=, the hash of the English text it translates
    lines: list[tuple[int, str]] = field(default_factory=list)


def english_hash(text: str) -> str:
    """The mark a twin carries (``en=``): 8 hex digits of the SHA-256 of the English text,
    trailing spaces left out."""
    lines = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()[:8]


def _split_header(header: str, where: str) -> tuple[str, str | None, dict[str, str]]:
    """``[markdown] ROLE key=value …`` → (kind, role, values); unknown words are errors."""
    words = header.split()
    kind = "code"
    if words and words[0] == "[markdown]":
        kind = "markdown"
        words = words[1:]
    role = None
    values: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            if word not in ROLES:
                raise SourceError(f"{where}: unknown word {word!r} (roles: {', '.join(ROLES)})")
            if role is not None:
                raise SourceError(f"{where}: two roles, {role} and {word}")
            role = word
        elif key not in KEYS:
            raise SourceError(f"{where}: unknown key {key!r} (keys: {', '.join(KEYS)})")
        elif key in values:
            raise SourceError(f"{where}: {key} given twice")
        else:
            values[key] = value
    return kind, role, values


def _points(role: str | None, values: dict[str, str], where: str) -> int | float | None:
    """The cell's points: required on tests and answer cells, refused elsewhere."""
    if role not in ("tests", "answer"):
        if "points" in values:
            raise SourceError(f"{where}: only tests and answer cells carry points")
        return None
    text = values.get("points", "")
    if not POINTS.match(text) or float(text) <= 0:
        raise SourceError(f"{where}: a {role} cell needs points=N (a positive number)")
    return int(text) if text.isdigit() else float(text)


def _check_role(kind: str, role: str | None, values: dict[str, str], where: str) -> None:
    if role is not None and "grade_id" not in values:
        raise SourceError(f"{where}: a {role} cell needs grade_id= (nbgrader's id for it)")
    if role is None and "grade_id" in values:
        raise SourceError(f"{where}: grade_id= belongs to solution/tests/answer/locked cells")
    if role in ("solution", "tests") and kind != "code":
        raise SourceError(f"{where}: a {role} cell is a code cell (drop [markdown])")
    if role == "answer" and kind != "markdown":
        raise SourceError(f"{where}: an answer cell is `# %% [markdown] answer …`")


def _parse_marker(header: str, where: str) -> _Marker:
    kind, role, values = _split_header(header, where)
    if ("id" in values) == ("grade_id" in values):
        raise SourceError(f"{where}: give the cell exactly one of id= and grade_id=")
    cell_id = values.get("grade_id") or values["id"]
    if not CELL_ID.match(cell_id):
        raise SourceError(f"{where}: id {cell_id!r} is not 1-64 letters, digits, - or _")
    lang = values.get("lang", ENGLISH)
    if lang == ENGLISH:
        if "en" in values:
            raise SourceError(f"{where}: en= belongs on a lang= twin (the English text's hash)")
        _check_role(kind, role, values, where)
        return _Marker(kind, role, cell_id, _points(role, values, where), lang, where)
    if lang not in TRANSLATIONS:
        raise SourceError(f"{where}: unknown language {lang!r} (known: {TRANSLATIONS})")
    if role or "points" in values:
        raise SourceError(
            f"{where}: a twin carries only lang= and the id; its role and points are "
            "those of the English cell above it"
        )
    mark = values.get("en")
    if mark is not None and not MARK.match(mark):
        raise SourceError(f"{where}: en={mark} is not 8 hex digits (use --mark to write it)")
    return _Marker(kind, None, cell_id, None, lang, where, mark)


def _markers(source: Path) -> list[_Marker]:
    """The source cut at its ``# %%`` lines; before the first, only comments are allowed."""
    markers: list[_Marker] = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{source.name}:{number}"
        found = MARKER.match(line)
        if found:
            markers.append(_parse_marker(found["header"], where))
        elif markers:
            markers[-1].lines.append((number, line))
        elif line.strip() and not line.startswith("#"):
            raise SourceError(f"{where}: code before the first `# %%` marker")
    if not markers:
        raise SourceError(f"{source.name}: no `# %%` cells")
    return markers


def _text(marker: _Marker, source: Path) -> str:
    """The cell's text: its lines without the blank ones around them; ``# `` off markdown."""
    lines = list(marker.lines)
    while lines and not lines[0][1].strip():
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    if marker.kind == "code":
        return "\n".join(line for _, line in lines)
    text = []
    for number, line in lines:
        if line != "#" and not line.startswith("# "):
            raise SourceError(
                f"{source.name}:{number}: a markdown line is '# text' or a lone '#': {line!r}"
            )
        text.append(line[2:])
    return "\n".join(text)


def _language_calls(tree: ast.AST) -> list[ast.Call]:
    """The calls ``set_language(...)`` / ``i18n.set_language(...)`` in ``tree``."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == LANGUAGE_CALL)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == LANGUAGE_CALL)
        )
    ]


def _check_language_calls(tree: ast.AST, lang: str, where: str) -> None:
    """Each ``set_language`` call passes ``lang``, the language of its cell, as a literal;
    then its argument is blanked, the one thing a twin's code may change."""
    for call in _language_calls(tree):
        arg = call.args[0] if len(call.args) == 1 and not call.keywords else None
        if not (isinstance(arg, ast.Constant) and arg.value == lang):
            raise SourceError(
                f"{where}: a lang={lang} cell calls {LANGUAGE_CALL}({lang!r}), "
                "with the language as a literal and nothing else"
            )
        arg.value = ""


def _parse_code(text: str, where: str) -> ast.Module:
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        raise SourceError(f"{where}: a translated code cell must be Python: {exc}") from None


def _code_shape(text: str, lang: str, where: str) -> tuple[str, list[str]]:
    """What a translation may not change in a code cell: its syntax tree with docstrings
    and the language of ``set_language`` blanked (comments are not in the tree), and
    nbgrader's ``###`` region lines."""
    tree = _parse_code(text, where)
    _check_language_calls(tree, lang, where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstring = first.value
                if isinstance(docstring.value, str):
                    docstring.value = ""
    regions = [line.strip() for line in text.splitlines() if line.strip().startswith("###")]
    return ast.dump(tree), regions


def _check_regions(cell: Cell, where: str) -> None:
    """nbgrader's regions only where nbgrader looks for them."""
    if cell.role == "solution" and not (
        "### BEGIN SOLUTION" in cell.text and "### END SOLUTION" in cell.text
    ):
        raise SourceError(f"{where}: solution cell {cell.id} has no solution region")
    if cell.role != "solution" and cell.kind == "code" and "### BEGIN SOLUTION" in cell.text:
        raise SourceError(f"{where}: a solution region outside a solution cell")
    if cell.role != "tests" and "### BEGIN HIDDEN TESTS" in cell.text:
        raise SourceError(f"{where}: hidden tests belong in a tests cell")


def _add_twin(cells: list[Cell], marker: _Marker, text: str) -> None:
    """Give the cell just above ``marker`` its ``marker.lang`` text."""
    where, lang = marker.where, marker.lang
    english = cells[-1] if cells else None
    if english is None or english.id != marker.id or english.kind != marker.kind:
        raise SourceError(
            f"{where}: a lang={lang} twin must follow the {marker.kind} cell {marker.id} "
            "it translates"
        )
    if lang in english.translations:
        raise SourceError(f"{where}: a second lang={lang} text for {marker.id}")
    if marker.kind == "code" and _code_shape(text, lang, where) != _code_shape(
        english.text, ENGLISH, english.where
    ):
        raise SourceError(
            f"{where}: the lang={lang} twin of {marker.id} changes the code; "
            "a translation changes only comments and docstrings"
        )
    _check_mark(english, marker)
    english.translations[lang] = text


def _check_mark(english: Cell, twin: _Marker) -> None:
    """The twin was written against the English text as it is now (its ``en=`` says so)."""
    source, _, _line = twin.where.partition(":")
    command = f"python tools/build_notebooks.py --mark {source}:{twin.id}"
    current = english_hash(english.text)
    if twin.mark is None:
        raise SourceError(
            f"{twin.where}: this lang={twin.lang} twin of {twin.id} does not say which English "
            f"text it translates (en=); once it is written, mark it: {command}"
        )
    if twin.mark != current:
        raise SourceError(
            f"{twin.where}: the English text of {twin.id} ({english.where}) changed after its "
            f"lang={twin.lang} twin was written (the twin says en={twin.mark}, the English "
            f"is now {current}): update the {twin.lang} text to say what the English says, "
            f"then mark it up to date: {command}"
        )


def parse(source: Path) -> list[Cell]:
    """The cells of ``source``, in order, each with its translations."""
    cells: list[Cell] = []
    for marker in _markers(source):
        text = _text(marker, source)
        if marker.lang != ENGLISH:
            _add_twin(cells, marker, text)
            continue
        if any(cell.id == marker.id for cell in cells):
            raise SourceError(f"{marker.where}: id {marker.id} is used twice")
        cell = Cell(marker.kind, marker.role, marker.id, marker.points, text, marker.where)
        _check_regions(cell, marker.where)
        if cell.kind == "code" and LANGUAGE_CALL in text:
            _check_language_calls(_parse_code(text, marker.where), ENGLISH, marker.where)
        cells.append(cell)
    return cells


def _check_language_switch(cells: list[Cell], langs: list[str], name: str) -> None:
    """A notebook with translations selects each edition's language in its first code cell."""
    first = next((cell for cell in cells if cell.kind == "code"), None)
    if first is None or not _language_calls(_parse_code(first.text, first.where)):
        raise SourceError(
            f"{first.where if first else name}: a notebook with a translation selects the "
            f'language in its first code cell: {LANGUAGE_CALL}("en"), and a twin for each language'
        )
    for lang in langs:
        if lang != ENGLISH and lang not in first.translations:
            raise SourceError(
                f"{first.where}: the first code cell needs a lang={lang} twin calling "
                f'{LANGUAGE_CALL}("{lang}"), or the {lang} edition speaks English'
            )


def _nbgrader(cell: Cell) -> dict[str, Any] | None:
    """nbgrader's metadata (schema 3) for the cell's role; None for a plain cell."""
    if cell.role == "solution":
        meta: dict[str, Any] = {"grade": False, "solution": True, "locked": False, "task": False}
    elif cell.role == "tests":
        meta = {"grade": True, "solution": False, "locked": True, "points": cell.points}
    elif cell.role == "answer":
        # nbgrader's "manually graded answer": a markdown cell that is both a
        # solution (cleared for students) and graded (points, by a person).
        meta = {"grade": True, "solution": True, "locked": False, "task": False}
        meta["points"] = cell.points
    elif cell.role == "locked":
        meta = {"grade": False, "solution": False, "locked": True, "task": False}
    else:
        return None
    meta["grade_id"] = cell.id
    meta["schema_version"] = 3
    return meta


def _notebook(cells: list[Cell], lang: str) -> nbformat.NotebookNode:
    built = []
    for cell in cells:
        if cell.kind == "markdown":
            node = new_markdown_cell(cell.translations.get(lang, cell.text))
        else:
            node = new_code_cell(cell.translations.get(lang, cell.text))
        meta = _nbgrader(cell)
        if meta is not None:
            node.metadata["nbgrader"] = meta
        node["id"] = cell.id
        built.append(node)
    nb = new_notebook(cells=built)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    nbformat.validate(nb)
    return nb


def build(source: Path, lang: str = ENGLISH) -> nbformat.NotebookNode:
    """The notebook that ``source`` describes, in ``lang`` (English unless told)."""
    return _notebook(parse(source), lang)


def editions(source: Path) -> dict[str, nbformat.NotebookNode]:
    """Every edition of ``source`` by language: English, plus each language it has twins in."""
    cells = parse(source)
    langs = [ENGLISH] + [
        lang for lang in TRANSLATIONS if any(lang in cell.translations for cell in cells)
    ]
    if len(langs) > 1:
        _check_language_switch(cells, langs, source.name)
    return {lang: _notebook(cells, lang) for lang in langs}


def _has_prose(cell: Cell) -> bool:
    """Does ``cell`` hold text a student reads: markdown, or a code cell's comment or
    docstring with a word in it (nbgrader's ``###`` region lines and ``noqa`` are not prose)?"""
    if cell.kind == "markdown":
        return True
    for token in tokenize.generate_tokens(io.StringIO(cell.text).readline):
        if token.type != tokenize.COMMENT or token.string.startswith("###"):
            continue
        comment = token.string.lstrip("#").strip()
        if WORD.search(comment) and not comment.startswith("noqa"):
            return True
    tree = _parse_code(cell.text, cell.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node)
            if docstring and WORD.search(docstring):
                return True
    return False


def missing_translations(source: Path, lang: str = "ru") -> list[str]:
    """``file:line id`` of each cell of ``source`` that holds prose (:func:`_has_prose`)
    and has no ``lang`` twin yet."""
    return [
        f"{cell.where} {cell.id}"
        for cell in parse(source)
        if lang not in cell.translations and _has_prose(cell)
    ]


def target(source: Path, lang: str, notebooks: Path = NOTEBOOKS) -> Path:
    """Where the ``lang`` edition of ``source`` is written."""
    folder = notebooks if lang == ENGLISH else notebooks / lang
    return folder / f"{source.stem}.ipynb"


def _dump(nb: Any) -> str:
    return nbformat.writes(nb) + "\n"


def build_all(
    check: bool = False, sources: Path = SOURCES, notebooks: Path = NOTEBOOKS
) -> list[str]:
    """Build (or with ``check``, compare) every edition; return the paths that differ.

    A translated notebook whose source lost all its twins is stale too: it is
    reported (and, when writing, removed), so no edition outlives its text.
    """
    differ = []
    expected: set[Path] = set()
    for source in sorted(sources.glob("*.py")):
        for lang, nb in editions(source).items():
            path = target(source, lang, notebooks)
            expected.add(path)
            text = _dump(nb)
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                differ.append(str(path.relative_to(notebooks.parent)))
                if not check:
                    path.parent.mkdir(exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    for lang in TRANSLATIONS:
        for path in sorted((notebooks / lang).glob("*.ipynb")):
            if path not in expected:
                differ.append(str(path.relative_to(notebooks.parent)))
                if not check:
                    path.unlink()
    return differ


def mark(source: Path, ids: set[str] | None = None) -> list[str]:
    """Write ``en=`` (the current English text's hash) on the twins of ``source``: every
    twin, or those of the cells in ``ids``. Return ``file:line id`` of each changed marker.

    Run it after updating a translation; it only records that the twin matches the
    English text *now*, so it is for a person who has checked that, not for a script.
    """
    markers = _markers(source)
    if ids is not None and (unknown := ids - {m.id for m in markers}):
        raise SourceError(f"{source.name}: no cell {', '.join(sorted(unknown))}")
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = []
    english: _Marker | None = None
    for marker in markers:
        if marker.lang == ENGLISH:
            english = marker
            continue
        if english is None or (ids is not None and marker.id not in ids):
            continue
        wanted = english_hash(_text(english, source))
        if marker.mark == wanted:
            continue
        number = int(marker.where.rpartition(":")[2])
        words = [w for w in lines[number - 1].split() if not w.startswith("en=")]
        lines[number - 1] = " ".join([*words, f"en={wanted}"]) + "\n"
        changed.append(f"{marker.where} {marker.id}")
    if changed:
        source.write_text("".join(lines), encoding="utf-8")
    return changed


def _mark(names: list[str]) -> int:
    """``--mark FILE[:ID] …``: mark the named twins up to date; print what changed."""
    wanted: dict[Path, set[str] | None] = {}
    for name in names:
        file, _, cell_id = name.partition(":")
        source = SOURCES / Path(file).name
        if not source.exists():
            raise SourceError(f"{file}: no such source in notebooks/src")
        ids = wanted.get(source, set())
        if ids is not None:  # None: the whole file is marked already
            wanted[source] = ids | {cell_id} if cell_id else None
    for source, ids in wanted.items():
        for line in mark(source, ids):
            sys.stderr.write(f"marked {line}\n")
    return _build(check=False)


def _report_missing(lang: str) -> int:
    """Print ``file:line id`` of every cell with prose and no ``lang`` text; 1 if any."""
    sources = sorted(SOURCES.glob("*.py"))
    missing = [m for source in sources for m in missing_translations(source, lang)]
    sys.stdout.write("".join(f"{m}\n" for m in missing))
    sys.stderr.write(f"{len(missing)} cells with prose have no {lang} text\n")
    return 1 if missing else 0


def _build(check: bool) -> int:
    differ = build_all(check=check)
    if check and differ:
        sys.stderr.write(f"out of date (run tools/build_notebooks.py): {', '.join(differ)}\n")
        return 1
    for name in differ:
        sys.stderr.write(f"{'wrote' if (ROOT / name).exists() else 'removed'} {name}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    parser.add_argument(
        "--missing", metavar="LANG", nargs="?", const="ru", help="list cells with no LANG text"
    )
    parser.add_argument(
        "--mark",
        metavar="FILE[:ID]",
        nargs="+",
        help="after updating a translation: mark the twins of FILE (or of its cell ID) as "
        "written against the English text as it is now, then build",
    )
    args = parser.parse_args(argv)
    try:
        if args.mark:
            return _mark(args.mark)
        return _report_missing(args.missing) if args.missing else _build(args.check)
    except SourceError as exc:
        sys.stderr.write(f"notebooks/src/{exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
