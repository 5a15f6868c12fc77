"""The encrypted file service (task 5): the course's FTP server, made secure.

The course's file server works **one request per connection**: connect,
send one command, get the reply, close. This one keeps that shape and
puts a full key exchange in front of every request::

    client                                         server
    connect ──────────────────────────────────────► accept
    handshake with a *fresh* ephemeral key pair ◄─► fresh pair too; static key
                                                    checked against the allowlist
    {"command": "ls", "cwd": "/docs", "args": {...}} ──►
                                                ◄── {"ok": true, "result": [...]}
    close                                           close

* **New keys every time.** Both sides make new ephemeral Diffie-Hellman
  key pairs for each request and mix them into the session keys, so every
  request has its own keys (``FileClient.sessions`` lists their
  fingerprints: they never repeat). Stealing a long-term key later does
  not open recorded traffic (forward secrecy). Who you are still comes
  from your long-term (static) key and the allowlist, checked on every
  request.
* **No session on the server.** The working directory is the client's:
  it is sent with each request. ``cd`` only asks the server whether the
  folder exists.
* **A home you cannot leave.** Each user works in ``root/<name on the
  allowlist>``, created on first use and shown as ``/``. The ``jail``
  module refuses every way out (``..``, links, odd names).
* **Whole files or nothing.** ``put`` and ``get`` stream the file in
  frames of 512 KiB, never holding it in memory, and end with the
  SHA-256 of the whole file, which the receiver checks. The receiver
  writes into a temporary file and renames it into place only when it is
  complete and verified: a transfer cut in the middle leaves the previous
  version untouched and no half file.

A transfer, on the wire (after the handshake; every frame is encrypted)::

    put:  request {size} ──► ◄── {"ok": true}   data, data, ..., {"sha256"} ──► ◄── reply
    get:  request ──► ◄── {"ok": true, "size"}   ◄── data, data, ..., {"sha256"}

Used by notebook 05_ftp and by ``labcrypto ftp-serve`` / ``labcrypto ftp``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import queue
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .channel import SecureChannel
from .errors import (
    BadPathName,
    ChannelClosed,
    ConnectionLost,
    FileServiceError,
    LabCryptoError,
    PathOutsideHome,
    PathRefused,
    ProtocolError,
    QuotaExceeded,
    TransferFailed,
    UploadTooLarge,
)
from .jail import AtomicFile, FileInfo, Jail, show_path, split_path
from .keys import KeyPair, PublicKey
from .server import ThreadedServer, connect

__all__ = [
    "CHUNK_SIZE",
    "COMMANDS",
    "DEFAULT_MAX_CAT",
    "DEFAULT_MAX_UPLOAD",
    "FileClient",
    "FileInfo",
    "FileServer",
    "Progress",
    "Transfer",
    "run_command",
]

#: Plaintext bytes per data frame. Big frames keep the per-frame Python work
#: small next to the bytes moved; 512 KiB + the 16-byte tag is under the 1 MiB limit.
CHUNK_SIZE = 512 * 1024
#: Largest upload the server accepts unless told otherwise (2 GiB).
DEFAULT_MAX_UPLOAD = 2 << 30
#: Largest file ``cat`` shows (bigger files: use ``get``).
DEFAULT_MAX_CAT = 1 << 20

#: How long a transfer's two threads wait for each other before giving up (s).
_PIPELINE_TIMEOUT = 60.0

#: The errors of a full disk (or a full disk quota) on the server.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

#: ``progress(done_bytes, total_bytes)``, called after every frame of a transfer.
Progress = Callable[[int, int], None]

# The errors that may travel from the server to the client, by name. A fixed
# table: the client never turns a name from the network into an arbitrary class.
_WIRE_ERRORS: dict[str, type[FileServiceError]] = {
    cls.__name__: cls
    for cls in (
        FileServiceError,
        PathRefused,
        PathOutsideHome,
        BadPathName,
        TransferFailed,
        UploadTooLarge,
        QuotaExceeded,
    )
}


class _Allowlist(Protocol):
    """What the server needs from an allowlist (``allowlist.Allowlist`` has it)."""

    def is_allowed(self, key: PublicKey) -> bool: ...
    def name_of(self, key: PublicKey) -> str | None: ...


@dataclass(frozen=True)
class Transfer:
    """What ``put`` and ``get`` return: which file, how big, its digest, how fast."""

    remote: str
    local: str
    size: int
    sha256: str
    seconds: float
    session: str

    @property
    def mb_per_s(self) -> float:
        """Throughput in megabytes (10⁶ bytes) per second."""
        return self.size / 1e6 / self.seconds if self.seconds > 0 else float("inf")


# --- messages ------------------------------------------------------------------------


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def _decode(data: bytes) -> dict[str, Any]:
    """A JSON object from the peer (never ``pickle``: course mistake 7)."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the peer sent a message that is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("the peer sent JSON that is not an object")
    return message


