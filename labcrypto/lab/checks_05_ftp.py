"""The checks of notebook 05_ftp: your own seal and open, the path check, a recursive ``du``.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``, run on the
notebook's own home folder and file client). ``check_my_cipher`` is the other
side of an encrypted conversation (it derives the keys as the notebook says,
and flips a bit, and replays a message); ``check_du`` runs the student's code
against a real file server on 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..allowlist import Allowlist
from ..errors import LabCryptoError
from ..ftp import FileClient, FileServer
from ..groups import FFDHE2048
from ..i18n import N_, Messages
from ..keys import generate
from .feedback import (
    HIDDEN_WAIT,
    SERVICE_WAIT,
    WAIT,
    CheckFailed,
    call,
    code_of,
    expect,
    explained_in,
    fail,
    how_it_ended,
    not_written,
    passed,
    refused_as,
)
from .harness import returned_within, run_bounded

__all__ = [
    "check_du",
    "check_my_cipher",
    "check_safe_path",
    "hidden_du",
    "hidden_my_cipher",
    "hidden_safe_path",
]

# --- your own seal and open ---------------------------------------------------------

MY_CIPHER = Messages(
    {
        "too long": N_(
            "{call} did not return within {wait:.0f} s. Sealing or opening one short message "
            "takes microseconds: look for a loop that never ends."
        ),
        "raised": N_(
            "{call} raised {error}. Build each direction's key with HKDF-SHA256 from K, then "
            "seal with AESGCM(key).encrypt(nonce, plaintext, None)."
        ),
        "key size": N_(
            "{call} raised {error}. AES takes a key of 16, 24 or 32 bytes, and K is the "
            "256 bytes of a Diffie-Hellman result: K is not a key. Derive each direction's "
            "32-byte key from K with HKDF-SHA256."
        ),
        "not bytes": N_("{call} returned {got}; seal and open take and return bytes."),
        "nonce reuse": N_(
            "Sealing the same message twice gave the same bytes: every message was sealed "
            "with the same nonce (nonce reuse). With AES-GCM, two messages under one key and "
            "one nonce give away the XOR of their plaintexts, and anyone who sees them can "
            "forge the tag. Count the messages this side has sealed and use the count as the "
            "nonce."
        ),
        "raw K": N_(
            "A message sealed by your cipher opens with the bytes of K themselves as the AES "
            "key: K was used as the key (raw K as key). K is a number with structure, not a "
            "uniformly random key, and one K would serve both directions. Derive each "
            "direction's key from K with HKDF-SHA256 and its own info label."
        ),
        "one key": N_(
            "The client and the server sealed the same first message into the same bytes: "
            "both directions use one key (and so the same nonces). Then a message the client "
            "sent can be reflected back to it as if the server had sent it, and the two "
            "directions' first messages share a key and a nonce. Derive one key per "
            'direction: info=b"client to server" and info=b"server to client".'
        ),
        "swapped": N_(
            "Your client sealed with the server-to-client key: the client seals with the key "
            'derived with info=b"client to server", and opens with the other one.'
        ),
        "nonce sent": N_(
            "Your sealed message is 12 bytes longer than AES-GCM's output: it looks like the "
            "nonce travels with the message. Here both sides count the messages, so the "
            "nonce is never sent, and a replayed or reordered message cannot open."
        ),
        "cannot open": N_(
            "A correct server could not open what your client sealed (message {index} of "
            "3). Check each step against the description: HKDF-SHA256, 32 bytes, no salt, "
            'info=b"client to server"; nonce = the count of messages sealed before, '
            "as 12 big-endian bytes; seal returns AESGCM(key).encrypt(nonce, plaintext, None)."
        ),
        "cannot read": N_(
            "Your client could not open message {index} of 3 that a correct server sealed: "
            "its open {outcome}. Open with the server-to-client key and the count of "
            "messages opened before as the nonce."
        ),
        "tampered": N_(
            "A message with one flipped bit ({where}) was not refused: open {outcome}. "
            "The tag is what makes AES-GCM authenticated encryption: open must raise when "
            "the tag does not match (AESGCM.decrypt raises InvalidTag; do not catch it and "
            "go on, and do not decrypt without checking the tag)."
        ),
        "in the ciphertext": N_("in the ciphertext"),
        "in the tag": N_("in the tag"),
        "replayed": N_(
            "The same message, delivered twice, opened twice: open {outcome} on the "
            "replay. A receiver that takes the nonce from the message accepts an old "
            "message again. Count the messages you opened and use the count as the nonce."
        ),
        "passed": N_(
            "MyCipher: keys from HKDF, one per direction; a new nonce for every message; a "
            "correct peer opens your messages and you open its; a flipped bit and a replay "
            "are refused."
        ),
    }
)

_LABELS = (b"client to server", b"server to client")
_SAME = b"the same message, sealed twice"


def _direction_key(k_bytes: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(k_bytes)


def _nonce(count: int) -> bytes:
    return count.to_bytes(12, "big")


def _opens(key: bytes, nonce: bytes, data: bytes) -> bytes | None:
    """What a correct receiver gets from ``data`` with ``key`` and ``nonce`` (None: refused)."""
    try:
        return AESGCM(key).decrypt(nonce, data, None)
    except (InvalidTag, ValueError, TypeError):
        return None


def _student_call(call_text: str, func: Callable[..., Any], *args: Any) -> Any:
    """One call of the student's code, bounded; a failure names the call."""
    status, value = run_bounded(func, *args, timeout=WAIT)
    if status == "stuck":
        raise fail(MY_CIPHER["too long"], call=call_text, wait=WAIT)
    if status == "error":
        if isinstance(value, NotImplementedError):
            raise not_written("MyCipher")
        if isinstance(value, ValueError) and "key must be" in str(value).lower():
            raise fail(MY_CIPHER["key size"], call=call_text, error=refused_as(value))
        raise fail(MY_CIPHER["raised"], call=call_text, error=refused_as(value))
    return value


