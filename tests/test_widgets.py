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


def test_the_chat_panel_and_the_room_call_alice_by_one_name(tmp_path, no_leaks):
    """02b (issue 18 §4): the panel said "chat as 0f6261…" while the server greeted "Alice".
    The panel's title, the lines the room delivers and a greeting made from ``client.name``
    all carry the one name the room gave her: the allowlist's name, or without an allowlist
    (02b) her key's fingerprint — never a name the notebook made up."""
    from labcrypto import keys
    from labcrypto.allowlist import Allowlist
    from labcrypto.chat import ChatClient, ChatServer

    server_key, alice_key = keys.generate(), keys.generate()
    named = Allowlist(tmp_path / "allowlist.csv", alice_key.group)
    named.add("alice", alice_key.public_key)
    for allowlist, expected in ((None, alice_key.fingerprint), (named, "alice")):
        room = ChatServer(server_key, allowlist, port=0, name="one-name").start()
        try:
            alice = ChatClient.connect(
                *room.address, alice_key, server_key=server_key.public_key, timeout=5.0
            )
            with alice:
                panel = ChatPanel.for_client(alice)
                assert alice.name == expected
                assert expected in panel.title.value
                panel.submit("hello")
                room.say(f"welcome, {alice.name}")
                lines = [f"{m.sender}: {m.text}" for m in alice.iter_messages(timeout=2.0)]
                assert f"{expected}: hello" in lines and f"server: welcome, {expected}" in lines
        finally:
            room.stop()


def test_no_notebook_greets_a_member_by_a_name_the_room_does_not_use():
    """The regression of the test above in the notebooks: every ``room.say(...)`` that names
    someone of the cast builds the name from the client (``alice.name``), not a literal."""
    import ast
    from pathlib import Path

    cast = ("alice", "bob", "carol", "dave", "eve", "mallory")
    sources = sorted((Path(__file__).parent.parent / "notebooks" / "src").glob("*.py"))
    said = 0
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "say":
                said += 1
                literals = [
                    part.value.lower()
                    for arg in node.args
                    for part in ast.walk(arg)
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                ]
                named = [n for n in cast for text in literals if n in text.split(", ")[-1]]
                assert not named, f"{source.name}:{node.lineno} greets {named} by a literal name"
    assert said, "no notebook calls room.say: update this test"
