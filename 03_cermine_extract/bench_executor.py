"""Benchmark of stage 03's executors: the local process pool against Ray, on the development papers.

    .venv/bin/python 03_cermine_extract/bench_executor.py                       # devsets/latex and devsets/pdf
    .venv/bin/python 03_cermine_extract/bench_executor.py --routes latex --runs 5 --chunks 1 4 8

Each route runs stage 03 itself (``main``, ``--force``) over the development papers: ``latex`` packs every kept
source of ``devsets/latex`` as the gzipped tar arXiv serves (``--backend latex``), ``pdf`` converts every kept PDF of
``devsets/pdf`` with the built-in backend. Per route, in each of ``--runs`` rounds, every setting runs once in turn
(interleaved, so that a change in the machine's load hits every setting alike): the process pool at each of
``--workers``, Ray at each of ``--workers`` with ``--task-chunk`` 1, and Ray at the most workers with each further
``--chunks``. One local Ray (``num_cpus`` = the most workers) is started before the rounds and serves them all; its
start-up, and the first (untimed) run that starts its workers and imports the stage there, are printed apart: a
batch of millions of papers pays them once. The figure per setting is the median of the stage's own ``seconds``
(from the first task to the last result, the log and run.json), and the driver's own CPU time per paper (this
process: input hashes, the results' checks and atomic writes, and submitting the tasks; the workers' CPU is not in
it), which bounds how many papers per second one driver can take from a cluster. Ray's overhead per paper is (Ray - pool) / papers
at the same number of workers. The per-paper conversion cost used for the whole-field estimate in the README is the
CPU time of ``convert_latex`` / ``convert_builtin`` called in this process (``time.process_time``, median of
``--runs``), which the machine's load does not inflate.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import pipeline_utils as pu  # noqa: E402


@dataclass
class Config:
    """Stage 03 with the process pool and with Ray, on the development papers."""

    latex_dir: Path = REPO / "devsets" / "latex"
    """Real LaTeX sources (MANIFEST.csv, one folder per paper): the LaTeX route."""
    pdf_dir: Path = REPO / "devsets" / "pdf"
    """Real published PDFs (MANIFEST.csv with file, kept): the built-in backend."""
    routes: tuple[str, ...] = ("latex", "pdf")
    """Which routes to measure."""
    runs: int = 3
    """Timed rounds (the median is reported)."""
    workers: tuple[int, ...] = (1, 2)
    """Workers of the process pool and Ray tasks in flight."""
    chunks: tuple[int, ...] = (4,)
    """Further papers-per-task settings tried with Ray at the most workers (1 is always measured)."""
    noop_tasks: int = 400
    """Also time this many empty tasks through each executor at the most workers (the executor's own cost per
    task, apart from any conversion); 0 skips it."""
    json_out: Path | None = None
    """Also write every figure to this JSON file."""


def load(path: Path, name: str):
    return pu.load_script(path, name)


def prepare(config: Config, route: str, tmp: Path, bench_latex) -> tuple[Path, list[Path], str]:
    """Stage 02's output for one route: (input folder, the input files, stage 03's --backend)."""
    root = tmp / route / "in"
    if route == "latex":
        slugs = [r["slug"] for r in bench_latex.kept_rows(config.latex_dir)]
        sources = bench_latex.pack_sources(config.latex_dir, slugs, root / "sources")
        return root, sorted(sources.iterdir()), "latex"
    (root / "pdfs").mkdir(parents=True)
    for row in pu.read_csv_rows(config.pdf_dir / "MANIFEST.csv"):
        src = config.pdf_dir / row["file"]
        if row.get("kept", "yes") != "no" and src.is_file():
            shutil.copyfile(src, root / "pdfs" / src.name)
    return root, sorted((root / "pdfs").iterdir()), "builtin"


def cpu_per_paper(stage, files: list[Path], backend: str, runs: int, work: Path) -> dict[str, float]:
    """Median CPU seconds of each paper's conversion in this process (no executor at all)."""
    work.mkdir(parents=True, exist_ok=True)
    limits = stage.eprint.Limits()
    times: dict[str, list[float]] = {f.name: [] for f in files}
    for _ in range(max(1, runs)):
        for f in files:
            began = time.process_time()
            if backend == "latex":
                stage.convert_latex(str(f), str(work), limits, 600)
            else:
                stage.convert_builtin(str(f))
            times[f.name].append(time.process_time() - began)
    return {name: statistics.median(t) for name, t in times.items()}


def noop(n: int) -> int:
    """An empty task: what an executor costs per task, apart from the work."""
    return n


def noop_round_trips(n: int, workers: int, runs: int) -> dict[str, float]:
    """Milliseconds per empty task (median of ``runs``) through the process pool and through Ray."""
    out = {}
    for executor in ("local", "ray"):
        times = []
        for _ in range(max(1, runs)):
            began = time.perf_counter()
            for _ in pu.run_tasks(noop, [(i, (i,)) for i in range(n)], executor=executor, workers=workers):
                pass
            times.append(time.perf_counter() - began)
        out[executor] = round(1000 * statistics.median(times) / n, 2)
    return out