def _error_reply(exc: FileServiceError) -> dict[str, Any]:
    name = type(exc).__name__ if type(exc).__name__ in _WIRE_ERRORS else "FileServiceError"
    return {"ok": False, "error": name, "message": str(exc)[:1000]}


def _raise_if_error(reply: dict[str, Any]) -> dict[str, Any]:
    """Return a successful reply; raise the error an unsuccessful one carries."""
    if reply.get("ok") is True:
        return reply
    kind = _WIRE_ERRORS.get(str(reply.get("error")), FileServiceError)
    message = reply.get("message")
    raise kind(message[:1000] if isinstance(message, str) else "the server refused the request")


def _arg(args: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """One argument of a request, checked for type (a request is untrusted input)."""
    value = args.get(name, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FileServiceError(f"bad request: {name!r} must be {kind.__name__}")
    return value


# --- streaming -------------------------------------------------------------------------


def _send_file(
    channel: SecureChannel, fd: int, size: int, chunk: int, progress: Progress | None
) -> str:
    """Send ``size`` bytes of file ``fd`` in frames; return their SHA-256 (hex).

    The digest is computed in a second thread while this one encrypts and
    sends (see ``_Pipeline``).
    """
    pipeline = _Pipeline(None)
    try:
        done = 0
        while done < size:  # each pass sends >= 1 byte: at most `size` passes
            data = os.read(fd, min(chunk, size - done))
            if not data:
                raise TransferFailed(
                    f"the file shrank while it was being sent ({done} of {size} bytes)"
                )
            pipeline.put(data)
            channel.send(data)
            done += len(data)
            if progress is not None:
                progress(done, size)
        return pipeline.finish()
    finally:
        pipeline.close()


class _Pipeline:
    """Hash (and store) chunks in a second thread while the first one does the network.

    Receiving a chunk (``recv_into``, decryption) and storing it (SHA-256,
    ``os.write``) take about the same time; so do hashing a chunk and
    encrypting and sending it. ``hashlib`` and ``os.write`` release the
    GIL, so the second thread really runs at the same time, on the other
    core: a transfer goes at the pace of the slower half instead of the
    sum of both. ``sink=None`` only hashes (the sending side). The queue
    holds at most ``depth`` chunks, so memory stays bounded (a few MiB)
    whatever the file size.
    """

    def __init__(self, sink: Callable[[bytes], object] | None, depth: int = 4) -> None:
        self.digest = hashlib.sha256()
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="labcrypto-ftp-store", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:  # ends at the None that finish()/close() always send
            try:
                data = self._queue.get(timeout=_PIPELINE_TIMEOUT)
            except queue.Empty:
                self._error = self._error or TimeoutError("the receiving side stopped")
                return
            if data is None:
                return
            if self._error is None:
                try:
                    self.digest.update(data)
                    if self._sink is not None:
                        self._sink(data)
                except BaseException as exc:  # handed to the receiving thread
                    self._error = exc

    def put(self, data: bytes) -> None:
        """Queue one chunk (waits while the queue is full)."""
        if self._error is not None:
            raise self._error
        self._queue.put(data, timeout=_PIPELINE_TIMEOUT)

    def finish(self) -> str:
        """Wait until every chunk is stored; return the SHA-256 of them all (hex)."""
        self.close()
        if self._error is not None:
            raise self._error
        return self.digest.hexdigest()

    def close(self) -> None:
        """Stop the thread (after the chunks already queued). Idempotent."""
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=_PIPELINE_TIMEOUT)
            self._thread.join(_PIPELINE_TIMEOUT)


def _receive_file(
    channel: SecureChannel, sink: Callable[[bytes], object], size: int, progress: Progress | None
) -> str:
    """Receive ``size`` bytes in frames into ``sink``, then check the SHA-256 frame."""
    pipeline = _Pipeline(sink)
    try:
        done = 0
        while done < size:  # each frame brings >= 1 byte (empty means goodbye)
            data = channel.recv()
            if len(data) > size - done:
                raise TransferFailed(
                    f"the sender sent more than the {size} bytes it announced; nothing was kept"
                )
            pipeline.put(data)
            done += len(data)
            if progress is not None:
                progress(done, size)
        digest = pipeline.finish()
    finally:
        pipeline.close()
    try:
        sent = _decode(channel.recv()).get("sha256")
    except ProtocolError:
        sent = None
    if not isinstance(sent, str) or not hmac.compare_digest(sent, digest):
        raise TransferFailed(
            "the file's SHA-256 does not match what the sender computed; nothing was kept"
        )
    return digest


class _UploadStore:
    """Writes an upload into its temporary file, and survives a full disk.

    If the disk fills up (``ENOSPC``), the temporary file is removed at
    once (giving the space back) and the rest of the upload is read and
    dropped, so the conversation stays in step and the client gets a clear
    "disk full" reply instead of a cut connection. ``check`` raises it.
    """

    def __init__(self, target: AtomicFile) -> None:
        self.target = target
        self.full: OSError | None = None

    def write(self, data: bytes) -> None:
        """Append ``data``, unless the disk was found full before."""
        if self.full is not None:
            return
        try:
            self.target.write(data)
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            self.full = exc
            self.target.abort()

    def check(self) -> None:
        """Raise ``FileServiceError`` if the disk was full: nothing was kept."""
        if self.full is not None:
            raise FileServiceError(
                f"the server's disk is full ({os.strerror(self.full.errno or 0)}): the upload "
                "was not kept and your previous version is untouched. Tell the instructor"
            )

    def commit(self) -> None:
        """Put the file in place; a disk that fills up while flushing counts as full."""
        self.check()
        try:
            self.target.commit()
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                raise
            self.full = exc
            self.target.abort()
            self.check()


# --- the server ----------------------------------------------------------------------


class _StreamBroken(Exception):
    """A download failed after its data began: the server just closes the channel."""


class FileServer(ThreadedServer):
    """The encrypted file server: one request per connection, a home per user.

    ``key`` is the server's long-term key pair, ``allowlist`` decides who may
    connect (and names their home), ``root`` holds the homes. Limits:
    ``max_upload`` bytes per file, ``quota`` bytes per home (``None``: no
    quota), ``max_cat`` bytes for ``cat``. ``connection_timeout`` bounds
    each wait, the whole handshake, and each frame from its first byte to
    its last (a client that trickles a byte a second is dropped). Start it like any
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
        self.quota = quota
        self.max_cat = max_cat
        self.chunk_size = chunk_size

    def handle(self, conn: Any, address: tuple[str, int]) -> None:
        """One request: handshake (fresh keys), one command, one reply, close."""
        who = f"{address[0]}:{address[1]}"
        try:
            channel = SecureChannel.server(
                conn,
                self.key,
                allow=self.allowlist.is_allowed,
                require_ephemeral=True,
                timeout=self.connection_timeout,
                frame_timeout=self.connection_timeout,
            )
        except (LabCryptoError, OSError) as exc:
            self.emit("refused", f"{who}: {exc}")
            return
        with channel:
            user = self.allowlist.name_of(channel.session.peer_key)
            if user is None:  # removed from the list during the handshake
                channel.send(_encode(_error_reply(FileServiceError("your key is not allowed"))))
                return
            self._serve(channel, user)

    def _serve(self, channel: SecureChannel, user: str) -> None:
        """Read the request, run it inside the user's jail, send the reply."""
        fingerprint = channel.session.fingerprint
        try:
            request = _decode(channel.recv())
        except (ProtocolError, ChannelClosed, OSError) as exc:
            self.emit("error", f"{user}: no valid request ({exc})")
            return
        command = request.get("command")
        try:
            cwd = _arg(request, "cwd", str, "/")
            args = _arg(request, "args", dict, {})
            handler = self._commands().get(str(command))
            if handler is None:
                raise FileServiceError(f"unknown command {str(command)[:40]!r}: try help")
            with Jail.open(self.root, user) as jail:
                reply = handler(channel, jail, cwd, args)
            if reply is not None:
                channel.send(_encode({"ok": True, **reply}))
            self.emit("request", f"{user}: {command} ok (session {fingerprint})")
        except FileServiceError as exc:
            self.emit("denied", f"{user}: {command}: {type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError, LabCryptoError):
                channel.send(_encode(_error_reply(exc)))
        except (ConnectionLost, ChannelClosed, OSError, _StreamBroken) as exc:
            # The client went away mid-transfer, or the disk failed: nothing kept.
            self.emit("error", f"{user}: {command}: {type(exc).__name__}: {exc}")

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
        return split_path(_arg(args, name, str, "."), cwd)

    def _ls(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        entries = jail.listdir(names)
        return {"path": show_path(names), "result": [asdict(e) for e in entries]}

    def _cd(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        if not jail.is_dir(names):
            jail.stat(names)  # raises the precise reason if it is missing or a link
            raise FileServiceError(f"{show_path(names)} is not a folder")
        return {"result": show_path(names)}

    def _mkdir(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        jail.mkdir(names)
        return {"result": show_path(names)}

    def _rmdir(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        jail.rmdir(names)
        return {"result": show_path(names)}

    def _rm(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        jail.remove(names)
        return {"result": show_path(names)}

    def _rename(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        old, new = self._path(cwd, args, "old"), self._path(cwd, args, "new")
        if old and jail.is_dir(new):
            new = (*new, old[-1])  # like mv: "rename a.txt docs" moves it into docs
        jail.rename(old, new, overwrite=_arg(args, "overwrite", bool, False))
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
                    f"{show_path(names)} has {size} bytes, over the {limit}-byte limit "
                    "of cat: use get to download it"
                )
            channel.send(_encode({"ok": True, "path": show_path(names), "size": size}))
            try:
                digest = _send_file(channel, fd, size, self.chunk_size, None)
            except FileServiceError as exc:
                # Data frames are under way: a JSON error now would read as data.
                # Saying goodbye early is the signal; the client keeps nothing.
                raise _StreamBroken(str(exc)) from None
            channel.send(_encode({"sha256": digest}))
        finally:
            os.close(fd)
        return None

    def _put(self, channel: SecureChannel, jail: Jail, cwd: str, args: dict) -> dict:
        names = self._path(cwd, args)
        size = _arg(args, "size", int)
        overwrite = _arg(args, "overwrite", bool, False)
        self._check_limits(jail, names, size, overwrite)
        with jail.writer(names, overwrite=overwrite) as target:
            channel.send(_encode({"ok": True, "path": show_path(names)}))
            store = _UploadStore(target)
            digest = _receive_file(channel, store.write, size, None)
            store.commit()
        return {"result": {"path": show_path(names), "size": size, "sha256": digest}}

    def _check_limits(self, jail: Jail, names: tuple[str, ...], size: int, overwrite: bool) -> None:
        if size < 0:
            raise FileServiceError("bad request: a negative size")
        if size > self.max_upload:
            raise UploadTooLarge(
                f"{size} bytes is over this server's upload limit of {self.max_upload} bytes"
            )
        if self.quota is None:
            return
        replaced = 0
        if overwrite and jail.exists(names) and jail.stat(names).kind == "file":
            replaced = jail.stat(names).size
        used = jail.usage()
        if used - replaced + size > self.quota:
            raise QuotaExceeded(
                f"your home uses {used} of its {self.quota} bytes; {size} more do not fit. "
                "Remove some files (rm) and try again"
            )


# --- the client ------------------------------------------------------------------------


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
                ephemeral=True,
                expected_server_key=self.server_key,
                timeout=self.timeout,
            )
        except BaseException:
            sock.close()
            raise
        with channel:
            self.sessions.append(channel.session.fingerprint)
            if self.server_key is None:
                self.server_key = channel.session.peer_key
            channel.send(_encode({"command": command, "cwd": self.cwd, "args": args}))
            yield channel, _raise_if_error(_decode(channel.recv()))

    def _simple(self, command: str, **args: Any) -> Any:
        with self._request(command, **args) as (_, reply):
            return reply.get("result")

    # --- the commands -----------------------------------------------------------------

    def ls(self, path: str = ".") -> list[FileInfo]:
        """The entries of a folder (or the one entry of a file), sorted by name."""
        entries = self._simple("ls", path=path)
        return [FileInfo(**_entry(item)) for item in entries]

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
            size = _arg(reply, "size", int)
            _receive_file(channel, parts.append, size, None)
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

        The server keeps it only when all of it arrived and its SHA-256
        matched; an existing file is replaced only with ``overwrite=True``.
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
                digest = self._stream_up(channel, fd, size, progress)
                final = _raise_if_error(_decode(channel.recv()))
        finally:
            os.close(fd)
        result = final.get("result") or {}
        return Transfer(
            remote=str(result.get("path", ready.get("path"))),
            local=str(local_path),
            size=size,
            sha256=digest,
            seconds=time.perf_counter() - started,
            session=self.last_session or "",
        )

    def _stream_up(
        self, channel: SecureChannel, fd: int, size: int, progress: Progress | None
    ) -> str:
        """Send the file and its digest; if the server cuts us off, report its reason."""
        try:
            digest = _send_file(channel, fd, size, self.chunk_size, progress)
            channel.send(_encode({"sha256": digest}))
            return digest
        except OSError:
            with contextlib.suppress(OSError, LabCryptoError):
                _raise_if_error(_decode(channel.recv(timeout=1.0)))
            raise TransferFailed(
                "the server closed the connection during the upload; it kept nothing"
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
        all of it arrived and its SHA-256 matched.
        """
        local_path = Path(local) if local is not None else Path(remote.rstrip("/").split("/")[-1])
        if local_path.is_dir():
            local_path = local_path / remote.rstrip("/").split("/")[-1]
        if not overwrite and os.path.lexists(local_path):
            raise FileServiceError(
                f"{local_path} already exists here: choose another name, or overwrite=True"
            )
        started = time.perf_counter()
        # The local side is the user's own computer: links there are followed.
        dir_fd = os.open(local_path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            target = AtomicFile(dir_fd, local_path.name, overwrite=overwrite, shown=str(local_path))
            with target, self._request("get", path=remote) as (channel, reply):
                size = _arg(reply, "size", int)
                try:
                    digest = _receive_file(channel, target.write, size, progress)
                except (ConnectionLost, ChannelClosed, OSError) as exc:
                    raise TransferFailed(
                        f"the download stopped in the middle ({exc}); nothing was kept"
                    ) from None
                target.commit()
        finally:
            os.close(dir_fd)
        return Transfer(
            remote=str(reply.get("path", remote)),
            local=str(local_path),
            size=size,
            sha256=digest,
            seconds=time.perf_counter() - started,
            session=self.last_session or "",
        )

    def __repr__(self) -> str:
        return (
            f"FileClient({self.host}:{self.port}, cwd={self.cwd!r}, {len(self.sessions)} requests)"
        )


def _entry(item: Any) -> dict[str, Any]:
    """A listing entry from the server, checked before it becomes a ``FileInfo``."""
    if not isinstance(item, dict):
        raise ProtocolError("the server sent a listing entry that is not an object")
    try:
        return {
            "name": str(item["name"]),
            "kind": str(item["kind"]),
            "size": int(item["size"]),
            "mtime": float(item["mtime"]),
        }
    except (KeyError, TypeError, ValueError):
        raise ProtocolError("the server sent a malformed listing entry") from None


# --- the command line: one text command at a time -------------------------------------

#: Every command of the shell: usage, what it does (``help`` shows both), and
#: how many arguments it takes (least, most), not counting ``-f``.
COMMANDS: dict[str, tuple[str, str, int, int]] = {
    "ls": ("ls [PATH]", "list a folder (default: the working folder)", 0, 1),
    "pwd": ("pwd", "show the working folder", 0, 0),
    "cd": ("cd PATH", "change the working folder", 1, 1),
    "mkdir": ("mkdir PATH", "make a folder", 1, 1),
    "rmdir": ("rmdir PATH", "remove an empty folder", 1, 1),
    "rm": ("rm PATH", "remove a file", 1, 1),
    "rename": ("rename [-f] OLD NEW", "rename or move (-f: replace NEW); also 'mv'", 2, 2),
    "cat": ("cat PATH", "show a small text file", 1, 1),
    "put": ("put [-f] LOCAL [REMOTE]", "upload a file (-f: replace REMOTE)", 1, 2),
    "get": ("get [-f] REMOTE [LOCAL]", "download a file (-f: replace LOCAL)", 1, 2),
    "help": ("help", "this list", 0, 0),
}


def _help() -> str:
    width = max(len(usage) for usage, *_ in COMMANDS.values())
    return "\n".join(f"{usage:<{width}}  {text}" for usage, text, *_ in COMMANDS.values())


def _format_listing(entries: list[FileInfo]) -> str:
    lines = []
    for entry in entries:
        size = str(entry.size) if entry.kind == "file" else "-"
        suffix = {"dir": "/", "link": "@"}.get(entry.kind, "")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime))
        lines.append(f"{entry.kind:<5} {size:>12}  {when}  {entry.name}{suffix}")
    return "\n".join(lines)


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def run_command(client: FileClient, line: str, progress: Progress | None = None) -> str:
    """Run one shell command line (``"ls /docs"``, ``"put -f a.txt"``) and return its text.

    Errors are raised (``FileServiceError`` and friends, ``ValueError`` for a
    usage mistake); the caller shows them. ``exit`` is the shell's business.
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ValueError(f"cannot read that line: {exc}") from None
    if not words:
        return ""
    command, rest = words[0], words[1:]
    command = {"mv": "rename", "dir": "ls", "upload": "put", "download": "get"}.get(
        command, command
    )
    force = any(w in ("-f", "--force") for w in rest)
    args = [w for w in rest if w not in ("-f", "--force")]
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; the commands are:\n{_help()}")
    usage, _, least, most = COMMANDS[command]
    if not least <= len(args) <= most:
        raise ValueError(f"usage: {usage}")
    if command == "help":
        return _help()
    if command == "pwd":
        return client.pwd()
    if command == "ls":
        return _format_listing(client.ls(*args))
    if command == "cat":
        return client.cat(args[0])
    if command == "rename":
        return f"renamed to {client.rename(args[0], args[1], overwrite=force)}"
    if command in ("put", "get"):
        method = client.put if command == "put" else client.get
        done = method(*args, overwrite=force, progress=progress)
        arrow = (
            f"{done.local} -> {done.remote}"
            if command == "put"
            else (f"{done.remote} -> {done.local}")
        )
        return (
            f"{arrow}: {_human(done.size)} in {done.seconds:.2f} s "
            f"({done.mb_per_s:.0f} MB/s), sha256 {done.sha256[:16]}..."
        )
    result = getattr(client, command)(args[0])
    return {"cd": "{}", "mkdir": "made {}", "rmdir": "removed {}", "rm": "removed {}"}[
        command
    ].format(result)
