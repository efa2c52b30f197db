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
from test_03_builtin_published_classes import end_x  # noqa: E402
from test_03_builtin_real_classes import xml_of  # noqa: E402

BODY = "the legislation dating to the {} months of the new Administration aimed at"
WORDS = "first early later last other same next final whole middle closing opening".split()
SURNAMES = ("Adams Baker Clark Davis Evans Fisher Grant Hughes Irving Jones Kelly Lewis Keller Moore Nolan Owens "
            "Parker Perez").split()
TITLES = ("Ledgers Maps Charters Letters Diaries Wills Deeds Records Rolls Registers Minutes Petitions Statutes "
          "Briefs Dockets Gazettes Journals Almanacs").split()


def firsts(root, n: int = 14) -> list[tuple[str, list[str]]]:
    return [(m, [r[:n] for r in rs]) for m, rs in mark_links(root)]


def law_review_page(tmp_path, first: int, sentences: list[str], notes: list[tuple[str, ...]],
                    body_size: float = 10.5, note_size: float = 9, title: str = "",
                    goes_on: bool = False, lines_per_sentence: int = 1) -> raw_pdf.Page:
    """A law review's page: a few body lines (no full stop at their ends, as a justified column breaks them),
    each sentence carrying the next note's mark, and long notes below (their lines), set a little smaller;
    ``goes_on``: the page's first line goes on with the paragraph of the page before (not indented)."""
    page = raw_pdf.Page()
    if title:
        page.text(150, 730, title, size=14)
        page.text(250, 712, "INTRODUCTION", size=8.5)
    page.text(300, 760, str(147 + first), size=body_size)
    y = 695
    for n, sentence in enumerate(sentences, start=first):
        for k in range(lines_per_sentence):
            page.text(72 if n > first or goes_on or k else 84, y, BODY.format(WORDS[(n + k) % len(WORDS)]),
                      size=body_size)
            y -= 12
        sentence_with_mark(tmp_path, page, y, sentence, str(n), size=body_size)
        y -= 12
    y = 80 + sum(10 * len(lines) + 2 for lines in notes)
    for n, (head, *tail) in enumerate(notes, start=first):
        footnote(page, y, str(n), head, size=note_size)
        for line in tail:
            y -= 10
            page.text(72, y, line, size=note_size)
        y -= 12
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


# ---------------------------------------------------------------------------------------------------------
# Endnotes under their own heading
# ---------------------------------------------------------------------------------------------------------

def test_endnotes_under_their_heading_opened_by_their_numbers_become_notes(tmp_path):
    """A civil-rights report (InDesign) ends with "ENDNOTES" and its notes at the text's size, each opened by its
    number ("1 We believe …", "2 Educators for Excellence, Letter …"), a note's second paragraph indented as
    the first: they were read as the body's last section and the report was reported empty. Numbered from 1 in
    order under such a heading, they are notes, a paragraph that opens with no next number goes on with the note
    before, and the body's raised marks name the works they cite."""
    body = raw_pdf.Page()
    body.text(72, 740, "Eleven Million Days Lost", size=20)
    body.text(72, 710, "INTRODUCTION", size=14)
    y = 690
    sentences = ["The data were released this year.", "Teachers asked for the guidance.",
                 "The findings were disputed.", "Absences add up quickly."]
    for n, sentence in enumerate(sentences, start=1):
        for k in range(2):
            body.text(72, y, f"The lost days of instruction were counted school by school, part {n}.{k},", size=10)
            y -= 12
        sentence_with_mark(tmp_path, body, y, sentence, str(n))
        y -= 20
    notes = raw_pdf.Page()
    notes.text(72, 740, "ENDNOTES", size=20)
    y = 710
    for n, lines in enumerate([
            ["We believe it is noteworthy that this information was not mentioned when the data were released."],
            ["Educators for Excellence, Letter to the Secretary of Education (July 10, 2018).",
             "The union signed onto the letter. See NEA, Policy Statement on the Discipline (July 2016)."],
            ["Readers should note that one working paper has been cited to refute this assumption.",
             "See Brea L. Perry & Daniel J. Losen, NEPC Review: Understanding a Vicious Cycle, National Education",
             "Policy Center (June 1, 2017) retrieved from https://nepc.colorado.edu/thinktank/review-discipline"],
            ["Alan Ginsburg, Absences Add Up: How School Attendance Influences Student Success (2014)."]],
            start=1):
        notes.text(72, y, f"{n} {lines[0]}", size=10)
        y -= 12
        for line in lines[1:]:
            notes.text(84, y, line, size=10)
            y -= 12
        y -= 6
    root = xml_of(tmp_path, [body, notes])
    links = firsts(root, 12)
    assert [m for m, _ in links] == ["2", "3", "4"]
    assert links[1:] == [("3", ["Brea L. Perr"]), ("4", ["Alan Ginsbur"])]
    # (the letter of a body, "Educators for Excellence, Letter …", is left: the note's second work is read)
    assert links[0] == ("2", ["NEA, Policy "])


