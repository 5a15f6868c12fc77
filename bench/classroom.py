"""A class joins the chat at once: handshake + handoff, then round trips.

Starts a ``ChatServer`` with a ``PortPool`` on loopback, then N client
threads at the same moment. Each client connects (handshake on the main
port, then the two-port handoff), waits until the whole class is in, and
does R round trips: send a line, wait until the room echoes it back. Every
line goes to every member, so the server delivers N x N x R messages.

Prints the handshake time (including the handoff and the welcome) and the
round-trip time as p50/p99, the number of errors (must be 0), and what is
left after ``stop()``: threads and leased ports (must be 0).

    python bench/classroom.py                      # 50 clients, 20 rounds, secure
    python bench/classroom.py --mode toy
    python bench/classroom.py --clients 10 --rounds 100
    python bench/classroom.py --mixed              # the mixed class below, 60 s

``--mixed`` (issue 8) runs a mixed class for a bounded time instead: 40
chat clients (join with the handoff, then say a line and wait for its echo,
again and again) and 10 file clients (upload, download and check, list),
plus a few hostile ones cycling through attacks (garbage and bad keys in
the handshake, one byte a second, a flood of small frames then a cut,
uploads cut in the middle, strangers on the data ports, and issue 15's:
a one-source flood of idle connections from an address of its own, a
crowd of silent strangers on a data port before the real client, one
key holding as many conversations as it can, two uploads racing for the
last of a quota). The clients run
in another process; the servers' process reports throughput, p50/p99
latency per operation, errors by kind (well-behaved clients must see
none; what the hostile ones met is listed apart), and its threads, open
file descriptors, leased ports and RSS: idle before, peak, after the
clients left, after stop. Exit status 1 if a well-behaved client saw an
error or anything leaked.

It also shows where a chat round trip's time goes, so a slow figure can
be pinned on the server or on the clients: each student line is timed
where it is sent, when the server has read it, when the server has
handed it to the last member's socket, when the student's reader thread
has its echo, and when the waiting student thread runs again (one clock,
``time.time()``, for every process of the machine). Beside it, each
process (the chat server, each client process, the file service) runs a
probe thread that sleeps 10 ms again and again: how late it wakes is how
long any woken thread there waits for a core and the GIL. And the CPU
each process used, against what the machine's cores had.

    python bench/classroom.py --mixed --duration 60 --chat 40 --files 10 --hostile 4

Clients and server run in this one process (one GIL), as in a notebook
where the instructor's kernel runs both: the figures include the clients'
own work. Not a pass/fail test; see tests/ for those.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import queue
import random
import resource
import secrets
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from labcrypto import groups, keys
from labcrypto.allowlist import Allowlist
from labcrypto.channel import SecureChannel, encode_frame
from labcrypto.chat import ChatClient, ChatMessage, ChatServer, ChatSettings
from labcrypto.cli import DEFAULT_FTP_NICENESS
from labcrypto.client import open_channel
from labcrypto.errors import LabCryptoError, PoolExhausted
from labcrypto.ftp import FileClient, FileServer
from labcrypto.handoff import MAX_CANDIDATES, ticket_message
from labcrypto.handshake import ClientHandshake
from labcrypto.ports import PortPool

HOST = "127.0.0.1"


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def make_keys(mode: str, count: int) -> tuple[keys.KeyPair, list[keys.KeyPair]]:
    """The server's key and one per student. The toy group has only 20 public
    values, so in toy mode students share keys (and the allowlist is off)."""
    group = groups.FFDHE2048 if mode == "secure" else groups.TOY
    server = keys.generate(group)
    students = []
    while len(students) < count:
        pair = keys.generate(group)
        if pair.public != server.public:
            students.append(pair)
    return server, students


def student(
    index: int,
    key: keys.KeyPair,
    args: argparse.Namespace,
    address: tuple[int, keys.PublicKey],
    everyone_in: threading.Barrier,
    results: dict[str, list],
) -> None:
    """One student: join, wait for the class, then ``args.rounds`` round trips.

    The student watches for its own line with the ``on_message`` hook (the
    one widgets use) rather than reading every line of the room itself.
    """
    client = None
    expected = [""]
    echoed = threading.Event()

    def watch(message: ChatMessage) -> None:
        if message.text == expected[0]:
            echoed.set()

    try:
        time.sleep(args.ramp * index / max(1, args.clients))  # a class does not join in 1 ms
        started = time.perf_counter()
        port, server_public = address
        client = ChatClient.connect(
            HOST,
            port,
            key,
            server_key=server_public,
            mode=args.mode,
            timeout=args.timeout,
            on_message=watch,
        )
        results["handshake"].append(time.perf_counter() - started)
        everyone_in.wait(args.timeout * 4 + args.ramp)
        for round_number in range(args.rounds):
            expected[0] = f"{index}:{round_number}"
            echoed.clear()
            sent = time.perf_counter()
            client.send(expected[0])
            if not echoed.wait(args.timeout):
                raise TimeoutError(f"no echo of {expected[0]!r} within {args.timeout} s")
            results["round_trip"].append(time.perf_counter() - sent)
            time.sleep(args.think / 1000)
    except Exception as exc:
        results["errors"].append(f"student {index}: {type(exc).__name__}: {exc}")
        everyone_in.abort()
    finally:
        if client is not None:
            client.close()


def run_students(
    assigned: list[tuple[int, keys.KeyPair]],
    args: argparse.Namespace,
    address: tuple[int, keys.PublicKey],
    everyone_in: threading.Barrier,
) -> dict[str, list]:
    """Run these students as threads of this process; return their figures."""
    results: dict[str, list] = {"handshake": [], "round_trip": [], "errors": []}
    workers = [
        threading.Thread(
            target=student, args=(i, key, args, address, everyone_in, results), name=f"student-{i}"
        )
        for i, key in assigned
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(args.timeout * (args.rounds + 10))
    return results


def _student_process(
    mode: str,
    assigned: list[tuple[int, int, int]],
    args: argparse.Namespace,
    port: int,
    server_public: str,
    everyone_in: threading.Barrier,
    out: multiprocessing.Queue,
) -> None:
    """A process of students (plain numbers in, plain figures out: nothing to unpickle
    but our own process's data)."""
    group = groups.FFDHE2048 if mode == "secure" else groups.TOY
    students = [(i, keys.KeyPair(group, private, public)) for i, private, public in assigned]
    address = (port, keys.PublicKey.from_text(server_public))
    out.put(run_students(students, args, address, everyone_in))


def run(args: argparse.Namespace) -> int:
    server_key, student_keys = make_keys(args.mode, args.clients)
    with tempfile.TemporaryDirectory() as folder:
        allowlist = None
        if args.mode == "secure":
            allowlist = Allowlist(Path(folder) / "allowlist.csv")
            for index, key in enumerate(student_keys):
                allowlist.add(f"student{index:03d}", key.public_key)
        pool = PortPool.reserve(args.clients, HOST)
        threads_before = threading.active_count()
        server = ChatServer(
            server_key,
            allowlist,
            mode=args.mode,
            pool=pool,
            max_connections=args.clients + 10,
        ).start()
        wall = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        if args.client_processes == 0:
            everyone_in = threading.Barrier(args.clients)
            assigned = list(enumerate(student_keys))
            results = run_students(
                assigned, args, (server.port, server_key.public_key), everyone_in
            )
        else:
            results = run_in_processes(args, server.port, server_key, student_keys)
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        results["cpu"] = [
            after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
            children.ru_utime + children.ru_stime,
        ]
        stop_started = time.perf_counter()
        server.stop()
        stop_time = time.perf_counter() - stop_started
        time.sleep(0.2)  # let the last client threads finish exiting
        threads_left = threading.active_count() - threads_before
        ports_left = len(pool.leased())
        pool.close()
    report(args, results, wall, stop_time, threads_left, ports_left)
    ok = not results["errors"] and threads_left == 0 and ports_left == 0
    return 0 if ok else 1


def run_in_processes(
    args: argparse.Namespace,
    port: int,
    server_key: keys.KeyPair,
    student_keys: list[keys.KeyPair],
) -> dict[str, list]:
    """Run the students in ``args.client_processes`` other processes (other GILs)."""
    context = multiprocessing.get_context("spawn")
    everyone_in = context.Barrier(args.clients)
    out = context.Queue()
    count = args.client_processes
    shares = [
        [(i, k.private, k.public) for i, k in enumerate(student_keys) if i % count == n]
        for n in range(count)
    ]
    processes = [
        context.Process(
            target=_student_process,
            args=(args.mode, share, args, port, server_key.public_key.to_text(), everyone_in, out),
        )
        for share in shares
    ]
    for process in processes:
        process.start()
    results: dict[str, list] = {"handshake": [], "round_trip": [], "errors": []}
    for _ in processes:
        part = out.get(timeout=args.timeout * (args.rounds + 20))
        for name, values in part.items():
            results[name].extend(values)
    for process in processes:
        process.join(args.timeout)
    return results


def report(
    args: argparse.Namespace,
    results: dict[str, list],
    wall: float,
    stop_time: float,
    threads_left: int,
    ports_left: int,
) -> None:
    ms = 1000.0
    print(
        f"classroom: {args.clients} clients x {args.rounds} round trips, {args.mode} mode, "
        f"two-port handoff, everyone hears everyone; joining over {args.ramp} s, "
        f"{args.think} ms between lines, clients in "
        + (
            f"{args.client_processes} other process(es)"
            if args.client_processes
            else "the server's process"
        )
    )
    for label, key in (("handshake+handoff", "handshake"), ("round trip", "round_trip")):
        values = results[key]
        if values:
            print(
                f"  {label:18s} p50 {percentile(values, 0.5) * ms:7.2f} ms   "
                f"p99 {percentile(values, 0.99) * ms:7.2f} ms   "
                f"mean {statistics.fmean(values) * ms:7.2f} ms   n={len(values)}"
            )
    delivered = len(results["round_trip"]) * args.clients
    print(f"  messages delivered ~{delivered} in {wall:.2f} s ({delivered / wall:,.0f}/s)")
    server_cpu, client_cpu = results["cpu"]
    where = "server+clients" if args.client_processes == 0 else "server"
    print(
        f"  cpu: {where} process {server_cpu:.2f} s"
        + (f", client processes {client_cpu:.2f} s" if args.client_processes else "")
    )
    print(f"  errors {len(results['errors'])}")
    for line in results["errors"][:5]:
        print(f"    {line}")
    print(
        f"  after stop ({stop_time * ms:.0f} ms): threads left {threads_left}, "
        f"ports leased {ports_left}"
    )


# --- the mixed class (issue 8) --------------------------------------------------------------


def _rss() -> int:
    """This process's resident memory in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds() -> float:
    """CPU time this process has used so far (user + system), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _WakeProbe:
    """A thread that sleeps ``interval`` again and again and records how late it wakes.

    Any thread of this process that is woken (a reader with a line to read,
    a student with its echo) waits the same way for a core and then for the
    GIL: the probe's lateness measures that wait, apart from what the
    threads themselves do. Run in each process, it shows which process's
    threads wait, and how long.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.late: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wake-probe", daemon=True)

    def start(self) -> _WakeProbe:
        self._thread.start()
        return self

    def _run(self) -> None:
        for _ in range(10_000_000):  # bounded; ends when stopped
            if self._stop.is_set():
                return
            asked = time.perf_counter()
            time.sleep(self.interval)
            self.late.append(time.perf_counter() - asked - self.interval)

    def stop(self) -> dict[str, float]:
        """Stop; the lateness p50/p99/max in ms."""
        self._stop.set()
        self._thread.join(5)
        late = self.late or [0.0]
        return {
            "p50": percentile(late, 0.5) * 1000,
            "p99": percentile(late, 0.99) * 1000,
            "max": max(late) * 1000,
        }


class _TimedChatServer(ChatServer):
    """``ChatServer`` that notes, for each line a chat student says, when the room had
    read it (``_deliver`` starts) and when it had been handed to the last member's
    socket (after ``_send_to_room``): the server's own part of a round trip. It also
    counts the lines said (bench only)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read_at: dict[str, float] = {}
        self.sent_at: dict[str, float] = {}
        self.said: dict[str, int] = {"students": 0, "others": 0}
        #: Each round of the room's sender while the class runs: (wall s, its CPU s, lines).
        self.rounds: list[tuple[float, float, int]] = []
        self.timing_rounds = True

    def _deliver(self, message: ChatMessage) -> None:
        if message.kind == "message":
            by_student = message.sender.startswith("chat")
            if by_student:
                self.read_at[message.text] = time.time()
            self.said["students" if by_student else "others"] += 1
        super()._deliver(message)

    def _send_to_room(self, lines: list[bytes]) -> None:
        started, cpu = time.time(), time.thread_time()
        super()._send_to_room(lines)
        sent = time.time()
        if self.timing_rounds:
            self.rounds.append((sent - started, time.thread_time() - cpu, len(lines)))
        for line in lines:
            fields = json.loads(line)
            if fields.get("type") == "message" and fields.get("from", "").startswith("chat"):
                self.sent_at[fields["text"]] = sent


def _counts(servers: list, pool: PortPool | None) -> dict[str, int]:
    """What the servers' process holds now: threads, fds, leased ports, connections, RSS."""
    return {
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
        "ports leased": len(pool.leased()) if pool is not None else 0,
        "connections": sum(server.connection_count for server in servers),
        "RSS MiB": round(_rss() / (1 << 20)),
    }


def _pair(numbers: tuple[int, int]) -> keys.KeyPair:
    return keys.KeyPair(groups.FFDHE2048, numbers[0], numbers[1])


class _Figures:
    """What the client threads record, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.error_lines: list[str] = []
        self.hostile: dict[str, int] = {}
        self.bytes_moved = 0
        self.per_file_client: dict[int, int] = {}
        #: Each timed chat line: (text, sent, heard by the client's reader, student woke),
        #: as ``time.time()`` (one clock for every process of the machine).
        self.lines: list[tuple[str, float, float, float]] = []

    def time(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency.setdefault(kind, []).append(seconds)

    def error(self, who: str, exc: BaseException) -> None:
        kind = type(exc).__name__
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.error_lines) < 10:
                self.error_lines.append(f"{who}: {kind}: {exc}")

    def outcome(self, what: str) -> None:
        with self.lock:
            self.hostile[what] = self.hostile.get(what, 0) + 1

    def plain(self) -> dict:
        return {
            "latency": self.latency,
            "errors": self.errors,
            "error_lines": self.error_lines,
            "hostile": self.hostile,
            "bytes": self.bytes_moved,
            "per file client": self.per_file_client,
            "lines": self.lines,
        }


def _chat_student(spec: dict, index: int, figures: _Figures, deadline: float) -> None:
    """Join (handshake + handoff), then say a line and wait for its echo, until the deadline."""
    echoed, wanted, heard = threading.Event(), [""], [0.0]

    def watch(message: ChatMessage) -> None:  # runs in the client's reader thread
        if message.text == wanted[0]:
            heard[0] = time.time()
            echoed.set()

    rng = random.Random(index)
    time.sleep(rng.uniform(0, spec["ramp"]))
    client = None
    try:
        started = time.perf_counter()
        client = ChatClient.connect(
            HOST, spec["chat_port"], _pair(spec["chat_keys"][index]),
            server_key=keys.PublicKey.from_text(spec["server_public"]),
            known_servers=False, timeout=spec["timeout"], on_message=watch,
        )  # fmt: skip
        figures.time("chat join", time.perf_counter() - started)
        for line in range(100_000):  # bounded; ends at the deadline
            if time.monotonic() > deadline:
                break
            wanted[0] = f"{index}:{line}"
            echoed.clear()
            sent_at, sent = time.time(), time.perf_counter()
            client.send(wanted[0])
            if not echoed.wait(spec["timeout"]):
                raise TimeoutError(_late_or_lost(client, echoed, wanted[0], spec["timeout"]))
            figures.time("chat round trip", time.perf_counter() - sent)
            with figures.lock:
                figures.lines.append((wanted[0], sent_at, heard[0], time.time()))
            time.sleep(rng.uniform(0.5, 1.5) * spec["think"])
    except Exception as exc:
        figures.error(f"chat student {index}", exc)
    finally:
        if client is not None:
            client.close()


def _late_or_lost(client: ChatClient, echoed: threading.Event, line: str, waited: float) -> str:
    """After a line's echo is overdue: wait 3x longer, then say whether it came late,
    never came on an open connection (lost), or the connection was closed (and why)."""
    late = echoed.wait(3 * waited)
    if late:
        return f"the echo of {line!r} came late: after {waited} s, within {4 * waited} s"
    if not client.connected:
        return f"no echo of {line!r}: the connection closed ({client._error})"
    return f"no echo of {line!r} within {4 * waited} s on an open connection: LOST"


def _file_student(spec: dict, index: int, figures: _Figures, deadline: float, tmp: Path) -> None:
    """Upload, download and check, list; again and again until the deadline."""
    rng = random.Random(1000 + index)
    local = tmp / f"student{index}.bin"
    local.write_bytes(rng.randbytes(spec["file_bytes"]))
    back = tmp / f"student{index}-back.bin"
    client = FileClient(
        HOST, spec["file_port"], _pair(spec["file_keys"][index]),
        keys.PublicKey.from_text(spec["server_public"]), timeout=spec["timeout"],
    )  # fmt: skip
    time.sleep(rng.uniform(0, spec["ramp"]))
    try:
        for _ in range(100_000):  # bounded; ends at the deadline
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            up = client.put(local, "work.bin", overwrite=True)
            figures.time("file put", time.perf_counter() - t)
            t = time.perf_counter()
            down = client.get("work.bin", back, overwrite=True)
            figures.time("file get", time.perf_counter() - t)
            if down.sha256 != up.sha256:
                raise RuntimeError("the download differs from the upload")
            t = time.perf_counter()
            client.ls("/")
            figures.time("file ls", time.perf_counter() - t)
            with figures.lock:
                figures.bytes_moved += up.size + down.size
                figures.per_file_client[index] = (
                    figures.per_file_client.get(index, 0) + up.size + down.size
                )
            time.sleep(rng.uniform(0.5, 1.5) * spec["think"])
    except Exception as exc:
        figures.error(f"file student {index}", exc)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the peer closes ``sock`` within ``seconds`` (what it sends is dropped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def _bad_hello(spec: dict, rng: random.Random) -> tuple[str, bytes]:
    """A first message the server must refuse: (name, frame bytes)."""
    mallory = _pair(spec["mallory"])
    p = groups.FFDHE2048.p
    fields = {
        "type": "client_hello", "version": 1, "mode": "secure", "group": "ffdhe2048",
        "static": f"{mallory.public:#x}", "nonce": secrets.token_hex(32),
    }  # fmt: skip
    choices = {
        "unknown key": fields,
        "public value p-1": {**fields, "static": f"{p - 1:#x}"},
        "public value 1": {**fields, "static": "0x1"},
        "unknown version": {**fields, "version": 9},
        "not json": b"{not json",
        "4 GiB length": None,
    }
    name = rng.choice(sorted(choices))
    value = choices[name]
    if value is None:
        return name, b"\xff\xff\xff\xff"
    payload = value if isinstance(value, bytes) else json.dumps(value).encode()
    return name, len(payload).to_bytes(4, "big") + payload


def _hostile(spec: dict, index: int, figures: _Figures, deadline: float) -> None:
    """One hostile client: cycles through attacks until the deadline; records what it met."""
    rng = random.Random(5000 + index)
    intruder = _pair(spec["intruders"][index])
    server_public = keys.PublicKey.from_text(spec["server_public"])
    kinds = [
        "garbage", "slowloris", "flood", "cut upload", "stranger",
        "one-source flood", "handoff crowd", "port hog", "quota race",
    ]  # fmt: skip
    for attempt in range(100_000):  # bounded; ends at the deadline
        if time.monotonic() > deadline:
            return
        kind = kinds[(index + attempt) % len(kinds)]
        try:
            if kind == "garbage":
                name, data = _bad_hello(spec, rng)
                port = rng.choice([spec["chat_port"], spec["file_port"]])
                with socket.create_connection((HOST, port), timeout=5) as sock:
                    sock.sendall(data)
                    ok = _closed_within(sock, 5.0)
                figures.outcome(f"garbage ({name}): " + ("refused" if ok else "NOT refused"))
            elif kind == "slowloris":
                port = rng.choice([spec["chat_port"], spec["file_port"]])
                hello = ClientHandshake(intruder, ephemeral=True).start()  # a real hello...
                data = len(hello).to_bytes(4, "big") + hello
                with socket.create_connection((HOST, port), timeout=5) as sock:
                    started = time.monotonic()
                    cut = False
                    for byte in data[:120]:  # ...one byte a second, two minutes at most
                        try:
                            sock.sendall(bytes([byte]))
                        except OSError:
                            cut = True
                            break
                        if _closed_within(sock, 1.0):
                            cut = True
                            break
                    waited = time.monotonic() - started
                figures.outcome("slowloris: " + ("cut off" if cut else "NOT cut off"))
                figures.time("hostile slowloris cut after", waited)
            elif kind == "flood":
                opened = open_channel(
                    HOST, spec["chat_port"], intruder, server_key=server_public,
                    known_servers=False, timeout=spec["timeout"],
                )  # fmt: skip
                sock, sent = opened.channel.stream, 0
                sock.settimeout(2.0)
                try:
                    for i in range(3000):
                        sock.sendall(opened.channel.seal_frame(json.dumps(
                            {"type": "say", "text": f"flood {i}"})))  # fmt: skip
                        sent += 1
                except OSError:
                    pass
                finally:
                    sock.close()  # no goodbye: a crash, as far as the server knows
                figures.outcome("flood of small frames, then cut")
                time.sleep(1.0)
            elif kind == "cut upload":
                _cut_upload(spec, intruder, server_public, rng)
                figures.outcome("upload cut in the middle")
            elif kind == "one-source flood":
                figures.outcome(_one_source_flood(spec, intruder, f"127.0.0.{10 + index}"))
            elif kind == "handoff crowd":
                figures.outcome(_handoff_crowd(spec, intruder, server_public))
            elif kind == "port hog":
                figures.outcome(_port_hog(spec, intruder, server_public))
            elif kind == "quota race":
                figures.outcome(_quota_race(spec, intruder, server_public, index))
            else:
                figures.outcome(_stranger(spec, intruder, server_public))
        except Exception as exc:  # the hostile ones are expected to meet errors
            figures.outcome(f"{kind}: {type(exc).__name__}")


def _one_source_flood(spec: dict, key: keys.KeyPair, source: str) -> str:
    """Idle connections from one address, past its cap; are the extra ones told "busy"?"""
    cap, extra = spec["per_source"], 8
    held: list[socket.socket] = []
    told = 0
    try:
        for _ in range(cap):
            held.append(socket.create_connection((HOST, spec["chat_port"]), 5, (source, 0)))
        time.sleep(0.5)  # the server has counted them
        hello = ClientHandshake(key).start()
        for _ in range(extra):
            with socket.create_connection((HOST, spec["chat_port"]), 5, (source, 0)) as sock:
                sock.sendall(encode_frame(hello))
                sock.settimeout(5.0)
                answer = b""
                with contextlib.suppress(OSError):
                    while chunk := sock.recv(4096):
                        answer += chunk
                told += b'"code":"busy"' in answer and b"busy" in answer[4:]
    finally:
        for sock in held:
            sock.close()
    return f"one-source flood ({cap} idle): {told} of {extra} over the cap told busy in words"


def _handoff_crowd(spec: dict, key: keys.KeyPair, server_public: keys.PublicKey) -> str:
    """A crowd of silent strangers on our data port first; do we still get in?"""
    with socket.create_connection((HOST, spec["chat_port"]), timeout=5) as control:
        channel = SecureChannel.client(control, key, expected_server_key=server_public, timeout=5)
        offer = json.loads(channel.recv(5))
        if offer.get("type") != "port":
            return f"handoff crowd: offered {offer.get('type')!r}, not a port"
        crowd: list[socket.socket] = []
        try:
            for _ in range(MAX_CANDIDATES + 8):
                crowd.append(socket.create_connection((HOST, offer["port"]), timeout=5))
            with socket.create_connection((HOST, offer["port"]), timeout=5) as data:
                data.sendall(channel.seal_frame(ticket_message(offer["ticket"])))
                channel.rebind(data)
                welcome = json.loads(channel.recv(5))
                channel.close()
        finally:
            for sock in crowd:
                sock.close()
    got_in = welcome.get("type") == "welcome"
    return f"handoff crowd ({len(crowd)} strangers): " + ("got in" if got_in else "NOT in")


def _port_hog(spec: dict, key: keys.KeyPair, server_public: keys.PublicKey) -> str:
    """One key opens as many conversations as it can and holds them for a while."""
    held, refused = [], 0
    try:
        for _ in range(spec["per_key"] + 4):
            try:
                held.append(
                    open_channel(
                        HOST, spec["chat_port"], key, server_key=server_public,
                        known_servers=False, timeout=spec["timeout"],
                    ).channel
                )  # fmt: skip
            except PoolExhausted:
                refused += 1
        time.sleep(3.0)
    finally:
        for channel in held:
            channel.close()
    return f"port hog: held {len(held)} (cap {spec['per_key']}), refused {refused}"


def _quota_race(
    spec: dict, key: keys.KeyPair, server_public: keys.PublicKey, index: int
) -> str:
    """Two uploads of 60 % of the quota at once: at most one may be kept."""
    size = spec["quota"] * 6 // 10
    local = Path(tempfile.gettempdir()) / f"labcrypto-race-{os.getpid()}-{index}.bin"
    local.write_bytes(secrets.token_bytes(size))
    kept: list[str] = []

    def upload(name: str) -> None:
        client = FileClient(HOST, spec["file_port"], key, server_public, timeout=spec["timeout"])
        with contextlib.suppress(LabCryptoError, OSError):
            client.put(local, name, overwrite=True)
            kept.append(name)

    try:
        racers = [threading.Thread(target=upload, args=(f"race-{n}.bin",)) for n in "ab"]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(spec["timeout"] * 3)
    finally:
        local.unlink()
        cleaner = FileClient(HOST, spec["file_port"], key, server_public, timeout=spec["timeout"])
        for name in ("race-a.bin", "race-b.bin"):
            with contextlib.suppress(LabCryptoError, OSError):
                cleaner.rm(name)
    return "quota race (2 x 60 %): " + ("held" if len(kept) <= 1 else "NOT held, both kept")


def _stranger(spec: dict, key: keys.KeyPair, server_public: keys.PublicKey) -> str:
    """Get a data port offered, send a stranger there, and never come with the ticket."""
    with socket.create_connection((HOST, spec["chat_port"]), timeout=5) as control:
        channel = SecureChannel.client(control, key, expected_server_key=server_public, timeout=5)
        offer = json.loads(channel.recv(5))
        with socket.create_connection((HOST, offer["port"]), timeout=5) as sock:
            sock.sendall(secrets.token_bytes(64))
            dropped = _closed_within(sock, 5.0)
    return "stranger on a data port: " + ("dropped" if dropped else "NOT dropped")


def _cut_upload(
    spec: dict, key: keys.KeyPair, server_public: keys.PublicKey, rng: random.Random
) -> None:
    """Start an upload by hand and drop the connection part way."""
    size = spec["file_bytes"]
    with socket.create_connection((HOST, spec["file_port"]), timeout=5) as sock:
        channel = SecureChannel.client(
            sock, key, service="files", expected_server_key=server_public, timeout=5
        )
        args = {"path": "cut.bin", "size": size, "overwrite": True}
        channel.send(json.dumps({"command": "put", "cwd": "/", "args": args}))
        channel.recv(5)
        data = secrets.token_bytes(size)
        stop_at = rng.randrange(1, size)
        for start in range(0, stop_at, 256 * 1024):
            channel.send(data[start : min(stop_at, start + 256 * 1024)])


def _mixed_clients(spec: dict, roles: dict[str, list[int]], out: multiprocessing.Queue) -> None:
    """One client process: the students and hostile clients named in ``roles``, as threads."""
    # The students watch for their echo with on_message and never read their queue of
    # lines (ChatClient.messages), which fills and drops its oldest: expected here.
    logging.getLogger("labcrypto.chat").setLevel(logging.ERROR)
    if spec["client_nice"]:
        os.nice(spec["client_nice"])  # --client-nice: clients as if on other machines
    figures = _Figures()
    probe, cpu = _WakeProbe().start(), _cpu_seconds()
    deadline = spec["start"] + spec["duration"]  # time.time(): the same in every process
    deadline = time.monotonic() + max(0.0, deadline - time.time())
    with tempfile.TemporaryDirectory() as folder:
        workers = [
            threading.Thread(target=_chat_student, args=(spec, i, figures, deadline))
            for i in roles["chat"]
        ]
        workers += [
            threading.Thread(target=_file_student, args=(spec, i, figures, deadline, Path(folder)))
            for i in roles["files"]
        ]
        workers += [
            threading.Thread(target=_hostile, args=(spec, i, figures, deadline))
            for i in roles["hostile"]
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(spec["duration"] + 180)
        stuck = sum(worker.is_alive() for worker in workers)
    result = figures.plain()
    result["stuck threads"] = stuck
    result["wake"] = [probe.stop()]
    result["cpu"] = _cpu_seconds() - cpu
    out.put(json.dumps(result))


def _client_roles(args: argparse.Namespace) -> list[dict[str, list[int]]]:
    """Which clients each client process runs. One process: all of them (one GIL for
    every client, as on one laptop). K > 1: the file and hostile clients in one, the
    chat clients spread over the other K - 1 (as on the students' own machines)."""
    chat, files, hostile = range(args.chat), range(args.files), range(args.hostile)
    if args.client_processes <= 1:
        return [{"chat": list(chat), "files": list(files), "hostile": list(hostile)}]
    rest = args.client_processes - 1
    roles = [{"chat": [], "files": list(files), "hostile": list(hostile)}]
    roles += [{"chat": list(chat)[k::rest], "files": [], "hostile": []} for k in range(rest)]
    return roles


def _merged(parts: list[dict]) -> dict:
    """The figures of several client processes as one."""
    result: dict = {
        "latency": {}, "errors": {}, "error_lines": [], "hostile": {}, "bytes": 0,
        "per file client": {}, "stuck threads": 0, "lines": [], "wake": [], "cpu": 0.0,
    }  # fmt: skip
    for part in parts:
        for kind, values in part["latency"].items():
            result["latency"].setdefault(kind, []).extend(values)
        for table in ("errors", "hostile", "per file client"):
            for key, count in part[table].items():
                result[table][key] = result[table].get(key, 0) + count
        result["error_lines"] += part["error_lines"]
        result["bytes"] += part["bytes"]
        result["stuck threads"] += part["stuck threads"]
        result["lines"] += part["lines"]
        result["wake"] += part["wake"]
        result["cpu"] += part["cpu"]
    return result


def _count_drop(event: object, dropped: dict[str, int]) -> None:
    """Count a well-behaved member the server closed, by the reason it gave."""
    text = getattr(event, "text", "")
    if getattr(event, "kind", "") == "leave" and text.startswith("chat") and "(" in text:
        reason = text.split("(", 1)[1].split(":")[0].rstrip(")").strip('"')
        dropped[reason] = dropped.get(reason, 0) + 1


def run_mixed(args: argparse.Namespace) -> int:
    """Serve a mixed class from this process for ``args.duration`` seconds; print the figures."""
    group = groups.FFDHE2048
    server_key = keys.generate(group)
    chat_keys = [keys.generate(group) for _ in range(args.chat)]
    file_keys = [keys.generate(group) for _ in range(args.files)]
    intruders = [keys.generate(group) for _ in range(args.hostile)]
    mallory = keys.generate(group)
    idle: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        allowlist = Allowlist(Path(folder) / "allowlist.csv")
        for prefix, pairs in (("chat", chat_keys), ("file", file_keys), ("intruder", intruders)):
            for index, pair in enumerate(pairs):
                allowlist.add(f"{prefix}{index:03d}", pair.public_key)
        settings = ChatSettings(handshake_timeout=5.0, frame_timeout=5.0)
        per_key = settings.max_sessions_per_key or 8
        per_source = settings.max_handshakes_per_source or 32
        pool_size = args.chat + (per_key + 2) * args.hostile + 8
        pool = PortPool.reserve(pool_size, HOST)
        context = multiprocessing.get_context("spawn")
        out = context.Queue()  # its pipe is the bench's, not the servers': made before counting
        threads_at_start = threading.active_count()
        fds_at_start = len(os.listdir("/proc/self/fd"))
        chat = _TimedChatServer(
            server_key, allowlist, pool=pool, settings=settings, name="mixed-chat",
            max_connections=args.chat + (per_source + 10) * args.hostile + 20,
        ).start()  # fmt: skip
        quota = max(4 * args.file_kib * 1024, 1 << 20)
        file_spec = {
            "key": (server_key.private, server_key.public), "folder": folder, "quota": quota,
        }  # fmt: skip
        if args.separate_services:  # as `labcrypto serve` and `labcrypto ftp-serve` run
            file_spec["nice"] = args.file_nice  # as ftp-serve lowers its own priority
            file_service = _FileServiceProcess(context, file_spec)
            file_port, servers = file_service.port, [chat]
        else:  # both in this process, as in one notebook kernel
            file_service, files = None, _file_server(file_spec).start()
            file_port, servers = files.port, [chat, files]
        dropped: dict[str, int] = {}  # why the server closed a well-behaved member
        chat.listeners.append(lambda event: _count_drop(event, dropped))
        idle = _counts(servers, pool)
        peak = dict(idle)
        spec = {
            "chat_port": chat.port, "file_port": file_port,
            "server_public": server_key.public_key.to_text(),
            "chat_keys": [(k.private, k.public) for k in chat_keys],
            "file_keys": [(k.private, k.public) for k in file_keys],
            "intruders": [(k.private, k.public) for k in intruders],
            "per_key": per_key, "per_source": per_source, "quota": quota,
            "mallory": (mallory.private, mallory.public),
            "pool": (pool.first, pool.last), "hostile": args.hostile,
            "duration": args.duration, "timeout": args.timeout,
            "think": max(args.think, 200.0) / 1000, "ramp": max(args.ramp, 2.0),
            "file_bytes": args.file_kib * 1024, "client_nice": args.client_nice,
        }  # fmt: skip
        spec["start"] = time.time() + 1.0  # every client process starts its clock together
        processes = [
            context.Process(target=_mixed_clients, args=(spec, roles, out))
            for roles in _client_roles(args)
        ]
        probe, cpu = _WakeProbe().start(), _cpu_seconds()
        started = time.perf_counter()
        for process in processes:
            process.start()
        parts: list[dict] = []
        while len(parts) < len(processes):  # sample the peaks while the class runs
            try:
                parts.append(json.loads(out.get(timeout=0.5)))
            except queue.Empty:
                for name, value in _counts(servers, pool).items():
                    peak[name] = max(peak[name], value)
                if time.perf_counter() - started > args.duration + 300:
                    for process in processes:
                        process.kill()
                    raise SystemExit("a client process did not finish") from None
        wall = time.perf_counter() - started
        result_server = {"wake": probe.stop(), "cpu": _cpu_seconds() - cpu}
        said = dict(chat.said)  # during the class (floods still drain while it settles)
        chat.timing_rounds = False
        for process in processes:
            process.join(30)
            process.close()
        result = _merged(parts)
        result["dropped"] = dropped
        result["server"] = result_server
        result["line times"] = {
            text: (read, chat.sent_at[text])
            for text, read in chat.read_at.items()
            if text in chat.sent_at
        }
        result["said"] = said
        result["rounds"] = chat.rounds
        # The clients are gone: everything must come back to idle (bounded wait).
        # A flooder that hung up still has its last lines delivered, at its share of
        # the room's rate (nothing it said is lost): allow that time, and report it.
        settle_started = time.monotonic()
        while time.monotonic() < settle_started + 90:
            left = _counts(servers, pool)
            if all(left[k] <= idle[k] for k in ("threads", "fds", "ports leased", "connections")):
                break
            time.sleep(0.1)
        left = _counts(servers, pool)
        result["settled after"] = time.monotonic() - settle_started
        file_figures = file_service.finish() if file_service is not None else None
        stop_started = time.perf_counter()
        for server in servers:
            server.stop()
        stop_time = time.perf_counter() - stop_started
        time.sleep(0.2)
        stopped = _counts(servers, pool)
        stopped["threads"] -= threads_at_start
        stopped["fds"] -= fds_at_start
        pool.close()
        out.close()
        out.join_thread()
    leaks = [k for k in ("threads", "fds", "ports leased", "connections") if left[k] > idle[k]]
    leaks += [f"{k} after stop" for k in ("threads", "fds", "ports leased") if stopped[k] > 0]
    if file_figures is not None:
        leaks += [f"file service: {leak}" for leak in file_figures["leaks"]]
    _report_mixed(args, result, wall, idle, peak, left, stopped, stop_time, leaks)
    if file_figures is not None:
        _report_file_process(file_figures)
    _report_where_time_goes(args, result, wall, file_figures)
    ok = not result["errors"] and not leaks and not result["stuck threads"]
    return 0 if ok else 1


def _file_server(spec: dict) -> FileServer:
    """The mixed class's file service (not started)."""
    key = _pair(spec["key"])
    allowlist = Allowlist(Path(spec["folder"]) / "allowlist.csv")
    return FileServer(
        key, allowlist, Path(spec["folder"]) / "homes", max_upload=256 << 20,
        quota=spec["quota"], connection_timeout=10.0, name="mixed-files",
    )  # fmt: skip


def _serve_files(spec: dict, pipe: multiprocessing.connection.Connection) -> None:
    """The file service in a process of its own: report its port, serve until told, report."""
    if spec.get("nice"):
        os.nice(spec["nice"])  # as `labcrypto ftp-serve` does (its --nice, default 10)
    threads_at_start = threading.active_count()
    fds_at_start = len(os.listdir("/proc/self/fd"))
    server = _file_server(spec).start()
    probe, cpu = _WakeProbe(), _cpu_seconds()
    idle = _counts([server], None)
    peak = dict(idle)
    pipe.send(server.port)
    probe.start()
    while not pipe.poll(0.5):  # sample the peaks until the bench says the class is over
        for name, value in _counts([server], None).items():
            peak[name] = max(peak[name], value)
    pipe.recv()
    wake, cpu = probe.stop(), _cpu_seconds() - cpu
    settle_deadline = time.monotonic() + 20
    while time.monotonic() < settle_deadline:
        after = _counts([server], None)
        if all(after[k] <= idle[k] for k in ("threads", "fds", "connections")):
            break
        time.sleep(0.1)
    server.stop()
    stopped = _counts([server], None)
    stopped["threads"] -= threads_at_start
    stopped["fds"] -= fds_at_start
    leaks = [k for k in ("threads", "fds", "connections") if after[k] > idle[k]]
    leaks += [f"{k} after stop" for k in ("threads", "fds") if stopped[k] > 0]
    pipe.send(
        {
            "idle": idle, "peak": peak, "after": after, "stopped": stopped, "leaks": leaks,
            "wake": wake, "cpu": cpu,
        }
    )  # fmt: skip


class _FileServiceProcess:
    """``_serve_files`` in a child process: ``port`` to connect to, ``finish()`` for figures."""

    def __init__(self, context: multiprocessing.context.SpawnContext, spec: dict) -> None:
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_serve_files, args=(spec, child), daemon=True)
        self.process.start()
        child.close()
        if not self.pipe.poll(60):
            self.process.kill()
            raise SystemExit("the file service process did not start")
        self.port: int = self.pipe.recv()

    def finish(self) -> dict:
        """Tell it the class is over; its figures once it has settled and stopped."""
        self.pipe.send("stop")
        figures = self.pipe.recv() if self.pipe.poll(60) else {"leaks": ["did not answer"]}
        self.process.join(10)
        self.process.close()
        self.pipe.close()
        return figures


def _report_where_time_goes(
    args: argparse.Namespace, result: dict, wall: float, file_figures: dict | None
) -> None:
    """Split each timed round trip at the server's clock readings, and show how long a
    woken thread waits for a core and the GIL in each process (the wake probes)."""
    server_times = result["line times"]
    legs: dict[str, list[float]] = {"up": [], "fan": [], "down": [], "wake": [], "total": []}
    for text, sent, heard, woke in result["lines"]:
        if text not in server_times:
            continue
        read, fanned = server_times[text]
        for leg, seconds in (
            ("up", read - sent), ("fan", fanned - read), ("down", heard - read),
            ("wake", woke - heard), ("total", woke - sent),
        ):  # fmt: skip
            legs[leg].append(seconds * 1000)
    print("  where a chat round trip's time goes (ms; clocks read in the client and the server):")
    if not legs["total"]:
        print("    no line was timed on both sides")
        return
    names = {
        "up": "sent -> the server has read it (client send, server reader woken)",
        "fan": "server: read -> handed to the last member's socket (server only)",
        "down": "server read -> the client's reader has its echo",
        "wake": "client's reader -> the waiting student thread runs",
        "total": "round trip",
    }
    cut = percentile(legs["total"], 0.99)
    tail = [i for i, total in enumerate(legs["total"]) if total >= cut]
    print(f"    {'':66s}{'p50':>7}{'p99':>8}  mean in the slowest 1 %")
    for leg, label in names.items():
        values = legs[leg]
        in_tail = statistics.fmean(values[i] for i in tail)
        print(
            f"    {label:66s}{percentile(values, 0.5):7.1f}{percentile(values, 0.99):8.1f}"
            f"  {in_tail:7.1f}"
        )
    rounds = result["rounds"]
    if rounds:
        walls = [wall_s * 1000 for wall_s, _, _ in rounds]
        slowest = sorted(rounds, reverse=True)[: max(1, len(rounds) // 100)]
        print(
            f"  the room's sender, {len(rounds)} rounds (each: its lines to every member): "
            f"wall p50 {percentile(walls, 0.5):.1f} / p99 {percentile(walls, 0.99):.1f} ms, "
            f"lines p50 {percentile([n for _, _, n in rounds], 0.5)} / max "
            f"{max(n for _, _, n in rounds)}; in the slowest 1 % it ran "
            f"{statistics.fmean(c for _, c, _ in slowest) * 1000:.1f} ms of "
            f"{statistics.fmean(w for w, _, _ in slowest) * 1000:.1f} ms (the rest: waiting "
            "for a core or the GIL)"
        )
    print(
        "  a woken thread's wait for a core and the GIL (a 10 ms sleep's lateness, ms "
        "p50 / p99 / max):"
    )
    rows = [("chat server process", result["server"]["wake"])]
    rows += [(f"client process {n}", w) for n, w in enumerate(result["wake"], 1)]
    if file_figures is not None and "wake" in file_figures:
        rows.append(("file service process", file_figures["wake"]))
    for name, wake in rows:
        print(f"    {name:28s}{wake['p50']:7.1f}{wake['p99']:8.1f}{wake['max']:8.1f}")
    cpus = [("chat server", result["server"]["cpu"]), ("clients", result["cpu"])]
    if file_figures is not None and "cpu" in file_figures:
        cpus.insert(1, ("file service", file_figures["cpu"]))
    available = wall * (os.cpu_count() or 1)
    print(
        f"  CPU used during the class ({available:.0f} core-seconds on {os.cpu_count()} cores): "
        + ", ".join(f"{name} {seconds:.0f} s ({seconds / available:.0%})" for name, seconds in cpus)
    )


def _report_file_process(figures: dict) -> None:
    if "idle" not in figures:
        print(f"  file service process: {figures['leaks']}")
        return
    print(f"  file service process:           {'idle':>8}{'peak':>8}{'after':>8}")
    for name in ("threads", "fds", "connections", "RSS MiB"):
        row = [figures[k][name] for k in ("idle", "peak", "after")]
        print(f"    {name:28s}{row[0]:8d}{row[1]:8d}{row[2]:8d}")
    stopped = figures["stopped"]
    print(f"  after stop: threads {stopped['threads']:+d}, fds {stopped['fds']:+d}")


def _report_mixed(
    args: argparse.Namespace,
    result: dict,
    wall: float,
    idle: dict[str, int],
    peak: dict[str, int],
    left: dict[str, int],
    stopped: dict[str, int],
    stop_time: float,
    leaks: list[str],
) -> None:
    print(
        f"mixed class: {args.chat} chat + {args.files} file + {args.hostile} hostile clients "
        f"for {args.duration:.0f} s (wall {wall:.1f} s), secure mode, chat with the two-port "
        f"handoff, uploads of {args.file_kib} KiB; clients in "
        f"{max(1, args.client_processes)} other process(es); services in "
        f"{'separate processes' if args.separate_services else 'one process'}"
        + (f" (file service at niceness +{args.file_nice})" if args.separate_services else "")
        + (f"; clients at niceness +{args.client_nice}" if args.client_nice else "")
    )
    print(
        "  load average now (1, 5, 15 min): "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores (absolute figures inflate with it)"
    )
    lines = len(result["latency"].get("chat round trip", []))
    said, by_students = sum(result["said"].values()), result["said"]["students"]
    print(
        f"  throughput: chat {said / wall:,.0f} lines said/s ({by_students / wall:,.0f} by the "
        f"students, the rest by floods; each to every member: "
        f"~{said * (args.chat + 1) / wall:,.0f} deliveries/s; {lines} timed round trips), "
        f"files {result['bytes'] / 1e6 / wall:.1f} MB/s, "
        f"{sum(len(result['latency'].get(k, [])) for k in ('file put', 'file get', 'file ls')) / wall:.1f} requests/s"  # noqa: E501
    )
    for kind in ("chat join", "chat round trip", "file put", "file get", "file ls"):
        values = result["latency"].get(kind, [])
        if values:
            print(
                f"  {kind:16s} p50 {percentile(values, 0.5) * 1000:8.1f} ms   "
                f"p99 {percentile(values, 0.99) * 1000:8.1f} ms   n={len(values)}"
            )
    moved = result["per file client"].values()
    if moved:
        rates = sorted(b / 1e6 / args.duration for b in moved)
        print(
            f"  file throughput per client: min {rates[0]:.2f}, median "
            f"{statistics.median(rates):.2f}, max {rates[-1]:.2f} MB/s (up + down)"
        )
    errors = result["errors"]
    print(f"  well-behaved errors: {sum(errors.values())} {errors or ''}")
    print(f"  well-behaved members the server closed: {result['dropped'] or 'none'}")
    for line in result["error_lines"]:
        print(f"    {line}")
    print("  hostile clients met:")
    for what, count in sorted(result["hostile"].items()):
        print(f"    {count:5d}  {what}")
    cut = result["latency"].get("hostile slowloris cut after", [])
    if cut:
        print(f"    slowloris cut after p50 {percentile(cut, 0.5):.1f} s, max {max(cut):.1f} s")
    print(f"  server process: {'':14}{'idle':>8}{'peak':>8}{'after':>8}")
    for name in ("threads", "fds", "ports leased", "connections", "RSS MiB"):
        print(f"    {name:28s}{idle[name]:8d}{peak[name]:8d}{left[name]:8d}")
    print(
        f"  after stop ({stop_time * 1000:.0f} ms): threads {stopped['threads']:+d}, "
        f"fds {stopped['fds']:+d} against before the servers started, ports leased "
        f"{stopped['ports leased']}"
    )
    print(f"  back to idle {result['settled after']:.1f} s after the clients left")
    print(f"  leaks: {', '.join(leaks) if leaks else 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixed", action="store_true", help="the mixed class (chat+files+hostile)")
    parser.add_argument("--duration", type=float, default=60.0, help="--mixed: seconds (60)")
    parser.add_argument("--chat", type=int, default=40, help="--mixed: chat clients (40)")
    parser.add_argument("--files", type=int, default=10, help="--mixed: file clients (10)")
    parser.add_argument("--hostile", type=int, default=4, help="--mixed: hostile clients (4)")
    parser.add_argument(
        "--separate-services",
        action="store_true",
        help="--mixed: the file service in a process of its own, as `labcrypto serve` and "
        "`labcrypto ftp-serve` run (default: both in one process, as in one notebook kernel)",
    )
    parser.add_argument(
        "--file-nice",
        type=int,
        default=DEFAULT_FTP_NICENESS,
        help="--separate-services: how much the file service lowers its CPU priority, as "
        f"`labcrypto ftp-serve --nice` does ({DEFAULT_FTP_NICENESS}; 0: not at all)",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=0,
        help="--mixed: how much the client processes lower their CPU priority (0). Clients "
        "at 10 take only the CPU the servers leave, as if they ran on the students' own "
        "machines: the difference to 0 is the part of the figures that is the clients' "
        "own competition for this machine's cores",
    )
    parser.add_argument(
        "--file-kib", type=int, default=1024, help="--mixed: size of each upload (1024 KiB)"
    )
    parser.add_argument("--clients", type=int, default=50, help="students at once (50)")
    parser.add_argument("--rounds", type=int, default=20, help="round trips each (20)")
    parser.add_argument("--mode", choices=["secure", "toy"], default="secure")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the clients run in (1: apart from the server, as on other "
        "machines; 0: in the server's process, as in one notebook kernel). --mixed: "
        "K > 1 puts the file and hostile clients in one and the chat clients in K - 1",
    )
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="seconds over which the class joins (0)"
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="ms each student waits between lines (0)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per wait (10)")
    args = parser.parse_args(argv)
    if args.mixed:
        return run_mixed(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
