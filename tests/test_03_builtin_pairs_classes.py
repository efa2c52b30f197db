"""Stage 03's built-in backend on classes that PDFs compiled from arXiv-style LaTeX sources showed (issue 25,
held-out pairs of round 27): each test writes a small PDF the way the class or package lays it out and checks one
class of problem."""
from __future__ import annotations

import sys
from pathlib import Path

import pypdfium2 as pdfium
from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402  (one PDF-to-XML helper for these files)


def refs_of(root: etree._Element) -> dict[str, str]:
    return {r.get("id"): "".join(r.itertext()).strip() for r in root.iter("ref")}


def cited_surnames(root: etree._Element) -> list[list[str]]:
    """For every marker, the first word of each entry it names (the first author's surname or the label)."""
    refs = refs_of(root)
    return [[refs[rid].split(",")[0].split()[0] for rid in x.get("rid").split()] for x in root.iter("xref")]


def right_edge(tmp_path: Path, page: raw_pdf.Page, needle: str) -> float:
    """Where ``needle``'s last character ends, as PDFium reads the page back."""
    textpage = pdfium.PdfDocument(raw_pdf.write_pdf(tmp_path / "probe.pdf", [page]))[0].get_textpage()
    return textpage.get_charbox(textpage.get_text_range().index(needle) + len(needle) - 1)[2]


def author_year_paper(body: list[str], entries: list[tuple[str, str]], after: list[tuple[str, ...]] = ()) \
        -> raw_pdf.Page:
    """Title, "1 Introduction", ``body`` lines, "References" and hanging-indent entries (first line, second
    line), then ``after``: (x, text, size) pieces drawn in order below the bibliography, each at its own y
    unless it shares the previous piece's line (x given as a float > 0 for the same line)."""
    page = raw_pdf.Page()
    page.text(72, 760, "A Paper Title Set Large", size=18)
    page.text(72, 730, "1 Introduction", size=14, font="F2")
    y = 712
    for line in body:
        page.text(72, y, line)
        y -= 12
    page.text(72, y - 14, "References", size=14, font="F2")
    y -= 34
    for first, second in entries:
        page.text(72, y, first)
        page.text(90, y - 12, second)
        y -= 26
    y -= 10
    for piece in after:
        same_line, x, text, size = piece if len(piece) == 4 else (False, *piece)
        if not same_line:
            y -= size + 6
        page.text(x, y, text, size=size, font="F2" if size > 11 else "F1")
    return page


ENTRIES = [("Agrawal, A. and M. Le (2020): Scalable probabilistic PCA for large data.", "PLOS Genetics 16, e1008773."),
           ("Barbujani, G. and R. R. Sokal (1990): Zones of sharp genetic change in Europe.", "PNAS 87, 1816-1819."),
           ("Cann, R. L. and A. C. Wilson (1987): Mitochondrial DNA and human evolution.", "Nature 325, 31-36.")]
CITING = [f"{BODY}, as shown before (Agrawal and Le, 2020; Cann and Wilson, 1987).",
          f"{BODY} and then it cites Barbujani and Sokal (1990) once more."]


def test_appendix_letter_set_a_quad_apart_from_its_title_ends_the_bibliography(tmp_path):
    """KOMA and article set an appendix heading as "A" and its title a quad apart, two pieces on one baseline:
    the bibliography ends there, and the appendix's numbered formula lines ("1. (Pik − Pjk)2") are no entries."""
    after = [(72, "A", 17), (True, 105, "Derivations", 17),  # 21 pt apart: more than a word space, two pieces
             (72, "1. The first sum expands into the squared distances between the two populations.", 10),
             (72, "2. The second sum vanishes for centred data, as noted by Cann and Wilson (1987).", 10),
             (72, "3. The third term is the covariance of the two projections onto the axes.", 10)]
    root = xml_of(tmp_path, [author_year_paper(CITING, ENTRIES, after)])
    refs = list(refs_of(root).values())
    assert [r.split(",")[0] for r in refs] == ["Agrawal", "Barbujani", "Cann"]
    assert not any("Derivations" in r or "sum" in r for r in refs)
    assert cited_surnames(root) == [["Agrawal", "Cann"], ["Barbujani"], ["Cann"]]  # the appendix cites too
    assert "A Derivations" in [t.text for t in root.iter("title")]


def test_numbered_appendix_heading_and_a_notes_section_end_the_bibliography(tmp_path):
    """ACL-like papers number the appendix after the bibliography ("9 Appendix") and may set a "Notes" section
    of prose between them: neither is part of the last entry, and the appendix's citations are linked."""
    after = [(72, "Notes", 12), (72, "No tools were used in the preparation of this manuscript at all.", 10),
             (72, "9 Appendix", 12),
             (72, "[1] The appendix restates the model of Barbujani and Sokal (1990) in full.", 10),
             (72, "[2] It then lists the parameters used in every run of the simulations.", 10)]
    root = xml_of(tmp_path, [author_year_paper(CITING, ENTRIES, after)])
    refs = list(refs_of(root).values())
    assert len(refs) == 3 and refs[2].endswith("Nature 325, 31-36.")
    assert cited_surnames(root)[-1] == ["Barbujani"]


