r"""Measure the LaTeX route on real arXiv sources: citation recall and precision as the judge counts them, crashes,
and seconds per paper on one core.

    .venv/bin/python 03_cermine_extract/bench_latex.py                     # ../shared/realtex and devsets/latex
    .venv/bin/python 03_cermine_extract/bench_latex.py --data-dir devsets/latex --runs 1
    .venv/bin/python 03_cermine_extract/bench_latex.py --mutations         # robustness to how submissions differ

Each paper of each DATA_DIR (listed in its MANIFEST.csv; a row with kept=no has no folder and is skipped) is packed
as arXiv serves a multi-file source (a gzipped tar; a compiled ``paper.pdf`` beside it is left out) into a temporary
stage-02 folder; stage 03 runs with ``--backend latex --workers 1``, stage 04 reads its JATS, and the shared judge
(``--judge-dir``, ``../shared/realtex/judge/check.py``) scores stage 04's CSVs. Each folder is reported paper by
paper (with the judge's own score of the source's sentences linked right, ``ideal R/P``: the ceiling the judge sets
on that paper) and in total, then both together per producer class (document class / citation package / ``.bbl``
or ``.bib``, as the main file declares them). Seconds per paper: the median over ``--runs`` of the CPU time
of one paper's conversion (unpacking included) in this process, and of the wall time stage 03 logs with one worker
(wall time grows with the machine's load; CPU time is what one core spends).

Every key the judge does not count as reached is classified: ``not linked`` (no sentence links a reference that is
that key's entry: a fault of this stage), ``window crosses a sentence`` (a sentence links the right reference, and
the judge's 12-word window before the ``\cite`` is covered once the sentence before it is added: the ``\cite``
sits within the first few words of its sentence, which no sentence-level output can satisfy), ``window holds cite
keys`` (covered once the bib keys of the ``\cite`` commands just before it, which the judge reads as words, are
counted: "materials,~\cite{a,b} optimize reactions,~\cite{c}"), or ``other``.

(The classes were named when the judge read a 12-word window; the shared judge now reads the source sentence, so
most misses are ``other``.)

Every link the judge counts wrong (the precision side) is classified too, from the source (``classify_refused``):
``macro-cited`` (the key is cited through the authors' own macro or ``\autocites``, which the judge's reader does
not see), ``bibliography the judge does not read`` (a ``thebibliography`` typed in the document, which the judge
reads only from ``.bbl`` files; the link right by its entry), ``entry the judge cannot read`` (a ``.bib`` entry without
a title), ``cited past the end the judge reads``
(after a standalone figure's own ``\end{document}``, where the judge stops reading), ``judge maps the reference to
another entry``, ``table cell``, ``bare citation`` (fewer than 3 words of its own), ``judge reads across a sentence end``,
``judge ends the sentence early``, ``judge reads a footnote or URL``, ``cite keys read as words`` and ``other``. The
counts are printed per folder with the papers they come from, then every link of class ``other`` (``--show-refused``:
every refused link) with its sentence, reference and the judge's words, to check by hand. The first four classes
(and ``in a file the judge does not open``) are links no output can get right; precision over the others is printed and put in the summary as
``precision_judgeable_links_diagnosis``: our diagnosis, not the judge's figure.

Two further figures put the judge's number in its place:

- ``sentence_judge`` (``--mutations`` only): the judge with its window clipped to the source sentence that holds the
  ``\cite`` by this bench's own sentence reader (up to 8 words before it and 8 after), as the shared judge now does
  with its own.
- ``ceiling``: the judge's score of two outputs built straight from the source with its own reader, the right
  reference on every link: one row per ``\cite`` holding the 400 characters before it (what the judge's window
  reads), and one row per ``\cite`` holding the source sentence around it. The first is the judge's "ideal output";
  the second is the best any sentence-level output can score.

``--mutations`` repacks every source once per variation that real arXiv submissions show (``MUTATIONS``: the main
file renamed beside a response letter, the letter named ``main.tex``, a top folder, CRLF, Latin-1, only the ``.bib``
or only the ``.bbl``, one flattened file served as a single gzipped ``.tex``, ``\input file`` without braces or
extension, bibliography file names that differ from ``\bibliography{...}``, leftover text after ``\endinput``, a
supplement with its own ``\documentclass`` and an ``00README.XXX`` naming the top-level file, macros kept in the
authors' own ``.sty``, citation keys spaced and broken over lines),
runs stage 03 and 04 once on each, and reports the judge's and the sentence-clipped judge's figures, crashes and
fallbacks against the unmutated sources, and in how many papers stage 04's sentences and links are exactly those of
the unmutated source (``same``). Only a copy is mutated and nothing that changes which keys are cited or their
entries: the judge still reads the original folders.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
import statistics
import sys
import tarfile
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import pipeline_utils as pu  # noqa: E402


DEVSET = REPO / "devsets" / "latex"
SHARED = REPO.parent / "shared" / "realtex"


@dataclass
class Config:
    """Benchmark the LaTeX route against folders of real sources with the shared judge."""

    data_dir: tuple[Path, ...] = (SHARED, DEVSET)
    """Folders of real sources, each with MANIFEST.csv and one folder per paper (rows with kept=no are skipped);
    every folder is reported on its own and per producer class."""
    judge_dir: Path = SHARED / "judge"
    """The judge (check.py, truth.py) that scores every folder."""
    runs: int = 3
    """Timed runs of stage 03 (the median is reported)."""
    show_refused: bool = False
    """Print every link the judge refuses with its class, not only those of class ``other``."""
    mutations: bool = False
    """Instead: score every source of the first folder repacked with each arXiv-typical variation (one run each)
    against the original."""


def load(path: Path, name: str):
    """Import a stage script from its digit-named folder (as tests/helpers.py does)."""
    return pu.load_script(path, name)


def kept_rows(data: Path) -> list[dict]:
    """The manifest's papers that are in the folder (a paper measured and not kept has kept=no and no folder)."""
    return [r for r in pu.read_csv_rows(data / "MANIFEST.csv")
            if r.get("kept", "yes") != "no" and (data / r["slug"]).is_dir()]


def pack_sources(data: Path, slugs: list[str], sources: Path) -> Path:
    """Each paper's folder as the gzipped tar arXiv would serve (``sources/<slug>.tar.gz``), its compiled PDF left
    out: a stage-02 ``sources/`` folder for stage 03's LaTeX route."""
    sources.mkdir(parents=True, exist_ok=True)
    for slug in slugs:
        with tarfile.open(sources / f"{slug}.tar.gz", "w:gz") as tar:
            for path in sorted((data / slug).rglob("*")):
                if path.is_file() and path.suffix.lower() != ".pdf":  # the compiled PDF is not the source
                    tar.add(path, arcname=str(path.relative_to(data / slug)))
    return sources


def producer_class(paper_dir: Path, main_tex: str) -> str:
    """The paper's class and citation system as its main file declares them: ``revtex4-2 / natbib / bbl``."""
    from truth import read

    from truth import expand

    text = expand(paper_dir / PurePosixPath(main_tex).parent, PurePosixPath(main_tex).name) or \
        re.sub(r"(?<!\\)%[^\n]*", "", read(paper_dir / main_tex) or "")
    text = text.split("\\begin{document}")[0]
    m = re.search(r"\\documentclass\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", text)
    cls = re.sub(r"[\d-]+$", "", m.group(1).strip()) if m else "?"
    if re.search(r"\\usepackage\s*(?:\[[^\]]*\])?\s*\{[^}]*\bbiblatex\b", text) or "\\addbibresource" in text:
        system = "biblatex"
    elif re.search(r"\\usepackage\s*(?:\[[^\]]*\])?\s*\{[^}]*\bnatbib\b", text) or \
            cls.startswith(("aastex", "revtex", "elsarticle", "mnras", "sn-jnl", "svjour", "acmart")):
        system = "natbib"
    else:
        system = "cite"
    source = "bbl" if any(paper_dir.rglob("*.bbl")) else "bib"
    return f"{cls} / {system} / {source}"


