"""Stage 06: an exact DOI for every distinct reference, from Crossref, validated, never guessed.

    CROSSREF_MAILTO=you@example.org python 06_crossref_doi/crossref_doi.py
    python 06_crossref_doi/crossref_doi.py --refresh            # ignore the response cache

Resolution, in order: (0) a hand fix in doi_overrides.csv (ref_uid -> DOI or
"none"); (1) a DOI printed in the reference, confirmed against Crossref's record
of it; (2) an arXiv id -> the arXiv DataCite DOI 10.48550/arXiv.<id>; (3) a
Crossref bibliographic search whose candidates must pass every check (title
similarity, year within one, first author, type). A wrong DOI is far worse than
a missing one, so anything doubtful is left without DOI, says why, and is listed
in review.csv with its best candidates.

The Crossref client (pacing to the X-Rate-Limit-* headers, retries, Retry-After
cap, answer checks, SQLite cache) is ../crossref_client.py. References stream
through a bounded window, so memory stays flat however long the list is.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import html
import json
import os
import re
import shutil
import sqlite3
import sys
import time
import unicodedata
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rapidfuzz import fuzz, process  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402
from crossref_client import SELECT, CrossrefClient, CrossrefStop, RequestFailed  # noqa: E402,F401 (SELECT re-exported)
from snapshot_index import AnswerCache, SnapshotIndex  # noqa: E402

HERE = Path(__file__).resolve().parent
USER_AGENT = "doi-citation-pipeline/1.0 (stage 06; https://github.com/; research use)"


@dataclass
class Config:
    """Resolve every distinct reference of stage 05 to a validated DOI."""

    input_dir: Path = HERE.parent / "05_merge_clean" / "output"
    """Stage 05's output (references.csv, sentences.csv)."""
    output_dir: Path = HERE / "output"
    """Where references.csv, sentences.csv, catalogue.csv, review.csv, the exports and match_report.json go."""
    overrides_path: Path = HERE / "doi_overrides.csv"
    """Hand fixes (ref_uid, doi, note): a DOI, or 'none' for no DOI; applied before any lookup. Absent: none."""
    backend: Literal["api", "snapshot", "snapshot+api"] = "api"
    """api: Crossref's REST API; snapshot: a local metadata snapshot only; snapshot+api: the snapshot, then the API."""
    snapshot: Path | None = None
    """Crossref public data file or OpenAlex works snapshot: gzipped JSON Lines, a file or a folder of them."""
    snapshot_db: Path | None = None
    """DuckDB file the snapshot is loaded into once and reused (default: snapshot.duckdb beside --cache-path)."""
    snapshot_candidates: int = 10
    """Candidates taken from the snapshot per reference (each then faces every check)."""
    snapshot_batch: int = 5000
    """References whose snapshot candidates are fetched in one DuckDB query."""
    snapshot_memory: str = "512MB"
    """DuckDB's memory limit."""
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
    alive_timeout: float = 10.0
    """Seconds the one up-front check that Crossref answers may take."""
    retries: int = 4
    """Retries per request after 429, 5xx, a malformed answer or a timeout (exponential back-off)."""
    backoff_seconds: float = 1.0
    """First back-off; doubles on each retry."""
    max_retry_after: float = 300.0
    """Longest Retry-After (seconds) obeyed; Crossref asking for more stops the stage (answers so far are cached)."""
    max_error_rate: float = 0.10
    """Stop when more than this share of the last --error-window references end in error (after the first 20)."""
    error_window: int = 200
    """How many of the most recent references the error-rate stop looks at."""
    cache_path: Path = HERE / "crossref_cache.sqlite"
    """SQLite cache of Crossref's answers, keyed by base URL and request (outside output/, so it survives a clean)."""
    refresh: bool = False
    """Ignore cached answers (new answers are still cached)."""
    force: bool = False
    """Alias of --refresh (the name every stage shares)."""
    verbose: bool = False
    """Debug logging."""

    def backend_name(self) -> str:
        return "the snapshot" if self.backend == "snapshot" else "Crossref"


# Crossref types a cited work can be. Journals, issues, series, components, grants,
# peer reviews and datasets are not what a reference list cites as a work.
ACCEPTED_TYPES = {"journal-article", "proceedings-article", "book", "book-chapter", "book-part", "book-section",
                  "monograph", "edited-book", "reference-book", "report", "report-component", "posted-content",
                  "dissertation", "reference-entry", "standard", "other", "book-track"}
CORRECTION = re.compile(r"^\s*(erratum|errata|corrigendum|correction|retraction|retracted|addendum|reply to|"
                        r"in reply|response to|comment on)\b", re.I)
DOI_SHAPE = re.compile(r"^10\.\d{4,9}/\S+$")
# the columns a person checks first, long text last (people open references.csv in a spreadsheet)
REF_FIRST = ["ref_uid", "match_status", "doi", "doi_source", "note", "title", "authors", "year", "venue",
             "matched_title", "matched_year", "title_similarity", "match_score", "printed_doi", "arxiv_id"]
RESULT_KEYS = ["printed_doi", "doi", "doi_source", "match_score", "title_similarity", "matched_title",
               "matched_year", "match_status", "note"]
REVIEW_COLUMNS = ["ref_uid", "match_status", "note", "candidate_1_doi", "candidate_1_title", "candidate_1_year",
                  "candidate_1_why", "candidate_2_doi", "candidate_2_title", "candidate_2_year", "candidate_2_why",
                  "title", "authors", "year", "venue", "raw"]
CATALOGUE_COLUMNS = ["doi", "title", "authors", "year", "venue", "abstract", "cited_by_papers"]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 16)  # a title is normalised for every candidate it meets
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


# A year printed in a reference: not part of a page range ("1989-1995") or a volume:page ("13:1998")
YEAR_TOKEN = re.compile(r"(?<![\d:\-\u2013/.])(1[89]\d\d|20[0-3]\d)(?:[a-z])?(?![\d\-\u2013])")
# where a field of a printed reference ends: sentence punctuation, or a year in parentheses
FIELD_BREAK = re.compile(r"(?<=[.?!:;])\s+|\s*\((?:1[89]|20)\d\d[a-z]?\)[.,:;]?\s*")
JOURNAL_STOPWORDS = {"of", "the", "and", "in", "for", "on", "de", "la", "et", "und", "der"}


