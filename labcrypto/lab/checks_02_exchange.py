"""The checks of notebook 02_exchange: frames, the exchange over TCP, the toy cipher, the loop.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``). The network
checks are the other end of a real TCP connection on 127.0.0.1 and play
dirty — a message cut into one-byte segments, two messages in one segment,
a 4 GB length, a hostile group — each bounded by a timeout.
"""

from __future__ import annotations

import ast
import socket
import time
from collections.abc import Callable
from typing import Any

from ..errors import ChannelClosed, ConnectionLost, LabCryptoError
from ..groups import Group, small_safe_prime_group
from ..i18n import N_, Messages, _, ngettext
from ..streams import set_timeout
from .feedback import (
    HIDDEN_WAIT,
    RECV_AS_MESSAGE,
    WAIT,
    code_of,
    cut_repr,
    expect,
    explained_in,
    fail,
    how_it_ended,
    not_written,
    passed,
    refuse_whole_power,
    refused_as,
    syntax_of,
)
from .harness import (
    FAIR_SEEDS,
    HEADER,
    SMALL_EXPONENT,
    DhOutcome,
    Pair,
    call_bounded,
    composite,
    dribble,
    has_small_exponent,
    in_background,
    outside_subgroup,
    prime_not_safe,
    read_available,
    returned_within,
    run_bounded,
    run_dh_server,
    seeded_random,
    tcp_connection,
)

#: The seed of the group of ``check_dh_client``: the same group on every run, and one whose
#: g is 3, not 2 (a client that accepts only g = 2 fails every run, not half of them).
DH_CLIENT_SEED = 4

__all__ = [
    "check_dh_client",
    "check_framing",
    "hidden_dh_client",
    "hidden_framing",
]

# --- framing ---------------------------------------------------------------------

