"""Stage 03: turn each curated paper (its LaTeX e-print, else its PDF) into structured XML (JATS or TEI) for stage 04.

    python 03_cermine_extract/cermine_extract.py                       # auto: LaTeX source, else CERMINE, else builtin
    python 03_cermine_extract/cermine_extract.py --backend latex
    python 03_cermine_extract/cermine_extract.py --backend builtin
    python 03_cermine_extract/cermine_extract.py --backend cermine --cermine-jar ~/cermine-impl-1.13-jar-with-dependencies.jar
    python 03_cermine_extract/cermine_extract.py --backend grobid --grobid-url http://localhost:8070
    python 03_cermine_extract/cermine_extract.py --executor ray --ray-address HEAD:6379 --workers 0   # a Ray cluster

Writes ``output/<paper_id>.cermxml`` (JATS, CERMINE or builtin) or
``output/<paper_id>.tei.xml`` (GROBID) and ``output/extraction_log.csv``. Each
output ends with a comment holding the SHA-256 of the file it was made from (the
e-print or the PDF), so a rerun converts only new or changed papers, and an
interrupted run loses nothing it finished.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
from tqdm import tqdm  # noqa: E402

import builtin_backend  # noqa: E402
import eprint  # noqa: E402
import latex_backend  # noqa: E402
import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
CERMINE_URL = ("https://maven.ceon.pl/artifactory/kdd-releases/pl/edu/icm/cermine/cermine-impl/1.13/"
               "cermine-impl-1.13-jar-with-dependencies.jar")


@dataclass
class Config:
    """Convert PDFs to structured XML with CERMINE, GROBID or the built-in backend."""

    input_dir: Path = HERE.parent / "02_manual_curation" / "output"
    """Stage 02's output (its pdfs/ and sources/ folders are read; a folder of PDFs works too)."""
    output_dir: Path = HERE / "output"
    """Where the XML files and extraction_log.csv go."""
    backend: Literal["auto", "latex", "cermine", "grobid", "builtin"] = "auto"
    """auto: the LaTeX source where it converts, else cermine when java and the jar are there, else builtin."""
    max_source_bytes: int = 256 * 1024 * 1024
    """An e-print that unpacks to more than this is refused (a tar bomb)."""
    max_source_members: int = 10_000
    """An e-print tar with more members than this is refused."""
    workers: int = os.cpu_count() or 1
    """Papers converted in parallel (LaTeX route, builtin and grobid); with --executor ray the Ray tasks in flight
    (0: one per core of the cluster)."""
    executor: Literal["local", "ray"] = "local"
    """local: a process pool on this machine; ray: one Ray task per paper (LaTeX route and builtin backend), on a
    local Ray started for the run or the cluster at --ray-address (pip install -r requirements-extra.txt)."""
    ray_address: str = ""
    """With --executor ray: the cluster's address (HEAD:6379, as `ray start --head` prints; default $RAY_ADDRESS,
    else a local Ray started for this run). Input and output folders must be on a filesystem every node shares."""
    task_chunk: int = 1
    """With --executor ray: papers per Ray task (several amortise Ray's per-task cost; a worker that dies has its
    chunk redone paper by paper)."""
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


LOG_COLUMNS = ["paper_id", "backend", "status", "seconds", "n_references", "n_citations", "fallback_reason", "error"]
HASH_COMMENT = re.compile(rb"<!--\s*source-sha256:\s*([0-9a-f]{64})\s*-->")
PDF_BACKENDS = ("cermine", "grobid", "builtin")
SOURCE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".tex", ".pdf", ".zip")


# ---------------------------------------------------------------------------
# Inputs, outputs, the content-hash cache
# ---------------------------------------------------------------------------

def list_pdfs(input_dir: Path) -> list[Path]:
    """The PDFs to convert: ``input_dir/pdfs/*.pdf`` (a stage's output) or ``input_dir/*.pdf``."""
    folder = input_dir / "pdfs" if (input_dir / "pdfs").is_dir() else input_dir
    return sorted(folder.glob("*.pdf"))