def _sealed(cipher: Any, plaintext: bytes, who: str) -> bytes:
    got = _student_call(f"{who}.seal({plaintext[:12]!r}…)", cipher.seal, plaintext)
    if not isinstance(got, bytes | bytearray):
        raise fail(MY_CIPHER["not bytes"], call=f"{who}.seal", got=how_it_ended("ok", got))
    return bytes(got)


def _raw_k_candidates(k_bytes: bytes) -> list[bytes]:
    """The keys a student who uses K itself as the key may have cut from it."""
    return [k_bytes[:n] for n in (16, 24, 32)] + [k_bytes[-n:] for n in (16, 24, 32)]


def _check_sealing(make: Callable[..., Any], k_bytes: bytes) -> None:
    """The client's sealed messages: fresh nonces, derived keys, one per direction."""
    client = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    server = _student_call("MyCipher(K, i_am_client=False)", make, k_bytes, False)
    sealed = [_sealed(client, _SAME, "client") for _ in range(3)]
    if len(set(sealed)) < len(sealed):
        raise fail(MY_CIPHER["nonce reuse"])
    first = sealed[0]
    for key in _raw_k_candidates(k_bytes):
        if _opens(key, _nonce(0), first) or _opens(key, first[:12], first[12:]):
            raise fail(MY_CIPHER["raw K"])
    if _sealed(server, _SAME, "server") == first:
        raise fail(MY_CIPHER["one key"])
    to_server, to_client = (_direction_key(k_bytes, label) for label in _LABELS)
    if _opens(to_client, _nonce(0), first) is not None:
        raise fail(MY_CIPHER["swapped"])
    for index, data in enumerate(sealed):
        if _opens(to_server, _nonce(index), data) != _SAME:
            if len(data) == len(_SAME) + 16 + 12:
                raise fail(MY_CIPHER["nonce sent"])
            raise fail(MY_CIPHER["cannot open"], index=index + 1)


def _open_outcome(cipher: Any, data: bytes) -> tuple[str, Any]:
    status, value = run_bounded(cipher.open, data, timeout=WAIT)
    if status == "stuck":
        raise fail(MY_CIPHER["too long"], call="client.open(…)", wait=WAIT)
    if status == "error" and isinstance(value, NotImplementedError):
        raise not_written("MyCipher.open")
    return status, value


