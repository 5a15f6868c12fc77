"""What a check says: the failure type, the words every check shares, the time bounds.

A check either prints one line starting with ✔, or raises ``CheckFailed`` —
an ``AssertionError``, so nbgrader counts it as a failed test — whose
message says what was expected, what came back, and which known mistake
of this lab it looks like ("course mistake 8" refers to the mistakes list
of the course notes: a key file overwritten on every run, and so on).

Every student-facing text is a template: ``fail(template, **values)`` and
``passed(template, **values)`` fill it with ``str.format``. Each checks
module keeps the templates of one check together in one dict next to it,
so a translation can wrap each of them in one place.

A check is declared with ``@explained_in(notebook, heading)``: its
failures end with a pointer to the section that explains the exercise, and
``@that_check.hidden`` declares the hidden test beside it, whose failures
are one generic text that gives nothing of the test away.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec

from ..errors import LabCryptoError
from ..i18n import N_, _

__all__ = [
    "HAMMER_WAIT",
    "HANDOFF_WAIT",
    "HIDDEN_WAIT",
    "JOIN_WAIT",
    "LOOP_WAIT",
    "PURE_WAIT",
    "RECV_AS_MESSAGE",
    "SERVICE_WAIT",
    "WAIT",
    "Check",
    "CheckFailed",
    "Section",
    "code_of",
    "cut_repr",
    "expect",
    "explained_in",
    "fail",
    "how_it_ended",
    "not_written",
    "passed",
    "refuse_whole_power",
    "refused_as",
    "syntax_of",
    "too_slow",
]

P = ParamSpec("P")  # the parameters of a check
P2 = ParamSpec("P2")  # the parameters of its hidden test

# --- time bounds: a graded cell never hangs ----------------------------------------

WAIT = 2.0  #: seconds a check waits for the student's code on a socket
PURE_WAIT = 2.0  #: seconds for all the calls of one pure-Python check (no network)
LOOP_WAIT = 5.0  #: a message loop over a real encrypted channel
HANDOFF_WAIT = 8.0  #: a handoff: a handshake, a new connection, a ticket, a welcome
JOIN_WAIT = 8.0  #: a new student joins twice: a key, an allowlist row and a handshake each
SERVICE_WAIT = 10.0  #: a walk through the file service (many requests)
HAMMER_WAIT = 10.0  #: 16 threads leasing and releasing ports
#: One call of the student's code in a hidden test: generous (a traced loop runs about
#: 100 times slower than untraced on a loaded machine); it only keeps grading from hanging.
HIDDEN_WAIT = 10.0

# --- the words several checks share ------------------------------------------------

FAILED_HEADLINE = N_("The check did not pass:")
_RED, _RESET = "\x1b[31m", "\x1b[0m"  # ANSI colours: IPython shows them in a traceback

NOT_WRITTEN = N_(
    "{name} is not written yet: replace `raise NotImplementedError()` with your code, "
    "run that cell, then run this one again."
)

#: The words for course mistake 6, used by every check that catches it.
#: Translate it where it is shown: ``_(RECV_AS_MESSAGE)``.
RECV_AS_MESSAGE = N_(
    "your function read one recv(1024) as one message — TCP does not keep message "
    "boundaries (course mistake 6)"
)

#: How a run of the student's code ended, for a failure message (see ``how_it_ended``).
RETURNED = N_("returned {value}")
NEVER_RETURNED = N_("never returned")
RAISED = N_("raised {error}")

#: A run of the student's code that the check stopped at its deadline.
TOO_SLOW = N_("{what} did not finish within {wait:g} s, so the check stopped it. {why}")

#: A power computed whole before it is reduced: the check refuses it before it runs the code.
WHOLE_POWER = N_(
    "{name} computes a power without a modulus: `{expression}`. Python then builds the "
    "whole power first and reduces it only at the end: with a 256-bit secret exponent that "
    "number has more than 10^76 digits, no computer can hold it, and one pow cannot be "
    "stopped halfway, so the kernel would hang until you restart it (the check did not "
    "run your code for that reason). Give pow the modulus as its third argument: it "
    "reduces at every step."
)

#: Where the exercise is explained: the heading is translated too (the Russian
#: edition's own heading), so each ``explained_in`` heading is marked ``N_``.
POINTER = N_("→ Explained in notebook {notebook}, section «{heading}».")
#: After a failure that cites the course's mistakes list: where that list is.
MISTAKES_POINTER = N_("→ Course mistake {number} and its fix: MISTAKES.md, next to this notebook.")
#: How a message cites the list, in each language ("course mistake 6").
CITES_A_MISTAKE = re.compile(r"course mistake (\d+)|типичная ошибка № ?(\d+)")

HIDDEN_NOT_WRITTEN = N_("Not written yet: the exercise above still raises NotImplementedError.")
HIDDEN_RAISED = N_(" (your code raised {kind} on one of them)")
HIDDEN_FAILED = N_(
    "A hidden test of this exercise failed{raised}. Hidden tests try cases the visible "
    "check does not show, some made from your student id; their details are not shown. "
    "Re-read notebook {notebook}, section «{heading}». Then try your code on inputs of "
    "your own."
)


class CheckFailed(LabCryptoError, AssertionError):
    """An exercise check that did not pass; the message says why and what to try."""

    #: Does the message already end with its section pointer? (A check that calls
    #: another check must not point twice.)
    explained: bool = False

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for a failed check: a marked headline and the message.

        IPython asks an exception for this before it formats a traceback. The
        traceback of a check runs through the check's own code, which tells the
        student nothing and buries the message under English boilerplate, so it
        is left out. The cell still ends in an error (nbgrader counts the check
        as failed); a mistake in the student's own code, outside a check, keeps
        its full traceback.
        """
        headline = f"{_RED}✘ {_(FAILED_HEADLINE)}{_RESET}"
        return [headline, *str(self).strip().splitlines()]


