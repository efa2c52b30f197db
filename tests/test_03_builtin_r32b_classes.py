"""Stage 03's built-in backend on classes that PDFs compiled from issue 25's held-out round 32b sources showed
(computer science, engineering, biology, medicine and social-science papers: acmart, MDPI, eLife, llncs, theses):
each test draws the PDF the way the paper lays it out, or calls the function that reads the class, and checks one
class of problem."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from test_03_builtin_published_classes import cited  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402
from test_03_builtin_table_classes import link_markers, linked_opening  # noqa: E402

Reference = builtin.Reference


def test_a_bracket_the_words_before_name_an_interval_is_no_citation_in_a_linked_paper(tmp_path):
    """An acmart paper whose citations are links writes "attribute Age with domain [1, 100]" unlinked: both numbers
    name entries, and the unlinked bracket was read as a citation of entries 1 and 100. Two numbers, not consecutive,
    after "domain", "range", "interval", "between" are an interval's bounds; the same bracket after other words, or
    after a plural ("between the two domains [5,6]", a published paper), still cites."""
    from test_03_builtin_heldout_classes import mdpi_entries
    page, spots = linked_opening(tmp_path)
    page.text(72, 620, "Program P1 computes the distribution of attribute Age with domain [1, 5].")
    page.text(72, 608, "Counts fall in the range [2, 4] for every bin of the histogram.")
    page.text(72, 596, f"{BODY}, as shown before [1, 3].")
    page.text(72, 584, "They differ between the two domains [4, 5] of the protein.")
    page.text(72, 540, "References", size=12, font="F2")
    tops = mdpi_entries(page, 520)
    link_markers(page, spots, tops)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["1", "2", "4", "5", "1", "1, 3", "4, 5"]


def test_a_bracketed_range_of_more_numbers_than_any_citation_spans_is_a_bin_not_a_citation():
    """"because P7 outputs the number of age values ([1-100])": in a paper of 100 entries whose citations are
    links, the unlinked range named all of them, a hundred wrong links in one sentence (and so it did in a paper
    without links). A range of more than MAX_CITED_RANGE numbers is a bin or an interval; a short one still cites."""
    refs = [Reference(raw=f"A. Author{n}. Work number {n}. Journal, 2001.", label=str(n)) for n in range(1, 121)]
    by_label = {n: n - 1 for n in range(1, 121)}
    text = "P7 outputs the number of age values ([1-100]) and the bins [101–200]; as in [3–7] and [12]."
    runs = builtin._label_unlinked_brackets([(text, [])], by_label)
    assert [t for t, keys in runs if keys] == ["3–7", "12"]
    assert [text[s:e] for s, e, _ in builtin.find_markers(text, refs)] == ["3–7", "12"]


def test_a_list_of_figures_entry_repeating_a_captions_citation_is_no_citing_sentence(tmp_path):
    """A thesis's List of Figures prints each caption before a dotted leader and its page, citation and all ("1.2
    A hierarchical cluster topology [8]. . . . . . 5"): that entry was a citing sentence of its own, beside the
    caption's. An entry of a list of contents cites nothing; the caption and the prose still do."""
    from test_03_builtin_real_classes import numbered_paper
    refs = [f"[{n}] A. Author{n}. Work number {n}. Journal, 20{n:02d}." for n in range(1, 6)]

    def list_of_figures(page):
        page.text(72, 640, "List of Figures", size=12, font="F2")
        page.text(72, 620, "1.1 A star topology of motes [2]. . . . . . . . . . . . . . . . . . . . . . 3")
        page.text(72, 606, "1.2 A hierarchical cluster topology [4]. . . . . . . . . . . . . . . . . . 5")

    # (five empty lines: the list is drawn in the space they leave above "References")
    page = numbered_paper([f"{BODY}, as clusters show [4].", f"{BODY}, and stars [2]."] + [""] * 5, refs,
                          then=list_of_figures)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["4", "2"]
    assert builtin.CONTENTS_LEADER.search("topology [8]. . . . . . . . . 5")
    assert not builtin.CONTENTS_LEADER.search("as shown before [8]... and 5 more")


def test_a_raised_run_after_a_space_is_read_whole_its_own_raised_space_after_it(tmp_path):
    """amsart with natbib's super style and "cortex \\cite{x}" in the source: the number is raised after a space
    and the space after it is read raised too ("cortex ¹⁵ with"), which made it a unit's; its first figure was
    then text and the rest a citation of its own, "1" and a link to entry 5 (25 wrong links in one paper). A run
    followed by its own raised space is set apart as a citation is; and a run whose first figure is read as an
    isotope's ("the ¹³C spectrum") is one whole, no "3" citing entry 3."""
    import raw_pdf
    from test_03_builtin_r31word_classes import filler, marks, raised
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 700, "Introduction", size=11, font="F2")
    raised(tmp_path, page, 680, "We simulate a recent model of the Macaque visual cortex", "15 ", gap=" ",
           after="with many neurons.")
    raised(tmp_path, page, 668, "We recorded the", "13", after="C spectrum of the sample.", gap=" ")
    raised(tmp_path, page, 656, "As in previous works", "2,4", gap=" ", after="we generate the code.")
    filler(page, 644)
    page.text(60, 560, "References", size=11, font="F2")
    for n in range(1, 16):
        page.text(60, 560 - 11 * n, f"{n} Author{n} A, Other B. A title of work number {n}. J Test 2001; {n}: 1-9.",
                  size=8)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in marks(root)] == ["15", "2,4"]
