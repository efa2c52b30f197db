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
    # an untrained model writes noise: every answer is generated (4 sentences, each regenerated once), checked and
    # dropped with its reason; a run that produced no pair stops instead of writing empty files
    prompt = tmp_path / "prompt.md"  # short rules: the tiny model's context is 512 positions
    prompt.write_text("## system\nRewrite the sentence as a request for literature.\n\n## user\n{context}Sentence: {sentence}\n")
    with pytest.raises(SystemExit, match=r"no pair was produced \(dropped: "):
        run(tmp_path, backend="transformers", model=str(model), max_tokens=12, temperature=0.0, batch_size=4,
            prompt_file=prompt)
    assert not (tmp_path / "out" / "qa.csv").exists()


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


# --- rows keyed by (paper_id, sentence_id) -----------------------------------------------------

def write_rows(d, rows):
    """rows: (paper_id, sentence_id, sentence_clean, dois); every work gets its own reference row."""
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "sentences.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys", "ref_uids", "dois"])
        for pid, sid, text, dois in rows:
            w.writerow([pid, sid, "Intro", text + " [1]", text, "b1", dois.replace("10.5555/", "u-"), dois])
    with open(d / "references.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ref_uid", "title", "year", "authors", "doi", "matched_title", "matched_year", "match_status"])
        for doi in sorted({d for *_, dois in rows for d in dois.split("|") if d}):
            w.writerow([doi.replace("10.5555/", "u-"), "Operational records", "2019", "Okafor, C", doi,
                        "Operational records", "2019", "matched"])


PER_PAPER_TOPICS = ["port call optimisation", "GNSS spoofing detection", "hull condition monitoring",
                    "berth allocation under uncertainty", "emission monitoring of ships", "AIS trajectory cleaning",
                    "crew workload in bridges", "container stowage planning", "weather routing of vessels"]


def per_paper_rows():
    rows = []
    for p in range(3):
        for s in range(1, 4):
            topic = PER_PAPER_TOPICS[p * 3 + s - 1]
            rows.append((f"paper{p}", str(s), f"Recent studies of {topic} report clear operational gains for "
                                              f"shipping companies of every size.", f"10.5555/p{p}.s{s}"))
    return rows


