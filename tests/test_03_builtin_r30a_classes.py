"""Stage 03's built-in backend on classes that PDFs compiled from the round-30a held-out LaTeX sources showed
(issue 25: physics, astronomy and mathematics papers; MNRAS, AAS, A&A, JHEP, PoS, revtex): each test writes the
PDF the way the class lays it out and checks one class of problem."""
from __future__ import annotations

import re
import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, end_x, raws_of  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin  # noqa: E402  (one PDF-to-XML helper for these files)

SURNAMES = ["Kalman", "Doob", "Simon", "Stengel", "Harvey", "Jacobs", "Friedland", "Wiberg", "Scargle", "Denham"]


def test_an_appendix_heading_that_wraps_after_the_bibliography_ends_it_and_its_citations_count(tmp_path):
    """MNRAS sets its appendices after the bibliography, each under a heading in bold capitals with its letter
    ("APPENDIX A: HOW DO FLUX PERTURBATIONS" over "EVOLVE?"): in a narrow column the title wraps, and its first
    line runs to the column's edge, so it did not read as a heading. The appendices' text then became entries of
    the bibliography (243 "entries" for 120 works) and their citations were lost (25 of 119 keys cited only
    there). A heading with an appendix's letter, bold or in capitals, is one at any width."""
    pages = [raw_pdf.Page() for _ in range(3)]
    pages[0].text(50, 740, "Probing Accretion Physics with a Light Curve", size=18)
    pages[0].text(50, 712, "1 INTRODUCTION", font="F2")
    for k in range(8):
        pages[0].text(50, 696 - 13 * k, f"{BODY} as in [{k + 1}].")
    pages[1].text(50, 740, "REFERENCES", font="F2")
    y = 724
    for k, name in enumerate(SURNAMES):
        pages[1].text(50, y, f"[{k + 1}] {name} R. E., {1960 + k}, A study of filtering number {k + 1}. Journal of")
        pages[1].text(62, y - 12, f"Basic Engineering {10 + k}, {100 + k}.")
        y -= 26
    heading = "APPENDIX A: HOW DO THE FLUX PERTURBATIONS OF AN ACCRETION DISK EVOLVE"
    line = f"{BODY} (see [9] and [10])."
    assert end_x(tmp_path, 50, heading) - 50 > 0.8 * (end_x(tmp_path, 50, line) - 50)  # the heading is no short line
    pages[2].text(50, 740, heading, font="F2")
    pages[2].text(50, 727, "IN TIME?", font="F2")
    for k in range(6):
        pages[2].text(50, 711 - 13 * k, line if k in (1, 4) else f"{BODY} and it ends here.")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", pages)
    root = etree.fromstring(builtin.convert(pdf)[0])
    raws = raws_of(root)
    assert [r.split(" R. E.,")[0] for r in raws] == [f"[{k + 1}] {name}" for k, name in enumerate(SURNAMES)]
    assert {r.split(" R. E.,")[0] for _, r in cited(root)} == {f"[{k + 1}] {name}" for k, name in enumerate(SURNAMES)}
    assert "APPENDIX A" in " ".join("".join(t.itertext()) for t in root.find("body").iter("title"))


def test_the_year_after_an_astronomy_entrys_names_is_its_year_not_a_page_that_looks_like_one():
    """AAS, MNRAS and A&A print "Wright, E. L., Eisenhardt, P. R. M., et al. 2010, AJ, 140, 1868": no title, the
    year straight after the names and the page last. Read as the entry's last year-like number, 1868 was its year,
    and "(Wright et al. 2010)" named no entry (5 of 30 keys of an emulateapj paper unlinked). The year that
    follows the names (after an initial, "et al." or "&") is the year; elsewhere the last one still is."""
    raws = ["Wright, E. L., Eisenhardt, P. R. M., Mainzer, A. K., et al. 2010, AJ, 140, 1868",
            "Strauss, M. A., Weinberg, D. H., Lupton, R. H., et al. 2002, AJ, 124, 1810",
            "Brown A. G. A., 2021, ARA&A, 59, 59",
            "Gaskell C. M. & Peterson B. M. 1987, ApJS, 65, 1",
            "[4] R. E. Kalman, A new approach to linear filtering, J. Basic Eng. 82, 35 (1960)",
            "[5] D. Simon, Optimal State Estimation, Wiley, 2006."]
    years = []
    for raw in raws:
        fields = builtin.parse_reference(raw)
        start, end = fields["year"]
        years.append(raw[start:end])
    assert years == ["2010", "2002", "2021", "1987", "1960", "2006"]


