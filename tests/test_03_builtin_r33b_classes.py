"""Stage 03's built-in backend on classes that PDFs compiled from issue 25's held-out round 33b sources showed
(biology, medicine, neuroscience, linguistics and humanities papers and theses: PNAS, eLife, Frontiers, bioinfo,
wlscirep, theses in German, French, Spanish and Portuguese): each test draws the PDF the way the paper lays it
out, or calls the function that reads the class, and checks one class of problem."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
from test_03_builtin_published_classes import cited  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, numbered_paper, xml_of  # noqa: E402


def test_a_displayed_equations_bracketed_number_is_no_citation(tmp_path):
    """PNAS numbers its displayed equations "[3]", flush right of the formula at the column's edge: read with
    the formula, "logit(p) = b + u [3]" cited entry 3. A bracketed number standing on its own far right of a
    line holding a formula is the equation's number; the same number beside words (a table's cell), a linked
    one, or a citation in the prose, still cites."""
    refs = [f"[{n}] A. Author{n}. Work number {n}. Journal of Studies, 20{n:02d}." for n in range(1, 6)]

    def formulas(page):
        page.text(150, 596, "logit(p) = b + u + v + w")
        page.text(500, 596, "[3]")
        page.text(150, 572, "y(t) = x(t) + 2 s(t)")
        page.text(500, 572, "[4]")

    page = numbered_paper([f"{BODY}, as shown before [2].", ""] + [""] * 6 + [f"{BODY}, where u follows [1]."],
                          refs, then=formulas)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in cited(root)] == ["2", "1"]
    assert "[3]" not in "".join(root.find("body").itertext())

    def line(text: str, left: float, base: float, link: int = -1) -> builtin.Line:
        chars = [builtin.Char(ch, left + 5 * k, base - 2, left + 5 * k + 5, base + 8, 10.0, 0, link, base)
                 for k, ch in enumerate(text)]
        return builtin.Line(0, chars, 792, 612)

    formula, number = line("y = a x + b", 150, 500), line("[3]", 500, 500)
    words, cell = line("Kinase activity of the mutant", 72, 480), line("[5]", 400, 480)
    linked = line("[4]", 500, 460, link=0)
    kept = builtin.drop_equation_numbers([formula, number, words, cell, line("z = 1", 150, 460), linked])
    assert number not in kept and cell in kept and linked in kept  # beside words, or a link: still cites
    assert builtin.BRACKETED_NUMBER.match("[12]") and not builtin.BRACKETED_NUMBER.match("[12, 13]")
