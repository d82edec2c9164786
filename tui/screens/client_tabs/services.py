"""The Products/Services tab: the client's services, each followed by its addons; add a
service from the catalogue (a), edit the selected service or addon (e), add an addon to
the selected service (+). Rules: ``rules.billing.services``."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.binding import Binding

from rules.billing.catalogue import CatalogueEntry, product_addons, products
from rules.billing.services import (
    ClientBilling,
    ServiceRow,
    add_addon,
    add_service,
    client_billing,
    services_of,
    update_addon,
    update_service,
)
from store.models.enums import GATEWAYS, BillingCycle, PricingType, ServiceStatus
from tui.background import failure_text, off_loop
from tui.dialogs.form import FormDialog, FormField
from tui.screens.client_tabs.working_tab import WorkingTab

CYCLES = [(c.value, c.value) for c in BillingCycle]
STATUSES = [(s.value, s.value) for s in ServiceStatus]
METHODS = [(g, g) for g in GATEWAYS]
NO_ADDON = 0


def _price_hint(
    entries: dict[int, CatalogueEntry], billing: ClientBilling, entry_id: Any, cycle: Any
) -> str:
    """The amount box's placeholder: what the catalogue charges, or that it has no price."""
    if cycle == BillingCycle.FREE:
        return "Free: 0"
    entry = entries.get(entry_id)
    if entry is None:
        return "type the recurring amount"
    price = entry.prices.get((billing.currency_id, str(cycle)))
    if price is None:
        return f"no catalogue price in {billing.currency_code} {cycle}: type one"
    return f"catalogue: {billing.text(price)} (leave blank)"