def fail(template: str, **values: Any) -> CheckFailed:
    """The failure to raise: ``template`` filled with ``values``, on a line of its own."""
    return CheckFailed("\n" + template.format(**values).strip())


def passed(template: str, **values: Any) -> None:
    """Say that a check passed."""
    # The one place the package prints: a check's result, in the notebook's own
    # thread, in the check cell the student just ran.
    print("✔ " + template.format(**values))


def not_written(name: str) -> CheckFailed:
    """The failure for an exercise that still raises ``NotImplementedError``."""
    return fail(_(NOT_WRITTEN), name=name)


def too_slow(what: str, wait: float, why: str = "") -> CheckFailed:
    """The failure for a call of the student's code that ran past its deadline: which
    call (``what``), how long it had, and why it is probably slow (``why``)."""
    return fail(_(TOO_SLOW), what=what, wait=wait, why=why)


def refused_as(exc: BaseException) -> str:
    """An exception as the student should read it: as code, ``ValueError('bad A')``.

    Written as code (its type, then its text quoted), it reads the same inside an
    English or a Russian message: an exception's own text stays as Python, the
    library or the student wrote it. A long text is cut at 160 characters."""
    text = str(exc)
    shown = repr(text[:160] + "…") if len(text) > 160 else repr(text)
    return f"{type(exc).__name__}({shown})" if text else f"{type(exc).__name__}()"


def how_it_ended(status: str, value: Any, width: int = 60, stuck: str = NEVER_RETURNED) -> str:
    """``returned …`` (its repr cut at ``width``, the cut marked ``…``), ``never returned``
    or ``raised …``: the end of a bounded run (status "ok", "stuck" or "error"), in a
    student's words."""
    if status == "ok":
        return _(RETURNED).format(value=cut_repr(value, width))
    if status == "stuck":
        return _(stuck)
    return _(RAISED).format(error=refused_as(value))


def cut_repr(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut at ``width`` characters with the cut marked ``…``."""
    shown = repr(value)
    return shown if len(shown) <= width else shown[:width] + "…"


def code_of(func: Callable[..., Any]) -> str:
    """The source of ``func`` without comments and docstrings ("" if unavailable)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return ""
    source = re.sub(r'("""|\'\'\')(.|\n)*?\1', "", source)
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


def _is_number(node: ast.AST) -> bool:
    """Is ``node`` a number written in the code (``2``, ``-1``, ``0.5``)?"""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _whole_power(node: ast.AST) -> bool:
    """Is ``node`` a power of a variable base to a variable exponent with no modulus:
    ``pow(b, e)``, ``b ** e`` or ``b **= e``? (``2 ** bits`` and ``x ** 2`` are harmless.)"""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "pow":
        if len(node.args) != 2 or any(k.arg == "mod" for k in node.keywords):
            return False
        base, exponent = node.args
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exponent = node.left, node.right
    elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Pow):
        base, exponent = node.target, node.value
    else:
        return False
    return not _is_number(base) and not _is_number(exponent)


