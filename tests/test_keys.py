"""Key pairs and their text files (task 1)."""

from __future__ import annotations

import os
import stat

import pytest

from labcrypto import groups, keys
from labcrypto.errors import KeyFileError


def test_generate_makes_matching_fresh_pairs():
    a, b = keys.generate(), keys.generate()
    for pair in (a, b):
        assert pow(2, pair.private, groups.FFDHE2048.p) == pair.public
    assert a.private != b.private


def test_both_sides_compute_the_same_shared_secret(secure_keys):
    alice, bob = secure_keys("alice"), secure_keys("bob")
    k1 = alice.shared_secret(bob.public_key)
    assert k1 == bob.shared_secret(alice.public_key) == bob.shared_secret(alice.public)
    assert k1 not in (0, 1, groups.FFDHE2048.p - 1)


def test_repr_never_shows_the_private_number(secure_keys):
    pair = secure_keys("alice")
    for text in (repr(pair), str(pair)):
        assert format(pair.private, "x") not in text and str(pair.private) not in text
        assert pair.fingerprint in text


def test_save_and_load_round_trip(tmp_path):
    pair = keys.generate()
    key_path, pub_path = keys.save(pair, "alice", tmp_path)
    assert keys.load("alice", tmp_path) == pair
    assert keys.load_public(pub_path) == pair.public_key
    text = key_path.read_text()
    assert "group: ffdhe2048" in text and f"private: {pair.private:#x}" in text
    words = pub_path.read_text().split()
    assert words == ["labcrypto-dh1", "ffdhe2048", f"{pair.public:#x}", "alice"]


def test_private_key_file_is_only_readable_by_its_owner(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        key_path, pub_path = keys.save(keys.generate(groups.TOY), "alice", tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub_path.stat().st_mode) & 0o444 == 0o444


def test_save_refuses_to_overwrite(tmp_path):
    first = keys.generate(groups.TOY)
    keys.save(first, "alice", tmp_path)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        keys.save(keys.generate(groups.TOY), "alice", tmp_path)
    assert keys.load("alice", tmp_path) == first
    second = keys.generate()
    keys.save(second, "alice", tmp_path, overwrite=True)
    assert keys.load("alice", tmp_path) == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.key", "alice.pub"]


def test_load_or_create_reuses_the_key_between_runs(tmp_path):
    first = keys.load_or_create("bob", tmp_path)
    mtime = (tmp_path / "bob.key").stat().st_mtime_ns
    again = keys.load_or_create("bob", tmp_path)
    assert again == first
    assert (tmp_path / "bob.key").stat().st_mtime_ns == mtime


def test_load_or_create_rewrites_a_lost_pub_but_never_a_lost_key(tmp_path):
    pair = keys.load_or_create("bob", tmp_path)
    (tmp_path / "bob.pub").unlink()
    assert keys.load_or_create("bob", tmp_path) == pair
    assert keys.load_public(tmp_path / "bob.pub") == pair.public_key
    (tmp_path / "bob.key").unlink()
    with pytest.raises(KeyFileError, match="private key is lost"):
        keys.load_or_create("bob", tmp_path)


def test_load_or_create_refuses_a_key_of_another_group(tmp_path):
    keys.load_or_create("carol", tmp_path, group=groups.TOY)
    with pytest.raises(KeyFileError, match="toy23"):
        keys.load_or_create("carol", tmp_path, group=groups.FFDHE2048)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t[: len(t) // 2], "missing field|not a number|does not match"),
        (lambda t: t.replace("private: 0x", "private: 0xzz"), "not a number"),
        (lambda t: t.replace("group: ffdhe2048", "group: nope"), "unknown group"),
        (lambda t: t.replace("version: 1", "version: 7"), "version"),
        (lambda t: "", "missing field"),
        (lambda t: t.replace("public: 0x", "public: 0x1"), "does not match"),
        (lambda t: t + "garbage line without colon\n", "expected 'field: value'"),
    ],
    ids=["truncated", "bad-number", "bad-group", "bad-version", "empty", "mismatch", "junk"],
)
def test_corrupt_key_files_raise_a_clear_error_naming_the_file(tmp_path, damage, message):
    key_path, _ = keys.save(keys.generate(), "dave", tmp_path)
    key_path.write_text(damage(key_path.read_text()))
    with pytest.raises(KeyFileError, match=message) as info:
        keys.load("dave", tmp_path)
    assert "dave.key" in str(info.value)


def test_a_pub_file_from_another_key_is_detected(tmp_path):
    keys.save(keys.generate(), "erin", tmp_path)
    other = keys.generate()
    (tmp_path / "erin.pub").write_text(other.public_key.to_text("erin") + "\n")
    with pytest.raises(KeyFileError, match="mixed up"):
        keys.load("erin", tmp_path)


def test_non_utf8_and_missing_files(tmp_path):
    (tmp_path / "x.key").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(KeyFileError, match=r"x\.key"):
        keys.load("x", tmp_path)
    with pytest.raises(KeyFileError, match="no such"):
        keys.load("nobody", tmp_path)
    with pytest.raises(KeyFileError, match="empty"):
        (tmp_path / "e.pub").write_text("# only a comment\n")
        keys.load_public(tmp_path / "e.pub")


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "x" * 65, "-rf", "a b"])
def test_key_names_cannot_leave_the_folder(tmp_path, name):
    with pytest.raises(ValueError, match="not allowed"):
        keys.key_paths(name, tmp_path)


def test_one_public_key_spelled_many_ways_is_one_key(secure_keys):
    key = secure_keys("alice").public_key
    hex_digits = f"{key.value:x}"
    spellings = [
        f"labcrypto-dh1 ffdhe2048 0x{hex_digits}",
        f"LABCRYPTO-DH1 FFDHE2048 0X{hex_digits.upper()}",
        f"labcrypto-dh1   ffdhe2048   0x0000{hex_digits}   a comment",
        f"labcrypto-dh1 ffdhe2048 {key.value}",
    ]
    assert {keys.PublicKey.from_text(s) for s in spellings} == {key}
    assert len({keys.PublicKey.from_text(s).fingerprint for s in spellings}) == 1


def test_parse_number_refuses_ambiguous_hex():
    assert keys.parse_number("0x00ff") == keys.parse_number("255") == 255
    with pytest.raises(ValueError, match="0x prefix"):
        keys.parse_number("ff")
    with pytest.raises(ValueError, match="not a number"):
        keys.parse_number("12g")


def test_fingerprints_differ_between_keys_and_groups():
    fps = {keys.generate().fingerprint for _ in range(20)}
    assert len(fps) == 20 and all(len(f) == len("SHA256:") + 43 for f in fps)
