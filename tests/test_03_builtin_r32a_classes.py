"""Stage 03's built-in backend: classes of PDF that issue 25's held-out round 32a (PDFs compiled from physics,
astronomy, mathematics, statistics, chemistry, earth and climate-science sources) showed, each on a PDF the test
draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import builtin  # noqa: E402  (one PDF-to-XML helper for these files)

LEFT = "Massive black holes are found in galactic nuclei and in dense clusters"
RIGHT = "Mergers of such binaries are searched for in the detectors' data runs"


def _two_columns(email: str) -> raw_pdf.Page:
    # MNRAS's first page: two columns; the left one ends a sentence's first half above the corresponding author's
    # address (\thanks holding the address alone, a point below the body's size), the sentence goes on at the top
    # of the right one, and the right one runs lower than that footnote
    page = raw_pdf.Page()
    page.text(50, 740, "1 INTRODUCTION", font="F2")
    for k in range(14):
        page.text(50, 724 - 11 * k, f"{LEFT} (Smith 2001).", size=9)
    page.text(50, 724 - 11 * 14, "and others (see Greene et al.", size=9)
    page.text(60, 500, email, size=8)
    page.text(310, 740, "2020; Koliopanos 2017). However, because such holes are lighter, they are faint.", size=9)
    for k in range(22):
        page.text(310, 724 - 11 * k, f"{RIGHT} (Smith 2001).", size=9)
    return page


def test_an_authors_bare_address_under_its_column_does_not_split_the_sentence(tmp_path):
    """The address under the first page's left column, its mark glued to it ("∗avi.vajpeyi@monash.edu", no
    "E-mail:" before it), stood between the halves of the sentence the column ends ("(see Greene et al.
    ∗avi…@monash.edu 2020; Koliopanos 2017)"), its links read in the wrong sentence: where the page's columns are
    read as one, the right column's lines run lower than the footnote, and the footnote's depth was measured
    against those. A line that is an address alone (or revtex's "Electronic address:") below the last body line
    of its own column is the authors' address, not text."""
    first, second = _two_columns("*avi.vajpeyi@monash.edu"), raw_pdf.Page()
    for k in range(4):
        second.text(50, 740 - 11 * k, f"{LEFT} (Smith 2001).", size=9)
    second.text(50, 660, "REFERENCES", font="F2")
    second.text(50, 644, "Greene J. E., Strader J., Ho L. C., 2020, ARA&A, 58, 257", size=9)
    second.text(50, 632, "Koliopanos F., 2017, in XII Multifrequency Behaviour, p. 51", size=9)
    second.text(50, 620, "Smith J., 2001, ApJ, 550, 10", size=9)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [first, second])
    root = etree.fromstring(builtin.convert(pdf)[0])
    body = " ".join("".join(root.find("body").itertext()).split())
    assert "monash" not in body
    assert "and others (see Greene et al. 2020; Koliopanos 2017). However" in body


def test_an_address_with_words_after_it_is_still_text(tmp_path):
    """A line that only opens with an address and goes on as prose is text of its paragraph, wherever it stands."""
    page = _two_columns("mail@example.org is where the data can be asked for, and so on")
    page.text(50, 400, "REFERENCES", font="F2")
    page.text(50, 388, "Smith J., 2001, ApJ, 550, 10", size=9)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    assert "mail@example.org" in " ".join("".join(root.find("body").itertext()).split())


def test_the_next_line_of_a_bulleted_item_goes_on_with_its_item(tmp_path):
    """itemize hangs an item's next line under the item's text, right of its bullet: the reader took that for an
    indent and began a paragraph there, so the citation on the item's second line stood alone ("(Duan et al.,
    2025)." cut from "… extremes by 11–12%"), linked in a sentence of no words. A line that starts where the text of
    the bulleted item just above it starts goes on with that item; the next bullet still begins an item of its
    own, and a paragraph's indented first line after the list still begins a paragraph."""
    page = raw_pdf.Page()
    page.text(50, 740, "4 Discussion", font="F2")
    for k in range(6):
        page.text(50, 724 - 12 * k, f"{LEFT} and so on (Smith, 2001).")
    page.text(65, 646, "\u2022")
    page.text(75, 646, "Climate models underestimate monthly high temperature extremes by a tenth")
    page.text(75, 634, "(Duan et al., 2025).")
    page.text(65, 620, "\u2022")
    page.text(75, 620, "The concept of slower melt in a warmer world (Musselman et al., 2017) still holds but")
    page.text(75, 608, "merits additional investigation.")
    page.text(62, 592, "Second paragraph of the discussion after the list, indented as paragraphs are here.")
    for k in range(3):
        page.text(50, 580 - 12 * k, f"{LEFT} and so on (Smith, 2001).")
    page.text(50, 520, "References", font="F2")
    page.text(50, 504, "Duan, L., Freese, L. M., and Bala, G.: Historical model biases, 2025.")
    page.text(50, 492, "Musselman, K. N., Clark, M. P., and Liu, C.: Slower snowmelt in a warmer world, 2017.")
    page.text(50, 480, "Smith, J.: A study of everything, 2001.")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    paras = [" ".join("".join(p.itertext()).split()) for p in root.find("body").iter("p")]
    assert any(p.endswith("high temperature extremes by a tenth (Duan et al., 2025).") for p in paras)
    assert any(p.endswith("still holds but merits additional investigation.") for p in paras)
    assert not any(p.startswith("(Duan") for p in paras)
    assert any(p.startswith("Second paragraph of the discussion") for p in paras)
