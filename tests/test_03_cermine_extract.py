"""Stage 03: the builtin backend on PDFs with known content, CERMINE's subprocess path, GROBID over HTTP."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from demo.build_corpus import expected_citations
from demo.standins import CORPUS_DIR, GrobidStandIn
from helpers import REPO, load_stage

stage = load_stage("03")
builtin = stage.builtin_backend
FIXTURES = REPO / "tests" / "fixtures"
DEMO_PDFS = sorted((CORPUS_DIR / "pdfs").glob("*.pdf"))


def found_citations(xml: bytes) -> tuple[list[list[str]], dict[str, etree._Element]]:
    """Each xref's cited titles in document order, and the references by id."""
    root = etree.fromstring(xml)
    refs = {r.get("id"): r for r in root.iter("ref")}
    groups = []
    for x in root.iter("xref"):
        groups.append([refs[rid].findtext(".//article-title") for rid in x.get("rid").split()])
    return groups, refs


def titles_match(found: list[list[str]], expected: list[list[str]]) -> int:
    """How many expected citation groups were found, in order, with exactly the right references."""
    return sum(1 for f, e in zip(found, expected) if sorted(f) == sorted(e))


@pytest.mark.parametrize("pdf", DEMO_PDFS, ids=lambda p: p.stem)
def test_builtin_links_every_marker_of_the_linked_demo_pdfs_to_the_right_reference(pdf):
    xml, stats = builtin.convert(pdf)
    expected, works = expected_citations(pdf.stem)
    found, refs = found_citations(xml)
    assert stats["n_linked_by"] == "links"
    assert len(found) == len(expected)
    assert titles_match(found, expected) == len(expected)
    # every reference parsed with the right title and year
    by_title = {w["title"]: w for w in works}
    assert len(refs) == len(works)
    for ref in refs.values():
        title = ref.findtext(".//article-title")
        assert title in by_title, title
        assert ref.findtext(".//year") == str(by_title[title]["year"])


@pytest.mark.parametrize("name,paper", [("nolinks_numeric", "2513.00001v1"),
                                        ("nolinks_authoryear", "2513.00002v1"),
                                        ("nolinks_twocolumn", "2513.00003v2")])
def test_builtin_without_links_finds_markers_by_pattern(name, paper):
    xml, stats = builtin.convert(FIXTURES / "pdf" / f"{name}.pdf")
    expected, _ = expected_citations(paper)
    found, _ = found_citations(xml)
    assert stats["n_linked_by"] == "patterns"
    assert titles_match(found, expected) == len(expected)


def test_builtin_reads_the_same_xml_with_a_pdfium_that_cannot_name_a_characters_text_object(monkeypatch):
    """The per-character loop reads font size, matrix and weight once per text object (FPDFText_GetTextObject);
    with an older PDFium that lacks it, each character's are read on their own, and the XML is the same."""
    pdfs = [FIXTURES / "pdf" / "long_paper.pdf", FIXTURES / "pdf" / "nolinks_twocolumn.pdf", DEMO_PDFS[0]]
    expected = [builtin.convert(pdf)[0] for pdf in pdfs]
    monkeypatch.setattr(builtin, "_GET_TEXT_OBJECT", None)
    assert [builtin.convert(pdf)[0] for pdf in pdfs] == expected


def test_range_marker_is_expanded_to_every_reference_in_it():
    xml, _ = builtin.convert(CORPUS_DIR / "pdfs" / "2513.00003v2.pdf")
    root = etree.fromstring(xml)
    marker = next(x for x in root.iter("xref") if x.text == "6–8")
    assert marker.get("rid") == "ref6 ref7 ref8"
    # the brackets stay outside the xref, as in CERMINE's output
    before = marker.getprevious().tail if marker.getprevious() is not None else marker.getparent().text
    assert before.endswith("attack surface considerably [") and marker.tail.startswith("].")


def test_two_column_text_keeps_sentences_whole_and_rejoins_hyphenated_words():
    xml, _ = builtin.convert(CORPUS_DIR / "pdfs" / "2513.00003v2.pdf")
    text = " ".join("".join(p.itertext()) for p in etree.fromstring(xml).iter("p"))
    # "unau-thenticated" and "di-verge" were hyphenated at line ends in the PDF
    assert "Satellite navigation signals are weak and unauthenticated, so GNSS spoofing can silently move " \
           "a vessel’s reported position [3]." in text
    assert "diverge beyond a threshold" in text
    assert "\x02" not in text


def test_page_numbers_and_abstract_are_not_body_text():
    xml, _ = builtin.convert(CORPUS_DIR / "pdfs" / "2513.00001v1.pdf")
    root = etree.fromstring(xml)
    paragraphs = ["".join(p.itertext()) for p in root.iter("p")]
    assert not any(p.strip().isdigit() for p in paragraphs)
    assert not any("We review how digital twins" in p for p in paragraphs)
    assert [t.text for t in root.iter("title")] == [
        "Introduction", "Onboard sensing and performance monitoring", "Shore control and remote operation",
        "Conclusion"]


