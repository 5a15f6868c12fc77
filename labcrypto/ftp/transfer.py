"""Moving a whole file through a secure channel: frames of data, then its SHA-256.

Both ends of ``put`` and ``get`` use the same two functions:

* ``send_file`` reads the file in chunks of ``CHUNK_SIZE`` and sends each
  as one encrypted frame, then returns the SHA-256 of all of them;
* ``receive_file`` takes exactly the announced number of bytes, hands them
  to a *sink* (a temporary file), and checks the final ``{"sha256"}``
  message against its own digest. A mismatch raises ``TransferFailed``,
  and the caller throws the temporary file away.

The digest is computed in a second thread (``Pipeline``) while the first
one does the network, so a transfer goes at the pace of the slower half.
Memory stays bounded whatever the file size: a few chunks at most.

Used by ``ftp.server`` and ``ftp.client`` (notebook 05_ftp).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import queue
import threading
from collections.abc import Callable

from ..channel import SecureChannel
from ..errors import ProtocolError, TransferFailed
from . import wire
from .wire import Progress

__all__ = ["PIPELINE_TIMEOUT", "Pipeline", "receive_file", "send_file"]

#: How long a transfer's two threads wait for each other before giving up (s).
PIPELINE_TIMEOUT = 60.0


class Pipeline:
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
                data = self._queue.get(timeout=PIPELINE_TIMEOUT)
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
        try:
            self._queue.put(data, timeout=PIPELINE_TIMEOUT)
        except queue.Full:
            raise TimeoutError(f"the storing thread took over {PIPELINE_TIMEOUT} s") from None

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
                self._queue.put(None, timeout=PIPELINE_TIMEOUT)
            self._thread.join(PIPELINE_TIMEOUT)


def send_file(
    channel: SecureChannel, fd: int, size: int, chunk: int, progress: Progress | None
) -> str:
    """Send ``size`` bytes of file ``fd`` in frames; return their SHA-256 (hex).

    The digest is computed in a second thread while this one encrypts and
    sends (see ``Pipeline``).
    """
    pipeline = Pipeline(None)
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


def receive_file(
    channel: SecureChannel, sink: Callable[[bytes], object], size: int, progress: Progress | None
) -> str:
    """Receive ``size`` bytes in frames into ``sink``, then check the SHA-256 frame."""
    pipeline = Pipeline(sink)
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
        sent = wire.decode(channel.recv()).get("sha256")
    except ProtocolError:
        sent = None
    if not isinstance(sent, str) or not hmac.compare_digest(sent, digest):
        raise TransferFailed(
            "the file's SHA-256 does not match what the sender computed; nothing was kept"
        )
    return digest
