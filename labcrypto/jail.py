"""The home-directory jail of the file service (task 5): paths that cannot leave.

Every user of the file service lives in a home folder, ``root/<name>``, and
sees it as ``/``. "Ideally the user should not even suspect anything is
outside" (the course's FTP lab). The classic ways students get this wrong
(course mistake 13):

* ``os.chdir(home)`` in a server thread. The working directory belongs to
  the whole *process*, not to a thread: two clients served at once walk
  each other's folders. This module never changes directory.
* ``if real_path.startswith(home)``: the home ``/srv/alice`` is a string
  prefix of ``/srv/alice2``, so Alice can read Bob's files if Bob is
  called ``alice2``. This module never compares paths as strings.
* Checking a path, then using it: between ``os.path.realpath`` and
  ``open``, another process can swap a folder for a symbolic link to
  ``/etc``. A check that is not the use itself is a race.

What this module does instead, in two steps:

1. **Read the path as words** (``split_path``). A path is split on ``/``
   into names, ``.`` is dropped and ``..`` removes the previous name; a
   ``..`` with nothing left to remove would climb out of the home, and is
   refused. Names with a NUL byte, a backslash, control characters, Unicode
   look-alikes of ``/`` (``∕`` U+2215, ``⁄`` U+2044, ``／`` U+FF0F...), or
   characters that Unicode folds into others (NFKC) are refused, and so
   are names over 255 bytes, paths (and working folders, and the two
   joined) over 4096 bytes, and paths more than 64 folders deep.
2. **Walk the names one at a time from an open home folder**, each step
   relative to the folder opened before (``os.open(name, dir_fd=...)``,
   the ``openat`` system call), with ``O_NOFOLLOW``: a symbolic link is
   never followed, wherever it points and whenever it appeared. The file
   that is checked is the file that is used, because both are the same
   open file descriptor.

Walking a whole home (``walk_tree``, for the quota) is a loop over an
explicit stack, never recursion: the user chooses the depth. ``rename``
without ``overwrite`` never replaces a file that appeared after the check
(``rename_noreplace``: ``renameat2(RENAME_NOREPLACE)`` where Linux has it).

``AtomicFile`` (module ``atomic_file``, re-exported here) writes a file
the safe way: into a temporary file next to the target, flushed to disk,
then renamed into place in one step, so a reader sees the old file or the
new one, never half of one.

Used by ``ftp`` (the file service of notebook 05_ftp).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .atomic_file import TEMP_PREFIX, AtomicFile, is_temporary
from .errors import BadPathName, FileServiceError, PathOutsideHome
from .i18n import N_

__all__ = [
    "MAX_DEPTH",
    "MAX_LISTING",
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "MAX_WALK_DEPTH",
    "NOREPLACE_METHOD",
    "SLASH_LOOKALIKES",
    "TEMP_PREFIX",
    "AtomicFile",
    "FileInfo",
    "Jail",
    "Listing",
    "check_name",
    "is_temporary",
    "open_directory",
    "rename_noreplace",
    "show_path",
    "split_path",
    "walk_tree",
]

#: The longest single name Linux allows (``NAME_MAX``), in UTF-8 bytes.
MAX_NAME_BYTES = 255
#: The longest path we accept (``PATH_MAX``), in UTF-8 bytes: the path a
#: request names, the working folder it comes from, and the two joined.
MAX_PATH_BYTES = 4096
#: The most folders a path may go through. A deeper tree is no use in a lab,
#: and every walk over a home holds one open folder per level.
MAX_DEPTH = 64
#: How deep ``usage`` walks before it gives up (trees deeper than ``MAX_DEPTH``
#: cannot be made through the service, only on the server's own disk).
MAX_WALK_DEPTH = 4 * MAX_DEPTH
#: Characters that look like ``/`` or ``\`` but are not: refused in names, so a
#: listing never shows ``docs∕secret`` that reads as a folder and is not.
SLASH_LOOKALIKES = frozenset(
    "\u2044"  # ⁄ FRACTION SLASH
    "\u2215"  # ∕ DIVISION SLASH
    "\u2216"  # ∖ SET MINUS
    "\u2571"  # ╱ BOX DRAWINGS LIGHT DIAGONAL
    "\u2572"  # ╲ BOX DRAWINGS LIGHT DIAGONAL (the other way)
    "\u27cb"  # ⟋ MATHEMATICAL RISING DIAGONAL
    "\u27cd"  # ⟍ MATHEMATICAL FALLING DIAGONAL
    "\u29f5"  # ⧵ REVERSE SOLIDUS OPERATOR
    "\u29f8"  # ⧸ BIG SOLIDUS
    "\u29f9"  # ⧹ BIG REVERSE SOLIDUS
    "\u2afb"  # ⫻ TRIPLE SOLIDUS BINARY RELATION
    "\u2afd"  # ⫽ DOUBLE SOLIDUS OPERATOR
    "\ufe68"  # ﹨ SMALL REVERSE SOLIDUS
    "\uff0f"  # ／ FULLWIDTH SOLIDUS
    "\uff3c"  # ＼ FULLWIDTH REVERSE SOLIDUS
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: ``ls`` of a folder with more entries than this shows only the first ones.
MAX_LISTING = 10_000


#: Why the jail refuses a path, by code: the English template of each refusal (the
#: message id of its translation). The file server sends the code and the values
#: with its refusal (``ftp.wire.error_reply``), and the client says it in its
#: reader's language. A path is shown as the user sees it (``show_path``), a name
#: quoted (``repr``: the jail refuses control characters before it shows one).
REFUSALS = {
    "nul": N_("a path cannot contain a NUL byte"),
    "backslash": N_(
        "{name} contains a backslash: use '/' between folders, and no backslashes in names"
    ),
    "slash lookalike": N_(
        "{name} contains {char} ({code}), which looks like a slash but is not one: rename it "
        "with plain characters"
    ),
    "invisible": N_(
        "{name} contains the invisible or control character {code}: use visible characters"
    ),
    "lookalikes": N_(
        "{name} contains characters that Unicode treats as look-alikes of others (it "
        "normalises to {normal}): use that spelling instead"
    ),
    "name too long": N_("a name of {size} bytes is too long: at most {limit} bytes per name"),
    "upload name": N_(
        "{name} is how the server names an upload still arriving (it hides such files and "
        "deletes them when it restarts): choose another name"
    ),
    "not text": N_("a path must be text"),
    "path too long": N_("the path is too long: at most {limit} bytes"),
    "cwd too long": N_("the working folder is too long: at most {limit} bytes"),
    "too deep": N_(
        "{path}/... goes {depth} folders deep: at most {limit} levels, use a flatter tree"
    ),
    "together too long": N_(
        "the working folder and the path together are over {limit} bytes: use shorter names"
    ),
    "above home": N_(
        "{path} climbs above your home folder with '..': '/' is the top of your home, there "
        "is nothing above it for you"
    ),
    "home nested": N_(
        "this home has folders nested more than {depth} levels deep (the file service makes "
        "at most {limit}): remove the deepest ones"
    ),
    "home itself": N_("cannot {command} your home folder itself"),
    "is a folder, rm": N_("{path} is a folder: use rmdir"),
    "exists, rename": N_("{path} already exists: choose another name, or overwrite"),
    "link": N_(
        "{path} is (or goes through) a symbolic link: the file service never follows links, "
        "they could lead outside your home"
    ),
    "name too long for the system": N_(
        "{path}... is longer than the system allows: use shorter names"
    ),
    "not found": N_("{path}: no such file or folder (try ls)"),
    "exists": N_("{path} already exists"),
    "not a folder on the way": N_("{path}: a part of this path is a file, not a folder"),
    "is a folder": N_("{path} is a folder (use rmdir for folders)"),
    "not empty": N_("{path}: the folder is not empty (remove what is inside first)"),
    "permission": N_("{path}: permission denied on the server"),
    "disk full": N_("the server's disk is full: ask the instructor"),
    "disk quota": N_("the server's disk quota is full: ask the instructor"),
    "into itself": N_("{path}: cannot move a folder inside itself"),
    "system error": N_("{path}: {error}"),
    "not a file": N_("{path} is not a regular file"),
    "exists, not a file": N_("{path} exists and is not a file"),
}


# --- step 1: paths as words ------------------------------------------------------


def check_name(name: str) -> None:
    """Refuse a single name (no ``/`` in it) that the jail will not use."""
    if "\x00" in name:
        raise BadPathName(REFUSALS["nul"])
    shown = repr(name[:60])
    if "\\" in name:
        raise BadPathName(REFUSALS["backslash"], name=shown)
    for char in name:
        if char in SLASH_LOOKALIKES:
            raise BadPathName(
                REFUSALS["slash lookalike"], name=shown, char=repr(char), code=f"U+{ord(char):04X}"
            )
        if unicodedata.category(char).startswith(("C", "Z")) and char != " ":
            raise BadPathName(REFUSALS["invisible"], name=shown, code=f"U+{ord(char):04X}")
    if unicodedata.normalize("NFKC", name) != name:
        normal = repr(unicodedata.normalize("NFKC", name)[:60])
        raise BadPathName(REFUSALS["lookalikes"], name=shown, normal=normal)
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadPathName(
            REFUSALS["name too long"], size=len(name.encode("utf-8")), limit=MAX_NAME_BYTES
        )
    if is_temporary(name):
        # ``ls`` hides these names and a restarting server deletes every file
        # so named: a student's "notes" uploaded or renamed to one vanished.
        raise BadPathName(REFUSALS["upload name"], name=shown)


def split_path(path: str, cwd: str = "/") -> tuple[str, ...]:
    """The names that lead from the home to ``path``, read from folder ``cwd``.

    ``/`` is the home itself, so ``split_path("/docs/a.txt") == ("docs",
    "a.txt")``; a relative path starts at ``cwd``. ``..`` above the home
    raises ``PathOutsideHome``; bad characters raise ``BadPathName``.
    Nothing on disk is looked at: this is only reading words.
    """
    if not isinstance(path, str) or not isinstance(cwd, str):
        raise BadPathName(REFUSALS["not text"])
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadPathName(REFUSALS["path too long"], limit=MAX_PATH_BYTES)
    if len(cwd.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadPathName(REFUSALS["cwd too long"], limit=MAX_PATH_BYTES)
    names: list[str] = [] if path.startswith("/") else list(_words(cwd, "/"))
    for word in path.split("/"):
        _step(names, word, path)
    if len(names) > MAX_DEPTH:
        raise BadPathName(
            REFUSALS["too deep"], path=show_path(names[:3]), depth=len(names), limit=MAX_DEPTH
        )
    if len(show_path(names).encode("utf-8")) > MAX_PATH_BYTES:
        raise BadPathName(REFUSALS["together too long"], limit=MAX_PATH_BYTES)
    return tuple(names)


def _words(path: str, shown: str) -> list[str]:
    names: list[str] = []
    for word in path.split("/"):
        _step(names, word, shown)
    return names


def _step(names: list[str], word: str, shown: str) -> None:
    """Apply one word of a path to the list of names walked so far."""
    if word in ("", "."):
        return
    if word == "..":
        if not names:
            raise PathOutsideHome(REFUSALS["above home"], path=repr(shown[:80]))
        names.pop()
        return
    check_name(word)
    names.append(word)


def show_path(names: tuple[str, ...] | list[str]) -> str:
    """How the user sees a path: ``("docs", "a.txt")`` → ``/docs/a.txt``."""
    return "/" + "/".join(names)


# --- step 2: walking from the home, one name at a time ------------------------------


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing: what ``ls`` returns for each name."""

    name: str
    kind: str  # "file", "dir", "link" or "other"
    size: int
    mtime: float  # seconds since the epoch, as os.stat gives it

    @property
    def when(self) -> str:
        """The modification time as people read it: ``2026-12-01 14:05``, local time."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.mtime))

    def row(self) -> dict[str, Any]:
        """The entry as a table row (what ``ls`` prints), the time readable."""
        return {"name": self.name, "kind": self.kind, "size": self.size, "mtime": self.when}

    @classmethod
    def from_stat(cls, name: str, info: os.stat_result) -> FileInfo:
        """Describe ``info`` (from ``os.stat(..., follow_symlinks=False)``)."""
        if stat.S_ISDIR(info.st_mode):
            kind = "dir"
        elif stat.S_ISREG(info.st_mode):
            kind = "file"
        elif stat.S_ISLNK(info.st_mode):
            kind = "link"
        else:
            kind = "other"
        return cls(name, kind, info.st_size if kind == "file" else 0, info.st_mtime)


class Listing(list[FileInfo]):
    """What ``ls`` returns: a list of ``FileInfo``, and whether it was cut.

    ``truncated`` is True when the folder holds more than ``MAX_LISTING``
    entries and only the first ones (in the order the disk gave them,
    then sorted by name) are here.
    """

    truncated: bool = False


def _refusal(exc: OSError, names: tuple[str, ...] | list[str]) -> FileServiceError:
    """Turn an ``OSError`` into a message about the user's path (never the real one)."""
    shown = show_path(names)
    code = exc.errno
    if code == errno.ELOOP:
        return PathOutsideHome(REFUSALS["link"], path=shown)
    if code == errno.ENAMETOOLONG:
        return BadPathName(REFUSALS["name too long for the system"], path=shown[:80])
    reasons = {
        errno.ENOENT: "not found",
        errno.EEXIST: "exists",
        errno.ENOTDIR: "not a folder on the way",
        errno.EISDIR: "is a folder",
        errno.ENOTEMPTY: "not empty",
        errno.EACCES: "permission",
        errno.EPERM: "permission",
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota",
        errno.EINVAL: "into itself",
    }
    reason = reasons.get(code or 0, "system error")
    return FileServiceError(REFUSALS[reason], path=shown, error=os.strerror(code or 0))


