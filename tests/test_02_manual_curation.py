"""Stage 02: the curation sheet, the person's edits, and what reaches output/."""
from __future__ import annotations

import csv
import json

import pytest

from demo.standins import eprint_tar_gz
from helpers import load_stage

stage = load_stage("02")
stage01 = load_stage("01")

PDF = b"%PDF-1.4\n" + b"y" * 500 + b"\n%%EOF\n"


ABSTRACT = ("We study how shipping companies adopt digital platforms for voyage planning, port calls and "
            "emissions reporting, drawing on interviews with forty operators in five countries, and we find "
            "that data sharing between ports and carriers, not technology, limits what digitalisation delivers "
            "in practice, which has consequences for regulators.")


def make_stage01_output(root, papers, sources=False):
    """Write a stage-01-shaped output folder: pdfs/, sources/ (with ``sources``) and metadata.csv."""
    (root / "pdfs").mkdir(parents=True, exist_ok=True)
    (root / "sources").mkdir(parents=True, exist_ok=True)
    rows = []
    for pid, title, cats, published in papers:
        (root / "pdfs" / f"{pid}.pdf").write_bytes(PDF + pid.encode())
        row = {"paper_id": pid, "arxiv_id": pid, "title": title, "authors": "Ada Author|Bo Second",
               "abstract": ABSTRACT, "abs_url": f"http://arxiv.org/abs/{pid}", "published": published,
               "primary_category": cats.split("|")[0], "categories": cats, "license": "", "pdf_file": f"pdfs/{pid}.pdf",
               "source_file": "", "source_format": "missing", "query": "q"}
        if sources:
            (root / "sources" / f"{pid}.tar.gz").write_bytes(eprint_tar_gz({"main.tex": "\\documentclass{article}"}))
            row.update(source_file=f"sources/{pid}.tar.gz", source_format="tar")
        rows.append(row)
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


def test_sheet_shows_what_a_paper_is_judged_by_with_the_persons_columns_first(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:1])
    stage.main(cfg(tmp_path, abstract_chars=120))
    row = read(tmp_path / "curation.csv")[0]
    assert list(row)[:3] == ["paper_id", "keep", "note"] and list(row)[-1] == "abstract"
    assert row["year"] == "2024" and row["first_author"] == "Ada Author et al."
    assert row["title"] == "Digital twins of ships" and row["link"] == "http://arxiv.org/abs/2501.00001v1"
    assert row["abstract"].endswith(" …") and len(row["abstract"]) <= 122
    assert ABSTRACT.startswith(row["abstract"][:-2])


def test_notes_and_columns_of_the_persons_own_survive_reruns(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:2])
    stage.main(cfg(tmp_path))
    rows = read(tmp_path / "curation.csv")
    for row in rows:
        row["keep"] = "No" if row["paper_id"] == "2501.00001v1" else "yes"
        row["note"] = "off topic: rail" if row["paper_id"] == "2501.00001v1" else ""
        row["reviewer"] = "kb"
    with open(tmp_path / "curation.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    make_stage01_output(tmp_path / "s01", PAPERS)
    summary = stage.main(cfg(tmp_path))
    sheet = {r["paper_id"]: r for r in read(tmp_path / "curation.csv")}
    assert sheet["2501.00001v1"]["keep"] == "No" and sheet["2501.00001v1"]["note"] == "off topic: rail"
    assert sheet["2501.00001v1"]["reviewer"] == "kb" and sheet["2501.00003v1"]["reviewer"] == ""
    assert summary["kept"] == 2 and summary["added_to_sheet"] == 1


def test_sheet_of_the_first_layout_is_migrated_keeping_the_choices(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:2])
    with open(tmp_path / "curation.csv", "w", newline="", encoding="utf-8-sig") as fh:
        fh.write("paper_id,title,authors,published,categories,keep,note\n"
                 "2501.00001v1,Digital twins of ships,A. Author,2024-05-01,cs.CY,no,not maritime\n"
                 "2501.00002v1,Port call optimisation,A. Author,2019-02-01,math.OC|cs.CY,yes,\n")
    summary = stage.main(cfg(tmp_path))
    rows = read(tmp_path / "curation.csv")
    assert list(rows[0]) == stage.SHEET_COLUMNS
    assert [(r["keep"], r["note"]) for r in rows] == [("no", "not maritime"), ("yes", "")]
    assert rows[0]["abstract"] and summary["kept"] == 1


def test_unchanged_sheet_is_not_rewritten(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path))
    edit_sheet(tmp_path / "curation.csv", {"2501.00002v1": "NO"})
    before = (tmp_path / "curation.csv").read_bytes()
    stage.main(cfg(tmp_path))
    assert (tmp_path / "curation.csv").read_bytes() == before  # the person's "NO" stays as typed


def test_kept_papers_carry_their_sources_along(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS, sources=True)
    stage.main(cfg(tmp_path))
    assert sorted(p.name for p in (tmp_path / "s02" / "sources").iterdir()) == [f"{p[0]}.tar.gz" for p in PAPERS]
    edit_sheet(tmp_path / "curation.csv", {"2501.00002v1": "no"})
    summary = stage.main(cfg(tmp_path))
    assert sorted(p.name for p in (tmp_path / "s02" / "sources").iterdir()) == ["2501.00001v1.tar.gz",
                                                                               "2501.00003v1.tar.gz"]
    rows = {r["paper_id"]: r for r in read(tmp_path / "s02" / "metadata.csv")}
    assert rows["2501.00001v1"]["source_file"] == "sources/2501.00001v1.tar.gz"
    assert rows["2501.00001v1"]["source_format"] == "tar" and rows["2501.00001v1"]["abstract"] == ABSTRACT
    assert summary["kept_with_latex_source"] == 2 and summary["removed_from_output"] == 2


def test_a_source_gone_from_stage01_is_recorded_missing(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS[:1], sources=True)
    (tmp_path / "s01" / "sources" / "2501.00001v1.tar.gz").unlink()
    stage.main(cfg(tmp_path))
    row = read(tmp_path / "s02" / "metadata.csv")[0]
    assert (row["source_file"], row["source_format"]) == ("", "missing")


def test_run_json_names_the_inputs_and_counts(tmp_path):
    make_stage01_output(tmp_path / "s01", PAPERS)
    stage.main(cfg(tmp_path))
    record = json.loads((tmp_path / "s02" / "run.json").read_text(encoding="utf-8"))
    assert record["stage"] == "02_manual_curation" and record["summary"]["kept"] == 3
    assert str(tmp_path / "s01" / "metadata.csv") in record["inputs"]
