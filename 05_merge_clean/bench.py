"""Benchmark of stage 05 on generated input: time and peak memory against the number of references.

    .venv/bin/python 05_merge_clean/bench.py [--refs 10000 100000 1000000] [--runs 1]

For each size, writes ``refs / 40`` generated papers in stage 04's shape (40 references and 40 citing
sentences each; works drawn from a pool a third the size of the references, so most are cited by several
papers; a third of the citations carry a DOI, a third a parsed title, a third only raw text printed in
one of three styles; 1% of cells hold mojibake), runs the real stage in a child process and reports its
wall time and peak resident memory (``ru_maxrss`` of the child). All of it is generated data.
"""
from __future__ import annotations

import argparse
import csv
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pipeline_utils as pu  # noqa: E402

WORDS = ("maritime digital port vessel sensor data platform emission navigation autonomous shore monitoring fuel "
         "logistics container cyber risk safety crew model network analysis optimisation arrival berth terminal "
         "traffic satellite engine hull performance learning residual deep transformer attention").split()
SENT = ["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys"]
REF = ["paper_id", "ref_key", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw"]


def work(rng: random.Random, n: int) -> dict:
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 11))).capitalize()
    return {"title": f"{title} {n}", "year": str(1990 + n % 35), "surname": f"Author{n % 997}",
            "doi": f"10.5555/bench.{n}"}


def printed(w: dict, style: int) -> str:
    if style == 0:
        return f"A. {w['surname']} and B. Other. {w['title']}. In Proc. Conf., pages 1-9, {w['year']}."
    if style == 1:
        return f"{w['surname']}, A., Other, B.: {w['title']}. In: Proceedings of the Conference, pp. 1-9 ({w['year']})"
    return f"{w['surname']} A, Other B ({w['year']}) {w['title']}. J Bench 3:1-9"


def generate(folder: Path, n_refs: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    pool = max(10, n_refs // 3)
    for p in range(n_refs // 40):
        pid = f"2501.{p:06d}v1"
        refs, sents = [], []
        for k in range(1, 41):
            n = int(rng.paretovariate(1.2)) % pool if rng.random() < 0.5 else rng.randrange(pool)
            w = work(random.Random(n), n)
            kind = rng.randrange(3)
            title = w["title"] + ("Ã©" if rng.random() < 0.01 else "")
            refs.append({"paper_id": pid, "ref_key": f"ref{k}", "title": title if kind < 2 else "",
                         "year": w["year"] if kind < 2 else "", "authors": f"{w['surname']}, A",
                         "venue": "" if kind == 2 else "J Bench", "doi": w["doi"] if kind == 0 else "",
                         "arxiv_id": "", "raw": printed(w, rng.randrange(3))})
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 24))).capitalize()
            sents.append({"paper_id": pid, "sentence_id": f"{pid}:{k}.1", "section": "Results",
                          "sentence": f"{text} [{k}].", "sentence_clean": f"{text}.", "ref_keys": f"ref{k}"})
        for name, rows, cols in ((f"{pid}.references.csv", refs, REF), (f"{pid}.sentences.csv", sents, SENT)):
            with open(folder / name, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=cols)
                writer.writeheader()
                writer.writerows(rows)


CHILD = """
import sys, time, json, resource
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
from helpers import load_stage
stage = load_stage("05")
began = time.perf_counter()
report = stage.main(stage.Config(input_dir={src!r}, output_dir={out!r}))
print("RESULT", json.dumps({{"seconds": time.perf_counter() - began,
      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "refs": report["references"]}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    import json

    print(f"stage 05 on generated input (load average {open('/proc/loadavg').read().split()[:3]})")
    print(f"  {'references':>11} {'distinct':>9} {'seconds':>8} {'peak MB':>8}")
    for n in args.refs:
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "in", Path(tmp) / "out"
            src.mkdir()
            began = time.perf_counter()
            generate(src, n)
            made = time.perf_counter() - began
            results = []
            for _ in range(args.runs):
                code = CHILD.format(repo=str(pu.REPO_ROOT), tests=str(pu.REPO_ROOT / "tests"), src=str(src),
                                    out=str(out))
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    print(done.stderr[-2000:])
                    return 1
                results.append(json.loads(line[7:]))
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        print(f"  {n:>11,} {results[0]['refs']['distinct_works']:>9,} {seconds:>8.1f} {peak:>8.0f}"
              f"   (input generated in {made:.0f} s; median of {args.runs} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
