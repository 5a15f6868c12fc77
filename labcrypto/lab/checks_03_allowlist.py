"""The checks of notebook 03_allowlist: the server's half of the exchange, the allowlist, newcomers.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``, run against
the notebook's own allowlist and chat room). ``check_dh_server`` is the
client of the student's server over TCP on 127.0.0.1, fair and then hostile
(one case per connection, every case on every run);
``check_join_as_new_student`` runs the student's code against a real chat
server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import pickle
import re
import secrets
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..allowlist import Allowlist
from ..channel import FrameReader, SecureChannel, encode_frame, read_frame, write_frame
from ..chat import ChatServer
from ..errors import (
    AllowlistError,
    ChannelClosed,
    HandshakeError,
    KeyNotAllowed,
    LabCryptoError,
    in_english,
)
from ..groups import FFDHE2048, Group, small_safe_prime_group, validate_public
from ..handshake import ClientHandshake, decode_message, encode_message
from ..i18n import N_, Messages, gettext
from ..keys import KeyPair, PublicKey, generate, load
from ..known_servers import KnownServers
from ..streams import set_timeout
from ..untrusted import quote
from .feedback import (
    HIDDEN_WAIT,
    JOIN_WAIT,
    PURE_WAIT,
    RECV_AS_MESSAGE,
    WAIT,
    CheckFailed,
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
)
from .harness import (
    FAIR_SEEDS,
    HEADER,
    POLL,
    SMALL_EXPONENT,
    Outcome,
    call_bounded,
    dribble,
    frame_json,
    has_small_exponent,
    read_sent,
    returned_within,
    run_bounded,
    seeded_random,
    tcp_connection,
)

__all__ = [
    "check_dh_server",
    "check_is_allowed",
    "check_join_as_new_student",
    "check_serve_one",
    "hidden_dh_server",
    "hidden_is_allowed",
    "hidden_join",
    "hidden_serve_one",
]

# --- the server's half of the exchange ---------------------------------------------

DH_SERVER = Messages(
    {
        "no hello": N_(
            "Your server sent no hello within {wait:.0f} s of a client connecting: the "
            "server speaks first, with one JSON frame holding p, g and B; then it reads "
            "the client's frame."
        ),
        "crashed": N_(
            "Your server raised {error} before it sent its hello, so the client got "
            "nothing to read.{hint}"
        ),
        "name hint": N_(
            " Python does not know a name your code uses here: a typo, or an import the "
            "cell no longer has (the template's cell starts with the imports it needs)."
        ),
        "bad hello": N_(
            "The client could not read your server's hello ({error}): send one frame "
            "(write_frame) holding JSON with the integers p, g and B."
        ),
        "other group": N_(
            "Your hello does not offer the group dh_server was given: send its p and g "
            "(group.p, group.g), not numbers of your own."
        ),
        "bad B": N_(
            "Your hello's B is not a valid public value of the group: B = g^b mod p, with "
            "b drawn by group.random_exponent(secrets.randbelow)."
        ),
        "random b": N_(
            "With random.seed set to the same number, two connections got the same B, and "
            "another seed gave another B: your secret b comes from the `random` module "
            "(course mistake 2). Its numbers are predictable: anyone who sees a few of them, "
            "or guesses the seed, computes the rest. Draw b with `secrets`."
        ),
        "same b": N_(
            "Two connections got the same B: your server uses one secret b for every "
            "client, so whoever learns it once reads every conversation. Draw a fresh b "
            "for every connection with secrets."
        ),
        "small b": N_(
            "Your hello's B is g^b mod p for a b below {limit}: whoever tries every b up to "
            "there finds yours in a moment, and reads the conversation (course mistake 2). "
            "Draw b with group.random_exponent(secrets.randbelow), never from a small range."
        ),
        "secret sent": N_(
            "The shared secret was sent on the wire (course mistake 3): the bytes your "
            "server sent contain K. Each side computes K; nobody sends it."
        ),
        "fair stuck": N_(
            "With a fair client ({what}), dh_server did not return within {wait:.0f} s: it "
            "is waiting for bytes that never come.{hint}"
        ),
        "fair raised": N_("With a fair client ({what}), dh_server raised {error}.{hint}"),
        "fair pickle": N_(
            "With a fair client, dh_server raised {error}: your server reads the client's "
            "message with pickle (course mistake 7). Unpickling bytes from the network lets "
            "the sender run any code on your server: the client sends JSON, read it with "
            "json.loads."
        ),
        "fair hint": N_(
            " It looks like {recv_as_message}: read the client's frame with "
            "read_frame(sock), which returns exactly one message however it arrives."
        ),
        "other K": N_(
            "With a fair client, dh_server {outcome}, but the client computed another K: "
            "both sides must get the same number. Use the b of your B for K = A^b mod p."
        ),
        "not an int": N_(
            "With a fair client, dh_server returned {kind} {shown}: return K itself, the "
            "int A^b mod p."
        ),
        "whole": N_("its frame in one piece"),
        "split": N_("its frame one byte per TCP segment"),
        "glued": N_("its frame glued to a second message in one segment"),
        "hostile": N_(
            "A hostile client {what}, and your server {done}. It must refuse (raise "
            "ValueError, or let read_frame's error through) and never return a K.\n{why}"
        ),
        "returned K": N_("returned a K"),
        "raised instead": N_("raised {error} instead of ValueError"),
        "kept waiting": N_("kept waiting"),
        "A = 0": N_("sent A = 0"),
        "A = 1": N_("sent A = 1"),
        "A = p-1": N_("sent A = p-1"),
        "A = p+1": N_("sent A = p+1"),
        "A outside": N_("sent an A outside g's subgroup"),
        "pickle": N_("sent its A as a pickle"),
        "garbage": N_("sent a frame of bytes that are not JSON"),
        "closed": N_("closed the connection without sending A"),
        "no A": N_("sent a JSON object without A"),
        "A string": N_("sent A as a string of digits"),
        "A float": N_("sent A as a float"),
        "A bool": N_("sent A as true"),
        "4 GB": N_("announced a message of 4 GB"),
        "why 0": N_(
            "A = 0 makes K = 0 whatever your b: anyone can send it and know K. Validate the "
            "client's A before using it (course mistake 1)."
        ),
        "why 1": N_("A = 1 makes K = 1 whatever your b: anyone can send it and know K."),
        "why p-1": N_(
            "A = p-1 has order 2: K is 1 or p-1, and the client learns whether your b is "
            "even. p-1 is in range but still forbidden."
        ),
        "why p+1": N_(
            "p+1 is 1 in disguise: (p+1)^b mod p = 1. A public value must lie between 2 and "
            "p-2; comparing A with 0, 1 and p-1 is not enough without the range."
        ),
        "why outside": N_(
            "This A is not in the subgroup that g generates (A^q mod p ≠ 1, q = (p-1)/2): K "
            "= A^b then tells the client whether your b is even. Check that A^q mod p == 1."
        ),
        "why pickle": N_(
            "Your server unpickled bytes from the network (course mistake 7): a pickle can "
            "make its reader run any code the sender chose. Read JSON only."
        ),
        "why garbage": N_(
            "Bytes from the network are not always what the protocol says: refuse a frame "
            "that is not JSON holding an integer A, with an error."
        ),
        "why no A": N_(
            "A frame without A is one the protocol does not allow: refuse it with "
            "ValueError, as the task asks, not with whatever error a lookup happens to raise."
        ),
        "why not int": N_(
            "JSON has strings, floats and booleans as well as integers, and A must be an "
            "integer: converting what came (int(...)) trusts whatever the client sent, and "
            "arithmetic on a string fails by accident, not as a refusal. Refuse any A that "
            "is not an integer with ValueError, before using it (true is not a number here "
            "either)."
        ),
        "why closed": N_(
            "recv() returning b'' means the connection is closed: raise ConnectionError "
            "(read_frame does), do not loop or go on without A."
        ),
        "why 4 GB": N_(
            "Check the length against a limit before reading (read_frame does): otherwise "
            "four bytes from anyone make your server wait for, or allocate, 4 GB."
        ),
        "passed": N_(
            "dh_server agrees on K with fair clients whatever the TCP segments, draws a new "
            "b for each, never sends K, and refuses A = 0, 1, p-1, p+1, an A outside the "
            "subgroup, a missing A, an A that is not an integer, a pickle, bytes that are not "
            "JSON, a 4 GB length and a client that hangs up."
        ),
    }
)


#: The seed of the group of ``check_dh_server``: the same group on every run, and one whose
#: g is 3, not 2 (a hello that sends g = 2 whatever the group fails every run, not half).
DH_SERVER_SEED = 5


@dataclass
class _ServerRun:
    """One connection of the student's server with the check's client."""

    status: str = "stuck"  #: "ok", "error" or "stuck" (the server's function)
    value: Any = None  #: what dh_server returned or raised
    hello: dict[str, Any] | None = None  #: the server's hello, as the client read it
    hello_error: str = ""  #: why the client could not read it ("" if it could)
    client_k: int | None = None  #: the K the fair client computed
    sent: bytes = b""  #: every byte the server sent


def _non_residue(group: Group) -> int:
    """The smallest value outside g's subgroup (x^q mod p = p-1)."""
    x = 2
    while pow(x, group.q, group.p) == 1:
        x += 1
    return x


