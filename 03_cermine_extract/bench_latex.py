r"""Measure the LaTeX route on real arXiv sources: citation recall and precision as the judge counts them, crashes,
and seconds per paper on one core.

    .venv/bin/python 03_cermine_extract/bench_latex.py                     # ../shared/realtex
    .venv/bin/python 03_cermine_extract/bench_latex.py --data-dir DIR --runs 3

Each folder of DATA_DIR (listed in its MANIFEST.csv) is packed as arXiv serves a multi-file source (a gzipped tar)
into a temporary stage-02 folder; stage 03 runs with ``--backend latex --workers 1``, stage 04 reads its JATS, and
``DATA_DIR/judge/check.py`` scores stage 04's CSVs. Seconds per paper: the median over ``--runs`` of the CPU time
of one paper's conversion (unpacking included) in this process, and of the wall time stage 03 logs with one worker
(wall time grows with the machine's load; CPU time is what one core spends).

Every key the judge does not count as reached is classified: ``not linked`` (no sentence links a reference that is
that key's entry: a fault of this stage), ``window crosses a sentence`` (a sentence links the right reference, and
the judge's 12-word window before the ``\cite`` is covered once the sentence before it is added: the ``\cite``
sits within the first few words of its sentence, which no sentence-level output can satisfy), ``window holds cite
keys`` (covered once the bib keys of the ``\cite`` commands just before it, which the judge reads as words, are
counted: "materials,~\cite{a,b} optimize reactions,~\cite{c}"), or ``other``.

Two further figures put the judge's number in its place:

- ``sentence_judge``: the same judge with its window clipped to the source sentence that holds the ``\cite`` (up to 8
  words before it and 8 after, never across a sentence end), read from the source by the judge's own ``truth.py``: a
  link is right when the printed sentence holds half of those words. This is the issue's "a citing sentence linked to
  the right reference", which the 12-word window cannot ask of a ``\cite`` in a sentence's first words.
- ``ceiling``: the judge's score of two outputs built straight from the source with its own reader, the right
  reference on every link: one row per ``\cite`` holding the 400 characters before it (what the judge's window
  reads), and one row per ``\cite`` holding the source sentence around it. The first is the judge's "ideal output";
  the second is the best any sentence-level output can score.
"""
from __future__ import annotations

import csv
import importlib.util
import re
import statistics
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import pipeline_utils as pu  # noqa: E402


@dataclass
class Config:
    """Benchmark the LaTeX route against a folder of real sources with a judge."""

    data_dir: Path = REPO.parent / "shared" / "realtex"
    """Folder of real sources: MANIFEST.csv, one folder per paper, judge/check.py."""
    runs: int = 3
    """Timed runs of stage 03 (the median is reported)."""


