"""Figures for the notebooks: each function draws one picture and returns it.

Every function returns a matplotlib ``Figure`` with a title and labelled
axes, sized to sit in a notebook without scrolling. Its own words come in
the student's language, and so does a ``title`` a notebook passes when it
is one of the notebooks' words (``labcrypto.lab.vocabulary``). In a notebook, end the
call with ``;`` so the figure is shown once (not once more as a text
repr)::

    plots.powers(groups.TOY);

The figures are drawn from data the notebook just produced (timings it
measured, bytes it captured, the transcript of the session it ran), never
from a stored picture. Used by notebooks 01_keys, 02b_chat, 04_two_ports
(the pool's timeline) and 05_ftp (the session keys of each request).

This module imports matplotlib; ``import labcrypto`` does not, so the
package works on a server with no plotting library installed.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..groups import Group
from ..i18n import N_, _, language, ngettext
from .vocabulary import shown

__all__ = [
    "AGE_OF_UNIVERSE_SECONDS",
    "brute_force_times",
    "byte_histograms",
    "caesar_scores",
    "extrapolate_log10_seconds",
    "fingerprint_grid",
    "format_log10_seconds",
    "layers",
    "lease_intervals",
    "pool_timeline",
    "powers",
    "sequence_diagram",
    "transcript_steps",
]

#: About 13.8 billion years, in seconds: a scale for "too long".
AGE_OF_UNIVERSE_SECONDS = 4.35e17
_YEAR = 365.25 * 24 * 3600
_SMALL = (7.5, 3.2)  # a figure that fits a notebook column without scrolling
_CLIENT_COLOR = "tab:blue"
_SERVER_COLOR = "tab:orange"


def powers(group: Group, big: Group | None = None, count: int = 400) -> Figure:
    """``g^x mod p`` against ``x``: the toy group, and (optionally) a bigger one.

    The left panel is the course's ``5^x mod 23``: every value 1..22 appears
    once, in no visible order. The right panel shows the first ``count``
    powers in ``big`` — a cloud with no slope to follow back from ``y`` to
    ``x``. Compare ``x^2``, which always grows: there, bisection finds ``x``
    from ``y`` in a few steps.
    """
    panels = 2 if big is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(_SMALL[0], _SMALL[1] + 0.4), squeeze=False)
    xs = list(range(group.q + 1)) if group.q <= 64 else list(range(min(count, group.q)))
    left = axes[0][0]
    left.plot(xs, [pow(group.g, x, group.p) for x in xs], "o-", color=_CLIENT_COLOR, ms=4, lw=0.8)
    left.set(title=f"{group.g}^x mod {group.p}", xlabel=_("x (the secret)"), ylabel="g^x mod p")
    if big is not None:
        right = axes[0][1]
        bx = list(range(min(count, big.q)))
        right.plot(bx, [pow(big.g, x, big.p) for x in bx], ".", color=_SERVER_COLOR, ms=3)
        right.set(
            title=_("{g}^x mod p, p of {bits} bits").format(g=big.g, bits=big.bits),
            xlabel=_("x (the secret)"),
            ylabel="g^x mod p",
        )
    fig.suptitle(_("Going forward is one pow(); going back has no slope to follow"), fontsize=10)
    fig.tight_layout()
    return fig


def _fit_log2(bits: Sequence[int], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares line through ``(bits, log2(seconds))``: ``(slope, intercept)``.

    Runs shorter than a millisecond are mostly timer noise and Python
    overhead, so they are left out when there are enough longer ones.
    """
    points = [(b, s) for b, s in zip(bits, seconds, strict=True) if s > 0]
    long_ones = [(b, s) for b, s in points if s >= 1e-3]
    if len(long_ones) >= 3:
        points = long_ones
    if len(points) < 2:
        raise ValueError("need at least two timings (of different sizes) to fit a line")
    xs = [float(b) for b, _ in points]
    ys = [math.log2(s) for _, s in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var_x = sum((x - mean_x) ** 2 for x in xs)
    if var_x == 0:
        raise ValueError("need timings of at least two different sizes to fit a line")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var_x
    return slope, mean_y - slope * mean_x


def extrapolate_log10_seconds(
    bits: Sequence[int], seconds: Sequence[float], target_bits: int
) -> float:
    """log10 of the time the fitted trend predicts for ``target_bits``.

    The answer is a logarithm because the time itself does not fit in a
    float: for 2048 bits it has hundreds of digits.
    """
    slope, intercept = _fit_log2(bits, seconds)
    return (slope * target_bits + intercept) * math.log10(2)


#: Units of time below a year, largest first (abbreviated, so no plural forms are needed).
_UNITS = ((N_("{value} days"), 86400), (N_("{value} hours"), 3600), (N_("{value} minutes"), 60))


def _number(formatted: str) -> str:
    """A number Python formatted (``"3.2"``, ``"1,000"``) as the reader writes numbers:
    in Russian a decimal comma and a thin space between thousands (``"3,2"``, ``"1 000"``)."""
    if language() != "ru":
        return formatted
    return formatted.replace(",", "\u2009").replace(".", ",")


def format_log10_seconds(log10_seconds: float) -> str:
    """A human reading of ``10**log10_seconds`` seconds: "3.2 ms", "5 days", "10^598 years"."""
    if log10_seconds < 2:
        value = 10**log10_seconds
        if value < 1:
            return _("{value} ms").format(value=_number(f"{value * 1000:.3g}"))
        return _("{value} s").format(value=_number(f"{value:.3g}"))
    if log10_seconds < math.log10(_YEAR):
        value = 10**log10_seconds
        for unit, size in _UNITS:
            if value >= size:
                return _(unit).format(value=_number(f"{value / size:.3g}"))
    log10_years = log10_seconds - math.log10(_YEAR)
    if log10_years < 6:
        years = round(10**log10_years)
        return ngettext("{value} year", "{value} years", years).format(value=_number(f"{years:,}"))
    return _("10^{power} years").format(power=f"{log10_years:.0f}")


def brute_force_times(
    bits: Sequence[int], seconds: Sequence[float], target_bits: int = 2048
) -> Figure:
    """Measured brute-force times against the size of ``p``, and the trend to ``target_bits``.

    Left: the measurements on a log scale with the fitted line (a straight
    line on a log scale means "doubles with every extra bit"). Right: the
    same line carried on to ``target_bits``, in powers of ten of seconds,
    against the age of the universe.
    """
    slope, intercept = _fit_log2(bits, seconds)
    fig, (left, right) = plt.subplots(1, 2, figsize=(_SMALL[0] + 1.5, _SMALL[1] + 0.6))
    left.semilogy(bits, seconds, "o", color=_CLIENT_COLOR, label=_("measured"))
    fit_x = [min(bits), max(bits)]
    left.semilogy(
        fit_x,
        [2 ** (slope * x + intercept) for x in fit_x],
        "--",
        color="gray",
        label=_("×{factor} per bit").format(factor=_number(f"{2**slope:.2f}")),
    )
    left.set(title=_("Trying every exponent"), xlabel=_("size of p (bits)"), ylabel=_("seconds"))
    left.legend(fontsize=8)
    log10 = math.log10(2)
    xs = [min(bits), target_bits]
    right.plot(xs, [(slope * x + intercept) * log10 for x in xs], "--", color="gray")
    right.plot(bits, [math.log10(s) for s in seconds], "o", color=_CLIENT_COLOR)
    universe = math.log10(AGE_OF_UNIVERSE_SECONDS)
    right.axhline(universe, color="tab:red", lw=1)
    right.text(
        min(bits),
        universe,
        " " + _("age of the universe"),
        color="tab:red",
        va="bottom",
        fontsize=8,
    )
    predicted = (slope * target_bits + intercept) * log10
    right.plot([target_bits], [predicted], "o", color="gray")
    right.annotate(
        _("{bits} bits:\n{time}").format(bits=target_bits, time=format_log10_seconds(predicted)),
        (target_bits, predicted),
        textcoords="offset points",
        xytext=(-10, -30),
        ha="right",
        fontsize=8,
    )
    right.set(
        title=_("Carried on to {bits} bits").format(bits=target_bits),
        xlabel=_("size of p (bits)"),
        ylabel=_("log10(seconds)"),
    )
    fig.tight_layout()
    return fig


def byte_histograms(samples: Mapping[str, bytes], title: str | None = None) -> Figure:
    """One histogram of byte values (0..255) per sample, side by side.

    Text and Caesar ciphertext pile up on a few values (letters, shifted);
    AES-GCM ciphertext spreads evenly over all 256: nothing to count.
    """
    fig, axes = plt.subplots(
        1, len(samples), figsize=(_SMALL[0] + 1.5, _SMALL[1]), sharey=False, squeeze=False
    )
    for ax, (name, data) in zip(axes[0], samples.items(), strict=True):
        counts = Counter(data)
        ax.bar(range(256), [counts.get(v, 0) for v in range(256)], width=1.0, color=_CLIENT_COLOR)
        size = ngettext("{count} byte", "{count} bytes", len(data)).format(count=len(data))
        ax.set(title=f"{shown(str(name))} ({size})", xlabel=_("byte value"), xlim=(-2, 258))
    axes[0][0].set_ylabel(_("how often"))
    fig.suptitle(_("Which byte values occur") if title is None else shown(title), fontsize=10)
    fig.tight_layout()
    return fig


def caesar_scores(scores: Sequence[float], best: int | None = None) -> Figure:
    """How English-like each of the 256 candidate decryptions looks, by shift.

    One shift stands out: that is the key. Eve needs no K, only 256 tries.
    """
    fig, ax = plt.subplots(figsize=_SMALL)
    ax.bar(range(len(scores)), scores, width=1.0, color="lightgray")
    if best is None:
        best = max(range(len(scores)), key=scores.__getitem__)
    ax.bar([best], [scores[best]], width=3.0, color="tab:red")
    ax.annotate(
        _("shift {shift}").format(shift=best),
        (best, scores[best]),
        textcoords="offset points",
        xytext=(6, -4),
        color="tab:red",
        fontsize=9,
    )
    ax.set(
        title=_("Trying all 256 shifts"),
        xlabel=_("shift tried"),
        ylabel=_("share of lowercase letters"),
    )
    fig.tight_layout()
    return fig


def _short(value: Any, width: int = 12) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def transcript_steps(transcript: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, str]]:
    """Turn a handshake transcript into ``(sender, label)`` steps for ``sequence_diagram``.

    The label is the message type and the fields it carries, with long
    numbers cut short (``static=0x8c1f…``).
    """
    steps = []
    for sender, message in transcript:
        fields = [f"{k}={_short(v)}" for k, v in message.items() if k not in ("type", "version")]
        label = message.get("type", "?")
        if fields:
            label += "  " + ", ".join(fields[:3]) + (" …" if len(fields) > 3 else "")
        steps.append((sender, label))
    return steps


