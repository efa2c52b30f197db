"""Stage 07: requests from three backends, the checks on them, the paper-level split, the cache."""
from __future__ import annotations

import csv
import json
import re

import pandas as pd
import pytest

from demo.standins import ChatStandIn
from helpers import load_stage
from demo.tiny_model import build_tiny_model

stage = load_stage("07")

SENTENCES = [
    ("p1", "Digital twins of propulsion systems are now used for condition monitoring and for predicting failures "
           "before they occur.", "r1", "10.5555/twin.2020"),
    ("p1", "Satellite navigation signals are weak and unauthenticated, so GNSS spoofing can silently move a vessel's "
           "reported position.", "r2", "10.5555/gnss.2021"),
    ("p2", "Ships often sail at full speed only to wait at anchor outside a congested port, a practice known as hurry "
           "up and wait.", "r3|r1", "10.5555/jit.2020|10.5555/twin.2020"),
    ("p3", "Network segmentation between operational and information technology is the most common recommendation "
           "in industry guidance.", "r4", "10.5555/imo.2019"),
]
REFS = [("r1", "Digital twins of ship propulsion systems for condition monitoring", "2020", "Taylor, N|Osei, K",
         "10.5555/twin.2020"),
        ("r2", "GNSS spoofing detection for merchant vessels", "2021", "Kessler, G", "10.5555/gnss.2021"),
        ("r3", "Just-in-time arrival of container ships", "2020", "Zhang, W", "10.5555/jit.2020"),
        ("r4", "Guidelines on maritime cyber risk management", "2019", "Organization, IMO", "10.5555/imo.2019")]


def write_input(d, sentences=SENTENCES, refs=REFS):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "sentences.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys", "ref_uids", "dois"])
        for n, (pid, text, uids, dois) in enumerate(sentences):
            w.writerow([pid, f"{pid}:{n}", "Intro", text + " [1]", text, "k", uids, dois])
        w.writerow(["p9", "p9:1", "Intro", "No DOI here [3].", "No DOI here.", "k", "rx", ""])
    with open(d / "references.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ref_uid", "title", "year", "authors", "doi", "matched_title", "matched_year", "match_status"])
        for uid, title, year, authors, doi in refs:
            w.writerow([uid, title, year, authors, doi, title, year, "matched"])


def run(tmp_path, **kw):
    write_input(tmp_path / "in", **{k: kw.pop(k) for k in ("sentences", "refs") if k in kw})
    cfg = stage.Config(**{"input_dir": tmp_path / "in", "output_dir": tmp_path / "out",
                          "cache_path": tmp_path / "cache.sqlite", **kw})
    summary = stage.main(cfg)
    qa = pd.read_csv(cfg.output_dir / "qa.csv", dtype=str, keep_default_na=False) if summary["pairs"] else None
    return cfg, summary, qa


def good_responder(messages):
    sentence = messages[-1]["content"].split("Sentence:", 1)[-1].strip()
    topic = " ".join(sentence.split()[:4]).lower().rstrip(",.")
    return f"Could you point me to research about {topic} in shipping?"


def test_template_requests_read_as_requests_and_are_no_copies(tmp_path):
    cfg, summary, qa = run(tmp_path, backend="template")
    assert summary["pairs"] == 4 and summary["dropped"] == {}
    for row in qa.itertuples():
        assert row.input.endswith(("?", ".")) and stage.REQUEST_START.match(row.input) or row.input.endswith("?")
        assert row.input.lower() != row.sentence.lower()
        assert not re.search(r"\[\d|et al|\b20\d\d\b", row.input)
    # deterministic: the same input gives the same requests
    again = pd.read_csv(cfg.output_dir / "qa.csv", dtype=str)
    stage.main(stage.Config(**{**cfg.__dict__, "force": True}))
    assert pd.read_csv(cfg.output_dir / "qa.csv", dtype=str).input.tolist() == again.input.tolist()


def test_answer_is_the_dois_one_per_line_in_citation_order(tmp_path):
    _, _, qa = run(tmp_path, backend="template")
    row = qa[qa.sentence.str.startswith("Ships often sail")].iloc[0]
    assert row.output == "10.5555/jit.2020\n10.5555/twin.2020"
    _, _, qa = run(tmp_path, backend="template", answer_line="{doi} ({title}, {year})", force=True)
    row = qa[qa.sentence.str.startswith("Ships often sail")].iloc[0]
    assert row.output.splitlines()[0] == "10.5555/jit.2020 (Just-in-time arrival of container ships, 2020)"


def test_jsonl_is_trl_conversational_prompt_completion(tmp_path):
    cfg, summary, _ = run(tmp_path, backend="template")
    lines = []
    for split in ("train", "val", "test"):
        lines += [json.loads(x) for x in (cfg.output_dir / f"{split}.jsonl").read_text().splitlines()]
    assert len(lines) == summary["pairs"]
    for ex in lines:
        assert [m["role"] for m in ex["prompt"]] == ["system", "user"]
        assert ex["prompt"][0]["content"] == stage.SYSTEM_MESSAGE
        assert [m["role"] for m in ex["completion"]] == ["assistant"]
        assert ex["completion"][0]["content"].splitlines() == ex["dois"]


