"""The server's allowlist: which client public keys may connect (task 3).

The server keeps a CSV file, one row per student, that a spreadsheet or a
text editor can open::

    name,public_key,comment
    alice,labcrypto-dh1 ffdhe2048 0x9a0b...,group A
    bob,labcrypto-dh1 ffdhe2048 0x51f3...,

During the handshake the client sends its long-term public key; the server
asks ``allowlist.is_allowed(key)`` and drops the connection if the answer
is no, before it sends anything encrypted.

Why keyed by public key, and not by IP address or a password? (Mistake #9
of the course.) An IP address says where packets came from, not who sent
them: students share lab machines and Wi-Fi NAT, addresses change, and
anyone can connect from an allowed address. A shared secret in the list
would be worse: the file would then be a list of passwords that anyone who
reads it can use. A public key is safe to write down. In secure mode only the
holder of the matching private key can finish the handshake with it — even
a thief who stole the *server's* private key cannot, because the session
keys also mix the client's static key with the server's fresh ephemeral key
(the ``se`` term, see ``handshake``). So "this key is allowed" means "this
person is allowed". (In the course's ``static`` mode it does not: whoever
holds the server's key can compute ``A^b`` and finish as any listed
student. Notebook 05 shows it.) The ``name`` is only a label for people
(and the name of the student's home folder in task 5).

What it does not do:

* It protects the server, not the client: a client that wants to know it
  reached the real server pins the server's key (``known_servers`` for
  trust on first use). Notebook 03 runs the man in the middle both ways.
* The check runs at the handshake: a row removed while its student is
  connected ends no conversation already open; it refuses the next one.
* It is no secret who is listed: anyone may present a public key (they
  are public) and see whether the server answers with its hello or with
  ``not_allowed``, before any proof of the private key. That tells them
  only that the holder of that key is enrolled.
* Whoever can write the file can enrol a key: keep it writable by the
  instructor only.

Rules, so that a key is one identity however it is written:

* One group, one spelling: an allowlist takes keys of the server's group
  only (``group=``, ffdhe2048 unless told otherwise), written exactly as
  ``labcrypto`` writes them (``0x`` and lowercase hex, no leading zeros).
  A row with a toy or small-group key, or another spelling of a number
  (``0x00AB``, ``171``), is reported with the line to write instead. A
  key may appear once, a name may appear once (ignoring case: ``Alice``
  and ``alice`` would share a home folder on some systems).
* Names follow the key-name rule of ``keys.key_paths``: Latin letters, digits,
  ``_``, ``-``, ``.``, at most 64 characters.
* A row that cannot be used (wrong number of columns, a bad key, a
  duplicate) is skipped and described in ``problems`` with its line
  number; the other rows still work. Blank lines and lines starting with
  ``#`` are ignored.
* The file is re-read when it changes on disk (its size, modification time
  or inode), checked on every query, so an instructor can delete a row
  while the server runs and that student's next connection is refused.
  ``add`` and ``remove`` write a new file and rename it into place, so a
  reader never sees half a file.

Used by notebook 03_allowlist and by ``labcrypto allow`` on the command
line; the server of notebook 04 and the file service of 05 check it too.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AllowlistError, LabCryptoError, NameNotOnAllowlist
from .groups import FFDHE2048, Group
from .i18n import N_
from .keys import PublicKey, key_paths

__all__ = ["HEADER", "Allowlist", "Entry"]

#: The first line of every allowlist file.
HEADER = ("name", "public_key", "comment")

#: A bigger file is refused (an allowlist for a class is a few kilobytes).
_MAX_BYTES = 4 * 1024 * 1024

#: What identifies one version of the file on disk: (inode, size, mtime in ns).
_Signature = tuple[int, int, int]


@dataclass(frozen=True)
class Entry:
    """One usable row of the allowlist: who, their key, a note, and where it is."""

    name: str
    key: PublicKey
    comment: str
    line: int


@dataclass(frozen=True)
class _Row:
    """Any data row, usable or not: what ``remove`` needs to find it again."""

    line: int
    name: str
    key: PublicKey | None


@dataclass(frozen=True)
class _Parsed:
    """Everything read from one version of the file."""

    lines: tuple[bytes, ...]
    entries: tuple[Entry, ...]
    rows: tuple[_Row, ...]
    problems: tuple[str, ...]
    by_key: dict[PublicKey, Entry] = field(default_factory=dict)


_EMPTY = _Parsed((), (), (), ())


def _check_name(name: str) -> None:
    """Refuse names that could not also be a key name or a folder name."""
    if not isinstance(name, str):
        raise AllowlistError(
            N_("a name must be a string, got {kind}"), kind=type(name).__name__
        )
    try:
        key_paths(name)  # the same rule as key files, so names are safe file names too
    except ValueError as exc:
        raise AllowlistError("{error}", error=exc) from exc


def _cells(text: str) -> list[str]:
    """Split one CSV line into stripped cells (raises ``csv.Error`` on a broken quote)."""
    row = next(csv.reader([text], strict=True), [])
    return [cell.strip() for cell in row]


def _csv_line(cells: tuple[str, ...] | list[str]) -> bytes:
    """One CSV line, quoted where needed (a comment may contain commas)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode("utf-8")