# ---------------------------------------------------------------------------------------------------------
# What a note cites: two authors with middle initials, another year's work, a bill
# ---------------------------------------------------------------------------------------------------------

def test_two_authors_with_initials_are_an_author_another_years_title_another_work_and_a_bill_none(tmp_path):
    """Bluebook notes: "See Jesse M. Cross & Abbe R. Gluck, The Congressional Bureaucracy, …" (seven words before
    the comma, one more than an author part held: no work was read, and "Cross & Gluck, supra note 1" named
    none); "The High Cost of Harsh Discipline … (2016)" after the same authors' "The Hidden Cost of … Harsh
    School Discipline (2017)" (three title words shared: taken for the same work); "Rent Relief Act of 2023,
    H.R. 6721, 118th Cong. (2023)" (a bill made an entry: a law cited names no work)."""
    page = notes_page(tmp_path, ["The staff grew.", "Suspensions cost money.", "They cost more.", "A bill was filed.",
                                 "The staff kept growing."], [
        "See Jesse M. Cross & Abbe R. Gluck, The Congressional Bureaucracy, 168 U. PA. L. REV. 1541, 1543 (2020).",
        "See Russell W. Rumberger & Daniel J. Losen, The Hidden Cost of California's Harsh School Discipline (2017).",
        "See Russell W. Rumberger & Daniel J. Losen, The High Cost of Harsh Discipline and Its Disparate Impact (2016).",
        "See generally Rent Relief Act of 2023, H.R. 6721, 118th Cong. (2023) (proposed by Rep. Danny Davis).",
        "Cross & Gluck, supra note 1, at 1545."], title="Resurrecting the Trinity")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 19) == [("1", ["Jesse M. Cross & Ab"]), ("2", ["Russell W. Rumberge"]),
                                ("3", ["Russell W. Rumberge"]), ("5", ["Jesse M. Cross & Ab"])]
    refs = sorted(refs_of(root).values())
    assert len(refs) == 3 and "Hidden Cost" in refs[1] and "High Cost" in refs[2]


# ---------------------------------------------------------------------------------------------------------
# Finding a note's mark: a paragraph that runs over pages of notes
# ---------------------------------------------------------------------------------------------------------

def test_a_notes_mark_in_a_paragraph_that_runs_over_pages_of_notes_is_found(tmp_path):
    """A law review's paragraph runs over three pages, each with six notes read after its lines on that page:
    the marks on its third page stand a dozen paragraphs before their notes, and only the eleven paragraphs
    before a note were searched (a Florida and a Yale article: half their marks unlinked). The search goes back
    to the paragraph the note interrupts, stopping at one that ends on an earlier page."""
    pages = []
    for k in range(3):
        notes = [(f"See Anne {SURNAMES[6 * k + j]}, {TITLES[6 * k + j]} of the Archive, {10 + j} J. LEGAL",
                  f"HIST. {100 + j}, {105 + j} ({1990 + 6 * k + j}) (on {TITLES[6 * k + j].lower()}).")
                 for j in range(6)]
        pages.append(law_review_page(tmp_path, 1 + 6 * k, [f"It moved in the {WORDS[j]} {('year', 'decade', 'age')[k]}."
                                                           for j in range(6)], notes,
                                     title="COMBATTING EXTREMISM" if k == 0 else "", goes_on=k > 0))
    root = xml_of(tmp_path, pages)
    links = firsts(root, 10)
    assert [m for m, _ in links] == [str(n) for n in range(1, 19)]
    assert links[12] == ("13", ["Anne Kelle"]) and links[17] == ("18", ["Anne Perez"])


# ---------------------------------------------------------------------------------------------------------
# Reading a note's lines and its citation: small capitals, a long explaining parenthetical
# ---------------------------------------------------------------------------------------------------------

