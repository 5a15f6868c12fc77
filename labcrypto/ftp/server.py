"""The encrypted file server: one request per connection, a home per user.

Each connection carries a handshake (with fresh ephemeral keys), one
request, its reply, and the close. The server keeps no session: the
client sends its working folder with each request. Every command runs
inside the user's ``Jail`` (``root/<name on the allowlist>``, shown as
``/``), and every failure a user can cause becomes a refusal with a
message that says what to do next.

Every request ends with a reply or a clean close, never with an
exception in the connection thread: a flawed request gets a refusal
("bad request: ..."), a transfer whose frames fail authentication is
dropped (nothing kept) with a refusal if the client still listens.
A listing too long for one frame travels in pages (``ls`` of thousands
of long names), and a folder over ``MAX_LISTING`` entries is cut *and
says so*. At start the server removes the temporary files of uploads
that a crash left behind, and logs how many.

Used by notebook 05_ftp and ``labcrypto ftp-serve``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from ..admission import Admission, AdmissionRules, HeldPerKey
from ..channel import SecureChannel
from ..errors import (
    ChannelClosed,
    ConnectionLost,
    FileServiceError,
    LabCryptoError,
    MalformedJSON,
    ProtocolError,
    UploadTooLarge,
    in_english,
)
from ..jail import NOREPLACE_METHOD, Jail, show_path, split_path
from ..key_pool import EphemeralPool
from ..keys import KeyPair, PublicKey
from ..server import ThreadedServer, handshake_busy_reply
from ..untrusted import quote
from . import wire
from .store import QuotaLedger, UploadStore, default_keep_free, remove_unfinished_uploads
from .transfer import receive_file, send_file
from .wire import CHUNK_SIZE, DEFAULT_MAX_CAT, DEFAULT_MAX_UPLOAD, argument, listing_pages

__all__ = ["DOOR", "FileServer"]

#: The file service's door (``labcrypto.admission``): at most 32 connections from one
#: address in their handshake at once, the rest told "busy" in words; with it, a
#: stranger's silent connections make room for a newcomer once the server is full
#: (``ThreadedServer._make_room``). Without it, 64 silent connections from anyone
#: turned every student away with a bare close for the whole handshake timeout.
#: Failed handshakes do not slow an address down here: every request is a handshake,
#: and notebook 05 and its checks try refused keys on purpose.
DOOR = AdmissionRules(max_per_source=32, free_failures=None)


class _Allowlist(Protocol):
    """What the server needs from an allowlist (``allowlist.Allowlist`` has it)."""

    def is_allowed(self, key: PublicKey) -> bool: ...
    def name_of(self, key: PublicKey) -> str | None: ...


class _StreamBroken(Exception):
    """A download failed after its data began: the server just closes the channel."""


class FileServer(ThreadedServer):
    """The encrypted file server: one request per connection, a home per user.

    ``key`` is the server's long-term key pair, ``allowlist`` decides who may
    connect (and names their home), ``root`` holds the homes. Limits:
    ``max_upload`` bytes per file, ``quota`` bytes per home (``None``: no
    quota), ``max_cat`` bytes for ``cat``, and ``keep_free`` bytes of the
    disk that uploads never use (None: 5 % of the disk, at most 1 GiB; 0:
    the whole disk may fill up). ``connection_timeout`` bounds
    each wait, the whole handshake, and each frame from its first byte to
    its last (a client that trickles a byte a second is dropped). ``door``:
    who may start a handshake (``DOOR``; None: everyone, up to
    ``max_connections``). ``max_requests_per_key``: requests one key may
    have under way at once (None: no limit). Start it like any
    ``ThreadedServer``: ``with FileServer(...) as server: server.port``.
    """

    def __init__(
        self,
        key: KeyPair,
        allowlist: _Allowlist,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        quota: int | None = None,
        max_cat: int = DEFAULT_MAX_CAT,
        chunk_size: int = CHUNK_SIZE,
        name: str | None = None,
        connection_timeout: float = 30.0,
        max_connections: int = 64,
        door: AdmissionRules | None = DOOR,
        keep_free: int | None = None,
        max_requests_per_key: int | None = 16,
    ) -> None:
        super().__init__(
            host,
            port,
            name=name,
            connection_timeout=connection_timeout,
            max_connections=max_connections,
        )
        self.key = key
        self.allowlist = allowlist
        self.root = Path(root).absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_upload = max_upload
        if keep_free is None:
            keep_free = default_keep_free(self.root)
        self.ledger = QuotaLedger(quota, self.root, keep_free)
        self.max_cat = max_cat
        self.chunk_size = chunk_size
        #: Each request's ephemeral key pair is made while the previous client
        #: worked out its half of the handshake (``key_pool``); each is used once.
        self.ephemeral_pool = EphemeralPool(key.group)
        self.admission = Admission(door) if door is not None else None
        self.max_requests_per_key = max_requests_per_key
        #: Requests under way per user. A transfer holds its connection while data
        #: flows, and a stuck one (a progress callback waiting for input, a loop that
        #: never reads) for the whole timeout: without a limit, one student's 64 stuck
        #: uploads held every connection of the service and the class was turned away.
        self._requests = HeldPerKey()

    @property
    def quota(self) -> int | None:
        """Bytes per home (``None``: no quota)."""
        return self.ledger.quota

    def start(self) -> FileServer:
        """Remove what crashed uploads left behind, then start serving (see ``ThreadedServer``)."""
        if not self.running:
            self._remove_unfinished_uploads()
            self.emit("start", f"rename without replacing: {NOREPLACE_METHOD}")
        super().start()
        return self

    def on_stop(self) -> None:
        """Drop the ephemeral key pairs made ahead: they protected nothing yet."""
        self.ephemeral_pool.clear()
        super().on_stop()

    def busy_reply(self, text: str) -> bytes:
        """A plain handshake ``error`` frame, code ``busy``: the client shows ``text``."""
        return handshake_busy_reply(text)

    def _remove_unfinished_uploads(self) -> None:
        try:
            removed = remove_unfinished_uploads(self.root)
        except (OSError, FileServiceError) as exc:
            why = in_english(exc)
            self.emit("error", f"could not look for unfinished uploads under {self.root}: {why}")
            return
        if removed.files:
            self.emit(
                "cleanup",
                f"removed {removed.files} unfinished upload(s) ({removed.size} bytes) "
                "left by a crash or kill",
            )

    def handle(self, conn: Any, address: tuple[str, int]) -> None:
        """One request: handshake (fresh keys), one command, one reply, close."""
        who = f"{address[0]}:{address[1]}"
        if self.wait_at_the_door(conn, address[0]):  # only with a door that slows failures
            return
        try:
            channel = SecureChannel.server(
                conn,
                self.key,
                allow=self.allowlist.is_allowed,
                service="files",
                timeout=self.connection_timeout,
                frame_timeout=self.connection_timeout,
                ephemeral_pool=self.ephemeral_pool,
            )
        except (LabCryptoError, OSError) as exc:
            stopping = self._stopping.is_set()
            self.handshake_finished(conn, None if stopping else False)
            self.emit("refused", f"{who}: {in_english(exc)}")
            return
        with channel:
            user = self.allowlist.name_of(channel.session.peer_key)
            if user is None:  # removed from the list during the handshake
                self._refuse(channel, FileServiceError(wire.REFUSALS["not allowed"]))
                return
            if not self._requests.take(user, self.max_requests_per_key):
                limit = self.max_requests_per_key
                self.emit("busy", f"{user}: refused, already {limit} requests under way")
                refusal = FileServiceError(wire.REFUSALS["requests per key"], limit=limit)
                self._refuse(channel, refusal)
                return
            try:
                self._serve(channel, user, conn)
            finally:
                self._requests.give_back(user)

    def _serve(self, channel: SecureChannel, user: str, conn: Any = None) -> None:
        """Read the request, run it inside the user's jail, send the reply.

        The connection leaves the door (``handshake_finished``) only once its
        request has arrived, not when the handshake ends. A client sends its
        request at once; one that holds a connection open without a request
        is a stuck or broken client, and a full server may close it to let
        someone else in (``ThreadedServer._make_room``). Before, one student's
        buggy loop that opened 64 connections and sent nothing turned the
        whole class away for the 30 s the server waits for a request.
        """
        fingerprint = channel.session.fingerprint
        try:
            frame = channel.recv()
        except (ProtocolError, ChannelClosed, OSError) as exc:
            self.emit("error", f"{user}: no valid request ({in_english(exc)})")
            return
        if conn is not None:
            self.handshake_finished(conn, True)
        try:
            request = wire.decode(frame)
        except MalformedJSON as exc:
            self.emit("denied", f"{user}: a malformed request ({in_english(exc)})")
            if wire.meant_as_object(frame):  # a request with a flaw: say which
                self._refuse(channel, FileServiceError(wire.REFUSALS["bad request"], error=exc))
            return  # not even an object: not our protocol, hang up
        command = request.get("command")
        shown = quote(command, limit=40)
        try:
            cwd = argument(request, "cwd", str, "/")
            args = argument(request, "args", dict, {})
            handler = self._commands().get(command) if isinstance(command, str) else None
            if handler is None:
                raise FileServiceError(wire.REFUSALS["unknown command"], command=shown)
            with Jail.open(self.root, user) as jail:
                reply = handler(channel, jail, cwd, args)
            if reply is not None:
                channel.send(wire.encode({"ok": True, **reply}))
            self.emit("request", f"{user}: {shown} ok (session {fingerprint})")
        except FileServiceError as exc:
            self.emit("denied", f"{user}: {shown}: {type(exc).__name__}: {in_english(exc)}")
            self._refuse(channel, exc)
        except (ConnectionLost, ChannelClosed, OSError, _StreamBroken) as exc:
            # The client went away mid-transfer, or the disk failed: nothing kept.
            self.emit("error", f"{user}: {shown}: {type(exc).__name__}: {in_english(exc)}")
        except ProtocolError as exc:
            # A frame failed authentication (tampered, replayed) or broke the
            # framing in the middle of a transfer: nothing was kept. The channel
            # has closed itself (no second chances), so the refusal below is
            # dropped quietly unless the failure left the channel usable.
            why = f"{type(exc).__name__}: {in_english(exc)}"
            self.emit("error", f"{user}: {shown}: broken off: {why}")
            self._refuse(channel, FileServiceError(wire.REFUSALS["broken off"], error=exc))

    @staticmethod
    def _refuse(channel: SecureChannel, exc: FileServiceError) -> None:
        """Send the refusal for ``exc``; a client that is already gone is not an error."""
        with contextlib.suppress(OSError, LabCryptoError):
            channel.send(wire.encode(wire.error_reply(exc)))

    def _commands(self) -> dict[str, Callable[..., dict[str, Any] | None]]:
        return {
            "ls": self._ls,
            "cd": self._cd,
            "mkdir": self._mkdir,
            "rmdir": self._rmdir,
            "rm": self._rm,
            "rename": self._rename,
            "cat": self._cat,
            "get": self._get,
            "put": self._put,
        }

    # --- the commands (each runs inside the user's jail) -------------------------

    @staticmethod
    def _path(cwd: str, args: dict[str, Any], name: str = "path") -> tuple[str, ...]:
        return split_path(argument(args, name, str, "."), cwd)

    def _ls(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> None:
        """The listing in pages: the reply holds the first, the next frames the rest."""
        names = self._path(cwd, args)
        entries = jail.listdir(names)
        pages = listing_pages([asdict(e) for e in entries])
        first = {
            "ok": True,
            "path": show_path(names),
            "result": pages[0],
            "pages": len(pages),
            "truncated": entries.truncated,
        }
        channel.send(wire.encode(first))
        for page in pages[1:]:
            channel.send(wire.encode({"result": page}))
        return None

    def _cd(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        if not jail.is_dir(names):
            jail.stat(names)  # raises the precise reason if it is missing or a link
            raise FileServiceError(wire.REFUSALS["not a folder"], path=show_path(names))
        return {"result": show_path(names)}

    def _mkdir(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        jail.mkdir(names)
        return {"result": show_path(names)}

    def _rmdir(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        _refuse_dot(argument(args, "path", str, "."), "remove")
        names = self._path(cwd, args)
        jail.rmdir(names)
        return {"result": show_path(names)}

    def _rm(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        jail.remove(names)
        return {"result": show_path(names)}

    def _rename(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        _refuse_dot(argument(args, "old", str, "."), "rename")
        old, new = self._path(cwd, args, "old"), self._path(cwd, args, "new")
        if old and jail.is_dir(new):
            new = (*new, old[-1])  # like mv: "rename a.txt docs" moves it into docs
        jail.rename(old, new, overwrite=argument(args, "overwrite", bool, False))
        return {"result": show_path(new)}

    def _cat(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> None:
        return self._get(channel, jail, cwd, args, limit=self.max_cat)

    def _get(
        self, channel: SecureChannel, jail: Jail, cwd: str, args: dict, limit: int | None = None
    ) -> None:
        names = self._path(cwd, args)
        fd = jail.open_file(names)
        try:
            size = os.fstat(fd).st_size
            if limit is not None and size > limit:
                raise FileServiceError(
                    wire.REFUSALS["too big for cat"], path=show_path(names), size=size, limit=limit
                )
            channel.send(wire.encode({"ok": True, "path": show_path(names), "size": size}))
            try:
                send_file(channel, fd, size, self.chunk_size, None)
            except FileServiceError as exc:
                # Data frames are under way: a JSON error now would read as data.
                # Saying goodbye before the end record is the signal; the client keeps nothing.
                raise _StreamBroken(in_english(exc)) from None
        finally:
            os.close(fd)
        return None

    def _put(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        """Receive an upload into a temporary file; keep it only if whole, ended and in quota.

        The announced size is booked in the quota ledger before the first
        byte (``receive_file`` refuses a byte more), and checked again at commit.
        If the end record carries a SHA-256, it is checked against the stored file.
        """
        names = self._path(cwd, args)
        size = argument(args, "size", int)
        overwrite = argument(args, "overwrite", bool, False)
        self._check_size(size)
        measure = _Measure(jail, names, overwrite, counted=self.quota is not None)
        with (
            self.ledger.reserve(jail.name, size, measure.used, measure.replaced),
            jail.writer(names, overwrite=overwrite) as target,
        ):
            channel.send(wire.encode({"ok": True, "path": show_path(names)}))
            store = UploadStore(target)
            digest = receive_file(channel, store.write, size, None, store.sha256)
            store.check()
            target.sync()  # the slow part of the commit, outside the ledger's lock
            self.ledger.commit(jail.name, size, measure.used, measure.replaced, store.commit)
        result = {"path": show_path(names), "size": size}
        return {"result": result if digest is None else {**result, "sha256": digest}}

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise FileServiceError(wire.REFUSALS["negative size"])
        if size > self.max_upload:
            limit = self.max_upload
            raise UploadTooLarge(wire.REFUSALS["upload too large"], size=size, limit=limit)


class _Measure:
    """What the quota check needs, measured on disk each time it is asked."""

    def __init__(self, jail: Jail, names: tuple[str, ...], overwrite: bool, counted: bool) -> None:
        self.jail, self.names, self.overwrite, self.counted = jail, names, overwrite, counted

    def used(self) -> int:
        """Bytes of the home's files now (0 without a quota: no need to walk)."""
        return self.jail.usage() if self.counted else 0

    def replaced(self) -> int:
        """Bytes of the file this upload replaces (0 if none)."""
        if not (self.counted and self.overwrite and self.jail.exists(self.names)):
            return 0
        info = self.jail.stat(self.names)
        return info.size if info.kind == "file" else 0


def _refuse_dot(path: str, what: str) -> None:
    """Refuse ``rmdir .`` / ``rename .. x``: POSIX refuses them too (``EINVAL``).

    ``split_path`` reads ``docs/.`` as ``docs``, which is right for ``ls``
    but would let ``rmdir .`` remove the working folder out from under
    the user. Name the folder from its parent instead.
    """
    words = [word for word in path.split("/") if word]
    last = words[-1] if words else ("/" if path.startswith("/") else ".")
    if last in (".", ".."):
        raise FileServiceError(wire.REFUSALS["dot path"], command=what, path=quote(path))