FRAMING = Messages({
    "stuck": N_(
        "recv_msg did not return within {wait:.0f} s when {what}. It is still "
        "waiting for bytes that never come (or loops forever).{hint}"
    ),
    "timed out": N_(
        "recv_msg waited for more bytes than were sent when {what}: read "
        "exactly 4 header bytes, then exactly `length` bytes.{hint}"
    ),
    "raised": N_(
        "recv_msg raised {error} when {what}. TCP may deliver "
        "fewer bytes than recv() asked for: loop until you have all 4 header bytes, then "
        "all `length` payload bytes (course mistake 6)."
    ),
    "wire": N_(
        "send_msg(sock, b'hello') put {raw!r} on the wire; expected {want!r} "
        "(4-byte big-endian length, then the bytes). {hint}"
        "Use struct.pack('!I', len(data)) + data, in one sendall."
    ),
    "no length": N_(
        "There is no length in front: the receiver cannot know where the "
        "message ends (course mistake 6). "
    ),
    "little-endian": N_("The length is little-endian; the network order is big-endian ('!I'). "),
    "payload": N_("When {what}, recv_msg returned {shown} instead of the {size} bytes sent.{hint}"),
    "newline": N_(
        " A delimiter such as '\\n' can occur inside the data: only a length "
        "works for any bytes (course mistake 6)."
    ),
    "partial": N_(
        " It looks like {recv_as_message}: one recv() returns whatever has "
        "arrived, not the whole message. Loop until you have `length` bytes."
    ),
    "newline in data": N_("the message holds a newline"),
    "all bytes": N_("the message holds every byte value"),
    "100 kB": N_("the message is 100 kB long"),
    "empty": N_("the message is empty"),
    "one byte at a time": N_("the message arrived one byte at a time"),
    "dribbled": N_(
        "The message arrived one byte per TCP segment, and recv_msg returned {got!r}: "
        "{recv_as_message}. TCP may cut a message anywhere. Loop until you have all "
        "4 header bytes, then all `length` payload bytes."
    ),
    "glued first": N_("two messages arrived in one piece"),
    "glued second": N_("reading the second of two messages sent together"),
    "glued hint": N_(
        " Both arrived in one TCP segment, and the first call took the second message's "
        "bytes with it: {recv_as_message}. Read exactly `length` bytes, never more."
    ),
    "glued": N_(
        "Two messages arrived in one TCP segment; recv_msg returned {first!r} and then "
        "{second!r}, expected b'one' and b'two': {recv_as_message}. Read exactly "
        "`length` bytes, never more: the rest belongs to the next message."
    ),
    "too large": N_(
        "A peer announced a message of 4 GB (more than max_message = {limit}); "
        "recv_msg {what}. Check the length against the limit *before* reading, and raise "
        "ValueError: otherwise four bytes from anyone make you allocate 4 GB."
    ),
    "kept waiting": N_("kept waiting for it"),
    "returned kind": N_("returned {kind}"),
    "raised kind": N_("raised {kind}"),
    "cut stuck": N_(
        "The peer closed after 3 of 10 bytes and recv_msg never returned. "
        "recv() returning b'' means the connection is closed: raise "
        "ConnectionError then, do not loop forever."
    ),
    "cut returned": N_(
        "The peer closed after 3 of 10 bytes, and recv_msg returned {value!r} "
        "as if it were a whole message. Raise ConnectionError instead."
    ),
    "cut raised": N_(
        "The peer closed after 3 of 10 bytes; recv_msg raised {error}. "
        "Raise ConnectionError."
    ),
    "str": N_(
        "When {what}, recv_msg returned str {shown}: return the bytes as they arrived "
        "(bytes, not str). A message can hold any bytes, not only text; whoever expects "
        "text decodes it."
    ),
    "send ignored": N_(
        "send_msg calls `{call}` and ignores what it returns: send() may send only part "
        "of the bytes (it returns how many it sent), and the rest is silently lost once "
        "the socket's buffer is full. Use sendall, which sends them all."
    ),
    "largest refused": N_(
        "A message of exactly max_message = {limit} bytes is allowed, and recv_msg "
        "refused its length with {error}: the limit is the largest size allowed, so "
        "refuse only length > max_message."
    ),
    "slow send": N_(
        "Sending 9 bytes to a peer that reads them takes a moment: is there a loop that "
        "never ends (say, one around send that never counts all the bytes as sent)?"
    ),
    "passed": N_(
        "send_msg/recv_msg keep every message whole: split into single bytes, two in one "
        "piece, newlines and binary data, 100 kB; a 4 GB length and a cut connection "
        "are refused."
    ),
})


def _receive(
    recv_msg: Callable[[socket.socket], bytes], sock: socket.socket, what: str, hint: str = ""
) -> Any:
    """One call of ``recv_msg``, bounded; a failure says what the peer had sent."""
    status, value = run_bounded(recv_msg, sock)
    if status == "stuck":
        raise fail(FRAMING["stuck"], wait=WAIT, what=what, hint=hint)
    if status == "error":
        if isinstance(value, NotImplementedError):
            raise not_written("recv_msg")
        if isinstance(value, TimeoutError):
            raise fail(FRAMING["timed out"], what=what, hint=hint)
        raise fail(FRAMING["raised"], error=refused_as(value), what=what)
    return value


def _wait_past_the_verdict(pair: Pair) -> None:
    """Give the end recv_msg reads a timeout of 3 × WAIT: a recv_msg waiting for bytes that
    never come is "stuck" at WAIT on every run, never a timeout error racing the verdict."""
    set_timeout(pair[1], 3 * WAIT)


def _check_wire_format(send_msg: Callable[[socket.socket, bytes], None], pair: Pair) -> None:
    left, right = pair
    call_bounded(
        send_msg, left, b"hello",
        what="send_msg(sock, b'hello')",
        why=FRAMING["slow send"],
        deadline=time.monotonic() + WAIT,
        bound=WAIT,
    )  # fmt: skip
    raw = read_available(right)
    want = HEADER.pack(5) + b"hello"
    if raw == want:
        return
    hint = ""
    if raw.startswith(b"hello"):
        hint = FRAMING["no length"]
    elif raw[:4] == (5).to_bytes(4, "little"):
        hint = FRAMING["little-endian"]
    raise fail(FRAMING["wire"], raw=raw, want=want, hint=hint)


