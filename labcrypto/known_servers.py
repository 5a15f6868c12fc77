"""Trust on first use: remember each server's public key, like ssh's known_hosts.

Notebook 03 shows why a client must know the server's key: without it, a
man in the middle can answer the handshake with his own key and read
everything. The strongest fix is to *pin* the key (``server_key=`` with a
``.pub`` file or a fingerprint the instructor gave you). When you have
nothing to pin, ``KnownServers`` does what ssh does:

* the first time you connect to ``host:port``, the key the server shows is
  written down in a small CSV file (default ``known_servers.csv`` in your keys folder);
* every later time it must be the same key. A different key raises
  ``ServerKeyChanged`` naming both fingerprints and the file to edit.

The file, one row per server, readable in any editor::

    address,public_key
    127.0.0.1:9090,labcrypto-dh1 ffdhe2048 0x9a0b...

If the server really got a new key (the instructor re-ran ``keygen``),
delete its row (or call ``forget``) and connect again.

What it cannot do: the *first* connection trusts whatever key answers, so
a man in the middle on that one connection is written down as the server
(and the real server is refused afterwards, loudly). A row belongs to
``host:port``, so the same server reached by another name or port is met
for the first time again. Pinning the key you were given has neither gap.

The file fails closed: a row that cannot be read is an error naming the
file and the line (``KnownServersError``), never quietly dropped — a
dropped row would let the next connection trust whatever key it sees.
Changes are written to a temporary file with a name of its own, flushed to
disk and renamed into place, under a lock (``fcntl.flock`` on a ``.lock``
file beside it), so two clients started at once cannot lose each other's
rows and a crash never leaves half a file.

Used by ``labcrypto.client`` (and so by the chat client of notebooks 02–04
and the CLI's ``chat``).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import KnownServersError, LabCryptoError, ServerKeyChanged
from .groups import FFDHE2048, GROUPS, Group
from .i18n import N_
from .keys import PublicKey, default_dir

__all__ = ["DEFAULT_KNOWN_SERVERS", "KnownServers"]

#: The file, in your keys folder (``keys.default_dir()``), where the client writes
#: down the servers it has met.
DEFAULT_KNOWN_SERVERS = "known_servers.csv"

_HEADER = ("address", "public_key")


def _address(host: str, port: int) -> str:
    """The row key: ``host:port`` (a server on another port is another server)."""
    return f"{host.strip().lower()}:{int(port)}"


class KnownServers:
    """The servers this client has met and their keys, kept in a CSV file at ``path``.

    A row that cannot be read raises ``KnownServersError`` naming the file
    and line: fix or delete that line. Only keys of the lab's named groups
    (``groups.GROUPS``) in their one spelling are accepted. Safe to use from
    several threads and several processes.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        """``path``: the CSV file; by default ``known_servers.csv`` in your keys folder."""
        self.path = Path(path) if path is not None else default_dir() / DEFAULT_KNOWN_SERVERS
        self._lock = threading.Lock()

    # --- the file -----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold this process's lock and the file lock (other processes) together."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    @staticmethod
    def _group_of(text: str) -> Group:
        """The named group a row's key claims (toy23, ffdhe2048, ...); any other name, or
        ``safeBITS-SEED``, is left to ``from_canonical_text`` to refuse without a prime search."""
        words = text.split()
        return GROUPS.get(words[1], FFDHE2048) if len(words) > 1 else FFDHE2048

    def _read(self) -> dict[str, PublicKey]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise KnownServersError(
                N_("{path}: cannot read the file ({error})"), path=self.path, error=exc
            ) from None
        known: dict[str, PublicKey] = {}
        lines = text.splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            row = next(csv.reader([line]), [])
            if tuple(row) == _HEADER:
                continue
            if len(row) != 2:
                raise KnownServersError(
                    N_("{path}, line {line}: expected 'address,public_key', got {columns} "
                       "column(s). Fix the line, or delete it and connect again to record the "
                       "server's key"),
                    path=self.path,
                    line=number,
                    columns=len(row),
                )
            address = row[0].strip().lower()
            if address in known:
                raise KnownServersError(
                    N_("{path}, line {line}: {address} appears twice; keep one line"),
                    path=self.path,
                    line=number,
                    address=address,
                )
            try:
                known[address] = PublicKey.from_canonical_text(row[1], self._group_of(row[1]))
            except (ValueError, LabCryptoError) as exc:
                raise KnownServersError(
                    N_("{path}, line {line}: the key of {address} cannot be read ({error}). A "
                       "damaged row is never skipped: fix the line, or delete it and check the "
                       "server's fingerprint with the instructor when you connect again"),
                    path=self.path,
                    line=number,
                    address=address,
                    error=exc,
                ) from None
        return known

    def _write(self, known: dict[str, PublicKey]) -> None:
        """Write a new file and rename it into place (lock held).

        A temporary name of its own (two writers never share one), flushed
        to disk before the rename, so a crash leaves the old file or the new.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_HEADER)
        for address, key in sorted(known.items()):
            writer.writerow((address, key.to_text()))
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(out.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # --- questions and changes ------------------------------------------------------

    def get(self, host: str, port: int) -> PublicKey | None:
        """The key recorded for ``host:port``, or None if we never met that server."""
        with self._locked():
            return self._read().get(_address(host, port))

    def check(self, host: str, port: int, key: PublicKey) -> bool:
        """Accept ``key`` for ``host:port``: record it the first time, compare it after.

        Returns True if the key was new (just recorded), False if it matched
        the recorded one. Raises ``ServerKeyChanged`` if it does not match.
        """
        address = _address(host, port)
        with self._locked():
            known = self._read()
            recorded = known.get(address)
            if recorded is None:
                known[address] = key
                self._write(known)
                return True
        if recorded != key:
            raise ServerKeyChanged(
                N_("WARNING: the server at {address} now shows key {got}, but the first time "
                   "it showed {recorded}. Someone may be in the middle of your connection! Do "
                   "not continue. If the instructor confirms the server really has a new key, "
                   "delete the {address} line from {path} (or call forget()) and connect again."),
                address=address,
                got=key.fingerprint,
                recorded=recorded.fingerprint,
                path=self.path,
            )
        return False

    def forget(self, host: str, port: int) -> bool:
        """Remove the row of ``host:port``; True if there was one."""
        address = _address(host, port)
        with self._locked():
            known = self._read()
            if known.pop(address, None) is None:
                return False
            self._write(known)
            return True

    def __len__(self) -> int:
        with self._locked():
            return len(self._read())

    def __repr__(self) -> str:
        return f"KnownServers({str(self.path)!r}, {len(self)} server(s))"
