"""Stage 05: merge the per-paper CSVs of stage 04, clean them, and give each distinct work one ref_uid.

    python 05_merge_clean/merge_clean.py
    python 05_merge_clean/merge_clean.py --min-words 8 --language-check

Writes ``output/sentences.csv`` (with ``ref_uids``), ``output/references.csv``
(one row per distinct work, so stage 06 looks each up once) and
``output/clean_report.json`` (counts in, out and dropped by reason), and prints
the report as a table. Every cleaning rule is a config switch; every drop is counted.
"""
from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ftfy  # noqa: E402
import pandas as pd  # noqa: E402

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
    force: bool = False
    """Accepted for symmetry with other stages; this stage always rebuilds its output (it takes seconds)."""
    verbose: bool = False
    """Debug logging."""


SENTENCE_IN = ["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys"]
REFERENCE_IN = ["paper_id", "ref_key", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw"]
SENTENCE_OUT = SENTENCE_IN + ["ref_uids"]
REFERENCE_OUT = ["ref_uid", "title", "year", "authors", "venue", "doi", "arxiv_id", "raw", "n_papers", "cited_as"]


# ---------------------------------------------------------------------------
# Reading, with every problem named
# ---------------------------------------------------------------------------

def read_csvs(paths: list[Path], columns: list[str], warnings: list[str]) -> pd.DataFrame:
    """Concatenate CSVs; a file missing a column is skipped with a warning, a bad row is reported by line."""
    frames = []
    for path in paths:
        bad_lines: list[str] = []

        def on_bad(line: list[str]) -> None:
            bad_lines.append(",".join(line)[:80])

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines=on_bad, engine="python")
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            warnings.append(f"{path.name}: unreadable, skipped ({exc.__class__.__name__}: {str(exc)[:120]})")
            continue
        missing = [c for c in columns if c not in df.columns]
        if missing:
            warnings.append(f"{path.name}: missing column(s) {', '.join(missing)}; file skipped")
            continue
        for line in bad_lines:
            warnings.append(f"{path.name}: malformed row skipped: {line!r}")
        frames.append(df[columns])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# ---------------------------------------------------------------------------
# Text clean-up
# ---------------------------------------------------------------------------

def fix_text(text: str) -> str:
    """Mojibake, ligatures and full-width forms (ftfy + NFKC), soft hyphens, whitespace."""
    text = ftfy.fix_text(text or "", normalization="NFKC").replace("\u00ad", "")
    return re.sub(r"\s+", " ", text).strip()


def normal_title(title: str) -> str:
    """Case, accents, punctuation and spaces removed: the key that finds the same work in two papers
    ("On-board sensor networks." and "Onboard sensor networks" agree)."""
    text = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", text)


def symbol_share(text: str) -> float:
    """Share of non-space characters that are neither letters nor ordinary punctuation."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 1.0
    return sum(1 for c in chars if not (c.isalpha() or c in ",.;:'\"()-–?!’")) / len(chars)


# ---------------------------------------------------------------------------
# One ref_uid per distinct work
# ---------------------------------------------------------------------------

def assign_ref_uids(refs: pd.DataFrame) -> pd.Series:
    """A printed DOI identifies a work; otherwise its arXiv id (no version); otherwise normalised title + year.
    A reference without DOI joins the DOI'd work with the same title and year when there is exactly one."""
    key_of_row = []
    for r in refs.itertuples(index=False):
        if r.doi:
            key_of_row.append(f"doi:{r.doi.lower()}")
        elif r.arxiv_id:
            key_of_row.append("arxiv:" + re.sub(r"v\d+$", "", r.arxiv_id.lower()))
        elif normal_title(r.title):
            key_of_row.append(f"title:{normal_title(r.title)}|{r.year}")
        else:
            key_of_row.append(f"raw:{normal_title(r.raw)}")
    title_year = [f"title:{normal_title(r.title)}|{r.year}" if normal_title(r.title) else "" for r in refs.itertuples()]
    strong_by_title: dict[str, set[str]] = defaultdict(set)
    for key, ty in zip(key_of_row, title_year):
        if ty and not key.startswith(("title:", "raw:")):
            strong_by_title[ty].add(key)
    final = []
    for key, ty in zip(key_of_row, title_year):
        if key.startswith("title:") and len(strong_by_title.get(ty, ())) == 1:
            key = next(iter(strong_by_title[ty]))
        final.append("r" + hashlib.sha1(key.encode()).hexdigest()[:12])
    return pd.Series(final, index=refs.index)


