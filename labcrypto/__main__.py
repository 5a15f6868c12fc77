"""``python -m labcrypto ...``: the same command line as the ``labcrypto`` script."""

from .cli import main

raise SystemExit(main())
