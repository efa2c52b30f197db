"""Stage 02: let a person choose which downloaded papers go on.

    python 02_manual_curation/curate.py                       # writes/updates curation.csv
    # ... edit the keep column of 02_manual_curation/curation.csv in a spreadsheet ...
    python 02_manual_curation/curate.py                       # applies the edits

The sheet ``curation.csv`` lives beside this script, outside ``output/``, so it
survives reruns: new papers from stage 01 are appended, and every choice the person
made (keep, note, columns of their own) is kept. It shows what a paper can be judged
by: year, first author, title, categories, the abstract's opening and the arXiv link.
Each run links (or copies) the kept PDFs and e-prints into ``output/pdfs/`` and
``output/sources/`` and writes ``output/metadata.csv`` for them; papers no longer kept
are removed from ``output/`` so it always reflects the sheet exactly.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    """Curate stage 01's papers by hand through a spreadsheet."""

    input_dir: Path = HERE.parent / "01_arxiv_download" / "output"
    """Stage 01's output (metadata.csv, pdfs/, sources/)."""
    sheet: Path = HERE / "curation.csv"
    """The curation sheet a person edits (column keep: yes/no)."""
    output_dir: Path = HERE / "output"
    """Where the kept pdfs/, sources/, metadata.csv and run.json go."""
    exclude_categories: tuple[str, ...] = ()
    """Pre-set keep=no for papers in any of these arXiv categories (only for papers new to the sheet)."""
    exclude_title_keywords: tuple[str, ...] = ()
    """Pre-set keep=no for papers whose title contains any of these words (case-insensitive)."""
    min_year: int = 0
    """Pre-set keep=no for papers published before this year (0: no limit)."""
    abstract_chars: int = 300
    """How much of each abstract the sheet shows (cut at a word, marked with …)."""
    link: bool = True
    """Hard-link the PDFs and e-prints instead of copying them (falls back to a copy across file systems)."""
    force: bool = False
    """Re-link every kept file even if an identical one is already in output/."""
    verbose: bool = False
    """Debug logging."""


# The person's columns (keep, note) come first, the long text last, so the sheet reads left to right.
SHEET_COLUMNS = ["paper_id", "keep", "note", "year", "first_author", "title", "categories", "link", "abstract"]
# refreshed from stage 01's metadata on every run; everything else on the sheet is the person's
DERIVED_COLUMNS = ["year", "first_author", "title", "categories", "link", "abstract"]
# columns of the sheet's first layout, replaced by year and first_author
LEGACY_COLUMNS = {"authors", "published"}
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


class SheetError(ValueError):
    """The curation sheet cannot be applied; the message names the row."""


def rule_verdict(row: dict, config: Config) -> tuple[str, str]:
    """``keep`` and ``note`` for a paper new to the sheet, from the config's rules."""
    cats = set(pu.split_list(row.get("categories", "")))
    hit = sorted(cats & set(config.exclude_categories))
    if hit:
        return "no", f"rule: category {', '.join(hit)}"
    title = row.get("title", "").lower()
    for word in config.exclude_title_keywords:
        if re.search(r"\b" + re.escape(word.lower()) + r"\b", title):
            return "no", f"rule: title keyword '{word}'"
    year = (row.get("published") or "")[:4]
    if config.min_year and year.isdigit() and int(year) < config.min_year:
        return "no", f"rule: published {year} < {config.min_year}"
    return "yes", ""