def judge_set(judge, data: Path, rows: list[dict], csv_dir: Path):
    """The shared judge's figures for the kept papers of one folder."""
    import pandas as pd

    return pd.DataFrame([judge.judge_paper(data / r["slug"], r["main_tex"], csv_dir, r["slug"]) for r in rows])


def main(config: Config) -> dict:
    folders = [Path(d) for d in (config.data_dir if isinstance(config.data_dir, (tuple, list)) else [config.data_dir])]
    for data in folders:
        if not (data / "MANIFEST.csv").is_file():
            raise SystemExit(f"error: {data}/MANIFEST.csv not found (pass --data-dir)")
    if not (Path(config.judge_dir) / "check.py").is_file():
        raise SystemExit(f"error: {config.judge_dir}/check.py not found (pass --judge-dir)")
    stage03 = load(HERE / "cermine_extract.py", "bench_stage03")
    stage04 = load(REPO / "04_xml_to_csv" / "xml_to_csv.py", "bench_stage04")
    sys.path.insert(0, str(config.judge_dir))
    judge = load(Path(config.judge_dir) / "check.py", "bench_judge")
    if config.mutations:
        return mutation_report(folders[0], [r["slug"] for r in kept_rows(folders[0])], stage03, stage04, judge)
    summary: dict = {}
    classes: dict[str, dict[str, int]] = {}
    for data in folders:
        name = data.name if data.name != "latex" else "devsets/latex"
        summary[name] = run_set(data, config.runs, stage03, stage04, judge, classes, config.show_refused)
    print(f"\n{'producer class':<44}{'papers':>7}{'keys':>6}{'recall':>8}{'links':>7}{'precision':>10}")
    for cls, t in sorted(classes.items()):
        print(f"{cls:<44}{t['papers']:>7}{t['keys']:>6}{t['reached'] / max(1, t['keys']):>8.3f}{t['links']:>7}"
              f"{t['right'] / max(1, t['links']):>10.3f}")
    summary["per_producer_class"] = {cls: f"{t['papers']} papers, recall {t['reached'] / max(1, t['keys']):.3f}, "
                                          f"precision {t['right'] / max(1, t['links']):.3f}"
                                     for cls, t in sorted(classes.items())}
    summary["loadavg"] = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ""
    pu.print_summary("LaTeX route on real sources", summary)
    return summary


def run_set(data: Path, runs: int, stage03, stage04, judge, classes: dict, show_refused: bool = False) -> dict:
    """Stage 03 (``--backend latex``) ``runs`` times and stage 04 once over one folder; the judge's figures per
    paper, the folder's totals, and each paper's figures added to ``classes`` under its producer class."""
    rows_m = kept_rows(data)
    slugs = [r["slug"] for r in rows_m]
    manifest = {r["slug"]: r["main_tex"] for r in rows_m}
    with tempfile.TemporaryDirectory(prefix="bench-latex-") as tmp:
        tmp = Path(tmp)
        sources = pack_sources(data, slugs, tmp / "in" / "sources")
        seconds: dict[str, list[float]] = {s: [] for s in slugs}
        rows = {}
        for run in range(max(1, runs)):
            cfg = stage03.Config(input_dir=tmp / "in", output_dir=tmp / "03", backend="latex", workers=1,
                                 force=True)
            try:
                stage03.main(cfg)
            except SystemExit as exc:
                print(exc)
            with open(tmp / "03" / "extraction_log.csv", encoding="utf-8-sig", newline="") as fh:
                rows = {r["paper_id"]: r for r in csv.DictReader(fh)}
            for slug in slugs:
                if rows.get(slug, {}).get("seconds"):
                    seconds[slug].append(float(rows[slug]["seconds"]))
        cpu: dict[str, list[float]] = {s: [] for s in slugs}
        limits = stage03.eprint.Limits()
        (tmp / "work").mkdir()
        for _ in range(max(1, runs)):
            for slug in slugs:
                began = time.process_time()
                try:
                    stage03.convert_latex(str(sources / f"{slug}.tar.gz"), str(tmp / "work"), limits, 600)
                except Exception:  # noqa: BLE001 - a crash is counted from stage 03's log
                    pass
                cpu[slug].append(time.process_time() - began)
        stage04.main(stage04.Config(input_dir=tmp / "03", output_dir=tmp / "04", force=True))
        scores = judge_set(judge, data, rows_m, tmp / "04")
        stage04.main(stage04.Config(input_dir=tmp / "03", output_dir=tmp / "04all", force=True, all_sentences=True))
        misses = {slug: classify_misses(data / slug, manifest[slug], tmp / "04all", slug)
                  if (tmp / "04all" / f"{slug}.sentences.csv").exists() else {} for slug in slugs}
        refused = {slug: classify_refused(data / slug, manifest[slug], tmp / "04", slug)
                   if (tmp / "04" / f"{slug}.sentences.csv").exists() else [] for slug in slugs}
        ceilings = {}
        for mode in ("window", "sentence"):
            write_ideal_output(data, manifest, tmp / f"ideal-{mode}", mode)
            ideal = judge_set(judge, data, rows_m, tmp / f"ideal-{mode}")
            ceilings[mode] = (round(ideal.reached.sum() / max(1, ideal["keys"].sum()), 4),
                              round(ideal.right.sum() / max(1, ideal.links.sum()), 4))
            if mode == "sentence":  # per paper: what the judge gives the source's own sentences
                ideal_paper = {r.paper: (r.reached / r.keys if r.keys else float("nan"),
                                         r.right / r.links if r.links else float("nan")) for r in ideal.itertuples()}
    print(f"\n{data}   (ideal R/P: the judge's score of the source's own sentences, each linked right)")
    print(f"{'paper':<30}{'status':<20}{'keys':>6}{'reached':>8}{'recall':>8}{'links':>7}{'right':>7}"
          f"{'precision':>10}{'ideal R/P':>12}{'cpu s':>7}{'wall s':>8}  class; misses; log")
    total = {"keys": 0, "reached": 0, "links": 0, "right": 0}
    crashes, statuses = 0, {}
    for r in scores.itertuples():
        log = rows.get(r.paper, {})
        status = log.get("status", "missing")
        statuses[status] = statuses.get(status, 0) + 1
        crashes += status == "failed"
        med = statistics.median(seconds[r.paper]) if seconds[r.paper] else float("nan")
        med_cpu = statistics.median(cpu[r.paper])
        recall = r.reached / r.keys if r.keys else float("nan")
        precision = r.right / r.links if r.links else float("nan")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(misses[r.paper].items()) if n and "only by the window" not in k)
        cls = producer_class(data / r.paper, manifest[r.paper])
        note = (log.get("error") or log.get("fallback_reason") or "")[:80]
        print(f"{r.paper:<30}{status:<20}{r.keys:>6}{r.reached:>8}{recall:>8.3f}{r.links:>7}{r.right:>7}"
              f"{precision:>10.3f}{ideal_paper[r.paper][0]:>6.2f}/{ideal_paper[r.paper][1]:<5.2f}{med_cpu:>7.3f}"
              f"{med:>8.3f}  {cls}; {kinds}; {note}")
        for k in total:
            total[k] += getattr(r, k)
        c = classes.setdefault(cls, {"papers": 0, "keys": 0, "reached": 0, "links": 0, "right": 0})
        c["papers"] += 1
        for k in total:
            c[k] += getattr(r, k)
    all_seconds = [statistics.median(v) for v in seconds.values() if v]
    all_cpu = [statistics.median(v) for v in cpu.values()]
    kinds: dict[str, int] = {}
    for per_paper in misses.values():
        for kind, n in per_paper.items():
            kinds[kind] = kinds.get(kind, 0) + n
    kinds.pop("links judged wrong only by the window", 0)
    print(f"{'total':<50}{total['keys']:>6}{total['reached']:>8}"
          f"{total['reached'] / max(1, total['keys']):>8.3f}{total['links']:>7}{total['right']:>7}"
          f"{total['right'] / max(1, total['links']):>10.3f}")
    refused_kinds = {kind: sum(x["class"] == kind for v in refused.values() for x in v) for kind in REFUSED_CLASSES}
    unjudgeable = sum(refused_kinds[k] for k in UNJUDGEABLE)
    judgeable = (total["right"] / (total["links"] - unjudgeable)) if total["links"] > unjudgeable else 0.0
    print(f"\nrefused links ({sum(refused_kinds.values())} of {total['links']}), by class (read from the source; "
          f"see classify_refused):")
    print(f"  {'class':<42}{'links':>6}{'reader':>8}  papers (reader: links whose sentence covers this bench's "
          f"own reading of the source sentence)")
    for kind, n in refused_kinds.items():
        papers = sorted(((sum(x["class"] == kind for x in v), s) for s, v in refused.items()), reverse=True)
        shown = ", ".join(f"{s} {k}" for k, s in papers if k)
        reader = sum(x["class"] == kind and x["reader"] for v in refused.values() for x in v)
        print(f"  {kind:<42}{n:>6}{reader:>8}  {shown[:140]}")
    print(f"precision over the links the judge can judge (all but {' and '.join(UNJUDGEABLE)}), our diagnosis and "
          f"not the judge's "
          f"figure: {judgeable:.4f}")
    others = [(s, x) for s, v in refused.items() for x in v if show_refused or x["class"] == "other"]
    if others:
        print(f"\nrefused links{'' if show_refused else ' of class other'} ({len(others)}), to check by hand "
              f"(reader: this bench's reading of the source sentence is covered by ours):")
    for slug, x in others:
        print(f"- {slug} [{x['class']}]: {x['sentence'][:300]}\n    ref {x['ref_key']}: {x['reference'][:120]}\n"
              f"    judge maps it to {', '.join(x['mapped']) or 'no cited key'}; its words there: "
              f"{' '.join(x['judge'])}; reader {'yes' if x['reader'] else 'no'}")
    return {
        "papers": len(slugs),
        "statuses": statuses,
        "crashes": crashes,
        "recall": round(total["reached"] / total["keys"], 4) if total["keys"] else 0.0,
        "precision": round(total["right"] / total["links"], 4) if total["links"] else 0.0,
        "keys": total["keys"],
        "links": total["links"],
        "misses": kinds,
        "refused_links": {kind: n for kind, n in refused_kinds.items() if n},
        "precision_judgeable_links_diagnosis": round(judgeable, 4),
        "judge_on_ideal_400_char_windows": "recall %.4f, precision %.4f" % ceilings["window"],
        "judge_on_ideal_source_sentences": "recall %.4f, precision %.4f" % ceilings["sentence"],
        "median_cpu_seconds_per_paper": round(statistics.median(all_cpu), 3) if all_cpu else 0.0,
        "max_cpu_seconds_per_paper": round(max(all_cpu), 3) if all_cpu else 0.0,
        "median_wall_seconds_per_paper": round(statistics.median(all_seconds), 3) if all_seconds else 0.0,
        "runs": runs,
    }


