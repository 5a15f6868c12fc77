"""How fast is the encrypted file service? (issue 4's figures)

Uploads and downloads one file (256 MiB by default) through ``FileServer``
on loopback, with the server in its own process (so client and server each
have a core, as on two machines), and the same file through a *plain
socket copy* for comparison: the same chunk size, file read and written
the same way and fsync'ed at the end, but no handshake, no encryption and
no end record. The page cache is warmed first (see ``warm_page_cache``).
Then times small requests (``ls``), each with its own TCP connection and
its own fresh ephemeral key exchange, as the service does.

Memory: the peak resident memory (VmHWM) of each process is reset before
each transfer (``/proc/PID/clear_refs``) and read after it; "RSS growth"
is that peak minus the resident memory just before the transfer.

CPU: the CPU time (user + system) client and server used for each
transfer, per GB moved. Unlike MB/s it hardly depends on what else the
machine runs, so it compares the encrypted and plain paths even on a
busy shared machine.

    .venv/bin/python bench/ftp_throughput.py [--size-mib 256] [--requests 200] [--dir /tmp]

Prints MB/s (10^6 bytes per second), the encrypted/plain ratio, request
latency p50/p99 and RSS growth per side. Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from labcrypto import groups, keys
from labcrypto.allowlist import Allowlist
from labcrypto.ftp import CHUNK_SIZE, FileClient, FileServer
from labcrypto.key_pool import EphemeralPool

MIB = 1 << 20


# --- memory -----------------------------------------------------------------------------


def _status(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak(pid: int) -> int:
    """Reset the peak-RSS counter of ``pid``; return its RSS now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status(pid, "VmRSS")