def trim(text: str, limit: int) -> str:
    """``text`` cut at the last whole word within ``limit`` characters, marked with …."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + " …"


def sheet_cells(meta: dict, config: Config) -> dict[str, str]:
    """The cells of the sheet that describe a paper, from its stage 01 metadata."""
    authors = pu.split_list(meta.get("authors", ""))
    return {
        "year": (meta.get("published") or "")[:4],
        "first_author": authors[0] + (" et al." if len(authors) > 1 else "") if authors else "",
        "title": meta.get("title", ""),
        "categories": meta.get("categories", ""),
        "link": meta.get("abs_url") or f"https://arxiv.org/abs/{meta.get('arxiv_id') or meta['paper_id']}",
        "abstract": trim(meta.get("abstract", ""), config.abstract_chars),
    }


def read_sheet(path: Path) -> tuple[list[dict], list[str], dict[str, str]]:
    """The person's sheet as written (rows, columns) and each paper's keep decision (yes/no).
    A cell neutralised against formulas when written is read back as it was. Raises SheetError
    naming the bad row."""
    try:
        rows = pu.read_csv_rows(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SheetError(f"{path}: cannot read the sheet: {exc}") from exc
    rows = [{key: pu.spreadsheet_unsafe(value or "") for key, value in row.items() if key is not None} for row in rows]
    columns = list(rows[0]) if rows else []
    if rows and not {"paper_id", "keep"} <= set(columns):
        raise SheetError(f"{path}: the sheet needs the columns paper_id and keep (found {', '.join(columns)})")
    decisions = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        keep = (row.get("keep") or "").strip().lower()
        if keep not in YES | NO:
            raise SheetError(
                f"{path}: line {line} (paper {row.get('paper_id', '?')}): keep must be yes or no, "
                f"not {row.get('keep', '')!r}"
            )
        decisions[row["paper_id"]] = "yes" if keep in YES else "no"
    return rows, columns, decisions


def write_sheet(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write the sheet for a spreadsheet: UTF-8 with BOM, every cell that would run as a formula neutralised."""
    safe = ({c: pu.spreadsheet_safe(row.get(c, "")) for c in columns} for row in rows)
    pu.atomic_write_csv(path, safe, columns, encoding="utf-8-sig")


def sync_file(src: Path, dst: Path, link: bool, force: bool) -> None:
    """Make ``dst`` an identical copy of ``src`` (hard link when possible), atomically."""
    if not force and dst.exists():
        same_inode = dst.stat().st_ino == src.stat().st_ino and dst.stat().st_dev == src.stat().st_dev
        if same_inode or (dst.stat().st_size == src.stat().st_size and pu.sha256_file(dst) == pu.sha256_file(src)):
            return
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if link:
            os.link(src, tmp)
        else:
            shutil.copyfile(src, tmp)
    except OSError:  # cross-device link, or a file system without hard links
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def checked_files(row: dict, input_dir: Path) -> tuple[Path | None, Path | None, str]:
    """The PDF and e-print a metadata row names, each only if it is a file inside ``input_dir``
    (a crafted metadata.csv must not make this stage copy /etc/hostname), and a reason when the
    row cannot be used at all."""
    paper_id = row.get("paper_id", "")
    try:
        if pu.paper_id_from_arxiv_id(paper_id) != paper_id:
            raise ValueError(f"paper_id {paper_id!r} is not a file-safe arXiv id")
        pdf = pu.safe_path_under(input_dir, row.get("pdf_file", "")) if row.get("pdf_file") else None
    except ValueError as exc:
        return None, None, f"unsafe: {exc}"
    source = None
    if row.get("source_file"):
        try:
            source = pu.safe_path_under(input_dir, row["source_file"])
            if not source.name.startswith(f"{paper_id}.") or not source.is_file():
                source = None
        except ValueError:
            source = None
    return (pdf if pdf is not None and pdf.is_file() else None), source, ""


