"""Would stage 06's snapshot matching gain from spreading its batches over Ray (issue 24)? A measurement.

    .venv/bin/python 06_crossref_doi/bench_spread.py --n 100000            # generated: N works, N references
    .venv/bin/python 06_crossref_doi/bench_spread.py --n 1000000 --runs 1

The data is ``bench.py --scale``'s (``write_scale_inputs``: a generated Crossref-format snapshot of N works and N
labelled references), loaded into DuckDB once. Then the stage's own matching loop is timed two ways over the same
batches of ``--batch`` references:
- **in one process**, as stage 06 runs it: per batch, one DuckDB query for every reference's candidates
  (``SnapshotIndex.prefetch``, DuckDB on 2 threads) and the checks of each reference in Python (``resolve``); the
  CPU time of each part is printed (``time.process_time``), the share the checks take being what spreading could
  parallelise;
- **spread over Ray** at each of ``--workers``: each batch one Ray task (``pipeline_utils.run_tasks``), which opens
  the DuckDB file read-only (1 thread), runs the same query and the same checks, and returns the answers; the driver
  only collects them (in the stage it would also write them). The answers are compared with the first way's.
Wall times, medians of ``--runs``, with the 1-minute load average. Ray's start-up is printed apart.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import pipeline_utils as pu  # noqa: E402


def _load(path: Path, name: str):
    return pu.load_script(path, name)


stage = _load(HERE / "crossref_doi.py", "stage06_bench_spread")


@dataclass
class Config:
    """Stage 06's snapshot matching in one process, and its batches spread over Ray."""

    n: int = 100_000
    """Works in the generated snapshot, and references to match."""
    batch: int = 5000
    """References per batch (stage 06's --snapshot-batch)."""
    workers: tuple[int, ...] = (2,)
    """Ray tasks in flight (a local Ray with the most of them as CPUs)."""
    runs: int = 3
    """Timed runs of each way (the median is reported)."""


def open_read_only(db: str, threads: int):
    """A SnapshotIndex over an already loaded DuckDB file, read-only (several processes may read it at once)."""
    import duckdb

    index = stage.SnapshotIndex.__new__(stage.SnapshotIndex)
    index.db_path = Path(db)
    index.con = duckdb.connect(db, read_only=True)
    index.con.execute(f"SET threads = {int(threads)}").fetchall()
    index._found, index._records, index.answers = {}, {}, None
    index.stats = {}
    return index


def match_batch(index, refs: list[dict], config) -> tuple[list[dict], float, float]:
    """What stage 06 does with one batch of the snapshot backend: one candidate query, then every reference's
    checks. Returns the answers (without the records) and the CPU seconds of the query and of the checks."""
    began = time.process_time()
    index.prefetch([(stage.bibliographic_query(r), r["title"] or r["raw"], stage.reference_year(r), not r["title"])
                    for r in refs if r["title"] or r["raw"]], config.snapshot_candidates)
    index.prefetch_works([r["doi"] for r in refs if r["doi"]])
    queried = time.process_time()
    snap_config = dataclasses.replace(config, rows=config.snapshot_candidates)
    answers = []
    for ref in refs:
        result = stage.resolve(ref, index, snap_config, None)
        answers.append({k: v for k, v in result.items() if not k.startswith("_")})
    index.forget()
    return answers, queried - began, time.process_time() - queried


def ray_task(db: str, refs: list[dict]) -> list[dict]:
    """One batch as a Ray task: its own read-only connection, one DuckDB thread."""
    index = open_read_only(db, threads=1)
    try:
        return match_batch(index, refs, stage.Config(backend="snapshot"))[0]
    finally:
        index.con.close()


def main(config: Config) -> dict:
    import ray

    bench = _load(HERE / "bench.py", "bench06_for_spread")
    pu.setup_logging(False)
    with tempfile.TemporaryDirectory(prefix="bench-spread-") as tmp:
        tmp = Path(tmp)
        began = time.perf_counter()
        bench.write_scale_inputs(tmp, config.n)
        db = tmp / "snapshot.duckdb"
        index = stage.SnapshotIndex(db, memory_limit="512MB")
        index.load(tmp / "snapshot.jsonl.gz", progress=False)
        index.close()
        print(f"n={config.n:,}: inputs generated and loaded in {time.perf_counter() - began:.1f} s")
        refs = list(stage.csv_rows(tmp / "in" / "references.csv"))
        batches = [refs[i:i + config.batch] for i in range(0, len(refs), config.batch)]
        stage_config = stage.Config(backend="snapshot")

        def one_process() -> tuple[float, float, float, list[dict]]:
            index = open_read_only(str(db), threads=2)
            began, q, c, answers = time.perf_counter(), 0.0, 0.0, []
            for chunk in batches:
                got, dq, dc = match_batch(index, chunk, stage_config)
                answers.extend(got)
                q, c = q + dq, c + dc
            index.con.close()
            return time.perf_counter() - began, q, c, answers

        def spread(workers: int) -> float:
            began = time.perf_counter()
            results = {key: (value, error) for key, value, error in pu.run_tasks(
                ray_task, [(i, (str(db), chunk)) for i, chunk in enumerate(batches)], executor="ray",
                workers=workers)}
            wall = time.perf_counter() - began
            errors = [e for _, e in results.values() if e]
            if errors:
                raise SystemExit(f"a batch failed on Ray: {errors[0]}")
            if [a for i in range(len(batches)) for a in results[i][0]] != expected:
                raise SystemExit("Ray's answers differ from the one-process answers")
            return wall

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        began = time.perf_counter()
        ray.init(num_cpus=max(config.workers), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        print(f"Ray started in {time.perf_counter() - began:.1f} s", flush=True)
        try:
            _, _, _, expected = one_process()
            firsts = {w: spread(w) for w in config.workers}  # starts the workers and imports stage 06 there
            local_wall, query_cpu, check_cpu, loads = [], [], [], []
            ray_walls: dict[int, list[float]] = {w: [] for w in config.workers}
            for _ in range(config.runs):  # interleaved: a change of load hits both ways alike
                wall, q, c, answers = one_process()
                if answers != expected:
                    raise SystemExit("the one-process answers changed between runs")
                local_wall.append(wall)
                query_cpu.append(q)
                check_cpu.append(c)
                for w in config.workers:
                    ray_walls[w].append(spread(w))
                loads.append(round(os.getloadavg()[0], 2))
        finally:
            ray.shutdown()
        report = {"n": config.n, "batches": len(batches), "one_process_wall_s": statistics.median(local_wall),
                  "query_cpu_s": statistics.median(query_cpu), "check_cpu_s": statistics.median(check_cpu),
                  "loads": loads, "ray": {w: {"wall_s": statistics.median(t), "first_run_s": firsts[w],
                                              "runs": t} for w, t in ray_walls.items()}}
        share = report["check_cpu_s"] / (report["check_cpu_s"] + report["query_cpu_s"])
        print(f"one process: {report['one_process_wall_s']:.1f} s wall (runs {[round(t, 1) for t in local_wall]}); "
              f"CPU: candidate queries {report['query_cpu_s']:.1f} s, checks {report['check_cpu_s']:.1f} s "
              f"({share:.0%} of the CPU in the checks)")
        for w, r in report["ray"].items():
            print(f"Ray, {w} task(s) in flight: {r['wall_s']:.1f} s wall (runs {[round(t, 1) for t in r['runs']]}; "
                  f"first run {r['first_run_s']:.1f} s), answers identical to the one-process ones")
        print(f"load average (1 min) after each round: {loads}")
    return report


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
