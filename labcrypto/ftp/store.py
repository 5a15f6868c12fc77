"""Where an upload goes while it arrives: a temporary file, committed only when whole.

The server writes an upload through an ``UploadStore`` wrapped around the
jail's ``AtomicFile`` (a temporary ``.labcrypto-upload-*.part`` file
beside the target). ``commit`` flushes it to disk and renames it into
place; anything that goes wrong before that removes it, so a cut transfer
leaves the previous version untouched and no half file.

A full disk is the one failure the store handles itself: the temporary
file is removed at once (giving the space back) and the rest of the
upload is read and dropped, so the conversation stays in step and the
client gets a clear "disk full" reply instead of a cut connection.

Two more jobs belong to uploads and live here:

* ``QuotaLedger`` makes a quota hold when uploads run at the same time.
  Checking the disk and then writing is a race: two 600 kB uploads to a
  1 MB quota both see 0 bytes used and both fit. So each upload
  *reserves* its announced size under a lock before its first byte (the
  receiver then refuses a byte more than announced), the check counts the
  reservations of uploads still arriving, and the check runs again at
  commit, under the same lock, against what is on disk by then. It also
  keeps part of the server's disk free (``keep_free``): without a quota
  (``ftp-serve``'s default), one student's loop of uploads could fill the
  disk that every classmate's notebook and the instructor's server live on.
* ``remove_unfinished_uploads`` deletes the temporary files a crash (or
  ``kill -9``) left behind; the server calls it when it starts.

Used by ``ftp.server`` (notebook 05_ftp).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import FileServiceError, QuotaExceeded
from ..jail import AtomicFile, is_temporary, open_directory, walk_tree
from .wire import REFUSALS

__all__ = [
    "DISK_FULL",
    "Cleanup",
    "QuotaLedger",
    "UploadStore",
    "default_keep_free",
    "remove_unfinished_uploads",
]

#: The errors of a full disk (or a full disk quota) on the server.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class UploadStore:
    """Writes an upload into its temporary file, and survives a full disk.

    If the disk fills up (``ENOSPC``), the temporary file is removed at
    once and later chunks are dropped; ``check`` then raises the "disk
    full" error for the reply.
    """

    def __init__(self, target: AtomicFile) -> None:
        self.target = target
        self.full: OSError | None = None

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``, unless the disk was found full before."""
        if self.full is not None:
            return
        try:
            self.target.write(data)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self.full = exc
            self.target.abort()

    def sha256(self) -> str:
        """The SHA-256 of the upload as stored (after ``check``: a full disk kept nothing)."""
        self.check()
        return self.target.sha256()

    def check(self) -> None:
        """Raise ``FileServiceError`` if the disk was full: nothing was kept."""
        if self.full is not None:
            reason = os.strerror(self.full.errno or 0)
            raise FileServiceError(REFUSALS["disk full, upload"], error=reason)

    def commit(self) -> None:
        """Put the file in place; a disk that fills up while flushing counts as full."""
        self.check()
        try:
            self.target.commit()
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self.full = exc
            self.target.abort()
            self.check()


def default_keep_free(root: str | os.PathLike[str]) -> int:
    """What uploads leave free on the disk of ``root``: 5 % of it, at most 1 GiB."""
    return min(1 << 30, shutil.disk_usage(root).total // 20)


class QuotaLedger:
    """Each user's quota, with the bytes promised to uploads still arriving.

    ``reserve`` is a context manager around one upload: it checks
    ``used - replaced + reserved + size <= quota`` under a lock and books
    ``size`` bytes until the upload ends (whatever the outcome).
    ``commit`` re-checks against the disk as it is then, still under the
    lock, and puts the file in place only if it fits. ``used`` is a
    function so that each check measures the disk afresh.

    ``keep_free`` bytes of the disk of ``root`` stay free whatever the
    quotas: an upload that, with every upload still arriving, would leave
    less is refused before its first byte (0: no such check).
    """

    def __init__(
        self, quota: int | None, root: str | os.PathLike[str] = ".", keep_free: int = 0
    ) -> None:
        self.quota = quota
        self.root = root
        self.keep_free = keep_free
        self._lock = threading.Lock()
        self._reserved: dict[str, int] = {}

    def reserved(self, user: str) -> int:
        """Bytes held by ``user``'s uploads still arriving."""
        with self._lock:
            return self._reserved.get(user, 0)

    @contextlib.contextmanager
    def reserve(
        self, user: str, size: int, used: Callable[[], int], replaced: Callable[[], int]
    ) -> Iterator[None]:
        """Book ``size`` bytes for one upload of ``user`` while the ``with`` block runs."""
        with self._lock:
            self._check(size, used(), replaced(), self._reserved.get(user, 0))
            self._check_disk(size)
            self._reserved[user] = self._reserved.get(user, 0) + size
        try:
            yield
        finally:
            with self._lock:
                left = self._reserved[user] - size
                if left:
                    self._reserved[user] = left
                else:
                    del self._reserved[user]

    def commit(
        self,
        user: str,
        size: int,
        used: Callable[[], int],
        replaced: Callable[[], int],
        put_in_place: Callable[[], None],
    ) -> None:
        """Check again (this upload's own booking aside), then ``put_in_place()``, atomically."""
        with self._lock:
            others = self._reserved.get(user, 0) - size
            self._check(size, used(), replaced(), others)
            put_in_place()

    def _check_disk(self, size: int) -> None:
        """Refuse ``size`` more bytes if they would eat into ``keep_free`` (lock held).

        Uploads still arriving count whole, though part of each is on disk
        already: the check errs on the side of the disk.
        """
        if not self.keep_free:
            return
        free = shutil.disk_usage(self.root).free - sum(self._reserved.values())
        if free - size < self.keep_free:
            raise FileServiceError(REFUSALS["disk reserve"], keep=self.keep_free, size=size)

    def _check(self, size: int, used: int, replaced: int, reserved: int) -> None:
        if self.quota is None or used - replaced + reserved + size <= self.quota:
            return
        raise QuotaExceeded(
            REFUSALS["quota, pending" if reserved else "quota"],
            used=used,
            quota=self.quota,
            reserved=reserved,
            size=size,
        )


@dataclass(frozen=True)
class Cleanup:
    """What ``remove_unfinished_uploads`` removed."""

    files: int
    size: int


def remove_unfinished_uploads(root: str | os.PathLike[str]) -> Cleanup:
    """Delete every temporary upload file under ``root`` (left by a crash); say how many.

    Only call it before the server accepts uploads: a temporary file is
    by name indistinguishable from one that is arriving right now. One
    server per ``root``.
    """
    files = size = 0
    root_fd = open_directory(os.fspath(root))
    try:
        for dir_fd, entry in walk_tree(root_fd):
            if not is_temporary(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):
                length = entry.stat(follow_symlinks=False).st_size
                os.unlink(entry.name, dir_fd=dir_fd)
                files, size = files + 1, size + length
    finally:
        os.close(root_fd)
    return Cleanup(files, size)
