"""Run the pipeline on the embedded sample corpus: offline, on the CPU, in demo/run/.

    make demo            (or: .venv/bin/python demo/run_demo.py)

Loopback stand-ins replace the network services (see demo/standins.py); every
stage runs as its real script, the way a person runs it, with --input-dir and
--output-dir pointing into demo/run/ so a real run's output/ is never touched.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent
REPO = DEMO.parent
RUN = DEMO / "run"
sys.path.insert(0, str(REPO))

from demo.standins import ArxivStandIn, CrossrefStandIn, load_demo_papers, load_demo_works  # noqa: E402
from demo.tiny_model import build_tiny_model  # noqa: E402


def stage(script: str, *args: str) -> None:
    """Run one stage script as a subprocess; stop the demo if it fails."""
    cmd = [sys.executable, str(REPO / script), *args]
    print(f"\n$ python {script} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"demo: {script} failed with exit code {proc.returncode}")
    print(f"({script} took {time.perf_counter() - started:.1f} s)", flush=True)


def main(run_dir: Path | None = None, epochs: int = 8) -> int:
    """The whole demo in ``run_dir``; ``epochs`` of fine-tuning per adapter (the test uses fewer)."""
    global RUN
    RUN = Path(run_dir) if run_dir else RUN
    if RUN.exists():
        shutil.rmtree(RUN)  # the demo always starts from scratch
    RUN.mkdir(parents=True)
    with ArxivStandIn(load_demo_papers()) as arxiv_api:
        stage("01_arxiv_download/arxiv_download.py",
              "--base-url", f"{arxiv_api.url}/api/query", "--output-dir", str(RUN / "01_arxiv_download"),
              "--max-results", "20", "--delay-seconds", "0.05")
    stage("02_manual_curation/curate.py",
          "--input-dir", str(RUN / "01_arxiv_download"), "--sheet", str(RUN / "curation.csv"),
          "--output-dir", str(RUN / "02_manual_curation"))
    stage("03_cermine_extract/cermine_extract.py", "--backend", "auto",
          "--input-dir", str(RUN / "02_manual_curation"), "--output-dir", str(RUN / "03_cermine_extract"))
    stage("04_xml_to_csv/xml_to_csv.py",
          "--input-dir", str(RUN / "03_cermine_extract"), "--output-dir", str(RUN / "04_xml_to_csv"))
    stage("05_merge_clean/merge_clean.py",
          "--input-dir", str(RUN / "04_xml_to_csv"), "--output-dir", str(RUN / "05_merge_clean"))
    with CrossrefStandIn(load_demo_works()) as crossref:
        stage("06_crossref_doi/crossref_doi.py", "--base-url", crossref.url, "--mailto", "demo@example.org",
              "--cache-path", str(RUN / "crossref_cache.sqlite"), "--overrides-path", str(RUN / "doi_overrides.csv"),
              "--input-dir", str(RUN / "05_merge_clean"), "--output-dir", str(RUN / "06_crossref_doi"))
    stage("07_qa_formatting/qa_formatting.py", "--backend", "template", "--grounded", "--candidates", "5",
          "--cache-path", str(RUN / "llm_cache.sqlite"),
          "--input-dir", str(RUN / "06_crossref_doi"), "--output-dir", str(RUN / "07_qa_formatting"))
    # A tiny model built here (no hub): the demo shows the mechanics, not a useful assistant.
    tiny = build_tiny_model(RUN / "tiny-model", layers=4, hidden=128, positions=2048)  # grounded prompts are long
    train = ["--model", str(tiny), "--num-train-epochs", str(epochs), "--learning-rate", "2e-3",
             "--per-device-train-batch-size", "8", "--gradient-accumulation-steps", "1",
             "--early-stopping-patience", "0", "--no-gradient-checkpointing", "--recall-max-new-tokens", "24",
             "--input-dir", str(RUN / "07_qa_formatting"), "--output-dir", str(RUN / "08_finetune")]
    stage("08_finetune/finetune.py", "--run-name", "tiny-demo", *train)
    stage("08_finetune/finetune.py", "--run-name", "tiny-demo-grounded", "--data", "grounded", *train)
    stage("09_evaluate/evaluate.py", "--model", str(tiny),
          "--adapter", str(RUN / "08_finetune" / "tiny-demo"),
          "--grounded-adapter", str(RUN / "08_finetune" / "tiny-demo-grounded"),
          "--catalogue-csv", str(RUN / "06_crossref_doi" / "catalogue.csv"),
          "--references-csv", str(RUN / "06_crossref_doi" / "references.csv"), "--bootstrap", "500",
          "--num-beams", "2", "--max-new-tokens", "32", "--candidates", "5",
          "--input-dir", str(RUN / "07_qa_formatting"), "--output-dir", str(RUN / "09_evaluate"))
    stage("10_ask/ask.py", "--catalogue", str(RUN / "06_crossref_doi" / "catalogue.csv"),
          "--adapter", str(RUN / "08_finetune" / "tiny-demo-grounded"), "--candidates", "5", "--num-beams", "2",
          "where can I read about digital twins for ship operations?")
    print(f"\ndemo finished: every stage's output is under {RUN}/; the evaluation report is "
          f"{RUN / '09_evaluate' / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