def test_per_paper_sentence_ids_keep_their_own_dois_and_drops_stay_per_key(tmp_path, monkeypatch):
    """sentence_id 1, 2, 3 in every paper: each pair keeps its own DOI, one drop removes one pair only."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rows = per_paper_rows()
    write_rows(tmp_path / "in", rows)

    def responder(messages):
        sentence = messages[-1]["content"].rsplit("Sentence:", 1)[-1]
        topic = next(t for t in PER_PAPER_TOPICS if t in sentence)
        if topic == "hull condition monitoring":  # paper0, sentence 3: always names the author
            return "Could you point me to what Okafor wrote on hull condition monitoring?"
        return f"Which studies report the operational gains of {topic}?"

    with ChatStandIn(responder) as chat:
        cfg = stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", cache_path=tmp_path / "c.sqlite",
                           backend="openai", base_url=chat.url + "/v1", context_dir=tmp_path / "none")
        summary = stage.main(cfg)
    qa = pd.read_csv(cfg.output_dir / "qa.csv", dtype=str, keep_default_na=False)
    assert summary["pairs"] == 8 and summary["dropped"] == {"author_name": 1}
    expected = {(p, s): (t, d) for p, s, t, d in rows}
    for row in qa.itertuples():
        text, doi = expected[(row.paper_id, row.sentence_id)]
        assert row.output == doi and row.dois == doi
        assert next(t for t in PER_PAPER_TOPICS if t in text) in row.input
    assert ("paper0", "3") not in set(zip(qa.paper_id, qa.sentence_id))
    assert {("paper1", "3"), ("paper2", "3")} <= set(zip(qa.paper_id, qa.sentence_id))
    dropped = pd.read_csv(cfg.output_dir / "dropped.csv", dtype=str, keep_default_na=False)
    assert dropped[["paper_id", "sentence_id", "reason"]].values.tolist() == [["paper0", "3", "author_name"]]
    assert "Okafor" in dropped.request.iloc[0]
    jsonl = [json.loads(x) for s in ("train", "val", "test") for x in (cfg.output_dir / f"{s}.jsonl").read_text().splitlines()]
    assert {(e["paper_id"], e["sentence_id"]): e["completion"][0]["content"] for e in jsonl} == \
        {(p, s): d for p, s, _, d in rows if (p, s) != ("paper0", "3")}


def test_duplicate_paper_and_sentence_id_is_refused_with_a_clear_error(tmp_path):
    rows = per_paper_rows()
    write_rows(tmp_path / "in", rows + [rows[4]])
    with pytest.raises(SystemExit, match=r"1 rows repeat a \(paper_id, sentence_id\) key, e.g. \(paper1, 2\)"):
        stage.main(stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", backend="template",
                                cache_path=tmp_path / "c.sqlite"))


def test_model_sees_the_previous_sentence_of_the_same_paper_as_context(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rows = [("p1", "p1:4.1", "Crowdsourced platforms collect voyage data from thousands of small vessels.", ""),
            ("p1", "p1:4.2", "Such platforms have improved the coverage of coastal traffic statistics.",
             "10.5555/crowd"),
            ("p2", "p2:1.1", "Such platforms are rarely audited for data quality in practice.", "10.5555/audit")]
    write_rows(tmp_path / "in", rows)
    with ChatStandIn(lambda m: "Could you point me to studies on crowdsourced vessel traffic data?") as chat:
        stage.main(stage.Config(input_dir=tmp_path / "in", output_dir=tmp_path / "out", backend="openai",
                                cache_path=tmp_path / "c.sqlite", base_url=chat.url + "/v1",
                                context_dir=tmp_path / "none"))
        asked = {json.loads(r.body)["messages"][-1]["content"] for r in chat.requests}
    with_context = [a for a in asked if "Such platforms have improved" in a]
    assert with_context and "Crowdsourced platforms collect voyage data" in with_context[0]
    assert with_context[0].index("Crowdsourced") < with_context[0].index("Sentence:")
    first_of_paper = [a for a in asked if "rarely audited" in a]
    assert first_of_paper and "Context" not in first_of_paper[0]


def test_few_shot_examples_and_system_message_come_from_the_topic_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    topic = tmp_path / "topic.toml"
    topic.write_text('[assistant]\nsystem_message = "You cite rail freight research."\n'
                     '[[assistant.examples]]\nsentence = "Freight trains wait at borders for hours."\n'
                     'request = "Are there studies on border waiting times of freight trains?"\n', encoding="utf-8")
    monkeypatch.setenv("PIPELINE_TOPIC", str(topic))
    with ChatStandIn(good_responder) as chat:
        _, summary, _ = run(tmp_path, backend="openai", base_url=chat.url + "/v1", context_dir=tmp_path / "none")
        body = json.loads(chat.requests[0].body)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert "Freight trains wait at borders" in body["messages"][1]["content"]
    assert body["messages"][2]["content"] == "Are there studies on border waiting times of freight trains?"
    assert "rewrite one sentence" in body["messages"][0]["content"]  # the rules stay in prompt.md


# --- requests a researcher would write ---------------------------------------------------------

WORKS = [{"surnames": ["Mardare", "Panangaden"], "year": "2016", "title": "Quantitative algebraic reasoning"}]


@pytest.mark.parametrize("request_text, reason", [
    ("Could you point me to studies showing that the zeros of [formula] follow the same law?", "placeholder"),
    ("Could you point me to studies showing that the bound {{formula:2613d163}} is sharp?", "placeholder"),
    ("Which papers discuss how the estimate $k \\leq \\log n$ is obtained?", "placeholder"),
    ("Could you point me to studies showing that REF gives the optimal constant?", "placeholder"),
    ("Could you point me to studies showing that the method of Ref. 12 converges?", "placeholder"),
    ("What evidence is there that the inequality in Eq. (3) is sharp for all graphs?", "internal_reference"),
    ("Which papers discuss how the construction in Section 4 generalises to manifolds?", "internal_reference"),
    ("Are there studies finding that Theorem 2 holds without the moment assumption?", "internal_reference"),
    ("Could you point me to studies showing that the zeros accumulate on the?", "dangling_end"),
    ("I'm looking for research on whether the spectral gap closes in the limit of.", "dangling_end"),
    ("Could you point me to studies showing that this was shown in , for all graphs?", "gap"),
    ("Can you recommend literature showing that the bound holds for , and fails otherwise?", "gap"),
    ("Could you point me to studies showing that we proved the conjecture for trees?", "first_person"),
    ("Are there studies finding that our estimate improves the constant of the bound?", "first_person"),
    ("Which papers discuss how this paper extends the classical bound to graphs?", "first_person"),
    ("Could you point me to studies on the reasoning introduced by Mardare, Panangaden?", "author_name"),
    ("Could you point me to the calculus of Mardare et. al. on quantitative reasoning?", "citation_marker"),
    ("Could you point me to the approach of earlier work on quantitative reasoning?", "citation_marker"),
    ("Are there studies finding that fig:normalizationerror shows a normalisation error in retrieval?",
     "internal_reference"),
    ("I need references on using the same architecture. table:activitynet summarize the results.", "internal_reference"),
    ("Which papers discuss how by Serre duality?", "fragment"),
    ("Are there studies finding that with the modified quark model?", "fragment"),
    ("I'm looking for research on whether for a recent review of such observations.", "fragment"),
    # a clause that opens with a preposition but has its verb is a request, and so is "how to ..."
    ("Which papers discuss how by default the magnetic field of the detector is used?", ""),
    ("Could you point me to studies showing that with enough data, convolutional models localise bugs?", ""),
    ("I'm looking for research on how to extract colour-dependent kernels from two-loop calculations.", ""),
])
def test_checks_refuse_the_defects_found_in_real_citing_text(request_text, reason):
    # the sentence names the authors: a surname in the request is refused all the same
    sentence = "Quantitative equational logic was introduced by Mardare, Panangaden and Plotkin."
    assert stage.check_request(request_text, sentence, WORKS, stage.Config()) == reason


@pytest.mark.parametrize("clean, raw, must_have, must_not", [
    ("The zeros of random polynomials were studied by many authors, and Kabluchko proved that the critical "
     "points follow the same limiting distribution.",
     "The zeros of random polynomials were studied by many authors, and Kabluchko [12] proved that the critical "
     "points follow the same limiting distribution.",
     "critical points follow the same limiting distribution", ["Kabluchko", "studied by many authors"]),
    ("Prior work shows that slow steaming cuts the fuel burn of container ships by a third.",
     "Smith et al. [4] show that slow steaming cuts the fuel burn of container ships by a third.",
     "slow steaming cuts the fuel burn of container ships by a third", ["Prior work", "Smith"]),
    ("We use the coupling of prior work to bound the mixing time of the walk on [formula].",
     "We use the coupling of [3] to bound the mixing time of the walk on {{formula:ab}}.",
     "coupling", ["We ", " we ", "prior work", "formula", "of ?", "[", "{"]),
    ("In the case of bounded degree, the spectral gap of the graph is bounded below by a constant, as shown in "
     "prior work.",
     "In the case of bounded degree, the spectral gap of the graph is bounded below by a constant, as shown in [7].",
     "spectral gap of the graph is bounded below by a constant", ["prior work", "shown in"]),
])
def test_template_builds_the_request_from_the_cited_claim(clean, raw, must_have, must_not):
    request = stage.template_request(clean, raw, ["Kabluchko", "Smith"], 0, 42)
    assert must_have in request, request
    for bad in must_not:
        assert bad not in request, (bad, request)
    assert stage.check_request(request, clean, [{"surnames": ["Kabluchko", "Smith"], "year": "", "title": ""}],
                               stage.Config(backend="template")) == ""


def test_run_json_and_dropped_csv_are_written(tmp_path):
    cfg, summary, _ = run(tmp_path, backend="template")
    record = json.loads((cfg.output_dir / "run.json").read_text())
    assert record["stage"] == "07_qa_formatting" and record["summary"]["pairs"] == summary["pairs"]
    assert any(k.endswith("sentences.csv") for k in record["inputs"])
    dropped = pd.read_csv(cfg.output_dir / "dropped.csv", dtype=str)
    assert list(dropped.columns) == ["paper_id", "sentence_id", "reason", "request", "sentence"]


def test_hf_dataset_has_the_jsonl_rows_and_a_card_with_real_counts_and_licences(tmp_path):
    meta = tmp_path / "metadata.csv"
    pd.DataFrame([{"paper_id": "p1", "arxiv_id": "2501.00001v1", "title": "Twins at sea",
                   "license": "http://creativecommons.org/licenses/by/4.0/"},
                  {"paper_id": "p2", "arxiv_id": "2501.00002v1", "title": "Waiting ships",
                   "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"}]).to_csv(meta, index=False)
    sentences = [(f"p{p}", f"Sentence {i} of paper {p} says that port digitalisation changes berth planning "
                           f"in way {i}.", f"r{(p + i) % 4 + 1}", REFS[(p + i) % 4][4])
                 for p in range(1, 6) for i in range(3)]
    cfg, summary, _ = run(tmp_path, backend="template", sentences=sentences, max_similarity=0.99, metadata_csv=meta)
    from datasets import load_from_disk

    data = load_from_disk(str(cfg.output_dir / "hf_dataset"))
    for split in ("train", "val", "test"):
        lines = [json.loads(x) for x in (cfg.output_dir / f"{split}.jsonl").read_text().splitlines()]
        assert data[split].to_list() == lines
    card = (cfg.output_dir / "hf_dataset" / "README.md").read_text()
    counts = summary["pairs_by_split"]
    assert f"| train | {counts['train']} | {summary['papers_by_split']['train']} |" in card
    assert "| http://creativecommons.org/licenses/by/4.0/ | 1 |" in card
    assert "| not recorded | 3 |" in card and "nonexclusive-distrib" in card
    assert "Whole papers, not sentences" in card


def test_push_to_hub_without_a_token_is_refused_in_one_line(tmp_path, monkeypatch):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    monkeypatch.setattr(stage.pu, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="--push-to-hub needs a Hugging Face token"):
        run(tmp_path, backend="template", push_to_hub="someone/requests")
    assert not (tmp_path / "out").exists()
