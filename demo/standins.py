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
            # without TCP_NODELAY each reply waits on the client's delayed ACK (~40 ms a request)
            disable_nagle_algorithm = True

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
    categories: list[str] = field(default_factory=list)
    journal_ref: str = ""
    doi: str = ""
    pdf: bytes = b""
    eprint: bytes = b""  # what /e-print/<id> serves: a .tar.gz, a gzipped .tex or a PDF; empty: 404
    license: str = ""  # the licence URI arXiv's OAI-PMH record states (the Atom API omits it)

    def __post_init__(self) -> None:
        if not self.categories:
            self.categories = [self.primary_category]


def eprint_tar_gz(files: dict[str, bytes | str]) -> bytes:
    """An e-print as arXiv serves a multi-file submission: a gzipped tar (fixed times: same bytes every build)."""
    import gzip
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def eprint_gz(tex: bytes | str) -> bytes:
    """An e-print as arXiv serves a single-file submission: the .tex, gzipped, no tar."""
    import gzip

    return gzip.compress(tex.encode("utf-8") if isinstance(tex, str) else tex, mtime=0)


def split_bibliography(tex: str, name: str = "main") -> dict[str, str]:
    """A one-file LaTeX paper as most arXiv tars hold it: ``<name>.tex`` calling ``\\bibliography``,
    and the ``thebibliography`` it used to contain as ``<name>.bbl`` (what BibTeX would have written)."""
    import re

    match = re.search(r"\\begin\{thebibliography\}.*?\\end\{thebibliography\}\n?", tex, re.S)
    if not match:
        return {f"{name}.tex": tex}
    main_tex = tex[: match.start()] + "\\bibliographystyle{plainnat}\n\\bibliography{references}\n" + tex[match.end():]
    return {f"{name}.tex": main_tex, f"{name}.bbl": match.group(0)}


