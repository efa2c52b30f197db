"""CPU measurement of stage 08: tokens per second and padding share, plain, length-grouped and packed.

    .venv/bin/python 08_finetune/bench.py [--data demo/run/07_qa_formatting] [--epochs 3]

Runs the real stage on stage 07's demo pairs (run `make demo` first, or point
--data at your own) with the tiny local model the tests use (4 layers, hidden
size 128), once per setting, and prints the figures from each run's metrics.json.
Tokens per second counts non-padding tokens; the padding share is measured on
the first training batches as the collator builds them.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent / "demo" / "run" / "07_qa_formatting")
    parser.add_argument("--epochs", type=float, default=3)
    args = parser.parse_args()
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
