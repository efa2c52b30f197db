"""Stage 03's built-in backend on papers that cite in footnotes (issue 25, round 33: law reviews and humanities
journals from Word, LibreOffice, InDesign, Nomos's PDFlib): each test draws a small PDF the way such a paper is laid
out and checks one class of problem the round's held-out measurement showed. As in round 32, the body sentence
that carries a note's mark is the citing sentence and the works the note names are its references."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_r32notes_classes import LINE, bibliography_page, footnote, mark_links, notes_page, \
    refs_of, sentence_with_mark  # noqa: E402
from test_03_builtin_real_classes import xml_of  # noqa: E402


def firsts(root, n: int = 14) -> list[tuple[str, list[str]]]:
    return [(m, [r[:n] for r in rs]) for m, rs in mark_links(root)]


# ---------------------------------------------------------------------------------------------------------
# How a note's citation is written: after a prose lead, author-date, Italian "ivi", an official document's name,
# a law journal's short form with a comma
# ---------------------------------------------------------------------------------------------------------

def test_a_notes_citation_after_a_prose_lead_ending_in_a_colon_or_a_bare_cf_names_its_work(tmp_path):
    """An Austrian law journal's notes open with prose ("To name only a few examples: Bähr/Brunner, …", "For
    Austria: Somek, …", "… climate litigation cf Varvastian, …"): the first work of such a note was lost (no lead
    word the reader knew). The citation starts after a colon that ends a short lead without a comma, and after
    "cf" without its full stop."""
    page = notes_page(tmp_path, ["The case was widely discussed.", "Others looked further.", "Austria followed.",
                                 "The judgment was new."], [
        "To name only a few examples: Bähr/Brunner, Lessons from the Swiss senior women's case, Journal of Human "
        "Rights 9 (2018) 194 ff; Niska, Climate Change Litigation, Journal of World Energy Law 13 (2020) 331 ff.",
        "For a broader view on climate litigation cf Varvastian, The Advent of Human Rights Law in Climate "
        "Litigation, Wisconsin International Law Journal 38 (2021) 369 ff.",
        "For Austria: Somek, Grundrecht kraft Mitlaufens mit dem Zeitgeist, Die Presse, 15.04.2024.",
        "Schmid, Victim Status before the ECtHR: The Swiss Climate Case, EJIL:Talk!, 30.04.2022."],
        title="Changing Legal Opportunity Structures")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Bähr/Brunner", "Niska, Clima"]), ("2", ["Varvastian, "]),
                                ("3", ["Somek, Grund"]), ("4", ["Schmid, Vict"])]
    # (a title's own colon is no lead: "The Swiss Climate Case" is no work of its own)
    assert len(refs_of(root)) == 5


def test_an_author_date_note_becomes_an_entry_and_a_misnumbered_supra_note_names_it_by_its_author(tmp_path):
    """A law library journal's notes cite in APA ("Feinstein, S., & Wood, R. (1995). History of …", a body's
    "American Bar Association Division for Public Education. (n.d.). …"): no work was read from them (the title
    was taken for the initials before the next comma). Author, year in parentheses (or "n.d.") and title make
    the entry; "Id." names it again, and "Feinstein & Wood, supra note 3" (the author's slip: note 3 cites
    another work) names the one work of Feinstein read before, never note 3's."""
    page = notes_page(tmp_path, ["Law-related education began early.", "It grew in the 1970s.",
                                 "An award bears his name.", "The first programs were small."], [
        "Feinstein, S., & Wood, R. (1995). History of law-related education at 10. ERIC.",
        "Id.",
        "American Bar Association Division for Public Education. (n.d.). Isidore Starr Award for Excellence.",
        "Feinstein & Wood, supra note 3 at 12."], title="From the Field")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Feinstein, S"]), ("2", ["Feinstein, S"]), ("3", ["American Bar"]),
                                ("4", ["Feinstein, S"])]
    entry = next(r for r in root.iter("ref") if "Feinstein" in "".join(r.itertext()))
    assert entry.findtext(".//surname") == "Feinstein" and entry.findtext(".//year") == "1995"
    assert entry.findtext(".//article-title") == "History of law-related education at 10"


def test_ivi_and_a_staff_working_documents_name_cite_the_work_again(tmp_path):
    """An Italian review's notes say "Ivi, p. 190." for the work of the note before, as "Ibid." does; an EU law
    article cites "Impact Assessment, SWD(2013) 531, 90–91." and then "Impact Assessment, 18.": the Commission
    staff's document number names the work as COM numbers do, and the name it is given before its number is
    its short form."""
    page = notes_page(tmp_path, ["The book was translated.", "The author says so.", "The costs were assessed.",
                                 "The benefits were larger.", "They were assessed again."], [
        "Cfr. R. Diana, Migrations of Concepts. From Philosophical Text to Scene, Brepols, Turnhout, 2023, p. 9.",
        "Cfr. ivi, p. 190.",
        "Impact Assessment, SWD(2013) 531, 90-91.",
        "Ivi, 92.",
        "Impact Assessment, 18."], title="Tra filosofia e teatro")
    root = xml_of(tmp_path, [page])
    links = firsts(root, 12)
    assert [m for m, _ in links] == ["1", "2", "3", "4", "5"]
    assert links[0][1] == links[1][1] == ["R. Diana, Mi"]
    assert links[2][1] == links[3][1] == links[4][1] == ["Impact Asses"]
    assert len(refs_of(root)) == 2


