"""Stage 03's built-in backend on published papers (issue 25, rounds 28 and 29: a held-out set of 46 journal
articles from ContentMine/norma's test resources — BMC, Elsevier, The Lancet, T&F/Maney, Microbiology Society,
SAGE, Wiley, OUP, JMIR, PLOS, Frontiers, F1000, Hindawi, MDPI — and three classes known from earlier rounds: A&A's
figures flushed after the bibliography, a magazine's sidebars, two tables side by side): each test builds a small
PDF the way that producer lays it out, and checks one class of problem the measurement showed."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_heldout_classes import PROSE, marks, named, raised  # noqa: E402
from test_03_builtin_published_classes import raws_of  # noqa: E402
from test_03_builtin_real_classes import xml_of  # noqa: E402
from test_03_builtin_table_classes import table_rows  # noqa: E402


# ---------------------------------------------------------------------------------------------------------
# The Lancet, Maney (3B2): Vancouver entries after a bare number, "1 Lim SS, Vos T, …"
# ---------------------------------------------------------------------------------------------------------

def opening(tmp_path, title: str, body: list[tuple[str, str]], more: int, x: float = 72,
            heading: str = "Introduction") -> tuple[raw_pdf.Page, float]:
    """A page: ``title``, ``heading``, the ``body`` lines (text, and a mark raised after it or ""), ``more``
    lines of prose, then "References"; and the baseline where the first entry goes."""
    page = raw_pdf.Page()
    page.text(x, 740, title, size=18)
    page.text(x, 700, heading, size=12, font="F2")
    y = 680
    for text, mark in body:
        if mark:
            raised(tmp_path, page, x, y, text, mark)
        else:
            page.text(x, y, text)
        y -= 12
    for k in range(more):
        page.text(x, y, f"{PROSE} more of the same, line {k}.")
        y -= 12
    page.text(x, y - 14, "References", size=12, font="F2")
    return page, y - 34


def vancouver_paper(tmp_path, entries: list[str]) -> raw_pdf.Page:
    page, y = opening(tmp_path, "A Paper Title Set Large",
                      [(f"{PROSE} causes six million deaths a year,", "1"), (f"{PROSE} as reported before.", "2,3"),
                       (f"{PROSE} despite trying to stop.", "4–6")], 3)
    for entry in entries:
        first, second = entry.split("|")
        page.text(72, y, first, size=8)
        page.text(80, y - 10, second, size=8)
        y -= 22
    return page


LANCET_ENTRIES = ["1 Lim SS, Vos T, Flaxman AD, et al. A comparative risk assessment of|burden of disease. Lancet 2012; 380: 2224-60.",
                  "2 Jha P, Peto R, Zatonski W, Boreham J. Social inequalities in male|mortality. Lancet 2006; 368: 367-70.",
                  "3 Jha P, Ramasundarahettige C, Landsman V, et al. 21st-century|hazards of smoking. N Engl J Med 2013; 368: 341-50.",
                  "4 Martinelli Boneschi F, Vacchi L, Rovaris M. Mitoxantrone for|multiple sclerosis. Cochrane Database Syst Rev 2013; 5: CD002127.",
                  "5 Hartmann-Boyce J, Stead LF, Cahill K, Lancaster T. Efficacy of|interventions. Addiction 2013; 108: 1711-21.",
                  "6 Kotz D, Brown J, West R. Real-world effectiveness of smoking|cessation treatments. Addiction 2014; 109: 491-99."]


def test_bare_number_labels_before_vancouver_authors_are_the_entries_labels(tmp_path):
    """The Lancet and Maney's 3B2 print "1 Lim SS, Vos T, …" and "4 Martinelli Boneschi F, …": a bare number
    before a surname and its initials in capitals without stops is the entry's label, and the raised numbers
    of the text name the entries by it (three papers with 26-36 entries had no marker linked)."""
    root = xml_of(tmp_path, [vancouver_paper(tmp_path, LANCET_ENTRIES)])
    assert [r[:9] for r in raws_of(root)] == ["1 Lim SS,", "2 Jha P, ", "3 Jha P, ", "4 Martine", "5 Hartman",
                                              "6 Kotz D,"]
    assert marks(root) == [("1", "1 Lim SS, Vo"), ("2,3", "2 Jha P, Pet"), ("4–6", "4 Martinelli")]
    assert [len(n) for _, n in named(root)] == [1, 2, 3]


def test_a_number_before_a_sentence_in_the_bibliography_is_no_vancouver_label(tmp_path):
    """Only a surname followed by capitals and a comma or stop makes the Vancouver shape: "2 Methods We …" or
    "3 Patients were …" at a line's start are not labels (no entry is split there)."""
    entries = ["Lim SS, Vos T, Flaxman AD, et al. A comparative risk assessment, see|2 Methods We used. Lancet 2012; "
               "380: 2224-60.",
               "Jha P, Peto R, Zatonski W. Social inequalities in male mortality, in|3 Patients were seen. Lancet 2006; "
               "368: 367-70."]
    page = vancouver_paper(tmp_path, entries)
    root = xml_of(tmp_path, [page])
    assert len(raws_of(root)) == 2 and not marks(root)


