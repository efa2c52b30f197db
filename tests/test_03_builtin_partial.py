"""Stage 03's built-in backend flags a conversion that yields far less than its paper (issue 25, "every partial
conversion flagged"): most of the body's citation-looking markers left unlinked, or most of the bibliography
cited by no linked marker, makes the paper `partial` with the reason instead of `ok`."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import pypdfium2 as pdfium

from helpers import REPO, load_stage

sys.path.insert(0, str(REPO / "tests" / "fixtures"))
import raw_pdf  # noqa: E402

stage = load_stage("03")
builtin = stage.builtin_backend
BODY = "This paragraph is ordinary body text of a paper and it goes"
N = 12


def end_x(tmp_path: Path, text: str) -> float:
    """Where a line of text set at x = 72 ends, measured by PDFium on a page of its own."""
    pdf = raw_pdf.write_pdf(tmp_path / "measure.pdf", [raw_pdf.Page([raw_pdf.Text(72, 700, text)])])
    doc = pdfium.PdfDocument(str(pdf))
    textpage = doc[0].get_textpage()
    right = textpage.get_charbox(textpage.count_chars() - 1)[2]
    doc.close()
    return right


def paper(tmp_path: Path, name: str, linked: int) -> Path:
    """A paper whose body cites [1] … [12], one marker a line, with a numbered bibliography of 12 entries on
    the same page; link annotations cover the first ``linked`` markers (0: a PDF without links)."""
    page = raw_pdf.Page()
    page.text(72, 740, "A Paper Title Set Large", size=18)
    page.text(72, 700, "1 Introduction", size=12, font="F2")
    y = 680
    lines = [f"{BODY} on, as shown in [{k}]." for k in range(1, N + 1)]
    for line in lines:
        page.text(72, y, line)
        y -= 12
    page.text(72, y - 20, "References", size=12, font="F2")
    entry_y = [y - 40 - 12 * n for n in range(N)]
    for n in range(N):
        page.text(72, entry_y[n], f"[{n + 1}] A. Author{chr(65 + n)}, J. Chem. {n + 1}, {10 * (n + 1)} (20{10 + n}).",
                  size=9)
    for k in range(linked):
        x = end_x(tmp_path, lines[k][:lines[k].index("[") + 1])
        page.link((x - 1, 680 - 12 * k - 2, x + 7, 680 - 12 * k + 9), page=0, x=72, y=entry_y[k] + 9)
    return raw_pdf.write_pdf(tmp_path / f"{name}.pdf", [page])


def run_stage(tmp_path: Path, pdfs: list[Path]) -> dict[str, dict]:
    src = tmp_path / "in" / "pdfs"
    src.mkdir(parents=True)
    for pdf in pdfs:
        (src / pdf.name).write_bytes(pdf.read_bytes())
    cfg = stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", backend="builtin", workers=1)
    summary = stage.main(cfg)
    with open(cfg.output_dir / "extraction_log.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {r["paper_id"]: r for r in csv.DictReader(fh)}
    return {"summary": summary, **rows}


def test_a_pdf_whose_links_cover_few_of_its_markers_is_partial_with_the_reason(tmp_path):
    """A linked PDF whose link annotations cover 2 of its 12 markers: the backend links by the links, so the
    other 10 "[3]" … "[12]", plain text naming entries of the bibliography, came out as text. The paper is
    `partial`, the reason names the count, and its XML is still written for stage 04."""
    xml, stats = builtin.convert(paper(tmp_path, "few", linked=2))
    assert stats["n_linked_by"] == "links" and stats["n_citations"] == 2
    assert (stats["n_markers"], stats["n_unlinked_markers"]) == (N, N - 2)
    out = run_stage(tmp_path, [tmp_path / "few.pdf"])
    row = out["few"]
    assert row["status"] == "partial"
    assert row["error"] == f"partial conversion: {N - 2} of the body's {N} citation markers are not linked " \
                           "to a bibliography entry"
    assert out["summary"]["partial"] == {"few": row["error"]}
    assert (tmp_path / "out" / "few.cermxml").exists()


def test_a_paper_whose_markers_are_all_linked_stays_ok(tmp_path):
    """The same paper with every marker covered by its link, and without links (linked by pattern): `ok`."""
    out = run_stage(tmp_path, [paper(tmp_path, "all", linked=N), paper(tmp_path, "plain", linked=0)])
    for pid in ("all", "plain"):
        assert (out[pid]["status"], out[pid]["error"]) == ("ok", ""), pid
        assert out[pid]["n_citations"] == str(N)


def test_a_bibliography_mostly_cited_by_no_linked_marker_is_partial():
    """Markers exist and are linked, but they cite 5 of 20 entries: the rest of the paper's citations were
    not read (a font whose numbers do not map, a marker style not read)."""
    evidence = {"n_markers": 12, "n_unlinked_markers": 0, "n_entries": 20, "n_entries_cited": 5}
    assert builtin.partial_reason(evidence) == "only 5 of the 20 bibliography entries are cited by a linked marker"
    assert builtin.partial_reason({**evidence, "n_entries_cited": 16}) == ""
    assert builtin.partial_reason({**evidence, "n_entries": 6, "n_entries_cited": 1}) == ""  # too few to judge
    assert builtin.partial_reason({**evidence, "n_markers": 2}) == ""
