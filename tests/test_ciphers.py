"""Ciphers: the toy Caesar shift, AES-256-GCM with counter nonces, HKDF."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labcrypto import ciphers
from labcrypto.errors import DecryptionFailed


@given(st.text(), st.integers(min_value=-(2**40), max_value=2**40))
def test_caesar_text_round_trips_any_unicode(text, shift):
    encrypted = ciphers.caesar_text(shift, text)
    assert ciphers.caesar_text(-shift, encrypted) == text
    encrypted.encode("utf-8")  # never produces a lone surrogate


def test_caesar_text_shifts_letters_like_the_course():
    assert ciphers.caesar_text(3, "abc") == "def"
    assert ciphers.caesar_text(1, "\ud7ff") == "\ue000"  # skips the surrogate block


@given(st.binary(), st.integers(min_value=0, max_value=2**2048))
def test_caesar_bytes_round_trip(data, key):
    cipher = ciphers.CaesarCipher(key)
    assert cipher.open(cipher.seal(data)) == data


def test_caesar_has_only_256_keys_and_no_integrity():
    assert ciphers.CaesarCipher(3).seal(b"abc") == ciphers.CaesarCipher(3 + 256).seal(b"abc")
    # Any bytes "decrypt": tampering goes unnoticed.
    assert ciphers.CaesarCipher(3).open(b"\x00\x01") == bytes([253, 254])


def _pair() -> tuple[ciphers.AeadCipher, ciphers.AeadCipher]:
    key = os.urandom(32)
    return ciphers.AeadCipher(key), ciphers.AeadCipher(key)


@given(st.lists(st.binary(max_size=2000), max_size=10))
def test_aead_round_trips_a_sequence_of_messages(messages):
    sender, receiver = _pair()
    for message in messages:
        sealed = sender.seal(message)
        assert len(sealed) == len(message) + ciphers.TAG_SIZE
        assert receiver.open(sealed) == message


def test_aead_detects_every_single_bit_flip():
    sender, _ = _pair()
    key_copy = sender._aead  # the same key, fresh receivers below
    sealed = sender.seal(b"attack at dawn")
    for bit in range(len(sealed) * 8):
        flipped = bytearray(sealed)
        flipped[bit // 8] ^= 1 << (bit % 8)
        receiver = ciphers.AeadCipher.__new__(ciphers.AeadCipher)
        receiver._aead, receiver.counter = key_copy, 0
        with pytest.raises(DecryptionFailed, match="tampered"):
            receiver.open(bytes(flipped))


def test_aead_detects_replay_and_reordering():
    sender, receiver = _pair()
    first, second = sender.seal(b"one"), sender.seal(b"two")
    assert receiver.open(first) == b"one"
    with pytest.raises(DecryptionFailed):
        receiver.open(first)  # replayed

    sender, receiver = _pair()
    first, second = sender.seal(b"one"), sender.seal(b"two")
    with pytest.raises(DecryptionFailed):
        receiver.open(second)  # reordered


def test_aead_with_the_wrong_key_fails():
    sealed = ciphers.AeadCipher(os.urandom(32)).seal(b"hello")
    with pytest.raises(DecryptionFailed):
        ciphers.AeadCipher(os.urandom(32)).open(sealed)


def test_the_same_message_never_encrypts_the_same_way_twice():
    sender, _ = _pair()
    assert sender.seal(b"same") != sender.seal(b"same")


def test_aead_needs_a_256_bit_key():
    with pytest.raises(ValueError, match="32-byte"):
        ciphers.AeadCipher(b"short")


def test_session_keys_depend_on_every_input():
    base = dict(
        secrets=[b"\x01" * 256], client_nonce=b"c" * 32, server_nonce=b"s" * 32,
        transcript_hash=b"t" * 32,
    )
    keys = ciphers.derive_session_keys(**base)
    parts = [keys.client_to_server, keys.server_to_client, keys.client_confirm,
             keys.server_confirm]
    assert len(set(parts)) == 4 and all(len(p) == 32 for p in parts)
    assert ciphers.derive_session_keys(**base) == keys  # deterministic
    for name, other in [
        ("secrets", [b"\x02" * 256]), ("client_nonce", b"C" * 32),
        ("server_nonce", b"S" * 32), ("transcript_hash", b"T" * 32),
    ]:
        changed = ciphers.derive_session_keys(**{**base, name: other})
        assert changed.client_to_server != keys.client_to_server, name
        assert changed.fingerprint != keys.fingerprint, name