class RawFields:
    """What a raw reference string prints, found without a parser, each part worked out on first use (most
    candidates need only some): its normalised text, with GROBID's line-break hyphens ('car- otid') joined
    (``text``) or kept as hyphens (``hyphenated``); its fields (the text between sentence punctuation or a
    parenthesised year, normalised, and each two adjacent ones: a title and its subtitle); its years; its numbers."""

    def __init__(self, raw: str):
        self.raw = raw or ""

    @functools.cached_property
    def joined(self) -> str:
        return re.sub(r"(?<=[a-z])- (?=[a-z])", "", self.raw)

    @functools.cached_property
    def text(self) -> str:
        return norm(self.joined)

    @functools.cached_property
    def hyphenated(self) -> str:
        return norm(re.sub(r"(?<=[a-z])- (?=[a-z])", "-", self.raw))

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        fields = [f for f in (norm(part) for part in FIELD_BREAK.split(self.joined) if part) if f]
        return tuple(fields + [f"{a} {b}" for a, b in zip(fields, fields[1:])])

    @functools.cached_property
    def years(self) -> tuple[int, ...]:
        return tuple(int(y) for y in YEAR_TOKEN.findall(self.raw))

    @functools.cached_property
    def numbers(self) -> frozenset:
        return frozenset(n.lstrip("0") or "0" for n in re.findall(r"\d+", self.raw))


@functools.lru_cache(maxsize=1 << 12)  # every candidate of a reference reads the same raw string
def raw_fields(raw: str) -> RawFields:
    """The printed fields of a raw reference."""
    return RawFields(raw)


@functools.lru_cache(maxsize=1 << 14)
def journal_pattern(container: str) -> re.Pattern | None:
    """A journal's name, written out or abbreviated word by word ("American Journal of Cardiology" /
    "Am J Cardiol"), as a pattern over normalised text; None when the name has no word to match."""
    words = [w for w in norm(container).split() if w not in JOURNAL_STOPWORDS]
    if not words:
        return None
    if len(words) == 1:  # "Nature", "Lancet": the word itself
        return re.compile(rf"\b{re.escape(words[0])}\b")
    parts = ["(?:" + "|".join(re.escape(w[:k]) for k in range(len(w), 0, -1)) + ")" for w in words]
    return re.compile(r"\b" + r"\s+(?:(?:of|the|and|in|for|on)\s+)?".join(parts) + r"\b")


def first_page(item: dict) -> str:
    """The first page (or article number) of a record, digits only: '3923-3931' -> '3923', 'e1234' -> '1234'."""
    match = re.search(r"\d+", str(item.get("page") or "").split("-")[0])
    return match.group().lstrip("0") if match else ""


def author_zone(info: RawFields, item: dict) -> str:
    """The normalised text printed before the candidate's title (where the authors are), or '' when the
    title opens the reference (GROBID sometimes loses the authors) or the title cannot be found in it."""
    title = norm((item.get("title") or [""])[0])
    if not title:
        return ""
    where = fuzz.partial_ratio_alignment(title, info.text)
    zone = info.text[:where.dest_start] if where is not None else ""
    zone = re.sub(r"\b(?:1[89]|20)\d\d[a-z]?\b", " ", zone)  # "2009b. A safe operating space ...": no author
    return zone if re.search(r"[a-z]{2}", zone) else ""


def printed_agreement(info: RawFields, item: dict, author: bool = True) -> dict[str, bool | None]:
    """Per field, whether the candidate's volume, first page, journal and first author (``author``: looked
    for) are printed in the raw reference (True), absent from it (False), or unknown (None: the record
    lacks the field, or it was not looked for)."""
    volume = re.sub(r"\D", "", str(item.get("volume") or "")).lstrip("0")
    page = first_page(item)
    container = ((item.get("container-title") or [""]) or [""])[0]
    pattern = journal_pattern(container) if container else None
    family = norm(next((a.get("family") or a.get("name") or "" for a in (item.get("author") or [])), ""))
    family = family.replace(" ", "")
    zone = author_zone(info, item) if author and len(family) >= 3 else ""
    author = None
    if zone:
        # spaces out: GROBID splits accented names ("Płaz´nik", "Kamin´ski") into pieces
        author = fuzz.partial_ratio(family, zone.replace(" ", "")) >= 85
    return {"volume": (volume in info.numbers) if volume else None,
            "page": (page in info.numbers) if page else None,
            "journal": bool(pattern.search(info.text)) if pattern is not None else None,
            "author": author}


def as_citation(item: dict) -> str:
    """The candidate written out as a reference list prints it: first author, title, journal, year, volume, page."""
    family = next((a.get("family") or a.get("name") or "" for a in (item.get("author") or [])), "")
    container = ((item.get("container-title") or [""]) or [""])[0]
    return norm(" ".join(str(x) for x in (family, title_of(item), container, year_of(item) or "",
                                          item.get("volume") or "", first_page(item)) if x))


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
    info = raw_fields(ref["raw"])
    if len(cand_main.split()) < 3:
        # a short title ("Adult scurvy", "Madarosis") must be a whole printed field: found inside another
        # title ("... of rheumatoid arthritis.") it proves nothing
        return max((fuzz.ratio(cand_main, field) for field in info.fields), default=0.0) / 100.0
    return max(fuzz.partial_ratio(cand_main, info.text), fuzz.partial_ratio(cand_main, info.hyphenated)) / 100.0