# ---------------------------------------------------------------------------------------------------------
# IJSEM (Microbiology Society, 3B2): no section headings, the body in narrow columns
# ---------------------------------------------------------------------------------------------------------

NARROW = ["Deep-sea vents are among the most productive marine",
          "systems on Earth. The discovery of these primarily",
          "chemoautotrophic environments has been followed by",
          "an appreciation of the remarkable physiological and",
          "phylogenetic diversity of their inhabitants (Campbell",
          "et al., 2006). A number of studies have verified the",
          "role of these bacteria in biogeochemical cycles, as",
          "in hydrothermal fields (Nakagawa & Takai, 2008)."]


def test_prose_in_a_narrow_column_opens_a_body_without_headings(tmp_path):
    """IJSEM sets no heading between its abstract and its text, in columns of some 50 characters: four lines
    hold fewer than 200 letters, and the text was taken for front matter up to the first wider paragraph
    pages later (a paper with 55 author-year markers had 14 linked). Up to six lines of the same shape are
    read as the evidence of running prose."""
    page = raw_pdf.Page()
    page.text(60, 740, "Sulfurimonas gotlandica sp. nov., a bacterium", size=17)
    page.text(60, 716, "Matthias Labrenz and Klaus Jurgens", size=12)
    for k, text in enumerate(["A psychro- and aerotolerant bacterium was isolated from the sulfidic water of a pelagic",
                              "redoxcline of the central Baltic Sea. The cells were motile by one polar flagellum.",
                              "Growth was chemolithoautotrophic, with nitrate or nitrite as electron acceptor."]):
        page.text(60, 690 - 11 * k, text, size=9)
    y = 640
    for text in NARROW:
        page.text(60, y, text, size=10)
        y -= 12
    later = raw_pdf.Page()
    later.text(60, 740, "Strain GD1T was isolated from a pelagic redox zone of the Gotland Deep in the central Baltic", size=10)
    later.text(60, 728, "Sea during a research cruise on board the research vessel in May of that year, and it was", size=10)
    later.text(60, 716, "grown in a modified artificial brackish water medium described before (Bruns et al., 2002).", size=10)
    later.text(60, 704, "The medium was then incubated in the dark at ten degrees under anoxic conditions for weeks.", size=10)
    later.text(60, 686, "Acknowledgements", size=11, font="F2")
    later.text(60, 674, "We thank the crew of the research vessel for their help at sea.", size=9)
    later.text(60, 650, "References", size=11, font="F2")
    for n, entry in enumerate(["Bruns, A., Cypionka, H. & Overmann, J. (2002). Cyclic AMP. Appl Environ Microbiol 68, 3978-3987.",
                               "Campbell, B. J., Engel, A. S. & Takai, K. (2006). The versatile epsilon-proteobacteria. Nat Rev Microbiol 4, 458-468.",
                               "Nakagawa, S. & Takai, K. (2008). Deep-sea vent chemoautotrophs. FEMS Microbiol Ecol 65, 1-14."]):
        later.text(60, 632 - 12 * n, entry, size=8)
    root = xml_of(tmp_path, [page, later])
    assert [m for m, _ in named(root)] == ["Campbell et al., 2006", "Nakagawa & Takai, 2008", "Bruns et al., 2002"]
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "Deep-sea vents" in text and "psychro- and aerotolerant" not in text