def small_caps_line(tmp_path, page: raw_pdf.Page, x: float, y: float, text: str, size: float) -> None:
    """A line as Prince sets small capitals: words in capitals drawn with their first letter at ``size`` and the
    rest at three quarters of it; other words at ``size``."""
    for word in text.split(" "):
        runs = [(word[:1], size), (word[1:], 0.75 * size)] if word.isupper() and len(word) > 1 else [(word, size)]
        for run, s in runs:
            if run:
                page.text(x, y, run, size=s)
                x = end_x(tmp_path, x, run, s)
        x += 0.28 * size


def test_a_notes_line_mostly_in_small_capitals_is_read_at_the_notes_size(tmp_path):
    """A law review set by Prince prints authors and book titles in small capitals, capitals at 7 pt in a 9 pt
    note: a note line mostly of them ("13. See, e.g., MORRIS P. FIORINA, UNSTABLE MAJORITIES: …") was read at 7 pt,
    apart from its note, and the note's works were lost. Where a line's commonest size holds no lower-case letter
    and its lower-case letters are larger, the line is at their size; a line all in small capitals ("TO RUN? HOW
    THE DEVALUING …") is at the size of its words' first capitals."""
    page = raw_pdf.Page()
    page.text(72, 740, "Combatting Extremism", size=18)
    page.text(72, 710, "1 Introduction", size=12, font="F2")
    y = 690
    for n, sentence in enumerate(["Most voters are moderate.", "The parties sorted.", "Few candidates run."], 1):
        page.text(72, y, "The public is not as polarized on policy issues as members of Congress are", size=10)
        y -= 12
        sentence_with_mark(tmp_path, page, y, sentence, str(n))
        y -= 14
    y = 200
    notes = [["See Seth J. Hill, A Disconnect in Representation, 77 J. Pol. 1058, 1073 (2015) (concluding so)."],
             ["See, e.g., MORRIS P. FIORINA, UNSTABLE MAJORITIES: POLARIZATION, PARTY SORTING, AND POLITICAL",
              "STALEMATE 23–24 (2017) (showing typical data); see also ANDREW B. HALL, WHO WANTS",
              "TO RUN? HOW THE DEVALUING OF POLITICAL OFFICE DRIVES POLARIZATION 25 (2019)."],
             ["See Rachel Kleinfeld, Polarization, Democracy, and Political Violence, Carnegie Endowment (2023)."]]
    for n, lines in enumerate(notes, 1):
        footnote(page, y, str(n), "")
        for line in lines:
            if any(w.isupper() and len(w) > 3 for w in line.split()):
                small_caps_line(tmp_path, page, 76, y, line, 9)
            else:
                page.text(76, y, line, size=9)
            y -= 11
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Seth J. Hill"]), ("2", ["MORRIS P. FI", "ANDREW B. HA"]),
                                ("3", ["Rachel Klein"])]


def test_a_citation_with_a_long_explaining_parenthetical_ends_at_its_year(tmp_path):
    """A Bluebook note explains its source at length ("See Kevin W. Saunders, The Mythic Difficulty in Proving a
    Negative, 15 SETON HALL L. REV. 276, 280–82 (1985) (explaining that … “there always . . .” …)"): over sixty
    words, and with no full stop after its year, the citation was read as a remark and named no work. It ends at
    the parenthesis that holds its year."""
    page = law_review_page(tmp_path, 1, ["Some courts place the burden on the government.", "Others do not.",
                                         "The rule is old."], [
        ("See Kevin W. Saunders, The Mythic Difficulty in Proving a Negative, 15 SETON HALL L. REV. 276, 280–82",
         "(1985) (explaining that it is much more difficult for a party to prove a universal statement like",
         "“there always . . .” or “there never . . .” than it is to prove an existential statement such as “there",
         "exists an . . .”, which a single instance settles, whereas the universal one needs every instance to",
         "be looked at in turn) (quoted language is the author’s formulation)."),
        ("Saunders, supra note 1, at 281.",), ("Id. at 282.",)], title="BURDENS OF PROOF", lines_per_sentence=4)
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Kevin W. Sau"]), ("2", ["Kevin W. Sau"]), ("3", ["Kevin W. Sau"])]
    assert next(iter(refs_of(root).values())).endswith("(1985)")


# ---------------------------------------------------------------------------------------------------------
# A note whose mark stands in the title
# ---------------------------------------------------------------------------------------------------------

