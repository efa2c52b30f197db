"""Stage 03's built-in backend on published papers (issue 25, round 31: 41 published PDFs held out from the test
resources of grobid-quantities, softcite's software-mentions, entity-fishing, statcheck and grobid_client_python —
HAL deposits of Springer, BMC, Frontiers, IOP and EDP articles, Journal de Physique scans of 1979–1993, OUP, Wiley,
ASBMB's XPP, OpenEdition's French journals): each test builds a small PDF the way that producer lays it out (or
calls the rule on the text such a PDF holds), and checks one class of problem the held-out measurement showed."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
sys.path.insert(0, str(REPO / "03_cermine_extract"))
import builtin_backend as builtin  # noqa: E402
import raw_pdf  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402


def marks(root) -> list[tuple[str, list[str]]]:
    """(marker text, the first words of every reference it names) for each linked marker, in reading order."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, [refs[k][:10] for k in x.get("rid").split()]) for x in root.iter("xref")]


# ---------------------------------------------------------------------------------------------------------
# ASBMB (Mol Cell Proteomics, XPP): a 9 pt body beside as much 8 pt text (methods, legends, tables)
# ---------------------------------------------------------------------------------------------------------

def test_a_body_a_little_larger_than_as_much_smaller_text_is_the_body_not_a_run_of_headings(tmp_path):
    """MCP sets its body in 9 pt and its Experimental Procedures, legends and tables in 8 pt, about as many
    characters of each (28,820 at 8 pt, 28,499 at 9 pt): read at the commoner 8 pt, every line of the 9 pt body
    was larger than the body, short of a full stop, and stood as a section heading: 1 of its 112 pairs linked.
    The larger of two sizes that hold nearly as many characters is the body's."""
    first = raw_pdf.Page()
    first.text(60, 740, "A Paper Title Set Large", size=18)
    first.text(60, 700, "Introduction", size=9, font="F2")
    y = 686
    for k in range(24):  # a column's line: ten words or so
        cite = f" [{k % 4 + 1}]" if k % 3 == 0 else " in turn"
        first.text(60, y, f"the body of this paper runs on in its column{cite}", size=9)
        y -= 11
    methods = raw_pdf.Page()
    methods.text(60, 740, "Experimental Procedures", size=8, font="F2")
    y = 726
    for k in range(26):
        methods.text(60, y, "the methods of this paper are set in smaller type", size=8)
        y -= 10
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=9, font="F2")
    for n in range(1, 5):
        refs.text(60, 724 - 12 * n, f"{n}. Author{n} A (2001) A title of work number {n}. J Test {n}:1-9", size=7)
    root = xml_of(tmp_path, [first, methods, refs])
    titles = [" ".join("".join(t.itertext()).split()) for t in root.iter("title")]
    assert not any(BODY[:30] in t for t in titles)
    assert [m for m, _ in marks(root)] == ["1", "4", "3", "2", "1", "4", "3", "2"]
    assert [names for _, names in marks(root)][:2] == [["1. Author1"], ["4. Author4"]]


# ---------------------------------------------------------------------------------------------------------
# OpenEdition (French journals): "BIBLIOGRAPHIE", "Neumann et Tome, 2005", "Crozier et Friedberg (1977 : 409)"
# ---------------------------------------------------------------------------------------------------------

def test_a_french_bibliographie_heading_opens_the_bibliography(tmp_path):
    """OpenEdition's journals head their bibliography "BIBLIOGRAPHIE": not read as one, the 44 entries of a
    paper stayed body text and none of its 27 author-year markers had an entry to name; and "Feldman M.S., 2000"
    (the surname, then initials whose last stop the comma cut off) gave "M.S" as the surname."""
    page = raw_pdf.Page()
    page.text(60, 740, "Un titre assez long pour un article", size=18)
    page.text(60, 700, "Introduction", size=12)
    page.text(60, 684, "Les routines organisationnelles changent (Feldman, 2000) et ce texte continue.", size=10)
    for k in range(5):
        page.text(60, 672 - 12 * k, f"{BODY}, ligne {k}.", size=10)
    page.text(60, 590, "BIBLIOGRAPHIE", size=13)
    # (no labels, no indents: the entries stand apart by a wider gap, 19 pt against 13)
    page.text(60, 574, "Argyris C., Schon D.A., 2002, Apprentissage organisationnel - Theorie, methode,", size=9)
    page.text(60, 561, "traduction de la premiere edition, Ed. DeBoeck universite, 380 p.", size=9)
    page.text(60, 542, "Feldman M.S., 2000, Organizational routines as a source of continuous change,", size=9)
    page.text(60, 529, "Organization Science, vol. 11, p. 611-629.", size=9)
    page.text(60, 510, "Perroux F., 1961, L'economie du vingtieme siecle, Presses Universitaires de France,", size=9)
    page.text(60, 497, "Paris, 598 p.", size=9)
    page.text(60, 478, "Simon H.A., 1992, De la rationalite substantive a la rationalite procedurale, Revue", size=9)
    page.text(60, 465, "Piste, n. 3, p. 1-20.", size=9)
    root = xml_of(tmp_path, [page])
    refs = [" ".join("".join(r.itertext()).split()) for r in root.iter("ref")]
    assert len(refs) == 4 and refs[1].startswith("Feldman M.S., 2000") and refs[1].endswith("p. 611-629.")
    # "Feldman M.S., 2000": the surname before dotted initials whose last stop the comma after them cut off
    assert [r.findtext(".//surname") for r in root.iter("ref")][1] == "Feldman"
    assert marks(root) == [("Feldman, 2000", ["Feldman M."])]


