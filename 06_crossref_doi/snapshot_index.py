"""A local metadata snapshot (Crossref public data file or OpenAlex works) in DuckDB, for stage 06.

The snapshot is gzipped JSON Lines, one work per line: a file, or a folder of them (the way both
are shipped). It is loaded once into a DuckDB file kept beside the answer cache; a later run reuses
it, and an interrupted load resumes where it stopped (progress is committed per batch).

Candidates are found through a blocking key, not a hand-made index: every pair of adjacent content
words of a title ("ship propulsion", "propulsion systems"...) is a key, so a title with a typo or a
dropped subtitle still shares most keys with its record, and a raw reference string (which holds the
title's words in order) shares them too. Keys are stored as 64-bit hashes and works by integer id:
each batch of searches is one hash join over the whole key table, and with integers (and records parsed
only when checked) a batch of 5,000 at 1M works takes 1.0 s instead of 2.8 s (README). DuckDB's full-text extension would do as well but is
downloaded on first use, which an offline machine cannot do. The candidates then face exactly the
same checks as Crossref's search results (stage 06's ``check_candidate``).

``AnswerCache`` keeps the stage's decisions per reference, keyed by the reference's content, the
checks' settings, the snapshot's state and the deciding code, so a rerun skips what it has answered.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import sqlite3
import unicodedata
import zlib
from pathlib import Path
from typing import Iterable, Iterator

from crossref_client import work_problem  # the repository root is on sys.path (stage 06 puts it there)

log = logging.getLogger("pipeline")

STOPWORDS = set("""a an and are as at be by for from has have in into is it its of on or our over that the their
this to towards toward under using via we what when which with without within new based study approach""".split())
SCHEMA = "3"  # integer work ids, hashed keys, one-word keys and each title's key count
OPENALEX_TYPES = {"article": "journal-article", "preprint": "posted-content", "book-chapter": "book-chapter",
                  "book": "book", "dissertation": "dissertation", "report": "report", "standard": "standard",
                  "review": "journal-article", "letter": "journal-article", "editorial": "journal-article",
                  "erratum": "journal-article", "dataset": "dataset", "paratext": "component"}


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


LINE_BREAK_HYPHEN = re.compile(r"(?<=[a-z])- (?=[a-z])")  # GROBID keeps a line break's hyphen: "bio- materials"


def blocking_keys(text: str, unigrams: bool = False) -> list[str]:
    """Adjacent content-word pairs of a title (or of a raw reference). A title of one content word is keyed
    by that word (``1 scurvy``) and one of none by its whole normalised form; a query (``unigrams``) adds
    every content word as such a key too, so that a one-word title printed inside a raw string is found."""
    if unigrams and LINE_BREAK_HYPHEN.search(text or ""):
        # a raw string's "bio- materials" may be one word broken across lines or a hyphenated pair: both
        joined = blocking_keys(LINE_BREAK_HYPHEN.sub("", text), unigrams=True)
        return list(dict.fromkeys(joined + blocking_keys(LINE_BREAK_HYPHEN.sub("-", text), unigrams=True)))
    words = _norm(text).split()
    content = [w for w in words if len(w) > 2 and w not in STOPWORDS and not w.isdigit()]
    if len(content) >= 2:
        keys = [f"{a} {b}" for a, b in zip(content, content[1:])]
    elif content:
        keys = [f"1 {content[0]}"]
    else:
        keys = [" ".join(words)] if words else []
    if unigrams:
        keys += [f"1 {w}" for w in content]
    return list(dict.fromkeys(keys))


def key_hash(key: str) -> int:
    """A blocking key as a signed 64-bit integer (stable across processes and versions, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)


def _abstract_from_inverted_index(index: dict | None) -> str:
    if not isinstance(index, dict):
        return ""
    slots: dict[int, str] = {}
    for word, positions in index.items():
        for pos in positions if isinstance(positions, list) else []:
            if isinstance(pos, int):
                slots[pos] = word
    return " ".join(slots[i] for i in sorted(slots))