class ArxivStandIn(LoopbackServer):
    """Answers ``GET /api/query`` in arXiv's Atom format (paging with start and
    max_results, opensearch:totalResults), ``GET /pdf/<id>`` with the PDF,
    ``GET /e-print/<id>`` with the e-print (gzipped tar, gzipped .tex, or the PDF
    when the authors gave no source) and ``GET /oai2?verb=GetRecord`` with the
    record in arXiv's OAI-PMH format (the only place arXiv states the licence).

    The query is matched loosely: every paper whose title, summary or categories
    contain any word of the query that follows a field prefix (``all:``,
    ``ti:``, ``abs:``, ``cat:``) is a hit; enough for a stand-in.

    Feed faults, beyond the base class's ``fail_next``: ``fail_feed_next("drop_entry")``
    answers the next query page with its last entry left out while
    ``opensearch:totalResults`` still counts it; ``"cut_entry"`` cuts the page's XML in
    the middle of its last entry (after the authors, before its links and categories),
    as a dropped connection does.
    """

    def __init__(self, papers: list[ArxivPaper], match_query: bool = False) -> None:
        super().__init__()
        self.papers = list(papers)
        self.match_query = match_query
        self._feed_faults: deque = deque()

    def fail_feed_next(self, *faults: str) -> None:
        """Queue feed faults (``"drop_entry"``, ``"cut_entry"``) for the next query pages."""
        with self._lock:
            self._feed_faults.extend(faults)

    def _matches(self, paper: ArxivPaper, query: str) -> bool:
        if not self.match_query:
            return True
        import re

        words = [w.lower() for w in re.findall(r"(?:all|ti|abs|cat):([\w.\-]+)", query)]
        haystack = " ".join([paper.title, paper.summary, *paper.categories]).lower()
        return not words or any(w in haystack for w in words)

    def _paper(self, arxiv_id: str) -> ArxivPaper | None:
        return next((p for p in self.papers if p.arxiv_id == arxiv_id), None)

    def handle(self, request: Request) -> Reply:
        if request.path.rstrip("/").endswith("/api/query"):
            return self._query(request)
        if request.path.rstrip("/") == "/oai2":
            return self._oai(request)
        for prefix, kind in (("/pdf/", "pdf"), ("/e-print/", "eprint")):
            if request.path.startswith(prefix):
                paper = self._paper(request.path[len(prefix):])
                body = getattr(paper, kind) if paper else b""
                if not body:
                    return Reply(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
                if body.startswith(b"%PDF-"):
                    return Reply(200, body, {"Content-Type": "application/pdf"})
                name = paper.arxiv_id.replace("/", "_") + (".tar.gz" if _is_tar_gz(body) else ".gz")
                return Reply(200, body, {"Content-Type": "application/gzip",
                                         "Content-Disposition": f'attachment; filename="{name}"'})
        return Reply(404, b"not found")

    def _query(self, request: Request) -> Reply:
        query = (request.query.get("search_query") or [""])[0]
        start = int((request.query.get("start") or ["0"])[0])
        size = int((request.query.get("max_results") or ["10"])[0])
        if size > 2000:
            return Reply(400, b"max_results must not exceed 2000")
        with self._lock:
            fault = self._feed_faults.popleft() if self._feed_faults else None
        hits = [p for p in self.papers if self._matches(p, query)]
        page = hits[start:start + size]
        if fault == "drop_entry":
            page = page[:-1]
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
        if fault == "cut_entry" and entries:
            feed = feed[: feed.index("<link ", feed.rfind("<entry>"))]
        return Reply(200, feed.encode("utf-8"), {"Content-Type": "application/atom+xml; charset=utf-8"})

    def _oai(self, request: Request) -> Reply:
        """``GetRecord`` in the ``arXiv`` metadata format: id, title, licence (the fields stage 01 reads)."""
        verb = (request.query.get("verb") or [""])[0]
        identifier = (request.query.get("identifier") or [""])[0]
        wanted = identifier.removeprefix("oai:arXiv.org:")
        paper = next((p for p in self.papers if p.arxiv_id.rsplit("v", 1)[0] == wanted), None)
        head = ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
                f'<responseDate>2025-01-01T00:00:00Z</responseDate>'
                f'<request verb="{escape(verb)}" identifier="{escape(identifier)}" metadataPrefix="arXiv">'
                f"{self.url}/oai2</request>")
        if verb != "GetRecord" or paper is None:
            code = "badVerb" if verb != "GetRecord" else "idDoesNotExist"
            body = f'{head}<error code="{code}">{escape(identifier)}</error></OAI-PMH>'
        else:
            license_xml = f"<license>{escape(paper.license)}</license>" if paper.license else ""
            body = (f"{head}<GetRecord><record><header><identifier>{escape(identifier)}</identifier>"
                    f"<datestamp>{paper.published[:10]}</datestamp></header><metadata>"
                    '<arXiv xmlns="http://arxiv.org/OAI/arXiv/">'
                    f"<id>{escape(wanted)}</id><title>{escape(paper.title)}</title>"
                    f"<categories>{escape(' '.join(paper.categories))}</categories>{license_xml}"
                    f"<abstract>{escape(paper.summary)}</abstract></arXiv></metadata></record></GetRecord></OAI-PMH>")
        return Reply(200, body.encode("utf-8"), {"Content-Type": "text/xml; charset=utf-8"})


