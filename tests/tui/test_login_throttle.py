"""Unthrottled logins, as staff meet them on the login screen: a failure is audited with
the SSH client's address, and after repeated failures the screen says how long to wait
at once (the rule refuses; nothing sleeps on the event loop)."""

from __future__ import annotations

import datetime as dt

import pytest
from textual.widgets import Static

from rules.accounts.staff import LoginFailed, authenticate
from store.models import AuditLog, utcnow
from tests.conftest import STAFF_PASSWORD
from tests.tui.test_staff_app import SIZE, login
from tui.app import StaffApp
from tui.screens.login import LoginScreen


async def test_unthrottled_login_screen_refuses_and_audits_the_address(
    admin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 52311 10.0.0.2 22")
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, password="not the password")
        failed = AuditLog.get(AuditLog.action == "login_failed")
        assert (failed.address, failed.actor_name) == ("198.51.100.7", "admin")
        # Seven more failures in another session, the last one now: it waits 32 s.
        for k in range(6, -1, -1):
            with pytest.raises(LoginFailed, match="invalid"):
                authenticate("admin", "still not it", now=utcnow() - dt.timedelta(hours=k))
        await login(pilot)  # the right password, too soon
        error = str(app.screen.query_one("#login-error", Static).render())
        assert error.startswith("Too many attempts, try again in ") and error.endswith(" s")
        assert 25 <= int(error.split()[-2]) <= 32
        assert isinstance(app.screen, LoginScreen) and app.actor is None
        refused = AuditLog.get(AuditLog.action == "login_refused")
        assert refused.address == "198.51.100.7"
        rows = AuditLog.select()
        assert not any(STAFF_PASSWORD in (r.new_value + r.old_value) for r in rows)
