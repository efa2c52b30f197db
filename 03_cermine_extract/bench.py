"""Benchmark of stage 03's builtin backend: speed and citation-linking quality.

    .venv/bin/python 03_cermine_extract/bench.py [--repeat 5]
    .venv/bin/python 03_cermine_extract/bench.py --real ../shared/realpdf devsets/pdf [--repeat 3]
    .venv/bin/python 03_cermine_extract/bench.py --latex devsets/latex [--repeat 3]
    .venv/bin/python 03_cermine_extract/bench.py --pairs devsets/pairs/MANIFEST.csv [--repeat 3]

Speed: pages and papers per second on one core (no process pool), on the five
demo PDFs and on a 14-page paper (tests/fixtures/pdf/long_paper.pdf).
Quality, against ground truth taken from the LaTeX sources: the share of
citation commands whose marker is linked to exactly the right references (each
reference identified by its closest true title), and the share of references
whose title and year are parsed exactly, character for character; on PDFs with
hyperref links and on the same papers compiled without them.

``--real DIR [DIR ...]`` measures on real published PDFs instead (a folder laid out as
``../shared/realpdf/``: PDFs, ``truth.csv`` with ``citation_markers`` per file,
``broken/`` files that must be reported, ``reference_outputs/*.cermine.xml``).
Stage 04's own reader turns each JATS into citing sentences; a (sentence,
reference) pair is right when a marker printed in the sentence names that
reference: a numeric marker holding the reference's printed label (also with a locator,
"[15, Proposition 4.3]"), or a
surname and year that both appear in the reference (an entry dated "2007b"
only when the sentence prints 2007b, or "2007a, b"). Recall = right pairs /
``citation_markers``, precision = right pairs / pairs written. Title accuracy
compares our titles with CERMINE's on the papers in ``reference_outputs``
(matched by printed label), case and punctuation aside. A folder may hold a
``MANIFEST.csv`` (as ``devsets/pdf/``) instead of ``truth.csv``: its ``file``,
``pages``, ``citation_markers`` columns are read the same way, rows with
``kept=no`` are skipped. Each paper is also given a producer class read from the
PDF's own metadata (pdfTeX/LuaTeX/XeTeX, dvips+Ghostscript, Word, publisher
pipelines such as Distiller/InDesign/XPP, other), and the figures are printed per
class; papers with a bibliography (``references`` > 0) that come out with no
reference or no linked marker are listed as reported empty.

``--latex DIR`` judges the PDF route on source + PDF pairs (``devsets/latex/``:
``MANIFEST.csv`` with ``slug`` and ``main_tex``, ``<slug>/paper.pdf`` beside the
source) by the source's own ``\\cite`` keys: the builtin backend converts
``paper.pdf``, stage 04 writes its CSVs, and ``../shared/realtex/judge/check.py``
judges them (its ``map_refs`` matches each extracted reference's text to the
source's bibliography entries).

``--pairs MANIFEST`` does the same for sources listed in ``devsets/pairs/MANIFEST.csv``
(in ``devsets/latex``, ``devsets/pairs``, ``../shared/realtex``, or measured and not
kept: read from the fetch tool's copy with ``--mirror``): each is compiled on demand
with the engine the manifest names (pdflatex, xelatex, lualatex; bibtex or biber)
into ``--pdf-cache`` (``~/.cache/pipeline-bench/pairs``, outside the repository: the
PDF is a derived file and is not kept), or the repository's own PDF is read where the
manifest names one. Needs TeX Live (``apt-get install texlive-latex-extra
texlive-publishers texlive-science texlive-bibtex-extra texlive-plain-generic
texlive-fonts-extra texlive-xetex texlive-luatex cm-super biber``); a source that does
not compile is listed with the reason and not counted. Every link the judge refuses is
classified from the source (``bench_latex.classify_refused`` with this judge's reference
mapping, plus ``UNSEEN``: a key cited where the judge's reader does not look), counted per
class with the papers it comes from, and precision is also printed over the links the
judge can judge at all (our diagnosis, not the judge's figure); ``--show-wrong`` lists
each wrong link, each refused link of class ``other`` and each cited key no right link
reached.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
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


# (and Journal de Physique's "/3,4/", its bibliography numbered "/1/")
MARKER_GROUPS = [re.compile(r"\[([\d,;\s–—-]+)\]"), re.compile(r"\(([\d,;\s–—-]+)\)"),
                 re.compile(r"(?<![\w/])/([\d,\s–—-]+)/(?![\w/])"),
                 re.compile(r"(?<=[A-Za-z\)\]\.,;:’'”])\s?((?:\d{1,3}\s?[,–—\s-]\s?)*\d{1,3})(?=[\s.,;:)]|$)"),
                 # raised right after an accented letter or a percent sign, no space between: "gestação2",
                 # "especificidade ≥ 90%20-25" (Cadernos Saúde Coletiva)
                 re.compile(r"(?<=[À-ÖØ-öø-ÿĀ-ž%])((?:\d{1,3}[,–—-])*\d{1,3})(?=[\s.,;:)]|$)")]


LOCATOR_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*,\s*(?=[^\]\d\s])[^\[\]]{1,40}\]")


def printed_numbers(sentence: str) -> set[int]:
    """Reference numbers printed as markers in a sentence: [3], [1-4], (2, 5), superscript-like 'word12,13'."""
    numbers: set[int] = set()
    sentence = re.sub(r"(?<=\d)e(?=\d)", "-", sentence)  # Elsevier's fonts map the en dash of "1–3" to "e"
    # a numeric marker with a locator, "[15, Proposition 4.3]", "[4, §D.1]", "[15, (3.1)–(3.3)]": the numbers
    # before the locator name the references
    for m in LOCATOR_MARKER.finditer(sentence):
        for part in re.split(r"\s*,\s*", m.group(1).strip()):
            numbers.add(int(part))
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
    # "[12] …", "12. …", "12 …", ACS's "(12) …", Word's "10.Hayta, …", Journal de Physique's "/12/ …"
    label = re.match(r"^\s*\[?(\d{1,4})[\].]?\s", raw + " ") or re.match(r"^\s*\((\d{1,3})\)\s", raw) \
        or re.match(r"^\s*(\d{1,3})\.(?=[A-Z][a-z])", raw) or re.match(r"^\s*/(\d{1,3})/\s", raw) \
        or re.match(r"^\s*\[(\d{1,4})\](?=[A-Z])", raw)  # "[10]H. Jiang, …": the label run into the author
    if label and int(label.group(1)) in printed_numbers(sentence):
        return True
    # a bibliography labelled by keys ("[Aho 85] A.V.Aho, …", "[Knu84] D. E. Knuth, …"): the sentence prints the
    # entry's key in brackets, alone or among others ("[Demers 79, Hook 84]")
    if key := re.match(r"^\s*\[([^\[\]]*[^\W\d_][^\[\]]*)\]", raw):
        wanted = " ".join(key.group(1).split())
        if any(wanted in (" ".join(part.split()) for part in re.split(r"[,;]", group))
               for group in re.findall(r"\[([^\[\]]{2,80})\]", sentence)):
            return True
    years = set(re.findall(r"(?<!\d)((?:1[6-9]|20)\d{2})[a-z]?(?!\d)", raw))
    cited_years = set(re.findall(r"(?<!\d)((?:1[6-9]|20)\d{2})[a-z]?(?!\d)", sentence)) & years
    if not cited_years:
        return False
    # "2007a" and "2007b" are two works: an entry whose year carries a letter is named only by that letter
    # ("Wang 2007a, b" names both)
    # (a decade in a title, "for the 1990s", is no lettered year)
    # (nor is a year inside an identifier: the DOI's "2016v21n47p82", SciELO's)
    lettered = {m.group(1) + m.group(2) for m in re.finditer(r"(?<!\d)((?:1[6-9]|20)\d{2})([a-z])(?![a-z\d])", raw)
                if not (m.group(2) == "s" and m.group(1).endswith("0"))}
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
    # a bibliography that sets its surnames in capitals ("EDVINSSON, L. (2001).": British Journal of
    # Pharmacology, JPET) names "Edvinsson, 2001" as well
    capitals = {w.lower() for w in names if w.isupper() and len(w) > 2}
    return bool(names & words) or bool(capitals & {w.lower() for w in words})


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


def producer_class(pdf: Path) -> str:
    """The class of program that made the PDF, from its Producer and Creator metadata."""
    import pypdfium2 as pdfium
    try:
        doc = pdfium.PdfDocument(str(pdf))
        meta = doc.get_metadata_dict()
        doc.close()
    except Exception:  # noqa: BLE001 - a broken file has no class
        return "unreadable"
    text = f"{meta.get('Producer', '')} {meta.get('Creator', '')}".lower()
    for cls, words in (("pdfTeX/LuaTeX/XeTeX", ("pdftex", "luatex", "xetex", "xdvipdfmx")),
                       ("dvips/dvipdfm + Ghostscript", ("dvips", "dvipdfm", "ghostscript", "tex output")),
                       ("Word/Office", ("word", "office", "libreoffice", "openoffice", "quartz")),
                       ("publisher pipeline (Distiller/InDesign/XPP/PDFlib)",
                        ("distiller", "indesign", "xpp", "pdflib", "arbortext", "3b2", "elsevier", "itext",
                         "adobe pdf library", "servigistics", "pdf-xchange", "apogee", "acrobat"))):
        if any(w in text for w in words):
            return cls
    return "other/unknown"


def read_truth(folder: Path) -> dict[str, dict]:
    """file -> truth row, from truth.csv (../shared/realpdf) or MANIFEST.csv (devsets/pdf, kept rows)."""
    for name in ("truth.csv", "MANIFEST.csv"):
        if (folder / name).is_file():
            rows = csv.DictReader(open(folder / name, encoding="utf-8-sig"))
            return {r["file"]: r for r in rows if (r.get("kept") or "yes").strip().lower() != "no"}
    raise SystemExit(f"error: {folder} has neither truth.csv nor MANIFEST.csv")


def run_real(folders: list[Path], repeat: int, min_pages: int, show_wrong: bool = False, only: str = "") -> int:
    stage04 = load_stage04()
    print(f"{'pdf':36} {'pages':>5} {'CPU s':>6} {'markers':>7} {'pairs':>6} {'right':>6} {'recall':>7} "
          f"{'prec.':>6} {'exp.pairs':>9}  class / status")
    tot = {"markers": 0, "pairs": 0, "right": 0, "capped": 0}
    seconds, cpu_seconds, failed, titles, empty, partial = [], [], [], [0, 0], [], []
    by_class: dict[str, list[int]] = {}
    items = []
    for folder in folders:
        truth = read_truth(folder)
        samples = {p.name.split(".cermine")[0]: p for p in (folder / "reference_outputs").glob("*.cermine.xml")}
        items += [(folder, pdf, truth.get(pdf.name, {}), samples) for pdf in sorted(folder.glob(only or "*.pdf"))
                  if pdf.name in truth or (folder / "truth.csv").is_file()]
    for folder, pdf, row, samples in items:
        config = stage04.Config(input_dir=folder, output_dir=folder)
        pages = int(row.get("pages") or 0)
        cls = producer_class(pdf)
        times, cpu_times = [], []
        try:
            for _ in range(repeat):
                began, cpu = time.perf_counter(), time.process_time()
                xml, stats = builtin_backend.convert(pdf)
                times.append(time.perf_counter() - began)
                cpu_times.append(time.process_time() - cpu)
        except Exception as exc:  # a crash is a figure here, not the end of the benchmark
            failed.append(pdf.name)
            print(f"{pdf.name:36} {pages:5d} {'':6} {row.get('citation_markers', ''):>7}  FAILED: "
                  f"{exc.__class__.__name__}: {exc}")
            continue
        per_paper = statistics.median(times)
        if int(row.get("references") or 0) > 0 and (not stats["n_references"] or not stats["n_citations"]):
            empty.append(f"{pdf.name} ({stats['n_references']} references, {stats['n_citations']} markers linked)")
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
        # a count checked by hand (devsets/pdf MANIFEST.csv's citation_pairs) wins over the pattern count
        expected_pairs = int(row["citation_pairs"]) if row.get("citation_pairs") else count_truth(pdf)["citation_pairs"]
        counted = pages >= min_pages
        if counted:
            seconds.append(per_paper)
            cpu_seconds.append(statistics.median(cpu_times))
            tot["markers"] += markers
            tot["pairs"] += len(pairs)
            tot["right"] += right
            tot["capped"] += min(right, markers)
            tot["expected_pairs"] = tot.get("expected_pairs", 0) + expected_pairs
            tot["pairs_capped"] = tot.get("pairs_capped", 0) + min(right, expected_pairs)
            c = by_class.setdefault(cls, [0, 0, 0, 0, 0, 0])
            c[0] += 1; c[1] += markers; c[2] += len(pairs); c[3] += right  # noqa: E702
            c[4] += expected_pairs; c[5] += min(right, expected_pairs)  # noqa: E702
        if pdf.stem in samples:
            r, n = title_sample(xml, samples[pdf.stem])
            titles[0] += r
            titles[1] += n
        recall = f"{right / markers:.2f}" if markers else "-"
        precision = f"{right / len(pairs):.2f}" if pairs else "-"
        if stats.get("partial"):
            partial.append(f"{pdf.name}: {stats['partial']}")
        print(f"{pdf.name[:36]:36} {pages:5d} {statistics.median(cpu_times):6.3f} {markers:7d} {len(pairs):6d} "
              f"{right:6d} {recall:>7} {precision:>6} {expected_pairs:9d}  {cls}"
              f"{'' if counted else f' (under {min_pages} pages, not counted)'}"
              f"{' | partial' if stats.get('partial') else ''}")
    broken = []
    for pdf in sorted(p for folder in folders for p in (folder / "broken").glob("*.pdf")):
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
    if tot.get("expected_pairs"):
        print(f"pair recall (right pairs, each paper capped at the pairs its markers name by pattern, over those "
              f"pairs): {tot['pairs_capped']}/{tot['expected_pairs']} = {tot['pairs_capped'] / tot['expected_pairs']:.3f}")
    print("per producer class (papers counted): pair recall, precision")
    for cls, (n, m, pairs, r, ep, pc) in sorted(by_class.items()):
        print(f"  {cls:52} {n:3d} papers  pair recall {pc}/{ep} = {pc / max(ep, 1):.3f}  precision {r}/{pairs} = "
              f"{r / max(pairs, 1):.3f}")
    print(f"papers with a bibliography reported empty: {len(empty)} {empty}")
    print(f"papers flagged partial: {len(partial)}")
    for line in partial:
        print(f"  {line}")
    if titles[1]:
        print(f"titles equal to CERMINE's on the reference_outputs papers: {titles[0]}/{titles[1]}")
    print("broken files:")
    for line in broken:
        print(f"  {line}")
    return 0


BIB_HEADING = re.compile(r"(?m)^\s*(?:\d+\.?\s*)?(?:References|REFERENCES|Bibliography|BIBLIOGRAPHY|Literature Cited|"
                         r"LITERATURE CITED|References and Notes|REFERENCES AND NOTES)\s*$")
COUNT_NUMERIC = re.compile(r"\[\d{1,3}(?:\s*[,–-]\s*\d{1,3})*\]")
COUNT_AUTHOR_YEAR = re.compile(r"\([^()]{0,200}?[A-Z][a-z]+[^()]{0,200}?(?:19|20)\d{2}[a-z]?[^()]{0,100}\)"
                               r"|\[[^\[\]]{0,200}?[A-Z][a-z]+[^\[\]]{0,200}?(?:19|20)\d{2}[a-z]?[^\[\]]{0,100}\]"
                               r"|[A-Z][a-z]+(?: et al\.| and [A-Z][a-z]+)? \((?:19|20)\d{2}[a-z]?\)")


def count_truth(pdf: Path) -> dict:
    """Citation units and bibliography entries counted by pattern over the PDF's text (as
    ../shared/realpdf/truth.csv counts, without its check by hand): the body is the text before the
    last bibliography heading; a unit is one bracket group ``[3]``, ``[1, 4-6]`` or, when the paper has
    none, one author-year group ``(Smith et al., 2001; Lee 2003)``, ``[Smith, 2001]`` or ``Smith (2001)``; the entries are
    the printed labels ``[n]``/``n.`` at line starts after the heading, else its lines that start with a
    capitalised surname followed by a comma. ``citation_pairs``: the (marker, reference) pairs those units
    name ("[1, 4-6]" names 4, "(Smith 2001, 2003; Lee 2003)" 3), the denominator of the pair recall. A numbered bibliography without bracket groups whose body
    prints numbers in parentheses counts each "(8–10)" group (equation numbers included: an upper bound)."""
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(str(pdf))
    text = "\n".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    pages = len(doc)
    doc.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    heads = list(BIB_HEADING.finditer(text))
    # a running head "References" over later pages of the bibliography is not its start: the heading is the
    # last one that the first label follows
    opening = [h for h in heads if re.match(r"\s*(?:\[1\]|1\.)\s", text[h.end():h.end() + 300])]
    heads = opening[-1:] or heads
    if not heads:  # revtex and others print no heading: the bibliography starts at the last "[1]"
        first = [m for m in re.finditer(r"(?m)^\s*\[1\]\s", text) if m.start() > len(text) // 3]
        heads = first[-1:]
    body, bib = (text[:heads[-1].start()], text[heads[-1].start():]) if heads else (text, "")
    numeric = len(COUNT_NUMERIC.findall(body))
    author_year = len(COUNT_AUTHOR_YEAR.findall(body))
    numeric_pairs = sum(len(printed_numbers(m.group(0))) for m in COUNT_NUMERIC.finditer(body))
    author_year_pairs = sum(max(1, len(re.findall(r"(?:19|20)\d{2}[a-z]?|(?<=, )[a-z]\b", m.group(0))))
                            for m in COUNT_AUTHOR_YEAR.finditer(body))
    labels = re.findall(r"(?m)^\s*(?:\[(\d{1,3})\]|(\d{1,3})\.\s)", bib)
    numbers = [int(a or b) for a, b in labels]
    run, last = 0, 0  # the labels that run 1, 2, 3, … (a page number or a volume is out of that run)
    for n in numbers:
        if n == last + 1:
            run, last = run + 1, n
    bracketed = len(re.findall(r"(?m)^\s*\[[A-Z][^\]]{1,60}(?:19|20)\d{2}[a-z]?\]", bib))
    references = run if run >= 3 else bracketed if bracketed >= 3 else \
        len(re.findall(r"(?m)^[A-Z][A-Za-z'’\-]+,\s", bib))
    style = "numeric" if numeric >= max(3, author_year / 2) else ("author-year" if author_year >= 3 else "?")
    markers = numeric if style == "numeric" else author_year if style == "author-year" else 0
    pairs = numeric_pairs if style == "numeric" else author_year_pairs if style == "author-year" else 0
    if style != "numeric" and run >= 5:  # a numbered bibliography cited "(8–10)" (Vancouver): one unit a group
        groups = re.findall(r"\(\d{1,3}(?:\s*[,–-]\s*\d{1,3})*\)", body)
        if len(groups) >= max(5, author_year):
            style, markers = "numeric in parentheses", len(groups)
            pairs = sum(len(printed_numbers(g)) for g in groups)
    return {"pages": pages, "citation_style": style, "citation_markers": markers, "citation_pairs": pairs,
            "references": references if heads else 0}


def unresolved_citations(pdf: Path) -> int:
    """How many "[?]" (citations LaTeX could not resolve) the PDF prints."""
    import pypdfium2 as pdfium
    doc = pdfium.PdfDocument(str(pdf))
    n = sum(doc[i].get_textpage().get_text_range().count("[?]") for i in range(len(doc)))
    doc.close()
    return n


def judge_pdf_paper(check, paper_dir: Path, main_tex: str, csv_dir: Path, pid: str,
                    show_wrong: bool = False) -> dict:
    """check.judge_paper, with one addition to its reference mapping for what a PDF prints: a reference
    that matches no entry by check.map_refs' rule (60% of the entry's words in the reference) is mapped to
    the entry with the DOI it prints, else the entry whose fields (all of them, read with bibtexparser) hold
    70% of the reference's own words. Styles that print no title
    (AASTeX, physics journals: "Angus, R., … 2015, MNRAS, 450, 1787") never reach 60% of a .bib entry that
    has one. And the source's own citation macros are expanded before the judge reads it
    (``\\newcommand{\\mct}{\\citet{mcquillan2014}}``, then ``\\mct`` in the text: ``_cite_macros``); a
    title-less reference is matched by its first author and year (``_author_year_mapping``). A bibliography
    typed inline (``thebibliography`` in the document, which the judge's ``bibliography`` does not read: it reads
    ``\\bibitem`` entries from ``.bbl`` files) is read too (``bench_latex.inline_bibliography``): its entries are
    what the PDF prints, and without them the judge has no entry and counts every link of the paper wrong; so
    is a cited key's ``.bib`` entry that the judge's reader leaves out (no title: ``_unread_entries``)."""
    import pandas as pd
    import truth
    bib, primary = check.bibliography(paper_dir)
    # a bibliography typed inline (``thebibliography`` in the document or a file it \input's), which the judge's
    # ``bibliography`` does not read (it reads \bibitem entries from .bbl files): the PDF prints these entries,
    # and they are the source's truth as a .bbl's would be (primary: recall counts them)
    from bench_latex import inline_bibliography
    inline = {k: _plain_entry(v) for k, v in inline_bibliography(paper_dir, main_tex).items() if k not in bib}
    if inline:
        bib, primary = {**bib, **inline}, set(primary) | set(inline)
    from truth import cited_keys, tokens
    body_of = truth.body
    expanded = _cite_macros(body_of, paper_dir, main_tex)
    check.body = truth.body = lambda *_: expanded
    try:
        keys = cited_keys(paper_dir, main_tex)
        ctx = check.contexts(paper_dir, main_tex)
    finally:
        check.body = truth.body = body_of
    unread_entries = _unread_entries(paper_dir, set(keys) - set(bib))
    if unread_entries:  # a cited key whose .bib entry the judge leaves out (no title): its fields are the entry
        bib, primary = {**bib, **unread_entries}, set(primary) | set(unread_entries)
    cited = {k for k in keys if k in bib}
    counted = {k for k in keys if k in primary}
    sp, rp = csv_dir / f"{pid}.sentences.csv", csv_dir / f"{pid}.references.csv"
    if not sp.exists() or not rp.exists():
        return dict(paper=pid, keys=len(counted), reached=0, links=0, right=0, note="no stage 04 output")
    sents = pd.read_csv(sp, dtype=str).fillna("")
    refs = pd.read_csv(rp, dtype=str).fillna("")
    ref_map = check.map_refs(refs, bib, cited)
    # the judge reads only a .bib entry's title: for the fallback, every field of the entry (authors, year,
    # journal, volume, pages, DOI), read with bibtexparser
    import bibtexparser
    full = dict(bib)
    first_author: dict[str, tuple[str, str]] = {}  # cited key -> (first author's surname in letters, year)
    unread: dict[str, set[str]] = {}  # key cited where the judge does not read -> the words of its .bib entry
    # every key a citation command of any .tex file names (a table \input from its own file, a macro): what the
    # judge's reader sees is ``cited``
    anywhere = {k.strip() for path in paper_dir.rglob("*.tex") if path.is_file()
                for m in re.finditer(r"\\[A-Za-z]*cite[A-Za-z]*\*?\s*(?:\[[^\]]*\]\s*)*\{([^}]*)\}",
                                     path.read_text(encoding="utf-8", errors="replace"))
                for k in m.group(1).split(",")}
    # and every key cited through the author's own macro that takes it as an argument (fashion-ieee's
    # ``\lithead[UVTON]{key}{...}``, defined on ``\cite``), which the judge's reader does not see either
    from bench_latex import macro_cited_keys
    main = Path(main_tex)
    anywhere |= macro_cited_keys(truth.expand(paper_dir / main.parent, main.name) + "".join(
        truth.strip_comments(truth.read(p) or "") for p in sorted(paper_dir.rglob("*"))
        if p.suffix in (".sty", ".cls") and p.is_file()), expanded, truth.CITE)
    for path in paper_dir.rglob("*.bib"):
        try:
            library = bibtexparser.parse_string(path.read_text(encoding="utf-8", errors="replace"))
        except Exception:  # noqa: BLE001 - a .bib bibtexparser cannot read keeps the judge's text
            continue
        for entry in library.entries:
            if entry.key in anywhere and entry.key not in cited:  # cited, but not where the judge reads
                unread[entry.key] = tokens(" ".join(str(f.value) for f in entry.fields))
            if entry.key in cited:
                full[entry.key] = " ".join(str(f.value) for f in entry.fields)
                fields = {f.key.lower(): str(f.value) for f in entry.fields}
                first = re.split(r"\s+and\s+", fields.get("author", "").strip())[0]
                surname = first.split(",")[0] if "," in first else (first.split() or [""])[-1]
                year = re.search(r"(?:1[6-9]|20)\d{2}", fields.get("year", "") or fields.get("date", ""))
                if _letters(surname) and year:
                    first_author[entry.key] = (_letters(surname), year.group(0))
    _author_year_mapping(refs, ref_map, first_author, full, cited)
    truth_toks = {k: tokens(full[k]) for k in cited}
    dois = {}
    for k in cited:
        for doi in re.findall(r"10\.\d{4,9}/[^\s,}\\]+", full[k]):
            dois.setdefault(doi.lower().rstrip("."), set()).add(k)
    for r in refs.itertuples():
        if ref_map.get(str(r.ref_key)):
            continue
        found = {k for doi in re.findall(r"10\.\d{4,9}/[^\s,]+", str(r.raw) + " " + str(getattr(r, "doi", "")))
                 for k in dois.get(doi.lower().rstrip("."), set())}
        if found:  # the same DOI printed in the reference and written in the entry
            ref_map[str(r.ref_key)] = found
            continue
        got = tokens(str(r.raw))
        if len(got) < 4:
            continue
        scored = [(len(t & got), k) for k, t in truth_toks.items() if len(t & got) >= 0.7 * len(got)]
        best = max((n for n, _ in scored), default=0)
        ref_map[str(r.ref_key)] = {k for n, k in scored if n == best and best > 0}
    reached, links, right = set(), 0, 0
    for row in sents.itertuples():
        stoks = {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", row.sentence)}
        for rk in [x for x in row.ref_keys.split(check.SEP) if x]:
            links += 1
            hit = {k for k in ref_map.get(rk, set())
                   if not [c for c in ctx.get(k, []) if len(c) >= 3]
                   or any(len(c & stoks) >= 0.5 * len(c) for c in ctx[k] if len(c) >= 3)}
            if hit:
                right += 1
                reached |= hit
            elif show_wrong:
                raw = refs.loc[refs.ref_key == rk, "raw"]
                print(f"    wrong: {row.sentence[:160]!r} -> {(raw.iloc[0] if len(raw) else '')[:80]!r} "
                      f"(mapped to {sorted(ref_map.get(rk, set()))})")
    # why the judge refused each wrong link, read from the source (bench_latex.classify_refused), with the same
    # expanded macros the judge read
    from bench_latex import classify_refused
    bibliography_of = truth.bibliography
    check.body = truth.body = lambda *_: expanded
    truth.bibliography = lambda *_: (bib, primary)  # with the inline entries read above
    try:
        refused = classify_refused(paper_dir, main_tex, csv_dir, pid, ref_map) if links > right else []
    finally:
        check.body = truth.body = body_of
        truth.bibliography = bibliography_of
    for x in refused:  # the reference of a key the source cites where the judge does not read (a file it does
        got = tokens(x["reference"])  # not \input, a macro), matched to its .bib entry as above
        if not x["mapped"] and len(got) >= 4 and any(len(t & got) >= 0.7 * len(got) for t in unread.values()):
            x["class"] = UNSEEN
    for x in refused if show_wrong else ():
        if x["class"] == "other":
            print(f"    other: {x['sentence'][:200]!r} -> {x['reference'][:80]!r} (judge's words: "
                  f"{' '.join(x['judge'][:16])})")
    if show_wrong:  # and the keys no right link reached, with the references stage 04 mapped to them
        for k in sorted(counted - reached):
            mapped = [rk for rk, ks in ref_map.items() if k in ks]
            print(f"    missed: {k} ({full.get(k, '')[:70]!r}); references mapped to it: {mapped}")
    return dict(paper=pid, keys=len(counted), reached=len(reached & counted), links=links, right=right, note="",
                refused=[x["class"] for x in refused])


def _plain_entry(entry: str) -> str:
    """An inline ``\\bibitem``'s text as it prints (pylatexenc): the judge's words of "Alfv\\'en" are "alfven", a
    PDF's "Alfvén" gives "alfv", and revtex's ``\\bibinfo{doi}{…}`` fields, which the PDF does not print, are
    left out; the raw text where pylatexenc cannot read it."""
    from pylatexenc.latex2text import LatexNodes2Text
    entry = re.sub(r"\\bibinfo\s*\{(?:doi|url|eprint|issn|isbn)\}\s*\{[^{}]*\}", " ", entry)
    entry = re.sub(r"\\bibinfo\s*\{[a-z]+\}", " ", entry)  # \bibinfo{author}{L.~Chen}: the field's value only
    try:
        return LatexNodes2Text(math_mode="verbatim").latex_to_text(entry)
    except Exception:  # noqa: BLE001
        return entry


def _unread_entries(paper_dir: Path, wanted: set[str]) -> dict[str, str]:
    """key -> every field of its ``.bib`` entry (read with bibtexparser), for the keys of ``wanted`` (cited, and
    not in the judge's bibliography) that have one the judge's ``_bib`` leaves out: an entry without a title
    (physics and astronomy .bib files from INSPIRE or ADS often have none: "Bzdak:2012tp" with author, journal,
    volume, year, pages) or written ``@article(key, ...)``. The PDF prints these entries (elsarticle-num, revtex:
    no title either), and without them the judge counted every link to them wrong (hp16-els: 22 links, none
    right)."""
    if not wanted:
        return {}
    import bibtexparser
    out: dict[str, str] = {}
    for path in sorted(paper_dir.rglob("*.bib")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if not any(k in text for k in wanted):
            continue
        try:
            library = bibtexparser.parse_string(text)
        except Exception:  # noqa: BLE001 - a .bib bibtexparser cannot read adds nothing
            continue
        for entry in library.entries:
            if entry.key in wanted and entry.key not in out:
                out[entry.key] = " ".join(str(f.value) for f in entry.fields)
    return out


UNSEEN = "cited where the judge does not read"
"""``bench.py --pairs``' class of a refused link, before ``bench_latex.REFUSED_CLASSES``: the reference is a key's
whose citation the judge's reader does not see (in a file it does not ``\\input``, through a macro)."""


def _cite_macros(body_of, paper_dir: Path, main_tex: str) -> str:
    """The source's body as ``body_of`` (the judge's ``truth.body``) reads it, with the author's macros that
    take no argument and hold a citation (``\\newcommand{\\mct}{\\citet{mcquillan2014}}``, defined in the
    preamble or the body) replaced by what they hold, as LaTeX typesets them: the judge reads ``\\cite``
    commands only, and a citation made through such a macro was no citation to it (kinematics-and-rotation
    cites its main catalogue 11 times as ``\\mct``)."""
    import truth
    main = Path(main_tex)
    whole = truth.expand(Path(paper_dir) / main.parent, main.name)
    macros = {}
    for m in re.finditer(r"\\(?:re)?newcommand\*?\s*\{?\\([A-Za-z]+)\}?\s*\{", whole):
        inner, _ = truth._braced(whole, m.end() - 1)
        if truth.CITE.search(inner) and "#" not in inner:
            macros[m.group(1)] = inner
    text = body_of(paper_dir, main_tex)
    if not macros:
        return text
    names = "|".join(map(re.escape, sorted(macros, key=len, reverse=True)))
    while d := re.search(r"\\(?:re)?newcommand\*?\s*\{?\\(?:" + names + r")\}?\s*(?=\{)", text):  # a definition is no use
        _, end = truth._braced(text, d.end())
        text = text[:d.start()] + " " + text[end:]
    return re.sub(r"\\(" + names + r")(?![A-Za-z])", lambda m: " " + macros[m.group(1)] + " ", text)


def _letters(text: str) -> str:
    """A name as plain lower-case letters: LaTeX accents and braces, diacritics and spaces dropped
    ("{\\\"O}zel" and "Özel" both give "ozel")."""
    import unicodedata
    text = re.sub(r"\\[a-zA-Z]+\s*|\\.", "", text)
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if c.isalpha() and c.isascii()).lower()


