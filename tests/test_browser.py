"""The lab in a real browser: each notebook run in JupyterLab in headless Chromium.

Headless execution (tests/test_notebooks.py) proves the code runs; this
proves a student *sees* it work. One JupyterLab server (from this venv, on
loopback, random token) and one Chromium (Debian's, fresh profile, loopback
only) serve every notebook in notebooks/*.ipynb and notebooks/ru/*.ipynb (the
Russian edition: the same code, so the same ``EXPECTED``, and its first cell
must have selected Russian). For each notebook we open it by its URL, wait
for its kernel's real state, Run All, and check:

* no cell shows an error (no error output, no traceback on stderr);
* every widget the kernel displayed rendered as a widget (not "Error
  displaying widget"), and as many as ``EXPECTED`` says;
* every plot rendered as an image, as many as ``EXPECTED`` says;
* a panel where a slider drives some HTML: move the slider one step, and the
  HTML must change (the kernel got the value and answered);
* in a notebook with a chat panel: type, wait until the kernel holds the
  text, press Send, and the reply appears in the conversation log.

``EXPECTED`` is what a reader of the notebook expects to see. It is checked
three ways: against the notebook's source (a chat panel is there only if the
code makes one), against what the kernel sent (the notebook model's
outputs), and against what the browser shows (the DOM). A number copied
from a failing run cannot make the test pass: the three must agree.

Screenshots (whole notebook, and one screen at its widgets) go to a folder
under pytest's temporary directory; the paths are printed.

A first test runs the same checks on a tiny notebook of our own (a slider, a
plot, two chat panels, a deliberate error), so a harness that has gone blind
fails there instead of passing everywhere.

Needs /usr/bin/chromium (``apt-get install chromium``) and the ``playwright``
package (the ``dev`` extra). Skipped when Chromium is missing outside CI; in
CI (``CI=true``) a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser_lab import (
    CHROMIUM,
    ERROR_PREFIXES,
    LabServer,
    NotebookPage,
    code_cells,
    count_outputs,
    error_outputs,
    open_browser,
)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
# Both editions: notebooks/*.ipynb, then the Russian one, opened as ru/NAME.ipynb.
NOTEBOOK_NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")) + sorted(
    f"ru/{path.name}" for path in NOTEBOOKS.glob("ru/*.ipynb")
)
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
SELF_CHECK = "_harness_self_check.ipynb"

RUN_ALL_SECONDS = 90  # for one notebook's cells; the longest takes about 10 s here
pytestmark = pytest.mark.timeout(170)


@dataclass(frozen=True)
class Expect:
    """What a student sees after Run All."""

    widgets: int  # top-level widget views (a panel of sliders counts once)
    plots: int  # figures rendered as images
    chats: int = 0  # chat panels: a text box, a Send button, a conversation log


# Read from each notebook (not copied from a run); the test checks each number
# against the notebook model and the page.
EXPECTED: dict[str, Expect] = {
    # key_exchange_sliders, the brute-force progress bar; plots.powers, plots.brute_force_times
    "01_keys.ipynb": Expect(widgets=2, plots=2),
    # the handshake by hand and two exercises: no widget, no plot
    "02_exchange.ipynb": Expect(widgets=0, plots=0),
    # side_by_side(chat panel, Eve's wire view) is one view; plots.caesar_scores,
    # byte_histograms, sequence_diagram, layers; the chat panel for Alice's client;
    # widgets.kernel_status before the clean-up
    "02b_chat.ipynb": Expect(widgets=2, plots=4, chats=1),
    # file views and event tables are HTML, not widgets; two sequence diagrams
    "03_allowlist.ipynb": Expect(widgets=0, plots=2),
    # the "ports in use" gauge while 16 visitors come and go; plots.pool_timeline
    "04_two_ports.ipynb": Expect(widgets=1, plots=1),
    # the upload and download progress bars; plots.fingerprint_grid
    "05_ftp.ipynb": Expect(widgets=2, plots=1),
    # our own tiny notebook: a slider panel, two chat panels; one plot
    SELF_CHECK: Expect(widgets=3, plots=1, chats=2),
}


COLD_OPEN_SECONDS = 180.0
"""How long the session's first page may take to open: it also waits for JupyterLab to
serve its assets and start its extensions and language packs for the first time (33 s
seen on a loaded 2-core machine, over 60 s once). A bound, not a goal: the report prints
each open's time."""


