"""Stage 08 on the CPU: a tiny local model, the real script, TRL's SFTTrainer underneath."""
from __future__ import annotations

import importlib.util
import json
import logging
import math
import shutil

import pytest
import torch

import pipeline_utils as pu
from demo.tiny_model import build_tiny_model
from helpers import import_bitsandbytes_offline, load_stage

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


def cfg(tmp_path, qa, tiny, **kw):
    base = dict(input_dir=qa, output_dir=tmp_path / "runs", model=str(tiny), run_name="t", num_train_epochs=4,
                learning_rate=5e-3, per_device_train_batch_size=4, gradient_accumulation_steps=1, lora_r=8,
                lora_alpha=16, max_length=128, early_stopping_patience=0, gradient_checkpointing=False,
                recall_max_new_tokens=12)  # the untrained tiny model rambles to the limit: keep decoding short
    base.update(kw)
    return stage.Config(**base)


def test_trains_loss_falls_and_writes_the_run(tmp_path, data, tiny):
    metrics = stage.main(cfg(tmp_path, data, tiny))
    run = tmp_path / "runs" / "t"
    assert metrics["eval_loss"][-1] < metrics["eval_loss"][0]
    assert len(metrics["eval_recall_at_10"]) == 4 and metrics["recall_examples"] == 6
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
    assert not (tmp_path / "runs").exists()


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
    assert c.model == pu.topic_value("models.base_model", "") == "meta-llama/Llama-3.1-8B-Instruct"
    assert c.load_in_4bit and c.target_modules == "all-linear"
    assert 1e-4 <= c.learning_rate <= 2e-4 and c.gradient_checkpointing
    assert c.select_best_by == "recall" and c.data == "plain"


def test_on_the_cpu_4bit_is_asked_for_with_cpu_4bit_and_what_runs_is_recorded(tmp_path, data, tiny):
    plain = stage.precision(stage.Config(), cuda=False)
    assert not plain["quantise"] and plain["label"] == "fp32 (CPU)" and "--cpu-4bit" in plain["reason"]
    assert stage.precision(stage.Config(load_in_4bit=False, cpu_4bit=True), cuda=False)["label"] == "fp32 (CPU)"
    import_bitsandbytes_offline()
    if stage.cpu_4bit_unsupported():
        pytest.skip(f"bitsandbytes has no 4-bit CPU backend here: {stage.cpu_4bit_unsupported()}")
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, eval_strategy="no", cpu_4bit=True))
    assert metrics["base_weights_4bit"] is True
    assert metrics["quantization"] == "4-bit NF4, double quantisation, bf16 compute (CPU, bitsandbytes)"
    assert metrics["quantization"] in (tmp_path / "runs" / "t" / "README.md").read_text()
    assert all(math.isfinite(v) for v in metrics["train_loss"])


