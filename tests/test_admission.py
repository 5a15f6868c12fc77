"""labcrypto.admission: the per-address rules of a server's door, counted without a network."""

from __future__ import annotations

import pytest

from labcrypto.admission import Admission, AdmissionRules


def test_each_source_has_its_own_cap_and_says_busy_in_words() -> None:
    door = Admission(AdmissionRules(max_per_source=2))
    assert door.admit("10.0.0.1") is None
    assert door.admit("10.0.0.1") is None
    refusal = door.admit("10.0.0.1")
    assert refusal is not None and "busy" in refusal and "10.0.0.1" in refusal
    assert door.admit("10.0.0.2") is None  # another address is not affected
    door.finished("10.0.0.1", True)
    assert door.admit("10.0.0.1") is None  # a finished handshake frees its place
    assert door.waiting("10.0.0.1") == 2


def test_failures_past_the_free_ones_slow_the_source_down_doubling_to_a_limit() -> None:
    rules = AdmissionRules(free_failures=3, first_pause=0.5, longest_pause=2.0)
    door = Admission(rules)
    pauses = []
    for _ in range(7):
        assert door.admit("10.0.0.9") is None
        door.finished("10.0.0.9", False)
        pauses.append(door.pause_for("10.0.0.9"))
    assert pauses == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert door.pause_for("10.0.0.8") == 0.0
    assert door.admit("10.0.0.9") is None  # slowed, never refused for failing
    door.finished("10.0.0.9", True)  # a success: this address is not guessing keys
    assert door.pause_for("10.0.0.9") == 0.0


def test_a_handshake_without_a_verdict_is_no_failure() -> None:
    door = Admission(AdmissionRules(free_failures=1))
    for _ in range(5):
        assert door.admit("10.0.0.3") is None
        door.finished("10.0.0.3", None)  # e.g. the server was stopping
    assert door.pause_for("10.0.0.3") == 0.0 and door.waiting("10.0.0.3") == 0


@pytest.mark.parametrize("rules", [AdmissionRules(max_per_source=None, free_failures=None)])
def test_none_turns_each_rule_off(rules: AdmissionRules) -> None:
    door = Admission(rules)
    for _ in range(100):
        assert door.admit("10.0.0.4") is None
    for _ in range(100):
        door.finished("10.0.0.4", False)
    assert door.pause_for("10.0.0.4") == 0.0


def test_held_per_key_counts_up_to_the_limit_and_gives_back() -> None:
    from labcrypto.admission import HeldPerKey

    held = HeldPerKey()
    assert [held.take("bob", 2) for _ in range(3)] == [True, True, False]
    assert held.take("alice", 2) and held.held("bob") == 2  # each key its own count
    held.give_back("bob")
    assert held.take("bob", 2) and not held.take("bob", 2)
    assert held.take("bob", None)  # None: no limit
    for _ in range(3):
        held.give_back("bob")
    assert held.held("bob") == 0
