"""What stages 07, 09 and 10 share about citing: DOIs, the catalogue of citable works,
retrieval over it, and the grounded prompt.

The catalogue is stage 06's ``catalogue.csv``: one row per work the pipeline resolved
(doi, title, authors, year, venue, abstract, cited_by_papers). It is the set of works the
assistant may cite. Retrieval over it (BM25 on title + venue + abstract + authors, by
``bm25s``) gives the candidates that a grounded prompt shows the model; stage 07 writes
grounded training pairs with the same prompt that stage 09 evaluates and stage 10 asks
with, so the three can never drift apart.

    from citation_tools import load_catalogue, CatalogueIndex, grounded_user_message
    works = load_catalogue(path)                      # list of dicts, "doi" normalised
    index = CatalogueIndex(works)
    hits = index.search("GNSS spoofing of ships", k=20)        # [(work, score), ...], best first
    message = grounded_user_message(request, [w for w, _ in hits])
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import pipeline_utils as pu

CATALOGUE_COLUMNS = ["doi", "title", "authors", "year", "venue", "abstract", "cited_by_papers"]

# Crossref's recommended pattern for modern DOIs (matches 74.4M of 74.9M of them)
WELL_FORMED = re.compile(r"^10\.\d{4,9}/[-._;()/:a-z0-9]+$", re.I)
DOI_LIKE = re.compile(r"(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{3,9}/[^\s\"'<>]+)", re.I)


def normalise_doi(text: str) -> str:
    """Lower case, no resolver prefix, no trailing punctuation (DOIs are case-insensitive)."""
    text = str(text or "").strip().lower()
    text = re.sub(r"^(doi:\s*|https?://(dx\.)?doi\.org/)", "", text)
    return text.rstrip(".,;:)]}>'\"")


def extract_dois(answer: str) -> list[str]:
    """Every DOI-like string of an answer, normalised, in order, duplicates dropped."""
    found = [normalise_doi(m.group(1)) for m in DOI_LIKE.finditer(answer or "")]
    return list(dict.fromkeys(d for d in found if d))


# ---------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------

def load_catalogue(path: Path) -> list[dict[str, Any]]:
    """Stage 06's catalogue.csv as a list of works; ``doi`` normalised, ``authors`` a list,
    ``year`` a string ('' when unknown). Raises SystemExit with one line when unusable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: no catalogue; run stage 06 first (it writes catalogue.csv)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("doi", "title") if c not in df.columns]
    if missing:
        raise SystemExit(f"{path}: not a catalogue (missing column(s) {', '.join(missing)})")
    works, seen = [], set()
    for row in df.to_dict("records"):
        doi = normalise_doi(row.get("doi", ""))
        if not doi or doi in seen:
            continue
        seen.add(doi)
        year = str(row.get("year", "") or "").split(".")[0]
        works.append({
            "doi": doi,
            "title": str(row.get("title", "") or "").strip(),
            "authors": pu.split_list(row.get("authors", "")),
            "year": year,
            "venue": str(row.get("venue", "") or "").strip(),
            "abstract": str(row.get("abstract", "") or "").strip(),
            "cited_by_papers": pu.split_list(row.get("cited_by_papers", "")),
        })
    return works


def first_author(work: dict[str, Any]) -> str:
    """The first author's surname as printed ('Surname, Given' or 'Given Surname')."""
    authors = work.get("authors") or []
    if not authors:
        return ""
    name = str(authors[0]).strip()
    if "," in name:
        return name.split(",")[0].strip()
    return name.split()[-1] if name.split() else name


def work_text(work: dict[str, Any]) -> str:
    """What retrieval indexes for a work: title, venue, authors, abstract."""
    return " ".join(filter(None, [work.get("title", ""), work.get("venue", ""),
                                  " ".join(work.get("authors") or []), work.get("abstract", "")]))


class CatalogueIndex:
    """BM25 (``bm25s``) over the catalogue's works; English stop words removed."""

    def __init__(self, works: list[dict[str, Any]]):
        import bm25s

        self.works = list(works)
        self._bm25s = bm25s
        self._retriever = None
        if self.works:
            tokens = bm25s.tokenize([work_text(w) for w in self.works], stopwords="en", show_progress=False)
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int = 20, allowed: set[str] | None = None) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` best works for ``query`` (restricted to DOIs in ``allowed`` when given),
        best first, as ``(work, score)``; works with no word in common score 0 and are left out."""
        if self._retriever is None or not str(query).strip():
            return []
        tokens = self._bm25s.tokenize([str(query)], stopwords="en", show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return []
        n = len(self.works)
        docs, scores = self._retriever.retrieve(tokens, k=n, show_progress=False)
        out = []
        for i, score in zip(docs[0], scores[0]):
            if score <= 0:
                break
            work = self.works[int(i)]
            if allowed is not None and work["doi"] not in allowed:
                continue
            out.append((work, float(score)))
            if len(out) >= k:
                break
        return out


# ---------------------------------------------------------------------------
# The grounded prompt (stage 07 writes it, stage 08 trains on it, 09 evaluates it, 10 asks with it)
# ---------------------------------------------------------------------------

GROUNDED_INSTRUCTION = ("Candidate works from the library (answer only with DOIs from this list, best first; "
                        "if none fits, answer: none):")


def candidate_line(work: dict[str, Any]) -> str:
    """One candidate as the model sees it: title, first author, year, DOI."""
    parts = [work.get("title", "").strip() or "(untitled)"]
    who = first_author(work)
    year = work.get("year", "")
    if who or year:
        parts.append(" ".join(filter(None, [who, f"({year})" if year else ""])))
    return f"- {' — '.join(parts)} — doi:{work['doi']}"


def grounded_user_message(request: str, candidates: Iterable[dict[str, Any]]) -> str:
    """The user message of a grounded pair: the request, then the candidate works one per line."""
    lines = [str(request).strip(), "", GROUNDED_INSTRUCTION]
    lines += [candidate_line(w) for w in candidates]
    return "\n".join(lines)


def candidates_in_message(message: str) -> list[str]:
    """The candidate DOIs a grounded user message offers, in order (what a constrained decoder may answer)."""
    return [normalise_doi(m) for m in re.findall(r"— doi:(\S+)\s*$", message or "", flags=re.M)]