def _read_hello(sock: socket.socket, run: _ServerRun) -> dict[str, Any] | None:
    try:
        hello = json.loads(read_frame(sock, max_size=1 << 16))
        if not isinstance(hello, dict) or not all(
            isinstance(hello.get(name), int) for name in ("p", "g", "B")
        ):
            raise ValueError("no integers p, g and B")
    except TimeoutError:
        return None
    except (ValueError, LabCryptoError, ConnectionError) as exc:
        run.hello_error = refused_as(exc)
        return None
    run.hello = hello
    return hello


def _play_client(
    sock: socket.socket, run: _ServerRun, how: str, group: Group, server_sock: socket.socket
) -> threading.Thread | None:
    """The check's client: read the hello, then answer fairly or as ``how`` says.

    Its frame cut into single bytes is still on its way when this returns: the thread
    sending it is returned (None for the other cases).
    """
    hello = _read_hello(sock, run)
    if hello is None:
        return None
    p, g, big_b = hello["p"], hello["g"], hello["B"]
    a = group.random_exponent(secrets.randbelow)
    public = pow(g, a, p)
    answers: dict[str, bytes] = {
        "A = 0": frame_json({"A": 0}),
        "A = 1": frame_json({"A": 1}),
        "A = p-1": frame_json({"A": p - 1}),
        "A = p+1": frame_json({"A": p + 1}),
        "A outside": frame_json({"A": _non_residue(group)}),
        "pickle": HEADER.pack(len(pickle.dumps({"A": public}))) + pickle.dumps({"A": public}),
        "garbage": HEADER.pack(12) + b"\xff\xfenot JSON!!",
        "no A": frame_json({"a": public}),
        "A string": frame_json({"A": str(public)}),
        # A small square of g: exactly a float, and a fair A once int() has turned it back.
        "A float": frame_json({"A": float(pow(g, 2, p))}),
        "A bool": frame_json({"A": True}),
        "4 GB": HEADER.pack(0xFFFF_FFF0),
    }
    if how == "closed":
        sock.shutdown(socket.SHUT_WR)
        return None
    if how in answers:
        sock.sendall(answers[how])
        return None
    run.client_k = pow(big_b, a, p)
    data = frame_json({"A": public})
    if how == "split":  # each byte once the server has read the one before
        return dribble(sock, data, reader=server_sock, timeout=3 * WAIT)
    if how == "glued":
        sock.sendall(data + frame_json({"type": "say", "text": "hello"}))
    else:
        sock.sendall(data)
    return None


def _run_server(dh_server: Callable[..., int], group: Group, how: str) -> _ServerRun:
    """One connection: the student's server in a bounded thread, the check's client here."""
    run = _ServerRun()
    with tcp_connection() as (server_sock, client_sock):
        # The server's socket waits longer than the check: a server reading bytes that
        # never come is "stuck" at WAIT on every run, never a timeout error racing it.
        set_timeout(server_sock, 3 * WAIT)
        done = threading.Event()
        ended: list[Outcome] = []  # the server's one outcome, once it has one

        def serve() -> None:
            # Bounded: a loop that spins on b'' is stopped at 3 * WAIT, not left running.
            ended.append(run_bounded(dh_server, server_sock, group, timeout=3 * WAIT))
            done.set()

        threading.Thread(target=serve, name="exercise-check", daemon=True).start()
        sender = _play_client(client_sock, run, how, group, server_sock)
        # The server's WAIT starts once it has the client's whole frame (the sender ends
        # by itself within 3 * WAIT if the server stops reading).
        while sender is not None and sender.is_alive() and not done.wait(POLL):
            pass
        # The verdict is taken now, once: a server still running when its time is up is
        # "stuck", even if it ends a moment later (when the check closes its socket, or
        # while the check reads what it sent). With no hello at all, the verdict is "no
        # hello" whatever the server does next: it gets no second WAIT.
        got_hello = run.hello is not None or bool(run.hello_error)
        finished = done.wait(WAIT if got_hello else 0)
        run.sent = read_sent(client_sock, server_sock)  # every byte, however late
        if finished:
            run.status, run.value = ended[0]
    return run


