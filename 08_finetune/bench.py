"""CPU measurement of stage 08: tokens per second and padding share, plain, length-grouped and packed;
and the length of a grounded prompt (20 candidate works) in Llama 3.1 tokens, estimated.

    .venv/bin/python 08_finetune/bench.py [--data demo/run/07_qa_formatting] [--epochs 3]
    .venv/bin/python 08_finetune/bench.py --grounded-length [--realtext ../shared/realtext/unarxive_dev.jsonl]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent / "demo" / "run" / "07_qa_formatting")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--grounded-length", action="store_true", help="estimate a grounded prompt's length")
    parser.add_argument("--realtext", type=Path,
                        default=HERE.parent.parent / "shared" / "realtext" / "unarxive_dev.jsonl")
    args = parser.parse_args()
    if args.grounded_length:
        return grounded_length(args.realtext)
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
