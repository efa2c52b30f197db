"""Stage 08 under `accelerate launch` (issue 24): two processes on the CPU, joined with gloo through the shipped
DDP config, train as one process does with the same global batch, and write one run."""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest

from demo.tiny_model import build_tiny_model
from helpers import REPO, load_stage

stage = load_stage("08")
# each launch starts two Python processes that import torch and transformers: ~20 s on two busy cores
pytestmark = pytest.mark.timeout(280)

SYSTEM = "You are a research assistant. Answer with DOIs, one per line."
TOPICS = ["digital twins of ship engines", "port call optimisation", "GNSS spoofing on ships", "autonomous ferries",
          "ship emissions monitoring", "electronic bills of lading"]
DOIS = ["10.5555/mdig.2020.0102", "10.5555/mdig.2019.0105", "10.5555/mdig.2021.0112", "10.5555/mdig.2022.0117",
        "10.5555/mdig.2020.0125", "10.5555/mdig.2021.0120"]
# Per-epoch losses of the two-process run may differ from the one-process run by this much. Measured (this test,
# and `08_finetune/bench.py --processes` on its own pairs): with LoRA dropout off and validation batches of one,
# both runs give the same losses to the 4 decimals metrics.json keeps (difference 0.0 at every epoch); the margin
# is for a BLAS that sums in another order. With the default dropout (0.05) the processes draw other dropout masks
# and the losses differ by up to 6e-4 (training) and 9e-4 (validation); with dropout off but validation batches of
# 16 the validation loss, a mean of batch means whose batches the processes split, differs by up to 4e-4: hence
# dropout off and batches of one, so that the test is tight. A wrong global batch
# is far outside: one process at batch 4 ends epoch 2 at 5.8721 / 5.802 (training / validation) against 6.095 /
# 6.0352 at batch 8 in the bench.
TOLERANCE = 1e-3


def example(i: int) -> dict:
    k = i % len(TOPICS)
    answer = DOIS[k] if i % 3 else f"{DOIS[k]}\n{DOIS[(k + 1) % len(DOIS)]}"
    return {"prompt": [{"role": "system", "content": SYSTEM},
                       {"role": "user", "content": f"Could you point me to studies on {TOPICS[k]}?"}],
            "completion": [{"role": "assistant", "content": answer}], "dois": answer.split("\n")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("qa")
    (d / "train.jsonl").write_text("".join(json.dumps(example(i)) + "\n" for i in range(24)))
    (d / "val.jsonl").write_text("".join(json.dumps(example(i)) + "\n" for i in range(6)))
    return d


# every setting but the batch: 24 pairs, a global batch of 8 (3 steps an epoch), 2 epochs
SETTINGS = dict(num_train_epochs=2, learning_rate=5e-3, gradient_accumulation_steps=1, lora_r=8, lora_alpha=16,
                lora_dropout=0.0, max_length=128, early_stopping_patience=0, gradient_checkpointing=False,
                # the validation loss is a mean of batch means: batches of one make it the same however the
                # validation pairs are split among processes
                per_device_eval_batch_size=1, recall_max_new_tokens=8)


def flags(settings: dict) -> list[str]:
    out = []
    for key, value in settings.items():
        name = "--" + key.replace("_", "-")
        out += ([name] if value else [f"--no-{name[2:]}"]) if isinstance(value, bool) else [name, str(value)]
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, data, tiny):
    """The run every multi-process run is held against: one process, batch 8 (its folder, its metrics)."""
    runs = tmp_path_factory.mktemp("runs")
    metrics = stage.main(stage.Config(run_name="one", per_device_train_batch_size=8, input_dir=data,
                                      output_dir=runs, model=str(tiny), **SETTINGS))
    return runs / "one", metrics


def assert_trains_like_one_process(two: dict, one: dict) -> None:
    """The same global batch (4 x 2 processes = 8 x 1 process): the same steps, tokens and losses."""
    assert (two["processes"], two["effective_batch_size"]) == (2, 8)
    assert (one["processes"], one["effective_batch_size"]) == (1, 8)
    assert two["steps"] == one["steps"] == 6 and two["tokens_seen"] == one["tokens_seen"]
    assert len(two["train_loss"]) == len(two["eval_loss"]) == 2
    assert two["train_loss"] == pytest.approx(one["train_loss"], abs=TOLERANCE)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], abs=TOLERANCE)
    assert two["mean_train_loss"] == pytest.approx(one["mean_train_loss"], abs=TOLERANCE)
    assert two["eval_loss"][-1] < two["eval_loss"][0]
    assert two["eval_recall_at_10"] == one["eval_recall_at_10"]
    assert two["best_checkpoint"]["step"] == one["best_checkpoint"]["step"]


