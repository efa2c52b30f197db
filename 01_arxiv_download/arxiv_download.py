"""Stage 01: search arXiv by keywords and download each result's PDF and LaTeX source (e-print).

    python 01_arxiv_download/arxiv_download.py --max-results 50
    python 01_arxiv_download/arxiv_download.py --help

Writes ``output/pdfs/<paper_id>.pdf``, ``output/sources/<paper_id>.<tar.gz|gz|pdf>`` (the
e-print as arXiv serves it) and ``output/metadata.csv``. A rerun keeps every valid file
already downloaded, adds new results, and retries failures. arXiv's terms are respected:
one request at a time, ``delay_seconds`` (3 s) between any two requests, API pages,
PDFs, e-prints and licence look-ups alike.
"""
from __future__ import annotations

import gzip
import io
import re
import sys
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pypdfium2 as pdfium  # noqa: E402
import requests  # noqa: E402
import urllib3  # noqa: E402
from lxml import etree  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
USER_AGENT = "doi-citation-pipeline/1.0 (stage 01; arXiv API client; +https://github.com/)"
DEFAULT_QUERY = "(all:digitalisation OR all:digitalization) AND all:maritime"


@dataclass
class Config:
    """Search arXiv and download the PDFs and LaTeX sources of the results."""

    query: str = pu.topic_value("arxiv.query", DEFAULT_QUERY)
    """arXiv query syntax (https://info.arxiv.org/help/api/user-manual.html#query_details); default from topic.toml."""
    max_results: int = 250
    """How many results to keep (arXiv returns them in pages of page_size)."""
    sort_by: Literal["relevance", "lastUpdatedDate", "submittedDate"] = "relevance"
    """arXiv sort criterion."""
    sort_order: Literal["descending", "ascending"] = "descending"
    """Sort direction."""
    categories: tuple[str, ...] = tuple(pu.topic_value("arxiv.categories", ()))
    """Only these arXiv categories, e.g. cs.CY eess.SY (ANDed as cat:a OR cat:b); default from topic.toml."""
    date_from: str = ""
    """Earliest submission date, YYYY-MM-DD (empty: no limit)."""
    date_to: str = ""
    """Latest submission date, YYYY-MM-DD (empty: no limit)."""
    page_size: int = 100
    """Results per API page (arXiv allows at most 2000)."""
    delay_seconds: float = 3.0
    """Seconds between any two requests to arXiv (its terms of use: 3)."""
    retries: int = 3
    """Retries per API page, PDF, e-print and licence look-up after the first try."""
    backoff_seconds: float = 5.0
    """First back-off after a failed request; doubles on each retry."""
    timeout: float = 60.0
    """Seconds before a single HTTP request is abandoned."""
    base_url: str = "https://export.arxiv.org/api/query"
    """The arXiv API endpoint (tests and the demo point this at a loopback stand-in)."""
    eprint_url: str = ""
    """E-prints are fetched from <eprint_url>/<arxiv id>; empty: /e-print on base_url's host (export.arxiv.org)."""
    oai_url: str = ""
    """arXiv's OAI-PMH endpoint, asked for each paper's licence; empty: /oai2 on base_url's host."""
    sources: bool = True
    """Download each paper's e-print (LaTeX source) into sources/ (--no-sources: PDFs only)."""
    licenses: bool = True
    """Look up each paper's licence once (one OAI-PMH request per paper: the search API does not state it)."""
    output_dir: Path = HERE / "output"
    """Where pdfs/, sources/, metadata.csv and run.json are written."""
    force: bool = False
    """Download every PDF and e-print again, even those already present and valid."""
    verbose: bool = False
    """Debug logging."""


METADATA_COLUMNS = [
    "paper_id", "arxiv_id", "title", "authors", "abstract", "abs_url", "published", "primary_category",
    "categories", "license", "journal_ref", "doi", "pdf_url", "pdf_file", "source_file", "source_format", "query",
]
NO_LICENSE = "none stated"
SOURCE_FORMATS = ("tar", "tex", "pdf-only", "missing")
# every file name an e-print can have, by the extension classify_eprint gives it
SOURCE_EXTENSIONS = (".tar.gz", ".gz", ".tar", ".pdf")
NS = {"atom": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom",
      "opensearch": "http://a9.com/-/spec/opensearch/1.1/", "oai": "http://www.openarchives.org/OAI/2.0/",
      "oai_arxiv": "http://arxiv.org/OAI/arXiv/"}