def _is_tar_gz(data: bytes) -> bool:
    import gzip

    try:
        return gzip.decompress(data)[257:262] == b"ustar"
    except (OSError, EOFError):
        return False


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
    container, year, volume and first page (a raw reference string prints them
    all); like Crossref, it always returns its best candidates, right or wrong:
    telling them apart is the client's job. ``from_snapshot(path)`` serves the
    works of a Crossref-format snapshot (gzipped JSON Lines, one work a line).
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
        self._dois = list(self.records)
        self._haystacks = [self._haystack(r) for r in self.records.values()]

    @classmethod
    def from_snapshot(cls, path: Path, **kwargs) -> "CrossrefStandIn":
        """A stand-in holding every work of a Crossref-format snapshot file (``.jsonl`` or ``.jsonl.gz``)."""
        import gzip

        opener = gzip.open if str(path).endswith(".gz") else open
        records = []
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a damaged line: Crossref would not hold it either
                if isinstance(record, dict) and record.get("DOI") and isinstance(record.get("title"), list):
                    records.append(record)
        return cls(records, **kwargs)

    @staticmethod
    def _haystack(r: dict) -> str:
        names = " ".join(a.get("family", "") for a in r.get("author", []))
        year = str(r.get("issued", {}).get("date-parts", [[""]])[0][0])
        numbers = [str(r.get("volume") or ""), str(r.get("page") or "").split("-")[0]]
        return " ".join([" ".join(r.get("title", [])), names, " ".join(r.get("container-title", [])), year,
                         *numbers]).lower()

    # Scripted faults of a misbehaving Crossref (queue them with ``fail_next("/works", ...)``).
    WRONG_SHAPES = {
        "oops": {"message": "internal oops"},                                  # message is a string
        "list": [1, 2, 3],                                                      # not an object at all
        "null_items": {"status": "ok", "message-type": "work-list", "message": {"items": [None]}},
        "title_not_list": {"status": "ok", "message-type": "work", "message": {"DOI": "10.5555/x", "title": 7}},
    }

    @classmethod
    def wrong_shape(cls, kind: str) -> Reply:
        """A 200 whose JSON is not what Crossref sends (``kind`` in ``WRONG_SHAPES``)."""
        return Reply(200, json.dumps(cls.WRONG_SHAPES[kind]).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def retry_after(seconds: float, status: int = 429) -> Reply:
        """A 429 (or 503) asking the client to wait ``seconds`` before the next request."""
        return Reply(status, b'{"status": "error", "message": "Too many requests"}',
                     {"Content-Type": "application/json", "Retry-After": f"{seconds:g}"})

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
        from rapidfuzz import fuzz, process

        query = (request.query.get("query.bibliographic") or request.query.get("query") or [""])[0].lower()
        rows = int((request.query.get("rows") or ["20"])[0])
        select = [f for f in (request.query.get("select") or [""])[0].split(",") if f]
        # rapidfuzz's own loop (C): a stand-in serving a real snapshot's 10,000s of works answers in milliseconds
        found = process.extract(query, self._haystacks, scorer=fuzz.token_set_ratio, limit=None, score_cutoff=30)
        scored = sorted(((score, self._dois[i]) for _, score, i in found), reverse=True)
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

    Faults of a chat server, beyond the base class's ``fail_next``: ``fault_for(messages)``
    picks a fault per request from its content (so one sentence can fail every time while
    the others succeed, whatever the order of concurrent requests), and ``malformed_next``
    queues replies of the wrong shape for the next requests. A fault is an HTTP status
    (int), ``"empty_choices"`` (200 with ``choices: []``), ``"html"`` (200 with an HTML
    page), ``"no_message"`` (200 with a choice without ``message``) or a ``Reply``.
    """

    def __init__(self, responder: Callable[[list[dict]], str] | None = None, script: list[str] | None = None,
                 latency: float = 0.0, fault_for: Callable[[list[dict]], Any] | None = None) -> None:
        super().__init__()
        self.responder = responder or (lambda messages: "Could you point me to studies on this topic?")
        self.script = deque(script or [])
        self.latency = latency
        self.fault_for = fault_for
        self._malformed: deque = deque()

    def malformed_next(self, *faults: Any) -> None:
        """Answer the next chat requests with these faults (see the class docstring), in order."""
        with self._lock:
            self._malformed.extend(faults)

    @staticmethod
    def _fault_reply(fault: Any) -> Reply:
        if isinstance(fault, Reply):
            return fault
        if isinstance(fault, int):
            return Reply(fault, json.dumps({"error": {"message": f"stand-in error {fault}"}}).encode(),
                         {"Content-Type": "application/json"})
        if fault == "html":
            return Reply(200, b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
                         {"Content-Type": "text/html"})
        choices = [] if fault == "empty_choices" else [{"index": 0, "finish_reason": "stop"}]
        body = {"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()), "model": "stand-in",
                "choices": choices}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

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
            fault = self._malformed.popleft() if self._malformed else None
        if fault is None and self.fault_for is not None:
            fault = self.fault_for(messages)
        if fault is not None:
            return self._fault_reply(fault)
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
    records = []
    for i, w in enumerate(w for w in works if not w["doi"].startswith("10.48550/")):
        record = crossref_record(w["doi"], w["title"], w["year"], [tuple(a) for a in w["authors"]],
                                 w.get("container", ""), w["type"])
        # Crossref holds abstracts (JATS) for some works only; the stand-in gives every other
        # journal article one, written from its title, so the catalogue's abstract column is exercised
        if w.get("abstract") or (w["type"] == "journal-article" and i % 2 == 0):
            text = w.get("abstract") or f"We study {w['title'][0].lower()}{w['title'][1:]} (stand-in abstract)."
            record["abstract"] = f"<jats:title>Abstract</jats:title><jats:p>{text}</jats:p>"
        records.append(record)
    return records


def load_demo_papers() -> list[ArxivPaper]:
    """The embedded sample corpus as arXiv records, with their PDFs and their e-prints: each
    paper's LaTeX (``build_corpus.render_tex``, the document its PDF was compiled from) served
    in the shape ``papers.json`` names: ``"tar"`` (a gzipped tar of the .tex and its .bbl),
    ``"tex"`` (one gzipped .tex) or ``"pdf"`` (no source: the e-print is the PDF)."""
    try:
        from demo.build_corpus import render_tex
    except ImportError:  # run as a script: python demo/standins.py
        from build_corpus import render_tex

    records = json.loads((CORPUS_DIR / "papers.json").read_text(encoding="utf-8"))
    works = {w["key"]: w for w in json.loads((CORPUS_DIR / "works.json").read_text(encoding="utf-8"))}
    papers = []
    for rec in records:
        paper_id = rec["arxiv_id"].replace("/", "_")
        pdf = (CORPUS_DIR / "pdfs" / f"{paper_id}.pdf").read_bytes()
        tex = render_tex(rec, (CORPUS_DIR / "src" / f"{paper_id}.tex").read_text(encoding="utf-8"), works)
        shape = rec.get("eprint", "tar")
        if shape == "tar":
            eprint = eprint_tar_gz(split_bibliography(tex))
        elif shape == "tex":
            eprint = eprint_gz(tex)
        elif shape == "pdf":
            eprint = pdf
        else:
            raise ValueError(f"{paper_id}: unknown e-print shape {shape!r} in papers.json (tar, tex or pdf)")
        papers.append(
            ArxivPaper(
                arxiv_id=rec["arxiv_id"],
                title=rec["title"],
                authors=rec["authors"],
                summary=rec["abstract"],
                published=rec["published"],
                primary_category=rec["categories"][0],
                categories=rec["categories"],
                pdf=pdf,
                eprint=eprint,
                license=rec.get("license", ""),
            )
        )
    return papers


def serve_forever(factory: Callable[[], LoopbackServer],
                  hints: Callable[[str], list[str]] | None = None) -> None:  # pragma: no cover - manual use
    """Run a stand-in in the foreground (``python demo/standins.py arxiv``) for trying stages by hand;
    ``hints(url)`` gives the lines saying which flag of which stage to point at it."""
    server = factory().start()
    print(f"listening on {server.url}  (Ctrl-C to stop)", flush=True)
    for line in (hints(server.url) if hints else []):
        print(f"  {line}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


def demo_chat_responder(messages: list[dict]) -> str:  # pragma: no cover - manual use
    """A request from the last sentence of the prompt, for running stage 07 by hand without a model."""
    import re

    sentence = str(messages[-1].get("content", "")).rsplit("Sentence:", 1)[-1].strip()
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]+", sentence) if len(w) > 3][:6]
    return f"Could you point me to studies on {' '.join(words).lower() or 'this topic'}?"


# What each stage's command line needs to talk to the stand-in at ``url``.
STAGE_URLS = {
    "arxiv": lambda url: [f"stage 01: --base-url {url}/api/query"],
    "crossref": lambda url: [f"stage 06: --base-url {url}", f"stage 09: --base-url {url}"],
    "chat": lambda url: [f"stage 07: --backend openai --base-url {url}/v1 --model stand-in "
                         "(any OPENAI_API_KEY, e.g. OPENAI_API_KEY=x)"],
}


if __name__ == "__main__":  # pragma: no cover
    import sys

    kinds = {"arxiv": lambda: ArxivStandIn(load_demo_papers()),
             "crossref": lambda: CrossrefStandIn(load_demo_works()),
             "chat": lambda: ChatStandIn(demo_chat_responder)}
    if len(sys.argv) != 2 or sys.argv[1] not in kinds:
        raise SystemExit(f"usage: python demo/standins.py {{{'|'.join(kinds)}}}")
    serve_forever(kinds[sys.argv[1]], STAGE_URLS[sys.argv[1]])