def raw_span(raw: str, item: dict) -> str:
    """The part of a raw reference that lines up with the candidate's title (where its title must be)."""
    cand, text = norm((item.get("title") or [""])[0]), norm(raw)
    if not cand or not text:
        return ""
    where = fuzz.partial_ratio_alignment(cand, text)
    start, end = where.dest_start, where.dest_end
    # widen to whole words: the alignment may start or stop inside one
    start = text.rfind(" ", 0, start) + 1
    end = len(text) if text.find(" ", end) < 0 else text.find(" ", end)
    return text[start:end]


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
        # rapidfuzz's own loop (C), not a Python one: this runs for every passing candidate
        return (process.extractOne(word, others, scorer=fuzz.ratio, score_cutoff=75) is not None
                or process.extractOne(word, others, scorer=fuzz.partial_ratio, score_cutoff=90) is not None)

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
    if CORRECTION.match(cand_title) and not CORRECTION.match(ref["title"] or raw_span(ref["raw"], item)):
        return False, sim, "an erratum/correction of the work, not the work"
    if swap := substituted_word(ref["title"] or raw_span(ref["raw"], item), cand_title):
        return False, sim, f"a different word in the title ({swap})"
    score = sim
    info = raw_fields(ref["raw"]) if ref.get("raw") else None
    year = year_of(item)
    ref_years = [int(ref["year"])] if str(ref.get("year", "")).isdigit() else list(info.years if info else ())
    # the first author is looked for in the raw text only when stage 05 parsed no authors (it is checked above)
    agree = printed_agreement(info, item, author=not first_surname(ref)) if info is not None else {}
    if ref_years and year:
        # a record whose volume and first page are both printed in the reference is that publication, whatever
        # its year says (Crossref records carry an online-first year, or a wrong one); a reprint has another volume
        if min(abs(year - y) for y in ref_years) > config.year_tolerance \
                and not (agree.get("volume") and agree.get("page")):
            shown = ref_years[0] if len(ref_years) == 1 else "/".join(map(str, ref_years))
            return False, sim, f"year {year} vs {shown}"
        score += 0.03 if year in ref_years else 0.0
    surname = first_surname(ref)
    families = [norm(a.get("family") or a.get("name") or "") for a in (item.get("author") or [])[:3]]
    families = [f for f in families if f]
    if surname and families:
        best = max(fuzz.ratio(surname, f) / 100.0 for f in families)
        if best < config.author_threshold and not any(surname in f.split() for f in families):
            return False, sim, f"first author {surname} not among {', '.join(families)}"
        score += 0.01
    if info is None:
        return True, score, ""
    # what else the reference prints decides between works of the same title (a reprint, a preprint, a
    # dataset): the volume, the first page, the journal, the first author, the whole citation
    if not ref["title"] and not surname and agree["author"] is False:
        return False, sim, f"first author {families[0] if families else '?'} not in the reference"
    if not ref["title"] and len(norm((item.get("title") or [""])[0]).split()) < 3 \
            and not (agree["volume"] or agree["page"] or (agree["journal"] and agree["author"])):
        return False, sim, "a short title that no printed volume, page, journal or author confirms"
    score += 0.02 * bool(agree["volume"]) + 0.02 * bool(agree["page"]) + 0.01 * bool(agree["journal"])
    score += 0.01 * bool(agree["author"] and not surname)
    if not ref["title"]:  # a parsed reference has its fields compared one by one above
        score += 0.01 * fuzz.token_set_ratio(as_citation(item), info.text) / 100.0
    return True, score, ""


def reference_year(ref: dict) -> int | None:
    """The reference's year: its own column, else the last year its raw text prints (candidates are ranked by it)."""
    if str(ref.get("year", "")).isdigit():
        return int(ref["year"])
    years = raw_fields(ref["raw"]).years if ref.get("raw") else ()
    return years[-1] if years else None


def bibliographic_query(ref: dict) -> str:
    """title, authors' surnames, venue and year (Crossref's query.bibliographic); the raw text without a title."""
    if not ref["title"]:
        return re.sub(r"\s+", " ", ref["raw"])[:500]
    surnames = [a.split(",")[0] for a in pu.split_list(ref.get("authors", ""))[:3]]
    parts = [ref["title"], " ".join(surnames), ref.get("venue", ""), str(ref.get("year", ""))]
    return " ".join(p for p in parts if p)[:500]


def record_of_reference(ref: dict, venue: str = "") -> dict:
    """A work described by the reference itself (an arXiv preprint, a hand-fixed DOI Crossref lacks)."""
    authors = []
    for name in pu.split_list(ref.get("authors", "")):
        family, _, given = name.partition(",") if "," in name else (name.split()[-1], "", " ".join(name.split()[:-1]))
        authors.append({"family": family.strip(), "given": given.strip()})
    year = int(ref["year"]) if str(ref.get("year", "")).isdigit() else None
    return {"title": [ref.get("title") or ""], "author": authors, "issued": {"date-parts": [[year]]},
            "container-title": [venue or ref.get("venue", "")] if (venue or ref.get("venue")) else [],
            "type": "posted-content" if venue == "arXiv" else "other"}


def candidate_summary(item: dict, why: str) -> dict:
    return {"doi": item.get("DOI", ""), "title": title_of(item), "year": year_of(item) or "", "why": why}


