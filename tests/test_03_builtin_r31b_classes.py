"""Stage 03's built-in backend (and stage 04 on its output) on classes that PDFs compiled from issue 25's held-out
round 31b sources showed (ICLR and TMLR papers whose paragraphs are set apart by space, an ACL paper's citation
link carried over its footnotes, a JMLR abstract that cites): each test draws the PDF the way the paper lays it
out and checks one class of problem."""
from __future__ import annotations

import sys
from pathlib import Path

from helpers import REPO
from test_04_xml_to_csv import paragraph, sentences_of

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402


def paragraphs_of(root) -> list[str]:
    return [" ".join("".join(p.itertext()).split()) for p in root.iter("p")]


def test_paragraphs_set_apart_by_half_a_line_without_indent_are_parted_and_a_closing_citation_is_its_sentences(tmp_path):
    """ICLR, TMLR and NeurIPS set no indent and 5.5 pt between paragraphs (baselines 11 pt apart in a paragraph,
    16.9 pt across): those paragraphs were read as one, so the author-year citation the author set after a
    paragraph's last full stop ("… alignment. Touvron et al. (2023)") opened the next paragraph's first sentence.
    Parted, the citation closes its paragraph, and stage 04 gives it to the sentence before it."""
    refs = ["Touvron, H. and Martin, L. Llama 2: open foundation and fine-tuned chat models. 2023.",
            "Workshop, B. and Scao, T. BLOOM: a multilingual language model. 2023."]
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Generative models", size=12, font="F2")
    y = 680.0
    for par in ([BODY, BODY, "including a post-training alignment. Touvron et al. (2023)"],
                [BODY, BODY, "and it is openly available to all. Workshop et al. (2023)"],
                [BODY, BODY, "as the last paragraph of this section says."]):
        for line in par:
            page.text(72, y, line)
            y -= 11
        y -= 5.9  # 16.9 pt between the last baseline of a paragraph and the first of the next
    page.text(72, y - 20, "References", size=12, font="F2")
    for k, ref in enumerate(refs):
        page.text(72, y - 40 - 12 * k, ref)
    root = xml_of(tmp_path, [page])
    pars = [p for p in paragraphs_of(root) if BODY in p]
    assert len(pars) == 3
    assert pars[0].endswith("alignment. Touvron et al. (2023)") and pars[1].endswith("Workshop et al. (2023)")
    assert [m for m, _ in cited(root)] == ["Touvron et al. (2023)", "Workshop et al. (2023)"]
    # stage 04: a citation alone after a sentence's full stop names that sentence's source
    par = paragraph("A main refinement was the focus on safety. Touvron et al. (2023)", "Touvron et al. (2023)")
    assert sentences_of(par) == ["A main refinement was the focus on safety. Touvron et al. (2023)"]
    par = paragraph("It is openly available. Lind and Haraldson (2018) describe it.", "Lind and Haraldson (2018)")
    assert sentences_of(par) == ["It is openly available.", "Lind and Haraldson (2018) describe it."]


def _uri_pdf(path: Path, pages: list[raw_pdf.Page], placeholder: str, url: str) -> Path:
    """``raw_pdf.write_pdf``, with the link to the named destination ``placeholder`` made an external link to
    ``url`` (its /Dest replaced by a /URI action of the same length, so that the cross-reference stays right)."""
    pdf = raw_pdf.write_pdf(path, pages)
    data = pdf.read_bytes()
    old = f"/Dest ({placeholder})".encode()
    new = f"/A << /S /URI /URI ({url}) >>".encode()
    assert old in data and len(new) <= len(old)
    pdf.write_bytes(data.replace(old, new.ljust(len(old))))
    return pdf