# ---------------------------------------------------------------------------------------------------------
# IJSEM (Microbiology Society, 3B2): the Methods section set in smaller type than the rest of the text
# ---------------------------------------------------------------------------------------------------------

INTRO = ["The genus Phaeobacter comprises several marine species that were described over the last",
         "two decades and that are studied as producers of an antibiotic (Brinkhoff et al., 2004), and",
         "their strains have been deposited in several public culture collections around the world."]
METHODS = ["Source of bacteria and culturing. The strains were obtained from the DSMZ and were grown in marine",
           "broth or on agar at 28 degrees. Profiles of the extrachromosomal elements. To analyse the plasmid content",
           "of the strains, the total genomic DNA was prepared within agarose plugs as previously described and",
           "subjected to pulsed-field gel electrophoresis (PFGE; Pradella et al., 2010). The gels were run",
           "in a contour-clamped homogeneous electric field system as described before (Romling et al., 1996)."]
CAPTION = ["Fig. 1. Plasmid profiles of the strains on uncut genomic DNA; the markers and the conditions follow",
           "those of an earlier study of the same strains (Zech et al., 2009), as described in Methods."]


def ijsem_paper() -> list[raw_pdf.Page]:
    page = raw_pdf.Page()
    page.text(60, 740, "Non-identity of the type strain deposits", size=17)
    page.text(60, 700, "INTRODUCTION", size=11.5)
    y = 680
    for text in INTRO:
        page.text(60, y, text)
        y -= 12
    page.text(60, y - 12, "METHODS", size=11.5)
    y -= 30
    for text in METHODS:
        page.text(60, y, text, size=8.5)
        y -= 10
    y -= 60  # a figure, then its caption, set in the section's small type
    for text in CAPTION:
        page.text(60, y, text, size=8.5)
        y -= 10
    page.text(60, y - 20, "RESULTS", size=11.5)
    page.text(60, y - 40, "The plasmid profiles differed between the two deposits, as found before (Zech et al., 2009).")
    for k in range(8):  # the body's own size is the commonest in the paper
        page.text(60, y - 52 - 12 * k, f"{PROSE} the deposits differ again, line {k}.")
    later = raw_pdf.Page()
    later.text(60, 740, "REFERENCES", size=11.5)
    for n, entry in enumerate(["Brinkhoff, T., Bach, G. & Simon, M. (2004). Antibiotic production by a Roseobacter. "
                               "Appl Environ Microbiol 70, 2560-2565.",
                               "Pradella, S., Pauker, O. & Petersen, J. (2010). Genome organisation of Marinovum "
                               "algicola. Arch Microbiol 192, 115-126.",
                               "Romling, U., Heuner, K. & Tummler, B. (1996). Pulsed-field gel electrophoresis. "
                               "Methods Mol Biol 58, 371-381.",
                               "Zech, H., Thole, S. & Schreiber, K. (2009). Growth phase-dependent global protein "
                               "and metabolite profiles. Proteomics 9, 3677-3697."]):
        later.text(60, 720 - 12 * n, entry, size=8)
    return [page, later]


def test_a_section_set_in_smaller_type_than_the_body_is_read_and_cites(tmp_path):
    """IJSEM sets its Methods in 8.5 pt beside 10 pt text: small lines were all taken for captions and left out,
    with every citation in them (a paper with 62 author-year markers had 44 pairs). A section whose first line
    under its heading is a full line in smaller type is read at that size; its figures' captions still are not."""
    root = xml_of(tmp_path, ijsem_paper())
    assert [n for _, n in named(root)] == [["Brinkhof"], ["Pradella"], ["Romling,"], ["Zech, H."]]
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "Source of bacteria and culturing" in text and "Plasmid profiles of the strains on uncut" not in text


