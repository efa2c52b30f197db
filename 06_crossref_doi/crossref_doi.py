"""Stage 06: an exact DOI for every distinct reference, from Crossref, validated, never guessed.

    CROSSREF_MAILTO=you@example.org python 06_crossref_doi/crossref_doi.py
    python 06_crossref_doi/crossref_doi.py --refresh            # ignore the response cache

Resolution, in order: (1) a DOI printed in the reference, confirmed against
Crossref's record of it; (2) an arXiv id -> the arXiv DataCite DOI
10.48550/arXiv.<id>; (3) a Crossref bibliographic search whose candidates must
pass every check (title similarity, year within one, first author, type). A
wrong DOI is far worse than a missing one, so anything doubtful is left
without DOI and says why.

Requests are paced to the limits Crossref announces in its X-Rate-Limit-* and
X-Concurrency-Limit headers, retried on 429/5xx/timeouts, and cached in SQLite,
so a rerun or a resumed run sends no request twice.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from rapidfuzz import fuzz  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
USER_AGENT = "doi-citation-pipeline/1.0 (stage 06; https://github.com/; research use)"


@dataclass
class Config:
    """Resolve every distinct reference of stage 05 to a validated DOI."""

    input_dir: Path = HERE.parent / "05_merge_clean" / "output"
    """Stage 05's output (references.csv, sentences.csv)."""
    output_dir: Path = HERE / "output"
    """Where references.csv, sentences.csv and match_report.json go."""
    base_url: str = "https://api.crossref.org"
    """Crossref REST API (tests and the demo point this at a loopback stand-in)."""
    mailto: str = ""
    """Contact e-mail for Crossref's polite pool; empty: read CROSSREF_MAILTO from the environment or .env."""
    rows: int = 5
    """Candidates asked for per search."""
    title_threshold: float = 0.92
    """Minimum normalised title similarity (0-1) of a candidate; chosen from 06_crossref_doi/bench.py (README)."""
    raw_threshold: float = 0.92
    """Minimum similarity of a candidate's title to a span of the raw reference, when the reference has no title."""
    year_tolerance: int = 1
    """A candidate's year may differ from the reference's by at most this."""
    author_threshold: float = 0.85
    """Minimum similarity of the reference's first author surname to one of the candidate's first three authors."""
    ambiguity_margin: float = 0.02
    """Two passing candidates whose scores differ by less than this are ambiguous: no DOI."""
    concurrency: int = 3
    """Requests in flight at most (Crossref's polite pool allows 3; the X-Concurrency-Limit header can lower it)."""
    search_rate: float = 3.0
    """Searches per second until Crossref's headers say otherwise (polite pool since December 2025: 3)."""
    lookup_rate: float = 10.0
    """Single-record lookups per second until the headers say otherwise (polite pool: 10)."""
    timeout: float = 30.0
    """Seconds per request (Crossref's searches can take several seconds)."""
    retries: int = 4
    """Retries per request after 429, 5xx or a timeout (exponential back-off, Retry-After honoured)."""
    backoff_seconds: float = 1.0
    """First back-off; doubles on each retry."""
    max_error_rate: float = 0.10
    """Stop the stage when more than this share of references end in error (after the first 20)."""
    cache_path: Path = HERE / "crossref_cache.sqlite"
    """SQLite cache of Crossref's answers (outside output/, so it survives a clean)."""
    refresh: bool = False
    """Ignore cached answers (new answers are still cached)."""
    force: bool = False
    """Alias of --refresh (the name every stage shares)."""
    verbose: bool = False
    """Debug logging."""


# Crossref types a cited work can be. Journals, issues, series, components, grants,
# peer reviews and datasets are not what a reference list cites as a work.
ACCEPTED_TYPES = {"journal-article", "proceedings-article", "book", "book-chapter", "book-part", "book-section",
                  "monograph", "edited-book", "reference-book", "report", "report-component", "posted-content",
                  "dissertation", "reference-entry", "standard", "other", "book-track"}