def _source_stem(name: str) -> str:
    for suffix in SOURCE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def list_sources(input_dir: Path, log) -> dict[str, Path]:
    """paper_id -> its e-print under ``input_dir/sources/``: from metadata.csv's source_file where there is one
    (every path from the sheet checked), else by file name."""
    folder = input_dir / "sources"
    if not folder.is_dir():
        return {}
    sources: dict[str, Path] = {}
    meta = input_dir / "metadata.csv"
    if meta.is_file():
        for row in pu.read_csv_rows(meta):
            pid, cell = (row.get("paper_id") or "").strip(), (row.get("source_file") or "").strip()
            if not pid or not cell or (row.get("source_format") or "").strip() == "missing":
                continue
            try:
                pu.safe_child(folder, pid)
                path = pu.safe_child(folder, Path(cell).name)
            except ValueError as exc:
                log.warning("metadata.csv: source of %r ignored (%s)", pid, exc)
                continue
            if path.is_file():
                sources[pid] = path
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            sources.setdefault(_source_stem(path.name), path)
    return sources


def output_path(out: Path, paper_id: str, backend: str) -> Path:
    return out / (f"{paper_id}.tei.xml" if backend == "grobid" else f"{paper_id}.cermxml")


def stamp(xml: bytes, sha: str) -> bytes:
    """The XML with the hash of its input as a comment at the very end: a file cut short loses the stamp, so it
    can never pass for a finished conversion."""
    return xml.rstrip(b"\r\n") + f"\n<!-- source-sha256: {sha} -->\n".encode()


def stamped_hash(path: Path) -> str | None:
    """The input hash an earlier run stamped into an output file, if the file is whole (it parses)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 512))
            tail = fh.read()
            fh.seek(0)
            head = fh.read(512)
    except OSError:
        return None
    m = HASH_COMMENT.search(tail) or HASH_COMMENT.search(head)  # head: files from before the stamp moved
    if not m:
        return None
    from lxml import etree

    try:  # a stamp at the top of a truncated file (older runs) must not be trusted
        etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except (etree.XMLSyntaxError, OSError):
        return None
    return m.group(1).decode()


def count_jats(xml: bytes) -> tuple[int, int, int]:
    """(references, citation markers, body paragraphs) in a JATS or TEI file, for the log."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=True)
    root = etree.fromstring(xml, parser)
    if root is None:
        return 0, 0, 0
    if "tei-c.org" in (root.tag or ""):
        ns = {"t": "http://www.tei-c.org/ns/1.0"}
        return (len(root.findall(".//t:listBibl/t:biblStruct", ns)),
                len(root.xpath(".//t:body//t:ref[@type='bibr'][@target]", namespaces=ns)),
                len(root.xpath(".//t:body//t:p", namespaces=ns)))
    return (len(root.findall(".//ref-list/ref")), len(root.findall(".//body//xref[@ref-type='bibr']")),
            len(root.findall(".//body//p")))


def classify(n_refs: int, n_cites: int, n_paragraphs: int) -> tuple[str, str]:
    """(status, note) of a converted paper: a file that stage 04 can get nothing from is not ``ok``."""
    if not n_paragraphs and not n_refs:
        return "empty", "no body text and no references found"
    if not n_paragraphs:
        return "empty", "no body text found"
    if not n_refs:
        return "empty", "no references found"
    if not n_cites:
        return "no_citation_linked", "references found but no citation marker linked to them"
    return "ok", ""


# ---------------------------------------------------------------------------
# builtin
# ---------------------------------------------------------------------------

def convert_builtin(pdf: str) -> tuple[bytes | None, dict, str, float]:
    """Worker: one PDF with the built-in backend -> (xml or None, stats, error, its own seconds)."""
    began = time.perf_counter()
    try:
        xml, stats = builtin_backend.convert(Path(pdf))
        return xml, stats, "", time.perf_counter() - began
    except builtin_backend.ExtractionError as exc:
        return None, {}, str(exc), time.perf_counter() - began
    except Exception as exc:  # a PDF that trips PDFium or the parser must not stop the batch
        return None, {}, f"{exc.__class__.__name__}: {exc}", time.perf_counter() - began


# ---------------------------------------------------------------------------
# LaTeX source
# ---------------------------------------------------------------------------