def main(config: Config) -> dict:
    """Merge stage 01's papers into the sheet, then publish the kept ones; returns the summary."""
    started = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir = Path(config.input_dir)
    meta_path = input_dir / "metadata.csv"
    if not meta_path.is_file():
        raise SystemExit(f"error: {meta_path} not found: run stage 01 first (or point --input-dir at its output)")
    metadata: dict[str, dict] = {}
    files: dict[str, tuple[Path, Path | None]] = {}
    missing_pdf, unsafe = [], []
    meta_rows = pu.read_csv_rows(meta_path)
    meta_columns = list(meta_rows[0]) if meta_rows else ["paper_id", "pdf_file"]
    meta_columns += [c for c in ("source_file", "source_format") if c not in meta_columns]
    for row in meta_rows:
        pdf, source, problem = checked_files(row, input_dir)
        if problem:
            unsafe.append(row.get("paper_id", ""))
            log.warning("metadata row %r skipped: %s", row.get("paper_id", ""), problem)
            continue
        if pdf is None:
            missing_pdf.append(row["paper_id"])
            continue
        metadata[row["paper_id"]] = row
        files[row["paper_id"]] = (pdf, source)
    if missing_pdf:
        log.info("%d papers in stage 01's metadata have no PDF and are left out", len(missing_pdf))

    sheet_path = Path(config.sheet)
    try:
        old_rows, old_columns, decisions = read_sheet(sheet_path) if sheet_path.exists() else ([], [], {})
    except SheetError as exc:
        raise SystemExit(f"error: {exc}") from exc

    # Refresh what describes each paper, keep what the person wrote, append papers new to the sheet.
    sheet = []
    for row in old_rows:
        meta = metadata.get(row["paper_id"])
        sheet.append({**row, **sheet_cells(meta, config)} if meta else dict(row))
    added = 0
    for paper_id, meta in metadata.items():
        if paper_id in decisions:
            continue
        keep, note = rule_verdict(meta, config)
        sheet.append({"paper_id": paper_id, "keep": keep, "note": note, **sheet_cells(meta, config)})
        decisions[paper_id] = keep
        added += 1
    columns = SHEET_COLUMNS + [c for c in old_columns if c not in SHEET_COLUMNS and c not in LEGACY_COLUMNS]
    if columns != old_columns or [{c: r.get(c, "") for c in columns} for r in sheet] != old_rows:
        write_sheet(sheet_path, sheet, columns)
        log.info("%s: %d papers added (keep=yes unless a rule said no); edit the keep column to curate",
                 sheet_path, added)

    out = Path(config.output_dir)
    pdf_out, src_out = out / "pdfs", out / "sources"
    pdf_out.mkdir(parents=True, exist_ok=True)
    src_out.mkdir(parents=True, exist_ok=True)
    kept_rows, not_downloaded = [], []
    for row in sheet:
        paper_id = row["paper_id"]
        if decisions.get(paper_id) != "yes":
            continue
        if paper_id not in metadata:
            not_downloaded.append(paper_id)
            continue
        pdf, source = files[paper_id]
        sync_file(pdf, pu.safe_child(pdf_out, f"{paper_id}.pdf"), config.link, config.force)
        kept = {**metadata[paper_id], "pdf_file": f"pdfs/{paper_id}.pdf"}
        if source is not None:
            sync_file(source, pu.safe_child(src_out, source.name), config.link, config.force)
            kept["source_file"] = f"sources/{source.name}"
        else:
            kept["source_file"], kept["source_format"] = "", "missing"
        kept_rows.append(kept)
    for paper_id in not_downloaded:
        log.warning("%s: keep=yes on the sheet but stage 01 has no PDF for it; skipped", paper_id)

    wanted = {Path(r["pdf_file"]).name for r in kept_rows} | {Path(r["source_file"]).name for r in kept_rows}
    removed = 0
    for folder in (pdf_out, src_out):
        for path in folder.iterdir():
            if path.is_file() and not path.name.startswith(".") and path.name not in wanted:
                path.unlink()
                removed += 1
    pu.atomic_write_csv(out / "metadata.csv", kept_rows, meta_columns)

    summary = {
        "papers_in": len(metadata),
        "on_sheet": len(sheet),
        "added_to_sheet": added,
        "kept": len(kept_rows),
        "kept_with_latex_source": sum(1 for r in kept_rows if r.get("source_format") in ("tar", "tex")),
        "excluded": sum(1 for v in decisions.values() if v == "no"),
        "skipped": {"no_pdf_in_stage01": len(missing_pdf), "kept_but_not_downloaded": len(not_downloaded),
                    "unsafe_metadata_row": len(unsafe)},
        "removed_from_output": removed,
        "sheet": str(sheet_path),
    }
    pu.write_run_json(out, "02_manual_curation", config, [meta_path, sheet_path], summary, started)
    pu.print_summary("stage 02: manual curation", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
