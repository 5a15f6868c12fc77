"""Small interactive panels for the notebooks (ipywidgets), and HTML views.

* ``exchange_table(a, b)`` — the numbers of one Diffie-Hellman exchange,
  who knows which (notebook 01).
* ``key_exchange_sliders()`` — the same table with two sliders for ``a``
  and ``b``: move one and watch ``A``, ``B`` and ``K`` change.
* ``order_sliders()`` — what the table cannot show: sliders for ``g`` and
  ``a`` above the powers of ``g`` in a row, which come back to 1 after the
  order of ``g``, so only that many public values ever occur (notebook 01).
* ``file_view(path)`` — a file's name, permissions and text (notebook 01).
* ``progress(total)`` — a progress bar for a loop in a cell.
* ``ChatPanel`` — a text box, a Send button and a conversation log
  (notebook 02); ``WireView`` — the eavesdropper's view of the same
  conversation: the exact bytes of every frame.

Threads and widgets. A chat client receives in a background thread, and
``print`` from a thread lands in whichever cell happens to run at that
moment. So the panels are displayed once, from the notebook's own thread,
and background threads only *change widget values* (``panel.add(...)``),
which Jupyter sends to the browser wherever the panel is shown. Nothing
here prints, and nothing uses ``with output:`` from a thread.

This module imports ipywidgets; ``import labcrypto`` does not.
"""

from __future__ import annotations

import html
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as ipw
from IPython.display import HTML

from .. import server
from ..chat_client import refusal_in_language
from ..chat_messages import SERVER_NAME
from ..errors import LineRefused
from ..groups import TOY, Group
from ..i18n import N_, _, ngettext
from .vocabulary import shown, shown_value

__all__ = [
    "ChatPanel",
    "WireView",
    "exchange_table",
    "file_view",
    "kernel_status",
    "key_exchange_sliders",
    "order_sliders",
    "order_view",
    "progress",
    "side_by_side",
    "table",
]

_CELL = "padding:2px 12px;text-align:left"
_NUMBER_CELL = "padding:2px 4px;text-align:center;border:1px solid #ddd"

_COLORS = {"secret": "#b00020", "public": "#1b5e20"}

#: The directions a channel's ``on_wire`` hook reports, marked so they are translated when shown.
_DIRECTIONS = (N_("sent"), N_("received"))


def _html(text: str) -> HTML:
    """``text`` as an HTML object the notebook shows as the cell's result."""
    return HTML(text)  # type: ignore[no-untyped-call]  # IPython has no type hints


def _bytes(count: int) -> str:
    """``"1 byte"``, ``"48 bytes"`` in the current language (Russian has three forms)."""
    return ngettext("{count} byte", "{count} bytes", count).format(count=count)


def exchange_table(a: int, b: int, group: Group = TOY) -> HTML:
    """The numbers of one exchange with secrets ``a`` and ``b``, and who knows each.

    Red numbers are secret, green ones travel on the wire.
    """
    p, g = group.p, group.g
    big_a, big_b = pow(g, a, p), pow(g, b, p)
    k_alice, k_bob = pow(big_b, a, p), pow(big_a, b, p)
    rows = [
        ("p, g", f"{p}, {g}", _("everyone (public)"), "public"),
        ("a", str(a), _("Alice only"), "secret"),
        ("b", str(b), _("Bob only"), "secret"),
        ("A = g^a mod p", f"{g}^{a} mod {p} = <b>{big_a}</b>", _("everyone (sent)"), "public"),
        ("B = g^b mod p", f"{g}^{b} mod {p} = <b>{big_b}</b>", _("everyone (sent)"), "public"),
        ("K = B^a mod p", f"{big_b}^{a} mod {p} = <b>{k_alice}</b>", _("Alice computes"), "secret"),
        ("K = A^b mod p", f"{big_a}^{b} mod {p} = <b>{k_bob}</b>", _("Bob computes"), "secret"),
    ]
    body = "".join(
        f"<tr><td style='{_CELL}'>{name}</td>"
        f"<td style='{_CELL};color:{_COLORS[kind]}'>{value}</td>"
        f"<td style='{_CELL}'>{who}</td></tr>"
        for name, value, who, kind in rows
    )
    headings = (_("number"), _("value"), _("who knows it"))
    head = "".join(f"<th style='{_CELL}'>{h}</th>" for h in headings)
    if k_alice == k_bob:
        outcome = _("Alice and Bob hold the same K; Eve saw p, g, A and B.")
    else:
        outcome = _("Alice and Bob hold DIFFERENT values of K (this should never happen).")
    legend = _(
        "<span style='color:{red}'>Red</span>: secret, "
        "<span style='color:{green}'>green</span>: public."
    ).format(red=_COLORS["secret"], green=_COLORS["public"])
    return _html(f"<table><tr>{head}</tr>{body}</table><p>{outcome} {legend}</p>")


