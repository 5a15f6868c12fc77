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

Used by ``ftp.server`` (notebook 05_ftp).
"""

from __future__ import annotations

import errno
import os

from ..errors import FileServiceError
from ..jail import AtomicFile

__all__ = ["DISK_FULL", "UploadStore"]

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

    def write(self, data: bytes) -> None:
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
            if exc.errno not in DISK_FULL:
                raise
            self.full = exc
            self.target.abort()
            self.check()