def test_french_et_between_two_surnames_and_a_page_after_a_colon_still_name_the_entry(tmp_path):
    """French author-year markers join two names by "et" ("(Neumann et Tome, 2005)") and print the page after
    the year behind a colon ("Crozier et Friedberg (1977 : 409)"): neither was read as a marker (13 of a paper's
    28 pairs linked); both name the entry of the first surname and the year."""
    page = raw_pdf.Page()
    page.text(60, 740, "Un titre assez long pour un article", size=18)
    page.text(60, 700, "Introduction", size=12)
    page.text(60, 684, "La connaissance se partage (Neumann et Tome, 2005) entre les acteurs.", size=10)
    page.text(60, 672, "Comme le notent Crozier et Friedberg (1977 : 409) le pouvoir est une relation.", size=10)
    for k in range(5):
        page.text(60, 660 - 12 * k, f"{BODY}, ligne {k}.", size=10)
    page.text(60, 580, "BIBLIOGRAPHIE", size=13)
    page.text(60, 564, "Crozier M., Friedberg E., 1977, L'acteur et le systeme, Editions du Seuil, Paris.", size=9)
    page.text(60, 552, "Neumann G., Tome E., 2005, Knowledge Management and Logistics, Proceedings, p. 1-9.",
              size=9)
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("Neumann et Tome, 2005", ["Neumann G."]),
                           ("Crozier et Friedberg (1977 : 409)", ["Crozier M."])]


# ---------------------------------------------------------------------------------------------------------
# Vancouver papers with tables of medians and ranges: "18 (2–24)" is no citation, nor a sign of a lost entry
# ---------------------------------------------------------------------------------------------------------

def test_a_range_in_parentheses_after_a_value_is_no_citation_and_no_lost_entry():
    """A table's "Median age | 40 (25–71) | 48 (24–72)" and "CAPD duration (mo) | 16 (4-45)" in a paper that
    cites by numbers in parentheses were read as citations of entries 25–71 and 4–45: two complete
    bibliographies (27 and 37 entries) were flagged cut short, and "18 (2–24)" linked 23 entries. Numbers in
    parentheses right after a count or a measure are its range (in a table's row, any group after one); after a
    year ("since 1998 (28)") or a version in prose ("PREFAB 4.0 (5)") they cite."""
    text = ("Median age at onset | 40 (25–71) | 48 (24–72) Duration (mo) | 16 (4-45) as reported before (3, 4), "
            "in PREFAB 4.0 (5) and since 1998 (28).")
    lost, counted = builtin.numbers_without_entry(text, list(range(1, 28)), 27, parens=True)
    assert lost == [28] and counted == 4
    refs = [builtin.Reference(raw=f"{n}. Author{n} A. A title of work {n}. J Test 2001;{n}:1-9.", label=f"{n}.")
            for n in range(1, 30)]
    found = [text[s:e] for s, e, _ in builtin.find_markers(text, refs, parens=True)]
    assert found == ["3, 4", "5", "28"]
    # in a table's row a single number after a value is its spread too ("Estimates | 0.143 (12) | 0.0429 (21)")
    assert builtin.find_markers("Estimates | 0.143 (12) | 0.0429 (21)", refs, parens=True, table=True) == []


# ---------------------------------------------------------------------------------------------------------
# ACL 2003 through Ghostscript: hanging indents whose first lines start a few points right of the edge
# ---------------------------------------------------------------------------------------------------------

