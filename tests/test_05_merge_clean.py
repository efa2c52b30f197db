"""Stage 05: merging per-paper CSVs, each cleaning rule, cross-paper deduplication of references."""
from __future__ import annotations

import csv
import json

import pandas as pd
import pytest

from helpers import load_stage

stage = load_stage("05")


def write(path, columns, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})


def sentence(pid, n, clean, keys, text=None):
    return {"paper_id": pid, "sentence_id": f"{pid}:{n}", "section": "Intro", "sentence": text or clean + " [1]",
            "sentence_clean": clean, "ref_keys": keys}


def ref(pid, key, title, year="2020", doi="", raw=None, arxiv=""):
    return {"paper_id": pid, "ref_key": key, "title": title, "year": year, "authors": "Taylor, N", "venue": "J",
            "doi": doi, "arxiv_id": arxiv, "raw": raw if raw is not None else f"N. Taylor. {title}. J, {year}."}


LONG = "Digital twins of propulsion systems are now used for condition monitoring on ships"


@pytest.fixture()
def corpus(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(d / "p1.sentences.csv", stage.SENTENCE_IN, [
        sentence("p1", 1, LONG + ".", "ref1|ref2"),
        sentence("p1", 2, "Too short here.", "ref1"),
        sentence("p1", 3, " ".join(["word"] * 90) + ".", "ref1"),
        sentence("p1", 4, "The model x = 3.2 + 4.1 * y^2 / (z - 1) <= 7 holds for 12 345 of 67 890 cases.", "ref2"),
        sentence("p1", 5, "Remote pilotage needs a data link with low latency and high reliability.", "ref3"),
        sentence("p1", 6, "This sentence cites a reference key that the paper does not have.", "ref9"),
    ])
    write(d / "p1.references.csv", stage.REFERENCE_IN, [
        ref("p1", "ref1", "Digital twins of ship propulsion systems for condition monitoring",
            doi="10.5555/mdig.2020.0102"),
        ref("p1", "ref2", "Ship performance monitoring with onboard sensor networks", year="2021"),
        ref("p1", "ref3", "", raw=""),
    ])
    write(d / "p2.sentences.csv", stage.SENTENCE_IN, [
        sentence("p2", 1, LONG + ".", "ref7|ref8"),                        # same text, same works: duplicate
        sentence("p2", 2, "Die Digitalisierung der Schifffahrt verändert die Häfen grundlegend und schnell.", "ref8"),
        sentence("p2", 3, "Sensor networks on board estimate hull fouling and engine efficiency ﬁnely.", "ref8"),
    ])
    write(d / "p2.references.csv", stage.REFERENCE_IN, [
        # the same two works as p1's ref1 and ref2, printed differently
        ref("p2", "ref7", "Digital Twins of Ship Propulsion Systems for Condition-Monitoring"),
        ref("p2", "ref8", "Ship performance monitoring with on-board sensor networks.", year="2021"),
    ])
    return d


def run(tmp_path, src, **kw):
    cfg = stage.Config(input_dir=src, output_dir=tmp_path / "out", **kw)
    report = stage.main(cfg)
    s = pd.read_csv(cfg.output_dir / "sentences.csv", dtype=str, keep_default_na=False)
    r = pd.read_csv(cfg.output_dir / "references.csv", dtype=str, keep_default_na=False)
    return report, s, r


def test_each_rule_drops_and_counts(tmp_path, corpus):
    report, s, _ = run(tmp_path, corpus, language_check=True)
    assert report["sentences"]["in"] == 9
    assert report["sentences"]["dropped"] == {
        "no_reference": 1, "too_short": 1, "too_long": 1, "references_without_title_or_raw": 1,
        "mostly_symbols_or_math": 1, "not_en": 1, "duplicate": 1}
    assert report["sentences"]["out"] == 2
    assert sorted(s.sentence_id) == ["p1:1", "p2:3"]
    assert json.loads((tmp_path / "out" / "clean_report.json").read_text()) == report


def test_rules_can_be_switched_off(tmp_path, corpus):
    report, s, _ = run(tmp_path, corpus, min_words=0, max_words=0, drop_without_reference_info=False,
                       drop_duplicates=False, max_symbol_share=1.0)
    assert report["sentences"]["dropped"] == {"no_reference": 1}
    assert len(s) == 8


def test_same_work_in_two_papers_gets_one_ref_uid(tmp_path, corpus):
    report, s, r = run(tmp_path, corpus)
    uids = dict(zip(s.sentence_id, s.ref_uids))
    twin, monitoring = uids["p1:1"].split("|")
    assert uids["p2:3"] == monitoring                      # "on-board" vs "onboard", trailing period
    by_uid = r.set_index("ref_uid")
    assert by_uid.loc[twin, "doi"] == "10.5555/mdig.2020.0102"   # the DOI'd citation and the bare one merged
    assert by_uid.loc[twin, "n_papers"] == "2"
    assert set(by_uid.loc[twin, "cited_as"].split("|")) == {"p1:ref1", "p2:ref7"}
    assert report["references"]["in"] == 5 and report["references"]["distinct_works"] == 3
    assert report["references"]["lookups_saved_by_dedup"] == 2


def test_same_title_different_year_stays_two_works(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write(d / "a.sentences.csv", stage.SENTENCE_IN, [sentence("a", 1, LONG + ".", "r1|r2")])
    write(d / "a.references.csv", stage.REFERENCE_IN, [ref("a", "r1", "Annual port statistics", year="2019"),
                                                       ref("a", "r2", "Annual port statistics", year="2020")])
    _, s, r = run(tmp_path, d)
    assert len(r) == 2 and len(s.ref_uids.iloc[0].split("|")) == 2


def test_unicode_is_normalised(tmp_path, corpus):
    _, s, _ = run(tmp_path, corpus)
    assert s.set_index("sentence_id").loc["p2:3", "sentence_clean"].endswith("efficiency finely.")


def test_uncited_references_are_dropped_and_counted(tmp_path, corpus):
    report, _, r = run(tmp_path, corpus)
    assert report["references"]["dropped"] == {"not_cited_by_a_kept_sentence": 1}
    assert len(r) == 2


def test_missing_column_and_bad_rows_are_named(tmp_path, corpus):
    write(corpus / "p3.sentences.csv", ["paper_id", "sentence"], [{"paper_id": "p3", "sentence": "x"}])
    (corpus / "p4.sentences.csv").write_text(
        "paper_id,sentence_id,section,sentence,sentence_clean,ref_keys\n"
        "p4,p4:1,Intro,fine,fine sentence with enough words here,ref1\n"
        "p4,p4:2,Intro,a,b,c,d,e,f,g,h\n", encoding="utf-8")
    report, _, _ = run(tmp_path, corpus)
    assert "p3.sentences.csv: missing column(s) sentence_id, section, sentence_clean, ref_keys; file skipped" \
        in report["warnings"]
    assert any(w.startswith("p4.sentences.csv: malformed row skipped") for w in report["warnings"])


def test_no_input_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run stage 04 first"):
        stage.main(stage.Config(input_dir=tmp_path, output_dir=tmp_path / "out"))


def test_raw_only_references_of_two_papers_merge_to_one_work_each(tmp_path):
    """ResNet, BERT and the Transformer, printed in two styles with no parsed title (issue 11, item 14)."""
    d = tmp_path / "in"
    d.mkdir()
    raws = {
        "a": ["K. He, X. Zhang, S. Ren, and J. Sun. Deep residual learning for image recognition. In CVPR, "
              "pages 770-778, 2016.",
              "J. Devlin, M.-W. Chang, K. Lee, and K. Toutanova. BERT: Pre-training of deep bidirectional "
              "transformers for language understanding. In NAACL-HLT, pages 4171-4186, 2019.",
              "A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, L. Kaiser, and I. Polosukhin. "
              "Attention is all you need. In Advances in Neural Information Processing Systems, pages 5998-6008, 2017."],
        "b": ["He, K., Zhang, X., Ren, S., Sun, J.: Deep residual learning for image recognition. In: Proceedings of "
              "the IEEE Conference on Computer Vision and Pattern Recognition, pp. 770-778 (2016)",
              "Devlin J, Chang MW, Lee K, Toutanova K (2019) BERT: pre-training of deep bidirectional transformers "
              "for language understanding. In: Proc. NAACL, pp 4171-4186",
              "Vaswani, A., Shazeer, N., Parmar, N., Uszkoreit, J., Jones, L., Gomez, A.N., Kaiser, L., Polosukhin, "
              "I.: Attention is all you need. In: NIPS (2017)"]}
    for pid, texts in raws.items():
        write(d / f"{pid}.sentences.csv", stage.SENTENCE_IN, [sentence(pid, 1, LONG + ".", "r1|r2|r3")])
        write(d / f"{pid}.references.csv", stage.REFERENCE_IN,
              [{"paper_id": pid, "ref_key": f"r{i}", "raw": raw} for i, raw in enumerate(texts, start=1)])
    report, s, r = run(tmp_path, d, drop_duplicates=False)
    uids = s.set_index("paper_id").ref_uids
    assert uids["a"] == uids["b"]
    assert report["references"]["distinct_works"] == 3 and (r.n_papers == "2").all()


def test_stale_csv_of_a_paper_stage_04_no_longer_lists_is_not_merged(tmp_path, corpus):
    (corpus / ".manifest.json").write_text(json.dumps({"p1": {"sha256": "x", "sentences": 6, "references": 3}}))
    report, s, _ = run(tmp_path, corpus)
    assert set(s.paper_id) == {"p1"}
    assert "p2.sentences.csv: not in stage 04's manifest (stale from an earlier run); skipped" in report["warnings"]


def test_ftfy_runs_only_on_cells_that_look_broken(tmp_path, corpus, monkeypatch):
    calls = []
    real_fix = stage.ftfy.fix_text
    monkeypatch.setattr(stage.ftfy, "fix_text", lambda text, **kw: calls.append(text) or real_fix(text, **kw))
    assert stage.fix_text("The port of Tromsø – “Åland”") == "The port of Tromsø – “Åland”"
    assert stage.fix_text("Caf\u00c3\u00a9 data and \ufb01ne tuning") == "Café data and fine tuning"
    assert stage.fix_text("plain ASCII text  here") == "plain ASCII text here"
    assert calls == ["Caf\u00c3\u00a9 data and \ufb01ne tuning"]


def test_run_json_is_written(tmp_path, corpus):
    run(tmp_path, corpus)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["stage"] == "05_merge_clean" and record["summary"]["sentences"]["in"] == 9