def test_reference_parts_are_tagged_like_cermine():
    xml, _ = builtin.convert(CORPUS_DIR / "pdfs" / "2513.00002v1.pdf")
    root = etree.fromstring(xml)
    olsen = next(r for r in root.iter("ref") if "Olsen" in "".join(r.itertext()))
    mc = olsen.find("mixed-citation")
    assert [s.findtext("surname") for s in mc.findall("string-name")] == ["Olsen", "Tran"]
    assert mc.findtext("source") == "Maritime Policy and Management Review"
    assert (mc.findtext("volume"), mc.findtext("issue"), mc.findtext("fpage"), mc.findtext("lpage")) == \
        ("46", "5", "610", "628")
    assert mc.find("pub-id[@pub-id-type='doi']").text == "10.5555/mdig.2019.0105"
    # the mixed-citation's text is the printed reference, unchanged
    assert "".join(mc.itertext()).startswith("H. Olsen and M. Tran. Port call optimisation")


@pytest.mark.parametrize("text,expected", [
    ("[3] A. Author and B. Writer. A study of ships. Journal of Ships, 12(3):1–10, 2019. arXiv:1901.00001v2.",
     {"title": "A study of ships", "year": "2019", "arxiv": "1901.00001v2", "source": "Journal of Ships"}),
    ("Smith, J., Lee, K. (2018). Ports and data. Maritime Review, 4, 5-9. https://doi.org/10.5555/ABC.1).",
     {"title": "Ports and data", "year": "2018", "doi": "10.5555/ABC.1"}),
    ("A. Weintrit. Electronic Chart Display and Information Systems. Sample Nautical Publishers, 2005.",
     {"title": "Electronic Chart Display and Information Systems", "year": "2005"}),
])
def test_parse_reference_layouts(text, expected):
    fields = builtin.parse_reference(text)
    got = {k: text[slice(*fields[k])] for k in expected if k in fields}
    assert got == expected


def test_marker_patterns_cover_numeric_groups_ranges_and_author_year():
    refs = [builtin.Reference(raw="", label=f"[{i}]") for i in range(1, 6)]
    assert [m[2] for m in builtin.find_markers("as in [1-3] and [2, 5].", refs)] == [[0, 1, 2], [1, 4]]
    ay = [builtin.Reference(raw="", fields={"first_surname": "Smith", "year_text": "2020"}),
          builtin.Reference(raw="", fields={"first_surname": "Lee", "year_text": "2019"})]
    marks = builtin.find_markers("Shown before (Smith et al., 2020; Lee, 2019), and by Lee (2019).", ay)
    assert [m[2] for m in marks] == [[0, 1], [1]]


# --------------------------------------------------------------------------- the stage script

def run(tmp_path, pdfs: list[Path], **kw):
    src = tmp_path / "in" / "pdfs"
    src.mkdir(parents=True, exist_ok=True)
    for pdf in pdfs:
        shutil.copyfile(pdf, src / pdf.name)
    cfg = stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", **{"workers": 2, **kw})
    return cfg, stage.main(cfg)


def read_log(cfg) -> dict[str, dict]:
    with open(cfg.output_dir / "extraction_log.csv", newline="", encoding="utf-8-sig") as fh:
        return {r["paper_id"]: r for r in csv.DictReader(fh)}


def test_bad_pdfs_are_logged_and_the_batch_goes_on(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.pdf").write_bytes(b"")
    (bad / "html.pdf").write_bytes(b"<!DOCTYPE html><html>rate limited</html>")
    (bad / "corrupt.pdf").write_bytes(DEMO_PDFS[0].read_bytes()[:3000])
    import pypdf  # only to make an encrypted PDF

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(DEMO_PDFS[-1]))
    writer.encrypt("secret")
    with open(bad / "encrypted.pdf", "wb") as fh:
        writer.write(fh)
    cfg, summary = run(tmp_path, [DEMO_PDFS[0], FIXTURES / "pdf" / "no_references.pdf", *bad.iterdir()],
                       backend="builtin")
    log = read_log(cfg)
    assert log["2513.00001v1"]["status"] == "ok" and log["2513.00001v1"]["n_citations"] == "13"
    # a paper with no references gives stage 04 nothing: "empty", not "ok" (issue 11 item 5)
    assert log["no_references"]["status"] == "empty" and log["no_references"]["n_references"] == "0"
    assert log["empty"]["error"] == "empty file"
    assert log["html"]["error"].startswith("not a PDF")
    assert log["corrupt"]["status"] == "failed" and "corrupt" in log["corrupt"]["error"]
    assert log["encrypted"]["error"] == "encrypted PDF (needs a password)"
    assert summary["by_status"] == {"ok": 1, "empty": 1, "failed": 4}
    assert sorted(p.name for p in cfg.output_dir.glob("*.cermxml")) == ["2513.00001v1.cermxml", "no_references.cermxml"]