def key_exchange_sliders(a: int = 6, b: int = 15, group: Group = TOY) -> ipw.VBox:
    """Two sliders (Alice's ``a``, Bob's ``b``) above a live ``exchange_table``."""
    style = {"description_width": "90px"}
    slider_a = ipw.IntSlider(
        value=a, min=1, max=group.q - 1, description=_("Alice's a"), style=style
    )
    slider_b = ipw.IntSlider(value=b, min=1, max=group.q - 1, description=_("Bob's b"), style=style)
    table = ipw.HTML()

    def update(_change: object = None) -> None:
        table.value = exchange_table(slider_a.value, slider_b.value, group).data

    slider_a.observe(update, names="value")
    slider_b.observe(update, names="value")
    update()
    return ipw.VBox([ipw.HBox([slider_a, slider_b]), table])


def _powers(g: int, p: int) -> list[int]:
    """``g^1, g^2, …, g^(p-1) mod p``: one full turn of every cycle ``g`` can make."""
    values, value = [], 1
    for _exponent in range(p - 1):
        value = value * g % p
        values.append(value)
    return values


def _order(powers: Sequence[int]) -> int:
    """The order of ``g``: the first exponent with ``g^x = 1`` (``powers`` from ``_powers``)."""
    return powers.index(1) + 1


def order_view(g: int, a: int, p: int = TOY.p) -> HTML:
    """The powers of ``g`` modulo ``p`` in a row, ``A = g^a`` marked, and what ``g``'s order means.

    What the exchange table cannot show: the powers come back to 1 after
    ``order(g)`` steps and then repeat, so only that many public values (and
    shared secrets) ever occur, whatever the secrets are.
    """
    powers = _powers(g, p)
    order = _order(powers)
    cells = []
    for exponent, value in enumerate(powers, start=1):
        style = _NUMBER_CELL
        if exponent > order:
            style += ";color:#999"  # the same values again: the cycle repeats
        if exponent == a:
            style += f";font-weight:bold;background:#e8f5e9;color:{_COLORS['public']}"
        cells.append((exponent, value, style))
    head = "".join(f"<th style='{style}'>{x}</th>" for x, _v, style in cells)
    row = "".join(f"<td style='{style}'>{v}</td>" for _x, v, style in cells)
    labels = (_("x"), _("g^x mod p"))
    table = (
        f"<table><tr><th style='{_CELL}'>{labels[0]}</th>{head}</tr>"
        f"<tr><th style='{_CELL}'>{labels[1]}</th>{row}</tr></table>"
    )
    total = p - 1
    if order == total:
        meaning = _(
            "g = {g} has order {order} = p-1: its powers reach every number from 1 to "
            "{top}, so A, B and K can be any of them."
        ).format(g=g, order=order, top=total)
    elif order <= 2:
        meaning = _(
            "g = {g} has order {order}: A, B and K can only be {values}, whatever the "
            "secrets. Eve needs no search at all; that is why a public value p-1 is refused."
        ).format(g=g, order=order, values=" / ".join(str(v) for v in sorted(set(powers))))
    else:
        meaning = _(
            "g = {g} has order {order}: only {order} of the {total} numbers ever occur as "
            "A, B or K, so Eve has {order} exponents to try, not {total}."
        ).format(g=g, order=order, total=total)
    same = _("a = {a} and a + {order} = {later} give the same A = {A}.").format(
        a=a, order=order, later=a + order, A=powers[a - 1]
    )
    return _html(f"{table}<p>{meaning} {same}</p>")


def order_sliders(g: int = TOY.g, a: int = 6, p: int = TOY.p) -> ipw.VBox:
    """Sliders for ``g`` and ``a`` (modulo the small prime ``p``) above a live ``order_view``."""
    style = {"description_width": "90px"}
    slider_g = ipw.IntSlider(value=g, min=2, max=p - 1, description="g", style=style)
    slider_a = ipw.IntSlider(value=a, min=1, max=p - 2, description=_("Alice's a"), style=style)
    view = ipw.HTML()

    def update(_change: object = None) -> None:
        view.value = order_view(slider_g.value, slider_a.value, p).data

    slider_g.observe(update, names="value")
    slider_a.observe(update, names="value")
    update()
    return ipw.VBox([ipw.HBox([slider_g, slider_a]), view])


def file_view(path: str | Path) -> HTML:
    """A file as ``ls -l`` would name it (permissions, size) and its text."""
    path = Path(path)
    info = path.stat()
    mode = stat.filemode(info.st_mode)
    text = path.read_text(encoding="utf-8", errors="replace")
    return _html(
        f"<div><code>{html.escape(str(path))}</code> &nbsp; <code>{mode}</code> &nbsp; "
        f"{_bytes(info.st_size)}</div><pre style='white-space:pre-wrap;word-break:break-all;"
        f"font-family:monospace;font-size:85%;margin-top:2px;background:#f7f7f7;"
        f"padding:4px'>{html.escape(text)}</pre>"
    )