# arXiv's feeds never need entities or the network; refusing both also refuses XXE and entity bombs
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class FeedError(ValueError):
    """A page of search results that cannot be trusted: cut, malformed, or fewer entries than announced."""


class QueryRejected(Exception):
    """arXiv answered the query with its error entry (a malformed query): retrying cannot help."""


class SearchFailed(Exception):
    """The search API gave no usable page after every retry."""


class TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout and the pipeline's User-Agent."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, **kwargs):  # noqa: D102
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


class Throttle:
    """Enforces a minimum interval between consecutive requests (one connection at a time),
    counted from the end of the previous one, so that arXiv never sees two closer than that."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last = float("-inf")

    def wait(self) -> None:
        """Sleep until the interval since the last request has passed."""
        pause = self._last + self.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last = time.monotonic()

    def done(self) -> None:
        """The request just finished: the next interval starts now."""
        self._last = time.monotonic()


def build_query(config: Config) -> str:
    """The full arXiv query: the keywords, ANDed with category and date filters."""
    parts = [f"({config.query})"] if config.query.strip() else []
    if config.categories:
        parts.append("(" + " OR ".join(f"cat:{c}" for c in config.categories) + ")")
    if config.date_from or config.date_to:
        lo = (config.date_from or "1991-01-01").replace("-", "") + "0000"
        hi = (config.date_to or "2999-12-31").replace("-", "") + "2359"
        parts.append(f"submittedDate:[{lo} TO {hi}]")
    if not parts:
        raise ValueError("empty query: give --query, --categories or a date range")
    return " AND ".join(parts)


def service_url(base_url: str, path: str) -> str:
    """``path`` on the API's host: export.arxiv.org serves /e-print and /oai2 beside /api/query,
    and so does the stand-in, so one rule gives the right default for both."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{path}"


# --- checking what arrived -------------------------------------------------------------------

def check_pdf(data: bytes) -> int:
    """The page count of a whole PDF; raises ValueError saying what is wrong with anything else.
    Header and trailer are checked first (cheap), then PDFium must open it and load its last
    page: a body of garbage between ``%PDF-`` and ``%%EOF`` passes the first test, not these
    (a linearised PDF opens from its first kilobyte; its last page needs the rest)."""
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]:
        head = data.lstrip()[:15].lower()
        kind = "HTML page" if head.startswith((b"<!doctype", b"<html")) else "incomplete PDF"
        raise ValueError(f"not a whole PDF ({kind}, {len(data)} bytes)")
    try:
        doc = pdfium.PdfDocument(data)
        try:
            pages = len(doc)
            if pages:
                doc[pages - 1].close()
        finally:
            doc.close()
    except pdfium.PdfiumError as exc:
        reason = str(exc).rstrip(".")
        raise ValueError(f"not a whole PDF (PDFium cannot open it: {reason}; {len(data)} bytes)") from None
    if pages == 0:
        raise ValueError("not a whole PDF (no pages)")
    return pages


