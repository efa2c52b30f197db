"""Stage 03's built-in backend on tables (issue 25, fifth round: of the citing pairs the held-out published PDFs
missed, about 160 stood in table cells — "Method [12] | 85.3", "Smith et al. (2019) | mouse", a table of the
studies a review draws on). Each test builds a small PDF with a table the way journals set one (a "Table N"
caption, cells set small in aligned columns) and checks that each row is read as one unit, its cells in order,
and that its markers name entries as the body's do; and that text which only looks like a table (a justified
line split at its wide word spaces, two columns of small type) is read as before."""
from __future__ import annotations

import sys
from pathlib import Path

from helpers import REPO, load_stage

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import body_page, cited, raws_of  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402

stage04 = load_stage("04")

NUMBERED = ["[1] A. Boykov and V. Kolmogorov. Graph cuts for image segmentation. IJCV, 2004.",
            "[2] L. Breiman. Random forests for the classification of cells. Mach. Learn., 2001.",
            "[3] O. Ronneberger. Convolutional networks for biomedical segmentation. MICCAI, 2015.",
            "[4] K. He. Deep residual learning for image recognition. CVPR, 2016."]


def paper_with_table(rows: list[list[tuple[float, str]]], references: list[str], caption: str = "Table 1. Methods "
                     "compared on the same images.", step: float = 10, body_cites: str = " as before [1].") -> raw_pdf.Page:
    """A page: title, "1 Introduction", body text, a caption and a table set in 8 pt (each row a list of
    (x, text) cells; a cell's text may hold "\\n" for a line it wraps to), more body text, then the
    bibliography."""
    page, y = body_page([f"{BODY}, line {k}{body_cites if k == 0 else '.'}" for k in range(4)])
    y -= 10
    page.text(72, y, caption, size=9)
    y -= 16
    for row in rows:
        depth = 1
        for x, text in row:
            for n, part in enumerate(text.split("\n")):
                page.text(x, y - n * 9, part, size=8)
            depth = max(depth, text.count("\n") + 1)
        y -= step + 9 * (depth - 1)
    y -= 12
    for k in range(3):
        page.text(72, y, f"{BODY}, after the table {k}.")
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    y -= 40
    for ref in references:
        page.text(72, y, ref, size=9)
        y -= 11
    return page


def table_rows(root) -> list[str]:
    return [" ".join("".join(p.itertext()).split()) for p in root.iter("p") if p.get("content-type") == "table-row"]


def test_each_table_row_is_one_paragraph_with_its_cells_in_order_and_its_markers_linked(tmp_path):
    rows = [[(72, "Method"), (220, "Accuracy (%)"), (330, "Organism")],
            [(72, "Graph cuts [1]"), (220, "85.3"), (330, "mouse")],
            [(72, "Random forest [2]"), (220, "88.1"), (330, "zebrafish")],
            [(72, "Deep network [3, 4]"), (220, "91.0"), (330, "mouse")]]
    root = xml_of(tmp_path, [paper_with_table(rows, NUMBERED)])
    assert table_rows(root) == ["Method | Accuracy (%) | Organism", "Graph cuts [1] | 85.3 | mouse",
                                "Random forest [2] | 88.1 | zebrafish", "Deep network [3, 4] | 91.0 | mouse"]
    assert [(m, r[:3]) for m, r in cited(root)] == [("1", "[1]"), ("1", "[1]"), ("2", "[2]"), ("3, 4", "[3]")]
    xrefs = [x.get("rid") for x in root.iter("xref")]
    assert xrefs[-1] == "ref3 ref4"
    # the body's text around the table is read as before, the rows written after the paragraph they interrupt
    body = [" ".join("".join(p.itertext()).split()) for p in root.iter("p") if p.get("content-type") is None]
    assert body[0].endswith("line 3.") and body[-1].endswith("after the table 2.")
    assert not any("Graph cuts" in text or "85.3" in text for text in body)


def test_a_cell_wrapped_inside_an_open_bracket_stays_in_its_row(tmp_path):
    """A cell's marker broken over two lines of the cell ("[1, 2," / "3]", Word's tables) is one marker of the
    row it opens, though the next line of the cell holds no piece of the first column."""
    rows = [[(72, "Protein"), (200, "Function"), (400, "Reference")],
            [(72, "GSDMA"), (200, "Pyroptosis, mitochondrial damage"), (400, "[1, 2,\n3]")],
            [(72, "GSDMB"), (200, "Bacterial killing"), (400, "[4]")],
            [(72, "GSDMC"), (200, "Antitumour immunity"), (400, "[2]")]]
    root = xml_of(tmp_path, [paper_with_table(rows, NUMBERED)])
    assert table_rows(root)[1] == "GSDMA | Pyroptosis, mitochondrial damage | [1, 2, 3]"
    assert [x.get("rid") for x in root.iter("xref")][1:] == ["ref1 ref2 ref3", "ref4", "ref2"]