def _hello_problem(run: _ServerRun, group: Group) -> CheckFailed | None:
    if run.status == "error" and isinstance(run.value, NotImplementedError):
        return not_written("dh_server")
    if run.hello is None and not run.hello_error and run.status == "error":
        hint = DH_SERVER["name hint"] if isinstance(run.value, NameError) else ""
        return fail(DH_SERVER["crashed"], error=refused_as(run.value), hint=hint)
    if run.hello is None and not run.hello_error:
        return fail(DH_SERVER["no hello"], wait=WAIT)
    if run.hello is None:
        return fail(DH_SERVER["bad hello"], error=run.hello_error)
    if (run.hello["p"], run.hello["g"]) != (group.p, group.g):
        return fail(DH_SERVER["other group"])
    big_b = run.hello["B"]
    if not 2 <= big_b <= group.p - 2 or pow(big_b, group.q, group.p) != 1:
        return fail(DH_SERVER["bad B"])
    return None


def _check_fair_clients(dh_server: Callable[..., int], group: Group) -> None:
    seen_b: list[int] = []
    for how, seed in zip(("whole", "split", "glued"), FAIR_SEEDS, strict=True):
        with seeded_random(seed):
            run = _run_server(dh_server, group, how)
        problem = _hello_problem(run, group)
        if problem is not None:
            raise problem
        assert run.hello is not None
        if run.client_k is not None and str(run.client_k).encode() in run.sent:
            raise fail(DH_SERVER["secret sent"])
        hint = "" if how == "whole" else DH_SERVER["fair hint"]
        hint = hint.format(recv_as_message=gettext(RECV_AS_MESSAGE))
        what = DH_SERVER[how]
        if run.status == "stuck":
            raise fail(DH_SERVER["fair stuck"], what=what, wait=WAIT, hint=hint)
        if run.status == "error" and isinstance(run.value, pickle.UnpicklingError):
            raise fail(DH_SERVER["fair pickle"], error=refused_as(run.value))
        if run.status == "error":
            raise fail(DH_SERVER["fair raised"], what=what, error=refused_as(run.value), hint=hint)
        if not isinstance(run.value, int) or isinstance(run.value, bool):
            kind = type(run.value).__name__
            raise fail(DH_SERVER["not an int"], kind=kind, shown=cut_repr(run.value, 40))
        if run.value != run.client_k:
            raise fail(DH_SERVER["other K"], outcome=how_it_ended("ok", run.value, 40))
        seen_b.append(run.hello["B"])
    secret_problem = _b_problem(group, seen_b)
    if secret_problem is not None:
        raise fail(secret_problem, limit=SMALL_EXPONENT)


def _b_problem(group: Group, seen_b: list[int]) -> str | None:
    """Why the server's secret b is not secret (course mistake 2), from its three B's: the
    first two from runs with ``random`` seeded alike, the third with another seed.

    A b from a small range is refused by its size first (three draws from it may or may
    not repeat, and a verdict that hangs on that would change from run to run); then
    ``random`` by the seeds, a constant by all three alike. ``secrets`` ignores seeds:
    two of its draws coincide with a chance of about 2^-62.
    """
    if has_small_exponent(group, set(seen_b)):
        return DH_SERVER["small b"]
    if seen_b[0] == seen_b[1] != seen_b[2]:
        return DH_SERVER["random b"]
    if len(set(seen_b)) < len(seen_b):
        return DH_SERVER["same b"]
    return None


_HOSTILE_CLIENTS = [
    ("A = 0", "why 0"),
    ("A = 1", "why 1"),
    ("A = p-1", "why p-1"),
    ("A = p+1", "why p+1"),
    ("A outside", "why outside"),
    ("pickle", "why pickle"),
    ("garbage", "why garbage"),
    ("A string", "why not int"),
    ("A float", "why not int"),
    ("A bool", "why not int"),
    ("no A", "why no A"),
    ("4 GB", "why 4 GB"),
    ("closed", "why closed"),
]


#: The hostile frames the task says to refuse with ValueError: a valid frame of JSON
#: without an integer A. (The others may end in any error: read_frame's, say.)
_REFUSED_WITH_VALUE_ERROR = {"no A", "A string", "A float", "A bool"}


def _refused(run: _ServerRun, how: str) -> bool:
    """Did the server refuse the hostile frame ``how`` as the task asks?"""
    if run.status != "error":
        return False
    if how in _REFUSED_WITH_VALUE_ERROR:
        return isinstance(run.value, ValueError | LabCryptoError)
    # Not a MemoryError: whether allocating 4 GB fails at once depends on the
    # machine (its memory, its overcommit policy), and a verdict must not.
    return not isinstance(run.value, MemoryError)


def _check_hostile_client(dh_server: Callable[..., int], group: Group, how: str, why: str) -> None:
    run = _run_server(dh_server, group, how)
    if _refused(run, how):
        return
    if run.status == "error" and how in _REFUSED_WITH_VALUE_ERROR:
        done = DH_SERVER["raised instead"].format(error=refused_as(run.value))
    elif run.status == "error":
        done = how_it_ended(run.status, run.value, 40)
    else:
        done = DH_SERVER["returned K"] if run.status == "ok" else DH_SERVER["kept waiting"]
    raise fail(DH_SERVER["hostile"], what=DH_SERVER[how], done=done, why=DH_SERVER[why])


@explained_in("03_allowlist", N_("Exercise: the server's half of the exchange"))
def check_dh_server(dh_server: Callable[..., int]) -> None:
    """``dh_server(sock, group)``: the server's half of the course's exchange, done right.

    The check is the client, over TCP on 127.0.0.1: fair first (its frame whole,
    one byte per segment, glued to a second message), then hostile, one case
    per connection and every case on every run: A = 0, 1, p-1, p+1, an A outside
    the subgroup, a pickle, bytes that are not JSON, a frame without A, A as a
    string, a float and true (each refused with ValueError), a 4 GB length, a
    client that hangs up.
    """
    refuse_whole_power(dh_server)
    group = small_safe_prime_group(64, seed=DH_SERVER_SEED)
    _check_fair_clients(dh_server, group)
    for how, why in _HOSTILE_CLIENTS:
        _check_hostile_client(dh_server, group, how, why)
    passed(DH_SERVER["passed"])


@check_dh_server.hidden
def hidden_dh_server(dh_server: Callable[..., int]) -> None:
    """Another group; three fair clients (a fresh b each, ``random`` seeded as in the
    check), and p-1, p+1 and an A that is not an integer refused."""
    group = small_safe_prime_group(64, seed=11)
    seen_b = []
    for seed in FAIR_SEEDS:
        with seeded_random(seed):
            run = _run_server(dh_server, group, "whole")
        expect(run.status == "ok" and run.value == run.client_k and run.hello is not None)
        seen_b.append(run.hello["B"] if run.hello else 0)
    expect(_b_problem(group, seen_b) is None)
    for how in ("A = p-1", "A = p+1", "A string", "A float"):
        expect(_refused(_run_server(dh_server, group, how), how))


# --- the allowlist check ----------------------------------------------------------