def progress(total: int, description: str = "") -> ipw.IntProgress:
    """A progress bar from 0 to ``total``; display it, then set ``.value`` as you go.

    A ``description`` listed in ``labcrypto.lab.vocabulary`` is shown translated.
    """
    return ipw.IntProgress(
        value=0,
        min=0,
        max=total,
        description=shown(description),
        style={"description_width": "initial"},
    )


# --- the chat ------------------------------------------------------------------

#: ipywidgets gives HTML widgets a 28 px line height; logs read better tighter.
_LOG_STYLE = "line-height:1.4"


def _log_widget() -> ipw.HTML:
    """A bordered log box that scrolls instead of growing past 300 px."""
    return ipw.HTML(
        layout=ipw.Layout(
            border="1px solid #ccc",
            padding="4px",
            min_height="80px",
            max_height="300px",
            overflow="auto",
            width="98%",
        )
    )


class ChatPanel:
    """A chat panel: a text box, a Send button, and a log of the conversation.

    ``send`` is called with the text when the user presses Send (or Enter);
    whatever it raises is shown in red in the log, never as a traceback in
    some other cell. ``add(who, text)`` appends a line and is safe to call
    from any thread (a client's receive thread calls it for each message).

    Display ``panel.widget`` once, from the notebook. To drive it without a
    browser (a test, a headless run), call ``panel.submit("hello")``: it is
    exactly what the button does.
    """

    def __init__(
        self,
        send: Callable[[str], object],
        title: str | None = None,
        max_lines: int = 200,
        *,
        echo: bool = True,
    ) -> None:
        self._send = send
        self.echo = echo
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self.max_lines = max_lines
        self.box = ipw.Text(
            placeholder=_("type a message, press Enter or Send"), layout=ipw.Layout(width="70%")
        )
        self.button = ipw.Button(description=_("Send"), button_style="primary")
        self.log = _log_widget()
        shown_title = _("chat") if title is None else shown(title)
        self.title = ipw.HTML(f"<b>{html.escape(shown_title)}</b>")
        self.button.on_click(self._on_button)
        # Enter in the box: ipywidgets 8 sets ``value`` when Enter is pressed
        # if continuous_update is off, so we observe the value (on_submit is
        # deprecated). The same happens when the box loses focus, so clicking
        # Send first delivers the text through this path, then the click.
        self.box.continuous_update = False
        self.box.observe(self._on_enter, names="value")
        self._just_handled: str | None = None
        self.widget = ipw.VBox([self.title, self.log, ipw.HBox([self.box, self.button])])

    def _on_enter(self, change: Mapping[str, object]) -> None:
        text = change.get("new")
        if isinstance(text, str) and text.strip():
            self._just_handled = text
            self.submit(text)

    def _on_button(self, _button: object) -> None:
        text = self.box.value
        if text == self._just_handled:  # the focus change already sent (or tried) it
            self._just_handled = None
            return
        self.submit(text)

    @classmethod
    def for_client(cls, client: Any, title: str | None = None) -> ChatPanel:
        """A panel wired to a ``chat.ChatClient``: Send calls ``client.send``, and
        every message the room delivers (our own lines come back as the server's
        confirmation) is added from the client's reader thread."""
        panel = cls(client.send, title or _("chat as {name}").format(name=client.name), echo=False)

        def show(message: Any) -> None:
            # The room's own voice ("server") in the student's language; people by name.
            who = _(SERVER_NAME) if message.sender == SERVER_NAME else message.sender
            panel.add(who, message.text)

        client.on_message = show
        return panel

    @property
    def lines(self) -> list[str]:
        """The conversation so far, as plain text lines."""
        with self._lock:
            return list(self._lines)

    def submit(self, text: str) -> bool:
        """Send ``text`` as the button does; log it; return whether it was sent."""
        text = text.strip()
        if not text:
            return False
        try:
            self._send(text)
        except LineRefused as exc:  # the room's reason, in the student's language
            self.add(_("error"), f"{type(exc).__name__}: {refusal_in_language(exc)}")
            return False
        except Exception as exc:  # shown to the student, in the panel, in red
            self.add(_("error"), f"{type(exc).__name__}: {exc}")
            return False
        if self.echo:
            self.add(_("you"), text)
        self.box.unobserve(self._on_enter, names="value")
        self.box.value = ""
        self.box.observe(self._on_enter, names="value")
        self._just_handled = None
        return True

    def add(self, who: str, text: str) -> None:
        """Append one line to the log (thread-safe: it only sets a widget value)."""
        with self._lock:
            self._lines.append(f"{who}: {text}")
            del self._lines[: -self.max_lines]
            rows = [self._render(line) for line in self._lines]
        self.log.value = (
            f"<div style='font-family:monospace;{_LOG_STYLE}'>" + "<br>".join(rows) + "</div>"
        )

    @staticmethod
    def _render(line: str) -> str:
        who, _sep, text = line.partition(": ")
        colors = {_("you"): "#1565c0", _("error"): "#b00020", _(SERVER_NAME): "#6a1b9a"}
        color = colors.get(who, "#333")
        return f"<span style='color:{color}'><b>{html.escape(who)}</b>: {html.escape(text)}</span>"