def test_half_size_line_numbers_just_before_both_columns_lines_are_dropped(tmp_path):
    """AASTeX's ``linenumbers`` option numbers every line of both columns just left of it, in type half the
    text's size, under half an em before the line ("63 and degraded to match …", the right column's "112 in
    principle …" in the gutter): closer than the gap a margin number was looked for at, the numbers stayed on
    their lines, and every sentence read "… the 100 use of models …" (499 numbers in one paper's body). A number
    in smaller type than the text after it, a quarter em apart, is split off; rising down both columns, the
    numbers are dropped, and the sentences and their citations are whole."""
    page = raw_pdf.Page()
    gap = 0.45 * 10
    number = iter(range(40, 100))
    for x in (50, 320):
        for k in range(18):
            y = 700 - 12.5 * k
            label = str(next(number))
            page.text(x - gap - (end_x(tmp_path, 0, label, size=5) - 0), y, label, size=5)
            page.text(x, y, f"ordinary text of a column line {k} as in [{k % 6 + 1}]" if k % 3 == 0
                      else f"ordinary text of a column line {k} goes on")
    last = raw_pdf.Page()
    last.text(50, 740, "REFERENCES", font="F2")
    for k, name in enumerate(SURNAMES[:6]):
        last.text(50, 724 - 12 * k, f"[{k + 1}] {name} R. E. {1960 + k}, Journal of Basic Engineering, {10 + k}, 35")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page, last])
    root = etree.fromstring(builtin.convert(pdf)[0])
    body = " ".join("".join(root.find("body").itertext()).split())
    assert "ordinary text of a column line 1 goes on ordinary text of a column line 2 goes on" in body
    assert not re.search(r"\b[4-9]\d ordinary\b|on [4-9]\d\b", body)
    assert len(raws_of(root)) == 6 and len(cited(root)) == 12


def test_a_footnote_mark_after_a_full_stop_does_not_glue_two_sentences(tmp_path):
    """A&A and AAS set a footnote's mark after the sentence's full stop ("… for the Astropy project.² One of
    the primary aims …"): in an author-year paper the raised "2" names no entry, and printed as "project.2 One"
    it made the two sentences one for stage 04 (each with the other's citations). A raised number after a full
    stop that names no entry is a footnote's mark and is left out; one after a word stays ("PyFITS⁷ project")."""
    page = raw_pdf.Page()
    page.text(50, 740, "1 Introduction", font="F2")
    first = "Many people have signed up to the mailing list of the Astropy project."
    page.text(50, 724, first)
    page.text(end_x(tmp_path, 50, first) + 0.5, 727.5, "2", size=6)
    page.text(50, 712, "One of the primary aims is a core package for astronomy (Smith 2001). The FITS")
    page.text(50, 700, "reader is a port of the PyFITS")
    page.text(end_x(tmp_path, 50, "reader is a port of the PyFITS") + 0.5, 703.5, "7", size=6)
    page.text(end_x(tmp_path, 50, "reader is a port of the PyFITS") + 5, 700, "project (Barrett & Bridgman 1999).")
    for k in range(6):
        page.text(50, 688 - 12 * k, f"{BODY} and so on (Smith 2001).")
    page.text(50, 600, "References", font="F2")
    page.text(50, 584, "Barrett, P. E., & Bridgman, W. T. 1999, in ASP Conf. Ser. 172, 483")
    page.text(50, 572, "Smith, J. 2001, ApJ, 550, 1810")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    body = " ".join("".join(root.find("body").itertext()).split())
    assert "Astropy project. One of the primary aims" in body
    assert "PyFITS7 project" in body
    assert {r.split(",")[0] for _, r in cited(root)} == {"Smith", "Barrett"}