CORRECTION = re.compile(r"^\s*(erratum|errata|corrigendum|correction|retraction|retracted|addendum)\b", re.I)
SELECT = "DOI,title,author,issued,type,score,container-title"
REF_OUT_EXTRA = ["printed_doi", "doi", "doi_source", "match_score", "title_similarity", "matched_title",
                 "matched_year", "match_status", "note"]


# ---------------------------------------------------------------------------
# Pacing, caching, the HTTP client
# ---------------------------------------------------------------------------

class Pacer:
    """Keeps one pool of requests (searches or lookups) within the rate and the
    concurrency Crossref announces, updated from every response's headers."""

    def __init__(self, rate: float, concurrency: int):
        self.rate = rate
        self.concurrency = concurrency
        self._next = 0.0
        self._in_flight = 0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self.concurrency:
                self._cond.wait()
            self._in_flight += 1
            now = time.monotonic()
            start = max(now, self._next)
            # a 4% margin: evenly spaced requests, delayed a little on their way by thread
            # scheduling, must still never make N+1 in the server's window
            self._next = start + 1.04 / self.rate
        if start > now:
            time.sleep(start - now)

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    def pause(self, seconds: float) -> None:
        """After a 429: nobody in this pool sends anything for ``seconds``."""
        with self._cond:
            self._next = max(self._next, time.monotonic() + seconds)

    def update(self, headers: httpx.Headers) -> None:
        limit, interval = headers.get("x-rate-limit-limit"), headers.get("x-rate-limit-interval")
        concurrency = headers.get("x-concurrency-limit")
        with self._cond:
            try:
                if limit and interval:
                    seconds = float(re.sub(r"[^\d.]", "", interval) or 1)
                    self.rate = max(0.05, int(limit) / seconds)
                if concurrency:
                    self.concurrency = max(1, int(concurrency))
                    self._cond.notify_all()
            except ValueError:
                pass  # a malformed header is ignored; the last good values stay


class RequestFailed(Exception):
    """A request that failed after every retry; the message says why."""


class CrossrefClient:
    """A polite Crossref client: mailto, User-Agent, header-driven pacing, retries, cache.

    httpx rather than habanero: habanero calls a module-level ``get`` per request
    (no connection reuse), exposes no response headers on success (so no pacing
    to X-Rate-Limit-*), and has no retries; see the README.
    """

    def __init__(self, config: Config, mailto: str, cache: pu.KeyValueCache):
        self.base = config.base_url.rstrip("/")
        self.mailto = mailto
        self.config = config
        self.cache = cache
        ua = f"{USER_AGENT} (mailto:{mailto})" if mailto else USER_AGENT
        self.http = httpx.Client(timeout=config.timeout, headers={"User-Agent": ua},
                                 limits=httpx.Limits(max_connections=max(4, config.concurrency * 2)))
        self.pacers = {"search": Pacer(config.search_rate, config.concurrency),
                       "lookup": Pacer(config.lookup_rate, config.concurrency)}
        self.stats = {"requests": {"search": 0, "lookup": 0}, "cache_hits": 0, "retries": 0, "rate_limited": 0}
        self.busy_seconds = {"search": [None, None], "lookup": [None, None]}  # first and last request start
        self._lock = threading.Lock()

    def get(self, pool: str, path: str, params: dict) -> tuple[int, dict | None]:
        """(status, JSON message) of a GET, from the cache when possible; 404 -> (404, None)."""
        key = path + ("?" + urlencode(sorted(params.items())) if params else "")
        if not (self.config.refresh or self.config.force):
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self.stats["cache_hits"] += 1
                status, message = json.loads(hit)
                return status, message
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        pacer = self.pacers[pool]
        reason = ""
        for attempt in range(self.config.retries + 1):
            pacer.acquire()
            began = time.monotonic()
            try:
                with self._lock:
                    self.stats["requests"][pool] += 1
                    first, _ = self.busy_seconds[pool]
                    self.busy_seconds[pool] = [first if first is not None else began, began]
                resp = self.http.get(self.base + path, params=params)
            except httpx.TimeoutException:
                reason = f"timed out after {self.config.timeout:g} s"
                resp = None
            except httpx.TransportError as exc:
                reason = f"network error ({exc.__class__.__name__})"
                resp = None
            finally:
                pacer.release()
            if resp is not None:
                pacer.update(resp.headers)
                if resp.status_code in (200, 404):
                    message = None
                    if resp.status_code == 200:
                        try:
                            message = resp.json()["message"]
                        except (ValueError, KeyError):
                            reason = "answer is not Crossref JSON"
                            continue
                    self.cache.put(key, json.dumps([resp.status_code, message]))
                    return resp.status_code, message
                reason = f"HTTP {resp.status_code}"
                if resp.status_code == 429:
                    with self._lock:
                        self.stats["rate_limited"] += 1
                    wait = _retry_after(resp.headers) or self.config.backoff_seconds * 2 ** attempt
                    pacer.pause(wait)
                    continue
                if resp.status_code < 500:
                    raise RequestFailed(reason)  # 400 and friends: retrying sends the same bad request
            if attempt < self.config.retries:
                with self._lock:
                    self.stats["retries"] += 1
                time.sleep(self.config.backoff_seconds * 2 ** attempt * (0.75 + 0.5 * random.random()))
        raise RequestFailed(reason)

    def lookup(self, doi: str) -> dict | None:
        status, message = self.get("lookup", f"/works/{quote(doi, safe='/')}", {})
        return message if status == 200 else None

    def search(self, query: str, rows: int) -> list[dict]:
        status, message = self.get("search", "/works", {"query.bibliographic": query, "rows": rows,
                                                        "select": SELECT})
        return (message or {}).get("items", []) if status == 200 else []

    def close(self) -> None:
        self.http.close()


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