IS_ALLOWED = Messages({
    "raised": N_(
        "is_allowed raised {error} on a file with a header, a comment "
        "line, a blank line and an unreadable row ('eve,not a key at all'). Skip "
        "what cannot be read (try/except around PublicKey.from_text): one bad row "
        "must not lock the whole class out."
    ),
    "not a bool": N_("is_allowed returned {got}; return True or False."),
    "name error": N_(
        "is_allowed raised {error}: Python does not know a name your code uses, a typo or "
        "an import that is missing (import it in the cell that defines is_allowed)."
    ),
    "wrong": N_(
        "is_allowed(path, key) returned {got} for a key where {why}; expected {want}.\n{hint}"
    ),
    "alice": N_("alice's row spells her key in capital hex digits, with extra spaces"),
    "bob": N_("bob's row is quoted, as a spreadsheet writes it (its comment holds a comma)"),
    "carol": N_("carol's row starts with '#': the instructor commented it out (revoked)"),
    "dave": N_("dave's key appears only inside frank's comment, not as a key"),
    "prefix": N_("this key's text is the start of frank's key text, a different key"),
    "frank": N_("frank's key is on the list"),
    "compare keys": N_(
        "Compare keys, not text: PublicKey.from_text(cell) == key. "
        "0x00ab, 0xAB and 171 are the same number, so the same key."
    ),
    "comments": N_(
        "Lines starting with '#' are comments: skip them. A revoked "
        "student whose row was commented out must not get in."
    ),
    "only the key column": N_(
        "A key mentioned somewhere in the file is not on the list: only "
        "the public_key column counts. Searching the file's text for the key "
        "(`key.to_text() in text`) is the bug."
    ),
    "parse each row": N_(
        "Searching for the key's text finds it inside a longer key: "
        "'0x12' is in '0x123'. Parse each row's key and compare with ==."
    ),
    "csv": N_("Read the file with the csv module (csv.reader), which handles quotes."),
    "split": N_(
        "Your code cuts rows with split(','): a comma inside quotes (bob's comment, "
        "\"group A, lab 2\") is not a column separator, so the row falls apart. Read the "
        "file with the csv module (csv.reader), which handles quotes."
    ),
    "cached": N_(
        "After bob's row was deleted from the file, is_allowed still said True: read "
        "the file on every call (or when it changed). A cached list makes revocation "
        "need a server restart."
    ),
    "slow": N_(
        "Reading a CSV file of a few rows takes milliseconds: is there a loop that never "
        "ends (say, a `while` that reads the same line again and again)?"
    ),
    "passed": N_(
        "is_allowed compares keys by value (any spelling), reads only the key column, skips "
        "comments and bad rows, and sees a revocation at once."
    ),
})


def _prefix_pair() -> tuple[PublicKey, PublicKey]:
    """Two valid 2048-bit public keys whose hex texts start alike: ``0xV`` and ``0xVk``."""
    for _ in range(1000):  # about 1 in 2 candidates is a valid value: ends in a few tries
        short = secrets.randbelow(FFDHE2048.p >> 4)
        for digit in range(16):
            try:
                validate_public(FFDHE2048, short)
                validate_public(FFDHE2048, short * 16 + digit)
            except ValueError:
                continue
            return PublicKey(FFDHE2048, short), PublicKey(FFDHE2048, short * 16 + digit)
    raise RuntimeError("could not make two keys with a common prefix")


def _tricky_allowlist() -> tuple[list[str], list[tuple[PublicKey, bool, str, str]]]:
    """The rows of an allowlist full of traps, and the cases: (key, allowed?, why, hint)."""
    alice, bob, carol, dave = (generate(FFDHE2048).public_key for _ in range(4))
    listed, prefix_of_it = _prefix_pair()  # "0xV" is a prefix of "0xVk" as text
    upper = f"0x{alice.value:0{2 * FFDHE2048.byte_length}X}"  # leading zeros, capitals
    rows = [
        "name,public_key,comment",
        f"alice,  labcrypto-dh1   ffdhe2048   {upper}  ,written with capitals",
        f'bob,"{bob.to_text()}","group A, lab 2"',
        "",
        f"# carol,{carol.to_text()},revoked: commented out by the instructor",
        "eve,not a key at all,a row that cannot be read",
        f'frank,{prefix_of_it.to_text()},"dave sent {dave.to_text()} by mail; not added"',
        "",
    ]
    cases = [
        (alice, True, IS_ALLOWED["alice"], IS_ALLOWED["compare keys"]),
        (bob, True, IS_ALLOWED["bob"], IS_ALLOWED["csv"]),
        (carol, False, IS_ALLOWED["carol"], IS_ALLOWED["comments"]),
        (dave, False, IS_ALLOWED["dave"], IS_ALLOWED["only the key column"]),
        (listed, False, IS_ALLOWED["prefix"], IS_ALLOWED["parse each row"]),
        (prefix_of_it, True, IS_ALLOWED["frank"], ""),
    ]
    return rows, cases


def _splits_on_commas(is_allowed: Callable[..., Any]) -> bool:
    """Does the code cut CSV rows by hand, with ``split(",")``?"""
    return re.search(r"\.split\(\s*(['\"]),\1\s*\)", code_of(is_allowed)) is not None


def _ask(
    is_allowed: Callable[[Path, Any], bool], path: Path, key: PublicKey, deadline: float
) -> Any:
    """One bounded call ``is_allowed(path, key)``; what it raised becomes a failure."""
    try:
        return call_bounded(
            is_allowed, path, key,
            what=f"is_allowed({path.name!r}, key)",
            why=IS_ALLOWED["slow"],
            deadline=deadline,
        )  # fmt: skip
    except CheckFailed:
        raise
    except NameError as exc:
        raise fail(IS_ALLOWED["name error"], error=refused_as(exc)) from None
    except Exception as exc:
        failure = fail(IS_ALLOWED["raised"], error=refused_as(exc))
        if _splits_on_commas(is_allowed):
            failure = fail(str(failure) + "\n" + IS_ALLOWED["split"])
        raise failure from None


@explained_in("03_allowlist", N_("6 · Exercise: the allowlist check"))
def check_is_allowed(is_allowed: Callable[[Path, Any], bool]) -> None:
    """``is_allowed(path, key)`` must read the CSV on every call and compare keys by value."""
    rows, cases = _tricky_allowlist()
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "allowlist.csv"
        path.write_text("\n".join(rows), encoding="utf-8")
        deadline = time.monotonic() + PURE_WAIT  # one bound for all the calls
        for key, want, why, hint in cases:
            got = _ask(is_allowed, path, key, deadline)
            if got is want:
                continue
            if got not in (True, False):
                raise fail(IS_ALLOWED["not a bool"], got=cut_repr(got, 60))
            if _splits_on_commas(is_allowed):
                hint = IS_ALLOWED["split"]
            raise fail(IS_ALLOWED["wrong"], got=got, why=why, want=want, hint=hint)
        # Revocation: the file changes, the answer must change with it.
        path.write_text("\n".join(r for r in rows if not r.startswith("bob,")), encoding="utf-8")
        if _ask(is_allowed, path, cases[1][0], deadline) is not False:
            raise fail(IS_ALLOWED["cached"])
    passed(IS_ALLOWED["passed"])


