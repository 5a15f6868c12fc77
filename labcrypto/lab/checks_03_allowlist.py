"""The checks of notebook 03_allowlist: the allowlist check, and a new student who joins.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``, run against
the notebook's own allowlist and chat room). ``check_join_as_new_student``
runs the student's code against a real chat server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..allowlist import Allowlist
from ..chat import ChatServer
from ..errors import AllowlistError, KeyNotAllowed, LabCryptoError
from ..groups import FFDHE2048, validate_public
from ..i18n import N_, gettext
from ..keys import PublicKey, generate, load
from ..known_servers import KnownServers
from .feedback import CheckFailed, call, code_of, expect, explained_in, fail, passed, refused_as

__all__ = [
    "check_is_allowed",
    "check_join_as_new_student",
    "hidden_is_allowed",
    "hidden_join",
]

# --- the allowlist check ----------------------------------------------------------

IS_ALLOWED = {
    "raised": (
        "is_allowed raised {error} on a file with a header, a comment "
        "line, a blank line and an unreadable row ('eve,not a key at all'). Skip "
        "what cannot be read (try/except around PublicKey.from_text): one bad row "
        "must not lock the whole class out."
    ),
    "not a bool": "is_allowed returned {got!r}; return True or False.",
    "wrong": "is_allowed(path, key) returned {got} for a key where {why}; expected {want}.\n{hint}",
    "alice": "alice's row spells her key in capital hex digits, with extra spaces",
    "bob": N_("bob's row is quoted, as a spreadsheet writes it (its comment holds a comma)"),
    "carol": "carol's row starts with '#': the instructor commented it out (revoked)",
    "dave": "dave's key appears only inside frank's comment, not as a key",
    "prefix": "this key's text is the start of frank's key text, a different key",
    "frank": "frank's key is on the list",
    "compare keys": (
        "Compare keys, not text: PublicKey.from_text(cell) == key. "
        "0x00ab, 0xAB and 171 are the same number, so the same key."
    ),
    "comments": (
        "Lines starting with '#' are comments: skip them. A revoked "
        "student whose row was commented out must not get in."
    ),
    "only the key column": (
        "A key mentioned somewhere in the file is not on the list: only "
        "the public_key column counts. Searching the file's text for the key "
        "(`key.to_text() in text`) is the bug."
    ),
    "parse each row": (
        "Searching for the key's text finds it inside a longer key: "
        "'0x12' is in '0x123'. Parse each row's key and compare with ==."
    ),
    "csv": "Read the file with the csv module (csv.reader), which handles quotes.",
    "split": N_(
        "Your code cuts rows with split(','): a comma inside quotes (bob's comment, "
        "\"group A, lab 2\") is not a column separator, so the row falls apart. Read the "
        "file with the csv module (csv.reader), which handles quotes."
    ),
    "cached": (
        "After bob's row was deleted from the file, is_allowed still said True: read "
        "the file on every call (or when it changed). A cached list makes revocation "
        "need a server restart."
    ),
    "passed": (
        "is_allowed compares keys by value (any spelling), reads only the key column, skips "
        "comments and bad rows, and sees a revocation at once."
    ),
}


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


def _ask(is_allowed: Callable[[Path, Any], bool], path: Path, key: PublicKey) -> Any:
    try:
        return call(is_allowed, path, key)
    except CheckFailed:
        raise
    except Exception as exc:
        failure = fail(IS_ALLOWED["raised"], error=refused_as(exc))
        if _splits_on_commas(is_allowed):
            failure = fail(str(failure) + "\n" + gettext(IS_ALLOWED["split"]))
        raise failure from None


@explained_in("03_allowlist", "6 · Exercise: the allowlist check")
def check_is_allowed(is_allowed: Callable[[Path, Any], bool]) -> None:
    """``is_allowed(path, key)`` must read the CSV on every call and compare keys by value."""
    rows, cases = _tricky_allowlist()
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        path = Path(tmp) / "allowlist.csv"
        path.write_text("\n".join(rows), encoding="utf-8")
        for key, want, why, hint in cases:
            got = _ask(is_allowed, path, key)
            if got is want:
                continue
            if got not in (True, False):
                raise fail(IS_ALLOWED["not a bool"], got=got)
            if _splits_on_commas(is_allowed):
                hint = gettext(IS_ALLOWED["split"])
            raise fail(IS_ALLOWED["wrong"], got=got, why=gettext(why), want=want, hint=hint)
        # Revocation: the file changes, the answer must change with it.
        path.write_text("\n".join(r for r in rows if not r.startswith("bob,")), encoding="utf-8")
        if call(is_allowed, path, cases[1][0]) is not False:
            raise fail(IS_ALLOWED["cached"])
    passed(IS_ALLOWED["passed"])


@check_is_allowed.hidden
def hidden_is_allowed(
    is_allowed: Callable[[Path, Any], bool], path: Path, people: dict[str, Any]
) -> None:
    """The notebook's own allowlist: alice on it, carol not."""
    expect(is_allowed(path, people["alice"].public_key) is True)
    expect(is_allowed(path, people["carol"].public_key) is False)