def _surname_first(raw: str) -> str:
    """A reference without its printed label ("20 ", "[3] ", "(4) ", "12. ") and the first author's initials
    before the surname ("E. K. ", "J.-L. ", "R. J-B. "): where its first author's surname is written."""
    text = re.sub(r"^\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\d{1,4}\.?(?=\s))\s*", "", raw)
    return re.sub(r"^(?:(?:[A-Z]-[A-Z]\.|[A-Z][a-z]?\.(?:-[A-Z]\.)?)\s*)+", "", text)


def _author_year_mapping(refs, ref_map: dict, first_author: dict, full: dict, cited: set) -> None:
    """Journals that print no title ("Ross A. J., et al., 2020, MNRAS, 498, 2354": MNRAS, AASTeX, physics)
    leave ``check.map_refs`` only the title-less words of a reference, and it maps such a reference to an
    entry whose few words any reference of that journal holds (a .bib entry of "Monthly Notices of the Royal
    Astronomical Society 2020"), or to none. Where the entries it names have a first author the reference does
    not print, the one cited entry whose first author's surname opens the reference and whose year it prints
    is the entry (several such: the one that also shares a volume, page or arXiv number with it). A reference
    that prints its label and the first author's initials before the surname ("20 E. Runge and E. K. Gross,
    Phys. Rev. Lett., 1984", "A. D. Becke, Phys. Rev. A 38, 3098 (1988)": RSC, AIP, physics styles) opens, for
    this rule, at the surname (``_surname_first``)."""
    for r in refs.itertuples():
        raw = str(r.raw)
        opening = _letters(_surname_first(raw)[:60])
        mapped = ref_map.get(str(r.ref_key), set())
        if mapped and any(k in first_author and first_author[k][0] in opening for k in mapped):
            continue  # the entry it names has the reference's first author: the judge's match stands
        if mapped and not all(k in first_author for k in mapped):
            continue  # an entry with no author to check against: leave the judge's match
        found = [k for k, (surname, year) in first_author.items()
                 if opening.startswith(surname) and re.search(rf"(?<!\d){year}(?!\d)", raw)]
        if len(found) > 1:
            numbers = set(re.findall(r"\d{2,}", raw)) - {first_author[k][1] for k in found}
            found = [k for k in found if numbers & set(re.findall(r"\d{2,}", full[k]))]
        if len(found) == 1:
            ref_map[str(r.ref_key)] = set(found)


