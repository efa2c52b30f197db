"""Stage 03's built-in backend on papers that cite in footnotes and endnotes (issue 25, round 32: Chicago
notes-bibliography, OSCOLA/Bluebook and German law footnotes, history, philosophy and digital-humanities papers
from LaTeX, Word and publishers' layouts): each test draws a small PDF the way such a paper is laid out and
checks one class of problem the held-out measurement showed. What a researcher expects: the body sentence that
carries the note's mark ("…as Foucault argued.²³") is the citing sentence, and the works the note names are its
references."""
from __future__ import annotations

import sys

from helpers import REPO, load_stage

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import end_x  # noqa: E402
from test_03_builtin_real_classes import builtin, xml_of  # noqa: E402

LINE = "The argument of this chapter rests on the reading of the sources set out here"


def refs_of(root) -> dict[str, str]:
    return {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}


def mark_links(root) -> list[tuple[str, list[str]]]:
    """(mark, the first words of each entry it names) for every linked marker, in reading order."""
    refs = refs_of(root)
    return [(x.text, [refs[k] for k in x.get("rid").split()]) for x in root.iter("xref")]


def sentence_with_mark(tmp_path, page: raw_pdf.Page, y: float, text: str, mark: str, size: float = 10) -> None:
    """A body line ending in ``text`` and the note's mark raised and small right after its full stop."""
    page.text(72, y, text, size=size)
    page.text(end_x(tmp_path, 72, text, size) + 0.4, y + 3.8, mark, size=6.5)


def footnote(page: raw_pdf.Page, y: float, mark: str, text: str, size: float = 8) -> None:
    """A footnote below the body: its mark raised and small, then its text (as pdfTeX and Word set them)."""
    page.text(72, y + 2.6, mark, size=5)
    page.text(76, y, text, size=size)


def notes_page(tmp_path, sentences: list[str], notes: list[str], title: str = "A History of the Archive",
               note_marks: list[str] | None = None) -> raw_pdf.Page:
    """A page of body text, each sentence carrying the next note's mark, and the notes below it (``note_marks``:
    the marks the notes are set with, where two share a line)."""
    page = raw_pdf.Page()
    page.text(72, 740, title, size=18)
    page.text(72, 710, "1 Introduction", size=12, font="F2")
    y = 690
    for n, sentence in enumerate(sentences, start=1):
        for k in range(2):
            page.text(72, y, f"{LINE}, line {n}.{k}.", size=10)
            y -= 12
        sentence_with_mark(tmp_path, page, y, sentence, str(n))
        y -= 12
    for k in range(3):
        page.text(72, y, f"{LINE}, closing line {k}.", size=10)
        y -= 12
    y = 60 + 11 * len(notes)
    for n, note in enumerate(notes, start=1):
        footnote(page, y, note_marks[n - 1] if note_marks else str(n), note)
        y -= 11
    return page


# ---------------------------------------------------------------------------------------------------------
# A paper whose references live only in its notes (no bibliography): reported empty before
# ---------------------------------------------------------------------------------------------------------

