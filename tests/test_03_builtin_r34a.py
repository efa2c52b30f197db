"""Stage 03's built-in backend: classes of PDF that issue 25's held-out round 34a (PDFs compiled from physics,
astronomy, mathematics, computer-science theory and engineering sources) showed, each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_r33a_classes import _linked  # noqa: E402
from test_03_builtin_real_classes import builtin  # noqa: E402  (one PDF-to-XML helper for these files)

PROSE = "The growth rate of structure is measured from the anisotropy of the galaxy correlation function"


def test_mnras_entries_with_spaced_initials_after_the_surname_are_cited_by_that_surname(tmp_path):
    """MNRAS (mn2e, mnras) prints each author surname first, the initials after it spaced and without a comma
    ("Eisenstein D. J. et al., 2011", "Peebles P. J. E., 1980"): the first author was read as "al" or as
    "Peebles P. J.", so "(Eisenstein et al. 2011)" and "(Peebles 1980)" named no entry (13 of 41 works of one paper
    linked nowhere). The surname is the words before the initials."""
    page = raw_pdf.Page()
    page.text(72, 740, "1 INTRODUCTION", font="F2")
    page.text(72, 724, f"{PROSE} (Peebles 1980; Beutler et al. 2012).")
    page.text(72, 712, f"{PROSE} of luminous red galaxies (Eisenstein et al. 2011).")
    page.text(72, 700, f"The survey (BOSS; Dawson et al. (2013)) targets galaxies at high redshift.")
    for k in range(4):
        page.text(72, 688 - 12 * k, f"{PROSE} and the errors are taken from the simulations of each survey.")
    page.text(72, 620, "REFERENCES", font="F2")
    entries = ["Beutler F. et al., 2012, MNRAS, 423, 3430",
               "Dawson K. S. et al., 2013, AJ, 145, 10",
               "Eisenstein D. J. et al., 2011, AJ, 142, 72",
               "Peebles P. J. E., 1980, The large-scale structure of the universe. Princeton University Press"]
    for k, text in enumerate(entries):
        page.text(72, 604 - 12 * k, text, size=8)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    assert len(list(root.iter("ref"))) == 4
    linked = _linked(root)
    assert [rid for _, rids in linked for rid in rids] == ["ref4", "ref1", "ref3", "ref2"]


LEFT = "the functor maps each object to an object and arrows to arrows"
RIGHT = "the matrix category has the natural numbers as its objects here"


def _two_column_pages(special: dict[int, str], footnote: bool) -> list[raw_pdf.Page]:
    """Three two-column pages of body lines on one grid of baselines; on page 2, ``special`` replaces the left
    column's lines at those grid rows, and a footnote closes the right column: its mark "2" set apart, raised and
    smaller, on the baseline of a left-column line."""
    pages = []
    for n in range(3):
        page = raw_pdf.Page()
        for k in range(54):
            y = 740 - 12 * k
            left = special.get(k, LEFT) if n == 1 else LEFT
            page.text(54, y, left, size=9)
            if not (n == 1 and footnote and k >= 52):
                page.text(318, y, RIGHT, size=9)
        if n == 1 and footnote:
            page.text(318, 114, "2", size=5)
            page.text(322, 110.5, "See the survey for a summary of the overall theory.", size=7)
        pages.append(page)
    return pages


def test_a_footnote_mark_in_the_bottom_band_is_no_page_number_beside_a_body_line(tmp_path):
    """A two-column paper (ACM's sigplan) sets a footnote at the foot of the right column, its mark "2" apart from the
    note: the mark was read as a page number, and the left column's body line on its baseline as the running head
    beside it, dropped, so "… a strong presence in functional programming" vanished and the citation on the next
    line was read as a sentence of its own ("[Hinze 2013; Milewski 2018]."). A footnote's mark is no page number."""
    special = {52: "in particular, a strong presence in functional programming",
               53: "(Hinze 2013; Milewski 2018). Such an abstract approach is",
               51: "where a lot of mathematical structures fit in. It has,"}
    pages = _two_column_pages(special, footnote=True)
    pages[2].text(72, 60, "REFERENCES", font="F2")
    pages[2].text(72, 48, "Ralf Hinze. 2013. Adjoint folds and unfolds. Science of Computer Programming 78.", size=7)
    pages[2].text(72, 38, "Bartosz Milewski. 2018. Category theory for programmers. Blurb.", size=7)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", pages)
    root = etree.fromstring(builtin.convert(pdf)[0])
    text = " ".join("".join(p.itertext()) for p in root.find("body").iter("p"))
    assert "a strong presence in functional programming" in " ".join(text.split())