@check_is_allowed.hidden
def hidden_is_allowed(
    is_allowed: Callable[[Path, Any], bool], path: Path, people: dict[str, Any]
) -> None:
    """The notebook's own allowlist: alice on it, carol not."""
    alice, carol = people["alice"].public_key, people["carol"].public_key
    expect(returned_within(is_allowed, path, alice, timeout=HIDDEN_WAIT) is True)
    expect(returned_within(is_allowed, path, carol, timeout=HIDDEN_WAIT) is False)


# --- the check inside the handshake ---------------------------------------------------

SERVE_ONE = Messages(
    {
        "alice": N_("Alice, whose key is on the allowlist"),
        "bob": N_("Bob, whose key is on the allowlist (his first visit)"),
        "stranger": N_("A client whose key is not on the allowlist"),
        "twin": N_("Another client whose key is not on the allowlist"),
        "revoked": N_("Bob, after his row was removed from the allowlist file"),
        "no file": N_("Alice, after the allowlist file was deleted"),
        "liar": N_("A client that claims alice's key without holding her private key"),
        "why stranger": N_(
            "Your server checks the key too late: the check belongs at the client's hello, "
            "where the client's key first arrives, before the server says or computes "
            "anything secret."
        ),
        "why twin": N_(
            "Its key's text is the beginning of a listed key's text, but it is another key. "
            "Compare keys (PublicKey ==), not text: a search of the file's text finds a "
            "key inside a longer one."
        ),
        "why revoked": N_(
            "Read the allowlist file at every connection: a list kept from an earlier "
            "connection (a cache) lets a removed student in until the server restarts."
        ),
        "why no file": N_(
            "No file means nobody is on the list: a server that cannot read its allowlist "
            "must refuse everyone (fail closed), never let everyone in."
        ),
        "served": N_("{who}: your server sent it {count} encrypted message(s): it got in. {why}"),
        "answered": N_(
            "{who}: your server answered its hello with its own hello and proof "
            "(server_hello, server_finished), so it had made session keys with a client it "
            "must refuse. {why}"
        ),
        "computed": N_(
            "{who}: your server sent it only a refusal, but it had already computed a "
            "Diffie-Hellman result with that client's key: the handshake's key schedule "
            "ran for a client the server refuses. Check the key before the handshake goes "
            "past the client's hello."
        ),
        "no refusal": N_(
            "{who}: no refusal reached the client before the connection closed (serve_one "
            "{ended}). Send it the plain error message, ServerHandshake.error_message(exc), "
            "so the client can say why it was dropped. {why}"
        ),
        "other code": N_(
            "{who}: your server refused it with the code {code}, not 'not_allowed', so the "
            "client cannot tell that its key is not on the list. {why}"
        ),
        "returned": N_(
            "{who}: the client was refused, but serve_one then returned {value} as if it had "
            "been served. After the refusal, raise the error again."
        ),
        "swallowed": N_(
            "{who}: the client was refused, but serve_one then returned None instead of "
            "raising the error again: the server that calls it cannot tell a refused "
            "connection from a served one, nor log why it failed (an error swallowed, "
            "course mistake 11). After sending the refusal, raise the error again (`raise`)."
        ),
        "stuck": N_(
            "{who}: serve_one did not end within {wait:.0f} s. It is waiting for bytes that "
            "never come: after a refusal, or a failed handshake, it must end."
        ),
        "refused": N_(
            "{who}: your server refused it (code 'not_allowed'), although its row is in the "
            "file at allowlist_path: the lookup must find a listed key, and compare keys, "
            "not their text."
        ),
        "failed": N_("{who}: your server ended the handshake with the error {code} ({text})."),
        "unfinished": N_(
            "{who}: the handshake did not finish (what your server sent: {sent}), and "
            "serve_one {ended}. Run the handshake until handshake.done, sending every message "
            "that receive() returns."
        ),
        "no welcome": N_(
            "{who}: the handshake finished, but no encrypted message came before serve_one "
            "{ended}. Send 'welcome' through SecureChannel(sock, handshake.session)."
        ),
        "no welcome, stuck": N_(
            "{who}: the handshake finished, but serve_one sent no encrypted message and did "
            "not end: once handshake.done, stop reading and send 'welcome' through "
            "SecureChannel(sock, handshake.session)."
        ),
        "plain welcome": N_(
            "{who}: your server sent 'welcome' as plain bytes, outside the channel: anyone on "
            "the line reads it, and the client cannot open it with the session key. Send it "
            "through SecureChannel(sock, handshake.session)."
        ),
        "other welcome": N_("{who}: the first encrypted message was {text}, not 'welcome'."),
        "after welcome": N_(
            "{who} got in, but then serve_one {ended}: return the SecureChannel you sent the "
            "welcome through, at once."
        ),
        "liar served": N_(
            "{who}: your server sent it {count} encrypted message(s). Its proof "
            "(client_finished) was made up: only the holder of alice's private key can make "
            "the real one. Serve a client only once the handshake is done, after its proof "
            "checked out."
        ),
        "liar returned": N_(
            "{who}: serve_one returned {value} for it. Its proof (client_finished) was made "
            "up, so the handshake must end in an error there, and serve_one must not return "
            "a channel."
        ),
        "nothing": N_("nothing at all"),
        "passed": N_(
            "serve_one checks the key at the client's hello: alice gets in and gets her "
            "welcome; a stranger, a key that only looks like a listed one, a revoked student, "
            "and everyone once the file is gone get a plain refusal and nothing else (no "
            "server hello, no session key, no encrypted byte); and a client that claims "
            "alice's key without her private key fails its proof and is never served."
        ),
    }
)

#: How long the student's server may run on one connection (its socket waits as long): far
#: past the check's own deadlines, so its timeout never races a verdict.
_SERVER_PATIENCE = 5 * WAIT
#: The fields of a client hello that hold its public values (static and ephemeral).
_VALUES = ("static", "ephemeral")
#: What a lying client sends as its proof: it cannot compute the real one.
_MADE_UP_PROOF = encode_message({"type": "client_finished", "confirm": "00" * 32})


@dataclass(frozen=True, repr=False)
class _WatchedKey(KeyPair):
    """The server's key pair, noting every public value it does Diffie-Hellman with.

    A server that refuses a stranger only after the handshake's key schedule
    ran looks right on the wire (one refusal, nothing else); the note shows
    that it computed a shared secret with the stranger's key first.
    """

    met: list[Any] = field(default_factory=list, compare=False)

    def shared_secret(self, peer: PublicKey | int) -> int:
        self.met.append(peer)
        return super().shared_secret(peer)

    def computed_with(self, values: set[int]) -> bool:
        """Did this key do Diffie-Hellman with any of these public values?"""
        met = [peer.value if isinstance(peer, PublicKey) else peer for peer in list(self.met)]
        return any(value in values for value in met)


def _watched(pair: KeyPair) -> _WatchedKey:
    return _WatchedKey(pair.group, pair.private, pair.public)