def _check_payloads(
    send_msg: Callable[..., None], recv_msg: Callable[..., Any], pair: Pair
) -> None:
    left, right = pair
    for payload, what in [
        (b"two\nlines", FRAMING["newline in data"]),
        (bytes(range(256)), FRAMING["all bytes"]),
        (b"x" * 100_000, FRAMING["100 kB"]),
        (b"", FRAMING["empty"]),
    ]:
        sender = in_background(send_msg, left, payload)
        got = _receive(recv_msg, right, what)
        sender.join(WAIT)
        if got == payload:
            continue
        if isinstance(got, str):
            raise fail(FRAMING["str"], what=what, shown=cut_repr(got, 40))
        if isinstance(got, bytes | bytearray):
            shown = ngettext("{count} byte", "{count} bytes", len(got)).format(count=len(got))
        else:
            shown = repr(got)
        hint = FRAMING["newline"] if b"\n" in payload else ""
        if len(payload) > 60000:
            hint += FRAMING["partial"].format(recv_as_message=_(RECV_AS_MESSAGE))
        raise fail(FRAMING["payload"], what=what, shown=shown, size=len(payload), hint=hint)


def _check_dribbled(recv_msg: Callable[..., Any], pair: Pair) -> None:
    left, right = pair
    message = b"split into single bytes"
    # Each byte leaves once recv_msg has read the one before: every recv() gets one byte.
    sender = dribble(left, HEADER.pack(len(message)) + message, reader=right, timeout=3 * WAIT)
    got = _receive(recv_msg, right, FRAMING["one byte at a time"])
    if got != message:
        raise fail(FRAMING["dribbled"], got=got, recv_as_message=_(RECV_AS_MESSAGE))
    sender.join(WAIT)


def _check_glued(recv_msg: Callable[..., Any], pair: Pair) -> None:
    left, right = pair
    left.sendall(HEADER.pack(3) + b"one" + HEADER.pack(3) + b"two")
    first = _receive(recv_msg, right, FRAMING["glued first"])
    hint = FRAMING["glued hint"].format(recv_as_message=_(RECV_AS_MESSAGE))
    second = _receive(recv_msg, right, FRAMING["glued second"], hint)
    if (first, second) != (b"one", b"two"):
        raise fail(FRAMING["glued"], first=first, second=second, recv_as_message=_(RECV_AS_MESSAGE))


def _check_size_limit(recv_msg: Callable[..., Any], pair: Pair, max_message: int) -> None:
    left, right = pair
    left.sendall(HEADER.pack(0xFFFF_FFF0))
    status, value = run_bounded(recv_msg, right)
    if status == "error" and isinstance(value, ValueError | LabCryptoError):
        return
    if status == "stuck":
        what = FRAMING["kept waiting"]
    else:
        ended = FRAMING["returned kind"] if status == "ok" else FRAMING["raised kind"]
        what = ended.format(kind=type(value).__name__)
    raise fail(FRAMING["too large"], limit=max_message, what=what)


def _check_cut_connection(recv_msg: Callable[..., Any], pair: Pair) -> None:
    left, right = pair
    left.sendall(HEADER.pack(10) + b"abc")
    left.close()
    status, value = run_bounded(recv_msg, right)
    if status == "stuck":
        raise fail(FRAMING["cut stuck"])
    if status == "ok":
        raise fail(FRAMING["cut returned"], value=value)
    if not isinstance(value, ConnectionError | EOFError | ConnectionLost | ChannelClosed):
        raise fail(FRAMING["cut raised"], error=refused_as(value))


