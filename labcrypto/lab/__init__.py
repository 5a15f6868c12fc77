"""The teaching layer: everything the notebooks use and the protocol does not.

One checks module per notebook holds that notebook's exercise checks — the
visible check a student runs, and beside it the hidden test nbgrader puts
back when it grades:

* ``checks_01_keys``      — public value, shared secret, your own numbers, the key file
* ``checks_02_exchange``  — framing, the course's exchange over TCP
* ``checks_02b_chat``     — breaking the toy cipher, the message loop
* ``checks_03_allowlist`` — the allowlist check, a new student joins
* ``checks_04_two_ports`` — the client's half of the handoff, a port pool
* ``checks_05_ftp``       — the path check, a recursive ``du``

and what they share:

* ``feedback``  — ``CheckFailed``, the words every check uses, the time bounds
* ``harness``   — bounded threads, TCP peers on 127.0.0.1, bytes sent one at a time
* ``variants``  — each student's own numbers, made from the student id
* ``widgets``   — panels for the notebooks (imports ipywidgets)
* ``plots``     — figures for the notebooks (imports matplotlib)

Import the module you need by name (``from labcrypto.lab import
checks_01_keys``): this package imports nothing on its own, so
``import labcrypto`` stays free of sockets, widgets and matplotlib.
ARCHITECTURE.md shows where this layer sits.
"""
