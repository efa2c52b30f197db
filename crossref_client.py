"""A polite client of the Crossref REST API: paced to its headers, retried, validated, cached.

Stage 06 resolves references with it and stage 09 checks DOIs with it; it lives beside
``pipeline_utils.py`` so that no stage has to import another. Usage::

    from crossref_client import CrossrefClient, CrossrefStop, RequestFailed

    with CrossrefClient("https://api.crossref.org", mailto="you@example.org",
                        cache_path="06_crossref_doi/crossref_cache.sqlite") as client:
        try:
            record = client.work("10.1145/3292500.3330701")   # the work's record (a dict) or None
        except RequestFailed as exc:                             # this DOI: every retry failed
            print("not checked:", exc)
        items = client.search("attention is all you need vaswani 2017", rows=5)  # list of dicts
    # CrossrefStop (not a RequestFailed) means stop asking: the service cannot be reached at
    # all, or it asks to wait longer than ``max_retry_after``; its message is one clear line.

Every answer (200 and 404) is cached in SQLite, keyed by base URL, path and query without the
mailto, and only after its shape has been checked: a 200 whose JSON is not a Crossref work (or
work list) is an error like a 500, retried, and never cached. ``client.stats`` counts requests,
cache hits, retries and 429s.
"""
from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

import pipeline_utils as pu

USER_AGENT = "doi-citation-pipeline/1.0 (https://github.com/; research use)"
# the fields a search asks for; "score" must be named or Crossref drops it
SELECT = "DOI,title,author,issued,type,score,container-title,abstract,volume,issue,page,publisher"
log = logging.getLogger("pipeline")


class RequestFailed(Exception):
    """One request failed after every retry (or was refused as malformed); the message says why."""


class CrossrefStop(Exception):
    """Stop asking Crossref altogether: unreachable, or it asks for a wait past the cap. One clear line."""


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


# ---------------------------------------------------------------------------
# The shape of an answer, checked before it is used or cached
# ---------------------------------------------------------------------------

def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def work_problem(item: Any) -> str:
    """What is wrong with a work record's shape ('' when nothing): the fields the stages read."""
    if not isinstance(item, dict):
        return f"a work is {type(item).__name__}, not an object"
    if not isinstance(item.get("DOI"), str) or not item["DOI"].strip():
        return "a work without a DOI"
    for key in ("title", "subtitle", "container-title"):
        if item.get(key) is not None and not _is_str_list(item[key]):
            return f"{key} of {item['DOI']} is not a list of strings"
    for key in ("type", "abstract", "volume", "issue", "page", "publisher"):
        if item.get(key) is not None and not isinstance(item[key], str):
            return f"{key} of {item['DOI']} is not a string"
    if item.get("score") is not None and not isinstance(item["score"], (int, float)):
        return f"score of {item['DOI']} is not a number"
    authors = item.get("author")
    if authors is not None:
        if not isinstance(authors, list) or not all(isinstance(a, dict) for a in authors):
            return f"author of {item['DOI']} is not a list of objects"
        names = [a.get(k) for a in authors for k in ("family", "given", "name")]
        if any(name is not None and not isinstance(name, str) for name in names):
            return f"an author name of {item['DOI']} is not a string"
    for key in ("issued", "published-print", "published-online", "published", "created"):
        date = item.get(key)
        if date is None:
            continue
        parts = date.get("date-parts") if isinstance(date, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, list) for p in parts) or not all(
                x is None or isinstance(x, int) or (isinstance(x, str) and x.isdigit()) for p in parts for x in p):
            return f"{key} of {item['DOI']} is not a date"
    return ""


def answer_problem(pool: str, message: Any) -> str:
    """What is wrong with the ``message`` of a 200 answer ('' when nothing)."""
    if pool == "lookup":
        return work_problem(message)
    if not isinstance(message, dict) or not isinstance(message.get("items"), list):
        return "a search answer without a list of items"
    for item in message["items"]:
        if problem := work_problem(item):
            return problem
    return ""


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds asked for by a Retry-After header (seconds or an HTTP date), or None."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

