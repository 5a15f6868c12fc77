"""The words the notebooks' own code shows: column names, plot titles, progress labels.

A notebook cell such as ::

    widgets.table([{"who": name, "result": outcome} for ...])
    plots.sequence_diagram(steps, title="carol: refused at her hello");

writes its English words as plain strings, and the Russian edition runs
*the same code* (its twin may change only comments and docstrings). So the
panels translate these words where they show them: ``widgets.table``
translates its column names and the cells that hold one of the words
below, the plot functions their ``title`` (``fingerprint_grid`` its ``xlabel``, and
``byte_histograms`` its sample names), and ``widgets.progress`` its label. A student reads
Russian and the code stays free of gettext.

Only the words listed here are translated (``shown``), so data that
happens to look like a word — a file name, a key name, a message type —
is shown exactly as it is. A new column or title in a notebook: add it
below with ``N_``, run ``make catalog``, translate it in the ``.po``;
``tests/test_notebooks.py`` runs the Russian notebooks and fails on every
English column name, plot title or progress label it sees.

A sentence the code *builds* (``f"joined as {name}"``) cannot be looked up
once it is built, so the notebooks build it with ``sentence``: the English
template and its values, ``sentence("joined as {name}", name=client.name)``.
It fills in the template's translation if the template is one of
``SENTENCES``, else the template as written. The same code then reads
Russian in the Russian edition. A new sentence: add its template to
``SENTENCES`` with ``N_``, ``make catalog``, translate it;
``tests/test_i18n_errors.py`` fails on a ``sentence`` call in a notebook
whose template is not listed.
"""

from __future__ import annotations

import string

from ..i18n import N_, gettext, language

__all__ = ["SENTENCES", "WORDS", "labelled", "sentence", "shown", "shown_value"]

#: Column names of the notebooks' tables (and of the library rows they show:
#: ``wiretap.eavesdropper_view``, ``server.status``, ``ftp`` directory entries).
COLUMNS = (
    # wiretap.eavesdropper_view (02, 04)
    N_("ms"), N_("conn"), N_("direction"), N_("kind"), N_("bytes"), N_("eve sees"), N_("port"),
    # server.status (the kernel's servers panel)
    N_("server"), N_("address"), N_("connected"), N_("threads"), N_("leased ports"),
    # 03: who got in, the log, the man in the middle, malicious values
    N_("who"), N_("on the list"), N_("result"), N_("handshake on the wire"),
    N_("encrypted frames sent to them"), N_("text"), N_("pinning"), N_("allowlist"),
    N_("alice sees"), N_("server logs"), N_("mallory read"), N_("value"), N_("in the hello of"),
    N_("refused by"), N_("error"), N_("the server logged"), N_("mallory's notes"),
    # 05: directory entries, sessions, the thief, the jail
    N_("name"), N_("size"), N_("mtime"), N_("request"), N_("session keys"),
    N_("A (alice, static)"), N_("X (alice, this request)"), N_("Y (server, this request)"),
    N_("nonce (public)"), N_("SHA-256 of K"), N_("connection"), N_("ephemeral keys in the hellos"),
    N_("the thief, with the stolen server key"), N_("mode"),
    N_("the thief, with the server's key b"), N_("the trick"), N_("alice asks for"), N_("path"),
    N_("our SHA-256"), N_("SHA-256 of the server's copy"), N_("match"), N_("MB/s"),
)  # fmt: skip

#: Titles and labels the notebooks pass to plots and progress bars.
TITLES = (
    N_("carol: refused at her hello"),
    N_("alice: handshake, then ciphertext"),
    N_("Y = g^y of each request"),
    N_("byte of Y (its first 16)"),
    N_("plaintext"),
    N_("toy (Caesar)"),
    N_("secure (AES-GCM)"),
    N_("4 s budget"),
    N_("ports in use"),
    N_("upload"),
    N_("download"),
)

#: Whole cell values the notebooks write (and ``True``/``False``, shown as words).
CELLS = (
    N_("True"), N_("False"),
    N_("client"), N_("server"), N_("client → server"), N_("server → client"),
    N_("nothing wrong"), N_("a normal join"), N_("nothing"), N_("the server"), N_("nobody!"),
    N_("handshake port"),
    N_("climb out with .."), N_("climb from the top"), N_("down, then up twice"),
    N_("an absolute path"), N_("through a symbolic link"), N_("Windows separators"),
    N_("a look-alike slash (U+2215)"),
    # kinds: of a wiretap's frames (02b, 04, 05), of a server's events (03), of ls entries (05)
    N_("handshake"), N_("data"), N_("file"), N_("dir"), N_("link"),
    N_("join"), N_("leave"), N_("rejected"), N_("handshake-failed"),
)  # fmt: skip

#: Every word ``shown`` translates.
WORDS = frozenset(COLUMNS + TITLES + CELLS)

#: The sentences the notebooks' code builds with ``sentence``, as templates.
SENTENCES = frozenset((
    N_("timed {first} to {last} bits in {seconds:.1f} s"),  # 01: the brute-force timing
    N_("joined as {name}"), N_("dropped: {error}"),  # 03: who got in
    N_("data port {port}"),  # 04: Eve's view of both ports
    N_("{visitors} visitors, {busy} busy answers, {leased} ports still leased"),  # 04: the pool
    N_("cannot open it: {error}"), N_("opened: {text}"),  # 05: the recorded requests
    N_("refused ({error})"), N_("logged in: {text}"),  # 05: the thief with the server's key
    N_("allowed: {text}"),  # 05: the jail
))  # fmt: skip


def shown(text: str) -> str:
    """``text`` in the student's language if it is one of ``WORDS``, else exactly as given."""
    return gettext(text) if text in WORDS else text


def sentence(template: str, **values: object) -> str:
    """``template`` filled in with ``values``, in the student's language if it is one of
    ``SENTENCES``: ``sentence("joined as {name}", name="alice")`` → ``"вошла как alice"``."""
    if template in SENTENCES:
        try:
            return _LocalNumbers().format(gettext(template), **values)
        except (KeyError, IndexError, ValueError):
            pass  # a translation that lost a placeholder: the English still says it
    return template.format(**values)


#: The languages that write a decimal comma: 3,3 с, not 3.3 с.
DECIMAL_COMMA = frozenset({"ru"})


class _LocalNumbers(string.Formatter):
    """``str.format`` that writes a fractional number as the student's language does."""

    def format_field(self, value: object, format_spec: str) -> str:
        text: str = super().format_field(value, format_spec)
        if isinstance(value, float) and language() in DECIMAL_COMMA:
            return text.replace(".", ",")
        return text


def labelled(values: dict[str, object]) -> dict[str, object]:
    """A dict that a cell shows as its result, its keys (those of ``WORDS``) in the
    student's language; the values exactly as they are."""
    return {shown(key): value for key, value in values.items()}


def shown_value(value: object) -> object:
    """A table cell as a student reads it: a ``bool`` as the word ``"True"``/``"False"``
    (translated), one of ``WORDS`` translated, anything else unchanged."""
    if isinstance(value, bool):
        return gettext(str(value))
    return shown(value) if isinstance(value, str) else value
