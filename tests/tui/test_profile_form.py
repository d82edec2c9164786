"""The editor's profile is built from the field table (rules.clients.fields): every declared
field has its widget, in its section, and every tick its toggle key."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select, TextArea

from rules.clients.fields import PROFILE_FIELDS, SECTIONS
from tests.tui.test_staff_app import SIZE, login, make_clients, settle
from tui.app import StaffApp
from tui.screens.client_editor import ClientEditor

WIDGETS = {
    "tick": Checkbox,
    "choice": Select,
    "notes": TextArea,
    "text": Input,
    "email": Input,
    "phone": Input,
    "country": Input,
    "state": Input,
}


async def test_every_declared_field_is_on_the_profile_in_its_section(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen
        assert isinstance(editor, ClientEditor)
        order = list(editor.query_one("#profile-form").query("*"))
        headings = {str(w.render()): order.index(w) for w in order if w.has_class("section")}
        assert [h for h in headings if h in SECTIONS] == list(SECTIONS)
        for spec in PROFILE_FIELDS:
            widget = editor.query_one(f"#f-{spec.name}")
            assert isinstance(widget, WIDGETS[spec.kind]), spec.name
            later = [i for h, i in headings.items() if i > headings[spec.section]]
            assert headings[spec.section] < order.index(widget) < min(later, default=10**6)
        keys = {binding.key for binding in editor.BINDINGS if not isinstance(binding, tuple)}
        assert {f.key for f in PROFILE_FIELDS if f.kind == "tick"} <= keys
