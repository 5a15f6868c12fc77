"""Writing a file so that nobody ever sees half of it: a temporary file, then a rename.

A reader of ``notes.txt`` must see the old version or the new one, never
a mix, and a transfer cut in the middle must leave nothing behind. So
the new bytes go into a temporary file *beside* the target
(``.labcrypto-upload-<random>.part``: same folder, same disk), which is
flushed to disk (``fsync``) and then renamed onto the target in one step.
A crash before the rename leaves only the temporary file, which the file
server removes when it starts (``is_temporary`` recognises it).

Used by the file service's jail (uploads, on the server) and by
``FileClient.get`` (downloads, on the student's computer).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets

from .errors import FileServiceError
from .i18n import N_

#: Why a file could not be put in place, by code (the file service sends the code with
#: its refusal: ``ftp.wire.ALL_REFUSALS``).
REFUSALS = {
    "no temporary file": N_("could not create a temporary file: try again"),
    "appeared": N_(
        "{path} already exists (it appeared during the transfer): choose another name, or "
        "overwrite"
    ),
    "not in place": N_("{path}: could not put the file in place ({error})"),
}

__all__ = ["TEMP_PREFIX", "AtomicFile", "is_temporary"]

#: Names of uploads still arriving (``AtomicFile``): hidden from ``ls``, never counted.
TEMP_PREFIX = ".labcrypto-upload-"


def is_temporary(name: str) -> bool:
    """Is ``name`` an upload still arriving (or left behind by a crash)?"""
    return name.startswith(TEMP_PREFIX) and name.endswith(".part")


class AtomicFile:
    """A file written beside its final place, then renamed there in one step.

    ``write`` appends to a new temporary file (``O_EXCL``: never someone
    else's file, never through a link) in the target's folder. ``commit``
    flushes it to disk (``fsync``) and renames it to the target: readers
    see the old version or the new one, never a mix. ``abort`` (also
    called by ``close``, and by ``with`` on an error) removes the
    temporary file, so an interrupted transfer leaves nothing behind.

    With ``overwrite=False`` the rename is a hard link, which fails if
    the target appeared in the meantime: no-clobber without a race.
    """

    def __init__(
        self, dir_fd: int, name: str, *, overwrite: bool = False, shown: str | None = None
    ) -> None:
        self.dir_fd = os.dup(dir_fd)
        self.name = name
        self.overwrite = overwrite
        self.shown = shown or name
        self.size = 0
        self.temp_name = ""
        self.fd = -1
        try:
            for _ in range(10):  # a random name clashes with ~zero chance; bounded anyway
                candidate = f"{TEMP_PREFIX}{secrets.token_hex(8)}.part"
                try:
                    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                    self.fd = os.open(candidate, flags, 0o644, dir_fd=self.dir_fd)
                except FileExistsError:
                    continue
                self.temp_name = candidate
                break
            else:
                raise FileServiceError(REFUSALS["no temporary file"])
        except BaseException:
            os.close(self.dir_fd)
            raise

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` to the temporary file."""
        view = memoryview(data)
        while view:  # os.write may write less than asked; bounded by len(data)
            written = os.write(self.fd, view)
            view = view[written:]
            self.size += written

    def sha256(self) -> str:
        """The SHA-256 of what was written so far, read back from the temporary file.

        A check of the bytes as stored (``ftp.transfer``: a sender may ask
        for it); it reads the file again, a MiB at a time.
        """
        digest = hashlib.sha256()
        offset = 0
        while offset < self.size:  # each pass reads >= 1 byte or stops
            data = os.pread(self.fd, min(1 << 20, self.size - offset), offset)
            if not data:
                break
            digest.update(data)
            offset += len(data)
        return digest.hexdigest()

    def sync(self) -> None:
        """Flush what was written so far to disk (``commit`` does it too)."""
        os.fsync(self.fd)

    def commit(self) -> None:
        """Flush to disk and put the file in its place (atomically)."""
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        try:
            if self.overwrite:
                os.replace(
                    self.temp_name, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd
                )
            else:
                os.link(
                    self.temp_name,
                    self.name,
                    src_dir_fd=self.dir_fd,
                    dst_dir_fd=self.dir_fd,
                    follow_symlinks=False,
                )
                os.unlink(self.temp_name, dir_fd=self.dir_fd)
        except FileExistsError:
            raise FileServiceError(REFUSALS["appeared"], path=self.shown) from None
        except OSError as exc:
            raise FileServiceError(
                REFUSALS["not in place"], path=self.shown, error=os.strerror(exc.errno or 0)
            ) from None
        self.temp_name = ""
        os.fsync(self.dir_fd)  # the rename itself survives a crash too
        self.close()

    def abort(self) -> None:
        """Forget the temporary file (nothing of it stays on disk)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.temp_name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_name, dir_fd=self.dir_fd)
            self.temp_name = ""

    def close(self) -> None:
        """Abort if not committed, and release the folder. Idempotent."""
        self.abort()
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AtomicFile({self.shown!r}, {self.size} bytes written)"
