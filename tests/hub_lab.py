"""A real JupyterHub on loopback, for the class test (tests/test_hub.py).

A course runs the lab on a JupyterHub: one Jupyter server per student, the
instructor's class server beside them. This module starts such a hub for a
test and drives it the way a hub admin's script and the students' browsers
do, through HTTP only:

* ``Hub`` — ``jupyterhub`` from this venv on 127.0.0.1 (three free ports:
  the hub, the proxy's API, the proxy's public side), with the
  ``shared-password`` authenticator, ``LocalProcessSpawner`` (each user's
  server runs as the Unix account of that name, in its home: the hub runs
  as root; ``hub_campus`` makes the accounts), the lab's shipped settings
  (``hub/jupyterhub_config.py``), configurable-http-proxy from npm, and an
  admin *service* token for its REST API. Every process
  it starts — the hub, the proxy, each user's server, each kernel — carries
  a random marker in its environment, so ``processes()`` finds them all
  (even one that lost its parent) and ``kill_leftovers()`` ends them by PID.
* ``UserServer`` — one user's Jupyter server, reached through the hub's
  proxy as a browser would (``/user/NAME/...``): the contents API and kernels.
* ``Kernel`` — a kernel of that server over its websocket (the Jupyter
  messaging protocol, as JSON): ``run(code)`` executes code and returns
  what it printed; ``run_notebook(nb)`` runs every code cell in order.

Every wait is bounded; every failure message carries what explains it (a
failed spawn shows up only as a bare 500 from the REST API, so ``HubError``
messages end with the tail of the hub's log).
"""

from __future__ import annotations

import contextlib
import html
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub_accounts import OWNER_VAR
from kernels import write_kernelspec  # re-exported: test_hub imports it from here

