"""The notebooks' helpers, headless: figures (Agg), widgets, and the exercise checks.

The checks must pass the reference answers and fail, with ``CheckFailed``
and a message naming the mistake, on the mistakes students make.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from labcrypto import groups, keys, wiretap
from labcrypto.errors import LabCryptoError
from labcrypto.lab import (
    checks_01_keys,
    checks_02_exchange,
    checks_02b_chat,
    checks_03_allowlist,
    checks_04_two_ports,
    checks_05_ftp,
    plots,
    variants,
    widgets,
)
from labcrypto.lab.feedback import Check, CheckFailed


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(fig) -> None:
    titled = [ax for ax in fig.axes if ax.get_title() or fig._suptitle is not None]
    assert titled, "every figure has a title"


def test_figures_draw_headless() -> None:
    figs = [
        plots.powers(groups.TOY, big=groups.small_safe_prime_group(16)),
        plots.brute_force_times([10, 12, 14, 16], [0.001, 0.004, 0.016, 0.064]),
        plots.byte_histograms({"a": b"hello world", "b": os.urandom(500)}),
        plots.caesar_scores([0.1] * 255 + [0.9]),
        plots.sequence_diagram([("client", "hello"), ("server", "hi")]),
        plots.layers(),
    ]
    for fig in figs:
        _labelled(fig)
        fig.canvas.draw()
    axes = figs[1].axes[0]
    assert axes.get_xlabel() and axes.get_ylabel()


def test_extrapolation_follows_a_doubling_trend() -> None:
    bits = [10, 12, 14, 16]
    seconds = [2.0 ** (b - 20) for b in bits]
    log10 = plots.extrapolate_log10_seconds(bits, seconds, 40)
    assert log10 == pytest.approx(20 * 0.30103, rel=1e-6)
    assert "years" in plots.format_log10_seconds(600)
    assert plots.format_log10_seconds(-3).endswith("ms")


def test_transcript_steps_name_each_message(secure_keys) -> None:
    from labcrypto.handshake import ClientHandshake, ServerHandshake

    c, s = ClientHandshake(secure_keys("a")), ServerHandshake(secure_keys("b"))
    hello, finished = s.receive(c.start())
    s.receive((c.receive(hello) + c.receive(finished))[0])
    steps = plots.transcript_steps(c.transcript)
    assert [label.split()[0] for _, label in steps] == [
        "client_hello",
        "server_hello",
        "server_finished",
        "client_finished",
    ]


def test_chat_panel_sends_like_the_button_and_shows_errors() -> None:
    sent = []
    panel = widgets.ChatPanel(sent.append, echo=True)
    assert panel.submit("  hi  ") and sent == ["hi"]
    assert panel.lines == ["you: hi"]

    def broken(_text: str) -> None:
        raise ConnectionError("server gone")

    failing = widgets.ChatPanel(broken)
    assert not failing.submit("hello")
    assert "server gone" in failing.lines[-1] and "server gone" in failing.log.value


def test_wire_view_and_tables_escape_html() -> None:
    view = widgets.WireView()
    view.add("sent", struct.pack("!I", 5) + b"<b>x</b>")
    assert "&lt;b&gt;" in view.log.value and len(view.frames) == 1
    assert "&lt;" in widgets.table([{"a": "<script>"}]).data


def test_exchange_table_shows_the_same_k() -> None:
    html = widgets.exchange_table(6, 15).data
    assert "= <b>8</b>" in html and "= <b>19</b>" in html and "= <b>2</b>" in html
    box = widgets.key_exchange_sliders(a=6, b=15)
    slider_a = box.children[0].children[0]
    slider_a.value = 7
    assert f"= <b>{pow(5, 7, 23)}</b>" in box.children[1].value


def test_order_panel_shows_which_values_occur() -> None:
    """01's sliders show what the exchange table cannot: g's order decides how many public
    values exist (all 22 for the course's g = 5, 11 for g = 2, two for g = p-1)."""
    p = 23
    for g in range(2, p):
        occurring = {pow(g, x, p) for x in range(1, p)}
        html = widgets.order_view(g, 6, p).data
        assert f"has order {len(occurring)}" in html, (g, html[-300:])
        assert f"A = {pow(g, 6, p)}." in html
    assert "every number from 1 to 22" in widgets.order_view(5, 6).data
    assert "Eve has 11 exponents to try, not 22" in widgets.order_view(2, 6).data
    assert "can only be 1 / 22" in widgets.order_view(22, 6).data
    # The powers after the first cycle are greyed: 11 of them for g = 2, none for g = 5.
    assert widgets.order_view(2, 6).data.count("color:#999") == 2 * 11  # x and g^x cells
    assert "color:#999" not in widgets.order_view(5, 6).data
    box = widgets.order_sliders()
    slider_g, slider_a = box.children[0].children
    assert "has order 22" in box.children[1].value
    slider_g.value = 2
    assert "has order 11" in box.children[1].value
    slider_a.value = 3
    assert f"A = {pow(2, 3, 23)}." in box.children[1].value


def _fails(check, func, *words: str) -> str:
    with pytest.raises(CheckFailed) as info:
        check(func)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def test_public_value_check() -> None:
    checks_01_keys.check_public_value(lambda grp, a: pow(grp.g, a, grp.p))
    _fails(checks_01_keys.check_public_value, lambda grp, a: pow(a, grp.g, grp.p), "swapped")
    _fails(checks_01_keys.check_public_value, lambda grp, a: grp.g**a % grp.p, "pow(g, a, p)")


def test_shared_secret_check() -> None:
    def good(grp, a, peer):
        groups.validate_public(grp, peer)
        return pow(peer, a, grp.p)

    checks_01_keys.check_shared_secret(good)
    _fails(
        checks_01_keys.check_shared_secret, lambda grp, a, peer: pow(peer, a, grp.p), "mistake 1"
    )
    _fails(
        checks_01_keys.check_shared_secret, lambda grp, a, peer: pow(a, peer, grp.p), "mistake 4"
    )


def _key_file(mode: int = 0o600, reuse: bool = True, secret: str = "secrets"):
    import random

    fixed = keys.generate(groups.FFDHE2048).private

    def load_or_create_key(path, group=groups.FFDHE2048):
        path = Path(path)
        if reuse and path.exists():
            private = keys.parse_number(path.read_text().split(":", 1)[1])
            return keys.KeyPair(group, private, pow(group.g, private, group.p))
        pair = keys.generate(group)
        if secret != "secrets":  # course mistake 2: `random`, or one number for every file
            private = random.randrange(2, group.q) if secret == "random" else fixed
            pair = keys.KeyPair(group, private, pow(group.g, private, group.p))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)
        with open(fd, "w") as file:
            file.write(f"private: {pair.private:#x}\n")
        return pair

    return load_or_create_key


def test_key_file_check() -> None:
    checks_01_keys.check_load_or_create_key(_key_file())
    checks_01_keys.hidden_key_file(_key_file())
    for _ in range(3):  # the seeds decide, not luck: the same verdict on every run
        for secret, named in [("random", "comes from the `random` module"),
                              ("constant", "a constant")]:  # fmt: skip
            wrong = _key_file(secret=secret)
            _fails(checks_01_keys.check_load_or_create_key, wrong, named, "mistake 2")
            with pytest.raises(CheckFailed, match="A hidden test of this exercise failed"):
                checks_01_keys.hidden_key_file(wrong)
    _fails(checks_01_keys.check_load_or_create_key, _key_file(mode=0o644), "mistake 8", "0o644")
    _fails(
        checks_01_keys.check_load_or_create_key,
        _key_file(reuse=False),
        "the key file was overwritten",
        "mistake 8",
    )


def test_framing_check() -> None:
    def send_msg(sock, data):
        sock.sendall(struct.pack("!I", len(data)) + data)

    def recv_exactly(sock, count):
        buffer = b""
        while len(buffer) < count:
            chunk = sock.recv(count - len(buffer))
            if not chunk:
                raise ConnectionError("closed")
            buffer += chunk
        return buffer

    def recv_msg(sock):
        (length,) = struct.unpack("!I", recv_exactly(sock, 4))
        if length > 1 << 20:
            raise ValueError("too big")
        return recv_exactly(sock, length)

    checks_02_exchange.check_framing(send_msg, recv_msg)
    with pytest.raises(CheckFailed) as info:
        checks_02_exchange.check_framing(send_msg, lambda sock: sock.recv(1024)[4:])
    assert "read one recv(1024) as one message — TCP does not keep message boundaries" in str(
        info.value
    )
    assert "section «2 · Exercise: frames on a stream»" in str(info.value)

    def reads_too_much(sock):  # one message whole, but a glued second one is swallowed
        (length,) = struct.unpack("!I", recv_exactly(sock, 4))
        data = recv_exactly(sock, length)
        sock.settimeout(0.05)
        try:
            sock.recv(1024)
        except TimeoutError:
            pass
        finally:
            sock.settimeout(2)
        return data

    _fails(
        lambda f: checks_02_exchange.check_framing(send_msg, f), reads_too_much, "one TCP segment"
    )

    def no_limit(sock):
        (length,) = struct.unpack("!I", recv_exactly(sock, 4))
        return recv_exactly(sock, length)

    _fails(
        lambda f: checks_02_exchange.check_framing(send_msg, f),
        no_limit,
        "4 GB",
        "*before* reading",
    )


def test_break_caesar_check() -> None:
    checks_02b_chat.check_break_caesar(lambda ct: wiretap.crack_caesar(ct)[1])
    _fails(checks_02b_chat.check_break_caesar, lambda ct: ct, "unchanged")
    _fails(
        checks_02b_chat.check_break_caesar,
        lambda ct: max((bytes(b - k for b in ct) for k in range(256)), key=lambda d: d.count(32)),
        "does not wrap around",
    )
    message = _fails(checks_02b_chat.check_break_caesar, _guess_from_the_most_common_byte,
                     "most common byte is not a space", "unreliable")  # fmt: skip
    assert "wrong way" not in message

    def wrong_way(ct):  # scores (b - k), then hands back (b + k)
        best = max(range(256), key=lambda k: bytes((b - k) % 256 for b in ct).count(32))
        return bytes((b + best) % 256 for b in ct)

    _fails(checks_02b_chat.check_break_caesar, wrong_way, "shifted the wrong way")


def _guess_from_the_most_common_byte(ciphertext):
    """Frequency analysis by one letter: the most common byte is taken for a space."""
    from collections import Counter

    key = (Counter(ciphertext).most_common(1)[0][0] - ord(" ")) % 256
    return bytes((b - key) % 256 for b in ciphertext)


# --- notebook 02: the course's exchange, against the check's server --------------------


