"""Stage 03's built-in backend on PDFs made by Word and other non-TeX producers (issue 25, round 31: theses,
manuscripts, preprints and course reports from Microsoft Word, Word for Mac through Quartz, LibreOffice Writer and
Google Docs): each test builds a small PDF the way such a document is laid out, and checks one class of problem the
held-out measurement showed."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402


def marks(root) -> list[tuple[str, list[str]]]:
    """(marker text, the first characters of every reference it names) for each linked marker, in reading order."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, [refs[k][:5] for k in x.get("rid").split()]) for x in root.iter("xref")]


def filler(page: raw_pdf.Page, y: float, lines: int = 4, size: float = 10) -> float:
    for k in range(lines):
        page.text(60, y - 12 * k, f"{BODY}, line {k}.", size=size)
    return y - 12 * lines


def raised(tmp_path, page: raw_pdf.Page, y: float, text: str, mark: str, after: str = ".",
           gap: str = "") -> None:
    """``text`` then ``mark`` raised and small right after it (``gap``: a space between them), then ``after``."""
    page.text(60, y, text + gap, size=10)
    x = end_x(tmp_path, 60, text + gap, 10) + (2.5 if gap else 0.3)
    page.text(x, y + 3.5, mark, size=6.5)
    if after:
        page.text(x + 3.6 * len(mark) + 1, y, after, size=10)


# ---------------------------------------------------------------------------------------------------------
# A Word thesis's table of contents links "References" to the first entry: no linked PDF for all that
# ---------------------------------------------------------------------------------------------------------

def test_a_table_of_contents_link_into_the_bibliography_leaves_the_markers_to_their_patterns(tmp_path):
    """Word writes a link for each line of a table of contents; "References ..... 2" points at the bibliography's
    first entry. That one link made the PDF read as one whose citations are its links, so the author-year
    markers, none of them a link, were never looked for (a dissertation's 35 markers: none linked, reported
    empty)."""
    toc = raw_pdf.Page()
    toc.text(60, 740, "A Dissertation Title Set Large", size=18)
    toc.text(60, 700, "Contents", size=12, font="F2")
    toc.text(60, 680, "Introduction ........................................ 2", size=10)
    toc.text(60, 666, "References ........................................... 3", size=10)
    toc.link((60, 664, 330, 676), page=2, x=60, y=722)
    body = raw_pdf.Page()
    body.text(60, 740, "Introduction", size=12, font="F2")
    body.text(60, 720, "Online reviews matter for hotels, as Schuckert, Liu and Law (2015) found.", size=10)
    body.text(60, 708, "Reviews have become the word of mouth of the web (Kaplan and Haenlein, 2010).", size=10)
    filler(body, 696)
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=12, font="F2")
    refs.text(60, 720, "Kaplan, A.M. and Haenlein, M., 2010. Users of the world, unite. Business Horizons, 53, pp.59-68.",
              size=9)
    refs.text(60, 706, "Schuckert, M., Liu, X. and Law, R., 2015. Hospitality and tourism online reviews. J Travel, 32,"
              " pp.608-621.", size=9)
    root = xml_of(tmp_path, [toc, body, refs])
    assert marks(root) == [("Schuckert, Liu and Law (2015)", ["Schuc"]), ("Kaplan and Haenlein, 2010", ["Kapla"])]


def test_links_that_cite_from_the_body_still_make_a_linked_pdf(tmp_path):
    """The other side: a PDF whose body links its markers to their entries is read by its links, as before."""
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "1. Introduction", size=10, font="F2")
    ys = [680, 668, 656]
    for n, y in zip((1, 2, 3), ys):
        body.text(60, y, f"{BODY} [{n}].")
    filler(body, 644)
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=10, font="F2")
    for n in range(1, 4):
        refs.text(60, 740 - 14 * n, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=8)
    for n, y in zip((1, 2, 3), ys):
        left = end_x(tmp_path, 60, f"{BODY} ")
        right = end_x(tmp_path, 60, f"{BODY} [{n}]")
        body.link((left, y - 2, right, y + 8), page=1, x=60, y=740 - 14 * n + 8)
    xml, stats = builtin.convert(raw_pdf.write_pdf(tmp_path / "linked.pdf", [body, refs]))
    assert stats["n_linked_by"] == "links" and stats["n_citations"] == 3


