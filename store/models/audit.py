"""The activity log, cron runs and the action ledger."""

from __future__ import annotations

from peewee import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from store.models.base import BaseModel, utcnow
from store.models.clients import Client


class AuditLog(BaseModel):
    """One changed field (or one action) with old and new values; secrets never.

    Append-only: the database refuses UPDATE and DELETE of its rows (migration 0015).
    """

    at = DateTimeField(default=utcnow)
    actor_type = CharField(max_length=16)
    actor_id = IntegerField(null=True)
    #: Staff username, client email or "System".
    actor_name = CharField(max_length=254)
    source = CharField(max_length=16)
    #: RESTRICT: clients are closed, never deleted (PRODUCT.md §1), and the log is
    #: append-only (migration 0015): deleting a client must not rewrite its history.
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, null=True, on_delete="RESTRICT", index=False)
    entity = CharField(max_length=32)
    entity_id = IntegerField(null=True)
    action = CharField(max_length=64)
    field = CharField(max_length=64, default="")
    old_value = TextField(default="")
    new_value = TextField(default="")
    #: Where the actor was: the SSH client address (``SSH_CONNECTION``), "local" at the
    #: machine's own terminal, "" for the System and rows from before migration 0018.
    address = CharField(max_length=64, default="")

    class Meta:
        indexes = ((("client", "at"), False), (("at",), False))


class CronRun(BaseModel):
    business_date = DateField()
    started_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)
    #: running, ok, failed, crashed
    outcome = CharField(max_length=16, default="running")
    dry_run = IntegerField(default=0)
    #: Whether the run ran the daily rules (it started at or after the daily hour, or had
    #: ``--date``): ``cron status`` checks that these ran in the last 24 hours.
    daily_rules = BooleanField(default=False)
    #: JSON summary: per rule acted/skipped/failed and seconds.
    counts = TextField(default="{}")
    pid = IntegerField(default=0)
    #: Whether this run checked the SQLite file (``PRAGMA quick_check``) before acting: the
    #: first daily run of each business date does.
    quick_check = BooleanField(default=False)

    class Meta:
        indexes = ((("started_at",), False),)


class ActionLedger(BaseModel):
    """Every automatic action, claimed by its unique key before it acts."""

    rule = CharField(max_length=32)
    #: e.g. "invoice:42", "client:7", "service:9"
    subject = CharField(max_length=64)
    stage = CharField(max_length=32, default="")
    business_date = DateField()
    run = ForeignKeyField(CronRun, null=True, on_delete="SET NULL")
    outcome = CharField(max_length=16, default="done")
    detail = TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("rule", "subject", "stage", "business_date"), True),
            (("subject",), False),
        )
