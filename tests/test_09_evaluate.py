"""Stage 09: metrics on hand-made cases, the DOI trie on an untrained model, retrieval, the whole script."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from demo.tiny_model import build_tiny_model
from helpers import load_stage

stage = load_stage("09")
KNOWN = {"10.5555/a.1", "10.5555/b.2", "10.5555/c.3"}


# --------------------------------------------------------------------------- metric functions

def test_extract_dois_normalises_urls_case_and_punctuation_and_drops_duplicates():
    answer = "See https://doi.org/10.5555/A.1.\ndoi:10.5555/b.2, and 10.5555/a.1 again (10.5555/C.3)"
    assert stage.extract_dois(answer) == ["10.5555/a.1", "10.5555/b.2", "10.5555/c.3"]
    assert stage.extract_dois("") == []
    assert stage.extract_dois("I cannot help with that.") == []


def test_scores_on_known_cases():
    s = stage.example_scores(["10.5555/a.1", "10.5555/X.9"], ["10.5555/A.1", "10.5555/b.2"], KNOWN, k=5)
    assert (s["tp"], s["precision"], s["recall"], s["hit1"], s["exact"]) == (1, 0.5, 0.5, 1.0, 0.0)
    assert (s["n_well_formed"], s["n_in_corpus"], s["n_hallucinated"]) == (2, 1, 1)
    exact = stage.example_scores(["https://doi.org/10.5555/B.2", "10.5555/a.1"], ["10.5555/a.1", "10.5555/b.2"],
                                 KNOWN, k=5)
    assert exact["exact"] == 1.0 and exact["precision"] == 1.0 and exact["hit1"] == 1.0
    empty = stage.example_scores([], ["10.5555/a.1"], KNOWN, k=5)
    assert (empty["precision"], empty["recall"], empty["hit1"], empty["n_pred"]) == (0.0, 0.0, 0.0, 0)
    malformed = stage.example_scores(["10.55/x"], ["10.5555/a.1"], KNOWN, k=5)
    assert malformed["n_well_formed"] == 0 and malformed["n_hallucinated"] == 0
    late = stage.example_scores(["10.5555/x.1", "10.5555/x.2", "10.5555/a.1"], ["10.5555/a.1"], KNOWN, k=2)
    assert late["hit1"] == 0.0 and late["hitk"] == 0.0


def test_aggregate_is_micro_averaged():
    rows = [stage.example_scores(["10.5555/a.1"], ["10.5555/a.1"], KNOWN, 5),
            stage.example_scores(["10.5555/z.1", "10.5555/z.2", "10.5555/z.3"], ["10.5555/b.2"], KNOWN, 5)]
    agg = stage.aggregate(rows)
    assert agg["precision"] == pytest.approx(1 / 4) and agg["recall"] == pytest.approx(1 / 2)
    assert agg["hallucination_rate"] == pytest.approx(3 / 4) and agg["hit@1"] == 0.5
    lo, hi = stage.bootstrap_ci(rows, "precision", 200, 0)
    assert 0.0 <= lo <= agg["precision"] <= hi <= 1.0


# --------------------------------------------------------------------------- constrained decoding

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_trie_allows_only_known_dois_even_from_an_untrained_model(tiny):
    cfg = stage.Config(max_new_tokens=60, batch_size=2)
    gen = stage.Generator(str(tiny), None, cfg, logging.getLogger())
    allowed = ["10.5555/mdig.2020.0102", "10.5555/mdig.2019.0105", "10.48550/arxiv.2213.04417"]
    trie = stage.DoiTrie(allowed, gen.tokenizer, max_dois=3)
    prompts = [[{"role": "system", "content": "Answer with DOIs."}, {"role": "user", "content": q}]
               for q in ("Studies on digital twins?", "Work on port calls?", "Anything on AIS anomalies?")]
    free = gen.generate(prompts, None, "free")
    constrained = gen.generate(prompts, trie, "constrained")
    for answer in constrained:
        dois = [line for line in answer.split("\n") if line]
        assert dois and all(d in allowed for d in dois), answer
    # the same untrained model writes no usable DOI when free
    assert not any(d in allowed for a in free for d in stage.extract_dois(a))


def test_trie_state_machine(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny))
    trie = stage.DoiTrie(["10.5555/a.1", "10.5555/ab.2"], tok, max_dois=2)
    first = tok.encode("10.5555/a.1", add_special_tokens=False)
    assert trie.allowed([])  # the first token of some DOI
    after_one = trie.allowed(first)
    assert tok.eos_token_id in after_one and trie.sep[0] in after_one
    second = first + trie.sep + tok.encode("10.5555/ab.2", add_special_tokens=False)
    assert trie.allowed(second) == [tok.eos_token_id]  # max_dois reached: only the end


# --------------------------------------------------------------------------- retrieval baselines

def retrieval_data():
    topics = {"digital twins of ship engines": "10.5555/twin.1", "GNSS spoofing at sea": "10.5555/gnss.2",
              "port call optimisation with arrival times": "10.5555/port.3", "ballast water treatment": "10.5555/bw.4"}
    train = [{"request": f"Could you point me to studies on {t}?", "dois": [d]} for t, d in topics.items()]
    train += [{"request": f"I need references about {t} in practice.", "dois": [d]} for t, d in topics.items()]
    test = [{"request": "Which papers discuss GNSS spoofing against merchant ships?", "dois": ["10.5555/gnss.2"]},
            {"request": "Looking for work on optimising port calls using arrival times.", "dois": ["10.5555/port.3"]}]
    return train, test


def test_bm25_and_embedding_find_the_right_neighbours():
    train, test = retrieval_data()
    cfg = stage.Config(neighbours=1, k=3)
    assert stage.bm25_predictions(train, test, cfg) == [["10.5555/gnss.2"], ["10.5555/port.3"]]
    assert stage.embedding_predictions(train, test, cfg) == [["10.5555/gnss.2"], ["10.5555/port.3"]]


# --------------------------------------------------------------------------- the script

def write_split(path, examples):
    path.write_text("".join(json.dumps({
        "prompt": [{"role": "system", "content": "Answer with DOIs."}, {"role": "user", "content": ex["request"]}],
        "completion": [{"role": "assistant", "content": "\n".join(ex["dois"])}], "dois": ex["dois"]}) + "\n"
        for ex in examples))


def test_retrieval_only_run_writes_every_output(tmp_path):
    train, test = retrieval_data()
    d = tmp_path / "qa"
    d.mkdir()
    write_split(d / "train.jsonl", train)
    write_split(d / "test.jsonl", test)
    cfg = stage.Config(input_dir=d, output_dir=tmp_path / "out", systems=("bm25", "embedding"), neighbours=1,
                       references_csv=tmp_path / "none.csv", bootstrap=100)
    metrics = stage.main(cfg)
    assert metrics["results"]["bm25"]["all"]["f1"] == 1.0
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"report.md", "metrics.json", "predictions.csv", "metrics.png"}
    preds = pd.read_csv(out / "predictions.csv")
    assert list(preds.columns[:3]) == ["request", "gold", "gold_seen_in_train"]
    assert "bm25_answer" in preds and "embedding_f1" in preds
    assert "| bm25 |" in (out / "report.md").read_text()


def test_missing_test_split_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run stage 07 first"):
        stage.main(stage.Config(input_dir=tmp_path, output_dir=tmp_path / "out"))


def test_crossref_check_tells_real_dois_from_invented_ones(tmp_path):
    from demo.standins import CrossrefStandIn, crossref_record

    records = [crossref_record("10.5555/real.1", "A registered work on ships", 2020, [("Doe", "Jane")])]
    with CrossrefStandIn(records) as crossref:
        cfg = stage.Config(base_url=crossref.url, crossref_cache=tmp_path / "cache.sqlite")
        found = stage.crossref_exists({"10.5555/real.1", "10.5555/invented.9"}, cfg, logging.getLogger())
        assert found == {"10.5555/real.1": True, "10.5555/invented.9": False}
        n = len(crossref.requests)
        stage.crossref_exists({"10.5555/real.1"}, cfg, logging.getLogger())
        assert len(crossref.requests) == n  # answered from stage 06's cache


def test_a_model_that_cannot_be_loaded_skips_generation_but_not_retrieval(tmp_path):
    train, test = retrieval_data()
    d = tmp_path / "qa"
    d.mkdir()
    write_split(d / "train.jsonl", train)
    write_split(d / "test.jsonl", test)
    cfg = stage.Config(input_dir=d, output_dir=tmp_path / "out", systems=("base", "bm25"),
                       model=str(tmp_path / "no-such-model"), references_csv=tmp_path / "none.csv", bootstrap=50)
    metrics = stage.main(cfg)
    assert "bm25" in metrics["results"] and "base" not in metrics["results"]
    assert "cannot load model" in metrics["settings"]["skipped_systems"]["base"]
    assert "**Not evaluated:** base" in (tmp_path / "out" / "report.md").read_text()