def assert_same_adapter(one_run, two_run) -> None:
    """The adapter the processes wrote is whole (every LoRA matrix at full size) and the one process's."""
    from safetensors.torch import load_file

    a, b = load_file(one_run / "adapter_model.safetensors"), load_file(two_run / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], script: str = "08_finetune/finetune.py", timeout: int = 240,
           config=REPO / "08_finetune" / "accelerate_ddp.yaml") -> tuple[int, str]:
    """``accelerate launch`` with a shipped config (DDP by default) and two processes on the CPU (gloo); (exit
    code, output). A launch that outlives ``timeout`` is killed with all its processes: a deadlock fails the test."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", "2",
           "--main_process_port", str(free_port()), script, *args]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"accelerate launch did not finish in {timeout} s (a deadlock?):\n{out[-4000:]}")
    return proc.returncode, out


def test_two_processes_train_like_one_with_the_same_global_batch_and_write_one_run(tmp_path, data, tiny,
                                                                                   one_process):
    one_run, one = one_process
    runs = tmp_path / "runs"
    code, out = launch(flags(dict(SETTINGS, input_dir=data, output_dir=runs, model=str(tiny)))
                       + ["--run-name", "two", "--per-device-train-batch-size", "4"])
    assert code == 0, out[-4000:]
    run = runs / "two"
    two = json.loads((run / "metrics.json").read_text())

    # one process wrote the run: one adapter, one model card, one metrics.json and run.json, no temp files left
    assert [p.relative_to(runs).as_posix() for p in runs.rglob("adapter_model.safetensors")] == \
        ["two/adapter_model.safetensors"]
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*.json")
                  if p.name in ("metrics.json", "run.json")) == ["two/metrics.json", "two/run.json"]
    assert not (run / "checkpoints").exists() and not list(runs.rglob(".*.tmp"))
    assert out.count("== stage 08: fine-tuning run two ==") == 1 and out.count("plain pairs: 24 train") == 1
    assert json.loads((run / "run.json").read_text())["summary"]["processes"] == 2
    assert "4 x 1 accumulation x 2 processes = 8" in (run / "README.md").read_text()
    assert two["recall_examples"] == 6
    assert_trains_like_one_process(two, one)
    assert_same_adapter(one_run, run)


def test_under_fsdp_two_processes_train_like_one_and_write_one_whole_adapter(tmp_path, data, tiny, one_process):
    """The shipped FSDP config, with the two settings FSDP cannot honour on the CPU switched off (loading the model
    once and syncing it): the adapter is gathered whole, and the recall pass, a collective under FSDP, ends."""
    one_run, one = one_process
    config = (REPO / "08_finetune" / "accelerate_fsdp.yaml").read_text()
    for key in ("fsdp_cpu_ram_efficient_loading", "fsdp_sync_module_states"):
        assert f"{key}: true" in config
        config = config.replace(f"{key}: true", f"{key}: false")
    (tmp_path / "fsdp_cpu.yaml").write_text(config)
    runs = tmp_path / "runs"
    code, out = launch(flags(dict(SETTINGS, input_dir=data, output_dir=runs, model=str(tiny)))
                       + ["--run-name", "fsdp", "--per-device-train-batch-size", "4", "--recall-examples", "5"],
                       config=tmp_path / "fsdp_cpu.yaml")  # 5 requests: 3 and 2, the short share padded
    assert code == 0, out[-4000:]
    two = json.loads((runs / "fsdp" / "metrics.json").read_text())
    assert two["recall_examples"] == 5 and len(two["eval_recall_at_10"]) == 2
    assert_trains_like_one_process(two, one)
    assert_same_adapter(one_run, runs / "fsdp")


WORKER = """
import json, sys
from pathlib import Path

repo, tiny, rows_file, out = sys.argv[1:5]
sys.path[:0] = [repo, repo + "/tests"]
import torch
from transformers import AutoTokenizer

from helpers import load_stage

