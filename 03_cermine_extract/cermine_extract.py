"""Stage 03: turn each curated PDF into structured XML (JATS or TEI) for stage 04.

    python 03_cermine_extract/cermine_extract.py                       # auto: CERMINE if java + jar, else builtin
    python 03_cermine_extract/cermine_extract.py --backend builtin
    python 03_cermine_extract/cermine_extract.py --backend cermine --cermine-jar ~/cermine-impl-1.13-jar-with-dependencies.jar
    python 03_cermine_extract/cermine_extract.py --backend grobid --grobid-url http://localhost:8070

Writes ``output/<paper_id>.cermxml`` (JATS, CERMINE or builtin) or
``output/<paper_id>.tei.xml`` (GROBID) and ``output/extraction_log.csv``. Each
output starts with a comment holding the SHA-256 of its PDF, so a rerun converts
only new or changed PDFs, and an interrupted run loses nothing it finished.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
from tqdm import tqdm  # noqa: E402

import builtin_backend  # noqa: E402
import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
CERMINE_URL = ("https://maven.ceon.pl/artifactory/kdd-releases/pl/edu/icm/cermine/cermine-impl/1.13/"
               "cermine-impl-1.13-jar-with-dependencies.jar")


@dataclass
class Config:
    """Convert PDFs to structured XML with CERMINE, GROBID or the built-in backend."""

    input_dir: Path = HERE.parent / "02_manual_curation" / "output"
    """Stage 02's output (its pdfs/ folder is read; a folder of PDFs works too)."""
    output_dir: Path = HERE / "output"
    """Where the XML files and extraction_log.csv go."""
    backend: Literal["auto", "cermine", "grobid", "builtin"] = "auto"
    """auto: cermine when java and the jar are there, else builtin."""
    workers: int = os.cpu_count() or 1
    """Papers converted in parallel (builtin and grobid)."""
    cermine_jar: Path = HERE / "cermine-impl-1.13-jar-with-dependencies.jar"
    """CERMINE's jar (or any classpath holding pl.edu.icm.cermine.ContentExtractor)."""
    java: str = "java"
    """The java executable."""
    java_heap: str = "2g"
    """Java heap (-Xmx) for CERMINE."""
    cermine_batch: int = 20
    """PDFs per CERMINE JVM (one JVM over many PDFs saves ~5 s of start-up per paper)."""
    timeout: float = 180.0
    """Seconds allowed per paper (CERMINE: per PDF in a batch; GROBID: per request) before it is killed."""
    jvm_startup_seconds: float = 30.0
    """Extra seconds a CERMINE JVM gets for starting up and loading its models."""
    grobid_url: str = "http://localhost:8070"
    """Base URL of a GROBID server."""
    base_url: str = ""
    """Alias of --grobid-url (the name every service-calling stage shares); wins when set."""
    consolidate_citations: int = 0
    """GROBID consolidateCitations: 0 none, 1 Crossref/biblio-glutton lookup (slow; stage 06 does this properly)."""
    force: bool = False
    """Convert every PDF again, even unchanged ones."""
    verbose: bool = False
    """Debug logging."""


LOG_COLUMNS = ["paper_id", "backend", "status", "seconds", "n_references", "n_citations", "error"]
HASH_COMMENT = re.compile(rb"<!--\s*source-sha256:\s*([0-9a-f]{64})\s*-->")


# ---------------------------------------------------------------------------
# Inputs, outputs, the content-hash cache
# ---------------------------------------------------------------------------

def list_pdfs(input_dir: Path) -> list[Path]:
    """The PDFs to convert: ``input_dir/pdfs/*.pdf`` (a stage's output) or ``input_dir/*.pdf``."""
    folder = input_dir / "pdfs" if (input_dir / "pdfs").is_dir() else input_dir
    return sorted(folder.glob("*.pdf"))


def output_path(out: Path, paper_id: str, backend: str) -> Path:
    return out / (f"{paper_id}.tei.xml" if backend == "grobid" else f"{paper_id}.cermxml")