# ---------------------------------------------------------------------------------------------------------
# A&A: figures LaTeX flushes after the bibliography, their tick labels set as small numbers on lines of their own
# ---------------------------------------------------------------------------------------------------------

AA_ENTRIES = [("Almgren, A. S., Beckner, V. E., Bell, J. B., et al. 2010, ApJ, 715, 1221", ""),
              ("Braithwaite, J. & Spruit, H. C. 2004, Nature, 431, 819", ""),
              ("Chandrasekhar, S. 1935, MNRAS, 95, 207", ""),
              ("Grad, H. & Rubin, H. 1958, Proceedings of the 2nd UN Conf. on the Peaceful", "Uses of Atomic Energy, 31, 190"),
              ("Tayler, R. J. 1973, MNRAS, 161, 365", ""),
              ("Zhang, W., Almgren, A., Beckner, V., et al. 2019, Journal of Open Source", "Software, 4, 1370")]


def aa_paper(tmp_path) -> list[raw_pdf.Page]:
    cites = ["(Almgren et al. 2010)", "(Braithwaite & Spruit 2004)", "(Chandrasekhar 1935)", "(Grad & Rubin 1958)",
             "(Tayler 1973)", "(Zhang et al. 2019)"]
    page, y = opening(tmp_path, "Relaxed magnetic fields of white dwarfs",
                      [(f"{PROSE} as computed before {cite}.", "") for cite in cites], 4, x=42, heading="1. Introduction")
    for first, second in AA_ENTRIES:
        page.text(42, y, first, size=8)
        y -= 9
        if second:
            page.text(52, y, second, size=8)
            y -= 9
    figures = raw_pdf.Page()  # the figures, flushed after the bibliography: axes, then the caption
    for x in (68, 242, 416):
        for k, (tick, label) in enumerate([("2", "y"), ("2", "z"), ("0", "x (108cm)")]):
            figures.text(x, 700 - 30 * k, tick, size=5.5)
            figures.text(x + 8, 690 - 30 * k, label, size=7)
        figures.text(x, 600, "-2 0 2 -2 0 2", size=5.5)
    figures.text(42, 560, "Fig. 5. Field lines of the total field and of its toroidal and poloidal parts, traced from a",
                 size=9)
    figures.text(42, 550, "common set of starting points and colored by the local field strength on a shared scale.", size=9)
    return [page, figures]


def test_figures_flushed_after_an_author_year_bibliography_are_no_entries(tmp_path):
    """A&A (LaTeX) prints its last figures after the bibliography. Their tick labels, a small "2" on a line of
    its own above a larger line, have the shape of AIP's raised labels: the entries were split at every one and
    the author-year entries, indented under their first line, were glued into one. Raised numbers start entries
    only where they run 1, 2, 3, …, and a page that holds no line at the entries' size holds none of them."""
    root = xml_of(tmp_path, aa_paper(tmp_path))
    assert raws_of(root) == [f"{first} {second}".strip() for first, second in AA_ENTRIES]
    assert [n for _, n in named(root)] == [["Almgren,"], ["Braithwa"], ["Chandras"], ["Grad, H."], ["Tayler, "],
                                           ["Zhang, W"]]


# ---------------------------------------------------------------------------------------------------------
# A magazine (IEEE Computer): sidebars printed after the article, each with a reference list of its own
# ---------------------------------------------------------------------------------------------------------

MAIN_ENTRIES = ["1. L. Lamport, Time, Clocks and the Ordering of Events, Comm. ACM, vol. 21, 1978, pp. 558-565.",
                "2. C. Fidge, Logical Time in Distributed Computing Systems, Computer, vol. 24, 1991, pp. 28-33.",
                "3. F. Mattern, Virtual Time and Global States of Distributed Systems, Proc. Parallel Algorithms, 1989.",
                "4. K. Birman and T. Joseph, Reliable Communication in the Presence of Failures, ACM TOCS, 1987."]


