"""Rebuild the embedded sample corpus: LaTeX sources -> PDFs, the way arXiv compiles them.

    python demo/build_corpus.py            # needs pdflatex (Debian: texlive-latex-recommended)

Inputs (all in ``demo/corpus/``):
  papers.json   arXiv metadata of each sample paper and its citation style
  works.json    the cited works' bibliographic records (DOIs under Crossref's
                example prefix 10.5555, or arXiv DOIs with an impossible month
                13, so that no sample DOI can pass for a real one)
  src/*.tex     each paper's body, with \\cite / \\citep / \\citet commands

Output: ``demo/corpus/pdfs/<paper_id>.pdf``, compiled with natbib and hyperref
like arXiv's own builds, so every in-text citation is a link annotation to the
named destination ``cite.<bibkey>``. The bibliography is generated from
works.json, so the PDFs and the records the Crossref stand-in serves agree.
The PDFs are committed; rerun this only after editing the sources.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def initials(given: str) -> str:
    """'Ornulf Jan' -> 'O.~J.'; 'Pedro-Luis' -> 'P.-L.'"""
    parts = []
    for word in given.split():
        parts.append("-".join(p[0] + "." for p in word.split("-") if p))
    return "~".join(parts)


def format_authors(authors: list[list[str]]) -> str:
    """LaTeX author list as plainnat prints it: 'N.~Taylor, K.~Osei, and E.~Lindqvist'."""
    if len(authors) == 1 and authors[0][0] == "Organization":
        return f"{authors[0][1]} Organization"
    names = [f"{initials(given)}~{family}" for family, given in authors]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return ", ".join(names[:-1]) + ", and " + names[-1]


def natbib_label(work: dict) -> str:
    """The optional argument of \\bibitem that natbib's author-year mode reads."""
    authors = work["authors"]
    if authors[0][0] == "Organization":
        short = full = f"{{{authors[0][1]} Organization}}"
    else:
        fam = [a[0] for a in authors]
        short = fam[0] if len(fam) == 1 else (f"{fam[0]} and {fam[1]}" if len(fam) == 2 else f"{fam[0]} et~al.")
        full = fam[0] if len(fam) <= 2 else ", ".join(fam[:-1]) + ", and " + fam[-1]
    return f"{short}({work['year']}){full}"


def format_reference(work: dict) -> str:
    """One bibliography entry, in the plainnat layout most arXiv papers use."""
    a = format_authors(work["authors"])
    t, y, kind = work["title"], work["year"], work["type"]
    # BibTeX styles add no period after a title that ends in "?" or "!" (add.period$)
    tp = t if t.endswith(("?", "!")) else t + "."
    venue = work.get("container", "")
    pages = work.get("pages", "").replace("-", "--")
    if kind == "journal-article":
        vol = work.get("volume", "")
        if work.get("issue"):
            vol += f"({work['issue']})"
        text = f"{a}. {tp} \\emph{{{venue}}}, {vol}:{pages}, {y}."
    elif kind == "proceedings-article":
        text = f"{a}. {tp} In \\emph{{{venue}}}, pages {pages}, {y}."
    elif kind == "book-chapter":
        text = f"{a}. {tp} In \\emph{{{venue}}}, pages {pages}. {work.get('publisher', '')}, {y}."
    elif kind == "book":
        text = f"{a}. \\emph{{{t}}}. {work.get('publisher', '')}, {y}."
    elif kind == "report":
        text = f"{a}. {tp} {venue}, {work.get('publisher', '')}, {y}."
    elif kind == "posted-content":
        text = f"{a}. {tp} \\emph{{arXiv preprint arXiv:{work['arxiv_id']}}}, {y}."
    else:
        raise ValueError(f"unknown work type {kind!r} for {work['key']}")
    if work.get("print") == "doi":
        text += f" doi:{work['doi']}."
    return text