def test_a_paper_without_a_bibliography_gets_an_entry_for_each_work_its_notes_cite_and_its_marks_link_them(tmp_path):
    """A history paper cites only in its footnotes (Chicago notes without a bibliography; a House of Commons
    briefing, an EU opinion, a German law review): it was reported empty ("0 references, 0 markers linked").
    Each distinct work a note cites in full becomes an entry of its own, parsed as the backend parses entries;
    the short form and "Ibid." point back to it, and a note that only remarks names no work."""
    page = notes_page(tmp_path, [
        "Discipline came to rest on the examination.",
        "The prison was its model, as Foucault argued.",
        "It came back to the same gaze.",
        "The asylum followed it closely.",
        "Nothing in this needs a source.",
        "And the clinic was the first of them."], [
        "Michel Foucault, Discipline and Punish: The Birth of the Prison (New York: Vintage, 1977), 27.",
        "Foucault, Discipline and Punish, 30.",
        "Ibid., 31.",
        "See David Rothman, The Discovery of the Asylum (Boston: Little, Brown, 1971), 45.",
        "This point is made here for the first time and is my own.",
        "Michel Foucault, The Birth of the Clinic (London: Tavistock, 1973), 12."])
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page])
    xml, stats = builtin.convert(pdf)
    from lxml import etree
    root = etree.fromstring(xml)
    refs = refs_of(root)
    assert stats["n_references"] == 3 and stats["n_citations"] == 5
    assert sorted(r[:24] for r in refs.values()) == ["David Rothman, The Disco", "Michel Foucault, Discipl",
                                                     "Michel Foucault, The Bir"]
    assert [(m, [r[:16] for r in rs]) for m, rs in mark_links(root)] == [
        ("1", ["Michel Foucault,"]), ("2", ["Michel Foucault,"]), ("3", ["Michel Foucault,"]),
        ("4", ["David Rothman, T"]), ("6", ["Michel Foucault,"])]
    discipline = next(k for k, r in refs.items() if "Discipline" in r)
    assert [x.get("rid") for x in root.iter("xref")][:3] == [discipline] * 3
    # parsed as an entry: its author, title and year tagged
    entry = next(r for r in root.iter("ref") if "Asylum" in "".join(r.itertext()))
    assert entry.findtext(".//surname") == "Rothman" and entry.findtext(".//year") == "1971"
    assert entry.findtext(".//article-title") == "The Discovery of the Asylum"
    # the remark stays a paragraph of its own; notes that opened with a citation are the marks' locators
    pars = [" ".join("".join(p.itertext()).split()) for p in root.iter("p")]
    assert any(p.startswith("This point is made here") for p in pars)
    assert not any(p.startswith("Foucault, Discipline and Punish, 30") for p in pars)


def test_stage_04_reads_the_sentence_with_the_notes_mark_as_the_citing_sentence(tmp_path):
    """What stage 04 writes for such a paper: the body sentence carrying the mark, with the work the note names
    as its reference (the xref on the mark is what it reads)."""
    page = notes_page(tmp_path, ["The prison was its model, as Foucault argued.", "It came back to the same gaze.",
                                 "The asylum followed."], [
        "Michel Foucault, Discipline and Punish: The Birth of the Prison (New York: Vintage, 1977), 27.",
        "Ibid., 31.",
        "David Rothman, The Discovery of the Asylum (Boston: Little, Brown, 1971), 45."])
    xml, _ = builtin.convert(raw_pdf.write_pdf(tmp_path / "paper.pdf", [page]))
    stage04 = load_stage("04")
    config = stage04.Config(input_dir=tmp_path, output_dir=tmp_path / "out")
    paper = stage04.read_paper(xml, config)
    rows, _ = stage04.paper_rows("paper", paper, config)
    citing = {r["sentence"]: r["ref_keys"] for r in rows if r["ref_keys"]}
    keys = {r["ref_key"]: r["title"] for r in stage04.reference_rows("paper", paper)} \
        if hasattr(stage04, "reference_rows") else None
    prison = next(s for s in citing if "as Foucault argued" in s)
    asylum = next(s for s in citing if "asylum followed" in s)
    assert prison.endswith("argued.1") and citing[prison] != citing[asylum]
    # the mark after the full stop is no object of "followed": the clean sentence just loses it
    clean = {r["sentence"]: r["sentence_clean"] for r in rows}
    assert clean[asylum].endswith("The asylum followed.") and "prior work" not in clean[asylum]
    assert next(s for s in citing if "same gaze" in s) and len(citing) == 3
    if keys is not None:
        assert "Discipline and Punish" in keys[citing[prison]]


# ---------------------------------------------------------------------------------------------------------
# A notes paper with a bibliography: a note's full or short form names its entry
# ---------------------------------------------------------------------------------------------------------

