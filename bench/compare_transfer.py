"""The file service beside its peers: one file up and down through five systems.

The same file (256 MiB by default), uploaded and then downloaded on
loopback, each server in its own process (client and server each get a
core, as on two machines), through:

a. **labcrypto**: ``FileServer`` / ``FileClient`` — a fresh ephemeral key
   exchange for the request, AES-256-GCM records of 512 KiB and a sealed
   end record, temporary file + ``fsync`` + rename on arrival.
b. **the same transfer without crypto**: the file service has no
   "encryption off" switch, on purpose (a security lab's server must not
   have one). So (b) is bench/ftp_throughput.py's plain copy: the same
   chunk size, the file read and written the same way and ``fsync``-ed at
   the end, over a plain socket — no handshake, no encryption, no end record.
   The gap between (a) and (b) is the whole price of the security.
c. **FTP**: pyftpdlib's server, ``ftplib`` client (binary mode, passive).
d. **FTPS**: pyftpdlib with TLS on control and data (``PROT P``), ``ftplib.FTP_TLS``.
e. **SFTP**: OpenSSH's ``sftp`` against a private ``sshd`` on a loopback
   port (host and user keys made in a temporary folder; needs root for
   ``sshd``), cipher ``aes256-gcm@openssh.com`` (the same AEAD as ours).
   Each ``sftp`` run is a new process and a new SSH connection; the time of
   an empty session (connect, key exchange, log in, quit) is subtracted.

Each transfer runs ``--runs`` times (3), round-robin over the systems (so
a noisy moment on a shared machine hits all of them alike); the table
shows the median MB/s (10^6 bytes per second) and each system's ratio to
labcrypto. Below it, issue 19's goals: labcrypto's upload and download
each against FTPS (>= 1.1x), sftp (>= 1.5x) and its own path without
crypto (>= 60 %), from the same medians, each marked as held or not. The
load average before and after is printed too: on a shared machine the
absolute MB/s mean little, the ratios inside one run are what count.
Missing tools are skipped with a note:

    .venv/bin/pip install pyftpdlib pyopenssl          # (c) and (d), bench only
    apt-get install -y openssh-server openssh-client    # (e)
    .venv/bin/python bench/compare_transfer.py [--size-mib 256] [--runs 3]

Fairness notes, printed with the table. Durability: every system's
received file is ``fsync``-ed inside the timed span, in both directions.
labcrypto and the plain copy do it themselves (the server before it
confirms an upload, the client before it keeps a download). pyftpdlib and
sshd do not ``fsync`` what they receive, so the bench does it for them:
right after the client returns from an upload it ``fsync``-s the file the
server wrote (the same disk work, done from outside), and after each
FTP/FTPS/SFTP download it ``fsync``-s the local copy. The table prints how
long those added ``fsync`` calls took on average, so their weight is
visible. Handshakes: labcrypto's figures include its fresh key exchange
for the request, FTPS's its data connection's TLS handshake; the FTP/FTPS
login and sftp's session setup are outside the span.
"""

from __future__ import annotations

import argparse
import ftplib
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ftp_throughput  # bench/ftp_throughput.py: the plain copy, the server child, helpers

from labcrypto import groups, keys
from labcrypto.allowlist import Allowlist
from labcrypto.ftp import CHUNK_SIZE, FileClient

MIB = 1 << 20
HOST = "127.0.0.1"
SSHD = "/usr/sbin/sshd"
FTP_USER, FTP_PASSWORD = "bench", "bench-password"



class Run(NamedTuple):
    """One run's seconds: upload, download, and the ``fsync`` the bench added to them."""

    up: float
    down: float
    added_fsync: float = 0.0


# --- helpers ------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout} s")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- (a) labcrypto and (b) the plain copy -----------------------------------------------------


