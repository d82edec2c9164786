"""Automation: recent cron runs, today's dry-run plan, and running the cron now.

Both the plan and the run are ``rules.billing.cron.run_cron`` (the plan is the run
rolled back), called from thread workers; the health line and the run list are read in
a thread worker too, so no query runs on the event loop.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, ProgressBar, Static

from rules.billing.cron import RULE_NAMES, CronSummary, daily_health, recent_runs, run_cron
from store.config import Config, load_config
from store.locks import AlreadyRunning, LockUnavailable
from store.models import CronRun, utcnow
from store.settings import load_settings
from tui.background import failure_text, thread_connection
from tui.dialogs.confirm import ConfirmDialog

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

    class RunsLoaded(Message):
        def __init__(self, health_ok: bool, health: str, runs: list[CronRun]) -> None:
            super().__init__()
            self.health_ok = health_ok
            self.health = health
            self.runs = runs

    def __init__(self, *, config: Config | None = None) -> None:
        """``config``: the configuration whose mail transport a run delivers through
        (read when a run starts if not given); ``run_cron`` delivers the outbox itself."""
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Static(
            "Automation · p dry-run plan for today · r run the cron now", id="editor-title"
        )
        yield Static("Recent runs", classes="section")
        yield DataTable(id="runs", cursor_type="row")
        yield Static("", id="automation-health", markup=False)
        yield ProgressBar(total=len(RULE_NAMES) + 1, id="cron-progress", show_eta=False)
        yield Static("", id="automation-status", markup=False)
        yield Static("Plan", classes="section")
        yield DataTable(id="plan", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs", DataTable).add_columns(
            "Run", "Business date", "Started (UTC)", "Finished", "Outcome", "Acted"
        )
        self.query_one("#plan", DataTable).add_columns(
            "Rule", "Client", "Subject", "Stage", "Action"
        )
        self.load_runs()

    @work(thread=True, exclusive=True, group="automation-runs", exit_on_error=False)
    def load_runs(self) -> None:
        """Read the schedule's health and the recent runs (in a thread worker); a database
        failure is shown on the health line, never a crash."""
        try:
            with thread_connection():
                health = daily_health(utcnow(), load_settings())
                runs = recent_runs()
        except Exception as exc:
            self.app.call_from_thread(self._runs_failed, failure_text(exc))
            return
        self.post_message(self.RunsLoaded(health.ok, health.message, runs))

    def _runs_failed(self, text: str) -> None:
        self.query_one("#automation-health", Static).update(f"Could not read the runs: {text}")

    def on_automation_screen_runs_loaded(self, message: RunsLoaded) -> None:
        line = self.query_one("#automation-health", Static)
        line.update(("Schedule OK: " if message.health_ok else "WARNING: ") + message.health)
        line.set_class(not message.health_ok, "warning")
        table = self.query_one("#runs", DataTable)
        table.clear()
        for run in message.runs:
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

    @work(thread=True, exclusive=True, group="automation")
    def action_plan(self) -> None:
        """Today's run, rolled back (``run_cron(dry_run=True)``): what it would do."""
        try:
            summary = run_cron(dry_run=True, config=self._config())
        except (AlreadyRunning, LockUnavailable) as exc:
            self.post_message(self.Finished(str(exc)))
            return
        except Exception as exc:  # shown on the screen; the app keeps running
            self.post_message(self.Finished(f"The dry run failed: {failure_text(exc)}"))
            return
        self.post_message(self.Planned(summary))

    def on_automation_screen_planned(self, message: Planned) -> None:
        table = self.query_one("#plan", DataTable)
        table.clear()
        for a in message.summary.actions[:PLAN_ROWS]:
            table.add_row(
                Text(a.rule), Text(str(a.client_id)), Text(a.subject), Text(a.stage), Text(a.detail)
            )
        total = len(message.summary.actions)
        more = f" (showing {PLAN_ROWS})" if total > PLAN_ROWS else ""
        wait = "" if message.summary.daily_due else " — before the daily hour: nothing is due yet"
        self.query_one("#automation-status", Static).update(
            f"Dry run for {message.summary.business_date}: {total} action(s){more}{wait}"
        )

    def action_run(self) -> None:
        """Ask first: the real run charges cards and sends email."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_now()

        self.app.push_screen(
            ConfirmDialog(
                "Run the cron now?",
                "This is the real run: it creates invoices, charges stored cards and "
                "sends email. Press p first to see the plan.",
                yes="Run",
                no="Cancel",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, group="automation")
    def run_now(self) -> None:
        """Today's run (``run_cron``), the outbox delivered through the configuration."""
        bar = self.query_one(ProgressBar)
        self.app.call_from_thread(bar.update, progress=0)

        def progress(step: str) -> None:
            self.post_message(self.Progress(step))

        try:
            summary = run_cron(config=self._config(), progress=progress)
        except (AlreadyRunning, LockUnavailable) as exc:
            self.post_message(self.Finished(str(exc)))
            return
        except Exception as exc:  # a failed run is reported, never closes the app
            self.post_message(
                self.Finished(
                    "The run failed: "
                    + failure_text(exc, internal="rules already finished keep their work")
                )
            )
            return
        acted = sum(t.acted for t in summary.rules.values())
        self.post_message(
            self.Finished(
                f"Ran {summary.business_date}: {acted} action(s), {summary.failed} failure(s) "
                f"in {summary.seconds:.1f} s"
            )
        )

    def _config(self) -> Config:
        """The configuration (read in the worker, once per run, when not given)."""
        return self.config if self.config is not None else load_config()

    def on_automation_screen_progress(self, message: Progress) -> None:
        self.query_one(ProgressBar).advance(1)
        self.query_one("#automation-status", Static).update(f"Running {message.rule}…")

    def on_automation_screen_finished(self, message: Finished) -> None:
        self.query_one(ProgressBar).update(progress=len(RULE_NAMES) + 1)
        self.query_one("#automation-status", Static).update(message.text)
        self.load_runs()