def run_latex(folder: Path, repeat: int, show_wrong: bool = False, only: str = "") -> int:
    """The builtin backend on the PDFs kept beside LaTeX sources, judged by the sources' own \\cite keys."""
    manifest = list(csv.DictReader(open(folder / "MANIFEST.csv", encoding="utf-8-sig")))
    items = [(m["slug"], folder / m["slug"] / "paper.pdf", folder / m["slug"], m["main_tex"], m["producer_class"])
             for m in manifest if (folder / m["slug"] / "paper.pdf").is_file()
             and (not only or Path(m["slug"]).match(only))]  # a source without its PDF judges the LaTeX route only
    return judge_pairs(items, repeat, show_wrong)


PAIRS_CACHE = Path.home() / ".cache" / "pipeline-bench" / "pairs"
ENGINES = {"pdflatex": "-pdf", "xelatex": "-xelatex", "lualatex": "-lualatex"}


def pair_source(row: dict, mirror: Path, tmp: Path) -> Path | None:
    """The folder holding a pair's LaTeX source: ``devsets/...`` or ``../shared/...`` (relative to the
    repository), or ``mirror`` (a source measured and not kept: the main file's top folder at the manifest's
    commit, read with ``git archive`` from the fetch tool's copy ``MIRROR/owner+name/repo``)."""
    if row["source"] != "mirror":
        path = (REPO / row["source"]).resolve()
        return path if path.is_dir() else None
    git_dir = mirror / row["repo"].replace("/", "+") / "repo"
    if not git_dir.is_dir():
        return None
    import subprocess
    top = row["main_tex"].split("/")[0] if "/" in row["main_tex"] else ""
    out = tmp / row["slug"]
    out.mkdir(parents=True)
    git = ["git", "-C", str(git_dir)]
    archive = subprocess.run([*git, "archive", row["commit"], *([top] if top else [])], capture_output=True)
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
        return out
    # the copy lacks some large files (a big PDF or figure): take the files it has, one by one
    names = subprocess.run([*git, "ls-tree", "-r", "--name-only", row["commit"], *([top] if top else [])],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in names:
        blob = subprocess.run([*git, "cat-file", "blob", f"{row['commit']}:{name}"], capture_output=True)
        if blob.returncode == 0:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(blob.stdout)
    return out


def compile_pair(src: Path, main_tex: str, engine: str, cache: Path, timeout: int = 120) -> tuple[Path | None, str]:
    """Compile a source (``engine``: pdflatex, xelatex or lualatex; bibtex or biber as the source asks, a
    shipped ``.bbl`` used as it is) into ``cache``, keyed by the source's bytes and the engine: the PDF
    is a derived file, made on demand and never kept in the repository. The main file it was compiled from is
    written beside it (``.main``): a manifest that names another main file of the same source (a repository
    holding two papers) compiles again rather than reading the other paper's PDF; a cached PDF with no
    ``.main`` (made before this was recorded) is taken as it is. Missing figures are drawn as frames
    (graphicx's draft setting). Returns (pdf or None, how it was obtained or why it failed)."""
    import hashlib
    import shutil
    import subprocess
    digest = hashlib.sha256(engine.encode())
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(src)).encode() + b"\0" + f.read_bytes())
    out = cache / f"{src.name}-{engine}-{digest.hexdigest()[:12]}.pdf"
    made_from = out.with_suffix(".main")
    if out.is_file() and (not made_from.is_file() or made_from.read_text() == main_tex):
        return out, f"cached, {out.with_suffix('.how').read_text()}" if out.with_suffix(".how").is_file() else "cached"
    if not shutil.which(engine):
        return None, f"{engine} not installed (texlive-latex-extra, texlive-publishers, texlive-science, biber)"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(src, work, symlinks=True)  # a link to a file the repository does not hold stays a link
        main = work / main_tex
        # a shipped .bbl is what arXiv would typeset; one that holds no entry (a failed biber run committed with
        # the source) is no bibliography, and is rebuilt from the .bib like a missing one
        bbl_file = main.with_suffix(".bbl")
        shipped_bbl = bbl_file.is_file() and re.search(r"\\bibitem|\\entry\{", bbl_file.read_text(errors="replace"))
        how = "compiled" if shipped_bbl or not bbl_file.is_file() else "compiled (the shipped .bbl holds no entry: rebuilt)"

        def run(command: list[str]) -> None:
            subprocess.run(command, cwd=main.parent, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)

        # engine, bibtex or biber, engine twice: what latexmk does, but on through the errors a missing
        # figure raises (latexmk -f stops rerunning there and leaves every citation "[?]"); a shipped .bbl is
        # what arXiv would typeset and is never rebuilt
        tex = [engine, "-interaction=nonstopmode", main.name]
        try:
            run(tex)
            aux = main.with_suffix(".aux")
            log = main.with_suffix(".log").read_text(errors="replace") if main.with_suffix(".log").is_file() else ""
            if shipped_bbl and "is wrong format version" in log and main.with_suffix(".bcf").is_file():
                # biblatex refuses a .bbl written by another version of it and prints every citation as its
                # key, with no bibliography: biber rebuilds it from the .bib, as the author's own run did
                shipped_bbl = None
                how = "compiled (the shipped .bbl is of another biblatex version: rebuilt with biber)"
            if not shipped_bbl and main.with_suffix(".bcf").is_file() and shutil.which("biber"):
                run(["biber", main.stem])
            elif not shipped_bbl and aux.is_file() and "\\bibdata" in aux.read_text(errors="replace"):
                run(["bibtex", main.stem])
                blg = main.with_suffix(".blg").read_text(errors="replace") if main.with_suffix(".blg").is_file() else ""
                if style := re.search(r"I couldn't open style file (\S+?)\.bst|\\bibstyle\{(\S+?)\s*\}[\s\S]*I found "
                                      r"no style file", blg):
                    # a journal's .bst that TeX Live does not ship (aa, yahapj): natbib's own plainnat (or plain
                    # without natbib) typesets the same entries, so the citations resolve
                    log = main.with_suffix(".log").read_text(errors="replace")
                    fallback = "plainnat" if "natbib.sty" in log else "plain"
                    aux.write_text(re.sub(r"\\bibstyle\{[^}]*\}", lambda _: f"\\bibstyle{{{fallback}}}",
                                          aux.read_text(errors="replace")))
                    run(["bibtex", main.stem])
                    how = f"compiled ({style.group(1) or style.group(2)}.bst not installed: {fallback})"
            run(tex)
            run(tex)
        except subprocess.TimeoutExpired:
            return None, f"{engine} ran over {timeout} s"
        log = main.with_suffix(".log").read_text(errors="replace") if main.with_suffix(".log").is_file() else ""
        undefined = len(set(re.findall(r"Citation [`']([^']+)' on page \d+ undefined", log)))
        if "is wrong format version" in log:  # biblatex refused the .bbl and printed every citation as its key
            return None, "compiled without its bibliography (its .bbl is of another biblatex version)"
        bbl = main.with_suffix(".bbl").read_text(errors="replace") if main.with_suffix(".bbl").is_file() else ""
        if undefined >= 3 and not re.search(r"\\bibitem|\\entry\{", bbl):
            return None, f"compiled without its bibliography ({undefined} citations undefined)"
        pdf = main.with_suffix(".pdf")
        if pdf.is_file() and b"%%EOF" not in pdf.read_bytes()[-2048:]:
            return None, "the PDF is truncated (the driver stopped part-way)"
        if not pdf.is_file() or pdf.stat().st_size == 0:
            log = main.with_suffix(".log")
            errors = re.findall(r"(?m)^! (.*)", log.read_text(errors="replace")) if log.is_file() else []
            return None, f"no PDF ({errors[0][:80] if errors else 'no log'})"
        cache.mkdir(parents=True, exist_ok=True)
        part = out.with_suffix(".part")
        shutil.copyfile(pdf, part)
        part.replace(out)
        out.with_suffix(".how").write_text(how)
        made_from.write_text(main_tex)
    return out, how


