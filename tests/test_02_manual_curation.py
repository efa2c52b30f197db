"""Stage 02: the curation sheet, the person's edits, and what reaches output/."""
from __future__ import annotations

import csv

import pytest

from helpers import load_stage

stage = load_stage("02")
stage01 = load_stage("01")

PDF = b"%PDF-1.4\n" + b"y" * 500 + b"\n%%EOF\n"


def make_stage01_output(root, papers):
    """Write a stage-01-shaped output folder: pdfs/ and metadata.csv."""
    (root / "pdfs").mkdir(parents=True, exist_ok=True)
    rows = []
    for pid, title, cats, published in papers:
        (root / "pdfs" / f"{pid}.pdf").write_bytes(PDF + pid.encode())
        rows.append({"paper_id": pid, "arxiv_id": pid, "title": title, "authors": "A. Author",
                     "published": published, "primary_category": cats.split("|")[0], "categories": cats,
                     "pdf_file": f"pdfs/{pid}.pdf", "query": "q"})
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=stage01.METADATA_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


PAPERS = [
    ("2501.00001v1", "Digital twins of ships", "cs.CY", "2024-05-01"),
    ("2501.00002v1", "Port call optimisation", "math.OC|cs.CY", "2019-02-01"),
    ("2501.00003v1", "An erratum to a maritime study", "cs.CY", "2023-01-01"),
]


def cfg(tmp_path, **kw):
    return stage.Config(input_dir=tmp_path / "s01", sheet=tmp_path / "curation.csv",
                        output_dir=tmp_path / "s02", **kw)


def read(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def edit_sheet(path, changes):
    rows = read(path)
    for row in rows:
        if row["paper_id"] in changes:
            row["keep"] = changes[row["paper_id"]]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_first_run_writes_the_sheet_and_keeps_everything(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    summary = stage.main(cfg(tmp_path))
    sheet = read(tmp_path / "curation.csv")
    assert list(sheet[0]) == stage.SHEET_COLUMNS
    assert [r["keep"] for r in sheet] == ["yes", "yes", "yes"]
    assert summary["kept"] == 3
    assert sorted(p.name for p in (tmp_path / "s02" / "pdfs").iterdir()) == [f"{p[0]}.pdf" for p in PAPERS]
    assert [r["paper_id"] for r in read(tmp_path / "s02" / "metadata.csv")] == [p[0] for p in PAPERS]


def test_rules_preset_keep_no_with_a_note(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path, exclude_categories=("math.OC",), exclude_title_keywords=("erratum",)))
    sheet = {r["paper_id"]: r for r in read(tmp_path / "curation.csv")}
    assert sheet["2501.00001v1"]["keep"] == "yes"
    assert sheet["2501.00002v1"]["keep"] == "no" and "math.OC" in sheet["2501.00002v1"]["note"]
    assert sheet["2501.00003v1"]["keep"] == "no" and "erratum" in sheet["2501.00003v1"]["note"]


def test_min_year_rule(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    summary = stage.main(cfg(tmp_path, min_year=2020))
    assert summary["kept"] == 2 and summary["excluded"] == 1


def test_edited_sheet_decides_what_goes_on(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path))
    edit_sheet(tmp_path / "curation.csv", {"2501.00002v1": "no", "2501.00003v1": "No"})
    summary = stage.main(cfg(tmp_path))
    assert summary["kept"] == 1 and summary["removed_from_output"] == 2
    assert [p.name for p in (tmp_path / "s02" / "pdfs").iterdir()] == ["2501.00001v1.pdf"]
    assert [r["paper_id"] for r in read(tmp_path / "s02" / "metadata.csv")] == ["2501.00001v1"]


def test_rerun_merges_new_papers_and_keeps_the_edits(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:2])
    stage.main(cfg(tmp_path))
    edit_sheet(tmp_path / "curation.csv", {"2501.00001v1": "no"})
    make_stage01_output(tmp_path / "s01", PAPERS)  # stage 01 found one more paper
    summary = stage.main(cfg(tmp_path))
    sheet = {r["paper_id"]: r["keep"] for r in read(tmp_path / "curation.csv")}
    assert sheet == {"2501.00001v1": "no", "2501.00002v1": "yes", "2501.00003v1": "yes"}
    assert summary["added_to_sheet"] == 1 and summary["kept"] == 2


def test_bad_keep_value_is_an_error_naming_the_row(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path))
    edit_sheet(tmp_path / "curation.csv", {"2501.00002v1": "maybe"})
    with pytest.raises(SystemExit, match=r"line 3 \(paper 2501.00002v1\): keep must be yes or no, not 'maybe'"):
        stage.main(cfg(tmp_path))


def test_kept_pdfs_are_hard_links_by_default(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:1])
    stage.main(cfg(tmp_path))
    src = tmp_path / "s01" / "pdfs" / "2501.00001v1.pdf"
    dst = tmp_path / "s02" / "pdfs" / "2501.00001v1.pdf"
    assert src.stat().st_ino == dst.stat().st_ino


def test_missing_stage01_output_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run stage 01 first"):
        stage.main(cfg(tmp_path))


def test_a_sheet_saved_by_a_spreadsheet_is_read(tmp_path):
    """Excel writes a byte-order mark ("CSV UTF-8") and, in decimal-comma locales, ";" separators."""
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path))
    rows = read(tmp_path / "curation.csv")
    for row in rows:
        row["keep"] = "no" if row["paper_id"] == "2501.00002v1" else "YES"
    with open(tmp_path / "curation.csv", "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    summary = stage.main(cfg(tmp_path))
    assert summary["kept"] == 2 and summary["excluded"] == 1
