"""Typed settings with the defaults of PRODUCT.md §3.

Stored one row per key (JSON); a key never written takes its default, so a new
setting needs no migration and "settings left out take their defaults".
"""

from __future__ import annotations

import json
import re
import zoneinfo
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from store.db import writer
from store.models import Setting
from store.text import text_refusal

LATE_FEE_TYPES = ("percentage", "fixed")
STATUS_UPDATE_MODES = ("off", "active_products", "active_products_and_login")


class SettingsError(ValueError):
    """A setting value of the wrong type or out of range; ``path`` names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Settings:
    timezone: str = "UTC"
    daily_hour: int = 9
    company_name: str = "GoBiller"
    system_url: str = "https://billing.example.com/"
    allow_marketing_opt_out: bool = True
    invoice_days_before_due: int = 14
    payment_reminder_days: int = 7
    overdue_notice_days: list[int] = field(default_factory=lambda: [1, 2, 3])
    late_fee_days: int = 5
    late_fee_type: str = "percentage"
    late_fee_amount: str = "10.00"
    late_fee_minimum: str = "0.00"
    late_fee_taxed: bool = True
    capture_days_before_due: int = 0
    status_update: str = "active_products"
    tax_enabled: bool = True
    tax_inclusive: bool = False
    tax_compound: bool = False
    #: Invoice numbers: literal text, ``{year}``, ``{month}`` and, last, ``{seq}`` or a
    #: zero-padded ``{seq:05d}`` (e.g. ``INV-{year}-{seq:05d}``), as WHMCS's custom
    #: invoice number format.
    invoice_number_format: str = "{seq}"
    #: Printed under the company name on invoice PDFs (one line, as every text setting).
    company_address: str = ""
    #: What a client paying by bank transfer needs (bank, account, IBAN...): printed on
    #: the PDF of an invoice whose payment method is ``banktransfer``.
    bank_transfer_instructions: str = ""
    # Beyond the interchange document (not exported): mail and the staff app.
    company_email: str = "billing@example.com"
    signature: str = ""
    mail_rate_limit: int = 25
    mail_rate_window_seconds: int = 30
    staff_lock_minutes: int = 15

    @property
    def late_fee_decimal(self) -> Decimal:
        return Decimal(self.late_fee_amount)

    @property
    def late_fee_minimum_decimal(self) -> Decimal:
        return Decimal(self.late_fee_minimum)


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
#: The settings the interchange document carries (PRODUCT.md §5), in its order.
INTERCHANGE_SETTINGS: tuple[str, ...] = SETTING_NAMES[
    : SETTING_NAMES.index("bank_transfer_instructions") + 1
]
_DEFAULTS = Settings()


def _check_int(path: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(path, "must be a whole number")
    if not low <= value <= high:
        raise SettingsError(path, f"must be between {low} and {high}")
    return value


def validate_setting(name: str, value: Any, path: str | None = None) -> Any:
    """Check one setting's value; return it in canonical form or raise ``SettingsError``."""
    path = path or name
    if name not in SETTING_NAMES:
        raise SettingsError(path, "unknown setting")
    default = getattr(_DEFAULTS, name)
    if name == "timezone":
        if not isinstance(value, str) or value not in zoneinfo.available_timezones() | {"UTC"}:
            raise SettingsError(path, "not a known IANA timezone (e.g. Europe/London)")
        return value
    if name == "daily_hour":
        return _check_int(path, value, 0, 23)
    if name == "mail_rate_limit":
        return _check_int(path, value, 1, 10_000)
    if name in ("mail_rate_window_seconds", "staff_lock_minutes"):
        return _check_int(path, value, 1, 86_400)
    if name == "company_email":
        from email_validator import EmailNotValidError, validate_email

        try:
            return validate_email(str(value), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise SettingsError(path, f"not a valid email ({exc})") from exc
    if name == "overdue_notice_days":
        if not isinstance(value, list) or len(value) != 3:
            raise SettingsError(path, "must be a list of three day counts")
        return [_check_int(f"{path}[{i}]", v, 0, 365) for i, v in enumerate(value)]
    if name in ("late_fee_amount", "late_fee_minimum"):
        from store.money import MoneyError, format_decimal, parse_amount

        try:
            return format_decimal(parse_amount(value, 2), 2)
        except MoneyError as exc:
            raise SettingsError(path, str(exc)) from exc
    if name == "invoice_number_format":
        return check_invoice_number_format(path, value)
    if name == "late_fee_type" and value not in LATE_FEE_TYPES:
        raise SettingsError(path, f"must be one of {', '.join(LATE_FEE_TYPES)}")
    if name == "status_update" and value not in STATUS_UPDATE_MODES:
        raise SettingsError(path, f"must be one of {', '.join(STATUS_UPDATE_MODES)}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(path, "must be true or false")
        return value
    if isinstance(default, int):
        return _check_int(path, value, 0, 3650)
    if isinstance(default, str):
        if not isinstance(value, str) or len(value) > 500:
            raise SettingsError(path, "must be text of at most 500 characters")
        refusal = text_refusal(value)  # one line: a name or a URL, never a header break
        if refusal:
            raise SettingsError(path, refusal)
        return value
    raise SettingsError(path, "unsupported setting")  # pragma: no cover


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SEQ = re.compile(r"seq(?::0([1-9]|1[0-2])d)?")


def check_invoice_number_format(path: str, value: Any) -> str:
    """Validate an invoice number format; return it or raise ``SettingsError``.

    Literal text (printable, no braces), ``{year}``, ``{month}``, and exactly one
    ``{seq}`` (optionally ``{seq:0Nd}``, N up to 12) at the end, after something that is
    not a digit, so an issued number always ends in its sequence value and the
    sequence can be recovered from any number (imports, restores). At most 32
    characters when formatted.
    """
    if not isinstance(value, str) or not value or len(value) > 64:
        raise SettingsError(path, "must be text such as INV-{year}-{seq:05d}")
    fields = _PLACEHOLDER.findall(value)
    literal = _PLACEHOLDER.sub("", value)
    if "{" in literal or "}" in literal or not literal.isprintable():
        raise SettingsError(path, "only {year}, {month} and {seq} may be in braces")
    for name in fields:
        if name not in ("year", "month") and not _SEQ.fullmatch(name):
            raise SettingsError(
                path, f"unknown placeholder {{{name}}}: use {{year}}, {{month}}, {{seq}}"
            )
    if sum(1 for name in fields if name.startswith("seq")) != 1 or not value.endswith("}"):
        raise SettingsError(path, "must end with {seq} (or a padded {seq:05d}), once")
    head = value[: value.rindex("{")]
    if head and (head[-1].isdigit() or head.endswith("}")):
        raise SettingsError(path, "put a separator (such as -) before {seq}")
    if len(value.format(year=2026, month="12", seq=10**11)) > 32:
        raise SettingsError(path, "formats numbers longer than 32 characters")
    return value


def load_settings() -> Settings:
    """The settings in force: stored values over defaults (one query)."""
    stored = {row.key: json.loads(row.value) for row in Setting.select()}
    known = {k: v for k, v in stored.items() if k in SETTING_NAMES}
    return Settings(**known)


def save_settings(changes: dict[str, Any]) -> Settings:
    """Validate and store ``changes`` together; nothing is written if any is invalid."""
    clean = {name: validate_setting(name, value) for name, value in changes.items()}
    with writer():
        for name, value in clean.items():
            Setting.insert(key=name, value=json.dumps(value)).on_conflict(
                conflict_target=[Setting.key], update={Setting.value: json.dumps(value)}
            ).execute()
    return load_settings()


def interchange_settings(settings: Settings) -> dict[str, Any]:
    """The settings as the interchange document writes them."""
    values = asdict(settings)
    return {name: values[name] for name in INTERCHANGE_SETTINGS}
