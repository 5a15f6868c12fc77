"""The notebooks: clean in git, well-formed for nbgrader, and they run.

* Every notebook in ``notebooks/`` (and in ``notebooks/ru/``, the Russian
  edition, once a source has Russian text) is stored without outputs, and is
  exactly what ``tools/build_notebooks.py`` builds from ``notebooks/src/``.
* The nbgrader metadata is well formed: unique grade ids, points on every
  check cell, a solution region in every exercise cell, each exercise
  followed by its check.
* The instructor's version (solutions and hidden tests in place) runs top to
  bottom headless without a single error.
* The student's version — solutions cleared and hidden tests removed by
  nbgrader's own preprocessors, as ``nbgrader generate_assignment`` does —
  runs too, and the only cells that fail are the exercise checks (each with
  a friendly ``CheckFailed``, not a bare traceback), never a demo cell.

Each notebook runs in a temporary copy of ``notebooks/``, so the key files
it writes land in the temporary folder, with a kernel of this interpreter.
Both editions run, the Russian one (``notebooks/ru/``) from its own folder
as a student opens it. Its code is the English code but for comments,
docstrings and the language its first cell selects
(``tests/test_notebook_sources.py``); what running it adds is the proof
that this first cell works: each edition runs in a kernel whose
environment asks for the *other* language (``LABCRYPTO_LANG``), and a probe
cell appended at the end must still find the edition's own language, with
the Russian catalog loaded in that kernel.
"""

from __future__ import annotations

import copy
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from kernels import write_kernelspec
from notebook_builder import build_notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TRANSLATED = sorted(NOTEBOOK_DIR.glob("ru/*.ipynb"))  # the Russian edition, once it exists
STORED = NOTEBOOKS + TRANSLATED
CELL_TIMEOUT = 60  # seconds; nbgrader's own default is 30
RUN_LIMIT = 45  # seconds for a whole notebook (the goal is under 30)

pytestmark = pytest.mark.timeout(300)


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(NOTEBOOK_DIR).with_suffix("")) for p in paths]


def _grading(cell: nbformat.NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_exercise_cell(cell: nbformat.NotebookNode) -> bool:
    meta = _grading(cell)
    return bool(meta.get("grade") or meta.get("solution"))


def _is_manual_answer(cell: nbformat.NotebookNode) -> bool:
    """A free-text answer graded by a person: a markdown cell that is solution and grade."""
    meta = _grading(cell)
    return cell.cell_type == "markdown" and bool(meta.get("grade") and meta.get("solution"))


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``python3`` kernelspec that runs *this* interpreter, first on JUPYTER_PATH.

    A user-wide ``python3`` kernelspec (say, from another Python) would
    otherwise win, and the notebooks would run without this venv.
    """
    return write_kernelspec(tmp_path_factory.mktemp("jupyter"))


def _language(path: Path) -> str:
    """The edition a notebook belongs to: ``"ru"`` under notebooks/ru/, else ``"en"``."""
    return "ru" if path.parent.name == "ru" else "en"


def _execute(
    nb: nbformat.NotebookNode, workdir: Path, kernel_env: Path, allow_errors: bool
) -> float:
    """Run ``nb`` in place with cwd ``workdir``; return the seconds it took.

    The kernel's environment asks for the language *other* than the edition's
    (``LABCRYPTO_LANG``), so only the notebook's own first cell can make it
    speak the edition's language.
    """
    from nbclient import NotebookClient

    mp = pytest.MonkeyPatch()
    mp.setenv("LABCRYPTO_LANG", "en" if workdir.name == "ru" else "ru")
    mp.setenv("JUPYTER_PATH", str(kernel_env))
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        for attempt in range(3):
            client = NotebookClient(
                nb,
                timeout=CELL_TIMEOUT,
                kernel_name="python3",
                allow_errors=allow_errors,
                resources={"metadata": {"path": str(workdir)}},
            )
            start = time.perf_counter()
            try:
                client.execute()
            except RuntimeError as exc:
                # jupyter_client's port race (tests/test_grading.py, KERNEL_PORT_TAKEN):
                # the kernel died before it ran a cell; start another.
                if "Kernel died before replying to kernel_info" not in str(exc) or attempt == 2:
                    raise
                continue
            return time.perf_counter() - start
        raise AssertionError("unreachable: the loop returns or raises")
    finally:
        mp.undo()


def _workdir(tmp_path: Path, path: Path) -> Path:
    """A copy of notebooks/ without key files (what a student starts with), and in it the
    folder of ``path``'s edition: the notebook runs there."""
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, work, ignore=shutil.ignore_patterns("keys", ".ipynb_*"))
    return work / path.parent.relative_to(NOTEBOOK_DIR)


# Appended to a notebook before it runs: which language the kernel speaks at the end, and
# whether the Russian catalog answers in that kernel ("options" is argparse's word for the
# CLI's help; the catalog carries it).
PROBE = "from labcrypto import i18n\nprint(i18n.language(), i18n.gettext('options'))"


