"""The notice rule's SQL due-date windows agree with the plain definition of the latest stage."""

from __future__ import annotations

import datetime as dt

import pytest

from rules.billing.automation import RunContext
from rules.billing.notices import latest_stage, stage_windows
from store.settings import Settings

TODAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize(
    "reminder,overdue",
    [
        (7, [1, 2, 3]),
        (0, [1, 2, 3]),
        (7, [0, 5, 0]),
        (3, [3, 3, 10]),
        (14, [40, 2, 1]),
        (0, [0, 0, 0]),
    ],
)
def test_windows_match_latest_stage(reminder: int, overdue: list[int]) -> None:
    ctx = RunContext(TODAY, Settings(payment_reminder_days=reminder, overdue_notice_days=overdue))
    windows = stage_windows(ctx)
    for k in range(-60, 120):
        due = TODAY - dt.timedelta(days=k)
        hits = [
            (stage, due + dt.timedelta(days=offset))
            for stage, offset, first, last in windows
            if first <= due <= last
        ]
        expected = latest_stage(due, ctx)
        assert hits == ([expected] if expected else []), (k, hits, expected)