def bibliography_page(entries: list[str]) -> raw_pdf.Page:
    page = raw_pdf.Page()
    page.text(72, 740, "Bibliography", size=12, font="F2")
    for n, entry in enumerate(entries):
        page.text(72, 720 - 14 * n, entry, size=10)
    return page


def test_a_notes_full_form_short_form_and_ibid_name_the_bibliographys_entry(tmp_path):
    """Chicago notes-bibliography (biblatex-chicago, a history essay): only what a note's short form happened to
    match by author and year was linked, inside the note. Each note's citation is matched to its entry by the
    author's surname and a word of the title or the year ("Watanabe, “Religion and violence in Japan today,”
    89." against two works of Watanabe's), "Ibid." to the previous note's work, and the body's mark is the
    citing sentence."""
    page = notes_page(tmp_path, ["The sect was first seen as a religion.", "It was then seen as a threat.",
                                 "The media followed.", "The state did not."], [
        "Manabu Watanabe, “Reactions to the Aum Affair,” Nanzan Bulletin 21 (1997): 17.",
        "Watanabe, “Religion and violence in Japan today,” 89.",
        "Ibid., 91.",
        "Helen Hardacre, “Aum Shinrikyo and the Japanese Media,” History of Religions 47 (2007): 184."])
    bib = bibliography_page([
        "Hardacre, Helen. “Aum Shinrikyo and the Japanese Media.” History of Religions 47 (2007): 171-204.",
        "Watanabe, Manabu. “Reactions to the Aum Affair.” Nanzan Bulletin for Religion 21 (1997): 32-48.",
        "Watanabe, Manabu. “Religion and violence in Japan today.” Terrorism and Political Violence 10 (1998): 80-100."])
    root = xml_of(tmp_path, [page, bib])
    assert [(m, [r[:27] for r in rs]) for m, rs in mark_links(root)] == [
        ("1", ["Watanabe, Manabu. “Reaction"]), ("2", ["Watanabe, Manabu. “Religion"]),
        ("3", ["Watanabe, Manabu. “Religion"]), ("4", ["Hardacre, Helen. “Aum Shinr"])]
    assert len(refs_of(root)) == 3  # no entry added for a work the bibliography holds


def test_author_year_notes_name_the_entry_of_their_lettered_year(tmp_path):
    """A history essay cites "Green 1996a, 35." in its footnotes against a bibliography that lists four
    chapters of Green's 1996 book, the later ones under a dash for the repeated author ("———. 1996b."): the
    note names the entry of its lettered year, and "Wees 2004" never the entry of Wees's 2013."""
    page = notes_page(tmp_path, ["The hoplite was a citizen.", "The phalanx was dense.", "The war began at Sardis.",
                                 "It ended at Plataea."], [
        "Wees 2004, 50.", "Wees and Viggiano 2013, 57.", "Green 1996a, 35.", "Green 1996b, 135."])
    bib = bibliography_page([
        "Green, Peter. 1996a. Darius and the West. In The Greco-Persian Wars, 3-40. Berkeley.",
        "———. 1996b. The Corner-Stone of Freedom. In The Greco-Persian Wars, 109-150. Berkeley.",
        "Wees, Hans van. 2004. Greek Warfare: Myths and Realities. London: Duckworth.",
        "Wees, Hans van, and Gregory F. Viggiano. 2013. The Arms of Early Greek Hoplite Warfare. Oxford."])
    root = xml_of(tmp_path, [page, bib])
    assert [(m, [r[:22] for r in rs]) for m, rs in mark_links(root)] == [
        ("1", ["Wees, Hans van. 2004. "]), ("2", ["Wees, Hans van, and Gr"]), ("3", ["Green, Peter. 1996a. D"]),
        ("4", ["———. 1996b. The Corner"])]