# --- a new student joins -----------------------------------------------------------------

JOIN = {
    "not a client": (
        "On the {attempt} call the function returned {client!r:.80}; return the "
        "ChatClient that ChatClient.connect(...) gave you (its .name is the name "
        "the server knows you by: 'dave')."
    ),
    "no key file": "There is no {name} in key_dir: save dave's key there.",
    "alice gone": "alice's row is gone from the allowlist: add a row, do not rewrite the file.",
    "no row": "The allowlist has no row 'dave' with the key in dave.key.",
    "readable": "dave.key can be read by others: use keys.load_or_create / keys.save.",
    "raised": "On the {attempt} call, the function raised {error}.\n{hint}",
    "not allowed": (
        "The server does not know the key dave connected with. Add dave's *public* key to "
        "the allowlist file you were given (allowlist_path), and connect with the same key "
        "pair (a new key on every run is course mistake 8)."
    ),
    "added twice": (
        "The first call worked; the second must too (a re-run cell). Add the row only if "
        "the key is not on the list yet: Allowlist(path).is_allowed(key.public_key)."
    ),
    "key exists": "Reuse dave's key if it is there: keys.load_or_create(name, key_dir).",
    "where": "(The allowlist file is {name}; the server is at the address given.)",
    "not pinned": N_(
        "On the {attempt} call the function connected without pinning the server's key: "
        "it would trust whichever key the server showed (trust on first use) and write it "
        "into known_servers.csv in your keys folder. You were given server_key: pass it on "
        "(ChatClient.connect(..., server_key=server_key)), so that an impostor at that "
        "address is refused. (The check stopped it there: nothing was written.)"
    ),
    "passed": (
        "dave got a key, a row on the allowlist (alice's row kept) and into the room — twice, "
        "reusing his key and row the second time."
    ),
}


class _TrustedOnFirstUse(Exception):
    """Raised in place of writing to a known-servers file while a check runs."""


@contextlib.contextmanager
def _no_trust_on_first_use() -> Iterator[None]:
    """While inside, a connection that trusts a server on first use (no pinned key) stops
    with ``_TrustedOnFirstUse`` instead of writing the server into a known_servers.csv:
    the check learns the key was not pinned, and the student's files stay untouched."""

    def refuse(*args: Any, **kwargs: Any) -> bool:
        raise _TrustedOnFirstUse

    saved = KnownServers.check
    KnownServers.check = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        KnownServers.check = saved  # type: ignore[method-assign]


def _join_hint(exc: BaseException, attempt: str, path: Path) -> str:
    if isinstance(exc, KeyNotAllowed):
        return JOIN["not allowed"]
    if isinstance(exc, AllowlistError) and attempt == "second":
        return JOIN["added twice"]
    if isinstance(exc, AllowlistError | OSError) and "exists" in str(exc):
        return JOIN["key exists"]
    return JOIN["where"].format(name=path.name)


def _join_once(join: Callable[..., Any], attempt: str, key_dir: Path, path: Path, room: Any,
               server_key: Any) -> Any:  # fmt: skip
    try:
        with _no_trust_on_first_use():
            client = call(join, "dave", key_dir, path, room.address, server_key.public_key)
    except CheckFailed:
        raise
    except _TrustedOnFirstUse:
        raise fail(gettext(JOIN["not pinned"]), attempt=attempt) from None
    except Exception as exc:
        hint = _join_hint(exc, attempt, path)
        raise fail(JOIN["raised"], attempt=attempt, error=refused_as(exc), hint=hint) from None
    if getattr(client, "name", None) != "dave":
        with contextlib.suppress(Exception):
            client.close()
        raise fail(JOIN["not a client"], attempt=attempt, client=client)
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


@explained_in("03_allowlist", "7 · Exercise: a new student joins")
def check_join_as_new_student(join: Callable[..., Any]) -> None:
    """``join(name, key_dir, allowlist_path, address, server_key)`` must enrol and connect."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        key_dir, path = Path(tmp) / "keys", Path(tmp) / "allowlist.csv"
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        Allowlist(path).add("alice", alice.public_key, "already here")
        room = ChatServer(
            server_key, Allowlist(path), name="check-join-room", connection_timeout=5.0
        ).start()
        clients: list[Any] = []
        try:
            for attempt in ("first", "second"):
                clients.append(_join_once(join, attempt, key_dir, path, room, server_key))
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
    client = join("dave", key_dir, path, room.address, server_key.public_key)
    try:
        expect(client.name == "dave")
        expect(Allowlist(path).name_of(load("dave", key_dir).public_key) == "dave")
    finally:
        client.close()
