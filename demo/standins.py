"""Loopback stand-ins of the external services, for the demo and the tests.

Each stand-in is a real HTTP server on 127.0.0.1 (a free port) that speaks the
protocol of the service it replaces, so the stages' real client code runs
against it unchanged. ``LoopbackServer`` is the shared base: it records every
request and can be scripted to fail (an HTTP status, a truncated body, a hang)
before answering normally, which is how the tests exercise retries.

    with ArxivStandIn(papers) as arxiv_api:
        main(Config(base_url=arxiv_api.url + "/api/query", ...))
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

DEMO_DIR = Path(__file__).resolve().parent
CORPUS_DIR = DEMO_DIR / "corpus"


@dataclass
class Request:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    """What a handler answers: status, headers, body."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """Base class: a threaded HTTP server on 127.0.0.1 with request log and scripted faults."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to be provided by subclasses -------------------------------------
    def handle(self, request: Request) -> Reply:  # pragma: no cover - overridden
        return Reply(404, b"not found")

    # -- scripted faults ----------------------------------------------------
    def fail_next(self, path_prefix: str, *faults: Any) -> None:
        """Queue faults for the next requests whose path starts with ``path_prefix``.

        A fault is an int (answer with that HTTP status), ``"truncate"`` (send
        the normal answer cut in half), ``"html"`` (an HTML error page with 200),
        ``("sleep", seconds)`` (hang, then answer normally), or a ``Reply``.
        """
        with self._lock:
            self._faults[path_prefix].extend(faults)

    def _take_fault(self, path: str) -> Any:
        with self._lock:
            for prefix, queue in self._faults.items():
                if path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    def requests_to(self, path_prefix: str) -> list[Request]:
        """The recorded requests whose path starts with ``path_prefix``."""
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- life cycle ----------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackServer":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=unquote(parts.path),
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with stand_in._lock:
                    stand_in.requests.append(request)
                fault = stand_in._take_fault(request.path)
                if isinstance(fault, tuple) and fault[0] == "sleep":
                    time.sleep(fault[1])
                    fault = None
                if isinstance(fault, int):
                    reply = Reply(fault, f"stand-in error {fault}".encode(), {"Content-Type": "text/plain"})
                elif isinstance(fault, Reply):
                    reply = fault
                elif fault == "html":
                    reply = Reply(200, b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
                                  {"Content-Type": "text/html"})
                else:
                    reply = stand_in.handle(request)
                    if fault == "truncate":
                        reply = Reply(reply.status, reply.body[: len(reply.body) // 2], reply.headers)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to do

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------
# arXiv: the Atom query API (export.arxiv.org/api/query) and the PDF links
# --------------------------------------------------------------------------

@dataclass
class ArxivPaper:
    """One record the arXiv stand-in serves."""

    arxiv_id: str  # with version: "2401.01234v2" or "hep-th/9901001v1"
    title: str
    authors: list[str]
    summary: str = ""
    published: str = "2025-01-15T10:00:00Z"
    primary_category: str = "cs.CY"
    categories: list[str] = field(default_factory=lambda: ["cs.CY"])
    journal_ref: str = ""
    doi: str = ""
    pdf: bytes = b""


class ArxivStandIn(LoopbackServer):
    """Answers ``GET /api/query`` in arXiv's Atom format (paging with start and
    max_results, opensearch:totalResults) and ``GET /pdf/<id>`` with the PDF.

    The query is matched loosely: every paper whose title, summary or categories
    contain any word of the query that follows a field prefix (``all:``,
    ``ti:``, ``abs:``, ``cat:``) is a hit; enough for a stand-in.
    """

    def __init__(self, papers: list[ArxivPaper], match_query: bool = False) -> None:
        super().__init__()
        self.papers = list(papers)
        self.match_query = match_query

    def _matches(self, paper: ArxivPaper, query: str) -> bool:
        if not self.match_query:
            return True
        import re

        words = [w.lower() for w in re.findall(r"(?:all|ti|abs|cat):([\w.\-]+)", query)]
        haystack = " ".join([paper.title, paper.summary, *paper.categories]).lower()
        return not words or any(w in haystack for w in words)

    def handle(self, request: Request) -> Reply:
        if request.path.rstrip("/").endswith("/api/query"):
            return self._query(request)
        if request.path.startswith("/pdf/"):
            wanted = request.path[len("/pdf/"):]
            for paper in self.papers:
                if paper.arxiv_id == wanted:
                    return Reply(200, paper.pdf, {"Content-Type": "application/pdf"})
            return Reply(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
        return Reply(404, b"not found")

    def _query(self, request: Request) -> Reply:
        query = (request.query.get("search_query") or [""])[0]
        start = int((request.query.get("start") or ["0"])[0])
        size = int((request.query.get("max_results") or ["10"])[0])
        if size > 2000:
            return Reply(400, b"max_results must not exceed 2000")
        hits = [p for p in self.papers if self._matches(p, query)]
        page = hits[start:start + size]
        base = self.url
        entries = []
        for p in page:
            abs_id = p.arxiv_id
            authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in p.authors)
            cats = "".join(
                f'<category term="{escape(c)}" scheme="http://arxiv.org/schemas/atom"/>' for c in p.categories
            )
            extra = ""
            if p.journal_ref:
                extra += f"<arxiv:journal_ref>{escape(p.journal_ref)}</arxiv:journal_ref>"
            if p.doi:
                extra += f"<arxiv:doi>{escape(p.doi)}</arxiv:doi>"
            entries.append(
                "<entry>"
                f"<id>http://arxiv.org/abs/{abs_id}</id>"
                f"<updated>{p.published}</updated><published>{p.published}</published>"
                f"<title>{escape(p.title)}</title><summary>{escape(p.summary)}</summary>"
                f"{authors}{extra}"
                f'<link href="http://arxiv.org/abs/{abs_id}" rel="alternate" type="text/html"/>'
                f'<link title="pdf" href="{base}/pdf/{abs_id}" rel="related" type="application/pdf"/>'
                f'<arxiv:primary_category term="{escape(p.primary_category)}" scheme="http://arxiv.org/schemas/atom"/>'
                f"{cats}</entry>"
            )
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        feed = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
            'xmlns:arxiv="http://arxiv.org/schemas/atom">'
            f'<id>https://arxiv.org/api/stand-in</id><title>arXiv Query: {escape(query)}</title><updated>{now}</updated>'
            f"<opensearch:totalResults>{len(hits)}</opensearch:totalResults>"
            f"<opensearch:startIndex>{start}</opensearch:startIndex>"
            f"<opensearch:itemsPerPage>{size}</opensearch:itemsPerPage>"
            + "".join(entries)
            + "</feed>"
        )
        return Reply(200, feed.encode("utf-8"), {"Content-Type": "application/atom+xml; charset=utf-8"})


# --------------------------------------------------------------------------
# GROBID: /api/isalive and /api/processFulltextDocument
# --------------------------------------------------------------------------

class GrobidStandIn(LoopbackServer):
    """Answers GROBID's REST API: ``GET /api/isalive`` and a multipart ``POST
    /api/processFulltextDocument`` (field ``input``: the PDF) with TEI XML.

    ``tei_for(filename, pdf_bytes)`` decides the TEI returned; by default the
    same document for every PDF. A request without a PDF gets 400, as GROBID does.
    """

    def __init__(self, tei: bytes, tei_for: Callable[[str, bytes], bytes] | None = None) -> None:
        super().__init__()
        self.tei = tei
        self.tei_for = tei_for

    def handle(self, request: Request) -> Reply:
        if request.path == "/api/isalive":
            return Reply(200, b"true", {"Content-Type": "text/plain"})
        if request.path == "/api/processFulltextDocument" and request.method == "POST":
            ctype = request.headers.get("content-type", "")
            if "multipart/form-data" not in ctype or b"%PDF" not in request.body:
                return Reply(400, b"no input PDF", {"Content-Type": "text/plain"})
            import re

            name = re.search(rb'name="input"; filename="([^"]+)"', request.body)
            filename = name.group(1).decode() if name else "input.pdf"
            tei = self.tei_for(filename, request.body) if self.tei_for else self.tei
            return Reply(200, tei, {"Content-Type": "application/xml"})
        return Reply(404, b"not found")


# --------------------------------------------------------------------------
# Crossref REST API: /works?query.bibliographic= and /works/{doi}
# --------------------------------------------------------------------------

class CrossrefStandIn(LoopbackServer):
    """Answers Crossref's ``GET /works?query.bibliographic=…&rows=…&select=…`` and
    ``GET /works/{doi}`` with Crossref-shaped JSON (``message.items[]`` with
    ``DOI``, ``title`` as a list, ``issued.date-parts``, ``author``,
    ``container-title``, ``type``, ``score``), and announces its limits in the
    ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Interval`` and ``X-Concurrency-Limit``
    headers, as Crossref does. It enforces them too: a client that sends more
    than ``limit`` requests of one pool in any ``interval`` seconds, or more than
    ``concurrency`` at once, gets 429 with ``Retry-After``. ``latency`` adds a
    delay to every answer (Crossref's is ~150 ms to seconds).

    Search relevance is approximated with rapidfuzz over title, authors,
    container and year; like Crossref, it always returns its best candidates,
    right or wrong: telling them apart is the client's job.
    """

    def __init__(self, records: list[dict], search_limit: int = 3, lookup_limit: int = 10, interval: float = 1.0,
                 concurrency: int = 3, latency: float = 0.0, enforce: bool = True) -> None:
        super().__init__()
        self.records = {r["DOI"].lower(): r for r in records}
        self.limits = {"search": search_limit, "lookup": lookup_limit}
        self.interval = interval
        self.concurrency = concurrency
        self.latency = latency
        self.enforce = enforce
        self._recent: dict[str, deque] = {"search": deque(), "lookup": deque()}
        self._in_flight = {"search": 0, "lookup": 0}
        self.max_in_flight = {"search": 0, "lookup": 0}
        self.rejected = 0
        self._index = [(doi, self._haystack(r)) for doi, r in self.records.items()]

    @staticmethod
    def _haystack(r: dict) -> str:
        names = " ".join(a.get("family", "") for a in r.get("author", []))
        year = str(r.get("issued", {}).get("date-parts", [[""]])[0][0])
        return " ".join([" ".join(r.get("title", [])), names, " ".join(r.get("container-title", [])), year]).lower()

    def _headers(self, pool: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-Rate-Limit-Limit": str(self.limits[pool]),
                "X-Rate-Limit-Interval": f"{self.interval:g}s", "X-Concurrency-Limit": str(self.concurrency)}

    def _admit(self, pool: str) -> Reply | None:
        now = time.monotonic()
        with self._lock:
            recent = self._recent[pool]
            while recent and recent[0] <= now - self.interval:
                recent.popleft()
            over_rate = len(recent) >= self.limits[pool]
            over_concurrency = self._in_flight[pool] >= self.concurrency
            if self.enforce and (over_rate or over_concurrency):
                self.rejected += 1
                body = json.dumps({"status": "error", "message-type": "rate-limit",
                                   "message": "Too many requests"}).encode()
                return Reply(429, body, {**self._headers(pool), "Retry-After": "1"})
            recent.append(now)
            self._in_flight[pool] += 1
            self.max_in_flight[pool] = max(self.max_in_flight[pool], self._in_flight[pool])
        return None

    def handle(self, request: Request) -> Reply:
        path = request.path.rstrip("/")
        if path == "/works":
            pool = "search"
        elif path.startswith("/works/"):
            pool = "lookup"
        else:
            return Reply(404, b"Resource not found.", {"Content-Type": "text/plain"})
        rejected = self._admit(pool)
        if rejected:
            return rejected
        try:
            if self.latency:
                time.sleep(self.latency)
            return self._search(request) if pool == "search" else self._lookup(path[len("/works/"):])
        finally:
            with self._lock:
                self._in_flight[pool] -= 1

    def _lookup(self, doi: str) -> Reply:
        record = self.records.get(unquote(doi).lower())
        if record is None:
            return Reply(404, b"Resource not found.", {**self._headers("lookup"), "Content-Type": "text/plain"})
        body = {"status": "ok", "message-type": "work", "message-version": "1.0.0", "message": record}
        return Reply(200, json.dumps(body).encode(), self._headers("lookup"))

    def _search(self, request: Request) -> Reply:
        from rapidfuzz import fuzz

        query = (request.query.get("query.bibliographic") or request.query.get("query") or [""])[0].lower()
        rows = int((request.query.get("rows") or ["20"])[0])
        select = [f for f in (request.query.get("select") or [""])[0].split(",") if f]
        scored = sorted(((fuzz.token_set_ratio(query, hay), doi) for doi, hay in self._index), reverse=True)
        items = []
        for score, doi in scored[:rows]:
            if score < 30:
                break
            item = dict(self.records[doi])
            item["score"] = round(score / 2.0, 3)  # Crossref's scores are unbounded relevance, ~20-120
            if select:
                item = {k: v for k, v in item.items() if k in select}
            items.append(item)
        body = {"status": "ok", "message-type": "work-list", "message-version": "1.0.0",
                "message": {"facets": {}, "total-results": len(items), "items": items, "items-per-page": rows,
                            "query": {"start-index": 0, "search-terms": None}}}
        return Reply(200, json.dumps(body).encode(), self._headers("search"))


# --------------------------------------------------------------------------
# An OpenAI-compatible chat API: POST /v1/chat/completions
# --------------------------------------------------------------------------

class ChatStandIn(LoopbackServer):
    """Answers ``POST /v1/chat/completions`` in OpenAI's format (what vLLM, Ollama
    and llama.cpp servers speak too). ``responder(messages)`` writes each answer;
    ``script`` (a list) answers the next requests first, in order, before the
    responder takes over. Requests without ``Authorization: Bearer`` get 401.
    """

    def __init__(self, responder: Callable[[list[dict]], str] | None = None, script: list[str] | None = None,
                 latency: float = 0.0) -> None:
        super().__init__()
        self.responder = responder or (lambda messages: "Could you point me to studies on this topic?")
        self.script = deque(script or [])
        self.latency = latency

    def handle(self, request: Request) -> Reply:
        if request.path.rstrip("/") != "/v1/chat/completions" or request.method != "POST":
            return Reply(404, json.dumps({"error": {"message": "not found"}}).encode(), {"Content-Type": "application/json"})
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Reply(401, json.dumps({"error": {"message": "missing API key", "type": "invalid_request_error"}}).encode(),
                         {"Content-Type": "application/json"})
        try:
            payload = json.loads(request.body)
            messages = payload["messages"]
        except (ValueError, KeyError):
            return Reply(400, b'{"error": {"message": "bad request"}}', {"Content-Type": "application/json"})
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            content = self.script.popleft() if self.script else None
        if content is None:
            content = self.responder(messages)
        body = {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": payload.get("model", "stand-in"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in messages),
                      "completion_tokens": len(content.split()), "total_tokens": 0},
        }
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def crossref_record(doi: str, title: str, year: int, authors: list[tuple[str, str]], container: str = "",
                    kind: str = "journal-article") -> dict:
    """A Crossref-shaped work record (the fields stage 06 reads)."""
    record = {"DOI": doi, "title": [title], "type": kind, "issued": {"date-parts": [[year]]},
              "author": [{"given": given, "family": family, "sequence": "first" if i == 0 else "additional"}
                         for i, (family, given) in enumerate(authors)],
              "container-title": [container] if container else [], "publisher": "Sample Publisher",
              "prefix": doi.split("/")[0], "member": "0000"}
    return record


