"""Stage 03's built-in backend on published papers of other fields (issue 25, fourth round: 34 biology and
chemistry PDFs from publishers' pipelines — ACS, RSC, Cell Press, Science, PNAS, Nature, OUP, MDPI, CSHL, Word
preprints): each test builds a small PDF the way that producer lays it out, and checks one class of problem the
held-out measurement showed."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from raw_pdf import BOX, MINUS  # noqa: E402
from test_03_builtin_published_classes import cited, end_x, raws_of  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402

PROSE = "Ordinary body text of a paper that runs on for a while and"


def raised(tmp_path: Path, page: raw_pdf.Page, x: float, y: float, text: str, mark: str, size: float = 10,
           font: str = "F1") -> None:
    """A line of text with a superscript ``mark`` set right after its last word."""
    page.text(x, y, text, size=size, font=font)
    page.text(end_x(tmp_path, x, text, size) + 0.3, y + 0.35 * size, mark, size=0.6 * size, font=font)


def marks(root) -> list[tuple[str, str]]:
    """(marker text, the first 12 characters of the first entry it names)."""
    return [(m, r[:12]) for m, r in cited(root)]


def named(root) -> list[tuple[str, list[str]]]:
    """(marker text, the first 8 characters of every entry it names)."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, [refs[k][:8] for k in x.get("rid").split()]) for x in root.iter("xref")]


# ---------------------------------------------------------------------------------------------------------
# ACS: "■ REFERENCES", entries labelled "(1)", superscript ranges set with a minus sign
# ---------------------------------------------------------------------------------------------------------

def acs_paper(tmp_path: Path) -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, f"{BOX} INTRODUCTION", size=10.5, font="F4")
    y = 680
    for text, mark in [(f"{PROSE} predicts crystal structures.", "1"),
                       (f"{PROSE} we follow previous approaches.", f"2{MINUS}4"),
                       (f"{PROSE} symmetry restraints help here.", "5")]:
        raised(tmp_path, page, 72, y, text, mark, font="F4")
        y -= 12
    for k in range(3):
        page.text(72, y, f"{PROSE} more of the same, line {k}.")
        y -= 12
    page.text(72, y - 14, f"{BOX} REFERENCES", size=10.5, font="F4")
    y -= 34
    for n, (first, second) in enumerate([("Parrinello, M.; Rahman, A. Polymorphic transitions in single",
                                          "crystals. J. Appl. Phys. 1981, 52, 7182."),
                                         ("Ryckaert, J.-P.; Ciccotti, G. Numerical integration of the",
                                          "cartesian equations of motion. J. Comput. Phys. 1977, 23, 327."),
                                         ("Andersen, H. C. Rattle: a velocity version of the shake",
                                          "algorithm. J. Comput. Phys. 1983, 52, 24" + MINUS + "34."),
                                         ("Tobias, D. J.; Brooks, C. L. Molecular dynamics with internal",
                                          "coordinate constraints. J. Chem. Phys. 1988, 89, 5115."),
                                         ("Ryckaert, J.-P. Special geometrical constraints in the molecular",
                                          "dynamics of chain molecules. Mol. Phys. 1985, 55, 549.")], start=1):
        # the label stands further right than the entry's other lines: a hanging indent the wrong way round
        page.text(76, y, f"({n}) {first}", size=9, font="F4")
        page.text(72, y - 11, second, size=9, font="F4")
        y -= 24
    return page


def test_heading_opened_by_an_ornament_starts_the_bibliography(tmp_path):
    """ACS journals print "■ REFERENCES" (and "■ INTRODUCTION"): the square is an ornament, the heading is
    the bibliography's (a paper with 36 entries came out with none and was reported empty)."""
    root = xml_of(tmp_path, [acs_paper(tmp_path)])
    assert [r[:16] for r in raws_of(root)] == ["(1) Parrinello, ", "(2) Ryckaert, J.", "(3) Andersen, H.",
                                               "(4) Tobias, D. J", "(5) Ryckaert, J."]
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == ["■ INTRODUCTION"]


