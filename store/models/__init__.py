"""All models, grouped by subject; ``ALL_MODELS`` is in dependency order."""

from __future__ import annotations

from peewee import Model

from store.models.audit import ActionLedger, AuditLog, CronRun
from store.models.auth import LoginThrottle, PasswordResetToken, Staff
from store.models.base import BaseModel, MoneyField, utcnow
from store.models.billing import Credit, Invoice, InvoiceItem, InvoiceSequence, Transaction
from store.models.catalogue import Addon, Domain, Pricing, Product, ProductAddon, Service
from store.models.clients import Client, Contact, CustomFieldValue, StoredCard, TotpBackupCode
from store.models.mail import Email, EmailTemplate
from store.models.notes import ClientNote
from store.models.settings import (
    ClientGroup,
    Currency,
    CustomField,
    SecurityQuestion,
    Setting,
    TaxRule,
)

ALL_MODELS: list[type[Model]] = [
    Setting,
    Currency,
    ClientGroup,
    TaxRule,
    CustomField,
    SecurityQuestion,
    Client,
    Contact,
    CustomFieldValue,
    StoredCard,
    TotpBackupCode,
    Product,
    ProductAddon,
    Pricing,
    Service,
    Addon,
    Domain,
    ClientNote,
    Invoice,
    InvoiceItem,
    Transaction,
    Credit,
    InvoiceSequence,
    EmailTemplate,
    Email,
    Staff,
    PasswordResetToken,
    LoginThrottle,
    AuditLog,
    CronRun,
    ActionLedger,
]

__all__ = [m.__name__ for m in ALL_MODELS] + ["ALL_MODELS", "BaseModel", "MoneyField", "utcnow"]