def load_demo_works() -> list[dict]:
    """The Crossref records of the works the demo papers cite (arXiv preprints excluded: Crossref has none)."""
    works = json.loads((CORPUS_DIR / "works.json").read_text(encoding="utf-8"))
    return [crossref_record(w["doi"], w["title"], w["year"], [tuple(a) for a in w["authors"]],
                            w.get("container", ""), w["type"])
            for w in works if not w["doi"].startswith("10.48550/")]


def load_demo_papers() -> list[ArxivPaper]:
    """The embedded sample corpus as arXiv records, with their PDFs."""
    records = json.loads((CORPUS_DIR / "papers.json").read_text(encoding="utf-8"))
    papers = []
    for rec in records:
        pdf_path = CORPUS_DIR / "pdfs" / (rec["arxiv_id"].replace("/", "_") + ".pdf")
        papers.append(
            ArxivPaper(
                arxiv_id=rec["arxiv_id"],
                title=rec["title"],
                authors=rec["authors"],
                summary=rec["abstract"],
                published=rec["published"],
                primary_category=rec["categories"][0],
                categories=rec["categories"],
                pdf=pdf_path.read_bytes(),
            )
        )
    return papers


def serve_forever(factory: Callable[[], LoopbackServer]) -> None:  # pragma: no cover - manual use
    """Run a stand-in in the foreground (``python demo/standins.py arxiv``) for trying stages by hand."""
    server = factory().start()
    print(f"listening on {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    import sys

    kinds = {"arxiv": lambda: ArxivStandIn(load_demo_papers()),
             "crossref": lambda: CrossrefStandIn(load_demo_works())}
    if len(sys.argv) != 2 or sys.argv[1] not in kinds:
        raise SystemExit(f"usage: python demo/standins.py {{{'|'.join(kinds)}}}")
    serve_forever(kinds[sys.argv[1]])
