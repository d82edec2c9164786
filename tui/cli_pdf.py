"""``gobiller invoice pdf NUMBER FILE``: write an invoice's PDF (issue 13, PRODUCT.md §5).

A standalone click command, added to the ``invoice`` group of ``tui.cli``. The file is
replaced all at once (``store.files.write_atomically``), readable by its owner only, as
every file GoBiller writes. A refusal is one line (with ``--json``, ``{"error": ...}``):
an unknown invoice exits 1, a file that cannot be written 73 (EX_CANTCREAT). Never
imports Textual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tui.cli_common import emit
from tui.cli_common import refuse as _refuse


@click.command("pdf")
@click.argument("number")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def invoice_pdf(obj: Any, number: str, file: Path, as_json: bool) -> None:
    """Write invoice NUMBER as a PDF to FILE (replaced all at once; when writing fails,
    the previous FILE is left as it was)."""
    from rules.billing.invoice_pdf import draw_invoice_pdf, load_invoice_document
    from rules.billing.payments import InvoiceNotFound, find_invoice
    from store.files import FileWriteError, write_atomically
    from tui.exits import Exit

    obj.open()
    try:
        document = load_invoice_document(find_invoice(number))
    except InvoiceNotFound as exc:
        _refuse(as_json, str(exc), Exit.REFUSED)
    data = draw_invoice_pdf(document)
    try:
        write_atomically(file, data)
    except FileWriteError as exc:
        _refuse(as_json, str(exc), Exit.CANTCREAT)
    emit(
        as_json,
        {"invoice": document.number, "file": str(file), "bytes": len(data)},
        f"Wrote invoice {document.number} to {file} ({len(data):,} bytes).",
    )
