"""Stages 03 and 04 through Ray (--executor ray) give what the local path gives: the same XML, the same CSVs, the
same bad paper reported and skipped, the same resume after an interruption (issue 24)."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import pytest

from demo.standins import load_demo_papers
from helpers import REPO, load_stage

import pipeline_utils as pu

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (the optional extra: "
                                                   "pip install -r requirements-extra.txt)")
# one Ray for the whole module, on one xdist worker
pytestmark = pytest.mark.xdist_group("ray")
REALTEX = REPO.parent / "shared" / "realtex"
TIMINGS = {"seconds", "papers_per_second", "pages_per_second"}


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray with 2 CPUs (what CI has), started once for the module; the stages find it and use it."""
    import logging

    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             object_store_memory=100 * 1024 * 1024)  # the papers are small; CI's /dev/shm may be too
    yield ray
    ray.shutdown()


def eprint_name(paper_id: str, eprint: bytes) -> str:
    """The file name stage 01 gives an e-print, by its shape: a gzipped tar, a gzipped .tex, or the PDF."""
    if eprint[:4] == b"%PDF":
        return f"{paper_id}.pdf"
    try:
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(eprint))).close()
        return f"{paper_id}.tar.gz"
    except tarfile.TarError:
        return f"{paper_id}.gz"