def run_pairs(manifest_path: Path, repeat: int, show_wrong: bool = False, only: str = "",
              cache: Path = PAIRS_CACHE, mirror: Path = Path("/work/.mirror")) -> int:
    """Source + PDF pairs listed in a manifest (``devsets/pairs/MANIFEST.csv``): each source is compiled on
    demand (``compile_pair``), or its repository's own PDF is read where the manifest names one, and the
    builtin backend's output is judged by the source's own \\cite keys."""
    rows = [r for r in csv.DictReader(open(manifest_path, encoding="utf-8-sig"))
            if not only or Path(r["slug"]).match(only)]
    items, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            src = pair_source(row, mirror, Path(tmp))
            if src is None:
                skipped.append(f"{row['slug']} (source not here: {row['source']} {row['repo']})")
                continue
            if row.get("pdf") and not row["pdf"].startswith("compiled"):
                pdf, how = src / row["pdf"], "the repository's PDF"
            else:
                pdf, how = compile_pair(src, row["main_tex"], row.get("engine") or "pdflatex", cache)
            if pdf is None or not pdf.is_file():
                skipped.append(f"{row['slug']} ({how})")
                continue
            items.append((row["slug"], pdf, src, row["main_tex"], row["producer_class"]))
        status = judge_pairs(items, repeat, show_wrong)
        print(f"pairs not measured: {len(skipped)} {skipped}")
    return status