def _check_opening(make: Callable[..., Any], k_bytes: bytes) -> None:
    """The client opens a correct server's messages, and refuses a flipped bit and a replay."""
    to_client = AESGCM(_direction_key(k_bytes, _LABELS[1]))
    texts = [b"welcome", b"", b"x" * 5000]
    client = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    for index, text in enumerate(texts):
        status, value = _open_outcome(client, to_client.encrypt(_nonce(index), text, None))
        if status != "ok" or value != text:
            outcome = how_it_ended(status, value, 40)
            raise fail(MY_CIPHER["cannot read"], index=index + 1, outcome=outcome)
    sealed = to_client.encrypt(_nonce(0), b"pay 10 euros to bob", None)
    for position, where in ((4, "in the ciphertext"), (-1, "in the tag")):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        fresh = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
        status, value = _open_outcome(fresh, bytes(tampered))
        if status == "ok":
            outcome = how_it_ended(status, value, 40)
            raise fail(MY_CIPHER["tampered"], where=MY_CIPHER[where], outcome=outcome)
    fresh = _student_call("MyCipher(K, i_am_client=True)", make, k_bytes, True)
    _open_outcome(fresh, sealed)
    status, value = _open_outcome(fresh, sealed)
    if status == "ok":
        raise fail(MY_CIPHER["replayed"], outcome=how_it_ended(status, value, 40))


@explained_in("05_ftp", N_("Exercise: your own seal and open"))
def check_my_cipher(make: Callable[..., Any]) -> None:
    """``MyCipher(K, i_am_client)``: per-direction keys from K, counter nonces, AES-GCM.

    The check is the other side: it derives the keys as described, opens
    what your client sealed and seals what your client must open; then it
    flips one bit of a message and delivers another one twice.
    """
    k_bytes = secrets.token_bytes(256)  # the size of K from a 2048-bit group
    _check_sealing(make, k_bytes)
    _check_opening(make, k_bytes)
    passed(MY_CIPHER["passed"])


@check_my_cipher.hidden
def hidden_my_cipher(make: Callable[..., Any]) -> None:
    """A K of another length; both directions, many messages, a flipped bit."""
    returned_within(_both_directions, make, bytes(range(48)), timeout=2 * WAIT)


def _both_directions(make: Callable[..., Any], k_bytes: bytes) -> None:
    """Each side of MyCipher against a correct other side: 20 messages each way, a flipped bit."""
    for i_am_client, label, other in ((True, 0, 1), (False, 1, 0)):
        mine = make(k_bytes, i_am_client)
        sends, receives = (_direction_key(k_bytes, _LABELS[n]) for n in (label, other))
        for count in range(20):
            text = f"message {count}".encode()
            expect(_opens(sends, _nonce(count), mine.seal(text)) == text)
            expect(mine.open(AESGCM(receives).encrypt(_nonce(count), text, None)) == text)
        bad = bytearray(AESGCM(receives).encrypt(_nonce(20), b"tampered", None))
        bad[0] ^= 0x80
        refused = False
        try:
            mine.open(bytes(bad))
        except Exception:
            refused = True
        expect(refused)


# --- the path check ------------------------------------------------------------------

SAFE_PATH = Messages({
    "refused inside": N_(
        "safe_path(home, {requested!r}) raised {error}, but that path leads to {want}, "
        "inside the home. {hint}"
    ),
    "elsewhere": N_(
        "safe_path(home, {requested!r}) returned {got!r:.100}; it should be {want}. {hint}"
    ),
    "the home": N_("the home folder itself"),
    "under the home": N_("home / {relative!r}"),
    "not yet": N_("a path that does not exist yet"),
    "leading slash": N_(
        "A leading '/' means the top of the home, not of the server's disk: "
        "strip it (requested.lstrip('/')) before joining it under the home."
    ),
    "wrong refusal": N_(
        "safe_path(home, {requested!r}) raised {error}; refuse a path "
        "outside the home with PermissionError (or ValueError)."
    ),
    "let out": N_(
        "safe_path(home, {requested!r}) returned {got!r:.100} instead of refusing: it "
        "leads outside the home.\n{hint}"
    ),
    "sibling": N_(
        "The sibling folder 'alice2' starts with the home's name 'alice': a "
        "string test such as str(path).startswith(str(home)) lets it in (course "
        "mistake 13). Compare path components: Path.is_relative_to(home)."
    ),
    "link": N_(
        "The path goes through a symbolic link that leads out of the home. "
        "Resolve links first (Path.resolve() / os.path.realpath), then check."
    ),
    "dots": N_("Resolve '..' first (Path.resolve()), then check it is under the home."),
    "passed": N_(
        "safe_path keeps every path in the home ('/' is its top) and refuses '..', the "
        "sibling alice2, and links that lead out."
    ),
})