__all__ = [
    "MARKER_VAR",
    "PROXY_PATHS",
    "CellResult",
    "Hub",
    "HubError",
    "Kernel",
    "KernelError",
    "UserServer",
    "each",
    "find_proxy",
    "free_ports",
    "marked_processes",
    "poll",
    "process_env",
    "rss_bytes",
    "write_kernelspec",
]

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
#: Where ``.ci/run`` installs configurable-http-proxy (npm, local prefix), then PATH.
PROXY_PATHS = [ROOT / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"]
#: The settings the lab ships for hubs (hub/jupyterhub_config.py and the servers' files).
SHIPPED_CONFIG = ROOT / "hub"
#: A request the hub answered with 2xx or 3xx, as its log shows it.
_SUCCESSFUL_REQUEST = re.compile(r"\] [23]\d\d (GET|POST|PUT|PATCH|DELETE|HEAD) ")
#: The environment variable whose value marks every process a ``Hub`` starts.
MARKER_VAR = "LABCRYPTO_HUB_TEST"


class HubError(RuntimeError):
    """The hub or a user's server did not do what we asked (the message says what it said)."""


class KernelError(RuntimeError):
    """Code run in a user's kernel raised; the message has the kernel's traceback."""


def poll(condition: Callable[[], Any], timeout: float, step: float = 0.2, what: str = "") -> Any:
    """Call ``condition`` until it returns something true; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(step)


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that nobody listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def find_proxy() -> Path | None:
    """configurable-http-proxy: the repo's local npm install, else the one on PATH."""
    for path in PROXY_PATHS:
        if path.exists():
            return path
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = Path(folder) / "configurable-http-proxy"
        if folder and path.exists():
            return path
    return None


def _read_proc(pid: int, name: str) -> bytes:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def marked_processes(marker: str) -> dict[int, str]:
    """PID → command line of every live process whose environment holds ``marker``."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if needle in _read_proc(pid, "environ").split(b"\0"):
            status = _read_proc(pid, "status")
            if b"\nState:\tZ" in status:  # a zombie holds no memory and no ports
                continue
            cmdline = _read_proc(pid, "cmdline").replace(b"\0", b" ").strip()
            found[pid] = cmdline.decode(errors="replace")
    return found


def process_env(pid: int) -> dict[str, str]:
    """The environment a process started with (empty if it is gone)."""
    pairs = (item.partition(b"=") for item in _read_proc(pid, "environ").split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, in bytes (0 if it is gone)."""
    for line in _read_proc(pid, "status").decode(errors="replace").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the hub --------------------------------------------------------------------------

_CONFIG = """\
# Written by tests/hub_lab.py for one test run.
c = get_config()  # noqa
# The lab's own settings for hubs, as INSTRUCTORS.md tells a course to load them.
load_subconfig({shipped!r})  # noqa

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {public_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.cleanup_servers = True
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}

# Everyone logs in with one class password (never in production).
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allow_all = True

# One server per user, each as that user's own Unix account, in its home (hub as root).
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = {singleuser!r}
c.Spawner.environment = {environment!r}
c.Spawner.http_timeout = {http_timeout}
c.Spawner.start_timeout = {http_timeout}

# The test's admin token: a service with just the scopes an admin script needs.
c.JupyterHub.services = [{{"name": "test-admin", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "access:servers", "tokens"],
        "services": ["test-admin"],
    }}
]
"""


@dataclass
class Hub:
    """A JupyterHub for one test, on loopback; ``start()``, use, ``stop()`` (always).

    Each user's server runs as the Unix account of that name, in its home
    (``LocalProcessSpawner``; the hub runs as root). ``singleuser``: the command
    that starts a user's server, from an environment every account can execute;
    ``environment``: added to the servers' environment.
    """

    work: Path
    proxy: Path
    kernels_path: Path | None = None
    http_timeout: int = 120
    singleuser: list[str] = field(default_factory=lambda: [str(VENV_BIN / "jupyterhub-singleuser")])
    environment: dict[str, str] = field(default_factory=dict)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    marker: str = field(default_factory=lambda: secrets.token_hex(8))

    def __post_init__(self) -> None:
        self.hub_port, self.api_port, self.public_port = free_ports(3)
        self.log_path = self.work / "jupyterhub.log"
        self.base = f"http://127.0.0.1:{self.public_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        """The ``jupyterhub_config.py`` this hub runs with."""
        environment = {MARKER_VAR: self.marker, "PYTHONUNBUFFERED": "1", **self.environment}
        environment[OWNER_VAR] = str(os.getpid())
        if self.kernels_path is not None:
            environment["JUPYTER_PATH"] = str(self.kernels_path)
        return _CONFIG.format(
            shipped=str(SHIPPED_CONFIG / "jupyterhub_config.py"),
            db_url=f"sqlite:///{self.work / 'jupyterhub.sqlite'}",
            cookie_secret=str(self.work / "cookie_secret"),
            proxy_pid=str(self.work / "proxy.pid"),
            hub_port=self.hub_port,
            api_port=self.api_port,
            public_port=self.public_port,
            proxy=str(self.proxy),
            password=self.password,
            singleuser=self.singleuser,
            environment=environment,
            http_timeout=self.http_timeout,
            token=self.token,
        )

    def start(self, timeout: float = 60.0) -> float:
        """Start the hub; return the seconds until its REST API answers through the proxy."""
        config = self.work / "jupyterhub_config.py"
        config.write_text(self.config_text(), encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env[MARKER_VAR] = self.marker
        env[OWNER_VAR] = str(os.getpid())  # a later run ends what a killed one left
        # the venv first (jupyterhub-singleuser, python), and node for the proxy
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "/usr/bin:/bin")])
        for name in [name for name in env if name.startswith("JUPYTERHUB_")]:
            del env[name]  # when the tests themselves run inside a hub's server
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "jupyterhub"), "-f", str(config)],
                cwd=self.work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # our Ctrl-C does not reach it; we stop it ourselves
            )
        poll(self._answers, timeout, step=0.1, what=f"the hub to answer on {self.base}")
        return time.perf_counter() - started

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise HubError(f"jupyterhub exited with {self.process.returncode}\n{self.log_tail()}")
        try:
            self.api("GET", "/")
        except (OSError, HubError):
            return False
        return True

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the hub's log (where a failed spawn explains itself), without
        the successful requests (the test's polling would fill it)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no hub log)"
        kept = [line for line in text.splitlines() if not _SUCCESSFUL_REQUEST.search(line)]
        return "--- hub log (tail) ---\n" + "\n".join(kept[-lines:])

    def api(self, method: str, path: str, body: Any = None, timeout: float = 15.0) -> Any:
        """Call the hub's REST API (``/hub/api`` + ``path``) with the admin token."""
        return _http(
            method, f"{self.base}/hub/api{path}", self.token, body, timeout, log=self.log_tail
        )

    def login(self, name: str, password: str) -> bool:
        """Log in through the hub's login form, as a student's browser does; True if let in.

        Redirects are not followed: a successful login answers 302 and sets the
        ``jupyterhub-hub-login`` cookie (following it would start the user's server);
        a wrong password answers 403.
        """
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
        url = f"{self.base}/hub/login"
        with opener.open(url, timeout=15) as response:
            page = response.read().decode(errors="replace")
        match = re.search(r'name="_xsrf"[^>]*value="([^"]+)"', page)
        if match is None:
            raise HubError(f"no _xsrf field on the hub's login page:\n{page[:500]}")
        form = {"username": name, "password": password, "_xsrf": html.unescape(match[1])}
        data = urllib.parse.urlencode(form).encode()
        try:
            with opener.open(urllib.request.Request(url, data=data), timeout=15):
                return False  # 200: the login page again
        except urllib.error.HTTPError as exc:
            if exc.code == 302:
                return any(cookie.name == "jupyterhub-hub-login" for cookie in jar)
            if exc.code == 403:
                return False
            raise HubError(f"login as {name} → {exc.code}\n{self.log_tail()}") from None

    # --- users and their servers ----------------------------------------------------------

    def create_users(self, names: list[str]) -> None:
        """Create the users (as an admin script does before the first class)."""
        created = self.api("POST", "/users", {"usernames": names})
        got = sorted(user["name"] for user in created)
        if got != sorted(names):
            raise HubError(f"asked for users {sorted(names)}, the hub created {got}")

    def server_state(self, name: str) -> dict[str, Any] | None:
        """The hub's model of a user's default server, or None when it has none."""
        return self.api("GET", f"/users/{name}").get("servers", {}).get("")

    def spawn(self, names: list[str], timeout: float = 90.0) -> float:
        """Start every user's server at once; return the seconds until all are ready."""
        started = time.perf_counter()
        # all at once, as a class does at the start of a lecture: each POST waits up to the
        # hub's slow_spawn_timeout (10 s) for its server, so sequential POSTs would queue;
        # with dozens at once on a busy hub an answer can take longer still
        each(names, lambda name: self.api("POST", f"/users/{name}/server", timeout=timeout))

        def all_ready() -> bool:
            for name in names:
                state = self.server_state(name)
                if state is None:  # the spawn failed: the hub's log says why
                    raise HubError(f"{name}'s server is gone while starting\n{self.log_tail()}")
                if not state.get("ready"):
                    return False
            return True

        poll(all_ready, timeout, step=1.0, what=f"the servers of {names} to be ready")
        return time.perf_counter() - started

    def stop_servers(self, names: list[str], timeout: float = 30.0) -> None:
        """Stop every user's server through the API and wait until the hub has none."""
        each(names, lambda name: self.api("DELETE", f"/users/{name}/server"))
        poll(
            lambda: all(self.server_state(name) is None for name in names),
            timeout,
            step=0.25,
            what=f"the servers of {names} to stop",
        )

    def user_server(self, name: str) -> UserServer:
        """The Jupyter server of user ``name``, through the proxy."""
        return UserServer(self, name)

    def server_pids(self) -> dict[str, int]:
        """User name → PID of their single-user server (found by the marker)."""
        pids = {}
        for pid, cmdline in marked_processes(self.marker).items():
            if "jupyterhub-singleuser" in cmdline:
                user = process_env(pid).get("JUPYTERHUB_USER")
                if user:
                    pids[user] = pid
        return pids

    # --- the end ----------------------------------------------------------------------------

    def processes(self) -> dict[int, str]:
        """Every live process this hub started (itself included)."""
        return marked_processes(self.marker)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the hub (it stops the proxy and any server left) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill_leftovers(self) -> dict[int, str]:
        """SIGKILL every process still carrying the marker; return what was found."""
        left = self.processes()
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.wait(timeout=5)
        return left


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand a redirect back as an HTTPError instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def each(names: list[str], action: Callable[[str], Any]) -> list[Any]:
    """Run ``action(name)`` for every name at once (one thread each); re-raise the first error."""
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        return list(pool.map(action, names))


def _http(
    method: str,
    url: str,
    token: str,
    body: Any,
    timeout: float,
    log: Callable[[], str] | None = None,
) -> Any:
    """One HTTP request with a token; the decoded JSON answer (None if empty)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"token {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        where = f"\n{log()}" if log is not None and exc.code >= 500 else ""
        raise HubError(f"{method} {url} → {exc.code} {exc.reason}: {detail}{where}") from None
    return json.loads(text) if text else None


# --- a user's server and its kernels -------------------------------------------------------


class UserServer:
    """One user's Jupyter server, reached through the hub's proxy with the admin token."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.base = f"{hub.base}/user/{name}"

    def api(self, method: str, path: str, body: Any = None, timeout: float = 15.0) -> Any:
        """Call the Jupyter server's REST API (``/user/NAME/api`` + ``path``)."""
        return _http(method, f"{self.base}/api{path}", self.hub.token, body, timeout)

    def put_file(self, path: str, content: str | dict[str, Any], kind: str = "file") -> None:
        """Upload a text file (``kind="file"``) or a notebook (a dict) into the user's home."""
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):  # every folder on the way, as mkdir -p
            with contextlib.suppress(HubError):  # already there
                self.api("PUT", f"/contents/{'/'.join(parts[:depth])}", {"type": "directory"})
        model: dict[str, Any] = {"type": kind, "content": content}
        if kind == "file":
            model["format"] = "text"
        self.api("PUT", f"/contents/{urllib.parse.quote(path)}", model)

    def read_text(self, path: str) -> str:
        """A text file from the user's home, through the contents API."""
        model = self.api("GET", f"/contents/{urllib.parse.quote(path)}?type=file&format=text")
        return model["content"]

    def kernel(self, notebook: str | None = None, timeout: float = 60.0) -> Kernel:
        """Start a kernel (for ``notebook``, which sets its working folder) and connect to it."""
        if notebook is None:
            kernel_id = self.api("POST", "/kernels", {"name": "python3"})["id"]
        else:
            session = self.api(
                "POST",
                "/sessions",
                {"path": notebook, "type": "notebook", "kernel": {"name": "python3"}},
                timeout=timeout,
            )
            kernel_id = session["kernel"]["id"]
        ws_url = self.base.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels"
        return Kernel(self, kernel_id, ws_url, timeout)

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server (as closing the tabs and 'Shut Down' does)."""
        for session in self.api("GET", "/sessions") or []:
            with contextlib.suppress(HubError, OSError):
                self.api("DELETE", f"/sessions/{session['id']}")
        for kernel in self.api("GET", "/kernels") or []:
            with contextlib.suppress(HubError, OSError):
                self.api("DELETE", f"/kernels/{kernel['id']}")


@dataclass
class CellResult:
    """What one execution produced: printed text, rich outputs, and the error if any."""

    stdout: str = ""
    stderr: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def describe_error(self) -> str:
        """The error as a student would read it (name, value, traceback without colours)."""
        if self.error is None:
            return ""
        trace = "\n".join(self.error.get("traceback", []))
        trace = re.sub(r"\x1b\[[0-9;]*m", "", trace)
        return f"{self.error.get('ename')}: {self.error.get('evalue')}\n{trace}"


class Kernel:
    """A kernel of a user's server over its websocket (Jupyter messaging, JSON frames)."""

    def __init__(self, server: UserServer, kernel_id: str, ws_url: str, timeout: float) -> None:
        import websocket  # websocket-client, a dependency of jupyter_server

        self.server = server
        self.id = kernel_id
        self.session = uuid.uuid4().hex
        self._lock = threading.Lock()
        self.ws = websocket.create_connection(
            ws_url, header=[f"Authorization: token {server.hub.token}"], timeout=timeout
        )
        try:  # the kernel answers kernel_info once it is up: our "ready" signal
            self._request("kernel_info_request", {}, timeout)
        except BaseException:
            self.close()
            raise

    def _message(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": kind,
            "session": self.session,
            "username": self.server.name,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "version": "5.3",
        }
        return {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }

    def _receive(self, deadline: float) -> dict[str, Any]:
        import websocket

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.server.name}'s kernel did not answer in time")
        self.ws.settimeout(remaining)
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"{self.server.name}'s kernel did not answer in time") from None
        if opcode == websocket.ABNF.OPCODE_BINARY:  # a message with buffers (widgets, images)
            from jupyter_server.services.kernels.connection.base import (
                deserialize_binary_message,
            )

            return deserialize_binary_message(data)
        return json.loads(data)

    def _request(
        self, kind: str, content: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], CellResult]:
        """Send a shell request; gather its iopub outputs until the kernel is idle again."""
        with self._lock:
            message = self._message(kind, content)
            msg_id = message["header"]["msg_id"]
            self.ws.send(json.dumps(message))
            deadline = time.monotonic() + timeout
            result = CellResult()
            reply: dict[str, Any] | None = None
            idle = False
            while reply is None or not idle:
                incoming = self._receive(deadline)
                if incoming.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind_in = incoming["header"]["msg_type"]
                content_in = incoming["content"]
                if incoming.get("channel") == "shell":
                    reply = content_in
                elif kind_in == "status":
                    idle = content_in.get("execution_state") == "idle"
                elif kind_in == "stream":
                    if content_in.get("name") == "stderr":
                        result.stderr += content_in.get("text", "")
                    else:
                        result.stdout += content_in.get("text", "")
                elif kind_in == "error":
                    result.error = content_in
                elif kind_in in {"execute_result", "display_data"}:
                    result.outputs.append(content_in)
            return reply, result

    def execute(self, code: str, timeout: float = 60.0) -> CellResult:
        """Run ``code`` as a cell; what it printed and showed, and its error if any."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        reply, result = self._request("execute_request", content, timeout)
        if reply.get("status") == "error" and result.error is None:
            result.error = reply
        return result

    def run(self, code: str, timeout: float = 60.0) -> str:
        """Run ``code``; return what it printed, or raise ``KernelError`` with the traceback."""
        result = self.execute(code, timeout)
        if result.error is not None:
            raise KernelError(
                f"in {self.server.name}'s kernel:\n{code}\n→ {result.describe_error()}"
            )
        return result.stdout

    def run_json(self, code: str, timeout: float = 60.0) -> Any:
        """Run ``code`` whose last printed line is JSON; return it decoded."""
        lines = self.run(code, timeout).strip().splitlines()
        if not lines:
            raise KernelError(f"{self.server.name}'s kernel printed nothing for:\n{code}")
        return json.loads(lines[-1])

    def close(self) -> None:
        """Close the websocket and shut the kernel down."""
        with contextlib.suppress(Exception):
            self.ws.close()
        with contextlib.suppress(HubError, OSError):
            self.server.api("DELETE", f"/kernels/{self.id}")