class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def convert_latex(source: str, work_dir: str, limits: eprint.Limits, timeout: float) -> tuple[bytes | None, dict, str, float]:
    """Worker: one e-print through the LaTeX route -> (xml or None, stats, reason it could not, own seconds).
    A PDF-only e-print is not an error of the source: the reason says so and the caller falls back."""
    began = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="src-", dir=work_dir))
    use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        unpacked = eprint.unpack(Path(source), folder, limits)
        if unpacked.kind == "pdf-only":
            return None, {"pdf_only": True}, "the e-print is PDF-only", time.perf_counter() - began
        result = latex_backend.convert_source(folder)
        stats = {"main_file": result.main_file, "missing_keys": result.missing_keys, "style": result.style,
                 "bibliography": result.bibliography, "source_kind": unpacked.kind, "partial": result.partial,
                 "source_keys": result.source_keys, "linked_keys": result.linked_keys,
                 "text_ratio": result.text_ratio, "notes": result.notes}
        return result.xml, stats, "", time.perf_counter() - began
    except (eprint.EprintError, latex_backend.LatexError) as exc:
        return None, {}, str(exc), time.perf_counter() - began
    except _Timeout:
        return None, {}, f"LaTeX conversion took longer than {timeout:.0f} s", time.perf_counter() - began
    except RecursionError:
        return None, {}, "LaTeX nesting too deep to convert", time.perf_counter() - began
    except Exception as exc:  # a source that trips the converter falls back to the PDF; the reason says where
        return None, {}, f"LaTeX converter error ({exc.__class__.__name__}: {str(exc)[:200]})", \
            time.perf_counter() - began
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        shutil.rmtree(folder, ignore_errors=True)


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
        # ... and PDEATHSIG, so a `kill -9` of the stage does not leave a JVM running on its own
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=functools.partial(pu.set_pdeathsig, os.getpid()))
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


def convert_grobid(config: Config, pdf: Path) -> tuple[bytes | None, dict, str, float]:
    """POST one PDF to processFulltextDocument; 503 (server busy) is retried with back-off."""
    began = time.perf_counter()
    xml, stats, error = _post_grobid(config, pdf)
    return xml, stats, error, time.perf_counter() - began


def _post_grobid(config: Config, pdf: Path) -> tuple[bytes | None, dict, str]:
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

def _write_xml(target: Path, data: bytes, other: Path) -> None:
    """A paper's XML, atomically, and the other format's file of the same paper removed."""
    pu.atomic_write_bytes(target, data)
    other.unlink(missing_ok=True)


def _pair_hash(source_sha: str, pdf_sha: str) -> str:
    """The stamp of a paper that fell back from its e-print to its PDF: a change to either redoes it."""
    return hashlib.sha256(f"{source_sha}:{pdf_sha}".encode()).hexdigest()


def _expected_stamps(backend: str, pdf: Path | None, source: Path | None, sha) -> set[str]:
    """The input hashes an up-to-date output of this paper may carry under ``backend``."""
    stamps = set()
    if source is not None and backend in ("auto", "latex"):
        stamps.add(sha(source))
    if pdf is not None and backend in PDF_BACKENDS or backend == "auto" and source is None and pdf is not None:
        stamps.add(sha(pdf))
    if backend == "auto" and source is not None:  # the LaTeX route was tried on this very e-print and fell back
        stamps.add(_pair_hash(sha(source), sha(pdf if pdf is not None else source)))
    return stamps