def judge_pairs(items: list[tuple[str, Path, Path, str, str]], repeat: int, show_wrong: bool = False) -> int:
    """Convert each (slug, pdf, source folder, main file, document class) with the builtin backend, run stage
    04 on it and judge its links by the source's \\cite keys; figures per paper, per PDF producer and per
    document class."""
    import shutil
    judge_dir = REPO.parent / "shared" / "realtex" / "judge"
    sys.path.insert(0, str(judge_dir))
    import check  # noqa: E402  (../shared/realtex/judge/check.py: the judge, read, never copied)
    stage04 = load_stage04()
    print(f"{'paper':30} {'pages':>5} {'CPU s':>6} {'keys':>5} {'reached':>7} {'links':>6} {'right':>6} "
          f"{'recall':>7} {'prec.':>6}  class / status")
    tot, cpu_seconds, empty, no_bibliography, partial = [0, 0, 0, 0], [], [], [], []
    refused: dict[str, dict[str, int]] = {}  # class of a refused link -> paper -> links
    by_class: dict[str, list[int]] = {}
    by_docclass: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        xml_dir, csv_dir = Path(tmp) / "xml", Path(tmp) / "csv"
        xml_dir.mkdir()
        for slug, pdf, paper_dir, main_tex, docclass in items:
            cls = producer_class(pdf)
            cpu_times = []
            try:
                for _ in range(repeat):
                    cpu = time.process_time()
                    xml, stats = builtin_backend.convert(pdf)
                    cpu_times.append(time.process_time() - cpu)
            except Exception as exc:  # a crash is a figure here
                print(f"{slug[:30]:30} FAILED: {exc.__class__.__name__}: {exc}")
                empty.append(f"{slug} (failed)")
                continue
            (xml_dir / f"{slug}.cermxml").write_bytes(xml)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                stage04.main(stage04.Config(input_dir=xml_dir, output_dir=csv_dir, force=True))
            (xml_dir / f"{slug}.cermxml").unlink()
            if not stats["n_references"] and unresolved_citations(pdf) >= 3:
                # compiled without its bibliography: every marker prints "[?]", the PDF has nothing to link
                print(f"{slug[:30]:30} {stats['n_pages']:5d} PDF without a bibliography (its markers print "
                      f"[?]): not counted")
                no_bibliography.append(slug)
                continue
            r = judge_pdf_paper(check, paper_dir, main_tex, csv_dir, slug, show_wrong)
            if not stats["n_references"] or not stats["n_citations"]:
                empty.append(f"{slug} ({stats['n_references']} references, {stats['n_citations']} linked)")
            cpu_seconds.append(statistics.median(cpu_times))
            for i, k in enumerate(("keys", "reached", "links", "right")):
                tot[i] += r[k]
            for kind in r.get("refused", []):
                refused.setdefault(kind, {}).setdefault(slug, 0)
                refused[kind][slug] += 1
            for table, name in ((by_class, cls), (by_docclass, docclass.split(" / ")[0])):
                c = table.setdefault(name, [0, 0, 0, 0, 0])
                c[0] += 1; c[1] += r["keys"]; c[2] += r["reached"]; c[3] += r["links"]; c[4] += r["right"]  # noqa: E702
            print(f"{slug[:30]:30} {stats['n_pages']:5d} {cpu_seconds[-1]:6.3f} {r['keys']:5d} {r['reached']:7d} "
                  f"{r['links']:6d} {r['right']:6d} {r['reached'] / max(r['keys'], 1):7.2f} "
                  f"{r['right'] / max(r['links'], 1):6.2f}  {cls} | {docclass} {r['note']}"
                  f"{' | partial' if stats.get('partial') else ''}")
            if stats.get("partial"):
                partial.append(f"{slug}: {stats['partial']}")
            shutil.rmtree(csv_dir, ignore_errors=True)
    keys, reached, links, right = tot
    print(f"\nrecall (cited keys reached by a right link) {reached}/{keys} = {reached / max(keys, 1):.3f}, "
          f"precision {right}/{links} = {right / max(links, 1):.3f}")
    for title, table in (("per PDF producer", by_class), ("per document class", by_docclass)):
        print(title)
        for cls, (n, k, rc, lk, rt) in sorted(table.items()):
            print(f"  {cls:62} {n:3d} papers  recall {rc}/{k} = {rc / max(k, 1):.3f}  "
                  f"precision {rt}/{lk} = {rt / max(lk, 1):.3f}")
    from bench_latex import REFUSED_CLASSES, UNJUDGEABLE
    n_refused = sum(sum(v.values()) for v in refused.values())
    print(f"refused links ({n_refused} of {links}), by class (read from the source, bench_latex.classify_refused; "
          f"a class names where the key's \\cite stands, not that our link is right):")
    for kind in (UNSEEN, *REFUSED_CLASSES):
        if kind in refused:
            papers = sorted(((n, s) for s, n in refused[kind].items()), reverse=True)
            print(f"  {kind:42} {sum(refused[kind].values()):5d}  {', '.join(f'{s} {n}' for n, s in papers)[:150]}")
    unjudgeable = sum(sum(refused.get(k, {}).values()) for k in (UNSEEN, *UNJUDGEABLE))
    print(f"precision over the links the judge can judge (all but {', '.join((UNSEEN, *UNJUDGEABLE))}), our diagnosis and not "
          f"the judge's figure: {right}/{links - unjudgeable} = {right / max(links - unjudgeable, 1):.3f}")
    print(f"papers reported empty: {len(empty)} {empty}; PDFs without a bibliography (not counted): "
          f"{no_bibliography}")
    print(f"papers flagged partial: {len(partial)}")
    for line in partial:
        print(f"  {line}")
    if cpu_seconds:
        print(f"CPU seconds per paper (median of {repeat} runs each): median {statistics.median(cpu_seconds):.3f}, "
              f"max {max(cpu_seconds):.3f} (load average {open('/proc/loadavg').read().split()[0]})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=None, help="timed passes over each set (5; 3 with --real)")
    parser.add_argument("--real", type=Path, nargs="+", default=None,
                        help="folders of real PDFs laid out as ../shared/realpdf or devsets/pdf")
    parser.add_argument("--latex", type=Path, default=None,
                        help="folder of LaTeX source + paper.pdf pairs laid out as devsets/latex")
    parser.add_argument("--pairs", type=Path, default=None,
                        help="manifest of source + PDF pairs (devsets/pairs/MANIFEST.csv): compiled on demand, judged "
                             "by the sources' own \\cite keys")
    parser.add_argument("--pdf-cache", type=Path, default=PAIRS_CACHE,
                        help="--pairs: where the compiled PDFs are kept (outside the repository)")
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"),
                        help="--pairs: the fetch tool's copies of repositories, for sources measured and not kept")
    parser.add_argument("--show-wrong", action="store_true", help="--real, --latex: print each pair judged wrong")
    parser.add_argument("--only", default="", help="--real, --latex: a glob of the PDFs (or slugs) to measure (default: all)")
    parser.add_argument("--min-pages", type=int, default=3, help="--real: papers shorter than this are not counted")
    parser.add_argument("--count", type=Path, nargs="+", default=None,
                        help="print the pattern counts (pages, style, citation_markers, references) of these PDFs")
    args = parser.parse_args()
    if args.count:
        for pdf in args.count:
            print(pdf.name, count_truth(pdf), producer_class(pdf))
        return 0
    if args.pairs is not None:
        return run_pairs(args.pairs, args.repeat or 3, args.show_wrong, args.only, args.pdf_cache, args.mirror)
    if args.latex is not None:
        return run_latex(args.latex, args.repeat or 3, args.show_wrong, args.only)
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
