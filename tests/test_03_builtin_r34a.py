"""Stage 03's built-in backend: classes of PDF that issue 25's held-out round 34a (PDFs compiled from physics,
astronomy, mathematics, computer-science theory and engineering sources) showed, each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import builtin  # noqa: E402  (one PDF-to-XML helper for these files)

PROSE = "The growth rate of structure is measured from the anisotropy of the galaxy correlation function"


def _linked(root) -> list[tuple[str, list[str]]]:
    """Each body paragraph that links: its text and the entries its xrefs name."""
    out = []
    for p in root.find("body").iter("p"):
        rids = [r for x in p.iter("xref") for r in (x.get("rid") or "").split()]
        if rids:
            out.append((" ".join("".join(p.itertext()).split()), rids))
    return out


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
