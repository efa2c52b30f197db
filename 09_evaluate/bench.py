"""Benchmark of stage 09's constrained decoding: DOI-trie build and examples/s including it.

    .venv/bin/python 09_evaluate/bench.py                 # tiny local model, generated catalogue
    .venv/bin/python 09_evaluate/bench.py --catalogue 50000

Generated data (a tiny 2-layer model and synthetic DOIs): the figures measure the decoder's own
overhead (trie, grammar, beam bookkeeping), not an 8B model's speed. Median of --repeats runs,
with the load average before each run.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import citation_tools as ct  # noqa: E402
import pipeline_utils as pu  # noqa: E402


@dataclass
class Config:
    """Time the DOI trie and constrained beam search on a tiny model."""

    catalogue: int = 20000
    """DOIs in the generated catalogue."""
    requests: int = 16
    """Requests decoded per run."""
    k: int = 10
    """DOIs per ranked answer."""
    num_beams: int = 4
    """Beams (each returned and merged)."""
    repeats: int = 3
    """Runs; the median is reported."""
    threads: int = 1
    """Torch CPU threads."""


def main(config: Config) -> dict:
    import torch

    from demo.tiny_model import build_tiny_model

    torch.set_num_threads(config.threads)
    folder = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    model, tokenizer = ct.load_model(str(folder))
    dois = [f"10.{5555 + i % 7}/mdig.{2000 + i % 25}.{i:05d}" for i in range(config.catalogue)]
    chats = [[{"role": "system", "content": "Answer with DOIs."},
              {"role": "user", "content": f"Studies on topic {i} of maritime digitalisation?"}]
             for i in range(config.requests)]
    builds, rates, loads = [], [], []
    for _ in range(config.repeats):
        loads.append(open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?")
        t0 = time.perf_counter()
        ct.DoiTrie(dois, tokenizer, max_dois=config.k)
        builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # generate_constrained builds its own trie: part of examples/s
        ct.generate_constrained(model, tokenizer, chats, dois, k=config.k, num_beams=config.num_beams)
        rates.append(config.requests / (time.perf_counter() - t0))
    summary = {"catalogue_dois": config.catalogue, "trie_build_seconds_median": round(statistics.median(builds), 3),
               "examples_per_second_median_incl_trie": round(statistics.median(rates), 2),
               "runs": config.repeats, "load_average_1min": loads, "k": config.k, "num_beams": config.num_beams,
               "data": "generated (tiny model, synthetic DOIs)"}
    pu.print_summary("stage 09 bench: constrained decoding", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