def _check_largest_allowed(recv_msg: Callable[..., Any], pair: Pair, max_message: int) -> None:
    """A length of exactly ``max_message`` is allowed: recv_msg starts reading it (and
    raises ConnectionError when the peer hangs up after 3 bytes) rather than refusing
    it as too large. No megabyte needs to travel to tell ``>`` from ``>=``."""
    left, right = pair
    left.sendall(HEADER.pack(max_message) + b"abc")
    left.close()
    status, value = run_bounded(recv_msg, right)
    if status == "error" and isinstance(value, ValueError) and not isinstance(
        value, ConnectionError | EOFError | ConnectionLost | ChannelClosed
    ):
        raise fail(FRAMING["largest refused"], limit=max_message, error=refused_as(value))


def _ignored_send(send_msg: Callable[..., Any]) -> str | None:
    """A ``sock.send(...)`` call in ``send_msg`` whose result is thrown away, as written."""
    tree = syntax_of(send_msg)
    if tree is None:
        return None
    node, source = tree
    for each in ast.walk(node):
        if (
            isinstance(each, ast.Expr)
            and isinstance(each.value, ast.Call)
            and isinstance(each.value.func, ast.Attribute)
            and each.value.func.attr == "send"
        ):
            return ast.get_source_segment(source, each.value) or "sock.send(…)"
    return None


@explained_in("02_exchange", N_("2 · Exercise: frames on a stream"))
def check_framing(
    send_msg: Callable[[socket.socket, bytes], None],
    recv_msg: Callable[[socket.socket], bytes],
    max_message: int = 1 << 20,
) -> None:
    """``send_msg``/``recv_msg`` must keep message boundaries on a real TCP connection."""
    ignored = _ignored_send(send_msg)
    if ignored is not None:
        raise fail(FRAMING["send ignored"], call=ignored)
    with tcp_connection() as pair:
        _wait_past_the_verdict(pair)
        _check_wire_format(send_msg, pair)
        _check_payloads(send_msg, recv_msg, pair)
        _check_dribbled(recv_msg, pair)
        _check_glued(recv_msg, pair)
        _check_size_limit(recv_msg, pair, max_message)
    with tcp_connection() as pair:
        _wait_past_the_verdict(pair)
        _check_cut_connection(recv_msg, pair)
    with tcp_connection() as pair:
        _wait_past_the_verdict(pair)
        _check_largest_allowed(recv_msg, pair, max_message)
    passed(FRAMING["passed"])


@check_framing.hidden
def hidden_framing(
    send_msg: Callable[[socket.socket, bytes], None], recv_msg: Callable[[socket.socket], bytes]
) -> None:
    """Payloads that look like headers, several messages in a row, over TCP."""
    with tcp_connection() as (left, right):
        payloads = [b"\x00\x00\x00\x05 looks like a header", b"\x00" * 4]
        for payload in payloads:
            returned_within(send_msg, left, payload, timeout=HIDDEN_WAIT)
        left.sendall(HEADER.pack(3) + b"abc")
        for want in (*payloads, b"abc"):
            expect(returned_within(recv_msg, right, timeout=HIDDEN_WAIT) == want)


# --- the course's exchange over TCP ------------------------------------------------------