def _probe(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    probe = nbformat.v4.new_code_cell(PROBE)
    probe["id"] = "language-probe"
    nb.cells.append(probe)
    return probe


def _check_language(probe: nbformat.NotebookNode, lang: str) -> None:
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
    spoken, _, options = text.strip().partition(" ")
    assert spoken == lang, f"the first cell should select {lang!r}; the kernel says {text!r}"
    if lang == "ru":
        assert options != "options" and re.search("[а-я]", options), f"no Russian catalog: {text!r}"
    else:
        assert options == "options", text


# The words a notebook's own code writes (table columns, plot titles, progress labels) are
# translated by the panels that show them (labcrypto.lab.vocabulary). To see what a student
# of the Russian edition reads, the run records every shown figure's titles, axis labels and
# legend entries (tests/label_recorder.py, a cell put first) and prints them at the end.
RECORDER = (Path(__file__).parent / "label_recorder.py").read_text(encoding="utf-8")
#: Words that are notation, not English, in a label (``g^x mod p``).
NOTATION = {"mod"}


def _record_labels(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Put the recorder first and a cell that prints what it saw last; return that cell."""
    recorder = nbformat.v4.new_code_cell(RECORDER)
    recorder["id"] = "label-recorder"
    nb.cells.insert(0, recorder)
    dump = nbformat.v4.new_code_cell("import json\nprint(json.dumps(_labels_shown))")
    dump["id"] = "label-dump"
    nb.cells.append(dump)
    return dump


def _reads_as_english(text: str) -> bool:
    """No Cyrillic letter, and an English word that is not notation."""
    if re.search("[а-яё]", text, re.IGNORECASE):
        return False
    return any(word.lower() not in NOTATION for word in re.findall("[A-Za-z]{3,}", text))


def _english_labels(nb: nbformat.NotebookNode, dump: nbformat.NotebookNode) -> list[str]:
    """Column names, figure labels and widget labels of a run that a Russian student would
    read in English."""
    import html
    import json

    printed = "".join(o.get("text", "") for o in dump.outputs if o.get("output_type") == "stream")
    found = [f"figure: {label}" for label in json.loads(printed)]
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html", "")
            columns = re.findall("<th[^>]*>(.*?)</th>", page)
            found += [f"column: {html.unescape(column)}" for column in columns]
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in state.get("state", {}).values():
        label = model.get("state", {}).get("description")
        if label:
            found.append(f"{model.get('model_name')}: {label}")
    shows = any(
        re.search(r"\b(plots|widgets)\.", cell.source)
        for cell in nb.cells
        if cell.cell_type == "code" and cell.get("id") not in ("label-recorder", "label-dump")
    )
    # A notebook that draws no figure, table or panel (02_exchange) has nothing to record.
    assert found or not shows, "the recorder saw nothing: is it still wired to matplotlib?"
    return sorted({item for item in found if _reads_as_english(item.partition(": ")[2])})


def _errors(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode, dict]]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((index, cell, output))
    return found


def _describe(index: int, cell: nbformat.NotebookNode, output: dict) -> str:
    source = cell.source if len(cell.source) < 400 else cell.source[:400] + "…"
    return f"cell {index}:\n{source}\n→ {output.get('ename')}: {output.get('evalue')}"


def _thread_noise(nb: nbformat.NotebookNode) -> list[str]:
    """stderr text that means a background thread printed or died (threads must not print)."""
    noise = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = output.get("text", "")
                if "Traceback" in text or "Exception in thread" in text:
                    noise.append(f"cell {index}: {text[:300]}")
    return noise


# --- stored form ---------------------------------------------------------------------


def test_the_lab_has_its_notebooks() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert "01_keys" in names, f"notebooks found: {sorted(names)}"


@pytest.mark.parametrize("path", STORED, ids=_ids(STORED))
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


def test_notebooks_are_built_from_their_sources() -> None:
    """Both editions: notebooks/ (English) and notebooks/ru/ when a source has Russian text."""
    sources = {p.stem for p in (NOTEBOOK_DIR / "src").glob("*.py")}
    assert sources == {p.stem for p in NOTEBOOKS}, "every notebook needs a source, and vice versa"
    assert {p.stem for p in TRANSLATED} <= sources, "a Russian notebook without a source"
    assert build_notebooks.build_all(check=True) == [], (
        "a notebook differs from its source: run `python tools/build_notebooks.py`"
    )


@pytest.mark.parametrize("path", STORED, ids=_ids(STORED))
def test_nbgrader_metadata_is_well_formed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    grade_ids = [_grading(c)["grade_id"] for c in nb.cells if _grading(c)]
    assert len(grade_ids) == len(set(grade_ids)), f"duplicate grade_id in {grade_ids}"
    exercises = 0  # code exercises, each with its check (a free-text question is counted apart)
    questions = 0
    for index, cell in enumerate(nb.cells):
        meta = _grading(cell)
        where = f"{path.name} cell {index} ({meta.get('grade_id', 'no grade_id')})"
        has_solution = "### BEGIN SOLUTION" in cell.source
        has_hidden = "### BEGIN HIDDEN TESTS" in cell.source
        if not _is_manual_answer(cell):
            assert has_solution == bool(meta.get("solution")), f"{where}: solution region vs meta"
        assert not has_hidden or meta.get("grade"), f"{where}: hidden tests outside a check cell"
        if not meta:
            continue
        assert meta.get("schema_version") == 3, where
        if _is_manual_answer(cell):
            questions += 1
            assert not meta.get("locked") and meta.get("task") is False, where
            points = meta.get("points")
            assert isinstance(points, int | float) and points > 0, f"{where}: points {points!r}"
            assert cell.source.strip(), f"{where}: give the model answer for the instructor"
            continue
        assert cell.cell_type == "code", where
        if meta.get("solution"):
            exercises += 1
            assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION")
            assert not meta.get("locked") and not meta.get("grade"), where
            following = nb.cells[index + 1] if index + 1 < len(nb.cells) else None
            assert following is not None and _grading(following).get("grade"), (
                f"{where}: an exercise must be followed by its check cell"
            )
        if meta.get("grade"):
            assert meta.get("locked") is True, f"{where}: check cells are locked"
            points = meta.get("points")
            assert isinstance(points, int | float) and points > 0, f"{where}: points {points!r}"
            assert "checks.check_" in cell.source, f"{where}: call a friendly check"
            assert cell.source.count("### BEGIN HIDDEN TESTS") == 1, f"{where}: hidden tests"
    assert 2 <= exercises <= 4, f"{path.name} has {exercises} exercises (2 to 4 wanted)"
    assert questions <= 1, f"{path.name} has {questions} free-text questions (at most 1 wanted)"


# --- running -------------------------------------------------------------------------


@pytest.mark.parametrize("path", STORED, ids=_ids(STORED))
def test_instructor_version_runs_clean(path: Path, tmp_path: Path, kernel_env: Path) -> None:
    work = _workdir(tmp_path, path)
    nb = nbformat.read(work / path.name, as_version=4)
    probe = _probe(nb)
    labels = _record_labels(nb) if _language(path) == "ru" else None
    seconds = _execute(nb, work, kernel_env, allow_errors=True)
    errors = _errors(nb)
    assert not errors, "\n\n".join(_describe(*e) for e in errors)
    if labels is not None:
        english = _english_labels(nb, labels)
        assert not english, (
            f"{path.name} shows these words of its code in English: {english}. Add each with "
            "N_() to labcrypto/lab/vocabulary.py, then `make catalog` and translate it"
        )
    assert not _thread_noise(nb), _thread_noise(nb)
    graded = [c for c in nb.cells if _grading(c).get("grade") and c.cell_type == "code"]
    for cell in graded:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        assert "✔" in text, f"{_grading(cell)['grade_id']}: no success line printed"
    assert seconds < RUN_LIMIT, f"{path.name} took {seconds:.1f} s"
    _check_language(probe, _language(path))
    print(f"{path.name}: instructor version ran in {seconds:.1f} s")


def _says_not_written(message: str, lang: str) -> bool:
    """The check's message says the exercise is not written yet, in the edition's language
    (a Russian message in Russian only: the catalog carries every check's words)."""
    if lang == "ru":
        return "ещё не написан" in message.lower() and "not written yet" not in message
    return "not written yet" in message


def _student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What ``nbgrader generate_assignment`` hands out: solutions and hidden tests removed."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    return nb


@pytest.mark.parametrize("path", STORED, ids=_ids(STORED))
def test_student_version_fails_only_in_exercises(
    path: Path, tmp_path: Path, kernel_env: Path
) -> None:
    work = _workdir(tmp_path, path)
    nb = _student_version(nbformat.read(work / path.name, as_version=4))
    for cell in nb.cells:
        assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
    seconds = _execute(nb, work, kernel_env, allow_errors=True)
    errors = _errors(nb)
    demo_errors = [e for e in errors if not _is_exercise_cell(e[1])]
    assert not demo_errors, "a demo cell fails without the solutions:\n\n" + "\n\n".join(
        _describe(*e) for e in demo_errors
    )
    failed = {index for index, _, _ in errors}
    for index, cell in enumerate(nb.cells):
        if not _grading(cell).get("grade"):
            continue
        if _is_manual_answer(cell):
            assert cell.source.strip() == "YOUR ANSWER HERE", "the model answer was handed out"
            continue
        grade_id = _grading(cell)["grade_id"]
        assert index in failed, f"{grade_id} passes with no solution written: it checks nothing"
        (output,) = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert output["ename"] == "CheckFailed", (
            f"{grade_id}: an unsolved exercise should fail with a friendly CheckFailed, "
            f"got {output['ename']}: {output['evalue']}"
        )
        assert _says_not_written(output["evalue"], _language(path)), output["evalue"]
        # What the student sees is the message, not a traceback through the check's code.
        shown = "\n".join(output["traceback"])
        assert "Traceback" not in shown and "feedback.py" not in shown, shown
        assert output["evalue"].strip().splitlines()[0] in shown, shown
    print(f"{path.name}: student version ran in {seconds:.1f} s")