class ServicesTab(WorkingTab):
    COLUMNS = ("ID", "Product / addon", "Domain", "Status", "Cycle", "Amount", "Next due", "Method")
    HINT = "a add service · e edit · + add addon to the selected service"
    BINDINGS = [
        Binding("a", "add_service", "Add service", id="services.add"),
        Binding("e", "edit", "Edit", id="services.edit"),
        Binding("plus,A", "add_addon", "Add addon", id="services.add_addon"),
    ]

    def __init__(self, actor: Any, client_id: int | None, *, id: str | None = None) -> None:
        super().__init__(actor, client_id, id=id)
        self.rows: dict[tuple[str, int], Any] = {}
        self.billing: ClientBilling | None = None

    def load(self) -> list[tuple[Any, tuple[Any, ...]]]:
        assert self.client_id is not None
        billing = client_billing(self.client_id, self.actor)
        services = services_of(self.client_id, self.actor)
        self.billing = billing
        rows: list[tuple[Any, tuple[Any, ...]]] = []
        self.rows = {}
        for s in services:
            self.rows[("service", s.id)] = s
            rows.append(
                (
                    ("service", s.id),
                    (
                        s.id,
                        s.product_name,
                        s.domain,
                        s.status,
                        s.billing_cycle,
                        billing.money(s.amount),
                        s.next_due_date.isoformat() if s.next_due_date else "",
                        s.payment_method,
                    ),
                )
            )
            for a in s.addons:
                self.rows[("addon", a.id)] = a
                rows.append(
                    (
                        ("addon", a.id),
                        (
                            f"+{a.id}",
                            f"  + {a.name}",
                            "",
                            a.status,
                            a.billing_cycle,
                            billing.money(a.amount),
                            a.next_due_date.isoformat() if a.next_due_date else "",
                            a.payment_method,
                        ),
                    )
                )
        return rows

    def _catalogue(self, kind: str) -> tuple[ClientBilling, list[CatalogueEntry]]:
        """In a thread: the client's billing facts and the catalogue to choose from."""
        assert self.client_id is not None
        entries = products() if kind == PricingType.PRODUCT else product_addons()
        return client_billing(self.client_id, self.actor), entries

    @work(group="services-action", exclusive=True, exit_on_error=False)
    async def action_add_service(self) -> None:
        if not self.may_change():
            return
        try:
            billing, catalogue = await off_loop(self._catalogue, PricingType.PRODUCT)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return
        if not catalogue:
            self.show_failure("The catalogue has no products: add one in Products (ctrl+p)")
            return
        entries = {e.id: e for e in catalogue}
        client_id = self.client_id
        assert client_id is not None
        fields = [
            FormField(
                "product_id",
                "Product",
                "select",
                catalogue[0].id,
                [(f"{e.name} ({e.type})", e.id) for e in catalogue],
            ),
            FormField("billing_cycle", "Billing cycle", "select", "Monthly", CYCLES),
            FormField("amount", "Recurring amount"),
            FormField("status", "Status", "select", ServiceStatus.ACTIVE.value, STATUSES),
            FormField("next_due_date", "Next due date", value=billing.today.isoformat()),
            FormField(
                "payment_method", "Payment method", "select", billing.payment_method, METHODS
            ),
            FormField("domain", "Domain"),
            FormField("notes", "Notes", "area"),
        ]
        saved = await self.app.push_screen_wait(
            FormDialog(
                f"Add service ({billing.currency_code})",
                fields,
                lambda values: add_service(client_id, values, self.actor),
                hint=lambda v: {
                    "amount": _price_hint(entries, billing, v["product_id"], v["billing_cycle"])
                },
            )
        )
        if saved:
            self.changed()
            self.app.notify("Service added")

    @work(group="services-action", exclusive=True, exit_on_error=False)
    async def action_edit(self) -> None:
        key = self.current_key()
        if key is None or not self.may_change() or self.billing is None:
            return
        row = self.rows[key]
        billing = self.billing
        common = [
            FormField("status", "Status", "select", row.status, STATUSES),
            FormField("billing_cycle", "Billing cycle", "select", row.billing_cycle, CYCLES),
            FormField("amount", "Recurring amount", value=billing.text(row.amount)),
            FormField(
                "next_due_date",
                "Next due date",
                value=row.next_due_date.isoformat() if row.next_due_date else "",
            ),
            FormField("payment_method", "Payment method", "select", row.payment_method, METHODS),
        ]
        if key[0] == "service":
            assert isinstance(row, ServiceRow)
            fields = [
                *common,
                FormField("domain", "Domain", value=row.domain),
                FormField("notes", "Notes", "area", row.notes),
            ]
            title = f"Edit service {row.id}: {row.product_name}"
            rule: Any = update_service
        else:
            fields = [FormField("name", "Name", value=row.name), *common]
            title = f"Edit addon {row.id} of service {row.service_id}"
            rule = update_addon
        saved = await self.app.push_screen_wait(
            FormDialog(title, fields, lambda values: rule(row.id, values, self.actor))
        )
        if saved:
            self.changed()
            self.app.notify("Saved")

    @work(group="services-action", exclusive=True, exit_on_error=False)
    async def action_add_addon(self) -> None:
        key = self.current_key()
        if not self.may_change():
            return
        if key is None:
            self.show_failure("Add a service first, then its addons")
            return
        row = self.rows[key]
        service_id = row.id if key[0] == "service" else row.service_id
        service = self.rows[("service", service_id)]
        try:
            billing, catalogue = await off_loop(self._catalogue, PricingType.ADDON)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return
        entries = {e.id: e for e in catalogue}
        fields = [
            FormField(
                "product_addon_id",
                "Product addon",
                "select",
                catalogue[0].id if catalogue else NO_ADDON,
                [*((e.name, e.id) for e in catalogue), ("None (name it)", NO_ADDON)],
            ),
            FormField("name", "Name", placeholder="the product addon's name"),
            FormField("billing_cycle", "Billing cycle", "select", service.billing_cycle, CYCLES),
            FormField("amount", "Recurring amount"),
            FormField("status", "Status", "select", ServiceStatus.ACTIVE.value, STATUSES),
            FormField("next_due_date", "Next due date", value=billing.today.isoformat()),
            FormField(
                "payment_method", "Payment method", "select", service.payment_method, METHODS
            ),
        ]

        def save(values: dict[str, Any]) -> Any:
            if values.get("product_addon_id") == NO_ADDON:
                values = {**values, "product_addon_id": None}
            return add_addon(service_id, values, self.actor)

        saved = await self.app.push_screen_wait(
            FormDialog(
                f"Add addon to service {service_id}: {service.product_name}",
                fields,
                save,
                hint=lambda v: {
                    "amount": _price_hint(
                        entries, billing, v["product_addon_id"], v["billing_cycle"]
                    )
                },
            )
        )
        if saved:
            self.changed()
            self.app.notify("Addon added")
