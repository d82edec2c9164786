"""Regenerate the invoice PDF fonts in this folder from Debian's font packages:

    apt-get install fonts-dejavu-core fonts-droid-fallback
    python rules/billing/fonts/make_fonts.py

Reading a font (its character map, metrics and glyph table) and embedding it cost time
and bytes in proportion to the whole font: DejaVu Sans has 6,000 characters, Droid Sans
Fallback 28,000. So the fonts are shipped in pieces: ``DejaVuSans-Latin.ttf`` (and Bold)
hold what most invoices print (Latin, punctuation, currency signs); every other
character of DejaVu Sans lies in a piece of at most ``DEJAVU_PIECE`` characters (regular
and bold), and the Chinese and Japanese characters DejaVu lacks in pieces of at most
``FALLBACK_PIECE`` from Droid Sans Fallback. A process reads a piece the first time a
PDF needs it, and a PDF embeds only the glyphs it draws of the pieces it uses
(``rules.billing.invoice_pdf._FontProgram`` keeps the glyph numbers and empties the
other glyphs, so the embedded font is about the size of the glyphs drawn plus the
piece's metrics). ``index.json`` lists each piece's first and last character. Hinting
and layout tables are left out (a PDF viewer does not use them without text shaping).

The pieces are subsets of DejaVu Sans (Bitstream Vera licence, LICENSE-DejaVu) and Droid
Sans Fallback (Apache 2.0, LICENSE-DroidSansFallback), made by this script.
"""

from __future__ import annotations

import json
from pathlib import Path

from fontTools import subset, ttLib

HERE = Path(__file__).parent
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
DROID = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
LATIN = {*range(0x20, 0x7F), *range(0xA0, 0x250), *range(0x2000, 0x20D0), 0xFFFD}
DEJAVU_PIECE = 400
FALLBACK_PIECE = 1000


def cut(source: Path, unicodes: list[int], target: str) -> None:
    font = ttLib.TTFont(source, recalcTimestamp=False)
    options = subset.Options()
    options.hinting = False
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.layout_features = []
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "hdmx", "VDMX", "LTSH"]
    options.name_IDs = ["*"]
    options.glyph_names = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=unicodes)
    subsetter.subset(font)
    font.save(HERE / target)


def pieces(codes: list[int], size: int) -> list[list[int]]:
    return [codes[n : n + size] for n in range(0, len(codes), size)]


def main() -> None:
    for old in HERE.glob("*.ttf"):
        old.unlink()
    regular, bold = DEJAVU / "DejaVuSans.ttf", DEJAVU / "DejaVuSans-Bold.ttf"
    cut(regular, sorted(LATIN), "DejaVuSans-Latin.ttf")
    cut(bold, sorted(LATIN), "DejaVuSans-Bold-Latin.ttf")
    dejavu = set(ttLib.TTFont(regular).getBestCmap()) | set(ttLib.TTFont(bold).getBestCmap())
    index = []
    for n, codes in enumerate(pieces(sorted(dejavu - LATIN), DEJAVU_PIECE), 1):
        files = {"": f"DejaVuSans-{n:02d}.ttf", "B": f"DejaVuSans-Bold-{n:02d}.ttf"}
        cut(regular, codes, files[""])
        cut(bold, codes, files["B"])
        index.append({"first": codes[0], "last": codes[-1], "files": files})
    droid = set(ttLib.TTFont(DROID).getBestCmap()) - dejavu - LATIN
    for n, codes in enumerate(pieces(sorted(droid), FALLBACK_PIECE), 1):
        files = {"": f"DroidSansFallback-{n:02d}.ttf"}
        cut(DROID, codes, files[""])
        index.append({"first": codes[0], "last": codes[-1], "files": files})
    (HERE / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
