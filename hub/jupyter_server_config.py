"""labcrypto's settings for each student's Jupyter server on a hub.

Put this file where every student's server reads its configuration: in the
image's ``{sys.prefix}/etc/jupyter/``, in ``/etc/jupyter/``, or in a folder
named by ``JUPYTER_CONFIG_PATH`` in the hub's ``c.Spawner.environment``
(what tests/test_hub.py does). See INSTRUCTORS.md.

Kernels that always start. By default a new kernel gets five TCP ports on
127.0.0.1, chosen by binding port 0 and closing the socket; the kernel binds
them a moment later. With a whole class's servers on one loopback, another
process can take such a port in between (``ZMQError: Address already in
use``): the kernel dies, and the server's automatic restart reuses the same
ports. ``bench/kernel_starts.py`` measures it. On the ``ipc`` transport the
server and the kernel talk through Unix sockets in the student's private
runtime folder (``~/.local/share/jupyter/runtime``, mode 0700): no ports, no
race, and no classmate can connect to another student's kernel.

A Unix socket's path holds at most 107 bytes; the kernel's sockets are named
``RUNTIME/kernel-<36-character id>-ipc-N``. Where the runtime folder's path
is too long for that (a long home folder), the server keeps TCP and at least
takes fresh ports on every restart (``cache_ports = False``); set
``JUPYTER_RUNTIME_DIR`` to a shorter private folder to get ipc back.
"""

from jupyter_core.paths import jupyter_runtime_dir

c = get_config()  # noqa: F821

#: The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL).
SOCKET_PATH_MAX = 107
#: What the kernel's socket names add to the runtime folder: /kernel-<uuid>-ipc-N.
SOCKET_NAME_LENGTH = len("/kernel-") + 36 + len("-ipc-") + 1

if len(jupyter_runtime_dir().encode()) + SOCKET_NAME_LENGTH <= SOCKET_PATH_MAX:
    c.KernelManager.transport = "ipc"
else:
    c.KernelManager.cache_ports = False

# The lab keeps each student's keys in ~/.labcrypto/keys (labcrypto.keys.default_dir),
# outside every assignment folder. Let the student's own server open files there
# (JupyterLab's "Open from Path…", the instructor's admin script collecting a .pub):
# they stay as private as the rest of the home, reachable only with the student's
# own token or an admin's.
c.ContentsManager.allow_hidden = True