def _is_header(cells: list[str]) -> bool:
    lowered = [cell.lower() for cell in cells]
    return lowered in (list(HEADER), list(HEADER[:2]))


def _parse(where: str, data: bytes, group: Group = FFDHE2048) -> _Parsed:
    """Read the bytes of an allowlist file; never raises, reports instead."""
    lines = tuple(data.splitlines(keepends=True))
    entries: list[Entry] = []
    rows: list[_Row] = []
    problems: list[str] = []
    by_name: dict[str, Entry] = {}
    by_key: dict[PublicKey, Entry] = {}
    seen_header = False

    def problem(number: int, text: str) -> None:
        problems.append(f"{where}, line {number}: {text}")

    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # the byte-order mark some spreadsheets write
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem(number, f"not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8 CSV")
            continue
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            cells = _cells(text)
        except csv.Error as exc:
            problem(number, f"not a CSV row ({exc}); check the quotes")
            continue
        if not seen_header:
            seen_header = True
            if _is_header(cells):
                continue
            problem(
                number,
                f"the header {','.join(HEADER)!r} is missing; "
                "reading the rows in that order anyway (add the header line to silence this)",
            )
        entry = _parse_row(number, cells, problem, rows, group)
        if entry is None:
            continue
        twin = by_name.get(entry.name.casefold())
        if twin is not None:
            problem(number, f"the name {entry.name!r} is already on line {twin.line}; row skipped")
            continue
        twin = by_key.get(entry.key)
        if twin is not None:
            problem(
                number,
                f"this key is already on line {twin.line} as {twin.name!r} "
                "(the same key written another way); row skipped",
            )
            continue
        by_name[entry.name.casefold()] = by_key[entry.key] = entry
        entries.append(entry)

    if not seen_header and not problems:
        problems.append(f"{where}: the file is empty; expected the header {','.join(HEADER)!r}")
    return _Parsed(lines, tuple(entries), tuple(rows), tuple(problems), by_key)