DH_CLIENT = Messages({
    "secret sent": N_(
        "The shared secret was sent on the wire (course mistake 3): the bytes your "
        "client sent contain K. Eve reads everything on the wire; each side computes K, "
        "nobody sends it (notebook 01, section «1 · The idea in small numbers»). Send "
        "only A."
    ),
    "whole": N_("the server's hello arrived whole"),
    "split": N_("the server's hello arrived one byte per TCP segment"),
    "glued": N_("the server's hello and a second message arrived in one TCP segment"),
    "stuck": N_(
        "dh_client did not return within {wait:.0f} s when {what}. It is waiting for bytes "
        "that never come: {recv_as_message}? Read exactly 4 header bytes, then `length`."
    ),
    "pickle": N_(
        "dh_client sent a pickle (course mistake 7): the receiver would run pickle.loads on "
        "bytes from the network, which lets the sender run any code on its machine. Send "
        'JSON: write_frame(sock, json.dumps({{"A": A}}).encode()).'
    ),
    "no length": N_(
        "dh_client sent JSON with no length in front: the server cannot know where your "
        "message ends (course mistake 6). Send it as a frame: write_frame(sock, data)."
    ),
    "misread": N_(
        "When {what}, dh_client raised {error}. The server's hello was fair; "
        "it looks like {recv_as_message}: read the frame with read_frame(sock) (or "
        "your recv_msg), which returns exactly one message however it arrives."
    ),
    "raised": N_("When {what}, dh_client raised {error} on a fair server."),
    "refused fair": N_(
        "When {what}, dh_client raised {error} on a fair server: p is a {bits}-bit safe "
        "prime (min_bits = {bits}), and g and B lie in the subgroup of order q. One of "
        "your checks refuses a group it must accept."
    ),
    "min_bits off by one": N_(
        "When {what}, in a {bits}-bit group with min_bits = {bits}, dh_client raised "
        "{error}, and with min_bits = {less} it accepted the same group: a p of exactly "
        "min_bits bits is long enough. Refuse only p.bit_length() < min_bits."
    ),
    "not an int": N_(
        "dh_client returned {kind} {shown}: return K itself, the int B^a mod p."
    ),
    "waited after A": N_(
        "dh_client sent its A and then kept waiting for {wait:.0f} s when {what}: the "
        "server sends nothing after its hello. Return K once A is sent."
    ),
    "sent nothing": N_(
        "dh_client returned without sending anything: the server is still waiting for "
        'your public value. Send {{"A": A}} as JSON in one frame (write_frame).'
    ),
    "min_bits ignored": N_(
        "When {what}, in a {bits}-bit group with min_bits = {bits}, dh_client raised "
        "{error}, and its code never reads min_bits: a limit written into the code "
        "(2048?) refuses this fair group. Compare p.bit_length() with the min_bits it is "
        "given: the caller decides how small a group it accepts."
    ),
    "small a": N_(
        "Your client's A is g^a mod p for an a below {limit}: whoever tries every a up to "
        "there finds yours in a moment and computes K (course mistake 2). Draw a with "
        "group.random_exponent(secrets.randbelow), never from a small range."
    ),
    "random a": N_(
        "With random.seed set to the same number, two runs of your client sent the same A, "
        "and another seed gave another A: your secret a comes from the `random` module "
        "(course mistake 2). Its numbers are predictable: anyone who sees a few of them, "
        "or guesses the seed, computes the rest. Draw a with `secrets`."
    ),
    "constant a": N_(
        "Your client sent the same A on every run: its secret a is a constant (or drawn "
        "once, outside dh_client), so whoever learns it once reads every conversation "
        "(course mistake 2). Draw a fresh a with `secrets` in every call."
    ),
    "unreadable": N_(
        "The server could not read your public value: send one frame holding "
        '{{"A": A}} as JSON, with A = g^a mod p (an int between 2 and p-2).'
    ),
    "other K": N_(
        "dh_client returned {got!r:.60}, but the server computed another K from your A: "
        "both sides must get the same number.{hint} Use the same secret a for A = g^a mod p "
        "and for K = B^a mod p."
    ),
    "returned A": N_(" It returned its own public value A: K = B^a mod p."),
    "composite": N_(
        "p is not prime: p = {p} = {low} × {high}, and with a "
        "composite p the discrete logarithm is easy. Check "
        "groups.is_probable_prime(p) (course mistake 1: p = 123456, 54, 42)."
    ),
    "not safe": N_(
        "p is prime but not a safe prime: (p-1)/2 = {q} is not prime, "
        "so g may generate a small subgroup. Check that q = (p-1)/2 is prime too."
    ),
    "toy": N_(
        "p = 23 is a toy group (5 bits), far below min_bits: refuse groups with "
        "p.bit_length() < min_bits (course mistake 1: p = 7, 23, 151)."
    ),
    "g outside": N_(
        "g = {g} is not in the subgroup of prime order q = (p-1)/2 (g^q mod p = p-1, not 1), "
        "while B is: only a check of g itself refuses this server. With such a g, "
        "A = g^a tells anyone whether your secret a is even (g never checked: course "
        "mistake 1). Check g like a public value: groups.validate_public(group, g)."
    ),
    "B = 1": N_(
        "B = 1 makes K = 1 whatever your secret: validate the server's B with "
        "groups.validate_public(group, B) before using it."
    ),
    "B outside": N_(
        "This B is not in the subgroup of prime order q = (p-1)/2 (B^q mod p = p-1), while "
        "g is: K = B^a then tells the server whether your secret a is even. Comparing B "
        "with 0, 1 and p-1 is not enough: B must pass every test of "
        "groups.validate_public(group, B)."
    ),
    "B too large": N_(
        "This B is larger than p: a public value lies between 2 and p-2. Above p, a "
        "forbidden value (1, p-1) comes back under another name, and a check of 0, 1 "
        "and p-1 lets it through: B must pass every test of groups.validate_public(group, B)."
    ),
    "4 GB": N_(
        "The server announced a message of 4 GB: check the length against a limit before "
        "reading (read_frame does), or four bytes from anyone make you allocate 4 GB."
    ),
    "hostile": N_(
        "A hostile server: your client {done}; it must refuse (raise ValueError) before "
        "sending anything.\n{why}"
    ),
    "kept waiting": N_("kept waiting"),
    "answered": N_("answered with its public value"),
    "passed": N_(
        "dh_client agrees on K with the server whatever the TCP segments, never sends K, "
        "draws a secret nobody can guess, and refuses a composite p, an unsafe p, a toy p, a "
        "g outside the subgroup, B = 1, a B outside the subgroup, a B above p and a 4 GB "
        "length."
    ),
})


