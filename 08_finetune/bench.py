"""CPU measurement of stage 08: tokens per second and padding share, plain, length-grouped and packed;
and the length of a grounded prompt (20 candidate works) in Llama 3.1 tokens, estimated.

    .venv/bin/python 08_finetune/bench.py [--data demo/run/07_qa_formatting] [--epochs 3]
    .venv/bin/python 08_finetune/bench.py --grounded-length [--realtext ../shared/realtext/unarxive_dev.jsonl]
    .venv/bin/python 08_finetune/bench.py --precision [--model smollm2] [--steps 4] [--repeats 3] [--threads 1]
    .venv/bin/python 08_finetune/bench.py --processes [--repeats 3] [--threads 1]

The first runs the real stage on stage 07's demo pairs (run `make demo` first, or
point --data at your own) with the tiny local model the tests use (4 layers,
hidden size 128), once per setting, and prints the figures from each run's
metrics.json. Tokens per second counts non-padding tokens; the padding share is
measured on the first training batches as the collator builds them.

The second builds grounded prompts exactly as stage 07 does (citation_tools'
grounded_user_message) from real arXiv titles, author names and DOIs (the
unarXive sample in ../shared/realtext, read only) and counts them with Llama 3's
own pre-tokenizer pattern: every piece it splits off is at least one token of the
128k-entry vocabulary, so the count is a lower bound; the estimate adds 20% for
words the vocabulary splits further (names, technical terms). The Llama 3.1
tokenizer itself is gated and cannot be fetched here.

The third trains a real model (default: the packaged SmolLM2-135M-Instruct, `--model smollm2`) for a few
steps in each precision the CPU offers: fp32 LoRA, and QLoRA (4-bit NF4 base weights through bitsandbytes'
CPU backend, `--cpu-4bit`) with bf16 and with fp32 compute. The pairs are generated here (a request and five
candidate works, ~330 tokens each: the data is by construction, only the speed is measured), LoRA on all
linear layers, batch 4. Each setting runs --repeats times, interleaved; it prints the median tokens/s over the
training wall time, the median tokens per CPU-second of training (steadier on a shared machine) and the load
average before and after.

The fourth compares one process with two under `accelerate launch` (the shipped accelerate_ddp.yaml, on the CPU:
gloo) at the same global batch of 8, with the tests' tiny model and 24 generated pairs (by construction; only
the agreement of the losses and the cost are measured): the per-epoch training and validation losses with LoRA
dropout on (0.05) and off, with validation batches of 16 and of one, and one process at batch 4 (another global
batch) for scale; then --repeats timed runs of each, interleaved, every process on --threads torch threads: wall
and CPU seconds of the whole run (a launch includes starting both processes) and the wall time of trainer.train().
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from demo.tiny_model import build_tiny_model  # noqa: E402
from helpers import load_stage  # noqa: E402


# Llama 3's pre-tokenizer (the tiktoken cl100k pattern it inherits): each match is one or more tokens
LLAMA3_PIECES = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# the Llama 3.1 chat template around a system and a user message and the assistant header, in tokens
# (<|begin_of_text|>, three headers of 4 tokens, "Cutting Knowledge Date: ... Today Date: ..." ~20, three <|eot_id|>)
LLAMA31_TEMPLATE_TOKENS = 37


def grounded_length(realtext: Path, candidates: int = 20) -> int:
    """Print the estimated Llama 3.1 length of grounded prompts built from real titles and DOIs."""
    import json
    import random

    import regex

    import citation_tools as ct
    import pipeline_utils as pu

    if not realtext.is_file():
        raise SystemExit(f"error: {realtext} not found (the shared real-text sample)")
    papers = [json.loads(line) for line in realtext.read_text(encoding="utf-8").splitlines() if line.strip()]
    titles = [" ".join(p["metadata"]["title"].split()) for p in papers]
    authors = [p["metadata"]["authors"].split(",")[0].strip() for p in papers]
    dois = [b["ids"]["doi"] for p in papers for b in p["bib_entries"].values() if (b.get("ids") or {}).get("doi")]
    rng = random.Random(0)
    system = pu.topic_value("assistant.system_message", "")
    request = "Could you point me to work on berth allocation under uncertain vessel arrival times?"
    pieces, chars = [], []
    for _ in range(200):
        works = [{"title": rng.choice(titles), "authors": [rng.choice(authors)], "year": str(rng.randint(1995, 2024)),
                  "doi": rng.choice(dois)} for _ in range(candidates)]
        text = system + ct.grounded_user_message(request, works)
        pieces.append(len(regex.findall(LLAMA3_PIECES, text)) + LLAMA31_TEMPLATE_TOKENS)
        chars.append(len(text))
    pieces.sort()
    median, p90 = pieces[len(pieces) // 2], pieces[int(len(pieces) * 0.9)]
    answer = 3 * 14 + 1  # three DOIs of ~25 characters, ~14 pieces each (digits go in threes), and <|eot_id|>
    print(f"{len(titles)} real titles, {len(dois)} real DOIs; {candidates} candidates per prompt, 200 prompts")
    print(f"characters per prompt: median {sorted(chars)[len(chars) // 2]}")
    print(f"Llama 3.1 tokens per prompt: at least {median} (median), {p90} (90th percentile); "
          f"estimate {round(median * 1.2)} / {round(p90 * 1.2)}")
    print(f"with a three-DOI answer: estimate {round(median * 1.2) + answer} tokens per example")
    return 0


def precision_bench(model: str, steps: int, repeats: int, threads: int) -> int:
    """Print tokens/s of fp32 LoRA and 4-bit QLoRA (bf16 and fp32 compute) on the CPU, medians of the repeats."""
    import json
    import os
    import statistics
    import time

    import torch

    import citation_tools as ct

    stage = load_stage("08")
    if threads > 0:
        torch.set_num_threads(threads)
    cpu_seconds: list[float] = []
    build = stage.build_trainer

    def timed_build(*args, **kwargs):  # CPU time of trainer.train() alone, not of loading or saving
        trainer, tokenizer = build(*args, **kwargs)
        train = trainer.train

        def timed_train(*a, **k):
            started = time.process_time()
            try:
                return train(*a, **k)
            finally:
                cpu_seconds.append(time.process_time() - started)

        trainer.train = timed_train
        return trainer, tokenizer

    stage.build_trainer = timed_build
    works = [{"doi": f"10.5555/bench.{2000 + i}.{i:04d}", "title": f"{t} in maritime logistics, part {i}",
              "authors": [f"Author{i}, A."], "year": str(2000 + i % 24)}
             for i, t in enumerate(["Port call optimisation", "Digital twins of ship engines", "GNSS spoofing",
                                    "Autonomous ferries", "Ship emissions monitoring", "Bills of lading"] * 4)]
    system = "You are a research assistant for maritime digitalisation. Answer with DOIs, one per line."
    settings = {"fp32 LoRA": {"cpu_4bit": False},
                "4-bit NF4 QLoRA, bf16 compute": {"cpu_4bit": True, "cpu_compute_dtype": "bf16"},
                "4-bit NF4 QLoRA, fp32 compute": {"cpu_4bit": True, "cpu_compute_dtype": "fp32"}}
    why = stage.cpu_4bit_unsupported()
    if why:
        print(f"4-bit on this CPU: no ({why}); measuring fp32 LoRA only")
        settings = {"fp32 LoRA": settings["fp32 LoRA"]}
    results: dict[str, list[tuple[float, float, str]]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "qa"
        data.mkdir()
        rows = []
        for i in range(4 * steps):
            shown = [works[(i + j) % len(works)] for j in range(5)]
            rows.append({"prompt": [{"role": "system", "content": system},
                                    {"role": "user", "content": ct.grounded_user_message(
                                        f"Could you point me to studies on {works[i % len(works)]['title'].lower()}?",
                                        shown)}],
                         "completion": [{"role": "assistant", "content": shown[0]["doi"]}]})
        (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        weights = ct.resolve_model(model)  # converted (once) before any timing
        print(f"model {model} ({weights}); {len(rows)} generated pairs, batch 4, {steps} steps, "
              f"torch threads {torch.get_num_threads()}; load average before: {os.getloadavg()[0]:.2f}")
        for repeat in range(repeats):
            for name, extra in settings.items():
                cfg = stage.Config(input_dir=data, output_dir=Path(tmp) / "runs", model=model, run_name="bench",
                                   max_steps=steps, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                                   max_length=512, eval_strategy="no", gradient_checkpointing=False,
                                   logging_steps=1, overwrite=True, **extra)
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    logging.disable(logging.WARNING)
                    m = stage.main(cfg)
                    logging.disable(logging.NOTSET)
                results[name].append((m["tokens_per_second"], m["tokens_seen"] / cpu_seconds[-1], m["quantization"]))
                print(f"  run {repeat + 1} {name}: {m['tokens_per_second']:.1f} tokens/s, "
                      f"{m['tokens_seen'] / cpu_seconds[-1]:.1f} tokens/CPU-s, {m['tokens_seen']} tokens, "
                      f"loss {m['mean_train_loss']:.3f} ({m['quantization']}); "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'setting':32} {'runs':>4} {'tokens/s':>9} {'tokens/CPU-s':>13}  precision recorded in metrics.json")
    for name, runs in results.items():
        print(f"{name:32} {len(runs):4d} {statistics.median(r[0] for r in runs):9.1f} "
              f"{statistics.median(r[1] for r in runs):13.1f}  {runs[0][2]}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def processes_bench(repeats: int, threads: int) -> int:
    """Print the losses of one process and of two (accelerate launch, CPU) at the same global batch, and the cost."""
    import json
    import os
    import resource
    import socket
    import statistics
    import subprocess
    import time

    import torch

    stage = load_stage("08")
    if threads > 0:  # the launched processes get one thread each (torchrun's OMP_NUM_THREADS=1): so does this one
        torch.set_num_threads(threads)
    topics = ["digital twins of ship engines", "port call optimisation", "GNSS spoofing on ships",
              "autonomous ferries", "ship emissions monitoring", "electronic bills of lading"]
    dois = [f"10.5555/mdig.{2019 + i % 4}.{102 + 3 * i:04d}" for i in range(6)]

    def pair(i: int) -> dict:
        k = i % 6
        answer = dois[k] if i % 3 else f"{dois[k]}\n{dois[(k + 1) % 6]}"
        return {"prompt": [{"role": "system", "content": "You are a research assistant. Answer with DOIs."},
                           {"role": "user", "content": f"Could you point me to studies on {topics[k]}?"}],
                "completion": [{"role": "assistant", "content": answer}], "dois": answer.split("\n")}

    def one(cfg: dict, batch: int) -> tuple[dict, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            logging.disable(logging.WARNING)
            m = stage.main(stage.Config(run_name="one", per_device_train_batch_size=batch, overwrite=True, **cfg))
            logging.disable(logging.NOTSET)
        return m, time.perf_counter() - wall, time.process_time() - cpu

    def two(cfg: dict) -> tuple[dict, float, float]:
        flags = []
        for key, value in cfg.items():
            name = "--" + key.replace("_", "-")
            flags += ([name] if value else [f"--no-{name[2:]}"]) if isinstance(value, bool) else [name, str(value)]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                        str(HERE / "accelerate_ddp.yaml"), "--num_processes", "2", "--main_process_port", str(port),
                        str(HERE / "finetune.py"), *flags, "--run-name", "two", "--per-device-train-batch-size", "4",
                        "--overwrite"], check=True, capture_output=True, cwd=HERE.parent,
                       env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return json.loads((Path(cfg["output_dir"]) / "two" / "metrics.json").read_text()), wall, cpu

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "qa"
        data.mkdir()
        (data / "train.jsonl").write_text("".join(json.dumps(pair(i)) + "\n" for i in range(24)))
        (data / "val.jsonl").write_text("".join(json.dumps(pair(i)) + "\n" for i in range(6)))
        base = dict(input_dir=str(data), output_dir=str(Path(tmp) / "runs"),
                    model=str(build_tiny_model(Path(tmp) / "tiny")), num_train_epochs=2, learning_rate=5e-3,
                    gradient_accumulation_steps=1, lora_r=8, lora_alpha=16, max_length=128,
                    early_stopping_patience=0, gradient_checkpointing=False, recall_max_new_tokens=8)
        print(f"24 pairs, 6 validation, 2 epochs, global batch 8; load average before: {os.getloadavg()[0]:.2f}")
        print(f"{'LoRA dropout, validation batch':32} {'run':24} {'train loss by epoch':22} {'validation loss':18}")
        for dropout in (0.05, 0.0):
            for eval_batch in (16, 1):
                cfg = dict(base, lora_dropout=dropout, per_device_eval_batch_size=eval_batch)
                runs = {"1 process, batch 8": one(cfg, 8)[0], "2 processes, batch 4 each": two(cfg)[0]}
                if (dropout, eval_batch) == (0.0, 1):
                    runs["1 process, batch 4 (global 4)"] = one(cfg, 4)[0]
                for name, m in runs.items():
                    print(f"{f'{dropout:g}, {eval_batch}':32} {name:24} {str(m['train_loss']):22} {m['eval_loss']}")
        cfg = dict(base, lora_dropout=0.0, per_device_eval_batch_size=1)
        timed: dict[str, list[tuple[float, float, float]]] = {"1 process": [], "2 processes": []}
        for _ in range(repeats):
            for name, run in (("1 process", lambda: one(cfg, 8)), ("2 processes", lambda: two(cfg))):
                m, wall, cpu = run()
                timed[name].append((wall, cpu, m["wall_seconds"]))
        print(f"{f'timed (median of {repeats})':20} {'run wall s':>10} {'run CPU s':>10} {'train() wall s':>15}")
        for name, rows in timed.items():
            wall, cpu, train_wall = (statistics.median(r[i] for r in rows) for i in range(3))
            print(f"{name:20} {wall:10.1f} {cpu:10.1f} {train_wall:15.1f}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent / "demo" / "run" / "07_qa_formatting")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--grounded-length", action="store_true", help="estimate a grounded prompt's length")
    parser.add_argument("--realtext", type=Path,
                        default=HERE.parent.parent / "shared" / "realtext" / "unarxive_dev.jsonl")
    parser.add_argument("--precision", action="store_true", help="fp32 LoRA vs 4-bit QLoRA on a real model, CPU")
    parser.add_argument("--model", default="smollm2", help="--precision: the model (default the packaged SmolLM2)")
    parser.add_argument("--steps", type=int, default=4, help="--precision: optimiser steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="--precision, --processes: runs per setting")
    parser.add_argument("--threads", type=int, default=1,
                        help="--precision, --processes: torch threads (0: torch's default)")
    parser.add_argument("--processes", action="store_true",
                        help="one process against two under accelerate launch (CPU, gloo): losses and cost")
    args = parser.parse_args()
    if args.processes:
        return processes_bench(args.repeats, args.threads)
    if args.grounded_length:
        return grounded_length(args.realtext)
    if args.precision:
        return precision_bench(args.model, args.steps, args.repeats, args.threads)
    if not (args.data / "train.jsonl").exists():
        raise SystemExit(f"error: {args.data}/train.jsonl not found: run `make demo` first or pass --data")
    stage = load_stage("08")
    settings = {"plain (random batches)": {}, "group by length": {"group_by_length": True},
                "packing (TRL bfd)": {"packing": True}}
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny", layers=4, hidden=128)
        print(f"{'setting':24} {'tokens/s':>9} {'padding':>8} {'steps':>6} {'mean train loss':>17}")
        for name, extra in settings.items():
            cfg = stage.Config(input_dir=args.data, output_dir=Path(tmp) / "runs", model=str(model),
                               run_name=name.split()[0], num_train_epochs=args.epochs, learning_rate=2e-3,
                               per_device_train_batch_size=8, gradient_accumulation_steps=1, max_length=512,
                               early_stopping_patience=0, gradient_checkpointing=False, **extra)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                logging.disable(logging.WARNING)
                m = stage.main(cfg)
                logging.disable(logging.NOTSET)
            print(f"{name:24} {m['tokens_per_second']:9.0f} {m['padding_share']:8.1%} {m['steps']:6d} "
                  f"{m['mean_train_loss']:17.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
