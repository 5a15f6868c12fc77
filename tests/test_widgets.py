"""The chat panel's send paths (Enter/focus change, then the Send button)."""

from __future__ import annotations

from labcrypto.lab.widgets import ChatPanel


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


def test_kernel_status_lists_servers_with_their_ports_and_stops_them(no_leaks):
    from labcrypto import server
    from labcrypto.lab import widgets
    from labcrypto.ports import PortPool

    with PortPool.reserve(3) as pool:
        demo = server.ThreadedServer(port=0, name="status-demo")
        demo.pool = pool  # a chat server keeps its pool here
        demo.start()
        lease = pool.lease()
        rows = server.status()
        assert [row["server"] for row in rows] == ["status-demo"]
        assert rows[0]["leased ports"] == [lease.port] and rows[0]["threads"] == 1
        panel = widgets.kernel_status()
        shown, button = panel.children
        assert "status-demo" in shown.value
        button.click()
        assert not demo.running and "no server is running" in shown.value
        lease.release()
