"""Stage 01 against a loopback server that speaks arXiv's Atom API, serves PDFs and e-prints,
and answers OAI-PMH GetRecord (the licence)."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import sys
import tarfile

import pypdfium2 as pdfium
import pytest

from demo.standins import ArxivPaper, ArxivStandIn, eprint_gz, eprint_tar_gz, load_demo_papers
from helpers import REPO, SCRIPTS, load_stage

stage = load_stage("01")


def make_pdf(pages: int = 1) -> bytes:
    """A small PDF that PDFium opens (what arXiv serves, minus the content)."""
    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(595, 842)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


PDF = make_pdf()
TEX = "\\documentclass{article}\n\\begin{document}\nShips \\cite{a}.\n\\bibliography{refs}\n\\end{document}\n"
TAR = eprint_tar_gz({"main.tex": TEX, "main.bbl": "\\begin{thebibliography}{1}\\bibitem{a} A.\\end{thebibliography}"})


def paper(arxiv_id: str, title: str = "Maritime digitalisation study", eprint: bytes = TAR, **kw) -> ArxivPaper:
    return ArxivPaper(arxiv_id=arxiv_id, title=title, authors=["Ada Lovelace", "Alan Turing"],
                      summary="About digitalisation\n  in the maritime sector.", pdf=PDF, eprint=eprint,
                      license="http://creativecommons.org/licenses/by/4.0/", **kw)


def config(server: ArxivStandIn, tmp_path, **kw):
    defaults = dict(base_url=server.url + "/api/query", output_dir=tmp_path / "out", delay_seconds=0.0,
                    backoff_seconds=0.0, retries=2, timeout=5.0, max_results=50)
    defaults.update(kw)
    return stage.Config(**defaults)


def read_metadata(cfg) -> list[dict]:
    with open(cfg.output_dir / "metadata.csv", newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_normal_run_downloads_pdfs_and_eprints_and_writes_metadata(tmp_path):
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
    assert first["abstract"].startswith("We review how digital twins")
    assert first["abs_url"] == "http://arxiv.org/abs/2513.00001v1"
    assert first["categories"] == "cs.CY|eess.SY" and first["primary_category"] == "cs.CY"
    assert first["published"] == "2025-03-04"
    assert first["license"] == "http://creativecommons.org/licenses/by/4.0/"
    assert first["query"] == "((all:digitalisation OR all:digitalization) AND all:maritime)"
    for r in rows:
        served = next(p for p in papers if p.arxiv_id == r["arxiv_id"])
        assert (cfg.output_dir / r["pdf_file"]).read_bytes() == served.pdf
        assert (cfg.output_dir / r["source_file"]).read_bytes() == served.eprint  # kept as downloaded


def test_each_eprint_shape_is_recognised_and_named_for_it(tmp_path):
    """The demo corpus serves three tars, one single gzipped .tex and one PDF-only paper."""
    with ArxivStandIn(load_demo_papers()) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
    by_id = {r["paper_id"]: (r["source_format"], r["source_file"]) for r in read_metadata(cfg)}
    assert by_id == {
        "2513.00001v1": ("tar", "sources/2513.00001v1.tar.gz"),
        "2513.00002v1": ("tar", "sources/2513.00002v1.tar.gz"),
        "2513.00003v2": ("tar", "sources/2513.00003v2.tar.gz"),
        "2513.00004v1": ("pdf-only", "sources/2513.00004v1.pdf"),
        "physics_0613001v1": ("tex", "sources/physics_0613001v1.gz"),
    }
    assert summary["sources"]["tar"] == 3 and summary["sources"]["missing"] == 0
    with tarfile.open(cfg.output_dir / "sources/2513.00001v1.tar.gz") as tar:
        assert tar.getnames() == ["main.tex", "main.bbl"]  # the .bbl beside the .tex, as arXiv submissions ship it
        main_tex = tar.extractfile("main.tex").read()
    assert b"\\bibliography{" in main_tex and b"thebibliography" not in main_tex
    single = gzip.decompress((cfg.output_dir / "sources/physics_0613001v1.gz").read_bytes())
    assert single.startswith(b"\\documentclass") and b"\\begin{thebibliography}" in single


def test_paper_without_eprint_is_recorded_missing_and_kept(tmp_path):
    papers = [paper("2501.00001v1", eprint=b""), paper("2501.00002v1", eprint=eprint_gz(TEX))]
    with ArxivStandIn(papers) as server:
        cfg = config(server, tmp_path, retries=3)
        summary = stage.main(cfg)
        assert len(server.requests_to("/e-print/2501.00001v1")) == 1  # a 404 is not retried
    rows = {r["paper_id"]: r for r in read_metadata(cfg)}
    assert (rows["2501.00001v1"]["source_format"], rows["2501.00001v1"]["source_file"]) == ("missing", "")
    assert rows["2501.00001v1"]["pdf_file"] == "pdfs/2501.00001v1.pdf"
    assert rows["2501.00002v1"]["source_format"] == "tex"
    assert summary["source_failures"] == {"2501.00001v1": "HTTP 404"} and summary["downloaded"] == 2


def test_no_sources_downloads_pdfs_only(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path, sources=False)
        summary = stage.main(cfg)
        assert server.requests_to("/e-print/") == []
    assert summary["downloaded"] == 1 and summary["sources"] == "not requested"
    assert read_metadata(cfg)[0]["source_format"] == "missing"


def test_eprint_url_defaults_to_the_api_host_and_can_be_set():
    assert stage.service_url("https://export.arxiv.org/api/query", "/e-print") == "https://export.arxiv.org/e-print"
    assert stage.service_url("http://127.0.0.1:8123/api/query", "/oai2") == "http://127.0.0.1:8123/oai2"


def test_explicit_eprint_url_is_used(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server, ArxivStandIn([paper("2501.00001v1")]) as mirror:
        cfg = config(server, tmp_path, eprint_url=mirror.url + "/e-print/")
        stage.main(cfg)
        assert server.requests_to("/e-print/") == [] and len(mirror.requests_to("/e-print/2501.00001v1")) == 1


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
        oai = server.requests_to("/oai2")[0]
    rows = read_metadata(cfg)
    assert rows[0]["paper_id"] == "hep-th_9901001v1"
    assert rows[0]["arxiv_id"] == "hep-th/9901001v1"
    assert (cfg.output_dir / "pdfs" / "hep-th_9901001v1.pdf").is_file()
    assert (cfg.output_dir / "sources" / "hep-th_9901001v1.tar.gz").is_file()
    assert oai.query["identifier"] == ["oai:arXiv.org:hep-th/9901001"]  # OAI identifiers carry no version


def test_id_that_would_escape_the_output_folder_is_skipped(tmp_path):
    with ArxivStandIn([paper("../../evil"), paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
    assert summary["skipped"] == {"unsafe_id": 1}
    assert sorted(p.name for p in (cfg.output_dir / "pdfs").iterdir()) == ["2501.00001v1.pdf"]
    assert not list(tmp_path.glob("*.pdf")) and not list(tmp_path.glob("*.gz"))


def test_server_error_then_success_is_retried(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        server.fail_next("/api/query", 503)
        server.fail_next("/pdf/", 500, 502)
        server.fail_next("/e-print/", 503)
        summary = stage.main(config(server, tmp_path))
        assert len(server.requests_to("/api/query")) == 2
        assert len(server.requests_to("/pdf/")) == 3
        assert len(server.requests_to("/e-print/")) == 2
    assert summary["downloaded"] == 1 and summary["failed"] == 0 and summary["sources"]["downloaded"] == 1


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
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        server.fail_next("/pdf/2501.00001v1", 404)
        summary = stage.main(config(server, tmp_path, retries=3))
        assert len(server.requests_to("/pdf/2501.00001v1")) == 1
        assert server.requests_to("/e-print/2501.00001v1") == []  # no PDF, no paper: its source is not fetched
    assert summary["failures"] == {"2501.00001v1": "HTTP 404"}


def test_rerun_downloads_nothing_and_adds_new_results(tmp_path):
    papers = [paper("2501.00001v1"), paper("2501.00002v1", eprint=eprint_gz(TEX))]
    with ArxivStandIn(papers) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
        n_requests = len(server.requests)
        again = stage.main(cfg)
        assert len(server.requests) == n_requests + 1  # the search page, nothing else
        assert again["downloaded"] == 0 and again["already_present"] == 2
        assert again["sources"]["already_present"] == 2 and again["sources"]["downloaded"] == 0
        server.papers.append(paper("2501.00003v1"))
        third = stage.main(cfg)
    assert third["downloaded"] == 1 and third["already_present"] == 2
    rows = read_metadata(cfg)
    assert len(rows) == 3 and all(r["license"].startswith("http://creativecommons.org/") for r in rows)


def test_rerun_replaces_a_corrupted_pdf_and_source(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
        pdf = cfg.output_dir / "pdfs" / "2501.00001v1.pdf"
        source = cfg.output_dir / "sources" / "2501.00001v1.tar.gz"
        pdf.write_bytes(PDF[:100])
        source.write_bytes(TAR[:-20])
        summary = stage.main(cfg)
    assert summary["downloaded"] == 1 and pdf.read_bytes() == PDF
    assert summary["sources"]["downloaded"] == 1 and source.read_bytes() == TAR


def test_a_changed_eprint_format_replaces_the_old_file(tmp_path):
    with ArxivStandIn([paper("2501.00001v1", eprint=eprint_gz(TEX))]) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
        server.papers[0].eprint = TAR  # a new version of the submission came with a .bbl
        stage.main(cfg.__class__(**{**cfg.__dict__, "force": True}))
    assert sorted(p.name for p in (cfg.output_dir / "sources").iterdir()) == ["2501.00001v1.tar.gz"]
    assert read_metadata(cfg)[0]["source_format"] == "tar"


def test_duplicate_results_are_downloaded_once(tmp_path):
    with ArxivStandIn([paper("2501.00001v1"), paper("2501.00001v1"), paper("2501.00002v1")]) as server:
        cfg = config(server, tmp_path)
        summary = stage.main(cfg)
        assert len(server.requests_to("/pdf/2501.00001v1")) == 1
    assert summary["results"] == 2 and len(read_metadata(cfg)) == 2


def test_requests_are_spaced_by_the_delay(tmp_path):
    with ArxivStandIn([paper(f"2501.0000{i}v1") for i in range(1, 4)]) as server:
        stage.main(config(server, tmp_path, delay_seconds=0.1, page_size=2))
        times = [r.at for r in server.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) == 11  # two API pages; a PDF, an e-print and a licence look-up per paper
    assert min(gaps) >= 0.095


def test_unreachable_api_is_one_clear_error(tmp_path):
    cfg = stage.Config(base_url="http://127.0.0.1:9/api/query", output_dir=tmp_path, delay_seconds=0,
                       retries=0, timeout=2)
    with pytest.raises(SystemExit, match="arXiv search failed"):
        stage.main(cfg)


def test_query_that_matches_nothing_is_one_clear_error(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")], match_query=True) as server:
        with pytest.raises(SystemExit, match="arXiv returned no results"):
            stage.main(config(server, tmp_path, query="all:zeppelin"))


def test_query_combines_keywords_categories_and_dates():
    cfg = stage.Config(categories=("cs.CY", "eess.SY"), date_from="2020-01-01", date_to="2024-12-31")
    assert stage.build_query(cfg) == (
        "((all:digitalisation OR all:digitalization) AND all:maritime) AND (cat:cs.CY OR cat:eess.SY) "
        "AND submittedDate:[202001010000 TO 202412312359]"
    )


def test_query_and_categories_default_to_the_topic_file(tmp_path, monkeypatch):
    topic = tmp_path / "topic.toml"
    topic.write_text('[arxiv]\nquery = "all:icebreaker"\ncategories = ["physics.ao-ph"]\n', encoding="utf-8")
    monkeypatch.setenv("PIPELINE_TOPIC", str(topic))
    spec = importlib.util.spec_from_file_location("stage01_topic_probe", REPO / SCRIPTS["01"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.build_query(module.Config()) == "(all:icebreaker) AND (cat:physics.ao-ph)"
    finally:
        del sys.modules[spec.name]


def test_run_json_records_config_and_counts(tmp_path):
    with ArxivStandIn([paper("2501.00001v1")]) as server:
        cfg = config(server, tmp_path)
        stage.main(cfg)
    record = json.loads((cfg.output_dir / "run.json").read_text(encoding="utf-8"))
    assert record["stage"] == "01_arxiv_download"
    assert record["config"]["base_url"] == cfg.base_url
    assert record["summary"]["downloaded"] == 1


def test_pdf_check_opens_the_file():
    assert stage.check_pdf(make_pdf(pages=2)) == 2
    for bad in (PDF[:-10], b"<!DOCTYPE html><html>%%EOF</html>", b"%PDF-1.7\n" + b"garbage " * 500 + b"\n%%EOF\n"):
        with pytest.raises(ValueError, match="not a whole PDF"):
            stage.check_pdf(bad)
