"""Stage 03's built-in backend on published papers (issue 25, round 30: 48 PDFs from ContentMine/ami's test
resources — Elsevier, XPP, 3B2, InDesign, Arbortext, Hindawi, BMC, IOP, EPJ, IEEE, old Distiller 2/3 and a JBC scan
with its text layer): each test builds a small PDF the way that producer lays it out, and checks one class of
problem the held-out measurement showed."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import end_x  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402


def marks(root) -> list[tuple[str, list[str]]]:
    """(marker text, the first words of every reference it names) for each linked marker, in reading order."""
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, [refs[k][:4] for k in x.get("rid").split()]) for x in root.iter("xref")]


# ---------------------------------------------------------------------------------------------------------
# Elsevier: a link box that reaches past its bracket, a destination a line above its entry and with no x
# ---------------------------------------------------------------------------------------------------------

def test_a_link_box_reaching_past_its_bracket_still_names_the_entry_its_numbers_print(tmp_path):
    """Elsevier's link rectangles cover "[2]. T" (the full stop and the next sentence's first letter), and each
    destination lies a line above its entry with no x, level with an entry of the other column: the printed
    numbers name the entries, not the entry nearest the destination."""
    body = raw_pdf.Page()
    body.text(60, 740, "A Paper Title Set Large", size=18)
    body.text(60, 700, "1. Introduction", size=10, font="F2")
    cites = [("2", "The"), ("5,6", "Then"), ("3", "So")]
    ys = [680, 668, 656]
    for (n, after), y in zip(cites, ys):
        body.text(60, y, f"{BODY} [{n}]. {after} more text follows.")
    for k in range(4):
        body.text(60, 644 - 12 * k, f"{BODY}, line {k}.")
    refs = raw_pdf.Page()
    refs.text(60, 740, "References", size=10, font="F2")
    tops = {}
    for n in range(1, 5):  # left column, 14 pt apart; the right column sits 7 pt higher than the left one
        y = 720 - 14 * (n - 1)
        refs.text(60, y, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=7)
        tops[n] = y
    for n in range(5, 9):
        y = 727 - 14 * (n - 5)
        refs.text(320, y, f"[{n}] Author{n} A. A title of work number {n}. J Test 2001;{n}:1-9.", size=7)
        tops[n] = y
    for (n, after), y in zip(cites, ys):
        left = end_x(tmp_path, 60, f"{BODY} ")
        right = end_x(tmp_path, 60, f"{BODY} [{n}]. {after[0]}")
        first = int(n.split(",")[0])
        body.link((left - 0.5, y - 2, right + 0.5, y + 8), page=1, x=None, y=tops[first] + 7 + 14)
    root = xml_of(tmp_path, [body, refs])
    assert [(m.strip(" .TSh"), names) for m, names in marks(root)] == [
        ("[2]", ["[2] "]), ("[5,6]", ["[5] ", "[6] "]), ("[3]", ["[3] "])]