def test_the_rest_of_a_justified_line_that_came_in_pieces_goes_on_with_its_paragraph(tmp_path):
    """A justified line whose word gap is wider than the reader's line break comes out in pieces; where the first
    piece is one short word ("ENZO" | "(Bryan et al. 2014). Two cosmological simu-"), the second starts as far
    into the column as a paragraph's indent, and it opened a new paragraph: the sentence was cut before its
    citation. A piece right of the one before it, on its baseline, goes on with its line."""
    page = raw_pdf.Page()
    page.text(50, 740, "1 Method", font="F2")
    page.text(50, 724, "We analyse outputs from a radiation hydrodynamic adaptive mesh refinement code")
    page.text(50, 712, "by")  # the second piece 4-30 pt right of the column's left, where an indent is
    page.text(end_x(tmp_path, 50, "by") + 13, 712, "(Smith 2001). Two cosmological simulations are run for the")
    page.text(50, 700, "study of the shielding of molecular hydrogen in the first galaxies with the code")
    page.text(50, 688, "ENZO")  # a word in capitals, alone on its piece: no heading, with text beside it
    page.text(end_x(tmp_path, 50, "ENZO") + 13, 688, "(Jones 2005). The two runs differ in how they shield.")
    for k in range(6):
        page.text(50, 676 - 12 * k, f"{BODY} and so on (Smith 2001).")
    page.text(50, 600, "References", font="F2")
    page.text(50, 584, "Jones, A. 2005, MNRAS, 360, 1")
    page.text(50, 572, "Smith, J. 2001, ApJ, 550, 10")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    root = etree.fromstring(builtin.convert(pdf)[0])
    paragraphs = [" ".join("".join(p.itertext()).split()) for p in root.find("body").iter("p")]
    assert paragraphs[0].startswith("We analyse outputs from a radiation hydrodynamic adaptive mesh refinement code by "
                                    "(Smith 2001). Two cosmological simulations are run for the study")
    assert "first galaxies with the code ENZO (Jones 2005). The two runs differ" in paragraphs[0]
    assert {r.split(",")[0] for _, r in cited(root)} == {"Smith", "Jones"}


def test_text_of_both_columns_above_an_unheaded_bibliography_band_is_body(tmp_path):
    """revtex sets no "References" heading: on the last page the bibliography opens with "[1] …" in a band across
    the page's foot, under the text of both columns. Read column by column, the right column's text above the
    band came after the first entry and was lost (an appendix's last paragraph, three works cited only there); it
    is put back before the band, as it is under a Frontiers "REFERENCES" heading."""
    first, last = raw_pdf.Page(), raw_pdf.Page()
    first.text(45, 740, "Fast Adiabatic Waveforms Set Large", size=18)
    first.text(45, 710, "I. INTRODUCTION", size=10, font="F2")
    for k in range(20):
        first.text(45, 695 - 12 * k, f"The left column of ordinary text goes on here [{k % 3 + 1}].")
        first.text(303, 695 - 12 * k, f"The right column of ordinary text goes on [{k % 2 + 1}].")
    left = ["To check these calculations we verify the matrix", "and the covariances of the model parameters",
            "near the peak of the likelihood, as they should."]
    right = ["As a final check we sample the posterior with the", "open-source sampling tool [4, 5, 6]. To simplify",
             "the calculation we hold the other parameters fixed."]
    for k in range(12):
        last.text(45, 740 - 12 * k, left[k % 3])
        last.text(303, 740 - 12 * k, right[k % 3])
    names = ["NASA", "ESA", "Babak", "Foreman-Mackey", "Karnesis", "Katz"]
    for k, name in enumerate(names):
        x, y = (45, 560 - 20 * k) if k < 3 else (303, 560 - 20 * (k - 3))
        last.text(x, y, f"[{k + 1}] {name}, A study of waveforms number {k + 1},", size=8)
        last.text(x + 10, y - 9, f"Phys. Rev. D {90 + k}, {100 + k} ({2010 + k}).", size=8)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [first, last])
    root = etree.fromstring(builtin.convert(pdf)[0])
    body = " ".join("".join(root.find("body").itertext()).split())
    assert "open-source sampling tool [4, 5, 6]. To simplify the calculation" in body
    assert [r.split(",")[0] for r in raws_of(root)] == [f"[{k + 1}] {name}" for k, name in enumerate(names)]
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()).split(",")[0] for r in root.iter("ref")}
    named = {refs[rid] for x in root.find("body").iter("xref") for rid in x.get("rid").split()}
    assert named >= {"[4] Foreman-Mackey", "[5] Karnesis", "[6] Katz"}


