"""Stage 01: search arXiv by keywords and download the PDFs of the results.

    python 01_arxiv_download/arxiv_download.py --max-results 50
    python 01_arxiv_download/arxiv_download.py --help

Writes ``output/pdfs/<paper_id>.pdf`` and ``output/metadata.csv``. A rerun keeps
every valid PDF already downloaded, adds new results, and retries failures.
arXiv's terms are respected: one request at a time, ``delay_seconds`` (3 s)
between any two requests, API pages or PDFs alike.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import arxiv  # noqa: E402
import requests  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
USER_AGENT = "doi-citation-pipeline/1.0 (stage 01; arXiv API client; +https://github.com/)"


@dataclass
class Config:
    """Search arXiv and download the PDFs of the results."""

    query: str = "(all:digitalisation OR all:digitalization) AND all:maritime"
    """arXiv query syntax (https://info.arxiv.org/help/api/user-manual.html#query_details); both terms constrain the search."""
    max_results: int = 250
    """How many results to keep (arXiv returns them in pages of page_size)."""
    sort_by: Literal["relevance", "lastUpdatedDate", "submittedDate"] = "relevance"
    """arXiv sort criterion."""
    sort_order: Literal["descending", "ascending"] = "descending"
    """Sort direction."""
    categories: tuple[str, ...] = ()
    """Only these arXiv categories, e.g. cs.CY eess.SY (ANDed with the query as cat:a OR cat:b)."""
    date_from: str = ""
    """Earliest submission date, YYYY-MM-DD (empty: no limit)."""
    date_to: str = ""
    """Latest submission date, YYYY-MM-DD (empty: no limit)."""
    page_size: int = 100
    """Results per API page (arXiv allows at most 2000)."""
    delay_seconds: float = 3.0
    """Seconds between any two requests to arXiv (its terms of use: 3)."""
    retries: int = 3
    """Retries per API page and per PDF after the first try."""
    backoff_seconds: float = 5.0
    """First back-off after a failed PDF download; doubles on each retry."""
    timeout: float = 60.0
    """Seconds before a single HTTP request is abandoned."""
    base_url: str = "https://export.arxiv.org/api/query"
    """The arXiv API endpoint (tests and the demo point this at a loopback stand-in)."""
    output_dir: Path = HERE / "output"
    """Where pdfs/ and metadata.csv are written."""
    force: bool = False
    """Download every PDF again, even those already present and valid."""
    verbose: bool = False
    """Debug logging."""


METADATA_COLUMNS = [
    "paper_id", "arxiv_id", "title", "authors", "published", "primary_category",
    "categories", "journal_ref", "doi", "pdf_url", "pdf_file", "query",
]


class TimeoutSession(requests.Session):
    """A requests session whose every call has a timeout (the arxiv client sets none)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method, url, **kwargs):  # noqa: D102
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


class Throttle:
    """Enforces a minimum interval between consecutive requests (one connection at a time)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last = 0.0

    def wait(self) -> None:
        pause = self._last + self.interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
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


def is_complete_pdf(data: bytes) -> bool:
    """A whole PDF starts with %PDF- and has an %%EOF marker near its end."""
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]