#: The default names of a sequence diagram's two sides, marked to be translated when drawn.
_SIDES = (N_("client"), N_("server"))


def sequence_diagram(
    steps: Sequence[tuple[str, str]],
    left: str = "client",
    right: str = "server",
    title: str | None = None,
) -> Figure:
    """A sequence diagram: two lifelines and one arrow per ``(sender, label)`` step.

    ``sender`` is ``left`` or ``right``; the arrow goes to the other side.
    """
    height = 1.2 + 0.45 * max(1, len(steps))
    fig, ax = plt.subplots(figsize=(_SMALL[0] + 1.5, height))
    x_left, x_right = 0.12, 0.88
    top, bottom = len(steps) + 0.6, -0.2
    for x, name, color in ((x_left, left, _CLIENT_COLOR), (x_right, right, _SERVER_COLOR)):
        ax.plot([x, x], [bottom, top], color=color, lw=1.5)
        ax.text(
            x,
            top + 0.15,
            _(name),
            ha="center",
            va="bottom",
            fontsize=10,
            weight="bold",
            color=color,
        )  # "client", "server": translated (_SIDES); a name of your own is shown as given
    for row, (sender, label) in enumerate(steps):
        y = len(steps) - row - 0.2
        start, end = (x_left, x_right) if sender == left else (x_right, x_left)
        color = _CLIENT_COLOR if sender == left else _SERVER_COLOR
        ax.annotate(
            "",
            xy=(end, y),
            xytext=(start, y),
            arrowprops={"arrowstyle": "->", "color": color, "lw": 1.3},
        )
        ax.text(0.5, y + 0.08, label, ha="center", va="bottom", fontsize=8, family="monospace")
    shown_title = _("This session, message by message") if title is None else shown(title)
    ax.set(xlim=(0, 1), ylim=(bottom, top + 0.7), title=shown_title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def layers() -> Figure:
    """The layers of task 2: the message loop on top knows only ``send`` and ``recv``."""
    boxes = [
        (
            _("your message loop"),
            "for line in ...: channel.send(line); channel.recv()",
            "#e8f4ea",
        ),
        (
            "SecureChannel",
            _("frames (4-byte length) + encrypt/decrypt: send(), recv()"),
            "#e6effa",
        ),
        (
            _("handshake + ciphers"),
            _("keys, K = B^a mod p, HKDF, AES-GCM (no sockets)"),
            "#fdf1e0",
        ),
        (_("socket"), _("TCP: a stream of bytes, no message boundaries"), "#eeeeee"),
    ]
    fig, ax = plt.subplots(figsize=(_SMALL[0], 3.0))
    for row, (name, detail, color) in enumerate(boxes):
        y = len(boxes) - row - 1
        ax.add_patch(Rectangle((0.02, y + 0.08), 0.96, 0.84, color=color, ec="gray"))
        ax.text(0.05, y + 0.58, name, fontsize=10, weight="bold", va="center")
        ax.text(0.05, y + 0.28, detail, fontsize=8.5, va="center", family="monospace")
    ax.set(xlim=(0, 1), ylim=(0, len(boxes)), title=_("Who knows what (task 2)"))
    ax.axis("off")
    fig.tight_layout()
    return fig


# --- notebook 04: the port pool ------------------------------------------------------

_LEASED = re.compile(r"port (\d+) leased")
_RETURNED = re.compile(r"port (\d+) returned to the pool")


def lease_intervals(
    events: Sequence[Any], since: float = 0.0
) -> tuple[list[tuple[int, float, float | None]], list[float]]:
    """Read a chat server's events: ``([(port, start, end), ...], [busy times])``.

    ``events`` are ``server.events`` (objects with ``time``, ``kind`` and
    ``text``): a ``pool`` event "port N leased ..." opens an interval,
    "port N returned to the pool" closes it (``end`` is None while the port
    is still leased), and a ``busy`` event is a client turned away. Only
    events at or after ``since`` count.
    """
    open_since: dict[int, float] = {}
    intervals: list[tuple[int, float, float | None]] = []
    busy: list[float] = []
    for event in events:
        if event.time < since:
            continue
        if event.kind == "busy":
            busy.append(event.time)
        if event.kind != "pool":
            continue
        if match := _LEASED.search(event.text):
            open_since[int(match.group(1))] = event.time
        elif (match := _RETURNED.search(event.text)) and int(match.group(1)) in open_since:
            port = int(match.group(1))
            intervals.append((port, open_since.pop(port), event.time))
    intervals += [(port, start, None) for port, start in open_since.items()]
    return sorted(intervals, key=lambda item: item[1]), busy


def pool_timeline(
    intervals: Sequence[tuple[int, float, float | None]],
    busy: Sequence[float] = (),
    ports: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Which port was leased when (top), and how many at once (bottom).

    ``intervals`` and ``busy`` come from ``lease_intervals``; ``ports`` is
    the pool's range (every port gets a row, also the ones never used).
    Red marks are clients turned away because every port was in use.
    """
    times = [t for _, start, end in intervals for t in (start, end) if t is not None]
    times += list(busy)
    start = min(times, default=0.0)
    stop = max(times, default=start + 1.0)
    rows = sorted(set(ports or []) | {port for port, _, _ in intervals})
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(_SMALL[0] + 1.5, 2.0 + 0.25 * len(rows) + 1.8), sharex=True,
        gridspec_kw={"height_ratios": [max(1, len(rows)), 3]},
    )  # fmt: skip
    for port, begin, end in intervals:
        finish = stop if end is None else end
        top.barh(rows.index(port), finish - begin, left=begin - start, height=0.7, color="tab:blue")
    top.set_yticks(range(len(rows)), [str(p) for p in rows], fontsize=8)
    top.set(
        ylabel=_("port"), title=_("Ports of the pool over time") if title is None else shown(title)
    )
    top.invert_yaxis()
    changes = sorted(
        [(b - start, 1) for _, b, _ in intervals]
        + [(e - start, -1) for _, _, e in intervals if e is not None]
    )
    xs, ys, level = [0.0], [0], 0
    for when, step in changes:
        level += step
        xs.append(when)
        ys.append(level)
    xs.append(stop - start)
    ys.append(level)
    bottom.step(xs, ys, where="post", color="tab:blue", label=_("ports in use"))
    if ports:
        size_label = _("pool size ({count})").format(count=len(ports))
        bottom.axhline(len(ports), color="gray", ls="--", lw=1, label=size_label)
    if busy:
        bottom.plot(
            [b - start for b in busy], [len(ports or rows)] * len(busy), "x", color="tab:red",
            label=_("turned away: busy ({count})").format(count=len(busy)),
        )  # fmt: skip
    bottom.set(xlabel=_("seconds"), ylabel=_("in use"), ylim=(0, len(ports or rows) + 1))
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


# --- notebook 05: fresh keys for every request -------------------------------------------


def fingerprint_grid(
    sessions: Sequence[str],
    static: str | None = None,
    title: str | None = None,
    xlabel: str | None = None,
) -> Figure:
    """One row per request: the bytes of its session fingerprint as colours.

    Every row looks different when every request had keys of its own. With
    ``static`` (the fingerprint of your long-term key), a second panel shows
    it for comparison: the same row every time. ``sessions`` may hold any
    hex strings (say, each request's ephemeral public value, with ``xlabel``
    saying so).
    """

    def as_bytes(text: str) -> list[int]:
        """A session fingerprint (hex) or a key fingerprint (``SHA256:`` and base64)."""
        if text.startswith("SHA256:"):
            return list(base64.b64decode(text[len("SHA256:") :] + "="))
        return list(bytes.fromhex(text))

    panels = 2 if static else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(_SMALL[0] + 1.0, 1.2 + 0.18 * max(1, len(sessions))),
        gridspec_kw={"width_ratios": [1, 1][:panels]}, squeeze=False,
    )  # fmt: skip
    grid = [as_bytes(s) for s in sessions] or [[0] * 8]
    axes[0][0].imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=255)
    axes[0][0].set(
        title=_("Session keys of each request") if title is None else shown(title),
        xlabel=_("byte of the fingerprint") if xlabel is None else shown(xlabel),
        ylabel=_("request"),
        yticks=range(len(grid)), yticklabels=[str(i + 1) for i in range(len(grid))],
    )  # fmt: skip
    axes[0][0].tick_params(axis="y", labelsize=7)
    if static:
        axes[0][1].imshow([as_bytes(static)] * len(grid), aspect="auto", cmap="viridis",
                          vmin=0, vmax=255)  # fmt: skip
        axes[0][1].set(
            title=_("your long-term key"), xlabel=_("byte of the fingerprint"), yticks=[]
        )
    fig.tight_layout()
    return fig