def test_openai_backend_normal_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ChatStandIn(good_responder) as chat:
        _, summary, qa = run(tmp_path, backend="openai", base_url=chat.url + "/v1", model="tiny-chat")
        body = json.loads(chat.requests[0].body)
        assert chat.requests[0].headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-chat" and body["messages"][0]["role"] == "system"
    assert "{sentence}" not in body["messages"][-1]["content"]
    assert len(body["messages"]) == 8  # system + 3 few-shot pairs + the sentence
    assert summary["pairs"] == 4 and summary["generated"] == 4
    assert qa.input.str.startswith("Could you point me to research about").all()


def test_openai_429_then_success(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    from demo.standins import Reply

    with ChatStandIn(good_responder) as chat:
        chat.fail_next("/v1/chat/completions",
                       Reply(429, b'{"error": {"message": "rate limited"}}',
                             {"Content-Type": "application/json", "Retry-After": "0"}))
        _, summary, _ = run(tmp_path, backend="openai", base_url=chat.url + "/v1", concurrency=1)
        assert len(chat.requests) == 5
    assert summary["pairs"] == 4


def test_leaking_answer_is_regenerated_and_empty_answers_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    sentences = SENTENCES[:2]

    def responder(messages):
        text = messages[-1]["content"]
        if "Satellite navigation" in text:
            return ""
        if "previous answer was rejected" in text:
            return "Which studies examine condition monitoring with propulsion digital twins on ships?"
        return "Could you point me to Taylor et al. (2020) on digital twins?"

    with ChatStandIn(responder) as chat:
        _, summary, qa = run(tmp_path, backend="openai", base_url=chat.url + "/v1", sentences=sentences,
                             concurrency=1)
        retry = [json.loads(r.body)["messages"][-1]["content"] for r in chat.requests
                 if "previous answer was rejected" in r.body.decode()]
    assert len(retry) == 2 and "citation_marker" in retry[0] + retry[1]
    assert summary["pairs"] == 1 and summary["dropped"] == {"empty": 1}
    assert qa.input.iloc[0] == "Which studies examine condition monitoring with propulsion digital twins on ships?"


def test_rerun_is_answered_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ChatStandIn(good_responder) as chat:
        cfg, first, _ = run(tmp_path, backend="openai", base_url=chat.url + "/v1")
        n = len(chat.requests)
        second = stage.main(cfg)
        assert len(chat.requests) == n
    assert second["cache_hits"] == 4 and second["generated"] == 0 and second["pairs"] == first["pairs"]


def test_missing_api_key_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(stage.pu, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="OPENAI_API_KEY is not set"):
        run(tmp_path, backend="openai")


def test_transformers_backend_with_a_tiny_local_model(tmp_path):
    model = build_tiny_model(tmp_path / "tiny")
    _, summary, _ = run(tmp_path, backend="transformers", model=str(model), max_tokens=12, temperature=0.0,
                        batch_size=3)
    # an untrained model writes noise: every answer is generated, checked, and dropped with its reason
    assert summary["generated"] == 8  # 4 sentences, each regenerated once
    assert sum(summary["dropped"].values()) + summary["pairs"] == 4


def test_checks_catch_each_kind_of_bad_request():
    cfg = stage.Config()
    works = [{"surnames": ["Taylor"], "year": "2020", "title": "Digital twins of ship propulsion systems"}]
    sentence = "Digital twins are used for condition monitoring on ships today."
    check = lambda r: stage.check_request(r, sentence, works, cfg)  # noqa: E731
    assert check("") == "empty"
    assert check("Twins?") == "too_short"
    assert check("Digital twins help. Could you find papers on them for me?") == "not_one_sentence"
    assert check("Digital twins are widely used on modern ships for many things.") == "not_a_request"
    assert check("Could you find papers on digital twins [3] on ships?") == "citation_marker"
    assert check("Could you find what Taylor wrote on twins for ships?") == "author_name"
    assert check("Could you find papers from 2020 on twins for ships?") == "year"
    assert check("Could you find Digital twins of ship propulsion systems for me?") == "title_copied"
    assert check("Digital twins are used for condition monitoring on ships today?") == "copy_of_sentence"
    assert check("Could you point me to studies on digital twins for ship condition monitoring?") == ""


def test_split_is_by_paper(tmp_path):
    sentences = [(f"p{p}", f"Sentence number {i} of paper {p} says that port digitalisation changes berth planning "
                           f"in way {i}.", f"r{(p * 3 + i) % 4 + 1}", REFS[(p * 3 + i) % 4][4])
                 for p in range(20) for i in range(6)]
    cfg, summary, qa = run(tmp_path, backend="template", sentences=sentences, max_similarity=0.99)
    splits_per_paper = qa.groupby("paper_id").split.nunique()
    assert (splits_per_paper == 1).all()
    assert summary["papers_by_split"] == {"train": 16, "val": 2, "test": 2}
    test_dois = set("|".join(qa[qa.split == "test"].dois).split("|"))
    train_dois = set("|".join(qa[qa.split == "train"].dois).split("|"))
    assert summary["test_dois_never_in_train"] == len(test_dois - train_dois)
