"""How ``rules.mail.wire`` writes the headers a batch of messages shares."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage

from rules.mail.wire import MESSAGE_POLICY, wire_bytes


def _message(n: int) -> EmailMessage:
    """An email as delivery builds one: a text and an HTML part (multipart/alternative)."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = Address("Harbour Hosting", "billing", "harbour.example")
    message["To"] = Address("", f"client{n}", "example.org")
    message["Subject"] = f"Invoice {n}"
    message["X-GoBiller-Template"] = "Invoice Created"
    message.set_content(f"Invoice {n} is due.")
    message.add_alternative(f"<p>Invoice {n} is due.</p>", subtype="html")
    return message


def test_a_shared_header_is_folded_once_per_kind_of_output_mime_parts_too() -> None:
    """The headers every message shares (From, the MIME headers of its parts) are folded
    once per kind of output (7-bit or UTF-8, CRLF or LF), not once per message: the
    generator writes each MIME part with a new copy of the policy, which must not count
    as a new kind (a memo that missed for every part and grew with every message)."""
    messages = [_message(n) for n in range(40)]
    for message in messages:
        for smtputf8 in (False, True):
            for linesep in ("\r\n", "\n"):
                wire_bytes(message, smtputf8=smtputf8, linesep=linesep)
    text_part = next(messages[-1].iter_parts())
    shared = [
        messages[-1]["From"],
        messages[-1]["MIME-Version"],
        text_part["Content-Type"],
        text_part["Content-Transfer-Encoding"],
    ]
    assert shared[2] is next(messages[0].iter_parts())["Content-Type"]  # one header object
    for header in shared:
        assert len(header.__dict__.get("_folds", {})) <= 4, header.name