def norm(text: str) -> str:
    """Lower case, accents and punctuation removed, single spaces: how titles are compared."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    text = re.sub(r"<[^>]+>", " ", text)  # Crossref titles may carry <i>, <sub> markup
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def title_of(item: dict) -> str:
    titles = item.get("title") or []
    title = titles[0] if titles else ""
    subtitle = (item.get("subtitle") or [""])[0]
    return f"{title}: {subtitle}" if subtitle else title


def year_of(item: dict) -> int | None:
    for field_name in ("issued", "published-print", "published-online", "published", "created"):
        parts = (item.get(field_name) or {}).get("date-parts") or [[None]]
        if parts and parts[0] and parts[0][0]:
            return int(parts[0][0])
    return None


def title_similarity(ref: dict, item: dict) -> float:
    """0-1: the reference's title against the candidate's (with and without its subtitle);
    without a title, the candidate's title against the best-matching span of the raw text."""
    cand_full, cand_main = norm(title_of(item)), norm((item.get("title") or [""])[0])
    if not cand_full:
        return 0.0
    if ref["title"]:
        mine = norm(ref["title"])
        forms = {cand_full, cand_main}
        # "Title" cited for "Title: subtitle" (or the other way round): compare the main titles,
        # when they are long enough to identify a work on their own
        for title in (title_of(item), (item.get("title") or [""])[0]):
            head = norm(re.split(r"[:?.]\s", title, maxsplit=1)[0])
            if len(head.split()) >= 4:
                forms.add(head)
        own_head = norm(re.split(r"[:?.]\s", ref["title"], maxsplit=1)[0])
        best = max(fuzz.ratio(mine, form) for form in forms)
        if len(own_head.split()) >= 4 and own_head != mine:
            best = max(best, fuzz.ratio(own_head, cand_main))
        return best / 100.0
    raw = norm(ref["raw"])
    if len(cand_main.split()) < 3:
        return 0.0  # a two-word title "found" inside a raw string proves nothing
    return fuzz.partial_ratio(cand_main, raw) / 100.0