def crossref_shaped(work: dict) -> dict | None:
    """A Crossref record from either format (None when it has no DOI or no title)."""
    if not isinstance(work, dict):
        return None
    if "DOI" in work:  # Crossref: already the REST API's shape
        keep = ("DOI", "title", "subtitle", "author", "issued", "published", "published-print", "published-online",
                "created", "type", "container-title", "abstract", "volume", "issue", "page", "publisher")
        record = {k: work[k] for k in keep if k in work}
        record["DOI"] = str(record["DOI"]).lower()
        return record if record.get("title") else None
    doi = str(work.get("doi") or "")
    doi = re.sub(r"^https?://(dx\.)?doi\.org/", "", doi, flags=re.I).lower()
    title = work.get("title") or work.get("display_name")
    if not doi.startswith("10.") or not title:
        return None
    authors = []
    for authorship in work.get("authorships") or []:
        name = ((authorship or {}).get("author") or {}).get("display_name") or (authorship or {}).get(
            "raw_author_name") or ""
        parts = str(name).split()
        if parts:
            authors.append({"family": parts[-1], "given": " ".join(parts[:-1])})
    source = ((work.get("primary_location") or {}).get("source") or {})
    biblio = work.get("biblio") or {}
    pages = "-".join(p for p in (biblio.get("first_page"), biblio.get("last_page")) if p)
    record = {"DOI": doi, "title": [str(title)], "author": authors,
              "issued": {"date-parts": [[work.get("publication_year")]]},
              "type": work.get("type_crossref") or OPENALEX_TYPES.get(str(work.get("type")), "other"),
              "container-title": [source["display_name"]] if source.get("display_name") else []}
    for key, value in (("volume", biblio.get("volume")), ("issue", biblio.get("issue")), ("page", pages),
                       ("abstract", _abstract_from_inverted_index(work.get("abstract_inverted_index")))):
        if value:
            record[key] = str(value)
    return record


