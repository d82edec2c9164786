"""The Domains tab: the client's domains; add (a) and edit (e) name, status, recurring
amount, next due date and payment method. Rules: ``rules.billing.services``."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.binding import Binding

from rules.billing.services import (
    ClientBilling,
    DomainRow,
    add_domain,
    client_billing,
    domains_of,
    update_domain,
)
from store.models.enums import GATEWAYS, DomainStatus
from tui.background import failure_text, off_loop
from tui.dialogs.form import FormDialog, FormField
from tui.screens.client_tabs.working_tab import WorkingTab

STATUSES = [(s.value, s.value) for s in DomainStatus]
METHODS = [(g, g) for g in GATEWAYS]


class DomainsTab(WorkingTab):
    COLUMNS = ("ID", "Domain", "Status", "Amount", "Next due", "Method")
    HINT = "a add domain · e edit (renews yearly)"
    BINDINGS = [
        Binding("a", "add", "Add domain", id="domains.add"),
        Binding("e", "edit", "Edit domain", id="domains.edit"),
    ]

    def __init__(self, actor: Any, client_id: int | None, *, id: str | None = None) -> None:
        super().__init__(actor, client_id, id=id)
        self.rows: dict[int, DomainRow] = {}
        self.billing: ClientBilling | None = None

    def load(self) -> list[tuple[Any, tuple[Any, ...]]]:
        assert self.client_id is not None
        billing = client_billing(self.client_id, self.actor)
        domains = domains_of(self.client_id, self.actor)
        self.billing = billing
        self.rows = {d.id: d for d in domains}
        return [
            (
                d.id,
                (
                    d.id,
                    d.name,
                    d.status,
                    billing.money(d.amount),
                    d.next_due_date.isoformat() if d.next_due_date else "",
                    d.payment_method,
                ),
            )
            for d in domains
        ]

    def _fields(self, row: DomainRow | None, billing: ClientBilling) -> list[FormField]:
        return [
            FormField("name", "Domain", value=row.name if row else ""),
            FormField(
                "status",
                "Status",
                "select",
                row.status if row else DomainStatus.ACTIVE.value,
                STATUSES,
            ),
            FormField(
                "amount",
                f"Recurring amount ({billing.currency_code})",
                value=billing.text(row.amount) if row else "",
                placeholder="yearly, e.g. 12.99",
            ),
            FormField(
                "next_due_date",
                "Next due date",
                value=(
                    (row.next_due_date.isoformat() if row.next_due_date else "")
                    if row
                    else billing.today.isoformat()
                ),
            ),
            FormField(
                "payment_method",
                "Payment method",
                "select",
                row.payment_method if row else billing.payment_method,
                METHODS,
            ),
        ]

    @work(group="domains-action", exclusive=True, exit_on_error=False)
    async def action_add(self) -> None:
        if not self.may_change():
            return
        client_id = self.client_id
        assert client_id is not None
        try:
            billing = await off_loop(client_billing, client_id, self.actor)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return
        saved = await self.app.push_screen_wait(
            FormDialog(
                "Add domain",
                self._fields(None, billing),
                lambda values: add_domain(client_id, values, self.actor),
            )
        )
        if saved:
            self.changed()
            self.app.notify("Domain added")

    @work(group="domains-action", exclusive=True, exit_on_error=False)
    async def action_edit(self) -> None:
        key = self.current_key()
        if key is None or not self.may_change() or self.billing is None:
            return
        row = self.rows[key]
        saved = await self.app.push_screen_wait(
            FormDialog(
                f"Edit domain {row.id}: {row.name}",
                self._fields(row, self.billing),
                lambda values: update_domain(row.id, values, self.actor),
            )
        )
        if saved:
            self.changed()
            self.app.notify("Saved")
