"""Faults and hostile input for stages 04 and 05 (issue 19: items 3, 12, 13, 18)."""
from __future__ import annotations

import shutil
import time

import pandas as pd
import pytest

from helpers import REPO, load_stage

stage04 = load_stage("04")
stage05 = load_stage("05")
FIX = REPO / "tests" / "fixtures"
GOOD = FIX / "jats" / "cermine_style.cermxml"


def run04(src, out, **kw):
    return stage04.main(stage04.Config(input_dir=src, output_dir=out, **kw))


def test_paper_whose_xml_breaks_keeps_no_stale_csvs_and_stage_05_merges_none(tmp_path):
    src, out = tmp_path / "xml", tmp_path / "04"
    src.mkdir()
    shutil.copyfile(GOOD, src / "a.cermxml")
    shutil.copyfile(FIX / "grobid" / "sample.tei.xml", src / "b.tei.xml")
    run04(src, out)
    assert (out / "a.sentences.csv").exists()
    (src / "a.cermxml").write_text("<article><body><p>cut off here")
    summary = run04(src, out)
    assert summary["failed"]["a.cermxml"].startswith("malformed XML")
    assert not (out / "a.sentences.csv").exists() and not (out / "a.references.csv").exists()
    # a CSV left by anything else (an older stage 04) is not merged either
    shutil.copyfile(out / "b.sentences.csv", out / "zzz.sentences.csv")
    report = stage05.main(stage05.Config(input_dir=out, output_dir=tmp_path / "05"))
    merged = pd.read_csv(tmp_path / "05" / "sentences.csv", dtype=str, keep_default_na=False)
    assert set(merged.paper_id) == {"sample"} or set(merged.paper_id) == {"b"}
    assert any(w.startswith("zzz.sentences.csv: not in stage 04's manifest") for w in report["warnings"])


@pytest.mark.parametrize("declared", ["latin-1", "iso_8859_15", "iso8859_15", "latin_1"])
def test_xml_declaring_a_python_alias_of_its_encoding_is_read(tmp_path, declared):
    xml = GOOD.read_text(encoding="utf-8").replace("Remote pilotage", "Remote pilotage in Tromsø", 1)
    if xml.startswith("<?xml"):
        xml = xml.split("?>", 1)[1]
    src = tmp_path / "xml"
    src.mkdir()
    (src / "l.cermxml").write_bytes(f'<?xml version="1.0" encoding="{declared}"?>{xml}'.encode("latin-1"))
    summary = run04(src, tmp_path / "out")
    assert summary["converted"] == 1, summary["failed"]
    df = pd.read_csv(tmp_path / "out" / "l.sentences.csv", dtype=str)
    assert df.sentence.str.contains("Remote pilotage in Tromsø").any()


def test_unknown_encoding_is_a_reason_not_a_crash(tmp_path):
    src = tmp_path / "xml"
    src.mkdir()
    shutil.copyfile(GOOD, src / "good.cermxml")
    (src / "odd.cermxml").write_bytes(b'<?xml version="1.0" encoding="klingon-8"?><article/>')
    summary = run04(src, tmp_path / "out")
    assert summary["failed"]["odd.cermxml"] == "unknown encoding 'klingon-8' in the XML declaration"


def test_every_xml_failing_exits_non_zero_after_the_summary(tmp_path, capsys):
    src = tmp_path / "xml"
    src.mkdir()
    (src / "a.cermxml").write_text("<article><body>")
    (src / "b.cermxml").write_text("   ")
    with pytest.raises(SystemExit, match="all 2 input papers failed"):
        run04(src, tmp_path / "out")
    assert "failed.a.cermxml" in capsys.readouterr().out


def test_oversized_file_and_slow_paper_are_skipped_with_a_reason(tmp_path, capsys):
    src = tmp_path / "xml"
    src.mkdir()
    shutil.copyfile(GOOD, src / "a.cermxml")
    shutil.copyfile(FIX / "jats" / "empty_body.cermxml", src / "small.cermxml")
    summary = run04(src, tmp_path / "out", max_file_mb=0.002)
    assert "over the 0.002 MB limit (--max-file-mb)" in summary["failed"]["a.cermxml"]
    assert summary["converted"] == 1
    (src / "small.cermxml").unlink()
    with pytest.raises(SystemExit):
        run04(src, tmp_path / "out2", max_seconds_per_paper=0.0)
    assert "still unfinished after 0 s (--max-seconds-per-paper)" in capsys.readouterr().out


def big_paper(paragraph_text: str, repeat: int) -> str:
    refs = "".join(f'<ref id="ref{i}"><mixed-citation>{i}. A. Author. Title {i}. J, 2020.</mixed-citation></ref>'
                   for i in range(1, 9))
    body = " ".join(paragraph_text.replace("{i}", str(n % 8 + 1)) for n in range(repeat))
    return f"<article><body><sec><title>R</title><p>{body}</p></sec></body><back><ref-list>{refs}</ref-list></back></article>"


def test_time_grows_linearly_with_the_size_of_one_paragraph(tmp_path):
    sentence = ('Vessel data platforms improve berth planning at busy terminals [<xref ref-type="bibr" '
                'rid="ref{i}">{i}</xref>]. ')
    seconds = {}
    for n in (500, 2000):
        src = tmp_path / f"x{n}"
        src.mkdir()
        (src / "big.cermxml").write_text(big_paper(sentence, n))
        began = time.perf_counter()
        summary = run04(src, tmp_path / f"out{n}")
        seconds[n] = time.perf_counter() - began
        assert summary["sentences"] == n
    assert seconds[2000] < 8 * seconds[500], seconds  # 4x the text: quadratic code took about 16x


def test_truncated_gzip_dump_is_a_reason_and_the_records_before_it_are_kept(tmp_path):
    import gzip

    data = (FIX / "jsonl" / "unarxive_sample.jsonl").read_bytes()
    whole = gzip.compress(data + data.replace(b"2212.00001", b"2212.00002"))
    (tmp_path / "dump.jsonl.gz").write_bytes(whole[:len(whole) - 30])
    summary = run04(tmp_path / "dump.jsonl.gz", tmp_path / "out", input_format="unarxive")
    assert summary["converted"] >= 1
    assert any("cut short" in reason for reason in summary["failed"].values())