def resolve(ref: dict, client: CrossrefClient, config: Config, override: dict | None = None) -> dict:
    """The DOI of one reference, with where it came from and why; never raises RequestFailed.
    ``_record`` holds the matched work's metadata (for the catalogue and the exports) and
    ``_candidates`` the best rejected candidates (for review.csv)."""
    out = {"printed_doi": ref.get("doi", ""), "doi": "", "doi_source": "", "match_score": "", "title_similarity": "",
           "matched_title": "", "matched_year": "", "match_status": "not_found", "note": "",
           "_record": None, "_candidates": [], "_asked": False}
    notes = []
    try:
        if override is not None:
            note = override.get("note", "")
            if override["doi"] == "none":
                out.update(doi_source="manual", match_status="excluded",
                           note="; ".join(["no DOI, by hand (doi_overrides.csv)"] + ([note] if note else [])))
                return out
            doi = override["doi"]
            record = None
            if not doi.startswith("10.48550/"):
                try:
                    record = client.work(doi)
                except RequestFailed as exc:
                    notes.append(f"its Crossref record could not be read ({exc})")
                if record is None and not notes:
                    notes.append(f"not in {getattr(client, 'name', 'Crossref')}; kept as given")
            arxiv = doi.startswith("10.48550/")
            record = record or record_of_reference(ref, "arXiv" if arxiv else "")
            out.update(doi=doi, doi_source="manual", match_status="matched", matched_title=title_of(record),
                       matched_year=year_of(record) or "", _record=record,
                       note="; ".join(["DOI by hand (doi_overrides.csv)"] + notes + ([note] if note else [])))
            return out
        printed = (ref.get("doi") or "").lower()
        if printed.startswith("10.48550/arxiv."):
            # an arXiv DataCite DOI: Crossref does not hold these, and the id inside it is the arXiv id
            ref = {**ref, "arxiv_id": ref.get("arxiv_id") or printed[len("10.48550/arxiv."):]}
            printed = ""
        if printed:
            out["_asked"] = True
            record = client.work(printed)
            if record is None:
                notes.append(f"printed DOI {printed} not in {getattr(client, 'name', 'Crossref')}")
            else:
                sim = title_similarity(ref, record) if (ref["title"] or ref["raw"]) else 1.0
                year, ref_year = year_of(record), ref.get("year", "")
                year_ok = not (year and str(ref_year).isdigit() and abs(year - int(ref_year)) > config.year_tolerance)
                threshold = config.title_threshold if ref["title"] else config.raw_threshold
                if sim >= threshold and year_ok:
                    out.update(doi=printed, doi_source="xml", title_similarity=round(sim, 3),
                               matched_title=title_of(record), matched_year=year or "", match_status="matched",
                               _record=record)
                    return out
                notes.append(f"printed DOI {printed} rejected: its record is '{title_of(record)[:60]}' ({year}), "
                             f"title similarity {sim:.2f}")
                out["_candidates"].append(candidate_summary(record, f"title similarity {sim:.2f}"
                                                            if sim < threshold else f"year {year} vs {ref_year}"))
        arxiv = re.sub(r"v\d+$", "", (ref.get("arxiv_id") or "").strip())
        if arxiv:
            out.update(doi=f"10.48550/arxiv.{arxiv}".lower(), doi_source="arxiv", match_status="matched",
                       matched_title=ref["title"], matched_year=ref.get("year", ""),
                       _record=record_of_reference(ref, "arXiv"), _candidates=[])
            out["note"] = "; ".join(notes)
            return out
        if not (ref["title"] or ref["raw"]):
            out["note"] = "; ".join(notes + ["nothing to search with (no title, no raw text)"])
            return out
        out["_asked"] = True
        items = client.search(bibliographic_query(ref), config.rows)
        passing, rejected = [], []
        for item in items:
            ok, score, why = check_candidate(ref, item, config)
            if ok and item.get("DOI"):
                passing.append((score, item))
            else:
                rejected.append((score, item, why))
        passing.sort(key=lambda p: -p[0])
        if not passing:
            best = items[0] if items else None
            if best is not None:
                _, _, why = check_candidate(ref, best, config)
                notes.append(f"best candidate {best.get('DOI', '')} rejected: {why}")
            else:
                notes.append("no candidates")
            rejected.sort(key=lambda r: -r[0])
            out["_candidates"] += [candidate_summary(item, why) for _, item, why in rejected[:2]]
        elif len(passing) > 1 and passing[0][0] - passing[1][0] < config.ambiguity_margin \
                and passing[0][1]["DOI"].lower() != passing[1][1]["DOI"].lower():
            a, b = passing[0][1], passing[1][1]
            out["match_status"] = "ambiguous"
            notes.append(f"candidates {a['DOI']} ({year_of(a)}) and {b['DOI']} ({year_of(b)}) are too close")
            out["_candidates"] = [candidate_summary(a, "too close to the other"),
                                  candidate_summary(b, "too close to the other")]
        else:
            score, item = passing[0]
            out.update(doi=item["DOI"].lower(), doi_source="crossref", match_score=item.get("score", ""),
                       title_similarity=round(title_similarity(ref, item), 3), matched_title=title_of(item),
                       matched_year=year_of(item) or "", match_status="matched", _record=item, _candidates=[])
    except RequestFailed as exc:
        out["match_status"] = "error"
        notes.append(f"Crossref request failed: {exc}")
    out["note"] = "; ".join(notes)
    return out


# ---------------------------------------------------------------------------
# Hand fixes
# ---------------------------------------------------------------------------

def read_overrides(path: Path, log) -> tuple[dict[str, dict], list[str]]:
    """ref_uid -> {"doi": lower-case DOI or "none", "note"}; rows that cannot be used are logged and listed."""
    path = Path(path)
    if not path.is_file():
        return {}, []
    try:
        rows = pu.read_csv_rows(path)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if rows and not {"ref_uid", "doi"} <= set(rows[0]):
        raise SystemExit(f"error: {path} needs the columns ref_uid and doi (and optionally note)")
    overrides, problems = {}, []
    for i, row in enumerate(rows, start=2):
        uid = pu.spreadsheet_unsafe((row.get("ref_uid") or "").strip())
        doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", (row.get("doi") or "").strip(), flags=re.I).lower()
        if not uid and not doi:
            continue
        if not uid or not (doi == "none" or DOI_SHAPE.match(doi)):
            problems.append(f"{path.name} line {i}: needs a ref_uid and a DOI (10.xxxx/...) or 'none', "
                            f"got {uid!r}, {row.get('doi', '')!r}")
            log.warning("%s: ignored", problems[-1])
            continue
        overrides[uid] = {"doi": doi, "note": (row.get("note") or "").strip()}
    return overrides, problems


# ---------------------------------------------------------------------------
# Catalogue and exports: one entry per resolved work
# ---------------------------------------------------------------------------

def strip_jats(text: str) -> str:
    """Crossref's abstracts are JATS XML fragments: tags out, entities decoded, a leading 'Abstract' dropped."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", text or ""))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:!?)\]])", r"\1", re.sub(r"([(\[])\s+", r"\1", text))
    return re.sub(r"^abstract\b[\s.:]*", "", text, flags=re.I)


def catalogue_entry(doi: str, record: dict) -> dict:
    """The fields the catalogue and the BibTeX/RIS exports need, from a Crossref(-shaped) record."""
    authors = []
    for a in record.get("author") or []:
        family, given = (a.get("family") or a.get("name") or "").strip(), (a.get("given") or "").strip()
        if family:
            authors.append([family, given])
    return {"doi": doi, "title": title_of(record), "authors": authors, "year": year_of(record) or "",
            "venue": ((record.get("container-title") or [""]) or [""])[0], "type": record.get("type") or "other",
            "abstract": strip_jats(record.get("abstract") or ""), "volume": record.get("volume") or "",
            "issue": record.get("issue") or "", "page": record.get("page") or "",
            "publisher": record.get("publisher") or ""}


class Catalogue:
    """Resolved works and the papers citing them, in a SQLite file in the staging folder
    (not in memory: a million references would not fit comfortably)."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE works (doi TEXT PRIMARY KEY, entry TEXT)")
        self.db.execute("CREATE TABLE cites (doi TEXT, paper TEXT, PRIMARY KEY (doi, paper)) WITHOUT ROWID")

    def add(self, doi: str, record: dict, papers: list[str]) -> None:
        self.db.execute("INSERT OR IGNORE INTO works VALUES (?, ?)", (doi, json.dumps(catalogue_entry(doi, record))))
        self.db.executemany("INSERT OR IGNORE INTO cites VALUES (?, ?)", [(doi, p) for p in papers])

    def entries(self) -> Iterator[dict]:
        """Every work, by DOI, with ``cited_by_papers`` (a list)."""
        query = ("SELECT w.doi, w.entry, group_concat(c.paper, char(31)) FROM works w "
                 "LEFT JOIN cites c ON c.doi = w.doi GROUP BY w.doi ORDER BY w.doi")
        for doi, entry, papers in self.db.execute(query):
            item = json.loads(entry)
            item["cited_by_papers"] = sorted(set(papers.split("\x1f"))) if papers else []
            yield item

    def close(self) -> None:
        self.db.close()


