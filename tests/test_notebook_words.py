"""The words a notebook's code writes come out in the notebook's language (issue 16).

A notebook cell passes English strings to the panels (column names to
``widgets.table``, a ``title=`` to a plot, a label to ``widgets.progress``);
the Russian edition runs the same code. The panels translate the words
listed in ``labcrypto.lab.vocabulary`` and nothing else: data (names, paths,
message types) is shown as it is. ``tests/test_notebooks.py`` checks the
same on the real Russian notebooks, run headless.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from labcrypto import i18n
from labcrypto.lab import plots, vocabulary, widgets

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


@pytest.fixture
def language(monkeypatch: pytest.MonkeyPatch):
    """Choose a language the way a notebook does; the environment is restored after."""
    for var in (i18n.ENV_VAR, *i18n.LOCALE_VARS):
        monkeypatch.delenv(var, raising=False)
    return i18n.set_language


def _headers_and_cells(page: str) -> tuple[list[str], list[str]]:
    import html

    def texts(tag: str) -> list[str]:
        return [html.unescape(t) for t in re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", page)]

    return texts("th"), texts("td")


ROWS = [
    {"who": "alice", "on the list": True, "result": "nothing wrong", "path": "docs/notes.txt"},
    {"who": "carol", "on the list": False, "result": "server", "path": "kind"},
]


def test_table_translates_its_columns_and_the_notebooks_words_only(language) -> None:
    language("en")
    english_heads, english_cells = _headers_and_cells(widgets.table(ROWS).data)
    assert english_heads == ["who", "on the list", "result", "path"]
    assert english_cells[:4] == ["alice", "True", "nothing wrong", "docs/notes.txt"]
    language("ru")
    heads, cells = _headers_and_cells(widgets.table(ROWS).data)
    assert heads == [i18n.gettext(h) for h in english_heads]
    assert all(CYRILLIC.search(h) for h in heads), heads
    assert cells[0] == "alice" and cells[3] == "docs/notes.txt", "data is shown as it is"
    assert cells[1] == "да" and cells[5] == "нет"
    assert CYRILLIC.search(cells[2]) and cells[6] == "сервер"
    # "kind" is a column word, but in a cell it is data only if it is not a word: the
    # vocabulary is one list, so a cell equal to a listed word is translated too.
    assert cells[7] == i18n.gettext("kind")


def test_a_header_outside_the_vocabulary_is_shown_as_written(language) -> None:
    language("ru")
    heads, _ = _headers_and_cells(widgets.table([{"my column": 1}]).data)
    assert heads == ["my column"]


def test_progress_label_and_panel_titles(language) -> None:
    language("ru")
    assert widgets.progress(10, "ports in use").description == i18n.gettext("ports in use")
    assert CYRILLIC.search(widgets.progress(10, "4 s budget").description)
    assert widgets.progress(10, "my own label").description == "my own label"
    language("en")
    assert widgets.progress(10, "ports in use").description == "ports in use"


def test_plot_titles_from_notebooks_are_translated(language) -> None:
    steps = [("client", "client_hello"), ("server", "error")]
    language("ru")
    try:
        figure = plots.sequence_diagram(steps, title="carol: refused at her hello")
        assert figure.axes[0].get_title() == i18n.gettext("carol: refused at her hello")
        assert CYRILLIC.search(figure.axes[0].get_title())
        own = plots.sequence_diagram(steps, title="my diagram")
        assert own.axes[0].get_title() == "my diagram"
        grid = plots.fingerprint_grid(
            ["00ff"] * 2, title="Y = g^y of each request", xlabel="byte of Y (its first 16)"
        )
        assert CYRILLIC.search(grid.axes[0].get_title())
        assert CYRILLIC.search(grid.axes[0].get_xlabel())
        histograms = plots.byte_histograms({"plaintext": b"hello", "toy (Caesar)": b"khoor"})
        titles = [ax.get_title() for ax in histograms.axes]
        assert all(CYRILLIC.search(t.rsplit(" (", 1)[0]) for t in titles), titles
        timeline = plots.pool_timeline([(9100, 0.0, 1.0)], title="ports in use")
        assert CYRILLIC.search(timeline.axes[0].get_title())
    finally:
        plt.close("all")


def test_every_word_has_its_russian_and_english_stays_as_written(language) -> None:
    language("ru")
    untranslated = sorted(w for w in vocabulary.WORDS if i18n.gettext(w) == w)
    # Notation the Russian keeps as it is (a mode's name with its cipher).
    assert untranslated == ["secure (AES-GCM)"]
    language("en")
    assert all(vocabulary.shown(w) == w for w in vocabulary.WORDS)


def test_what_eve_sees_and_the_students_numbers_in_russian(language) -> None:
    """Two library texts a Russian student meets in every notebook's first outputs."""
    from labcrypto.lab import variants
    from labcrypto.wiretap.capture import describe

    language("en")
    assert describe(bytes(22)).startswith("22 bytes of ciphertext: 00 00")
    assert repr(variants.variant("")).startswith("Variant(for nobody (set STUDENT_ID): p=")
    language("ru")
    assert describe(bytes(21)).startswith("21 байт шифртекста: 00 00")
    assert describe(bytes(22)).startswith("22 байта шифртекста: ")
    shown = repr(variants.variant("s1"))
    assert shown.startswith("Variant(студент 's1': p=") and "B=" in shown