def test_a_gguf_model_is_recorded_in_the_adapter_by_its_absolute_path(tmp_path, data, tiny, monkeypatch):
    """The adapter names the base model as the user gave it, so that stages 09 and 10 resolve it again; the
    folder it was loaded from (the model cache) is not recorded."""
    gguf = tmp_path / "models" / "m.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"stands for a GGUF file")
    monkeypatch.setattr(stage.ct, "resolve_model", lambda spec: str(tiny) if spec.endswith(".gguf") else spec)
    monkeypatch.chdir(tmp_path)
    stage.main(cfg(tmp_path, data, tiny, model="models/m.gguf", run_name="", num_train_epochs=1,
                   eval_strategy="no"))
    run = next((tmp_path / "runs").iterdir())
    assert run.name.startswith("m-ep1-")  # named after the file, without .gguf
    adapter = json.loads((run / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(gguf.resolve())
    assert stage.ct.base_model_of(run) == str(gguf.resolve())


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


# --- choosing the checkpoint by what the model cites (issue 14) ---------------------------------

def test_recall_at_k_counts_gold_dois_among_the_first_k_written():
    assert stage.recall_at_k(["10.5/a", "10.5/b", "10.5/c"], ["10.5/C", "10.5/d"], k=3) == 0.5
    assert stage.recall_at_k(["10.5/a", "10.5/b", "10.5/c"], ["10.5/c"], k=2) == 0.0
    assert stage.recall_at_k([], ["10.5/a"], k=10) == 0.0


class ScriptedModel(torch.nn.Module):
    """Stands in for a fine-tuned model whose answers are known: ``generate`` appends, to each prompt,
    the answer scripted for the topic the prompt asks about."""

    def __init__(self, tokenizer, answers: dict[str, str]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer, self.answers = tokenizer, answers

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids in input_ids:
            prompt = self.tokenizer.decode(ids)
            answer = next(a for topic, a in self.answers.items() if topic in prompt)
            rows.append(ids.tolist() + self.tokenizer.encode(answer + "<|im_end|>", add_special_tokens=False))
        width = max(len(r) for r in rows)
        return torch.tensor([r + [self.tokenizer.pad_token_id] * (width - len(r)) for r in rows])


def test_recall_callback_scores_the_dois_the_model_writes(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerControl, TrainerState, TrainingArguments

    tok = AutoTokenizer.from_pretrained(tiny)
    rows = [example(i) for i in range(4)]  # gold: DOIS[0] and [1]; [1]; [2]; [3] and [4]
    args, state, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerState(), TrainerControl()
    scripted = ScriptedModel(tok, {
        TOPICS[0]: f"{DOIS[0]}\n{DOIS[4]}",           # one of two gold DOIs: 0.5
        TOPICS[1]: f"https://doi.org/{DOIS[1].upper()}",  # resolver prefix, upper case: still the gold DOI: 1
        TOPICS[2]: "I could not find any.",               # no DOI: 0
        TOPICS[3]: f"{DOIS[5]}\n{DOIS[4]}"})              # one of two, second: 0.5 (0 at k=1)
    callback = stage.recall_callback(rows, tok, k=10, max_new_tokens=40, batch_size=3)
    metrics = {"eval_loss": 0.1}
    callback.on_evaluate(args, state, control, metrics=metrics, model=scripted)
    assert metrics == {"eval_loss": 0.1, "eval_recall_at_10": 0.5}
    assert callback.last_answers[2] == "I could not find any."
    # k counts: with k=1 only the first DOI written counts
    callback = stage.recall_callback(rows, tok, k=1, max_new_tokens=40, batch_size=4)
    callback.on_evaluate(args, state, control, metrics=metrics, model=scripted)
    assert metrics["eval_recall_at_1"] == 0.375

    # the real tiny model: greedy decoding with left padding, the model put back in training mode after
    model = AutoModelForCausalLM.from_pretrained(str(tiny)).train()
    callback = stage.recall_callback(rows, tok, k=10, max_new_tokens=12, batch_size=3)
    callback.on_evaluate(args, state, control, metrics=metrics, model=model)
    assert len(callback.last_answers) == 4 and metrics["eval_recall_at_10"] == 0.0
    assert model.training and tok.padding_side == "right"  # the trainer's tokenizer is left as it was
    alone = stage.generate_answers(model, tok, [rows[3]["prompt"]], 12, 1)
    assert alone == callback.last_answers[3:]  # padding does not change an answer


def test_grounded_validation_recall_ranks_the_prompts_candidates_by_likelihood_without_decoding(tiny, monkeypatch):
    import citation_tools as ct
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerControl, TrainerState, TrainingArguments

    tok = AutoTokenizer.from_pretrained(tiny)
    works = [{"doi": d, "title": f"Work {i}", "authors": [], "year": "2020"} for i, d in enumerate(DOIS[:4])]
    rows = []
    for i, gold in enumerate((DOIS[1], DOIS[3])):
        ex = example(i)
        ex["prompt"] = [ex["prompt"][0], {"role": "user", "content": ct.grounded_user_message(TOPICS[i], works)}]
        ex["dois"] = [gold]
        rows.append(ex)
    monkeypatch.setattr(stage, "generate_answers", lambda *a, **kw: pytest.fail("grounded recall must not decode"))
    model = AutoModelForCausalLM.from_pretrained(str(tiny)).train()
    args, state, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerState(), TrainerControl()
    callback = stage.recall_callback(rows, tok, k=4, max_new_tokens=12, batch_size=2)
    metrics = {}
    callback.on_evaluate(args, state, control, metrics=metrics, model=model)
    assert metrics["eval_recall_at_4"] == 1.0  # every candidate is ranked, and the gold one is a candidate
    ranked = ct.rank_by_likelihood(model, tok, [r["prompt"] for r in rows], [DOIS[:4]] * 2)
    assert callback.last_answers == ["\n".join(r) for r in ranked] and model.training


def test_best_checkpoint_is_chosen_by_validation_recall_not_by_loss(tmp_path, data, tiny):
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=2))
    best, recall, losses = metrics["best_checkpoint"], metrics["eval_recall_at_10"], metrics["eval_loss"]
    assert best["metric"] == "eval_recall_at_10" and best["value"] == max(recall)
    assert best["step"] == 6 * (recall.index(max(recall)) + 1)  # 6 steps an epoch; a tie keeps the earlier one
    # the tiny model never writes a right DOI in two epochs: its loss falls, yet the first checkpoint is kept
    assert recall == [0.0, 0.0] and losses[-1] < losses[0] and best["eval_loss"] == pytest.approx(losses[0], abs=1e-3)
    history = json.loads((tmp_path / "runs" / "t" / "run.json").read_text())["summary"]
    assert history["best_checkpoint"]["step"] == best["step"]


def test_select_best_by_loss_keeps_the_lowest_validation_loss(tmp_path, data, tiny):
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=2, select_best_by="loss", recall_examples=1))
    assert metrics["best_checkpoint"]["metric"] == "eval_loss"
    assert metrics["best_checkpoint"]["value"] == pytest.approx(min(metrics["eval_loss"]), abs=1e-3)