def _parse_row(
    number: int,
    cells: list[str],
    problem: Callable[[int, str], None],
    rows: list[_Row],
    group: Group,
) -> Entry | None:
    """Turn one row's cells into an ``Entry``, or report why not and return None."""
    if len(cells) not in (2, 3):
        problem(
            number,
            f"expected 3 columns ({','.join(HEADER)}), got {len(cells)}; "
            'a comment containing commas needs "double quotes"',
        )
        if cells:
            rows.append(_Row(number, cells[0], None))
        return None
    name, key_text = cells[0], cells[1]
    comment = cells[2] if len(cells) == 3 else ""
    key: PublicKey | None = None
    try:
        key = PublicKey.from_canonical_text(key_text, group)
    except (ValueError, LabCryptoError) as exc:
        problem(number, f"bad public key for {name!r}: {exc}")
    rows.append(_Row(number, name, key))
    if key is None:
        return None
    try:
        _check_name(name)
    except AllowlistError as exc:
        problem(number, str(exc))
        return None
    return Entry(name, key, comment, number)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    Write a temporary file in the same folder (a rename is only atomic
    within one file system), flush it to disk, then rename it over the old
    one. The old file's permissions are kept.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Allowlist:
    """The allowlist CSV file at ``path``, re-read whenever it changes.

    A missing file is an empty list (nobody is allowed); ``add`` creates
    it. Every method is safe to call from several threads at once: server
    threads asking ``is_allowed`` while the CLI or a notebook cell edits.
    """

    def __init__(
        self, path: str | os.PathLike[str] = "keys/allowlist.csv", group: Group = FFDHE2048
    ) -> None:
        self.path = Path(path)
        #: The one group whose keys this list takes: the server's.
        self.group = group
        self._lock = threading.Lock()
        self._signature: _Signature | None = None
        self._loaded = False
        self._parsed = _EMPTY

    # --- reading --------------------------------------------------------------

    def _read(self) -> tuple[_Signature | None, _Parsed]:
        """Read the file now; the signature comes from the very file we read."""
        where = str(self.path)
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                signature = (info.st_ino, info.st_size, info.st_mtime_ns)
                if info.st_size > _MAX_BYTES:
                    return signature, _Parsed(
                        (), (), (), (f"{where}: the file is over {_MAX_BYTES} bytes; not read",)
                    )
                data = handle.read()
        except FileNotFoundError:
            return None, _EMPTY
        except OSError as exc:
            return None, _Parsed((), (), (), (f"{where}: cannot read the file ({exc})",))
        return signature, _parse(where, data, self.group)

    def _refresh(self) -> _Parsed:
        """Re-read the file if it changed since we last read it (lock held)."""
        try:
            info = os.stat(self.path)
            current: _Signature | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            current = None
        except OSError:
            current = None
            self._loaded = False  # unreadable: read it again to report why
        if not self._loaded or current != self._signature:
            self._signature, self._parsed = self._read()
            self._loaded = True
        return self._parsed

    def _current(self) -> _Parsed:
        with self._lock:
            return self._refresh()

    def reload(self) -> None:
        """Read the file again now, even if it looks unchanged."""
        with self._lock:
            self._loaded = False
            self._refresh()

    # --- questions --------------------------------------------------------------

    def is_allowed(self, key: PublicKey) -> bool:
        """Is this public key on the list? The server's question in the handshake."""
        if not isinstance(key, PublicKey):
            raise TypeError(
                f"is_allowed takes a PublicKey, got {type(key).__name__}: the allowlist "
                "identifies clients by public key, not by name or address"
            )
        return self.name_of(key) is not None

    def name_of(self, key: PublicKey) -> str | None:
        """The name this key is listed under, or None if it is not on the list."""
        entry = self._current().by_key.get(key)
        return None if entry is None else entry.name

    def entries(self) -> list[Entry]:
        """Every usable row, in file order."""
        return list(self._current().entries)

    @property
    def problems(self) -> list[str]:
        """Readable descriptions of the rows that were skipped (empty when all is well)."""
        return list(self._current().problems)

    def __len__(self) -> int:
        return len(self._current().entries)

    def __contains__(self, key: object) -> bool:
        """``key in allowlist`` for a ``PublicKey`` (names are labels, not identities)."""
        if not isinstance(key, PublicKey):
            raise TypeError(
                f"'in allowlist' takes a PublicKey, got {type(key).__name__}; "
                "to look up names use entries() or name_of(key)"
            )
        return self.is_allowed(key)

    def __repr__(self) -> str:
        parsed = self._current()
        text = f"Allowlist({str(self.path)!r}, {len(parsed.entries)} key(s)"
        if parsed.problems:
            text += f", {len(parsed.problems)} problem(s)"
        return text + ")"

    # --- changes ----------------------------------------------------------------

    def _fresh(self) -> _Parsed:
        """Read the file from disk before a change (lock held), ignoring the cache."""
        self._loaded = False
        return self._refresh()

    def _save(self, lines: list[bytes]) -> None:
        """Write the new file and make the next query read it back (lock held)."""
        _write_atomically(self.path, b"".join(lines))
        self._loaded = False

    def add(self, name: str, key: PublicKey, comment: str = "") -> Entry:
        """Put ``key`` on the list under ``name``; return the new entry.

        Refused (``AllowlistError``) if the name is taken, if the key is
        already there under another name, if it is not a key of this list's
        group, or if the name breaks the naming rule. The row is appended;
        the rest of the file, including rows with problems and ``#``
        comments, is kept as it was.
        """
        _check_name(name)
        if not isinstance(key, PublicKey):
            raise AllowlistError(
                N_("add takes a PublicKey, got {kind}; read one with keys.load_public(path) or "
                   "PublicKey.from_text(text)"),
                kind=type(key).__name__,
            )
        if key.group != self.group:
            raise AllowlistError(
                N_("this allowlist takes {group} keys only, and this key is {got}: a server in "
                   "secure mode never accepts a toy or small-group key (anyone can compute its "
                   "private half)"),
                group=self.group.name,
                got=key.group.name,
            )
        comment = comment.strip()
        if "\n" in comment or "\r" in comment:
            raise AllowlistError(N_("a comment must fit on one line; remove the line breaks"))
        with self._lock:
            parsed = self._fresh()
            for entry in parsed.entries:
                if entry.name.casefold() == name.casefold():
                    raise AllowlistError(
                        N_("{name} is already on the allowlist ({path}, line {line}); remove "
                           "it first to give it a new key, or choose another name"),
                        name=repr(name),
                        path=self.path,
                        line=entry.line,
                    )
                if entry.key == key:
                    raise AllowlistError(
                        N_("this key is already on the allowlist as {name} ({path}, line "
                           "{line}); one key is one person"),
                        name=repr(entry.name),
                        path=self.path,
                        line=entry.line,
                    )
            lines = list(parsed.lines)
            if not any(line.strip() for line in lines):
                lines = [_csv_line(HEADER)]
            elif not lines[-1].endswith((b"\n", b"\r")):
                lines[-1] += b"\n"
            lines.append(_csv_line([name, key.to_text(), comment]))
            self._save(lines)
            for entry in self._refresh().entries:
                if entry.key == key:
                    return entry
        raise AllowlistError(  # only if someone rewrote the file at the same instant
            N_("{path} changed while {name} was being added; check the file and try again"),
            path=self.path,
            name=repr(name),
        )

    def remove(self, name: str) -> Entry | None:
        """Take ``name`` off the list; return the entry that was removed.

        Every row with that name goes (ignoring case), and so does any
        skipped duplicate row holding the same key under another name: after
        ``remove``, that key is not allowed any more. Returns None if the
        only rows with that name were unusable ones (they are removed too).
        Raises ``NameNotOnAllowlist`` if no row has that name.
        """
        if not isinstance(name, str):
            raise AllowlistError(
                N_("remove takes a name (str), got {kind}"), kind=type(name).__name__
            )
        with self._lock:
            parsed = self._fresh()
            wanted = name.casefold()
            removed = next((e for e in parsed.entries if e.name.casefold() == wanted), None)
            drop = {row.line for row in parsed.rows if row.name.casefold() == wanted}
            if removed is not None:
                drop |= {row.line for row in parsed.rows if row.key == removed.key}
            if not drop:
                known = ", ".join(e.name for e in parsed.entries[:10])
                raise NameNotOnAllowlist(
                    N_("{name} is not on the allowlist {path} (names: {known}); check the "
                       "spelling")
                    if known
                    else N_("{name} is not on the allowlist {path} (the list is empty); check "
                            "the spelling"),
                    name=repr(name),
                    path=self.path,
                    known=known,
                )
            lines = [line for number, line in enumerate(parsed.lines, 1) if number not in drop]
            self._save(lines)
        return removed
