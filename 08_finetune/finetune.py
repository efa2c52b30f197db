"""Stage 08: QLoRA supervised fine-tuning of an open instruct model on the (request -> DOIs) pairs.

    python 08_finetune/finetune.py                                              # Llama-3.1-8B-Instruct, QLoRA
    python 08_finetune/finetune.py --data grounded --run-name llama8b-grounded  # requests with 20 candidate works
    python 08_finetune/finetune.py --num-train-epochs 5 --run-name llama8b-ep5  # a second run beside the first
    python 08_finetune/finetune.py --model Qwen/Qwen2.5-0.5B-Instruct --max-steps 50
    accelerate launch --config_file 08_finetune/accelerate_ddp.yaml 08_finetune/finetune.py --gradient-accumulation-steps 1
                                                                          # 2 GPUs (DDP; FSDP: accelerate_fsdp.yaml)

TRL's SFTTrainer does the training; this script configures it: 4-bit NF4 with
double quantisation and bf16 compute on CUDA, LoRA on all linear layers,
gradient checkpointing, the model's own chat template, loss on the answer
tokens only (stage 07 writes prompt-completion data). Each epoch it evaluates on
the validation split: the loss, and the recall@k of the DOIs the model writes
for the validation requests (greedy decoding); the checkpoint that cites best is
kept, not the one with the lowest loss, which rises as DOIs are memorised.
Without CUDA the same script trains in full precision on the CPU (how the tests run it), or with
--cpu-4bit in 4-bit NF4 through bitsandbytes' CPU backend. --model also takes a .gguf file or smollm2
(the packaged SmolLM2-135M-Instruct), converted once to an ordinary model folder (citation_tools.resolve_model).
Under `accelerate launch` every process runs all of main() and trains its share of each batch; the main process
alone decides whether to resume and writes the run (see the README, "Several GPUs").
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import citation_tools as ct  # noqa: E402
import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
# What each kind of pair is called in stage 07's output, and the token budget it needs by default:
# a plain prompt is a system message and a request (~100 tokens on Llama 3.1); a grounded one adds
# 20 candidate works, one line each (~1,000 tokens in all, see the README), so it gets 2,048.
DATA_FILES = {"plain": "{split}.jsonl", "grounded": "grounded_{split}.jsonl"}
DEFAULT_MAX_LENGTH = {"plain": 512, "grounded": 2048}


@dataclass
class Config:
    """Fine-tune an instruct model with QLoRA on stage 07's request -> DOIs pairs."""

    input_dir: Path = HERE.parent / "07_qa_formatting" / "output"
    """Stage 07's output (train.jsonl and val.jsonl, or grounded_train.jsonl and grounded_val.jsonl)."""
    output_dir: Path = HERE / "output"
    """Runs go to output/<run_name>/."""
    data: Literal["plain", "grounded"] = "plain"
    """Which pairs to train on: plain (request -> DOIs) or grounded (request + retrieved candidate works -> DOIs)."""
    model: str = pu.topic_value("models.base_model", "meta-llama/Llama-3.1-8B-Instruct")
    """Base model: a Hugging Face id (gated models need `hf auth login` and the licence accepted), a local folder, a .gguf file (converted once to a folder in the model cache) or smollm2 (the packaged SmolLM2-135M-Instruct, see the README)."""
    run_name: str = ""
    """Name of the run's folder; empty: <model>-<data>-ep<epochs>-lr<learning rate>-r<lora r>."""
    num_train_epochs: float = 3.0
    """Passes over the training pairs."""
    max_steps: int = -1
    """Stop after this many optimiser steps (overrides epochs when > 0)."""
    learning_rate: float = 2e-4
    """Peak learning rate (QLoRA's usual range: 1e-4 to 2e-4)."""
    lr_scheduler_type: str = "cosine"
    """Learning-rate schedule."""
    warmup_ratio: float = 0.03
    """Share of the steps spent warming the learning rate up."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling (alpha / r multiplies the update)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    target_modules: str = "all-linear"
    """Modules that get adapters: 'all-linear' (QLoRA's recipe) or a comma-separated list (q_proj,v_proj)."""
    max_length: int = 0
    """Longest example in tokens (prompt + answer); longer ones stop the run unless --drop-long. 0: 512 for plain pairs, 2048 for grounded."""
    drop_long: bool = False
    """Drop (and count) examples longer than --max-length instead of stopping."""
    per_device_train_batch_size: int = 8
    """Examples per forward pass."""
    gradient_accumulation_steps: int = 2
    """Forward passes per optimiser step (effective batch = product of the two)."""
    per_device_eval_batch_size: int = 16
    """Examples per evaluation pass, and requests decoded at once for recall@k."""
    seed: int = 42
    """Seed of data order, LoRA initialisation and dropout."""
    load_in_4bit: bool = True
    """QLoRA: 4-bit NF4 base weights (bitsandbytes) on CUDA; on the CPU only with --cpu-4bit, else fp32 with a warning."""
    cpu_4bit: bool = False
    """Without CUDA, quantise to 4-bit too, through bitsandbytes' CPU backend (QLoRA on the CPU): about a quarter of fp32's memory for the base weights (an 8B model in ~6 GB, estimated); off by default, so that a CPU run trains the weights as they are (see the README)."""
    cpu_compute_dtype: Literal["bf16", "fp32"] = "bf16"
    """Compute dtype of 4-bit training on the CPU (bf16 was ~1.6x faster than fp32 here, see the README); a GPU uses bf16 (fp16 without bf16 support)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: much less memory, ~30% slower."""
    packing: bool = False
    """Pack several short examples into one sequence of --max-length (TRL's best-fit packing)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding)."""
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    """When to evaluate on the validation pairs (and save a checkpoint)."""
    eval_steps: int = 50
    """Steps between evaluations when --eval-strategy steps."""
    select_best_by: Literal["recall", "loss"] = "recall"
    """Which checkpoint is kept: the best validation recall@k of generated DOIs, or the lowest validation loss."""
    recall_k: int = 10
    """k of recall@k: the first k DOIs a model writes count."""
    recall_examples: int = 256
    """Validation requests decoded at each evaluation (the first N of the file; 0: all)."""
    recall_max_new_tokens: int = 0
    """Longest generated answer during evaluation, in tokens; 0: the longest answer in the data + 16."""
    early_stopping_patience: int = 2
    """Stop after this many evaluations without a better score (the --select-best-by one; 0: never)."""
    logging_steps: int = 10
    """Steps between loss logs."""
    report_to: str = "none"
    """Where the trainer also reports: none, tensorboard (logs in <run>/tensorboard/), wandb, ... (comma-separated)."""
    merge: bool = False
    """Also write a bf16 copy of the base model with the adapter merged in (output/<run>/merged/)."""
    overwrite: bool = False
    """Replace an existing run folder of the same name."""
    force: bool = False
    """Alias of --overwrite (the name every stage shares)."""
    verbose: bool = False
    """Debug logging."""


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def read_jsonl(path: Path, log) -> tuple[list[dict], list[str]]:
    """Examples of one split (prompt, completion, gold DOIs); an empty or malformed line is reported by
    number and skipped."""
    examples, problems = [], []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                problems.append(f"{path.name} line {number}: empty line")
                continue
            try:
                ex = json.loads(line)
                prompt, completion = ex["prompt"], ex["completion"]
                if not (isinstance(prompt, list) and isinstance(completion, list) and completion
                        and all({"role", "content"} <= set(m) for m in prompt + completion)):
                    raise ValueError("prompt and completion must be lists of {role, content} messages")
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path.name} line {number}: malformed ({exc.__class__.__name__}: {str(exc)[:80]})")
                continue
            # stage 07 writes the gold DOIs beside the messages; older files only have them in the answer
            gold = ex.get("dois") if isinstance(ex.get("dois"), list) else ct.extract_dois(completion[-1]["content"])
            examples.append({"prompt": prompt, "completion": completion,
                             "dois": [ct.normalise_doi(d) for d in gold if str(d).strip()]})
    for p in problems:
        log.warning("%s; skipped", p)
    return examples, problems