def test_an_entrys_first_line_a_few_points_in_from_the_edge_still_opens_it(tmp_path):
    """A bibliography with hanging indents (no labels, no links), each entry's other lines 11 pt in: the box of
    a first line's capital may start 4 or 7 pt right of the column's edge ("Paul Kingsbury, …" at 317.5 beside
    313.3, its continuation at 324.3), and such a line was read as a continuation, gluing its entry to the one
    above (10 of 20 entries read). A line nearer the edge than the indent opens an entry."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "1 Introduction", size=12)
    page.text(60, 684, "Verbs are annotated (Kingsbury et al., 2002) and classed (Levin, 1993) in lexicons.", size=10)
    for k in range(5):
        page.text(60, 672 - 12 * k, f"{BODY}, line {k}.", size=10)
    page.text(60, 590, "References", size=12)
    entries = [(60, "Collin F. Baker, Charles J. Fillmore, and John B. Lowe. 1998. The Berkeley FrameNet",
                "Project. In Proceedings of COLING/ACL 98, Montreal, Canada."),
               (64.2, "Paul Kingsbury, Martha Palmer, and Mitch Marcus. 2002. Adding Semantic Annotation",
                "to the Penn TreeBank. In Proceedings of HLT 2002, San Diego."),
               (63.1, "Beth Levin. 1993. English Verb Classes and Alternations: A Preliminary Investigation.",
                "University of Chicago Press."),
               (66.9, "Grace Ngai and Radu Florian. 2001. Transformation Based Learning in The Fast Lane.",
                "In Proceedings of NAACL 2001, pages 40-47.")]
    y = 572
    for x, first, second in entries:
        page.text(x, y, first, size=9)
        page.text(71, y - 10, second, size=9)
        y -= 24
    root = xml_of(tmp_path, [page])
    refs = [" ".join("".join(r.itertext()).split()) for r in root.iter("ref")]
    assert [r.split(".")[0][:14] for r in refs] == ["Collin F", "Paul Kingsbury", "Beth Levin", "Grace Ngai and"]
    assert marks(root) == [("Kingsbury et al., 2002", ["Paul Kings"]), ("Levin, 1993", ["Beth Levin"])]


# ---------------------------------------------------------------------------------------------------------
# Journal de Physique (EDP, scanned issues of the 1970s–1990s): references numbered "/1/", cited "/3,4/"
# ---------------------------------------------------------------------------------------------------------

def test_references_numbered_between_slashes_are_cited_between_slashes(tmp_path):
    """Journal de Physique numbered its bibliography "/1/ GLATTER, O, …" and cited "/1/", "/3,4/" (an OCR layer
    reading "/1/" as "/I/"): no marker was read and a paper with 7 entries was reported empty. Where most
    entries carry such a label, a group of numbers between slashes is a marker; elsewhere a slash is no
    bracket ("PEO/PPO/PEO", "2/3")."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "1) Introduction", size=10, font="F2")
    page.text(60, 684, "Scattering methods /I/ and densitometry /3,4/ are used for PEO/PPO/PEO solutions.", size=10)
    page.text(60, 672, "The speed of sound depends on the compressibility /2/ of the fluid and 2/3 of it.", size=10)
    for k in range(5):
        page.text(60, 660 - 12 * k, f"{BODY}, line {k}.", size=10)
    page.text(60, 580, "References", size=10, font="F2")
    for n, name in enumerate(["GLATTER, O, Progr. Colloid Polym. Sci 84 (1991) 46-54.",
                              "DEGIORGIO, V, Light Scattering in Liquids, Plenum Press, New York (1980)",
                              "STABINGER, H, LEOPOLD, H & KRATKY, O, Mh. Chem. 98 (1967) 436-438.",
                              "KRATKY, O, LEOPOLD, H & STABINGER, H, Z. angew. Phys. 27 (1969) 273-277."], start=1):
        page.text(60, 564 - 14 * n, f"/{n}/ {name}", size=9)
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("I", ["/1/ GLATTE"]), ("3,4", ["/3/ STABIN", "/4/ KRATKY"]), ("2", ["/2/ DEGIOR"])]