def peak_growth(pid: int, before: int) -> int:
    """Peak RSS since ``reset_peak`` minus the RSS then."""
    return _status(pid, "VmHWM") - before


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) process ``pid`` has used so far."""
    if pid == os.getpid():
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class CpuMeter:
    """CPU seconds of this process and ``pid`` between ``start()`` and ``stop()``."""

    def __init__(self, pid: int) -> None:
        self.pids = (os.getpid(), pid)
        self.begun = (0.0, 0.0)

    def start(self) -> None:
        self.begun = (cpu_seconds(self.pids[0]), cpu_seconds(self.pids[1]))

    def stop(self) -> float:
        return sum(cpu_seconds(p) - b for p, b in zip(self.pids, self.begun, strict=True))


# --- the servers, each in a child process ------------------------------------------------


class MadeInTheHandshake(EphemeralPool):
    """A pool that never makes a pair ahead: every ``take`` makes one on the spot,
    inside the handshake, as before the key pool (for before/after figures)."""

    def refill(self) -> None:
        pass


@contextlib.contextmanager
def handshakes_as_before() -> Iterator[None]:
    """Inside: every handshake of this process computes its ss term again (as before
    ``KeyPair.static_shared_secret`` remembered it). Use with ``MadeInTheHandshake``."""
    remembered = keys.KeyPair.static_shared_secret
    keys.KeyPair.static_shared_secret = keys.KeyPair.shared_secret  # type: ignore[method-assign]
    try:
        yield
    finally:
        keys.KeyPair.static_shared_secret = remembered  # type: ignore[method-assign]


def serve_encrypted(workdir: Path, as_before: bool = False) -> None:
    """Child process: run the FileServer, print its port, wait for stdin to close.

    ``as_before``: every ephemeral key and ss term made inside the handshake.
    """
    server_key = keys.load("server", workdir / "keys")
    allowlist = Allowlist(workdir / "keys" / "allowlist.csv")
    with contextlib.ExitStack() as stack:
        if as_before:
            stack.enter_context(handshakes_as_before())
        server = FileServer(
            server_key, allowlist, workdir / "root", max_upload=16 << 30, connection_timeout=60
        )
        if as_before:
            server.ephemeral_pool = MadeInTheHandshake(server_key.group)
        with server:
            print(server.port, flush=True)
            sys.stdin.read()


def serve_plain(workdir: Path, size: int) -> None:
    """Child process: plain TCP; 'U' receives ``size`` bytes into a file, 'D' sends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(120)
    print(listener.getsockname()[1], flush=True)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    for _ in range(2):
        conn, _ = listener.accept()
        conn.settimeout(60)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            kind = conn.recv(1)
            if kind == b"U":
                fd = os.open(workdir / "plain-up.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                done = 0
                while done < size:
                    n = conn.recv_into(view, min(CHUNK_SIZE, size - done))
                    if not n:
                        break
                    os.write(fd, view[:n])
                    done += n
                os.fsync(fd)
                os.close(fd)
                conn.sendall(b"K")
            else:
                send_file(conn, workdir / "source.bin", size)
    sys.stdin.read()


def send_file(conn: socket.socket, path: Path, size: int) -> None:
    """Plain copy: read CHUNK_SIZE, sendall, repeat."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(size // CHUNK_SIZE + 1):
            data = os.read(fd, CHUNK_SIZE)
            if not data:
                break
            conn.sendall(data)
    finally:
        os.close(fd)


def start_child(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


def stop_child(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    child.wait(30)


# --- the measurements ---------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size // MIB):
            handle.write(os.urandom(MIB))
        handle.write(os.urandom(size % MIB))


def warm_page_cache(workdir: Path, size: int) -> None:
    """Write and delete ``size`` bytes once, so later writes reuse warm memory.

    On these VMs the first write into never-touched RAM is ~10x slower
    than later ones (the hypervisor backs each new page on first touch):
    without this, whichever transfer runs first measures the VM, not us.
    """
    block = bytes(MIB)
    path = workdir / "warm.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for _ in range(size // MIB):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink()


def plain_copy(workdir: Path, size: int, cpu: list[float] | None = None) -> tuple[float, float]:
    """(upload seconds, download seconds) of the plain socket copy; the CPU seconds of
    both sides for each go into ``cpu`` if given."""
    child, port = start_child(["--serve-plain", str(workdir), str(size)])
    meter = CpuMeter(child.pid)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            meter.start()
            conn.sendall(b"U")
            send_file(conn, workdir / "source.bin", size)
            assert conn.recv(1) == b"K"
            up = time.perf_counter() - started
            spent = meter.stop()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            meter.start()
            conn.sendall(b"D")
            buffer = bytearray(CHUNK_SIZE)
            view = memoryview(buffer)
            fd = os.open(workdir / "plain-down.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            done = 0
            while done < size:
                n = conn.recv_into(view, min(CHUNK_SIZE, size - done))
                if not n:
                    break
                os.write(fd, view[:n])
                done += n
            os.fsync(fd)
            os.close(fd)
            down = time.perf_counter() - started
        if cpu is not None:
            cpu += [spent, meter.stop()]
    finally:
        stop_child(child)
    return up, down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--dir", default=None, help="where to put the files (default: /tmp)")
    args = parser.parse_args()
    size = args.size_mib * MIB

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        client_key, server_key = keys.generate(groups.FFDHE2048), keys.generate(groups.FFDHE2048)
        keys.save(server_key, "server", workdir / "keys")
        Allowlist(workdir / "keys" / "allowlist.csv").add("bench", client_key.public_key)
        make_file(workdir / "source.bin", size)
        warm_page_cache(workdir, 2 * size)

        plain_cpu: list[float] = []
        plain_up, plain_down = plain_copy(workdir, size, plain_cpu)
        for name in ("plain-up.bin", "plain-down.bin"):  # their memory is reused below
            (workdir / name).unlink()

        child, port = start_child(["--serve", str(workdir)])
        try:
            client = FileClient("127.0.0.1", port, client_key, timeout=60)
            client.ls()  # the home is created; warm up
            me = os.getpid()
            meter = CpuMeter(child.pid)

            rss = reset_peak(me), reset_peak(child.pid)
            meter.start()
            up = client.put(workdir / "source.bin", "big.bin")
            up_cpu = meter.stop()
            up_growth = peak_growth(me, rss[0]), peak_growth(child.pid, rss[1])

            rss = reset_peak(me), reset_peak(child.pid)
            meter.start()
            down = client.get("big.bin", workdir / "back.bin")
            down_cpu = meter.stop()
            down_growth = peak_growth(me, rss[0]), peak_growth(child.pid, rss[1])
            assert up.sha256 == down.sha256

            latencies = []
            for _ in range(args.requests):
                started = time.perf_counter()
                client.ls()
                latencies.append((time.perf_counter() - started) * 1000)
            assert len(set(client.sessions)) == len(client.sessions)
        finally:
            stop_child(child)

    mb = size / 1e6
    print(f"file: {args.size_mib} MiB, chunk {CHUNK_SIZE // 1024} KiB, server in its own process")
    print(f"{'':22}{'upload':>12}{'download':>12}")
    print(f"{'encrypted MB/s':22}{mb / up.seconds:12.0f}{mb / down.seconds:12.0f}")
    print(f"{'plain socket MB/s':22}{mb / plain_up:12.0f}{mb / plain_down:12.0f}")
    print(f"{'encrypted / plain':22}{plain_up / up.seconds:12.0%}{plain_down / down.seconds:12.0%}")
    gb = size / 1e9
    print(f"{'encrypted CPU s/GB':22}{up_cpu / gb:12.2f}{down_cpu / gb:12.2f}  (client + server)")
    print(f"{'plain CPU s/GB':22}{plain_cpu[0] / gb:12.2f}{plain_cpu[1] / gb:12.2f}")
    print(f"{'RSS growth client MiB':22}{up_growth[0] / MIB:12.1f}{down_growth[0] / MIB:12.1f}")
    print(f"{'RSS growth server MiB':22}{up_growth[1] / MIB:12.1f}{down_growth[1] / MIB:12.1f}")
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"ls with a fresh key exchange, {args.requests} requests: "
        f"p50 {statistics.median(latencies):.1f} ms, p99 {quantiles[98]:.1f} ms"
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve_encrypted(Path(sys.argv[2]), as_before="--as-before" in sys.argv[3:])
    elif len(sys.argv) > 3 and sys.argv[1] == "--serve-plain":
        serve_plain(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