@pytest.fixture(scope="module")
def demo_input(tmp_path_factory) -> Path:
    """Stage 02's output for the demo's five papers (PDFs and e-prints as the arXiv stand-in serves them), plus a
    paper whose PDF is corrupt and has no e-print: it fails in both executors."""
    root = tmp_path_factory.mktemp("demo-in")
    (root / "pdfs").mkdir()
    (root / "sources").mkdir()
    for paper in load_demo_papers():
        pid = paper.arxiv_id.replace("/", "_")
        (root / "pdfs" / f"{pid}.pdf").write_bytes(paper.pdf)
        (root / "sources" / eprint_name(pid, paper.eprint)).write_bytes(paper.eprint)
    (root / "pdfs" / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage, no xref\n")
    return root


def files(folder: Path) -> dict[str, bytes]:
    """Every output file but run.json (timings) and extraction_log.csv (read with read_log)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in ("run.json", "extraction_log.csv")}


def read_log(folder: Path) -> list[dict]:
    """extraction_log.csv without its seconds column (each paper's own time)."""
    with open(folder / "extraction_log.csv", encoding="utf-8-sig", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def counts(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def run03(input_dir: Path, out: Path, executor: str, **kw) -> dict:
    stage = load_stage("03")
    return stage.main(stage.Config(input_dir=input_dir, output_dir=out, backend="auto", executor=executor,
                                   workers=2, **kw))


def run04(input_dir: Path, out: Path, executor: str, **kw) -> dict:
    stage = load_stage("04")
    return stage.main(stage.Config(input_dir=input_dir, output_dir=out, executor=executor, **kw))


@pytest.fixture(scope="module")
def local_runs(demo_input, tmp_path_factory):
    """Stages 03 and 04 on the local path (03's process pool, 04 in this process) over the demo's papers, with a
    corrupt XML beside 03's output for 04."""
    base = tmp_path_factory.mktemp("local")
    s03 = run03(demo_input, base / "03", "local")
    xml_in = base / "03-xml"
    shutil.copytree(base / "03", xml_in)
    (xml_in / "cut.cermxml").write_text("<article><body><sec><p>Ports wait [<xref ref-type=\"bibr\" rid=\"r1\">1")
    s04 = run04(xml_in, base / "04", "local")
    return base, xml_in, s03, s04


@needs_ray
def test_stage03_through_ray_writes_the_same_xml_and_log_as_the_process_pool(ray_session, demo_input, local_runs,
                                                                              tmp_path):
    base, _, local03, _ = local_runs
    summary = run03(demo_input, tmp_path / "03", "ray")
    assert files(tmp_path / "03") == files(base / "03")
    assert read_log(tmp_path / "03") == read_log(base / "03")
    assert counts(summary) == counts(local03)
    assert summary["by_backend"] == {"latex": 4, "builtin": 1}
    assert list(summary["failed"]) == ["broken"] and "corrupt PDF" in summary["failed"]["broken"]
    assert not list((tmp_path / "03").glob(".ray-probe-*")) and not (tmp_path / "03" / ".unpack").exists()


@needs_ray
def test_stage04_through_ray_writes_the_same_csvs_as_the_local_path(ray_session, local_runs, tmp_path):
    base, xml_in, _, local04 = local_runs
    summary = run04(xml_in, tmp_path / "04", "ray", workers=2)
    assert files(tmp_path / "04") == files(base / "04")  # the CSVs and the manifest, byte for byte
    assert counts(summary) == counts(local04)
    assert list(summary["failed"]) == ["cut.cermxml"] and summary["failed"]["cut.cermxml"].startswith("malformed")
    assert summary["converted"] == 5 and summary["sentences"] == 49


@needs_ray
def test_an_interrupted_ray_run_resumes_where_it_stopped(ray_session, demo_input, local_runs, tmp_path):
    """A run stopped halfway leaves whole files only (atomic writes) and the log of the run before: the rerun
    converts just the rest."""
    base, xml_in, _, _ = local_runs
    out3 = tmp_path / "03"
    shutil.copytree(base / "03", out3)
    for name in ("2513.00002v1.cermxml", "2513.00004v1.cermxml", "run.json"):
        (out3 / name).unlink()
    (out3 / ".2513.00003v2.cermxml.abc.tmp").write_bytes(b"<article>half")  # a write the kill cut short
    summary = run03(demo_input, out3, "ray")
    assert summary["converted"] == 2 and summary["unchanged"] == 3  # broken is tried again, and fails again
    assert files(out3) == files(base / "03") and read_log(out3) == read_log(base / "03")

    out4 = tmp_path / "04"
    shutil.copytree(base / "04", out4)
    (out4 / "2513.00001v1.sentences.csv").unlink()
    summary = run04(xml_in, out4, "ray", workers=2)
    assert summary["converted"] == 1 and summary["unchanged"] == 4 and list(summary["failed"]) == ["cut.cermxml"]
    assert files(out4) == files(base / "04")


def test_stage04_with_a_local_process_pool_writes_what_one_process_writes(local_runs, tmp_path):
    base, xml_in, _, local04 = local_runs
    summary = run04(xml_in, tmp_path / "04", "local", workers=2)
    assert files(tmp_path / "04") == files(base / "04") and counts(summary) == counts(local04)


@needs_ray
def test_the_script_starts_its_own_quiet_ray_and_writes_what_the_local_path_writes(local_runs, tmp_path):
    """As a user runs it: the script as a file (its functions in __main__), a fresh local Ray it starts and stops."""
    import subprocess

    base, xml_in, _, _ = local_runs
    proc = subprocess.run([sys.executable, str(REPO / "04_xml_to_csv" / "xml_to_csv.py"), "--executor", "ray",
                           "--workers", "2", "--input-dir", str(xml_in), "--output-dir", str(tmp_path / "04")],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert files(tmp_path / "04") == files(base / "04")
    assert "Ray: started for this run, 2 CPUs" in proc.stderr
    ray_lines = [line for line in proc.stderr.splitlines() if "WARNING" in line and "cut.cermxml" not in line]
    assert not ray_lines, ray_lines  # Ray's own start-up says nothing


# ---------------------------------------------------------------------------
# The runner itself: worker deaths, the cap on tasks in flight, the shared-folder check, a missing Ray
# ---------------------------------------------------------------------------

def double_or_die(word: str) -> str:
    """A task: ``die`` kills its worker process outright (a segfault in a PDF library looks the same)."""
    if word == "die":
        os._exit(3)
    if word == "raise":
        raise ValueError("bad paper")
    return word * 2


def timed_nap(n: int) -> tuple[float, float]:
    began = time.time()
    time.sleep(0.3)
    return began, time.time()


@needs_ray
def test_a_task_that_raises_or_kills_its_worker_is_counted_and_the_rest_goes_on(ray_session):
    """Two papers per task: the chunk whose worker died is redone paper by paper, so only the culprit fails."""
    words = ["a", "die", "raise", "b", "c"]
    results = {key: (value, error) for key, value, error in
               pu.run_tasks(double_or_die, [(w, (w,)) for w in words], executor="ray", workers=2, chunk=2)}
    assert {k: v for k, (v, _) in results.items() if v} == {"a": "aa", "b": "bb", "c": "cc"}
    assert results["raise"] == (None, "ValueError: bad paper")
    assert results["die"][0] is None and results["die"][1].startswith("Ray task failed (")


@needs_ray
def test_workers_caps_the_ray_tasks_in_flight(ray_session):
    spans = sorted(value for _, value, _ in pu.run_tasks(timed_nap, [(n, (n,)) for n in range(4)],
                                                           executor="ray", workers=1))
    assert len(spans) == 4 and all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))


@needs_ray
def test_an_input_the_workers_cannot_see_stops_the_stage_before_any_task(ray_session, tmp_path):
    missing = tmp_path / "only-on-the-driver"
    with pytest.raises(SystemExit, match="does not share this driver's files .*not visible there"):
        with pu.TaskRunner("ray", workers=2, shared_dirs=[tmp_path / "out"], visible=[missing]):
            pass
    assert not list((tmp_path / "out").glob(".ray-probe-*"))


def test_executor_ray_without_ray_installed_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(SystemExit, match=r"--executor ray needs Ray, an optional extra: pip install -r "
                                         r"requirements-extra.txt"):
        with pu.TaskRunner("ray", workers=2):
            pass


# ---------------------------------------------------------------------------
# Real sources: ../shared/realtex through both executors
# ---------------------------------------------------------------------------

@needs_ray
@pytest.mark.skipif(not (REALTEX / "MANIFEST.csv").is_file(), reason="../shared/realtex is not on this machine")
def test_real_sources_give_the_same_xml_and_csvs_through_both_executors(ray_session, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_latex_24", REPO / "03_cermine_extract" / "bench_latex.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(bench)
    slugs = [r["slug"] for r in bench.kept_rows(REALTEX)]
    bench.pack_sources(REALTEX, slugs, tmp_path / "in" / "sources")
    outputs = {}
    for executor in ("local", "ray"):
        s03 = run03(tmp_path / "in", tmp_path / executor / "03", executor)
        s04 = run04(tmp_path / executor / "03", tmp_path / executor / "04", executor, workers=2)
        outputs[executor] = (files(tmp_path / executor / "03"), read_log(tmp_path / executor / "03"),
                             files(tmp_path / executor / "04"), counts(s03), counts(s04))
    assert outputs["ray"] == outputs["local"]
    assert outputs["ray"][3]["converted"] == len(slugs) and not outputs["ray"][3]["failed"]
    assert json.loads(outputs["ray"][2][".manifest.json"]).keys() == set(slugs)