def _dh_case_failed(outcome: DhOutcome, what: str) -> Exception:
    """The failure for a run of the fair server that did not give the same K on both sides."""
    if outcome.status == "stuck" and outcome.A is not None:
        return fail(DH_CLIENT["waited after A"], wait=WAIT, what=what)
    if outcome.status == "stuck":
        return fail(DH_CLIENT["stuck"], wait=WAIT, what=what, recv_as_message=_(RECV_AS_MESSAGE))
    sent = outcome.sent
    if sent.startswith(b"\x80") or sent[4:5] == b"\x80":
        return fail(DH_CLIENT["pickle"])
    if sent[:1] == b"{":
        return fail(DH_CLIENT["no length"])
    if outcome.status == "error":
        exc = outcome.value
        if isinstance(exc, ValueError | KeyError | IndexError | UnicodeDecodeError):
            return fail(
                DH_CLIENT["misread"],
                what=what,
                error=refused_as(exc),
                recv_as_message=_(RECV_AS_MESSAGE),
            )
        return fail(DH_CLIENT["raised"], what=what, error=refused_as(exc))
    if not sent:
        return fail(DH_CLIENT["sent nothing"])
    if outcome.problems or outcome.A is None:
        return fail(DH_CLIENT["unreadable"])
    if not isinstance(outcome.value, int) or isinstance(outcome.value, bool):
        return fail(
            DH_CLIENT["not an int"],
            kind=type(outcome.value).__name__,
            shown=cut_repr(outcome.value, 40),
        )
    hint = DH_CLIENT["returned A"] if outcome.value == outcome.A else ""
    return fail(DH_CLIENT["other K"], got=outcome.value, hint=hint)


