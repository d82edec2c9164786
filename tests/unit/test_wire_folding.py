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


def _messages() -> list[EmailMessage]:
    """Every shape delivery writes: a text; a text and HTML; a text with a PDF; non-ASCII
    everywhere; a body with bare CR, CRLF and LF line ends and no final newline."""
    plain = EmailMessage(policy=MESSAGE_POLICY)
    plain["From"] = Address("Hafen-Hosting für Bücher", "billing", "bücher.example")
    plain["To"] = Address("", "zoé", "example.org")
    plain["Subject"] = "Rechnung Nr. 1001 — überfällig"
    plain.set_content("Zeile eins\r\nZeile zwei\rZeile drei\nEnde ohne Zeilenende")
    with_pdf = _message(7)
    with_pdf.add_attachment(
        bytes(range(256)) * 90, maintype="application", subtype="pdf", filename="Invoice-7.pdf"
    )
    return [_message(1), plain, with_pdf]


def test_the_wire_generator_writes_the_octets_of_the_standard_one() -> None:
    """``wire_bytes`` writes with ``_WireGenerator`` (a text at once, boundaries checked
    without a regular expression): the octets are those of ``EmailMessage.as_bytes`` with
    the same policy, for every shape of message, both line ends and both header kinds.
    Its boundary is new, random and not in the parts."""
    from rules.mail.wire import _written_policy

    for message in _messages():
        for smtputf8 in (False, True):
            for linesep in ("\r\n", "\n"):
                if not smtputf8 and not message["To"].addresses[0].username.isascii():
                    continue
                ours = wire_bytes(message, smtputf8=smtputf8, linesep=linesep)
                # The boundary ours chose is kept on the message, so both use it.
                standard = message.as_bytes(policy=_written_policy(smtputf8, linesep))
                assert ours == standard
                boundary = message.get_boundary()
                if boundary:
                    assert ours.count(f"--{boundary}".encode()) == len(message.get_payload()) + 1