# ---------------------------------------------------------------------------------------------------------
# LibreOffice: bracketed numbers raised, several in a row, glued to the words around them
# ---------------------------------------------------------------------------------------------------------

def test_raised_bracketed_numbers_in_a_row_cite_each_entry_even_glued_to_a_word(tmp_path):
    """"the value of perioperative BNP^[7][8][9]", "compared to these^[8][13]studies": a raised run of several
    bracketed numbers was read as no marker (only a single "^[1]" was), nor when a word follows it with no space
    (a paper's 104 bracketed markers: 58 right pairs)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    raised(tmp_path, page, 680, "The peptide reflects wall stress in heart failure", "[1]")
    raised(tmp_path, page, 668, "Studies investigating the value of perioperative BNP", "[2][3][4]", " are many.")
    raised(tmp_path, page, 656, "However, our study should be compared to these", "[2][5]", "studies.")
    filler(page, 644)
    page.text(60, 560, "References", size=11, font="F2")
    for n in range(1, 6):
        page.text(60, 560 - 14 * n, f"[{n}] Author{n} A, Other B. A title of work number {n}. J Test, 2001;{n}:1-9",
                  size=9)
    root = xml_of(tmp_path, [page])
    assert [(m.strip("[] "), names) for m, names in marks(root)] == [
        ("1", ["[1] A"]), ("2][3][4", ["[2] A", "[3] A", "[4] A"]), ("2][5", ["[2] A", "[5] A"])]


# ---------------------------------------------------------------------------------------------------------
# Author-year markers as authors type them: another language's "and", no accent, "et. al", commas between
# ---------------------------------------------------------------------------------------------------------

def author_year_page(body_lines: list[str], entries: list[str], heading: str = "References") -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    y = 680
    for line in body_lines:
        page.text(60, y, line, size=10)
        y -= 12
    y = filler(page, y)
    page.text(60, y - 20, heading, size=11, font="F2")
    y -= 40
    for entry in entries:
        page.text(60, y, entry, size=9)
        y -= 14
    return page


def test_the_and_of_another_language_joins_two_cited_authors(tmp_path):
    """A Spanish working paper cites "(Varian y Choi, 2012; Bortoli y Combes, 2015)": "y" (and "und", "e", "et",
    "en", "och") joins the last two authors as "and" and "&" do; the markers were read as the surname "Choi" and
    named nothing (a 41-page paper: 18 of its 48 pairs)."""
    page = author_year_page(
        ["Search data has been explored in the recent literature (Varian y Choi, 2012; Bortoli y Combes, 2015).",
         "Their model follows a Bayesian approach, as Scott y Varian (2014) proposed."],
        ["Bortoli, C. y Combes, S. (2015). Contribution from Google Trends for forecasting. INSEE.",
         "Scott, S. y Varian, H. (2014). Predicting the present with Bayesian structural time series. IJMMNO.",
         "Varian, H. y Choi, H. (2012). Predicting the present with Google Trends. Economic Record, 88."],
        heading="Referencias")
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("Varian y Choi, 2012; Bortoli y Combes, 2015", ["Varia", "Borto"]),
                           ("Scott y Varian (2014)", ["Scott"])]


def test_a_marker_that_drops_its_entrys_accent_names_the_entry(tmp_path):
    """"(Candes, 2006)" for the entry "Candès, Emmanuel J., …" (an MLA list under "References and further
    reading", a heading that was not read either), "(Muller, 2022)" for "Müller, M.": the surname is compared
    without its accents."""
    page = author_year_page(
        ["Since the seminal publication (Candes, 2006), the field has grown.",
         "Student performance can be predicted (Muller, 2022)."],
        ["Candès, Emmanuel J., Justin K. Romberg, and Terence Tao. 'Stable Signal Recovery'. CPAM 59.8 (2006): 1207-1223.",
         "Müller, M. (2022). Educational data mining: prediction of students' academic performance. SLE, 9(1), 11."],
        heading="References and further reading")
    root = xml_of(tmp_path, [page])
    assert marks(root) == [("Candes, 2006", ["Candè"]), ("Muller, 2022", ["Mülle"])]


def test_et_al_with_a_stop_after_et_and_citations_parted_by_commas_name_their_entries(tmp_path):
    """A student report's "(Nam et. al, 2013)", "(Huber, et al., 2016)" and "(You, 2021, Duron-Ramos et al.,
    2018)", two citations parted by a comma, not a semicolon."""
    page = author_year_page(
        ["Happiness was studied in high-stress careers, like nursing (Nam et. al, 2013).",
         "The Hamiltonian written in (Huber, et al., 2016) is used here.",
         "The literature set it as a precedent (You, 2021, Duron-Ramos et al., 2018)."],
        ["Durón-Ramos, M. F., Vázquez, F. G., & Lee, K. (2018). Orientation to happiness. Rev Psic, 2, 1-9.",
         "Huber, T., Osterman, L., & Prilmüller, M. (2016). Coherence and degree of time-bin entanglement. PRB, 93.",
         "Nam, M. H., Kwon, Y. C., & Park, S. (2013). Factors influencing happiness of nurses. JKAIS, 14, 1-9.",
         "You, L. (2021). Utilizing machine learning to predict happiness index. ICCEA, 2, 1-4."])
    root = xml_of(tmp_path, [page])
    assert [(m, names) for m, names in marks(root)] == [
        ("Nam et. al, 2013", ["Nam, "]), ("Huber, et al., 2016", ["Huber"]),
        ("You, 2021, Duron-Ramos et al., 2018", ["You, ", "Durón"])]


