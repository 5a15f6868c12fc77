"""Drive the lab the way a student does: JupyterLab in headless Chromium.

Used by ``tests/test_browser.py``. Three pieces, each stopped for sure:

* ``LabServer`` — JupyterLab started from this Python (the project's venv)
  on a free loopback port with a random token, a throw-away settings and
  workspace directory, and a root directory of our choosing. ``api()``
  talks to its REST API; ``shutdown()`` shuts the kernels down through the
  API, then terminates the server (and kills it if it does not go).
* ``open_browser()`` — Debian's Chromium (never a downloaded one) through
  Playwright, headless, with a fresh profile and flags for a closed
  network; every request to anything but loopback is refused.
* ``NotebookPage`` — one notebook opened in a page: wait for its kernel's
  *real* state, run all cells, read what the kernel produced (the notebook
  model) and what the browser shows (the DOM), use a chat panel, and take
  screenshots.

Why the waits look the way they do (traps seen on these machines):
JupyterLab's status icon can say "idle" before the kernel exists, so we ask
the server's REST API for the kernel's ``execution_state``; ipywidgets can
deliver a button click before the last keystrokes of a text box, so we ask
the kernel itself for the text box's value before clicking; JupyterLab
attaches only the visible cells by default, so the settings directory sets
the notebook's windowing mode to ``none`` (render every cell).
"""

from __future__ import annotations

import ast
import contextlib
import gettext
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labcrypto import i18n

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "ERROR_PREFIXES",
    "ChatResult",
    "LabServer",
    "NotebookPage",
    "code_cells",
    "count_outputs",
    "error_outputs",
    "free_port",
    "in_every_language",
    "open_browser",
    "poll",
    "write_lab_settings",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# Every URL that does not start with a loopback address.
NOT_LOOPBACK = re.compile(r"^(?!(https?|wss?)://(127\.0\.0\.1|localhost|\[::1\])([:/]|$))")
# Chromium refuses textures taller than this; longer notebooks are shot in parts.
MAX_SHOT_HEIGHT = 12000

# Lab settings (JSON, one file per plugin), checked against JupyterLab 4.6's schemas:
# render every cell (not only the visible ones), never fetch news or check for updates.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def poll(
    condition: Callable[[], Any],
    timeout: float,
    step: float = 0.2,
    what: str = "",
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Call ``condition`` until it returns something true; return that, or raise TimeoutError.

    With a page open, pass ``sleep=`` the page's own wait: Playwright's sync API
    serves the browser's events only while Python is inside a Playwright call.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what or condition}")
        sleep(step)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Write ``LAB_SETTINGS`` as JupyterLab user settings under ``settings_dir``."""
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


class LabServer:
    """A JupyterLab server for one test session, on loopback, with a random token."""

    def __init__(self, root_dir: Path, work_dir: Path) -> None:
        self.root_dir = root_dir
        self.work_dir = work_dir
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = work_dir / "jupyterlab.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start JupyterLab and return once its REST API answers."""
        settings = self.work_dir / "lab-settings"
        write_lab_settings(settings)
        env = dict(
            os.environ,
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.work_dir / "lab-workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.work_dir / "jupyter-runtime"),
            PYTHONUNBUFFERED="1",
        )
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
            "--allow-root",  # CI containers run as root
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.work_dir
            )
        poll(self._answers, timeout, step=0.1, what=f"JupyterLab to answer on {self.base}")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with {self.process.returncode}; its log:\n{self.log_tail()}"
            )
        try:
            self.api("/api/status")
        except (OSError, urllib.error.URLError):
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the REST API (token in the header); return the decoded JSON or None."""
        request = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, notebook: str, workspace: str) -> str:
        """The address a student would open for ``notebook``, in a fresh workspace."""
        quoted = urllib.parse.quote(notebook)
        return f"{self.base}/lab/workspaces/{workspace}/tree/{quoted}?reset&token={self.token}"

    def session_kernel(self, notebook: str) -> dict[str, Any] | None:
        """The kernel model (with ``execution_state``) of the session for ``notebook``."""
        for session in self.api("/api/sessions") or []:
            if session.get("path") == notebook and session.get("kernel"):
                return session["kernel"]
        return None

    def kernel_idle(self, notebook: str) -> bool:
        """True when the server says the notebook's kernel exists and is idle."""
        kernel = self.session_kernel(notebook)
        return bool(kernel) and kernel.get("execution_state") == "idle"

    def close_sessions(self, notebook: str) -> None:
        """Shut down the notebook's session and its kernel."""
        for session in self.api("/api/sessions") or []:
            if session.get("path") == notebook:
                with contextlib.suppress(OSError, urllib.error.URLError):
                    self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def shutdown(self) -> None:
        """Shut every kernel down through the API, then stop the server for sure."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                for kernel in self.api("/api/kernels") or []:
                    with contextlib.suppress(OSError, urllib.error.URLError):
                        self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


@contextlib.contextmanager
def open_browser(profile_dir: Path, blocked: list[str]) -> Iterator[Any]:
    """A headless Chromium context (fresh profile) that only reaches loopback.

    Every refused request is appended to ``blocked``. The browser is closed
    on the way out, whatever happened inside.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
            service_workers="block",
        )
        try:
            # Only non-loopback addresses reach Python (the pattern is matched in the
            # browser's driver), so page loads never wait on this process.
            context.route(NOT_LOOPBACK, lambda route: _refuse(route, blocked))
            yield context
        finally:
            context.close()


