"""The chat panel's send paths (Enter/focus change, then the Send button)."""

from __future__ import annotations

from labcrypto.widgets import ChatPanel


def failing(text: str) -> None:
    raise ConnectionError("server gone")


def test_focus_change_then_click_sends_once():
    sent: list[str] = []
    panel = ChatPanel(sent.append)
    panel.box.value = "hello"  # what the browser does when the box loses focus
    panel._on_button(panel.button)  # then the click arrives
    assert sent == ["hello"]
    assert panel.box.value == ""


def test_a_failed_send_is_reported_once_and_keeps_the_text():
    panel = ChatPanel(failing)
    panel.box.value = "hello"
    panel._on_button(panel.button)
    errors = [line for line in panel.lines if line.startswith("error")]
    assert len(errors) == 1 and "server gone" in errors[0]
    assert panel.box.value == "hello"  # nothing typed is lost
    panel._on_button(panel.button)  # a second click is a real retry
    assert len([line for line in panel.lines if line.startswith("error")]) == 2


def test_the_button_alone_sends_and_the_log_scrolls():
    sent: list[str] = []
    panel = ChatPanel(sent.append)
    panel.box.unobserve(panel._on_enter, names="value")
    panel.box.value = "typed"
    panel.box.observe(panel._on_enter, names="value")
    panel._on_button(panel.button)
    assert sent == ["typed"]
    assert panel.log.layout.max_height == "300px" and panel.log.layout.overflow == "auto"
