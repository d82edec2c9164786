"""Automation: recent cron runs, today's dry-run plan, and running the cron now."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from rules.billing.automation import business_date
from rules.billing.cron import (
    RULE_NAMES,
    CronSummary,
    daily_health,
    flush_and_finish,
    recent_runs,
    run_rules,
)
from store.locks import AlreadyRunning, LockUnavailable, cron_lock
from store.models import utcnow
from store.settings import load_settings

PLAN_ROWS = 1000


class AutomationScreen(Screen[None]):
    BINDINGS = [
        Binding("p", "plan", "Dry-run plan for today", id="automation.plan"),
        Binding("r", "run", "Run the cron now", id="automation.run"),
        Binding("escape", "app.pop_screen", "Back", id="automation.back"),
    ]

    class Progress(Message):
        def __init__(self, rule: str) -> None:
            super().__init__()
            self.rule = rule

    class Finished(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Planned(Message):
        def __init__(self, summary: CronSummary) -> None:
            super().__init__()
            self.summary = summary

    def __init__(self, flush: Callable[[], Any] | None = None) -> None:
        """``flush`` delivers the outbox after a run (the app's mail configuration)."""
        super().__init__()
        self.flush = flush

    def compose(self) -> ComposeResult:
        yield Static(
            "Automation · p dry-run plan for today · r run the cron now", id="editor-title"
        )
        yield Static("Recent runs", classes="section")
        yield DataTable(id="runs", cursor_type="row")
        yield Static("", id="automation-health", markup=False)
        yield ProgressBar(total=len(RULE_NAMES), id="cron-progress", show_eta=False)
        yield Static("", id="automation-status", markup=False)
        yield Static("Plan", classes="section")
        yield DataTable(id="plan", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).add_columns(
            "Run", "Business date", "Started (UTC)", "Finished", "Outcome", "Acted"
        )
        self.query_one("#plan", DataTable).add_columns("Rule", "Client", "Subject", "Action")
        self.load_runs()

    def load_runs(self) -> None:
        health = daily_health(utcnow(), load_settings())
        self.query_one("#automation-health", Static).update(
            ("Schedule OK: " if health.ok else "WARNING: ") + health.message
        )
        self.query_one("#automation-health", Static).set_class(not health.ok, "warning")
        table = self.query_one("#runs", DataTable)
        table.clear()
        for run in recent_runs():
            counts = json.loads(run.counts or "{}").get("rules", {})
            acted = sum(r.get("acted", 0) for r in counts.values())
            table.add_row(
                Text(str(run.id)),
                Text(str(run.business_date)),
                Text(f"{run.started_at:%Y-%m-%d %H:%M:%S}"),
                Text(f"{run.finished_at:%H:%M:%S}" if run.finished_at else "—"),
                Text(run.outcome),
                Text(str(acted)),
            )

    def _today(self) -> tuple[Any, bool]:
        return business_date(utcnow(), load_settings())

    @work(thread=True, exclusive=True, group="automation")
    def action_plan(self) -> None:
        day, due = self._today()
        try:
            summary = run_rules(day, load_settings(), dry_run=True, daily_due=due)
        except Exception as exc:  # shown on the screen; the app keeps running
            self.post_message(self.Finished(f"The dry run failed: {exc}"))
            return
        self.post_message(self.Planned(summary))

    def on_automation_screen_planned(self, message: Planned) -> None:
        table = self.query_one("#plan", DataTable)
        table.clear()
        for p in message.summary.plan[:PLAN_ROWS]:
            table.add_row(Text(p.rule), Text(str(p.client_id)), Text(p.subject), Text(p.detail))
        total = len(message.summary.plan)
        more = f" (showing {PLAN_ROWS})" if total > PLAN_ROWS else ""
        wait = "" if message.summary.daily_due else " — before the daily hour: nothing is due yet"
        self.query_one("#automation-status", Static).update(
            f"Dry run for {message.summary.business_date}: {total} action(s){more}{wait}"
        )

    @work(thread=True, exclusive=True, group="automation")
    def action_run(self) -> None:
        day, due = self._today()
        bar = self.query_one(ProgressBar)
        self.app.call_from_thread(bar.update, progress=0)

        def progress(rule: str) -> None:
            self.post_message(self.Progress(rule))

        try:
            with cron_lock():
                summary = run_rules(
                    day,
                    load_settings(),
                    daily_due=due,
                    progress=progress,
                )
                flush_and_finish(summary, self.flush)
        except (AlreadyRunning, LockUnavailable) as exc:
            self.post_message(self.Finished(str(exc)))
            return
        except Exception as exc:  # a failed run is reported, never closes the app
            self.post_message(self.Finished(f"The run failed: {exc}"))
            return
        acted = sum(t.acted for t in summary.rules.values())
        self.post_message(
            self.Finished(
                f"Ran {day}: {acted} action(s), {summary.failed} failure(s) in "
                f"{summary.seconds:.1f} s" + ("" if summary.mail else "; outbox not flushed here")
            )
        )

    def on_automation_screen_progress(self, message: Progress) -> None:
        self.query_one(ProgressBar).advance(1)
        self.query_one("#automation-status", Static).update(f"Running {message.rule}…")

    def on_automation_screen_finished(self, message: Finished) -> None:
        self.query_one(ProgressBar).update(progress=len(RULE_NAMES))
        self.query_one("#automation-status", Static).update(message.text)
        self.load_runs()