def test_a_footnote_mark_after_a_full_stop_in_a_linked_pdf_is_left_out_and_a_linked_citation_kept():
    """The same mark in a PDF whose citations are links (revtex with hyperref: "… tool [50–52].¹² To simplify …"):
    the raised "12" links to its footnote, not to an entry, and goes; a raised number linked to an entry stays, and
    so does a mark after a word."""
    def chars(text: str, raised: set[int], links: dict[int, int]) -> list:
        return [builtin.Char(c, 5.0 * k, 700, 5.0 * k + 4.5, 707, 7.0 if k in raised else 10.0, link=links.get(k, -1),
                             base=703 if k in raised else 700, sup=k in raised) for k, c in enumerate(text)]

    text = "the tool [50].12 To simplify, see Eryn9 and more.3 End"
    raised = {text.index("12"), text.index("12") + 1, text.index("9"), text.index("3 End")}
    links = {text.index("12"): 7, text.index("12") + 1: 7, text.index("3 End"): 8}  # 7: the footnote, 8: an entry
    kept = builtin._without_marks_after_stops(chars(text, raised, links),
                                              lambda ch: {8: 2}.get(ch.link) if ch.link >= 0 else None)
    assert "".join(c.text for c in kept) == "the tool [50]. To simplify, see Eryn9 and more.3 End"


def test_an_authors_email_under_the_first_pages_column_does_not_split_its_sentence(tmp_path):
    """MNRAS sets the corresponding author's "⋆ E-mail: …" under the first page's column, a point below the body's
    size: too near it to read as a footnote, it was read as the next line of the column's last paragraph, and
    the sentence running on to the next page came out cut ("(Blandford E-mail: vish@… & Payne 1982)"). A line
    opening with "E-mail:" below the column's last body line is the authors' address, not text."""
    first, second = raw_pdf.Page(), raw_pdf.Page()
    first.text(50, 740, "1 INTRODUCTION", font="F2")
    for k in range(10):
        first.text(50, 724 - 12 * k, f"{BODY} and so on (Smith 2001).")
    first.text(50, 604, "Three mechanisms may extract angular momentum: outflow caused by stresses (Blandford")
    first.text(50, 80, "* E-mail: author@example.edu", size=9)
    second.text(50, 740, "& Payne 1982) and shocks produced by waves (Smith 2001).")
    for k in range(4):
        second.text(50, 728 - 12 * k, f"{BODY} and so on (Smith 2001).")
    second.text(50, 660, "REFERENCES", font="F2")
    second.text(50, 644, "Blandford R. D., Payne D. G., 1982, MNRAS, 199, 883")
    second.text(50, 632, "Smith J., 2001, ApJ, 550, 10")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [first, second])
    root = etree.fromstring(builtin.convert(pdf)[0])
    body = " ".join("".join(root.find("body").itertext()).split())
    assert "outflow caused by stresses (Blandford & Payne 1982) and shocks" in body
    assert "E-mail" not in body