def test_labels_in_parentheses_number_the_entries_and_superscripts_name_them(tmp_path):
    """ACS labels its entries "(1) Parrinello, M.; …", the label set further right than the entry's second line:
    "(n)" is the label, each starts its entry, and the raised numbers of the text name entries by it."""
    root = xml_of(tmp_path, [acs_paper(tmp_path)])
    assert marks(root) == [("1", "(1) Parrinel"), ("2–4", "(2) Ryckaert"), ("5", "(5) Ryckaert")]


def test_range_set_with_a_minus_sign_names_every_entry_in_it(tmp_path):
    """ACS sets the range of a superscript "2−4" with a minus sign (U+2212), not an en dash: it names 2, 3
    and 4, as "2–4" does."""
    root = xml_of(tmp_path, [acs_paper(tmp_path)])
    xrefs = {x.text: x.get("rid").split() for x in root.iter("xref")}
    assert xrefs["2–4"] == ["ref2", "ref3", "ref4"]


# ---------------------------------------------------------------------------------------------------------
# RSC: bare-number labels before initials-first authors; a justified line broken into pieces
# ---------------------------------------------------------------------------------------------------------

def rsc_paper(tmp_path: Path, justified_piece: bool = False) -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "Introduction", size=12, font="F2")
    y = 680
    for text, mark in [(f"{PROSE} allows deeper tissue imaging.", "1"), (f"{PROSE} as engineered before.", "2,3"),
                       (f"{PROSE} and brighter variants.", "4")]:
        raised(tmp_path, page, 72, y, text, mark)
        y -= 12
    for k in range(3):
        page.text(72, y, f"{PROSE} more of the same, line {k}.")
        y -= 12
    page.text(72, y - 14, "Notes and references", size=12, font="F2")
    y -= 34
    entries = [("1 C. Ash, M. Dubec, K. Donne and T. Bashford, Effect of wavelength", "on penetration, Lasers Med. Sci., 2017, 32, 1909-1918."),
               ("2 J. Livet, T. A. Weissman and J. W. Lichtman, Transgenic strategies", "for imaging of the nervous system, Nature, 2007, 450, 56-62."),
               ("3 D. Cai, K. B. Cohen and J. R. Sanes, Improved tools for the", "Brainbow toolbox, Nat. Methods, 2013, 10, 540-547."),
               ("4 R. E. Campbell, O. Tour and R. Y. Tsien, A monomeric red", "fluorescent protein, Proc. Natl. Acad. Sci., 2002, 99, 7877-7882."),
               ("5 D. S. Bindels, L. Haarbosch and T. W. Gadella, mScarlet: a bright", "monomeric red fluorescent protein, Nat. Methods, 2017, 14, 53-56."),
               ("6 K. K. Yang, Z. Wu and F. H. Arnold, Machine-learning-guided", "directed evolution, Nat. Methods, 2019, 16, 687-694.")]
    for n, (first, second) in enumerate(entries):
        page.text(72, y, first, size=10)
        if justified_piece and n == 1:
            # the entry's second line, fully justified in a narrow column: word gaps wider than the reader's
            # line break, so "A. Lukyanov" comes out as a piece of its own
            x = 84
            for word in ["K.", "A. Lukyanov", "and", "S.", "A. Lukyanov,", "GFP-like"]:
                page.text(x, y - 12, word, size=10)
                x = end_x(tmp_path, x, word) + 14
            page.text(84, y - 24, second, size=10)
            y -= 12
        else:
            page.text(84, y - 12, second, size=10)
        y -= 26
    return page


def test_bare_number_labels_before_initials_first_authors_are_the_entries_labels(tmp_path):
    """RSC prints "4 R. E. Campbell, O. Tour, …": a bare number before authors written initials first is the
    label, and the raised numbers of the text name entries by it (a paper with 58 entries had none linked)."""
    root = xml_of(tmp_path, [rsc_paper(tmp_path)])
    assert marks(root) == [("1", "1 C. Ash, M."), ("2,3", "2 J. Livet, "), ("4", "4 R. E. Camp")]


def test_a_piece_of_a_justified_line_is_no_lettered_heading(tmp_path):
    """A justified line whose word gaps are wider than the reader's line break comes out in pieces; the piece
    "A. Lukyanov" reads like a lettered heading ("A. Methods"). A piece with text of its own column beside it
    on the same baseline is part of that line: the bibliography goes on after it."""
    root = xml_of(tmp_path, [rsc_paper(tmp_path, justified_piece=True)])
    raws = raws_of(root)
    assert len(raws) == 6 and "Lukyanov" in raws[1] and raws[3].startswith("4 R. E. Campbell")
    assert marks(root)[-1] == ("4", "4 R. E. Camp")


