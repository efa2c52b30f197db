"""Stage 07 under faults of the chat service: each request fails on its own, a bad run never
replaces good output, replies of the wrong shape are errors, and no request carries the answer."""
from __future__ import annotations

import csv
import json
import sqlite3

import pandas as pd
import pytest

from demo.standins import ChatStandIn
from helpers import load_stage

stage = load_stage("07")

TOPICS = ["digital twins of ship engines", "GNSS spoofing at sea", "just-in-time arrival of container ships",
          "cyber risk in port terminals", "autonomous ferry navigation", "AIS data quality", "berth allocation",
          "hull fouling detection", "fuel consumption models", "ballast water treatment", "ice routing",
          "crew fatigue monitoring"]


def sentence_of(i: int) -> str:
    return (f"Research on {TOPICS[i]} has grown quickly because operators want better decisions from the data "
            f"they already collect, case {i}.")


def write_input(d, n=12, papers=4):
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "sentences.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys", "ref_uids", "dois"])
        for i in range(n):
            paper = f"p{i % papers}"
            w.writerow([paper, str(i // papers + 1), "Intro", sentence_of(i) + " [1]", sentence_of(i), "b1", f"r{i}",
                        f"10.5555/work.{i}"])
    with open(d / "references.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ref_uid", "title", "year", "authors", "doi", "matched_title", "matched_year", "match_status"])
        for i in range(n):
            w.writerow([f"r{i}", f"Operational records, part {i}", "2020", "Okafor, C", f"10.5555/work.{i}",
                        f"Operational records, part {i}", "2020", "matched"])


def topic_in(messages):
    text = messages[-1]["content"].rsplit("Sentence:", 1)[-1]  # not the context line before it
    return next((i for i, t in enumerate(TOPICS) if t in text), None)


def responder(messages):
    i = topic_in(messages)
    return f"Could you point me to studies on {TOPICS[i]} and the decisions it supports?"


def config(tmp_path, url, **kw):
    return stage.Config(**{"input_dir": tmp_path / "in", "output_dir": tmp_path / "out",
                           "cache_path": tmp_path / "cache.sqlite", "backend": "openai", "base_url": url + "/v1",
                           "model": "tiny-chat", "concurrency": 4, "retries": 2, "retry_wait": 0.001,
                           "context_dir": tmp_path / "none", "metadata_csv": tmp_path / "none.csv", **kw})


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def test_one_failing_request_among_many_fails_alone_and_the_others_are_cached(tmp_path):
    write_input(tmp_path / "in")
    broken = 5  # this sentence's request gets a 500 every time it is asked
    with ChatStandIn(responder, fault_for=lambda m: 500 if topic_in(m) == broken else None) as chat:
        cfg = config(tmp_path, chat.url)
        summary = stage.main(cfg)
        asked_broken = sum(1 for r in chat.requests if topic_in(json.loads(r.body)["messages"]) == broken)
        assert summary["pairs"] == 11 and summary["dropped"] == {"api_error": 1}
        assert asked_broken == 2 * (1 + cfg.retries)  # retried within each of the two rounds, then reported
        dropped = pd.read_csv(cfg.output_dir / "dropped.csv", dtype=str, keep_default_na=False)
        assert dropped[["paper_id", "sentence_id", "reason"]].values.tolist() == [["p1", "2", "api_error"]]
        with sqlite3.connect(cfg.cache_path) as db:
            assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 11  # every success, at once
        chat.fault_for, n = None, len(chat.requests)  # the service recovers: the rerun asks only what is missing
        again = stage.main(cfg)
        assert len(chat.requests) == n + 1
    assert again["pairs"] == 12 and again["cache_hits"] == 11


def test_service_down_leaves_the_previous_good_output(tmp_path):
    write_input(tmp_path / "in")
    with ChatStandIn(responder) as chat:
        cfg = config(tmp_path, chat.url)
        assert stage.main(cfg)["pairs"] == 12
    before = {name: (cfg.output_dir / name).read_bytes() for name in ("qa.csv", "train.jsonl", "test.jsonl")}
    with ChatStandIn(responder, fault_for=lambda m: 503) as down:
        with pytest.raises(SystemExit, match="answered none of 12 requests.*left as it was"):
            stage.main(config(tmp_path, down.url, force=True))
    assert {name: (cfg.output_dir / name).read_bytes() for name in before} == before