def _hex_preview(data: bytes, limit: int = 48) -> str:
    shown = data[:limit].hex(" ")
    if len(data) <= limit:
        return shown
    return f"{shown} … (+{_bytes(len(data) - limit)})"


class WireView:
    """What an eavesdropper sees: one line per frame, as hex and as text.

    ``add(direction, frame)`` is safe from any thread; use it as a channel's
    ``on_wire`` hook. ``frames`` keeps the raw bytes for later cells.
    """

    def __init__(self, title: str | None = None, max_lines: int = 50) -> None:
        self._lock = threading.Lock()
        self.frames: list[tuple[str, bytes]] = []
        self.max_lines = max_lines
        self.log = _log_widget()
        shown_title = _("what Eve sees on the wire") if title is None else shown(title)
        self.widget = ipw.VBox([ipw.HTML(f"<b>{html.escape(shown_title)}</b>"), self.log])

    @classmethod
    def for_channel(cls, channel: Any, title: str | None = None) -> WireView:
        """A view fed by ``channel.on_wire``: every frame it sends or receives, as sent."""
        view = cls(title)
        channel.on_wire = view.add
        return view

    def add(self, direction: str, frame: bytes) -> None:
        """Record one frame seen going ``direction`` ("sent"/"received", or a name)."""
        with self._lock:
            self.frames.append((direction, bytes(frame)))
            recent = self.frames[-self.max_lines :]
        rows = []
        as_text = html.escape(_("as text:"))
        for where, data in recent:
            text = data[4:].decode("ascii", errors="replace")
            printable = "".join(c if c.isprintable() and c != "\ufffd" else "·" for c in text)
            rows.append(
                f"<div><b>{html.escape(_(where))}</b> "
                f"{html.escape(_bytes(len(data)))}: "
                f"<code>{html.escape(_hex_preview(data))}</code><br>"
                f"<span style='color:#777'>{as_text} "
                f"{html.escape(printable[:60])}</span></div>"
            )
        self.log.value = f"<div style='font-size:85%;{_LOG_STYLE}'>" + "".join(rows) + "</div>"


def side_by_side(*panels: Any) -> ipw.HBox:
    """Show panels (anything with ``.widget``, or widgets) next to each other."""
    items = [getattr(p, "widget", p) for p in panels]
    for item in items:
        item.layout.width = f"{96 // max(1, len(items))}%"
    return ipw.HBox(items)


def table(rows: Sequence[Mapping[str, Any]], max_width: int = 70) -> HTML:
    """A list of dicts (one per row, same keys) as a small HTML table.

    Column names, and cells that hold one of the notebooks' words, are shown
    in the student's language (``labcrypto.lab.vocabulary``); data as it is.
    """
    if not rows:
        nothing = html.escape(_("(nothing)"))
        return _html(f"<i>{nothing}</i>")
    columns = list(rows[0])
    head = "".join(f"<th style='{_CELL}'>{html.escape(shown(str(c)))}</th>" for c in columns)

    def cell(value: Any) -> str:
        text = str(shown_value(value))
        text = text if len(text) <= max_width else text[: max_width - 1] + "…"
        return f"<td style='{_CELL};font-family:monospace;font-size:85%'>{html.escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    return _html(f"<table><tr>{head}</tr>{body}</table>")


def kernel_status() -> ipw.VBox:
    """A small panel: the servers this kernel runs, and a button that stops them all.

    The table is read when the panel is made and after each click; run the
    cell again to refresh it.
    """
    shown = ipw.HTML()
    button = ipw.Button(
        description=_("Stop all servers"),
        button_style="warning",
        layout=ipw.Layout(width="max-content"),  # as wide as its label, in any language
    )

    def refresh() -> None:
        rows = server.status()
        nothing = html.escape(_("no server is running in this kernel"))
        shown.value = table(rows).data if rows else f"<i>{nothing}</i>"

    def stop(_button: object) -> None:
        server.stop_all()
        refresh()

    button.on_click(stop)
    refresh()
    return ipw.VBox([shown, button])