def test_a_citation_link_carried_over_a_column_foot_and_its_url_footnote_is_no_marker(tmp_path):
    """pdfTeX carries a citation's link broken at a column's end over the column's width down to its foot: the
    footnote "¹ Hate Speech datasets", the words of a URL's own link, lay under a link to a reference and were
    linked to it. A link holding a URL's link inside it is no citation marker; the body's own marker still is."""
    from lxml import etree
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, first [1].")
    page.text(72, 668, f"{BODY}, and the datasets.")
    page.text(end_x(tmp_path, 72, f"{BODY}, and the datasets.") + 0.5, 672, "1", size=6)  # the footnote's mark
    page.text(72, 620, "1", size=6)
    page.text(76, 617, "Hate Speech datasets", size=8)
    page.text(72, 540, "References", size=12, font="F2")
    page.text(72, 520, "[1] T. Mikolov and K. Chen. Efficient estimation of word representations. 2013.", size=9)
    page.text(72, 508, "[2] J. Devlin and M. Chang. BERT: pre-training of deep bidirectional transformers. 2018.",
              size=9)
    x = end_x(tmp_path, 72, f"{BODY}, first [")
    page.link((x - 1, 678, x + 7, 689), page=0, x=72, y=529)  # the marker's own link
    page.link((70, 616, 290, 629), page=0, x=72, y=529)  # the same citation's link, over the footnote line
    page.link((80, 617, 165, 628), page=0, x=0, y=0, name="URLPLACEHOLDERXXXXXXXXXXXXXXXXXXXX")
    pdf = _uri_pdf(tmp_path / "paper.pdf", [page], "URLPLACEHOLDERXXXXXXXXXXXXXXXXXXXX", "https://ka.org/d")
    root = etree.fromstring(builtin.convert(pdf)[0])
    assert [m for m, _ in cited(root)] == ["1"]


def test_an_abstract_that_cites_a_work_the_body_never_cites_is_written_before_the_body(tmp_path):
    """A toolkit's abstract names what it builds on, "Theano, a compiler with CUDA support [3]", and the body
    never cites it again: the abstract was left out whole and the work had no citing sentence. An abstract
    citing a work the body does not is written (a section "Abstract" before the body's); one citing only works
    the body cites too is left out, as before."""
    def page_for(abstract_marker: str) -> raw_pdf.Page:
        page = raw_pdf.Page()
        page.text(72, 740, "A Paper Title Set Large", size=18)
        page.text(72, 712, "Abstract", size=12, font="F2")
        page.text(72, 696, f"We introduce two frameworks. Blocks is based on Theano, a compiler {abstract_marker}.")
        page.text(72, 684, "It facilitates the training of complex neural network models on large datasets.")
        page.text(72, 650, "1 Introduction", size=12, font="F2")
        page.text(72, 630, f"{BODY}, as a first work [1].")
        page.text(72, 618, f"{BODY}, as a second work [2].")
        page.text(72, 570, "References", size=12, font="F2")
        for n, ref in enumerate(["A. Author. A first work on models. 2011.", "B. Author. A second work. 2012.",
                                 "F. Bastien. Theano: new features and speed improvements. 2012."], 1):
            page.text(72, 570 - 20 * n, f"[{n}] {ref}")
        return page

    root = xml_of(tmp_path, [page_for("[3]")])
    assert [m for m, _ in cited(root)] == ["3", "1", "2"]
    assert [s.findtext("title") for s in root.iter("sec")][0] == "Abstract"
    (tmp_path / "again").mkdir()
    root = xml_of(tmp_path / "again", [page_for("[1]")])
    assert [m for m, _ in cited(root)] == ["1", "2"]
    assert "Abstract" not in [s.findtext("title") for s in root.iter("sec")]


def test_a_figures_bins_in_brackets_are_no_citations_that_a_bibliography_lost():
    """A dissertation citing author-year prints a figure's axis as "Languages [1-100]", "[101-200]", … "[501-600]":
    read as citations of entries 1-600 that its unnumbered bibliography lacks, they flagged the whole conversion
    partial ("600 of the 600 numbers the text cites have no bibliography entry"). A range of more than
    MAX_CITED_RANGE numbers is a bin, not a group of works; a range a citation spans still counts."""
    text = ("Training data statistics. Languages [1-100] Source Tokens Languages [101-200] Languages [201-300] "
            "Languages [301-400] Languages [401-500] Languages [501-600]")
    assert builtin.numbers_without_entry(text, [], 0) == ([], 0)
    # a numbered list of nine whose entries 2 and 4-9 were lost: "[2-7]" and "[9]" still say so
    assert builtin.numbers_without_entry("as reviewed before [2-7] and [9].", [1, 3], 9) == ([2, 4, 5, 6, 7, 9], 7)
