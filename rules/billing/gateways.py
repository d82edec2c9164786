"""Payment gateways. ``banktransfer`` and ``mailin`` are manual; ``sandboxcard`` is a
merchant gateway for trials and tests. Real gateways plug in through ``Gateway``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class CaptureResult:
    approved: bool
    transaction_id: str
    message: str


class Gateway(Protocol):
    name: str

    def capture(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> CaptureResult:
        """Charge a stored card. The same ``idempotency_key`` never charges twice: a retry
        returns the first attempt's result."""
        ...


class SandboxCard:
    """Approves stored cards whose token starts with ``ok`` and declines the rest.

    Deterministic per idempotency key, as a real gateway's replay of a known key is.
    """

    name = "sandboxcard"

    def capture(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> CaptureResult:
        reference = "sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        if token.startswith("ok"):
            return CaptureResult(True, reference, f"approved {amount} {currency}")
        return CaptureResult(False, reference, "card declined")


MERCHANT_GATEWAYS: dict[str, Gateway] = {"sandboxcard": SandboxCard()}


class RecordingGateway:
    """Charges nothing: keeps every capture asked of it and answers "approved", as the
    gateway it stands for would for a valid card. The dry run's gateways
    (``rules.billing.cron.run_cron``): the run takes its real path (transaction, paid
    invoice, confirmation email) inside the transaction that is rolled back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.captures: list[tuple[str, Decimal, str, str]] = []

    def capture(
        self, token: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> CaptureResult:
        self.captures.append((token, amount, currency, idempotency_key))
        return CaptureResult(True, f"dry-run:{idempotency_key}", "recorded, not charged")


def recording_gateways() -> dict[str, Gateway]:
    """A recorder in place of every merchant gateway."""
    return {name: RecordingGateway(name) for name in MERCHANT_GATEWAYS}
