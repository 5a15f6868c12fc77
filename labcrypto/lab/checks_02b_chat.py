"""The checks of notebook 02b_chat: breaking the toy cipher, and the message loop.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``). The loop's
check runs it against a stand-in channel that has only ``send``/``recv``,
then over a real encrypted channel with a server thread, bounded by a timeout.
(Until notebook 02 was split in two, these lived in ``checks_02_exchange``.)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..ciphers import CaesarCipher
from ..errors import DecryptionFailed
from ..i18n import N_, Messages
from .feedback import (
    HIDDEN_WAIT,
    LOOP_WAIT,
    PURE_WAIT,
    code_of,
    expect,
    explained_in,
    fail,
    how_it_ended,
    passed,
    refused_as,
)
from .harness import (
    Outcome,
    ReplyingChannel,
    SendRecvOnly,
    call_bounded,
    echo_channel,
    returned_within,
    run_bounded,
)
from .variants import student_id, variant

__all__ = [
    "check_break_caesar",
    "check_chat_loop",
    "hidden_break_caesar",
    "hidden_chat_loop",
]

# --- breaking the toy cipher ----------------------------------------------------------

BREAK_CAESAR = Messages({
    "no wrap": N_(
        "break_caesar raised {error}: a shifted byte went below 0 or above "
        "255, so the shift does not wrap around. Undo a shift with (b - k) % 256."
    ),
    "str": N_(
        "break_caesar returned a str; return the bytes (plaintext.decode() is for showing them)."
    ),
    "wrong": N_(
        "For a message shifted by {shift}, break_caesar returned {got!r}…, which is not "
        "the message that was sent. {hint}\n"
        "Try all 256 shifts, score each candidate (+1 per lowercase letter or space, -1 per "
        "byte outside printable ASCII), and keep the best. Remember % 256: shifts wrap."
    ),
    "unchanged": N_("It returned the ciphertext unchanged."),
    "wrong way": N_("It shifted the wrong way: undo the shift with (b - k) % 256."),
    "guessed": N_(
        "It undid a shift of {guess}, the one that makes this message's most common byte a "
        "space; but in this message the most common byte is not a space ({common!r} is). "
        "A guess of the key from one byte's frequency is unreliable on a short text: "
        "judge each candidate plaintext as a whole."
    ),
    "slow": N_(
        "Trying all 256 shifts of a message this short takes a few milliseconds: is there a "
        "loop that never ends (a `while` whose condition never changes)?"
    ),
    "passed": N_("break_caesar read {count} toy-mode messages without the key."),
})

_PLAINTEXTS = [
    "meet me at the library at noon, and bring the notes",
    "the password for the lab machines is on the whiteboard",
    '{"type":"say","text":"did anyone finish the second task yet?"}',
    "Caesar had only twenty five keys; this toy cipher has two hundred and fifty six",
    "attack at dawn",
]


#: The shift of each message: the same on every run, small and large, some that wrap past 255.
_SHIFTS = [13, 200, 255, 1, 128]


def _undone_shift(ciphertext: bytes, got: Any) -> int | None:
    """The shift ``k`` for which ``got`` is ``(b - k) % 256`` of every byte of
    ``ciphertext`` (None: ``got`` is no Caesar decryption of it)."""
    if not isinstance(got, bytes | bytearray) or len(got) != len(ciphertext) or not got:
        return None
    guess = (ciphertext[0] - got[0]) % 256
    return guess if got == bytes((b - guess) % 256 for b in ciphertext) else None


def _wrong_shift_hint(plaintext: bytes, ciphertext: bytes, got: Any, shift: int) -> str:
    """Why ``got`` is not ``plaintext``: which wrong shift was undone, if one was."""
    guess = _undone_shift(ciphertext, got)
    if guess == 0:
        return BREAK_CAESAR["unchanged"]
    if guess is None:
        return ""
    common = Counter(plaintext).most_common(1)[0][0]
    if guess == (Counter(ciphertext).most_common(1)[0][0] - ord(" ")) % 256 and common != 32:
        # A key guessed from "the most common byte is a space" (it is not, here): the
        # direction may be right. Asked before "wrong way", which a guess can match by
        # chance (a shift of 255 guessed as 1).
        return BREAK_CAESAR["guessed"].format(guess=guess, common=bytes([common]))
    if guess == (-shift) % 256:
        return BREAK_CAESAR["wrong way"]
    return ""


def _break_one(
    break_caesar: Callable[[bytes], bytes], plaintext: bytes, shift: int, deadline: float
) -> None:
    """One message, shifted by ``shift``: the student's answer, stopped at ``deadline``."""
    ciphertext = CaesarCipher(shift).seal(plaintext)
    try:
        got = call_bounded(
            break_caesar, ciphertext,
            what=f"break_caesar(<{len(ciphertext)} bytes>)",
            why=BREAK_CAESAR["slow"],
            deadline=deadline,
        )  # fmt: skip
    except ValueError as exc:
        if "range(0, 256)" not in str(exc):
            raise
        raise fail(BREAK_CAESAR["no wrap"], error=refused_as(exc)) from None
    if got == plaintext:
        return
    if isinstance(got, str):
        raise fail(BREAK_CAESAR["str"])
    hint = _wrong_shift_hint(plaintext, ciphertext, got, shift)
    raise fail(BREAK_CAESAR["wrong"], shift=shift, got=bytes(got)[:24], hint=hint)


