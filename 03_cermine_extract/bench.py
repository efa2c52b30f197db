"""Benchmark of stage 03's builtin backend: speed and citation-linking quality.

    .venv/bin/python 03_cermine_extract/bench.py [--repeat 5]
    .venv/bin/python 03_cermine_extract/bench.py --real ../shared/realpdf [--repeat 3]

Speed: pages and papers per second on one core (no process pool), on the five
demo PDFs and on a 14-page paper (tests/fixtures/pdf/long_paper.pdf).
Quality, against ground truth taken from the LaTeX sources: the share of
citation commands whose marker is linked to exactly the right references (each
reference identified by its closest true title), and the share of references
whose title and year are parsed exactly, character for character; on PDFs with
hyperref links and on the same papers compiled without them.

``--real DIR`` measures on real published PDFs instead (a folder laid out as
``../shared/realpdf/``: PDFs, ``truth.csv`` with ``citation_markers`` per file,
``broken/`` files that must be reported, ``reference_outputs/*.cermine.xml``).
Stage 04's own reader turns each JATS into citing sentences; a (sentence,
reference) pair is right when a marker printed in the sentence names that
reference: a numeric marker holding the reference's printed label, or a
surname and year that both appear in the reference (an entry dated "2007b"
only when the sentence prints 2007b, or "2007a, b"). Recall = right pairs /
``citation_markers``, precision = right pairs / pairs written. Title accuracy
compares our titles with CERMINE's on the papers in ``reference_outputs``
(matched by printed label), case and punctuation aside.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import inspect
import json
import re
import statistics
import sys
import tempfile
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


# ---------------------------------------------------------------------------
# --real: real published PDFs
# ---------------------------------------------------------------------------

def load_stage04():
    """Stage 04's module (its folder name starts with a digit, so load it from its file)."""
    path = REPO / "04_xml_to_csv" / "xml_to_csv.py"
    spec = importlib.util.spec_from_file_location("stage04_xml_to_csv", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


MARKER_GROUPS = [re.compile(r"\[([\d,;\s–—-]+)\]"), re.compile(r"\(([\d,;\s–—-]+)\)"),
                 re.compile(r"(?<=[A-Za-z\)\]\.,;:’'”])\s?((?:\d{1,3}\s?[,–—\s-]\s?)*\d{1,3})(?=[\s.,;:)]|$)")]


def printed_numbers(sentence: str) -> set[int]:
    """Reference numbers printed as markers in a sentence: [3], [1-4], (2, 5), superscript-like 'word12,13'."""
    numbers: set[int] = set()
    sentence = re.sub(r"(?<=\d)e(?=\d)", "-", sentence)  # Elsevier's fonts map the en dash of "1–3" to "e"
    for pattern in MARKER_GROUPS:
        for m in pattern.finditer(sentence):
            for part in re.split(r"\s*[,;]\s*|(?<=\d)\s+(?=\d)", m.group(1).strip()):
                if r := re.fullmatch(r"(\d+)\s*[–—-]\s*(\d+)", part):
                    lo, hi = int(r.group(1)), int(r.group(2))
                    numbers.update(range(lo, hi + 1) if 0 < hi - lo < 60 else (lo, hi))
                elif part.isdigit():
                    numbers.add(int(part))
    return numbers


def pair_is_right(sentence: str, raw: str) -> bool:
    """Does a marker printed in the sentence name this reference (label, or surname + year)?"""
    label = re.match(r"^\s*\[?(\d{1,4})[\].]?\s", raw + " ")
    if label and int(label.group(1)) in printed_numbers(sentence):
        return True
    years = set(re.findall(r"(?<!\d)((?:1[6-9]|20)\d{2})[a-z]?(?!\d)", raw))
    cited_years = set(re.findall(r"(?<!\d)((?:1[6-9]|20)\d{2})[a-z]?(?!\d)", sentence)) & years
    if not cited_years:
        return False
    # "2007a" and "2007b" are two works: an entry whose year carries a letter is named only by that letter
    # ("Wang 2007a, b" names both)
    lettered = {m.group(1) + m.group(2) for m in re.finditer(r"(?<!\d)((?:1[6-9]|20)\d{2})([a-z])(?![a-z])", raw)}
    if lettered:
        printed = set()
        for m in re.finditer(r"(?<!\d)((?:1[6-9]|20)\d{2})([a-z](?:\s*,\s*[a-z](?![a-z]))*)(?![a-z])", sentence):
            printed.update(m.group(1) + letter for letter in re.findall(r"[a-z]", m.group(2)))
        if not lettered & printed:
            return False
    head = raw[:max(raw.find(y) for y in cited_years)] or raw
    names = {w for w in re.findall(r"[A-Z][\w'’\-]{1,}", head)
             if w not in {"The", "In", "And", "Proc", "Journal", "Vol"}}
    words = set(re.findall(r"[\w'’\-]+", sentence))
    return bool(names & words)


def normal_title(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", (text or "").lower()).strip()


def title_sample(ours: bytes, cermine: Path) -> tuple[int, int]:
    """(titles equal to CERMINE's, references compared), matching references by their printed label."""
    def by_label(root) -> dict[int, str]:
        out = {}
        for ref in root.iter("ref"):
            raw = " ".join(" ".join(ref.itertext()).split())
            if m := re.match(r"^\[?(\d{1,4})[\].]?\s", raw):
                out.setdefault(int(m.group(1)), ref.findtext(".//article-title") or "")
        return out

    truth = {k: v for k, v in by_label(etree.parse(str(cermine)).getroot()).items() if v}
    mine = by_label(etree.fromstring(ours))
    right = sum(1 for k, t in truth.items() if normal_title(mine.get(k, "")) == normal_title(t))
    return right, len(truth)


def run_real(folder: Path, repeat: int, min_pages: int, show_wrong: bool = False, only: str = "") -> int:
    stage04 = load_stage04()
    truth = {r["file"]: r for r in csv.DictReader(open(folder / "truth.csv", encoding="utf-8-sig"))}
    samples = {p.name.split(".cermine")[0]: p for p in (folder / "reference_outputs").glob("*.cermine.xml")}
    print(f"{'pdf':36} {'pages':>5} {'s/paper':>8} {'markers':>7} {'pairs':>6} {'right':>6} {'recall':>7} "
          f"{'prec.':>6}  status")
    tot = {"markers": 0, "pairs": 0, "right": 0, "capped": 0}
    seconds, cpu_seconds, failed, titles = [], [], [], [0, 0]
    config = stage04.Config(input_dir=folder, output_dir=folder)
    for pdf in sorted(folder.glob(only or "*.pdf")):
        row = truth.get(pdf.name, {})
        pages = int(row.get("pages") or 0)
        times, cpu_times = [], []
        try:
            for _ in range(repeat):
                began, cpu = time.perf_counter(), time.process_time()
                xml, stats = builtin_backend.convert(pdf)
                times.append(time.perf_counter() - began)
                cpu_times.append(time.process_time() - cpu)
        except Exception as exc:  # a crash is a figure here, not the end of the benchmark
            failed.append(pdf.name)
            print(f"{pdf.name:36} {pages:5d} {'':8} {row.get('citation_markers', ''):>7}  FAILED: "
                  f"{exc.__class__.__name__}: {exc}")
            continue
        per_paper = statistics.median(times)
        if next(iter(inspect.signature(stage04.read_paper).parameters)) == "data":
            paper = stage04.read_paper(xml, config)
        else:  # stage 04's older reader takes a path
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{pdf.stem}.cermxml"
                path.write_bytes(xml)
                paper = stage04.read_paper(path, config)
        raws = {}
        for ref in etree.fromstring(xml).iter("ref"):
            raws[ref.get("id")] = " ".join("".join(ref.itertext()).split())
        rows, _ = stage04.paper_rows(pdf.stem, paper, config)
        pairs = [(r["sentence"], k) for r in rows for k in stage04.pu.split_list(r["ref_keys"])]
        right = sum(1 for sentence, key in pairs if pair_is_right(sentence, raws.get(key, "")))
        if show_wrong:
            for sentence, key in pairs:
                if not pair_is_right(sentence, raws.get(key, "")):
                    print(f"    wrong: {sentence[:200]!r} -> {raws.get(key, '')[:80]!r}")
        markers = int(row.get("citation_markers") or 0)
        counted = pages >= min_pages
        if counted:
            seconds.append(per_paper)
            cpu_seconds.append(statistics.median(cpu_times))
            tot["markers"] += markers
            tot["pairs"] += len(pairs)
            tot["right"] += right
            tot["capped"] += min(right, markers)
        if pdf.stem in samples:
            r, n = title_sample(xml, samples[pdf.stem])
            titles[0] += r
            titles[1] += n
        recall = f"{right / markers:.2f}" if markers else "-"
        precision = f"{right / len(pairs):.2f}" if pairs else "-"
        print(f"{pdf.name:36} {pages:5d} {per_paper:8.3f} {markers:7d} {len(pairs):6d} {right:6d} {recall:>7} "
              f"{precision:>6}  {'' if counted else f'(under {min_pages} pages, not counted)'}")
    broken = []
    for pdf in sorted((folder / "broken").glob("*.pdf")):
        try:
            builtin_backend.convert(pdf)
            broken.append(f"{pdf.name}: converted (should have been reported)")
        except Exception as exc:
            broken.append(f"{pdf.name}: {exc.__class__.__name__}: {exc}")
    print()
    print(f"papers of {min_pages}+ pages: {len(seconds)}; failed: {len(failed)} {failed}")
    if tot["markers"] and tot["pairs"]:
        print(f"citing pairs: recall {tot['right']}/{tot['markers']} = {tot['right'] / tot['markers']:.3f}, "
              f"precision {tot['right']}/{tot['pairs']} = {tot['right'] / tot['pairs']:.3f}; "
              f"recall with each paper capped at its marker count (a marker naming two references is one unit in "
              f"truth.csv but two pairs): {tot['capped']}/{tot['markers']} = {tot['capped'] / tot['markers']:.3f}")
    if seconds:
        print(f"seconds per paper (median of {repeat} runs each, 1 core): median {statistics.median(seconds):.3f}, "
              f"max {max(seconds):.3f}; CPU time median {statistics.median(cpu_seconds):.3f} "
              f"(load average {open('/proc/loadavg').read().split()[0]})")
    if titles[1]:
        print(f"titles equal to CERMINE's on {', '.join(sorted(samples))}: {titles[0]}/{titles[1]}")
    print("broken files:")
    for line in broken:
        print(f"  {line}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=None, help="timed passes over each set (5; 3 with --real)")
    parser.add_argument("--real", type=Path, default=None, help="folder of real PDFs laid out as ../shared/realpdf")
    parser.add_argument("--show-wrong", action="store_true", help="--real: print each pair judged wrong")
    parser.add_argument("--only", default="", help="--real: a glob of the PDFs to measure (default: all)")
    parser.add_argument("--min-pages", type=int, default=3, help="--real: papers shorter than this are not counted")
    args = parser.parse_args()
    if args.real is not None:
        return run_real(args.real, args.repeat or 3, args.min_pages, args.show_wrong, args.only)
    args.repeat = args.repeat or 5

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
