"""Stage 05: merge the per-paper CSVs of stage 04, clean them, and give each distinct work one ref_uid.

    python 05_merge_clean/merge_clean.py
    python 05_merge_clean/merge_clean.py --min-words 8 --language-check

Writes ``output/sentences.csv`` (with ``ref_uids``), ``output/references.csv``
(one row per distinct work, so stage 06 looks each up once) and
``output/clean_report.json`` (counts in, out and dropped by reason), and prints
the report as a table. Every cleaning rule is a config switch; every drop is counted.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ftfy  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    """Merge and clean stage 04's CSVs."""

    input_dir: Path = HERE.parent / "04_xml_to_csv" / "output"
    """Stage 04's output (*.sentences.csv, *.references.csv)."""
    output_dir: Path = HERE / "output"
    """Where sentences.csv, references.csv and clean_report.json go."""
    min_words: int = 6
    """Drop sentences with fewer words than this (after markers are removed); 0 turns the rule off."""
    max_words: int = 80
    """Drop sentences with more words than this (usually two sentences glued by a failed split); 0: off."""
    drop_without_reference_info: bool = True
    """Drop sentences whose every cited reference has neither a title nor raw text (nothing to look up)."""
    drop_duplicates: bool = True
    """Drop exact duplicate sentences (same cleaned text and the same works cited), keeping the first."""
    max_symbol_share: float = 0.25
    """Drop sentences where more than this share of the characters are digits or symbols (tables, math); 1.0: off."""
    language_check: bool = False
    """Drop sentences whose language (py3langid) is not --language."""
    language: str = "en"
    """The language kept by --language-check (ISO 639-1)."""
    drop_uncited_references: bool = True
    """Keep only references cited by at least one kept sentence (stage 06 then looks up nothing in vain)."""
    memory_limit_mb: int = 1000
    """Memory the deduplication engine (DuckDB) may use before it spills to disk in the output folder."""
    chunk_rows: int = 50_000
    """References read into memory at a time (stage 05 streams its input: memory does not grow with the corpus)."""
    chunk_papers: int = 500
    """Papers whose sentences are cleaned at a time."""
    force: bool = False
    """Accepted for symmetry with other stages; this stage always rebuilds its output."""
    verbose: bool = False
    """Debug logging."""


