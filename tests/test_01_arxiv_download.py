"""Stage 01 against a loopback server that speaks arXiv's Atom API and serves PDFs."""
from __future__ import annotations

import csv
import time

import pytest

from demo.standins import ArxivPaper, ArxivStandIn, load_demo_papers
from helpers import load_stage

stage = load_stage("01")

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 4000 + b"\ntrailer << >>\n%%EOF\n")


def paper(arxiv_id: str, title: str = "Maritime digitalisation study") -> ArxivPaper:
    return ArxivPaper(arxiv_id=arxiv_id, title=title, authors=["Ada Lovelace", "Alan Turing"],
                      summary="About digitalisation in the maritime sector.", pdf=PDF)


def config(server: ArxivStandIn, tmp_path, **kw):
    defaults = dict(base_url=server.url + "/api/query", output_dir=tmp_path / "out", delay_seconds=0.0,
                    backoff_seconds=0.0, retries=2, timeout=5.0, max_results=50)
    defaults.update(kw)
    return stage.Config(**defaults)


def read_metadata(cfg) -> list[dict]:
    with open(cfg.output_dir / "metadata.csv", newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_normal_run_downloads_every_pdf_and_writes_metadata(tmp_path):
    papers = load_demo_papers()
    with ArxivStandIn(papers) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
    assert summary["downloaded"] == len(papers) and summary["failed"] == 0
    rows = read_metadata(cfg)
    assert list(rows[0]) == stage.METADATA_COLUMNS
    by_id = {r["paper_id"]: r for r in rows}
    first = by_id["2513.00001v1"]
    assert first["title"].startswith("Digital Twins for Ship Operations")
    assert first["authors"] == "Ingrid Solberg|Rafael Mendes"
    assert first["categories"] == "cs.CY|eess.SY" and first["primary_category"] == "cs.CY"
    assert first["published"] == "2025-03-04"
    assert first["query"] == "((all:digitalisation OR all:digitalization) AND all:maritime)"
    for r in rows:
        pdf = cfg.output_dir / r["pdf_file"]
        assert pdf.read_bytes() == next(p.pdf for p in papers if p.arxiv_id == r["arxiv_id"])


def test_paging_follows_start_and_total_results(tmp_path):
    papers = [paper(f"2501.0000{i}v1") for i in range(1, 6)]
    with ArxivStandIn(papers) as server:
        cfg = config(server, tmp_path, page_size=2)
        summary = stage.main(cfg)
        starts = [r.query["start"][0] for r in server.requests_to("/api/query")]
        sizes = {r.query["max_results"][0] for r in server.requests_to("/api/query")}
    assert starts == ["0", "2", "4"] and sizes == {"2"}
    assert summary["results"] == 5 and summary["downloaded"] == 5


def test_max_results_caps_the_collection(tmp_path):
    papers = [paper(f"2501.0000{i}v1") for i in range(1, 8)]
    with ArxivStandIn(papers) as server:
        summary = stage.main(config(server, tmp_path, max_results=3, page_size=2))
    assert summary["results"] == 3 and summary["downloaded"] == 3


def test_old_style_id_becomes_a_safe_file_name(tmp_path):
    with ArxivStandIn([paper("hep-th/9901001v1")]) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
    rows = read_metadata(cfg)
    assert rows[0]["paper_id"] == "hep-th_9901001v1"
    assert rows[0]["arxiv_id"] == "hep-th/9901001v1"
    assert (cfg.output_dir / "pdfs" / "hep-th_9901001v1.pdf").is_file()


def test_id_that_would_escape_the_output_folder_is_skipped(tmp_path):
    with ArxivStandIn([paper("../../evil"), paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
    assert summary["skipped"] == {"unsafe_id": 1}
    assert sorted(p.name for p in (cfg.output_dir / "pdfs").iterdir()) == ["2501.00001v1.pdf"]
    assert not list(tmp_path.glob("*.pdf"))


def test_server_error_then_success_is_retried(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/api/query", 503)
        server.fail_next("/pdf/", 500, 502)
        summary = stage.main(config(server, tmp_path))
        assert len(server.requests_to("/api/query")) == 2
        assert len(server.requests_to("/pdf/")) == 3
    assert summary["downloaded"] == 1 and summary["failed"] == 0


def test_truncated_pdf_is_retried_then_reported_and_never_kept(tmp_path):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        server.fail_next("/pdf/2501.00001v1", "truncate", "truncate", "html")
        cfg = config(server, tmp_path, retries=2)
        summary = stage.main(cfg)
    assert summary["failed"] == 1
    assert "not a whole PDF" in summary["failures"]["2501.00001v1"]
    files = sorted(p.name for p in (cfg.output_dir / "pdfs").iterdir())
    assert files == ["2501.00002v1.pdf"]  # no partial file, no temp file left behind
    rows = {r["paper_id"]: r for r in read_metadata(cfg)}
    assert rows["2501.00001v1"]["pdf_file"] == "" and rows["2501.00002v1"]["pdf_file"]


def test_truncated_then_whole_pdf_is_kept(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/pdf/", "truncate")
        summary = stage.main(config(server, tmp_path))
    assert summary["downloaded"] == 1


def test_missing_pdf_is_not_retried(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/pdf/", 404)
        summary = stage.main(config(server, tmp_path, retries=3))
        assert len(server.requests_to("/pdf/")) == 1
    assert summary["failures"] == {"2501.00001v1": "HTTP 404"}


def test_rerun_downloads_nothing_and_adds_new_results(tmp_path):
    papers = [paper("2501.00001v1"), paper("2501.00002v1")]
    with ArxivStandIn(papers) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
        n_pdf = len(server.requests_to("/pdf/"))
        again = stage.main(cfg)
        assert len(server.requests_to("/pdf/")) == n_pdf
        assert again["downloaded"] == 0 and again["already_present"] == 2
        server.papers.append(paper("2501.00003v1"))
        third = stage.main(cfg)
    assert third["downloaded"] == 1 and third["already_present"] == 2
    assert len(read_metadata(cfg)) == 3


def test_rerun_replaces_a_corrupted_pdf(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
        target = cfg.output_dir / "pdfs" / "2501.00001v1.pdf"
        target.write_bytes(PDF[:100])
        summary = stage.main(cfg)
    assert summary["downloaded"] == 1 and target.read_bytes() == PDF


def test_duplicate_results_are_downloaded_once(tmp_path):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
        assert len(server.requests_to("/pdf/2501.00001v1")) == 1
    assert summary["results"] == 2 and len(read_metadata(cfg)) == 2


def test_requests_are_spaced_by_the_delay(tmp_path):
    with ArxivStandIn([paper(f"2501.0000{i}v1") for i in range(1, 4)]) as server:
        stage.main(config(server, tmp_path, delay_seconds=0.3, page_size=2))
        times = [r.at for r in server.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) == 5  # two API pages, three PDFs
    assert min(gaps) >= 0.29


def test_unreachable_api_is_one_clear_error(tmp_path):
    cfg = stage.Config(base_url="http://127.0.0.1:9/api/query", output_dir=tmp_path, delay_seconds=0,
                       retries=0, timeout=2)
    with pytest.raises(SystemExit, match="arXiv search failed"):
        stage.main(cfg)


def test_query_combines_keywords_categories_and_dates():
    cfg = stage.Config(categories=("cs.CY", "eess.SY"), date_from="2020-01-01", date_to="2024-12-31")
    assert stage.build_query(cfg) == (
        "((all:digitalisation OR all:digitalization) AND all:maritime) AND (cat:cs.CY OR cat:eess.SY) "
        "AND submittedDate:[202001010000 TO 202412312359]"
    )


def test_complete_pdf_check():
    assert stage.is_complete_pdf(PDF)
    assert not stage.is_complete_pdf(PDF[:-10])
    assert not stage.is_complete_pdf(b"<!DOCTYPE html><html>%%EOF</html>")
