"""Stage 03's built-in backend: two precision classes that round 31a's held-out compiled PDFs showed after that
round's merge (RSC's PCCP template, a Copernicus discussion paper), each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin  # noqa: E402  (one PDF-to-XML helper for these files)


def test_a_raised_range_after_a_word_and_the_readers_space_is_cited_whole_never_from_its_second_digit(tmp_path):
    """RSC's template sets a superscript range straight after a word ("… NEXAS experiments⁶⁹⁻⁸³ in Tables"):
    the reader puts a space before it and a raised space after it. The rule that a raised run after a space is
    a citation only where a space or a stop follows took that raised space for a glyph of the run, read the
    run's first digit as text and its rest, "9–83", as a citation of 75 works the sentence never named. A
    raised space ends the run as a space does, and a run read as text is read as text whole."""
    page = raw_pdf.Page()
    page.text(50, 740, "Introduction", font="F2")
    first = "The excitation energies are compared to values from gas-phase NEXAS experiments"
    page.text(50, 724, first)
    page.text(end_x(tmp_path, 50, first) + 1.4, 727.5, "69–73 ", size=6)
    page.text(end_x(tmp_path, 50, first) + 18.0, 724, "in Tables 2 and 3 of this work.")
    second = "The isotope shift of the adsorbate in the"
    page.text(50, 712, second)
    page.text(end_x(tmp_path, 50, second) + 2.6, 715.5, "13", size=6)
    page.text(end_x(tmp_path, 50, second) + 8.6, 712, "C spectrum is small and the bands stay where they were.")
    for k in range(45):
        page.text(50, 700 - 12 * k, f"{BODY} and so on.")
    refs = raw_pdf.Page()
    refs.text(50, 760, "References", font="F2")
    for n in range(1, 81):
        refs.text(50, 760 - 9 * n, f"{n} A. Author{n}, B. Coauthor and C. Third, J. Chem. Phys., 20{n % 100:02d}, {n}, 1.",
                  size=7)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page, refs])
    root = etree.fromstring(builtin.convert(pdf)[0])
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()).split(",")[0] for r in root.iter("ref")}
    named = {refs[rid] for x in root.iter("xref") for rid in x.get("rid").split()}
    assert {f"{n} A. Author{n}" for n in range(69, 74)} <= named
    assert not any(f"{n} A. Author{n}" in named for n in range(9, 69)), sorted(named)
    # a raised run read as text stays text whole: the isotope cites nothing ("3" is no citation of entry 3)
    assert "3 A. Author3" not in named and "13 A. Author13" not in named


def _numbered_page(lines: list[str], first_number: int) -> raw_pdf.Page:
    """A page of a line-numbered manuscript: its lines 12 pt apart, every fifth line numbered in the left
    margin (right-aligned at x 40), as Copernicus' discussion papers print them."""
    page = raw_pdf.Page()
    for k, text in enumerate(lines):
        y = 740 - 12 * k
        page.text(60, y, text, size=10, font="F2" if text in ("Introduction", "References") else "F1")
        number = first_number + k
        if number % 5 == 0:
            page.text(40 - 4.448 * len(str(number)), y, str(number), size=8)  # Helvetica's digits: 0.556 em
    return page


def test_margin_line_numbers_printed_at_every_fifth_line_are_dropped_over_the_document(tmp_path):
    """A discussion paper numbers every fifth line in its margin (50, 55, 60, …): four to six on a page, too few
    for the rule that finds numbers beside every line, so "75" was read into the sentence beside it ("A Wiener
    process 75 conditioned to …") and, in the bibliography, "310" opened an entry of its own, so every later
    author-year citation went to the entry before its own. Numbers in one margin column, multiples of 5, rising
    over the pages in steps of 5, are line numbers and are dropped."""
    body = ["Introduction"] + [f"{BODY} in part {k}." for k in range(1, 12)] + [
        "A Wiener process conditioned to start and end at given values is a bridge (Taylor and Karlin, 1998).",
        "The correction has the opposite sign to the one used before (Wagner et al., 2006), as we note here.",
        "The prior is known to be a poor choice in such hierarchical models (Gelman, 2006), so we test it."] + [
        f"{BODY} in part {k}." for k in range(12, 24)]
    refs = ["References",
            "Gelman, A.: Prior distributions for variance parameters in hierarchical models, Bayesian Anal., 1,",
            "    515-534, 2006.",
            "Taylor, H. and Karlin, S.: An Introduction to Stochastic Modeling, Elsevier Science, San Diego,",
            "    third edn., 1998.",
            "Wagner, R. J., Boulger Jr., R. W., Oblinger, C. J., and Smith, B. A.: Guidelines and standard",
            "    procedures for continuous water-quality monitors: Station operation, record computation, and",
            "    data reporting, U.S. Geological Survey, Reston, Virginia, 2006."]
    pages = [_numbered_page(body[:14], 1), _numbered_page(body[14:], 15), _numbered_page(refs, 1 + len(body))]
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", pages)
    root = etree.fromstring(builtin.convert(pdf)[0])
    entries = [" ".join("".join(r.itertext()).split()) for r in root.iter("ref")]
    assert len(entries) == 3 and all(e.startswith(("Gelman", "Taylor", "Wagner")) for e in entries), entries
    links = {(m, r.split(",")[0]) for m, r in cited(root)}
    assert ("Taylor and Karlin, 1998", "Taylor") in links
    assert ("Wagner et al., 2006", "Wagner") in links
    assert ("Gelman, 2006", "Gelman") in links
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert " 10 " not in text and " 15 " not in text and " 25 " not in text