def test_drop_long_drops_exactly_the_long_rows_of_each_split(tmp_path, tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    long_request = "Could you point me to studies on " + "autonomous ferries and port call optimisation " * 6 + "?"
    train = [example(i) for i in range(8)]
    val = [example(i) for i in range(6)]
    for rows, positions in ((train, (1, 5)), (val, (0, 3))):
        for i in positions:
            rows[i]["prompt"][1]["content"] = long_request
    kept_train, kept_val, dropped = stage.drop_long_examples(
        train, val, stage.example_lengths(train, tok), stage.example_lengths(val, tok), 128)
    assert dropped == {"train": 2, "val": 2}
    assert kept_train == [r for i, r in enumerate(train) if i not in (1, 5)]
    assert kept_val == [val[1], val[2], val[4], val[5]]

    d = tmp_path / "qa"
    d.mkdir()
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    (d / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    metrics = stage.main(cfg(tmp_path, d, tiny, num_train_epochs=1, drop_long=True))
    assert metrics["dropped_long"] == {"train": 2, "val": 2}
    assert metrics["train_examples"] == 6 and metrics["val_examples"] == 4 and metrics["recall_examples"] == 4


def test_parameter_count_is_peft_s_and_counts_4bit_weights_whole():
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q = bnb.nn.Linear4bit(64, 32, bias=False, compute_dtype=torch.float32, quant_type="nf4")
            self.o = torch.nn.Linear(32, 8)

    model = get_peft_model(Net().to("cpu"), LoraConfig(r=4, target_modules=["q"]))  # .to() packs q's weight
    assert sum(p.numel() for p in model.parameters()) == 1024 + 264 + 384  # two 4-bit values per stored byte
    trainable, total = stage.parameter_counts(model)
    assert (trainable, total) == model.get_nb_trainable_parameters() == (4 * 64 + 32 * 4, 64 * 32 + 264 + 384)


def test_trainable_and_total_parameters_of_a_run_match_peft(tmp_path, data, tiny):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=1, eval_strategy="no"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny)), str(tmp_path / "runs" / "t"),
                                      is_trainable=True)
    assert (metrics["trainable_parameters"], metrics["total_parameters"]) == model.get_nb_trainable_parameters()
    assert metrics["best_checkpoint"]["metric"] == "" and metrics["recall_examples"] == 0


# --- what a run folder holds (issues 11, 16, 19) ------------------------------------------------

def test_run_folder_has_a_model_card_loss_curve_run_json_and_tensorboard_logs(tmp_path, data, tiny, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    topic = tmp_path / "topic.toml"
    topic.write_text('[topic]\nname = "offshore wind logistics"\n[models]\nbase_model = "x/y"\n')
    monkeypatch.setenv("PIPELINE_TOPIC", str(topic))
    metrics = stage.main(cfg(tmp_path, data, tiny, num_train_epochs=2, report_to="tensorboard"))
    run = tmp_path / "runs" / "t"
    card = (run / "README.md").read_text()
    assert "[More Information Needed]" not in card
    assert f"base_model: \"{tiny}\"" in card and "offshore wind logistics" in card
    assert "24 for training, 6 for validation" in card
    assert f"| 2 | {metrics['train_loss'][1]:.4f} | {metrics['eval_loss'][1]:.4f} | 0.0000 |" in card
    assert f"best eval_recall_at_10 = 0.0 (step {metrics['best_checkpoint']['step']})" in card
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((run / "run.json").read_text())
    assert record["stage"] == "08_finetune" and record["config"]["num_train_epochs"] == 2
    assert any(p.endswith("train.jsonl") for p in record["inputs"])
    events = EventAccumulator(str(run / "tensorboard")).Reload()  # not under checkpoints/, which is removed
    assert {"train/loss", "eval/loss", "eval/recall_at_10"} <= set(events.Tags()["scalars"])


def test_report_to_a_missing_package_is_refused_before_any_folder(tmp_path, data, tiny):
    if importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here")
    with pytest.raises(SystemExit, match=r"^error: --report-to wandb needs the wandb package, which is not installed"):
        stage.main(cfg(tmp_path, data, tiny, report_to="wandb"))
    with pytest.raises(SystemExit, match="'tensorbored' is not a trainer integration"):
        stage.main(cfg(tmp_path, data, tiny, report_to="tensorbored"))
    assert not (tmp_path / "runs").exists()


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path, data, tiny):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SystemExit, match="cannot load model"):
        stage.main(cfg(tmp_path, data, broken))
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("name", ["..", ".", "../elsewhere", "/tmp/run", "a/b"])
def test_run_name_escaping_the_output_folder_is_refused_in_one_line(tmp_path, data, tiny, name):
    with pytest.raises(SystemExit, match="must be a plain folder name"):
        stage.main(cfg(tmp_path, data, tiny, run_name=name))
    assert not (tmp_path / "runs").exists()


