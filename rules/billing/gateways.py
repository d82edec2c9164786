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