def run_labcrypto(workdir: Path, source: Path, size: int, runs: int) -> list[Run]:
    client_key, server_key = keys.generate(groups.FFDHE2048), keys.generate(groups.FFDHE2048)
    shutil.rmtree(workdir / "keys", ignore_errors=True)  # a fresh allowlist for each round
    keys.save(server_key, "server", workdir / "keys")
    Allowlist(workdir / "keys" / "allowlist.csv").add("bench", client_key.public_key)
    child, port = ftp_throughput.start_child(["--serve", str(workdir)])
    results = []
    try:
        client = FileClient(HOST, port, client_key, timeout=120)
        client.ls()
        for _ in range(runs):
            up = client.put(source, "big.bin", overwrite=True)
            down = client.get("big.bin", workdir / "lab-back.bin", overwrite=True)
            assert up.sha256 == down.sha256
            results.append(Run(up.seconds, down.seconds))
    finally:
        ftp_throughput.stop_child(child)
        (workdir / "lab-back.bin").unlink(missing_ok=True)
        shutil.rmtree(workdir / "root", ignore_errors=True)
    return results


def run_plain(workdir: Path, source: Path, size: int, runs: int) -> list[Run]:
    assert source == workdir / "source.bin"  # plain_copy reads it from there
    results = []
    for _ in range(runs):
        results.append(Run(*ftp_throughput.plain_copy(workdir, size)))
        for name in ("plain-up.bin", "plain-down.bin"):
            (workdir / name).unlink(missing_ok=True)
    return results


# --- (c) FTP and (d) FTPS with pyftpdlib --------------------------------------------------------


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate + key for localhost, as one PEM file."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = folder / "ftps.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


def serve_ftp(home: str, port: int, certfile: str) -> None:
    """Child process: pyftpdlib on ``port`` (FTPS when ``certfile`` is not "-")."""
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    logging.basicConfig(level=logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, home, perm="elradfmw")
    handler: type[FTPHandler] = FTPHandler
    if certfile != "-":
        handler = TLS_FTPHandler
        handler.certfile = certfile
        handler.tls_control_required = True
        handler.tls_data_required = True
    handler.authorizer = authorizer
    handler.banner = "bench"
    server = FTPServer((HOST, port), handler)
    server.serve_forever(timeout=1.0, blocking=True)


def run_ftp(workdir: Path, source: Path, size: int, runs: int, tls: bool) -> list[Run]:
    home = workdir / ("ftps-home" if tls else "ftp-home")
    home.mkdir(exist_ok=True)
    certfile = make_certificate(workdir) if tls else None
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-ftp", str(home), str(port), str(certfile or "-")]
    )
    back = workdir / "ftp-back.bin"
    results = []
    try:
        wait_for_port(port)
        for _ in range(runs):
            if tls:
                context = ssl.create_default_context(cafile=str(certfile))
                context.check_hostname = False  # the certificate names localhost, we use 127.0.0.1
                ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=120)
            else:
                ftp = ftplib.FTP(timeout=120)
            ftp.connect(HOST, port)
            ftp.login(FTP_USER, FTP_PASSWORD)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            started = time.perf_counter()
            with open(source, "rb") as handle:
                ftp.storbinary("STOR big.bin", handle, blocksize=CHUNK_SIZE)
            synced = time.perf_counter()
            fsync_file(home / "big.bin")  # pyftpdlib does not; labcrypto's server does
            up = time.perf_counter() - started
            added = time.perf_counter() - synced
            started = time.perf_counter()
            with open(back, "wb") as handle:
                ftp.retrbinary("RETR big.bin", handle.write, blocksize=CHUNK_SIZE)
                handle.flush()
                synced = time.perf_counter()
                os.fsync(handle.fileno())
                added += time.perf_counter() - synced
            down = time.perf_counter() - started
            ftp.quit()
            assert back.stat().st_size == size
            results.append(Run(up, down, added))
        assert sha256_of(back) == sha256_of(source)
    finally:
        child.terminate()
        child.wait(10)
        back.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)
    return results


# --- (e) OpenSSH sftp -------------------------------------------------------------------------


def sftp_missing() -> str | None:
    """Why (e) cannot run here, or None."""
    if not os.path.exists(SSHD) or shutil.which("sftp") is None:
        return "OpenSSH not installed (apt-get install -y openssh-server openssh-client)"
    if os.geteuid() != 0:
        return "sshd needs root to run on a private port here; run the bench as root"
    return None