@explained_in("02b_chat", N_("Exercise: read it without the key"))
def check_break_caesar(break_caesar: Callable[[bytes], bytes]) -> None:
    """``break_caesar(ciphertext)`` must find the plaintext of a toy-mode frame, with no key."""
    deadline = time.monotonic() + PURE_WAIT  # one bound for all five messages
    for text, shift in zip(_PLAINTEXTS, _SHIFTS, strict=True):
        _break_one(break_caesar, text.encode(), shift, deadline)
    passed(BREAK_CAESAR["passed"], count=len(_PLAINTEXTS))


@check_break_caesar.hidden
def hidden_break_caesar(break_caesar: Callable[[bytes], bytes], typed_id: str = "") -> None:
    """This student's own captured message."""
    mine = variant(student_id(typed_id))
    expect(returned_within(break_caesar, mine.ciphertext, timeout=HIDDEN_WAIT) == mine.message)


# --- the message loop -----------------------------------------------------------------

CHAT_LOOP = Messages({
    "recv first": N_(
        "The loop called recv() with nothing sent that could be answered: send a "
        "line, then receive its reply (here recv would wait forever)."
    ),
    "other method": N_(
        "The loop used channel.{name}. The message loop may only call channel.send(...) "
        "and channel.recv(...) / recv_text(...): keys, ciphers, frames and sockets are the "
        "channel's business, not the loop's (task 2)."
    ),
    "mentions": N_(
        "The loop mentions {what}. It should only call channel.send and "
        "channel.recv: that separation is task 2."
    ),
    "bytes": N_("The replies are bytes; return them as text (channel.recv_text(), or .decode())."),
    "replies": N_(
        "With lines {lines} and a server that answers each line with a reply, the loop "
        "returned {replies!r:.120}: {why}."
    ),
    "not a list": N_("not a list of the replies"),
    "count": N_("{got} replies for {sent} lines: one reply per line sent, in order"),
    "not the replies": N_(
        "not the text the server sent back: return what channel.recv_text() gave you, "
        "one item per line"
    ),
    "sent": N_("The loop sent {sent!r}; send each line once, in order."),
    "real channel": N_("Over a real SecureChannel the loop {ended}."),
    "swallowed": N_(
        "The channel failed on the second reply (a message that fails authentication, as "
        "a tampered one does: {error}), and the loop {ended} as if it had finished. An "
        "except that swallows the channel's errors hides a broken or attacked connection: "
        "the caller never learns that a reply is missing (a catch-all except: course "
        "mistake 11). Let the channel's error through."
    ),
    "returned": N_("returned {replies!r:.80}"),
    "kept going": N_("kept going"),
    "did not finish": N_("did not finish"),
    "slow": N_(
        "Three lines, each answered at once by a stand-in channel, take no time: is there "
        "a loop that never ends (a `while True` with no `break`)?"
    ),
    "passed": N_(
        "chat_loop talks through channel.send/recv only, and works over a real encrypted channel."
    ),
})

_FORBIDDEN = Messages({
    "pickle": N_("pickle (course mistake 7: unpickling network bytes runs the sender's code)"),
    "socket": N_("sockets (the channel owns the socket)"),
    "seal": N_("the cipher's seal/open (the channel encrypts)"),
    "cipher": N_("ciphers (the channel encrypts)"),
    "pow(": N_("pow (key exchange belongs to the handshake, not the loop)"),
    "key": N_("keys (the loop should know nothing about keys)"),
})


def _check_loop_code(chat_loop: Callable[..., Any]) -> None:
    code = code_of(chat_loop)
    body = code.split(":", 1)[1] if ":" in code else code
    for token in _FORBIDDEN:
        if token in body.lower():
            raise fail(CHAT_LOOP["mentions"], what=_FORBIDDEN[token])