# ---------------------------------------------------------------------------------------------------------
# HighWire's notice page after the paper
# ---------------------------------------------------------------------------------------------------------

def test_a_notice_page_with_a_references_heading_after_the_paper_is_not_the_bibliography(tmp_path):
    """CSHL Press (HighWire) ends the PDF with a notice page: "References  This article cites 54 articles, …",
    e-mail alerts, subscriptions. Its heading is the last References heading, but nothing dated stands under it:
    the bibliography is the one before it (a paper with 74 entries came out with 4, the notice's lines)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "INTRODUCTION", size=10, font="F2")
    page.text(72, 680, f"{BODY} (Vagin et al. 2006; Houwing et al. 2007).")
    page.text(72, 668, f"{BODY}, as shown before (Aravin et al. 2008).")
    for k in range(4):
        page.text(72, 656 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 590, "REFERENCES", size=10, font="F2")
    for n, entry in enumerate(["Aravin AA, Sachidanandam R, Hannon GJ. 2008. A piRNA pathway. Mol Cell 31: 785-799.",
                               "Houwing S, Kamminga LM, Ketting RF. 2007. A role for Piwi. Cell 129: 69-82.",
                               "Vagin VV, Sigova A, Zamore PD. 2006. A distinct small RNA pathway. Science 313: 320-324."]):
        page.text(72, 570 - 12 * n, entry, size=9)
    notice = raw_pdf.Page()
    notice.text(72, 740, "A Paper Title Set Large", size=14, font="F2")
    notice.text(72, 700, "References", size=10, font="F2")
    notice.text(72, 680, "This article cites 54 articles, 12 of which can be accessed free at:", size=9)
    notice.text(72, 668, "http://rnajournal.example.org/content/18/11/2056.full.html#ref-list-1", size=9)
    notice.text(72, 640, "Email Alerting Service", size=10, font="F2")
    notice.text(72, 620, "Receive free email alerts when new articles cite this article", size=9)
    root = xml_of(tmp_path, [page, notice])
    raws = raws_of(root)
    assert [r[:8] for r in raws[:3]] == ["Aravin A", "Houwing ", "Vagin VV"]
    assert named(root) == [("Vagin et al. 2006; Houwing et al. 2007", ["Vagin VV", "Houwing "]),
                           ("Aravin et al. 2008", ["Aravin A"])]


# ---------------------------------------------------------------------------------------------------------
# Word's numbered list: "10.Hayta, E. N.; …"
# ---------------------------------------------------------------------------------------------------------

def test_a_two_digit_label_with_no_space_after_its_full_stop_is_a_label(tmp_path):
    """Word's numbered list leaves no space after a two-digit number ("9. Molinari, S.; …", "10.Hayta, E. N.;
    …"): "10." is still the label, and entry 10 is not glued to entry 9 (a preprint's 39 entries came out as 10)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as shown before [9].")
    page.text(72, 668, f"{BODY}, and again [10].")
    for k in range(4):
        page.text(72, 656 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 590, "References", size=12, font="F2")
    y = 570
    for n in range(1, 12):
        label = f"{n}. " if n < 10 else f"{n}."
        page.text(72, y, f"{label}Author{n}, A.; Other, B. A title of work {n}. J. Test 2020, {n}, 1-9.", size=9)
        y -= 12
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert len(raws) == 11 and raws[9].startswith("10.Author10")
    assert marks(root) == [("9", "9. Author9, "), ("10", "10.Author10,")]


# ---------------------------------------------------------------------------------------------------------
# Cell Press: destinations in the gap above their entry; STAR Methods after the bibliography
# ---------------------------------------------------------------------------------------------------------