def syntax_of(func: Callable[..., Any]) -> tuple[ast.AST, str] | None:
    """The syntax tree of ``func``'s own source and that source (None if unavailable).

    A lambda's source is the whole line around it: the lambda is only looked at when
    it is the one lambda there."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree: ast.AST = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    if getattr(func, "__name__", "") == "<lambda>":
        lambdas = [node for node in ast.walk(tree) if isinstance(node, ast.Lambda)]
        if len(lambdas) != 1:
            return None
        tree = lambdas[0]
    return tree, source


def _names_seen_by(func: Callable[..., Any]) -> dict[str, Any]:
    """The global and enclosing names ``func`` refers to, with their values."""
    try:
        seen = inspect.getclosurevars(func)
    except (TypeError, ValueError):
        return {}
    return {**seen.globals, **seen.nonlocals}


def whole_power_in(func: Callable[..., Any]) -> str | None:
    """The first power in ``func`` (or in a function of its own module it calls, one
    level down) computed whole before any modulus, as written; None if there is none.

    Why read the code instead of running it: such a power never ends, and it runs in
    C holding the interpreter's lock, so no deadline of a check and no interrupt can
    stop it; the student's kernel would hang for good.
    """
    seen: set[int] = set()
    todo: list[Callable[..., Any]] = [func]
    for depth in range(2):
        calls: list[Callable[..., Any]] = []
        for each in todo:
            if id(each) in seen:
                continue
            seen.add(id(each))
            parsed = syntax_of(each)
            if parsed is None:
                continue
            tree, source = parsed
            names = _names_seen_by(each)
            for node in ast.walk(tree):
                if _whole_power(node):
                    written = ast.get_source_segment(source, node) or "pow(…)"
                    return written if len(written) <= 60 else written[:60] + "…"
                if depth == 0 and isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    helper = names.get(node.func.id)
                    if inspect.isfunction(helper) and helper.__module__ == each.__module__:
                        calls.append(helper)
        todo = calls
    return None


def refuse_whole_power(func: Callable[..., Any]) -> None:
    """Fail, naming the expression, if ``func`` computes a power with no modulus."""
    written = whole_power_in(func)
    if written is not None:
        raise fail(_(WHOLE_POWER), name=getattr(func, "__name__", "your code"), expression=written)


# --- checks that name their section, and their hidden tests -------------------------


@dataclass(frozen=True)
class Section:
    """Where an exercise is explained: a notebook and one of its section headings."""

    notebook: str
    heading: str  #: the English heading, marked ``N_`` where it is declared

    def pointer(self) -> str:
        """"→ Explained in notebook …, section «…»." in the current language."""
        return _(POINTER).format(notebook=self.notebook, heading=_(self.heading))


class Check(Generic[P]):
    """A visible check: called like the function it wraps; its failures end with
    a pointer to its section. ``check.hidden`` declares the check's hidden test."""

    def __init__(self, func: Callable[P, None], section: Section) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.section = section
        self.grade_id: str = func.__name__  #: the grade id of the notebook's check cell

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            self.func(*args, **kwargs)
        except CheckFailed as failure:
            if failure.explained:
                raise
            text = str(failure) + "\n" + self.section.pointer()
            cited = CITES_A_MISTAKE.search(text)
            if cited:
                text += "\n" + _(MISTAKES_POINTER).format(number=cited.group(1) or cited.group(2))
            explained = CheckFailed(text)
            explained.explained = True
            raise explained from None

    def hidden(self, test: Callable[P2, None]) -> Callable[P2, None]:
        """Declare ``test`` as this check's hidden test: any failure inside it becomes
        one generic ``CheckFailed`` (nothing of the test shown, no traceback chained)."""
        section = self.section

        @functools.wraps(test)
        def hidden_test(*args: P2.args, **kwargs: P2.kwargs) -> None:
            try:
                test(*args, **kwargs)
            except NotImplementedError:
                raise CheckFailed("\n" + _(HIDDEN_NOT_WRITTEN)) from None
            except Exception as exc:
                raised = "" if isinstance(exc, AssertionError) else _(HIDDEN_RAISED)
                raise CheckFailed(
                    "\n"
                    + _(HIDDEN_FAILED).format(
                        raised=raised.format(kind=type(exc).__name__),
                        notebook=section.notebook,
                        heading=_(section.heading),
                    )
                ) from None

        return hidden_test


def explained_in(notebook: str, heading: str) -> Callable[[Callable[P, None]], Check[P]]:
    """Declare a check: its failures end with the section that explains the exercise.

    The check's name is the grade id of its check cell in the notebook
    (tests/test_grading.py checks that the heading and the cell are there).
    """

    def declare(func: Callable[P, None]) -> Check[P]:
        return Check(func, Section(notebook, heading))

    return declare


def expect(condition: bool) -> None:
    """A hidden test's assertion: no message (``Check.hidden`` replaces it with generic words)."""
    if not condition:
        raise AssertionError