def stamp(xml: bytes, sha: str) -> bytes:
    """Insert the PDF's hash as a comment after the XML declaration (or at the top)."""
    comment = f"<!-- source-sha256: {sha} -->\n".encode()
    if xml.startswith(b"<?xml"):
        end = xml.index(b"?>") + 2
        return xml[:end] + b"\n" + comment + xml[end:].lstrip(b"\r\n")
    return comment + xml


def stamped_hash(path: Path) -> str | None:
    """The PDF hash an earlier run stamped into an output file, if any."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    m = HASH_COMMENT.search(head)
    return m.group(1).decode() if m else None


def count_jats(xml: bytes) -> tuple[int, int]:
    """(references, citation markers) in a JATS or TEI file, for the log."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True)
    root = etree.fromstring(xml, parser)
    if root is None:
        return 0, 0
    if "tei-c.org" in (root.tag or ""):
        ns = {"t": "http://www.tei-c.org/ns/1.0"}
        return (len(root.findall(".//t:listBibl/t:biblStruct", ns)),
                len(root.xpath(".//t:body//t:ref[@type='bibr'][@target]", namespaces=ns)))
    return len(root.findall(".//ref-list/ref")), len(root.findall(".//body//xref[@ref-type='bibr']"))


# ---------------------------------------------------------------------------
# builtin
# ---------------------------------------------------------------------------

def convert_builtin(pdf: str) -> tuple[bytes | None, dict, str]:
    """Worker: one PDF with the built-in backend -> (xml or None, stats, error)."""
    try:
        xml, stats = builtin_backend.convert(Path(pdf))
        return xml, stats, ""
    except builtin_backend.ExtractionError as exc:
        return None, {}, str(exc)
    except Exception as exc:  # a PDF that trips PDFium or the parser must not stop the batch
        return None, {}, f"{exc.__class__.__name__}: {exc}"


# ---------------------------------------------------------------------------
# CERMINE
# ---------------------------------------------------------------------------

def check_cermine(config: Config) -> str | None:
    """None when CERMINE can run, else what is missing and how to fix it."""
    if not shutil.which(config.java):
        return (f"'{config.java}' not found: CERMINE needs a Java runtime (Debian: apt-get install default-jre-headless), "
                f"or use --backend builtin")
    if not Path(config.cermine_jar).exists():
        return (f"CERMINE jar not found at {config.cermine_jar}: download cermine-impl-1.13-jar-with-dependencies.jar "
                f"from ICM's Maven repository ({CERMINE_URL}) and pass --cermine-jar PATH, or use --backend builtin")
    return None


def _run_cermine(config: Config, pdfs: list[Path], timeout: float) -> tuple[dict[str, bytes], str]:
    """One JVM over ``pdfs`` (copied to a temp dir); returns the outputs it wrote and its error, if any."""
    with tempfile.TemporaryDirectory(prefix="cermine-") as tmp:
        for pdf in pdfs:
            try:
                os.link(pdf, Path(tmp) / pdf.name)
            except OSError:
                shutil.copyfile(pdf, Path(tmp) / pdf.name)
        cmd = [config.java, f"-Xmx{config.java_heap}", "-cp", str(config.cermine_jar),
               "pl.edu.icm.cermine.ContentExtractor", "-path", tmp, "-outputs", "jats"]
        error = ""
        # Own process group, so a hung JVM and anything it started can be killed together.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                last = (stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
                error = f"CERMINE exited with code {proc.returncode}: {last[:200]}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            error = f"CERMINE timed out after {timeout:.0f} s (killed)"
        outputs = {}
        for pdf in pdfs:
            produced = Path(tmp) / f"{pdf.stem}.cermxml"
            # CERMINE exits 0 even when a PDF failed: only an existing, non-empty file counts.
            if produced.is_file() and produced.stat().st_size > 0:
                outputs[pdf.stem] = produced.read_bytes()
        return outputs, error


