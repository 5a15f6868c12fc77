"""How long does a handshake cost each side? (issues 2, 8, 14 and 19's figures)

Everything below is measured twice in one run: first with CPython's ``pow``
for the 2048-bit arithmetic (what the lab used before; a child process with
``LABCRYPTO_ARITHMETIC=python``), then with GMP's ``powmod_sec`` (what
``groups.power`` uses now), so the two columns come from the same machine
at the same time. The load average is printed with each part.

1. Runs the sans-IO handshake in memory (no sockets, so only the crypto and
   the message handling are measured) and prints p50/p99 per side, for
   secure mode (fresh ephemeral keys on both sides: ee, es, se, ss), the
   course's static-only exchange (``static``: one exponentiation), and toy
   mode. Secure mode twice:

   * ``secure, all in it``: every exponentiation inside the handshake — the
     ephemeral key pair (g^x) and the four terms: five a side. (How it was
     before the key pool and the remembered ss term.)
   * ``secure, pooled``: the file service's way now. The ephemeral key pair
     comes from a ``key_pool.EphemeralPool`` (made while this side waited
     for its peer in the previous handshake; here between rounds, *outside*
     the timed span, and its cost is printed on its own line), and the
     static×static term is remembered (``KeyPair.static_shared_secret``):
     three exponentiations a side inside the handshake. The CPU is the same
     less the ss term; what moves is *when* g^x is computed.
2. Per group (toy, and both 2048-bit groups, RFC 3526 modp2048 and RFC
   7919 ffdhe2048): the Diffie-Hellman work of one side — make a key pair,
   check the peer's public value, compute the shared secret. The handshake
   itself uses ffdhe2048 in secure mode; modp2048 is there to compare.
3. A small ``ls`` request's full latency against a ``FileServer`` in its
   own process: TCP connect, a fresh secure handshake, the request and its
   reply, close — what one file-service command costs a student. Twice:
   client and server as before (no pool, ss computed each time; the child
   gets ``--as-before``), then as now.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ftp_throughput  # bench/ftp_throughput.py runs the server child

from labcrypto import groups, handshake, keys
from labcrypto.allowlist import Allowlist
from labcrypto.ftp import FileClient
from labcrypto.key_pool import EphemeralPool


class Stopwatch:
    """Wall-clock and CPU seconds (of this thread) of one side, added up over its turns."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.thread_time() - self._cpu


def one_handshake(
    client_key: keys.KeyPair,
    server_key: keys.KeyPair,
    mode: str,
    pools: tuple[EphemeralPool, EphemeralPool] | None = None,
) -> tuple[Stopwatch, Stopwatch]:
    """Run one handshake; return each side's (client, server) wall and CPU seconds.

    With ``pools`` (client's, server's) each side takes its ephemeral key pair
    from its pool; refilling the pools is the caller's business (not timed here).
    CPU time hardly depends on what else a shared machine runs; wall time does.
    """
    client_pool, server_pool = pools if pools is not None else (None, None)
    client_side, server_side = Stopwatch(), Stopwatch()
    with client_side:
        client = handshake.ClientHandshake(
            client_key, mode, ephemeral_keys=client_pool.take if client_pool else None
        )
        hello = client.start()
    with server_side:
        server = handshake.ServerHandshake(
            server_key,
            mode,
            allow=lambda key: True,
            ephemeral_keys=server_pool.take if server_pool else None,
        )
        replies = server.receive(hello)
    with client_side:
        finished = [out for message in replies for out in client.receive(message)]
    with server_side:
        for message in finished:
            server.receive(message)
    assert client.session is not None and server.session is not None
    assert client.session.keys == server.session.keys
    return client_side, server_side


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cores)"


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
    print(f"one side's Diffie-Hellman work per group (ms) [{load()}]")
    print(f"{'group':<12} {'step':<14} {'p50 ms':>8} {'p99 ms':>8}")
    for group in (groups.TOY, groups.MODP2048, groups.FFDHE2048):
        group_costs(group, 3)  # warm up
        for step, values in group_costs(group, rounds).items():
            ms = [v * 1000 for v in values]
            print(
                f"{group.name:<12} {step:<14} {percentile(ms, 0.5):8.3f} "
                f"{percentile(ms, 0.99):8.3f}"
            )


def ls_latencies(requests: int, as_before: bool) -> tuple[list[float], float]:
    """``ls`` against a FileServer in a child process, each with a fresh key exchange.

    Returns the latencies (ms) and the CPU time of both processes per request (ms).

    ``as_before``: client and server make every ephemeral key and ss term inside
    the handshake (no pool, nothing remembered), as before the key pool.
    """
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        client_key, server_key = keys.generate(groups.FFDHE2048), keys.generate(groups.FFDHE2048)
        keys.save(server_key, "server", workdir / "keys")
        Allowlist(workdir / "keys" / "allowlist.csv").add("bench", client_key.public_key)
        extra = ["--as-before"] if as_before else []
        child, port = ftp_throughput.start_child(["--serve", str(workdir), *extra])
        try:
            client = FileClient("127.0.0.1", port, client_key, timeout=30)
            if as_before:
                client.ephemeral_pool = ftp_throughput.MadeInTheHandshake(client_key.group)
            for _ in range(5):
                client.ls()  # warm up: the home is created, the server key pinned
            latencies = []
            meter = ftp_throughput.CpuMeter(child.pid)
            meter.start()
            for _ in range(requests):
                t = time.perf_counter()
                client.ls()
                latencies.append((time.perf_counter() - t) * 1000)
                time.sleep(secrets.randbelow(3) / 1000)  # do not march in step with the server
            cpu_ms = meter.stop() * 1000 / requests
        finally:
            ftp_throughput.stop_child(child)
    assert len(set(client.sessions)) == len(client.sessions)  # fresh keys every time
    return latencies, cpu_ms


