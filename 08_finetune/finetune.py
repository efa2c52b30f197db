"""Stage 08: QLoRA supervised fine-tuning of an open instruct model on the (request -> DOIs) pairs.

    python 08_finetune/finetune.py                                              # Llama-3.1-8B-Instruct, QLoRA
    python 08_finetune/finetune.py --num-train-epochs 5 --run-name llama8b-ep5  # a second run beside the first
    python 08_finetune/finetune.py --model Qwen/Qwen2.5-0.5B-Instruct --max-steps 50

TRL's SFTTrainer does the training; this script configures it: 4-bit NF4 with
double quantisation and bf16 compute on CUDA, LoRA on all linear layers,
gradient checkpointing, the model's own chat template, loss on the answer
tokens only (stage 07 writes prompt-completion data), evaluation on val.jsonl
each epoch with the best checkpoint kept and early stopping. Without CUDA the
same script trains in full precision on the CPU (how the tests run it).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    """Fine-tune an instruct model with QLoRA on stage 07's train.jsonl."""

    input_dir: Path = HERE.parent / "07_qa_formatting" / "output"
    """Stage 07's output (train.jsonl, val.jsonl)."""
    output_dir: Path = HERE / "output"
    """Runs go to output/<run_name>/."""
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    """Base model: a Hugging Face id (gated models need `hf auth login` and the licence accepted) or a local folder."""
    run_name: str = ""
    """Name of the run's folder; empty: <model>-ep<epochs>-lr<learning rate>-r<lora r>."""
    num_train_epochs: float = 3.0
    """Passes over train.jsonl."""
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
    max_length: int = 512
    """Longest example in tokens (prompt + answer); longer examples stop the run unless --drop-long."""
    drop_long: bool = False
    """Drop (and count) examples longer than --max-length instead of stopping."""
    per_device_train_batch_size: int = 8
    """Examples per forward pass."""
    gradient_accumulation_steps: int = 2
    """Forward passes per optimiser step (effective batch = product of the two)."""
    per_device_eval_batch_size: int = 16
    """Examples per evaluation pass."""
    seed: int = 42
    """Seed of data order, LoRA initialisation and dropout."""
    load_in_4bit: bool = True
    """QLoRA: 4-bit NF4 base weights (CUDA only; ignored with a warning on the CPU)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: much less memory, ~30% slower."""
    packing: bool = False
    """Pack several short examples into one sequence of --max-length (TRL's best-fit packing)."""
    group_by_length: bool = False
    """Batch examples of similar length together (less padding)."""
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    """When to evaluate on val.jsonl (and save a checkpoint)."""
    eval_steps: int = 50
    """Steps between evaluations when --eval-strategy steps."""
    early_stopping_patience: int = 2
    """Stop after this many evaluations without a better validation loss (0: never)."""
    logging_steps: int = 10
    """Steps between loss logs."""
    report_to: str = "none"
    """Where the trainer reports: none, tensorboard, wandb, ..."""
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
    """Examples of one split; an empty or malformed line is reported by number and skipped."""
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
            examples.append({"prompt": prompt, "completion": completion})
    for p in problems:
        log.warning("%s; skipped", p)
    return examples, problems


def example_lengths(examples: list[dict], tokenizer) -> list[int]:
    """Tokens of each example as the chat template renders it (prompt + answer + end of turn)."""
    lengths = []
    for ex in examples:
        ids = tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        lengths.append(len(ids))
    return lengths


def default_run_name(config: Config) -> str:
    base = Path(config.model).name if Path(config.model).exists() else config.model.split("/")[-1]
    length = f"steps{config.max_steps}" if config.max_steps > 0 else f"ep{config.num_train_epochs:g}"
    return f"{base}-{length}-lr{config.learning_rate:g}-r{config.lora_r}"


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
# Training
# ---------------------------------------------------------------------------

