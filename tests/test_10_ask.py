"""Stage 10: a question in, ranked works of the catalogue out (DOI, title, first author, year, link), never a DOI
the catalogue does not hold."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pipeline_utils as pu
from demo.standins import ChatStandIn
from demo.tiny_model import build_tiny_model
from helpers import REPO, load_stage

stage = load_stage("10")

WORKS = [
    ("10.5555/mdig.2019.0105", "Just-in-time arrival of ships: sharing port call data", "Lind, Mikael", "2019",
     "Maritime Policy & Management"),
    ("10.5555/mdig.2020.0102", "Digital twins of ship propulsion systems", "Grieves, Michael", "2020", ""),
    ("10.5555/mdig.2021.0112", "Detecting GNSS spoofing on merchant vessels", "Psiaki, Mark", "2021",
     "Navigation"),
    ("10.5555/mdig.2022.0117", "Autonomous ferries in urban waterways", "Reddy, Nikita", "2022", "Ocean Engineering"),
    ("10.5555/mdig.2020.0125", "Monitoring ship emissions with port sensors", "Åström, Karl", "2020", ""),
    ("10.5555/mdig.2021.0120", "Electronic bills of lading on a blockchain", "Zhang, Wei", "2021",
     "Transport Reviews"),
]
QUESTION = "where can I read about just-in-time arrival of ships in port?"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def catalogue(tmp_path):
    path = tmp_path / "catalogue.csv"
    pu.atomic_write_csv(path, [{"doi": d, "title": t, "authors": pu.join_list([a, "Other, Ann"]), "year": y,
                                "venue": v, "abstract": f"A study: {t.lower()}.", "cited_by_papers": "2401.00001v1"}
                               for d, t, a, y, v in WORKS], stage.ct.CATALOGUE_COLUMNS)
    return path


def ask(catalogue, question=QUESTION, **kw):
    kw.setdefault("runs_dir", catalogue.parent / "no-runs")
    return stage.Config(question=question, catalogue=catalogue, **kw)


def test_answers_with_ranked_catalogue_works_and_their_links(catalogue, tiny, capsys):
    summary = stage.main(ask(catalogue, model=str(tiny), k=3, num_beams=2))
    out = capsys.readouterr().out
    dois = [a["doi"] for a in summary["answers"]]
    assert 1 <= len(dois) <= 3 and len(set(dois)) == len(dois)
    assert set(dois) <= set(summary["candidates"]) <= {w[0] for w in WORKS}
    assert summary["candidates"][0] == "10.5555/mdig.2019.0105"  # retrieval ranks the just-in-time work first
    assert summary["adapter"] == "" and summary["model"] == str(tiny)
    for a in summary["answers"]:
        work = next(w for w in WORKS if w[0] == a["doi"])
        assert (a["title"], a["first_author"], a["year"]) == (work[1], work[2].split(",")[0], work[3])
        assert f"{a['rank']:>2}. {a['doi']}" in out and f"https://doi.org/{a['doi']}" in out
        assert f"    {work[1]} ({work[2].split(',')[0]}, {work[3]})" in out


def test_a_plain_adapter_is_held_to_the_catalogue_and_its_base_model_found(catalogue, tiny, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path / "runs" / "plain-run"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny)),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(str(run))
    (run / "run_config.json").write_text(json.dumps({"config": {"data": "plain", "model": str(tiny)},
                                                     "system_message": "Answer with DOIs."}))
    (run / "metrics.json").write_text("{}")
    summary = stage.main(ask(catalogue, runs_dir=tmp_path / "runs", k=2, num_beams=2))
    assert summary["adapter"] == str(run) and summary["model"] == str(tiny)
    assert summary["answers"] and {a["doi"] for a in summary["answers"]} <= {w[0] for w in WORKS}


def test_the_newest_finished_run_is_the_default_adapter(tmp_path):
    for name, age in (("old", 100), ("new", 10), ("unfinished", 0)):
        run = tmp_path / name
        run.mkdir()
        (run / "adapter_config.json").write_text("{}")
        if name != "unfinished":
            (run / "metrics.json").write_text("{}")
            os.utime(run / "metrics.json", (1e9 - age, 1e9 - age))
    assert stage.newest_run(tmp_path) == tmp_path / "new"
    assert stage.newest_run(tmp_path / "nothing") is None


def test_a_request_the_catalogue_cannot_answer_says_so_without_loading_a_model(catalogue, capsys):
    summary = stage.main(ask(catalogue, question="xyzzy plugh frobnicate?", model="no/such-model"))
    assert summary["answers"] == [] and summary["candidates"] == []
    out = capsys.readouterr().out
    assert out.startswith("No answer from the catalogue (6 works) for: xyzzy plugh frobnicate?")
    assert "nothing is invented" in out and "10.5555" not in out


def test_a_served_model_keeps_only_catalogue_dois_in_its_order(catalogue, capsys):
    answer = ("10.5555/mdig.2020.0125\n10.9999/invented.2024.1\nhttps://doi.org/10.5555/MDIG.2019.0105.\n"
              "10.5555/mdig.2020.0125")
    with ChatStandIn(lambda messages: answer) as chat:
        summary = stage.main(ask(catalogue, base_url=chat.url + "/v1", model="grounded-lora", json=True))
        sent = json.loads(chat.requests[-1].body)
    assert [a["doi"] for a in summary["answers"]] == ["10.5555/mdig.2020.0125", "10.5555/mdig.2019.0105"]
    assert summary["dropped"] == ["10.9999/invented.2024.1"]
    assert sent["model"] == "grounded-lora"
    user = sent["messages"][-1]["content"]
    assert user.startswith(QUESTION) and "doi:10.5555/mdig.2019.0105" in user  # the candidates are in the prompt
    printed = json.loads(capsys.readouterr().out)
    assert printed["answers"][1] == {"rank": 2, "doi": "10.5555/mdig.2019.0105", "title": WORKS[0][1],
                                     "first_author": "Lind", "year": "2019", "venue": WORKS[0][4],
                                     "url": "https://doi.org/10.5555/mdig.2019.0105"}


def test_a_model_that_says_none_fits_gets_no_answer(catalogue, capsys):
    with ChatStandIn(lambda messages: "none") as chat:
        summary = stage.main(ask(catalogue, base_url=chat.url + "/v1"))
    assert summary["answers"] == [] and "no candidate work that fits" in summary["no_answer_reason"]
    assert "No answer from the catalogue" in capsys.readouterr().out


def test_bibtex_output_parses_and_names_each_work(catalogue, capsys):
    import bibtexparser

    answer = "10.5555/mdig.2019.0105\n10.5555/mdig.2020.0125"
    with ChatStandIn(lambda messages: answer) as chat:
        stage.main(ask(catalogue, base_url=chat.url + "/v1", bibtex=True))
    library = bibtexparser.parse_string(capsys.readouterr().out)
    assert not library.failed_blocks
    first, second = library.entries
    assert (first.entry_type, first.key) == ("article", "lind2019just")
    assert first["doi"] == "10.5555/mdig.2019.0105" and first["journal"] == r"Maritime Policy \& Management"
    assert first["author"] == "Lind, Mikael and Other, Ann" and first["url"] == "https://doi.org/10.5555/mdig.2019.0105"
    assert (second.entry_type, second.key) == ("misc", "astrom2020monitoring")


def test_an_unreachable_server_and_a_missing_catalogue_are_one_line(catalogue, tmp_path):
    with ChatStandIn() as chat:
        closed = chat.url
    with pytest.raises(SystemExit, match=r"^error: cannot reach http://127\.0\.0\.1:\d+/v1: APIConnectionError$"):
        stage.main(ask(catalogue, base_url=closed + "/v1", timeout=2))
    with pytest.raises(SystemExit, match="no catalogue; run stage 06 first"):
        stage.main(ask(tmp_path / "missing.csv"))
    with pytest.raises(SystemExit, match="is not a stage 08 run folder"):
        stage.main(ask(catalogue, adapter=tmp_path))


def test_doi_links_percent_encode_what_a_url_cannot_carry():
    assert stage.doi_url("10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0") == \
        "https://doi.org/10.1002/(SICI)1097-4571(199806)49:8%3C693::AID-ASI4%3E3.0.CO;2-0"
    assert stage.doi_url("10.1234/a#b?c d") == "https://doi.org/10.1234/a%23b%3Fc%20d"


def test_the_command_line_answers_in_json_exits_1_when_nothing_fits_and_2_on_error(catalogue, tiny, tmp_path):
    cmd = [sys.executable, str(REPO / "10_ask" / "ask.py"), "--catalogue", str(catalogue), "--no-adapter",
           "--model", str(tiny), "--k", "2", "--num-beams", "2", "--json"]
    done = subprocess.run(cmd + ["GNSS spoofing detection on merchant vessels"], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["candidates"][0] == "10.5555/mdig.2021.0112"
    assert answer["answers"] and all(a["doi"] in answer["candidates"] for a in answer["answers"])
    nothing = subprocess.run(cmd + ["xyzzy plugh?"], capture_output=True, text=True, timeout=240)
    assert nothing.returncode == 1 and json.loads(nothing.stdout)["answers"] == []
    cmd[cmd.index("--catalogue") + 1] = str(tmp_path / "missing.csv")
    error = subprocess.run(cmd + ["GNSS spoofing"], capture_output=True, text=True, timeout=240)
    assert error.returncode == 2 and error.stderr.strip().endswith("no catalogue; run stage 06 first (it writes "
                                                                   "catalogue.csv)") and error.stdout == ""


def test_a_grounded_model_ranks_every_candidate_by_likelihood_as_stage_09s_rag_systems_do(catalogue, tiny):
    kept = stage.main(ask(catalogue, model=str(tiny), k=4, retriever="bm25", fusion_weight=1.0, ranking="likelihood"))
    assert [a["doi"] for a in kept["answers"]] == kept["candidates"][:4]  # weight 1: the retriever's order
    alone = stage.main(ask(catalogue, model=str(tiny), k=4, retriever="bm25", fusion_weight=0.0, ranking="likelihood"))
    model, tokenizer = stage.ct.load_model(str(tiny))
    by_doi = {w["doi"]: w for w in stage.ct.load_catalogue(catalogue)}
    message = stage.ct.grounded_user_message(QUESTION, [by_doi[d] for d in alone["candidates"]])
    chat = [{"role": "system", "content": stage.pu.topic_value("assistant.system_message", "")},
            {"role": "user", "content": message}]
    chat = [m for m in chat if m["content"]]
    expected = stage.ct.rank_by_likelihood(model, tokenizer, [chat], [alone["candidates"]])[0][:4]
    assert [a["doi"] for a in alone["answers"]] == expected


def test_a_grounded_model_ranks_by_query_likelihood_as_stage_09s_query_likelihood_ranking_does(catalogue, tiny):
    got = stage.main(ask(catalogue, model=str(tiny), k=4, retriever="bm25", fusion_weight=0.0,
                         ranking="query-likelihood", reference_tokens=32))
    model, tokenizer = stage.ct.load_model(str(tiny))
    by_doi = {w["doi"]: w for w in stage.ct.load_catalogue(catalogue)}
    expected = stage.ct.rank_by_query_likelihood(model, tokenizer, [QUESTION], [[by_doi[d] for d in got["candidates"]]],
                                                 max_reference_tokens=32)[0][:4]
    assert [a["doi"] for a in got["answers"]] == expected
    # every candidate ranked, none invented
    assert set(expected) <= set(got["candidates"]) and len(expected) == min(4, len(got["candidates"]))
