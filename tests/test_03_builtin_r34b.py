"""Stage 03's built-in backend on PDFs compiled from the LaTeX sources of issue 25's held-out round 34b (acmart,
IEEEtran, llncs, NeurIPS/ICML/ICLR, elsarticle, MDPI, BMC, Copernicus, PLOS, Frontiers, apa7, theses): each test
draws a small PDF the way that producer lays it out, and checks one class of problem the held-out measurement
showed."""
from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402
from test_03_builtin_heldout_classes import linked_mdpi_page, marks, mdpi_entries  # noqa: E402
from test_03_builtin_real_classes import BODY, xml_of  # noqa: E402


def test_bracketed_values_before_a_multiplier_or_a_unit_are_no_citation_in_a_linked_paper(tmp_path):
    """MDPI (hyperref): every citation a link, and a caption's "$[1, 3, 6, 9]$ times the turbine rotational
    frequency" unlinked: its numbers all name entries, and the rule that an unlinked "[3]" of a linked paper names
    entry 3 (a link lost at a page's foot) read it as four citations. Values that "times", "×", "-fold", "%" or a
    unit ("mm", "Hz") follow are no citation, linked paper or not; an unlinked "[3]" before a word still cites."""
    page = linked_mdpi_page(tmp_path, ["Dashed vertical lines indicate [1, 3, 5] times the turbine rotational frequency.",
                                       "The blades were cut at [2, 4] mm from the root, as set out in [3] before."], 550)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in marks(root)] == ["1", "2", "4", "5", "1", "3"]
    assert marks(root)[-1] == ("3", "3. Author3, ")


def test_bracketed_values_before_a_unit_are_no_citation_in_a_paper_without_links(tmp_path):
    """The same values in a PDF without links (patterns): "[2, 4] mm" and "[1, 3] times" stay text, "[3]" cites."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as shown before [2].")
    page.text(72, 668, f"{BODY}, and again [4,5].")
    page.text(72, 656, "The blades were cut at [2, 4] mm from the root and turn at [1, 3] times the rate [3].")
    for k in range(3):
        page.text(72, 644 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 590, "References", size=12, font="F2")
    mdpi_entries(page, 570)
    root = xml_of(tmp_path, [page])
    assert [m for m, _ in marks(root)] == ["2", "4,5", "3"]


def test_a_line_opened_by_a_bullet_opens_an_item_of_its_own(tmp_path):
    """A French memoir's itemize: "• KernelMode : Met à disposition des échantillons [2]" then "• Malware.lu : Site
    d'analyse [4]", each item without a stop and its bullet at the column's left: the items ran on as one
    paragraph (one sentence holding every item's citations). A line that a bullet opens starts a paragraph; the
    next line of an item, hung under its text, goes on with it."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1. Introduction", size=12, font="F2")
    page.text(72, 680, f"{BODY}, as shown before [1].")
    page.text(72, 668, "Several sites give samples:")
    page.text(72, 656, "• KernelMode : met à disposition des lecteurs des échantillons [2]")
    page.text(72, 644, "• Malware.lu : excellent site mettant à disposition des échantillons de malwares et")
    page.text(80, 632, "proposant des analyses [4]")
    page.text(72, 620, "• Contagio Exchange : site permettant d'échanger des malwares [5]")
    for k in range(3):
        page.text(72, 608 - 12 * k, f"{BODY}, line {k}.")
    page.text(72, 560, "References", size=12, font="F2")
    mdpi_entries(page, 540)
    root = xml_of(tmp_path, [page])
    paras = [" ".join("".join(p.itertext()).split()) for p in root.iter("p")]
    items = [p for p in paras if p.startswith("•")]
    assert [p.split(" :")[0] for p in items] == ["• KernelMode", "• Malware.lu", "• Contagio Exchange"]
    assert items[1].endswith("proposant des analyses [4]")
    assert [m for m, _ in marks(root)] == ["1", "2", "4", "5"]