def is_complete_pdf_file(path: Path) -> bool:
    """``check_pdf`` on a file already on disk (a rerun trusts only files that pass)."""
    try:
        check_pdf(Path(path).read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _gzip_head(data: bytes, head: int = 512) -> bytes:
    """The first bytes of a gzip stream, after decompressing all of it (in 1 MB steps, not in
    memory at once): a truncated stream or a wrong CRC raises ValueError."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            first = gz.read(head)
            while gz.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"truncated or corrupt gzip ({exc})") from None
    return first


def _tar_member_count(data: bytes) -> int:
    """How many members a (gzipped) tar holds, after reading every member's content: a tar cut
    inside a member looks like a shorter archive to the listing alone. Raises ValueError when
    the tar breaks off. Nothing is extracted here (stage 03 does that, safely)."""
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                count += 1
                if member.isfile():
                    content = tar.extractfile(member)
                    while content.read(1 << 20):
                        pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"damaged tar ({exc})") from None
    if not count:
        raise ValueError("empty tar")
    return count


def classify_eprint(data: bytes) -> tuple[str, str]:
    """``(source_format, extension)`` of a downloaded e-print after reading all of it: a gzipped
    tar (``tar``, ``.tar.gz``), one gzipped file (``tex``, ``.gz``), or the PDF arXiv serves when
    the authors gave no source (``pdf-only``, ``.pdf``). Raises ValueError for anything else."""
    if data[:2] == b"\x1f\x8b":
        first = _gzip_head(data)
        if first[257:262] == b"ustar":  # POSIX and GNU tars; very old v7 tars lack the magic
            _tar_member_count(data)
            return "tar", ".tar.gz"
        try:
            _tar_member_count(data)
            return "tar", ".tar.gz"
        except ValueError:
            return "tex", ".gz"
    if data.startswith(b"%PDF-"):
        check_pdf(data)
        return "pdf-only", ".pdf"
    if data[257:262] == b"ustar":
        _tar_member_count(data)
        return "tar", ".tar"
    head = data.lstrip()[:15].lower()
    kind = "an HTML page" if head.startswith((b"<!doctype", b"<html")) else f"unknown content {data[:8]!r}"
    raise ValueError(f"not an e-print ({kind}, {len(data)} bytes)")


def existing_source(src_dir: Path, paper_id: str) -> tuple[Path, str] | None:
    """A valid e-print already in ``sources/`` for this paper, and its format."""
    for ext in SOURCE_EXTENSIONS:
        path = src_dir / f"{paper_id}{ext}"
        if not path.is_file():
            continue
        try:
            fmt, right_ext = classify_eprint(path.read_bytes())
        except (OSError, ValueError):
            continue
        if right_ext == ext:
            return path, fmt
    return None


# --- the search API --------------------------------------------------------------------------

def _text(elem: Any, path: str) -> str:
    return " ".join((elem.findtext(path, "", NS) or "").split())


def parse_feed(content: bytes, start: int, size: int) -> tuple[int, list[Any]]:
    """``(opensearch:totalResults, entries)`` of one API page. Raises FeedError when the page
    is not well-formed (cut off) or holds fewer entries than its own total promises from
    ``start``, and QueryRejected when arXiv answered with its error entry."""
    try:
        root = etree.fromstring(content, XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"the Atom feed is cut or malformed ({exc})") from None
    if root.tag != f"{{{NS['atom']}}}feed":
        raise FeedError(f"not an Atom feed (root element {root.tag})")
    total_text = root.findtext("opensearch:totalResults", None, NS)
    if total_text is None or not total_text.strip().isdigit():
        raise FeedError("the feed has no opensearch:totalResults")
    total = int(total_text)
    entries = root.findall("atom:entry", NS)
    for entry in entries:
        if "/api/errors" in entry.findtext("atom:id", "", NS):
            raise QueryRejected(_text(entry, "atom:summary") or "error entry without a message")
    expected = max(0, min(size, total - start))
    if len(entries) < expected:
        raise FeedError(f"the page from result {start} holds {len(entries)} entries, "
                        f"but opensearch:totalResults ({total}) promises {expected}")
    return total, entries


def entry_record(entry: Any) -> dict[str, str]:
    """The metadata of one Atom entry; raises ValueError for an entry without an arXiv id."""
    entry_id = (entry.findtext("atom:id", "", NS) or "").strip()
    if "arxiv.org/abs/" not in entry_id:
        raise ValueError(f"entry without an arXiv id ({entry_id!r})")
    links = entry.findall("atom:link", NS)
    license_elem = entry.find("arxiv:license", NS)
    license_uri = ""
    if license_elem is not None:  # arXiv has announced the element; today's API omits it
        license_uri = (license_elem.text or license_elem.get("href") or license_elem.get("uri") or "").strip()
    primary = entry.find("arxiv:primary_category", NS)
    return {
        "arxiv_id": entry_id.split("arxiv.org/abs/")[-1],
        "title": _text(entry, "atom:title"),
        "authors": pu.join_list(" ".join((n.text or "").split()) for n in entry.findall("atom:author/atom:name", NS)),
        "abstract": _text(entry, "atom:summary"),
        "abs_url": next((link.get("href", "") for link in links if link.get("rel") == "alternate"), entry_id),
        "published": _text(entry, "atom:published")[:10],
        "primary_category": primary.get("term", "") if primary is not None else "",
        "categories": pu.join_list(c.get("term", "") for c in entry.findall("atom:category", NS)),
        "license": license_uri,
        "journal_ref": _text(entry, "arxiv:journal_ref"),
        "doi": _text(entry, "arxiv:doi").lower(),
        "pdf_url": next((link.get("href", "") for link in links if link.get("title") == "pdf"), ""),
    }


def fetch_page(session: requests.Session, url: str, start: int, size: int, throttle: Throttle,
               config: Config, log) -> tuple[int, list[Any]]:
    """One API page, checked by ``parse_feed``; a bad page is fetched again with back-off,
    then SearchFailed says why."""
    reason = ""
    tries = 0
    for attempt in range(config.retries + 1):
        tries = attempt + 1
        if attempt:
            time.sleep(config.backoff_seconds * 2 ** (attempt - 1))
        throttle.wait()
        try:
            resp = session.get(url, timeout=config.timeout)
        except requests.RequestException as exc:
            reason = f"network error: {exc.__class__.__name__}: {exc}"
            continue
        finally:
            throttle.done()
        if resp.status_code != 200:
            reason = f"HTTP {resp.status_code}"
            if resp.status_code == 400:  # arXiv refuses the request itself; asking again will not help
                break
            continue
        try:
            return parse_feed(resp.content, start, size)
        except FeedError as exc:
            reason = str(exc)
            log.warning("arXiv results from %d: %s (try %d of %d)", start, exc, tries, config.retries + 1)
    raise SearchFailed(f"{reason} (after {tries} {'try' if tries == 1 else 'tries'})")


def search_arxiv(config: Config, session: requests.Session, throttle: Throttle, log) -> tuple[list[dict], int]:
    """The query's results (at most max_results, arXiv's order, each arXiv id once) and the
    number of entries skipped because they had no arXiv id."""
    size = min(config.page_size, 2000, max(config.max_results, 1))
    params = {"search_query": build_query(config), "sortBy": config.sort_by, "sortOrder": config.sort_order}
    records: list[dict] = []
    seen: set[str] = set()
    bad = 0
    start, total = 0, None
    with tqdm(desc="arXiv search", unit="result") as bar:
        while len(records) < config.max_results and (total is None or start < total):
            url = f"{config.base_url.rstrip('?')}?{urlencode({**params, 'start': start, 'max_results': size})}"
            total, entries = fetch_page(session, url, start, size, throttle, config, log)
            if not entries:
                break
            start += len(entries)
            bar.total = min(total, config.max_results)
            for entry in entries:
                try:
                    record = entry_record(entry)
                except ValueError as exc:
                    bad += 1
                    log.warning("skipped an entry: %s", exc)
                    continue
                if record["arxiv_id"] in seen or len(records) >= config.max_results:
                    continue
                seen.add(record["arxiv_id"])
                records.append(record)
                bar.update(1)
    log.info("arXiv returned %d distinct results (of %s)", len(records), total)
    return records, bad


# --- downloads -------------------------------------------------------------------------------

def fetch(session: requests.Session, url: str, throttle: Throttle, config: Config,
          check: Callable[[bytes], Any], raw: bool = False) -> tuple[bytes, Any]:
    """GET ``url`` through the throttle and return ``(body, check(body))``; a body ``check``
    refuses (ValueError) or a 5xx is fetched again with exponential back-off, a 4xx is not.
    ``raw`` keeps the bytes as sent (an e-print stays gzipped even if the server declared a
    Content-Encoding). Raises RuntimeError with the last reason."""
    reason = ""
    for attempt in range(config.retries + 1):
        if attempt:
            time.sleep(config.backoff_seconds * 2 ** (attempt - 1))
        throttle.wait()
        try:
            with session.get(url, timeout=config.timeout, stream=True) as resp:
                status = resp.status_code
                data = resp.raw.read(decode_content=not raw) if status == 200 else b""
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = f"network error: {exc.__class__.__name__}: {exc}"
            continue
        finally:
            throttle.done()
        if status != 200:
            reason = f"HTTP {status}"
            if status in (400, 401, 403, 404, 410):
                break  # retrying will not make a missing paper appear
            continue
        try:
            return data, check(data)
        except ValueError as exc:
            reason = str(exc)
    raise RuntimeError(reason)


def check_oai_record(data: bytes) -> str:
    """The licence URI in an OAI-PMH ``GetRecord`` answer (``none stated`` when the record has none:
    older papers; recorded, so that a rerun does not ask again);
    raises ValueError for a cut answer or an OAI-PMH error."""
    try:
        root = etree.fromstring(data, XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"OAI-PMH answer cut or malformed ({exc})") from None
    error = root.find("oai:error", NS)
    if error is not None:
        raise ValueError(f"OAI-PMH error {error.get('code', '')}: {(error.text or '').strip()}")
    if root.find("oai:GetRecord", NS) is None:
        raise ValueError("OAI-PMH answer without a record")
    return (root.findtext(".//oai_arxiv:license", "", NS) or "").strip() or NO_LICENSE


def license_url(oai_url: str, arxiv_id: str) -> str:
    """The OAI-PMH ``GetRecord`` URL of a paper (OAI identifiers carry no version)."""
    identifier = "oai:arXiv.org:" + re.sub(r"v\d+$", "", arxiv_id)
    return f"{oai_url}?{urlencode({'verb': 'GetRecord', 'identifier': identifier, 'metadataPrefix': 'arXiv'})}"


def store_source(src_dir: Path, paper_id: str, data: bytes, ext: str) -> Path:
    """Write the e-print under its format's extension and drop any other-format file of the paper."""
    target = pu.safe_child(src_dir, f"{paper_id}{ext}")
    pu.atomic_write_bytes(target, data)
    for other in SOURCE_EXTENSIONS:
        if other != ext:
            (src_dir / f"{paper_id}{other}").unlink(missing_ok=True)
    return target