def substituted_word(mine: str, theirs: str) -> str:
    """'ports' vs 'vessels' when each title has a content word the other lacks, or ''.

    Typos keep a close counterpart (similarity >= 75, or a split word inside another) and a dropped subtitle
    leaves words missing on one side only; a word replaced by another word is the mark
    of a different work with a similar title (a follow-up, a companion paper).
    """
    a = [w for w in norm(mine).split() if len(w) >= 4]
    b = [w for w in norm(theirs).split() if len(w) >= 4]
    if not a or not b:
        return ""
    def has_counterpart(word: str, others: list[str]) -> bool:
        return any(fuzz.ratio(word, x) >= 75 or fuzz.partial_ratio(word, x) >= 90 for x in others)

    only_a = [w for w in a if not has_counterpart(w, b)]
    only_b = [w for w in b if not has_counterpart(w, a)]
    if only_a and only_b and len(only_b) <= len(b) // 2 + 1:
        return f"{only_a[0]} vs {only_b[0]}"
    return ""


def first_surname(ref: dict) -> str:
    authors = pu.split_list(ref.get("authors", ""))
    if not authors:
        return ""
    first = authors[0]
    surname = first.split(",")[0] if "," in first else first.split()[-1]
    return norm(surname)


def check_candidate(ref: dict, item: dict, config: Config) -> tuple[bool, float, str]:
    """(passes, score, why not): every check a candidate must pass to be the reference's work."""
    kind = item.get("type", "")
    if kind and kind not in ACCEPTED_TYPES:
        return False, 0.0, f"type {kind}"
    sim = title_similarity(ref, item)
    threshold = config.title_threshold if ref["title"] else config.raw_threshold
    if sim < threshold:
        return False, sim, f"title similarity {sim:.2f}"
    cand_title = title_of(item)
    if CORRECTION.match(cand_title) and not CORRECTION.match(ref["title"] or ref["raw"]):
        return False, sim, "an erratum/correction of the work, not the work"
    if ref["title"] and (swap := substituted_word(ref["title"], cand_title)):
        return False, sim, f"a different word in the title ({swap})"
    score = sim
    year = year_of(item)
    ref_year = int(ref["year"]) if str(ref.get("year", "")).isdigit() else None
    if ref_year and year:
        if abs(year - ref_year) > config.year_tolerance:
            return False, sim, f"year {year} vs {ref_year}"
        score += 0.03 if year == ref_year else 0.0
    surname = first_surname(ref)
    families = [norm(a.get("family") or a.get("name") or "") for a in (item.get("author") or [])[:3]]
    families = [f for f in families if f]
    if surname and families:
        best = max(fuzz.ratio(surname, f) / 100.0 for f in families)
        if best < config.author_threshold and not any(surname in f.split() for f in families):
            return False, sim, f"first author {surname} not among {', '.join(families)}"
        score += 0.01
    return True, score, ""


def bibliographic_query(ref: dict) -> str:
    """title, authors' surnames, venue and year (Crossref's query.bibliographic); the raw text without a title."""
    if not ref["title"]:
        return re.sub(r"\s+", " ", ref["raw"])[:500]
    surnames = [a.split(",")[0] for a in pu.split_list(ref.get("authors", ""))[:3]]
    parts = [ref["title"], " ".join(surnames), ref.get("venue", ""), str(ref.get("year", ""))]
    return " ".join(p for p in parts if p)[:500]