def test_a_note_marked_in_the_title_is_read_and_its_works_named_by_supra_note_1(tmp_path):
    """A reply's title carries the note that cites the articles it answers ("A RESPONSE TO THE THREE
    PROFESSORS¹" | "1. Jason Webb Yackee, Does Experiential Learning …; Keith A. Findley, …"): the title is
    set larger than the body, its raised "1" was not among the page's marks, and the note was not read as one,
    so every later "Yackee, supra note 1" named nothing. A title's or heading's raised mark opens a note too."""
    page = raw_pdf.Page()
    title = "A RESPONSE TO THE THREE PROFESSORS"
    page.text(150, 730, title, size=12)
    page.text(end_x(tmp_path, 150, title, 12) + 0.4, 734.5, "1", size=7)
    y = 700
    for n, sentence in enumerate(["He started a debate.", "It grew.", "It was answered."], start=2):
        for k in range(4):
            page.text(84 if n == 2 and not k else 72, y, BODY.format(WORDS[n + k]), size=11)
            y -= 13
        sentence_with_mark(tmp_path, page, y, sentence, str(n), size=11)
        y -= 13
    notes = [["1. Jason Webb Yackee, Does Experiential Learning Improve JD Employment Outcomes?, 2015 WIS.",
              "L. REV. 601; Keith A. Findley, Assessing Experiential Legal Education: A Response, 2015 WIS. L.",
              "REV. 627."],
             ["2. This is true only for the part of the conversation that involves Professor Findley. Findley,",
              "supra note 1, at 628."],
             ["3. Yackee, supra note 1, at 621."],
             ["4. See Findley, supra note 1, at 640–42; Yackee, supra note 1, at 603."]]
    y = 200
    for lines in notes:
        for k, line in enumerate(lines):
            page.text(90 if k == 0 else 72, y, line, size=9)
            y -= 10.5
    root = xml_of(tmp_path, [page])
    assert firsts(root, 10) == [("2", ["Keith A. F"]), ("3", ["Jason Webb"]), ("4", ["Keith A. F", "Jason Webb"])]


# ---------------------------------------------------------------------------------------------------------
# Court decisions cited by their report; leads inside a note's prose
# ---------------------------------------------------------------------------------------------------------

def test_a_decision_cited_by_its_report_alone_is_a_work_and_its_short_form_by_volume_names_it(tmp_path):
    """The Supreme Court Review names the case in the body ("In United States v. Rahimi,¹ …") and its note gives
    only the report ("¹ 602 U.S. 680 (2024)."): no work was read from it, and "Rahimi, 602 U.S. at 699–700."
    named none. The report is the work; a short form by the same volume and reporter names it, as it names a
    decision cited with its name ("Batson v. Kentucky, 476 U.S. 79 (1986)." … "Batson, 476 U.S. at 96–97.")."""
    page = notes_page(tmp_path, ["The case was decided in United States v. Rahimi.", "The statute was upheld.",
                                 "The Court followed Batson v. Kentucky.", "Its test was applied."], [
        "602 U.S. 680 (2024).",
        "Rahimi, 602 U.S. at 699–700.",
        "Batson v. Kentucky, 476 U.S. 79 (1986).",
        "Batson, 476 U.S. at 96–97."], title="Fear of Balancing")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["602 U.S. 680"]), ("2", ["602 U.S. 680"]), ("3", ["Batson v. Ke"]),
                                ("4", ["Batson v. Ke"])]


def test_a_citation_after_see_generally_inside_prose_or_after_a_sentence_ending_in_a_capital_is_a_work(tmp_path):
    """A law review's notes lead into their citation inside prose: "For an article exploring when …, see
    generally Todd Phillips, A Change of Policy, …" (only "see" and "see also" were leads there), and "… dealing
    with Chenery II. See Aaron L. Nielson, …" (a sentence ending in a capital was not split before "See")."""
    page = notes_page(tmp_path, ["Adjudication may be better.", "His remarks were transcribed.", "So they said."], [
        "For an article exploring when adjudication might be superior, see generally Todd Phillips, A Change of "
        "Policy, 73 ADMIN. L. REV. 495 (2021).",
        "Nielson has retranscribed the remarks on Chenery II. See Aaron L. Nielson, I Vote for Chenery I, "
        "YALE J. ON REGUL. (Nov. 24, 2017).",
        "Id."], title="Chenery II Revisited")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Todd Phillip"]), ("2", ["Aaron L. Nie"]), ("3", ["Aaron L. Nie"])]
