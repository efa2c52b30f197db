"""Stage 08 on the CPU: a tiny local model, the real script, TRL's SFTTrainer underneath."""
from __future__ import annotations

import json
import logging

import pytest
import torch

from demo.tiny_model import build_tiny_model
from helpers import load_stage

stage = load_stage("08")
SYSTEM = "You are a research assistant. Answer with DOIs, one per line."
TOPICS = ["digital twins of ship engines", "port call optimisation", "GNSS spoofing on ships", "autonomous ferries",
          "ship emissions monitoring", "electronic bills of lading"]
DOIS = ["10.5555/mdig.2020.0102", "10.5555/mdig.2019.0105", "10.5555/mdig.2021.0112", "10.5555/mdig.2022.0117",
        "10.5555/mdig.2020.0125", "10.5555/mdig.2021.0120"]


def example(i: int) -> dict:
    k = i % len(TOPICS)
    answer = DOIS[k] if i % 3 else f"{DOIS[k]}\n{DOIS[(k + 1) % len(DOIS)]}"
    return {"prompt": [{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": f"Could you point me to studies on {TOPICS[k]}?"}],
            "completion": [{"role": "assistant", "content": answer}], "dois": answer.split("\n"),
            "paper_id": f"p{k}", "sentence_id": f"p{k}:{i}"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def data(tmp_path):
    d = tmp_path / "qa"
    d.mkdir()
    (d / "train.jsonl").write_text("".join(json.dumps(example(i)) + "\n" for i in range(24)))
    (d / "val.jsonl").write_text("".join(json.dumps(example(i)) + "\n" for i in range(6)))
    return d


def cfg(tmp_path, data, tiny, **kw):
    base = dict(input_dir=data, output_dir=tmp_path / "runs", model=str(tiny), run_name="t", num_train_epochs=4,
                learning_rate=5e-3, per_device_train_batch_size=4, gradient_accumulation_steps=1, lora_r=8,
                lora_alpha=16, max_length=128, early_stopping_patience=0, gradient_checkpointing=False)
    base.update(kw)
    return stage.Config(**base)


def test_trains_loss_falls_and_writes_the_run(tmp_path, data, tiny):
    metrics = stage.main(cfg(tmp_path, data, tiny))
    run = tmp_path / "runs" / "t"
    assert metrics["eval_loss"][-1] < metrics["eval_loss"][0]
    assert len(metrics["eval_loss"]) == 4 and len(metrics["train_loss"]) == 4
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert metrics["quantization"] == "fp32 (CPU)" and metrics["tokens_per_second"] > 0
    assert (run / "adapter_model.safetensors").is_file() and (run / "adapter_config.json").is_file()
    assert (run / "tokenizer.json").is_file() and not (run / "checkpoints").exists()
    saved = json.loads((run / "run_config.json").read_text())
    assert saved["config"]["lora_r"] == 8 and saved["system_message"] == SYSTEM and "trl" in saved["libraries"]
    assert json.loads((run / "metrics.json").read_text())["best_eval_loss"] == metrics["best_eval_loss"]


def test_only_lora_weights_change_and_the_adapter_reloads_and_generates(tmp_path, data, tiny):
    config = cfg(tmp_path, data, tiny, num_train_epochs=2)
    train, _ = stage.read_jsonl(data / "train.jsonl", logging.getLogger())
    run = tmp_path / "run"
    trainer, tok = stage.build_trainer(config, train, [], run, False, logging.getLogger())
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and all("lora_" in n for n in changed)
    assert {n for n in before if "lora_" in n} == changed
    trainer.save_model(str(run))

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny)), str(run))
    prompt = tok.apply_chat_template(train[0]["prompt"], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_loss_mask_covers_exactly_the_answer(tmp_path, data, tiny):
    train, _ = stage.read_jsonl(data / "train.jsonl", logging.getLogger())
    trainer, tok = stage.build_trainer(cfg(tmp_path, data, tiny), train, [], tmp_path / "run", False,
                                       logging.getLogger())
    row = trainer.train_dataset[0]
    batch = trainer.data_collator([row])
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    labelled = ids[labels != -100]
    answer = train[0]["completion"][0]["content"]
    # the labelled tokens are the DOIs and the end of the assistant's turn, nothing of the request
    assert tok.decode(labelled) == answer + "<|im_end|>\n"
    assert tok.decode(ids[labels == -100]).endswith("<|im_start|>assistant\n")
    assert "Could you point me" in tok.decode(ids[labels == -100])


def test_malformed_and_empty_lines_are_reported_by_number(tmp_path, data, tiny, capsys):
    lines = (data / "train.jsonl").read_text().splitlines()
    lines.insert(2, "{not json")
    lines.insert(4, "")
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1))
    assert metrics["skipped_lines"][0].startswith("train.jsonl line 3: malformed")
    assert metrics["skipped_lines"][1] == "train.jsonl line 5: empty line"
    assert metrics["train_examples"] == 24


def test_too_long_examples_stop_the_run_unless_dropped(tmp_path, data, tiny):
    with pytest.raises(SystemExit, match=r"longer than --max-length 40 tokens \(the longest has \d+\)"):
        stage.main(cfg(tmp_path, data, tiny, max_length=40))


def test_runs_sit_side_by_side_and_are_not_overwritten(tmp_path, data, tiny):
    stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, run_name="ep1"))
    stage.main(cfg(tmp_path, data, tiny, num_train_epochs=2, run_name="ep2"))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ep1", "ep2"]
    with pytest.raises(SystemExit, match="exists; choose another --run-name or pass --overwrite"):
        stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, run_name="ep1"))
    assert stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, run_name="ep1", overwrite=True))["steps"] == 6


def test_clear_errors(tmp_path, data, tiny):
    with pytest.raises(SystemExit, match="run stage 07 first"):
        stage.main(cfg(tmp_path, tmp_path / "nothing", tiny))
    with pytest.raises(SystemExit, match="cannot load model"):
        stage.main(cfg(tmp_path, data, tmp_path / "no-such-model"))


def test_default_config_is_the_real_qlora_recipe():
    c = stage.Config()
    assert c.model == "meta-llama/Llama-3.1-8B-Instruct" and c.load_in_4bit and c.target_modules == "all-linear"
    assert 1e-4 <= c.learning_rate <= 2e-4 and c.gradient_checkpointing


def test_merge_writes_a_standalone_model(tmp_path, data, tiny):
    stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, merge=True))
    merged = tmp_path / "runs" / "t" / "merged"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(merged))
    assert not any("lora_" in n for n, _ in model.named_parameters())
    assert next(model.parameters()).dtype == torch.bfloat16


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, data, tiny):
    config = cfg(tmp_path, data, tiny, num_train_epochs=2)
    train, _ = stage.read_jsonl(data / "train.jsonl", logging.getLogger())
    val, _ = stage.read_jsonl(data / "val.jsonl", logging.getLogger())
    run = tmp_path / "runs" / "t"
    trainer, _ = stage.build_trainer(config, train, val, run, False, logging.getLogger())
    trainer.train()  # two epochs, a checkpoint after each, then "interrupted": no metrics.json
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-6"]
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=3))
    assert metrics["resumed_from"] == "checkpoint-12"
    assert metrics["steps"] == 18 and len(metrics["eval_loss"]) == 3