def snapshot_files(path: Path) -> list[Path]:
    """The JSONL(.gz) files of a snapshot: the file itself, or every one under the folder, in name order."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and re.search(r"\.(jsonl|json|gz)$", p.name))
    raise SystemExit(f"error: snapshot {path} not found")


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def _year(record: dict) -> int | None:
    for key in ("issued", "published-print", "published-online", "published", "created"):
        parts = (record.get(key) or {}).get("date-parts") or [[None]]
        if parts and parts[0] and parts[0][0]:
            try:
                return int(parts[0][0])
            except (TypeError, ValueError):
                return None
    return None


class SnapshotIndex:
    """The works of a snapshot in DuckDB: ``work(doi)`` and ``search(query, rows)`` as the Crossref
    client offers them, plus ``prefetch`` to answer a whole batch of searches with one query."""

    name = "the snapshot"

    def __init__(self, db_path: Path, memory_limit: str = "1GB", threads: int = 2):
        import duckdb

        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.db_path))
        self._run(f"SET memory_limit = '{memory_limit}'")
        self._run(f"SET threads = {int(threads)}")
        self._run("SET preserve_insertion_order = false")
        tables = {row[0] for row in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        schema = (self.con.execute("SELECT value FROM meta WHERE name = 'schema'").fetchall() or [[None]])[0][0] \
            if "meta" in tables else None
        if "works" in tables and schema != SCHEMA:
            self.con.close()
            raise SystemExit(f"error: {self.db_path} was built by an older version of stage 06; delete it to load "
                             "the snapshot afresh")
        self._run("CREATE TABLE IF NOT EXISTS meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        self._run("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", [SCHEMA])
        self._run("CREATE TABLE IF NOT EXISTS works (id INTEGER, doi VARCHAR, year INTEGER, record VARCHAR)")
        self._run("CREATE TABLE IF NOT EXISTS keys (key BIGINT, id INTEGER, year SMALLINT, n SMALLINT)")
        self._run("CREATE TABLE IF NOT EXISTS loaded (file VARCHAR PRIMARY KEY, size BIGINT, "
                         "lines BIGINT, complete BOOLEAN)")
        self._found: dict[str, list[tuple[str, int]]] = {}
        self._records: dict[str, dict | None] = {}
        self.answers: AnswerCache | None = None  # opened by the stage once the snapshot is loaded
        self.stats = {"loaded_works": 0, "skipped_lines": 0, "truncated_files": 0}

    def _run(self, sql: str, params: list | None = None) -> None:
        """A statement whose result nobody reads (DuckDB wants every result consumed)."""
        self.con.execute(sql, params or []).fetchall()

    # -- loading ------------------------------------------------------------
    def load(self, snapshot: Path, batch: int = 20000, progress: bool = True) -> dict:
        """Load every file not loaded yet, resuming a file at the last committed line."""
        import pandas as pd
        from tqdm import tqdm

        files = snapshot_files(snapshot)
        if not files:
            raise SystemExit(f"error: no .jsonl or .gz files in snapshot {snapshot}")
        for path in files:
            size = path.stat().st_size
            row = self.con.execute("SELECT size, lines, complete FROM loaded WHERE file = ?", [str(path)]).fetchall()
            row = row[0] if row else None
            if row and row[0] != size:
                raise SystemExit(f"error: {path} changed since it was loaded into {self.db_path}; "
                                 "delete that database to load the snapshot afresh")
            if row and row[2]:
                continue
            start = row[1] if row else 0
            if not row:
                self._run("INSERT INTO loaded VALUES (?, ?, 0, false)", [str(path), size])
            works, keys = [], []
            n = start
            next_id = self.con.execute("SELECT coalesce(max(id) + 1, 0) FROM works").fetchall()[0][0]
            bar = tqdm(desc=f"loading {path.name}", unit=" works", initial=start, disable=not progress)

            def commit() -> None:
                self._run("BEGIN TRANSACTION")
                if works:
                    self.con.register("w_batch", pd.DataFrame(works, columns=["id", "doi", "year", "record"]))
                    self._run("INSERT INTO works SELECT id, doi, year, record FROM w_batch")
                    self.con.unregister("w_batch")
                if keys:
                    self.con.register("k_batch", pd.DataFrame(keys, columns=["key", "id", "year", "n"]))
                    self._run("INSERT INTO keys SELECT key, id, year, n FROM k_batch")
                    self.con.unregister("k_batch")
                self._run("UPDATE loaded SET lines = ? WHERE file = ?", [n, str(path)])
                self._run("COMMIT")
                bar.update(len(works))
                self.stats["loaded_works"] += len(works)
                works.clear()
                keys.clear()

            complete = True
            try:
                for i, line in enumerate(_lines(path)):
                    if i < start:
                        continue
                    n = i + 1
                    try:
                        record = crossref_shaped(json.loads(line))
                    except (ValueError, TypeError, AttributeError):
                        record = None
                    if record is None or work_problem(record):  # the API path's shape check, here too
                        self.stats["skipped_lines"] += 1
                    else:
                        doi, year = record["DOI"], _year(record)
                        title = (record.get("title") or [""])[0]
                        works.append((next_id, doi, year, json.dumps(record, ensure_ascii=False)))
                        own = blocking_keys(title)
                        keys.extend((key_hash(k), next_id, year, len(own)) for k in own)
                        next_id += 1
                    if n % batch == 0:
                        commit()
            except (EOFError, zlib.error, OSError) as exc:
                complete = False
                self.stats["truncated_files"] += 1
                log.warning("snapshot file %s is damaged after line %d (%s): the works before it are loaded, "
                            "the rest of this file is not", path, n, exc)
            commit()
            bar.close()
            if complete:
                self._run("UPDATE loaded SET complete = true WHERE file = ?", [str(path)])
        self.works = self.con.execute("SELECT count(*) FROM works").fetchall()[0][0]
        return self.stats

    # -- lookups ------------------------------------------------------------
    def prefetch(self, queries: Iterable[tuple], rows: int) -> None:
        """Answer a batch of searches in one DuckDB query: (the query ``search`` will be asked, the text
        to key it by (the title, or the raw reference), the year or None[, whether the text is a raw string
        whose one-word title must be found too: default True]). The records are kept as JSON text until
        ``search`` asks for them (a batch of parsed records would dominate memory)."""
        import pandas as pd

        queries = [q for q in dict.fromkeys(queries) if q[0] not in self._found]
        if not queries:
            return
        pairs = [(i, key_hash(key), q[2]) for i, q in enumerate(queries)
                 for key in blocking_keys(q[1], unigrams=q[3] if len(q) > 3 else True)]
        found: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(queries))}
        if pairs:
            self.con.register("q_batch", pd.DataFrame(pairs, columns=["qid", "key", "year"]))
            # a work all of whose title keys the query holds comes first (a one-word title inside a raw string
            # shares one key, as does any long title it happens to touch), then the most keys shared, the year
            result = self.con.execute("""
                WITH hits AS (
                    SELECT q.qid, k.id, count(*) AS shared, count(*) >= min(k.n) AS whole,
                           min(CASE WHEN q.year IS NULL OR k.year IS NULL THEN 1 ELSE abs(q.year - k.year) END) AS gap
                    FROM q_batch q JOIN keys k ON k.key = q.key
                    GROUP BY q.qid, k.id
                    QUALIFY row_number() OVER (PARTITION BY q.qid ORDER BY count(*) >= min(k.n) DESC, count(*) DESC,
                        min(CASE WHEN q.year IS NULL OR k.year IS NULL THEN 1 ELSE abs(q.year - k.year) END), k.id) <= ?)
                SELECT h.qid, w.record, h.shared FROM hits h JOIN works w ON w.id = h.id
                ORDER BY h.qid, h.whole DESC, h.shared DESC, h.gap, h.id""", [rows]).fetchall()
            self.con.unregister("q_batch")
            for qid, record, shared in result:
                found[qid].append((record, shared))
        for i, q in enumerate(queries):
            self._found[q[0]] = found[i]

    def prefetch_works(self, dois: Iterable[str]) -> None:
        """Read the records of a batch of DOIs (printed ones, hand-fixed ones) in one query."""
        import pandas as pd

        dois = [d.lower() for d in dict.fromkeys(dois) if d and d.lower() not in self._records]
        if not dois:
            return
        self.con.register("d_batch", pd.DataFrame({"doi": dois}))
        rows = self.con.execute("SELECT w.doi, any_value(w.record) FROM works w JOIN d_batch d ON d.doi = w.doi "
                                "GROUP BY w.doi").fetchall()
        self.con.unregister("d_batch")
        self._records.update({d: None for d in dois})
        self._records.update({doi: json.loads(record) for doi, record in rows})

    def forget(self) -> None:
        """Drop prefetched answers (after each batch: memory stays flat)."""
        self._found.clear()
        self._records.clear()

    def search(self, query: str, rows: int = 5, select: str = "") -> list[dict]:
        if query not in self._found:
            self.prefetch([(query, query, None)], rows)
        items = []
        for record, shared in self._found[query][:rows]:
            item = json.loads(record)
            item["score"] = float(shared)
            items.append(item)
        return items

    def fingerprint(self) -> str:
        """What the snapshot holds: its files as loaded (name, size, lines, complete) and its work count."""
        rows = self.con.execute("SELECT file, size, lines, complete FROM loaded ORDER BY file").fetchall()
        works = self.con.execute("SELECT count(*) FROM works").fetchall()[0][0]
        return json.dumps([SCHEMA, works, [[Path(f).name, *rest] for f, *rest in rows]])

    def work(self, doi: str) -> dict | None:
        doi = doi.lower()
        if doi not in self._records:
            self.prefetch_works([doi])
        return self._records[doi]

    lookup = work

    def close(self) -> None:
        if self.answers is not None:
            self.answers.close()
        self.con.close()


class AnswerCache:
    """The stage's answer per reference (SQLite beside the snapshot database), keyed by content: the
    reference's fields, the checks' settings, the snapshot's state and the code that decides, so a
    rerun skips every reference it has answered and anything that could change an answer asks again."""

    def __init__(self, path: Path, context: object):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, result TEXT) WITHOUT ROWID")
        self.context = json.dumps(context, sort_keys=True, default=str)
        self.hits = 0  # references answered from here in this run

    def key(self, ref: dict) -> str:
        fields = [ref.get(k, "") for k in ("title", "raw", "year", "authors", "venue", "doi", "arxiv_id")]
        return hashlib.blake2b(json.dumps([self.context, fields]).encode(), digest_size=16).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """The answers held for these keys (999 at a time: SQLite's limit on parameters)."""
        found: dict[str, dict] = {}
        for i in range(0, len(keys), 900):
            part = keys[i:i + 900]
            marks = ",".join("?" * len(part))
            for key, result in self.db.execute(f"SELECT key, result FROM answers WHERE key IN ({marks})", part):
                found[key] = json.loads(result)
        return found

    def put_many(self, answers: list[tuple[str, dict]]) -> None:
        """Store a batch in one transaction (an interrupted run keeps every batch it finished)."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?)",
                                [(key, json.dumps(result, ensure_ascii=False)) for key, result in answers])

    def close(self) -> None:
        self.db.close()