def build_trainer(config: Config, train: list[dict], val: list[dict], run_dir: Path, cuda: bool, log):
    """The configured SFTTrainer (model loaded, 4-bit on CUDA, LoRA attached)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer, BitsAndBytesConfig, EarlyStoppingCallback
    from trl import SFTConfig, SFTTrainer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
    except OSError as exc:
        raise SystemExit(model_error(config.model, exc)) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise SystemExit(f"error: {config.model} has no chat template: use an instruct/chat model")

    quantise = config.load_in_4bit and cuda
    # bf16 needs an Ampere-class GPU or newer; a T4 or V100 computes in fp16 instead
    half = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    if config.load_in_4bit and not cuda:
        log.warning("no CUDA GPU: 4-bit quantisation is off, training in full precision (fp32) on the CPU")
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=half) if quantise else None
    model_kwargs = {"dtype": (half if cuda else torch.float32)}
    if cuda:
        model_kwargs["device_map"] = {"": torch.cuda.current_device()}
    targets = config.target_modules if config.target_modules == "all-linear" else \
        [m.strip() for m in config.target_modules.split(",") if m.strip()]
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    evaluate = config.eval_strategy != "no" and bool(val)
    # log at least twice per epoch, so that every epoch has a training loss in metrics.json
    steps_per_epoch = max(1, -(-len(train) // (config.per_device_train_batch_size * config.gradient_accumulation_steps)))
    logging_steps = max(1, min(config.logging_steps, steps_per_epoch // 2 or 1))
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
        max_length=config.max_length,
        packing=config.packing,
        completion_only_loss=True,  # the loss is on the answer (the DOIs), never on the request
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy=config.eval_strategy if evaluate else "no",
        eval_steps=config.eval_steps,
        save_strategy=config.eval_strategy if evaluate else "epoch",
        save_steps=config.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=evaluate,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=logging_steps,
        report_to=config.report_to,
        seed=config.seed,
        bf16=cuda and half == torch.bfloat16,
        fp16=cuda and half == torch.float16,
        use_cpu=not cuda,
        model_init_kwargs=model_kwargs,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    callbacks = [EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)] \
        if evaluate and config.early_stopping_patience > 0 else []
    try:
        trainer = SFTTrainer(
            model=config.model, args=args, train_dataset=Dataset.from_list(train),
            eval_dataset=Dataset.from_list(val) if evaluate else None, processing_class=tokenizer,
            peft_config=lora, quantization_config=bnb, callbacks=callbacks)
    except OSError as exc:
        raise SystemExit(model_error(config.model, exc)) from exc
    return trainer, tokenizer


def model_error(model: str, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    hint = ""
    if "gated" in str(exc).lower() or "401" in str(exc) or "403" in str(exc):
        hint = (" — a gated model: accept its licence on its Hugging Face page, then `hf auth login` "
                "(or set HF_TOKEN)")
    elif "offline" in str(exc).lower() or "connect" in str(exc).lower():
        hint = " — not in the local cache and the hub is unreachable: download it first or pass a local folder"
    return f"error: cannot load model {model!r}: {text}{hint}"


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
    return pads / total if total else 0.0


def epoch_losses(log_history: list[dict]) -> dict[str, list]:
    """Train loss (mean of the logged steps) and validation loss per epoch, from the trainer's log."""
    train, val = {}, {}
    for entry in log_history:
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        bucket = max(1, int(-(-epoch // 1)))  # ceil: steps within epoch k belong to k
        if "loss" in entry:
            train.setdefault(bucket, []).append(entry["loss"])
        if "eval_loss" in entry:
            val[bucket] = entry["eval_loss"]
    return {"train_loss": [round(sum(v) / len(v), 4) for _, v in sorted(train.items())],
            "eval_loss": [round(v, 4) for _, v in sorted(val.items())]}


def main(config: Config) -> dict:
    """Train one run; returns its metrics."""
    import torch

    log = pu.setup_logging(config.verbose)
    input_dir = Path(config.input_dir)
    train_path, val_path = input_dir / "train.jsonl", input_dir / "val.jsonl"
    if not train_path.is_file():
        raise SystemExit(f"error: {train_path} not found: run stage 07 first (or pass --input-dir)")
    train, problems = read_jsonl(train_path, log)
    val, val_problems = read_jsonl(val_path, log) if val_path.is_file() else ([], [])
    problems += val_problems
    if not train:
        raise SystemExit(f"error: {train_path} holds no usable example")

    run_name = config.run_name or default_run_name(config)
    run_dir = pu.safe_child(Path(config.output_dir).resolve(), run_name) if "/" not in run_name else None
    if run_dir is None:
        raise SystemExit(f"error: --run-name {run_name!r} must be a plain folder name")
    finished = (run_dir / "metrics.json").exists()
    resume = run_dir.exists() and not finished and any((run_dir / "checkpoints").glob("checkpoint-*"))
    if finished and not (config.overwrite or config.force):
        raise SystemExit(f"error: run {run_dir} exists; choose another --run-name or pass --overwrite")
    if finished:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    resumed_from = ""
    if resume:
        resumed_from = max((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])).name
        log.info("run %s was interrupted: resuming from %s", run_name, resumed_from)

    trainer, tokenizer = build_trainer(config, train, val, run_dir, cuda, log)
    lengths = example_lengths(train + val, tokenizer)
    longest = max(lengths)
    too_long = sum(1 for n in lengths if n > config.max_length)
    log.info("examples: %d train, %d val; longest %d tokens (max_length %d)", len(train), len(val), longest,
             config.max_length)
    if too_long and not config.drop_long:
        raise SystemExit(f"error: {too_long} examples are longer than --max-length {config.max_length} tokens "
                         f"(the longest has {longest}); their answers would be cut: raise --max-length to {longest} "
                         f"or pass --drop-long")
    if too_long:
        keep = [n <= config.max_length for n in lengths]
        train = [ex for ex, k in zip(train, keep[:len(train)]) if k]
        val = [ex for ex, k in zip(val, keep[len(train):]) if k]
        log.warning("%d examples longer than %d tokens dropped", too_long, config.max_length)
        trainer, tokenizer = build_trainer(config, train, val, run_dir, cuda, log)

    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    log.info("trainable parameters: %d of %d (%.2f%%); device: %s; 4-bit: %s", trainable, total,
             100 * trainable / total, "cuda" if cuda else "cpu", config.load_in_4bit and cuda)
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
    trainer.save_model(str(run_dir))  # the best checkpoint's adapter (load_best_model_at_end)
    tokenizer.save_pretrained(str(run_dir))
    losses = epoch_losses(trainer.state.log_history)
    compute = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp16"
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    metrics = {
        "run_name": run_name,
        "model": config.model,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "quantization": (f"4-bit NF4, double quantisation, {compute} compute" if config.load_in_4bit and cuda
                         else (compute if cuda else "fp32 (CPU)")),
        "train_examples": len(train),
        "val_examples": len(val),
        "skipped_lines": problems,
        "longest_example_tokens": longest,
        "resumed_from": resumed_from,
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0, 3),
        **losses,
        "best_eval_loss": trainer.state.best_metric,
        "mean_train_loss": round(result.training_loss, 4),
        "tokens_seen": tokens,
        "tokens_per_second": round(tokens / wall, 1) if wall else 0.0,
        "padding_share": round(pad_share, 4),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "wall_seconds": round(wall, 1),
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    resolved = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    pu.atomic_write_json(run_dir / "run_config.json", {"config": resolved, "run_name": run_name,
                                                      "system_message": train[0]["prompt"][0]["content"]
                                                      if train[0]["prompt"][0]["role"] == "system" else "",
                                                      "libraries": library_versions()})
    if config.merge:
        merge_adapter(config.model, run_dir, log)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the best adapter is saved; checkpoints are spent
    pu.atomic_write_json(run_dir / "metrics.json", metrics)
    pu.print_summary(f"stage 08: fine-tuning run {run_name}", metrics)
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
