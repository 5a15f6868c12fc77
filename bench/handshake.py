"""How long does a handshake cost each side? (issues 2, 8, 14 and 19's figures)

Everything below is measured twice in one run: first with CPython's ``pow``
for the 2048-bit arithmetic (what the lab used before; a child process with
``LABCRYPTO_ARITHMETIC=python``), then with GMP's ``powmod_sec`` (what
``groups.power`` uses now), so the two columns come from the same machine
at the same time.

1. Runs the sans-IO handshake in memory (no sockets, so only the crypto and
   the message handling are measured) and prints p50/p99 per side, for
   secure mode (fresh ephemeral keys on both sides: ee, es, se, ss — five
   exponentiations a side), the course's static-only exchange (``static``:
   one), and toy mode.
2. Per group (toy, and both 2048-bit groups, RFC 3526 modp2048 and RFC
   7919 ffdhe2048): the Diffie-Hellman work of one side — make a key pair,
   check the peer's public value, compute the shared secret. The handshake
   itself uses ffdhe2048 in secure mode; modp2048 is there to compare.
3. A small ``ls`` request's full latency against a ``FileServer`` in its
   own process: TCP connect, a fresh secure handshake, the request and its
   reply, close — what one file-service command costs a student.

    .venv/bin/python bench/handshake.py [--rounds 200] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labcrypto import groups, handshake, keys
from labcrypto.allowlist import Allowlist
from labcrypto.ftp import FileClient


def one_handshake(client_key, server_key, mode: str) -> tuple[float, float]:
    """Run one handshake; return (client seconds, server seconds)."""
    client_time = server_time = 0.0
    t = time.perf_counter()
    client = handshake.ClientHandshake(client_key, mode)
    hello = client.start()
    client_time += time.perf_counter() - t

    t = time.perf_counter()
    server = handshake.ServerHandshake(server_key, mode, allow=lambda key: True)
    replies = server.receive(hello)
    server_time += time.perf_counter() - t

    t = time.perf_counter()
    finished = [out for message in replies for out in client.receive(message)]
    client_time += time.perf_counter() - t

    t = time.perf_counter()
    for message in finished:
        server.receive(message)
    server_time += time.perf_counter() - t
    assert client.session.keys == server.session.keys
    return client_time, server_time


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def group_costs(group: groups.Group, rounds: int) -> dict[str, list[float]]:
    """Seconds for one side's DH steps in ``group``: key pair, check, shared secret."""
    peer = keys.generate(group)
    times: dict[str, list[float]] = {"key pair": [], "check peer": [], "shared secret": []}
    for _ in range(rounds):
        t = time.perf_counter()
        mine = keys.generate(group)
        times["key pair"].append(time.perf_counter() - t)
        t = time.perf_counter()
        groups.validate_public(group, peer.public)
        times["check peer"].append(time.perf_counter() - t)
        t = time.perf_counter()
        mine.shared_secret(peer.public_key)
        times["shared secret"].append(time.perf_counter() - t)
    return times


def print_group_costs(rounds: int) -> None:
    print()
    print("one side's Diffie-Hellman work per group (ms)")
    print(f"{'group':<12} {'step':<14} {'p50 ms':>8} {'p99 ms':>8}")
    for group in (groups.TOY, groups.MODP2048, groups.FFDHE2048):
        group_costs(group, 3)  # warm up
        for step, values in group_costs(group, rounds).items():
            ms = [v * 1000 for v in values]
            print(
                f"{group.name:<12} {step:<14} {percentile(ms, 0.5):8.3f} "
                f"{percentile(ms, 0.99):8.3f}"
            )


def print_ls_latency(requests: int) -> None:
    """``ls`` against a FileServer in a child process, each with a fresh key exchange."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ftp_throughput  # bench/ftp_throughput.py runs the server child

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        client_key, server_key = keys.generate(groups.FFDHE2048), keys.generate(groups.FFDHE2048)
        keys.save(server_key, "server", workdir / "keys")
        Allowlist(workdir / "keys" / "allowlist.csv").add("bench", client_key.public_key)
        child, port = ftp_throughput.start_child(["--serve", str(workdir)])
        try:
            client = FileClient("127.0.0.1", port, client_key, timeout=30)
            for _ in range(5):
                client.ls()  # warm up: the home is created, the server key pinned
            latencies = []
            for _ in range(requests):
                t = time.perf_counter()
                client.ls()
                latencies.append((time.perf_counter() - t) * 1000)
                time.sleep(secrets.randbelow(3) / 1000)  # do not march in step with the server
        finally:
            ftp_throughput.stop_child(child)
    assert len(set(client.sessions)) == len(client.sessions)  # fresh keys every time
    print()
    print(
        f"ls, full request (connect, fresh secure handshake, reply, close), server in "
        f"its own process, {requests} requests: p50 {percentile(latencies, 0.5):.2f} ms, "
        f"p99 {percentile(latencies, 0.99):.2f} ms, {1000 / statistics.fmean(latencies):.0f}/s"
    )


def print_handshakes(rounds: int) -> None:
    """The in-memory handshake of each mode, per side."""
    cases = [
        ("secure", groups.FFDHE2048),
        ("static", groups.FFDHE2048),
        ("toy", groups.TOY),
    ]
    print(f"{'mode':<18} {'side':<7} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode, group in cases:
        client_key, server_key = keys.generate(group), keys.generate(group)
        while server_key.public == client_key.public:  # tiny toy group: keep them distinct
            server_key = keys.generate(group)
        one_handshake(client_key, server_key, mode)  # warm up
        runs = [one_handshake(client_key, server_key, mode) for _ in range(rounds)]
        for side, values in (("client", [c for c, _ in runs]), ("server", [s for _, s in runs])):
            ms = [v * 1000 for v in values]
            print(
                f"{mode:<18} {side:<7} {percentile(ms, 0.5):8.2f} {percentile(ms, 0.99):8.2f} "
                f"{statistics.fmean(ms):8.2f}"
            )


def measure(args: argparse.Namespace) -> None:
    """All three measurements with whatever arithmetic this process uses."""
    print_handshakes(args.rounds)
    print_group_costs(args.rounds)
    if args.requests:
        print_ls_latency(args.requests)
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="ls requests (0: skip)")
    parser.add_argument(
        "--only", choices=("python", "gmp"), help="measure one arithmetic only (no comparison)"
    )
    args = parser.parse_args()
    if args.only:
        measure(args)
        return
    print("=== before: CPython pow for the 2048-bit arithmetic (LABCRYPTO_ARITHMETIC=python)")
    sys.stdout.flush()
    env = {**os.environ, groups.ARITHMETIC_ENV: "python"}
    command = [sys.executable, __file__, "--only", "python", "--rounds", str(args.rounds),
               "--requests", str(args.requests)]  # fmt: skip
    subprocess.run(command, env=env, check=True)
    print()
    print(f"=== after: {'GMP powmod_sec' if groups.fast_power_available() else 'pow (no gmpy2!)'}")
    measure(args)


if __name__ == "__main__":
    main()
