"""Stage 03's built-in backend: classes that earlier held-out rounds of issue 25 saw on real papers and left (round
33, branch r33left), each on a PDF the test draws."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_pairs_classes import author_year_paper, exponent_paper, refs_of, right_edge  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402  (one PDF-to-XML helper for these files)


def _linked(root: etree._Element) -> list[list[str]]:
    refs = refs_of(root)
    return [[refs[rid][:12] for rid in x.get("rid").split()] for x in root.iter("xref")]


def test_aastex_single_dash_for_the_previous_entrys_authors_names_that_entry(tmp_path):
    """AASTeX's bibliography style prints "—. 2007b," (one em dash, a full stop) for the authors of the entry above
    (the rule for two or more dashes was read, this one was not): the entry takes the authors above, so
    "Glover & Brand (2007b)" names it, not the 2007a entry above it."""
    entries = [("Glover, S. C. O., & Brand, P. W. 2007a, ApJS, 169, 239", "doi: 10.1086/512238"),
               ("—. 2007b, ApJ, 659, 1317", "doi: 10.1086/512227"),
               ("Krumholz, M. R. 2014, PhR, 539, 49", "doi: 10.1016/j.physrep.2014.02.001")]
    body = [f"{BODY}, as shielding is computed (Glover & Brand 2007a; Krumholz 2014).",
            f"{BODY}, and the molecular fraction follows Glover & Brand (2007b) closely."]
    root = xml_of(tmp_path, [author_year_paper(body, entries)])
    assert _linked(root) == [["Glover, S. C", "Krumholz, M."], ["—. 2007b, Ap"]]


def test_a_corporate_author_or_acronym_cited_by_name_and_year_names_the_entry_that_opens_so(tmp_path):
    """Harvard without commas (Ubiquity's JCMS): "ICOMOS 1994. The Nara Document on Authenticity. Available at: …
    [Accessed 21 September 2010]" was parsed for a later word and year (the access date), so "(ICOMOS 1994: 2)"
    found no entry; nor did "(English Heritage 2010)", whose marker's name is the last word of the corporate
    name. A marker whose name and year no entry was parsed for names the entry that opens with that name (after
    up to three capitalised words) and that year right after it; a year the entry does not open with names none."""
    entries = [("English Heritage 2010 Listed Buildings. Available at: http://www.english-heritage.org.uk",
                "[Accessed 19 July 2011]"),
               ("ICOMOS 1994. The Nara Document on Authenticity. Available at: http://www.icomos.org/nara",
                "[Accessed 21 September 2010]"),
               ("Jokilehto, J 1999 A History of Architectural Conservation. Oxford: Butterworth Heinemann.", "")]
    body = [f"{BODY}, and authenticity is a value (ICOMOS 1994: 2) of the place.",
            f"{BODY}, and the register lists it (English Heritage 2010) since then.",
            f"{BODY}, as the charter's revision has it (ICOMOS 1999) and (Jokilehto 1999: 180)."]
    root = xml_of(tmp_path, [author_year_paper(body, entries)])
    assert _linked(root) == [["ICOMOS 1994."], ["English Heri"], ["Jokilehto, J"]]


def test_a_number_raised_after_a_decimal_fraction_is_an_exponent_not_a_citation(tmp_path):
    """A superscript-citing paper (amsart, natbib super) writes a variance in the sentence, "N(1, 0.25²) nA":
    the raised 2 right after the decimal fraction was linked to entry 2. A number raised right after a decimal
    fraction is an exponent; raised after a word it is still a citation."""
    line = "Each neuron is driven by an input current of N(1, 0.25"
    first = right_edge(tmp_path, exponent_paper(line), "N(1, 0.25") + 0.3
    page = exponent_paper(line, [(first, "2")])
    page.text(first + 6, 680, ") nA.")
    second = right_edge(tmp_path, page, "the model says.") + 0.3
    page.text(second, 668 + 3.6, "3", size=7)
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("3", "ref3")]


def test_a_bracket_inside_a_calls_parentheses_is_an_argument_not_a_citation(tmp_path):
    """A code listing read as text: "client.send_query(user: 1, items: [1,2], num: 10)" linked entries 1 and 2.
    A bracket inside a parenthesis glued to the name before it (a call, "f(x, [2, 3])") is an argument; a
    citation's parenthesis follows a space ("(see [1, 2])") and still cites."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as two studies show (see [1, 2]).")
    page.text(72, 656, "recommendations = client.send_query(user: 1, items: [1,2], num: 10)")
    page.text(72, 632, f"{BODY}, and the third one [3] agrees.")
    page.text(72, 590, "References", size=12, font="F2")
    for n, y in zip(range(1, 4), (570, 558, 546)):
        page.text(72, y, f"[{n}] A. Author{n}. Work number {n}. Journal of Tests, {1990 + n}.")
    root = xml_of(tmp_path, [page])
    assert [(x.text, x.get("rid")) for x in root.iter("xref")] == [("1, 2", "ref1 ref2"), ("3", "ref3")]
