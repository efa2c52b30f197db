"""Stage 07 on sentences that name the cited works in words ("Recent work on berth allocation reports ...",
"Several studies report that ..."): they are words, not a marker stage 04 put there, and the pair is kept;
stage 04's own "prior work" is still a marker. Through stages 04 and 05 from a JATS file the test writes."""
from __future__ import annotations

import csv

import pandas as pd
import pytest

from helpers import load_stage

stage04, stage05, stage07 = load_stage("04"), load_stage("05"), load_stage("07")

# (sentence as a researcher writes it, with [n] where the citation goes)
NATURAL = [
    "Recent work on berth allocation reports large gains for terminal operators [1].",
    "Several studies report that slow steaming lowers fuel consumption on long routes [2].",
    "Prior work on port call optimisation shows that shared arrival times reduce waiting at anchor [3].",
    "Much recent work focuses on emissions from container ships at berth [1].",
    "Earlier work found that congestion pricing shortens truck queues at container terminals [2].",
    "Recent works apply graph neural networks to the trajectories of fishing vessels [3].",
    "Related work on just-in-time arrival suggests that ports and carriers must share their schedules [1].",
    "A large body of prior work studies the scheduling of quay cranes under uncertain arrivals [2].",
    "Previous studies have shown that automated mooring shortens the time a ship spends alongside [3].",
    "Many recent works have explored reinforcement learning for the dispatching of yard cranes [1].",
]
# stage 04 writes "Prior work" where the authors were the subject: that one is a marker
TEXTUAL = "Lind and Haraldson [3] describe the port collaborative decision making concept for ports."
REFS = [("r1", "Olsen", "H", "Berth scheduling with shared arrival times", "2019", "10.5555/berth.2019"),
        ("r2", "Tran", "M", "Slow steaming and its fuel savings", "2020", "10.5555/steam.2020"),
        ("r3", "Lind", "M", "Port collaborative decision making", "2018", "10.5555/pcdm.2018")]


def jats(sentences: list[str]) -> str:
    """One paragraph per sentence, each [n] an xref to reference rn, in CERMINE's shape."""
    paragraphs = []
    for text in sentences:
        for n in "123":
            text = text.replace(f"[{n}]", f'[<xref ref-type="bibr" rid="r{n}">{n}</xref>]')
        paragraphs.append(f"<p>{text}</p>")
    refs = "".join(
        f'<ref id="{key}"><mixed-citation>{n}. <string-name><surname>{surname}</surname>'
        f"<given-names>{given}</given-names></string-name>: <article-title>{title}</article-title>. "
        f"<source>Maritime Policy Review</source> <year>{year}</year>. doi:{doi}</mixed-citation></ref>"
        for n, (key, surname, given, title, year, doi) in enumerate(REFS, start=1))
    return (f'<article><front><article-meta><title-group><article-title>Ports</article-title></title-group>'
            f'</article-meta></front><body><sec><title>Related work</title>{"".join(paragraphs)}</sec></body>'
            f"<back><ref-list>{refs}</ref-list></back></article>")