BIB_TYPES = {"journal-article": "article", "proceedings-article": "inproceedings", "book": "book",
             "monograph": "book", "edited-book": "book", "reference-book": "book", "book-chapter": "incollection",
             "book-section": "incollection", "book-part": "incollection", "report": "techreport",
             "dissertation": "phdthesis"}
RIS_TYPES = {"journal-article": "JOUR", "proceedings-article": "CPAPER", "book": "BOOK", "monograph": "BOOK",
             "edited-book": "EDBOOK", "reference-book": "BOOK", "book-chapter": "CHAP", "book-section": "CHAP",
             "book-part": "CHAP", "report": "RPRT", "dissertation": "THES", "posted-content": "UNPB",
             "standard": "STAND"}
BIB_VENUE_FIELD = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}


def bib_key(entry: dict, used: set[str]) -> str:
    """surname + year + first content word (``taylor2020digital``), unique within the file."""
    surname = norm(entry["authors"][0][0]).replace(" ", "") if entry["authors"] else "anon"
    words = [w for w in norm(entry["title"]).split() if len(w) > 3] or ["work"]
    key = f"{surname or 'anon'}{entry['year']}{words[0]}"
    candidate, n = key, 0
    while candidate in used:
        n += 1
        candidate = key + "abcdefghijklmnopqrstuvwxyz"[(n - 1) % 26] * (1 + (n - 1) // 26)
    used.add(candidate)
    return candidate


TEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                             "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}",
                             "^": r"\textasciicircum{}"})


def tex(text: str) -> str:
    """A field value for BibTeX: LaTeX's special characters escaped; other Unicode kept
    (biber, Zotero and bibtexparser read UTF-8)."""
    return re.sub(r"\s+", " ", str(text)).strip().translate(TEX_ESCAPES)


def bibtex_entry(entry: dict, key: str) -> str:
    """One BibTeX entry (written directly: a library round trip cost 4 ms per entry; tests parse the file
    back with bibtexparser)."""
    kind = BIB_TYPES.get(entry["type"], "misc")
    fields = [("title", "{" + tex(entry["title"]) + "}")]  # inner braces keep the title's capitals
    if entry["authors"]:
        fields.append(("author", " and ".join(tex(f"{f}, {g}" if g else f) for f, g in entry["authors"])))
    if entry["year"]:
        fields.append(("year", str(entry["year"])))
    if entry["venue"]:
        fields.append((BIB_VENUE_FIELD.get(kind, "howpublished"), tex(entry["venue"])))
    for name, source in (("volume", "volume"), ("number", "issue"), ("pages", "page")):
        if entry[source]:
            fields.append((name, tex(entry[source].replace("-", "--") if name == "pages" else entry[source])))
    if entry["publisher"]:
        fields.append(({"techreport": "institution", "phdthesis": "school"}.get(kind, "publisher"),
                       tex(entry["publisher"])))
    # biblatex reads doi verbatim (an escaped "_" would break the link); only braces could unbalance the entry
    fields.append(("doi", entry["doi"].replace("{", "%7B").replace("}", "%7D")))
    if entry["doi"].startswith("10.48550/arxiv."):
        fields += [("eprint", entry["doi"][len("10.48550/arxiv."):]), ("archiveprefix", "arXiv")]
    if entry["abstract"]:
        fields.append(("abstract", tex(entry["abstract"])))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def ris_entry(entry: dict) -> str:
    """One RIS record (Zotero, EndNote, Mendeley)."""
    def clean(text: str) -> str:
        return re.sub(r"\s+", " ", str(text)).strip()

    lines = [f"TY  - {RIS_TYPES.get(entry['type'], 'GEN')}", f"TI  - {clean(entry['title'])}"]
    lines += [f"AU  - {clean(f'{f}, {g}' if g else f)}" for f, g in entry["authors"]]
    if entry["year"]:
        lines.append(f"PY  - {entry['year']}")
    if entry["venue"]:
        lines.append(f"T2  - {clean(entry['venue'])}")
    for tag, name in (("VL", "volume"), ("IS", "issue"), ("PB", "publisher")):
        if entry[name]:
            lines.append(f"{tag}  - {clean(entry[name])}")
    if entry["page"]:
        first, _, last = entry["page"].partition("-")
        lines.append(f"SP  - {clean(first)}")
        if last:
            lines.append(f"EP  - {clean(last)}")
    if entry["abstract"]:
        lines.append(f"AB  - {clean(entry['abstract'])}")
    lines += [f"DO  - {entry['doi']}", f"UR  - https://doi.org/{entry['doi']}", "ER  - "]
    return "\n".join(lines) + "\n\n"


def write_catalogue_and_exports(catalogue: Catalogue, staging: Path) -> int:
    """catalogue.csv, references.bib and references.ris in ``staging``; returns the number of works."""
    used: set[str] = set()
    n = 0
    with open(staging / "catalogue.csv", "w", encoding="utf-8-sig", newline="") as cat, \
            open(staging / "references.bib", "w", encoding="utf-8") as bib, \
            open(staging / "references.ris", "w", encoding="utf-8") as ris:
        writer = csv.DictWriter(cat, fieldnames=CATALOGUE_COLUMNS)
        writer.writeheader()
        for entry in catalogue.entries():
            writer.writerow({"doi": entry["doi"], "title": entry["title"],
                             "authors": pu.join_list(f"{f}, {g}" if g else f for f, g in entry["authors"]),
                             "year": entry["year"], "venue": entry["venue"], "abstract": entry["abstract"],
                             "cited_by_papers": pu.join_list(entry["cited_by_papers"])})
            bib.write(bibtex_entry(entry, bib_key(entry, used)) + "\n")
            ris.write(ris_entry(entry))
            n += 1
    return n