def is_complete_pdf_file(path: Path) -> bool:
    """``is_complete_pdf`` on a file without reading all of it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(5)
            fh.seek(max(0, size - 2048))
            tail = fh.read()
    except OSError:
        return False
    return head == b"%PDF-" and b"%%EOF" in tail


def search_arxiv(config: Config, log) -> list[arxiv.Result]:
    """All results of the query, duplicates (same arXiv id) removed, order kept."""
    client = arxiv.Client(
        page_size=min(config.page_size, 2000, max(config.max_results, 1)),
        delay_seconds=config.delay_seconds,
        num_retries=config.retries,
    )
    client.query_url_format = config.base_url.rstrip("?") + "?{}"
    # arxiv.Client keeps its session private and calls it without a timeout;
    # a hung connection would stall the stage forever, so give it one.
    client._session = TimeoutSession(config.timeout)
    search = arxiv.Search(
        query=build_query(config),
        max_results=config.max_results,
        sort_by=arxiv.SortCriterion(config.sort_by),
        sort_order=arxiv.SortOrder(config.sort_order),
    )
    seen: set[str] = set()
    results = []
    for result in tqdm(client.results(search), desc="arXiv search", unit="result"):
        short_id = result.get_short_id()
        if short_id in seen:
            continue
        seen.add(short_id)
        results.append(result)
    log.info("arXiv returned %d distinct results", len(results))
    return results


def download_pdf(session: requests.Session, url: str, throttle: Throttle, config: Config) -> bytes:
    """Fetch one PDF, retrying with exponential back-off; raises RuntimeError with the last reason."""
    reason = ""
    for attempt in range(config.retries + 1):
        if attempt:
            time.sleep(config.backoff_seconds * 2 ** (attempt - 1))
        throttle.wait()
        try:
            resp = session.get(url, timeout=config.timeout)
        except requests.RequestException as exc:
            reason = f"network error: {exc.__class__.__name__}: {exc}"
            continue
        if resp.status_code != 200:
            reason = f"HTTP {resp.status_code}"
            if resp.status_code in (400, 401, 403, 404, 410):
                break  # retrying will not make a missing paper appear
            continue
        if not is_complete_pdf(resp.content):
            kind = "HTML page" if resp.content.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")) else "incomplete PDF"
            reason = f"not a whole PDF ({kind}, {len(resp.content)} bytes)"
            continue
        return resp.content
    raise RuntimeError(reason)


def metadata_row(result: arxiv.Result, paper_id: str, query: str) -> dict[str, str]:
    """The metadata.csv row of one result (pdf_file filled in once downloaded)."""
    return {
        "paper_id": paper_id,
        "arxiv_id": result.get_short_id(),
        "title": " ".join(result.title.split()),
        "authors": pu.join_list(a.name for a in result.authors),
        "published": result.published.date().isoformat() if result.published else "",
        "primary_category": result.primary_category,
        "categories": pu.join_list(result.categories),
        "journal_ref": result.journal_ref or "",
        "doi": (result.doi or "").lower(),
        "pdf_url": result.pdf_url or "",
        "pdf_file": "",
        "query": query,
    }


def main(config: Config) -> dict:
    """Run the search and the downloads; returns the summary."""
    log = pu.setup_logging(config.verbose)
    out = Path(config.output_dir)
    pdf_dir = out / "pdfs"
    pdf_dir.mkdir(parents=True, exist_ok=True)
    query = build_query(config)
    log.info("query: %s", query)

    # Earlier runs' rows are kept: a rerun adds to the collection, it never forgets it.
    previous: dict[str, dict] = {}
    meta_path = out / "metadata.csv"
    if meta_path.exists():
        previous = {row["paper_id"]: row for row in pu.read_csv_rows(meta_path)}

    try:
        results = search_arxiv(config, log)
    except (arxiv.ArxivError, requests.RequestException) as exc:
        raise SystemExit(f"error: arXiv search failed at {config.base_url}: {exc}") from exc

    rows = dict(previous)
    summary = {"results": len(results), "downloaded": 0, "already_present": 0, "failed": 0, "skipped": {}}
    failures: dict[str, str] = {}
    throttle = Throttle(config.delay_seconds)
    throttle._last = time.monotonic()  # the search just talked to arXiv
    session = TimeoutSession(config.timeout)

    for result in tqdm(results, desc="PDFs", unit="pdf"):
        try:
            paper_id = pu.paper_id_from_arxiv_id(result.get_short_id())
            target = pu.safe_child(pdf_dir, f"{paper_id}.pdf")
        except ValueError as exc:
            summary["skipped"]["unsafe_id"] = summary["skipped"].get("unsafe_id", 0) + 1
            log.warning("skipped %s: %s", result.entry_id, exc)
            continue
        row = metadata_row(result, paper_id, query)
        rows[paper_id] = row
        relative = f"pdfs/{paper_id}.pdf"
        if not config.force and is_complete_pdf_file(target):
            row["pdf_file"] = relative
            summary["already_present"] += 1
            continue
        if not result.pdf_url:
            failures[paper_id] = "no PDF link in the arXiv record"
            continue
        try:
            data = download_pdf(session, result.pdf_url, throttle, config)
        except RuntimeError as exc:
            failures[paper_id] = str(exc)
            log.warning("%s: download failed: %s", paper_id, exc)
            continue
        pu.atomic_write_bytes(target, data)
        row["pdf_file"] = relative
        summary["downloaded"] += 1
        # Write metadata as we go, so an interrupted run keeps what it has.
        if summary["downloaded"] % 25 == 0:
            pu.atomic_write_csv(meta_path, rows.values(), METADATA_COLUMNS)

    # A row from an earlier run whose PDF is gone or broken must not claim a file.
    for row in rows.values():
        if row.get("pdf_file") and not is_complete_pdf_file(out / row["pdf_file"]):
            row["pdf_file"] = ""
    pu.atomic_write_csv(meta_path, rows.values(), METADATA_COLUMNS)

    summary["failed"] = len(failures)
    summary["failures"] = failures
    summary["papers_in_metadata"] = len(rows)
    summary["with_pdf"] = sum(1 for r in rows.values() if r.get("pdf_file"))
    pu.print_summary("stage 01: arXiv download", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
