"""The package as a whole: a light import, and ruff-clean code."""

from __future__ import annotations

import subprocess
import sys


def test_import_labcrypto_is_light():
    code = (
        "import sys, labcrypto; "
        "heavy = ['socketserver', 'labcrypto.server', 'labcrypto.chat', 'ipywidgets', "
        "'matplotlib', 'labcrypto.widgets', 'labcrypto.plots']; "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_protocol_core_imports_no_sockets_threads_or_widgets():
    code = (
        "import sys; import labcrypto.groups, labcrypto.keys, labcrypto.ciphers, "
        "labcrypto.handshake; "
        "print([m for m in ('socket', 'threading', 'ipywidgets', 'matplotlib') "
        "if m in sys.modules and m not in before])"
    )
    prelude = "import sys; before = set(sys.modules); "
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