SENTENCE_IN = ["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys"]
REFERENCE_IN = ["paper_id", "ref_key", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw"]
# which "prior work"s of sentence_clean stage 04 put in place of a marker (stage 07 tells them from the
# author's words); a stage-04 CSV written before the column existed gives UNKNOWN, and stage 07 then falls back
SENTENCE_OPTIONAL = {"clean_substitutions": "unknown"}
SENTENCE_OUT = SENTENCE_IN + ["ref_uids"] + list(SENTENCE_OPTIONAL)
REFERENCE_OUT = ["ref_uid", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw", "n_papers", "cited_as"]


# ---------------------------------------------------------------------------
# Reading, with every problem named
# ---------------------------------------------------------------------------

def iter_csv(path: Path, columns: list[str], warnings: list[str], optional: dict[str, str] | None = None):
    """The rows of one CSV as dicts of ``columns`` and ``optional`` (a column the file lacks gets its value
    there); a file missing a column is skipped with a warning, a row with too many cells is reported by line. The csv module, not pandas: per-file DataFrames were
    most of this stage's time on a corpus of many small files."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            missing = [c for c in columns if c not in header]
            if missing:
                warnings.append(f"{path.name}: missing column(s) {', '.join(missing)}; file skipped")
                return
            index = [header.index(c) for c in columns]
            extra = {c: header.index(c) for c in (optional or {}) if c in header}
            fixed = {c: v for c, v in (optional or {}).items() if c not in header}
            width = len(header)
            for cells in reader:
                if len(cells) > width:
                    warnings.append(f"{path.name}: malformed row skipped: {','.join(cells)[:80]!r}")
                    continue
                if not cells:
                    continue
                cells += [""] * (width - len(cells))
                row = {c: cells[i] for c, i in zip(columns, index)}
                if optional:
                    row.update(fixed)
                    row.update({c: cells[i] for c, i in extra.items()})
                yield row
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        warnings.append(f"{path.name}: unreadable, rest of the file skipped ({exc.__class__.__name__}: "
                        f"{str(exc)[:120]})")


# ---------------------------------------------------------------------------
# Text clean-up
# ---------------------------------------------------------------------------

# UTF-8 read as Latin-1 / Windows-1252 leaves a lead byte's character ("Ã", "Â", "â", "Ä" …) followed by a
# continuation byte's ("©", "€", "™", "\x80"-"\xbf"): "CafÃ©", "donâ€™t". Only a cell with such a pair, a
# replacement character or a control character goes to ftfy (which was half of this stage's time on every
# cell); other non-ASCII cells get NFKC (ligatures, full-width forms), ASCII cells only whitespace.
MOJIBAKE = re.compile("[\u00c2-\u00df\u00e2-\u00ef\u00f0-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178"
                      "\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039"
                      "\u203a\u20ac\u2122]|[\ufffd\u0000-\u0008\u000b\u000c\u000e-\u001f\u0080-\u009f]")


def fix_text(text: str) -> str:
    """Mojibake (ftfy, only where the cheap check finds it), ligatures and full-width forms (NFKC),
    soft hyphens, whitespace."""
    text = text or ""
    if not text.isascii():
        if MOJIBAKE.search(text):
            text = ftfy.fix_text(text, normalization="NFKC")
        else:
            text = unicodedata.normalize("NFKC", text)
        text = text.replace("\u00ad", "")
    return " ".join(text.split())


def normal_title(title: str) -> str:
    """Case, accents, punctuation and spaces removed: the key that finds the same work in two papers
    ("On-board sensor networks." and "Onboard sensor networks" agree)."""
    text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", text)


RAW_VENUE = re.compile(r"^(?:In\b|Proc|Advances in|arXiv|Preprint|Technical report|PhD thesis)|"
                       r"\b(?:Proceedings|Conference|Journal|Transactions|Trans\.|Symposium|Workshop|Letters|"
                       r"Press|Publishing|University|vol\.|pp\.|pages)\b", re.I)
RAW_NAMES = re.compile(r"\bet al\b|\b[A-Z]\.\s*-?.*\b[A-Z]\.|,\s*[A-Z]\.?(?:-?[A-Z]\.?)?\s*(?:,|&|\band\b|$)")


def looks_like_names(segment: str) -> bool:
    """'K. He, X. Zhang', 'He, K., Zhang, X.', 'Kaiming He, Xiangyu Zhang, and Jian Sun': an author list."""
    words = re.findall(r"[A-Za-z][A-Za-z'\-]+", segment)
    capitalised = [w for w in words if w[0].isupper() or w == "and"]
    return bool(RAW_NAMES.search(segment)) or ("," in segment and len(capitalised) == len(words))


def raw_title_guesses(raw: str) -> list[str]:
    """Normalised candidates for the title inside a printed reference, best first: the segments between
    ". ", ": " and quotes that look neither like an author list nor like a venue, and each such
    segment joined to the next ("BERT: Pre-training of ..."). Lets raw-only references of two papers
    that print the same work differently agree."""
    text = re.sub(r"https?://\S+|\b10\.\d{4,9}/\S+|arXiv:\s*\S+|^\s*\[\d+\]\s*", " ", raw or "")
    segments = [s.strip(" ,;()") for s in re.split(r"(?<=[^\s.]{2})[.?!]\s+|:\s+|[“”\"]", text)]
    candidates = []
    for i, seg in enumerate(segments):
        if len(re.findall(r"[A-Za-z]{2,}", seg)) < 3 or RAW_VENUE.search(seg) or looks_like_names(seg):
            continue
        candidates.append((len(seg), normal_title(seg)))
        if i + 1 < len(segments) and segments[i + 1]:
            candidates.append((0, normal_title(seg + segments[i + 1])))
        if i > 0 and segments[i - 1] and len(segments[i - 1]) < 40 \
                and not looks_like_names(segments[i - 1]):
            candidates.append((0, normal_title(segments[i - 1] + seg)))
    candidates.sort(key=lambda c: -c[0])
    return list(dict.fromkeys(c for _, c in candidates if len(c) >= 12))


def symbol_share(text: str) -> float:
    """Share of non-space characters that are neither letters nor ordinary punctuation."""
    visible = len(text) - len(WHITESPACE.findall(text))
    if not visible:
        return 1.0
    return len(SYMBOL.findall(text)) / visible


WHITESPACE = re.compile(r"\s")
SYMBOL = re.compile(r"[\d_]|[^\w\s,.;:'\"()\-–?!’]")


# ---------------------------------------------------------------------------
# One ref_uid per distinct work (keys per row in Python, the joins and groups in DuckDB)
# ---------------------------------------------------------------------------

YEAR_IN_RAW = re.compile(r"(?<!\d)(?:1[6-9]|20)\d{2}(?!\d)")


def prepare_references(rows: list[dict], start_seq: int) -> dict[str, list]:
    """Clean references and give each row what deduplication needs: ``key`` (a printed DOI, else the arXiv
    id without version, else normalised title + year; empty for raw-only rows, settled in SQL), ``ty``
    (normalised title + year), ``guesses`` (title candidates from the raw text). Returns columns."""
    cols: dict[str, list] = {c: [] for c in REFERENCE_IN + ["key", "ty", "guesses", "rawkey", "cited", "seq"]}
    for seq, r in enumerate(rows, start=start_seq):
        for c in ("title", "authors", "venue", "raw"):
            r[c] = fix_text(r[c])
        r["doi"] = r["doi"].strip().lower()
        title = normal_title(r["title"])
        ty = f"title:{title}|{r['year']}" if title else ""
        if r["doi"]:
            key = f"doi:{r['doi']}"
        elif r["arxiv_id"].strip():
            key = "arxiv:" + re.sub(r"v\d+$", "", r["arxiv_id"].strip().lower())
        else:
            key = ty
        guesses: list[str] = []
        if not key:
            year = r["year"] or next(iter(YEAR_IN_RAW.findall(r["raw"])), "")
            guesses = [f"title:{g}|{year}" for g in raw_title_guesses(r["raw"])]
        for c in REFERENCE_IN:
            cols[c].append(r[c])
        cols["key"].append(key)
        cols["ty"].append(ty)
        cols["guesses"].append(guesses)
        cols["rawkey"].append(f"raw:{normal_title(r['raw'])}")
        cols["cited"].append(pu.join_list([f"{r['paper_id']}:{r['ref_key']}"]))
        cols["seq"].append(seq)
    return cols


SETTLE_KEYS_SQL = [
    # raw-only rows: the first title guess that is some reference's parsed title (same year), else the first
    # one shared with another raw-only row, else the first guess, else the normalised raw text
    """CREATE TEMP TABLE raw_keys AS
       WITH g AS (SELECT seq, unnest(guesses) AS guess, generate_subscripts(guesses, 1) AS ord
                  FROM refs WHERE key = ''),
            known AS (SELECT DISTINCT ty FROM refs WHERE ty <> ''),
            cnt AS (SELECT guess, count(DISTINCT seq) AS n FROM g GROUP BY guess)
       SELECT g.seq,
              coalesce(arg_min(g.guess, g.ord) FILTER (WHERE known.ty IS NOT NULL),
                       arg_min(g.guess, g.ord) FILTER (WHERE cnt.n > 1),
                       arg_min(g.guess, g.ord)) AS key
       FROM g JOIN cnt USING (guess) LEFT JOIN known ON known.ty = g.guess
       GROUP BY g.seq""",
    "UPDATE refs SET key = raw_keys.key, ty = raw_keys.key FROM raw_keys WHERE refs.seq = raw_keys.seq",
    "UPDATE refs SET key = rawkey WHERE key = ''",
    # a citation known only by title joins the DOI'd / arXiv work of the same title and year when exactly one
    """CREATE TEMP TABLE strong AS SELECT ty, min(key) AS key FROM refs
       WHERE ty <> '' AND NOT starts_with(key, 'title:') AND NOT starts_with(key, 'raw:')
       GROUP BY ty HAVING count(DISTINCT key) = 1""",
    "UPDATE refs SET key = strong.key FROM strong WHERE starts_with(refs.key, 'title:') AND refs.ty = strong.ty",
    "ALTER TABLE refs ADD COLUMN ref_uid VARCHAR",
    "UPDATE refs SET ref_uid = 'r' || substr(sha1(key), 1, 12)",
    """CREATE TEMP TABLE uid_map AS SELECT r.paper_id, r.ref_key, r.ref_uid, i.has_info FROM refs r
       JOIN (SELECT ref_uid, bool_or(title <> '' OR raw <> '') AS has_info FROM refs GROUP BY ref_uid) i
       USING (ref_uid)""",
]


def distinct_references_sql(only_cited: bool) -> str:
    """One row per work: the most common value of each field (the longer on a tie), the longest raw text,
    how many papers cite it and every paper_id:ref_key citation."""
    best = []
    for col in ("title", "year", "authors", "venue", "doi", "arxiv_id"):
        best.append(f"""LEFT JOIN (SELECT ref_uid, arg_max({col}, c * 100000 + length({col})) AS {col}
                 FROM (SELECT ref_uid, {col}, count(*) AS c FROM refs WHERE {col} <> '' GROUP BY ref_uid, {col})
                 GROUP BY ref_uid) USING (ref_uid)""")
    where = "WHERE ref_uid IN (SELECT ref_uid FROM cited)" if only_cited else ""
    return f"""SELECT ref_uid, coalesce(title, '') AS title, coalesce(year, '') AS year,
                      coalesce(authors, '') AS authors, coalesce(venue, '') AS venue, coalesce(doi, '') AS doi,
                      coalesce(arxiv_id, '') AS arxiv_id, raw, n_papers, cited_as
               FROM (SELECT ref_uid, arg_max(raw, length(raw)) AS raw, count(DISTINCT paper_id) AS n_papers,
                            string_agg(cited, '|' ORDER BY seq) AS cited_as
                     FROM refs {where} GROUP BY ref_uid)
               {' '.join(best)}
               ORDER BY ref_uid"""


def fetch_rows(cursor, columns: list[str], size: int = 10_000):
    """Rows of a DuckDB result as dicts, ``size`` at a time (the result never sits in Python whole)."""
    while batch := cursor.fetchmany(size):
        for row in batch:
            yield dict(zip(columns, row))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Merge, clean, deduplicate; returns the report."""
    import duckdb

    started = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    s_paths = sorted(input_dir.glob("*.sentences.csv"))
    r_paths = sorted(input_dir.glob("*.references.csv"))
    if not s_paths:
        raise SystemExit(f"error: no *.sentences.csv in {input_dir}: run stage 04 first (or pass --input-dir)")
    warnings: list[str] = []
    # Stage 04's manifest names the papers its last run converted; a CSV of any other paper is stale
    # (left by an earlier run, or by an older version of stage 04) and is not merged.
    manifest_path = input_dir / ".manifest.json"
    if manifest_path.is_file():
        try:
            current = set(json.loads(manifest_path.read_text()))
        except (ValueError, OSError) as exc:
            raise SystemExit(f"error: {manifest_path} is unreadable ({exc}): rerun stage 04") from None
        stale = sorted({p.name for p in s_paths + r_paths if p.name.rsplit(".", 2)[0] not in current})
        for name in stale:
            warnings.append(f"{name}: not in stage 04's manifest (stale from an earlier run); skipped")
        s_paths = [p for p in s_paths if p.name.rsplit(".", 2)[0] in current]
        r_paths = [p for p in r_paths if p.name.rsplit(".", 2)[0] in current]
        if not s_paths:
            raise SystemExit(f"error: no current *.sentences.csv in {input_dir}: rerun stage 04")

    out.mkdir(parents=True, exist_ok=True)
    work = out / ".merge_work.duckdb"
    work.unlink(missing_ok=True)
    con = duckdb.connect(str(work))
    try:
        report = _merge(con, config, s_paths, r_paths, out, warnings, log)
    finally:
        con.close()
        work.unlink(missing_ok=True)
        Path(str(work) + ".wal").unlink(missing_ok=True)
        shutil.rmtree(out / ".merge_spill", ignore_errors=True)
    pu.atomic_write_json(out / "clean_report.json", report)
    pu.print_summary("stage 05: merge and clean", report)
    pu.write_run_json(out, "05_merge_clean", config, s_paths + r_paths, report, started)
    return report


def _merge(con, config: Config, s_paths: list[Path], r_paths: list[Path], out: Path, warnings: list[str],
           log) -> dict:
    con.execute(f"SET memory_limit = '{config.memory_limit_mb}MB'")
    con.execute(f"SET temp_directory = '{out / '.merge_spill'}'")
    con.execute("SET preserve_insertion_order = false")

    # --- references, streamed paper by paper into the work database
    n_refs, pending, created = 0, [], False

    def flush() -> None:
        nonlocal pending, created
        if not pending:
            return
        chunk = pd.DataFrame(prepare_references(pending, n_refs - len(pending)))  # noqa: F841 (DuckDB reads it)
        con.execute("CREATE TABLE refs AS SELECT * FROM chunk" if not created else "INSERT INTO refs SELECT * FROM chunk")
        created, pending = True, []

    for path in tqdm(r_paths, desc="references", unit="paper", disable=len(r_paths) < 2000):
        for row in iter_csv(path, REFERENCE_IN, warnings):
            pending.append(row)
            n_refs += 1
        if len(pending) >= config.chunk_rows:
            flush()
    flush()
    if not created:
        con.execute("""CREATE TABLE refs (paper_id VARCHAR, ref_key VARCHAR, title VARCHAR, year VARCHAR,
                       authors VARCHAR, venue VARCHAR, doi VARCHAR, arxiv_id VARCHAR, raw VARCHAR, key VARCHAR,
                       ty VARCHAR, guesses VARCHAR[], rawkey VARCHAR, cited VARCHAR, seq BIGINT)""")
    for statement in SETTLE_KEYS_SQL:
        con.execute(statement)
    con.execute("CREATE TEMP TABLE cited (ref_uid VARCHAR)")

    # --- sentences, streamed in batches of papers; only hashes of kept sentences stay in memory
    dropped: Counter = Counter()
    counts = {"in": 0, "out": 0, "missing_refs": 0}
    papers: set[str] = set()
    seen: set[bytes] = set()
    if config.language_check:
        import py3langid

    def rule_hit(row: dict, uids: list[str], info: dict[str, bool]) -> str | None:
        if not uids:
            return "no_reference"
        words = len(row["sentence_clean"].split())
        if config.min_words and words < config.min_words:
            return "too_short"
        if config.max_words and words > config.max_words:
            return "too_long"
        if config.drop_without_reference_info and not any(info.get(u) for u in uids):
            return "references_without_title_or_raw"
        if config.max_symbol_share < 1.0 and symbol_share(row["sentence_clean"]) > config.max_symbol_share:
            return "mostly_symbols_or_math"
        if config.language_check and py3langid.classify(row["sentence_clean"])[0] != config.language:
            return f"not_{config.language}"
        if config.drop_duplicates:
            digest = hashlib.blake2b((row["sentence_clean"].lower() + "\t" + row["ref_uids"]).encode(),
                                     digest_size=8).digest()
            if digest in seen:
                return "duplicate"
            seen.add(digest)
        return None

    def kept_sentences():
        batch_size = max(1, config.chunk_papers)
        for b in tqdm(range(0, len(s_paths), batch_size), desc="sentences", unit="batch",
                      disable=len(s_paths) < 2000):
            batch = [row for path in s_paths[b:b + batch_size] for row in iter_csv(path, SENTENCE_IN, warnings, SENTENCE_OPTIONAL)]
            if not batch:
                continue
            for row in batch:
                for col in ("sentence", "sentence_clean", "section"):
                    row[col] = fix_text(row[col])
            ids = sorted({row["paper_id"] for row in batch})
            uid_of, info = {}, {}
            for pid, key, uid, has in con.execute("SELECT paper_id, ref_key, ref_uid, has_info FROM uid_map "
                                                  "WHERE paper_id IN (SELECT unnest(?))", [ids]).fetchall():
                uid_of[(pid, key)] = uid
                info[uid] = has
            cited_now: list[str] = []
            for row in batch:
                counts["in"] += 1
                papers.add(row["paper_id"])
                uids = []
                for k in pu.split_list(row["ref_keys"]):
                    if (row["paper_id"], k) in uid_of:
                        uids.append(uid_of[(row["paper_id"], k)])
                    else:
                        counts["missing_refs"] += 1
                uids = list(dict.fromkeys(uids))
                row["ref_uids"] = pu.join_list(uids)
                reason = rule_hit(row, uids, info)
                if reason:
                    dropped[reason] += 1
                    continue
                counts["out"] += 1
                cited_now.extend(uids)
                yield row
            if cited_now:
                cited_frame = pd.DataFrame({"ref_uid": cited_now})  # noqa: F841 (read by DuckDB by name)
                con.execute("INSERT INTO cited SELECT * FROM cited_frame")

    pu.atomic_write_csv(out / "sentences.csv", kept_sentences(), SENTENCE_OUT)
    if counts["missing_refs"]:
        log.warning("%d citations name a ref_key missing from its paper's references.csv; dropped from ref_uids",
                    counts["missing_refs"])

    # --- distinct references (only those cited by kept sentences, unless asked otherwise)
    n_distinct_all = con.execute("SELECT count(DISTINCT ref_uid) FROM refs").fetchone()[0]
    cursor = con.execute(distinct_references_sql(config.drop_uncited_references))
    several = [0]

    def counted(rows):
        for row in rows:
            several[0] += row["n_papers"] > 1
            yield row

    n_out = pu.atomic_write_csv(out / "references.csv", counted(fetch_rows(cursor, REFERENCE_OUT)), REFERENCE_OUT)
    ref_dropped = {"not_cited_by_a_kept_sentence": n_distinct_all - n_out} if config.drop_uncited_references else {}
    for w in warnings:
        log.warning(w)
    return {
        "papers": len(papers),
        "sentences": {"in": counts["in"], "out": counts["out"], "dropped": dict(dropped)},
        "references": {
            "in": n_refs, "distinct_works": int(n_distinct_all), "out": n_out,
            "dropped": ref_dropped,
            "lookups_saved_by_dedup": int(n_refs - n_distinct_all),
            "cited_by_several_papers": several[0],
        },
        "warnings": warnings,
    }


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