def _ids(encoded) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def prompt_lengths(examples: list[dict], tokenizer) -> list[int]:
    """Tokens of each prompt as the model sees it at question time (chat template + generation prompt)."""
    return [len(_ids(tokenizer.apply_chat_template(ex["prompt"], tokenize=True, add_generation_prompt=True)))
            for ex in examples]


def example_lengths(examples: list[dict], tokenizer) -> list[int]:
    """Tokens of each example as the chat template renders it (prompt + answer + end of turn)."""
    return [len(_ids(tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True)))
            for ex in examples]


def percentiles(values: list[int]) -> dict[str, int]:
    """p50/p90/p99/max of a list of token counts (nearest rank)."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: int) -> int:
        return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * p // 100) - 1))]

    return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1]}


def drop_long_examples(train: list[dict], val: list[dict], train_lengths: list[int], val_lengths: list[int],
                       max_length: int) -> tuple[list[dict], list[dict], dict[str, int]]:
    """The examples of each split that fit in ``max_length`` tokens, and how many of each were dropped."""
    kept_train = [ex for ex, n in zip(train, train_lengths) if n <= max_length]
    kept_val = [ex for ex, n in zip(val, val_lengths) if n <= max_length]
    return kept_train, kept_val, {"train": len(train) - len(kept_train), "val": len(val) - len(kept_val)}


def default_run_name(config: Config) -> str:
    base = Path(config.model).name if Path(config.model).exists() else config.model.split("/")[-1]
    base = base[:-len(".gguf")] if base.lower().endswith(".gguf") else base
    length = f"steps{config.max_steps}" if config.max_steps > 0 else f"ep{config.num_train_epochs:g}"
    data = "-grounded" if config.data == "grounded" else ""
    return f"{base}{data}-{length}-lr{config.learning_rate:g}-r{config.lora_r}"


def resolve_run_dir(config: Config) -> tuple[str, Path]:
    """The run's name and folder; a name that is not a plain folder name inside --output-dir is refused."""
    name = config.run_name or default_run_name(config)
    try:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(name)
        return name, pu.safe_child(Path(config.output_dir).resolve(), name)
    except ValueError:
        raise SystemExit(f"error: --run-name {name!r} must be a plain folder name inside {config.output_dir} "
                         "(no '/', no '..')") from None


def check_report_to(value: str) -> list[str]:
    """The trainer integrations named by --report-to; an unknown one, or one whose package is not
    installed, stops the run with one line before anything is written."""
    from transformers.integrations.integration_utils import (INTEGRATION_TO_CALLBACK,
                                                             get_available_reporting_integrations)

    names = [n.strip() for n in value.split(",") if n.strip() and n.strip() != "none"]
    if names == ["all"]:
        return get_available_reporting_integrations()
    available = set(get_available_reporting_integrations()) | {"flyte", "kubeflow"} & set(names)
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise SystemExit(f"error: --report-to {name!r} is not a trainer integration; choose from none, "
                             f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}")
        if name not in available:
            package = {"azure_ml": "azureml-core", "comet_ml": "comet-ml"}.get(name, name)
            raise SystemExit(f"error: --report-to {name} needs the {package} package, which is not installed: "
                             f"`.venv/bin/pip install {package}` or pass --report-to none")
    return names


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# ---------------------------------------------------------------------------
# Choosing the checkpoint by what it cites
# ---------------------------------------------------------------------------

