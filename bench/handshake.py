"""How long does a handshake cost each side? (issue 2's figure)

Runs the sans-IO handshake in memory (no sockets, so only the crypto and
the message handling are measured) and prints p50/p99 per side, for
secure mode, secure mode with ephemeral keys (the file service), and toy mode.

    .venv/bin/python bench/handshake.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from labcrypto import groups, handshake, keys


def one_handshake(client_key, server_key, mode: str, ephemeral: bool) -> tuple[float, float]:
    """Run one handshake; return (client seconds, server seconds)."""
    client_time = server_time = 0.0
    t = time.perf_counter()
    client = handshake.ClientHandshake(client_key, mode, ephemeral=ephemeral)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    cases = [
        ("secure", False, groups.FFDHE2048),
        ("secure", True, groups.FFDHE2048),
        ("toy", False, groups.TOY),
    ]
    print(f"{'mode':<18} {'side':<7} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for mode, ephemeral, group in cases:
        client_key, server_key = keys.generate(group), keys.generate(group)
        while server_key.public == client_key.public:  # tiny toy group: keep them distinct
            server_key = keys.generate(group)
        one_handshake(client_key, server_key, mode, ephemeral)  # warm up
        runs = [one_handshake(client_key, server_key, mode, ephemeral) for _ in range(args.rounds)]
        label = mode + (" ephemeral" if ephemeral else "")
        for side, values in (("client", [c for c, _ in runs]), ("server", [s for _, s in runs])):
            ms = [v * 1000 for v in values]
            print(
                f"{label:<18} {side:<7} {percentile(ms, 0.5):8.2f} {percentile(ms, 0.99):8.2f} "
                f"{statistics.fmean(ms):8.2f}"
            )


if __name__ == "__main__":
    main()