def _check_loop_with_stand_in(chat_loop: Callable[..., Any]) -> None:
    lines = ["hello", "how are you?", "bye"]
    fake = SendRecvOnly(CHAT_LOOP["recv first"], CHAT_LOOP["other method"])
    replies = call_bounded(
        chat_loop, fake, list(lines),
        what="chat_loop(channel, ['hello', 'how are you?', 'bye'])",
        why=CHAT_LOOP["slow"],
        deadline=time.monotonic() + PURE_WAIT,
    )  # fmt: skip
    want = [f"echo: {line}" for line in lines]
    if replies != want:
        if isinstance(replies, list) and replies and isinstance(replies[0], bytes | bytearray):
            raise fail(CHAT_LOOP["bytes"])
        if not isinstance(replies, list):
            why = CHAT_LOOP["not a list"]
        elif len(replies) != len(lines):
            why = CHAT_LOOP["count"].format(got=len(replies), sent=len(lines))
        else:
            why = CHAT_LOOP["not the replies"]
        raise fail(CHAT_LOOP["replies"], lines=lines, replies=replies, why=why)
    sent = [data for kind, data in fake.calls if kind == "send"]
    if sent != [line.encode() for line in lines]:
        raise fail(CHAT_LOOP["sent"], sent=sent)


#: The error of the stand-in channel whose second reply fails (see ``_FailsOnSecondReply``).
TAMPERED_REPLY = N_("the check's reply number 2 failed authentication (on purpose)")


class _FailsOnSecondReply(ReplyingChannel):
    """A stand-in channel, no network: it answers the first line, and fails on the second
    reply as a channel does on a message that was tampered with (``DecryptionFailed``)."""

    def recv_text(self, timeout: float | None = None) -> str:
        if len(self.sent) >= 2:
            raise DecryptionFailed(TAMPERED_REPLY)
        return super().recv_text(timeout)


def _swallows_errors(chat_loop: Callable[..., Any], timeout: float) -> Outcome | None:
    """How the loop ended on a channel whose second reply fails, if it did not raise."""
    outcome = run_bounded(chat_loop, _FailsOnSecondReply(), ["a", "b", "c"], timeout=timeout)
    return None if outcome.status == "error" else outcome


def _check_loop_lets_errors_through(chat_loop: Callable[..., Any]) -> None:
    outcome = _swallows_errors(chat_loop, PURE_WAIT)
    if outcome is not None:
        if outcome.status == "ok":
            ended = CHAT_LOOP["returned"].format(replies=outcome.value)
        else:
            ended = CHAT_LOOP["kept going"]
        error = refused_as(DecryptionFailed(TAMPERED_REPLY))
        raise fail(CHAT_LOOP["swallowed"], error=error, ended=ended)


def _check_loop_over_real_channel(chat_loop: Callable[..., Any]) -> None:
    """The same loop over a real encrypted channel, with a real server thread."""
    with echo_channel() as channel:
        lines = ["over a real channel", "done"]
        status, value = run_bounded(chat_loop, channel, lines, timeout=LOOP_WAIT)
    if status != "ok" or value != [f"echo: {line}" for line in lines]:
        ended = how_it_ended(status, value, 120, stuck=CHAT_LOOP["did not finish"])
        raise fail(CHAT_LOOP["real channel"], ended=ended)


@explained_in(
    "02b_chat", N_("4 · Exercise: a message loop that knows nothing about keys (task 2)")
)
def check_chat_loop(chat_loop: Callable[[Any, list[str]], list[str]]) -> None:
    """``chat_loop(channel, lines)`` sends each line, collects each reply, uses only send/recv."""
    _check_loop_code(chat_loop)
    _check_loop_with_stand_in(chat_loop)
    _check_loop_lets_errors_through(chat_loop)
    _check_loop_over_real_channel(chat_loop)
    passed(CHAT_LOOP["passed"])


@check_chat_loop.hidden
def hidden_chat_loop(chat_loop: Callable[[Any, list[str]], list[str]]) -> None:
    """A loop with no lines, replies that differ from the lines, and a failing reply that
    must get through."""
    two_lines = returned_within(chat_loop, ReplyingChannel(), ["a", "b"], timeout=HIDDEN_WAIT)
    expect(two_lines == ["re: a", "re: b"])
    expect(returned_within(chat_loop, ReplyingChannel(), [], timeout=HIDDEN_WAIT) == [])
    expect(_swallows_errors(chat_loop, HIDDEN_WAIT) is None)