def _ignores_min_bits(dh_client: Callable[..., int]) -> bool:
    """Does the code of ``dh_client`` never read its ``min_bits`` (only names it in its
    ``def`` line)? Asked of a client that refused a fair group of ``min_bits`` bits.

    Its source, not a run, decides: a run in a group large enough for a limit written
    into the code (2048 bits) costs two primality tests of a 2048-bit number, seconds
    each on a loaded machine.
    """
    code = code_of(dh_client)
    body = code.split(":\n", 1)[1] if ":\n" in code else ""
    return bool(code) and "min_bits" not in body


def _refused_fairly(outcome: DhOutcome) -> bool:
    """Did the client refuse the fair hello with ValueError before sending anything?"""
    return (
        outcome.status == "error"
        and isinstance(outcome.value, ValueError | LabCryptoError)
        and not outcome.sent
    )


def _fair_group_refused(
    dh_client: Callable[..., int], group: Group, outcome: DhOutcome, what: str
) -> Exception:
    """The failure for a client that refused the fair hello when it arrived whole (so
    not a framing mistake): a ``<=`` on min_bits when one bit less lets it through."""
    error = refused_as(outcome.value)
    again = run_dh_server(dh_client, group, min_bits=group.bits - 1)
    if again.status == "ok" and again.A is not None:
        return fail(
            DH_CLIENT["min_bits off by one"],
            what=what,
            bits=group.bits,
            less=group.bits - 1,
            error=error,
        )
    return fail(DH_CLIENT["refused fair"], what=what, error=error, bits=group.bits)


def _check_fair_servers(dh_client: Callable[..., int], group: Group) -> list[int]:
    """The fair server, its hello whole, cut into single bytes, glued to a second message:
    the client's three public values A (the runs as ``FAIR_SEEDS`` seed ``random``)."""
    fair: list[tuple[str, dict[str, Any]]] = [
        (DH_CLIENT["whole"], {}),
        (DH_CLIENT["split"], {"split": True}),
        (DH_CLIENT["glued"], {"glued": True}),
    ]
    publics: list[int] = []
    for (what, how), seed in zip(fair, FAIR_SEEDS, strict=True):
        with seeded_random(seed):
            outcome = run_dh_server(dh_client, group, **how)
        if outcome.status == "error" and isinstance(outcome.value, NotImplementedError):
            raise not_written("dh_client")
        if outcome.secret_on_wire:
            raise fail(DH_CLIENT["secret sent"])
        if (
            not how
            and outcome.status == "error"
            and isinstance(outcome.value, ValueError | LabCryptoError)
            and not outcome.sent
            and _ignores_min_bits(dh_client)
        ):
            raise fail(
                DH_CLIENT["min_bits ignored"],
                what=what,
                bits=group.bits,
                error=refused_as(outcome.value),
            )
        if not how and _refused_fairly(outcome):
            raise _fair_group_refused(dh_client, group, outcome, what)
        if outcome.status != "ok" or outcome.A is None or outcome.value != outcome.shared:
            raise _dh_case_failed(outcome, what)
        publics.append(outcome.A)
    return publics


def _secret_problem(group: Group, publics: list[int]) -> str | None:
    """Why the client's secret is not secret (course mistake 2), from its three A's: the
    first two from runs with ``random`` seeded alike, the third with another seed.

    ``secrets`` draws from the operating system, which no seed touches: two of its
    draws from [2, q) coincide with a chance of about 2^-62. Each wrong answer is
    caught on every run: a small a by its size, ``random`` by the seed, a constant by
    all three A's alike.
    """
    if has_small_exponent(group, set(publics)):
        return DH_CLIENT["small a"].format(limit=SMALL_EXPONENT)
    if publics[0] != publics[1]:
        return None
    return DH_CLIENT["constant a"] if publics[2] == publics[0] else DH_CLIENT["random a"]