def test_a_law_journals_short_citation_with_a_comma_after_the_author_is_a_work(tmp_path):
    """A Nomos law journal cites "Hofmann, ZGE 2016, 482, 498" and "Peukert, GRUR-Beilage 2014, 77 ff." (the
    comma after the author, a journal's name with a hyphen), where "Ramm JZ 1996, 456ff." was read: each is a
    work, and a later note's "Hofmann, ZGE 2016, 490." is the same one."""
    page = notes_page(tmp_path, ["Access is a core question.", "It was rarely asked.", "It is asked now."], [
        "Dazu ausführlich: Peukert, GRUR-Beilage 2014, 77 ff.",
        "Dazu etwa: Hofmann, ZGE 2016, 482, 498; Raue, ZGE 2014, 387, 389.",
        "Hofmann, ZGE 2016, 490."], title="Urheberrecht und Zugang")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 10) == [("1", ["Peukert, G"]), ("2", ["Hofmann, Z", "Raue, ZGE "]), ("3", ["Hofmann, Z"])]


def test_a_citation_a_long_note_goes_on_from_and_one_after_an_italian_lead_are_works(tmp_path):
    """A history journal's note cites and then remarks at length ("M. Foucault, Der Wille zum Wissen (…, 1995),
    pp. 27, 40. The difference between …"): over sixty words, the note was taken for a remark and its work lost.
    The citation ends at the first full stop after its year or pages. An Italian law journal leads its works by
    "v." and "si vedano" ("Su cui v. S. Ceccanti, …"), which read as a court's case ("Su cui v. S. Ceccanti", a
    party "Su cui"): a party's name is capitalised, and the work starts after the lead."""
    remark = " ".join(["The difference between his approach and mine is that he follows the discourse"] * 6)
    page = notes_page(tmp_path, ["Censorship had a core.", "It had a periphery.", "The commission was elected.",
                                 "The parliaments took part."], [
        f"M. Foucault, Der Wille zum Wissen (Frankfurt/Main, 1995), pp. 27, 40. {remark}.",
        "Ibid., p. 41.",
        "Su cui v. S. Ceccanti, Le elezioni dei quattro vincitori, in federalismi.it, 8 maggio 2014.",
        "V. almeno P. Kiiver, The Early Warning System for the Principle of Subsidiarity, Routledge, 2012."],
        title="Taboos in the GDR")
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["M. Foucault,"]), ("2", ["M. Foucault,"]), ("3", ["S. Ceccanti,"]),
                                ("4", ["P. Kiiver, T"])]
    assert not any("difference" in r for r in refs_of(root).values())


# ---------------------------------------------------------------------------------------------------------
# Where the notes stand: above a running footer at the body's size; at nearly the body's size, opened by "1."
# ---------------------------------------------------------------------------------------------------------

def test_footnotes_above_a_running_footer_at_the_bodys_size_are_read(tmp_path):
    """A Nomos article prints "DOI: 10.5771/2699-1284-2020-1-83" centred at the body's size under its notes: it
    was taken for the column's last body line, the notes above it for body text, and the paper came out empty.
    A body-size line under half the column's width is no body line for finding the column's foot."""
    page = notes_page(tmp_path, ["Access is a core question.", "It was rarely asked.", "It is asked now."], [
        "Kuschel, Der Erwerb digitaler Werkexemplare zur privaten Nutzung, 2019.",
        "Wielsch, Zugangsregeln, 2008.",
        "Kuschel, Der Erwerb digitaler Werkexemplare, 12."], title="Urheberrecht und Zugang")
    page.text(250, 40, "DOI: 10.5771/2699-1284-2020-1-83", size=10)
    root = xml_of(tmp_path, [page])
    assert firsts(root, 10) == [("1", ["Kuschel, D"]), ("2", ["Wielsch, Z"]), ("3", ["Kuschel, D"])]


def test_a_justified_notes_line_that_came_in_pieces_is_read_whole(tmp_path):
    """Word justifies an Austrian journal's notes, and the reader gets a line with wide word gaps in pieces
    ("3 Arntz/Krommendijk," | "Historic" | "and" | "Unprecedented," …): the note kept its first piece only, and
    its works were lost. A piece on the note line's baseline, right of the one before, goes on with that line."""
    page = notes_page(tmp_path, ["The case was widely discussed.", "Others looked further.", "The blogs followed."], [
        "Niska, Climate Change Litigation, Journal of World Energy Law 13 (2020) 331 ff.",
        "Schmid, Victim Status before the ECtHR, EJIL:Talk!, 30.04.2022."], title="Changing Legal Opportunity Structures")
    footnote(page, 60, "3", "Arntz/Krommendijk,")
    for x, word in ((170, "Historic"), (220, "and"), (260, "Unprecedented,"), (350, "Verfassungsblog,"), (440, "09.04.2024,")):
        page.text(x, 60, word, size=8)
    page.text(76, 49, "https://verfassungsblog.de/historic/; Auner, Recht auf effektive Maßnahmen, Newsletter "
                      "Menschenrechte (2024) 123 ff.", size=8)
    root = xml_of(tmp_path, [page])
    assert firsts(root, 12) == [("1", ["Niska, Clima"]), ("2", ["Schmid, Vict"]),
                                ("3", ["Arntz/Kromme", "Auner, Recht"])]