@dataclass
class Session:
    """The running lab and browser, shared by the tests of this file."""

    lab: LabServer
    context: Any
    shots: Path
    blocked: list[str]
    warm: bool = False  # has a page of this session opened yet?


def _require_browser() -> None:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it (apt-get install "
                        "chromium); the browser test must run there")
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install chromium` "
                    "to run the lab in a real browser (CI always runs this test)")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """JupyterLab on a copy of notebooks/ and a loopback-only Chromium; both stopped after."""
    _require_browser()
    work = tmp_path_factory.mktemp("browser")
    root = work / "lab" / "notebooks"  # key files the notebooks write land in here
    shutil.copytree(NOTEBOOKS, root,
                    ignore=shutil.ignore_patterns("keys", ".ipynb_checkpoints", "__pycache__"))
    nbformat.write(_self_check_notebook(), root / SELF_CHECK)
    shots = work / "screenshots"
    shots.mkdir()
    lab = LabServer(root, work)
    blocked: list[str] = []
    try:
        lab.start()
        with open_browser(work / "chromium-profile", blocked) as context:
            yield Session(lab, context, shots, blocked)
    finally:
        lab.shutdown()


def _self_check_notebook() -> nbformat.NotebookNode:
    """A slider, a plot, the lab's chat panel, a live-typing chat panel, a deliberate error."""
    cells = [
        "import threading\nimport ipywidgets as ipw\nimport matplotlib.pyplot as plt\n"
        "from labcrypto.widgets import ChatPanel",
        # A slider whose label the kernel rewrites: a move must come back changed.
        "slider = ipw.IntSlider(value=3, description='a')\nlabel = ipw.HTML('a = 3')\n"
        "slider.observe(lambda change: setattr(label, 'value', f'a = {change.new}'), 'value')\n"
        "ipw.VBox([slider, label])",
        "fig, ax = plt.subplots(figsize=(4, 3))\nax.plot([1, 2, 3], [1, 4, 9]);",
        # The lab's panel; the reply comes from another thread, as from a real server.
        "panel = ChatPanel(lambda text: threading.Timer(0.2, panel.add,"
        " ('server', text.upper())).start())\npanel.widget",
        # A box that syncs every keystroke: a click sent too early would log a cut message.
        "box = ipw.Text(continuous_update=True, placeholder='live')\nlog = ipw.HTML()\n"
        "button = ipw.Button(description='Send')\n"
        "button.on_click(lambda _b: setattr(log, 'value',"
        " log.value + f'<div>you: {box.value}</div><div>echo: {box.value[::-1]}</div>'))\n"
        "ipw.VBox([log, ipw.HBox([box, button])])",
        "1 / 0",
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.cells[-1].metadata["tags"] = ["raises-exception"]
    return notebook


MAKES_CHAT_PANEL = re.compile(r"ChatPanel(\.\w+)?\(|description=['\"]Send['\"]")


def _chat_panels_in_source(model: dict[str, Any]) -> int:
    """Chat panels the code makes: ChatPanel(...) / ChatPanel.for_client(...), or a Send button."""
    total = 0
    for cell in code_cells(model):
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        total += len(MAKES_CHAT_PANEL.findall(source))
    return total


def _chat_cells(model: dict[str, Any]) -> list[int]:
    """Indices (among all cells) of the code cells that make a chat panel."""
    return [index for index, cell in enumerate(model["cells"])
            if cell["cell_type"] == "code" and _chat_panels_in_source({"cells": [cell]})]


def _say(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(text)


def _run_notebook(session: Session, name: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """Open ``name``, run it, check it as a student would see it; return what was seen."""
    expect = EXPECTED.get(Path(name).name)  # ru/NAME runs the code of NAME
    assert expect is not None, (
        f"{name} has no row in EXPECTED (tests/test_browser.py): read the notebook and "
        "write how many widgets, plots and chat panels a student should see after Run All"
    )
    timings: dict[str, float] = {}
    start = time.monotonic()
    page = session.context.new_page()
    notebook = NotebookPage(session.lab, page, name)
    stem = name.removesuffix(".ipynb").replace("/", "-")
    try:
        notebook.open(timeout=60.0 if session.warm else COLD_OPEN_SECONDS)
        session.warm = True
        timings["open"] = time.monotonic() - start
        # Run All, but pause after each cell that makes a chat panel and chat there,
        # as a student does: the notebook's last cell closes the connections.
        stops = _chat_cells(notebook.model())
        first, replies, chat_seconds = 0, [], 0.0
        deadline = time.monotonic() + RUN_ALL_SECONDS
        for stop in [*stops, None]:
            notebook.run_cells(first, stop, timeout=max(1.0, deadline - time.monotonic()))
            if any(error_outputs(cell) for cell in code_cells(notebook.model())):
                break
            for index in range(len(replies), notebook.chat_panels()):
                message = f"hello from the browser test {index} ✓ {os.getpid()}"
                replies.append(notebook.chat(index, message))
                chat_seconds += replies[-1].seconds
            first = (stop or 0) + 1
        timings["run all"] = time.monotonic() - start - timings["open"] - chat_seconds
        timings["chat"] = chat_seconds

        model = notebook.model()
        cells = code_cells(model)
        errors = {index: found for index, cell in enumerate(model["cells"])
                  if (found := error_outputs(cell))}
        assert not errors, f"{name}: cells show errors (cell index: error): {errors}"
        not_run = [index for index, cell in enumerate(model["cells"])
                   if cell in cells and cell.get("execution_count") is None]
        assert not not_run, f"{name}: code cells {not_run} never ran"
        shown = notebook.stderr_outputs()
        tracebacks = [out for out in shown
                      if "Traceback" in out["text"] and not _expected_error(model, out)]
        assert not tracebacks, f"{name}: tracebacks on the page: {tracebacks}"

        if name.startswith("ru/"):
            assert _language_selected(model) == "'ru'", (
                f"{name}: the first code cell should select Russian, it shows "
                f"{_language_selected(model)!r}"
            )

        sent = count_outputs(model)
        widgets = notebook.widgets()
        assert not widgets["problems"], (
            f"{name}: widgets that did not render: {widgets['problems']}"
        )
        assert sent["widgets"] == expect.widgets, (
            f"{name}: the kernel displayed {sent['widgets']} widgets, EXPECTED says "
            f"{expect.widgets}: is a widget missing (or the table wrong)?"
        )
        assert len(widgets["views"]) == sent["widgets"], (
            f"{name}: the page shows {len(widgets['views'])} widget views of the "
            f"{sent['widgets']} the kernel displayed"
        )
        assert all(view["width"] > 0 and view["height"] > 0 for view in widgets["views"]), (
            f"{name}: a widget view has no size: {widgets['views']}"
        )

        # A slider that drives a table: move it, and the table must follow (via the kernel).
        nudged = notebook.nudge_sliders()

        images = notebook.images()
        assert sent["images"] == expect.plots, (
            f"{name}: the kernel sent {sent['images']} images, EXPECTED says {expect.plots}"
        )
        assert len(images) == sent["images"], (
            f"{name}: the page shows {len(images)} of the {sent['images']} images the kernel sent"
        )
        unreadable = [image for image in images
                      if image["natural"] == 0 or image["width"] < 200 or image["height"] < 120]
        assert not unreadable, f"{name}: images not drawn or too small to read: {unreadable}"

        in_source = _chat_panels_in_source(model)
        assert in_source == expect.chats, (
            f"{name}: the code makes {in_source} chat panels, EXPECTED says {expect.chats}"
        )
        chats = notebook.chat_panels()
        assert chats == expect.chats, f"{name}: the page shows {chats} chat panels"
        assert len(replies) == chats, f"{name}: chatted in {len(replies)} of {chats} panels"
        for index, result in enumerate(replies):
            bad = [line for line in result.new_lines
                   if line.lower().startswith(ERROR_PREFIXES) or "Traceback" in line]
            assert not bad, f"{name}: chat panel {index} answered with an error: {bad}"

        shots = notebook.screenshot_full(session.shots / f"{stem}-full.png")
        focus = "[data-lab-chat]" if chats else ".jp-OutputArea-output > .jupyter-widgets"
        if chats or widgets["views"]:
            shots.append(notebook.screenshot_at(focus, session.shots / f"{stem}-widgets.png"))
        timings["total"] = time.monotonic() - start

        leftovers = [out for out in shown if "Traceback" not in out["text"]]
        sizes = ", ".join(f"{image['width']:.0f}x{image['height']:.0f}" for image in images)
        report = [f"\n[browser] {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()),
                  f"[browser]   widgets {len(widgets['views'])}, images {len(images)} "
                  f"({sizes}), chat panels {chats}, slider panels that followed a move "
                  f"{len(nudged)}"]
        report += [f"[browser]   chat {i}: kernel had the text before the click: "
                   f"{r.kernel_had_text_before_click}; new log lines {r.new_lines}"
                   for i, r in enumerate(replies)]
        report += [f"[browser]   stderr in cell {out['cell']}: {out['text'][:160]!r}"
                   for out in leftovers]
        overflowing = [view for view in widgets["views"] if view["overflow"] > 1]
        report += [f"[browser]   widget clipped horizontally: {view}" for view in overflowing]
        if notebook.console_errors:
            report.append(f"[browser]   console errors: {notebook.console_errors[:5]}")
        report += [f"[browser]   screenshot {path}" for path in shots]
        _say(capsys, "\n".join(report))
        return {"cells": cells, "stderr": shown, "replies": replies, "timings": timings,
                "nudged": nudged}
    finally:
        page.close()
        session.lab.close_sessions(name)


def _language_selected(model: dict[str, Any]) -> str:
    """What the first code cell (``set_language(...)``) returned, as the page's model holds it."""
    first = code_cells(model)[0]
    for output in first.get("outputs", []):
        text = output.get("data", {}).get("text/plain", "")
        if text:
            return text if isinstance(text, str) else "".join(text)
    return ""


def _expected_error(model: dict[str, Any], shown: dict[str, Any]) -> bool:
    """True for output shown by a cell tagged raises-exception (the page counts all cells)."""
    cell = model["cells"][shown["cell"]]
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def test_harness_sees_widgets_plots_chat_and_errors(
    session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """Our own tiny notebook: everything is found, and the deliberate error is seen."""
    seen = _run_notebook(session, SELF_CHECK, capsys)
    # The last cell divides by zero on purpose (tagged raises-exception): the page must
    # show its traceback, or the error checks above are blind.
    assert any("ZeroDivisionError" in out["text"] for out in seen["stderr"]), seen["stderr"]
    assert seen["nudged"] == [("a = 3", "a = 4")], seen["nudged"]
    live = seen["replies"][1]
    assert live.kernel_had_text_before_click, "the live-typing box never reached the kernel"
    # And the page cannot reach the Internet: the request is refused, and recorded.
    page = session.context.new_page()
    try:
        outcome = page.evaluate("() => fetch('http://example.com/lab-test')"
                                ".then(() => 'reached', () => 'refused')")
    finally:
        page.close()
    assert outcome == "refused"
    assert "http://example.com/lab-test" in session.blocked
    session.blocked.remove("http://example.com/lab-test")


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_in_browser(
    session: Session, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run All in JupyterLab: no errors, widgets and plots rendered, the chat answers."""
    _run_notebook(session, name, capsys)
    if session.blocked:
        _say(capsys, f"[browser]   requests refused (not loopback): {session.blocked[:5]}")
