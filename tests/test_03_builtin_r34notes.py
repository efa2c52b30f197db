"""Stage 03's built-in backend on papers that cite in footnotes and endnotes (issue 25, round 34: US law reviews
and journals from Word, Acrobat Distiller, InDesign, Prince, Arbortext and PDFlib): each test draws a small PDF
the way such a paper is laid out and checks one class of problem the round's held-out measurement showed. As in
rounds 32 and 33, the body sentence that carries a note's mark is the citing sentence and the works the note
names are its references."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_r32notes_classes import footnote, mark_links, notes_page, refs_of, sentence_with_mark  # noqa: E402
from test_03_builtin_real_classes import xml_of  # noqa: E402

BODY = "the legislation dating to the {} months of the new Administration aimed at"
WORDS = "first early later last other same next final whole middle closing opening".split()


def firsts(root, n: int = 14) -> list[tuple[str, list[str]]]:
    return [(m, [r[:n] for r in rs]) for m, rs in mark_links(root)]


def law_review_page(tmp_path, first: int, sentences: list[str], notes: list[tuple[str, str]],
                    body_size: float = 10.5, note_size: float = 9, title: str = "") -> raw_pdf.Page:
    """A law review's page: a few body lines (no full stop at their ends, as a justified column breaks them),
    each sentence carrying the next note's mark, and long notes below (two lines each), set a little smaller."""
    page = raw_pdf.Page()
    if title:
        page.text(150, 730, title, size=14)
        page.text(250, 712, "INTRODUCTION", size=8.5)
    page.text(300, 760, str(147 + first), size=body_size)
    y = 695
    for n, sentence in enumerate(sentences, start=first):
        page.text(72 if n > first else 84, y, BODY.format(WORDS[n % len(WORDS)]), size=body_size)
        y -= 12
        sentence_with_mark(tmp_path, page, y, sentence, str(n), size=body_size)
        y -= 12
    y = 80 + 22 * len(notes)
    for n, (head, tail) in enumerate(notes, start=first):
        footnote(page, y, str(n), head, size=note_size)
        page.text(72, y - 10, tail, size=note_size)
        y -= 22
    return page


# ---------------------------------------------------------------------------------------------------------
# Reading the page: notes that outweigh the body
# ---------------------------------------------------------------------------------------------------------

def test_a_body_set_larger_than_notes_that_outweigh_it_is_read_as_the_body(tmp_path):
    """A law review sets more words in its notes than in its body (Boston University's online review: a 10.5 pt
    body over 9 pt notes, six in ten of the characters): the commonest size was taken for the body's, every body
    line (short, larger, no full stop at its end) for a heading, and the paper was reported empty. A larger size
    whose lines stand above every line of the commonest size in their column, page after page, is the body's."""
    works = [("See Spencer Bowley, Learning from History: Predicting the Development of Class-Based Interest",
              "Convergence, 101 B.U. L. REV. ONLINE 125 (2021) (describing the parallels at some length)."),
             ("See Emily Cochrane, Democrats Begin Push to Expand the Safety Net, N.Y. TIMES, Aug. 10, 2021,",
              "at A1 (discussing the Administration's ambitious budget and legislative plans at length)."),
             ("See Derrick A. Bell, Jr., Brown v. Board of Education and the Interest-Convergence Dilemma,",
              "93 HARV. L. REV. 518 (1980) (positing that Cold War appearances were the driving forces)."),
             ("MARY L. DUDZIAK, COLD WAR CIVIL RIGHTS: RACE AND THE IMAGE OF AMERICAN DEMOCRACY 12 (2000)",
              "(demonstrating, with the aid of documentary and archival evidence, that the hunch was right).")]
    pages = []
    for k in range(3):
        notes = [works[(k + j) % 4] for j in range(4)]
        pages.append(law_review_page(tmp_path, 1 + 4 * k, [f"It grew in the {WORDS[k]} years.",
                                                            f"It spread in the {WORDS[k]} decade.",
                                                            f"It held in the {WORDS[k]} crisis.",
                                                            f"It fell in the {WORDS[k]} war."], notes,
                                     title="INTEREST CONVERGENCE TODAY" if k == 0 else ""))
    root = xml_of(tmp_path, pages)
    links = firsts(root, 10)
    assert len(links) == 12
    assert [m for m, _ in links] == [str(n) for n in range(1, 13)]
    assert links[0] == ("1", ["Spencer Bo"]) and links[5] == ("6", ["Derrick A."])
    assert len(refs_of(root)) == 4


# ---------------------------------------------------------------------------------------------------------
# Back-references: "supra note N" with a page that reads as a year, "Id." after a citation not read
# ---------------------------------------------------------------------------------------------------------

def test_a_supra_note_with_a_year_like_page_and_an_id_after_an_unread_citation_name_no_other_work(tmp_path):
    """Bluebook short forms: "See Baude & Leider, supra note 7, at 1509–14." (the page 1509 read as a year made the
    short form a work of its own, an entry "Baude & Leider, supra note 7, …" the mark was linked to), and "See
    Kuehn, supra note 9, at 646. … Id. at 655–57." where note 9's work was not read (its mark in the title):
    "Id." took the note before's work, Mayer-Schönberger's book. A short form with "supra note N" is a work
    only where what comes before "supra" is one; "Id." inside a note is the citation before it in that note."""
    page = notes_page(tmp_path, ["Its scope was settled.", "Data changed the question.", "The study was weak.",
                                 "The right was old."], [
        "See William Baude & Robert Leider, The General-Law Right to Bear Arms, 99 NOTRE DAME L. REV. 1467 (2024).",
        "See VIKTOR MAYER-SCHÖNBERGER & KENNETH CUKIER, BIG DATA: A REVOLUTION 50–72 (2014).",
        "See Kuehn, supra note 9, at 646. This is reminiscent of the client who argues. Id. at 655–57.",
        "See Baude & Leider, supra note 1, at 1509–14."], title="Fear of Balancing")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["William Baud"]), ("2", ["VIKTOR MAYER"]), ("4", ["William Baud"])]
    assert len(refs_of(root)) == 2
