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