def main(config: Config) -> dict:
    import ray

    pu.setup_logging(False)
    logging.getLogger("pipeline").setLevel(logging.WARNING)  # the stage's own lines, 3 x 6 times per route
    stage = load(HERE / "cermine_extract.py", "stage03_bench_executor")
    bench_latex = load(HERE / "bench_latex.py", "bench_latex_for_executor")
    most = max(config.workers)
    settings = [("local", w, 1) for w in config.workers] + [("ray", w, 1) for w in config.workers] + \
        [("ray", most, c) for c in config.chunks if c != 1]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    began = time.perf_counter()
    ray.init(num_cpus=most, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray_start = time.perf_counter() - began
    report: dict = {"ray_start_seconds": round(ray_start, 2), "load_before": os.getloadavg(), "routes": {}}
    try:
        if config.noop_tasks:
            noop_round_trips(20, most, 1)  # starts the workers
            report["noop_ms_per_task"] = noop_round_trips(config.noop_tasks, most, config.runs)
            print(f"empty tasks, {most} in flight: process pool {report['noop_ms_per_task']['local']} ms per task, "
                  f"Ray {report['noop_ms_per_task']['ray']} ms per task (medians of {config.runs} x "
                  f"{config.noop_tasks}; load {os.getloadavg()[0]:.2f})", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
            tmp = Path(tmp)
            for route in config.routes:
                input_dir, files, backend = prepare(config, route, tmp, bench_latex)
                n = len(files)

                driver_cpu: dict[tuple, list[float]] = {s: [] for s in settings}

                def run(executor: str, workers: int, chunk: int) -> float:
                    out = tmp / route / f"out-{executor}-{workers}-{chunk}"
                    cpu_before = time.process_time()
                    with open(os.devnull, "w") as null, _quiet(null):
                        try:
                            summary = stage.main(stage.Config(input_dir=input_dir, output_dir=out, backend=backend,
                                                              executor=executor, workers=workers, task_chunk=chunk,
                                                              force=True))
                        except SystemExit as exc:  # a stage that converted nothing still reports its time
                            raise SystemExit(f"{route}: {exc}") from None
                    driver_cpu[(executor, workers, chunk)].append(time.process_time() - cpu_before)
                    return summary["seconds"]

                began = time.perf_counter()
                run("ray", most, 1)  # untimed: starts Ray's workers and imports the stage there
                warm = time.perf_counter() - began
                times: dict[tuple, list[float]] = {s: [] for s in settings}
                loads = [os.getloadavg()[0]]
                for _ in range(max(1, config.runs)):
                    for s in settings:
                        times[s].append(run(*s))
                    loads.append(os.getloadavg()[0])
                med = {s: statistics.median(t) for s, t in times.items()}
                cpu = cpu_per_paper(stage, files, route if route == "latex" else "builtin", config.runs,
                                    tmp / route / "cpu")
                rows = []
                for s in settings:
                    executor, workers, chunk = s
                    pool = med[("local", workers, 1)]
                    rows.append({"executor": executor, "workers": workers, "chunk": chunk,
                                 "median_s": round(med[s], 3), "runs_s": [round(t, 3) for t in times[s]],
                                 "per_paper_ms": round(1000 * med[s] / n, 1),
                                 "vs_pool": round(med[s] / pool, 3) if pool else None,
                                 "overhead_per_paper_ms": round(1000 * (med[s] - pool) / n, 1),
                                 "driver_cpu_ms_per_paper": round(1000 * statistics.median(driver_cpu[s][1:] or
                                                                                           driver_cpu[s]) / n, 1)})
                cpu_values = sorted(cpu.values())
                report["routes"][route] = {
                    "papers": n, "first_ray_run_s": round(warm, 2), "rows": rows,
                    "load_1min_during": [round(x, 2) for x in loads],
                    "cpu_per_paper_s": {"median": round(statistics.median(cpu_values), 4),
                                        "mean": round(sum(cpu_values) / n, 4),
                                        "p90": round(cpu_values[int(0.9 * (n - 1))], 4),
                                        "total": round(sum(cpu_values), 2)}}
                _print_route(route, report["routes"][route])
                sys.stdout.flush()
    finally:
        ray.shutdown()
    report["load_after"] = os.getloadavg()
    print(f"\nRay start-up {report['ray_start_seconds']} s; load average before {report['load_before']}, "
          f"after {report['load_after']}")
    if config.json_out:
        pu.atomic_write_json(config.json_out, report)
    return report


class _quiet:
    """Stage 03's progress bar and summary table off the terminal while the bench times it."""

    def __init__(self, null):
        self.null = null

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.null

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved


def _print_route(route: str, r: dict) -> None:
    print(f"\n== {route}: {r['papers']} papers; first Ray run (workers start, imports) {r['first_ray_run_s']} s; "
          f"load during {r['load_1min_during']}")
    print(f"{'executor':<9}{'workers':>8}{'chunk':>6}{'median s':>10}{'ms/paper':>10}{'vs pool':>9}"
          f"{'overhead ms/paper':>19}{'driver CPU ms/paper':>21}   runs")
    for row in r["rows"]:
        print(f"{row['executor']:<9}{row['workers']:>8}{row['chunk']:>6}{row['median_s']:>10.3f}"
              f"{row['per_paper_ms']:>10.1f}{row['vs_pool']:>9.3f}{row['overhead_per_paper_ms']:>19.1f}"
              f"{row['driver_cpu_ms_per_paper']:>21.1f}   {row['runs_s']}")
    c = r["cpu_per_paper_s"]
    print(f"CPU per paper in one process: median {c['median']} s, mean {c['mean']} s, p90 {c['p90']} s, "
          f"total {c['total']} s")


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