def test_bibliography_headed_in_korean_chinese_japanese_or_russian_is_a_references_heading():
    """kotex, ctex and babel set the bibliography's heading in the paper's language ("참고 문헌", "参考文献",
    "Список литературы"); the standard 14 fonts cannot draw Hangul, so the heading is checked on a line."""
    def line(text: str) -> builtin.Line:
        chars = [builtin.Char(c, 72 + 10 * k, 700, 80 + 10 * k, 710, 11.0, base=700) for k, c in enumerate(text)]
        return builtin.Line(0, chars, 792, 612)

    for heading in ["참고 문헌", "참고문헌", "参考文献", "參考文獻", "Список литературы", "Литература"]:
        assert builtin.REFERENCES_HEADING.match(heading)
        assert builtin.is_heading(line(heading), 10.0, 220.0)
    assert builtin.APPENDIX_LETTER.match("B 실험 결과 전체")  # a lettered appendix in Hangul ends the bibliography
    assert not builtin.APPENDIX_LETTER.match("A Li")


def test_raised_citation_set_after_a_margin_line_number_stays_on_its_line():
    """lineno writes each margin number where its line ends in the content stream: a superscript citation after
    the line's last word ("… chance.³¹⁻³⁸ However,") comes after the number and is read as a line of its own,
    smaller and raised, between the two pieces of its line. (PDFium orders a test PDF's separate text objects
    by position, so the lines the stream gives are built here as the real PDF gives them.)"""
    def line(x: float, base: float, text: str, size: float = 10.0) -> builtin.Line:
        chars = [builtin.Char(c, x + 5 * k, base, x + 5 * k + 4.5, base + 0.7 * size, size, base=base)
                 for k, c in enumerate(text)]
        return builtin.Line(0, chars, 792, 612)

    host = line(51, 480.9, "time frame can be predicted with a better-than-random chance.")
    fragment = line(host.x1 + 1.4, 484.5, "31-38", size=7.0)
    tail = line(fragment.x1 + 4.0, 480.9, "However,")
    above, below = line(51, 492.9, "mutation of the order, or by showing that the maximal magnitude in a given"), \
        line(51, 468.9, "a significant information gain over the benchmark in predicting the magnitude")
    lines = builtin.rejoin_stranded_superscripts([above, host, fragment, tail, below])
    assert [ln.text for ln in lines] == [above.text, host.text + "31-38 However,", below.text]
    assert [c.sup for c in lines[1].chars if c.text in "31-8"][-5:] == [True] * 5
    assert lines[1].base == host.base
    # a number set apart in the margin, or one a word-space away from nothing, is left alone
    alone = [above, line(20, 484.5, "12", size=7.0), below]
    assert builtin.rejoin_stranded_superscripts(alone) == alone


