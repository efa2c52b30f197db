"""Stage 03's built-in backend: classes of PDF that issue 25's held-out round 31a (PDFs compiled from physics,
astronomy, mathematics, statistics, chemistry and earth-science sources) showed, each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin  # noqa: E402  (one PDF-to-XML helper for these files)





def test_a_superscript_citation_set_after_a_full_stop_keeps_all_its_digits(tmp_path):
    """ACS's achemso (and RSC's template) sets a superscript citation after the sentence's punctuation, a quarter
    em on ("… hot carrier distributions.¹² Furthermore"): the reader puts a space there, and the rule that a
    raised number after a space is an isotope ("the ¹H spectrum") took the first digit for text, so "12" became
    "1" and a citation of entry 2. A raised number after a stop or comma and its space is a citation; one after a
    word and a space is still none."""
    page = raw_pdf.Page()
    page.text(50, 740, "Introduction", font="F2")
    first = "Large cross sections are related to the short lifetimes of the hot carrier distributions."
    page.text(50, 724, first)
    page.text(end_x(tmp_path, 50, first) + 2.6, 727.5, "12", size=6)
    second = "Furthermore, relaxation competes with transfer to adsorbate states, as shown before,"
    page.text(50, 712, second)
    page.text(end_x(tmp_path, 50, second) + 2.6, 715.5, "3", size=6)
    page.text(50, 700, "and the")
    page.text(end_x(tmp_path, 50, "and the") + 2.6, 703.5, "1", size=6)
    page.text(end_x(tmp_path, 50, "and the") + 5.6, 700, "H spectrum of the adsorbate shows no shift at all here.")
    for k in range(6):
        page.text(50, 688 - 12 * k, f"{BODY} and so on.")
    page.text(50, 600, "References", font="F2")
    for n in range(1, 13):
        page.text(50, 600 - 12 * n, f"({n}) Author{chr(64 + n)}, A. Title of work {n}. J. Chem. Phys. 20{n:02d}, {n}, 1.")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    links = [(m, r.split(",")[0]) for m, r in cited(root)]
    assert ("12", "(12) AuthorL") in links
    assert ("3", "(3) AuthorC") in links
    assert not any(r in ("(1) AuthorA", "(2) AuthorB") for _, r in links)