def test_the_stop_button_is_as_wide_as_its_russian_label(language) -> None:
    language("ru")
    panel = widgets.kernel_status()
    button = panel.children[1]
    assert button.description == "Остановить все серверы" and button.layout.width == "max-content"


def test_the_chat_panel_names_the_room_in_the_students_language(language) -> None:
    """The server's lines are signed "сервер" in a Russian panel; a person keeps their name."""
    from types import SimpleNamespace

    from labcrypto.chat import ChatMessage

    language("ru")
    client = SimpleNamespace(name="alice", send=lambda text: None, on_message=None)
    panel = widgets.ChatPanel.for_client(client)
    client.on_message(ChatMessage("server", "alice входит в чат", 0.0, "notice"))
    client.on_message(ChatMessage("bob", "привет", 0.0))
    assert panel.lines == ["сервер: alice входит в чат", "bob: привет"]
    assert "#6a1b9a" in panel.log.value, "the room's lines keep their colour"


def test_numbers_in_figures_are_written_the_russian_way(language) -> None:
    """A decimal comma and a thin space between thousands in Russian; English as Python writes."""
    import math

    year = 365.25 * 24 * 3600
    language("ru")
    assert plots.format_log10_seconds(math.log10(0.0032)) == "3,2 мс"
    assert plots.format_log10_seconds(math.log10(3000 * year)) == "3\u2009000 лет"
    try:
        figure = plots.brute_force_times([8, 9, 10, 11], [1e-3, 2e-3, 4e-3, 8e-3])
        legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
        assert "×2,00 на каждый бит" in legend, legend
    finally:
        plt.close("all")
    language("en")
    assert plots.format_log10_seconds(math.log10(0.0032)) == "3.2 ms"
    assert plots.format_log10_seconds(math.log10(3000 * year)) == "3,000 years"


def test_notebooks_04_and_05_show_no_bare_dict_of_english_keys() -> None:
    """A cell whose value is a dict shows its keys as the code wrote them, in English in
    the Russian edition too (05 showed {'our SHA-256': …, 'match': True, 'MB/s': …});
    a table translates its column names. (01 and 03 still have such cells.)"""
    import ast
    from pathlib import Path

    import nbformat

    found = []
    for name in ("04_two_ports", "05_ftp"):
        nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "ru" / f"{name}.ipynb", 4)
        for cell in nb.cells:
            body = ast.parse(cell.source).body if cell.cell_type == "code" else []
            shown = body[-1].value if body and isinstance(body[-1], ast.Expr) else None
            values = shown.elts if isinstance(shown, ast.Tuple) else [shown]
            if any(isinstance(value, ast.Dict) for value in values):
                found.append(f"{name}:{cell.get('id')}")
    assert not found, found