def main(config: Config) -> dict:
    """Convert every new or changed paper; returns the summary."""
    started_wall = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    if not input_dir.is_dir():
        raise SystemExit(f"error: input folder {input_dir} not found: run stage 02 first (or pass --input-dir)")
    backend = config.backend
    pdfs = {pdf.stem: pdf for pdf in list_pdfs(input_dir)}
    sources = list_sources(input_dir, log) if backend in ("auto", "latex") else {}
    ids = sorted(set(pdfs) | set(sources))
    if not ids:
        raise SystemExit(f"error: no PDFs or e-prints in {input_dir}/pdfs or {input_dir}/sources: "
                         f"run stages 01-02 first")
    if backend == "latex" and not sources:
        raise SystemExit(f"error: no e-prints in {input_dir}/sources for --backend latex: run stage 01 with sources "
                         f"(or use --backend auto)")
    pdf_backend = backend if backend in PDF_BACKENDS else None
    if backend == "auto":
        pdf_backend = "cermine" if check_cermine(config) is None else "builtin"
        log.info("backend auto: LaTeX source where it converts, else %s", pdf_backend)
    if backend == "cermine" and (problem := check_cermine(config)):
        raise SystemExit(f"error: {problem}")
    if backend == "grobid" and (problem := check_grobid(config)):
        raise SystemExit(f"error: {problem}")

    out.mkdir(parents=True, exist_ok=True)
    work_dir = out / ".unpack"  # e-prints are unpacked here; a killed run's leftovers go at the next start
    shutil.rmtree(work_dir, ignore_errors=True)
    for leftover in out.glob(".*.tmp"):  # half-written files of a run killed mid-write (atomic writes' temps)
        leftover.unlink(missing_ok=True)
    log_path = out / "extraction_log.csv"
    previous = {r["paper_id"]: r for r in pu.read_csv_rows(log_path)} if log_path.exists() else {}
    hashes: dict[Path, str] = {}

    def sha(path: Path) -> str:
        if path not in hashes:
            hashes[path] = pu.sha256_file(path)
        return hashes[path]

    log_rows: dict[str, dict] = {}
    todo_latex: list[str] = []
    todo_pdf: list[tuple[str, Path]] = []
    reasons: dict[str, str] = {}
    tried_latex: dict[str, float] = {}
    for pid in ids:
        pdf, source, prev = pdfs.get(pid), sources.get(pid), previous.get(pid)
        target = output_path(out, pid, "grobid" if backend == "grobid" else "cermine")
        expected = _expected_stamps(backend, pdf, source, sha)
        if not config.force and expected and stamped_hash(target) in expected:
            # the status is read again from the file: a log from before `empty` existed said `ok` for an empty paper
            n_refs, n_cites, n_pars = count_jats(target.read_bytes())
            status, note = classify(n_refs, n_cites, n_pars)
            if prev and (prev.get("status") == status or prev.get("status") == "partial" and status == "ok"):
                log_rows[pid] = {c: prev.get(c, "") for c in LOG_COLUMNS}
            else:
                log_rows[pid] = {"paper_id": pid, "backend": (prev or {}).get("backend") or backend, "status": status,
                                 "seconds": "", "n_references": n_refs, "n_citations": n_cites, "error": note,
                                 "fallback_reason": (prev or {}).get("fallback_reason", "")}
            continue
        if source is not None:
            todo_latex.append(pid)
        elif backend == "latex":
            log_rows[pid] = {"paper_id": pid, "backend": "latex", "status": "failed", "seconds": "0.00",
                             "n_references": 0, "n_citations": 0, "error": "no e-print in sources/"}
        else:
            if backend == "auto":
                reasons[pid] = "no e-print in sources/"
            todo_pdf.append((pid, pdf))
    log.info("%d papers (%d e-prints, %d PDFs), %d unchanged since the last run, %d to convert",
             len(ids), len(sources), len(pdfs), len(ids) - len(todo_latex) - len(todo_pdf),
             len(todo_latex) + len(todo_pdf))

    # the LaTeX route and the builtin backend run through the executor (a process pool, or Ray: started only
    # when there is work); CERMINE's JVM batches and GROBID's requests stay as they are
    runner = pu.TaskRunner(config.executor, config.workers, config.ray_address, shared_dirs=[out],
                           visible=[input_dir], chunk=config.task_chunk)
    stack = contextlib.ExitStack()
    if todo_latex or todo_pdf and pdf_backend == "builtin":
        stack.enter_context(runner)
    bar = tqdm(total=len(todo_latex) + len(todo_pdf), desc=f"extract ({backend})", unit="paper")
    pages = {"n": 0}
    converted: set[str] = set()
    started = time.perf_counter()

    partial_latex: dict[str, tuple[bytes, dict, float, str]] = {}  # partial conversions that fell back to the PDF
    writes = pu.BackgroundWrites()

    def on_result(pid: str, xml: bytes | None, stats: dict, error: str, seconds: float, used: str,
                  input_sha: str) -> None:
        seconds += tried_latex.get(pid, 0.0)  # a paper that fell back also spent the LaTeX attempt
        if used != "latex" and pid in partial_latex:
            pdf_status = classify(*count_jats(xml))[0] if xml is not None else "failed"
            if pdf_status != "ok":  # the PDF gives less still: the partial LaTeX conversion is the better one
                reasons[pid] = f"{reasons.get(pid, '')}; the {used} backend gave {pdf_status} ({error or pdf_status})"
                xml, stats, latex_seconds, input_sha = partial_latex[pid]
                used, error, seconds = "latex", "", seconds + latex_seconds - tried_latex.get(pid, 0.0)
        row = {"paper_id": pid, "backend": used, "seconds": f"{seconds:.2f}", "error": error,
               "fallback_reason": reasons.get(pid, "")}
        if xml is None:
            row.update(status="failed", n_references=0, n_citations=0)
            log.warning("%s: %s", pid, error)
        else:
            n_refs, n_cites, n_pars = count_jats(xml)
            status, note = classify(n_refs, n_cites, n_pars)
            if status == "ok" and stats.get("partial"):  # converted, but far less than the source holds
                status, note = "partial", f"partial conversion: {stats['partial']}"
            missing = stats.get("missing_keys") or []
            if missing:
                note = "; ".join(filter(None, [note, f"{len(missing)} cited key(s) without a bibliography entry: "
                                                      f"{', '.join(missing[:10])}"]))
            note = "; ".join(filter(None, [note, *(stats.get("notes") or [])]))
            row.update(status=status, n_references=n_refs, n_citations=n_cites, error=note)
            # one XML per paper (the other format's file goes, or stage 04 reads it twice); written by the writer
            # threads, so that the disk's fsync does not hold up handing out the next paper
            writes.submit(_write_xml, output_path(out, pid, used), stamp(xml, input_sha),
                          output_path(out, pid, "cermine" if used == "grobid" else "grobid"))
            pages["n"] += stats.get("n_pages", 0)
            converted.add(pid)
        log_rows[pid] = row
        bar.update(1)

    limits = eprint.Limits(max_bytes=config.max_source_bytes, max_members=config.max_source_members)
    if todo_latex:
        work_dir.mkdir(parents=True, exist_ok=True)
        tasks = ((pid, (str(sources[pid].resolve()), str(work_dir.resolve()), limits, config.timeout))
                 for pid in todo_latex)
        for pid, result, task_error in runner.run(convert_latex, tasks):
            # a task that raised or whose worker died: that paper failed, the batch goes on
            xml, stats, error, seconds = result if result is not None else (None, {}, task_error, 0.0)
            pdf = pdfs.get(pid)
            if xml is not None and stats.get("partial") and backend == "auto" and pdf is not None:
                # far less than the source holds: the PDF route may do better (kept if it does not)
                partial_latex[pid] = (xml, stats, seconds, sha(sources[pid]))
                reasons[pid] = f"LaTeX conversion partial: {stats['partial']}"
                tried_latex[pid] = seconds
                todo_pdf.append((pid, pdf))
                bar.total += 1
                bar.update(1)
                continue
            if xml is not None:
                on_result(pid, xml, stats, "", seconds, "latex", sha(sources[pid]))
                continue
            if pdf is None and stats.get("pdf_only"):
                pdf = sources[pid]  # the e-print is the paper's PDF
            if backend == "auto" and pdf is not None:
                reasons[pid] = error
                tried_latex[pid] = seconds
                todo_pdf.append((pid, pdf))
                bar.total += 1
                bar.update(1)
                continue
            if backend == "auto":
                reasons[pid] = error
                error = "no PDF to fall back to"
            on_result(pid, None, {}, error, seconds, "latex", "")
        shutil.rmtree(work_dir, ignore_errors=True)

    todo_pdf = [(pid, pdf) for pid, pdf in todo_pdf if pdf is not None]
    by_path = {pdf: pid for pid, pdf in todo_pdf}

    def pdf_stamp(pid: str, pdf: Path) -> str:
        source = sources.get(pid)
        return _pair_hash(sha(source), sha(pdf)) if backend == "auto" and source is not None else sha(pdf)

    if pdf_backend == "builtin" and todo_pdf:
        by_id = dict(todo_pdf)
        for pid, result, task_error in runner.run(convert_builtin, ((pid, (str(pdf.resolve()),))
                                                                   for pid, pdf in todo_pdf)):
            xml, stats, error, seconds = result if result is not None else (None, {}, task_error, 0.0)
            on_result(pid, xml, stats, error, seconds, "builtin", pdf_stamp(pid, by_id[pid]))
    elif pdf_backend == "grobid" and todo_pdf:
        with ThreadPoolExecutor(max_workers=config.workers if config.workers > 0 else os.cpu_count() or 1) as pool:
            futures = {pool.submit(convert_grobid, config, pdf): (pid, pdf) for pid, pdf in todo_pdf}
            for fut in as_completed(futures):
                pid, pdf = futures[fut]
                xml, stats, error, seconds = fut.result()
                on_result(pid, xml, stats, error, seconds, "grobid", pdf_stamp(pid, pdf))
    elif pdf_backend == "cermine" and todo_pdf:
        # CERMINE names its outputs after the PDF: a PDF-only e-print is linked in under the paper's id
        staged = []
        with tempfile.TemporaryDirectory(prefix="cermine-in-") as tmp:
            for pid, pdf in todo_pdf:
                if pdf.stem != pid:
                    link = Path(tmp) / f"{pid}.pdf"
                    shutil.copyfile(pdf, link)
                    by_path[link] = pid
                    staged.append(link)
                else:
                    staged.append(pdf)
            convert_cermine(config, staged, lambda pdf, xml, stats, error, seconds: on_result(
                by_path[pdf], xml, stats, error, seconds, "cermine", pdf_stamp(by_path[pdf], pdf)))
    stack.close()  # a Ray started for this run is shut down
    with writes:  # every XML on disk before the log says so
        pass
    bar.close()
    elapsed = time.perf_counter() - started

    # The output reflects exactly the current input: drop XML of papers no longer there.
    current = set(ids)
    for stale in list(out.glob("*.cermxml")) + list(out.glob("*.tei.xml")):
        if stale.name.split(".cermxml")[0].split(".tei.xml")[0] not in current:
            stale.unlink()
    rows = [log_rows[pid] for pid in ids if pid in log_rows]
    pu.atomic_write_csv(log_path, rows, LOG_COLUMNS)

    statuses: dict[str, int] = {}
    backends: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        if row["status"] != "failed":
            backends[row["backend"]] = backends.get(row["backend"], 0) + 1
    todo_ids = set(todo_latex) | {pid for pid, _ in todo_pdf}
    summary = {
        "backend": "+".join(sorted(backends)) or (pdf_backend if backend in PDF_BACKENDS else backend),
        "papers_in": len(ids),
        "pdfs_in": len(pdfs),
        "sources_in": len(sources),
        "converted": len(converted & todo_ids),
        "unchanged": len(ids) - len(todo_ids),
        "by_status": statuses,
        "by_backend": backends,
        "fell_back_to_pdf": {r["paper_id"]: r["fallback_reason"] for r in rows
                             if r.get("fallback_reason") and r["status"] != "failed"},
        "failed": {r["paper_id"]: r["error"] for r in rows if r["status"] == "failed"},
        "empty": [r["paper_id"] for r in rows if r["status"] == "empty"],
        "no_citation_linked": [r["paper_id"] for r in rows if r["status"] == "no_citation_linked"],
        "partial": {r["paper_id"]: r["error"] for r in rows if r["status"] == "partial"},
        "seconds": round(elapsed, 2),
        "papers_per_second": round(len(todo_ids) / elapsed, 2) if todo_ids and elapsed else 0.0,
    }
    if pages["n"]:
        summary["pages_per_second"] = round(pages["n"] / elapsed, 1)
    pu.print_summary("stage 03: papers to XML", summary)
    inputs = [p for p in (input_dir / "pdfs", input_dir / "sources", input_dir / "metadata.csv") if p.exists()]
    pu.write_run_json(out, "03_cermine_extract", config, inputs or [input_dir], summary, started_wall)
    usable = statuses.get("ok", 0) + statuses.get("no_citation_linked", 0) + statuses.get("partial", 0)
    if not usable:
        raise SystemExit(f"error: no paper converted ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))});"
                         f" the reasons are in {log_path}")
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
