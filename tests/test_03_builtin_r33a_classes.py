"""Stage 03's built-in backend: classes of PDF that issue 25's held-out round 33a (PDFs compiled from mathematics,
statistics, economics and operations-research sources) showed, each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import builtin  # noqa: E402  (one PDF-to-XML helper for these files)

PROSE = "The estimator is consistent under the usual conditions on the design and the noise"


def _linked(root) -> list[tuple[str, list[str]]]:
    """Each body paragraph that links: its text and the entries its xrefs name."""
    out = []
    for p in root.find("body").iter("p"):
        rids = [r for x in p.iter("xref") for r in (x.get("rid") or "").split()]
        if rids:
            out.append((" ".join("".join(p.itertext()).split()), rids))
    return out


def test_a_lone_appendix_heading_after_the_bibliography_opens_body_text(tmp_path):
    """AEA's \\appendix prints "Appendix" after the bibliography in small capitals, at the body's size and weight:
    it was read as no heading, so the appendix was read as entries and its citations (the only ones of two works)
    were lost. "Appendix" alone on its line heads the appendices, however it is set."""
    page = raw_pdf.Page()
    page.text(72, 740, "I. Introduction", font="F2")
    for k in range(6):
        page.text(72, 724 - 12 * k, f"{PROSE} (Card and Krueger, 1994).")
    page.text(72, 640, "REFERENCES", font="F2")
    entries = [("Bai, Jushan. 2009. \u201cPanel data models with interactive fixed effects.\u201d Econometrica,", "77(4): 1229-1279."),
               ("Card, David, and Alan B. Krueger. 1994. \u201cMinimum wages and employment.\u201d American", "Economic Review, 84(4): 772-793."),
               ("Dube, Arindrajit, and Ben Zipperer. 2015. \u201cPooling multiple case studies using synthetic", "controls.\u201d IZA Discussion Paper 8944.")]
    y = 624
    for first, second in entries:
        page.text(72, y, first, size=9)
        page.text(84, y - 11, second, size=9)
        y -= 26
    page.text(72, y - 10, "Appendix")
    page.text(72, y - 28, "A1. Matching Procedure Justification", font="F2")
    page.text(72, y - 44, "In line with synthetic control studies (e.g. Dube and Zipperer, 2015), we assume a")
    page.text(72, y - 56, "multi factor error structure (see e.g. Bai, 2009) for the outcome of each firm.")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    xml, stats = builtin.convert(pdf)
    root = etree.fromstring(xml)
    assert len(list(root.iter("ref"))) == 3
    linked = {rid for _, rids in _linked(root) for rid in rids}
    assert linked == {"ref1", "ref2", "ref3"}


def _bracket_labelled_paper(cite: str) -> list[raw_pdf.Page]:
    # a statistics paper (Bayesian Analysis, plain numbers): its displays are numbered (1), (2), … in order, the
    # text refers to them ("by (4)"), and it cites twice, in brackets; its list prints "[1]" labels
    page = raw_pdf.Page()
    page.text(72, 740, "1 Introduction", font="F2")
    y = 724
    for n in range(1, 7):
        page.text(72, y, f"{PROSE}, and the posterior is Gaussian with")
        page.text(200, y - 14, "y = Fm + e,")
        page.text(520, y - 14, f"({n})")
        page.text(72, y - 28, f"where the noise is as in ({max(n - 1, 1)}) and the prior is centred {cite if n == 3 else ''}.")
        y -= 46
    page.text(72, y, "References", font="F2")
    names = ["Alexanderian, A. Optimal experimental design for Bayesian inverse problems. Inverse Problems, 2021.",
             "Chaloner, K. Optimal Bayesian experimental design for linear models. Ann. Statist., 1984.",
             "Huan, X. and Marzouk, Y. Simulation-based optimal Bayesian experimental design. J. Comput. Phys., 2013.",
             "Koval, K. and Stadler, G. Optimal experimental design under irreducible uncertainty. SIAM, 2020.",
             "Stuart, A. M. Inverse problems: a Bayesian perspective. Acta Numerica, 2010.",
             "Sagnol, G. and Harman, R. Computing exact D-optimal designs. Ann. Statist., 2015."]
    for k, text in enumerate(names, start=1):
        page.text(72, y - 16 * k, f"[{k}] {text}", size=8)
    return [page]


def test_equation_numbers_are_no_citations_where_the_list_prints_bracketed_labels(tmp_path):
    """A paper that cites twice in brackets and numbers six displays in order read as citing by numbers in
    parentheses (Vancouver's "(3)"), each "(n)" linked to entry n: 40 wrong links in one paper. A bibliography that
    prints its labels in brackets is cited by them."""
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", _bracket_labelled_paper("[5, 1]"))
    root = etree.fromstring(builtin.convert(pdf)[0])
    linked = _linked(root)
    assert [rids for _, rids in linked] == [["ref5", "ref1"]]


def test_exponents_in_an_author_year_paper_are_no_entries_a_cut_short_bibliography_lost(tmp_path):
    """An author-year list printed without labels and a text whose formulas raise exponents 1 to 12 (or refer to
    its equations, "(7)"): the numbers were read as cited numbers without an entry, and the conversion flagged
    partial ("the bibliography was cut short") though every author-year citation names an entry."""
    page = raw_pdf.Page()
    page.text(72, 740, "1 Introduction", font="F2")
    cites = ["(Achlioptas, 2001)", "(Baraniuk et al., 2008)", "(Dasgupta and Gupta, 1999)", "(Krahmer and Ward, 2010)"]
    y = 724
    for k in range(12):
        page.text(72, y, f"The bound holds {cites[k % 4]}, with")
        page.text(300, y, "x")
        page.text(306, y + 3.5, str(k + 1), size=6)
        page.text(316, y, "bounded by the norm.")
        y -= 14
    page.text(72, y - 10, "References", font="F2")
    entries = ["Dimitris Achlioptas. Database-friendly random projections. In PODS, pages 274-281, 2001.",
               "Richard Baraniuk, Mark Davenport, Ronald DeVore, and Michael Wakin. A simple proof of the restricted "
               "isometry property. Constr. Approx., 28:253-263, 2008.",
               "Sanjoy Dasgupta and Anupam Gupta. An elementary proof of the Johnson-Lindenstrauss lemma. 1999.",
               "Felix Krahmer and Rachel Ward. New and improved Johnson-Lindenstrauss embeddings. 2010."]
    y -= 26
    for text in entries:
        page.text(72, y, text, size=8)
        y -= 16
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    xml, stats = builtin.convert(pdf)
    assert len(list(etree.fromstring(xml).iter("ref"))) == 4
    assert "cut short" not in stats.get("partial", "")