class CrossrefClient:
    """mailto, User-Agent, header-driven pacing, retries, a Retry-After cap, shape checks, an answer cache.

    httpx rather than habanero: habanero calls a module-level ``get`` per request
    (no connection reuse), exposes no response headers on success (so no pacing
    to X-Rate-Limit-*), and has no retries; see stage 06's README.
    """

    def __init__(self, base_url: str = "https://api.crossref.org", mailto: str = "",
                 cache_path: Path | str | None = None, *, cache: pu.KeyValueCache | None = None,
                 timeout: float = 30.0, retries: int = 4, backoff_seconds: float = 1.0,
                 max_retry_after: float = 300.0, search_rate: float = 3.0, lookup_rate: float = 10.0,
                 concurrency: int = 3, refresh: bool = False, alive_timeout: float = 10.0,
                 user_agent: str = USER_AGENT):
        self.base = base_url.rstrip("/")
        self.mailto = mailto
        self.timeout, self.retries, self.backoff = timeout, retries, backoff_seconds
        self.max_retry_after, self.refresh = max_retry_after, refresh
        self.alive_timeout = alive_timeout
        self._own_cache = cache is None and cache_path is not None
        self.cache = cache if cache is not None else (pu.KeyValueCache(Path(cache_path)) if cache_path else None)
        ua = f"{user_agent} (mailto:{mailto})" if mailto else user_agent
        self.http = httpx.Client(timeout=timeout, headers={"User-Agent": ua},
                                 limits=httpx.Limits(max_connections=max(4, concurrency * 2)))
        self.pacers = {"search": Pacer(search_rate, concurrency), "lookup": Pacer(lookup_rate, concurrency)}
        self.stats = {"requests": {"search": 0, "lookup": 0}, "cache_hits": 0, "retries": 0, "rate_limited": 0,
                      "malformed": 0}
        self.busy_seconds: dict[str, list[float | None]] = {"search": [None, None], "lookup": [None, None]}
        self._lock = threading.Lock()
        self._alive: bool | None = None  # checked once, before the first request the cache cannot answer
        self._alive_lock = threading.Lock()

    # -- public API ---------------------------------------------------------
    def work(self, doi: str) -> dict | None:
        """Crossref's record of ``doi``, or None when Crossref does not know it (404)."""
        status, message = self.get("lookup", f"/works/{quote(doi, safe='/')}", {})
        return message if status == 200 else None

    lookup = work

    def search(self, query: str, rows: int = 5, select: str = SELECT) -> list[dict]:
        """The best ``rows`` candidates of a ``query.bibliographic`` search (possibly wrong: check them)."""
        status, message = self.get("search", "/works", {"query.bibliographic": query, "rows": rows, "select": select})
        return message["items"] if status == 200 else []

    def close(self) -> None:
        self.http.close()
        if self._own_cache and self.cache is not None:
            self.cache.close()

    def __enter__(self) -> "CrossrefClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the machinery ------------------------------------------------------
    def cache_key(self, path: str, params: dict) -> str:
        """Base URL, path and query (without the mailto): answers of a stand-in never answer for Crossref."""
        return pu.KeyValueCache.key("crossref", self.base, path, sorted((k, str(v)) for k, v in params.items()))

    def check_alive(self) -> None:
        """Raise CrossrefStop unless the service answers at all (any HTTP status counts)."""
        with self._alive_lock:
            if self._alive:
                return
            try:
                self.http.get(self.base + "/heartbeat", params={"mailto": self.mailto} if self.mailto else None,
                              timeout=min(self.timeout, self.alive_timeout))
                self._alive = True
            except httpx.TransportError as exc:  # connection refused, DNS, timeouts
                raise CrossrefStop(f"Crossref at {self.base} does not answer ({exc.__class__.__name__}: "
                                   f"{str(exc)[:80] or 'no detail'}); check the network or --base-url") from None

    def get(self, pool: str, path: str, params: dict) -> tuple[int, Any]:
        """(status, JSON message) of a GET, from the cache when possible; 404 -> (404, None)."""
        key = self.cache_key(path, params)
        if self.cache is not None and not self.refresh:
            hit = self.cache.get(key)
            if hit is not None:
                status, message = json.loads(hit)
                if status == 404 or not answer_problem(pool, message):  # an answer cached before the checks existed
                    with self._lock:
                        self.stats["cache_hits"] += 1
                    return status, message
        self.check_alive()
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        pacer = self.pacers[pool]
        reason = ""
        for attempt in range(self.retries + 1):
            pacer.acquire()
            began = time.monotonic()
            try:
                with self._lock:
                    self.stats["requests"][pool] += 1
                    first, _ = self.busy_seconds[pool]
                    self.busy_seconds[pool] = [first if first is not None else began, began]
                resp = self.http.get(self.base + path, params=params)
            except httpx.TimeoutException:
                reason, resp = f"timed out after {self.timeout:g} s", None
            except httpx.TransportError as exc:
                reason, resp = f"network error ({exc.__class__.__name__})", None
            finally:
                pacer.release()
            wait = None
            if resp is not None:
                pacer.update(resp.headers)
                if resp.status_code in (200, 404):
                    message = None
                    problem = ""
                    if resp.status_code == 200:
                        try:
                            message = resp.json()["message"]
                        except (ValueError, KeyError, TypeError, IndexError):
                            problem = "answer is not Crossref JSON"
                        problem = problem or answer_problem(pool, message)
                    if not problem:
                        if self.cache is not None:
                            self.cache.put(key, json.dumps([resp.status_code, message]))
                        return resp.status_code, message
                    with self._lock:
                        self.stats["malformed"] += 1
                    reason = f"malformed answer: {problem}"
                else:
                    reason = f"HTTP {resp.status_code}"
                    if resp.status_code == 429:
                        with self._lock:
                            self.stats["rate_limited"] += 1
                    elif resp.status_code < 500:
                        raise RequestFailed(reason)  # 400 and friends: retrying sends the same bad request
                    wait = retry_after(resp.headers) if resp.status_code in (429, 503) else None
            if wait is not None:
                if wait > self.max_retry_after:
                    raise CrossrefStop(f"Crossref asks to wait {wait:,.0f} s (Retry-After on {reason}), more than "
                                       f"--max-retry-after {self.max_retry_after:g} s: try again later")
                if attempt < self.retries:
                    log.warning("Crossref answered %s: waiting %.3g s as its Retry-After asks", reason, wait)
                    pacer.pause(wait)
                    with self._lock:
                        self.stats["retries"] += 1
                continue
            if attempt < self.retries:
                with self._lock:
                    self.stats["retries"] += 1
                if resp is not None and resp.status_code == 429:
                    pacer.pause(self.backoff * 2 ** attempt)
                else:
                    time.sleep(self.backoff * 2 ** attempt * (0.75 + 0.5 * random.random()))
        raise RequestFailed(reason)