def _link_or(exc: OSError, dir_fd: int, name: str) -> OSError:
    """``O_DIRECTORY | O_NOFOLLOW`` on a link fails with ENOTDIR: say "link" instead."""
    if exc.errno == errno.ENOTDIR:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    return exc


def open_directory(name: str, dir_fd: int | None = None) -> int:
    """Open a folder (not a link to one) for use as ``dir_fd``; the caller closes it."""
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def walk_tree(top_fd: int, max_depth: int = MAX_WALK_DEPTH) -> Iterator[tuple[int, os.DirEntry]]:
    """Every entry below the open folder ``top_fd``, with the descriptor of its folder.

    A loop over an explicit stack, not recursion: whoever made the tree
    chose its depth, and ``os.walk``/``os.fwalk`` recurse once per level
    (about 1,000 levels raise ``RecursionError``). Links are listed, never
    followed. The stack holds one open folder per level, so a tree deeper
    than ``max_depth`` raises ``FileServiceError`` instead of using up
    the server's file descriptors.
    """
    stack: list[tuple[int, Iterator[os.DirEntry]]] = []

    def enter(fd: int) -> None:
        try:
            listing = os.scandir(fd)
        except OSError:
            os.close(fd)
            raise
        stack.append((fd, listing))

    enter(os.dup(top_fd))
    try:
        while stack:  # each pass consumes one entry or closes one folder: it ends
            fd, listing = stack[-1]
            entry = next(listing, None)
            if entry is None:
                stack.pop()
                listing.close()  # type: ignore[attr-defined]
                os.close(fd)
                continue
            yield fd, entry
            if not entry.is_dir(follow_symlinks=False):
                continue
            if len(stack) >= max_depth:
                raise FileServiceError(REFUSALS["home nested"], depth=max_depth, limit=MAX_DEPTH)
            try:
                child = open_directory(entry.name, fd)
            except OSError:
                continue  # removed, or swapped for a link, while we walk: skip it
            enter(child)
    finally:
        for fd, listing in stack:
            listing.close()  # type: ignore[attr-defined]
            os.close(fd)


