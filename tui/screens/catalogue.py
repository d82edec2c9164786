"""Products and Product Addons: the catalogue staff sell from (issue 13; WHMCS
"Products/Services" setup). a add, e edit, d delete, on each tab; the dialog holds the
name, type (products), taxed flag, description and one price per currency and billing
cycle (blank: not offered). Reached from the command palette ("Products"); admins only
(the rules refuse others). Everything is read and saved in worker threads; a failure is
shown above the table and the screen stays."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from rules.audit import Actor
from rules.billing.catalogue import (
    PRICED_CYCLES,
    CatalogueEntry,
    delete_product,
    delete_product_addon,
    format_price,
    product_addons,
    products,
    save_product,
    save_product_addon,
)
from store.models import Currency
from store.models.enums import ProductType
from tui.background import failure_text, off_loop
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.form import FormDialog, FormField
from tui.widgets.error_line import ErrorLine

KINDS = {"products": "Products", "addons": "Product Addons"}
CYCLE_SHORT = {
    "One Time": "once",
    "Monthly": "mo",
    "Quarterly": "qtr",
    "Semi-Annually": "6mo",
    "Annually": "yr",
    "Biennially": "2yr",
    "Triennially": "3yr",
}


def read_catalogue() -> tuple[list[CatalogueEntry], list[CatalogueEntry], list[Any]]:
    """In a thread: products, product addons and the currencies (code, decimals)."""
    currencies = list(Currency.select().order_by(Currency.is_default.desc(), Currency.code))
    return products(), product_addons(), currencies


class CatalogueTable(DataTable[Text]):
    BINDINGS = [
        Binding("a", "screen.add", "Add", id="catalogue.add"),
        Binding("e", "screen.edit", "Edit", id="catalogue.edit"),
        Binding("d", "screen.remove", "Delete", id="catalogue.delete"),
    ]


class CatalogueScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="catalogue.back")]

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.entries: dict[str, list[CatalogueEntry]] = {kind: [] for kind in KINDS}
        self.currencies: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("Products catalogue · a add · e edit · d delete", id="editor-title")
        yield ErrorLine(id="catalogue-error")
        with TabbedContent(id="tabs"):
            for kind, name in KINDS.items():
                with TabPane(name, id=kind):
                    yield CatalogueTable(id=f"t-{kind}", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        for kind in KINDS:
            columns = ("ID", "Name", "Type", "Taxed", "In use", "Prices")
            self.query_one(f"#t-{kind}", CatalogueTable).add_columns(
                *(c for c in columns if kind == "products" or c != "Type")
            )
        self.reload()
        self.query_one("#t-products").focus()

    def show_failure(self, text: str) -> None:
        self.query_one("#catalogue-error", ErrorLine).say(text)

    def _prices(self, entry: CatalogueEntry) -> str:
        codes = {c.id: c for c in self.currencies}
        parts = []
        for (currency_id, cycle), amount in sorted(
            entry.prices.items(), key=lambda kv: (kv[0][0], PRICED_CYCLES.index(kv[0][1]))
        ):
            currency = codes.get(currency_id)
            if currency is not None:
                parts.append(
                    f"{currency.code} {format_price(amount, currency.decimals)}/"
                    f"{CYCLE_SHORT.get(cycle, cycle)}"
                )
        return " · ".join(parts) or "no prices"

    @work(group="catalogue-read", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            products_, addons, currencies = await off_loop(read_catalogue)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return
        self.show_failure("")
        self.currencies = currencies
        self.entries = {"products": products_, "addons": addons}
        for kind, entries in self.entries.items():
            table = self.query_one(f"#t-{kind}", CatalogueTable)
            row = table.cursor_row
            table.clear()
            for e in entries:
                cells = [str(e.id), e.name] + ([e.type] if kind == "products" else [])
                cells += ["yes" if e.taxed else "no", str(e.in_use), self._prices(e)]
                table.add_row(*[Text(c) for c in cells])
            if entries:
                table.move_cursor(row=min(row, len(entries) - 1))

    def _current(self) -> tuple[str, CatalogueEntry | None]:
        kind = str(self.query_one("#tabs", TabbedContent).active)
        table = self.query_one(f"#t-{kind}", CatalogueTable)
        entries = self.entries[kind]
        if not entries or table.cursor_row >= len(entries):
            return kind, None
        return kind, entries[table.cursor_row]

    def _fields(self, kind: str, entry: CatalogueEntry | None) -> list[FormField]:
        fields = [FormField("name", "Name", value=entry.name if entry else "")]
        if kind == "products":
            fields.append(
                FormField(
                    "type",
                    "Type",
                    "select",
                    entry.type if entry else ProductType.HOSTING.value,
                    [(t.value, t.value) for t in ProductType],
                )
            )
        fields += [
            FormField("taxed", "Taxed", "tick", entry.taxed if entry else True),
            FormField("description", "Description", value=entry.description if entry else ""),
        ]
        for currency in self.currencies:
            for cycle in PRICED_CYCLES:
                amount = entry.prices.get((currency.id, cycle)) if entry else None
                fields.append(
                    FormField(
                        f"price.{currency.code}.{cycle}",
                        f"{currency.code} {cycle}",
                        value="" if amount is None else format_price(amount, currency.decimals),
                        placeholder="not offered",
                    )
                )
        return fields

    def _save(self, kind: str, entry_id: int | None, values: dict[str, Any]) -> Any:
        """In a thread: the dialog's values as the rule takes them."""
        by_code = {c.code: c.id for c in self.currencies}
        prices: dict[tuple[int, str], Any] = {}
        plain: dict[str, Any] = {}
        for name, value in values.items():
            if name.startswith("price."):
                _, code, cycle = name.split(".", 2)
                prices[(by_code[code], cycle)] = value
            else:
                plain[name] = value
        plain["prices"] = prices
        if kind == "products":
            return save_product(plain, self.actor, entry_id)
        return save_product_addon(plain, self.actor, entry_id)

    async def _edit(self, kind: str, entry: CatalogueEntry | None) -> None:
        label = "product" if kind == "products" else "product addon"
        title = f"Edit {label}: {entry.name}" if entry else f"New {label}"
        entry_id = entry.id if entry else None
        saved = await self.app.push_screen_wait(
            FormDialog(
                title,
                self._fields(kind, entry),
                lambda values: self._save(kind, entry_id, values),
            )
        )
        if saved:
            self.reload()
            self.notify("Saved")

    @work(group="catalogue", exclusive=True, exit_on_error=False)
    async def action_add(self) -> None:
        kind, _ = self._current()
        await self._edit(kind, None)

    @work(group="catalogue", exclusive=True, exit_on_error=False)
    async def action_edit(self) -> None:
        kind, entry = self._current()
        if entry is not None:
            await self._edit(kind, entry)

    @work(group="catalogue", exclusive=True, exit_on_error=False)
    async def action_remove(self) -> None:
        kind, entry = self._current()
        if entry is None:
            return
        if not await self.app.push_screen_wait(
            ConfirmDialog("Delete", f"Delete {entry.name} and its prices?", yes="Delete")
        ):
            return
        rule = delete_product if kind == "products" else delete_product_addon
        try:
            await off_loop(rule, entry.id, self.actor)
        except Exception as exc:  # in use, gone, busy: said above the table
            self.show_failure(failure_text(exc))
            return
        self.reload()
        self.notify(f"Deleted {entry.name}")