# A sentence ends at . ! ? followed by a capital or a command, unless the dot closes an abbreviation or an initial;
# paragraphs, list items, sectioning and environments end one too.
SENTENCE_END = re.compile(r"(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bcf)(?<!\bvs)(?<!\bFig)(?<!\bEq)"
                          r"(?<!\bSec)(?<!\bRef)(?<!\bRefs)(?<!\bNo)(?<!\b[A-Z])[.!?]['\")}]*\s+(?=[A-Z\\])|\n\s*\n|"
                          r"\\item\b|\\(?:sub)*section\*?\s*[\[{]|\\(?:begin|end)\s*\{|\\caption\s*\{|\\par\b")
NOT_WORDS = re.compile(r"\\(?:ref|eqref|cref|Cref|autoref|label|url|href|hyperref)\*?\s*(?:\[[^\]]*\])?\{[^}]*\}")


def source_sentences(paper_dir: Path, main_tex: str) -> list[tuple[list[str], str, str, str]]:
    """(keys, text before, text after) of every \\cite in the judge's reading of the source, each clipped to the
    source sentence that holds it (other \\cite commands and \\ref/\\label arguments blanked: they print as markers)."""
    from truth import CITE, body

    text = re.sub(r"\\nocite\s*\{[^}]*\}", "", body(paper_dir, main_tex))
    out = []
    for m in CITE.finditer(text):
        keys = [k.strip() for k in m.group(1).split(",") if k.strip()]
        before = text[max(0, m.start() - 2000):m.start()]
        ends = list(SENTENCE_END.finditer(before + "\\"))  # the cite command itself may open the sentence
        before = before[ends[-1].end():] if ends else before
        after = text[m.end():m.end() + 2000]
        end = SENTENCE_END.search(after)
        after = after[:end.start() + 1] if end else after
        out.append((keys, NOT_WORDS.sub(" ", CITE.sub(" ", before)), NOT_WORDS.sub(" ", CITE.sub(" ", after)),
                    m.group(0)))
    return out


