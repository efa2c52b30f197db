"""Stage 02: let a person choose which downloaded papers go on.

    python 02_manual_curation/curate.py                       # writes/updates curation.csv
    # ... edit the keep column of 02_manual_curation/curation.csv in a spreadsheet ...
    python 02_manual_curation/curate.py                       # applies the edits

The sheet ``curation.csv`` lives beside this script, outside ``output/``, so it
survives reruns: new papers from stage 01 are appended, and every edit the person
made is kept. Each run links (or copies) the kept PDFs into ``output/pdfs/`` and
writes ``output/metadata.csv`` for them; papers no longer kept are removed from
``output/`` so it always reflects the sheet exactly.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    """Curate stage 01's papers by hand through a spreadsheet."""

    input_dir: Path = HERE.parent / "01_arxiv_download" / "output"
    """Stage 01's output (metadata.csv and pdfs/)."""
    sheet: Path = HERE / "curation.csv"
    """The curation sheet a person edits (column keep: yes/no)."""
    output_dir: Path = HERE / "output"
    """Where the kept pdfs/ and metadata.csv go."""
    exclude_categories: tuple[str, ...] = ()
    """Pre-set keep=no for papers in any of these arXiv categories (only for papers new to the sheet)."""
    exclude_title_keywords: tuple[str, ...] = ()
    """Pre-set keep=no for papers whose title contains any of these words (case-insensitive)."""
    min_year: int = 0
    """Pre-set keep=no for papers published before this year (0: no limit)."""
    link: bool = True
    """Hard-link the PDFs instead of copying them (falls back to a copy across file systems)."""
    force: bool = False
    """Re-link every kept PDF even if an identical file is already in output/."""
    verbose: bool = False
    """Debug logging."""


SHEET_COLUMNS = ["paper_id", "title", "authors", "published", "categories", "keep", "note"]
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


def read_sheet(path: Path) -> list[dict]:
    """Read the person's sheet and validate ``keep``; raises SheetError naming the bad row."""
    try:
        rows = pu.read_csv_rows(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetError(f"{path}: cannot read the sheet: {exc}") from exc
    if rows and not {"paper_id", "keep"} <= set(rows[0]):
        raise SheetError(f"{path}: the sheet needs the columns paper_id and keep (found {', '.join(rows[0])})")
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        keep = (row.get("keep") or "").strip().lower()
        if keep in YES:
            row["keep"] = "yes"
        elif keep in NO:
            row["keep"] = "no"
        else:
            raise SheetError(
                f"{path}: line {line} (paper {row.get('paper_id', '?')}): keep must be yes or no, "
                f"not {row.get('keep', '')!r}"
            )
    return rows


def sync_pdf(src: Path, dst: Path, link: bool, force: bool) -> None:
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


def main(config: Config) -> dict:
    """Merge stage 01's papers into the sheet, then publish the kept ones; returns the summary."""
    log = pu.setup_logging(config.verbose)
    meta_path = Path(config.input_dir) / "metadata.csv"
    if not meta_path.is_file():
        raise SystemExit(f"error: {meta_path} not found: run stage 01 first (or point --input-dir at its output)")
    metadata = {}
    missing_pdf = []
    for row in pu.read_csv_rows(meta_path):
        pdf = Path(config.input_dir) / row.get("pdf_file", "") if row.get("pdf_file") else None
        if pdf is None or not pdf.is_file():
            missing_pdf.append(row["paper_id"])
            continue
        metadata[row["paper_id"]] = row
    if missing_pdf:
        log.info("%d papers in stage 01's metadata have no PDF and are left out", len(missing_pdf))

    sheet_path = Path(config.sheet)
    try:
        sheet = read_sheet(sheet_path) if sheet_path.exists() else []
    except SheetError as exc:
        raise SystemExit(f"error: {exc}") from exc
    on_sheet = {row["paper_id"] for row in sheet}
    added = 0
    for paper_id, meta in metadata.items():
        if paper_id in on_sheet:
            continue
        keep, note = rule_verdict(meta, config)
        sheet.append({
            "paper_id": paper_id, "title": meta.get("title", ""), "authors": meta.get("authors", ""),
            "published": meta.get("published", ""), "categories": meta.get("categories", ""),
            "keep": keep, "note": note,
        })
        added += 1
    # Keep any extra columns the person added to the sheet.
    columns = SHEET_COLUMNS + [c for c in (sheet[0] if sheet else {}) if c not in SHEET_COLUMNS]
    if added or not sheet_path.exists():
        pu.atomic_write_csv(sheet_path, sheet, columns, encoding="utf-8-sig")  # BOM: Excel then reads UTF-8
        log.info("%s: %d papers added (keep=yes unless a rule said no); edit the keep column to curate",
                 sheet_path, added)

    out = Path(config.output_dir)
    pdf_out = out / "pdfs"
    pdf_out.mkdir(parents=True, exist_ok=True)
    kept_rows = []
    not_downloaded = []
    for row in sheet:
        if row["keep"] != "yes":
            continue
        meta = metadata.get(row["paper_id"])
        if meta is None:
            not_downloaded.append(row["paper_id"])
            continue
        src = Path(config.input_dir) / meta["pdf_file"]
        sync_pdf(src, pdf_out / f"{row['paper_id']}.pdf", config.link, config.force)
        kept_rows.append(meta)
    for paper_id in not_downloaded:
        log.warning("%s: keep=yes on the sheet but stage 01 has no PDF for it; skipped", paper_id)

    kept_ids = {r["paper_id"] for r in kept_rows}
    removed = 0
    for pdf in pdf_out.glob("*.pdf"):
        if pdf.stem not in kept_ids:
            pdf.unlink()
            removed += 1
    columns = list(next(iter(kept_rows), {}).keys()) or ["paper_id", "pdf_file"]
    pu.atomic_write_csv(out / "metadata.csv", kept_rows, columns)

    summary = {
        "papers_in": len(metadata),
        "on_sheet": len(sheet),
        "added_to_sheet": added,
        "kept": len(kept_rows),
        "excluded": sum(1 for r in sheet if r["keep"] == "no"),
        "skipped": {"no_pdf_in_stage01": len(missing_pdf), "kept_but_not_downloaded": len(not_downloaded)},
        "removed_from_output": removed,
        "sheet": str(sheet_path),
    }
    pu.print_summary("stage 02: manual curation", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