def _hostile_servers(group: Group) -> list[tuple[dict[str, Any], str]]:
    """(what the server sends instead of the fair values, why the client must refuse it).

    The same cases on every run, and each one is refused by one check only: the
    unsafe p is a prime with 2 a square mod p (g = 2 and B pass their checks),
    the hostile g lies outside the subgroup while B is a square (the B check
    passes), B = 1 comes with a fair p and g, the B outside the subgroup is
    in range (only the subgroup test refuses it), the B above p is g^2 + p (in
    the subgroup, and not 0, 1 or p-1 even mod p: only the range test refuses it).
    """
    (product, (low, high)), not_safe = composite(64), prime_not_safe(64)
    bad_g = outside_subgroup(group)
    return [
        ({"p": product, "g": 2}, DH_CLIENT["composite"].format(p=product, low=low, high=high)),
        ({"p": not_safe, "g": 2}, DH_CLIENT["not safe"].format(q=(not_safe - 1) // 2)),
        ({"p": 23, "g": 2}, DH_CLIENT["toy"]),
        ({"g": bad_g}, DH_CLIENT["g outside"].format(g=bad_g)),
        ({"B": 1}, DH_CLIENT["B = 1"]),
        ({"B": outside_subgroup(group)}, DH_CLIENT["B outside"]),
        ({"B": group.p + pow(group.g, 2, group.p)}, DH_CLIENT["B too large"]),
        ({"header": HEADER.pack(0xFFFF_FFF0)}, DH_CLIENT["4 GB"]),
    ]


def _check_hostile_server(
    dh_client: Callable[..., int], group: Group, how: dict[str, Any], why: str
) -> None:
    outcome = run_dh_server(dh_client, group, **how)
    refused = outcome.status == "error" and isinstance(
        outcome.value, ValueError | LabCryptoError | ConnectionError
    )
    if refused and not outcome.sent:
        return
    if outcome.sent and outcome.status != "stuck":
        done = DH_CLIENT["answered"]
    else:
        done = how_it_ended(outcome.status, outcome.value, 40, stuck=DH_CLIENT["kept waiting"])
    raise fail(DH_CLIENT["hostile"], done=done, why=why)


@explained_in("02_exchange", N_("Exercise: the course's exchange over TCP, done right"))
def check_dh_client(dh_client: Callable[..., int]) -> None:
    """``dh_client(sock, min_bits)``: the client's half of the course's exchange, done right.

    The check is the server, over TCP on 127.0.0.1: first fair (the hello whole,
    cut into single-byte segments, glued to a second message), then hostile
    (p not prime, p not safe, p too small, g outside the subgroup, B = 1, B outside
    the subgroup, B above p, a 4 GB length), every case on every run. The fair runs
    seed ``random`` (``FAIR_SEEDS``): a secret from ``random``, a constant or a small
    one is caught on every run.
    """
    refuse_whole_power(dh_client)
    group = small_safe_prime_group(64, seed=DH_CLIENT_SEED)
    secret_problem = _secret_problem(group, _check_fair_servers(dh_client, group))
    if secret_problem:
        raise fail(secret_problem)
    for how, why in _hostile_servers(group):
        _check_hostile_server(dh_client, group, how, why)
    passed(DH_CLIENT["passed"])


@check_dh_client.hidden
def hidden_dh_client(dh_client: Callable[..., int]) -> None:
    """The client against a fair server in another group, then every hostile server,
    each in a connection of its own: a client that skips one check loses the points
    on every run."""
    group = small_safe_prime_group(64, seed=7)
    publics = []
    for seed in FAIR_SEEDS:
        with seeded_random(seed):
            outcome = run_dh_server(dh_client, group)
        expect(outcome.status == "ok" and outcome.value == outcome.shared)
        expect(outcome.A is not None and not outcome.secret_on_wire)
        publics.append(outcome.A or 0)
    expect(_secret_problem(group, publics) is None)
    for how, _why in _hostile_servers(group):
        bad = run_dh_server(dh_client, group, **how)
        expect(bad.status == "error" and not bad.sent)
