"""Stage 03's built-in backend (and stage 04 after it) on classes that PDFs compiled from the round-29 held-out
LaTeX sources showed (issue 25: Frontiers' line-numbered drafts, amsthm statements whose head cites their source):
each test writes the PDF the way the class lays it out and checks one class of problem."""
from __future__ import annotations

import re
import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, end_x, raws_of  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin  # noqa: E402  (one PDF-to-XML helper for these files)

SURNAMES = ["Manor", "Rabbah", "Donovan", "Nadim", "Kopell", "Bose", "Brown", "Reiss", "Perkel", "Friesen", "Li",
            "Morris", "Matveev", "Tsodyks", "Ermentrout", "Rinzel", "Skinner", "Kopell", "Wang", "Marder"]


def _line_number(tmp_path, page: raw_pdf.Page, right: float, y: float, number: int) -> None:
    """lineno's number, right-aligned at ``right``, drawn before its line (the stream order lineno writes)."""
    text = str(number)
    page.text(right - (end_x(tmp_path, 0, text) - 0), y, text)


def test_line_numbers_set_close_to_their_lines_are_dropped_and_the_bibliography_goes_on(tmp_path):
    """Frontiers' drafts number every line (lineno) in the left margin, nearer the text than the gap that parts
    two lines: "538 [10] Friesen WO." came out as one line where the hanging label "[10]" is wider than "[9]",
    and every line of a page whose column starts nearer the margin carried its number. Glued on, the numbers
    ended the bibliography at entry 9 (14 of 35 keys reached); they are line numbers all the same, and go."""
    pages = [raw_pdf.Page() for _ in range(3)]
    number = iter(range(500, 600))
    pages[0].text(50, 740, "A Scalar Map for Bursting Set Large", size=18)
    pages[0].text(50, 712, "1 INTRODUCTION", size=12, font="F2")
    for k, name in enumerate(SURNAMES):
        y = 696 - 13 * k
        _line_number(tmp_path, pages[0], 40, y, next(number))
        pages[0].text(50, y, f"{BODY} as in [{k + 1}].")
    pages[1].text(70, 740, "REFERENCES", size=12, font="F2")
    y = 724
    for k, name in enumerate(SURNAMES[:12]):  # labels hang right-aligned left of the entries: "[10]" reaches nearer
        label = f"[{k + 1}]"
        _line_number(tmp_path, pages[1], 40, y, next(number))
        pages[1].text(66 - end_x(tmp_path, 0, label), y, label)
        pages[1].text(70, y, f"{name} A, Other B. A study of synaptic depression number {k + 1}. Journal of")
        _line_number(tmp_path, pages[1], 40, y - 12, next(number))
        pages[1].text(70, y - 12, f"Neuroscience {10 + k} ({1990 + k}) 100-110.")
        y -= 26
    y = 724
    for k, name in enumerate(SURNAMES[12:], start=12):  # a page whose column starts nearer the numbers
        _line_number(tmp_path, pages[2], 40, y, next(number))
        pages[2].text(50, y, f"[{k + 1}] {name} A, Other B. A study of synaptic depression number {k + 1}.")
        _line_number(tmp_path, pages[2], 40, y - 12, next(number))
        pages[2].text(50, y - 12, f"Journal of Neuroscience {10 + k} ({1990 + k}) 100-110.")
        y -= 26
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", pages)
    root = etree.fromstring(builtin.convert(pdf)[0])
    raws = raws_of(root)
    assert [r.split(" A, ")[0] for r in raws] == [f"[{k + 1}] {name}" for k, name in enumerate(SURNAMES)]
    assert not any(re.search(r"\b5\d\d\b", r) for r in raws)
    assert [r.split(" A, ")[0] for _, r in cited(root)] == [f"[{k + 1}] {name}" for k, name in enumerate(SURNAMES)]
    assert not re.search(r"\b5\d\d\b", "".join(root.find("body").itertext()))


def test_a_number_set_apart_at_the_start_of_a_line_that_is_no_line_number_stays_on_its_line():
    """Only numbers that line up as a margin's line numbers are dropped: a bibliography labelled "12  Smith" (no
    brackets, a wide space after the label, each entry two lines) keeps every label on its entry's first line."""
    def line(base: float, text: str, label: str = "") -> builtin.Line:
        chars = [builtin.Char(c, 60 - 5 * len(label) + 5 * k, base, 64.5 - 5 * len(label) + 5 * k, base + 7, 10.0,
                              base=base) for k, c in enumerate(label)]
        chars += [builtin.Char(" ", 60, base, 68, base + 7, 10.0, base=base)] if label else []
        chars += [builtin.Char(c, 68 + 5 * k, base, 72.5 + 5 * k, base + 7, 10.0, base=base)
                  for k, c in enumerate(text)]
        return builtin.Line(0, chars, 842, 612)

    lines, texts = [], []
    for n in range(1, 13):
        first, second = f"Author{chr(64 + n)} B. Title of the work number {n},", f"Journal {n} (2001) 1-9."
        lines += [line(700 - 24 * n, first, str(n)), line(688 - 24 * n, second)]
        texts += [f"{n} {first}", second]
    assert [ln.text for ln in builtin.drop_line_numbers(lines)] == texts