# --- grounded pairs (issue 15) ------------------------------------------------------------------

def grounded(i: int, n: int = 20) -> dict:
    """A grounded pair as stage 07 writes it: the request, then n candidate works, gold among them."""
    import citation_tools as ct

    row = example(i)
    works = [{"doi": f"10.5555/mdig.{2000 + j}.{j:04d}", "title": f"Maritime study number {j} on {TOPICS[j % 6]}",
              "authors": [f"Author{j}, A."], "year": str(2000 + j)} for j in range(n - 1)]
    works.insert(i % n, {"doi": row["dois"][0], "title": f"On {TOPICS[i % 6]}", "authors": ["Berg, K."],
                         "year": "2020"})
    row["prompt"][1]["content"] = ct.grounded_user_message(row["prompt"][1]["content"], works)
    return row


def test_grounded_pairs_train_with_the_long_prompt_budget_and_report_prompt_lengths(tmp_path, data, tiny):
    (data / "grounded_train.jsonl").write_text("".join(json.dumps(grounded(i)) + "\n" for i in range(8)))
    (data / "grounded_val.jsonl").write_text("".join(json.dumps(grounded(i)) + "\n" for i in range(2)))
    metrics = stage.main(cfg(tmp_path, data, tiny, data="grounded", max_length=0, num_train_epochs=1,
                             run_name="g", recall_examples=1))
    plain = stage.prompt_lengths([example(0)], stage.load_tokenizer(str(tiny)))[0]
    assert metrics["data"] == "grounded" and metrics["max_length"] == 2048
    assert metrics["train_examples"] == 8 and metrics["recall_examples"] == 1
    assert metrics["prompt_tokens"]["p50"] > 10 * plain  # twenty candidate lines
    assert set(metrics["prompt_tokens"]) == {"p50", "p90", "p99", "max"}
    assert json.loads((tmp_path / "runs" / "g" / "run_config.json").read_text())["config"]["data"] == "grounded"


def test_grounded_data_missing_says_to_run_stage_07_with_grounded(tmp_path, data, tiny):
    with pytest.raises(SystemExit, match="grounded_train.jsonl not found: run stage 07 with --grounded first"):
        stage.main(cfg(tmp_path, data, tiny, data="grounded"))


def test_cpu_training_scores_only_the_answer_positions_with_the_same_losses(tmp_path, data, tiny, monkeypatch):
    """On the CPU TRL's fused LM head projects only the positions that have a label (the answer), as it does on
    Triton devices: the training and validation losses are those of the head over every position."""
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils._use_triton, "original", trl_utils._use_triton)  # TRL's own, even if patched
    seen = []

    def every_position(device):
        seen.append(device.type)
        return original(device)

    monkeypatch.setattr(trl_utils, "_use_triton", every_position)
    monkeypatch.setattr(stage, "score_label_positions_only", lambda: False)  # TRL's own choice: every position
    full = stage.main(cfg(tmp_path / "full", data, tiny, num_train_epochs=1))
    assert seen and not original(torch.device("cpu"))  # the head ran, and chose every position on the CPU
    monkeypatch.undo()
    monkeypatch.setattr(trl_utils, "_use_triton", every_position)
    compact = stage.main(cfg(tmp_path / "compact", data, tiny, num_train_epochs=1))
    assert trl_utils._use_triton(torch.device("cpu"))  # now it scores the label positions only
    assert compact["train_loss"] == pytest.approx(full["train_loss"], abs=1e-4)
    assert compact["eval_loss"] == pytest.approx(full["eval_loss"], abs=1e-4)