def magazine_paper(tmp_path) -> list[raw_pdf.Page]:
    # (the article longer than its sidebars)
    page, y = opening(tmp_path, "A Practical Tour of Vector Clock Systems",
                      [(f"{PROSE} as shown before {cite}.", "") for cite in ["[1]", "[2]", "[3]", "[4]"]], 16)
    for entry in MAIN_ENTRIES:
        page.text(72, y, entry, size=8)
        y -= 10
    sidebars = raw_pdf.Page()
    y = 740
    for title, entries in [("A Historical View of Vector Clocks",
                            ["1. D.S. Parker et al., Detection of Mutual Inconsistency, IEEE TSE, 1983.",
                             "2. B. Liskov and R. Ladin, Highly Available Distributed Services, Proc. PODC, 1986."]),
                           ("An Efficient Implementation of Vector Clocks",
                            ["1. B. Charron-Bost, Concerning the Size of Logical Clocks, IPL, vol. 39, 1991."])]:
        sidebars.text(72, y, title, size=12, font="F2")
        sidebars.text(72, y - 20, f"{PROSE} this box says it too [1].")
        sidebars.text(72, y - 32, f"{PROSE} it ends here.")
        sidebars.text(72, y - 56, "References", size=12, font="F2")
        y -= 76
        for entry in entries:
            sidebars.text(72, y, entry, size=8)
            y -= 10
        y -= 30
    return [page, sidebars]


def test_sidebars_with_their_own_reference_lists_leave_the_articles_bibliography_alone(tmp_path):
    """IEEE Computer prints its sidebars after the article, each with a "References" list numbered from 1 again:
    the last list was taken for the bibliography, and the article's markers named a sidebar's one or two entries
    (a paper with 11 markers had 6 right). Where several lists numbered from 1 follow the article and a sidebar's
    heading stands between them, the longest is the article's; the sidebars are left out."""
    root = xml_of(tmp_path, magazine_paper(tmp_path))
    assert raws_of(root) == MAIN_ENTRIES
    assert [n for _, n in named(root)] == [["1. L. La"], ["2. C. Fi"], ["3. F. Ma"], ["4. K. Bi"]]


# ---------------------------------------------------------------------------------------------------------
# Two tables set side by side, one in each column of a two-column page, each under its own caption
# ---------------------------------------------------------------------------------------------------------

def side_by_side_page() -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(57, 750, "Segmentation methods and the organisms they serve", size=16)
    page.text(57, 720, "1 Introduction", size=12, font="F2")
    for k in range(14):
        page.text(57, 700 - 12 * k, f"the methods were compared on images, line {k},")
        page.text(305, 700 - 12 * k, f"and on the organisms, in this column, line {k}.")
    for x, caption, rows in [
            (57, "Table 1. Methods compared.", [["Method", "Accuracy", "Images"], ["Graph cuts [1]", "85.3", "120"],
                                                 ["Random forest [2]", "88.1", "96"], ["Deep network [3]", "91.0", "240"]]),
            (305, "Table 2. Organisms imaged.", [["Organism", "Stage", "Source"], ["Mouse", "adult", "[4]"],
                                                  ["Zebrafish", "larva", "[5]"], ["Fly", "embryo", "[6]"]])]:
        page.text(x, 510, caption, size=9)
        for k, row in enumerate(rows):
            for dx, cell in zip((0, 95, 170), row):
                page.text(x + dx, 494 - 10 * k, cell, size=8)
    return page


def side_by_side_paper() -> list[raw_pdf.Page]:
    bibliography = raw_pdf.Page()
    bibliography.text(57, 740, "References", size=12, font="F2")
    for n, entry in enumerate(["A. Boykov. Graph cuts. IJCV, 2004.", "L. Breiman. Random forests. Mach. Learn., 2001.",
                               "O. Ronneberger. U-Net. MICCAI, 2015.", "J. Smith. Mouse imaging. Nat. Methods, 2010.",
                               "K. Lee. Zebrafish larvae. Development, 2012.", "M. Fly. Embryos. Genetics, 2014."], start=1):
        bibliography.text(57, 730 - 10 * n, f"[{n}] {entry}", size=8)
    return [side_by_side_page(), bibliography]


