"""labcrypto's settings for a JupyterHub that runs the lab for a class.

Load it at the end of your own ``jupyterhub_config.py`` (after your
authenticator and spawner):

    load_subconfig("/opt/labcrypto-src/hub/jupyterhub_config.py")

and install ``jupyter_server_config.py`` and ``nbgrader_config.py`` from
this folder where every student's server reads them (INSTRUCTORS.md, §1).
tests/test_hub.py runs its hub with this file.
"""

import random
import socket
from pathlib import Path
from typing import Any

c = get_config()  # noqa: F821

# A whole class logging in at once takes longer than the default 30 s to start.
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120

# Servers that always start. JupyterHub gives each server a port by binding port 0
# and closing the socket, the same race that kills kernels
# (jupyter_server_config.py): the port comes from the range the system also hands
# out to outgoing connections, and with a class on one machine one of those can
# take it first. The server then fails to listen, and the hub waits its whole
# http_timeout for a server that is gone. A port below that range is never given
# to a connection: pick a free one there. (A spawner that sets its own port,
# KubeSpawner for one, ignores this.)


def _ephemeral_first() -> int:
    """The first port the system hands out to outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


#: Where student servers listen: below the ephemeral ports and below the range the
#: notebooks' port pools use (labcrypto.ports: 20000-32000).
SERVER_PORTS = range(10000, min(20000, _ephemeral_first()))


def _pick_server_port(spawner: Any) -> None:
    """``pre_spawn_hook``: a free port from SERVER_PORTS for this server."""
    host = spawner.ip or "127.0.0.1"
    for _ in range(100):
        port = random.choice(SERVER_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        spawner.port = port
        return


c.Spawner.pre_spawn_hook = _pick_server_port