def merge_group(group: pd.DataFrame) -> dict:
    """One row for a distinct work from its citations in several papers: the most common value of each field."""
    def best(col: str) -> str:
        values = [v for v in group[col] if v]
        if not values:
            return ""
        counts = Counter(values)
        return max(counts, key=lambda v: (counts[v], len(v)))

    return {
        "title": best("title"), "year": best("year"), "authors": best("authors"), "venue": best("venue"),
        "doi": best("doi"), "arxiv_id": best("arxiv_id"), "raw": max(group["raw"], key=len, default=""),
        "n_papers": group["paper_id"].nunique(),
        "cited_as": pu.join_list(f"{p}:{k}" for p, k in zip(group["paper_id"], group["ref_key"])),
    }


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Merge, clean, deduplicate; returns the report."""
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    s_paths = sorted(input_dir.glob("*.sentences.csv"))
    r_paths = sorted(input_dir.glob("*.references.csv"))
    if not s_paths:
        raise SystemExit(f"error: no *.sentences.csv in {input_dir}: run stage 04 first (or pass --input-dir)")
    warnings: list[str] = []
    sentences = read_csvs(s_paths, SENTENCE_IN, warnings)
    refs = read_csvs(r_paths, REFERENCE_IN, warnings)
    for w in warnings:
        log.warning(w)

    # --- references: clean, then one ref_uid per distinct work
    for col in ("title", "authors", "venue", "raw"):
        refs[col] = refs[col].map(fix_text)
    refs["doi"] = refs["doi"].str.strip().str.lower()
    refs["ref_uid"] = assign_ref_uids(refs) if len(refs) else pd.Series(dtype=str)
    uid_of = {(p, k): u for p, k, u in zip(refs["paper_id"], refs["ref_key"], refs["ref_uid"])}
    has_info = {u for u, t, r in zip(refs["ref_uid"], refs["title"], refs["raw"]) if t or r}

    # --- sentences
    n_in = len(sentences)
    dropped: Counter = Counter()
    for col in ("sentence", "sentence_clean", "section"):
        sentences[col] = sentences[col].map(fix_text)
    uids, missing_refs = [], 0
    for p, keys in zip(sentences["paper_id"], sentences["ref_keys"]):
        row_uids = []
        for k in pu.split_list(keys):
            if (p, k) in uid_of:
                row_uids.append(uid_of[(p, k)])
            else:
                missing_refs += 1
        uids.append(pu.join_list(dict.fromkeys(row_uids)))
    if missing_refs:
        log.warning("%d citations name a ref_key missing from its paper's references.csv; dropped from ref_uids",
                    missing_refs)
    sentences["ref_uids"] = uids

    keep = pd.Series(True, index=sentences.index)

    def rule(name: str, mask: pd.Series) -> None:
        hit = keep & mask
        dropped[name] += int(hit.sum())
        keep[hit] = False

    rule("no_reference", sentences["ref_uids"] == "")
    words = sentences["sentence_clean"].str.split().str.len().fillna(0)
    if config.min_words:
        rule("too_short", words < config.min_words)
    if config.max_words:
        rule("too_long", words > config.max_words)
    if config.drop_without_reference_info:
        rule("references_without_title_or_raw",
             sentences["ref_uids"].map(lambda u: not any(x in has_info for x in pu.split_list(u))))
    if config.max_symbol_share < 1.0:
        rule("mostly_symbols_or_math", sentences["sentence_clean"].map(symbol_share) > config.max_symbol_share)
    if config.language_check:
        import py3langid

        rule(f"not_{config.language}", sentences["sentence_clean"].map(
            lambda t: py3langid.classify(t)[0] != config.language))
    if config.drop_duplicates:
        key = sentences["sentence_clean"].str.lower() + "\t" + sentences["ref_uids"]
        rule("duplicate", key.where(keep).duplicated(keep="first") & keep)
    kept = sentences[keep]

    # --- distinct references (only those cited by kept sentences, unless asked otherwise)
    cited = {u for cell in kept["ref_uids"] for u in pu.split_list(cell)}
    distinct = [{"ref_uid": uid, **merge_group(group)} for uid, group in refs.groupby("ref_uid", sort=True)]
    ref_dropped: Counter = Counter()
    if config.drop_uncited_references:
        ref_dropped["not_cited_by_a_kept_sentence"] = sum(1 for r in distinct if r["ref_uid"] not in cited)
        distinct = [r for r in distinct if r["ref_uid"] in cited]

    out.mkdir(parents=True, exist_ok=True)
    pu.atomic_write_csv(out / "sentences.csv", kept.to_dict("records"), SENTENCE_OUT)
    pu.atomic_write_csv(out / "references.csv", distinct, REFERENCE_OUT)
    n_distinct_all = refs["ref_uid"].nunique() if len(refs) else 0
    report = {
        "papers": int(sentences["paper_id"].nunique()) if n_in else 0,
        "sentences": {"in": n_in, "out": int(len(kept)), "dropped": dict(dropped)},
        "references": {
            "in": int(len(refs)), "distinct_works": int(n_distinct_all), "out": len(distinct),
            "dropped": dict(ref_dropped),
            "lookups_saved_by_dedup": int(len(refs) - n_distinct_all),
            "cited_by_several_papers": sum(1 for r in distinct if r["n_papers"] > 1),
        },
        "warnings": warnings,
    }
    pu.atomic_write_json(out / "clean_report.json", report)
    pu.print_summary("stage 05: merge and clean", report)
    return report


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