def _dh_reference(sock, min_bits=2048):
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    hello = json.loads(read_frame(sock))
    p, g, big_b = hello["p"], hello["g"], hello["B"]
    if p.bit_length() < min_bits:
        raise ValueError("p too small")
    if not groups.is_probable_prime(p) or not groups.is_probable_prime((p - 1) // 2):
        raise ValueError("p is not a safe prime")
    group = groups.Group("offered", p, g, (p - 1) // 2)
    groups.validate_public(group, g)
    groups.validate_public(group, big_b)
    a = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
    return pow(big_b, a, p)


def _dh_variant(*, read=None, check=True, send_k=False, pickled=False, headerless=False):
    """The reference client with one typical mistake switched on."""
    import json
    import pickle
    import secrets

    from labcrypto.channel import read_frame, write_frame

    def client(sock, min_bits=2048):
        data = read(sock) if read else read_frame(sock)
        hello = json.loads(data)
        p, g, big_b = hello["p"], hello["g"], hello["B"]
        if check:
            return _dh_reference_after_read(sock, p, g, big_b, min_bits)
        a = 2 + secrets.randbelow(p - 4)
        public = pow(g, a, p)
        if pickled:
            sock.sendall(pickle.dumps((p, g, public)))
        elif headerless:
            sock.sendall(json.dumps({"A": public}).encode())
        else:
            message = {"A": public, "K": pow(big_b, a, p)} if send_k else {"A": public}
            write_frame(sock, json.dumps(message).encode())
        return pow(big_b, a, p)

    return client


def _dh_reference_after_read(sock, p, g, big_b, min_bits):
    import json
    import secrets

    from labcrypto.channel import write_frame

    if p.bit_length() < min_bits or not groups.is_probable_prime(p):
        raise ValueError("bad p")
    if not groups.is_probable_prime((p - 1) // 2):
        raise ValueError("p is not safe")
    group = groups.Group("offered", p, g, (p - 1) // 2)
    groups.validate_public(group, g)
    groups.validate_public(group, big_b)
    a = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
    return pow(big_b, a, p)


def test_dh_client_check_passes_the_reference_quickly(no_leaks) -> None:
    import time

    start = time.perf_counter()
    checks_02_exchange.check_dh_client(_dh_reference)
    assert time.perf_counter() - start < 5


def test_dh_client_check_names_each_known_mistake(no_leaks) -> None:
    check = checks_02_exchange.check_dh_client
    sends_k = _dh_variant(send_k=True, check=False)
    _fails(check, sends_k, "The shared secret was sent on the wire", "mistake 3")
    _fails(check, _dh_variant(check=False), "p is not prime", "mistake 1")
    _fails(check, _dh_variant(pickled=True, check=False), "pickle", "mistake 7")
    _fails(check, _dh_variant(headerless=True, check=False), "no length in front")
    message = _fails(
        check,
        _dh_variant(read=lambda sock: sock.recv(1024)[4:]),
        "read one recv(1024) as one message — TCP does not keep message boundaries",
    )
    assert "section «Exercise: the course's exchange over TCP, done right»" in message

    def recv_all_then_split(sock):  # a whole recv(1024) taken as the message: glued frames
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack("!I", data[:4])[0]:
            data += sock.recv(1024)
        return data[4:]

    _fails(check, _dh_variant(read=recv_all_then_split), "TCP does not keep message boundaries")

    def lets_a_toy_group_in(sock, min_bits=2048):
        return _dh_reference(sock, min_bits=2)

    _fails(check, lets_a_toy_group_in, "p = 23 is a toy group")

    def checks_only_p(sock, min_bits=2048):
        import json

        from labcrypto.channel import read_frame

        hello = json.loads(read_frame(sock))
        if not groups.is_probable_prime(hello["p"]):
            raise ValueError("p is not prime")
        raise ValueError("refuses everything else")

    _fails(check, checks_only_p, "fair")


def _dh_without(skipped: str):
    """The reference client with exactly one of its checks left out: "safe", "g" or "B"."""
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    def client(sock, min_bits=2048):
        hello = json.loads(read_frame(sock))
        p, g, big_b = hello["p"], hello["g"], hello["B"]
        if p.bit_length() < min_bits or not groups.is_probable_prime(p):
            raise ValueError("bad p")
        if skipped != "safe" and not groups.is_probable_prime((p - 1) // 2):
            raise ValueError("p is not safe")
        group = groups.Group("offered", p, g, (p - 1) // 2)
        if skipped != "g":
            groups.validate_public(group, g)
        if skipped == "B subgroup" and big_b in (0, 1, p - 1):  # the finding's partial check
            raise ValueError("B is 0, 1 or p-1")
        if skipped == "B range" and (big_b in (0, 1, p - 1) or pow(big_b, group.q, p) != 1):
            raise ValueError("B is 0, 1, p-1 or outside the subgroup")
        if skipped not in ("B", "B subgroup", "B range"):
            groups.validate_public(group, big_b)
        a = group.random_exponent(secrets.randbelow)
        write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
        return pow(big_b, a, p)

    return client


@pytest.mark.parametrize(
    ("skipped", "named"),
    [
        ("safe", "(p-1)/2 = "),
        ("g", "is not in the subgroup of prime order q"),
        ("B", "B = 1 makes K = 1"),
        ("B subgroup", "This B is not in the subgroup of prime order q"),
        ("B range", "This B is larger than p"),
    ],
)
def test_dh_client_check_catches_each_missing_check_on_every_run(skipped, named, no_leaks) -> None:
    """Issue 18 §2: a client without one check fails on every run, visible and hidden
    alike, with the words of that check (no random p decides it)."""
    client = _dh_without(skipped)
    for _ in range(4):
        _fails(checks_02_exchange.check_dh_client, client, named, "hostile server")
        with pytest.raises(CheckFailed, match="A hidden test of this exercise failed"):
            checks_02_exchange.hidden_dh_client(client)
    checks_02_exchange.hidden_dh_client(_dh_reference)  # the hidden test passes the reference


def _dh_with_secret(draw):
    """The reference client with its secret a drawn by ``draw(p)``."""
    import json

    from labcrypto.channel import read_frame, write_frame

    def client(sock, min_bits=2048):
        hello = json.loads(read_frame(sock))
        p, g, big_b = hello["p"], hello["g"], hello["B"]
        if p.bit_length() < min_bits or not groups.is_probable_prime(p):
            raise ValueError("bad p")
        if not groups.is_probable_prime((p - 1) // 2):
            raise ValueError("p is not safe")
        group = groups.Group("offered", p, g, (p - 1) // 2)
        groups.validate_public(group, g)
        groups.validate_public(group, big_b)
        a = draw(p)
        write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
        return pow(big_b, a, p)

    return client


def _random_secret(p):
    import random

    return random.randint(2, p - 2)


def _small_secret(p):
    import secrets

    return secrets.randbelow(1000) + 2


@pytest.mark.parametrize(
    ("draw", "named"),
    [
        (lambda p: 63, "for an a below 65536"),
        (_small_secret, "for an a below 65536"),
        (_random_secret, "comes from the `random` module"),
        (lambda p: 0x1234_5678_9ABC_DEF1 % (p - 3) + 2, "same A on every run"),
    ],
)
def test_dh_client_check_catches_a_secret_that_is_not_secret(draw, named, no_leaks) -> None:
    """Course mistake 2, on every run, visible and hidden: a constant, a small a and an a
    from ``random`` (each fair run seeds ``random``, so its draws repeat)."""
    client = _dh_with_secret(draw)
    for _ in range(3):
        _fails(checks_02_exchange.check_dh_client, client, named, "course mistake 2")
        with pytest.raises(CheckFailed, match="A hidden test of this exercise failed"):
            checks_02_exchange.hidden_dh_client(client)


def test_dh_client_check_leaves_the_random_module_as_it_was(no_leaks) -> None:
    import random

    random.seed(99)
    expected = random.random()
    random.seed(99)
    checks_02_exchange.check_dh_client(_dh_reference)
    assert random.random() == expected


def _dh_2048_written_in(sock, min_bits=2048):
    """The reference client with the limit written into its code: min_bits never read."""
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    hello = json.loads(read_frame(sock))
    p, g, big_b = hello["p"], hello["g"], hello["B"]
    if p.bit_length() < 2048:
        raise ValueError("p too small")
    group = groups.Group("offered", p, g, (p - 1) // 2)
    a = group.random_exponent(secrets.randbelow)
    write_frame(sock, json.dumps({"A": pow(g, a, p)}).encode())
    return pow(big_b, a, p)


def test_dh_client_check_says_min_bits_is_ignored(no_leaks) -> None:
    message = _fails(
        checks_02_exchange.check_dh_client, _dh_2048_written_in, "its code never reads min_bits"
    )
    assert "recv(1024)" not in message


def test_each_hostile_server_is_refused_by_its_own_check_only() -> None:
    """The unsafe p passes the g and B checks; the hostile g passes the B check."""
    from labcrypto.lab import harness

    p = harness.prime_not_safe(64)
    assert p == harness.prime_not_safe(64)  # the same group on every run
    unsafe = groups.Group("unsafe", p, 2, (p - 1) // 2)
    assert not groups.is_probable_prime(unsafe.q)
    for _ in range(20):
        _, big_b = harness._server_secret(unsafe, p, 2)
        groups.validate_public(unsafe, 2)
        groups.validate_public(unsafe, big_b)
    fair = groups.small_safe_prime_group(64, seed=3)
    bad_g = harness.outside_subgroup(fair)
    with pytest.raises(ValueError):
        groups.validate_public(fair, bad_g)
    hostile_b = {
        str(how["B"]): why
        for how, why in checks_02_exchange._hostile_servers(fair)
        if set(how) == {"B"}
    }
    assert len(hostile_b) == 3
    for big_b in map(int, hostile_b):  # each refused, and only by its own test
        with pytest.raises(ValueError):
            groups.validate_public(fair, big_b)
        below_p = big_b < fair.p
        in_subgroup = pow(big_b, fair.q, fair.p) == 1
        forbidden = big_b % fair.p in (0, 1, fair.p - 1)
        assert [below_p, in_subgroup, not forbidden].count(False) == 1, big_b
    for _ in range(20):
        _, big_b = harness._server_secret(fair, fair.p, bad_g)
        groups.validate_public(fair, big_b)


def test_pure_checks_stop_a_slow_loop_and_say_what_took_too_long() -> None:
    """A loop-based public_value (a multiplications) would run for ever: the check stops
    it at its bound, says which call and why, and leaves no thread running."""
    import threading
    import time

    def multiplies_a_times(grp, a):
        result = 1
        for _ in range(a):
            result = result * grp.g % grp.p
        return result

    start = time.monotonic()
    message = _fails(
        checks_01_keys.check_public_value, multiplies_a_times, "did not finish within 2 s",
        "public_value(", "2^",
    )  # fmt: skip
    assert time.monotonic() - start < 2 + 1.5, message
    assert "NotImplementedError" not in message

    def still_running() -> bool:
        return any(t.name == "exercise-check" for t in threading.enumerate())

    deadline = time.monotonic() + 2
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not still_running()  # stopped, not left to run in the background

    def shared_by_loop(grp, a, peer):
        groups.validate_public(grp, peer)
        result = 1
        for _ in range(a):
            result = result * peer % grp.p
        return result

    _fails(checks_01_keys.check_shared_secret, shared_by_loop, "did not finish within 2 s")


def test_messages_never_hand_over_the_expected_answer(no_leaks) -> None:
    """Issue 18 §2: a failure says what is wrong, not what to return."""
    seen: dict[str, int] = {}

    def wrong_above_the_toy_group(grp, a):
        if grp.p < 1000:
            return pow(grp.g, a, grp.p)
        seen["want"] = pow(grp.g, a, grp.p)
        return (seen["want"] + 1) % grp.p

    message = _fails(checks_01_keys.check_public_value, wrong_above_the_toy_group, "not g^a mod p")
    assert str(seen["want"]) not in message

    def off_by_one(grp, a, peer):
        groups.validate_public(grp, peer)
        k = pow(peer, a, grp.p)
        seen["K"] = k
        return k + 1

    message = _fails(checks_01_keys.check_shared_secret, off_by_one, "not K = B^a mod p")
    assert f"K = {seen['K']}" not in message and "expected" not in message

    message = _fails(checks_02b_chat.check_break_caesar, lambda ct: ct, "unchanged")
    for plaintext in checks_02b_chat._PLAINTEXTS:
        assert plaintext[:12] not in message, message

    def loop_returns_the_lines(channel, lines):
        for line in lines:
            channel.send(line)
            channel.recv_text()
        return list(lines)

    message = _fails(
        checks_02b_chat.check_chat_loop, loop_returns_the_lines, "not the text the server"
    )
    assert "echo:" not in message


def test_dh_client_check_ends_a_stuck_client_and_leaves_nothing(no_leaks) -> None:
    import time

    def waits_forever(sock, min_bits=2048):
        sock.settimeout(None)
        data = b""
        while len(data) < 1 << 30:  # waits for far more than the server sends
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return 0

    start = time.perf_counter()
    _fails(checks_02_exchange.check_dh_client, waits_forever, "did not return within")
    assert time.perf_counter() - start < 5


def test_framing_check_ends_a_stuck_receiver_and_leaves_nothing(no_leaks) -> None:
    import time

    def send_msg(sock, data):
        sock.sendall(struct.pack("!I", len(data)) + data)

    def stuck(sock):
        sock.settimeout(None)
        data = b""
        while len(data) < 1 << 30:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    start = time.perf_counter()
    _fails(lambda f: checks_02_exchange.check_framing(send_msg, f), stuck, "did not return within")
    assert time.perf_counter() - start < 5


# --- notebook 01: your own numbers ---------------------------------------------------


# --- your own seal and open (05) -----------------------------------------------------------


def _cipher_class(
    labels=(b"client to server", b"server to client"),
    raw_k=False,
    fixed_nonce=False,
    swallow_bad_tag=False,
    no_tag_check=False,
    nonce_on_wire=False,
    xor_k=False,
    counts_refusals=False,
    ecb=False,
    one_counter=False,
):
    """A MyCipher as the notebook describes it, or with one known mistake."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    class MyCipher:
        def __init__(self, k, i_am_client):
            if raw_k:
                found = [k[:32], k[:32]]
            else:
                found = [
                    HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(k)
                    for label in labels
                ]
            self.send_key, self.recv_key = found if i_am_client else found[::-1]
            self.sealed = self.opened = 0
            self.k = k

        def seal(self, plaintext):
            if ecb:  # AES-ECB keyed by the raw K, padded with zeros: no nonce, no tag
                padded = plaintext + bytes(-len(plaintext) % 16)
                encryptor = Cipher(algorithms.AES(self.k[:32]), modes.ECB()).encryptor()
                return encryptor.update(padded) + encryptor.finalize()
            if xor_k:  # the course's own cipher: the message XORed with the bytes of K
                stream = self.k * len(plaintext)
                return bytes(m ^ k for m, k in zip(plaintext, stream, strict=False))
            nonce = bytes(12) if fixed_nonce else self.sealed.to_bytes(12, "big")
            if nonce_on_wire:
                nonce = os.urandom(12)
            self.sealed += 1
            sealed = AESGCM(self.send_key).encrypt(nonce, plaintext, None)
            return nonce + sealed if nonce_on_wire else sealed

        def open(self, data):
            if one_counter:  # one count for what it seals and what it opens
                nonce = self.sealed.to_bytes(12, "big")
                plaintext = AESGCM(self.recv_key).decrypt(nonce, data, None)
                self.sealed += 1
                return plaintext
            nonce = bytes(12) if fixed_nonce else self.opened.to_bytes(12, "big")
            if nonce_on_wire:
                nonce, data = data[:12], data[12:]
            if counts_refusals or no_tag_check:  # the count moves on before decrypt says yes
                self.opened += 1
            if no_tag_check:  # decrypts GCM without ever checking the 16-byte tag
                decryptor = Cipher(algorithms.AES(self.recv_key), modes.GCM(nonce)).decryptor()
                return decryptor.update(data[:-16])
            try:
                plaintext = AESGCM(self.recv_key).decrypt(nonce, data, None)
            except InvalidTag:
                if swallow_bad_tag:
                    return b""
                raise
            if not counts_refusals:
                self.opened += 1  # only once decrypt has said yes
            return plaintext

    return MyCipher


def test_my_cipher_check_passes_the_reference(no_leaks) -> None:
    import time

    start = time.perf_counter()
    checks_05_ftp.check_my_cipher(_cipher_class())
    checks_05_ftp.hidden_my_cipher(_cipher_class())
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize(
    ("mistake", "phrase"),
    [
        ({"fixed_nonce": True}, "nonce reuse"),
        ({"raw_k": True}, "raw K as key"),
        ({"labels": (b"key", b"key")}, "both directions use one key"),
        ({"labels": (b"server to client", b"client to server")}, "server-to-client key"),
        ({"swallow_bad_tag": True}, "was not refused"),
        ({"no_tag_check": True}, "do not decrypt without checking the tag"),
        ({"nonce_on_wire": True}, "the nonce travels with the message"),
        ({"xor_k": True}, "XORed with the bytes of K"),
        ({"counts_refusals": True}, "a refused one was not opened"),
        ({"ecb": True}, "no room for the 16-byte authentication tag"),
        ({"one_counter": True}, "one counter for both directions"),
    ],
)
def test_my_cipher_check_names_each_mistake(no_leaks, mistake, phrase) -> None:
    """Each mistake is caught on every run (five runs: nothing depends on luck), by its name."""
    wrong = _cipher_class(**mistake)
    for _ in range(5):
        message = _fails(checks_05_ftp.check_my_cipher, wrong, phrase)
        assert "section «Exercise: your own seal and open»" in message
    with pytest.raises(CheckFailed):
        checks_05_ftp.hidden_my_cipher(wrong)


def test_my_cipher_check_catches_a_replay_and_ends_a_stuck_cipher(no_leaks) -> None:
    import time

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def _nonce(count):
        return count.to_bytes(12, "big")

    class Replays(_cipher_class()):
        def open(self, data):  # "tolerates reordering": tries every nonce used so far
            for count in range(self.opened + 1):
                try:
                    plaintext = AESGCM(self.recv_key).decrypt(_nonce(count), data, None)
                except InvalidTag:
                    continue
                self.opened = max(self.opened, count + 1)
                return plaintext
            raise InvalidTag

    _fails(checks_05_ftp.check_my_cipher, Replays, "opened twice")

    class Stuck(_cipher_class()):
        def seal(self, plaintext):
            time.sleep(3)  # longer than the check waits (a loop that would never end)
            return b""

    start = time.perf_counter()
    _fails(checks_05_ftp.check_my_cipher, Stuck, "did not return within")
    assert time.perf_counter() - start < 5
    _fails(checks_05_ftp.check_my_cipher, lambda k, c: 1 / 0, "raised ZeroDivisionError")

    class NotWritten:
        def __init__(self, k, i_am_client):
            raise NotImplementedError()

    _fails(checks_05_ftp.check_my_cipher, NotWritten, "not written yet")


# --- a fresh key pair for every request (05) -------------------------------------------


def _request_handler(mistake: str = ""):
    """A handle_request as notebook 05 describes it, or with one known mistake."""
    import hashlib
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from labcrypto.channel import read_frame, write_frame
    from labcrypto.handshake import transcript_hash

    once: dict[str, keys.KeyPair] = {}

    def handle_request(sock, server_key, answer):
        group = server_key.group
        if mistake == "reads two frames first":
            read_frame(sock)
        client_hello = sock.recv(4096) if mistake == "recv" else read_frame(sock)
        hello = json.loads(client_hello)
        base = 10 if mistake == "base 10" else 16
        A, X = int(hello["static"], base), int(hello["ephemeral"], base)
        if mistake == "once per server":
            mine = once.setdefault("y", keys.generate(group))
        elif mistake == "y from the request":
            y = int.from_bytes(hashlib.sha256(client_hello).digest(), "big") | 1 << 255
            mine = keys.KeyPair(group, y, pow(group.g, y, group.p))
        else:
            mine = keys.generate(group)
        shown = {"client's X": X, "static B": server_key.public}.get(mistake, mine.public)
        server_hello = json.dumps({} if mistake == "no Y" else {"ephemeral": hex(shown)}).encode()
        write_frame(sock, server_hello)
        K = server_key.shared_secret(A)
        K2 = mine.shared_secret(X)
        if mistake in ("client's X", "X^b"):
            K2 = server_key.shared_secret(X)
        parts = {"only K": [K], "no K": [K2], "swapped": [K, K2]}.get(mistake, [K2, K])
        transcript = transcript_hash(client_hello, server_hello)
        if mistake == "client hello only":
            transcript = hashlib.sha256(client_hello).digest()
        if mistake == "re-encoded":  # the hello as json.dumps writes it, not as it came
            transcript = transcript_hash(json.dumps(hello).encode(), server_hello)
        derived = HKDF(
            algorithm=hashes.SHA256(), length=64, salt=None,
            info=b"labcrypto 05 request" + transcript,
        ).derive(b"".join(part.to_bytes(256, "big") for part in parts))  # fmt: skip
        command = AESGCM(derived[:32]).decrypt(bytes(12), read_frame(sock), None)
        back = derived[:32] if mistake == "one key" else derived[32:]
        write_frame(sock, AESGCM(back).encrypt(bytes(12), answer(command), None))

    return handle_request


def test_request_handler_check_passes_the_reference_quickly(no_leaks) -> None:
    import time

    start = time.perf_counter()
    checks_05_ftp.check_request_handler(_request_handler())
    checks_05_ftp.hidden_request_handler(_request_handler())
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize(
    ("mistake", "phrases"),
    [
        ("once per server", ["Two requests got the same Y", "made once"]),
        ("only K", ["computed but not mixed in", "read it: b'cat exam/answers.txt'"]),
        ("no Y", ["no ephemeral public value", "cannot compute K'"]),
        ("client's X", ["the client's own X, sent back", "reuses the client's"]),
        ("X^b", ["Your K' is X^b", "read it: b'cat exam/answers.txt'"]),
        ("static B", ["your static public key B"]),
        ("no K", ["K = A^b is not mixed in", "man in the middle"]),
        ("swapped", ["K' first"]),
        ("client hello only", ["covers only the client's hello", "not bound"]),
        ("y from the request", ["sent again byte for byte, was carried out again"]),
        ("one key", ["could not open your answer", "request_keys[32:]"]),
        ("re-encoded", ["as your code wrote it again", "exactly as they were sent"]),
        ("recv", ["reads with recv", "one recv is not one message", "read_frame(sock)"]),
        ("base 10", ["hexadecimal text", "int(text, 16)"]),
    ],
)
def test_request_handler_check_names_each_mistake(no_leaks, mistake, phrases) -> None:
    """Each mistake is caught on every run (three runs: nothing depends on luck), by its name."""
    wrong = _request_handler(mistake)
    for _ in range(3):
        message = _fails(checks_05_ftp.check_request_handler, wrong, *phrases)
        assert "section «Exercise: a fresh key pair for every request»" in message
    with pytest.raises(CheckFailed):
        checks_05_ftp.hidden_request_handler(wrong)


def _handler_naming_its_keys_keys(sock, server_key, answer):
    """The reference handler with its derived bytes named ``keys``, as the task text once
    called them: the variable shadows the module ``keys`` in the whole function."""
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from labcrypto.channel import read_frame, write_frame
    from labcrypto.handshake import transcript_hash

    client_hello = read_frame(sock)
    hello = json.loads(client_hello)
    A, X = int(hello["static"], 16), int(hello["ephemeral"], 16)
    mine = keys.generate(server_key.group)  # noqa: F823 - UnboundLocalError, the case under test
    server_hello = json.dumps({"ephemeral": hex(mine.public)}).encode()
    write_frame(sock, server_hello)
    info = b"labcrypto 05 request" + transcript_hash(client_hello, server_hello)
    secret = mine.shared_secret(X).to_bytes(256, "big")
    secret += server_key.shared_secret(A).to_bytes(256, "big")
    keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(secret)
    command = AESGCM(keys[:32]).decrypt(bytes(12), read_frame(sock), None)
    write_frame(sock, AESGCM(keys[32:]).encrypt(bytes(12), answer(command), None))


def test_request_handler_check_names_a_variable_that_shadows_a_module(no_leaks) -> None:
    _fails(checks_05_ftp.check_request_handler, _handler_naming_its_keys_keys,
           "raised UnboundLocalError(", "the name of the module keys")  # fmt: skip

    def forgot_an_import(sock, server_key, answer):
        return hashlib_.sha256(b"")  # noqa: F821 - the missing import under test

    _fails(checks_05_ftp.check_request_handler, forgot_an_import,
           "raised NameError(", "does not know the name hashlib_")  # fmt: skip


def test_request_handler_check_sends_a_hello_that_json_dumps_would_change(no_leaks) -> None:
    """The check's client hello is not what json.dumps(json.loads(hello)) gives back: a
    handler that hashes it re-encoded fails on every run, and the reference passes."""
    import json

    from labcrypto.groups import FFDHE2048

    server_key, client = keys.generate(FFDHE2048), keys.generate(FFDHE2048)
    request = checks_05_ftp._run_request(_request_handler(), server_key, client)
    assert request.answer == checks_05_ftp._ANSWER
    hello = request.client_hello
    assert json.dumps(json.loads(hello)).encode() != hello
    assert json.dumps(json.loads(hello), sort_keys=True).encode() != hello


def test_request_handler_thief_opens_only_what_static_keys_open(no_leaks) -> None:
    """The check's thief is a real attacker: with both static keys he reads a request whose
    keys come from K alone, and not one that mixes in K' (same recording code, same thief)."""
    from labcrypto.groups import FFDHE2048

    server_key, client = keys.generate(FFDHE2048), keys.generate(FFDHE2048)
    for mistake, readable in (("only K", True), ("X^b", True), ("", False)):
        schedule = {"only K": ("ss",), "X^b": ("es", "ss"), "": ("ee", "ss")}[mistake]
        recorded = checks_05_ftp._run_request(
            _request_handler(mistake), server_key, client, checks_05_ftp._Schedule(schedule)
        )
        assert recorded.answer == checks_05_ftp._ANSWER, mistake
        stolen = checks_05_ftp._thief_reads(recorded, server_key, client)
        assert (stolen == checks_05_ftp._COMMAND) is readable, mistake


def test_request_handler_check_ends_a_stuck_handler_and_says_so(no_leaks) -> None:
    import time

    def never_answers(sock, server_key, answer):
        sock.recv(1 << 16)
        sock.recv(1 << 16)  # waits for more, and never says hello (ends when the check hangs up)

    bound = checks_05_ftp.REQUEST_WAIT
    for stuck in (never_answers, _request_handler("reads two frames first")):
        start = time.perf_counter()
        _fails(checks_05_ftp.check_request_handler, stuck, f"sent no hello within {bound:.0f} s")
        assert time.perf_counter() - start < bound + 3

    def not_written(sock, server_key, answer):
        raise NotImplementedError()

    _fails(checks_05_ftp.check_request_handler, not_written, "not written yet")

    def typo(sock, server_key, answer):
        return server_key.shared_secret(int(sock))

    _fails(checks_05_ftp.check_request_handler, typo, "raised TypeError")

    def hangs_up(sock, server_key, answer):
        sock.close()  # before the client's hello has even arrived

    _fails(checks_05_ftp.check_request_handler, hangs_up, "returned without sending its hello")


def test_my_numbers_check_never_shows_the_answer() -> None:
    my = variants.variant("s1234567")
    right_a, right_k = pow(my.g, my.a, my.p), pow(my.B, my.a, my.p)
    checks_01_keys.check_my_numbers(my, right_a, right_k)
    _fails(lambda f: checks_01_keys.check_my_numbers(my, None, None), None, "not written yet")
    for wrong_a, wrong_k, phrase in [
        (pow(my.a, my.g, my.p), right_k, "swapped"),
        (right_a, pow(my.a, my.B, my.p), "mistake 4"),
        (right_a, pow(right_a, my.a, my.p), "your own public value"),
        (right_a, my.p + 5, "another student's numbers"),
    ]:
        message = _fails(
            lambda f, a=wrong_a, k=wrong_k: checks_01_keys.check_my_numbers(my, a, k), None, phrase
        )
        assert str(right_k) not in message and (wrong_a == right_a or str(right_a) not in message)
        assert "section «Exercise: your own numbers»" in message


def test_message_loop_check(no_leaks) -> None:
    def good(channel, lines):
        replies = []
        for line in lines:
            channel.send(line)
            replies.append(channel.recv_text(timeout=5))
        return replies

    checks_02b_chat.check_chat_loop(good)
    checks_02b_chat.hidden_chat_loop(good)
    _fails(
        checks_02b_chat.check_chat_loop,
        lambda channel, lines: [channel.stream for _ in lines],
        "channel.stream",
    )
    for _ in range(3):
        _fails(checks_02b_chat.check_chat_loop, _loop_that_stops_on_any_error,
               "as if it had finished", "course mistake 11")  # fmt: skip
        with pytest.raises(CheckFailed, match="A hidden test"):
            checks_02b_chat.hidden_chat_loop(_loop_that_stops_on_any_error)


def _loop_that_stops_on_any_error(channel, lines):
    """The student's ``while True`` whose ``except Exception: break`` ends it at the last
    line (an IndexError), and at any error of the channel as well."""
    replies, i = [], 0
    while True:
        try:
            channel.send(lines[i])
            replies.append(channel.recv_text(timeout=5))
            i += 1
        except Exception:
            break
    return replies


# --- notebook 03 -----------------------------------------------------------------------


def _reference_is_allowed(path, key):
    import csv

    from labcrypto.errors import LabCryptoError
    from labcrypto.keys import PublicKey

    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0].lstrip().startswith("#"):
                continue
            try:
                if PublicKey.from_text(row[1]) == key:
                    return True
            except (ValueError, LabCryptoError):
                continue
    return False


# --- the server's half of the exchange (03) ------------------------------------------------


def _dh_server(validate="full", fixed_b=False, pickled=False, read=None, send_k=False,
               coerce=False, random_b=False):  # fmt: skip
    """A dh_server as notebook 03 describes it, or with one known mistake."""
    import json
    import pickle
    import random
    import secrets

    from labcrypto.channel import read_frame, write_frame

    fixed: dict[int, int] = {}

    def dh_server(sock, group):
        b = group.random_exponent(secrets.randbelow)
        if fixed_b:
            b = fixed.setdefault(group.p, b)
        if random_b:  # course mistake 2: the `random` module, not `secrets`
            b = random.randrange(2, group.q)
        hello = {"p": group.p, "g": group.g, "B": pow(group.g, b, group.p)}
        write_frame(sock, json.dumps(hello).encode())
        data = read(sock) if read else read_frame(sock)
        public = (pickle.loads(data) if pickled else json.loads(data)).get("A")
        if coerce:  # whatever came, made a number: "123" and 9.0 pass as A
            public = int(public)
        if validate == "full":
            groups.validate_public(group, public)
        elif validate == "small values":  # 0, 1 and p-1 refused by value, no range
            if public in (0, 1, group.p - 1):
                raise ValueError("bad A")
        elif validate == "range":  # 2 <= A <= p-2, no subgroup check
            if not 2 <= public <= group.p - 2:
                raise ValueError("bad A")
        elif validate == "below 2" and public < 2:
            raise ValueError("bad A")
        elif validate == "by hand" and (  # range and subgroup, but no look at the type
            not 2 <= public <= group.p - 2 or pow(public, group.q, group.p) != 1
        ):
            raise ValueError("A out of range or outside the subgroup")
        shared = pow(public, b, group.p)
        if send_k:
            write_frame(sock, json.dumps({"K": shared}).encode())
        return shared

    return dh_server


def test_dh_server_check_passes_the_reference_quickly(no_leaks) -> None:
    import time

    start = time.perf_counter()
    checks_03_allowlist.check_dh_server(_dh_server())
    checks_03_allowlist.hidden_dh_server(_dh_server())
    assert time.perf_counter() - start < 5


def test_dh_server_hidden_test_catches_a_b_from_random_on_every_run(no_leaks) -> None:
    for _ in range(3):
        with pytest.raises(CheckFailed):
            checks_03_allowlist.hidden_dh_server(_dh_server(random_b=True))
        with pytest.raises(CheckFailed):
            checks_03_allowlist.hidden_dh_server(_dh_server(fixed_b=True))


class _RecvIgnoringClose:
    """Reads exactly one frame of at most 64 KiB, but never checks for b'' (the peer
    closed): it spins on.

    It spins until the test calls ``stop()`` after the check has given its verdict (or
    60 s at most, so that no thread outlives a broken test). A spinner bounded by a short
    clock instead could end before the check's wait on a starved machine: with the spinners
    of earlier runs holding the GIL, the check's own thread once took over 2.5 s to start
    waiting, and the wrong answer looked like a server that gave up in time.
    """

    def __init__(self) -> None:
        import threading

        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def __call__(self, sock):
        import time

        deadline = time.monotonic() + 60

        def exactly(count):
            data = b""
            while len(data) < count:
                if self.stopped.is_set() or time.monotonic() > deadline:
                    raise TimeoutError("gave up")
                data += sock.recv(count - len(data))
            return data

        size = struct.unpack("!I", exactly(4))[0]
        if size > 1 << 16:  # it does limit the length: only b'' is forgotten
            raise ValueError("frame too large")
        return exactly(size)


@pytest.mark.parametrize(
    ("mistake", "phrases"),
    [
        ({"validate": "none"}, ["sent A = 0", "K = 0 whatever your b"]),
        ({"validate": "below 2"}, ["sent A = p-1", "has order 2"]),
        ({"validate": "small values"}, ["sent A = p+1", "1 in disguise"]),
        ({"validate": "range"}, ["outside g's subgroup", "A^q mod p"]),
        ({"fixed_b": True}, ["same B", "fresh b"]),
        ({"random_b": True}, ["comes from the `random` module", "mistake 2"]),
        ({"send_k": True}, ["The shared secret was sent on the wire", "mistake 3"]),
        ({"pickled": True}, ["pickle", "mistake 7"]),
        ({"read": lambda sock: sock.recv(1024)[4:]}, ["TCP does not keep message boundaries"]),
        ({"read": _RecvIgnoringClose}, ["closed the connection without sending A", "waiting"]),
        ({"coerce": True}, ["sent A as a string of digits", "returned a K", "(int(...))"]),
        ({"validate": "by hand"}, ["sent A as a string", "raised TypeError(", "instead of"]),
    ],
)
def test_dh_server_check_names_each_mistake(no_leaks, mistake, phrases) -> None:
    """Each mistake is caught on every run (three runs: no case depends on luck), by its name."""
    for _ in range(3):
        spinner = _RecvIgnoringClose() if mistake.get("read") is _RecvIgnoringClose else None
        wrong = _dh_server(**(mistake | {"read": spinner} if spinner else mistake))
        try:
            message = _fails(checks_03_allowlist.check_dh_server, wrong, *phrases)
        finally:
            if spinner is not None:
                spinner.stop()
        assert "section «Exercise: the server's half of the exchange»" in message


def test_dh_server_check_refuses_a_frame_without_a_as_the_task_says(no_leaks) -> None:
    """Step 3 of the task: a frame without A is refused with ValueError, not a KeyError."""
    import json
    import secrets

    from labcrypto.channel import read_frame, write_frame

    def looks_up_a(sock, group):
        b = group.random_exponent(secrets.randbelow)
        write_frame(sock, json.dumps({"p": group.p, "g": group.g,
                                      "B": pow(group.g, b, group.p)}).encode())  # fmt: skip
        public = json.loads(read_frame(sock))["A"]
        groups.validate_public(group, public)
        return pow(public, b, group.p)

    _fails(checks_03_allowlist.check_dh_server, looks_up_a, "without A", "KeyError(")


@pytest.mark.parametrize("missing", ["typo", "import"])
def test_dh_server_check_shows_the_error_raised_before_the_hello(missing, no_leaks) -> None:
    """A server that raises before its hello is told what it raised, not "no hello"."""

    def typo(sock, group):
        return grup.p  # noqa: F821 - the typo under test

    def no_import(sock, group):
        return secrets_.randbelow(group.q)  # noqa: F821 - `import secrets_` deleted

    server = typo if missing == "typo" else no_import
    message = _fails(checks_03_allowlist.check_dh_server, server, "raised NameError(",
                     "before it sent its hello", "an import")  # fmt: skip
    assert "within" not in message
    with pytest.raises(CheckFailed, match="A hidden test"):
        checks_03_allowlist.hidden_dh_server(server)


def test_dh_server_check_ends_a_stuck_server_and_says_so(no_leaks) -> None:
    import time

    def never_speaks(sock, group):
        return int(sock.recv(10) or 0)  # waits for the client, which waits for the hello

    start = time.perf_counter()
    _fails(checks_03_allowlist.check_dh_server, never_speaks, "sent no hello within")
    assert time.perf_counter() - start < 5

    def not_written(sock, group):
        raise NotImplementedError()

    _fails(checks_03_allowlist.check_dh_server, not_written, "not written yet")


def test_is_allowed_check() -> None:
    from labcrypto.allowlist import Allowlist

    checks_03_allowlist.check_is_allowed(_reference_is_allowed)
    # The server's Allowlist is stricter than the exercise: one spelling per key (issue 14),
    # so the exercise's row in capital hex is refused there, with the spelling to write.
    _fails(
        checks_03_allowlist.check_is_allowed,
        lambda path, key: Allowlist(path).is_allowed(key),
        "capital",
    )
    _fails(
        checks_03_allowlist.check_is_allowed,
        lambda path, key: key.to_text() in Path(path).read_text(),
        "not text",
    )

    def no_comments(path, key):
        import csv

        from labcrypto.keys import PublicKey

        for row in csv.reader(Path(path).read_text().splitlines()):
            try:
                if PublicKey.from_text(row[1]) == key:
                    return True
            except (ValueError, IndexError, LabCryptoError):
                continue
        return False

    _fails(checks_03_allowlist.check_is_allowed, no_comments, "'#'")

    _fails(checks_03_allowlist.check_is_allowed, lambda path, key: 1 / 0, "one bad row")

    def splits_on_commas(path, key):  # issue 18 §2: pointed to csv
        from labcrypto.keys import PublicKey

        for line in Path(path).read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            try:
                if PublicKey.from_text(line.split(",")[1]) == key:
                    return True
            except (ValueError, IndexError, LabCryptoError):
                continue
        return False

    _fails(checks_03_allowlist.check_is_allowed, splits_on_commas, "csv.reader", "split(',')")

    def unpacks_three_columns(path, key):
        from labcrypto.keys import PublicKey

        for line in Path(path).read_text().splitlines()[1:]:
            if not line.strip() or line.startswith("#"):
                continue
            _name, text, _comment = line.split(",")
            if text.strip().startswith("0x") and PublicKey.from_text(text) == key:
                return True
        return False

    _fails(checks_03_allowlist.check_is_allowed, unpacks_three_columns, "csv.reader", "quotes")


def _enrol(name, key_dir, allowlist_path):
    """The first half of notebook 03's join: dave's key, reused, and his row, added once."""
    from labcrypto.allowlist import Allowlist

    key = keys.load_or_create(name, key_dir)
    listed = Allowlist(allowlist_path)
    if not listed.is_allowed(key.public_key):
        listed.add(name, key.public_key)
    return key


def _join(name, key_dir, allowlist_path, address, server_key):
    """Notebook 03's join as the exercise asks: enrolled, then connected, the server pinned."""
    from labcrypto.chat import ChatClient

    key = _enrol(name, key_dir, allowlist_path)
    return ChatClient.connect(*address, key, server_key=server_key, timeout=5)


def test_join_as_new_student_check(no_leaks) -> None:
    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient

    checks_03_allowlist.check_join_as_new_student(_join)

    def forgets_the_list(name, key_dir, allowlist_path, address, server_key):
        key = keys.load_or_create(name, key_dir)
        return ChatClient.connect(*address, key, server_key=server_key, timeout=5)

    _fails(checks_03_allowlist.check_join_as_new_student, forgets_the_list, "does not know the key")

    def adds_twice(name, key_dir, allowlist_path, address, server_key):
        key = keys.load_or_create(name, key_dir)
        Allowlist(allowlist_path).add(name, key.public_key)
        return ChatClient.connect(*address, key, server_key=server_key, timeout=5)

    _fails(checks_03_allowlist.check_join_as_new_student, adds_twice, "second must too")


def test_join_check_catches_an_unpinned_server_and_writes_no_file(no_leaks) -> None:
    """Issue 18 §2 and §4: a join that does not pin the server fails, and the check
    writes nothing into the student's keys/known_servers.csv (trust on first use)."""
    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient

    def unpinned(name, key_dir, allowlist_path, address, server_key):
        key = keys.load_or_create(name, key_dir)
        listed = Allowlist(allowlist_path)
        if not listed.is_allowed(key.public_key):
            listed.add(name, key.public_key)
        return ChatClient.connect(*address, key, timeout=5)

    message = _fails(
        checks_03_allowlist.check_join_as_new_student, unpinned, "without pinning the server's key"
    )
    assert "nothing was written" in message
    assert not (keys.default_dir() / "known_servers.csv").exists()  # the student's own file


# --- the check inside the handshake (03) ----------------------------------------------------


def _serve_one(mistake=None):
    """A serve_one as notebook 03 describes it, or with one known mistake."""
    from labcrypto.allowlist import Allowlist
    from labcrypto.channel import SecureChannel, read_frame, write_frame
    from labcrypto.errors import KeyNotAllowed
    from labcrypto.handshake import ServerHandshake

    cache: dict[Path, set] = {}

    def allowed(path, key):
        if mistake == "cached":  # the keys read once per file, kept for every later connection
            if path not in cache:
                cache[path] = {entry.key for entry in Allowlist(path).entries()}
            return key in cache[path]
        if mistake == "text":  # the key's text searched for in the file's text
            return key.to_text() in Path(path).read_text(encoding="utf-8")
        if mistake == "prefix":  # the first 40 characters of the key texts compared
            listed = Allowlist(path).entries()
            return any(e.key.to_text()[:40] == key.to_text()[:40] for e in listed)
        if mistake == "fail open" and not Path(path).exists():
            return True  # "no list yet: everybody may come in"
        if mistake == "own is_allowed":  # notebook 03's is_allowed: FileNotFoundError if no file
            return _reference_is_allowed(path, key)
        return Allowlist(path).is_allowed(key)

    def refuse(sock, exc):
        if mistake != "silent":
            write_frame(sock, ServerHandshake.error_message(exc))
        raise exc

    def serve_one(sock, server_key, allowlist_path):
        if mistake == "after the welcome":
            channel = SecureChannel.server(sock, server_key)
            channel.send("welcome")
            if not allowed(allowlist_path, channel.session.peer_key):
                channel.close()
                raise KeyNotAllowed("not on the list")
            return channel
        if mistake == "after the handshake":
            channel = SecureChannel.server(sock, server_key)
            if not allowed(allowlist_path, channel.session.peer_key):
                refuse(sock, KeyNotAllowed("not on the list"))
            channel.send("welcome")
            return channel
        check_at_hello = mistake != "after receive"
        handshake = ServerHandshake(
            server_key, allow=(lambda key: allowed(allowlist_path, key)) if check_at_hello else None
        )
        try:
            replies = handshake.receive(read_frame(sock))
            if not check_at_hello and not allowed(allowlist_path, handshake.client_key):
                raise KeyNotAllowed("not on the list")  # the replies, keys and all, are made
            for reply in replies:
                write_frame(sock, reply)
            if mistake == "before the proof":  # serves on the hello alone: the proof never checked
                read_frame(sock)
                channel = SecureChannel(sock, handshake._make_session(handshake.client_key))
                channel.send("welcome")
                return channel
            handshake.receive(read_frame(sock))
        except LabCryptoError as exc:
            refuse(sock, exc)
        channel = SecureChannel(sock, handshake.session)
        channel.send("welcome")
        return channel

    return serve_one


def test_serve_one_check_passes_the_reference_quickly(no_leaks) -> None:
    import time

    start = time.perf_counter()
    checks_03_allowlist.check_serve_one(_serve_one())
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("mistake", "phrases"),
    [
        ("after the welcome", ["not on the allowlist: your server sent it", "too late"]),
        ("after the handshake", ["answered its hello", "too late"]),
        ("after receive", ["had already computed a Diffie-Hellman result with that client's key"]),
        ("silent", ["no refusal reached the client", "error_message"]),
        ("before the proof", ["claims alice's key", "Its proof (client_finished) was made up"]),
        ("text", ["answered its hello", "Compare keys (PublicKey ==), not text"]),
        ("prefix", ["answered its hello", "Compare keys (PublicKey ==), not text"]),
        ("cached", ["Bob, after his row was removed", "got in", "(a cache)"]),
        ("fail open", ["allowlist file was deleted: your server sent it", "fail closed"]),
        ("own is_allowed", ["no refusal", "raised FileNotFoundError", "nobody is on the list"]),
    ],
)
def test_serve_one_check_names_each_mistake(no_leaks, mistake, phrases) -> None:
    """Each mistake loses on every run (three runs: no case depends on luck), by its name,
    and never in more than 3 × WAIT (a case that fails ends its connection first)."""
    import time

    from labcrypto.lab.feedback import WAIT

    wrong = _serve_one(mistake)
    for _ in range(3):
        start = time.perf_counter()
        message = _fails(checks_03_allowlist.check_serve_one, wrong, *phrases)
        assert time.perf_counter() - start < 3 * WAIT + 2, mistake
        assert "section «Exercise: the check inside the handshake»" in message


def test_serve_one_check_ends_a_stuck_server_and_says_so(no_leaks) -> None:
    import time

    from labcrypto.channel import read_frame

    def waits_for_more(sock, server_key, allowlist_path):
        read_frame(sock)  # the hello, then a second frame that never comes
        return read_frame(sock)

    start = time.perf_counter()
    _fails(checks_03_allowlist.check_serve_one, waits_for_more, "the handshake did not finish")
    assert time.perf_counter() - start < 8

    def not_written(sock, server_key, allowlist_path):
        raise NotImplementedError()

    _fails(checks_03_allowlist.check_serve_one, not_written, "not written yet")


def test_serve_one_check_passes_a_right_server_that_is_slow(no_leaks) -> None:
    """A loaded machine slows every step: a right server that takes 0.5 s before each
    answer (far more than a loaded machine adds) keeps its points; no verdict hangs on speed."""
    import time

    right = _serve_one()

    def slow(sock, server_key, allowlist_path):
        time.sleep(0.5)
        return right(sock, server_key, allowlist_path)

    checks_03_allowlist.check_serve_one(slow)


def test_serve_one_check_ends_a_server_that_waits_after_its_refusal(no_leaks) -> None:
    import time

    from labcrypto.channel import read_frame

    right = _serve_one()

    def lingers(sock, server_key, allowlist_path):
        try:
            return right(sock, server_key, allowlist_path)
        except LabCryptoError:
            read_frame(sock)  # waits for a frame that never comes
            raise

    start = time.perf_counter()
    _fails(checks_03_allowlist.check_serve_one, lingers, "did not end within 6 s")
    assert time.perf_counter() - start < 10


def test_hidden_serve_one_uses_the_notebooks_own_list(no_leaks, tmp_path) -> None:
    from labcrypto.allowlist import Allowlist

    people = {name: keys.generate() for name in ("alice", "carol", "mallory")}
    server_key, path = keys.generate(), tmp_path / "allowlist.csv"
    Allowlist(path).add("alice", people["alice"].public_key)
    checks_03_allowlist.hidden_serve_one(_serve_one(), server_key, path, people)
    for mistake in ("after the welcome", "before the proof"):
        with pytest.raises(CheckFailed) as info:
            checks_03_allowlist.hidden_serve_one(_serve_one(mistake), server_key, path, people)
        assert "hidden test" in str(info.value) and "carol" not in str(info.value)


# --- notebook 04 -----------------------------------------------------------------------


def test_pool_timeline_reads_the_servers_events() -> None:
    from labcrypto.server import Event

    events = [
        Event(10.0, "pool", "port 9100 leased (1 of 2 in use)"),
        Event(10.5, "pool", "port 9101 leased (2 of 2 in use)"),
        Event(10.7, "busy", "alice (127.0.0.1:5) turned away, pool busy: no free port"),
        Event(11.0, "pool", "port 9100 returned to the pool"),
        Event(11.2, "join", "bob joined"),
    ]
    intervals, busy = plots.lease_intervals(events, since=9.0)
    assert intervals == [(9100, 10.0, 11.0), (9101, 10.5, None)]
    assert busy == [10.7]
    assert plots.lease_intervals(events, since=10.6) == ([], [10.7])
    fig = plots.pool_timeline(intervals, busy, ports=range(9100, 9103))
    _labelled(fig)
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["9100", "9101", "9102"]


def _reference_follow_handoff(channel, host):
    import json

    from labcrypto.errors import PoolExhausted
    from labcrypto.server import connect

    offer = json.loads(channel.recv(timeout=5))
    if offer["type"] == "busy":
        raise PoolExhausted(offer.get("text", "busy"))
    channel.rebind(connect(host, offer["port"], timeout=5))
    channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
    return json.loads(channel.recv(timeout=5))


def _handoff_to_the_handshake_port(channel, host):
    """Course mistake 10: the client reconnects where it already is, not to the offer's port."""
    import json

    from labcrypto.server import connect

    offer = json.loads(channel.recv(timeout=5))
    channel.rebind(connect(host, channel.stream.getpeername()[1], timeout=5))
    channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
    return json.loads(channel.recv(timeout=5))


def _ticket_before_rebind(channel, host):
    """The ticket sent on the handshake connection, then the move to the data port."""
    import json

    from labcrypto.server import connect

    offer = json.loads(channel.recv(timeout=5))
    channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
    channel.rebind(connect(host, offer["port"], timeout=5))
    return json.loads(channel.recv(timeout=5))


def test_follow_handoff_check(no_leaks) -> None:
    import json

    from labcrypto.server import connect

    checks_04_two_ports.check_follow_handoff(_reference_follow_handoff)

    def plain_ticket(channel, host):
        offer = json.loads(channel.recv(timeout=5))
        sock = connect(host, offer["port"], timeout=5)
        sock.sendall(json.dumps({"type": "ticket", "ticket": offer["ticket"]}).encode())
        channel.rebind(sock)
        return json.loads(channel.recv(timeout=5))

    _fails(checks_04_two_ports.check_follow_handoff, plain_ticket, "inside the encrypted channel")
    message = _fails(checks_04_two_ports.check_follow_handoff,
                     lambda ch, host: json.loads(ch.recv(5)), "returned a message of type 'port'",
                     "the server's offer itself")  # fmt: skip
    assert "returned 'port'" not in message  # it returned a dict, not the word

    def welcome_as_text(channel, host):  # the welcome left as text (shown as a repr of a repr)
        offer = json.loads(channel.recv(timeout=5))
        channel.rebind(connect(host, offer["port"], timeout=5))
        channel.send(json.dumps({"type": "ticket", "ticket": offer["ticket"]}))
        return channel.recv(timeout=5).decode()

    message = _fails(checks_04_two_ports.check_follow_handoff, welcome_as_text,
                     "returned '{\"type\":\"welcome\"", "decode it with json.loads")  # fmt: skip
    assert "\\'" not in message, message

    def ignores_busy(channel, host):
        try:
            return _reference_follow_handoff(channel, host)
        except LabCryptoError:
            return {"type": "busy"}

    _fails(checks_04_two_ports.check_follow_handoff, ignores_busy, "Raise PoolExhausted")
    _fails(checks_04_two_ports.check_follow_handoff, _handoff_to_the_handshake_port,
           "connected to the handshake port", "course mistake 10")  # fmt: skip
    _fails(checks_04_two_ports.check_follow_handoff, _ticket_before_rebind,
           "sent the ticket before channel.rebind(new_socket)")  # fmt: skip

    def remembering(what):
        first_offer = {}

        def follow(channel, host):
            offer = json.loads(channel.recv(timeout=5))
            if offer["type"] == "busy":
                raise LabCryptoError("busy")
            first_offer.setdefault("offer", offer)
            port = first_offer["offer"]["port"] if what == "port" else offer["port"]
            ticket = first_offer["offer"]["ticket"] if what == "ticket" else offer["ticket"]
            channel.rebind(connect(host, port, timeout=5))
            channel.send(json.dumps({"type": "ticket", "ticket": ticket}))
            return json.loads(channel.recv(timeout=5))

        return follow

    _fails(checks_04_two_ports.check_follow_handoff, remembering("ticket"), "reused ticket")
    _fails(
        checks_04_two_ports.check_follow_handoff,
        remembering("port"),
        "ignores the port it was sent",
    )


def _offer_port(*, ticket_check: str = "open_candidate", fresh_ticket: bool = True,
                after_stranger: str = "wait", release_on_timeout: bool = True,
                read_timeout: float | None = 1, guards_read: bool = True):  # fmt: skip
    """The notebook's offer_port, or one of its typical mistakes: ``ticket_check``
    "open_candidate" (right), "none" (the first connection is the client), "decrypts"
    (any frame that decrypts) or "recv" (rebind, then channel.recv: a stranger breaks the
    channel); ``after_stranger`` "wait" (right), "give up" or "keep" (never hangs up on
    it); ``read_timeout`` None: a newcomer's frame is read with no timeout;
    ``guards_read`` False: what read_frame raises is not caught."""
    import hmac
    import secrets
    import time

    from labcrypto.channel import read_frame
    from labcrypto.errors import HandoffFailed

    fixed = secrets.token_hex(32)
    strangers: list[object] = []

    def offer_port(channel, pool, timeout=5.0):
        port, sock = pool.lease()
        ticket = secrets.token_hex(32) if fresh_ticket else fixed
        channel.send(json.dumps({"type": "port", "port": port, "ticket": ticket}))

        def shows_ticket(message):
            try:
                shown = json.loads(message)["ticket"]
            except (ValueError, KeyError, TypeError):
                return False
            return ticket_check == "decrypts" or hmac.compare_digest(
                str(shown).encode(), ticket.encode()
            )

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                break
            conn.settimeout(read_timeout)
            if ticket_check == "none":
                channel.rebind(conn)
                return conn, port, sock
            if ticket_check == "recv":
                channel.rebind(conn)
                if json.loads(channel.recv(timeout=1))["ticket"] == ticket:
                    return conn, port, sock
                conn.close()
                continue
            try:
                frame = read_frame(conn)
            except (OSError, LabCryptoError):
                if not guards_read:
                    raise
                frame = None
            if frame is None or channel.open_candidate(frame, shows_ticket) is None:
                if after_stranger == "keep":
                    strangers.append(conn)  # kept open: the stranger is never hung up on
                    continue
                conn.close()
                if after_stranger == "give up":
                    pool.release(port, sock)
                    raise HandoffFailed("a wrong ticket")
                continue
            channel.rebind(conn)
            return conn, port, sock
        if release_on_timeout:
            pool.release(port, sock)
        raise HandoffFailed(f"nobody came to port {port} with the ticket in time")

    return offer_port


def test_offer_port_check_passes_the_reference() -> None:
    checks_04_two_ports.check_offer_port(_offer_port())
    checks_04_two_ports.hidden_offer_port(_offer_port())


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ({"ticket_check": "none"}, ["random bytes", "took that connection", "open_candidate"]),
        ({"ticket_check": "decrypts"}, ["wrong ticket", "took that connection"]),
        ({"ticket_check": "recv"}, ["the channel was broken", "copy of the counter"]),
        ({"after_stranger": "give up"}, ["used up the session", "keep waiting"]),
        ({"release_on_timeout": False}, ["never went back to the pool", "pool.release"]),
        ({"fresh_ticket": False}, ["the same ticket", "new for every offer"]),
        (
            {"read_timeout": None},
            ["A stranger who connected and sent nothing", "4 s later", "conn.settimeout(1)"],
        ),
        (
            {"after_stranger": "keep"},
            ["A stranger who sent a frame of random bytes", "neither let it in nor hung up"],
        ),
        (
            {"guards_read": False},
            ["A stranger who announced a frame of 4 GB", "FrameTooLarge", "used up the session"],
        ),
    ],
)
def test_offer_port_check_names_each_mistake(mistake, words) -> None:
    """Issue 18 §1: each typical mistake of the server's half fails, its message naming it."""
    _fails(checks_04_two_ports.check_offer_port, _offer_port(**mistake), *words)
    if "ticket_check" in mistake or "after_stranger" in mistake:  # the hidden test's stranger
        with pytest.raises(CheckFailed, match="hidden test"):
            checks_04_two_ports.hidden_offer_port(_offer_port(**mistake))


def test_offer_port_check_names_a_plain_text_offer_and_a_wait_forever() -> None:
    import secrets

    def plain(channel, pool, timeout=5.0):
        port, _sock = pool.lease()
        channel.stream.sendall(json.dumps({"port": port, "ticket": secrets.token_hex(32)}).encode())
        return None

    _fails(checks_04_two_ports.check_offer_port, plain, "no encrypted offer", "channel.send")

    def forever(channel, pool, timeout=5.0):
        port, sock = pool.lease()
        channel.send(json.dumps({"type": "port", "port": port, "ticket": secrets.token_hex(32)}))
        while True:
            conn, _ = sock.accept()
            conn.close()

    _fails(checks_04_two_ports.check_offer_port, forever, "did not return within", "timeout")

    from labcrypto.errors import HandoffFailed

    def returns_none_when_nobody_comes(channel, pool, timeout=5.0):
        try:
            return _offer_port()(channel, pool, timeout)
        except HandoffFailed:
            return None

    message = _fails(checks_04_two_ports.check_offer_port, returns_none_when_nobody_comes,
                     "offer_port returned None; give the port back")  # fmt: skip
    assert "returned returned" not in message


class _BindDecides:
    """A pool with no lock and no list: each lease binds the first port of the range it
    can, so the operating system's bind() decides which thread gets a port (a sleep in the
    window between trying a port and taking it changes nothing)."""

    def __init__(self, first, last, host="127.0.0.1"):
        self.host, self.ports = host, range(first, last + 1)

    def lease(self):
        import socket
        import time

        from labcrypto.errors import PoolExhausted

        for port in self.ports:
            time.sleep(0.001)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((self.host, port))
                sock.listen()
            except OSError:
                sock.close()
                continue
            return port, sock
        raise PoolExhausted("no free port in the pool")

    def release(self, port, sock):
        sock.close()


def test_a_pool_that_lets_bind_decide_needs_no_lock() -> None:
    """Finding 5 of the student trial: a pool without a lock passed every run. This one is
    right (bind() gives a port to one socket only, and a closed port is free again: none
    leased twice, none lost), so the check passes it on every run, and notebook 04 says a
    lock guards a list of free ports, which this pool does not keep."""
    for _ in range(3):
        checks_04_two_ports.check_port_pool(_BindDecides)
        checks_04_two_ports.hidden_port_pool(_BindDecides)


def _pool_class(*, lock: bool = True, close_on_release: bool = True, keeps_busy: bool = True):
    """The notebook's MyPortPool, with its lock or its close() left out, or
    (``keeps_busy=False``) dropping for good a port it could not bind ("skip it" read as
    "throw it away")."""
    import contextlib
    import socket
    import threading

    from labcrypto.errors import PoolExhausted

    class Pool:
        def __init__(self, first, last, host="127.0.0.1"):
            self.host, self.free = host, list(range(first, last + 1))
            self.lock = threading.Lock() if lock else contextlib.nullcontext()

        def lease(self):
            with self.lock:
                for _ in range(len(self.free)):
                    port = self.free.pop(0)
                    sock = socket.socket()
                    try:
                        sock.bind((self.host, port))
                        sock.listen()
                    except OSError:
                        sock.close()
                        if keeps_busy:
                            self.free.append(port)  # held by another program: try it later
                        continue
                    return port, sock
            raise PoolExhausted("none free")

        def release(self, port, sock):
            if close_on_release:
                sock.close()
            with self.lock:
                self.free.append(port)

    return Pool


def test_port_pool_check_catches_a_missing_lock_on_every_run() -> None:
    """Issue 18 §2: the race is forced (two threads in lease() take turns line by
    line), so a pool without a lock fails every time, and the reference passes."""
    for _ in range(5):
        _fails(checks_04_two_ports.check_port_pool, _pool_class(lock=False), "take turns", "Lock")
    checks_04_two_ports.check_port_pool(_pool_class())


def _copy_then_remove_pool():
    """A pool without a lock as a student wrote it: it walks a copy of the free list and
    takes its port with list.remove (caught in 2 of 3 runs before the race was forced
    from the first line on: the second thread, slow to start, found the port gone)."""
    import socket

    from labcrypto.errors import PoolExhausted

    class CopyThenRemove(_pool_class(lock=False)):
        def lease(self):
            for port in list(self.free):
                self.free.remove(port)
                sock = socket.socket()
                try:
                    sock.bind((self.host, port))
                    sock.listen()
                except OSError:
                    sock.close()
                    self.free.append(port)
                    continue
                return port, sock
            raise PoolExhausted("none free")

    return CopyThenRemove


def test_port_pool_check_catches_copy_then_remove_on_every_run() -> None:
    """A grading check gives the same score on every run: this pool loses the forced race
    (ValueError from list.remove) every time, in the check and in its race alone."""
    for _ in range(3):
        _fails(checks_04_two_ports.check_port_pool, _copy_then_remove_pool(), "take turns",
               "list.remove")  # fmt: skip
    for _ in range(10):
        with pytest.raises(CheckFailed, match="take turns"):
            checks_04_two_ports._race(_copy_then_remove_pool())


def _bind_close_bind_pool(*, swallow: bool = False):
    """Course mistake 10 as students write it: test each port with a throwaway socket
    (bind, close), then bind it again for the lease (``swallow``: ignore the second
    bind's error and return the socket anyway)."""
    import socket

    Pool = _pool_class()

    class BindCloseBind(Pool):
        def _is_free(self, port):
            probe = socket.socket()
            try:
                probe.bind((self.host, port))
                return True
            except OSError:
                return False
            finally:
                probe.close()

        def lease(self):
            with self.lock:
                for port in list(self.free):
                    if self._is_free(port):
                        self.free.remove(port)
                        sock = socket.socket()
                        try:
                            sock.bind((self.host, port))
                            sock.listen()
                        except OSError:
                            if not swallow:
                                raise
                        return port, sock
            raise PoolExhausted("none free")

    from labcrypto.errors import PoolExhausted

    return BindCloseBind


def test_port_pool_check_catches_bind_close_bind_on_every_run() -> None:
    """Issue 18 §2: a pool that binds a port, closes it and binds it again used to keep
    its points (the check compared only port numbers). The check's thief takes the
    port in the gap, on every run, whether the second bind's error shows or not."""
    for swallow in (False, True, False):
        message = _fails(
            checks_04_two_ports.check_port_pool,
            _bind_close_bind_pool(swallow=swallow),
            "Bind, close and bind again is a race",
            "course mistake 10",
        )
        assert "another program took it" in message


def test_port_pool_check_wants_the_leased_socket_itself_open_and_listening() -> None:
    """The socket lease() returns must be the one listening on the port, and stay open
    while leased: a closed socket, a socket that is not the listener, a pool that keeps
    one socket and closes it on the next lease each lose the points, each told why."""
    import socket

    Pool = _pool_class()

    class ReturnsClosed(Pool):
        def lease(self):
            port, sock = super().lease()
            sock.close()
            return port, sock

    class ReturnsAnother(Pool):
        def lease(self):
            port, sock = super().lease()
            other = socket.socket()
            other.bind(("127.0.0.1", 0))
            self.kept = [*getattr(self, "kept", []), sock]
            return port, other

    class OneSocketAtATime(Pool):
        last = None

        def lease(self):
            port, sock = super().lease()
            if self.last is not None:
                self.last.close()
            self.last = sock
            return port, sock

    check = checks_04_two_ports.check_port_pool
    _fails(check, ReturnsClosed, "with a closed socket")
    _fails(check, ReturnsAnother, "with a socket bound to")
    _fails(check, OneSocketAtATime, "was closed by later leases")


def test_port_pool_race_gives_a_correct_pool_its_points_when_undecided() -> None:
    """Issue 18 §2: a correct pool once scored 0 in real nbgrader on a loaded machine:
    the forced race ran past its deadline and "neither thread got the port" was
    taken for a failure. A lease that waits on its lock costs one patience, not one per
    line; and a race still undecided at its deadline is no failure."""
    import time

    Pool = _pool_class()

    class ManyLines(Pool):
        def lease(self):
            with self.lock:
                seen = []
                for number in range(200):  # 200 lines or more under the lock
                    seen.append(number)
            return super().lease()

    started = time.monotonic()
    checks_04_two_ports._race(ManyLines)
    assert time.monotonic() - started < checks_04_two_ports.RACE_WAIT

    class Slow(Pool):
        def lease(self):
            with self.lock:
                for _ in range(4):
                    time.sleep(checks_04_two_ports.RACE_WAIT / 3)  # past the deadline
            return super().lease()

    started = time.monotonic()
    checks_04_two_ports._race(Slow)  # undecided: no failure
    assert time.monotonic() - started < checks_04_two_ports.RACE_WAIT + 3


def test_port_pool_race_under_load() -> None:
    """The race decides the same under load: four busy-loop processes (bounded by
    ``timeout``, killed at the end) on this 2-core machine; the reference pool passes
    the race, the two pools without a lock fail it, every run."""
    import subprocess
    import sys

    busy = [
        subprocess.Popen(["timeout", "60", sys.executable, "-c", "while True: pass"])
        for _ in range(4)
    ]
    try:
        for _ in range(5):
            checks_04_two_ports._race(_pool_class())
            with pytest.raises(CheckFailed, match="take turns"):
                checks_04_two_ports._race(_pool_class(lock=False))
            with pytest.raises(CheckFailed, match="take turns"):
                checks_04_two_ports._race(_copy_then_remove_pool())
    finally:
        for process in busy:
            # timeout passes SIGTERM on to its busy loop; kill() would end timeout alone and
            # leave the loop spinning, an orphan, long after the test (found under stress).
            process.terminate()
        for process in busy:
            process.wait(5)


def test_port_pool_check_names_a_release_that_does_not_close() -> None:
    """Issue 18 §2: a pool whose release() forgets sock.close() is told so, not "a port
    got lost"."""
    import socket
    import threading

    from labcrypto.errors import PoolExhausted

    class ReleaseWithoutClose:
        def __init__(self, first, last, host="127.0.0.1"):
            self.host, self.free, self.lock = host, list(range(first, last + 1)), threading.Lock()

        def lease(self):
            with self.lock:
                for _ in range(len(self.free)):
                    port = self.free.pop(0)
                    sock = socket.socket()
                    try:
                        sock.bind((self.host, port))
                        sock.listen()
                    except OSError:
                        sock.close()
                        self.free.append(port)
                        continue
                    return port, sock
            raise PoolExhausted("none free")

        def release(self, port, sock):
            with self.lock:
                self.free.append(port)

    check = checks_04_two_ports.check_port_pool
    message = _fails(check, ReleaseWithoutClose, "left its socket open")
    assert "a port got lost" not in message


def test_port_pool_check() -> None:
    import socket
    import threading

    from labcrypto.errors import PoolExhausted

    class Good:
        def __init__(self, first, last, host="127.0.0.1"):
            self.host, self.free, self.lock = host, list(range(first, last + 1)), threading.Lock()

        def lease(self):
            with self.lock:
                for _ in range(len(self.free)):
                    port = self.free.pop(0)
                    sock = socket.socket()
                    try:
                        sock.bind((self.host, port))
                        sock.listen()
                    except OSError:
                        sock.close()
                        self.free.append(port)
                        continue
                    return port, sock
            raise PoolExhausted("full")

        def release(self, port, sock):
            sock.close()
            with self.lock:
                self.free.append(port)

    checks_04_two_ports.check_port_pool(Good)

    class FirstEvenIfBusy(Good):
        def lease(self):
            with self.lock:
                if not self.free:
                    raise PoolExhausted("full")
                port = self.free.pop(0)
                sock = socket.socket()
                try:
                    sock.bind((self.host, port))
                    sock.listen()
                except OSError:
                    pass
                return port, sock

    _fails(checks_04_two_ports.check_port_pool, FirstEvenIfBusy, "mistake 10")

    class LosesPorts(Good):
        def release(self, port, sock):
            sock.close()

    _fails(checks_04_two_ports.check_port_pool, LosesPorts, "lost")

    for _ in range(3):
        _fails(checks_04_two_ports.check_port_pool, _pool_class(keeps_busy=False),
               "never leases it again", "keep it in the pool")  # fmt: skip


# --- notebook 05 -----------------------------------------------------------------------


def test_fingerprint_grid_draws_one_row_per_request() -> None:
    sessions = [os.urandom(8).hex() for _ in range(5)]
    fig = plots.fingerprint_grid(sessions, static=os.urandom(8).hex())
    _labelled(fig)
    fig.canvas.draw()
    assert len(fig.axes) == 2
    assert fig.axes[0].images[0].get_array().shape == (5, 8)
    assert fig.axes[0].get_xlabel() == "byte of the fingerprint"
    # 05 §2 draws each request's ephemeral Y instead, and says so under the panel
    ys = [os.urandom(16).hex() for _ in range(3)]
    fig = plots.fingerprint_grid(ys, title="Y = g^y of each request", xlabel="byte of Y")
    _labelled(fig)
    assert fig.axes[0].get_xlabel() == "byte of Y"
    assert fig.axes[0].images[0].get_array().shape == (3, 16)


def test_safe_path_check() -> None:
    def good(home, requested):
        home = Path(home).resolve()
        target = (home / requested.lstrip("/")).resolve()
        if not target.is_relative_to(home):
            raise PermissionError(requested)
        return target

    checks_05_ftp.check_safe_path(good)
    # "Return the real path": a str names it as well as a Path does (the task asks no type).
    checks_05_ftp.check_safe_path(lambda home, requested: str(good(home, requested)))

    def value_error(home, requested):  # the task asks for PermissionError
        try:
            return good(home, requested)
        except PermissionError:
            raise ValueError(requested) from None

    _fails(checks_05_ftp.check_safe_path, value_error, "raised ValueError(",
           "the task asks for PermissionError")  # fmt: skip
    with pytest.raises(CheckFailed, match="A hidden test"):
        checks_05_ftp.hidden_safe_path(value_error, Path(__file__).parent)

    def prefix(home, requested):
        target = os.path.realpath(os.path.join(home, requested.lstrip("/")))
        if not target.startswith(str(home)):
            raise PermissionError(requested)
        return target

    _fails(checks_05_ftp.check_safe_path, prefix, "alice2", "mistake 13")

    def no_links(home, requested):
        target = Path(os.path.normpath(Path(home) / requested.lstrip("/")))
        if not target.is_relative_to(home):
            raise PermissionError(requested)
        return target

    _fails(checks_05_ftp.check_safe_path, no_links, "symbolic link")
    message = _fails(
        checks_05_ftp.check_safe_path, lambda home, requested: Path(home) / requested, "leading '/'"
    )
    # Issue 18 §2: the message reads right ("it should be the home folder itself").
    assert "returned PosixPath('/'); it should be the home folder itself." in message
    assert "the place" not in message

    def keeps_the_slash_deeper(home, requested):
        if requested == "/":
            return Path(home)
        target = Path(os.path.normpath(Path(home) / requested))
        return target

    message = _fails(checks_05_ftp.check_safe_path, keeps_the_slash_deeper, "leading '/'")
    assert "it should be home / 'docs/a.txt'." in message

    def joins_the_slash_then_checks(home, requested):  # home / "/" is "/": refused
        home = Path(home).resolve()
        target = (home / requested).resolve()
        if not target.is_relative_to(home):
            raise PermissionError(requested)
        return target

    message = _fails(checks_05_ftp.check_safe_path, joins_the_slash_then_checks,
                     "safe_path(home, '/') raised PermissionError", "leading '/'")  # fmt: skip
    assert "it leads to the home folder itself." in message, message


def test_du_check(no_leaks) -> None:
    def good(client, path="/"):
        total = 0
        for entry in client.ls(path):
            if entry.kind == "file":
                total += entry.size
            elif entry.kind == "dir":
                total += good(client, path.rstrip("/") + "/" + entry.name)
        return total

    checks_05_ftp.check_du(good)
    _fails(
        checks_05_ftp.check_du,
        lambda client, path="/": sum(e.size for e in client.ls(path)),
        "recurse",
    )

    def follows_links(client, path="/"):
        total = 0
        for entry in client.ls(path):
            sub = path.rstrip("/") + "/" + entry.name
            total += entry.size if entry.kind == "file" else follows_links(client, sub)
        return total

    _fails(checks_05_ftp.check_du, follows_links, "kind 'file'")

    def moves(client, path="/"):
        client.cd("/docs")
        return good(client, path)

    _fails(checks_05_ftp.check_du, moves, "do not cd")

    def walks_with_cd(client, path="/"):  # issue 18 §2: a hint, not a bare FileServiceError
        client.cd(path)
        total = 0
        for entry in client.ls():
            if entry.kind == "file":
                total += entry.size
            elif entry.kind == "dir":
                total += walks_with_cd(client, entry.name)
        client.cd("..")
        return total

    _fails(checks_05_ftp.check_du, walks_with_cd, "Your du calls cd", "pass full paths to ls")

    def recurses_on_the_name(client, path="/"):
        total = 0
        for entry in client.ls(path):
            if entry.kind == "file":
                total += entry.size
            elif entry.kind == "dir":
                total += recurses_on_the_name(client, entry.name)
        return total

    _fails(checks_05_ftp.check_du, recurses_on_the_name, "only its last part", "rstrip('/')")


def test_du_check_wants_a_number_and_names_the_local_disk(no_leaks) -> None:
    """A du that returns the sizes as a nested list is told to return a number (its message
    once ended in a stray line about sub-paths); one that walks this machine's disk with
    os.walk is told the files are on the server."""

    def as_a_list(client, path="/"):
        found = []
        for entry in client.ls(path):
            if entry.kind == "file":
                found.append(entry.size)
            elif entry.kind == "dir":
                found.append(as_a_list(client, path.rstrip("/") + "/" + entry.name))
        return found

    message = _fails(checks_05_ftp.check_du, as_a_list, "return the total, a number of bytes")
    assert "\n " not in message, message

    def local_disk(client, path="/"):
        return sum(len(files) for _, _, files in os.walk(Path(__file__).parent))

    _fails(checks_05_ftp.check_du, local_disk, "the disk of this machine (os.walk(…))",
           "client.ls(path)")  # fmt: skip
    message = _fails(checks_05_ftp.check_du, lambda client, path="/": 7, "hold 8482 bytes")
    assert "kind 'file'" in message and "this machine" not in message, message


# --- the shape of the teaching layer ------------------------------------------------------


REPO = Path(__file__).resolve().parent.parent


def _listed_mistakes(page: Path) -> set[int]:
    """The numbers of the mistakes a MISTAKES.md lists ("1. **…**")."""
    import re

    return {int(n) for n in re.findall(r"^(\d+)\. \*\*", page.read_text("utf-8"), re.M)}


def test_every_cited_course_mistake_is_on_the_published_list() -> None:
    """Issue 18 §3: "course mistake N" is cited by the checks and notebooks; the list is
    published next to the notebooks, in English and Russian, with every N cited."""
    import re

    cited: set[int] = set()
    for path in [*REPO.glob("labcrypto/**/*.py"), *REPO.glob("notebooks/src/*.py")]:
        text = path.read_text("utf-8")
        cited |= {int(n) for n in re.findall(r"course mistake (\d+)", text)}
        cited |= {int(n) for n in re.findall(r"типичная ошибка № ?(\d+)", text)}
    assert cited
    for page in (REPO / "notebooks" / "MISTAKES.md", REPO / "notebooks" / "ru" / "MISTAKES.md"):
        assert cited <= _listed_mistakes(page), (page, cited - _listed_mistakes(page))


def test_a_message_that_cites_a_course_mistake_points_to_the_list(monkeypatch) -> None:
    def unchecked(grp, a, peer):
        return pow(peer, a, grp.p)

    message = _fails(checks_01_keys.check_shared_secret, unchecked, "course mistake 1")
    assert "→ Course mistake 1 and its fix: MISTAKES.md, next to this notebook." in message
    monkeypatch.setenv("LABCRYPTO_LANG", "ru")
    message = _fails(checks_01_keys.check_shared_secret, unchecked)
    assert "Типичная ошибка № 1 и как её исправить: MISTAKES.md" in message
    without = _fails(checks_02b_chat.check_break_caesar, lambda ct: ct, "без изменений")
    assert "MISTAKES.md" not in without  # only messages that cite a mistake


def test_checks_modules_export_only_checks_and_hidden_tests() -> None:
    """The harness (threads, peers, pairs) stays out of what a notebook imports."""
    modules = [checks_01_keys, checks_02_exchange, checks_02b_chat, checks_03_allowlist]
    modules += [checks_04_two_ports, checks_05_ftp]
    for module in modules:
        names = set(module.__all__)
        assert names and all(n.startswith(("check_", "hidden_")) for n in names), names
        checks = {n for n in names if n.startswith("check_")}
        assert all(isinstance(getattr(module, n), Check) for n in checks), module.__name__
        assert len(names) == 2 * len(checks), f"{module.__name__}: a hidden test per check"


def test_the_my_pool_room_cell_names_the_students_own_pool(tmp_path, no_leaks) -> None:
    """04 "Your pool in a real server" shows which pool the room used: it showed
    'PairPool', the package's wrapper, where the student looks for 'MyPortPool'."""
    import nbformat

    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient, ChatServer
    from labcrypto.groups import FFDHE2048
    from labcrypto.ports import PortPool

    for edition in ("notebooks", "notebooks/ru"):
        nb = nbformat.read(REPO / edition / "04_two_ports.ipynb", as_version=4)
        (cell,) = [c for c in nb.cells if c.get("id") == "my-pool-room-run"]
        *body, last = cell.source.rstrip().splitlines()
        server_key, bob = keys.generate(FFDHE2048), keys.generate(FFDHE2048)
        allowlist = Allowlist(tmp_path / f"{edition.replace('/', '-')}.csv")
        allowlist.add("bob", bob.public_key)
        space = {"PortPool": PortPool, "ChatServer": ChatServer, "ChatClient": ChatClient,
                 "MyPortPool": _pool_class(), "server_key": server_key,
                 "allowlist": allowlist, "people": {"bob": bob}}  # fmt: skip
        try:
            exec("\n".join(body), space)
            shown, moved_to, _ = eval(last, space)
        finally:
            if "my_room" in space:
                space["my_room"].stop()
        assert shown == "Pool", shown  # the class _pool_class() makes: the student's own
        assert space["spare"].first <= moved_to <= space["spare"].last