def _count(summary: dict, key: str) -> None:
    summary[key] = summary.get(key, 0) + 1


def main(config: Config) -> dict:
    """Run the search and the downloads; returns the summary."""
    started = time.time()
    log = pu.setup_logging(config.verbose)
    out = Path(config.output_dir)
    pdf_dir, src_dir = out / "pdfs", out / "sources"
    pdf_dir.mkdir(parents=True, exist_ok=True)
    if config.sources:
        src_dir.mkdir(parents=True, exist_ok=True)
    query = build_query(config)
    eprint_url = (config.eprint_url or service_url(config.base_url, "/e-print")).rstrip("/")
    oai_url = config.oai_url or service_url(config.base_url, "/oai2")
    log.info("query: %s", query)

    # Earlier runs' rows are kept: a rerun adds to the collection, it never forgets it.
    meta_path = out / "metadata.csv"
    previous: dict[str, dict] = {}
    if meta_path.exists():
        previous = {row["paper_id"]: row for row in pu.read_csv_rows(meta_path)}

    session = TimeoutSession(config.timeout)
    throttle = Throttle(config.delay_seconds)
    try:
        records, bad_entries = search_arxiv(config, session, throttle, log)
    except SearchFailed as exc:
        raise SystemExit(f"error: arXiv search failed at {config.base_url}: {exc}") from None
    except QueryRejected as exc:
        raise SystemExit(f"error: arXiv refused the query {query!r}: {exc}") from None

    rows = dict(previous)
    summary: dict[str, Any] = {"results": len(records), "downloaded": 0, "already_present": 0, "failed": 0,
                               "skipped": {}}
    sources: dict[str, int] = {"downloaded": 0, "already_present": 0, "failed": 0}
    failures: dict[str, str] = {}
    source_failures: dict[str, str] = {}
    licenses = {"looked_up": 0, "failed": 0}
    if bad_entries:
        summary["skipped"]["entry_without_id"] = bad_entries
    saved_at = 0
    this_run: set[str] = set()

    for record in tqdm(records, desc="papers", unit="paper"):
        try:
            paper_id = pu.paper_id_from_arxiv_id(record["arxiv_id"])
            target = pu.safe_child(pdf_dir, f"{paper_id}.pdf")
        except ValueError as exc:
            _count(summary["skipped"], "unsafe_id")
            log.warning("skipped %s: %s", record["arxiv_id"], exc)
            continue
        old = previous.get(paper_id, {})
        row = {**record, "paper_id": paper_id, "query": query, "pdf_file": "",
               "license": record["license"] or old.get("license", ""),
               "source_file": "", "source_format": "missing"}
        rows[paper_id] = row
        this_run.add(paper_id)

        if not config.force and is_complete_pdf_file(target):
            summary["already_present"] += 1
        elif not record["pdf_url"]:
            failures[paper_id] = "no PDF link in the arXiv record"
            continue
        else:
            try:
                data, _ = fetch(session, record["pdf_url"], throttle, config, check_pdf)
            except RuntimeError as exc:
                failures[paper_id] = str(exc)
                log.warning("%s: PDF download failed: %s", paper_id, exc)
                continue
            pu.atomic_write_bytes(target, data)
            summary["downloaded"] += 1
        row["pdf_file"] = f"pdfs/{paper_id}.pdf"

        # The e-print and the licence only for papers with a PDF: stage 02 goes on with those alone.
        present = existing_source(src_dir, paper_id)
        if config.sources and (config.force or present is None):
            try:
                data, (fmt, ext) = fetch(session, f"{eprint_url}/{record['arxiv_id']}", throttle, config,
                                         classify_eprint, raw=True)
                present = (store_source(src_dir, paper_id, data, ext), fmt)
                sources["downloaded"] += 1
            except RuntimeError as exc:
                source_failures[paper_id] = str(exc)
                log.warning("%s: e-print download failed: %s", paper_id, exc)
        elif config.sources:
            sources["already_present"] += 1
        if present is not None:
            row["source_file"] = f"sources/{present[0].name}"
            row["source_format"] = present[1]

        if config.licenses and not row["license"]:
            try:
                _, row["license"] = fetch(session, license_url(oai_url, record["arxiv_id"]), throttle, config,
                                          check_oai_record)
                licenses["looked_up"] += 1
            except RuntimeError as exc:
                licenses["failed"] += 1
                log.warning("%s: licence look-up failed: %s", paper_id, exc)

        # Write metadata as we go, so an interrupted run keeps what it has.
        fetched = summary["downloaded"] + sources["downloaded"]
        if fetched >= saved_at + 25:
            pu.atomic_write_csv(meta_path, rows.values(), METADATA_COLUMNS)
            saved_at = fetched

    # A row of an earlier run whose file is gone or broken must not claim it (this run's are checked).
    for paper_id, row in rows.items():
        if paper_id not in this_run and row.get("pdf_file") and not is_complete_pdf_file(out / row["pdf_file"]):
            row["pdf_file"] = ""
        if not row.get("source_file") or not (out / row["source_file"]).is_file():
            row["source_file"], row["source_format"] = "", "missing"
    pu.atomic_write_csv(meta_path, rows.values(), METADATA_COLUMNS)

    summary["failed"] = len(failures)
    summary["failures"] = failures
    sources["failed"] = len(source_failures)
    summary["sources"] = {**sources, **{fmt: sum(1 for r in rows.values() if r.get("source_format") == fmt)
                                        for fmt in SOURCE_FORMATS}} if config.sources else "not requested"
    summary["source_failures"] = source_failures
    summary["licenses"] = licenses if config.licenses else "not requested"
    summary["papers_in_metadata"] = len(rows)
    summary["with_pdf"] = sum(1 for r in rows.values() if r.get("pdf_file"))
    pu.write_run_json(out, "01_arxiv_download", config, [pu.TOPIC_FILE], summary, started)
    pu.print_summary("stage 01: arXiv download", summary)
    if not records:
        raise SystemExit(f"error: arXiv returned no results for {query!r}: widen --query, --categories or the dates")
    if summary["downloaded"] + summary["already_present"] == 0:
        first = next(iter(failures.items()), ("", "every id was unsafe"))
        raise SystemExit(f"error: no PDF could be downloaded ({len(records)} results; "
                         f"first failure {first[0]}: {first[1]})")
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