def test_author_year_cell_of_a_table_of_studies_names_its_entry(tmp_path):
    rows = [[(72, "Study"), (220, "Model"), (330, "Animals")],
            [(72, "Smith et al. (2019)"), (220, "mouse"), (330, "12")],
            [(72, "Lee and Park (2020)"), (220, "rat"), (330, "8")],
            [(72, "Garcia (2018)"), (220, "zebrafish"), (330, "30")]]
    references = ["Garcia, M. 2018. Regeneration of the zebrafish fin. Dev. Biol. 12: 1-9.",
                  "Lee, K., and Park, H. 2020. Memory in the rat hippocampus. Neuron 5: 10-20.",
                  "Smith, J., Jones, A., and Brown, B. 2019. Sleep in mice. Cell 3: 4-8."]
    root = xml_of(tmp_path, [paper_with_table(rows, references, body_cites=" as shown (Garcia, 2018).")])
    assert table_rows(root)[1:] == ["Smith et al. (2019) | mouse | 12", "Lee and Park (2020) | rat | 8",
                                    "Garcia (2018) | zebrafish | 30"]
    assert [(m, r[:6]) for m, r in cited(root)][1:] == [("Smith et al. (2019)", "Smith,"),
                                                       ("Lee and Park (2020)", "Lee, K"), ("Garcia (2018)", "Garcia")]


def test_rows_of_aligned_cells_without_a_table_caption_on_the_page_are_body_text_as_before(tmp_path):
    """Evidence first: short pieces in columns on a page that prints no "Table N" (a list of authors, an
    equation array) are not read as a table."""
    rows = [[(72, "Graph cuts [1]"), (220, "85.3"), (330, "mouse")],
            [(72, "Random forest [2]"), (220, "88.1"), (330, "zebrafish")],
            [(72, "Deep network [3]"), (220, "91.0"), (330, "mouse")]]
    root = xml_of(tmp_path, [paper_with_table(rows, NUMBERED, caption="Some words set small above the rows.")])
    assert table_rows(root) == []