def _claiming(key: PublicKey) -> KeyPair:
    """A key pair that claims ``key`` with a private number that does not belong to it."""
    return KeyPair(key.group, key.group.random_exponent(secrets.randbelow), key.value)


@dataclass
class _Visit:
    """One client's visit to the student's server, as the client saw it."""

    frames: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  #: (type, message)
    welcome: bytes | None = None  #: the first encrypted message, opened (allowed clients)
    status: str = "stuck"  #: how serve_one ended: "ok", "error" or "stuck"
    value: Any = None  #: what it returned or raised
    offered: set[int] = field(default_factory=set)  #: the client's public values (its hello)
    computed: bool = False  #: did the server compute a DH result with any of them?
    unopened: list[bytes] = field(default_factory=list)  #: frames neither JSON nor sealed

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.frames]

    def encrypted(self) -> int:
        return self.kinds().count("data")

    def error(self) -> dict[str, Any] | None:
        return next((m for kind, m in self.frames if kind == "error"), None)


def _as_handshake_message(payload: bytes) -> dict[str, Any] | None:
    try:
        return decode_message(payload)
    except LabCryptoError:
        return None  # not JSON: an encrypted frame


def _opened(opener: Any, payload: bytes) -> bytes | None:
    """``payload`` decrypted as this client's next message, or None if it does not open."""
    if opener is None:
        return None
    try:
        return bytes(opener.open(payload))
    except LabCryptoError:
        return None


def _play_visitor(sock: socket.socket, visitor: KeyPair, server: PublicKey, visit: _Visit) -> None:
    """The check's client: a real handshake, pinning ``server``, until the server hangs up.

    A visitor that lies about its key cannot check the server's proof, nor
    make its own: it sends a made-up one and reads on. Every frame is noted
    in ``visit``; encrypted ones are opened once this client has session keys.
    """
    handshake = ClientHandshake(visitor, expected_server_key=server)
    reader, opener, lying = FrameReader(), None, False
    deadline = time.monotonic() + 2 * WAIT
    try:
        hello = handshake.start()
        visit.offered = {int(v, 16) for k, v in decode_message(hello).items() if k in _VALUES}
        write_frame(sock, hello)
        while True:
            payload = bytes(reader.read(sock, deadline))
            opened = _opened(opener, payload)
            message = None if opened is not None else _as_handshake_message(payload)
            if message is None:
                visit.frames.append(("data", {}))
                if visit.welcome is None:
                    visit.welcome = opened
                if opened is None:
                    visit.unopened.append(payload[:64])
                continue
            visit.frames.append((message["type"], message))
            if message["type"] == "error" or lying:
                continue
            try:
                replies = handshake.receive(payload)
            except HandshakeError:
                lying = True
                sock.sendall(encode_frame(_MADE_UP_PROOF))
                continue
            for reply in replies:
                write_frame(sock, reply)
            if handshake.session is not None:
                opener = handshake.session.ciphers()[1]
    except (ChannelClosed, TimeoutError, LabCryptoError, OSError):
        return  # the server hung up (or the deadline came): what came is the visit


def _visit(serve_one: Callable[..., Any], server_key: _WatchedKey, path: Path,
           visitor: KeyPair) -> _Visit:  # fmt: skip
    """One connection: the student's server in a bounded thread, the check's client here.

    When ``serve_one`` ends, its side of the connection is shut, as a real
    server closes a connection after its handler: the client then reads to
    the end of what was sent. The verdict is taken once, from that snapshot.
    """
    visit = _Visit()
    server_key.met.clear()
    with tcp_connection() as (server_sock, client_sock):
        set_timeout(server_sock, _SERVER_PATIENCE)
        done = threading.Event()
        ended: list[Outcome] = []

        def serve() -> None:
            outcome = run_bounded(serve_one, server_sock, server_key, path,
                                  timeout=_SERVER_PATIENCE)  # fmt: skip
            ended.append(outcome)
            done.set()
            with contextlib.suppress(OSError):
                server_sock.shutdown(socket.SHUT_WR)

        threading.Thread(target=serve, name="exercise-check", daemon=True).start()
        _play_visitor(client_sock, visitor, server_key.public_key, visit)
        done.wait(WAIT)
        if done.is_set():
            visit.status, visit.value = ended[0]
        visit.computed = server_key.computed_with(visit.offered)
    return visit


def _ended(visit: _Visit) -> str:
    return how_it_ended(visit.status, visit.value)


def _raise_if_not_written(visit: _Visit) -> None:
    if visit.status == "error" and isinstance(visit.value, NotImplementedError):
        raise not_written("serve_one")


def _served_problem(visit: _Visit, who: str) -> CheckFailed | None:
    """What went wrong for a client on the list (None: it got in, as it should)."""
    error = visit.error()
    if error is not None and error.get("code") == "not_allowed":
        return fail(SERVE_ONE["refused"], who=who)
    if error is not None:
        text = quote(error.get("message"), 120)
        return fail(SERVE_ONE["failed"], who=who, code=quote(error.get("code"), 40), text=text)
    if "server_finished" not in visit.kinds():
        sent = ", ".join(visit.kinds()) or SERVE_ONE["nothing"]
        return fail(SERVE_ONE["unfinished"], who=who, sent=sent, ended=_ended(visit))
    if visit.welcome is None and b"welcome" in visit.unopened:
        return fail(SERVE_ONE["plain welcome"], who=who)
    if visit.welcome is None and visit.status == "stuck":
        return fail(SERVE_ONE["no welcome, stuck"], who=who)
    if visit.welcome is None:
        return fail(SERVE_ONE["no welcome"], who=who, ended=_ended(visit))
    if visit.welcome != b"welcome":
        return fail(SERVE_ONE["other welcome"], who=who, text=quote(visit.welcome, 40))
    if visit.status != "ok" or not isinstance(visit.value, SecureChannel):
        return fail(SERVE_ONE["after welcome"], who=who, ended=_ended(visit))
    return None


def _refusal_problem(visit: _Visit, who: str, why: str, why_quiet: str = "") -> CheckFailed | None:
    """What went wrong for a client that must be refused (None: a plain refusal, nothing else).

    ``why`` explains a client that got in or got an answer (the case's point);
    ``why_quiet`` a refusal that was not said (only the missing file explains it).
    """
    if visit.encrypted():
        return fail(SERVE_ONE["served"], who=who, count=visit.encrypted(), why=why)
    if "server_hello" in visit.kinds() or "server_finished" in visit.kinds():
        return fail(SERVE_ONE["answered"], who=who, why=why)
    if visit.computed:
        return fail(SERVE_ONE["computed"], who=who)
    error = visit.error()
    if error is None:
        return fail(SERVE_ONE["no refusal"], who=who, ended=_ended(visit), why=why_quiet)
    if error.get("code") != "not_allowed":
        code = quote(error.get("code"), 40)
        return fail(SERVE_ONE["other code"], who=who, code=code, why=why_quiet)
    if visit.status == "stuck":
        return fail(SERVE_ONE["stuck"], who=who, wait=3 * WAIT)
    if visit.status == "ok" and visit.value is not None:
        return fail(SERVE_ONE["returned"], who=who, value=quote(visit.value, 60))
    if visit.status == "ok":
        return fail(SERVE_ONE["swallowed"], who=who)
    return None


