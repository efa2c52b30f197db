"""Stage 09's numbers recomputed from predictions.csv and catalogue_used.csv by code written apart from
the stage's own: every mean in metrics.json and every cell of the report's main tables must agree."""
from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

import citation_tools as ct
import pipeline_utils as pu
from helpers import load_stage
from test_09_evaluate import write_corpus

stage = load_stage("09")

# what the "base" model writes for each of the 5 test requests, and whether it stopped by itself
CANNED = [("10.5555/gnss.1\n10.5555/made.up.9", True),
          ("I do not know.", True),
          ("See 10.55/x and 10.5555/AIS.5.", True),
          ("10.5555/slow.7\n10.5555/slow.7\n10.5555/twin.0", True),
          ("10.5555/port.2\n10.5555/crane.6\n10.5555/mdig.20", False)]  # cut by the limit: the last DOI is dropped


def fake_model(monkeypatch, answers):
    monkeypatch.setattr(ct, "load_model", lambda name, adapter=None, **kw: (object(), object()))
    monkeypatch.setattr(ct, "generate_free", lambda model, tok, prompts, *a, **kw: list(answers[:len(prompts)]))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    fake_model(mp, CANNED)
    root = write_corpus(tmp_path_factory.mktemp("independent"))
    try:
        stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out", catalogue_csv=root / "catalogue.csv",
                                systems=("chance", "popular", "bm25", "neighbours", "base"), model="canned",
                                k=10, bootstrap=100))
    finally:
        mp.undo()
    return root / "out"


# --------------------------------------------------------------------------- the independent metrics

def recall_at(ranked, gold, n):
    return len([d for d in ranked[:n] if d in gold]) / len(gold)


def reciprocal_rank(ranked, gold):
    for position, doi in enumerate(ranked, start=1):
        if doi in gold:
            return 1 / position
    return 0.0


def ndcg10(ranked, gold):
    gains = [1 / math.log2(position + 1) for position, doi in enumerate(ranked[:10], start=1) if doi in gold]
    best = [1 / math.log2(position + 1) for position in range(1, min(len(gold), 10) + 1)]
    return sum(gains) / sum(best)


def recompute(out):
    preds = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    used = pd.read_csv(out / "catalogue_used.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    in_setting = {s: {d for d, sets in zip(used["doi"], used["settings"]) if s in pu.split_list(sets)}
                  for s in ("library", "train-only")}
    numbers = {}
    for (setting, system), rows in preds.groupby(["setting", "system"]):
        groups = {}
        for group in ("total", "seen", "unseen"):
            per_metric = {"recall@1": [], "recall@5": [], "recall@10": [], "mrr": [], "ndcg@10": []}
            for _, row in rows.iterrows():
                gold, seen = set(pu.split_list(row["gold"])), set(pu.split_list(row["gold_seen"]))
                gold = {"total": gold, "seen": gold & seen, "unseen": gold - seen}[group]
                if not gold:
                    continue
                ranked = pu.split_list(row["dois"])
                for n in (1, 5, 10):
                    per_metric[f"recall@{n}"].append(recall_at(ranked, gold, n))
                per_metric["mrr"].append(reciprocal_rank(ranked, gold))
                per_metric["ndcg@10"].append(ndcg10(ranked, gold))
            groups[group] = {m: (sum(v) / len(v) if v else None) for m, v in per_metric.items()}
        answered = [d for cell in rows["dois"] for d in pu.split_list(cell)]
        well = [d for d in answered if re.fullmatch(r"10\.\d{4,9}/[-._;()/:a-z0-9]+", d, flags=re.I)]
        groups["free"] = {"answered": len(answered),
                          "well_formed": len(well) / len(answered) if answered else None,
                          "in_catalogue": (sum(d in in_setting[setting] for d in answered) / len(answered)
                                           if answered else None),
                          "hallucination": (sum(d not in in_setting["library"] for d in well) / len(answered)
                                            if answered else None)}
        numbers[(setting, system)] = groups
    return numbers


def test_independent_recomputation_equals_metrics_json(run):
    metrics = json.loads((run / "metrics.json").read_text())
    mine = recompute(run)
    assert {s for s, _ in mine} == {"library", "train-only"} and len(mine) == 10
    for (setting, system), groups in mine.items():
        res = metrics["settings"][setting]["results"][system]
        for group in ("total", "seen", "unseen"):
            for m, value in groups[group].items():
                theirs = res[group]["means"][m]
                assert (theirs is None and value is None) or theirs == pytest.approx(value), (setting, system, group, m)
        if system == "base":
            gen = res["generation"]
            assert gen["answered_dois"] == groups["free"]["answered"]
            for key in ("well_formed", "in_catalogue", "hallucination"):
                assert gen[key] == pytest.approx(groups["free"][key]), key


def test_independent_recomputation_equals_the_report_tables(run):
    report = (run / "report.md").read_text()
    mine = recompute(run)
    for setting in ("library", "train-only"):
        section = report.split(f"## Setting `{setting}`")[1].split("### All gold works")[1].split("###")[0]
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) < 6 or cells[0] in ("system", "---"):
                continue
            shown = [float(c.split()[0]) for c in cells[1:6]]
            expected = [mine[(setting, cells[0])]["total"][m] for m in stage.RANKED]
            assert shown == [round(v + 1e-12, 2) for v in expected], (setting, cells[0])


def test_a_cut_answer_and_repeated_dois_reach_predictions_as_whole_distinct_dois(run):
    preds = pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)
    base = preds[(preds["system"] == "base") & (preds["setting"] == "library")]
    answers = [pu.split_list(c) for c in base["dois"]]
    assert answers[3] == ["10.5555/slow.7", "10.5555/twin.0"]  # the repeat counts once
    assert answers[4] == ["10.5555/port.2", "10.5555/crane.6"]  # the DOI the limit cut is gone
    assert answers[1] == []


def test_a_system_that_answers_no_doi_reports_na_not_zero(tmp_path, monkeypatch):
    fake_model(monkeypatch, [("I cannot help with that.", True)] * 5)
    root = write_corpus(tmp_path)
    metrics = stage.main(stage.Config(input_dir=root / "qa", output_dir=root / "out",
                                      catalogue_csv=root / "catalogue.csv", systems=("popular", "base"),
                                      model="canned", bootstrap=20))
    gen = metrics["settings"]["library"]["results"]["base"]["generation"]
    assert gen["answered_dois"] == 0 and gen["hallucination"] is None and gen["in_catalogue"] is None
    report = (root / "out" / "report.md").read_text()
    assert "| base | 0 | 0 | n/a | n/a | n/a |" in report
    assert "base answered no DOI at all" in report
