"""The product's fixed vocabularies, spelled exactly as PRODUCT.md spells them."""

from __future__ import annotations

from enum import StrEnum


class ClientStatus(StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    CLOSED = "Closed"


class ServiceStatus(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    TERMINATED = "Terminated"
    CANCELLED = "Cancelled"
    FRAUD = "Fraud"
    COMPLETED = "Completed"


class ProductType(StrEnum):
    """What a catalogue product is (WHMCS product types, reduced to what GoBiller bills)."""

    HOSTING = "Hosting"
    OTHER = "Other"


class PricingType(StrEnum):
    """What a price row prices (WHMCS ``tblpricing.type``)."""

    PRODUCT = "product"
    ADDON = "addon"


class DomainStatus(StrEnum):
    PENDING = "Pending"
    PENDING_REGISTRATION = "Pending Registration"
    PENDING_TRANSFER = "Pending Transfer"
    ACTIVE = "Active"
    GRACE = "Grace"
    REDEMPTION = "Redemption"
    EXPIRED = "Expired"
    TRANSFERRED_AWAY = "Transferred Away"
    CANCELLED = "Cancelled"
    FRAUD = "Fraud"


class InvoiceStatus(StrEnum):
    DRAFT = "Draft"
    UNPAID = "Unpaid"
    PAID = "Paid"
    CANCELLED = "Cancelled"
    REFUNDED = "Refunded"
    COLLECTIONS = "Collections"
    PAYMENT_PENDING = "Payment Pending"


class BillingCycle(StrEnum):
    FREE = "Free"
    ONE_TIME = "One Time"
    MONTHLY = "Monthly"
    QUARTERLY = "Quarterly"
    SEMI_ANNUALLY = "Semi-Annually"
    ANNUALLY = "Annually"
    BIENNIALLY = "Biennially"
    TRIENNIALLY = "Triennially"


class ItemType(StrEnum):
    HOSTING = "Hosting"
    ADDON = "Addon"
    DOMAIN = "Domain"
    LATE_FEE = "LateFee"
    ITEM = "Item"


class CustomFieldType(StrEnum):
    TEXT = "text"
    LINK = "link"
    PASSWORD = "password"
    DROPDOWN = "dropdown"
    TICKBOX = "tickbox"
    TEXTAREA = "textarea"


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    #: Not sent: no longer wanted when it was to leave (the reason is in ``last_error``).
    SKIPPED = "skipped"


class StaffRole(StrEnum):
    ADMIN = "admin"
    BILLING = "billing"
    SUPPORT = "support"


class ActorType(StrEnum):
    STAFF = "staff"
    CLIENT = "client"
    SYSTEM = "system"


class Source(StrEnum):
    TUI = "tui"
    PORTAL = "portal"
    CLI = "cli"
    CRON = "cron"


#: Gateways built in; ``sandboxcard`` is the merchant gateway for trials and tests.
GATEWAYS: tuple[str, ...] = ("banktransfer", "mailin", "sandboxcard")
MERCHANT_GATEWAYS: frozenset[str] = frozenset({"sandboxcard"})

ACTIVE_SERVICE_STATUSES: tuple[str, ...] = (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)
ACTIVE_DOMAIN_STATUSES: tuple[str, ...] = (DomainStatus.ACTIVE, DomainStatus.PENDING_TRANSFER)
