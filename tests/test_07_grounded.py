"""Stage 07 --grounded: pairs whose prompt carries catalogue candidates retrieved for the request alone."""
from __future__ import annotations

import csv
import json

import pytest

import citation_tools as ct
from helpers import load_stage

stage = load_stage("07")

# (doi, title, first author, the papers citing it); the requests of the template come from the sentences below
WORKS = [
    ("10.5555/gnss.1", "Detecting GNSS spoofing on merchant ships", "Kessler, G"),
    ("10.5555/gnss.2", "GNSS jamming and spoofing in coastal waters", "Amadi, R"),
    ("10.5555/jit.1", "Just-in-time arrival of container ships at congested ports", "Zhang, W"),
    ("10.5555/twin.1", "Digital twins for ship engine condition monitoring", "Taylor, N"),
    ("10.5555/ais.1", "Cleaning AIS trajectories of fishing vessels", "Berg, L"),
    ("10.5555/berth.1", "Berth allocation under uncertain vessel arrival times", "Osei, K"),
    ("10.5555/ice.1", "Ice routing of cargo ships in the Arctic", "Larsen, P"),
    ("10.5555/fuel.1", "Fuel consumption models for bulk carriers in rough weather", "Nakamura, H"),
    ("10.5555/psc.1", "Outcomes of regulation", "Moreau, J"),  # shares no word with the requests that cite it
]
MISSED = "10.5555/psc.1"
SENTENCES = {  # paper -> [(sentence, dois)]
    "p0": [("Spoofed satellite signals can silently shift the reported position of a merchant ship at sea.",
            "10.5555/gnss.1"),
           ("Container ships often hurry to congested ports only to wait at anchor for days.", "10.5555/jit.1")],
    "p1": [("Condition monitoring of ship engines increasingly relies on digital twins fed by sensor data.",
            "10.5555/twin.1"),
           ("Raw AIS trajectories of fishing vessels contain gaps, jumps and duplicated positions.", "10.5555/ais.1")],
    "p2": [("Berth allocation plans break down when vessel arrival times are uncertain.", "10.5555/berth.1")],
    "p3": [("Routing cargo ships through Arctic ice needs forecasts of ice thickness and drift.", "10.5555/ice.1")],
    "p4": [("Fuel consumption of bulk carriers rises sharply in rough weather and head seas.", "10.5555/fuel.1")],
}


for i, paper in enumerate(SENTENCES):
    SENTENCES[paper].append((f"Port state inspections detect fewer deficiencies on tankers whose crews are "
                             f"younger, in sample {i}.", MISSED))


def write_input(d):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "sentences.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys", "ref_uids", "dois"])
        for paper, rows in SENTENCES.items():
            for n, (text, dois) in enumerate(rows, start=1):
                w.writerow([paper, f"{paper}:1.{n}", "Intro", text + " [1]", text, "b1", "", dois])
    with open(d / "references.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ref_uid", "title", "year", "authors", "doi", "matched_title", "matched_year", "match_status"])
        for i, (doi, title, author) in enumerate(WORKS):
            w.writerow([f"r{i}", title, "2020", author, doi, title, "2020", "matched"])
    cited_by = {}
    for paper, rows in SENTENCES.items():
        for _, dois in rows:
            cited_by.setdefault(dois, []).append(paper)
    with open(d / "catalogue.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ct.CATALOGUE_COLUMNS)
        for doi, title, author in WORKS:
            w.writerow([doi, title, author, "2020", "Journal of Maritime Research", "", "|".join(cited_by.get(doi, []))])


def run(tmp_path, **kw):
    write_input(tmp_path / "in")
    cfg = stage.Config(**{"input_dir": tmp_path / "in", "output_dir": tmp_path / "out", "backend": "template",
                          "cache_path": tmp_path / "c.sqlite", "grounded": True, "candidates": 4,
                          "max_similarity": 0.99, "template_max_similarity": 0.99, **kw})
    summary = stage.main(cfg)
    rows = {s: [json.loads(x) for x in (cfg.output_dir / f"grounded_{s}.jsonl").read_text().splitlines()]
            for s in ("train", "val", "test")}
    plain = {s: [json.loads(x) for x in (cfg.output_dir / f"{s}.jsonl").read_text().splitlines()]
             for s in ("train", "val", "test")}
    return cfg, summary, rows, plain


def test_grounded_pairs_hold_retrieved_candidates_and_the_gold_dois_among_them(tmp_path):
    _, summary, rows, plain = run(tmp_path)
    assert {s: len(r) for s, r in rows.items()} == {s: len(r) for s, r in plain.items()}
    for split in rows:
        for ex, base in zip(rows[split], plain[split]):
            request = base["prompt"][-1]["content"]
            user = ex["prompt"][-1]["content"]
            assert user == ct.grounded_user_message(request, [
                next(w for w in ct.load_catalogue(tmp_path / "in" / "catalogue.csv") if w["doi"] == d)
                for d in ex["candidates"]])
            assert ex["prompt"][0] == base["prompt"][0]  # the same system message
            assert ct.candidates_in_message(user) == ex["candidates"] and len(ex["candidates"]) <= 4
            answer = ex["completion"][0]["content"]
            in_candidates = [d for d in ex["candidates"] if d in ex["dois"]]
            assert answer == ("\n".join(in_candidates) if in_candidates else "none")
    assert summary["grounded"]["pairs"] == summary["pairs"]


def test_grounded_prompts_of_train_and_val_never_show_a_work_only_test_papers_cite(tmp_path):
    _, _, rows, _ = run(tmp_path, candidates=8)
    cited = {s: {d for ex in r for d in ex["dois"]} for s, r in rows.items()}
    test_only = cited["test"] - cited["train"] - cited["val"]
    assert test_only
    for split in ("train", "val"):
        shown = {d for ex in rows[split] for d in ex["candidates"]}
        assert not shown & test_only, split
    assert test_only & {d for ex in rows["test"] for d in ex["candidates"]}  # the test prompts see the whole library


def test_train_pairs_get_a_missed_gold_work_inserted_and_other_splits_do_not(tmp_path):
    _, summary, rows, _ = run(tmp_path, candidates=1)
    for ex in rows["train"]:
        assert set(ex["dois"]) <= set(ex["candidates"])  # retrieval's misses inserted: always answerable
        assert ex["completion"][0]["content"] != "none"
    _, summary_off, rows_off, _ = run(tmp_path, candidates=1, insert_missed_gold=False, force=True)
    missed = sum(len(set(ex["dois"]) - set(ex["candidates"])) for ex in rows_off["train"])
    assert missed and summary_off["grounded"]["gold_inserted"] == 0
    assert summary["grounded"]["gold_inserted"] == missed
    for split in ("val", "test"):  # judged as retrieval left them: no gold work is ever added
        assert rows[split] == rows_off[split]


def test_grounded_without_a_catalogue_is_one_clear_error(tmp_path):
    write_input(tmp_path / "in")
    (tmp_path / "in" / "catalogue.csv").unlink()
    with pytest.raises(SystemExit, match="--grounded needs .*catalogue.csv"):
        stage.main(stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", backend="template",
                                cache_path=tmp_path / "c.sqlite", grounded=True))
