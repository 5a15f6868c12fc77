"""Trust on first use: remember each server's public key, like ssh's known_hosts.

Notebook 03 shows why a client must know the server's key: without it, a
man in the middle can answer the handshake with his own key and read
everything. The strongest fix is to *pin* the key (``server_key=`` with a
``.pub`` file or a fingerprint the instructor gave you). When you have
nothing to pin, ``KnownServers`` does what ssh does:

* the first time you connect to ``host:port``, the key the server shows is
  written down in a small CSV file (default ``keys/known_servers.csv``);
* every later time it must be the same key. A different key raises
  ``ServerKeyChanged`` naming both fingerprints and the file to edit.

The file, one row per server, readable in any editor::

    address,public_key
    127.0.0.1:9090,labcrypto-dh1 ffdhe2048 0x9a0b...

If the server really got a new key (the instructor re-ran ``keygen``),
delete its row (or call ``forget``) and connect again.

Used by ``labcrypto.client`` (and so by the chat client of notebooks 02–04
and the CLI's ``chat``).
"""

from __future__ import annotations

import csv
import io
import os
import threading
from pathlib import Path

from .errors import ServerKeyChanged
from .keys import PublicKey

__all__ = ["DEFAULT_KNOWN_SERVERS", "KnownServers"]

#: Where the client writes down the servers it has met.
DEFAULT_KNOWN_SERVERS = Path("keys") / "known_servers.csv"

_HEADER = ("address", "public_key")


def _address(host: str, port: int) -> str:
    """The row key: ``host:port`` (a server on another port is another server)."""
    return f"{host.strip().lower()}:{int(port)}"


class KnownServers:
    """The servers this client has met and their keys, kept in a CSV file at ``path``.

    Rows that cannot be read are ignored (a broken row never blocks
    connecting; it is simply not trusted). Safe to use from several threads.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_KNOWN_SERVERS) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    # --- the file -----------------------------------------------------------------

    def _read(self) -> dict[str, PublicKey]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        known: dict[str, PublicKey] = {}
        for row in csv.reader(io.StringIO(text)):
            if len(row) != 2 or tuple(row) == _HEADER or row[0].startswith("#"):
                continue
            try:
                known[row[0].strip().lower()] = PublicKey.from_text(row[1])
            except (ValueError, LookupError):
                continue  # a damaged row: not trusted, not fatal
        return known

    def _write(self, known: dict[str, PublicKey]) -> None:
        """Write a new file and rename it into place (a reader never sees half a file)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_HEADER)
        for address, key in sorted(known.items()):
            writer.writerow((address, key.to_text()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(out.getvalue(), encoding="utf-8")
        os.replace(temporary, self.path)

    # --- questions and changes ------------------------------------------------------

    def get(self, host: str, port: int) -> PublicKey | None:
        """The key recorded for ``host:port``, or None if we never met that server."""
        with self._lock:
            return self._read().get(_address(host, port))

    def check(self, host: str, port: int, key: PublicKey) -> bool:
        """Accept ``key`` for ``host:port``: record it the first time, compare it after.

        Returns True if the key was new (just recorded), False if it matched
        the recorded one. Raises ``ServerKeyChanged`` if it does not match.
        """
        address = _address(host, port)
        with self._lock:
            known = self._read()
            recorded = known.get(address)
            if recorded is None:
                known[address] = key
                self._write(known)
                return True
        if recorded != key:
            raise ServerKeyChanged(
                f"WARNING: the server at {address} now shows key {key.fingerprint}, but "
                f"the first time it showed {recorded.fingerprint}. Someone may be in the "
                "middle of your connection! Do not continue. If the instructor confirms "
                f"the server really has a new key, delete the {address} line from "
                f"{self.path} (or call forget()) and connect again."
            )
        return False

    def forget(self, host: str, port: int) -> bool:
        """Remove the row of ``host:port``; True if there was one."""
        address = _address(host, port)
        with self._lock:
            known = self._read()
            if known.pop(address, None) is None:
                return False
            self._write(known)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._read())

    def __repr__(self) -> str:
        return f"KnownServers({str(self.path)!r}, {len(self)} server(s))"
