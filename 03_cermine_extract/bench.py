"""Benchmark of stage 03's builtin backend: speed and citation-linking quality.

    .venv/bin/python 03_cermine_extract/bench.py [--repeat 5]

Speed: pages and papers per second on one core (no process pool), on the five
demo PDFs and on a 14-page paper (tests/fixtures/pdf/long_paper.pdf).
Quality, against ground truth taken from the LaTeX sources: the share of
citation commands whose marker is linked to exactly the right references (each
reference identified by its closest true title), and the share of references
whose title and year are parsed exactly, character for character; on PDFs with
hyperref links and on the same papers compiled without them.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from lxml import etree  # noqa: E402
from rapidfuzz import fuzz, process  # noqa: E402

import builtin_backend  # noqa: E402
from demo.build_corpus import CORPUS, cited_keys, expected_citations  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "pdf"


def quality(xml: bytes, expected: list[list[str]], works: list[dict]) -> dict:
    root = etree.fromstring(xml)
    refs = {r.get("id"): r for r in root.iter("ref")}
    titles = [w["title"] for w in works]

    def work_of(ref) -> str:
        # identify the reference by its closest true title, so that a parsing slip in the
        # title text ("crosschecks") is counted under parsing, not under linking
        parsed = ref.findtext(".//article-title") or "".join(ref.itertext())
        best = process.extractOne(parsed, titles, scorer=fuzz.token_set_ratio)
        return best[0] if best and best[1] >= 85 else ""

    found = [[work_of(refs[rid]) for rid in x.get("rid").split() if rid in refs] for x in root.iter("xref")]
    right = sum(1 for f, e in zip(found, expected) if sorted(f) == sorted(e))
    truth = {w["title"]: str(w["year"]) for w in works}
    parsed_ok = sum(1 for r in refs.values() if truth.get(r.findtext(".//article-title")) == r.findtext(".//year"))
    return {"markers": len(expected), "linked_right": right, "references": len(works), "parsed_right": parsed_ok}


def long_paper_truth() -> tuple[list[list[str]], list[dict]]:
    works = {w["key"]: w for w in json.loads((CORPUS / "works.json").read_text())}
    body = (FIXTURES / "long_paper.tex").read_text()
    groups = [[works[k.strip()]["title"] for k in g.split(",")]
              for g in re.findall(r"\\cite[tp]?\*?(?:\[[^\]]*\])*\{([^}]*)\}", body)]
    return groups, [works[k] for k in cited_keys(body)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over each set")
    args = parser.parse_args()

    demo = sorted((CORPUS / "pdfs").glob("*.pdf"))
    cases = [(p, *expected_citations(p.stem), "links") for p in demo]
    cases.append((FIXTURES / "long_paper.pdf", *long_paper_truth(), "links"))
    for name, pid in (("nolinks_numeric", "2513.00001v1"), ("nolinks_authoryear", "2513.00002v1"),
                      ("nolinks_twocolumn", "2513.00003v2")):
        cases.append((FIXTURES / f"{name}.pdf", *expected_citations(pid), "patterns"))

    print(f"{'pdf':28} {'pages':>5} {'s/paper':>8} {'pages/s':>8} {'markers':>8} {'linked right':>13} {'refs right':>11}")
    totals = {"links": [0, 0, 0, 0], "patterns": [0, 0, 0, 0]}
    speed = {"demo": [0, 0.0, 0], "long": [0, 0.0, 0]}
    for pdf, expected, works, mode in cases:
        builtin_backend.convert(pdf)  # warm-up: imports, PDFium's first load
        began = time.perf_counter()
        for _ in range(args.repeat):
            xml, stats = builtin_backend.convert(pdf)
        per_paper = (time.perf_counter() - began) / args.repeat
        q = quality(xml, expected, works)
        t = totals[mode]
        t[0] += q["markers"]; t[1] += q["linked_right"]; t[2] += q["references"]; t[3] += q["parsed_right"]  # noqa: E702
        if mode == "links":
            key = "long" if pdf.stem == "long_paper" else "demo"
            speed[key][0] += stats["n_pages"]; speed[key][1] += per_paper; speed[key][2] += 1  # noqa: E702
        print(f"{pdf.name:28} {stats['n_pages']:5d} {per_paper:8.3f} {stats['n_pages'] / per_paper:8.1f} "
              f"{q['markers']:8d} {q['linked_right']:13d} {q['parsed_right']:6d}/{q['references']:<4d}")
    print()
    for key, (pages, seconds, papers) in speed.items():
        print(f"speed ({key}, 1 core): {pages / seconds:.0f} pages/s, {papers / seconds:.1f} papers/s, "
              f"{seconds / papers:.3f} s per paper of {pages / papers:.0f} pages")
    for mode, (m, r, n, p) in totals.items():
        print(f"quality ({'with hyperref links' if mode == 'links' else 'no links, by pattern'}): "
              f"{r}/{m} markers linked to the right references ({r / m:.1%}), "
              f"{p}/{n} references with exact title and year ({p / n:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
