"""The researcher's workflow across stages: one topic file, hand fixes that survive reruns."""
from __future__ import annotations

import importlib.util
import sys

import pandas as pd

import pipeline_utils as pu
from helpers import REPO, SCRIPTS, load_stage
from test_06_crossref_doi import crossref, run, write_overrides  # noqa: F401  (crossref is a fixture)


def fresh_stage(number: str, tag: str):
    """Load a stage script anew, so that its config defaults are read from the topic file now."""
    name = f"stage{number}_{tag}"
    spec = importlib.util.spec_from_file_location(name, REPO / SCRIPTS[number])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_changing_the_topic_file_changes_query_system_message_and_model_card_topic(tmp_path, monkeypatch):
    topic = tmp_path / "topic.toml"
    topic.write_text(
        '[topic]\nname = "inland waterway transport"\n'
        '[arxiv]\nquery = "all:barge AND all:waterway"\ncategories = []\n'
        '[assistant]\nsystem_message = "You help researchers of inland waterways find literature, by DOI."\n'
        '[models]\nbase_model = "Qwen/Qwen2.5-7B-Instruct"\n', encoding="utf-8")
    monkeypatch.setenv("PIPELINE_TOPIC", str(topic))
    s01, s07, s08 = fresh_stage("01", "topic"), fresh_stage("07", "topic"), fresh_stage("08", "topic")
    assert s01.Config().query == "all:barge AND all:waterway"
    assert s07.Config().system_message == "You help researchers of inland waterways find literature, by DOI."
    assert s08.Config().model == "Qwen/Qwen2.5-7B-Instruct"
    assert pu.topic_value("topic.name", "") == "inland waterway transport"  # what stage 08 writes into its model card


def test_a_hand_fixed_doi_reaches_sentences_and_qa_pairs_after_a_rerun(tmp_path, crossref):
    cfg, _, refs = run(tmp_path, crossref)
    assert refs.loc["unknown", "doi"] != "10.5555/hand.fixed"
    overrides = write_overrides(tmp_path / "doi_overrides.csv", "ref_uid,doi\nunknown,10.5555/hand.fixed\n")
    cfg, _, refs = run(tmp_path, crossref, overrides_path=overrides)
    assert (refs.loc["unknown", "doi"], refs.loc["unknown", "doi_source"]) == ("10.5555/hand.fixed", "manual")
    sentences = pd.read_csv(cfg.output_dir / "sentences.csv", dtype=str, keep_default_na=False)
    assert any("10.5555/hand.fixed" in pu.split_list(d) for d in sentences.dois)
    s07 = load_stage("07")
    out = tmp_path / "07"
    s07.main(s07.Config(input_dir=cfg.output_dir, output_dir=out, backend="template",
                        cache_path=tmp_path / "llm.sqlite"))
    qa = pd.read_csv(out / "qa.csv", dtype=str, keep_default_na=False)
    assert any("10.5555/hand.fixed" in pu.split_list(d) for d in qa.dois)