def run_sftp(workdir: Path, source: Path, size: int, runs: int, cipher: str) -> list[Run]:
    ssh = workdir / "ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    for name in ("host", "user"):
        if (ssh / name).exists():
            continue  # made in an earlier round
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / name)], check=True
        )
    shutil.copy(ssh / "user.pub", ssh / "authorized_keys")
    port = free_port()
    config = ssh / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {HOST}\nHostKey {ssh / 'host'}\n"
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nPidFile {ssh / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin yes\nStrictModes no\nSubsystem sftp internal-sftp\n"
        f"Ciphers {cipher}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    daemon = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    back = workdir / "sftp-back.bin"
    remote = workdir / "sftp-remote.bin"
    base = [
        "sftp", "-q", "-P", str(port), "-i", str(ssh / "user"), "-c", cipher,
        "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}",
        "-o", "BatchMode=yes", "-b", "-", f"{pwd.getpwuid(os.geteuid()).pw_name}@{HOST}",
    ]  # fmt: skip
    results = []
    try:
        wait_for_port(port)
        setups = []  # an empty session: start sftp, connect, key exchange, log in, quit
        for _ in range(4):
            started = time.perf_counter()
            subprocess.run(base, input=b"pwd\n", check=True, capture_output=True, timeout=30)
            setups.append(time.perf_counter() - started)
        setup = statistics.median(setups[1:])
        for _ in range(runs):
            started = time.perf_counter()
            put = f"put {source} {remote}\n".encode()
            subprocess.run(base, input=put, check=True, timeout=600, stdout=subprocess.DEVNULL)
            synced = time.perf_counter()
            fsync_file(remote)  # sshd does not; labcrypto's server does
            added = time.perf_counter() - synced
            up = time.perf_counter() - started - setup
            started = time.perf_counter()
            get = f"get {remote} {back}\n".encode()
            subprocess.run(base, input=get, check=True, timeout=600, stdout=subprocess.DEVNULL)
            synced = time.perf_counter()
            fsync_file(back)
            added += time.perf_counter() - synced
            down = time.perf_counter() - started - setup
            results.append(Run(up, down, added))
        assert back.stat().st_size == size and sha256_of(back) == sha256_of(source)
    finally:
        daemon.terminate()
        daemon.wait(10)
        back.unlink(missing_ok=True)
        remote.unlink(missing_ok=True)
    return results


# --- the table ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to put the files (default: /tmp)")
    parser.add_argument("--sftp-cipher", default="aes256-gcm@openssh.com")
    args = parser.parse_args()
    size = args.size_mib * MIB
    have_ftpd = importlib.util.find_spec("pyftpdlib") is not None
    have_openssl = importlib.util.find_spec("OpenSSL") is not None

    systems: list[tuple[str, str, Callable[..., list[Run]] | None]] = [
        ("labcrypto (encrypted)", "", run_labcrypto),
        ("same path, no crypto", "", run_plain),
        ("FTP (pyftpdlib)", "" if have_ftpd else "pip install pyftpdlib", None),
        (
            "FTPS (pyftpdlib+TLS)",
            "" if have_ftpd and have_openssl else "pip install pyftpdlib pyopenssl",
            None,
        ),
        (f"SFTP (OpenSSH, {args.sftp_cipher.split('@')[0]})", sftp_missing() or "", None),
    ]
    medians: dict[str, tuple[float, float] | str] = {}
    fsyncs: dict[str, float] = {}  # label: seconds of fsync the bench added per run (mean)
    runs: dict[str, list[Run]] = {label: [] for label, missing, _ in systems if not missing}
    mb = size / 1e6
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        source = workdir / "source.bin"
        ftp_throughput.make_file(source, size)
        ftp_throughput.warm_page_cache(workdir, 2 * size)
        # Round-robin (one run of each system per round), so a noisy moment on a
        # shared machine hits every system alike instead of one of them.
        for round_number in range(args.runs):
            for index, (label, missing, _) in enumerate(systems):
                if missing:
                    continue
                if index == 0:
                    run = run_labcrypto(workdir, source, size, 1)
                elif index == 1:
                    run = run_plain(workdir, source, size, 1)
                elif index in (2, 3):
                    run = run_ftp(workdir, source, size, 1, tls=index == 3)
                else:
                    run = run_sftp(workdir, source, size, 1, args.sftp_cipher)
                runs[label] += run
                up, down, _ = run[0]
                print(
                    f"  round {round_number + 1}: {label}: {mb / up:.0f} up, {mb / down:.0f} down",
                    file=sys.stderr,
                    flush=True,
                )
    for label, missing, _ in systems:
        if missing:
            medians[label] = f"skipped: {missing}"
        else:
            medians[label] = (
                mb / statistics.median(run.up for run in runs[label]),
                mb / statistics.median(run.down for run in runs[label]),
            )
            added = statistics.fmean(run.added_fsync for run in runs[label])
            if added:
                fsyncs[label] = added
    report(args, medians, fsyncs)
    report_goals(medians, load_before, os.getloadavg())
    return 0


#: Issue 19's goals: (label of the other system's row, its name here, the least labcrypto/it).
GOALS = [
    ("FTPS (pyftpdlib+TLS)", "FTPS", 1.1),
    ("SFTP (OpenSSH, ", "sftp", 1.5),
    ("same path, no crypto", "no crypto", 0.6),
]


def report_goals(
    medians: dict[str, tuple[float, float] | str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    """labcrypto's upload and download against each goal: the ratio, and whether it holds."""
    ours = medians[next(iter(medians))]
    assert isinstance(ours, tuple)
    print("goals (labcrypto / other, from the medians above):")
    for prefix, name, least in GOALS:
        other = next((v for k, v in medians.items() if k.startswith(prefix)), None)
        if not isinstance(other, tuple):
            print(f"  labcrypto / {name:<10} >= {least:.2f}   (not measured: {other or 'no row'})")
            continue
        cells = []
        for direction, mine, theirs in zip(("up", "down"), ours, other, strict=True):
            ratio = mine / theirs
            cells.append(f"{direction} {ratio:5.2f} {'holds' if ratio >= least else 'MISSED'}")
        print(f"  labcrypto / {name:<10} >= {least:.2f}   " + "   ".join(cells))
    print(
        "load average (1, 5, 15 min): before "
        + " ".join(f"{x:.1f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.1f}" for x in load_after)
        + f" ({os.cpu_count()} cores)"
    )


def report(
    args: argparse.Namespace,
    medians: dict[str, tuple[float, float] | str],
    fsyncs: dict[str, float],
) -> None:
    ours = medians[next(iter(medians))]
    assert isinstance(ours, tuple)
    print(
        f"{args.size_mib} MiB up and down on loopback, servers in their own process, "
        f"median of {args.runs} runs, MB/s = 10^6 bytes/s; ratio = system / labcrypto"
    )
    print(f"{'system':<34}{'up MB/s':>9}{'down MB/s':>11}{'up ratio':>10}{'down ratio':>12}")
    for label, value in medians.items():
        if isinstance(value, str):
            print(f"{label:<34}  ({value})")
            continue
        up, down = value
        print(f"{label:<34}{up:9.0f}{down:11.0f}{up / ours[0]:10.2f}{down / ours[1]:12.2f}")
    print(
        "fsync: every received file is fsync'ed inside the timed span. labcrypto and the "
        "plain copy do it themselves (server: uploads, client: downloads); pyftpdlib and sshd "
        "do not, so the bench fsyncs the file they wrote right after the client returns, "
        "and each FTP/FTPS/SFTP download's local copy."
    )
    for label, seconds in fsyncs.items():
        print(f"  fsync added by the bench to {label}: {seconds * 1000:.0f} ms per run (up + down)")
    print(
        "Handshakes: labcrypto's figures include its fresh key exchange for the request, "
        "FTPS's its data connection's TLS handshake; FTP/FTPS login and sftp's session "
        "setup (process start, connect, key exchange, login: measured empty) are not counted."
    )


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--serve-ftp":
        serve_ftp(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(main())
