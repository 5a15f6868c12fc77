"""The notebooks' widgets and figures speak the notebook's language.

A Russian notebook calls ``set_language("ru")`` in its first cell; from then
on the labels a student reads on a widget and on a figure (title, axis
labels, legend) are Russian. Without it they are English, as the code writes
them. Each test builds the same thing twice and compares.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from test_i18n import code_messages

from labcrypto import groups, i18n
from labcrypto.lab import plots, widgets

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
LATIN_WORD = re.compile("[a-z]{3,}", re.IGNORECASE)


@pytest.fixture
def language(monkeypatch: pytest.MonkeyPatch):
    """Choose a language the way a notebook does; the environment is restored after."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)

    def choose(code: str) -> None:
        i18n.set_language(code)

    yield choose
    plt.close("all")


def figure_texts(fig) -> list[str]:
    """Every title, axis label and legend entry a student reads on ``fig``."""
    texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    return [t for t in texts if t]


def test_widget_labels_and_status_lines_follow_the_language(language) -> None:
    language("en")
    english = widgets.ChatPanel(lambda text: None)
    assert english.button.description == "Send"
    assert "press Enter" in english.box.placeholder
    sliders_en = widgets.key_exchange_sliders()
    assert sliders_en.children[0].children[0].description == "Alice's a"

    language("ru")
    russian = widgets.ChatPanel(lambda text: None)
    assert russian.button.description == "Отправить"
    assert CYRILLIC.search(russian.box.placeholder)
    assert russian.title.value == "<b>чат</b>"
    slider_a, slider_b = widgets.key_exchange_sliders().children[0].children
    assert CYRILLIC.search(slider_a.description) and CYRILLIC.search(slider_b.description)
    order = widgets.order_sliders()
    assert CYRILLIC.search(order.children[0].children[1].description)
    assert "порядок 22" in order.children[1].value and "has order" not in order.children[1].value
    # The status line under the table: Russian, and the numbers still in it.
    table = widgets.exchange_table(6, 15).data
    assert "Алиса и Боб" in table and "кто знает" in table
    assert "everyone" not in table and "Alice" not in table


def test_a_chat_panel_reports_a_failed_send_in_russian(language) -> None:
    def gone(text: str) -> None:
        raise ConnectionError("server gone")

    language("ru")
    panel = widgets.ChatPanel(gone, echo=True)
    assert panel.submit("привет") is False
    (line,) = panel.lines
    assert line.startswith("ошибка: ConnectionError")
    assert "#b00020" in panel.log.value  # still shown in red
    sent: list[str] = []
    panel = widgets.ChatPanel(sent.append)
    panel.submit("привет")
    assert panel.lines == ["вы: привет"]


def test_byte_counts_take_the_russian_plural(language) -> None:
    language("ru")
    view = widgets.WireView()
    view.add("sent", b"\x00\x00\x00\x01a")  # 5 bytes
    view.add("received", b"\x00" * 21)
    view.add("sent", b"\x00" * 22)
    assert "отправлено</b> 5 байт:" in view.log.value
    assert "получено</b> 21 байт:" in view.log.value
    assert "22 байта:" in view.log.value
    assert view.frames[0][0] == "sent"  # the raw record stays as the channel reported it


def test_a_figure_title_and_axis_labels_follow_the_language(language) -> None:
    bits, seconds = [8, 10, 12, 14], [0.002, 0.008, 0.03, 0.12]
    language("en")
    english = figure_texts(plots.brute_force_times(bits, seconds))
    assert "Trying every exponent" in english and "size of p (bits)" in english

    language("ru")
    russian = figure_texts(plots.brute_force_times(bits, seconds))
    assert len(russian) == len(english)
    for text in russian:
        # Every label is Russian; what stays Latin is a formula, not a word.
        words = [w for w in LATIN_WORD.findall(text) if w not in ("log",)]
        assert CYRILLIC.search(text) or not words, text
    assert "Перебор всех показателей" in russian


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.powers(groups.TOY, big=groups.small_safe_prime_group(16)),
        lambda: plots.caesar_scores([0.1] * 256, best=3),
        lambda: plots.byte_histograms({"текст": b"hello", "AES-GCM": bytes(range(256))}),
        lambda: plots.sequence_diagram([("client", "hello"), ("server", "hello")]),
        lambda: plots.layers(),
        lambda: plots.pool_timeline([(5000, 0.0, 1.0)], busy=[0.5], ports=range(5000, 5002)),
        lambda: plots.fingerprint_grid(["00ff" * 4] * 3, static="11" * 8),
    ],
    ids=["powers", "caesar", "histograms", "sequence", "layers", "pool", "fingerprints"],
)
def test_every_figure_has_a_russian_title(language, draw) -> None:
    language("en")
    english = figure_texts(draw())
    language("ru")
    russian = figure_texts(draw())
    assert russian != english
    changed = [ru for en, ru in zip(english, russian, strict=True) if en != ru]
    assert changed and all(CYRILLIC.search(text) for text in changed)


def test_times_are_read_out_in_russian(language) -> None:
    year = 365.25 * 24 * 3600
    language("ru")
    assert plots.format_log10_seconds(-2) == "10 мс"
    assert plots.format_log10_seconds(math.log10(3 * 86400)) == "3 сут."
    read = [plots.format_log10_seconds(math.log10(n * year)) for n in (1, 2, 5, 21)]
    assert read == ["1 год", "2 года", "5 лет", "21 год"]
    assert plots.format_log10_seconds(math.log10(year) + 598) == "10^598 лет"
    language("en")
    assert plots.format_log10_seconds(math.log10(5 * year)) == "5 years"


def test_every_marked_literal_reaches_the_catalog() -> None:
    """A ``_("...")`` inside an f-string is translated at run time but never extracted
    (Babel reads an f-string as one token), so it would stay English for good. Python's
    own parser sees every call: each literal marked anywhere must be in the catalog."""
    package = Path(i18n.__file__).parent
    extracted = set(code_messages())
    missed = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_", "gettext", "ngettext")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value not in extracted
            ):
                missed.append(f"{path.relative_to(package)}:{node.lineno} {node.args[0].value!r}")
    assert not missed, "marked but not extracted (inside an f-string?): " + ", ".join(missed)