def _words(text: str) -> list[str]:
    from check import plain

    return [w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", plain(text))]


def sentence_judge(paper_dir: Path, main_tex: str, csv_dir: Path, pid: str) -> dict:
    """The judge with its window clipped to the sentence that holds the \\cite: up to 8 words before, 8 after."""
    import pandas as pd
    from check import map_refs
    from truth import bibliography, cited_keys

    bib, primary = bibliography(paper_dir)
    keys = cited_keys(paper_dir, main_tex)
    counted = {k for k in keys if k in primary}
    cited = {k for k in keys if k in bib}
    windows: dict[str, list[set[str]]] = {}
    for cite_keys, before, after, _ in source_sentences(paper_dir, main_tex):
        window = set(_words(before)[-8:]) | set(_words(after)[:8])
        for key in cite_keys:
            windows.setdefault(key, []).append(window)
    sentences = pd.read_csv(csv_dir / f"{pid}.sentences.csv", dtype=str).fillna("")
    refs = pd.read_csv(csv_dir / f"{pid}.references.csv", dtype=str).fillna("")
    ref_map = map_refs(refs, bib, cited)
    reached, links, right = set(), 0, 0
    for row in sentences.itertuples():
        own = {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", row.sentence)}
        for rk in [x for x in row.ref_keys.split("|") if x]:
            links += 1
            hit = {k for k in ref_map.get(rk, set())
                   if not [w for w in windows.get(k, []) if len(w) >= 3]
                   or any(len(w & own) >= 0.5 * len(w) for w in windows[k] if len(w) >= 3)}
            right += bool(hit)
            reached |= hit
    return {"keys": len(counted), "reached": len(reached & counted), "links": links, "right": right}


def write_ideal_output(data: Path, manifest: dict[str, str], out: Path, mode: str) -> None:
    """Stage 04's CSVs as the source itself gives them, the right reference on every link: one row per \\cite
    holding the 400 characters before it (``window``: what the judge reads) or the source sentence around it
    (``sentence``); the references are the bibliography's own entries."""
    import pandas as pd
    from check import plain
    from truth import CITE, bibliography, body

    out.mkdir(parents=True, exist_ok=True)
    for slug, main_tex in manifest.items():
        bib, _ = bibliography(data / slug)
        rows = []
        if mode == "window":
            text = re.sub(r"\\nocite\s*\{[^}]*\}", "", body(data / slug, main_tex))
            pieces = [([k.strip() for k in m.group(1).split(",")], text[max(0, m.start() - 400):m.start()], "")
                      for m in CITE.finditer(text)]
        else:
            pieces = [(k, b, a) for k, b, a, _ in source_sentences(data / slug, main_tex)]
        for i, (keys, before, after) in enumerate(pieces):
            keys = [k for k in keys if k in bib]
            if keys:
                sentence = re.sub(r"\s+", " ", f"{plain(before)} [{i}] {plain(after)}").strip()
                rows.append({"paper_id": slug, "sentence_id": i, "section": "", "sentence": sentence,
                             "sentence_clean": sentence, "ref_keys": "|".join(keys)})
        pd.DataFrame(rows, columns=["paper_id", "sentence_id", "section", "sentence", "sentence_clean", "ref_keys"]
                     ).to_csv(out / f"{slug}.sentences.csv", index=False)
        # (with its columns where the judge's reader finds no entry, as its own reading of the CSV needs them)
        pd.DataFrame([{"paper_id": slug, "ref_key": k, "title": "", "year": "", "authors": "", "raw": v}
                      for k, v in bib.items()], columns=["paper_id", "ref_key", "title", "year", "authors", "raw"]
                     ).to_csv(out / f"{slug}.references.csv", index=False)


def classify_misses(paper_dir: Path, main_tex: str, csv_dir: Path, pid: str) -> dict[str, int]:
    """Why each cited key the judge did not count as reached was missed (see the module docstring)."""
    import pandas as pd
    from check import contexts, map_refs
    from truth import bibliography, cited_keys

    bib, primary = bibliography(paper_dir)
    keys = cited_keys(paper_dir, main_tex)
    counted = {k for k in keys if k in primary}
    cited = {k for k in keys if k in bib}
    ctx = contexts(paper_dir, main_tex)
    sentences = pd.read_csv(csv_dir / f"{pid}.sentences.csv", dtype=str).fillna("")
    refs = pd.read_csv(csv_dir / f"{pid}.references.csv", dtype=str).fillna("")
    ref_map = map_refs(refs, bib, cited)

    def toks(text: str) -> set[str]:
        return {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", text)}

    key_words = {w for k in bib for w in toks(k)}
    reached, window, keyed, linked = set(), set(), set(), set()
    previous = ""
    window_links = 0
    for row in sentences.itertuples():
        own, wide = toks(row.sentence), toks(previous + " " + row.sentence)
        for rk in [x for x in row.ref_keys.split("|") if x]:
            judged, excused = False, False
            for key in ref_map.get(rk, set()):
                linked.add(key)
                contexts_k = [c for c in ctx.get(key, []) if len(c) >= 3]
                if not contexts_k or any(len(c & own) >= 0.5 * len(c) for c in contexts_k):
                    reached.add(key)
                    judged = True
                elif any(len(c & wide) >= 0.5 * len(c) for c in contexts_k):
                    window.add(key)
                    excused = True
                elif any(len(c & (own | key_words)) >= 0.5 * len(c) for c in contexts_k):
                    keyed.add(key)
                    excused = True
            window_links += excused and not judged
        previous = row.sentence
    kinds: dict[str, int] = {}
    for key in counted - reached:
        kind = "not linked" if key not in linked else ("window crosses a sentence" if key in window else
                                                       "window holds cite keys" if key in keyed else "other")
        kinds[kind] = kinds.get(kind, 0) + 1
    kinds["links judged wrong only by the window"] = window_links
    return kinds

# ---------------------------------------------------------------------------
# Refused links: why the judge counts a link wrong (the precision side)
# ---------------------------------------------------------------------------

REFUSED_CLASSES = ("macro-cited", "bibliography the judge does not read", "entry the judge cannot read", "cited past the end the judge reads",
                   "judge maps the reference to another entry",
                   "table cell", "bare citation", "judge reads across a sentence end", "judge ends the sentence early",
                   "judge reads a footnote or URL", "cite keys read as words", "in a file the judge does not open",
                   "other")
"""In the order they are tried (see ``classify_refused``); the first four and ``in a file the judge does not open``
are links the judge cannot judge at all."""
UNJUDGEABLE = ("macro-cited", "bibliography the judge does not read", "entry the judge cannot read", "cited past the end the judge reads",
               "in a file the judge does not open")

_DEFINITION = re.compile(r"\\(?:(?:re)?newcommand|providecommand|DeclareRobustCommand)\*?\s*\{?\s*\\([A-Za-z@]+)\s*\}?"
                         r"|\\[gex]?def\s*\\([A-Za-z@]+)")
_MULTICITE = re.compile(r"\\[A-Za-z]*cites\*?((?:\s*(?:\([^)]*\)|\[[^\]]*\])*\s*\{[^}]*\})+)")
_END_BEFORE_BRACE = re.compile(r"[.!?]\s+\{\s*(?:\\[a-zA-Z]+\s*)?[A-Z]")  # ". {\it Imaging}: ..."
_TABLE_ENV = re.compile(r"\\(begin|end)\s*\{((?:tabular|longtable|deluxetable|supertabular|tabu|table|NiceTabular|"
                        r"tblr|xltabular)[a-z]*\*?)\}")


def _word_runs(text: str, n: int = 6) -> set[tuple[str, ...]]:
    """Every n words in a row of a text (words of 3+ letters or digits, lower case)."""
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", text)]
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _unopened(sentence: str, judge_runs: set, other_runs: set) -> bool:
    """Is a sentence from source text the judge's reader does not see: no run of six of its words in the judge's
    body, and one in another file of the source?"""
    runs = _word_runs(sentence)
    return bool(runs) and not runs & judge_runs and bool(runs & other_runs)


def macro_cited_keys(preamble: str, body: str, cite: re.Pattern) -> set[str]:
    """Keys the body cites where a reader of ``\\cite`` commands (``cite``: its pattern, group 1 the keys) does not
    see them: through the authors' own macros, a macro whose definition cites fixed keys
    (``\\newcommand{\\mct}{\\citet{mcquillan2014}}``, used as ``\\mct``; ``\\citePZp`` too, which ``cite`` matches
    only before a brace) or its argument (``\\newcommand{\\rsp}[1]{(see \\citealt{#1})}``, used as ``\\rsp{a,b}``),
    and through biblatex's multicite commands (``\\autocites{a}{b}``), which ``cite`` does not match."""
    fixed: dict[str, set[str]] = {}
    wrappers: set[str] = set()
    for m in _DEFINITION.finditer(preamble):
        name = m.group(1) or m.group(2)
        j = m.end()
        while (opt := re.match(r"\s*(?:\[[^\]]*\]|#\d)", preamble[j:j + 40])) is not None:  # [n][default], #1#2
            j += opt.end()
        j += len(preamble[j:j + 40]) - len(preamble[j:j + 40].lstrip())
        if preamble[j:j + 1] != "{":
            continue
        depth, k = 0, j
        while k < len(preamble):  # the definition's balanced body
            c = preamble[k]
            if c == "\\":
                k += 2
                continue
            depth += (c == "{") - (c == "}")
            k += 1
            if depth == 0:
                break
        for c in cite.finditer(preamble[j:k]):
            keys = {x.strip() for x in c.group(1).split(",") if x.strip()}
            if any(x.startswith("#") for x in keys):
                if not cite.fullmatch("\\" + name + "{x}"):  # \citeyp{key} is read as it is
                    wrappers.add(name)
            else:
                fixed.setdefault(name, set()).update(keys)
    out: set[str] = set()
    for name, keys in fixed.items():
        brace = r"(?!\s*\{)" if cite.fullmatch("\\" + name + "{x}") else ""  # \citePZp{..} is the reader's
        if re.search(r"\\" + re.escape(name) + r"(?![A-Za-z@])" + brace, body):
            out |= keys
    for name in wrappers:
        for m in re.finditer(r"\\" + re.escape(name) + r"\*?\s*(?:\[[^\]]*\]\s*)*\{([^}]*)\}", body):
            out |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    for m in _MULTICITE.finditer(body):
        groups = re.findall(r"\{([^}]*)\}", m.group(1))
        if cite.match(m.group(0)):  # \cites{a}{b}: the reader has the first group
            groups = groups[1:]
        out |= {x.strip() for group in groups for x in group.split(",") if x.strip()}
    return out


def _braced_text(text: str, i: int) -> str:
    """The brace group opening at ``text[i]`` (nesting and escapes respected), without its braces."""
    depth, j = 0, i
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        depth += (text[j] == "{") - (text[j] == "}")
        if depth == 0:
            return text[i + 1:j]
        j += 1
    return text[i + 1:]


def table_spans(text: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` inside a table or tabular environment (outermost ones; nesting counted)."""
    spans, depth, start = [], 0, 0
    for m in _TABLE_ENV.finditer(text):
        if m.group(1) == "begin":
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                spans.append((start, m.end()))
    if depth:
        spans.append((start, len(text)))
    return spans


def inline_bibliography(paper_dir: Path, main_tex: str) -> dict[str, str]:
    """key -> entry text of the ``thebibliography`` environments the document itself holds (its main file and
    every file it ``\\input``s, as the judge expands them), which the judge's ``truth.bibliography`` does not read:
    it reads ``\\bibitem`` entries from ``.bbl`` files only. A paper whose bibliography is typed inline (or
    ``\\input`` from a ``.tex`` beside an empty, stale ``.bbl``) has no entry for the judge, and no link of it
    can be right for the judge; the PDF compiled from it prints these entries."""
    from truth import _bbl, expand

    main = PurePosixPath(main_tex)
    whole = expand(paper_dir / main.parent, main.name)
    out: dict[str, str] = {}
    for m in re.finditer(r"\\begin\s*\{thebibliography\}(.*?)(?:\\end\s*\{thebibliography\}|$)", whole, re.S):
        for key, entry in _bbl(m.group(1)).items():
            out.setdefault(key, entry)
    return out


def cited_past_the_judges_end(paper_dir: Path, main_tex: str) -> set[str]:
    """Keys the body cites only after its first ``\\end{document}`` when that is not the last one (a standalone
    figure ``\\input`` with its own document): the judge's body stops there, so for it they are not cited."""
    from truth import CITE, cited_keys, expand

    main = PurePosixPath(main_tex)
    whole = expand(paper_dir / main.parent, main.name)  # to the document's last \end{document}, not its first
    whole = whole[max(0, whole.find("\\begin{document}")):]
    whole = whole[:whole.rfind("\\end{document}")] if "\\end{document}" in whole else whole
    return {k.strip() for m in CITE.finditer(re.sub(r"\\nocite\s*\{[^}]*\}", "", whole))
            for k in m.group(1).split(",") if k.strip()} - set(cited_keys(paper_dir, main_tex))


def classify_refused(paper_dir: Path, main_tex: str, csv_dir: Path, pid: str,
                     ref_map: dict[str, set[str]] | None = None) -> list[dict]:
    """Every link the judge counts wrong, with its class: the first of ``REFUSED_CLASSES`` whose test the source
    meets. ``ref_map`` (our reference key -> the cited keys it is mapped to) is the judge's ``map_refs`` unless
    given (``bench.py --pairs`` gives its own, which also maps a PDF's references by DOI and by first author).
    Each test reads the source, not our output, except to find which ``\\cite`` a sentence holds: of the citations
    of the key the judge maps our reference to, the one whose source sentence shares most words with it.

    - ``macro-cited``: the reference is (the judge's match of) a key the body cites where the judge's reader does
      not see it (``macro_cited_keys``: an own macro, ``\\autocites``): no link to it can be right;
    - ``bibliography the judge does not read``: the judge maps the reference to no key, and its key (or a key the
      reference's words match, as the judge's rule matches an entry) is cited and has an entry only in a
      ``thebibliography`` the document holds inline (``inline_bibliography``), which the judge does not read: no
      link to it can be right for the judge; the link is right by that entry and the judge's own rule for the
      sentence (one that is not falls to the tests below, and to ``other``);
    - ``entry the judge cannot read``: the reference's key is cited and has a ``.bib`` entry, but one without a
      title, or one written ``@article(key, ...)``, which the judge's bibliography leaves out: no link to it can
      be right (whether the judge maps the reference to no key or, by the few words it shares with one, to another);
    - ``cited past the end the judge reads``: the reference's key is cited only after an ``\\end{document}``
      that is not the document's own (a figure kept as a standalone file, ``\\input`` with its own
      ``\\begin{document}...\\end{document}``): the judge's body stops at the first one, so for the judge the key
      is not cited and no link to it can be right;
    - ``judge maps the reference to another entry``: the judge maps our reference to another key (the
      bibliography lists the work twice, or another entry's few words are all in ours: "Adult" and "Machine
      Learning"), and the link is right for the reference's own key (where it is not, the tests below read the
      citations of both);
    - ``table cell``: that ``\\cite`` sits inside a table or tabular environment, where the judge reads the
      neighbouring cells;
    - ``bare citation``: its source sentence has fewer than 3 words of its own (by this bench's sentence reader or
      the judge's), so the judge reads the 12 words before it instead;
    - ``judge reads across a sentence end``: the ``\\cite`` opens its sentence (". \\citet{x} found": the judge's
      words before it are the sentence before), follows the full stop (".\\cite{x} Next": its words after it are
      the next sentence), a ``\\cite`` after the sentence end hides that end from the judge, which strips
      ``\\cite`` commands before it looks for one, or the judge's words run over an end this bench's sentence
      reader sees and the judge's does not (".} Members", ". {\\it Imaging}", a ``\\caption``, ``\\begin``);
    - ``judge ends the sentence early``: the judge's sentence starts or ends where this bench's reader sees no
      end ("Fig. \\ref{fig:a} \\citep{x}": its words are the label's);
    - ``judge reads a footnote or URL``: the judge's words around it reach into a ``\\footnote``, ``\\url`` or
      ``\\href`` argument beside the ``\\cite`` or out of the one that holds it (a sentence holds a footnote's
      words apart, if at all);
    - ``cite keys read as words``: the judge's words for it hold bibliography keys ("numpy11");
    - ``in a file the judge does not open``: no six words in a row of the sentence are in the judge's body, and
      six are in another ``.tex`` file of the source (an ``\\input`` whose letter case differs from its file's,
      which TeX on macOS and Windows reads and the judge's reader does not);
    - ``other``: none of these; a person checks them (``reader`` says whether this bench's own reading of the
      source sentence, 8 words either side, is covered by the sentence)."""
    import pandas as pd
    from check import BOUNDARY, contexts, map_refs, plain
    from truth import CITE, bibliography, body, cited_keys, expand, read, strip_comments

    bib, _ = bibliography(paper_dir)
    cited_all = set(cited_keys(paper_dir, main_tex))
    cited = {k for k in cited_all if k in bib}
    ctx = contexts(paper_dir, main_tex)
    sentences = pd.read_csv(csv_dir / f"{pid}.sentences.csv", dtype=str).fillna("")
    refs = pd.read_csv(csv_dir / f"{pid}.references.csv", dtype=str).fillna("")
    ref_map = map_refs(refs, bib, cited) if ref_map is None else ref_map
    raw_of = dict(zip(refs.ref_key, refs.raw))

    def toks(text: str) -> set[str]:
        return {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", text)}

    def right_for(keys, own: set[str]) -> bool:
        return any(not [c for c in ctx.get(k, []) if len(c) >= 3]
                   or any(len(c & own) >= 0.5 * len(c) for c in ctx[k] if len(c) >= 3) for k in keys)

    refused = []
    for row in sentences.itertuples():
        own = toks(row.sentence)
        for rk in [x for x in row.ref_keys.split("|") if x]:
            if not right_for(ref_map.get(rk, set()), own):
                refused.append((row.sentence, rk, own))
    if not refused:
        return []
    main = PurePosixPath(main_tex)
    text = body(paper_dir, main_tex)
    preamble = expand(paper_dir / main.parent, main.name) + "".join(
        strip_comments(read(p) or "") for p in sorted(paper_dir.rglob("*")) if p.suffix in (".sty", ".cls")
        and p.is_file())
    by_macro = macro_cited_keys(preamble, text, CITE)
    inline = {k: v for k, v in inline_bibliography(paper_dir, main_tex).items() if k in cited_all and k not in bib}
    inline_map = map_refs(refs, inline, set(inline)) if inline else {}
    past_end = cited_past_the_judges_end(paper_dir, main_tex)
    bib_keys = {m.group(1) for p in sorted(paper_dir.rglob("*.bib")) if p.is_file()
                for m in re.finditer(r"@\w+\s*[{(]\s*([^,\s]+)\s*,", read(p) or "")}
    tables = table_spans(text)
    asides = [(m.start(), m.end() + len(_braced_text(text, m.end() - 1)) + 1)
              for m in re.finditer(r"\\(?:footnote|url|href)\s*\{", text)]
    # the words a key gives the judge where it reads a \cite as text ("numpy11", "2020scipy"): letters and digits
    key_words = {w for k in bib for w in toks(k) if re.search(r"\d", w) and re.search(r"[a-z]", w)}
    judge_runs = _word_runs(plain(CITE.sub(" ", text)))
    other_runs: set[tuple[str, ...]] = set()
    for p in sorted(paper_dir.rglob("*")):
        if p.suffix.lower() == ".tex" and p.is_file():
            other_runs |= _word_runs(plain(CITE.sub(" ", strip_comments(read(p) or ""))))
    other_runs -= judge_runs
    occurrences: dict[str, list[dict]] = {}  # key -> one record per \cite of it in the judge's body
    # the judge reads the body as it is (check.contexts), this bench's sentence reader without \nocite: the
    # same \cite commands in the same order
    for m, (keys, before, after, _) in zip(CITE.finditer(text), source_sentences(paper_dir, main_tex)):
        left = text[max(0, m.start() - 600):m.start()]
        right_raw = text[m.end():m.end() + 600]
        right = CITE.sub(" ", right_raw)
        cuts = list(BOUNDARY.finditer(left))
        left_in = left[cuts[-1].end():] if cuts else left
        nxt = BOUNDARY.search(right)
        right_in = right[:nxt.start() + 1] if nxt else right
        judge_words = {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", plain(CITE.sub(" ", left_in)))[-8:]
                       + re.findall(r"[A-Za-z0-9]{3,}", plain(right_in))[:8]}
        fell_back = len(judge_words) < 3
        if fell_back:  # the judge's 12 words before the \cite, cite keys and all
            judge_words = {w.lower() for w in re.findall(r"[A-Za-z0-9]{3,}", plain(left))[-12:]}
        # a \cite right after a sentence end: a boundary to the judge before it strips the \cite, none after
        end_raw = BOUNDARY.search(right_raw)
        hidden = end_raw is not None and CITE.match(right_raw, end_raw.end()) is not None and \
            (nxt is None or nxt.start() > end_raw.start())
        ends = list(SENTENCE_END.finditer(left + "\\"))
        opens = bool(ends) and ends[-1].end() == len(left) and not re.search(r"\n\s*\n\s*$|\\par\s*$", left)
        after_stop = bool(re.search(r"[.!?]['\")\]]*$", left)) and bool(re.match(r"\s+[A-Z]", right))
        words = set(_words(before)) | set(_words(after))
        start = m.start() - len(left if fell_back else left_in)
        stop = m.end() + len(right_raw if nxt is None else right_in) if not fell_back else m.start()
        # an end this bench's reader sees inside the judge's words; or the judge's own ends where it sees none
        inside = any(p.search(left_in[1:]) or p.search(right_in[:-1]) for p in (SENTENCE_END, _END_BEFORE_BRACE))
        early = (bool(cuts) and SENTENCE_END.match(left + "\\", cuts[-1].start()) is None) or \
            (nxt is not None and SENTENCE_END.match(right + "\\", nxt.start()) is None)
        record = {"own": words, "window": set(_words(before)[-8:]) | set(_words(after)[:8]),
                  "table": any(a <= m.start() < b for a, b in tables), "bare": fell_back or len(words) < 3,
                  "across": hidden or opens or after_stop or inside, "early": early and not fell_back,
                  "footnote": any(a < stop and start < b and not a <= m.start() < b for a, b in asides)
                  or any(a <= m.start() < b and (start < a or stop > b) for a, b in asides),
                  "keyed": bool(judge_words & key_words), "judge": judge_words}
        for key in keys:
            occurrences.setdefault(key, []).append(record)

    out = []
    for sentence, rk, own in refused:
        mapped = ref_map.get(rk, set())
        candidates = mapped | ({rk} if rk in bib else set())
        best = None
        kind = "other"
        if candidates & by_macro or (not mapped and rk in by_macro):
            kind = "macro-cited"
        elif not mapped and (rk in inline or inline_map.get(rk)) and right_for(inline_map.get(rk) or {rk}, own):
            kind = "bibliography the judge does not read"
        elif rk in cited_all and rk not in bib and rk in bib_keys:
            # (where the judge maps our reference to another key, it does so by the few words an untitled entry
            # shares with that key's title: "Journal of Machine Learning Research" and "Mathematics for Machine
            # Learning")
            kind = "entry the judge cannot read"
        elif not mapped and rk in past_end:
            kind = "cited past the end the judge reads"
        elif rk in cited and rk not in mapped and mapped and right_for({rk}, own):
            kind = "judge maps the reference to another entry"
        else:
            # (a key of an inline bibliography, which the judge does not read, has its citations read all the same)
            own_keys = mapped or inline_map.get(rk) or ({rk} if rk in inline else set())
            for key in sorted(own_keys) + ([rk] if rk in cited and rk not in own_keys else []):
                recs = occurrences.get(key, [])
                if not recs:
                    continue
                best = max(recs, key=lambda r: len(r["own"] & own) / max(1, len(r["own"])))
                kind = ("table cell" if best["table"] else "bare citation" if best["bare"] else
                        "judge reads across a sentence end" if best["across"] else
                        "judge ends the sentence early" if best["early"] else
                        "judge reads a footnote or URL" if best["footnote"] else
                        "cite keys read as words" if best["keyed"] else "other")
                if kind != "other":
                    break
        if kind == "other" and _unopened(sentence, judge_runs, other_runs):
            kind = "in a file the judge does not open"
        out.append({"class": kind, "sentence": sentence, "ref_key": rk, "reference": raw_of.get(rk, ""),
                    "mapped": sorted(mapped), "judge": sorted(best["judge"]) if best else [],
                    "reader": bool(best) and len(best["window"] & own) >= 0.5 * max(1, len(best["window"]))})
    return out


# ---------------------------------------------------------------------------
# --mutations: the ways real submissions differ from these six
# ---------------------------------------------------------------------------

TEXT_FILES = (".tex", ".bbl", ".bib")
LETTER = (b"\\documentclass{article}\n\\begin{document}\nResponse to the referees. We thank both referees for their "
          b"careful reading and have revised the manuscript as follows.\n\\end{document}\n")
_INPUT_BRACED = re.compile(r"\\input\s*\{([^}]+)\}")
_INPUT_ANY = re.compile(r"\\(?:input|include)(?![A-Za-z@])(?:\s*\{([^}]+)\}|[ \t]+([^\s{}\\%]+))")
_BIB_COMMAND = re.compile(r"\\bibliography\s*\{[^}]*\}")


def _is_text(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in TEXT_FILES


def _with_suffix(name: str, suffix: str) -> str:
    return str(PurePosixPath(name).with_suffix(suffix))


def _str(data: bytes) -> str:
    """A source file's text for a variation; bytes that are not UTF-8 (a Latin-1 .tex or .bib) pass through as they
    are (surrogateescape), so the variation changes nothing else."""
    return data.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def mutate_renamed_main(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The main file renamed (its .bbl with it, as arXiv's are) and a response letter, a document of its own, beside
    it."""
    new = str(PurePosixPath(main).with_name("arxiv_main.tex"))
    renames = {main: new, _with_suffix(main, ".bbl"): _with_suffix(new, ".bbl")}
    out = {renames.get(name, name): data for name, data in files.items()}
    out[str(PurePosixPath(main).with_name("response_to_referees.tex"))] = LETTER
    return out


def mutate_letter_named_main(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """As ``mutate_renamed_main``, the letter named ``main.tex`` (a conventional main-file name; ``ms.tex`` or
    ``paper.tex`` where the source has a ``main.tex`` of its own, which the letter must not overwrite) and the paper
    ``arxiv_main.tex`` without a .bbl of its own name."""
    new = str(PurePosixPath(main).with_name("arxiv_main.tex"))
    out = {(new if name == main else name): data for name, data in files.items()}
    letter = next(n for n in (str(PurePosixPath(main).with_name(f"{stem}.tex")) for stem in ("main", "ms", "paper"))
                  if n not in out)
    out[letter] = LETTER
    return out


def mutate_top_folder(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """Everything one folder down, as many arXiv tars are."""
    return {f"paper-arxiv/{name}": data for name, data in files.items()}


def mutate_crlf(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """Windows line endings in every text file."""
    return {name: data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") if _is_text(name) else data
            for name, data in files.items()}


def mutate_latin1(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """Every text file that Latin-1 can represent re-encoded to it, and the main file declaring
    ``\\usepackage[latin1]{inputenc}`` (a file Latin-1 cannot hold stays UTF-8, as in mixed real sources; a file
    that is not UTF-8 already, such as a Latin-1 ``.bib``, is left as it is)."""
    out = {}
    for name, data in files.items():
        if _is_text(name):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                out[name] = data
                continue
            if name == main:
                if re.search(r"\\usepackage\s*\[[^\]]*\]\s*\{inputenc\}", text):
                    text = re.sub(r"\\usepackage\s*\[[^\]]*\]\s*\{inputenc\}", r"\\usepackage[latin1]{inputenc}", text)
                else:
                    text = re.sub(r"(\\documentclass[^\n]*\n)",
                                  lambda m: m.group(1) + "\\usepackage[latin1]{inputenc}\n", text, count=1)
            try:
                data = text.encode("latin-1")
            except UnicodeEncodeError:
                data = text.encode("utf-8")
        out[name] = data
    return out


def mutate_no_bbl(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The .bbl removed where a .bib is there too (the .bib alone must do)."""
    if not any(n.endswith(".bib") for n in files):
        return files
    return {n: d for n, d in files.items() if not n.endswith(".bbl")}


def mutate_no_bib(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The .bib removed where a .bbl is there too (what arXiv itself needs)."""
    if not any(n.endswith(".bbl") for n in files):
        return files
    return {n: d for n, d in files.items() if not n.endswith(".bib")}


def _resolve(files: dict[str, bytes], folder: PurePosixPath, name: str) -> str | None:
    for cand in (name, name + ".tex"):
        path = str(PurePosixPath(re.sub(r"/\./|^\./", "/", str(folder / cand))))
        parts: list[str] = []
        for part in path.split("/"):
            if part == "..":
                parts = parts[:-1]
            elif part and part != ".":
                parts.append(part)
        key = "/".join(parts)
        if key in files:
            return key
    return None


def mutate_single_file(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """One flattened .tex, as arXiv's single-file submissions are: every ``\\input``/``\\include`` inlined (a file
    the source lacks stays a command), the .bbl pasted in place of ``\\bibliography``, or the .bib files carried in
    ``filecontents*`` environments before ``\\documentclass`` where there is no .bbl. Served gzipped, not as a tar."""
    folder = PurePosixPath(main).parent

    def inline(text: str, depth: int) -> str:
        def repl(m: re.Match) -> str:
            line = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
            if re.search(r"(?<!\\)%", line) or depth > 10:
                return m.group(0)
            target = _resolve(files, folder, (m.group(1) or m.group(2)).strip())
            if target is None:
                return m.group(0)
            return "\n" + inline(_str(files[target]), depth + 1) + "\n"
        return _INPUT_ANY.sub(repl, text)

    text = inline(_str(files[main]), 0)
    bbls = [n for n in files if n.endswith(".bbl")]
    if bbls:
        bbl = files.get(_with_suffix(main, ".bbl")) or files[bbls[0]]
        text = _BIB_COMMAND.sub(lambda m: _str(bbl), text)
    else:
        carried = "".join(f"\\begin{{filecontents*}}{{{PurePosixPath(n).relative_to(folder)}}}\n"
                          f"{files[n].decode('utf-8')}\n\\end{{filecontents*}}\n"
                          for n in files if n.endswith(".bib") and PurePosixPath(n).is_relative_to(folder))
        text = carried + text
    return {"main.tex": _raw(text)}


def mutate_bare_input(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """``\\input{sections/intro.tex}`` written as TeX's own ``\\input sections/intro`` (no braces, no extension)."""
    def bare(m: re.Match) -> str:
        name = m.group(1).strip()
        if re.search(r"\s", name):  # TeX reads a bare file name up to a space: such a name keeps its braces
            return m.group(0)
        return f"\\input {name[:-4] if name.endswith('.tex') else name} "
    return {n: _raw(_INPUT_BRACED.sub(bare, _str(d))) if n.endswith(".tex") else d
            for n, d in files.items()}


_FIRST_CITE = re.compile(r"\\(?:cite[a-z]*|autocite|parencite|textcite)\*?(?:\[[^\]]*\]){0,2}\{([^,}]+)")


def mutate_endinput(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """Every included file that cites ends with ``\\endinput`` followed by leftover draft text citing one of its keys
    again (TeX stops reading a file at ``\\endinput``; arXiv's PDF has none of it)."""
    out = {}
    for name, data in files.items():
        if name != main and name.endswith(".tex") and (m := _FIRST_CITE.search(_str(data))):
            data += (f"\n\\endinput\nLeftover notes from an earlier draft that were never typeset, "
                     f"as before \\cite{{{m.group(1)}}}.\n").encode("utf-8", "surrogateescape")
        out[name] = data
    return out


def mutate_readme_toplevel(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The main file renamed ``arxiv_main.tex`` beside a supplement with its own ``\\documentclass`` that cites more
    than the paper (arXiv compiles supplements separately), and an ``00README.XXX`` naming the top-level file, as
    arXiv asks when a source holds several documents."""
    new = str(PurePosixPath(main).with_name("arxiv_main.tex"))
    out = {(new if name == main else name): data for name, data in files.items()}
    keys = [m.group(1) for name, data in files.items() if name.endswith(".tex")
            for m in _FIRST_CITE.finditer(_str(data))]
    supplement = ("\\documentclass{article}\n\\begin{document}\n\\section{Supplementary material}\n"
                  + "".join(f"Further detail on this point is given in \\cite{{{k}}}.\n" for k in keys + keys[:1])
                  + "\\end{document}\n")
    out[str(PurePosixPath(main).with_name("supplement.tex"))] = _raw(supplement)
    out["00README.XXX"] = f"{new} toplevelfile\nnohypertex\n".encode("utf-8")
    return out


_ONE_LINE_DEFINITION = re.compile(r"^[ \t]*\\(?:(?:re)?newcommand|providecommand|DeclareRobustCommand|def|let)\b"
                                  r"[^\n]*\n", re.M)


def _balanced(line: str) -> bool:
    depth = 0
    for c in re.sub(r"\\.", "", line.split("%")[0]):
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return False
    return depth == 0


def mutate_local_sty(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The main file's one-line macro definitions moved into the authors' own ``arxivmacros.sty`` beside it,
    loaded with ``\\usepackage{arxivmacros}`` (many submissions keep their macros in a package of their own)."""
    text = _str(files[main])
    head, sep, body = text.partition("\\begin{document}")
    moved = [m.group(0) for m in _ONE_LINE_DEFINITION.finditer(head) if _balanced(m.group(0))]
    if not moved or not sep:
        return files
    for line in moved:
        head = head.replace(line, "", 1)
    head = re.sub(r"(\\documentclass[^\n]*\n)", lambda m: m.group(1) + "\\usepackage{arxivmacros}\n", head, count=1)
    out = dict(files)
    out[main] = _raw(head + sep + body)
    out[str(PurePosixPath(main).with_name("arxivmacros.sty"))] = \
        _raw("\\NeedsTeXFormat{LaTeX2e}\n\\ProvidesPackage{arxivmacros}\n" + "".join(moved))
    return out


_CITE_KEYS = re.compile(r"(\\(?:[Cc]ite[a-zA-Z]*|[Pp]arencite|[Tt]extcite|[Aa]utocite|[Ff]ootcite[a-z]*|onlinecite)\*?)"
                        r"((?:\[[^\]]*\])*)\{([^{}]*)\}")


def mutate_cite_spacing(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """Citation commands written loosely, as TeX allows: a space before the optional and key arguments, keys
    separated by ``, `` and broken over lines with a ``%`` comment (the same keys, the same output)."""
    def loose(m: re.Match) -> str:
        keys = [k.strip() for k in m.group(3).split(",")]
        line = m.string[m.string.rfind("\n", 0, m.start()) + 1:m.start()]
        if not all(keys) or re.search(r"(?<!\\)%", line):  # a commented-out command stays on its line
            return m.group(0)
        opts = " ".join(re.findall(r"\[[^\]]*\]", m.group(2)))
        return f"{m.group(1)} {opts + ' ' if opts else ''}{{{keys[0]}" + "".join(
            f",%\n   {k}" if i % 2 else f", {k}" for i, k in enumerate(keys[1:])) + "}"
    return {n: _raw(_CITE_KEYS.sub(loose, _str(d))) if n.endswith(".tex") else d
            for n, d in files.items()}


def mutate_bib_names(files: dict[str, bytes], main: str) -> dict[str, bytes]:
    """The .bib and .bbl files named other than ``\\bibliography{...}``/``\\addbibresource`` and the main file say
    (an author's own library name, a .bbl kept from an earlier main file)."""
    out = {}
    for name, data in files.items():
        if name.endswith((".bib", ".bbl")):
            path = PurePosixPath(name)
            name = str(path.with_name(f"{path.stem}-arxiv{path.suffix}"))
        out[name] = data
    return out


MUTATIONS = {
    "main renamed + response letter": mutate_renamed_main,
    "letter named main.tex": mutate_letter_named_main,
    "one folder down": mutate_top_folder,
    "CRLF line endings": mutate_crlf,
    "Latin-1 + inputenc": mutate_latin1,
    "only .bib (no .bbl)": mutate_no_bbl,
    "only .bbl (no .bib)": mutate_no_bib,
    "single gzipped .tex": mutate_single_file,
    "\\input file (no braces)": mutate_bare_input,
    "bib/bbl names differ": mutate_bib_names,
    "text after \\endinput": mutate_endinput,
    "00README.XXX + citing supplement": mutate_readme_toplevel,
    "macros in a local .sty": mutate_local_sty,
    "cite keys spaced over lines": mutate_cite_spacing,
}


def pack(files: dict[str, bytes], target: Path) -> Path:
    """A gzipped tar as arXiv serves a multi-file source, or a gzipped .tex for a single file."""
    if list(files) == ["main.tex"]:
        path = target.with_name(target.name + ".gz")
        path.write_bytes(gzip.compress(files["main.tex"], mtime=0))
        return path
    path = target.with_name(target.name + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def score_variant(data: Path, slugs: list[str], manifest: dict[str, str], packed: dict[str, dict[str, bytes]],
                  stage03, stage04, judge, tmp: Path) -> dict:
    """Stage 03 (``--backend latex``) and 04 once over the packed sources; the judges' figures, crashes (converter
    errors), fallbacks (no conversion, the reason) and cited keys reported without an entry."""
    (tmp / "in" / "sources").mkdir(parents=True)
    for slug in slugs:
        pack(packed[slug], tmp / "in" / "sources" / slug)
    quiet = io.StringIO()
    with redirect_stdout(quiet), redirect_stderr(quiet):
        try:
            stage03.main(stage03.Config(input_dir=tmp / "in", output_dir=tmp / "03", backend="latex", workers=1,
                                        force=True))
        except SystemExit:
            pass
        try:
            stage04.main(stage04.Config(input_dir=tmp / "03", output_dir=tmp / "04", force=True))
        except SystemExit:
            pass
    with open(tmp / "03" / "extraction_log.csv", encoding="utf-8-sig", newline="") as fh:
        rows = {r["paper_id"]: r for r in csv.DictReader(fh)}
    scores = judge_set(judge, data, [{"slug": s, "main_tex": manifest[s]} for s in slugs], tmp / "04")
    clipped, output = {}, {}
    for slug in slugs:
        if (tmp / "04" / f"{slug}.sentences.csv").exists():
            clipped[slug] = sentence_judge(data / slug, manifest[slug], tmp / "04", slug)
            with open(tmp / "04" / f"{slug}.sentences.csv", encoding="utf-8-sig", newline="") as fh:
                output[slug] = [(r["sentence"], r["ref_keys"]) for r in csv.DictReader(fh)]
        else:  # nothing converted: every key of the paper is missed
            from truth import bibliography, cited_keys

            primary = bibliography(data / slug)[1]
            clipped[slug] = {"keys": len({k for k in cited_keys(data / slug, manifest[slug]) if k in primary}),
                             "reached": 0, "links": 0, "right": 0}
    keys = sum(c["keys"] for c in clipped.values()) or 1
    links = sum(c["links"] for c in clipped.values()) or 1
    failed = {s: rows.get(s, {}).get("error") or rows.get(s, {}).get("fallback_reason") or "no log row"
              for s in slugs if rows.get(s, {}).get("status") != "ok"}
    missing = sum(int(m.group(1)) for s in slugs
                  if (m := re.match(r"(\d+) cited key\(s\) without", rows.get(s, {}).get("error", ""))))
    return {
        "judge_recall": round(scores.reached.sum() / max(1, scores["keys"].sum()), 4),
        "judge_precision": round(scores.right.sum() / max(1, scores.links.sum()), 4),
        "sentence_judge_recall": round(sum(c["reached"] for c in clipped.values()) / keys, 4),
        "sentence_judge_precision": round(sum(c["right"] for c in clipped.values()) / links, 4),
        "crashes": {s: r for s, r in failed.items() if r.startswith("LaTeX converter error")},
        "fallbacks": {s: r for s, r in failed.items() if not r.startswith("LaTeX converter error")},
        "missing_keys": missing,
        "per_paper": {s: (clipped[s]["reached"], clipped[s]["right"]) for s in slugs},
        "output": output,
    }


def mutation_report(data: Path, slugs: list[str], stage03, stage04, judge) -> dict:
    """Every variation in MUTATIONS over every source, against the unmutated sources."""
    manifest = {r["slug"]: r["main_tex"] for r in pu.read_csv_rows(data / "MANIFEST.csv")}
    originals = {s: {str(p.relative_to(data / s)): p.read_bytes() for p in sorted((data / s).rglob("*"))
                     if p.is_file()} for s in slugs}
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-latex-mut-") as tmp:
        base = score_variant(data, slugs, manifest, originals, stage03, stage04, judge, Path(tmp) / "base")
        results["unmutated"] = {**base, "changed": 0, "same_output": len(slugs)}
        for i, (name, mutate) in enumerate(MUTATIONS.items()):
            packed = {s: mutate(dict(originals[s]), manifest[s]) for s in slugs}
            res = score_variant(data, slugs, manifest, packed, stage03, stage04, judge, Path(tmp) / f"m{i}")
            results[name] = {**res, "changed": sum(packed[s] != originals[s] for s in slugs),
                             "same_output": sum(res["output"].get(s) == base["output"].get(s) for s in slugs)}
    print(f"\n{'variation':<34}{'papers':>7}{'same':>6}{'judge R':>9}{'judge P':>9}{'sent R':>8}{'sent P':>8}"
          f"{'crash':>6}{'fallbk':>7}{'missing':>8}  below the unmutated figure")
    for name, r in results.items():
        worse = [f"{s} {r['per_paper'][s][0] - base['per_paper'][s][0]:+d} reached "
                 f"{r['per_paper'][s][1] - base['per_paper'][s][1]:+d} right"
                 for s in slugs if any(a < b for a, b in zip(r["per_paper"][s], base["per_paper"][s]))]
        reasons = [f"{s}: {why[:90]}" for s, why in {**r["crashes"], **r["fallbacks"]}.items()]
        print(f"{name:<34}{r['changed']:>7}{r['same_output']:>6}{r['judge_recall']:>9.3f}{r['judge_precision']:>9.3f}"
              f"{r['sentence_judge_recall']:>8.3f}{r['sentence_judge_precision']:>8.3f}{len(r['crashes']):>6}"
              f"{len(r['fallbacks']):>7}{r['missing_keys']:>8}  {'; '.join(worse + reasons)}")
    summary = {name: {k: (len(v) if isinstance(v, dict) and k != "per_paper" else v)
                      for k, v in r.items() if k not in ("per_paper", "output")} for name, r in results.items()}
    summary["below_unmutated"] = [name for name, r in results.items()
                                  if r["sentence_judge_recall"] < base["sentence_judge_recall"]
                                  or r["sentence_judge_precision"] < base["sentence_judge_precision"]
                                  or r["crashes"] or r["fallbacks"]]
    summary["loadavg"] = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ""
    print(f"\nbelow the unmutated figure, crashed or fell back: {', '.join(summary['below_unmutated']) or 'none'} "
          f"(load average {' '.join(summary['loadavg'])})")
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
