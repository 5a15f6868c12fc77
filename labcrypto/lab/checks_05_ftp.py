"""The checks of notebook 05_ftp: the home-folder path check, and a recursive ``du``.

Each exercise has a visible check (``check_...``) and, right after it, the
hidden test nbgrader puts back when it grades (``hidden_...``, run on the
notebook's own home folder and file client). ``check_du`` runs the student's
code against a real file server on 127.0.0.1.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..allowlist import Allowlist
from ..errors import LabCryptoError
from ..ftp import FileClient, FileServer
from ..groups import FFDHE2048
from ..i18n import N_, gettext
from ..keys import generate
from .feedback import (
    SERVICE_WAIT,
    CheckFailed,
    call,
    code_of,
    expect,
    explained_in,
    fail,
    not_written,
    passed,
    refused_as,
)
from .harness import run_bounded

__all__ = ["check_du", "check_safe_path", "hidden_du", "hidden_safe_path"]

# --- the path check ------------------------------------------------------------------

SAFE_PATH = {
    "refused inside": N_(
        "safe_path(home, {requested!r}) raised {error}, but that path leads to {want}, "
        "inside the home. {hint}"
    ),
    "elsewhere": N_(
        "safe_path(home, {requested!r}) returned {got!r:.100}; it should be {want}. {hint}"
    ),
    "the home": N_("the home folder itself"),
    "under the home": N_("home / {relative!r}"),
    "not yet": "a path that does not exist yet",
    "leading slash": (
        "A leading '/' means the top of the home, not of the server's disk: "
        "strip it (requested.lstrip('/')) before joining it under the home."
    ),
    "wrong refusal": (
        "safe_path(home, {requested!r}) raised {error}; refuse a path "
        "outside the home with PermissionError (or ValueError)."
    ),
    "let out": (
        "safe_path(home, {requested!r}) returned {got!r:.100} instead of refusing: it "
        "leads outside the home.\n{hint}"
    ),
    "sibling": (
        "The sibling folder 'alice2' starts with the home's name 'alice': a "
        "string test such as str(path).startswith(str(home)) lets it in (course "
        "mistake 13). Compare path components: Path.is_relative_to(home)."
    ),
    "link": (
        "The path goes through a symbolic link that leads out of the home. "
        "Resolve links first (Path.resolve() / os.path.realpath), then check."
    ),
    "dots": "Resolve '..' first (Path.resolve()), then check it is under the home.",
    "passed": (
        "safe_path keeps every path in the home ('/' is its top) and refuses '..', the "
        "sibling alice2, and links that lead out."
    ),
}


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
            shown = gettext(SAFE_PATH["the home"])
        else:
            relative = str(want.relative_to(home))
            shown = gettext(SAFE_PATH["under the home"]).format(relative=relative)
        try:
            got = call(safe_path, home, requested)
        except CheckFailed:
            raise
        except Exception as exc:
            raise fail(
                gettext(SAFE_PATH["refused inside"]),
                requested=requested,
                error=refused_as(exc),
                want=shown,
                hint=hint,
            ) from None
        if not _same_place(got, want):
            if requested.startswith("/") and _same_place(got, Path(requested)):
                hint = SAFE_PATH["leading slash"]  # home / "/x" is "/x": the leading slash won
            raise fail(
                gettext(SAFE_PATH["elsewhere"]), requested=requested, got=got, want=shown, hint=hint
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


@explained_in("05_ftp", "5 · Exercise: the path check")
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

DU = {
    "stuck": "du did not finish within {wait:.0f} s: does it recurse forever?",
    "raised": "du(client, {path!r}) raised {error}.{hint}",
    "link": (
        " ls on a link is refused (the jail never follows links): count only "
        "entries of kind 'file', recurse into kind 'dir', skip the rest."
    ),
    "wrong": (
        "du(client, {path!r}) returned {got!r}; the files under {path} hold {want} "
        "bytes.\n{hint} Build each sub-path as path.rstrip('/') + '/' + entry.name."
    ),
    "top only": "Only the files at the top were counted: recurse into every folder.",
    "uses cd": N_(
        " Your du calls cd: the client's working folder then moves under your recursion, and "
        "names are looked up in the wrong place. Do not cd: pass full paths to ls."
    ),
    "sub-path": N_(
        " An entry's name is only its last part ('old', not '/docs/old'): ls(entry.name) "
        "looks for it in the wrong folder. Build each sub-path as "
        "path.rstrip('/') + '/' + entry.name and recurse on that."
    ),
    "moved": (
        "After du, the client's working folder is {cwd!r}: do not cd; pass "
        "full paths to ls instead (a helper must not move the user)."
    ),
    "passed": "du adds up every file under a folder, recursing through the API, skipping links.",
}

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
        return gettext(DU["uses cd"])
    if isinstance(error, LabCryptoError):
        return gettext(DU["sub-path"])
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


@explained_in("05_ftp", "6 · Exercise: `du` on the API")
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
    expect(du(client, "/") == sum(p.stat().st_size for p in files))
