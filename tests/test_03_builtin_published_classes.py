"""Stage 03's built-in backend on published PDFs it was not tuned on (issue 25, third round): each test builds a
small PDF the way a journal's pipeline lays it out, and checks one class of problem the held-out-like set of
published papers showed (test resources of CERMINE, opendataloader-pdf, PyMuPDF, pdf.js, marker, deepfigures)."""
from __future__ import annotations

import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402  (one PDF-to-XML helper for both files)


def raws_of(root: etree._Element) -> list[str]:
    return [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]


def cited(root: etree._Element) -> list[tuple[str, str]]:
    """(marker text, raw text of the first reference it names) for every linked marker in the body."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, refs[x.get("rid").split()[0]]) for x in root.iter("xref")]


def end_x(tmp_path: Path, x: float, text: str, size: float = 10) -> float:
    """Where a line of text set at ``x`` ends (measured by PDFium on a page of its own), so that a raised
    footnote mark can be set right after its last word."""
    pdf = raw_pdf.write_pdf(tmp_path / "measure.pdf", [raw_pdf.Page([raw_pdf.Text(x, 700, text, size=size)])])
    doc = pdfium.PdfDocument(str(pdf))
    textpage = doc[0].get_textpage()
    right = textpage.get_charbox(textpage.count_chars() - 1)[2]
    doc.close()
    return right


def left_column_citing(tmp_path: Path, page: raw_pdf.Page, cites: list[str]) -> None:
    """Fill a two-column page's left column (x 60 to 291, 8 pt) with body text from y 695 down to 420, a citation
    after every 37th word: the body beside a right column that holds the bibliography."""
    words = (f"{BODY} and more of it " * 40).split()
    y, line = 695, []
    marks = iter(cites)
    for k, word in enumerate(words):
        if k % 37 == 36 and (c := next(marks, None)):
            word = f"{word} {c}"
        if line and end_x(tmp_path, 60, " ".join(line + [word]), size=8) > 291:
            page.text(60, y, " ".join(line), size=8)
            y, line = y - 10, []
            if y < 420:
                break
        line.append(word)


def foot_into_the_gutter(tmp_path: Path, page: raw_pdf.Page) -> None:
    """The page's foot: notes across the page, one of them running on into the gutter (it ends at x 301-303.5,
    right of the left column's text edge at 291), so no strip of the gutter is emptier than the one between
    the right column's hanging labels and their entries."""
    foot = "Received 19 July 2013/20 August 2013; accepted 2 September 2013 (revised)"
    assert 301 < end_x(tmp_path, 60, foot, size=7) < 303.5
    page.text(60, 80, foot, size=7)
    for k in range(3):
        page.text(60, 70 - 9 * k, f"{'The author(s) has paid for this article to be freely available under the terms ' * 2}"[:150],
                  size=7)


def body_page(lines: list[str], heading: str = "1 Introduction") -> tuple[raw_pdf.Page, float]:
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, heading, size=12, font="F2")
    y = 680
    for line in lines:
        page.text(72, y, line)
        y -= 12
    return page, y


def test_supplement_with_its_own_bibliography_after_the_paper_is_left_out(tmp_path):
    """Biochemical Journal prints "SUPPLEMENTARY ONLINE DATA" after the paper, with its own "REFERENCES" 1-4:
    the last References heading is the supplement's. The paper's bibliography is the one before the
    supplement, and the supplement, whose [1] names its own entry 1, is not read as body."""
    page, y = body_page([f"{BODY}, as shown before [2].", f"{BODY}, and again [3]."] +
                        [f"{BODY}, line {k}." for k in range(6)])
    page.text(72, y - 20, "REFERENCES", size=12, font="F2")
    for n, entry in enumerate(["[1] A. First, J. Chem. 1, 10 (2001).", "[2] B. Second, J. Chem. 2, 20 (2002).",
                               "[3] C. Third, J. Chem. 3, 30 (2003).", "[4] D. Fourth, J. Chem. 4, 40 (2004)."]):
        page.text(72, y - 40 - 12 * n, entry, size=9)
    supplement = raw_pdf.Page()
    supplement.text(72, 740, "SUPPLEMENTARY ONLINE DATA", size=14, font="F2")
    supplement.text(72, 700, "MATERIALS AND METHODS", size=12, font="F2")
    for k in range(5):
        supplement.text(72, 680 - 12 * k, f"{BODY}, as the method of [1] says, line {k}.")
    supplement.text(72, 600, "REFERENCES", size=12, font="F2")
    supplement.text(72, 580, "[1] Z. Other, Methods 9, 99 (2009).", size=9)
    root = xml_of(tmp_path, [page, supplement])
    raws = raws_of(root)
    assert [r[:12] for r in raws] == ["[1] A. First", "[2] B. Secon", "[3] C. Third", "[4] D. Fourt"]
    assert cited(root) == [("2", raws[1]), ("3", raws[2])]