def _liar_problem(visit: _Visit, who: str) -> CheckFailed | None:
    """What went wrong for a client whose proof is made up (None: it was never served)."""
    if visit.encrypted():
        return fail(SERVE_ONE["liar served"], who=who, count=visit.encrypted())
    if visit.status == "stuck":
        return fail(SERVE_ONE["stuck"], who=who, wait=3 * WAIT)
    if visit.status == "ok" and visit.value is not None:
        return fail(SERVE_ONE["liar returned"], who=who, value=quote(visit.value, 60))
    return None


def _expect_served(serve_one: Callable[..., Any], key: _WatchedKey, path: Path,
                   visitor: KeyPair, who: str) -> None:  # fmt: skip
    visit = _visit(serve_one, key, path, visitor)
    _raise_if_not_written(visit)
    problem = _served_problem(visit, SERVE_ONE[who])
    if problem is not None:
        raise problem


def _expect_refused(serve_one: Callable[..., Any], key: _WatchedKey, path: Path,
                    visitor: KeyPair, who: str, why: str) -> None:  # fmt: skip
    visit = _visit(serve_one, key, path, visitor)
    _raise_if_not_written(visit)
    why_quiet = SERVE_ONE[why] if why == "why no file" else ""
    problem = _refusal_problem(visit, SERVE_ONE[who], SERVE_ONE[why], why_quiet)
    if problem is not None:
        raise problem


@explained_in("03_allowlist", N_("Exercise: the check inside the handshake"))
def check_serve_one(serve_one: Callable[..., Any]) -> None:
    """``serve_one(sock, server_key, allowlist_path)``: one connection, checked at the hello.

    The check plays real clients over TCP on 127.0.0.1, one connection each:
    alice (listed) must get in and get 'welcome'; a stranger, a key whose
    text begins a listed key's text, bob once his row is removed (he got in
    a moment before), and alice once the file is deleted must each get one
    plain refusal (code not_allowed) and nothing else — no server hello, no
    DH computed with their key, no encrypted byte; a client claiming alice's
    key without her private key must never be served. About 2 s when right;
    a failing case ends within 3 × WAIT.
    """
    server_key = _watched(generate(FFDHE2048))
    alice, bob, stranger = (generate(FFDHE2048) for _ in range(3))
    twin, frank = _prefix_pair()  # twin's text is the start of frank's: another key
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "allowlist.csv"
        listed = Allowlist(path)
        for name, key in (("alice", alice.public_key), ("bob", bob.public_key), ("frank", frank)):
            listed.add(name, key, comment="lab group A")
        _expect_served(serve_one, server_key, path, alice, "alice")
        _expect_refused(serve_one, server_key, path, stranger, "stranger", "why stranger")
        visit = _visit(serve_one, server_key, path, _claiming(alice.public_key))
        problem = _liar_problem(visit, SERVE_ONE["liar"])
        if problem is not None:
            raise problem
        _expect_refused(serve_one, server_key, path, _claiming(twin), "twin", "why twin")
        _expect_served(serve_one, server_key, path, bob, "bob")
        listed.remove("bob")
        _expect_refused(serve_one, server_key, path, bob, "revoked", "why revoked")
        path.unlink()
        _expect_refused(serve_one, server_key, path, alice, "no file", "why no file")
    passed(SERVE_ONE["passed"])


@check_serve_one.hidden
def hidden_serve_one(
    serve_one: Callable[..., Any], server_key: KeyPair, path: Path, people: dict[str, Any]
) -> None:
    """The notebook's own allowlist: alice served, carol refused, a fake alice never served."""
    key = _watched(server_key)
    alice = _visit(serve_one, key, path, people["alice"])
    if alice.status == "error" and isinstance(alice.value, NotImplementedError):
        raise NotImplementedError
    expect(_served_problem(alice, "alice") is None)
    carol = _visit(serve_one, key, path, people["carol"])
    expect(_refusal_problem(carol, "carol", "") is None)
    fake = KeyPair(FFDHE2048, private=people["mallory"].private, public=people["alice"].public)
    expect(_liar_problem(_visit(serve_one, key, path, fake), "alice") is None)


# --- a new student joins -----------------------------------------------------------------

JOIN = Messages({
    "not a client": N_(
        "{attempt} the function returned {client!r:.80}; return the "
        "ChatClient that ChatClient.connect(...) gave you (its .name is the name "
        "the server knows you by: 'dave')."
    ),
    "no key file": N_("There is no {name} in key_dir: save dave's key there."),
    "alice gone": N_("alice's row is gone from the allowlist: add a row, do not rewrite the file."),
    "no row": N_("The allowlist has no row 'dave' with the key in dave.key."),
    "readable": N_("dave.key can be read by others: use keys.load_or_create / keys.save."),
    "raised": N_("{attempt}, the function raised {error}.\n{hint}"),
    "elsewhere": N_(
        "The server refused dave's key, but it was not the server at the address your "
        "function was given: that one was never asked about any key. Connect to `address` "
        "(ChatClient.connect(*address, ...)), not to a room of the notebook."
    ),
    "not allowed": N_(
        "The server does not know the key dave connected with. Add dave's *public* key to "
        "the allowlist file you were given (allowlist_path), and connect with the same key "
        "pair (a new key on every run is course mistake 8)."
    ),
    "added twice": N_(
        "The first call worked; the second must too (a re-run cell). Add the row only if "
        "the key is not on the list yet: Allowlist(path).is_allowed(key.public_key)."
    ),
    "key exists": N_("Reuse dave's key if it is there: keys.load_or_create(name, key_dir)."),
    "where": N_("(The allowlist file is {name}; the server is at the address given.)"),
    "slow": N_(
        "({attempt}.) A key, a row in a small file and one connection to a server on this "
        "machine take well under a second: is your function waiting for something that "
        "never comes (an input(), a recv with no timeout, a loop that never ends)?"
    ),
    # {attempt} in the messages above: which call of the student's function it was.
    "first": N_("On the first call"),
    "second": N_("On the second call"),
    "not pinned": N_(
        "{attempt} the function connected without pinning the server's key: "
        "it would trust whichever key the server showed (trust on first use) and write it "
        "into known_servers.csv in your keys folder. You were given server_key: pass it on "
        "(ChatClient.connect(..., server_key=server_key)), so that an impostor at that "
        "address is refused. (The check stopped it there: nothing was written.)"
    ),
    "passed": N_(
        "dave got a key, a row on the allowlist (alice's row kept) and into the room — twice, "
        "reusing his key and row the second time."
    ),
})