def test_link_destination_level_with_the_previous_entrys_last_line_names_the_entry_below(tmp_path):
    """Cell Press sets each entry's destination in the gap above it, level with the last line of the entry
    before ("org/10.1107/S0907444909052925."): a line that can only go on an entry (a DOI's tail, page
    numbers, a lower-case word) gives way to the line below it that opens one ("Li, D., Bentley, C., …")."""
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "INTRODUCTION", size=10, font="F2")
    first, second = f"{PROSE} was solved before ", f"{PROSE} and targeted since "
    body.text(60, 680, first + "(Adams et al., 2010).")
    body.text(60, 668, second + "(Li et al., 2017).")
    for k in range(4):
        body.text(60, 656 - 12 * k, f"{BODY}, line {k}.")
    refs = raw_pdf.Page()
    refs.text(60, 740, "REFERENCES", size=10, font="F2")
    lines = ["Adams, P.D., Afonine, P.V., and Chen, V.B. (2010). A system for macromolecular",
             "structure solution. Acta Crystallogr. D 66, 213-221. https://doi.",
             "org/10.1107/S0907444909052925.",
             None,
             "Li, D., Bentley, C., and Anderson, A. (2017). Targeting mutant p53 with",
             "antibodies. Cancer Res. 77, 1-10. https://doi.org/10.1158/0008-5472.",
             None,
             "Low, L., Goh, A., and Koh, J. (2019). Targeting mutant p53-expressing tumours.",
             "Nat. Commun. 10, 5382."]
    y, base = 715, {}
    for n, line in enumerate(lines):
        if line is None:
            y -= 4  # Cell Press: a wider gap between entries, no label, no indent
            continue
        refs.text(60, y, line, size=7)
        base[n] = y
        y -= 9.5
    # Adams's destination at its first line; Li's level with the top of Adams's last line
    x_a, x_b = end_x(tmp_path, 60, first + "("), end_x(tmp_path, 60, second + "(")
    r_a, r_b = end_x(tmp_path, 60, first + "(Adams et al., 2010"), end_x(tmp_path, 60, second + "(Li et al., 2017")
    body.link((x_a, 678, r_a + 0.5, 689), page=1, x=60, y=base[0] + 7)
    body.link((x_b, 666, r_b + 0.5, 677), page=1, x=60, y=base[2] + 6)
    root = xml_of(tmp_path, [body, refs])
    assert [(m, r[:8]) for m, r in cited(root)] == [("Adams et al., 2010", "Adams, P"), ("Li et al., 2017", "Li, D., ")]


@pytest.mark.parametrize("heading", ["STAR+METHODS", "Methods"])
def test_methods_printed_after_the_bibliography_are_body_and_cite(tmp_path, heading):
    """Cell Press prints STAR★METHODS after the main text's references, Nature its "Methods": that text is body
    (it cites like the body), not entries of the bibliography."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as shown before [1].")
    for k in range(4):
        page.text(72, 668 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 600, "References", size=12, font="F2")
    for n, entry in enumerate(["[1] A. First, J. Chem. 1, 10 (2001).", "[2] B. Second, J. Chem. 2, 20 (2002).",
                               "[3] C. Third, J. Chem. 3, 30 (2003)."]):
        page.text(72, 580 - 12 * n, entry, size=9)
    methods = raw_pdf.Page()
    methods.text(72, 740, heading, size=12, font="F2")
    methods.text(72, 720, f"{BODY}, the cells were grown as described [2].")
    methods.text(72, 708, f"{BODY}, and the structure refined with the program of [3].")
    root = xml_of(tmp_path, [page, methods])
    raws = raws_of(root)
    assert len(raws) == 3 and not any("cells were grown" in r for r in raws)
    assert [m for m, _ in cited(root)] == ["1", "2", "3"]


# ---------------------------------------------------------------------------------------------------------
# Science Advances and others: a power of ten in a paper that cites by superscripts
# ---------------------------------------------------------------------------------------------------------

def test_the_exponent_of_a_power_of_ten_is_no_citation(tmp_path):
    """"1.28 × 10⁹ unique peptides", "(10⁴ cells per well)": the raised number over a "10" after a times sign or
    a bracket is an exponent, not a citation of entry 9 or 4; after a version number ("STATA version 10³") a
    raised number still cites."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "Introduction", size=12, font="F2")
    raised(tmp_path, page, 72, 680, f"{PROSE} allows deeper tissue imaging.", "1")
    raised(tmp_path, page, 72, 668, f"{PROSE} the library held 1.28 \u00d7 10", "2")
    page.text(72, 656, f"{PROSE} unique peptides in all, and cells were seeded")
    raised(tmp_path, page, 72, 644, "on plates (10", "3")
    page.text(end_x(tmp_path, 72, "on plates (10") + 6, 644, "cells per well), as described.")
    raised(tmp_path, page, 72, 632, f"{PROSE} as the earlier study showed.", "2")
    raised(tmp_path, page, 72, 620, f"{PROSE} and analysed with STATA version 10", "3")
    for k in range(2):
        page.text(72, 608 - 12 * k, f"{PROSE} more of the same, line {k}.")
    page.text(72, 570, "References", size=12, font="F2")
    for n, entry in enumerate(["1. A. First, J. Chem. 1, 10 (2001).", "2. B. Second, J. Chem. 2, 20 (2002).",
                               "3. C. Third, J. Chem. 3, 30 (2003)."]):
        page.text(72, 550 - 12 * n, entry, size=9)
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("1", "1. A. First,"), ("2", "2. B. Second"), ("3", "3. C. Third,")]