def test_bibliography_labels_set_apart_in_the_column_margin_are_not_line_numbers(tmp_path):
    """Portland Press sets each entry's number apart, in the column's margin on the baseline of the entry's
    first line ("4", "5", … before entries of two or three lines). Rising bare numbers on text baselines look
    like a manuscript's margin line numbers, but those stand beside every line: labels several lines apart
    are kept, and each starts its entry."""
    page, y = body_page([f"{BODY}, as in [4] and [9]."] + [f"{BODY}, line {k}." for k in range(6)])
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for n in range(1, 11):
        page.text(66 - 4.45 * len(str(n)), y, str(n), size=8)  # right-aligned, as the journal sets them
        page.text(76, y, f"Author{chr(64 + n)}, A. and Other, B. ({1990 + n}) A title of the work", size=8)
        page.text(76, y - 10, f"number {n} in its journal. J. Biol. Chem. {n}, 1-9", size=8)
        y -= 24
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert len(raws) == 10 and all(r.startswith(f"{n} Author{chr(64 + n)}") for n, r in enumerate(raws, start=1))
    assert cited(root) == [("4", raws[3]), ("9", raws[8])]


def test_line_numbers_beside_every_line_are_still_dropped(tmp_path):
    """The counterpart of the labels above: a manuscript's line numbers, one beside every line, stay out."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    for k in range(12):
        page.text(40, 680 - 12 * k, str(k + 1), size=8)
        page.text(72, 680 - 12 * k, f"{BODY}, line {k}.")
    root = xml_of(tmp_path, [page])
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "line 0. line 1." not in text and "while, line 0." in text and " 2 This" not in text


def test_bare_number_labels_running_in_order_are_the_entries_labels(tmp_path):
    """"1 Acharya, K. R., … (2003) …": a number, a space and the first author is the entry's label where no
    other label is printed and the numbers run 1, 2, 3, … down the bibliography; bracketed markers link to it."""
    page, y = body_page([f"{BODY}, see [2] and [5].", f"{BODY}, line two."])
    page.text(72, y - 20, "REFERENCES", size=12, font="F2")
    names = ["Acharya", "Fyhrquist", "Soubrier", "Wei", "Natesh", "Corradi"]
    for n, name in enumerate(names, start=1):
        page.text(72, y - 40 - 12 * n, f"{n} {name}, K. R. and Other, M. ({2000 + n}) A title. Nature {n}, 5-9",
                  size=9)
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert len(raws) == 6
    assert cited(root) == [("2", raws[1]), ("5", raws[4])]


def test_a_number_before_one_entry_by_chance_is_no_label(tmp_path):
    """Author-year entries, one of which begins with a number ("3 Body Problem, The …"): no run, no labels,
    so no bracketed number links to it."""
    page, y = body_page([f"{BODY}, see [3] of the list (Smith, 2001)."])
    page.text(72, y - 20, "References", size=12, font="F2")
    for n, entry in enumerate(["3 Body, T., and Smith, J. (1999). Orbits. Astron. J. 1, 2.",
                               "Smith, J. (2001). A title. Journal 1, 2-3.",
                               "Young, K. (2005). Another title. Journal 2, 4-5."]):
        page.text(72, y - 40 - 12 * n, entry, size=9)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["Smith, 2001"]


def test_text_layer_of_control_codes_fails_with_the_reason(tmp_path):
    """htmldoc and some old drivers embed fonts whose codes 1, 2, 3, … carry no ToUnicode map: PDFium returns
    control codes for every glyph. No text can be read; the paper is reported with that reason, never written
    as an empty conversion."""
    page = raw_pdf.Page()
    garbage = "".join(chr(c) for c in [4, 5, 6, 4, 7, 8, 11, 12, 4, 8, 14, 12, 15, 16, 17, 18, 8, 19, 14, 20])
    for k in range(40):
        page.text(72, 740 - 15 * k, f"{garbage} {garbage} {k}")
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    with pytest.raises(builtin.ExtractionError, match="ToUnicode"):
        builtin.convert(pdf)


def test_footnotes_below_the_body_are_read_and_their_citations_linked(tmp_path):
    """Philosophy, history and law cite in footnotes: smaller lines below the column's last body line, each
    opened by its mark ("27As reported in (Fischer & Rabin, 1974), …"). Each is read as a paragraph of its own
    (after the paragraph it interrupts, without its mark); a caption in small type below the body is not."""
    first = f"{BODY}, as argued by (Lee, 2010) before."
    page, y = body_page([first] + [f"{BODY}, line {k}." for k in range(6)])
    # the mark, raised after the sentence (drawn right after it, as TeX writes it)
    page.texts.insert(3, raw_pdf.Text(end_x(tmp_path, 72, first) + 0.5, 683.5, "27", size=6))
    page.text(72, 300, "27As reported in (Smith, 2001), the result was obtained", size=8)
    page.text(72, 290, "early and announced later in a short note.", size=8)
    page.text(72, 280, "28See also the discussion of this theorem in a modern text.", size=8)
    page.text(72, 270, "Table 1: values as in (Young, 2005), not a footnote.", size=8)
    refs = raw_pdf.Page()
    refs.text(72, 740, "References", size=12, font="F2")
    for n, entry in enumerate(["Lee, K. (2010). A first title. Journal 1, 2-3.",
                               "Smith, J. (2001). A title. Journal 1, 2-3.",
                               "Young, K. (2005). Another title. Journal 2, 4-5."]):
        refs.text(72, 720 - 12 * n, entry, size=9)
    root = xml_of(tmp_path, [page, refs])
    pars = [" ".join("".join(p.itertext()).split()) for p in root.iter("p")]
    assert any(p.startswith("As reported in (Smith, 2001), the result was obtained early and announced") for p in pars)
    assert [(m, r[:5]) for m, r in cited(root)] == [("Lee, 2010", "Lee, "), ("Smith, 2001", "Smith")]
    assert not any("Table 1" in p for p in pars)


def test_text_on_a_page_turned_by_its_rotate_entry_is_read(tmp_path):
    """A page with /Rotate 90 (a landscape page, or an old preprint scanned two pages to a sheet): its text is
    drawn turned in the page's own space and shows upright. It is read as shown, not dropped as rotated text
    (as arXiv's side stamp is), and its bibliography and markers are found."""
    page = raw_pdf.Page(rotate=90)

    def shown(x: float, y: float, text: str, **kw) -> None:  # (x, y) on the page as displayed, 792 x 612
        page.text(612 - y, x, text, rotated=True, **kw)

    shown(72, 580, "A Paper Title Set Large", size=18)
    shown(72, 540, "1 Introduction", size=12, font="F2")
    shown(72, 520, f"{BODY}, as measured before [2].")
    shown(72, 508, f"{BODY}, and as the theory says [1, 3].")
    for k in range(6):
        shown(72, 496 - 12 * k, f"{BODY}, line {k} of the introduction.")
    shown(72, 400, "References", size=12, font="F2")
    for n, entry in enumerate(["A. First, Phys. Rev. B 71, 045425 (2005).", "B. Second, Opt. Lett. 11, 288 (1986).",
                               "D. Fourth, Phys. Rev. Lett. 86, 4275 (2001)."], start=1):
        shown(72, 392 - 12 * n, f"[{n}] {entry}", size=9)
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert [r[:4] for r in raws] == ["[1] ", "[2] ", "[3] "]
    assert cited(root) == [("2", raws[1]), ("1, 3", raws[0])]
    assert "as measured before" in " ".join("".join(p.itertext()) for p in root.iter("p"))


def test_entries_without_labels_or_indents_split_at_the_wider_gap_and_and_others_cites(tmp_path):
    """AAAI's author-year bibliography: no labels, no hanging indent, each entry two or three lines apart from
    the next by a wider gap; the text cites "(Lopez and others 2011)" for "Lopez, et al. 2011". The wider gaps
    split the entries (not one entry a line), and "and others" is read as "et al."."""
    page, y = body_page([f"{BODY}, in biomedicine (Lopez and others 2011).", f"{BODY}, as in",
                         "(Chan and Airoldi 2014) and then (Smith 2007) for the engine."] +
                        [f"{BODY}, line {k}." for k in range(4)])
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for entry in [["Aziz, et al. 2011. False-name manipulations in weighted voting", "games. Journal of AI."],
                  ["Chan, S. H., and Airoldi, E. M. 2014. A consistent histogram", "estimator for graph models.",
                   "arXiv:1402.1888."],
                  ["Lopez, et al. 2011. An automatic system for extracting figures", "and captions. In BIBM."],
                  ["Neyshabur, et al. 2013. The power of asymmetry in binary", "hashing. In NIPS."],
                  ["Smith, R. 2007. An overview of the tesseract ocr engine. In", "ICDAR."]]:
        for line in entry:
            page.text(72, y, line, size=9)
            y -= 9.8
        y -= 2.8
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert [r.split(",")[0] for r in raws] == ["Aziz", "Chan", "Lopez", "Neyshabur", "Smith"]
    assert raws[1].endswith("arXiv:1402.1888.")
    assert [(m, r.split(",")[0]) for m, r in cited(root)] == [
        ("Lopez and others 2011", "Lopez"), ("Chan and Airoldi 2014", "Chan"), ("Smith 2007", "Smith")]


def test_an_ocr_tilde_standing_for_the_authors_of_an_entry_is_no_crash():
    """A scanned IEEE paper whose text layer is OCR (Acrobat Capture) prints an unread name as "~": an entry
    "~, “A Comparison of …,” …, 1993." crashed the author reader (list index out of range) and with it the
    whole paper. The tilde names nobody; the entry is read."""
    fields = builtin.parse_reference("~, “A Comparison of Corneas,” the CLAO journal, vol. 19, pp. 58-63, 1993.")
    assert "year" in fields
    assert not any(a.get("surname") == (0, 1) for a in builtin.parse_reference("~ 1993.").get("authors", []))


def test_link_rectangle_with_its_corners_in_the_other_order_still_covers_its_marker(tmp_path):
    """Springer (Adobe PDF Library) writes a link's /Rect top before bottom ([122 299 127 284]): the link
    covers its marker all the same, so the paper's citations are linked (a paper with 26 entries came out with
    none linked)."""
    page, y = body_page([f"{BODY}, as in [2].", f"{BODY}, and in [1]."] + [f"{BODY}, line {k}." for k in range(4)])
    page.text(72, y - 20, "References", size=12, font="F2")
    for n, entry in enumerate(["1. Bast H, Buchhold B (2013) An index for semantic search. In: CIKM",
                               "2. Mihalcea R, Csomai A (2007) Wikify! Linking documents. In: CIKM"]):
        page.text(72, y - 40 - 12 * n, entry, size=9)
    first = f"{BODY}, as in "
    x2 = end_x(tmp_path, 72, first + "[")
    x1 = end_x(tmp_path, 72, f"{BODY}, and in [")
    page.link((x2 - 1, 690, x2 + 7, 678), page=0, x=72, y=y - 40 + 9)  # top first, then bottom
    page.link((x1 - 1, 678, x1 + 7, 666), page=0, x=72, y=y - 52 + 9)
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert [(m, r[:7]) for m, r in cited(root)] == [("2", raws[1][:7]), ("1", raws[0][:7])]


def test_labels_hanging_in_the_gutter_belong_to_the_right_column(tmp_path):
    """Portland Press sets the right column's labels in the gutter, left of the entries ("35" at x 308-316, its
    entry at 323.5, the left column ending at 291), drawn after the entries. Where the gap between the columns
    is placed in the narrow strip between the labels and their entries (a line at the foot running on into the
    gutter leaves no other place as empty), the labels still belong to the right column: a bare number right
    of the left column's text edge is a label of the right column."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 710, "1 Introduction", size=10, font="F2")
    left_column_citing(tmp_path, page, ["[5]", "[11]", "[2]"])
    page.text(323.5, 710, "REFERENCES", size=10, font="F2")
    for n in range(1, 13):
        page.text(323.5, 695 - 24 * (n - 1), f"Author{chr(64 + n)}, A. and Other, B. ({1990 + n}) Title", size=7.5)
        page.text(323.5, 686 - 24 * (n - 1), f"of work {n}. J. Biol. Chem. {n}, 1-9 and more", size=7.5)
    for n in range(1, 13):  # the labels, drawn after the entries, right-aligned in the gutter
        page.text(316.4 - 4.17 * len(str(n)), 695 - 24 * (n - 1), str(n), size=7.5)
    foot_into_the_gutter(tmp_path, page)
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page], width=595.28)
    root = etree.fromstring(builtin.convert(pdf)[0])
    raws = raws_of(root)
    assert len(raws) == 12 and all(r.startswith(f"{n} Author{chr(64 + n)}") for n, r in enumerate(raws, start=1))
    assert [(m, r[:9]) for m, r in cited(root)] == [("5", "5 AuthorE"), ("11", "11 Author"), ("2", "2 AuthorB")]


def test_bibliography_band_in_four_columns_below_both_columns_of_text(tmp_path):
    """Frontiers sets the bibliography as a band across the page's foot, below the text of both columns, in four
    narrow columns (two in each page column), with "REFERENCES" opening the band on the left. The right column's
    text above the band is body (its citations are linked), and each narrow column is read on its own: the entries
    are whole, not lines of two entries side by side."""
    page = raw_pdf.Page()
    page.text(45, 740, "A Paper Title Set Large", size=18)
    page.text(45, 710, "1 Introduction", size=10, font="F2")
    left = ["The left column of the paper is ordinary text that", "goes on for a while (Cisek, 2005) and then some",
            "more of the same sort of words on every line here", "and it goes on as before until the column ends"]
    right = ["The right column goes on with the discussion and", "cites its sources as the left one does, here it",
             "names (Flash and Hogan, 1985) for the model of", "movements that the paper tests in the end of it."]
    for k in range(12):
        page.text(45, 695 - 11.5 * k, left[k % 4], size=9.5)
        page.text(303, 695 - 11.5 * k, right[k % 4], size=9.5)
    page.text(46, 520, "REFERENCES", size=10, font="F2")
    entries = [[(45, "Bartenbach, V., Sander, C.,"), (55, "et al. (2013). BioMotionBot."),
                (55, "J. Neuro. 213, 282-297.")],
               [(174, "Bernstein, N. (1967). The"), (184, "Coordination of Movements."),
                (184, "London: Pergamon.")],
               [(303, "Cisek, P. (2005). Neural"), (313, "representations of plans."),
                (313, "Neural Netw. 18, 265-277.")],
               [(432, "Flash, T., and Hogan, N."), (442, "(1985). The coordination"),
                (442, "J. Neurosci. 5, 1688-1703.")]]
    for k in range(3):  # the four narrow columns, line by line across the page, as the PDF draws them
        for entry in entries:
            x, text = entry[k]
            page.text(x, 506 - 9.5 * k, text, size=7.5)
    for k in range(3):  # one more entry below in each narrow column
        for entry in entries:
            x, text = entry[k]
            page.text(x, 466 - 9.5 * k, text if k else "Zeta" + text[text.index(","):], size=7.5)
    root = xml_of(tmp_path, [page])
    raws = raws_of(root)
    assert raws[0].startswith("Bartenbach") and raws[0].endswith("282-297.")
    assert any(r.startswith("Cisek, P. (2005)") and r.endswith("265-277.") for r in raws)
    assert any(r.startswith("Flash, T., and Hogan, N. (1985)") and r.endswith("1688-1703.") for r in raws)
    pars = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "names (Flash and Hogan, 1985) for the model" in " ".join(pars.split())
    assert sorted({(m, r.split(",")[0]) for m, r in cited(root)}) == [("Cisek, 2005", "Cisek"),
                                                                       ("Flash and Hogan, 1985", "Flash")]