class _TrustedOnFirstUse(Exception):
    """Raised in place of writing to a known-servers file while a check runs."""


class _NoTrustOnFirstUse:
    """``KnownServers.check`` made to refuse, in the threads that run a student's code only.

    A client that does not pin the server's key trusts it on first use: it writes the
    server into known_servers.csv in the student's keys folder. The check must learn
    that the key was not pinned without letting that happen, so while it runs,
    ``KnownServers.check`` is replaced: in a thread marked by ``guarded`` (the helper
    thread that runs the student's function) it records the refusal and raises
    ``_TrustedOnFirstUse``; in every other thread (the notebook's own chat client, a
    server) it does its usual work. A class attribute is seen by every thread of the
    kernel, hence the mark: nothing changes for code the check did not start.

    The replacement is put in by ``installed()`` and taken out when the last check
    inside it is done, whatever happened (a lock and a count). A student's thread
    that outlives the check cannot use the real method afterwards either: past its
    deadline it is stopped (``harness.run_bounded``), and the
    check's chat room, the only server it could reach, is stopped by then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._real: Callable[..., bool] = KnownServers.check
        self._marked = threading.local()  #: .refused: where a marked thread's refusals go

    def _gate(self) -> Callable[..., bool]:
        real, marked = self._real, self._marked

        def check(known: KnownServers, host: str, port: int, key: PublicKey) -> bool:
            refused = getattr(marked, "refused", None)
            if refused is None:
                return real(known, host, port, key)  # not the student's code: as usual
            refused.append(f"{host}:{port}")
            raise _TrustedOnFirstUse

        return check

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """While inside, marked threads cannot trust a server on first use."""
        with self._lock:
            if self._users == 0:
                self._real = KnownServers.check
                KnownServers.check = self._gate()  # type: ignore[method-assign]
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    KnownServers.check = self._real  # type: ignore[method-assign]

    def guarded(self, func: Callable[..., Any], refused: list[str]) -> Callable[..., Any]:
        """``func``, marking the thread that runs it: a first-use trust there is refused,
        and the server's address appended to ``refused`` (even if ``func`` catches the
        exception, the check knows)."""

        @functools.wraps(func)
        def run(*args: Any) -> Any:
            self._marked.refused = refused
            try:
                return func(*args)
            finally:
                self._marked.refused = None

        return run


_NO_TRUST_ON_FIRST_USE = _NoTrustOnFirstUse()


class _AskedAllowlist(Allowlist):
    """The check room's allowlist, noting each key the room asks about. The room asks
    before it answers the client, so a refusal that comes with nothing noted here came
    from another server."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[PublicKey] = []

    def is_allowed(self, key: PublicKey) -> bool:
        self.asked.append(key)
        return super().is_allowed(key)


def _join_hint(exc: BaseException, attempt: str, path: Path, asked: bool) -> str:
    """What to try after the student's function raised ``exc``; ``asked``: did the check's
    room ever look a key up (so the function reached it)?"""
    if isinstance(exc, KeyNotAllowed):
        return JOIN["not allowed"] if asked else JOIN["elsewhere"]
    if isinstance(exc, AllowlistError) and attempt == "second":
        return JOIN["added twice"]
    if isinstance(exc, AllowlistError | OSError) and "exists" in in_english(exc):
        return JOIN["key exists"]
    return JOIN["where"].format(name=path.name)


def _join_once(join: Callable[..., Any], attempt: str, key_dir: Path, path: Path, room: Any,
               server_key: Any, deadline: float) -> Any:  # fmt: skip
    """One call of the student's ``join`` for dave, stopped at ``deadline``: the client."""
    refused: list[str] = []
    name = getattr(join, "__name__", "join")
    try:
        with _NO_TRUST_ON_FIRST_USE.installed():
            client = call_bounded(
                _NO_TRUST_ON_FIRST_USE.guarded(join, refused),
                "dave", key_dir, path, room.address, server_key.public_key,
                what=f"{name}('dave', …)",
                why=JOIN["slow"].format(attempt=JOIN[attempt]),
                deadline=deadline,
                bound=JOIN_WAIT,
            )  # fmt: skip
    except CheckFailed:
        raise
    except Exception as exc:
        if refused:
            raise fail(JOIN["not pinned"], attempt=JOIN[attempt]) from None
        hint = _join_hint(exc, attempt, path, bool(room.allowlist.asked))
        error = refused_as(exc)
        raise fail(JOIN["raised"], attempt=JOIN[attempt], error=error, hint=hint) from None
    if refused or getattr(client, "name", None) != "dave":
        with contextlib.suppress(Exception):
            client.close()
        if refused:  # it caught the refusal and went on: still not pinned
            raise fail(JOIN["not pinned"], attempt=JOIN[attempt])
        raise fail(JOIN["not a client"], attempt=JOIN[attempt], client=client)
    return client


def _check_enrolled(key_dir: Path, path: Path) -> None:
    key_file = key_dir / "dave.key"
    if not key_file.exists():
        raise fail(JOIN["no key file"], name=key_file.name)
    dave = load("dave", key_dir)
    entries = {e.name: e for e in Allowlist(path).entries()}
    if "alice" not in entries:
        raise fail(JOIN["alice gone"])
    if entries.get("dave") is None or entries["dave"].key != dave.public_key:
        raise fail(JOIN["no row"])
    if stat.S_IMODE(key_file.stat().st_mode) & 0o077:
        raise fail(JOIN["readable"])


@explained_in("03_allowlist", N_("7 · Exercise: a new student joins"))
def check_join_as_new_student(join: Callable[..., Any]) -> None:
    """``join(name, key_dir, allowlist_path, address, server_key)`` must enrol and connect."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        key_dir, path = Path(tmp) / "keys", Path(tmp) / "allowlist.csv"
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        Allowlist(path).add("alice", alice.public_key, "already here")
        room = ChatServer(
            server_key, _AskedAllowlist(path), name="check-join-room", connection_timeout=5.0
        ).start()
        clients: list[Any] = []
        deadline = time.monotonic() + JOIN_WAIT  # one bound for both calls
        try:
            for attempt in ("first", "second"):
                clients.append(
                    _join_once(join, attempt, key_dir, path, room, server_key, deadline)
                )
            _check_enrolled(key_dir, path)
        finally:
            for client in clients:
                with contextlib.suppress(OSError, LabCryptoError):
                    client.close()
            room.stop()
    passed(JOIN["passed"])


@check_join_as_new_student.hidden
def hidden_join(
    join: Callable[..., Any], key_dir: Path, path: Path, room: Any, server_key: Any
) -> None:
    """Dave joins the notebook's own room."""
    address, pinned = room.address, server_key.public_key
    client = returned_within(join, "dave", key_dir, path, address, pinned, timeout=HIDDEN_WAIT)
    try:
        expect(client.name == "dave")
        expect(Allowlist(path).name_of(load("dave", key_dir).public_key) == "dave")
    finally:
        client.close()