def convert_cermine(config: Config, pdfs: list[Path], on_result) -> None:
    """Batches of PDFs per JVM; PDFs a batch did not convert are retried alone, then reported."""
    for start in range(0, len(pdfs), max(1, config.cermine_batch)):
        batch = pdfs[start:start + config.cermine_batch]
        began = time.perf_counter()
        outputs, error = _run_cermine(config, batch, config.timeout * len(batch) + config.jvm_startup_seconds)
        per_paper = (time.perf_counter() - began) / max(1, len(batch))
        leftovers = []
        for pdf in batch:
            if pdf.stem in outputs:
                on_result(pdf, outputs[pdf.stem], {}, "", per_paper)
            else:
                leftovers.append(pdf)
        for pdf in leftovers if len(batch) > 1 else []:
            began = time.perf_counter()
            alone, err = _run_cermine(config, [pdf], config.timeout + config.jvm_startup_seconds)
            on_result(pdf, alone.get(pdf.stem), {}, "" if pdf.stem in alone else (err or "CERMINE wrote no output"),
                      time.perf_counter() - began)
        if len(batch) == 1 and leftovers:
            on_result(batch[0], None, {}, error or "CERMINE wrote no output", per_paper)


# ---------------------------------------------------------------------------
# GROBID
# ---------------------------------------------------------------------------

def grobid_url(config: Config) -> str:
    return (config.base_url or config.grobid_url).rstrip("/")


def check_grobid(config: Config) -> str | None:
    """None when the GROBID server answers /api/isalive, else one clear reason."""
    url = f"{grobid_url(config)}/api/isalive"
    try:
        resp = requests.get(url, timeout=10)
    except requests.RequestException as exc:
        return f"GROBID server not reachable at {grobid_url(config)} ({exc.__class__.__name__}); start it " \
               f"(docker run -p 8070:8070 grobid/grobid:0.8.2-crf) or pass --grobid-url"
    if resp.status_code != 200 or resp.text.strip().lower() != "true":
        return f"GROBID server at {grobid_url(config)} is not alive (HTTP {resp.status_code})"
    return None


