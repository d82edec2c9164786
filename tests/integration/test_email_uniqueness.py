"""Email uniqueness is exact: two emails clash only when they are the same address under
full Unicode case folding (PRODUCT.md §1), on every path, checked and enforced by the
``email_key`` unique indexes; no character is a pattern."""

from __future__ import annotations

from typing import Any

import pytest
from playhouse.test_utils import count_queries

import rules.clients.profile
import rules.interchange.checking
from rules.audit import SYSTEM_CLI
from rules.clients.profile import add_contact, create_client, update_client, update_contact
from rules.errors import ValidationError
from rules.interchange.importer import import_document
from rules.interchange.schema import ImportError_
from store.models import Client, Contact, Currency

TAKEN = {"email": "another client has this email"}


def _new(email: str, **extra: Any) -> Client:
    return create_client(
        {"first_name": "New", "last_name": "Client", "email": email, **extra}, SYSTEM_CLI
    )


def _refused(email: str) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        _new(email)
    return refused.value.errors


def _doc(*emails: str, first_id: int = 70) -> dict[str, Any]:
    return {
        "format": "gobiller/1",
        "clients": [
            {
                "id": first_id + n,
                "first_name": "I",
                "last_name": "Mport",
                "email": e,
                "currency": "USD",
            }
            for n, e in enumerate(emails)
        ],
    }


def test_email_uniqueness_is_exact(db: str) -> None:
    Currency.create(code="USD", is_default=True)
    john = _new("john.doe@example.org")
    _new("mia2@example.org")
    _new("émile@example.org")
    _new("straße@example.org")

    # Characters that are patterns elsewhere are themselves here.
    for email in (
        "john_doe@example.org",
        "mi_2@example.org",
        "john%doe@example.org",
        "johnxdoe@example.org",
        "john.doe@example.orgx",
    ):
        assert _new(email).email == email
    # The same address in another case is refused, in every script.
    for email in (
        "JOHN.DOE@example.org",
        "John.Doe@EXAMPLE.ORG",
        "ÉMILE@example.org",
        "STRASSE@example.org",
        "strasse@example.org",
    ):
        assert _refused(email) == TAKEN, email

    # Editing: another client's address is refused, one's own in another case is not.
    other = _new("other@example.org")
    with pytest.raises(ValidationError) as refused:
        update_client(other.id, 1, {"email": "JOHN.doe@example.org"}, SYSTEM_CLI)
    assert refused.value.errors == TAKEN
    update_client(john.id, 1, {"email": "John.Doe@example.org"}, SYSTEM_CLI)
    assert Client.get_by_id(john.id).email_key == "john.doe@example.org"
    update_client(other.id, 1, {"email": "john_doe2@example.org"}, SYSTEM_CLI)

    # Contacts: unique per client, the same way.
    contact = add_contact(
        john.id,
        {"first_name": "A", "last_name": "B", "email": "bill.ing@example.org"},
        SYSTEM_CLI,
    )
    add_contact(
        john.id,
        {"first_name": "A", "last_name": "C", "email": "bill_ing@example.org"},
        SYSTEM_CLI,
    )
    with pytest.raises(ValidationError, match="already has a contact with this email"):
        add_contact(
            john.id,
            {"first_name": "A", "last_name": "D", "email": "BILL.ING@example.org"},
            SYSTEM_CLI,
        )
    with pytest.raises(ValidationError, match="already has a contact with this email"):
        update_contact(contact.id, {"email": "Bill_Ing@example.org"}, SYSTEM_CLI)
    assert Contact.get_by_id(contact.id).email == "bill.ing@example.org"

    # Import: the same check against the database and within the document.
    import_document(_doc("joh_.doe@example.org", "MIA_2@example.org"))
    with pytest.raises(ImportError_) as rejected:
        import_document(
            _doc(
                "MIA2@example.org",
                "Émile@Example.org",
                "weiß@example.org",
                "WEISS@example.org",
                first_id=80,
            )
        )
    assert rejected.value.errors == [
        "clients[3].email: duplicate email (also at clients[2].email)",
        "clients[0].email: a client with this email already exists",
        "clients[1].email: a client with this email already exists",
    ]


def test_email_uniqueness_is_exact_and_indexed(db: str) -> None:
    """The check is one exact lookup of the unique key, whatever the number of clients."""
    from rules.clients.profile import emails_in_use
    from store.keys import email_key

    Currency.create(code="USD", is_default=True)
    for n in range(30):
        _new(f"c{n}@example.org")
    with count_queries() as counter:
        assert emails_in_use([email_key("C7@EXAMPLE.ORG"), "nobody@example.org"]) == {
            "c7@example.org"
        }
    assert counter.count == 1
    assert emails_in_use(["c7@example.org"], except_client=8) == set()


def test_email_uniqueness_is_exact_when_writers_race(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clash that slips past the check (another writer saved the address meanwhile) is
    refused by the unique index with the same clean refusal, and nothing is written."""
    Currency.create(code="USD", is_default=True)
    john = _new("john.doe@example.org")
    other = _new("other@example.org")
    monkeypatch.setattr(rules.clients.profile, "emails_in_use", lambda keys, **kw: set())
    monkeypatch.setattr(rules.clients.profile, "contact_email_in_use", lambda *a, **kw: False)
    monkeypatch.setattr(rules.interchange.checking, "emails_in_use", lambda keys, **kw: set())

    assert _refused("JOHN.DOE@example.org") == TAKEN
    with pytest.raises(ValidationError) as refused:
        update_client(other.id, 1, {"email": "John.Doe@example.org"}, SYSTEM_CLI)
    assert refused.value.errors == TAKEN
    add_contact(
        john.id, {"first_name": "A", "last_name": "B", "email": "a@example.org"}, SYSTEM_CLI
    )
    with pytest.raises(ValidationError, match="already has a contact with this email"):
        add_contact(
            john.id, {"first_name": "A", "last_name": "B", "email": "A@example.org"}, SYSTEM_CLI
        )
    with pytest.raises(ImportError_, match="added meanwhile"):
        import_document(_doc("new@example.org", "Other@Example.org"))

    assert Client.select().count() == 2
    assert Client.get_by_id(other.id).email == "other@example.org"
    assert Contact.select().count() == 1