def test_justified_lines_split_at_wide_word_spaces_are_no_table(tmp_path):
    """Word justifies a line of a few long words by widening its spaces past the gap that splits a line: the
    words of body size, a little apart from margin to margin, are a line of the body, not a table's row."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    for words in (["proinflammatory", "caspases", "activation", "cleavage [1]."],
                  ["caspase-8-GSDMC", "pyroptotic", "axes", "mechanisms", "[2]."],
                  ["pore-forming", "and", "pyroptotic", "functions", "here."],
                  ["gradually", "gained", "recognition", "in", "disease [3]."]):
        gap = (468 - sum(5.0 * len(w) for w in words)) / (len(words) - 1)
        x = 72.0
        for w in words:
            page.text(x, y, w)
            x += 5.0 * len(w) + gap
        y -= 12
    page.text(72, y - 10, "Table 1. A table somewhere on the page.", size=9)
    page.text(72, y - 60, "References", size=12, font="F2")
    y -= 80
    for ref in NUMBERED:
        page.text(72, y, ref, size=9)
        y -= 11
    root = xml_of(tmp_path, [page])
    assert table_rows(root) == []
    assert [m for m, _ in cited(root)] == ["1", "2", "3"]


def test_two_columns_of_small_type_on_a_page_with_a_table_caption_are_no_table(tmp_path):
    """A two-column bibliography (or body) set small has its lines side by side on one baseline, the right
    column's lines all starting at one x: the columns are wider than a table's cells, and are read as they are
    on a page without a table (a Word preprint's 154 entries came out as 48 when they were taken for one)."""
    def page_of(caption: bool) -> raw_pdf.Page:
        page = raw_pdf.Page()
        page.text(72, 740, "A Paper Title Set Large", size=18)
        page.text(72, 700, "1 Introduction", size=12, font="F2")
        page.text(72, 680, f"{BODY} as before [1] and [6].")
        page.text(72, 668, f"{BODY} once more [3].")
        if caption:
            page.text(72, 640, "Table 1. A caption of a table set on this page.", size=9)
        page.text(72, 600, "References", size=12, font="F2")
        left = ["1. Boykov A, Kolmogorov V. Graph cuts for image segmentation in vivo.",
                "2. Breiman L. Random forests for the classification of cells, 2001.",
                "3. Ronneberger O. Convolutional networks for segmentation, 2015."]
        right = ["4. He K, Zhang X. Deep residual learning for image recognition, 2016.",
                 "5. Hochreiter S. Long short-term memory of recurrent networks, 1997.",
                 "6. Vaswani A. Attention is all you need for translation tasks, 2017."]
        y = 580
        for a, b in zip(left, right):
            page.text(72, y, a, size=8)
            page.text(330, y, b, size=8)
            y -= 10
        return page

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_caption, without = xml_of(tmp_path / "a", [page_of(True)]), xml_of(tmp_path / "b", [page_of(False)])
    assert table_rows(with_caption) == []
    assert raws_of(with_caption) == raws_of(without)


def test_stage04_reads_a_table_row_as_one_citing_row_of_its_own(tmp_path):
    """Stage 04: a row is one unit, whatever full stops its cells hold ("Smith et al. | 2.5 mg. kg"), and is
    never joined to the paragraph after it, though that one starts in lower case."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.cermxml").write_text(
        '<article><front><article-meta><title-group><article-title>T</article-title></title-group></article-meta>'
        '</front><body><sec><title>Results</title><p>The doses differ between studies, as reviewed '
        '[<xref ref-type="bibr" rid="r1">1</xref>]</p><p content-type="table-row">Smith et al. | 2.5 mg. Daily | '
        'mouse [<xref ref-type="bibr" rid="r2">2</xref>]</p><p content-type="table-row">Lee | 1 mg | rat</p>'
        '<p>and so on.</p></sec></body><back><ref-list><ref id="r1"><mixed-citation>[1] A. Review. Doses. 2010.'
        '</mixed-citation></ref><ref id="r2"><mixed-citation>[2] J. Smith. Mice. 2012.</mixed-citation></ref>'
        '</ref-list></back></article>', encoding="utf-8")
    cfg = stage04.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out")
    stage04.main(cfg)
    import pandas as pd
    df = pd.read_csv(cfg.output_dir / "rows.sentences.csv", dtype=str, keep_default_na=False)
    assert df.sentence.tolist() == ["The doses differ between studies, as reviewed [1]",
                                    "Smith et al. | 2.5 mg. Daily | mouse [2]"]
    assert df.ref_keys.tolist() == ["r1", "r2"]


def test_a_table_in_one_column_takes_no_short_line_of_the_bibliography_beside_it(tmp_path):
    """A table set in the left column of a two-column page stands level with the bibliography in the right
    column, whose entries end in short lines ("Chem. 58, 335-337.") as narrow as a cell: the table is its own
    column's cells, each row "VS [1] | 0.28", and the entries keep their last lines."""
    page = raw_pdf.Page()
    page.text(81, 740, "A Paper Title Set Large", size=18)
    page.text(81, 710, "1 Introduction", size=12, font="F2")
    y = 694
    for k in range(8):
        page.text(81, y, f"Body text of the paper in its left column {k} [2].")
        y -= 12
    page.text(81, 590, "Table 1. Lethality of the extracts [3].", size=8)
    for n, (sample, value) in enumerate([("Sample", "LC50 (ug/ml)"), ("VS [1]", "0.28"), ("HF", "2.17"),
                                         ("CF [4]", "2.77")]):
        page.text(125, 570 - 13 * n, sample, size=8)
        page.text(180, 570 - 13 * n, value, size=8)
    for k in range(8):  # the right column's text, then its bibliography
        page.text(315, 694 - 12 * k, f"Body text of the paper in its right column {k}.")
    page.text(315, 600, "References", size=12, font="F2")
    entries = [["1. Van Wagenen B.C., Larsen R., Cardellina J.H. and Randazzo", "D. 1993. Ulosantoin, a potent "
                "insecticide from the sponge.", "Chem. 58, 335-337."],
               ["2. Bauer A.W., Kirby W.M.M., Sherris J.C. and Turck M. 1966.", "Am. J. Pathol. 45, 493."],
               ["3. Meyer B.N., Ferrigni N.R., Putnam J.E. and Jacobsen L.B.", "Planta Med. 45, 31-32."],
               ["4. Sattar E.A., Galal A.M. and Mossa G.S. 2001. Antitumor", "J. Nat. Prod. 58, 1."]]
    y = 583
    for entry in entries:
        for k, text in enumerate(entry):
            page.text(315 if k == 0 else 333, y, text, size=8)
            y -= 13
    root = xml_of(tmp_path, [page])
    assert table_rows(root) == ["Sample | LC50 (ug/ml)", "VS [1] | 0.28", "HF | 2.17", "CF [4] | 2.77"]
    assert raws_of(root)[0].endswith("Chem. 58, 335-337.") and len(raws_of(root)) == 4


def test_a_cell_of_author_year_citations_without_brackets_names_its_entries(tmp_path):
    """A review's table of what each domain binds gives its sources in a column of their own, "Spring, 1989;
    Prieto, 1992", without brackets: a cell that holds nothing but such citations names the entries, each by
    surname and year; a cell where one of them names no entry (or any other words) is left alone."""
    rows = [[(72, "Domain"), (200, "Activity"), (400, "References")],
            [(72, "EGFL"), (200, "Counteradhesion; fibroblasts"), (400, "Spring, 1989; Prieto, 1992")],
            [(72, "FN 1-3"), (200, "Cell attachment"), (400, "Chung & Erickson, 1997")],
            [(72, "FN 3"), (200, "Neurite outgrowth"), (400, "Krushel, 1994; Nobody, 1990")],
            [(72, "FN 5"), (200, "Seen in 1994"), (400, "Prieto")]]
    references = ["Chung, C. Y., and Erickson, H. P. 1997. Glycosaminoglycans modulate fibronectin matrix "
                  "assembly. J. Cell Sci. 110: 1413-1419.",
                  "Krushel, L. A. 1994. Neural cell adhesion molecule. Proc. Natl. Acad. Sci. 91: 2592-2596.",
                  "Prieto, A. L., Edelman, G. M., and Crossin, K. L. 1992. Multiple integrins mediate cell "
                  "attachment. J. Cell Biol. 119: 33-41.",
                  "Spring, J., Beck, K., and Chiquet-Ehrismann, R. 1989. Two contrary functions of tenascin. "
                  "Cell 59: 325-334."]
    root = xml_of(tmp_path, [paper_with_table(rows, references, body_cites=" (Krushel, 1994).")])
    assert table_rows(root)[1] == "EGFL | Counteradhesion; fibroblasts | Spring, 1989; Prieto, 1992"
    assert [(m, r[:6]) for m, r in cited(root)][1:] == [("Spring, 1989; Prieto, 1992", "Spring"),
                                                       ("Chung & Erickson, 1997", "Chung,")]
    assert [x.get("rid") for x in root.iter("xref")][1] == "ref4 ref3"


def linked_opening(tmp_path: Path) -> tuple[raw_pdf.Page, list[tuple[float, float, int]]]:
    """A page opening with five body lines, each ending in a marker ("[1]", "[2]", "[4]", "[5]", "[1]") to be
    linked to its entry: the page and each marker's (x, y, number); ``link_markers`` draws the links."""
    from test_03_builtin_published_classes import end_x
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    spots = []
    y = 680
    for text, n in [(f"{BODY}, first [", "1"), (f"{BODY}, second [", "2"), (f"{BODY}, fourth [", "4"),
                    (f"{BODY}, fifth [", "5"), (f"{BODY}, first again [", "1")]:
        page.text(72, y, f"{text}{n}].")
        spots.append((end_x(tmp_path, 72, text), y, int(n)))
        y -= 12
    return page, spots


def link_markers(page: raw_pdf.Page, spots: list[tuple[float, float, int]], tops: list[float]) -> None:
    for x, y_line, n in spots:
        page.link((x - 1, y_line - 2, x + 7, y_line + 9), page=0, x=72, y=tops[n - 1] + 9)


def test_bracketed_values_in_a_table_of_a_linked_paper_are_no_citations(tmp_path):
    """A PDF whose citations are links links them in its tables too: there an unlinked "[2, 4]" or
    "[30, 50] mm" is a value (a range of angles, of lengths), not a marker to be named by label as an unlinked
    "[3]" of the body is; the row's linked marker names its entry."""
    from test_03_builtin_heldout_classes import mdpi_entries
    from test_03_builtin_published_classes import end_x
    page, spots = linked_opening(tmp_path)
    page.text(72, 606, "Table 1. Parameters of the simulations.", size=9)
    cells = [[(72, "Parameter"), (200, "Symbol"), (300, "Value")],
             [(72, "Die semi-angle"), (200, "alpha"), (300, "[2, 4] deg")],
             [(72, "Wire length"), (200, "Lw"), (300, "[3, 5] mm")],
             [(72, "Friction [3]"), (200, "mu"), (300, "0.1")]]
    for k, row in enumerate(cells):
        for x, text in row:
            page.text(x, 590 - 10 * k, text, size=8)
    page.text(72, 540, "References", size=12, font="F2")
    tops = mdpi_entries(page, 520)
    link_markers(page, spots, tops)
    x = end_x(tmp_path, 72, "Friction [", size=8)
    page.link((x - 1, 560 - 2, x + 5, 560 + 7), page=0, x=72, y=tops[2] + 9)
    root = xml_of(tmp_path, [page])
    assert table_rows(root)[1:] == ["Die semi-angle | alpha | [2, 4] deg", "Wire length | Lw | [3, 5] mm",
                                    "Friction [3] | mu | 0.1"]
    assert [m for m, _ in cited(root)] == ["1", "2", "4", "5", "1", "3"]


def test_a_first_column_line_opened_by_its_marker_stays_in_the_row_above(tmp_path):
    """A library's name and its citation set on two lines of the first cell ("MPI" / "[10]"), the other cells
    wrapping beside them: the marker's line opens no row of its own."""
    rows = [[(72, "Library"), (200, "Purpose"), (330, "License")],
            [(72, "MPI\n[1]"), (200, "message\npassing"), (330, "BSD-like")],
            [(72, "Xerces-C\n[2]"), (200, "XML\nparser"), (330, "Apache")],
            [(72, "GiNaC\n[3]"), (200, "symbolic\nalgebra"), (330, "GPL")]]
    root = xml_of(tmp_path, [paper_with_table(rows, NUMBERED)])
    assert table_rows(root)[1:] == ["MPI [1] | message passing | BSD-like", "Xerces-C [2] | XML parser | Apache",
                                    "GiNaC [3] | symbolic algebra | GPL"]


def test_a_bracket_glued_to_a_word_by_a_hyphen_names_its_variants_not_references(tmp_path):
    """A table of parameter sets names a scheme's variants "BIKE-[1,2]" and "BIKE-[3]" (round 28's held-out
    llncs paper: 35 links to entries 1-3 where the source cites none), and a chemist writes the locants of a
    reaction before it ("[1,3]-sigmatropic"): a bracket glued to a word by a hyphen is no marker, while the same
    numbers set apart ("Graph cuts [1]") still are."""
    rows = [[(72, "Scheme"), (220, "Key size"), (330, "Cycles")],
            [(72, "BIKE-[1,2]"), (220, "10,163"), (330, "142")],
            [(72, "BIKE-[3]"), (220, "11,027"), (330, "134")],
            [(72, "Graph cuts [1]"), (220, "9,857"), (330, "120")]]
    root = xml_of(tmp_path, [paper_with_table(rows, NUMBERED, body_cites=" in [1,3]-sigmatropic shifts [1].")])
    assert table_rows(root)[1:3] == ["BIKE-[1,2] | 10,163 | 142", "BIKE-[3] | 11,027 | 134"]
    assert [(m, r[:3]) for m, r in cited(root)] == [("1", "[1]"), ("1", "[1]")]


def test_a_vector_in_the_unlinked_text_of_a_linked_paper_is_no_citation(tmp_path):
    """A thesis whose citations are links prints a code listing in its body ("fem.addSupport('top', [1, 1]);",
    round 28's held-out soft-robot thesis: two links to its entry [1]): an unlinked bracket that repeats a number
    or holds a 0 is a vector, as in a paper without links, while an unlinked "[3]" of the prose names entry 3."""
    from test_03_builtin_heldout_classes import mdpi_entries
    page, spots = linked_opening(tmp_path)
    y = 620  # below the five lines of the opening
    page.text(72, y, "The supports are set as fem = fem.addSupport('bottom', [1, 1]); fem.addLoad('top', [0, 1]);")
    page.text(72, y - 12, f"{BODY}, as shown before [3].")
    page.text(72, 540, "References", size=12, font="F2")
    tops = mdpi_entries(page, 520)
    link_markers(page, spots, tops)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["1", "2", "4", "5", "1", "3"]