def convert_grobid(config: Config, pdf: Path) -> tuple[bytes | None, dict, str]:
    """POST one PDF to processFulltextDocument; 503 (server busy) is retried with back-off."""
    url = f"{grobid_url(config)}/api/processFulltextDocument"
    data = {"consolidateCitations": str(config.consolidate_citations), "includeRawCitations": "1",
            "segmentSentences": "0"}
    error = ""
    for attempt in range(4):
        if attempt:
            time.sleep(min(2 ** attempt, 10))
        try:
            with open(pdf, "rb") as fh:
                resp = requests.post(url, files={"input": (pdf.name, fh, "application/pdf")}, data=data,
                                     timeout=config.timeout)
        except requests.Timeout:
            error = f"GROBID timed out after {config.timeout:.0f} s"
            continue
        except requests.RequestException as exc:
            error = f"GROBID request failed: {exc.__class__.__name__}"
            continue
        if resp.status_code == 200:
            return resp.content, {}, ""
        error = f"GROBID answered HTTP {resp.status_code}"
        if resp.status_code != 503:  # 503 = busy: retry; anything else is this PDF's problem
            break
    return None, {}, error


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Convert every new or changed PDF; returns the summary."""
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    if not input_dir.is_dir():
        raise SystemExit(f"error: input folder {input_dir} not found: run stage 02 first (or pass --input-dir)")
    pdfs = list_pdfs(input_dir)
    if not pdfs:
        raise SystemExit(f"error: no PDFs in {input_dir}/pdfs: run stages 01-02 first")
    backend = config.backend
    if backend == "auto":
        backend = "cermine" if check_cermine(config) is None else "builtin"
        log.info("backend auto -> %s", backend)
    if backend == "cermine" and (problem := check_cermine(config)):
        raise SystemExit(f"error: {problem}")
    if backend == "grobid" and (problem := check_grobid(config)):
        raise SystemExit(f"error: {problem}")

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "extraction_log.csv"
    previous = {r["paper_id"]: r for r in pu.read_csv_rows(log_path)} if log_path.exists() else {}
    log_rows: dict[str, dict] = {}
    hashes = {pdf.stem: pu.sha256_file(pdf) for pdf in pdfs}
    todo = []
    for pdf in pdfs:
        target = output_path(out, pdf.stem, backend)
        if not config.force and stamped_hash(target) == hashes[pdf.stem]:
            prev = previous.get(pdf.stem)
            log_rows[pdf.stem] = prev if prev and prev.get("status") == "ok" else {
                "paper_id": pdf.stem, "backend": backend, "status": "ok", "seconds": "", "error": "",
                **dict(zip(("n_references", "n_citations"), count_jats(target.read_bytes())))}
            continue
        todo.append(pdf)
    log.info("%d PDFs, %d unchanged since the last run, %d to convert with %s",
             len(pdfs), len(pdfs) - len(todo), len(todo), backend)

    bar = tqdm(total=len(todo), desc=f"extract ({backend})", unit="pdf")
    pages = {"n": 0}
    started = time.perf_counter()

    def on_result(pdf: Path, xml: bytes | None, stats: dict, error: str, seconds: float) -> None:
        row = {"paper_id": pdf.stem, "backend": backend, "seconds": f"{seconds:.2f}", "error": error}
        if xml is None:
            row.update(status="failed", n_references=0, n_citations=0)
            log.warning("%s: %s", pdf.name, error)
        else:
            n_refs, n_cites = count_jats(xml)
            row.update(status="ok", n_references=n_refs, n_citations=n_cites)
            if n_refs and not n_cites:
                row["error"] = "references found but no citation marker linked to them"
            pu.atomic_write_bytes(output_path(out, pdf.stem, backend), stamp(xml, hashes[pdf.stem]))
            pages["n"] += stats.get("n_pages", 0)
        log_rows[pdf.stem] = row
        bar.update(1)

    if backend == "builtin" and todo:
        with ProcessPoolExecutor(max_workers=max(1, config.workers)) as pool:
            futures = {pool.submit(convert_builtin, str(pdf)): (pdf, time.perf_counter()) for pdf in todo}
            for fut in as_completed(futures):
                pdf, t0 = futures[fut]
                xml, stats, error = fut.result()
                on_result(pdf, xml, stats, error, time.perf_counter() - t0)
    elif backend == "grobid" and todo:
        with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
            futures = {pool.submit(convert_grobid, config, pdf): (pdf, time.perf_counter()) for pdf in todo}
            for fut in as_completed(futures):
                pdf, t0 = futures[fut]
                xml, stats, error = fut.result()
                on_result(pdf, xml, stats, error, time.perf_counter() - t0)
    elif backend == "cermine" and todo:
        convert_cermine(config, todo, on_result)
    bar.close()
    elapsed = time.perf_counter() - started

    # The output reflects exactly the current input: drop XML of PDFs no longer there.
    current = {pdf.stem for pdf in pdfs}
    for stale in list(out.glob("*.cermxml")) + list(out.glob("*.tei.xml")):
        if stale.name.split(".cermxml")[0].split(".tei.xml")[0] not in current:
            stale.unlink()
    rows = [log_rows[pdf.stem] for pdf in pdfs]
    pu.atomic_write_csv(log_path, rows, LOG_COLUMNS)

    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    unlinked = [r["paper_id"] for r in rows if r["status"] == "ok" and int(r["n_references"] or 0)
                and not int(r["n_citations"] or 0)]
    summary = {
        "backend": backend,
        "pdfs_in": len(pdfs),
        "converted": sum(1 for pdf in todo if log_rows[pdf.stem]["status"] == "ok"),
        "unchanged": len(pdfs) - len(todo),
        "by_status": statuses,
        "failed": {r["paper_id"]: r["error"] for r in rows if r["status"] == "failed"},
        "no_citation_linked": unlinked,
        "seconds": round(elapsed, 2),
        "papers_per_second": round(len(todo) / elapsed, 2) if todo and elapsed else 0.0,
    }
    if pages["n"]:
        summary["pages_per_second"] = round(pages["n"] / elapsed, 1)
    pu.print_summary("stage 03: PDF to XML", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
