"""The file service's client: one method per command, each a fresh connection.

``FileClient`` keeps what the server does not: the working folder (sent
with every request) and the server's pinned public key. Every call
connects, runs a handshake with fresh ephemeral keys, sends one request
and reads its reply; ``put`` and ``get`` stream the file in between
(``ftp.transfer``). A refusal from the server is raised as the error it
names (``PathOutsideHome``, ``QuotaExceeded``...).

Used by notebook 05_ftp and ``labcrypto ftp``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..channel import SecureChannel
from ..errors import (
    ChannelClosed,
    ConnectionLost,
    FileServiceError,
    LabCryptoError,
    ProtocolError,
    TransferFailed,
)
from ..i18n import N_
from ..jail import AtomicFile, FileInfo, Listing, show_path, split_path
from ..key_pool import EphemeralPool
from ..keys import KeyPair, PublicKey
from ..server import connect
from ..streams import close_stream
from ..untrusted import quote
from . import wire
from .transfer import receive_file, send_file
from .wire import CHUNK_SIZE, Progress, argument

#: What ``get`` says when the local file is already there (the shell says it its own way).
LOCAL_FILE_EXISTS = N_("{path} already exists here: choose another name, or overwrite=True")

__all__ = ["FileClient", "Transfer"]


@dataclass(frozen=True)
class Transfer:
    """What ``put`` and ``get`` return: which file, how big, how fast, in which session."""

    remote: str
    local: str
    size: int
    seconds: float
    session: str

    @property
    def mb_per_s(self) -> float:
        """Throughput in megabytes (10⁶ bytes) per second."""
        return self.size / 1e6 / self.seconds if self.seconds > 0 else float("inf")

    @cached_property
    def sha256(self) -> str:
        """The SHA-256 of the local file (read when first asked), to compare with ``sha256sum``.

        The transfer itself needs no digest: its sealed records and end
        record already prove every byte arrived, whole (``ftp.transfer``).
        """
        with open(self.local, "rb") as local:
            return hashlib.file_digest(local, "sha256").hexdigest()


class FileClient:
    """Talks to a ``FileServer``: one method per command, each a fresh connection.

    ``key`` is your long-term key pair (its public half must be on the
    server's allowlist). ``server_key`` pins the server's public key; if
    you leave it out, the key the server shows on the first request is
    pinned for the following ones (a key that changes raises
    ``ServerKeyChanged``). ``cwd`` is your working folder on the server:
    it lives here, in the client, and travels with every request.

    ``sessions`` holds the fingerprint of every request's session keys,
    newest last: with fresh keys for every request, they never repeat.
    """

    def __init__(
        self,
        host: str,
        port: int,
        key: KeyPair,
        server_key: PublicKey | str | None = None,
        cwd: str = "/",
        *,
        timeout: float = 10.0,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.host = host
        self.port = port
        self.key = key
        if isinstance(server_key, str):
            server_key = PublicKey.from_text(server_key)
        self.server_key = server_key
        self.cwd = show_path(split_path(cwd))
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.sessions: deque[str] = deque(maxlen=10_000)
        #: Each request's ephemeral key pair is made while the previous request
        #: waited for the server (``key_pool``); each is used once.
        self.ephemeral_pool = EphemeralPool(key.group)

    @property
    def last_session(self) -> str | None:
        """The session fingerprint of the latest request (``None`` before the first)."""
        return self.sessions[-1] if self.sessions else None

    # --- one request ----------------------------------------------------------------

    @contextlib.contextmanager
    def _request(self, command: str, **args: Any) -> Iterator[tuple[SecureChannel, dict]]:
        """Connect, handshake with fresh keys, send the command; yield the first reply."""
        sock = connect(self.host, self.port, self.timeout)
        try:
            channel = SecureChannel.client(
                sock,
                self.key,
                service="files",
                expected_server_key=self.server_key,
                timeout=self.timeout,
                ephemeral_pool=self.ephemeral_pool,
            )
        except BaseException:
            close_stream(sock)
            raise
        with channel:
            self.sessions.append(channel.session.fingerprint)
            if self.server_key is None:
                self.server_key = channel.session.peer_key
            channel.send(wire.encode({"command": command, "cwd": self.cwd, "args": args}))
            yield channel, wire.raise_if_error(wire.decode(channel.recv()))

    def _simple(self, command: str, **args: Any) -> Any:
        with self._request(command, **args) as (_, reply):
            return reply.get("result")

    # --- the commands -----------------------------------------------------------------

    def ls(self, path: str = ".") -> Listing:
        """The entries of a folder (or the one entry of a file), sorted by name.

        A long listing arrives in several frames (pages). If the folder has
        more entries than the server lists, ``truncated`` on the result is True.
        """
        with self._request("ls", path=path) as (channel, reply):
            pages = reply.get("pages", 1)
            if not isinstance(pages, int) or not 1 <= pages <= wire.MAX_PAGES:
                shown = quote(repr(pages), 40)
                announced = N_("the server announced {pages} pages of listing")
                raise ProtocolError(announced, pages=shown)
            items = list(_page(reply))
            for _ in range(pages - 1):
                items.extend(_page(wire.decode(channel.recv())))
        listing = Listing(FileInfo(**wire.listing_entry(item)) for item in items)
        listing.truncated = reply.get("truncated") is True
        return listing

    def pwd(self) -> str:
        """Your working folder on the server (kept here, no request needed)."""
        return self.cwd

    def cd(self, path: str) -> str:
        """Change the working folder (the server checks that it exists); return it."""
        self.cwd = str(self._simple("cd", path=path))
        return self.cwd

    def mkdir(self, path: str) -> str:
        """Make a folder; return its full path."""
        return str(self._simple("mkdir", path=path))

    def rmdir(self, path: str) -> str:
        """Remove an empty folder; return its full path."""
        return str(self._simple("rmdir", path=path))

    def rm(self, path: str) -> str:
        """Remove a file; return its full path."""
        return str(self._simple("rm", path=path))

    def rename(self, old: str, new: str, *, overwrite: bool = False) -> str:
        """Rename or move ``old`` to ``new`` (into ``new`` if it is a folder); return the result."""
        return str(self._simple("rename", old=old, new=new, overwrite=overwrite))

    def cat(self, path: str) -> str:
        """The contents of a (small, text) file."""
        parts: list[bytes] = []
        with self._request("cat", path=path) as (channel, reply):
            size = argument(reply, "size", int)
            receive_file(channel, lambda data: parts.append(bytes(data)), size, None)
        return b"".join(parts).decode("utf-8", errors="replace")

    def put(
        self,
        local: str | os.PathLike[str],
        remote: str | None = None,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Transfer:
        """Upload file ``local`` (to ``remote``, by default its name in the working folder).

        The server keeps it only when all of it arrived, every record
        authentic, and the end record came; an existing file is replaced
        only with ``overwrite=True``.
        """
        local_path = Path(local)
        remote = remote if remote is not None else local_path.name
        started = time.perf_counter()
        fd = os.open(local_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            with self._request("put", path=remote, size=size, overwrite=overwrite) as (
                channel,
                ready,
            ):
                self._stream_up(channel, fd, size, progress)
                final = wire.raise_if_error(wire.decode(self._final_reply(channel)))
        finally:
            os.close(fd)
        result = final.get("result") or {}
        return Transfer(
            remote=str(result.get("path", ready.get("path"))),
            local=str(local_path),
            size=size,
            seconds=time.perf_counter() - started,
            session=self.last_session or "",
        )

    def _stream_up(
        self, channel: SecureChannel, fd: int, size: int, progress: Progress | None
    ) -> None:
        """Send the file and the end record; if the server cuts us off, report its reason."""
        try:
            send_file(channel, fd, size, self.chunk_size, progress)
        except OSError:
            try:
                reply = wire.decode(channel.recv(timeout=1.0))
            except (OSError, LabCryptoError):
                reply = None
            if reply is not None:
                wire.raise_if_error(reply)  # the server said why it stopped listening
            raise TransferFailed(
                N_("the server closed the connection during the upload; it kept nothing")
            ) from None

    @staticmethod
    def _final_reply(channel: SecureChannel) -> bytes:
        """The server's answer to a whole upload; a cut connection here is a failed transfer."""
        try:
            return channel.recv()
        except (ConnectionLost, ChannelClosed) as exc:
            raise TransferFailed(
                N_("the connection ended before the server confirmed the upload ({error}): "
                   "ls shows whether it arrived"),
                error=exc,
            ) from None

    def get(
        self,
        remote: str,
        local: str | os.PathLike[str] | None = None,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Transfer:
        """Download ``remote`` to ``local`` (by default its name in the current folder).

        The data goes to a temporary file that becomes ``local`` only when
        all of it arrived, every record authentic, and the end record came.
        """
        local_path = Path(local) if local is not None else Path(remote.rstrip("/").split("/")[-1])
        if local_path.is_dir():
            local_path = local_path / remote.rstrip("/").split("/")[-1]
        if not overwrite and os.path.lexists(local_path):
            raise FileServiceError(
                LOCAL_FILE_EXISTS,
                path=local_path,
            )
        started = time.perf_counter()
        # The local side is the user's own computer: links there are followed.
        dir_fd = os.open(local_path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            target = AtomicFile(dir_fd, local_path.name, overwrite=overwrite, shown=str(local_path))
            with target, self._request("get", path=remote) as (channel, reply):
                size = argument(reply, "size", int)
                try:
                    receive_file(channel, target.write, size, progress, target.sha256)
                except (ConnectionLost, ChannelClosed, OSError) as exc:
                    raise TransferFailed(
                        N_("the download stopped in the middle ({error}); nothing was kept"),
                        error=exc,
                    ) from None
                target.commit()
        finally:
            os.close(dir_fd)
        return Transfer(
            remote=str(reply.get("path", remote)),
            local=str(local_path),
            size=size,
            seconds=time.perf_counter() - started,
            session=self.last_session or "",
        )

    def __repr__(self) -> str:
        return (
            f"FileClient({self.host}:{self.port}, cwd={self.cwd!r}, {len(self.sessions)} requests)"
        )


def _page(message: dict[str, Any]) -> list[Any]:
    """The entries of one page of a listing (checked to be a list)."""
    entries = message.get("result")
    if not isinstance(entries, list):
        raise ProtocolError(N_("the server sent a listing page that is not a list"))
    return entries