# ---------------------------------------------------------------------------------------------------------
# QuarkXPress: "Introduction" at body size in a font that reports no weight
# ---------------------------------------------------------------------------------------------------------

def test_introduction_alone_on_its_line_opens_the_body_without_bold_or_size(tmp_path):
    """Journal of Cell Science (QuarkXPress) sets "Summary" and "Introduction" at body size in a font whose
    weight PDFium cannot read: "Introduction" alone on its line still opens the body, and the introduction's
    citations are read (a paper lost its first pages up to "Materials and Methods")."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "Summary", size=10)
    for k in range(3):
        page.text(72, 688 - 12 * k, f"{BODY}, summary line {k}.")
    page.text(72, 640, "Introduction", size=10)
    page.text(72, 628, f"{BODY} (Gianinazzi et al., 1970; Bol et al., 1990).")
    for k in range(3):
        page.text(72, 616 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 570, "Materials and Methods", size=12, font="F2")
    page.text(72, 555, f"{BODY}, as described (Tang et al., 1993).")
    page.text(72, 520, "References", size=12, font="F2")
    for n, entry in enumerate(["Bol, J. F., Linthorst, H. J. M. and Cornelissen, B. J. C. (1990). Plant pathogenesis.",
                               "Gianinazzi, S., Martin, C. and Vallee, J. C. (1970). Hypersensitivity to viruses.",
                               "Tang, B. L., Wong, S. H. and Hong, W. (1993). Molecular cloning of the receptor."]):
        page.text(72, 500 - 12 * n, entry, size=9)
    root = xml_of(tmp_path, [page])
    assert [t.text for t in root.iter("title") if t.getparent().tag == "sec"] == ["Introduction",
                                                                                   "Materials and Methods"]
    assert named(root) == [("Gianinazzi et al., 1970; Bol et al., 1990", ["Gianinaz", "Bol, J. "]),
                           ("Tang et al., 1993", ["Tang, B."])]


# ---------------------------------------------------------------------------------------------------------
# MDPI: link words on a line of their own; a bracketed marker without its link
# ---------------------------------------------------------------------------------------------------------

def mdpi_entries(page: raw_pdf.Page, y: float) -> list[float]:
    """Five numbered entries, each followed by its link words on a line of their own; returns each entry's y."""
    tops = []
    for n in range(1, 6):
        page.text(72, y, f"{n}. Author{n}, A.; Other, B. A title of work {n}. J. Test 2020, {n}, 1-9.", size=9)
        page.text(84, y - 11, "[CrossRef] [PubMed]", size=9)
        tops.append(y)
        y -= 24
    return tops


