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

Clients and server run in this one process (one GIL), as in a notebook
where the instructor's kernel runs both: the figures include the clients'
own work. Not a pass/fail test; see tests/ for those.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from labcrypto import groups, keys
from labcrypto.allowlist import Allowlist
from labcrypto.chat import ChatClient, ChatMessage, ChatServer
from labcrypto.ports import PortPool

HOST = "127.0.0.1"


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def free_range(count: int) -> int:
    """The first of ``count`` consecutive free ports on loopback, below the ephemeral range."""
    for _ in range(200):
        first = random.randrange(20000, 32700 - count)
        held: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise SystemExit(f"no {count} consecutive free ports found on {HOST}")


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
        first = free_range(args.clients)
        pool = PortPool(first, first + args.clients - 1, HOST)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="students at once (50)")
    parser.add_argument("--rounds", type=int, default=20, help="round trips each (20)")
    parser.add_argument("--mode", choices=["secure", "toy"], default="secure")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the clients run in (1: apart from the server, as on other "
        "machines; 0: in the server's process, as in one notebook kernel)",
    )
    parser.add_argument(
        "--ramp", type=float, default=0.0, help="seconds over which the class joins (0)"
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="ms each student waits between lines (0)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per wait (10)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
