"""Do kernels always start when a whole class starts them at once? (issue 17's port race)

jupyter_client gives a new kernel five TCP ports by binding port 0 and
closing the socket; the kernel binds them a moment later. With a class's
servers on one loopback, another process can take such a port in between
(a connection's ephemeral source port, another kernel's pick), and the
kernel dies with ``ZMQError: Address already in use`` — and a restart
reuses the same ports. Kernels on the ``ipc`` transport (Unix sockets in
the student's private runtime folder) use no ports at all.

This starts ``--servers`` Jupyter servers (as this user: the race is
about one loopback, not about accounts), then, ``--rounds`` times, asks
every server for ``--kernels`` kernels at once and checks each one answers
``kernel_info`` and runs ``1 + 1`` within ``--timeout`` seconds. It prints
the failures per round and in all, for the transport given:

    .venv/bin/python bench/kernel_starts.py --transport tcp   # today's default
    .venv/bin/python bench/kernel_starts.py --transport ipc   # what hub/jupyterhub_config.py ships

Figures, not pass/fail. The hub test (tests/test_hub.py) proves the
shipped setting on real student accounts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from kernels import write_kernelspec  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One ``jupyter server`` on loopback with its own folders and token."""

    def __init__(self, base: Path, index: int, transport: str, jupyter_path: Path) -> None:
        self.folder = base / f"s{index:02d}"
        (self.folder / "run").mkdir(parents=True)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        env = dict(os.environ, JUPYTER_PATH=str(jupyter_path))
        env["JUPYTER_RUNTIME_DIR"] = str(self.folder / "run")
        env["JUPYTER_CONFIG_DIR"] = str(self.folder / "config")
        args = [
            sys.executable, "-m", "jupyter_server", "--no-browser",
            f"--ServerApp.port={self.port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.folder}",
            f"--KernelManager.transport={transport}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--ServerApp.allow_root=True")
        self.log = open(self.folder / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            args, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def api(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read()
        return json.loads(text) if text else None

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api("GET", "/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise TimeoutError(f"server {self.folder.name} did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.close()


def start_and_use(server: Server, timeout: float) -> str | None:
    """Start one kernel, run ``1 + 1`` in it; None if it worked, else what went wrong."""
    started = time.monotonic()
    try:
        kernel = server.api("POST", "/kernels", {"name": "python3"})
    except (OSError, urllib.error.URLError) as exc:
        return f"POST /kernels: {exc}"
    assert isinstance(kernel, dict)
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel['id']}/channels"
    problem: str | None = "no answer"
    try:
        ws = websocket.create_connection(
            url, header=[f"Authorization: token {server.token}"], timeout=timeout
        )
        try:
            msg_id = uuid.uuid4().hex
            request = {
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": msg_id,
                           "username": "bench", "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": "print(1 + 1)", "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False},
            }  # fmt: skip
            ws.send(json.dumps(request))
            while time.monotonic() - started < timeout:
                ws.settimeout(max(0.1, timeout - (time.monotonic() - started)))
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if message["header"]["msg_type"] == "stream" and "2" in message["content"]["text"]:
                    problem = None
                    break
        finally:
            ws.close()
    except (OSError, websocket.WebSocketException) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            server.api("DELETE", f"/kernels/{kernel['id']}")
        except (OSError, urllib.error.URLError):
            pass
    return problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["tcp", "ipc"], default="tcp")
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--kernels", type=int, default=3, help="per server, per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="lc-kernels-"))
    servers: list[Server] = []
    failures: list[str] = []
    starts = 0
    try:
        jupyter_path = write_kernelspec(base / "jupyter")
        servers = [Server(base, i, args.transport, jupyter_path) for i in range(args.servers)]
        for server in servers:
            server.wait_ready()
        jobs = [server for server in servers for _ in range(args.kernels)]
        lock = threading.Lock()
        for round_number in range(1, args.rounds + 1):
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                results = list(pool.map(lambda s: (s, start_and_use(s, args.timeout)), jobs))
            failed = [f"{s.folder.name}: {problem}" for s, problem in results if problem]
            with lock:
                starts += len(results)
                failures += failed
            print(
                f"round {round_number}: {len(results)} kernel starts in "
                f"{time.perf_counter() - began:.1f} s, {len(failed)} failed",
                flush=True,
            )
            for line in failed:
                print(f"  {line}", flush=True)
    finally:
        for server in servers:
            server.stop()
        logs = [(s.folder / "server.log").read_text(errors="replace") for s in servers]
        shutil.rmtree(base, ignore_errors=True)
    in_use = sum(log.count("Address already in use") for log in logs)
    restarts = sum(log.count("restarting kernel") for log in logs)
    print(
        f"transport {args.transport}: {len(failures)} of {starts} kernel starts failed "
        f"({args.servers} servers x {args.kernels} kernels x {args.rounds} rounds); "
        f"in the servers' logs: {in_use} 'Address already in use', {restarts} kernel restarts"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