def recall_at_k(predicted: list[str], gold: list[str], k: int) -> float:
    """Share of the gold DOIs among the first k predicted ones (0 for an example with no gold DOI)."""
    gold_set = {ct.normalise_doi(d) for d in gold}
    if not gold_set:
        return 0.0
    return len(gold_set & {ct.normalise_doi(d) for d in predicted[:k]}) / len(gold_set)


def generate_answers(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                     synced_gpus: bool = False, device=None) -> list[str]:
    """Greedy answers of ``model`` to chat prompts, batched with left padding (the trainer's own tokenizer
    and its padding side are left untouched). ``synced_gpus``: keep stepping until every process is done
    (sharded weights, see ``generate_everywhere``); ``device``: where the inputs go (default: the model's)."""
    import torch

    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    answers = []
    try:
        for start in range(0, len(prompts), max(1, batch_size)):
            encoded = [_ids(tokenizer.apply_chat_template(p, tokenize=True, add_generation_prompt=True))
                       for p in prompts[start:start + batch_size]]
            width = max(len(ids) for ids in encoded)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded], device=device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded], device=device)
            with torch.no_grad():
                # the trainer turns the model's cache off for training (args.use_cache): without it every new
                # token would recompute the whole prompt, which for a 1,000-token grounded prompt is ~60x slower
                out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                     do_sample=False, num_beams=1, pad_token_id=pad, use_cache=True,
                                     **({"synced_gpus": True} if synced_gpus else {}))
            answers.extend(tokenizer.batch_decode(out[:, width:], skip_special_tokens=True))
    finally:
        if was_training:
            model.train()
    return answers


def grounded_candidates(example: dict) -> list[str]:
    """The candidate DOIs a grounded pair's prompt offers (none for a plain pair)."""
    user = next((m.get("content", "") for m in example.get("prompt") or [] if m.get("role") == "user"), "")
    return ct.candidates_in_message(user)


def recall_callback(examples: list[dict], tokenizer, k: int, max_new_tokens: int, batch_size: int):
    """A TrainerCallback that, at each evaluation, greedy-decodes the validation requests and adds
    ``eval_recall_at_<k>`` (mean recall@k of the DOIs written against the gold ones) to the evaluation's
    metrics, before the trainer compares checkpoints and early stopping looks, so both act on it."""
    from transformers import TrainerCallback  # imported here: transformers takes seconds to import

    class RecallCallback(TrainerCallback):
        def __init__(self):
            self.examples, self.tokenizer, self.k = examples, tokenizer, k
            self.key = f"eval_recall_at_{k}"
            self.log = None  # the trainer's log(), set once it exists: the score reaches log_history and tensorboard
            self.wrapped = None  # the trainer's model as accelerate wrapped it (FSDP needs it to generate)
            self.last_answers: list[str] = []

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            prompts = [ex["prompt"] for ex in examples]
            wrapped = self.wrapped() if self.wrapped else None
            offered = [grounded_candidates(ex) for ex in examples]
            if examples and all(offered):  # grounded pairs: the prompt's candidates ranked by likelihood
                ranked = rank_everywhere(model, tokenizer, prompts, offered, batch_size, wrapped)
                answers = ["\n".join(r) for r in ranked]
            else:  # under accelerate launch each process decodes a share and all get every answer
                answers = generate_everywhere(model, tokenizer, prompts, max_new_tokens, batch_size, wrapped)
            self.last_answers = answers
            score = sum(recall_at_k(ct.extract_dois(a), ex["dois"], k) for a, ex in zip(answers, examples))
            score = round(score / len(examples), 4) if examples else 0.0
            if metrics is not None:
                metrics[self.key] = score
            if self.log is not None:
                self.log({self.key: score})
            return control

    return RecallCallback()


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def load_tokenizer(model: str, shown_as: str = ""):
    """The base model's tokenizer (with a pad token); a model without a chat template is refused.
    ``model`` is what ``from_pretrained`` takes (``ct.resolve_model``'s answer); ``shown_as`` names it in errors."""
    from transformers import AutoTokenizer

    shown_as = shown_as or model
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise SystemExit(model_error(shown_as, exc)) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise SystemExit(f"error: {shown_as} has no chat template: use an instruct/chat model")
    return tokenizer


def answer_budget(examples: list[dict], tokenizer) -> int:
    """Tokens to generate during evaluation: the longest answer in the data, and a margin."""
    longest = max((len(tokenizer(ex["completion"][-1]["content"], add_special_tokens=False)["input_ids"])
                   for ex in examples), default=48)
    return longest + 16


