"""Stage 03's built-in backend on OCR'd scans (issue 25: "no paper with a bibliography reported empty"): an old
paper scanned and OCR'd (Acrobat Capture, ABBYY FineReader, Tesseract) has a text layer with OCR's misreadings
of its markers ("[l]" for [1], "[2j" for [2]), specks read as characters, and often no labels left in its
bibliography. Each test writes such a PDF itself."""
from __future__ import annotations

import sys
from pathlib import Path

from lxml import etree

from helpers import REPO, load_stage

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402

builtin = load_stage("03").builtin_backend
BODY = "This paragraph is ordinary body text of a paper and it goes on for a while"
ENTRIES = [
    ["J.J. Antalis, W.G. Lembach and L.G. Carney, \"A comparison of two", "corneal analysis systems,\" CLAO J., "
     "vol. 19, pp. 58-63, 1993."],
    ["F.J. MacWilliams and N.J.A. Sloane, \"Pseudo-random sequences and", "arrays,\" Proc. IEEE, vol. 64, "
     "pp. 1715-1729, 1976."],
    ["P. Vuylsteke and A. Oosterlinck, \"Range image acquisition with a", "single binary-encoded light pattern,\" "
     "IEEE Trans. PAMI, vol. 12, 1990."],
    ["J.A. Hartigan, Clustering Algorithms, New York: John Wiley and", "Sons, 1975."],
    # OCR read the initial B. as "8.": no label, and no reason to take it for one
    ["8. Van Balen, T. Ten Cate and D. Koelma, \"Scilimage: a multi-layered", "environment for image "
     "processing,\" World Scientific, 1993."],
]


def scan(tmp_path: Path, producer: str) -> Path:
    """A two-page scanned paper as OCR leaves it: markers "[l]", "[2j", "[3]", "[4]", "[5]" in the body, a
    References heading over entries that lost their "[n]" labels (set apart by a wider line gap, as the
    printed page shows them, without hanging indents), and a speck "~" and a stray "R" beside them."""
    body = [f"{BODY} as [l] showed.", f"{BODY} and then [2j adds more.", f"{BODY} following [3] here.",
            f"{BODY} with the method of [4].", f"{BODY} and the software of [5]."]
    first = raw_pdf.Page()
    first.text(72, 740, "A Scanned Paper Title", size=18)
    first.text(72, 700, "I. INTRODUCTION", size=12, font="F2")
    for k, line in enumerate(body * 4):
        first.text(72, 680 - 12 * k, line)
    second = raw_pdf.Page()
    second.text(72, 740, "REFERENCES", size=12, font="F2")
    y = 716
    for n, (a, b) in enumerate(ENTRIES):
        second.text(82, y, a, size=8)
        if n == 0:
            second.text(70, y - 7, "R", size=8)  # the speck OCR made of the margin's label
            second.text(150, y - 13, "~", size=8)
        second.text(82, y - 10, b, size=8)
        y -= 30
    return raw_pdf.write_pdf(tmp_path / "scan.pdf", [first, second],
                             info={"Producer": "Adobe PDF Library 4.0", "Creator": producer})


def cited(root: etree._Element) -> list[tuple[str, str]]:
    refs = {r.get("id"): " ".join("".join(r.itertext()).split()) for r in root.iter("ref")}
    return [(x.text, refs[x.get("rid").split()[0]]) for x in root.iter("xref")]


def test_ocr_scan_with_misread_markers_and_lost_labels_links_its_citations(tmp_path):
    """An OCR'd scan (its Creator: Acrobat Capture): the specks stay out of the bibliography, which splits into
    its 5 entries; OCR's "[l]" and "[2j" are read as the [1] and [2] printed; the entries, whose labels OCR
    lost, are numbered [1] … [5] since the body cites by bracketed numbers that name them in order. Every
    marker links to its entry, and the body's text says [1] and [2] as the page does."""
    xml, stats = builtin.convert(scan(tmp_path, "Acrobat Capture 3.0"))
    root = etree.fromstring(xml)
    raws = [" ".join("".join(r.itertext()).split()) for r in root.iter("mixed-citation")]
    assert len(raws) == 5
    assert raws[0].startswith("[1] J.J. Antalis") and raws[0].endswith("1993.") and "~" not in raws[0]
    assert raws[4].startswith("[5] 8. Van Balen")
    links = cited(root)
    assert len(links) == 20
    assert {(m, r.split()[0]) for m, r in links} == {(str(n), f"[{n}]") for n in range(1, 6)}
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "[l]" not in text and "[2j" not in text and "as [1] showed" in text
    assert stats.get("partial", "") == ""


def test_the_same_text_without_an_ocr_producer_is_read_as_printed(tmp_path):
    """Without an OCR program in the metadata "[l]" is what the file says (an index, "x[l]"), not a
    misreading: it stays as it is and names no entry; the bracketed numbers that are printed still link."""
    root = etree.fromstring(builtin.convert(scan(tmp_path, "pdfTeX-1.40.25"))[0])
    text = " ".join("".join(p.itertext()) for p in root.iter("p"))
    assert "as [l] showed" in text and "[2j adds" in text
    assert {m for m, _ in cited(root)} <= {"3", "4", "5"}


def test_ocr_readings_are_corrected_inside_brackets_only():
    """The correction touches a bracketed group of digits and look-alikes that OCR misread, nothing else:
    "[l]", "[I]", "[1O]", "[2j" are numbers; "[II]" (a roman numeral), "l" and "Iz" outside brackets and a
    printed "[3]" stay."""
    def read(text: str) -> str:
        chars = [builtin.Char(ch, 0, 0, 1, 1, 10, 0, -1, 0) for ch in text]
        builtin.read_ocr_markers(chars)
        return "".join(c.text for c in chars)

    assert read("as [l] and [I] and [1O] show, [2j.") == "as [1] and [1] and [10] show, [2]."
    assert read("in [II] the l of Iz, see [3].") == "in [II] the l of Iz, see [3]."