def test_notes_at_nearly_the_bodys_size_opened_by_their_number_are_read(tmp_path):
    """A Word art-history article sets its notes at 10 pt under 11 pt text, each opened by its number at the
    note's size and a full stop ("1. Rothney Tshaka defines …"), not raised: they were read as body text and the
    raised marks as numbers citing nothing ("46 of the 46 numbers … have no bibliography entry"). Below the
    column's last body line, a line so opened by a number the page's text raises is that note."""
    page = raw_pdf.Page()
    page.text(72, 740, "What Difference Does It Make Who Is Speaking", size=18)
    page.text(72, 710, "Introduction", size=12, font="F2")
    y = 690
    sentences = ["The attacks were called xenophobic.", "Others called them otherwise.", "Language was the test."]
    for n, sentence in enumerate(sentences, start=1):
        for k in range(2):
            page.text(72, y, f"{LINE}, line {n}.{k}.", size=11)
            y -= 14
        sentence_with_mark(tmp_path, page, y, sentence, str(n), size=11)
        y -= 14
    for k in range(3):
        page.text(72, y, f"{LINE}, closing line {k}.", size=11)
        y -= 14
    notes = ["R. Tshaka, “Afrophobia versus Xenophobia in South Africa,” Unisa News, 15 November 2016.",
             "C. I. Nero, “Differently Black: The Fourth Great Migration,” in Migrating the Black Body (2017), 208.",
             "Ibid."]
    for n, note in enumerate(notes, start=1):
        page.text(92, 120 - 13 * n, f"{n}. {note}", size=10)
    bib = bibliography_page([
        "Nero, C. I. “Differently Black: The Fourth Great Migration.” In Migrating the Black Body. Seattle, 2017.",
        "Said, E. W. Reflections on Exile, and Other Literary and Cultural Essays. London: Granta, 2000.",
        "Tshaka, R. “Afrophobia versus Xenophobia in South Africa.” Unisa News, 15 November 2016."])
    root = xml_of(tmp_path, [page, bib])
    assert firsts(root, 10) == [("1", ["Tshaka, R."]), ("2", ["Nero, C. I"]), ("3", ["Nero, C. I"])]


# ---------------------------------------------------------------------------------------------------------
# Raised marks no bibliography's numbers
# ---------------------------------------------------------------------------------------------------------

def test_raised_marks_each_once_and_rising_do_not_number_a_mostly_alphabetical_bibliography(tmp_path):
    """A Brazilian law review (LibreOffice, ABNT) lists its works by author, "BRASIL. Lei …" and a body's
    documents where the authors put them, and its notes' marks 1, 2, 3, … each once, rising, were read as
    citations in order of an unnumbered list (its notes were not read): entries [1]–[11] linked, all wrong. A
    list in the alphabet's order for three quarters of its neighbours is an author-year one, and such marks
    number nothing there."""
    page = raw_pdf.Page()
    page.text(72, 740, "Mudanças climáticas e o REDD+", size=18)
    page.text(72, 710, "1 Introdução", size=12, font="F2")
    y = 690
    for n in range(1, 7):
        page.text(72, y, f"{LINE}, line {n}.", size=10)
        y -= 12
        sentence_with_mark(tmp_path, page, y, "A comunidade internacional discutiu o clima.", str(n))
        y -= 12
    bib = bibliography_page([
        "BATISTA, Quetilin. Criminal Compliance e a Lei de Lavagem. Porto Alegre: Fi, 2019.",
        "BASEL COMMITTEE ON BANKING SUPERVISION. Consolidated Basel Framework. Basel: BIS, 2023.",
        "BRASIL. Lei no 12.187/2009. Institui a Política Nacional sobre Mudança do Clima. Brasília, 2009.",
        "CAMARGO, R. O. Compliance Empresarial e Investigação Preliminar. São Paulo: RT, 2018.",
        "SILVA, Geraldo. Direito Ambiental Internacional. 2. ed. Rio de Janeiro: Thex, 2002.",
        "SOARES, Guido. A proteção internacional do meio ambiente. Barueri: Manole, 2003.",
        "TRINDADE, Antônio. Direitos Humanos e Meio Ambiente. Porto Alegre: Fabris, 1993.",
        "UNITED NATIONS. Paris Agreement. New York: United Nations, 2015.",
        "LACLAU, Ernesto. Emancipation(s). London: Verso, 1996."])
    root = xml_of(tmp_path, [page, bib])
    assert not any((x.text or "").strip().isdigit() for x in root.iter("xref"))