def _same_place(got: Any, want: Path) -> bool:
    try:
        place: str | bytes = os.fspath(got)
    except TypeError:
        return False
    return os.path.realpath(place) == os.path.realpath(want)


def _homes(root: Path) -> Path:
    """alice's home (with a link out to her neighbour alice2 and one to /etc) under ``root``."""
    home, sibling = root / "alice", root / "alice2"
    (home / "docs").mkdir(parents=True)
    sibling.mkdir()
    (home / "docs" / "a.txt").write_text("alice's notes")
    (sibling / "secret.txt").write_text("alice2's secret")
    (home / "out").symlink_to(sibling)  # a link inside the home that leads out
    (home / "docs" / "system").symlink_to("/etc")
    return home


def _check_inside(safe_path: Callable[[Path, str], Any], root: Path, home: Path) -> None:
    """Paths inside the home map to their place under it ('/' is the home's top)."""
    inside = [
        ("/", home, ""),
        ("docs/a.txt", home / "docs" / "a.txt", ""),
        ("/docs/./a.txt", home / "docs" / "a.txt", ""),
        ("docs/../docs/a.txt", home / "docs" / "a.txt", ""),
        ("new/file.txt", home / "new" / "file.txt", SAFE_PATH["not yet"]),
        ("/etc/passwd", home / "etc" / "passwd", SAFE_PATH["leading slash"]),
    ]
    for requested, want, hint in inside:
        if want == home:
            shown = SAFE_PATH["the home"]
        else:
            relative = str(want.relative_to(home))
            shown = SAFE_PATH["under the home"].format(relative=relative)
        try:
            got = call(safe_path, home, requested)
        except CheckFailed:
            raise
        except Exception as exc:
            raise fail(
                SAFE_PATH["refused inside"],
                requested=requested,
                error=refused_as(exc),
                want=shown,
                hint=hint,
            ) from None
        if not _same_place(got, want):
            if requested.startswith("/") and _same_place(got, Path(requested)):
                hint = SAFE_PATH["leading slash"]  # home / "/x" is "/x": the leading slash won
            raise fail(
                SAFE_PATH["elsewhere"], requested=requested, got=got, want=shown, hint=hint
            )


