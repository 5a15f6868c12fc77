"""labcrypto: the reference implementation behind the key-exchange lab.

The protocol core, usable without any socket (notebooks 01 and 02 step
through it by hand):

* ``labcrypto.groups``    — Diffie-Hellman groups (p, g) and checks on public values
* ``labcrypto.keys``      — key pairs kept in text files (task 1)
* ``labcrypto.ciphers``   — the toy Caesar cipher and AES-256-GCM with HKDF
* ``labcrypto.handshake`` — the handshake as two state machines, bytes in, bytes out
* ``labcrypto.channel``   — ``SecureChannel``: frames + encryption over a stream (task 2)
* ``labcrypto.allowlist`` — the CSV allowlist of client keys (task 3)
* ``labcrypto.ports``     — the port pool (task 4)

On top of it: ``server`` (threaded servers that behave in a kernel),
``chat``, ``ftp`` (task 5), ``wiretap``; ``labcrypto.lab``, what the
notebooks use (their checks, ``widgets``, ``plots``); and the ``labcrypto``
command line. ARCHITECTURE.md shows the layers. Import those modules by
name when you need them: ``import labcrypto`` itself stays light (no
socket servers, widgets or matplotlib).
"""

from .errors import LabCryptoError

__all__ = ["LabCryptoError", "__version__"]
__version__ = "0.1.0"