def print_ls_latency(requests: int, compare: bool) -> None:
    """The ``ls`` figures: as before and as now (alternating halves), or as now only."""
    print()
    print(
        f"ls, full request (connect, fresh secure handshake, reply, close), server in its "
        f"own process, {requests} requests each [{load()}]"
    )
    cases = [("as before (all in the handshake)", True), ("now (pool, ss remembered)", False)]
    if not compare:
        cases = cases[1:]
    results: dict[str, list[float]] = {label: [] for label, _ in cases}
    cpu: dict[str, list[float]] = {label: [] for label, _ in cases}
    for half in range(2):  # two halves each, alternating: a noisy moment hits both alike
        for label, as_before in cases:
            latencies, cpu_ms = ls_latencies(requests // 2 + (requests % 2) * half, as_before)
            results[label] += latencies
            cpu[label].append(cpu_ms)
    for label, latencies in results.items():
        rate = 1000 / statistics.fmean(latencies)
        print(
            f"  {label:<34} p50 {percentile(latencies, 0.5):6.2f} ms, "
            f"p99 {percentile(latencies, 0.99):7.2f} ms, {rate:4.0f}/s, "
            f"CPU {statistics.fmean(cpu[label]):5.2f} ms/request (both processes)"
        )
    if compare:
        before, now = (percentile(results[label], 0.5) for label, _ in cases)
        print(f"  p50 now / before: {now / before:.2f}")
    print(f"  goals: p50 <= 10 ms, >= 100/s (the 'now' row) [{load()}]")


def print_handshakes(rounds: int) -> None:
    """The in-memory handshake of each mode, per side."""
    print(f"in-memory handshake, {rounds} rounds [{load()}]")
    print(f"{'mode':<22} {'side':<7} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'CPU p50':>8}")
    cases = [
        ("secure, all in it", groups.FFDHE2048),
        ("secure, pooled", groups.FFDHE2048),
        ("static", groups.FFDHE2048),
        ("toy", groups.TOY),
    ]
    refill_ms: list[float] = []
    for label, group in cases:
        mode = label.split(",")[0]
        client_key, server_key = keys.generate(group), keys.generate(group)
        while server_key.public == client_key.public:  # tiny toy group: keep them distinct
            server_key = keys.generate(group)
        pools = None
        if label == "secure, pooled":
            pools = (EphemeralPool(group), EphemeralPool(group))
        runs = []
        for number in range(rounds + 1):  # the first is a warm-up
            if label == "secure, all in it":
                # New objects for the same keys: nothing remembered from the last round.
                client_key = keys.KeyPair(group, client_key.private, client_key.public)
                server_key = keys.KeyPair(group, server_key.private, server_key.public)
            if pools is not None:
                t = time.perf_counter()
                for pool in pools:
                    pool.refill()  # what each side does while it waits for the other
                refill_ms.append((time.perf_counter() - t) * 1000 / 2)
            run = one_handshake(client_key, server_key, mode, pools)
            if number:
                runs.append(run)
        for side, watches in (("client", [c for c, _ in runs]), ("server", [s for _, s in runs])):
            ms = [w.wall * 1000 for w in watches]
            cpu = [w.cpu * 1000 for w in watches]
            print(
                f"{label:<22} {side:<7} {percentile(ms, 0.5):8.2f} {percentile(ms, 0.99):8.2f} "
                f"{statistics.fmean(ms):8.2f} {percentile(cpu, 0.5):8.2f}"
            )
    print(
        f"  (pooled: each side also made its next ephemeral pair while it waited for the "
        f"other, outside the timed span: p50 {percentile(refill_ms, 0.5):.2f} ms a side)"
    )
    print(
        "  goal: secure p50 <= 5 ms per side. 'CPU p50': this thread's CPU time, which a "
        "loaded machine inflates far less than the wall-clock columns"
    )


def measure(args: argparse.Namespace) -> None:
    """All three measurements with whatever arithmetic this process uses."""
    print_handshakes(args.rounds)
    print_group_costs(args.rounds)
    if args.requests:
        print_ls_latency(args.requests, compare=args.only != "python")
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
    fast = groups.fast_power_available()
    print(f"=== after: {'GMP powmod_sec, GIL released' if fast else 'pow (no gmpy2!)'}")
    measure(args)


if __name__ == "__main__":
    main()