def test_two_tables_side_by_side_under_their_own_captions_are_read_as_two(tmp_path):
    """A two-column page may set two tables beside each other, one in each column under its own "Table N"
    caption: their rows stand on the same baselines, and they were read as one table whose rows joined a row of
    each ("Graph cuts [1] | 85.3 | 120 | mouse | adult | [4]"). Where each column holds its own caption and no cell
    crosses the gap between the columns, each column's table is read by itself."""
    root = xml_of(tmp_path, side_by_side_paper())
    assert table_rows(root) == ["Method | Accuracy | Images", "Graph cuts [1] | 85.3 | 120",
                                "Random forest [2] | 88.1 | 96", "Deep network [3] | 91.0 | 240",
                                "Organism | Stage | Source", "Mouse | adult | [4]", "Zebrafish | larva | [5]",
                                "Fly | embryo | [6]"]


# ---------------------------------------------------------------------------------------------------------
# Taylor & Francis: no heading over the opening text, its first line indented, each sentence closed by a citation
# ---------------------------------------------------------------------------------------------------------

OPENING = ["Cigarette consumption is the leading cause of death in all of",
           "the world (Hatsukami, Stead, & Gupta, 2008). The benefits of",
           "smoking cessation are numerous and include increased longevity",
           "and decreased morbidity (Mathers & Loncar, 2006). However, the",
           "smokers with depressive disorders are excluded from the trials",
           "(Smith, Mazure, & McKee, 2014; Strat, Rehm, & Foll, 2011). The",
           "prevalence of dependence among these adults varies (Borrelli,",
           "2010), and many of them smoke heavily (over 24 cigarettes per",
           "day; McClave et al., 2009), as found in the surveys of the time."]


def test_unheaded_opening_text_with_an_indented_first_line_and_citations_before_its_stops_is_body(tmp_path):
    """T&F prints no heading over its opening text: the first line is indented as any paragraph's, and each
    sentence ends with a citation ("… (Mathers & Loncar, 2006). However"), so no run of lines both lined up and
    showed a sentence end, and the body started mid-paragraph at a later one (5 markers lost). The first line
    may stand a paragraph's indent right of the others, and a sentence may end after a closing parenthesis."""
    page = raw_pdf.Page()
    page.text(72, 740, "Exercise and Counseling for Smoking Cessation", size=16)
    page.text(72, 716, "Paquito Bernard, Gregory Ninot and Xavier Quantin", size=11)
    for k, text in enumerate(OPENING):
        page.text(84 if k == 0 else 72, 680 - 12 * k, text)
    page.text(72, 560, "METHODS", size=11, font="F2")
    for k in range(4):
        page.text(72, 552 - 12 * k, f"{PROSE} the trial went on, line {k}.")
    page.text(72, 490, "REFERENCES", size=11, font="F2")
    for k, entry in enumerate(["Borrelli, B. (2010). Smoking cessation: Next steps. Journal 1, 2-3.",
                               "Hatsukami, D. K., Stead, L. F., & Gupta, P. C. (2008). Tobacco addiction. Lancet 371, 2027.",
                               "Mathers, C. D., & Loncar, D. (2006). Projections of global mortality. PLoS Med 3, e442.",
                               "McClave, A. K., & Dube, S. R. (2009). Cigarette smoking among adults. Journal 4, 5-6.",
                               "Smith, P. H., Mazure, C. M., & McKee, S. A. (2014). Smoking and mental illness. Journal 7, 8.",
                               "Strat, Y. L., Rehm, J., & Foll, B. L. (2011). Smoking and depression. Journal 9, 10-11."]):
        page.text(72, 470 - 11 * k, entry, size=8)
    root = xml_of(tmp_path, [page])
    first = " ".join("".join(next(root.iter("p")).itertext()).split())
    assert first.startswith("Cigarette consumption is the leading cause of death")
    assert [n[0] for _, n in named(root)][:3] == ["Hatsukam", "Mathers,", "Smith, P"]