def test_a_footnotes_mark_is_no_citation_of_the_numbered_entry_of_its_number(tmp_path):
    """A Word report cites its bibliography by "[1]"–"[5]" and puts its legal sources in footnotes ("¹ European
    Commission, Proposal …"): the raised footnote marks were read as superscript citations of entries 1, 2, 3.
    A raised number whose footnote was read is that note's mark; the bracketed markers still cite."""
    page = raw_pdf.Page()
    page.text(72, 740, "The Right to Be Forgotten in Practice", size=18)
    page.text(72, 710, "1 Introduction", size=12, font="F2")
    y = 690
    for n in range(1, 4):
        page.text(72, y, f"{LINE}, line {n}, as shown in [{n + 1}].", size=10)
        y -= 12
        sentence_with_mark(tmp_path, page, y, "The regulation was proposed in January 2012.", str(n))
        y -= 12
    for k in range(3):
        page.text(72, y, f"{LINE}, closing line {k}.", size=10)
        y -= 12
    footnote(page, 100, "1", "This is a remark about the proposal and cites no work at all.")
    footnote(page, 89, "2", "Personal data may be stored for longer periods for research.")
    footnote(page, 78, "3", "The same article is discussed below in the third section.")
    bib = bibliography_page([f"[{n}] A. Author{n}. A title of work {n}. Proc. Venue, {n}-{n + 9}, 2011."
                             for n in range(1, 6)])
    root = xml_of(tmp_path, [page, bib])
    assert [m for m, _ in mark_links(root)] == ["2", "3", "4"]


# ---------------------------------------------------------------------------------------------------------
# Footnotes Word and publishers set: marks set apart, notes at nearly the body's size, two notes on a line
# ---------------------------------------------------------------------------------------------------------

def test_a_word_footnotes_mark_set_apart_in_the_pages_foot_is_kept_and_the_note_read(tmp_path):
    """Word sets a footnote's mark as a small line of its own left of the note ("12" | "Information
    Commissioner's Office, …") in the bottom band, where bare numbers repeated on every page read as page
    numbers and were dropped: the notes were lost. A bare number raised just left of a longer line is a mark;
    and a note set nearly at the body's size (10.5 pt under 11 pt text: an EU opinion) opened by such a mark is
    a note too."""
    pages = []
    for p in range(2):
        page = raw_pdf.Page()
        if p == 0:
            page.text(72, 740, "The Right to Be Forgotten", size=18)
        page.text(72, 710, f"{p + 1} Section", size=12, font="F2")
        y = 690
        for n in range(1, 4):
            mark = str(3 * p + n)
            for k in range(2):
                page.text(72, y, f"{LINE}, line {mark}.{k}.", size=11)
                y -= 13
            sentence_with_mark(tmp_path, page, y, "The court ruled on the request.", mark, size=11)
            y -= 13
        y = 100
        for n in range(1, 4):
            mark = str(3 * p + n)
            page.text(72, y + 3, mark, size=6)
            size = 9 if p == 0 else 10.5
            text = {1: "“UK reacts to Google ruling”, BBC News, 21 May 2014",
                    2: "David Smith, “Four things we have learned”, ICO blog, 20 May 2014",
                    3: "Ibid.",
                    4: "Regulation (EU) 2016/679 of the European Parliament and of the Council (OJ L 119, 4.5.2016).",
                    5: "See Opinion 7/2020 on the Proposal for temporary derogations (10 November 2020).",
                    6: "Regulation (EU) 2016/679, Article 17."}[3 * p + n]
            page.text(82, y, text, size=size)
            y -= 14
        page.text(300, 40, str(p + 1), size=9)  # the page number: still no mark
        pages.append(page)
    root = xml_of(tmp_path, pages)
    links = mark_links(root)
    assert [m for m, _ in links] == ["1", "2", "3", "4", "5", "6"]
    assert links[2][1] == links[1][1] and links[5][1] == links[3][1]
    assert links[3][1][0].startswith("Regulation (EU) 2016/")