def test_the_bench_judge_reads_a_label_and_a_marker_between_slashes():
    """The published-PDF judge (bench.py) reads "/12/ …" as entry 12's label and "/3,4/" as a marker naming 3
    and 4, not "PEO/PPO/PEO"."""
    sys.path.insert(0, str(REPO / "03_cermine_extract"))
    import bench
    assert bench.pair_is_right("densitometry /3,4/ is used", "/4/ KRATKY, O, Z. angew. Phys. 27 (1969) 273.")
    assert not bench.pair_is_right("for PEO/4/PPO solutions", "/4/ KRATKY, O, Z. angew. Phys. 27 (1969) 273.")


# ---------------------------------------------------------------------------------------------------------
# Raised numbers and bracketed isotopes that are no citations: "mm²/kPa", "[18F]fluorodeoxyglucose"
# ---------------------------------------------------------------------------------------------------------

def test_a_2_raised_after_a_unit_is_its_power_not_a_citation(tmp_path):
    """"(mm²/kPa)", "35 N/mm²/min" in papers that cite by raised numbers: the raised 2 linked entry 2 (three
    wrong pairs in two papers). A 2 or a 3 raised right after a unit of length or volume is its power; a raised
    number after a word still cites."""
    from test_03_builtin_published_classes import end_x
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Methods", size=10, font="F2")
    y = 680
    for text, mark, after in [("Arterial stiffness predicts mortality", "1", "."),
                              ("Compliance was given in (mm", "2", "/kPa) as before."),
                              ("The load rose at a rate of 35 N/mm", "2", "/min till the cube failed."),
                              ("Calcification is common in dialysis", "2,3", ".")]:
        page.text(60, y, text, size=10)
        x = end_x(tmp_path, 60, text, 10)
        page.text(x + 0.3, y + 3.5, mark, size=6.5)
        page.text(x + 3.6 * len(mark) + 1, y, after, size=10)
        y -= 12
    for k in range(4):
        page.text(60, y - 12 * k, f"{BODY}, line {k}.")
    page.text(60, 560, "REFERENCES", size=10, font="F2")
    for n in range(1, 6):
        page.text(60, 560 - 14 * n, f"{n} Author{n} A, Other B. A title of work number {n}. J Test, 2001,{n}:1-9",
                  size=8)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in marks(root)] == ["1", "2,3"]


def test_an_isotope_in_brackets_opening_a_line_of_an_entry_is_no_label(tmp_path):
    """"[18] … [18F]fluorodeoxyglucose positron emission tomography …": the title's next line opens with the
    bracketed isotope, which was read as a label, so "Cristofanilli et al. [18]" named the title's tail."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=10, font="F2")
    page.text(60, 684, "Counts were reported before [1] and imaging was used [2].", size=10)
    for k in range(5):
        page.text(60, 672 - 12 * k, f"{BODY}, line {k}.")
    page.text(60, 590, "References", size=10, font="F2")
    page.text(60, 574, "[1] Cristofanilli M, Budd GT. Circulating tumor cells in breast cancer. N Engl J", size=8)
    page.text(60, 564, "Med 2004; 351: 781-791.", size=8)
    page.text(60, 552, "[2] Tateishi U, Gamez C. Bone metastases in patients with metastatic breast cancer:", size=8)
    page.text(60, 542, "[18F]fluorodeoxyglucose positron emission tomography. Radiology 2008; 247: 189-196.", size=8)
    page.text(60, 530, "[3] Nole F, Munzone E. Variation of circulating tumor cells. Ann Oncol 2008; 19: 891.", size=8)
    root = xml_of(tmp_path, [page])
    refs = [" ".join("".join(r.itertext()).split()) for r in root.iter("ref")]
    assert len(refs) == 3 and refs[1].endswith("247: 189-196.")
    assert marks(root) == [("1", ["[1] Cristo"]), ("2", ["[2] Tateis"])]


def test_the_bench_judge_reads_a_decade_in_a_title_as_no_lettered_year():
    """"Ross, R. (1993). The pathogenesis of atherosclerosis: A perspective for the 1990s.": the judge read
    "1990s" as a lettered year ("2007a") and wanted the sentence to print it, so "(Ross, 1993)" was judged
    wrong; "2007b" still asks for its letter."""
    sys.path.insert(0, str(REPO / "03_cermine_extract"))
    import bench
    raw = "Ross, R. (1993). The pathogenesis of atherosclerosis: A perspective for the 1990s. Nature, 362, 801."
    assert bench.pair_is_right("a key role in atherosclerosis (Celermajer, 1997; Ross, 1993).", raw)
    assert not bench.pair_is_right("as shown (Wang, 2007a).", "Wang, L. (2007b). A title. J Test, 1, 2.")