def _check_outside(safe_path: Callable[[Path, str], Any], home: Path) -> None:
    """Paths that lead out of the home — by '..', a look-alike sibling, a link — are refused."""
    outside = [
        ("..", SAFE_PATH["dots"]),
        ("../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("/../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("docs/../../alice2/secret.txt", SAFE_PATH["sibling"]),
        ("out/secret.txt", SAFE_PATH["link"]),
        ("docs/system/passwd", SAFE_PATH["link"]),
    ]
    for requested, hint in outside:
        try:
            got = call(safe_path, home, requested)
        except CheckFailed:
            raise
        except (PermissionError, ValueError, LabCryptoError):
            continue  # refused, as it should
        except Exception as exc:
            raise fail(
                SAFE_PATH["wrong refusal"], requested=requested, error=refused_as(exc)
            ) from None
        raise fail(SAFE_PATH["let out"], requested=requested, got=got, hint=hint)


@explained_in("05_ftp", N_("5 · Exercise: the path check"))
def check_safe_path(safe_path: Callable[[Path, str], Any]) -> None:
    """``safe_path(home, requested)`` maps a client's path into the home or refuses it."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        home = _homes(Path(tmp))
        _check_inside(safe_path, Path(tmp), home)
        _check_outside(safe_path, home)
    passed(SAFE_PATH["passed"])


@check_safe_path.hidden
def hidden_safe_path(safe_path: Callable[[Path, str], Any], home: Path) -> None:
    """The notebook's own home folder: its top, and three ways out."""
    expect(Path(safe_path(home, "/")).resolve() == home.resolve())
    for escape in ("../bob/private.txt", "system/passwd", "docs/../../bob"):
        try:
            safe_path(home, escape)
        except (PermissionError, ValueError):
            continue
        expect(False)


# --- a recursive du -----------------------------------------------------------------------

DU = Messages({
    "stuck": N_("du did not finish within {wait:.0f} s: does it recurse forever?"),
    "raised": N_("du(client, {path!r}) raised {error}.{hint}"),
    "link": N_(
        " ls on a link is refused (the jail never follows links): count only "
        "entries of kind 'file', recurse into kind 'dir', skip the rest."
    ),
    "wrong": N_(
        "du(client, {path!r}) returned {got!r}; the files under {path} hold {want} "
        "bytes.\n{hint} Build each sub-path as path.rstrip('/') + '/' + entry.name."
    ),
    "top only": N_("Only the files at the top were counted: recurse into every folder."),
    "uses cd": N_(
        " Your du calls cd: the client's working folder then moves under your recursion, and "
        "names are looked up in the wrong place. Do not cd: pass full paths to ls."
    ),
    "sub-path": N_(
        " An entry's name is only its last part ('old', not '/docs/old'): ls(entry.name) "
        "looks for it in the wrong folder. Build each sub-path as "
        "path.rstrip('/') + '/' + entry.name and recurse on that."
    ),
    "moved": N_(
        "After du, the client's working folder is {cwd!r}: do not cd; pass "
        "full paths to ls instead (a helper must not move the user)."
    ),
    "passed": N_(
        "du adds up every file under a folder, recursing through the API, skipping links."
    ),
})

_SIZES = {
    "top.txt": 100,
    "docs/a.txt": 1000,
    "docs/b.bin": 2345,
    "docs/old/c.txt": 30,
    "docs/old/deeper/d.txt": 7,
    "music/song.mp3": 5000,
}


def _fill_home(home: Path) -> None:
    """Files of known sizes in nested folders, an empty folder, and a link to /etc."""
    for name, size in _SIZES.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(b"x" * size)
    (home / "empty").mkdir()
    (home / "docs" / "etc").symlink_to("/etc")  # ls shows it as a "link"


def _du_hint(du: Callable[[Any, str], int], error: BaseException) -> str:
    """Why ``du`` raised: a link it tried to list, a cd, or a sub-path built from the name alone."""
    if "link" in str(error):
        return DU["link"]
    if ".cd(" in code_of(du):
        return DU["uses cd"]
    if isinstance(error, LabCryptoError):
        return DU["sub-path"]
    return ""


def _check_total(du: Callable[[Any, str], int], client: FileClient, path: str, want: int) -> None:
    status, got = run_bounded(du, client, path, timeout=SERVICE_WAIT)
    if status == "error" and isinstance(got, NotImplementedError):
        raise not_written("du")
    if status == "stuck":
        raise fail(DU["stuck"], wait=SERVICE_WAIT)
    if status == "error":
        raise fail(DU["raised"], path=path, error=refused_as(got), hint=_du_hint(du, got))
    if got == want:
        return
    top_level = sum(s for n, s in _SIZES.items() if "/" not in n)
    hint = DU["top only"] if path == "/" and got == top_level else ""
    raise fail(DU["wrong"], path=path, got=got, want=want, hint=hint)


@explained_in("05_ftp", N_("6 · Exercise: `du` on the API"))
def check_du(du: Callable[[Any, str], int]) -> None:
    """``du(client, path)``: total bytes of the files under ``path``, via ``client.ls``."""
    with tempfile.TemporaryDirectory(prefix="labcrypto-check-") as tmp:
        server_key, alice = generate(FFDHE2048), generate(FFDHE2048)
        allowlist = Allowlist(Path(tmp) / "allowlist.csv")
        allowlist.add("alice", alice.public_key)
        _fill_home(Path(tmp) / "homes" / "alice")
        server = FileServer(
            server_key, allowlist, Path(tmp) / "homes", name="check-du-server",
            connection_timeout=5.0,
        ).start()  # fmt: skip
        try:
            client = FileClient(*server.address, alice, server_key.public_key, timeout=5.0)
            _check_total(du, client, "/", sum(_SIZES.values()))
            _check_total(du, client, "/docs", 1000 + 2345 + 30 + 7)
            if client.cwd != "/":
                raise fail(DU["moved"], cwd=client.cwd)
        finally:
            server.stop()
    passed(DU["passed"])


@check_du.hidden
def hidden_du(du: Callable[[Any, str], int], client: Any, home: Path) -> None:
    """``du`` of the notebook's own home, compared with the disk."""
    files = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    total = returned_within(du, client, "/", timeout=HIDDEN_WAIT)
    expect(total == sum(p.stat().st_size for p in files))