def _refuse(route: Any, blocked: list[str]) -> None:
    url = route.request.url
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS or url.startswith(("data:", "blob:")):
        route.continue_()  # not expected: the pattern leaves these out
    else:
        blocked.append(url)
        route.abort("blockedbyclient")


# --- one notebook in one page ---------------------------------------------------

# JavaScript run in the page. `window.jupyterapp` is there because the server
# was started with --LabApp.expose_app_in_browser.
_JS_PANEL = "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;" \
    " return !!(w && w.context && w.content && w.context.path === %s && w.context.isReady) }"

_JS_KERNEL_READY = """() => {
  const s = window.jupyterapp.shell.currentWidget.sessionContext;
  const k = s.session && s.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""

_JS_RUN = """([first, last]) => {
  const app = window.jupyterapp, nb = app.shell.currentWidget.content;
  if (first === 0 && last === null) { void app.commands.execute('notebook:run-all-cells'); return; }
  nb.activeCellIndex = first;
  nb.deselectAll();
  if (last === null) { void app.commands.execute('notebook:run-all-below'); return; }
  nb.extendContiguousSelectionTo(last);
  void app.commands.execute('notebook:run-cell');
}"""

# Per cell: is it code with source, its execution count, does it show an error
# (not counting cells tagged raises-exception).
_JS_CELL_STATES = """() => JSON.stringify(
  window.jupyterapp.shell.currentWidget.context.model.toJSON().cells.map(c => {
    const src = Array.isArray(c.source) ? c.source.join('') : c.source;
    const tags = (c.metadata && c.metadata.tags) || [];
    return {code: c.cell_type === 'code' && src.trim() !== '', count: c.execution_count ?? null,
            error: !tags.includes('raises-exception')
                   && (c.outputs || []).some(o => o.output_type === 'error')};
  }))"""

_JS_MODEL = "() => JSON.stringify(window.jupyterapp.shell.currentWidget.context.model.toJSON())"

_JS_BUSY_CELLS = """() => Array.from(document.querySelectorAll(
  '.jp-Notebook .jp-CodeCell .jp-InputPrompt')).filter(p => p.textContent.includes('*')).length"""

_JS_KERNEL_EVAL = """async (expr) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = k.requestExecute({code: '', silent: true, store_history: false,
                                   user_expressions: {r: expr}});
  const reply = await future.done;
  const r = reply.content.user_expressions.r;
  if (r.status !== 'ok') return {error: r.ename + ': ' + r.evalue};
  return {value: r.data['text/plain']};
}"""

# Top-level widget views: what a widget-view output renders into its output area.
_JS_WIDGETS = """() => {
  const views = [], problems = [];
  for (const out of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {
    const text = out.textContent || '';
    if (out.classList.contains('jupyter-widgets') || text.startsWith('Error displaying widget')
        || text.startsWith('Loading widget...')) {
      problems.push(text.slice(0, 200));
      continue;
    }
    for (const v of out.children) {
      if (!v.classList.contains('jupyter-widgets')) continue;
      const r = v.getBoundingClientRect();
      views.push({cls: v.className, width: r.width, height: r.height,
                  overflow: v.scrollWidth - v.clientWidth,
                  outer: out.getBoundingClientRect().width});
    }
  }
  return {views, problems};
}"""

_JS_IMAGES = """() => Array.from(document.querySelectorAll(
    '.jp-Notebook .jp-RenderedImage img, .jp-Notebook .jp-RenderedSVG svg')).map(i => ({
  natural: i.naturalWidth === undefined ? -1 : i.naturalWidth,
  complete: i.complete === undefined ? true : i.complete,
  width: i.getBoundingClientRect().width, height: i.getBoundingClientRect().height}))"""

_JS_ERRORS = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')).flatMap(
  (cell, index) => Array.from(cell.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(o => ({cell: index, text: (o.textContent || '').slice(0, 2000)})))"""

# Slider panels: top-level widget views with a slider and some HTML that depends on it.
_JS_MARK_SLIDER_PANELS = """() => {
  let n = 0;
  const views = '.jp-Notebook .jp-OutputArea-output > .jupyter-widgets';
  for (const v of document.querySelectorAll(views)) {
    if (!v.querySelector('.widget-slider .noUi-handle')) continue;
    if (!v.querySelector('.widget-html')) continue;
    v.setAttribute('data-lab-sliders', String(n));
    n += 1;
  }
  return n;
}"""


def in_every_language(message: str) -> list[str]:
    """``message`` as the lab shows it in each of its languages (from the shipped catalogs)."""
    shown = {message}
    for code in i18n.LANGUAGES:
        catalog = gettext.translation(i18n.DOMAIN, i18n.LOCALE_DIR, [code], fallback=True)
        shown.add(catalog.gettext(message))
    return sorted(shown)


def send_labels() -> list[str]:
    """The Send button's label in each language of the lab (lower case), from the catalogs."""
    return sorted({label.lower() for label in in_every_language("Send")})


#: The chat panel's echo and error lines in either edition ("you: …"/"вы: …", "error: …").
ECHO_PREFIXES = tuple(f"{who}:" for who in in_every_language("you"))
ERROR_PREFIXES = tuple(who.lower() for who in in_every_language("error"))

# Chat panels: a widget box that holds a text box and a button labelled "Send" (or, in the
# Russian edition, its translation). %s is the list of labels.
_JS_MARK_CHATS = """() => {
  let n = 0;
  for (const b of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output .widget-button')) {
    if (!%s.includes((b.textContent || '').trim().toLowerCase())) continue;
    let box = b.parentElement;
    while (box && !(box.classList.contains('widget-box') && box.querySelector('.widget-text input')
                    && box.querySelector('.widget-html'))) box = box.parentElement;
    if (!box) continue;
    box.setAttribute('data-lab-chat', String(n));
    b.setAttribute('data-lab-send', String(n));
    n += 1;
  }
  return n;
}"""

# Widget-side value of every ipywidgets Text in the kernel: what the kernel has received.
_PY_TEXT_VALUES = (
    "__import__('json').dumps([{'value': w.value, 'placeholder': w.placeholder, "
    "'continuous': bool(w.continuous_update)} for w in "
    "list(__import__('ipywidgets').widgets.widget._instances.values()) "
    "if isinstance(w, __import__('ipywidgets').Text)])"
)


@dataclass
class ChatResult:
    """What happened when we typed into a chat panel and pressed Send."""

    new_lines: list[str]
    kernel_had_text_before_click: bool  # True when the box syncs as you type (we waited)
    seconds: float


@dataclass
class NotebookPage:
    """One notebook, opened in its own page and workspace."""

    lab: LabServer
    page: Any
    name: str
    console_errors: list[str] = field(default_factory=list)

    def open(self, timeout: float = 60.0) -> None:
        """Open the notebook as a student would and wait until its kernel is really idle."""
        self.page.on("console", self._on_console)
        workspace = "w" + secrets.token_hex(4)
        self.page.goto(self.lab.url(self.name, workspace), wait_until="domcontentloaded")
        self.page.wait_for_function(_JS_PANEL % json.dumps(self.name), timeout=timeout * 1000)
        self._poll(lambda: self.lab.kernel_idle(self.name), timeout,
                   what=f"the kernel of {self.name} to exist and be idle (REST API)")
        self.page.wait_for_function(_JS_KERNEL_READY, timeout=timeout * 1000)
        self.page.evaluate("() => { window.jupyterapp.shell.collapseLeft();"
                           " window.jupyterapp.shell.collapseRight(); }")

    def _poll(self, condition: Callable[[], Any], timeout: float, step: float = 0.2,
              what: str = "") -> Any:
        """``poll`` that keeps the page's events flowing while it waits."""
        return poll(condition, timeout, step, what,
                    sleep=lambda seconds: self.page.wait_for_timeout(seconds * 1000))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text[:300])

    def model(self) -> dict[str, Any]:
        """The notebook as JupyterLab holds it (nbformat JSON): what the kernel sent."""
        return json.loads(self.page.evaluate(_JS_MODEL))

    def run_all(self, timeout: float) -> None:
        """Run > Run All Cells; return when each has run and the kernel is idle."""
        self.run_cells(0, None, timeout)

    def run_cells(self, first: int, last: int | None, timeout: float) -> None:
        """Run cells ``first``..``last`` (notebook indices, inclusive; None: to the end).

        Uses the menu's commands: Run All Cells, Run Selected Cell and Below, or
        Run Selected Cells for a range. Returns when every code cell of the range
        has an execution count and the kernel is idle, or as soon as one shows an
        error (running stops there; the checks say which).
        """
        self.page.evaluate(_JS_RUN, [first, last])
        ranged = slice(first, None if last is None else last + 1)

        def finished() -> bool:
            cells = json.loads(self.page.evaluate(_JS_CELL_STATES))[ranged]
            if any(cell["error"] for cell in cells):
                return True
            if any(cell["code"] and cell["count"] is None for cell in cells):
                return False
            return self.page.evaluate(_JS_BUSY_CELLS) == 0 and self.lab.kernel_idle(self.name)

        self._poll(finished, timeout, step=0.25, what=f"cells {first}..{last} of {self.name}")
        # The server can lag the browser by a message: ask again, a moment later.
        self.page.wait_for_timeout(300)
        self._poll(lambda: self.lab.kernel_idle(self.name), timeout, what="the kernel to be idle")

    def kernel_eval(self, expression: str) -> str:
        """Evaluate a Python expression in the notebook's kernel (silently); return its repr."""
        result = self.page.evaluate(_JS_KERNEL_EVAL, expression)
        if "error" in result:
            raise RuntimeError(f"kernel could not evaluate {expression!r}: {result['error']}")
        return result["value"]

    def widgets(self) -> dict[str, Any]:
        """Rendered top-level widget views, and outputs where a widget failed to render."""
        return self.page.evaluate(_JS_WIDGETS)

    def images(self) -> list[dict[str, Any]]:
        """Rendered plot images: natural and displayed size."""
        return self.page.evaluate(_JS_IMAGES)

    def stderr_outputs(self) -> list[dict[str, Any]]:
        """Every stderr output shown in a cell (tracebacks, warnings, stray log lines)."""
        return self.page.evaluate(_JS_ERRORS)

    def nudge_sliders(self, timeout: float = 10.0) -> list[tuple[str, str]]:
        """Move the first slider of each panel that also shows HTML one step right.

        Returns (before, after) of the panel's HTML text for each: the text
        changes only if the kernel got the new value and answered.
        """
        changes = []
        for index in range(self.page.evaluate(_JS_MARK_SLIDER_PANELS)):
            view = self.page.locator(f"[data-lab-sliders='{index}']")
            html = view.locator(".widget-html")
            before = "\n".join(html.all_inner_texts())
            handle = view.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.focus()
            handle.press("ArrowRight")

            def moved(html: Any = html, before: str = before) -> str | None:
                now = "\n".join(html.all_inner_texts())
                return now if now != before else None

            try:
                after = self._poll(moved, timeout, step=0.1,
                                   what=f"slider panel {index} to answer a slider move")
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}; it still shows:\n{before[:500]}") from None
            changes.append((before, after))
        return changes

    def chat_panels(self) -> int:
        """How many chat panels (text box + Send button + log) the page shows."""
        return self.page.evaluate(_JS_MARK_CHATS % json.dumps(send_labels()))

    def _kernel_texts(self) -> list[dict[str, Any]]:
        """Every ipywidgets Text in the kernel: value, placeholder, continuous_update."""
        return json.loads(ast.literal_eval(self.kernel_eval(_PY_TEXT_VALUES)))

    def chat(self, index: int, message: str, timeout: float = 20.0) -> ChatResult:
        """Type ``message`` into chat panel ``index``, press Send, return the new log lines."""
        start = time.monotonic()
        panel = self.page.locator(f"[data-lab-chat='{index}']")
        box = panel.locator(".widget-text input").first
        send = self.page.locator(f"[data-lab-send='{index}']")
        panel.scroll_into_view_if_needed()
        before = panel.inner_text().splitlines()
        box.click()
        box.press_sequentially(message, delay=15)
        # Trap: a click can reach the kernel before the last keystrokes. When the box
        # syncs as you type (continuous_update), wait for the kernel to hold the whole
        # text. When it syncs only on Enter or leaving the box, the click's own blur
        # sends the value first, on the same ordered websocket.
        placeholder = box.get_attribute("placeholder") or ""
        mine = [text for text in self._kernel_texts() if text["placeholder"] == placeholder]
        live = any(text["continuous"] for text in mine)
        if live:
            self._poll(lambda: any(text["value"] == message for text in self._kernel_texts()),
                       timeout, what=f"the kernel to receive the typed text {message!r}")
        send.click()

        def replied() -> list[str] | None:
            # Our message is in the log, and a line the panel did not write itself
            # ("you: ..." is its local echo) arrived: the other side answered, or the
            # room relayed our line back to us.
            lines = panel.inner_text().splitlines()
            new = [line for line in lines if line not in before]
            ours = [line for line in new if message in line]
            answers = [line for line in new if not line.startswith(ECHO_PREFIXES)]
            failed = [line for line in new if line.lower().startswith(ERROR_PREFIXES)]
            return new if (ours and answers) or failed else None

        try:
            new_lines = self._poll(replied, timeout, step=0.1, what="the reply in the chat log")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the panel shows:\n{panel.inner_text()}") from None
        return ChatResult(new_lines, live, time.monotonic() - start)

    # --- screenshots --------------------------------------------------------

    def screenshot_full(self, path: Path) -> list[Path]:
        """The whole notebook, every cell, in one tall screenshot (more if very long)."""
        scroller = self.page.evaluate_handle(f"() => {_SCROLLER_EXPR}")
        # How far the last cell reaches below the visible part, seen from the top.
        self.page.evaluate("(s) => { s.scrollTop = 0; }", scroller)
        below = self.page.evaluate(_JS_BELOW_LAST_CELL, scroller)
        height = VIEWPORT["height"] + max(0, int(below)) + 40
        shots: list[Path] = []
        try:
            self.page.set_viewport_size(
                {"width": VIEWPORT["width"], "height": min(height, MAX_SHOT_HEIGHT)}
            )
            self.page.evaluate("(s) => { s.scrollTop = 0; }", scroller)
            for part in range(10):
                self.page.wait_for_timeout(300)  # let the layout settle after resize/scroll
                target = path if part == 0 else path.with_name(f"{path.stem}-{part}{path.suffix}")
                self.page.screenshot(path=str(target))
                shots.append(target)
                below = self.page.evaluate(_JS_BELOW_LAST_CELL, scroller)
                if below <= 0:
                    break
                self.page.evaluate("(s) => { s.scrollTop += s.clientHeight - 40; }", scroller)
        finally:
            self.page.set_viewport_size(VIEWPORT)
        return shots

    def screenshot_at(self, selector: str, path: Path) -> Path:
        """One screen, scrolled so the cell holding ``selector`` (code and output) is at the top."""
        element = self.page.locator(selector).first
        element.evaluate("(e) => (e.closest('.jp-Cell') || e).scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        return path


_JS_BELOW_LAST_CELL = """(s) => {
  const cells = s.querySelectorAll('.jp-Cell');
  if (!cells.length) return 0;
  return cells[cells.length - 1].getBoundingClientRect().bottom - s.getBoundingClientRect().bottom;
}"""

_SCROLLER_EXPR = (
    "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
)


def code_cells(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The code cells that Run All executes (cells with some source)."""
    cells = []
    for cell in model.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "code" and source.strip():
            cells.append(cell)
    return cells


def error_outputs(cell: dict[str, Any]) -> list[str]:
    """The errors a cell shows (its traceback text), unless it is tagged raises-exception."""
    if "raises-exception" in cell.get("metadata", {}).get("tags", []):
        return []
    return [
        f"{out.get('ename')}: {out.get('evalue')}"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IMAGE_MIMES = ("image/png", "image/svg+xml", "image/jpeg")


def count_outputs(model: dict[str, Any]) -> dict[str, int]:
    """Widget views and images the kernel sent (the notebook model), counted."""
    widgets = images = 0
    for cell in code_cells(model):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_MIME in data and data[WIDGET_MIME].get("model_id"):
                widgets += 1
            elif any(mime in data for mime in IMAGE_MIMES):
                images += 1
    return {"widgets": widgets, "images": images}