# ---------------------------------------------------------------------------
# Streaming the inputs, staging the outputs
# ---------------------------------------------------------------------------

def csv_encoding(path: Path) -> str:
    """UTF-8 is checked block by block (memory stays flat on a large file); anything else is a
    sheet saved by a spreadsheet, small enough for pipeline_utils' detection."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        return "utf-8-sig"
    except UnicodeDecodeError:
        try:
            return pu.detect_csv_encoding(path)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a CSV, one at a time (``,`` or a spreadsheet's ``;``), empty cells as ''."""
    csv.field_size_limit(1 << 24)
    with open(path, encoding=csv_encoding(path), newline="") as fh:
        header = fh.readline()
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=";" if header.count(";") > header.count(",") else ",")
        for row in reader:
            yield {k: v or "" for k, v in row.items() if k is not None}


def csv_header(path: Path) -> list[str]:
    with open(path, encoding=csv_encoding(path), newline="") as fh:
        header = fh.readline()
    return next(csv.reader([header], delimiter=";" if header.count(";") > header.count(",") else ","), [])


class StageStopped(Exception):
    """The whole stage stops; the message is the one line the user sees."""


def batched(rows: Iterator[dict], n: int) -> Iterator[list[dict]]:
    """Lists of up to ``n`` rows."""
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def closed_and_synced(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def papers_of(ref: dict) -> list[str]:
    """Papers citing a reference, from stage 05's ``cited_as`` (paper_id:ref_key items)."""
    return [item.partition(":")[0] for item in pu.split_list(ref.get("cited_as", "")) if ":" in item]


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Resolve every reference; returns the match report."""
    started = time.time()
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
    columns = csv_header(ref_path)
    missing = {"ref_uid", "title", "year", "authors", "raw", "doi", "arxiv_id"} - set(columns)
    if missing:
        raise SystemExit(f"error: {ref_path} lacks column(s) {', '.join(sorted(missing))}")
    overrides, override_problems = read_overrides(Path(config.overrides_path), log)

    index = open_snapshot(config, log) if config.backend != "api" else None
    stamp = snapshot_run_stamp(config, index, [ref_path, sent_path, Path(config.overrides_path)]) \
        if config.backend == "snapshot" else ""
    if stamp and not (config.refresh or config.force) and (report := unchanged_report(out, stamp, index)):
        index.close()
        log.info("inputs, settings and snapshot unchanged since the last run: its output in %s stands "
                 "(--force redoes it)", out)
        pu.write_run_json(out, "06_crossref_doi", config, [ref_path, sent_path, Path(config.overrides_path)],
                          report, started)
        pu.print_summary("stage 06: Crossref DOIs (unchanged)", printable(report))
        return report
    total = sum(1 for _ in csv_rows(ref_path))
    if not total:
        if index is not None:
            index.close()
        raise SystemExit(f"error: {ref_path} holds no reference: nothing to resolve (run stage 05 first)")

    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".staging-*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    staging = out / f".staging-{os.getpid()}"
    staging.mkdir()
    client = CrossrefClient(config.base_url, mailto, config.cache_path, timeout=config.timeout,
                            retries=config.retries, backoff_seconds=config.backoff_seconds,
                            max_retry_after=config.max_retry_after, search_rate=config.search_rate,
                            lookup_rate=config.lookup_rate, concurrency=config.concurrency,
                            refresh=config.refresh or config.force, alive_timeout=config.alive_timeout,
                            user_agent=USER_AGENT)
    try:
        counts = resolve_all(config, client, index, overrides, columns, total, ref_path, sent_path, staging, log)
        errors = counts["by_status"].get("error", 0)
        if errors == total:
            raise StageStopped(f"every one of the {total} references failed; last error: {counts['last_error']}")
        if errors and errors == counts["asked"]:
            # the others were settled without the service (hand fixes, arXiv ids, nothing to search with):
            # nothing that needed Crossref was decided, whatever --error-window and --max-error-rate say
            raise StageStopped(f"every one of the {errors} references that needed {config.backend_name()} failed "
                               f"({total - errors} others needed no request); last error: {counts['last_error']}")
        for name in OUTPUT_NAMES:
            os.replace(staging / name, out / name)
    except CrossrefStop as exc:
        raise SystemExit(f"error: stopped: {exc}. Every answer so far is cached: rerun the same command to resume; "
                         f"the previous output in {out} is unchanged.") from None
    except StageStopped as exc:
        raise SystemExit(f"error: stopped: {exc}") from None
    except OSError as exc:
        raise SystemExit(f"error: {exc.filename or out}: {exc.strerror or exc}; the previous output in {out} "
                         "is unchanged.") from None
    finally:
        client.close()
        if index is not None:
            index.close()
        shutil.rmtree(staging, ignore_errors=True)

    sent = client.stats["requests"]

    def achieved(pool_name: str) -> float:
        """Requests per second between the first and the last request start of a pool."""
        first, last = client.busy_seconds[pool_name]
        n = sent[pool_name]
        return round((n - 1) / (last - first), 2) if n > 1 and last > first else 0.0

    report = {
        "references": total,
        "by_status": counts["by_status"],
        "by_source": counts["by_source"],
        "sentences": counts["sentences"],
        "sentences_with_doi": counts["sentences_with_doi"],
        "catalogue_works": counts["catalogue_works"],
        "review_rows": counts["review_rows"],
        "overrides": {"applied": counts["overrides_applied"], "rows_ignored": len(override_problems),
                      "unknown_ref_uids": len(set(overrides) - counts["overridden"])},
        "answers_from_cache": client.stats["cache_hits"],
        "requests": {"search": sent["search"], "lookup": sent["lookup"], "cache_hits": client.stats["cache_hits"],
                     "retries": client.stats["retries"], "rate_limited_429": client.stats["rate_limited"],
                     "malformed_answers": client.stats["malformed"]},
        "requests_per_reference": round((sent["search"] + sent["lookup"]) / total, 3) if total else 0.0,
        "achieved_per_second": {"search": achieved("search"), "lookup": achieved("lookup")},
        "announced_limits": {name: {"per_second": round(p.rate, 2), "concurrency": p.concurrency}
                             for name, p in client.pacers.items()},
        "seconds": counts["seconds"],
        "backend": config.backend,
        "polite_pool": bool(mailto),
        "thresholds": {"title": config.title_threshold, "raw": config.raw_threshold,
                       "year_tolerance": config.year_tolerance, "author": config.author_threshold,
                       "ambiguity_margin": config.ambiguity_margin},
    }
    if index is not None:
        report["snapshot"] = {"works": index.works, **index.stats, "database": str(index.db_path),
                              "answers_from_cache": index.answers.hits}
        if stamp:  # what the next run compares, to skip a rerun on the same inputs
            report["snapshot"]["run_stamp"] = stamp
            report["snapshot"]["outputs"] = output_marks(out)
    if report["overrides"]["unknown_ref_uids"]:
        log.warning("%d ref_uid(s) in %s are not in this run's references: %s", report["overrides"]["unknown_ref_uids"],
                    config.overrides_path, ", ".join(sorted(set(overrides) - counts["overridden"])[:5]))
    pu.atomic_write_json(out / "match_report.json", report)
    pu.write_run_json(out, "06_crossref_doi", config, [ref_path, sent_path, Path(config.overrides_path)], report,
                      started)
    pu.print_summary("stage 06: Crossref DOIs", printable(report))
    return report


def open_snapshot(config: Config, log) -> SnapshotIndex:
    """The snapshot's DuckDB database, loading whatever of --snapshot is not in it yet."""
    db = Path(config.snapshot_db or Path(config.cache_path).parent / "snapshot.duckdb")
    if config.snapshot is None and not db.is_file():
        raise SystemExit(f"error: --backend {config.backend} needs --snapshot PATH (no database at {db} yet)")
    index = SnapshotIndex(db, memory_limit=config.snapshot_memory)
    try:
        if config.snapshot is not None:
            index.load(Path(config.snapshot))
        else:
            index.works = index.con.execute("SELECT count(*) FROM works").fetchall()[0][0]
    except BaseException:
        index.close()  # an interrupted load keeps every batch it committed; the next run resumes
        raise
    if not index.works:
        index.close()
        raise SystemExit(f"error: the snapshot holds no usable work (database {db})")
    log.info("snapshot: %d works in %s", index.works, db)
    index.answers = AnswerCache(db.with_name(db.name + ".answers.sqlite"), [
        index.fingerprint(), code_digest(), config.snapshot_candidates, config.title_threshold,
        config.raw_threshold, config.year_tolerance, config.author_threshold, config.ambiguity_margin])
    return index


OUTPUT_NAMES = ["references.csv", "sentences.csv", "review.csv", "catalogue.csv", "references.bib", "references.ris"]


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """The code that decides an answer (this stage, the snapshot index, the client's record checks):
    an edit to any of it makes cached snapshot answers stale."""
    digest = hashlib.sha256()
    for path in (Path(__file__), HERE / "snapshot_index.py", HERE.parent / "crossref_client.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def snapshot_run_stamp(config: Config, index: SnapshotIndex, inputs: list[Path]) -> str:
    """The content of everything a --backend snapshot run's output depends on."""
    digest = hashlib.sha256()
    for path in inputs:
        digest.update((pu.sha256_file(path) if path.is_file() else "absent").encode())
    settings = {k: getattr(config, k) for k in ("backend", "snapshot_candidates", "title_threshold", "raw_threshold",
                                                "year_tolerance", "author_threshold", "ambiguity_margin")}
    digest.update(json.dumps([settings, index.fingerprint(), code_digest()], sort_keys=True).encode())
    return digest.hexdigest()


def output_marks(out: Path) -> dict[str, list[int]]:
    """Size and modification time of each output file (an output edited or deleted since is redone)."""
    marks = {}
    for name in OUTPUT_NAMES:
        st = (out / name).stat() if (out / name).is_file() else None
        marks[name] = [st.st_size, st.st_mtime_ns] if st else []
    return marks


def printable(report: dict) -> dict:
    """The report without the rerun bookkeeping (a hash and file marks nobody reads on screen)."""
    snap = {k: v for k, v in (report.get("snapshot") or {}).items() if k not in ("run_stamp", "outputs")}
    return {**report, "snapshot": snap} if "snapshot" in report else report


def unchanged_report(out: Path, stamp: str, index: SnapshotIndex) -> dict | None:
    """The last run's report when it had the same stamp and its outputs are as it left them; else None."""
    try:
        previous = json.loads((out / "match_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    snap = previous.get("snapshot") or {}
    if snap.get("run_stamp") != stamp or snap.get("outputs") != output_marks(out):
        return None
    snap.update(works=index.works, **index.stats, answers_from_cache=previous.get("references", 0))
    previous["unchanged_since_last_run"] = True
    return previous


def resolve_all(config: Config, client: CrossrefClient, index: SnapshotIndex | None, overrides: dict[str, dict],
                columns: list[str], total: int, ref_path: Path, sent_path: Path, staging: Path, log) -> dict:
    """Stream references through a bounded window of the thread pool, then sentences; every
    output goes to ``staging`` (moved into place only when all of it is written)."""
    ref_columns = ([c for c in REF_FIRST if c in RESULT_KEYS or c in columns]
                   + [c for c in columns if c not in REF_FIRST and c not in ("doi", "raw")]
                   + [c for c in RESULT_KEYS if c not in REF_FIRST] + (["raw"] if "raw" in columns else []))
    counts = {"by_status": {}, "by_source": {}, "overrides_applied": 0, "overridden": set(), "review_rows": 0,
              "last_error": "", "asked": 0}
    doi_of: dict[str, str] = {}
    catalogue = Catalogue(staging / "catalogue.sqlite")
    recent: deque = deque()
    recent_errors = 0
    began = time.perf_counter()
    ref_fh = open(staging / "references.csv", "w", encoding="utf-8-sig", newline="")
    review_fh = open(staging / "review.csv", "w", encoding="utf-8-sig", newline="")
    ref_writer = csv.DictWriter(ref_fh, fieldnames=ref_columns, extrasaction="ignore")
    review_writer = csv.DictWriter(review_fh, fieldnames=REVIEW_COLUMNS, extrasaction="ignore")
    ref_writer.writeheader()
    review_writer.writeheader()

    def finish(ref: dict, result: dict, done: int) -> None:
        nonlocal recent_errors
        uid, status = ref["ref_uid"], result["match_status"]
        row = {k: v for k, v in ref.items() if k != "doi"}
        row.update({k: result[k] for k in RESULT_KEYS})
        ref_writer.writerow(row)
        counts["by_status"][status] = counts["by_status"].get(status, 0) + 1
        counts["asked"] += bool(result.get("_asked"))
        if result["doi_source"]:
            counts["by_source"][result["doi_source"]] = counts["by_source"].get(result["doi_source"], 0) + 1
        if result["doi_source"] == "manual":
            counts["overrides_applied"] += 1
        if result["doi"]:
            doi_of[uid] = result["doi"]
            catalogue.add(result["doi"], result["_record"] or record_of_reference(ref), papers_of(ref))
        if status in ("ambiguous", "not_found"):
            review = {"ref_uid": uid, "match_status": status, "note": result["note"], **{
                k: ref.get(k, "") for k in ("title", "authors", "year", "venue", "raw")}}
            for i, cand in enumerate(result["_candidates"][:2], start=1):
                review.update({f"candidate_{i}_{k}": v for k, v in cand.items()})
            review_writer.writerow({k: pu.spreadsheet_safe(v) for k, v in review.items()})
            counts["review_rows"] += 1
        if status == "error":
            log.warning("%s: %s", uid, result["note"])
            counts["last_error"] = result["note"]
        recent.append(status == "error")
        recent_errors += status == "error"
        if len(recent) > config.error_window:
            recent_errors -= recent.popleft()
        if done >= 20 and recent_errors / len(recent) > config.max_error_rate:
            raise StageStopped(
                f"{recent_errors} of the last {len(recent)} references failed ({recent_errors / len(recent):.0%} > "
                f"--max-error-rate {config.max_error_rate:.0%}) after {done} of {total}; last error: "
                f"{result['note']}. Every answer so far is cached: rerun the same command to resume "
                "(answered references send no request)")

    def settled(result: dict) -> Future:
        fut: Future = Future()
        fut.set_result(result)
        return fut

    snap_config = dataclasses.replace(config, rows=config.snapshot_candidates)
    window = max(8, config.concurrency * 8)  # references in the pool at once: memory stays flat
    pool = ThreadPoolExecutor(max_workers=max(1, config.concurrency))
    pending: deque = deque()
    done = 0
    try:
        with tqdm(total=total, desc=config.backend, unit="ref") as bar:
            for chunk in batched(csv_rows(ref_path), config.snapshot_batch if index is not None else 1):
                known, fresh = {}, []
                if index is not None:
                    # answered by an earlier run with the same reference, settings, snapshot and code: skipped
                    keys = {r["ref_uid"]: index.answers.key(r) for r in chunk if r["ref_uid"] not in overrides}
                    if not (config.refresh or config.force):
                        known = index.answers.get_many(list(dict.fromkeys(keys.values())))
                    todo = [r for r in chunk if keys.get(r["ref_uid"]) not in known]
                    index.prefetch([(bibliographic_query(r), r["title"] or r["raw"], reference_year(r), not r["title"])
                                    for r in todo if r["title"] or r["raw"]], config.snapshot_candidates)
                    index.prefetch_works([r["doi"] for r in todo if r["doi"]]
                                         + [overrides[r["ref_uid"]]["doi"] for r in todo if r["ref_uid"] in overrides])
                for ref in chunk:
                    override = overrides.get(ref["ref_uid"])
                    if override is not None:
                        counts["overridden"].add(ref["ref_uid"])
                    if index is None:
                        pending.append((ref, pool.submit(resolve, ref, client, config, override)))
                    else:
                        key = keys.get(ref["ref_uid"])
                        if key in known:
                            result = known[key]
                            index.answers.hits += 1
                        else:
                            result = resolve(ref, index, snap_config, override)
                            if result["doi_source"] == "crossref":
                                result["doi_source"] = "snapshot"
                            if key is not None:
                                fresh.append((key, result))
                        if config.backend == "snapshot+api" and result["match_status"] == "not_found" \
                                and override is None:
                            pending.append((ref, pool.submit(resolve, ref, client, config, None)))
                        else:
                            pending.append((ref, settled(result)))
                    while len(pending) >= window:
                        ref_done, fut = pending.popleft()
                        done += 1
                        finish(ref_done, fut.result(), done)
                        bar.update(1)
                if index is not None:
                    index.answers.put_many(fresh)
                    index.forget()
            while pending:
                ref_done, fut = pending.popleft()
                done += 1
                finish(ref_done, fut.result(), done)
                bar.update(1)
    except BaseException:
        for fh in (ref_fh, review_fh):
            fh.close()
        catalogue.close()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    closed_and_synced(ref_fh)
    closed_and_synced(review_fh)
    counts["seconds"] = round(time.perf_counter() - began, 2)

    # sentences: the DOIs of their references, in citation order, no duplicates
    sent_columns = csv_header(sent_path)
    sent_columns = sent_columns + ([] if "dois" in sent_columns else ["dois"])
    n_sent = with_doi = 0
    with open(staging / "sentences.csv", "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=sent_columns, extrasaction="ignore")
        writer.writeheader()
        for s in csv_rows(sent_path):
            dois = list(dict.fromkeys(doi_of[u] for u in pu.split_list(s.get("ref_uids", "")) if u in doi_of))
            s["dois"] = pu.join_list(dois)
            writer.writerow(s)
            n_sent += 1
            with_doi += bool(dois)
            if s.get("paper_id"):
                catalogue.db.executemany("INSERT OR IGNORE INTO cites VALUES (?, ?)",
                                         [(d, s["paper_id"]) for d in dois])
        fh.flush()
        os.fsync(fh.fileno())
    counts.update(sentences=n_sent, sentences_with_doi=with_doi)
    catalogue.db.commit()
    counts["catalogue_works"] = write_catalogue_and_exports(catalogue, staging)
    catalogue.close()
    return counts


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
