"""Regenerate DejaVuSans-Latin*.ttf from the full fonts beside this file:
``python rules/billing/fonts/make_latin.py``.

The Latin files hold what most invoices print (Basic Latin, Latin-1, Latin Extended A
and B, general punctuation, currency symbols) without hinting or layout tables: an
invoice drawn with them is written in a fraction of the time the full font needs
(``rules.billing.invoice_pdf`` picks the full font only for text beyond them). They are
subsets of DejaVu Sans under its licence (LICENSE-DejaVu beside this file)."""

from __future__ import annotations

from pathlib import Path

from fontTools import subset, ttLib

HERE = Path(__file__).parent
UNICODES = [*range(0x20, 0x7F), *range(0xA0, 0x250), *range(0x2000, 0x20D0), 0xFFFD]


def make(source: str, target: str) -> None:
    font = ttLib.TTFont(HERE / source, recalcTimestamp=False)
    options = subset.Options()
    options.hinting = False
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx"]
    options.name_IDs = ["*"]
    options.glyph_names = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=UNICODES)
    subsetter.subset(font)
    font.save(HERE / target)


if __name__ == "__main__":
    make("DejaVuSans.ttf", "DejaVuSans-Latin.ttf")
    make("DejaVuSans-Bold.ttf", "DejaVuSans-Bold-Latin.ttf")