def load(path: Path, name: str):
    """Import a stage script from its digit-named folder (as tests/helpers.py does)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(config: Config) -> dict:
    data = Path(config.data_dir)
    if not (data / "MANIFEST.csv").is_file():
        raise SystemExit(f"error: {data}/MANIFEST.csv not found (pass --data-dir)")
    slugs = [r["slug"] for r in pu.read_csv_rows(data / "MANIFEST.csv")]
    stage03 = load(HERE / "cermine_extract.py", "bench_stage03")
    stage04 = load(REPO / "04_xml_to_csv" / "xml_to_csv.py", "bench_stage04")
    sys.path.insert(0, str(data / "judge"))
    judge = load(data / "judge" / "check.py", "bench_judge")
    with tempfile.TemporaryDirectory(prefix="bench-latex-") as tmp:
        tmp = Path(tmp)
        sources = tmp / "in" / "sources"
        sources.mkdir(parents=True)
        for slug in slugs:
            with tarfile.open(sources / f"{slug}.tar.gz", "w:gz") as tar:
                tar.add(data / slug, arcname=".")
        seconds: dict[str, list[float]] = {s: [] for s in slugs}
        rows = {}
        for run in range(max(1, config.runs)):
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
        for _ in range(max(1, config.runs)):
            for slug in slugs:
                began = time.process_time()
                stage03.convert_latex(str(sources / f"{slug}.tar.gz"), str(tmp / "work"), limits, 600)
                cpu[slug].append(time.process_time() - began)
        stage04.main(stage04.Config(input_dir=tmp / "03", output_dir=tmp / "04", force=True))
        scores = judge.judge(data, tmp / "04")
        stage04.main(stage04.Config(input_dir=tmp / "03", output_dir=tmp / "04all", force=True, all_sentences=True))
        manifest = {r["slug"]: r["main_tex"] for r in pu.read_csv_rows(data / "MANIFEST.csv")}
        misses = {slug: classify_misses(data / slug, manifest[slug], tmp / "04all", slug) for slug in slugs}
        clipped = {slug: sentence_judge(data / slug, manifest[slug], tmp / "04", slug) for slug in slugs}
        ceilings = {}
        for mode in ("window", "sentence"):
            write_ideal_output(data, manifest, tmp / f"ideal-{mode}", mode)
            ideal = judge.judge(data, tmp / f"ideal-{mode}")
            ceilings[mode] = (round(ideal.reached.sum() / ideal["keys"].sum(), 4),
                              round(ideal.right.sum() / ideal.links.sum(), 4))
    print(f"\n{'paper':<22}{'status':<20}{'keys':>6}{'reached':>8}{'recall':>8}{'links':>7}{'right':>7}"
          f"{'precision':>10}{'cpu s':>7}{'wall s':>8}  misses")
    total = {"keys": 0, "reached": 0, "links": 0, "right": 0}
    crashes = 0
    for r in scores.itertuples():
        status = rows.get(r.paper, {}).get("status", "missing")
        crashes += status == "failed"
        med = statistics.median(seconds[r.paper]) if seconds[r.paper] else float("nan")
        med_cpu = statistics.median(cpu[r.paper])
        recall = r.reached / r.keys if r.keys else float("nan")
        precision = r.right / r.links if r.links else float("nan")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(misses[r.paper].items()))
        print(f"{r.paper:<22}{status:<20}{r.keys:>6}{r.reached:>8}{recall:>8.3f}{r.links:>7}{r.right:>7}"
              f"{precision:>10.3f}{med_cpu:>7.3f}{med:>8.3f}  {kinds}")
        for k in total:
            total[k] += getattr(r, k)
    all_seconds = [statistics.median(v) for v in seconds.values() if v]
    all_cpu = [statistics.median(v) for v in cpu.values()]
    kinds: dict[str, int] = {}
    for per_paper in misses.values():
        for kind, n in per_paper.items():
            kinds[kind] = kinds.get(kind, 0) + n
    window_links = kinds.pop("links judged wrong only by the window", 0)
    for per_paper in misses.values():
        per_paper.pop("links judged wrong only by the window", None)
    summary = {
        "papers": len(slugs),
        "crashes": crashes,
        "recall": round(total["reached"] / total["keys"], 4) if total["keys"] else 0.0,
        "precision": round(total["right"] / total["links"], 4) if total["links"] else 0.0,
        "misses": kinds,
        "recall_without_window_misses": round((total["reached"] + kinds.get("window crosses a sentence", 0)
                                               + kinds.get("window holds cite keys", 0)) / total["keys"], 4)
        if total["keys"] else 0.0,
        "precision_without_window_misses": round((total["right"] + window_links) / total["links"], 4)
        if total["links"] else 0.0,
        "sentence_judge_recall": round(sum(c["reached"] for c in clipped.values())
                                       / max(1, sum(c["keys"] for c in clipped.values())), 4),
        "sentence_judge_precision": round(sum(c["right"] for c in clipped.values())
                                          / max(1, sum(c["links"] for c in clipped.values())), 4),
        "judge_on_ideal_400_char_windows": "recall %.4f, precision %.4f" % ceilings["window"],
        "judge_on_ideal_source_sentences": "recall %.4f, precision %.4f" % ceilings["sentence"],
        "median_cpu_seconds_per_paper": round(statistics.median(all_cpu), 3),
        "max_cpu_seconds_per_paper": round(max(all_cpu), 3),
        "median_wall_seconds_per_paper": round(statistics.median(all_seconds), 3) if all_seconds else 0.0,
        "runs": config.runs,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else "",
    }
    print(f"{'total':<42}{total['keys']:>6}{total['reached']:>8}{summary['recall']:>8.3f}{total['links']:>7}"
          f"{total['right']:>7}{summary['precision']:>10.3f}")
    pu.print_summary("LaTeX route on real sources", summary)
    return summary


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
        pd.DataFrame([{"paper_id": slug, "ref_key": k, "title": "", "year": "", "authors": "", "raw": v}
                      for k, v in bib.items()]).to_csv(out / f"{slug}.references.csv", index=False)


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


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