def resolve(ref: dict, client: CrossrefClient, config: Config) -> dict:
    """The DOI of one reference, with where it came from and why; never raises RequestFailed."""
    out = {"printed_doi": ref.get("doi", ""), "doi": "", "doi_source": "", "match_score": "", "title_similarity": "",
           "matched_title": "", "matched_year": "", "match_status": "not_found", "note": ""}
    notes = []
    try:
        printed = (ref.get("doi") or "").lower()
        if printed.startswith("10.48550/arxiv."):
            # an arXiv DataCite DOI: Crossref does not hold these, and the id inside it is the arXiv id
            ref = {**ref, "arxiv_id": ref.get("arxiv_id") or printed[len("10.48550/arxiv."):]}
            printed = ""
        if printed:
            record = client.lookup(printed)
            if record is None:
                notes.append(f"printed DOI {printed} not in Crossref")
            else:
                sim = title_similarity(ref, record) if (ref["title"] or ref["raw"]) else 1.0
                year, ref_year = year_of(record), ref.get("year", "")
                year_ok = not (year and str(ref_year).isdigit() and abs(year - int(ref_year)) > config.year_tolerance)
                threshold = config.title_threshold if ref["title"] else config.raw_threshold
                if sim >= threshold and year_ok:
                    out.update(doi=printed, doi_source="xml", title_similarity=round(sim, 3),
                               matched_title=title_of(record), matched_year=year or "", match_status="matched")
                    return out
                notes.append(f"printed DOI {printed} rejected: its record is '{title_of(record)[:60]}' ({year}), "
                             f"title similarity {sim:.2f}")
        arxiv = re.sub(r"v\d+$", "", (ref.get("arxiv_id") or "").strip())
        if arxiv:
            out.update(doi=f"10.48550/arxiv.{arxiv}".lower(), doi_source="arxiv", match_status="matched",
                       matched_title=ref["title"], matched_year=ref.get("year", ""))
            out["note"] = "; ".join(notes)
            return out
        if not (ref["title"] or ref["raw"]):
            out["note"] = "; ".join(notes + ["nothing to search with (no title, no raw text)"])
            return out
        items = client.search(bibliographic_query(ref), config.rows)
        passing = []
        for item in items:
            ok, score, why = check_candidate(ref, item, config)
            if ok and item.get("DOI"):
                passing.append((score, item))
        passing.sort(key=lambda p: -p[0])
        if not passing:
            best = items[0] if items else None
            if best is not None:
                _, _, why = check_candidate(ref, best, config)
                notes.append(f"best candidate {best.get('DOI', '')} rejected: {why}")
            else:
                notes.append("no candidates")
        elif len(passing) > 1 and passing[0][0] - passing[1][0] < config.ambiguity_margin \
                and passing[0][1]["DOI"].lower() != passing[1][1]["DOI"].lower():
            a, b = passing[0][1], passing[1][1]
            out["match_status"] = "ambiguous"
            notes.append(f"candidates {a['DOI']} ({year_of(a)}) and {b['DOI']} ({year_of(b)}) are too close")
        else:
            score, item = passing[0]
            out.update(doi=item["DOI"].lower(), doi_source="crossref", match_score=item.get("score", ""),
                       title_similarity=round(title_similarity(ref, item), 3), matched_title=title_of(item),
                       matched_year=year_of(item) or "", match_status="matched")
    except RequestFailed as exc:
        out["match_status"] = "error"
        notes.append(f"Crossref request failed: {exc}")
    out["note"] = "; ".join(notes)
    return out


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Resolve every reference; returns the match report."""
    log = pu.setup_logging(config.verbose)
    pu.load_env()
    mailto = config.mailto or os.environ.get("CROSSREF_MAILTO", "")
    if not mailto:
        log.warning("no CROSSREF_MAILTO set (environment or .env): Crossref's public pool is slower and "
                    "stricter than the polite pool; set it to your e-mail address")
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    ref_path, sent_path = input_dir / "references.csv", input_dir / "sentences.csv"
    for path in (ref_path, sent_path):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: run stage 05 first (or pass --input-dir)")
    refs = pu.read_csv_rows(ref_path)
    missing = {"ref_uid", "title", "year", "authors", "raw", "doi", "arxiv_id"} - set(refs[0] if refs else {})
    if refs and missing:
        raise SystemExit(f"error: {ref_path} lacks column(s) {', '.join(sorted(missing))}")
    sentences = pu.read_csv_rows(sent_path)

    cache = pu.KeyValueCache(Path(config.cache_path))
    client = CrossrefClient(config, mailto, cache)
    results: dict[str, dict] = {}
    errors = 0
    started = time.perf_counter()
    stop_reason = ""
    with ThreadPoolExecutor(max_workers=max(1, config.concurrency)) as pool:
        futures = {pool.submit(resolve, ref, client, config): ref["ref_uid"] for ref in refs}
        bar = tqdm(total=len(refs), desc="crossref", unit="ref")
        for fut in as_completed(futures):
            uid = futures[fut]
            results[uid] = fut.result()
            bar.update(1)
            if results[uid]["match_status"] == "error":
                errors += 1
                log.warning("%s: %s", uid, results[uid]["note"])
            done = len(results)
            if done >= 20 and errors / done > config.max_error_rate:
                stop_reason = (f"{errors} of {done} references failed ({errors / done:.0%} > "
                               f"{config.max_error_rate:.0%}); last error: {results[uid]['note']}")
                for f in futures:
                    f.cancel()
                break
        bar.close()
    elapsed = time.perf_counter() - started
    client.close()
    cache.close()
    if stop_reason:
        raise SystemExit(f"error: stopped: {stop_reason}. Answers so far are cached; rerun to resume.")

    out.mkdir(parents=True, exist_ok=True)
    ref_rows = []
    for ref in refs:
        row = {k: v for k, v in ref.items() if k != "doi"}
        row.update(results[ref["ref_uid"]])
        ref_rows.append(row)
    ref_columns = [c for c in refs[0] if c != "doi"] + REF_OUT_EXTRA if refs else REF_OUT_EXTRA
    pu.atomic_write_csv(out / "references.csv", ref_rows, ref_columns)
    doi_of = {uid: r["doi"] for uid, r in results.items() if r["doi"]}
    for s in sentences:
        s["dois"] = pu.join_list(dict.fromkeys(doi_of[u] for u in pu.split_list(s.get("ref_uids", "")) if u in doi_of))
    sent_columns = (list(sentences[0]) if sentences else []) + ([] if sentences and "dois" in sentences[0] else ["dois"])
    pu.atomic_write_csv(out / "sentences.csv", sentences, list(dict.fromkeys(sent_columns)))

    by_status: dict[str, int] = {}
    by_source: dict[str, int] = {}
    for r in results.values():
        by_status[r["match_status"]] = by_status.get(r["match_status"], 0) + 1
        if r["doi_source"]:
            by_source[r["doi_source"]] = by_source.get(r["doi_source"], 0) + 1
    sent = client.stats["requests"]

    def achieved(pool_name: str) -> float:
        """Requests per second between the first and the last request start of a pool."""
        first, last = client.busy_seconds[pool_name]
        n = sent[pool_name]
        return round((n - 1) / (last - first), 2) if n > 1 and last > first else 0.0

    report = {
        "references": len(refs),
        "by_status": by_status,
        "by_source": by_source,
        "sentences": len(sentences),
        "sentences_with_doi": sum(1 for s in sentences if s["dois"]),
        "requests": {"search": sent["search"], "lookup": sent["lookup"], "cache_hits": client.stats["cache_hits"],
                     "retries": client.stats["retries"], "rate_limited_429": client.stats["rate_limited"]},
        "requests_per_reference": round((sent["search"] + sent["lookup"]) / len(refs), 3) if refs else 0.0,
        "achieved_per_second": {"search": achieved("search"), "lookup": achieved("lookup")},
        "announced_limits": {name: {"per_second": round(p.rate, 2), "concurrency": p.concurrency}
                             for name, p in client.pacers.items()},
        "seconds": round(elapsed, 2),
        "polite_pool": bool(mailto),
        "thresholds": {"title": config.title_threshold, "raw": config.raw_threshold,
                       "year_tolerance": config.year_tolerance, "author": config.author_threshold,
                       "ambiguity_margin": config.ambiguity_margin},
    }
    pu.atomic_write_json(out / "match_report.json", report)
    pu.print_summary("stage 06: Crossref DOIs", report)
    return report


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