def through_stages_04_05(tmp_path, sentences, drop_column=False):
    """Stage 04 on a JATS file, stage 05, then the DOIs as stage 06 would add them: stage 07's input folder."""
    (tmp_path / "03").mkdir()
    (tmp_path / "03" / "p1.cermxml").write_text(jats(sentences), encoding="utf-8")
    stage04.main(stage04.Config(input_dir=tmp_path / "03", output_dir=tmp_path / "04"))
    if drop_column:  # a stage-04 CSV written before clean_substitutions existed
        path = tmp_path / "04" / "p1.sentences.csv"
        pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="clean_substitutions").to_csv(path,
                                                                                                      index=False)
    stage05.main(stage05.Config(input_dir=tmp_path / "04", output_dir=tmp_path / "05"))
    refs = pd.read_csv(tmp_path / "05" / "references.csv", dtype=str, keep_default_na=False)
    doi_of = dict(zip(refs.ref_uid, refs.doi))
    rows = pd.read_csv(tmp_path / "05" / "sentences.csv", dtype=str, keep_default_na=False)
    rows["dois"] = ["|".join(doi_of[u] for u in uids.split("|")) for uids in rows.ref_uids]
    (tmp_path / "06").mkdir()
    rows.to_csv(tmp_path / "06" / "sentences.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    refs.to_csv(tmp_path / "06" / "references.csv", index=False)
    return tmp_path / "06", rows


def run07(tmp_path, input_dir, **kw):
    cfg = stage07.Config(input_dir=input_dir, output_dir=tmp_path / "07", cache_path=tmp_path / "cache.sqlite",
                         context_dir=tmp_path / "04", metadata_csv=str(tmp_path / "none.csv"), **kw)
    summary = stage07.main(cfg)
    qa = pd.read_csv(cfg.output_dir / "qa.csv", dtype=str, keep_default_na=False)
    dropped = pd.read_csv(cfg.output_dir / "dropped.csv", dtype=str, keep_default_na=False)
    return summary, qa, dropped


def test_stage_04_marks_its_own_prior_work_and_not_the_authors_words(tmp_path):
    _, rows = through_stages_04_05(tmp_path, NATURAL + [TEXTUAL, "In [1], we extend prior work on berth allocation "
                                                                 "to tidal windows at river ports."])
    by_text = dict(zip(rows.sentence_clean, rows.clean_substitutions))
    for natural in NATURAL:
        clean = natural.replace(" [1]", "").replace(" [2]", "").replace(" [3]", "")
        assert by_text[clean] == "", clean  # the author's "Recent work", "prior work": no substitution
    assert by_text["Prior work describes the port collaborative decision making concept for ports."] == "1"
    # stage 04's "prior work" is the first of the two; the author's own is the second
    assert by_text["In prior work, we extend prior work on berth allocation to tidal windows at river ports."] == "1"


def test_natural_sentences_that_name_the_cited_work_in_words_are_kept(tmp_path):
    input_dir, _ = through_stages_04_05(tmp_path, NATURAL + [TEXTUAL])
    summary, qa, dropped = run07(tmp_path, input_dir, backend="template")
    assert len(qa) == len(NATURAL) + 1, dropped[["reason", "request"]].to_string()
    assert "citation_marker" not in summary["dropped"]
    request = dict(zip(qa.sentence.str.replace(r" \[\d\]", "", regex=True), qa.input))
    assert request["Recent work on berth allocation reports large gains for terminal operators."] in (
        frame.format(clause="on berth allocation reporting large gains for terminal operators")
        for frame in stage07.GERUND_OPENINGS)
    assert "slow steaming lowers fuel consumption on long routes" in \
        request["Several studies report that slow steaming lowers fuel consumption on long routes."]
    assert "focusing on emissions from container ships at berth" in \
        request["Much recent work focuses on emissions from container ships at berth."]
    for text in qa.input:  # the cited works as a subject are gone, whoever named them
        assert not any(w in text.lower() for w in ("prior work", "recent work", "several studies", "lind")), text


def test_the_authors_recent_work_in_a_model_request_is_words_stage_04s_prior_work_a_marker():
    cfg = stage07.Config(backend="openai")
    own = "Recent work on berth allocation reports large gains for terminal operators."
    asked = "Could you point me to recent work on berth allocation that reports large gains for terminal operators?"
    assert stage07.check_request(asked, own, [], cfg, "") == ""
    # stage 04 substituted this "prior work" for "Lind and Haraldson [3]": a request holding it names a citation
    substituted = "Prior work describes the port collaborative decision making concept for ports."
    pointer = "Which papers show that prior work describes the collaborative decision making concept for ports?"
    assert stage07.check_request(pointer, substituted, [], cfg, "1") == "citation_marker"
    # the author's "prior work" beside stage 04's: one is words, a second one in the request is a marker
    both = "In prior work, we extend prior work on berth allocation to tidal windows at river ports."
    one = "Could you point me to prior work on berth allocation under tidal windows at river ports?"
    assert stage07.check_request(one, both, [], cfg, "1") == ""
    two = "Could you point me to prior work on berth allocation under tidal windows, as in prior work, at river ports?"
    assert stage07.check_request(two, both, [], cfg, "1") == "citation_marker"
    # the phrase must be in the sentence: a model that invents "earlier work" still points at a citation
    assert stage07.check_request("Could you point me to earlier work on berth allocation for terminal operators?",
                                 own, [], cfg, "") == "citation_marker"


@pytest.mark.parametrize("substitutions", [None, "unknown"])
def test_without_stage_04s_marks_every_work_phrase_counts_as_a_marker_as_before(substitutions):
    asked = "Could you point me to recent work on berth allocation that reports large gains for terminal operators?"
    own = "Recent work on berth allocation reports large gains for terminal operators."
    assert stage07.check_request(asked, own, [], stage07.Config(), substitutions) == "citation_marker"


def test_an_older_stage_04_csv_still_runs_and_falls_back(tmp_path):
    input_dir, rows = through_stages_04_05(tmp_path, NATURAL + [TEXTUAL], drop_column=True)
    assert set(rows.clean_substitutions) == {"unknown"}  # stage 05 says it does not know
    summary, qa, _ = run07(tmp_path, input_dir, backend="template")
    assert summary["pairs"] == len(qa) == len(NATURAL) + 1  # the template removes the phrases either way


@pytest.mark.parametrize("echo", [
    "I'm looking for a different request that follows every rule.",
    "Could you give me another request about the citing sentence?",
    "Please rewrite the sentence as a research request that follows all the rules.",
])
def test_a_model_answer_that_echoes_the_retry_note_is_refused_as_instructions_echo(echo):
    sentence = "Recent work on berth allocation reports large gains for terminal operators."
    assert stage07.check_request(echo, sentence, [], stage07.Config(backend="openai"), "") == "instructions_echo"
    # a request about research that happens to use the word is kept
    ok = "Could you point me to studies on request scheduling for berth allocation at container terminals?"
    assert stage07.check_request(ok, sentence, [], stage07.Config(backend="openai"), "") == ""