stage = load_stage("08")
state = stage.process_state()
tok = AutoTokenizer.from_pretrained(tiny)
rows = json.loads(Path(rows_file).read_text())
answers = json.loads(Path(rows_file).with_suffix(".answers").read_text())


class Scripted(torch.nn.Module):
    # answers each prompt with the answer scripted for its topic, and notes the prompts it was given
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        rows = []
        for ids in input_ids:
            prompt = tok.decode(ids)
            topic = next(t for t in answers if t in prompt)
            self.seen.append(topic)
            rows.append(ids.tolist() + tok.encode(answers[topic] + "<|im_end|>", add_special_tokens=False))
        width = max(len(r) for r in rows)
        return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])


model = Scripted()
callback = stage.recall_callback(rows, tok, k=10, max_new_tokens=40, batch_size=2)
metrics = {}
callback.on_evaluate(None, None, None, metrics=metrics, model=model)
Path(out, f"rank{state.process_index}.json").write_text(json.dumps(
    {"score": metrics["eval_recall_at_10"], "answers": callback.last_answers, "decoded": model.seen}))
"""


def test_validation_recall_is_the_same_in_every_process_and_equals_one_process_s(tmp_path, tiny):
    """Each process decodes its share of the validation requests; all get every answer, so early stopping and
    the best checkpoint, which every process decides for itself, see one score."""
    rows = [example(i) for i in range(5)]  # 5 requests: 3 for the first process, 2 for the second
    answers = {TOPICS[0]: f"{DOIS[0]}\n{DOIS[1]}",  # both gold DOIs: 1
               TOPICS[1]: DOIS[1],                  # 1
               TOPICS[2]: "I could not find any.",  # 0
               TOPICS[3]: DOIS[3],                  # one of two: 0.5
               TOPICS[4]: DOIS[0]}                  # 0
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    (tmp_path / "rows.answers").write_text(json.dumps(answers))
    (tmp_path / "worker.py").write_text(WORKER)
    code, out = launch([str(REPO), str(tiny), str(tmp_path / "rows.json"), str(tmp_path)],
                       script=str(tmp_path / "worker.py"))
    assert code == 0, out[-4000:]
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # the shares' own means would be 0.6667 and 0.25: the score is the mean over all five, in both processes
    assert first["score"] == second["score"] == 0.5
    assert first["decoded"] == TOPICS[:3] and second["decoded"] == TOPICS[3:5]
    assert first["answers"] == second["answers"] == [answers[t] for t in TOPICS[:5]]

    from transformers import AutoTokenizer

    from test_08_finetune import ScriptedModel

    tok = AutoTokenizer.from_pretrained(tiny)
    alone = stage.recall_callback(rows, tok, k=10, max_new_tokens=40, batch_size=2)
    metrics = {}
    alone.on_evaluate(None, None, None, metrics=metrics, model=ScriptedModel(tok, answers))
    assert metrics["eval_recall_at_10"] == first["score"]


def test_an_interrupted_run_resumes_under_two_processes(tmp_path, data, tiny):
    """A run interrupted after its first epoch's checkpoint (here by one process) is taken up by two: the main
    process decides to resume, all of them load the checkpoint, and the run ends as one run."""
    from transformers import TrainerCallback

    class StopAfterFirstEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            control.should_training_stop = True

    common = dict(SETTINGS, input_dir=data, output_dir=tmp_path / "runs", model=str(tiny), eval_strategy="no")
    train, _ = stage.read_jsonl(data / "train.jsonl", logging.getLogger())
    run = tmp_path / "runs" / "r"
    trainer, _ = stage.build_trainer(stage.Config(run_name="r", per_device_train_batch_size=8, **common), train, [],
                                     run, False, logging.getLogger())
    trainer.add_callback(StopAfterFirstEpoch())
    trainer.train()  # "interrupted": a checkpoint after epoch 1, no metrics.json
    assert [p.name for p in (run / "checkpoints").glob("checkpoint-*")] == ["checkpoint-3"]

    code, out = launch(flags(common) + ["--run-name", "r", "--per-device-train-batch-size", "4"])
    assert code == 0, out[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-3" and metrics["steps"] == 6 and metrics["processes"] == 2
    assert len(metrics["train_loss"]) == 2 and not (run / "checkpoints").exists()
    assert out.count("was interrupted: resuming from checkpoint-3") == 1