#: ``renameat2``'s flag that makes a rename fail (``EEXIST``) instead of replacing.
_RENAME_NOREPLACE = 1


def _find_renameat2() -> Any:
    """The C library's ``renameat2`` (Linux, glibc 2.28+), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _find_renameat2()
#: How ``rename_noreplace`` works on this system (the server's log says it at start).
NOREPLACE_METHOD = (
    "renameat2(RENAME_NOREPLACE)"
    if _RENAMEAT2 is not None
    else "link-then-unlink / mkdir-then-rename"
)


def rename_noreplace(old_fd: int, old: str, new_fd: int, new: str) -> None:
    """Rename ``old`` (in folder ``old_fd``) to ``new`` (in ``new_fd``), never replacing.

    Checking that ``new`` does not exist and then renaming leaves a moment
    in which another client can create ``new``, and ``rename`` would
    silently overwrite it. So the check *is* the rename: Linux's
    ``renameat2`` with ``RENAME_NOREPLACE`` fails with ``EEXIST`` instead.
    Where it is missing: a file is hard-linked to ``new`` (``link`` never
    replaces), then unlinked from ``old``; a folder (which cannot be
    linked) gets an empty placeholder made with ``mkdir`` (which never
    replaces) that ``rename`` then swaps for the folder.
    Raises ``OSError`` (``EEXIST`` when ``new`` exists).
    """
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(old_fd, os.fsencode(old), new_fd, os.fsencode(new), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code != errno.ENOSYS:  # ENOSYS: a kernel older than 3.15; use the fallback
            raise OSError(code, os.strerror(code))
    if not stat.S_ISDIR(os.stat(old, dir_fd=old_fd, follow_symlinks=False).st_mode):
        os.link(old, new, src_dir_fd=old_fd, dst_dir_fd=new_fd, follow_symlinks=False)
        os.unlink(old, dir_fd=old_fd)
        return
    os.mkdir(new, 0o700, dir_fd=new_fd)
    try:
        os.rename(old, new, src_dir_fd=old_fd, dst_dir_fd=new_fd)  # replaces only our empty one
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(new, dir_fd=new_fd)
        raise


class Jail:
    """One user's home folder, open, and every file operation inside it.

    Each method takes the *names* from ``split_path`` and walks them from
    the open home folder without following links. Errors are
    ``FileServiceError`` subclasses whose messages show the user's path
    (``/docs/a.txt``), never where the home really is on the server.
    ``with Jail.open(root, "alice") as jail: ...`` closes the folder at the end.
    """

    def __init__(self, home_fd: int, name: str) -> None:
        self.home_fd = home_fd
        self.name = name

    @classmethod
    def open(cls, root: str | os.PathLike[str], name: str) -> Jail:
        """Open ``root/name``, creating it (mode 0700) on first use."""
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise ValueError(f"{name!r} cannot be a home folder name")
        root_fd = open_directory(os.fspath(root))
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=root_fd)
            return cls(open_directory(name, root_fd), name)
        finally:
            os.close(root_fd)

    def close(self) -> None:
        """Close the home folder. Idempotent."""
        if self.home_fd >= 0:
            os.close(self.home_fd)
            self.home_fd = -1

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- walking ----------------------------------------------------------------

    @contextlib.contextmanager
    def directory(self, names: tuple[str, ...]) -> Iterator[int]:
        """An open descriptor of the folder ``names`` (the home for ``()``)."""
        fd = os.dup(self.home_fd)
        try:
            for depth, name in enumerate(names):
                try:
                    next_fd = open_directory(name, fd)
                except OSError as exc:
                    raise _refusal(_link_or(exc, fd, name), names[: depth + 1]) from None
                os.close(fd)
                fd = next_fd
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def parent(self, names: tuple[str, ...], what: str) -> Iterator[tuple[int, str]]:
        """``(folder descriptor, last name)`` for an operation on ``names`` itself."""
        if not names:
            raise PathOutsideHome(REFUSALS["home itself"], command=what)
        with self.directory(names[:-1]) as fd:
            yield fd, names[-1]

    def _lstat(self, fd: int, name: str, names: tuple[str, ...]) -> os.stat_result:
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise _refusal(exc, names) from None

    def exists(self, names: tuple[str, ...]) -> bool:
        """Is there anything (a file, folder or link) at ``names``?"""
        if not names:
            return True
        with self.directory(names[:-1]) as fd:
            try:
                os.stat(names[-1], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise _refusal(exc, names) from None
            return True

    # --- commands ---------------------------------------------------------------

    def stat(self, names: tuple[str, ...]) -> FileInfo:
        """What is at ``names`` (links are described, not followed)."""
        if not names:
            return FileInfo.from_stat("/", os.fstat(self.home_fd))
        with self.parent(names, "describe") as (fd, name):
            return FileInfo.from_stat(name, self._lstat(fd, name, names))

    def listdir(self, names: tuple[str, ...], limit: int = MAX_LISTING) -> Listing:
        """The entries of folder ``names`` sorted by name (or the one file, like ``ls file``).

        At most ``limit`` entries; ``truncated`` on the result says the folder has more.
        """
        if names and self.stat(names).kind != "dir":
            return Listing([self.stat(names)])
        entries = Listing()
        with self.directory(names) as fd, os.scandir(fd) as listing:
            for entry in listing:
                if is_temporary(entry.name):
                    continue  # uploads in progress are not files yet
                if len(entries) >= limit:
                    entries.truncated = True
                    break
                with contextlib.suppress(FileNotFoundError):  # removed while we list
                    info = entry.stat(follow_symlinks=False)
                    entries.append(FileInfo.from_stat(entry.name, info))
        entries.sort(key=lambda e: e.name)
        return entries

    def is_dir(self, names: tuple[str, ...]) -> bool:
        """Is ``names`` a folder (not a link to one)?"""
        with contextlib.suppress(FileServiceError), self.directory(names):
            return True
        return False

    def mkdir(self, names: tuple[str, ...]) -> None:
        """Make the folder ``names`` (its parent must exist)."""
        with self.parent(names, "create") as (fd, name):
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, names) from None

    def rmdir(self, names: tuple[str, ...]) -> None:
        """Remove the empty folder ``names``."""
        with self.parent(names, "remove") as (fd, name):
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, names) from None

    def remove(self, names: tuple[str, ...]) -> None:
        """Remove the file ``names`` (a link is removed itself; its target is untouched)."""
        with self.parent(names, "remove") as (fd, name):
            if stat.S_ISDIR(self._lstat(fd, name, names).st_mode):
                raise FileServiceError(REFUSALS["is a folder, rm"], path=show_path(names))
            try:
                os.unlink(name, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, names) from None

    def rename(self, old: tuple[str, ...], new: tuple[str, ...], overwrite: bool = False) -> None:
        """Move ``old`` to ``new``; an existing ``new`` is replaced only if ``overwrite``."""
        with (
            self.parent(old, "rename") as (old_fd, old_name),
            self.parent(new, "replace") as (new_fd, new_name),
        ):
            self._lstat(old_fd, old_name, old)
            if not overwrite and self.exists(new):
                raise FileServiceError(REFUSALS["exists, rename"], path=show_path(new))
            try:
                if overwrite:
                    os.rename(old_name, new_name, src_dir_fd=old_fd, dst_dir_fd=new_fd)
                else:  # the check above is for the message; this one closes the race
                    rename_noreplace(old_fd, old_name, new_fd, new_name)
            except OSError as exc:
                raise _refusal(exc, new if exc.errno == errno.EEXIST else old) from None

    def open_file(self, names: tuple[str, ...]) -> int:
        """Open the regular file ``names`` for reading; the caller closes the descriptor.

        ``O_NONBLOCK`` so that a named pipe cannot make the server wait
        forever; anything that is not a regular file is refused.
        """
        with self.parent(names, "read") as (fd, name):
            try:
                file_fd = os.open(name, _READ_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, names) from None
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            os.close(file_fd)
            raise FileServiceError(REFUSALS["not a file"], path=show_path(names))
        os.set_blocking(file_fd, True)
        return file_fd

    def usage(self, limit_entries: int = 1_000_000) -> int:
        """Bytes used by the files of the home (for the quota). Links are not followed.

        Uploads still arriving (temporary files) are not counted here: the
        server reserves their announced size while they arrive.
        """
        total = 0
        seen = 0
        for _, entry in walk_tree(self.home_fd):
            seen += 1
            if seen > limit_entries:
                return total
            if is_temporary(entry.name):
                continue
            with contextlib.suppress(OSError):  # removed while we count
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
        return total

    def writer(self, names: tuple[str, ...], overwrite: bool = False) -> AtomicFile:
        """An ``AtomicFile`` that will become ``names`` (see ``AtomicFile``)."""
        with self.parent(names, "replace") as (fd, name):
            if not overwrite and self.exists(names):
                raise FileServiceError(REFUSALS["exists, rename"], path=show_path(names))
            if self.exists(names) and self.stat(names).kind != "file":
                raise FileServiceError(REFUSALS["exists, not a file"], path=show_path(names))
            return AtomicFile(fd, name, overwrite=overwrite, shown=show_path(names))

    def __repr__(self) -> str:
        return f"Jail({self.name!r}, {'open' if self.home_fd >= 0 else 'closed'})"
