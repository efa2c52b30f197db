"""Stage 03's built-in backend on classes that PDFs compiled from issue 25's held-out round 30b sources showed
(computer science and biology papers whose prose sets intervals and vectors in brackets): each test writes the
PDF the way the paper lays it out and checks one class of problem."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from test_03_builtin_published_classes import cited  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, numbered_paper, xml_of  # noqa: E402
from test_03_builtin_table_classes import link_markers, linked_opening  # noqa: E402

Reference = builtin.Reference


def test_a_bracket_after_a_relation_sign_is_an_interval_not_a_citation(tmp_path):
    """"loops of length ∈ [3, 10] bp and stems of length ∈ [1, 20] bp" (a PLOS paper citing by bracketed
    numbers, without links): a bracket right after a relation sign is an interval or a vector of a formula set in
    the sentence, never a citation; the same numbers set after a word ("the method of [3, 10]") still cite."""
    refs = [f"[{n}] A. Author{n}. Work number {n}. Journal, 20{n:02d}." for n in range(1, 21)]
    # (the test's PDF fonts have no "∈": the sign the paper prints is read from its text by find_markers below)
    page = numbered_paper(["We require loop lengths L = [3, 10] bp and stem lengths S = [1, 20] bp.",
                           f"{BODY} with the window x = [2, 4] and the method of [3, 10]."], refs)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["3, 10"]
    by_number = [Reference(raw=text, label=str(n)) for n, text in enumerate(refs, 1)]
    text = "loops of length ∈ [3, 10] bp and stems of length ∈ [1, 20] bp, as in [4]"
    assert [text[s:e] for s, e, _ in builtin.find_markers(text, by_number)] == ["4"]


def test_brackets_beside_a_vector_of_their_size_in_the_unlinked_text_of_a_linked_paper_are_no_citations(tmp_path):
    """A paper whose citations are links shows what a degradation does to a list: "the output: [1, 2, 3, 4] (no
    degradation), [0, 1, 1, 2] (k=2), or [0, 0, 0, 1] (k=4)" (round 30b's acmart paper: four links to entries
    1-4). An unlinked group beside a vector of its size in its sentence is one of its kind, as in a paper without
    links, and one after a relation sign is an interval; an unlinked "[3]" of the prose still names entry 3."""
    from test_03_builtin_heldout_classes import mdpi_entries
    page, spots = linked_opening(tmp_path)
    y = 620  # below the five lines of the opening
    page.text(72, y, "It gives [1, 2, 3, 4] (no degradation), [0, 1, 1, 2] (k=2), or [0, 0, 0, 1] (k=4).")
    page.text(72, y - 12, "The knob k = [2, 4] sets the divisor of the wrapping division.")
    page.text(72, y - 24, f"{BODY}, as shown before [3].")
    page.text(72, 540, "References", size=12, font="F2")
    tops = mdpi_entries(page, 520)
    link_markers(page, spots, tops)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["1", "2", "4", "5", "1", "3"]