def cited_keys(body: str) -> list[str]:
    """Bib keys in order of first citation."""
    keys: list[str] = []
    for group in re.findall(r"\\cite[tp]?\*?(?:\[[^\]]*\])*\{([^}]*)\}", body):
        for key in group.split(","):
            key = key.strip()
            if key and key not in keys:
                keys.append(key)
    return keys


def expected_citations(paper_id: str) -> tuple[list[list[str]], list[dict]]:
    """Ground truth of one sample paper: the cited works' titles of each citation
    command in body order, and the records of every work in its bibliography."""
    works = {w["key"]: w for w in json.loads((CORPUS / "works.json").read_text(encoding="utf-8"))}
    body = (CORPUS / "src" / f"{paper_id}.tex").read_text(encoding="utf-8")
    groups = [[works[k.strip()]["title"] for k in group.split(",") if k.strip()]
              for group in re.findall(r"\\cite[tp]?\*?(?:\[[^\]]*\])*\{([^}]*)\}", body)]
    return groups, [works[k] for k in cited_keys(body)]


def render_tex(paper: dict, body: str, works: dict[str, dict], hyperref: bool = True) -> str:
    """The complete LaTeX document of one sample paper."""
    keys = cited_keys(body)
    missing = [k for k in keys if k not in works]
    if missing:
        raise KeyError(f"{paper['arxiv_id']}: cites unknown works {missing}")
    numeric = paper["style"] == "numeric"
    if not numeric:  # author-year bibliographies are alphabetical
        keys.sort(key=lambda k: (works[k]["authors"][0][0].lower(), works[k]["year"]))
    items = "\n".join(
        f"\\bibitem[{natbib_label(works[k])}]{{{k}}}\n{format_reference(works[k])}\n" for k in keys
    )
    natbib = "[numbers,sort&compress,square]{natbib}" if numeric else "[authoryear,round]{natbib}"
    options = "11pt,twocolumn" if paper.get("twocolumn") else "11pt"
    authors = " \\and ".join(paper["authors"])
    link = "\\usepackage[hidelinks]{hyperref}\n" if hyperref else ""
    return f"""\\documentclass[{options}]{{article}}
\\pdfinfoomitdate=1 \\pdftrailerid{{}} \\pdfsuppressptexinfo=-1
\\input{{glyphtounicode}}\\pdfgentounicode=1
\\usepackage[a4paper,margin=2.2cm]{{geometry}}
\\usepackage{natbib}
{link}\\title{{{paper['title']}}}
\\author{{{authors}}}
\\date{{}}
\\begin{{document}}
\\maketitle
\\begin{{abstract}}
{paper['abstract']}
\\end{{abstract}}
{body}
\\begin{{thebibliography}}{{99}}
{items}
\\end{{thebibliography}}
\\end{{document}}
"""


def compile_pdf(tex: str, target: Path) -> None:
    """pdflatex twice (for the citation labels), then copy the PDF to ``target``."""
    if not shutil.which("pdflatex"):
        raise SystemExit("error: pdflatex not found; install Debian's texlive-latex-recommended")
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", FORCE_SOURCE_DATE="1")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "paper.tex"
        src.write_text(tex, encoding="utf-8")
        for _ in range(2):
            proc = subprocess.run(
                ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                cwd=tmp, env=env, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"pdflatex failed for {target.name}:\n{proc.stdout[-2000:]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "paper.pdf", target)


def main() -> int:
    papers = json.loads((CORPUS / "papers.json").read_text(encoding="utf-8"))
    works = {w["key"]: w for w in json.loads((CORPUS / "works.json").read_text(encoding="utf-8"))}
    for paper in papers:
        paper_id = paper["arxiv_id"].replace("/", "_")
        body = (CORPUS / "src" / f"{paper_id}.tex").read_text(encoding="utf-8")
        compile_pdf(render_tex(paper, body, works), CORPUS / "pdfs" / f"{paper_id}.pdf")
        print(f"built {paper_id}.pdf ({len(cited_keys(body))} cited works)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