def build_trainer(config: Config, train: list[dict], val: list[dict], run_dir: Path, cuda: bool, log,
                  tokenizer=None, weights: str = ""):
    """The configured SFTTrainer (model loaded, 4-bit on CUDA, LoRA attached, recall@k on validation).
    ``weights``: what ``from_pretrained`` loads for ``config.model`` (``ct.resolve_model``; resolved when empty)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, EarlyStoppingCallback
    from trl import SFTConfig, SFTTrainer

    weights = weights or ct.resolve_model(config.model)
    tokenizer = tokenizer or load_tokenizer(weights, config.model)
    plan = precision(config, cuda)
    quantise, half = plan["quantise"], plan["compute"]
    if plan["reason"]:
        log.warning("%s", plan["reason"])
    fsdp = under_fsdp()
    # FSDP shards only floating-point tensors: the packed 4-bit weights are stored in the compute dtype, the
    # dtype the model loads in too (PEFT's and bitsandbytes' "FSDP-QLoRA" guides)
    storage = {"bnb_4bit_quant_storage": half} if fsdp else {}
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=half, **storage) if quantise else None
    model_kwargs = {"dtype": half}
    processes = process_state()
    if cuda and not fsdp:
        # a whole copy of the model on this process's GPU: one per process under accelerate launch (DDP), as
        # PEFT's and TRL's guides place QLoRA; FSDP places and shards the weights itself, so it gets no map
        model_kwargs["device_map"] = {"": processes.local_process_index}
    targets = config.target_modules if config.target_modules == "all-linear" else \
        [m.strip() for m in config.target_modules.split(",") if m.strip()]
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    evaluate = config.eval_strategy != "no" and bool(val)
    by_recall = evaluate and config.select_best_by == "recall"
    recall_key = f"eval_recall_at_{config.recall_k}"
    # log at least twice per epoch, so that every epoch has a training loss in metrics.json; a step takes
    # batch x accumulation x processes examples
    steps_per_epoch = max(1, -(-len(train) // (config.per_device_train_batch_size * config.gradient_accumulation_steps
                                               * processes.num_processes)))
    logging_steps = max(1, min(config.logging_steps, steps_per_epoch // 2 or 1))
    max_length = config.max_length or DEFAULT_MAX_LENGTH[config.data]
    args = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=run_dir.name,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a share of the steps (transformers 5)
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        gradient_checkpointing=config.gradient_checkpointing,
        max_length=max_length,
        packing=config.packing,
        completion_only_loss=True,  # the loss is on the answer (the DOIs), never on the request
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy=config.eval_strategy if evaluate else "no",
        eval_steps=config.eval_steps,
        save_strategy=config.eval_strategy if evaluate else "epoch",
        save_steps=config.eval_steps,
        save_total_limit=2,  # the best checkpoint is always kept besides the last one
        load_best_model_at_end=evaluate,
        # validation loss rises as the model memorises DOIs while its answers still improve:
        # choose by what it cites (ties keep the earlier checkpoint)
        metric_for_best_model=recall_key if by_recall else "eval_loss",
        greater_is_better=by_recall,
        logging_steps=logging_steps,
        report_to=check_report_to(config.report_to) or "none",
        seed=config.seed,
        bf16=half == torch.bfloat16,  # on the CPU: autocast to bf16 (4-bit with --cpu-compute-dtype bf16)
        fp16=half == torch.float16,
        use_cpu=not cuda,
        model_init_kwargs=model_kwargs,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        disable_tqdm=False,  # the progress bar is the main process's only
        ddp_find_unused_parameters=False,  # every LoRA weight has a gradient at every step: no search for unused ones
    )
    recall = None
    callbacks = []
    if evaluate:
        subset = val[:config.recall_examples] if config.recall_examples > 0 else val
        recall = recall_callback(subset, tokenizer, config.recall_k,
                                 config.recall_max_new_tokens or answer_budget(train + val, tokenizer),
                                 config.per_device_eval_batch_size)
        callbacks.append(recall)  # before early stopping, which reads the score it adds
        if config.early_stopping_patience > 0:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))

    def as_pairs(examples: list[dict]):
        return Dataset.from_list([{"prompt": ex["prompt"], "completion": ex["completion"]} for ex in examples])

    from safetensors import SafetensorError

    if not cuda:
        score_label_positions_only()
    try:
        trainer = SFTTrainer(
            model=weights, args=args, train_dataset=as_pairs(train),
            eval_dataset=as_pairs(val) if evaluate else None, processing_class=tokenizer,
            peft_config=lora, quantization_config=bnb, callbacks=callbacks)
    except (OSError, SafetensorError) as exc:  # missing, gated, unreachable or broken weights
        raise SystemExit(model_error(config.model, exc)) from exc
    if recall is not None:
        recall.log = trainer.log
        recall.wrapped = lambda: trainer.model_wrapped
    # tensorboard's default folder sits under checkpoints/, which is removed when the run ends
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
            callback.logging_dir = str(run_dir / "tensorboard")
    return trainer, tokenizer


def score_label_positions_only() -> bool:
    """Make TRL's fused LM head project only the positions that have a label on the CPU too (True when it now
    does). The head computes the loss's log-probabilities without the (batch, length, vocabulary) logits; on Triton
    devices it scores just the positions whose next token is a label, elsewhere every position, so that a compiler
    sees one tile shape (TRL's comment names Neuron). Eager CPU training compiles nothing, and the answer is a small
    share of each example (a grounded pair: ~30 of ~550 tokens), so the head's projection over the prompt, about a
    fifth of each step's work on SmolLM2 (its 49,152-word head), is dropped. The loss and its gradient are the same
    sums over the same positions; only the rounding of the tiles can differ."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:  # another TRL: left as it is
        return False
    if getattr(original, "scores_label_positions_on_cpu", False):
        return True

    def compact(device, _original=original) -> bool:
        return device.type == "cpu" or _original(device)

    compact.scores_label_positions_on_cpu = True
    compact.original = original
    trl_utils._use_triton = compact
    return True


def cpu_4bit_unsupported() -> str:
    """Why bitsandbytes cannot quantise to 4-bit NF4 on this CPU ('' when it can), found by round-tripping a
    small matrix through its CPU backend (older releases and some platforms have none)."""
    try:
        import bitsandbytes.functional as bnbf
        import torch

        weight = torch.randn(64, 64)
        packed, state = bnbf.quantize_4bit(weight, quant_type="nf4", compress_statistics=True)
        back = bnbf.dequantize_4bit(packed, state)
        if back.shape != weight.shape or not torch.isfinite(back).all() or (back - weight).abs().mean() > 0.5:
            return "bitsandbytes' CPU backend returns wrong 4-bit values here"
    except Exception as exc:  # ImportError, NotImplementedError, RuntimeError: no CPU kernel
        return f"bitsandbytes cannot quantise on this CPU ({exc.__class__.__name__}: {str(exc).splitlines()[0][:100]})"
    return ""


def precision(config: Config, cuda: bool) -> dict:
    """How the run computes: ``quantise`` (4-bit NF4 base weights), ``compute`` (torch dtype), ``label`` (for
    metrics.json and the model card) and ``reason`` (a warning when --load-in-4bit cannot be honoured)."""
    import torch

    if cuda:
        # bf16 needs an Ampere-class GPU or newer; a T4 or V100 computes in fp16 instead
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        name = "bf16" if half == torch.bfloat16 else "fp16"
        if config.load_in_4bit:
            return {"quantise": True, "compute": half, "reason": "",
                    "label": f"4-bit NF4, double quantisation, {name} compute"}
        return {"quantise": False, "compute": half, "label": name, "reason": ""}
    if not config.load_in_4bit:
        return {"quantise": False, "compute": torch.float32, "label": "fp32 (CPU)", "reason": ""}
    if not config.cpu_4bit:
        return {"quantise": False, "compute": torch.float32, "label": "fp32 (CPU)",
                "reason": "no CUDA GPU: 4-bit quantisation is off, training in full precision (fp32) on the CPU "
                          "(--cpu-4bit quantises through bitsandbytes' CPU backend)"}
    why = cpu_4bit_unsupported()
    if why:
        return {"quantise": False, "compute": torch.float32, "label": "fp32 (CPU)",
                "reason": f"no CUDA GPU and {why}: 4-bit quantisation is off, training in fp32 on the CPU"}
    half = torch.bfloat16 if config.cpu_compute_dtype == "bf16" else torch.float32
    return {"quantise": True, "compute": half, "reason": "",
            "label": f"4-bit NF4, double quantisation, {config.cpu_compute_dtype} compute (CPU, bitsandbytes)"}


def record_base_model(run_dir: Path, spec: str) -> None:
    """Name the base model in ``adapter_config.json`` as the user gave it (a Hub id, a folder, smollm2; a .gguf
    file by its absolute path), not as the model cache's folder it was loaded from, so that stages 09 and 10
    find it again on any machine: they resolve it the same way. Done after saving: PEFT reads the config of
    the base model it records while it saves, and the cache folder is where that config is."""
    if spec.lower().endswith(".gguf") and Path(spec).expanduser().is_file():
        spec = str(Path(spec).expanduser().resolve())
    path = run_dir / "adapter_config.json"
    adapter = json.loads(path.read_text(encoding="utf-8"))
    if adapter.get("base_model_name_or_path") != spec:
        adapter["base_model_name_or_path"] = spec
        pu.atomic_write_text(path, json.dumps(adapter, indent=2, sort_keys=True) + "\n")


def model_error(model: str, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    hint = ""
    if "gated" in str(exc).lower() or "401" in str(exc) or "403" in str(exc):
        hint = (" — a gated model: accept its licence on its Hugging Face page, then `hf auth login` "
                "(or set HF_TOKEN)")
    elif "offline" in str(exc).lower() or "connect" in str(exc).lower():
        hint = " — not in the local cache and the hub is unreachable: download it first or pass a local folder"
    return f"error: cannot load model {model!r}: {text}{hint}"


def is_4bit(model) -> bool:
    """Whether the base weights under the adapter are bitsandbytes 4-bit ones."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_loaded_in_4bit", False))


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters, by PEFT's counter: a 4-bit weight packs two values per byte, so a
    plain ``numel()`` would count half of every quantised matrix."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def padding_share(trainer, batches: int = 20) -> float:
    """Share of padding tokens in the first training batches, as the collator builds them."""
    pads = total = 0
    for n, batch in enumerate(trainer.get_train_dataloader()):
        if n >= batches:
            break
        mask = batch.get("attention_mask")
        if mask is None:  # padding-free (packed) batches have no padding at all
            total += batch["input_ids"].numel()
            continue
        pads += int((mask == 0).sum())
        total += mask.numel()
    pads, total = all_sum([pads, total])  # over the batches of every process
    return pads / total if total else 0.0


def epoch_losses(log_history: list[dict]) -> dict[str, list]:
    """Train loss (mean of the logged steps), validation loss and validation recall@k per epoch,
    from the trainer's log."""
    train, val, recall = {}, {}, {}
    recall_key = ""
    for entry in log_history:
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        bucket = max(1, int(-(-epoch // 1)))  # ceil: steps within epoch k belong to k
        if "loss" in entry:
            train.setdefault(bucket, []).append(entry["loss"])
        if "eval_loss" in entry:
            val[bucket] = entry["eval_loss"]
        for key, value in entry.items():
            if key.startswith("eval_recall_at_"):
                recall_key, recall[bucket] = key, value
    out = {"train_loss": [round(sum(v) / len(v), 4) for _, v in sorted(train.items())],
           "eval_loss": [round(v, 4) for _, v in sorted(val.items())]}
    if recall_key:
        out[recall_key] = [round(v, 4) for _, v in sorted(recall.items())]
    return out


def write_loss_plot(path: Path, log_history: list[dict]) -> None:
    """``loss.png``: training and validation loss by optimiser step, validation recall@k on a second axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    val = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    recall = [(e["step"], v, k) for e in log_history if "step" in e for k, v in e.items()
              if k.startswith("eval_recall_at_")]
    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), label="training loss", color="tab:blue")
    if val:
        ax.plot(*zip(*val), marker="o", label="validation loss", color="tab:orange")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (answer tokens)")
    handles, labels = ax.get_legend_handles_labels()
    if recall:
        ax2 = ax.twinx()
        ax2.plot([s for s, _, _ in recall], [v for _, v, _ in recall], marker="s", color="tab:green",
                 label=f"validation recall@{recall[0][2].rsplit('_', 1)[-1]}")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("recall of generated DOIs")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=8)
    ax.set_title("stage 08: loss and validation recall")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    pu.atomic_write_bytes(path, buffer.getvalue())


def model_card(config: Config, metrics: dict, topic: str) -> str:
    """The run folder's README.md: what the adapter is, what it was trained on, how, and what it scored."""
    recall_key = f"eval_recall_at_{config.recall_k}"
    epochs = max(len(metrics["train_loss"]), len(metrics["eval_loss"]), len(metrics.get(recall_key, [])))
    rows = []
    for i in range(epochs):
        def cell(name: str) -> str:
            values = metrics.get(name, [])
            return f"{values[i]:.4f}" if i < len(values) else "–"
        rows.append(f"| {i + 1} | {cell('train_loss')} | {cell('eval_loss')} | {cell(recall_key)} |")
    best = metrics["best_checkpoint"]
    prompts = metrics["prompt_tokens"]
    kind = ("grounded: the request plus the candidate works retrieved from the catalogue (title, first author, "
            "year, DOI), one per line" if config.data == "grounded" else "plain: the request alone")
    settings = {
        "quantisation": metrics["quantization"], "LoRA": f"r={config.lora_r}, alpha={config.lora_alpha}, "
        f"dropout={config.lora_dropout}, target {config.target_modules}",
        "learning rate": f"{config.learning_rate:g}, {config.lr_scheduler_type}, warm-up {config.warmup_ratio:g}",
        "batch": f"{config.per_device_train_batch_size} x {config.gradient_accumulation_steps} accumulation"
        + (f" x {metrics['processes']} processes = {metrics['effective_batch_size']}"
           if metrics.get("processes", 1) > 1 else ""),
        "epochs / steps": f"{metrics['epochs']} epochs, {metrics['steps']} steps",
        "max length": f"{metrics['max_length']} tokens (drop long: {config.drop_long})",
        "loss": "answer tokens only (completion-only loss)",
        "packing / group by length": f"{config.packing} / {config.group_by_length}",
        "checkpoint kept": f"best {best['metric']} = {best['value']} (step {best['step']})" if best["metric"]
        else "the last one (no validation)",
        "seed": config.seed,
    }
    lines = [
        "---",
        f"base_model: {json.dumps(config.model)}",
        "library_name: peft",
        "pipeline_tag: text-generation",
        "tags: [lora, qlora, sft, trl, citation-recommendation]",
        "---",
        "",
        f"# {metrics['run_name']}: DOIs for literature requests on {topic}",
        "",
        f"A LoRA adapter for **{config.model}** that answers a researcher's request for literature on {topic} "
        "with the DOIs of the works that address it, one per line. It was trained by stage 08 of this pipeline "
        "(TRL's SFTTrainer) on request -> DOIs pairs that stage 07 made from the citing sentences of arXiv papers.",
        "",
        "## Data",
        f"- kind: {kind};",
        f"- pairs: {metrics['train_examples']} for training, {metrics['val_examples']} for validation "
        f"(dropped as longer than {metrics['max_length']} tokens: {metrics['dropped_long']['train']} training, "
        f"{metrics['dropped_long']['val']} validation; malformed lines skipped: {len(metrics['skipped_lines'])});",
        f"- distinct DOIs in the training answers: {metrics['train_distinct_dois']};",
        f"- prompt length in tokens: median {prompts.get('p50', '–')}, 90th percentile {prompts.get('p90', '–')}, "
        f"longest {prompts.get('max', '–')}; longest example (prompt + answer) {metrics['longest_example_tokens']}.",
        "",
        "## Training settings",
        "| setting | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in settings.items()],
        "",
        "## Measured",
        f"| epoch | training loss | validation loss | validation recall@{config.recall_k} |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Validation recall@{config.recall_k}: the share of a request's gold DOIs among the first "
        f"{config.recall_k} DOIs the model writes with greedy decoding, averaged over "
        f"{metrics['recall_examples']} validation requests. Throughput {metrics['tokens_per_second']} tokens/s "
        f"(non-padding, over the training wall time, evaluations included) on {metrics['device']}, "
        + (f"peak GPU memory {metrics['peak_gpu_memory_gb']} GB, " if metrics["peak_gpu_memory_gb"] is not None
           else "") +
        f"{metrics['wall_seconds']} s; trainable parameters {metrics['trainable_parameters']:,} of "
        f"{metrics['total_parameters']:,}. Curves: `loss.png`; every figure: `metrics.json`; provenance: `run.json`.",
        "",
        "## Use",
        "```bash",
        f"python 10_ask/ask.py --model {config.model} --adapter <this folder> \"where can I read about ...?\"",
        f"python 09_evaluate/evaluate.py --model {config.model} --adapter <this folder>",
        "```",
        "Without constrained decoding a fine-tuned model can still write DOIs that do not exist; `ask.py` only "
        "lets it write DOIs of the catalogue. Test-set figures are in stage 09's report, not here.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Several processes (accelerate launch): one per GPU, or per CPU process with gloo
# ---------------------------------------------------------------------------

def process_state():
    """accelerate's view of this process (its rank, the number of processes, its device); started by
    ``accelerate launch``, one process otherwise. Made first, so that all processes agree on the run folder."""
    import torch
    from accelerate import PartialState

    # without CUDA the trainer trains on the CPU (use_cpu): asked the same way, accelerate joins the processes
    # with gloo, where it would otherwise see one process alone
    return PartialState(cpu=not torch.cuda.is_available())


def under_fsdp() -> bool:
    """Whether ``accelerate launch`` runs this script with FSDP (its config's ``distributed_type: FSDP``)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")


def all_sum(values: list[float]) -> list[float]:
    """``values`` summed over all processes (as they are with one process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    total = torch.tensor(values, dtype=torch.float64, device=process_state().device)
    dist.all_reduce(total)
    return total.tolist()


def generate_everywhere(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int, batch_size: int,
                        wrapped=None) -> list[str]:
    """``generate_answers`` shared among the processes of an ``accelerate launch`` run: each decodes an equal
    slice of the prompts and every process gets all the answers, in order, so that a score computed from them is
    the same in each (early stopping and the choice of the best checkpoint act on it in every process). With
    sharded weights (FSDP, DeepSpeed ZeRO-3) every forward pass is a collective: all processes run the same
    number of batches (a short slice is filled up with the first prompt, its answers dropped) and generate with
    ``synced_gpus``; under FSDP 1 the root's own weights are gathered first (``wrapped``: the trainer's
    ``model_wrapped``), as TRL's trainers do to generate. One process: ``generate_answers`` as it is."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not prompts:
        return generate_answers(model, tokenizer, prompts, max_new_tokens, batch_size)
    from contextlib import nullcontext

    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    try:
        from torch.distributed.fsdp import FSDPModule  # FSDP 2 (torch >= 2.6)
    except ImportError:
        FSDPModule = ()
    from transformers.integrations import is_deepspeed_zero3_enabled

    rank, world = dist.get_rank(), dist.get_world_size()
    share = -(-len(prompts) // world)
    mine = prompts[rank * share:(rank + 1) * share]
    fsdp1 = isinstance(wrapped, FSDP)
    sharded = fsdp1 or is_deepspeed_zero3_enabled() or any(isinstance(m, FSDPModule) for m in model.modules())
    padded = mine + [prompts[0]] * (share - len(mine)) if sharded else mine
    with FSDP.summon_full_params(wrapped, recurse=False, writeback=False) if fsdp1 else nullcontext():
        answers = generate_answers(model, tokenizer, padded, max_new_tokens, batch_size, synced_gpus=sharded,
                                   device=process_state().device) if padded else []
    gathered: list[list[str]] = [[] for _ in range(world)]
    dist.all_gather_object(gathered, answers[:len(mine)])
    return [a for part in gathered for a in part]


def rank_everywhere(model, tokenizer, prompts: list[list[dict]], offered: list[list[str]], batch_size: int,
                    wrapped=None) -> list[list[str]]:
    """``ct.rank_by_likelihood`` under ``accelerate launch``: scoring is one forward pass per request, no
    sampling, so every process ranks every request and gets the same ranking (replicated weights, the same
    numbers); with sharded weights the processes run the same forward passes in the same order, so each
    collective is met by all, and under FSDP 1 the root's own weights are gathered first, as for generating."""
    from contextlib import nullcontext

    fsdp1 = False
    if wrapped is not None:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        fsdp1 = isinstance(wrapped, FSDP)
    with FSDP.summon_full_params(wrapped, recurse=False, writeback=False) if fsdp1 else nullcontext():
        return ct.rank_by_likelihood(model, tokenizer, prompts, offered, batch_size=batch_size)


def main(config: Config) -> dict:
    """Train one run; returns its metrics."""
    started_at = time.time()
    log = pu.setup_logging(config.verbose)
    state = process_state()  # under accelerate launch: this process among several, each running all of main()
    if not state.is_main_process:
        # every process reads the same data and would say the same: only the main one logs and shows progress
        import datasets
        import transformers

        log.setLevel(logging.ERROR)
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    check_report_to(config.report_to)  # before any folder is made
    run_name, run_dir = resolve_run_dir(config)
    input_dir = Path(config.input_dir)
    train_path = input_dir / DATA_FILES[config.data].format(split="train")
    val_path = input_dir / DATA_FILES[config.data].format(split="val")
    if not train_path.is_file():
        hint = "run stage 07 with --grounded first" if config.data == "grounded" else "run stage 07 first"
        raise SystemExit(f"error: {train_path} not found: {hint} (or pass --input-dir)")
    train, problems = read_jsonl(train_path, log)
    val, val_problems = read_jsonl(val_path, log) if val_path.is_file() else ([], [])
    problems += val_problems
    if not train:
        raise SystemExit(f"error: {train_path} holds no usable example")
    finished = (run_dir / "metrics.json").exists()
    if finished and not (config.overwrite or config.force):
        raise SystemExit(f"error: run {run_dir} exists; choose another --run-name or pass --overwrite")

    weights = ct.resolve_model(config.model)  # a .gguf file or smollm2: the folder converted from it
    tokenizer = load_tokenizer(weights, config.model)
    max_length = config.max_length or DEFAULT_MAX_LENGTH[config.data]
    train_lengths, val_lengths = example_lengths(train, tokenizer), example_lengths(val, tokenizer)
    prompt_tokens = percentiles(prompt_lengths(train + val, tokenizer))
    longest = max(train_lengths + val_lengths)
    too_long = sum(1 for n in train_lengths + val_lengths if n > max_length)
    log.info("%s pairs: %d train, %d val; prompt tokens p50 %s p90 %s max %s; longest example %d (max_length %d)",
             config.data, len(train), len(val), prompt_tokens["p50"], prompt_tokens["p90"], prompt_tokens["max"],
             longest, max_length)
    if too_long and not config.drop_long:
        raise SystemExit(f"error: {too_long} examples are longer than --max-length {max_length} tokens "
                         f"(the longest has {longest}); their answers would be cut: raise --max-length to {longest} "
                         f"or pass --drop-long")
    train, val, dropped = drop_long_examples(train, val, train_lengths, val_lengths, max_length)
    if too_long:
        log.warning("examples longer than %d tokens dropped: %d train, %d val", max_length, dropped["train"],
                    dropped["val"])
    if not train:
        raise SystemExit(f"error: no training example fits in --max-length {max_length} tokens")

    # the main process decides whether the run resumes and prepares its folder; the others take its decision
    # (nothing has been changed yet, so all read the same folder) and wait until the folder is ready
    from accelerate.utils import broadcast_object_list

    resume = not finished and any((run_dir / "checkpoints").glob("checkpoint-*"))
    created = finished or not run_dir.exists()
    resume, created = broadcast_object_list([resume, created], from_process=0)
    if state.is_main_process:
        if finished:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    try:
        metrics = train_run(config, run_name, run_dir, train, val, tokenizer, resume, log, weights)
    except BaseException:
        # a run that failed before its first checkpoint leaves nothing behind; one with
        # checkpoints is kept so that starting it again resumes
        if state.is_main_process and created and not any((run_dir / "checkpoints").glob("checkpoint-*")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    metrics.update({
        "skipped_lines": problems, "longest_example_tokens": longest, "max_length": max_length,
        "dropped_long": dropped, "prompt_tokens": prompt_tokens,
        "example_tokens": percentiles([n for n in train_lengths + val_lengths]),
        "train_distinct_dois": len({d for ex in train for d in ex["dois"]}),
    })
    if state.is_main_process:  # one model card, one metrics.json, one run.json, whatever the processes
        topic = pu.topic_value("topic.name", "the research topic")
        pu.atomic_write_text(run_dir / "README.md", model_card(config, metrics, topic))
        pu.atomic_write_json(run_dir / "metrics.json", metrics)
        pu.write_run_json(run_dir, "08_finetune", config, [train_path, val_path], metrics, started_at)
        pu.print_summary(f"stage 08: fine-tuning run {run_name}", metrics)
    state.wait_for_everyone()  # when main() returns in any process, the run folder is complete
    return metrics


def train_run(config: Config, run_name: str, run_dir: Path, train: list[dict], val: list[dict], tokenizer,
              resume: bool, log, weights: str = "") -> dict:
    """Build the trainer, train (resuming from the last checkpoint if asked), keep the best adapter;
    returns the run's measured figures."""
    import torch

    cuda = torch.cuda.is_available()
    resumed_from = ""
    if resume:
        resumed_from = max((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])).name
        log.info("run %s was interrupted: resuming from %s", run_name, resumed_from)
    weights = weights or ct.resolve_model(config.model)
    trainer, tokenizer = build_trainer(config, train, val, run_dir, cuda, log, tokenizer, weights)
    trainable, total = parameter_counts(trainer.model)
    plan = precision(config, cuda)
    log.info("trainable parameters: %d of %d (%.2f%%); device: %s; precision: %s", trainable, total,
             100 * trainable / total, "cuda" if cuda else "cpu", plan["label"])
    pad_share = padding_share(trainer)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=True if resume else None)
    except torch.OutOfMemoryError as exc:
        raise SystemExit("error: CUDA out of memory: lower --per-device-train-batch-size (and raise "
                         "--gradient-accumulation-steps to keep the effective batch), lower --max-length, keep "
                         "--load-in-4bit and --gradient-checkpointing on, or use a smaller --model") from exc
    wall = time.perf_counter() - started
    state = process_state()
    if trainer.is_fsdp_enabled:  # one whole adapter, not a shard per process (PEFT's FSDP guide)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    # the best checkpoint's adapter (load_best_model_at_end); every process takes part (FSDP gathers the
    # weights), the main one writes
    trainer.save_model(str(run_dir))
    # each process loaded the best checkpoint from checkpoints/ by itself: all are done before it is removed
    state.wait_for_everyone()
    if state.is_main_process:
        record_base_model(run_dir, config.model)
        tokenizer.save_pretrained(str(run_dir))
    history = trainer.state.log_history
    losses = epoch_losses(history)
    evaluated = trainer.args.eval_strategy != "no"
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    recall_key = f"eval_recall_at_{config.recall_k}"
    best_step = trainer.state.best_global_step
    at_best = {k: v for e in history if e.get("step") == best_step for k, v in e.items() if k.startswith("eval_")}
    metrics = {
        "run_name": run_name,
        "model": config.model,
        "data": config.data,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "processes": state.num_processes,  # accelerate launch: one per GPU (DDP or FSDP)
        "effective_batch_size": trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps
        * state.num_processes,
        "quantization": plan["label"],
        "base_weights_4bit": is_4bit(trainer.model),  # read off the trained model, not the plan
        "train_examples": len(train),
        "val_examples": len(val),
        "recall_examples": (min(len(val), config.recall_examples) if config.recall_examples > 0 else len(val))
        if evaluated else 0,
        "resumed_from": resumed_from,
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 3),
        **losses,
        "best_checkpoint": {"metric": trainer.args.metric_for_best_model if evaluated else "",
                            "value": trainer.state.best_metric if evaluated else None,
                            "step": best_step if evaluated else None,
                            "eval_loss": at_best.get("eval_loss"), recall_key: at_best.get(recall_key)},
        "best_eval_loss": min(losses["eval_loss"]) if losses["eval_loss"] else None,
        "mean_train_loss": round(result.training_loss, 4),
        "tokens_seen": tokens,
        "tokens_per_second": round(tokens / wall, 1) if wall else 0.0,
        "padding_share": round(pad_share, 4),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "wall_seconds": round(wall, 1),
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    if not state.is_main_process:
        return metrics
    resolved = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    pu.atomic_write_json(run_dir / "run_config.json", {"config": resolved, "run_name": run_name,
                                                      "system_message": train[0]["prompt"][0]["content"]
                                                      if train[0]["prompt"][0]["role"] == "system" else "",
                                                      "libraries": library_versions()})
    write_loss_plot(run_dir / "loss.png", history)
    if config.merge:
        merge_adapter(weights, run_dir, log)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the best adapter is saved; checkpoints are spent
    return metrics


def merge_adapter(model_name: str, run_dir: Path, log) -> Path:
    """A bf16 copy of the base model with the LoRA adapter merged in, for serving without PEFT."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_name, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(base, str(run_dir)).merge_and_unload()
    target = run_dir / "merged"
    merged.save_pretrained(str(target))
    log.info("merged model written to %s", target)
    return target


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(pu.parse_config(Config, description=__doc__))