def test_rerun_converts_only_new_or_changed_pdfs(tmp_path):
    cfg, first = run(tmp_path, DEMO_PDFS[:2], backend="builtin")
    assert first["converted"] == 2
    again = stage.main(cfg)
    assert again["converted"] == 0 and again["unchanged"] == 2
    assert read_log(cfg)["2513.00001v1"]["n_citations"] == "13"
    shutil.copyfile(DEMO_PDFS[2], cfg.input_dir / "pdfs" / DEMO_PDFS[2].name)      # a new paper
    shutil.copyfile(DEMO_PDFS[3], cfg.input_dir / "pdfs" / DEMO_PDFS[0].name)      # a changed one
    third = stage.main(cfg)
    assert third["converted"] == 2 and third["unchanged"] == 1
    forced = stage.main(stage.Config(**{**cfg.__dict__, "force": True}))
    assert forced["converted"] == 3


def test_outputs_of_removed_pdfs_are_dropped(tmp_path):
    cfg, _ = run(tmp_path, DEMO_PDFS[:2], backend="builtin")
    (cfg.input_dir / "pdfs" / DEMO_PDFS[1].name).unlink()
    stage.main(cfg)
    assert [p.name for p in cfg.output_dir.glob("*.cermxml")] == [f"{DEMO_PDFS[0].stem}.cermxml"]


def test_missing_input_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run stage 02 first"):
        stage.main(stage.Config(input_dir=tmp_path / "nope", output_dir=tmp_path / "out"))


# --------------------------------------------------------------------------- CERMINE

def test_cermine_hang_and_crash_do_not_take_the_batch_down(tmp_path, cermine_classes):
    pdfs = tmp_path / "named"
    pdfs.mkdir()
    for name in ["a_ok", "b_crash", "c_ok", "d_hang", "e_broken", "f_ok"]:
        shutil.copyfile(DEMO_PDFS[0], pdfs / f"{name}.pdf")
    cfg, summary = run(tmp_path, sorted(pdfs.iterdir()), backend="cermine", cermine_jar=cermine_classes,
                       timeout=2, jvm_startup_seconds=4, cermine_batch=10)
    log = read_log(cfg)
    assert {k for k, v in log.items() if v["status"] == "ok"} == {"a_ok", "c_ok", "f_ok"}
    assert "exited with code 3" in log["b_crash"]["error"]
    assert "timed out" in log["d_hang"]["error"]
    assert log["e_broken"]["error"] == "CERMINE wrote no output"
    assert log["a_ok"]["n_references"] == "1" and log["a_ok"]["n_citations"] == "1"
    xml = (cfg.output_dir / "a_ok.cermxml").read_bytes()
    assert stage.stamped_hash(cfg.output_dir / "a_ok.cermxml") == stage.pu.sha256_file(DEMO_PDFS[0])
    assert etree.fromstring(xml).findtext(".//article-title") == "a_ok"


def test_auto_picks_cermine_when_the_jar_is_there(tmp_path, cermine_classes):
    _, summary = run(tmp_path, DEMO_PDFS[:1], backend="auto", cermine_jar=cermine_classes)
    assert summary["backend"] == "cermine"


def test_cermine_without_jar_says_where_to_get_it(tmp_path):
    with pytest.raises(SystemExit, match="cermine-impl-1.13-jar-with-dependencies.jar.*--cermine-jar"):
        run(tmp_path, DEMO_PDFS[:1], backend="cermine", cermine_jar=tmp_path / "missing.jar")


# --------------------------------------------------------------------------- GROBID

def test_grobid_posts_each_pdf_and_keeps_the_tei(tmp_path):
    tei = (FIXTURES / "grobid" / "sample.tei.xml").read_bytes()
    with GrobidStandIn(tei) as grobid:
        grobid.fail_next("/api/processFulltextDocument", 500)
        cfg, summary = run(tmp_path, DEMO_PDFS[:3], backend="grobid", base_url=grobid.url, workers=1)
        posts = grobid.requests_to("/api/processFulltextDocument")
    assert len(posts) == 3 and b"includeRawCitations" in posts[0].body
    log = read_log(cfg)
    assert [r["status"] for r in log.values()].count("ok") == 2
    failed = next(r for r in log.values() if r["status"] == "failed")
    assert failed["error"] == "GROBID answered HTTP 500"
    ok = next(r for r in log.values() if r["status"] == "ok")
    assert (ok["n_references"], ok["n_citations"]) == ("6", "7")  # 7 linked markers, one in a figure caption
    assert len(list(cfg.output_dir.glob("*.tei.xml"))) == 2


def test_grobid_busy_503_is_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(stage.time, "sleep", lambda s: None)
    tei = (FIXTURES / "grobid" / "sample.tei.xml").read_bytes()
    with GrobidStandIn(tei) as grobid:
        grobid.fail_next("/api/processFulltextDocument", 503, 503)
        _, summary = run(tmp_path, DEMO_PDFS[:1], backend="grobid", base_url=grobid.url)
    assert summary["by_status"] == {"ok": 1}


def test_grobid_down_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="GROBID server not reachable"):
        run(tmp_path, DEMO_PDFS[:2], backend="grobid", base_url="http://127.0.0.1:9")