def test_link_words_on_a_line_of_their_own_are_no_label(tmp_path):
    """MDPI and Frontiers print "[CrossRef] [PubMed] [Google Scholar]" after each entry; wrapped to a line of
    their own they look like a bracketed label "[Smi05]", but they start no entry."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as shown before [2].")
    page.text(72, 668, f"{BODY}, and again [4,5].")
    for k in range(4):
        page.text(72, 656 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 590, "References", size=12, font="F2")
    mdpi_entries(page, 570)
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert [r[:3] for r in raws] == ["1. ", "2. ", "3. ", "4. ", "5. "]
    assert all(r.endswith("[CrossRef] [PubMed]") for r in raws)
    assert marks(root) == [("2", "2. Author2, "), ("4,5", "4. Author4, ")]


def linked_mdpi_page(tmp_path: Path, unlinked: list[str], refs_y: float) -> raw_pdf.Page:
    """An MDPI-like page whose five body markers ("[1]", "[2]", "[4]", "[5]", "[1]") are links to their entries,
    then the lines ``unlinked`` (no links), then "References" at ``refs_y`` and five numbered entries."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    lines = [(f"{BODY}, first [", "1"), (f"{BODY}, second [", "2"), (f"{BODY}, fourth [", "4"),
             (f"{BODY}, fifth [", "5"), (f"{BODY}, first again [", "1")]
    y = 680
    spots = []
    for text, n in lines:
        page.text(72, y, f"{text}{n}].")
        spots.append((end_x(tmp_path, 72, text), y, int(n)))
        y -= 12
    for text in unlinked:
        page.text(72, y, text)
        y -= 12
    page.text(72, refs_y, "References", size=12, font="F2")
    tops = mdpi_entries(page, refs_y - 20)
    for x, y_line, n in spots:
        page.link((x - 1, y_line - 2, x + 7, y_line + 9), page=0, x=72, y=tops[n - 1] + 9)
    return page


def test_bracketed_marker_without_its_link_in_a_linked_paper_names_its_numbered_entry(tmp_path):
    """A PDF whose bracketed markers are links may leave one without ("[3]" at a page's foot, MDPI): where the
    paper cites by linked bracketed numbers and its entries are numbered, "[3]" names entry 3 as the linked
    markers name theirs; a number in brackets after "Table" or "Figure" stays text."""
    root = xml_of(tmp_path, [linked_mdpi_page(tmp_path, [f"{BODY}, third, not linked [3], and Table [2] stays text."],
                                              570)])
    assert [m for m, _ in marks(root)] == ["1", "2", "4", "5", "1", "3"]
    assert marks(root)[-1] == ("3", "3. Author3, ")


# ---------------------------------------------------------------------------------------------------------
# Springer: the authors' affiliations, numbered by raised marks, after an author-year bibliography
# ---------------------------------------------------------------------------------------------------------

def test_affiliations_numbered_after_the_bibliography_are_neither_entries_nor_labels(tmp_path):
    """Springer's journals end with "Affiliations", each set after a raised number ("¹ Dalhousie University, …"):
    a run 1, 2, 3 of raised numbers on lines of their own would be read as the entries' labels, and the whole
    author-year bibliography above it as one entry (a paper with 75 entries had 1 marker linked). The list ends
    the bibliography; the entries are told apart by their hanging indents."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY} (Amir and Ralph 2018; Anderson et al. 2020).")
    page.text(72, 668, f"{BODY}, as reported before (Baltes and Diehl 2016).")
    for k in range(4):
        page.text(72, 656 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 590, "References", size=12, font="F2")
    y = 570
    for first, second in [("Amir B, Ralph P (2018) There is no random sampling in software engineering",
                           "research. In: Proceedings of the 40th ICSE Companion, pp 344-345"),
                          ("Anderson RM, Heesterbeek H, Klinkenberg D (2020) How will country-based",
                           "measures influence the course of the epidemic? The Lancet 395:931-934"),
                          ("Baltes S, Diehl S (2016) Worse than spam: issues in sampling software",
                           "developers. In: Proceedings of ESEM 2016, pp 1-6")]:
        page.text(72, y, first, size=8)
        page.text(84, y - 10, second, size=8)
        y -= 22
    page.text(72, y - 14, "Affiliations", size=11, font="F2")
    y -= 32
    for n, place in enumerate(["Dalhousie University, Halifax, Canada", "The University of Adelaide, Adelaide, Australia",
                               "Chalmers University of Technology, Gothenburg, Sweden"], start=1):
        page.text(72, y + 1.5, str(n), size=6)
        page.text(86, y, place, size=8)
        y -= 11
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert [r[:10] for r in raws] == ["Amir B, Ra", "Anderson R", "Baltes S, "]
    assert named(root) == [("Amir and Ralph 2018; Anderson et al. 2020", ["Amir B, ", "Anderson"]),
                           ("Baltes and Diehl 2016", ["Baltes S"])]
