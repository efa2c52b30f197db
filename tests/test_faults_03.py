"""Stage 03 under faults: a truncated cache file, every paper failing, `kill -9` of the stage while its workers,
a CERMINE JVM or GROBID requests are in flight. The stage runs as a real subprocess where a kill is involved."""
from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.standins import CORPUS_DIR, GrobidStandIn
from helpers import REPO, load_stage

stage = load_stage("03")
SCRIPT = REPO / "03_cermine_extract" / "cermine_extract.py"
FIXTURES = REPO / "tests" / "fixtures"
DEMO_PDFS = sorted((CORPUS_DIR / "pdfs").glob("*.pdf"))


def pdf_input(tmp_path: Path, pdfs: dict[str, Path]) -> Path:
    folder = tmp_path / "in" / "pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    for name, pdf in pdfs.items():
        shutil.copyfile(pdf, folder / f"{name}.pdf")
    return tmp_path / "in"


def read_log(out: Path) -> dict[str, dict]:
    with open(out / "extraction_log.csv", newline="", encoding="utf-8-sig") as fh:
        return {r["paper_id"]: r for r in csv.DictReader(fh)}


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


def start_stage(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=REPO)


# --------------------------------------------------------------------------- the cache

def test_truncated_cermxml_with_a_valid_stamp_is_converted_again(tmp_path):
    root = pdf_input(tmp_path, {"a": DEMO_PDFS[0], "b": DEMO_PDFS[1]})
    cfg = stage.Config(input_dir=root, output_dir=tmp_path / "out", backend="builtin", workers=1)
    stage.main(cfg)
    a, b = cfg.output_dir / "a.cermxml", cfg.output_dir / "b.cermxml"
    sha = stage.pu.sha256_file(root / "pdfs" / "a.pdf")
    # an older run's file: the stamp at the top, the body cut off by a crash or a full disk
    xml = a.read_bytes()
    a.write_bytes(f"<?xml version='1.0'?>\n<!-- source-sha256: {sha} -->\n".encode() + xml[40:len(xml) // 2])
    b.write_bytes(b.read_bytes()[: b.stat().st_size // 2])  # today's file cut short: its stamp (at the end) is gone
    assert stage.stamped_hash(a) is None and stage.stamped_hash(b) is None
    again = stage.main(cfg)
    assert again["converted"] == 2 and again["unchanged"] == 0
    assert stage.stamped_hash(a) == sha


def test_stamp_sits_at_the_end_of_the_file(tmp_path):
    root = pdf_input(tmp_path, {"a": DEMO_PDFS[0]})
    cfg = stage.Config(input_dir=root, output_dir=tmp_path / "out", backend="builtin", workers=1)
    stage.main(cfg)
    assert (cfg.output_dir / "a.cermxml").read_bytes().rstrip().endswith(b"-->")


# --------------------------------------------------------------------------- the truth about a run

def test_every_paper_failed_exits_non_zero_with_one_line_and_keeps_the_log(tmp_path):
    root = tmp_path / "in" / "pdfs"
    root.mkdir(parents=True)
    (root / "empty.pdf").write_bytes(b"")
    (root / "html.pdf").write_bytes(b"<html>rate limited</html>")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--input-dir", str(root.parent), "--output-dir",
                           str(tmp_path / "out"), "--backend", "builtin", "--workers", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no paper converted (2 failed)")
    assert {r["status"] for r in read_log(tmp_path / "out").values()} == {"failed"}
    assert (tmp_path / "out" / "run.json").exists()


def test_seconds_is_each_papers_own_time(tmp_path):
    root = pdf_input(tmp_path, {f"p{i}": pdf for i, pdf in enumerate(DEMO_PDFS)})
    cfg = stage.Config(input_dir=root, output_dir=tmp_path / "out", backend="builtin", workers=1)
    summary = stage.main(cfg)
    seconds = [float(r["seconds"]) for r in read_log(cfg.output_dir).values()]
    # time since queued would make the last paper's figure the whole run's; each paper's own is a share of it
    assert sum(seconds) <= summary["seconds"] + 0.05
    assert max(seconds) < 0.7 * sum(seconds)


# --------------------------------------------------------------------------- kill -9

def test_kill_9_of_the_stage_leaves_no_worker_running(tmp_path):
    root = pdf_input(tmp_path, {f"long{i}": FIXTURES / "pdf" / "long_paper.pdf" for i in range(6)})
    proc = start_stage("--input-dir", str(root), "--output-dir", str(tmp_path / "out"), "--backend", "builtin",
                       "--workers", "2")
    try:
        workers = wait_for(lambda: children(proc.pid))
        assert workers, "the stage never started its worker processes"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_for(lambda: not any(alive(w) for w in workers), timeout=5), \
            f"workers {[w for w in workers if alive(w)]} outlived the stage"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill_9_during_cermine_leaves_no_jvm_running(tmp_path, cermine_classes):
    root = pdf_input(tmp_path, {"a_hang": DEMO_PDFS[0]})  # the stand-in hangs on a name holding "hang"
    proc = start_stage("--input-dir", str(root), "--output-dir", str(tmp_path / "out"), "--backend", "cermine",
                       "--cermine-jar", str(cermine_classes), "--timeout", "120")
    try:
        jvm = wait_for(lambda: children(proc.pid))
        assert jvm, "the stage never started CERMINE"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_for(lambda: not any(alive(p) for p in jvm), timeout=5), "the JVM outlived the stage"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_child_whose_stage_died_before_it_asked_for_pdeathsig_exits(tmp_path):
    # The race behind a JVM that outlived a `kill -9`: the stage dies between fork and the child's prctl, so the
    # kernel never sends the signal. Told the pid its parent had at the fork, the child sees the change and exits.
    code = ("import sys; sys.path.insert(0, {repo!r}); import pipeline_utils as pu; "
            "pu.set_pdeathsig({pid}); print('still running')")
    gone = subprocess.run([sys.executable, "-c", code.format(repo=str(REPO), pid=2 ** 22 + 1)],
                          capture_output=True, text=True, timeout=60)
    assert gone.returncode == 1 and gone.stdout == ""
    kept = subprocess.run([sys.executable, "-c", code.format(repo=str(REPO), pid=os.getpid())],
                          capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and kept.stdout.strip() == "still running"


def test_kill_9_during_grobid_loses_nothing_finished(tmp_path):
    tei = (FIXTURES / "grobid" / "sample.tei.xml").read_bytes()

    def slow(filename: str, body: bytes) -> bytes:
        time.sleep(0.3)
        return tei

    root = pdf_input(tmp_path, {f"g{i}": DEMO_PDFS[i % len(DEMO_PDFS)] for i in range(8)})
    out = tmp_path / "out"
    with GrobidStandIn(tei, tei_for=slow) as grobid:
        proc = start_stage("--input-dir", str(root), "--output-dir", str(out), "--backend", "grobid",
                           "--base-url", grobid.url, "--workers", "1")
        try:
            assert wait_for(lambda: len(list(out.glob("*.tei.xml"))) >= 2), "GROBID outputs never appeared"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert not children(proc.pid)
        finished = {p.name for p in out.glob("*.tei.xml")}
        summary = stage.main(stage.Config(input_dir=root, output_dir=out, backend="grobid", base_url=grobid.url,
                                          workers=2))
    assert summary["unchanged"] == len(finished) and summary["converted"] == 8 - len(finished)
    assert all(stage.stamped_hash(p) for p in out.glob("*.tei.xml")) and not list(out.glob(".*.tmp"))