# ---------------------------------------------------------------------------------------------------------
# Vancouver in parentheses: a table's raised footnote marks and its "8 (1, 14)" are no citations
# ---------------------------------------------------------------------------------------------------------

def vancouver_thesis(tmp_path, table_rows: list[str]) -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(60, 740, "A Thesis Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    y = 680
    for n in range(1, 7):
        page.text(60, y, f"Trauma care is described in the registry of this country in detail ({n}).", size=10)
        y -= 12
    page.text(60, y - 6, "Table 1. Characteristics of the patients", size=10)
    y -= 22
    for row, (label, mark, cells) in enumerate(table_rows):
        raised(tmp_path, page, y, label, mark, after="")
        for c, cell in enumerate(cells):
            page.text(200 + 90 * c, y, cell, size=10)
        y -= 12
    page.text(60, y - 4, "OR = Odds Ratio, CI = Confidence Interval, ICU = Intensive care unit.", size=8)
    filler(page, y - 30)
    page.text(60, 330, "References", size=11, font="F2")
    for n in range(1, 7):
        page.text(60, 330 - 14 * n, f"{n}. Author{n} A, Other B. A title of work number {n}. J Test. 2001;{n}:1-9.",
                  size=9)
    return page


def test_raised_table_marks_and_ranges_in_a_paper_citing_in_parentheses_are_no_citations(tmp_path):
    """A Word thesis cites "(1)", "(10, 19)" (Vancouver) and its tables mark their columns "OR¹", "95% CI²",
    "ICU³" for the notes below them; counted with the raised citations of other papers they named entries 1-3,
    as did a median's range "8 (1, 14)" in a cell (a thesis with 44 pairs had 101 written)."""
    rows = [("Characteristic", "", ["OR", "95% CI", "p-value"]),
            ("ICU", "3", ["3.10", "2.39, 4.01", "<0.001"]),
            ("GCS", "2", ["8 (1, 4)", "5 (1, 4)", "0.03"]),
            ("Age", "1", ["1.02", "1.01, 1.03", "0.002"])]
    root = xml_of(tmp_path, [vancouver_thesis(tmp_path, rows)])
    assert [m for m, _ in marks(root)] == ["1", "2", "3", "4", "5", "6"]


def test_value_ranges_in_parentheses_do_not_make_a_vancouver_paper_partial():
    """"47 (34-69)", "12 (80)" in a table read as text are a median's range and a count's share, not numbers the
    text cites: counted, they made a paper of 37 entries "cut short" (60 numbers without an entry)."""
    text = " ".join(f"Heart failure is common ({n})." for n in range(1, 38)) + \
        " Age, years 47 (34-69) 52 (48-72) 60 (43-96) Alive 12 (80) 3 (20) 7 (100)"
    lost, counted = builtin.numbers_without_entry(text, list(range(1, 38)), 37, parens=True)
    assert lost == [] and counted == 37


# ---------------------------------------------------------------------------------------------------------
# Word: a bare label a tab's width before its entry, on a line of its own
# ---------------------------------------------------------------------------------------------------------

def test_bare_labels_on_lines_of_their_own_start_the_entries_and_the_run_goes_on(tmp_path):
    """Nature's style typed in Word: "1 Kaye, P. M.", and where the entry is long, "4" on a line of its own a tab's
    width left of "Li, L.-a."; an entry that opens with a title or a corporate author ("3 The Vaccine Confidence
    Project", "6 The next big thing …") goes on the run. The labels were lost, and with them every raised marker (a
    preprint's 6 pairs: none right), or entries were glued to the one before (a manuscript lost 5 of 39)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Preprint Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    raised(tmp_path, page, 680, "Pandemic diseases have brought disasters many times", "1")
    raised(tmp_path, page, 668, "Coronaviruses caused pandemics in the last two decades", "2,3")
    raised(tmp_path, page, 656, "Group testing was discussed as a mathematical problem", "4,5")
    raised(tmp_path, page, 644, "Sewage systems were tested for the virus", "6")
    filler(page, 632)
    page.text(60, 560, "References", size=11, font="F2")
    y = 540
    for n, entry in [(1, "Kaye, P. M. Infectious diseases of humans. Immunology Today 14, 616 (1993)."),
                     (2, "Zhou, P. et al. A pneumonia outbreak associated with a new coronavirus. Nature (2020)."),
                     (3, "The Vaccine Confidence Project. The state of vaccine confidence (accessed 2023)."),
                     (4, "Li, L.-a. On the feasibility of group testing. Journal of Hubei Automotive (2002)."),
                     (5, "Tu, B. Discussion on grouped testing of blood samples. Journal of Chongqing (2005)."),
                     (6, "The next big thing in Covid-19 testing could be floating beneath you (2020).")]:
        if n in (4, 6):
            page.text(60, y, str(n), size=9)
            page.text(88, y - 11, entry, size=9)
            y -= 25
        else:
            page.text(60, y, f"{n} {entry}", size=9)
            y -= 14
    root = xml_of(tmp_path, [page])
    assert [(m, [name[:1] for name in names]) for m, names in marks(root)] == [
        ("1", ["1"]), ("2,3", ["2", "3"]), ("4,5", ["4", "5"]), ("6", ["6"])]


# ---------------------------------------------------------------------------------------------------------
# Word: a raised citation set after a space
# ---------------------------------------------------------------------------------------------------------

def test_a_raised_citation_after_a_space_cites_and_an_isotope_still_does_not(tmp_path):
    """"described elsewhere ¹¹", "earlier findings from ¹⁰,²⁰": Word users leave a space before the raised
    numbers, which were taken for a unit or an isotope ("the ¹H spectrum", which still is one)."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    raised(tmp_path, page, 680, "Immunity wanes across age groups", "1,2")
    raised(tmp_path, page, 668, "The study protocol has been described elsewhere", "3", gap=" ")
    raised(tmp_path, page, 656, "This confirms the earlier findings from", "1,4", gap=" ")
    raised(tmp_path, page, 644, "We recorded the", "1", after="H spectrum of the sample.", gap=" ")
    filler(page, 632)
    page.text(60, 560, "References", size=11, font="F2")
    for n, name in enumerate(["Adams", "Baker", "Clark", "Davis", "Evans"], start=1):
        page.text(60, 560 - 14 * n, f"{n} {name} A, Other B. A title of work number {n}. J Test 2001; {n}: 1-9.",
                  size=9)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in marks(root)] == ["1,2", "3", "1,4"]


def test_a_pdf_that_links_one_marker_of_many_is_read_by_its_patterns(tmp_path):
    """A Word preprint hyperlinks one marker (a cross-reference inserted as a link) and prints its other raised
    numbers plain: read by its links it had 1 marker linked of 5; the patterns, which link more than twice as many,
    read it."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Preprint Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    y = 680
    for n in range(1, 6):
        page.text(60, y, f"{BODY} [{n}].")
        y -= 12
    filler(page, y)
    page.text(60, 560, "References", size=11, font="F2")
    for n in range(1, 6):
        page.text(60, 560 - 14 * n, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=9)
    left, right = end_x(tmp_path, 60, f"{BODY} "), end_x(tmp_path, 60, f"{BODY} [1]")
    page.link((left, 678, right, 688), page=0, x=60, y=560 - 14 + 8)
    xml, stats = builtin.convert(raw_pdf.write_pdf(tmp_path / "one-link.pdf", [page]))
    assert stats["n_linked_by"] == "patterns" and stats["n_citations"] == 5
