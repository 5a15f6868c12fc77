"""How big a class fits on one hub? (the sizing table in INSTRUCTORS.md)

As root, for each class size: real Unix accounts (a teacher, N students, an
outsider), a JupyterHub with the lab's shipped settings spawning every
server as its student (``tests/hub_campus.py``, the same hub as
tests/test_hub.py), then what a lecture does:

1. every server started at once — seconds until all are ready;
2. each student makes a key in their own kernel; the teacher allowlists the
   ``.pub`` files and runs the class chat server; every student joins and
   sends ``--lines`` lines, 0.2 s apart, timing each line's round trip (sent
   → back from the server) and counting lines nobody received;
3. notebook 02b (the chat), top to bottom, in every student's server at once;

and prints spawn time, memory per student (idle server; server with its
notebook kernel), the machine's peak memory use (MemAvailable, sampled each
second), chat p50/p99 and lost lines, and notebook 02b's times. Everything is
removed afterwards, as in the test.

    sudo .venv/bin/python bench/hub_class.py --students 20 40

Heavy: 40 students take about 9 GB and both cores for several minutes.
Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hub_campus import (  # noqa: E402
    CLASS_SERVER,
    Campus,
    CampusUnavailable,
    make_keys,
    open_campus,
    python_code,
    run_notebook,
)
from hub_lab import each  # noqa: E402

MIB = 2**20



TIMED_CHAT = """
import json, time
from labcrypto import keys
from labcrypto.chat import ChatClient
from labcrypto.keys import PublicKey
client = ChatClient.connect("127.0.0.1", {port}, keys.load({name}, keys.default_dir()),
                            server_key=PublicKey.from_text({server_pub}), timeout=60)
time.sleep({start_in})  # everyone joined before anyone talks
mine, heard, lost = [], set(), 0
for i in range({lines}):
    text = f"{{client.name}} line {{i}}"
    sent = time.perf_counter()
    client.send(text)
    back = None
    while back is None and time.perf_counter() - sent < 15:
        try:
            message = client.recv(timeout=1)
        except TimeoutError:
            continue
        heard.add(message.text)
        if message.text == text:
            back = time.perf_counter() - sent
    if back is None:
        lost += 1
    else:
        mine.append(back)
    time.sleep(0.2)
deadline = time.monotonic() + 30
while len(heard) < {everyone} and time.monotonic() < deadline:
    try:
        heard.add(client.recv(timeout=1).text)
    except TimeoutError:
        pass
client.close()
print(json.dumps({{"round_trips": mine, "lost": lost, "heard": len(heard)}}))
"""


class MemoryWatch:
    """The machine's lowest MemAvailable while running, sampled every second."""

    def __init__(self) -> None:
        self.baseline = self.available()
        self.lowest = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def available() -> int:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.lowest = min(self.lowest, self.available())

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak_use(self) -> int:
        return self.baseline - self.lowest


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def chat(campus: Campus, lines: int) -> dict[str, Any]:
    """The class chat: every student sends ``lines`` lines; round trips and losses."""
    teacher, students = campus.teacher, campus.students
    make_keys(campus)
    teacher_server = campus.server(teacher)
    for name in students:
        pub = campus.server(name).read_text(f".labcrypto/keys/{name}.pub")
        teacher_server.put_file(f"class/{name}.pub", pub)
    kernel = teacher_server.kernel(timeout=120)
    try:
        port = kernel.run_json(python_code(CLASS_SERVER, students=students), 300)["port"]
        server_pub = teacher_server.read_text(".labcrypto/keys/server.pub")
        code = {
            name: python_code(
                TIMED_CHAT,
                port=port,
                name=name,
                server_pub=server_pub,
                start_in=10 + len(students) * 0.2,
                lines=lines,
                everyone=lines * len(students),
            )
            for name in students
        }
        reports = each(students, lambda n: campus.in_kernel(n, code[n], timeout=600))
        kernel.run("room.stop()")
    finally:
        kernel.close()
    trips = [t for report in reports for t in report["round_trips"]]
    return {
        "p50 ms": percentile(trips, 0.50) * 1000 if trips else float("nan"),
        "p99 ms": percentile(trips, 0.99) * 1000 if trips else float("nan"),
        "lost": sum(report["lost"] for report in reports),
        "lines": lines * len(students),
        "heard everything": sum(report["heard"] == lines * len(students) for report in reports),
    }


def notebooks(campus: Campus) -> dict[str, Any]:
    """Notebook 02b (the chat) in every student's server at once."""
    content = json.loads((ROOT / "notebooks" / "02b_chat.ipynb").read_text(encoding="utf-8"))
    path = "notebooks/02b_chat.ipynb"
    students = campus.students
    each(students, lambda n: campus.server(n).put_file(path, content, kind="notebook"))
    runs = each(
        students,
        lambda n: run_notebook(campus.server(n), path, cell_limit=300, notebook_limit=900),
    )
    return {
        "seconds": [run["seconds"] for run in runs],
        "rss": [run["rss"] for run in runs],
        "errors": sum(bool(run["problems"]) for run in runs),
    }


def one_class(size: int, lines: int) -> dict[str, Any]:
    with MemoryWatch() as memory, open_campus(size, spawn_limit=900) as campus:
        idle = campus.figures["idle rss"]
        talked = chat(campus, lines)
        ran = notebooks(campus)
    return {
        "students": size,
        "spawn s": campus.figures["spawn"],
        "idle MiB": statistics.mean(idle[name] for name in campus.students) / MIB,
        "with kernel MiB": statistics.mean(ran["rss"]) / MIB,
        "peak GiB": memory.peak_use / 2**30,
        "chat": talked,
        "notebook s": (min(ran["seconds"]), statistics.median(ran["seconds"]), max(ran["seconds"])),
        "notebook errors": ran["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--lines", type=int, default=10, help="chat lines per student")
    args = parser.parse_args(argv)
    rows = []
    for size in args.students:
        try:
            row = one_class(size, args.lines)
        except CampusUnavailable as exc:
            print(f"cannot run a hub with real accounts here: {exc}")
            return 1
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        "\n| students | spawn (all at once) | idle server | server + notebook kernel "
        "| machine peak | chat p50 / p99 | lines lost | notebook 02b (min / median / max) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        talk = row["chat"]
        low, mid, high = row["notebook s"]
        print(
            f"| {row['students']} | {row['spawn s']:.0f} s | {row['idle MiB']:.0f} MiB "
            f"| {row['with kernel MiB']:.0f} MiB | {row['peak GiB']:.1f} GiB "
            f"| {talk['p50 ms']:.1f} / {talk['p99 ms']:.1f} ms | {talk['lost']} of {talk['lines']} "
            f"| {low:.0f} / {mid:.0f} / {high:.0f} s"
            + (f" ({row['notebook errors']} with errors)" if row["notebook errors"] else "")
            + " |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
