"""Stage 03's built-in backend on classes that PDFs compiled from the round-28 held-out LaTeX sources showed
(issue 25: IOP's iopart with biblatex, AGU's agujournal2019 draft with line numbers): each test writes the PDF, or
the lines, the way the class lays them out and checks one class of problem."""
from __future__ import annotations

import sys

from lxml import etree

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_published_classes import cited, foot_into_the_gutter, left_column_citing, raws_of  # noqa: E402
from test_03_builtin_real_classes import BODY, builtin, xml_of  # noqa: E402  (one PDF-to-XML helper for these files)

SURNAMES = ["Bertolli", "Bettinardi", "Bruyant", "Bundschuh", "Kesner", "Lamare", "Nehmeh", "Walker", "Whittaker",
            "Yeo"]


def test_running_head_naming_the_bibliography_beside_the_page_number_does_not_restart_it(tmp_path):
    """iopart prints the current section's name as the running head, beside the page number: "REFERENCES  31"
    over every page of the bibliography, where the other pages carry the title. Repeated on a few pages only, the
    head is still furniture: the bibliography starts at the "References" heading, not at the last page's head."""
    def head(page: raw_pdf.Page, text: str, number: int) -> None:
        page.text(72, 745, text)
        page.text(530, 745, str(number))

    pages = [raw_pdf.Page() for _ in range(6)]
    pages[0].text(72, 700, "Data Driven Signal Extraction Set Large", size=18)
    pages[0].text(72, 670, "1. Introduction", size=14, font="F2")
    for n in range(1, 4):
        head(pages[n], "Data driven signal extraction for dynamic imaging", n + 1)
    y = 650
    for k, name in enumerate(SURNAMES):
        page = pages[k // 4]
        y = 650 - 14 * (k % 4) if k // 4 else y - 14
        page.text(72, y, f"{BODY} as found before ({name} {2000 + k}).")
    for n in (4, 5):
        head(pages[n], "REFERENCES", n + 1)
    pages[4].text(72, 700, "References", size=14, font="F2")
    for k, name in enumerate(SURNAMES):
        page, top = (pages[4], 680) if k < 5 else (pages[5], 740 + 5 * 28)
        y = top - 28 * (k % 5)
        page.text(72, y, f"{name}, A. ({2000 + k}). A study of respiratory motion number {k + 1}.")
        page.text(90, y - 12, f"Physics in Medicine and Biology {40 + k}, pp. 1-10.")
    root = xml_of(tmp_path, pages)
    refs = ["".join(r.itertext()).strip() for r in root.iter("ref")]
    assert [r.split(",")[0] for r in refs] == SURNAMES
    assert not any("REFERENCES" in r for r in refs)
    assert len(list(root.find("body").iter("xref"))) == len(SURNAMES)


def test_line_number_beside_a_line_that_holds_only_a_number_is_dropped_with_the_others():
    """lineno numbers every line of an AGU draft, also a line that holds only the last digits of a DOI broken
    onto it ("978-94-009-8456-1" / "48"). That number stands by no words, but it is in the margin's column and
    in the run: left in, it became an entry's left edge and glued the page's entries into one."""
    def line(x: float, base: float, text: str, right_aligned: bool = False) -> builtin.Line:
        x = x - 5 * len(text) if right_aligned else x
        chars = [builtin.Char(c, x + 5 * k, base, x + 5 * k + 4.5, base + 7, 10.0, base=base)
                 for k, c in enumerate(text)]
        return builtin.Line(0, chars, 842, 612)

    texts = ["Kovalevsky, J., & Mueller, I. I. (1981). Comments on Conventional Terrestrial and",
             "Quasi-Inertial Reference Systems. In Reference Coordinate Systems for Earth",
             "Dynamics (p. 375-384). Springer Netherlands. doi: 10.1007/978-94-009-8456-1", "48",
             "Laundal, K. M., & Richmond, A. D. (2016, July). Magnetic Coordinate Systems.",
             "Space Science Reviews, 206 (1-4), 27-59. Retrieved from http://dx.doi.org/",
             "10.1007/s11214-016-0275-y doi: 10.1007/s11214-016-0275-y",
             "McCarthy, D. D. (2011). Evolution of timescales from astronomy to physical",
             "metrology. Metrologia, 48 (4), S132-S144. doi: 10.1088/0026-1394/48/4/s03",
             "Morley, S. K., Niehof, J. T., Welling, D. T., Larsen, B. A., Brunet, A., Engel, M. A."]
    lines = []
    for k, text in enumerate(texts):
        base = 700 - 12 * k
        lines.append(line(80, base, str(711 + k), right_aligned=True))
        lines.append(line(98 if text[0].isupper() and "," in text else 123, base, text))
    kept = builtin.drop_line_numbers(lines)
    assert [ln.text for ln in kept] == texts


def test_bracketed_labels_hanging_in_the_gutter_belong_to_the_right_column(tmp_path):
    """biblatex's numeric labels in USENIX's two columns hang left of their entries, the right column's "[18]" in
    the gutter. Where the gap between the columns is placed between those labels and their entries, a bracketed
    label right of the left column's text edge is still the right column's: it opens its entry, not a word in
    the middle of the left column's line beside it ("… Survey Instruments: An [18] Overview of …")."""
    page = raw_pdf.Page()
    page.text(60, 740, "A Paper Title Set Large", size=18)
    page.text(60, 710, "1 Introduction", size=10, font="F2")
    left_column_citing(tmp_path, page, ["[5]", "[11]", "[2]"])
    page.text(323.5, 710, "References", size=10, font="F2")
    for n in range(1, 13):
        page.text(323.5, 695 - 24 * (n - 1), f"Author{chr(64 + n)} Other. Title of the work number {n}.", size=7.5)
        page.text(323.5, 686 - 24 * (n - 1), f"In: Proceedings {n} (20{10 + n}) (cit. on p. {n}).", size=7.5)
    for n in range(1, 13):  # the labels, drawn after the entries, right-aligned in the gutter
        label = f"[{n}]"
        page.text(318.5 - 4.17 * len(label), 695 - 24 * (n - 1), label, size=7.5)
    foot_into_the_gutter(tmp_path, page)  # a line at the foot running on into the gutter
    pdf = raw_pdf.write_pdf(tmp_path / "paper.pdf", [page], width=595.28)
    root = etree.fromstring(builtin.convert(pdf)[0])
    raws = raws_of(root)
    assert len(raws) == 12 and all(r.startswith(f"[{n}] Author{chr(64 + n)}") for n, r in enumerate(raws, start=1))
    assert [(m, r[:9]) for m, r in cited(root)] == [("5", "[5] Autho"), ("11", "[11] Auth"), ("2", "[2] Autho")]