def test_bracketed_numbers_with_a_prenote_or_a_postnote_are_citations(tmp_path):
    """natbib in numeric mode prints \\citep[e.g.,][]{a,b} as "[e.g., 2, 3]" and \\citep[p.~5]{a} as "[1, p. 5]"."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY} as many have argued [e.g., 2, 3].")
    page.text(72, 668, f"{BODY} as the book says [1, p. 5] and [see also 3].")
    page.text(72, 656, f"{BODY} and the proof is in [2, Theorem 4].")
    page.text(72, 630, "References", size=12, font="F2")
    for n, y in zip(range(1, 4), (610, 598, 586)):
        page.text(72, y, f"[{n}] A. Author{n}. Work number {n}. Journal of Tests, {2000 + n}.")
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == \
        [("2, 3", "ref2 ref3"), ("1", "ref1"), ("3", "ref3"), ("2", "ref2")]


def test_rule_for_repeated_authors_names_the_previous_entrys_first_author(tmp_path):
    """Evolution, American Naturalist, Ecology and APA styles print "———, 1997." for the authors of the entry
    before: a citation "Bürger and Lynch (1997)" names that entry."""
    entries = [("Bürger, R. and M. Lynch, 1995. Evolution and extinction in a changing environment.",
                "Evolution 49:151-163."),
               ("———, 1997. Adaptation and extinction in changing environments. Pp. 209-239,",
                "in Environmental stress, adaptation and evolution. Birkhäuser, Basel."),
               ("Lande, R., 1982. A quantitative genetic theory of life history evolution.", "Ecology 63:607-615.")]
    body = [f"{BODY}, see Bürger and Lynch (1995) and Lande (1982).",
            f"{BODY}, and a later chapter (Bürger and Lynch, 1997) says so too."]
    root = xml_of(tmp_path, [author_year_paper(body, entries)])
    refs = refs_of(root)
    assert [[refs[rid][:10] for rid in x.get("rid").split()] for x in root.iter("xref")] == \
        [["Bürger, R."], ["Lande, R.,"], ["———, 1997."]]


def test_author_list_decides_between_two_entries_of_one_first_author_and_year(tmp_path):
    """"Novembre et al. (2008)" and "Novembre and Stephens (2008)" are two works of one first author and year:
    "et al." names the entry of three or more authors, "and Stephens" the one with Stephens."""
    entries = [("Novembre, J. and M. Stephens (2008): Interpreting principal component analyses.",
                "Nature Genetics 40, 646-649."),
               ("Novembre, John et al. (2008): Genes mirror geography within Europe.", "Nature 456, 98-101."),
               ("Patterson, N., A. L. Price, and D. Reich (2006): Population structure and eigenanalysis.",
                "PLOS Genetics 2, e190.")]
    body = [f"{BODY}, and geography is mirrored (Novembre et al., 2008).",
            f"{BODY}, as Novembre and Stephens (2008) warn, and (Patterson et al., 2006)."]
    root = xml_of(tmp_path, [author_year_paper(body, entries)])
    refs = refs_of(root)
    assert [[refs[rid][:16] for rid in x.get("rid").split()] for x in root.iter("xref")] == \
        [["Novembre, John e"], ["Novembre, J. and"], ["Patterson, N., A"]]


def exponent_paper(first_line: str, marks: list[tuple[float, str]] = ()) -> raw_pdf.Page:
    """A one-page superscript-citing paper: ``first_line`` at y 680, a body line under it ending "as the model
    says." at y 668, ``marks`` (x, text) raised on the first line, and a bibliography of three numbered entries."""
    refs = [f"{n}. A. Author{n}. Work number {n}. Journal of Tests, {1990 + n}." for n in range(1, 4)]
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, first_line)
    page.text(72, 668, f"{BODY} as the model says.")
    for x, text in marks:
        page.text(x, 680 + 3.6, text, size=7)
    page.text(72, 630, "References", size=12, font="F2")
    for ref, y in zip(refs, (610, 598, 586)):
        page.text(72, y, ref)
    return page


def test_raised_number_after_a_one_letter_word_is_an_exponent_not_a_citation(tmp_path):
    """AIP and other superscript-citing papers set formulas in the sentence ("the form b² ∆P"): a raised number
    after a one-letter word is an exponent; after a word or a stop it is a citation."""
    line = "The resistance is assumed to take the form b"
    first = right_edge(tmp_path, exponent_paper(line), "the form b") + 0.3
    page = exponent_paper(line, [(first, "2")])
    second = right_edge(tmp_path, page, "the model says.") + 0.3
    page.text(second, 668 + 3.6, "3", size=7)
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("3", "ref3")]


def test_footnote_whose_mark_is_a_line_of_its_own_is_read_and_its_citations_linked(tmp_path):
    """pdfTeX sets a footnote's mark as a raised text of its own just before the footnote's first line ("²",
    then "More specific versions of this debate …"): read in stream order it is a line of its own, and the
    footnote, which cites, was dropped with the small print."""
    entries = [("Murty, S. and C. Manning (2023): Grokking of hierarchical structure.", "Proceedings of ACL, 1-12."),
               ("Petty, J. and R. Frank (2021): Transformers generalize linearly.", "arXiv:2109.12036."),
               ("Weiss, G. and E. Yahav (2021): Thinking like transformers.", "Proceedings of ICML, 11080-11090.")]

    def paper(mark_x: float | None = None) -> raw_pdf.Page:
        page = raw_pdf.Page()
        page.text(72, 760, "A Paper Title Set Large", size=18)
        page.text(72, 730, "1 Introduction", size=14, font="F2")
        y = 712
        for n in range(8):
            page.text(72, y, "Ordinary body text of a paper uses the language of (Weiss and Yahav, 2021) here.")
            y -= 12
        page.text(72, y, "Whether they generalize hierarchically is still debated.")
        if mark_x is not None:
            page.text(mark_x, y + 3.6, "2", size=6)  # the body's raised mark, drawn after its line
            page.text(72, 400 + 3.2, "2", size=5)  # the footnote's mark, a text of its own ...
            page.text(75, 400, "More specific versions of this debate: (Petty and Frank, 2021) vs", size=8)
            page.text(72, 391, "(Murty and Manning, 2023) on hierarchical generalization.", size=8)
        page.text(72, 360, "References", size=14, font="F2")
        y = 340
        for first, second in entries:
            page.text(72, y, first)
            page.text(90, y - 12, second)
            y -= 26
        return page

    root = xml_of(tmp_path, [paper(right_edge(tmp_path, paper(), "still debated.") + 0.3)])
    paragraphs = ["".join(p.itertext()) for p in root.iter("p")]
    assert any(p.startswith("More specific versions of this debate") for p in paragraphs)
    assert cited_surnames(root)[-2:] == [["Petty"], ["Murty"]]