def test_run_with_far_fewer_pairs_than_the_last_stops_unless_allowed(tmp_path):
    write_input(tmp_path / "in")
    with ChatStandIn(responder) as chat:
        cfg = config(tmp_path, chat.url)
        stage.main(cfg)
    qa_before = (cfg.output_dir / "qa.csv").read_bytes()

    def mostly_leaking(messages):  # 9 of 12 answers name the cited work's author: dropped
        i = topic_in(messages)
        return responder(messages) if i < 3 else f"Could you find what Okafor wrote on {TOPICS[i]}?"

    with ChatStandIn(mostly_leaking) as chat:
        with pytest.raises(SystemExit, match=r"produced 3 pairs, the previous one 12.*--min-keep-share 0"):
            stage.main(config(tmp_path, chat.url, force=True))
        assert (cfg.output_dir / "qa.csv").read_bytes() == qa_before
        summary = stage.main(config(tmp_path, chat.url, force=True, min_keep_share=0.0))
    assert summary["pairs"] == 3 and summary["dropped"] == {"author_name": 9}


@pytest.mark.parametrize("fault", ["empty_choices", "html", "no_message"])
def test_reply_of_the_wrong_shape_is_retried_like_an_error(tmp_path, fault):
    write_input(tmp_path / "in", n=4)
    with ChatStandIn(responder) as chat:
        chat.malformed_next(fault, fault)
        summary = stage.main(config(tmp_path, chat.url, concurrency=1))
        assert len(chat.requests) == 4 + 2
    assert summary["pairs"] == 4 and summary["api_errors"] == 0


def test_reply_of_the_wrong_shape_every_time_is_dropped_not_a_crash(tmp_path):
    write_input(tmp_path / "in", n=4)
    with ChatStandIn(responder, fault_for=lambda m: "empty_choices" if topic_in(m) == 0 else None) as chat:
        cfg = config(tmp_path, chat.url, retries=1)
        summary = stage.main(cfg)
    assert summary["pairs"] == 3 and summary["dropped"] == {"api_error": 1}
    assert json.loads((cfg.output_dir / "qa_report.json").read_text())["api_errors"] == 2


def test_request_carrying_a_doi_url_or_arxiv_id_is_regenerated_then_dropped(tmp_path):
    write_input(tmp_path / "in", n=4)
    leaks = ["Could you point me to 10.5555/work.0 on digital twins of ship engines?",
             "Could you point me to https://doi.org/10.5555/work.1 about GNSS spoofing?",
             "Which papers like arXiv:2301.01234 study just-in-time arrival of ships?",
             "Could you find studies like 2301.01234v2 on cyber risk in port terminals?"]
    with ChatStandIn(lambda m: leaks[topic_in(m)]) as chat:
        with pytest.raises(SystemExit, match=r"no pair was produced \(dropped: \{'doi_or_url': 4\}\)"):
            stage.main(config(tmp_path, chat.url))
        retried = [r for r in chat.requests if "rejected (doi_or_url)" in r.body.decode()]
    assert len(retried) == 4


def test_check_refuses_every_way_of_writing_a_doi_url_or_arxiv_id():
    cfg = stage.Config()
    check = lambda r: stage.check_request(r, "Ships wait at anchor.", [], cfg)  # noqa: E731
    for leak in ["Could you point me to doi:10.1000/xyz123 on ship arrivals?",
                 "Could you point me to dx.doi.org/10.1000/xyz123 on ship arrivals?",
                 "Are there studies like www.example.com/ships on ship arrivals?",
                 "Are there studies like http://example.org on ship arrivals?",
                 "Which papers besides arxiv.org/abs/2301.01234 discuss ship arrivals?",
                 "Which papers besides math/0601001 discuss ship arrivals at ports?"]:
        assert check(leak) == "doi_or_url", leak
    assert check("Could you point me to studies on ship arrivals at congested ports?") == ""