def test_two_short_notes_set_on_one_line_are_two_notes(tmp_path):
    """A law review (InDesign) sets short footnotes side by side: "¹ Mallmann DRZ 1946, 52. ² v. Wildenbruch DJZ
    1900, Sp. 1" is read as one line, one note. The next note starts at its number after the previous one's
    full stop; a law journal's citation ("Ramm JZ 1996, 456ff.") is a work, and "Flume (Fn. 3), 671" the work
    of that author note 3 cites."""
    page = notes_page(tmp_path, ["The code was celebrated.", "Its critics were heard.", "The doctrine settled.",
                                 "It was cited again.", "The journals agreed."], [
        "Mallmann DRZ 1946, 52. 2 v. Wildenbruch DJZ 1900, Sp. 1.",
        "Dazu Flume, Das Rechtsgeschäft, 4. Aufl. 1992, 80 f.",
        "Flume (Fn. 3), 671.",
        "Zu diesem s., statt aller, Ramm JZ 1996, 456ff."], title="Die Geschichte des BGB",
        note_marks=["1", "3", "4", "5"])
    root = xml_of(tmp_path, [page])
    assert [(m, [r[:12] for r in rs]) for m, rs in mark_links(root)] == [
        ("1", ["Mallmann DRZ"]), ("2", ["v. Wildenbru"]), ("3", ["Flume, Das R"]), ("4", ["Flume, Das R"]),
        ("5", ["Ramm JZ 1996"])]


# ---------------------------------------------------------------------------------------------------------
# Endnotes read as a numbered list
# ---------------------------------------------------------------------------------------------------------

def test_endnotes_read_as_a_numbered_list_become_notes_and_name_their_works(tmp_path):
    """A law journal article prints its notes at the end ("ENDNOTES 1. … 41."), read as a numbered bibliography:
    each raised mark was linked to its note as if the note were a work ("13. Ibid at 538.", "11. González, supra
    note 2 at para 93."). A numbered list of which a sixth or more are notes (ibid., supra note, see) is the
    endnotes: each becomes a note, and the marks name the works the notes cite."""
    page = raw_pdf.Page()
    page.text(72, 740, "The Right to Be Forgotten", size=18)
    page.text(72, 710, "INTRODUCTION", size=12, font="F2")
    y = 690
    sentences = ["The case began in Spain.", "The court agreed.", "It said so again.", "Koops had warned of it.",
                 "The court repeated itself.", "The lower court followed.", "Ontario took another path.",
                 "Borges had imagined it.", "And so did Hemon."]
    for n, sentence in enumerate(sentences, start=1):
        page.text(72, y, f"{LINE}, line {n}.", size=10)
        y -= 12
        sentence_with_mark(tmp_path, page, y, sentence, str(n))
        y -= 12
    notes = raw_pdf.Page()
    notes.text(72, 740, "ENDNOTES", size=12, font="F2")
    for n, note in enumerate([
            "Google Spain SL v Agencia Española de Protección de Datos, [2014] EUECJ C-131/12.",
            "Ibid at para 93.",
            "Google Spain, supra note 1 at para 94.",
            "Bert-Jaap Koops, “Forgetting Footprints, Shunning Shadows” (2011) 8:3 SCRIPTed 229.",
            "Ibid at 234.",
            "See Koops, supra note 4 at 240.",
            "Jones v Tsige, 2012 ONCA 32.",
            "Jorge Luis Borges, “Funes El Memorioso” (1986) 50 Biblioteca Ayacucho.",
            "Aleksandar Hemon, “Hemon on Borges”, The Daily Beast (26 September 2012)."], start=1):
        notes.text(72, 720 - 14 * n, f"{n}. {note}", size=9)
    root = xml_of(tmp_path, [page, notes])
    links = mark_links(root)
    assert [m for m, _ in links] == [str(n) for n in range(1, 10)]
    assert all(not r.startswith(("Ibid", "See", "2.", "5.")) for _, rs in links for r in rs)
    assert links[1][1] == links[0][1] == links[2][1] and links[4][1] == links[3][1] == links[5][1]
    assert links[3][1][0].startswith("Bert-Jaap Koops")
    assert len(refs_of(root)) == 5
