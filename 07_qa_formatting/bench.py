"""Stage 07 benchmark: how often a template request has a defect a researcher would notice, on real citing text.

    python 07_qa_formatting/bench.py --real ../shared/realtext       # unarXive JSONL -> stages 04, 05 -> stage 07

The real text (unarXive's JSONL of arXiv papers parsed from LaTeX) goes through stage 04
(``--input-format unarxive``) and stage 05 as in the pipeline; stage 06's DOIs are taken from
unarXive's own matches (``ids.doi``, or the arXiv DOI of ``ids.arxiv_id``) so no network is needed.
Stage 07 then runs with the template backend. Every request, kept or not, is judged by the
defect detector below, written apart from the stage's checks (its own patterns and word
lists), so the figure does not just restate them. Run it three times: it prints the timing
of each and the median, with the load average.
"""
from __future__ import annotations

import importlib.util
import json
import re
import statistics
import subprocess
import sys
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
    """Measure stage 07's template requests on real citing text."""

    real: Path = REPO.parent / "shared" / "realtext"
    """Folder with unarxive_*.jsonl (real arXiv papers parsed from LaTeX by unarXive)."""
    runs: int = 3
    """Runs of stage 07 (the defect figures are deterministic; the timing is reported as a median)."""
    examples: int = 0
    """Print this many defective requests of each kind (to look at them)."""


# ---------------------------------------------------------------------------
# The defect detector (stated in the README; independent of the stage's checks)
# ---------------------------------------------------------------------------

CLOSED_CLASS = set("""a an the this that these those its their our his her my your some any each every no
of in on at by for with from to into onto about between among under over via than as like through per within
without during since until upon across against along around beyond toward towards and or but nor so yet if
whether because although though while whereas which who whom whose where when is are was were be been being
has have had do does did can could may might must shall should will would e.g i.e cf such""".split())
WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def cited_surnames(raws: list[str]) -> set[str]:
    """Surnames printed next to initials in a reference ('J. Hoskins', 'Hoskins, J.', 'S.-S. Byun')."""
    names = set()
    for raw in raws:
        head = raw[:200]
        names.update(re.findall(r"(?:\b[A-Z]\.(?:-?[A-Z]\.)*\s*)+((?:[a-z]{1,3}\s)?[A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ]+)?)",
                                head))
        names.update(re.findall(r"\b([A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ]+)?),\s+[A-Z]\.", head))
    return {n.split()[-1] for n in names if len(n.split()[-1]) >= 3}


def claim_words(raw_sentence: str) -> list[str]:
    """Up to three content words next to the first citation marker: the words of the cited claim."""
    # words in parentheses are asides, not the claim; "Smith et al. [4] show X": the claim follows the marker
    text = re.sub(r"\((?![^()]*\d{4}[a-z]?\))[^()]*\)", " ", raw_sentence)
    m = re.search(r"\[[^\]]*\d[^\]]*\]|\{\{cite:[^}]*\}\}|\([^()]*\d{4}[a-z]?\)", text)
    if not m:
        return []
    head = text[:m.start()]
    textual = re.search(r"(?:\bet\.?\s?al\.?|\b[A-Z][a-z]+(?:['’]s)?)\s*$", head) is not None
    before = [w for w in WORDS.findall(head) if w.lower() not in CLOSED_CLASS and len(w) > 3]
    after = [w for w in WORDS.findall(text[m.end():]) if w.lower() not in CLOSED_CLASS and len(w) > 3]
    near = after[:3] if textual or len(before) < 2 else before[-3:]
    return [w.lower() for w in near if not re.match(r"formula|cite", w, re.I)]


def defects(request: str, raw_sentence: str, surnames: set[str]) -> list[str]:
    """Every defect kind the request shows (an empty list: none)."""
    found = []
    low = request.lower()
    if "formula" in low or "{{" in request or "$" in request or "\\" in request or "[math" in low:
        found.append("formula_placeholder")
    if re.search(r"\bREF\b|\b[Rr]efs?\.", request):
        found.append("ref_placeholder")
    if re.search(r"\b(?:Eqs?|Equations?|Figs?|Figures?|Secs?|Sections?|Tables?|Theorems?|Lemmas?|Corollary|"
                 r"Propositions?|Definitions?|Appendix|Chapters?)\.?\s*\(?(?:[0-9]|(?-i:[IVX]+\b))", request, re.I):
        found.append("ref_eq_section_n")
    words = WORDS.findall(request)
    if words and words[-1].lower().rstrip(".") in CLOSED_CLASS:
        found.append("dangling_last_word")
    if re.search(r"\b(?:in|of|on|by|to|for|from|with|and|the|see)\s*[,.;:?)]|\s,|\(\s*\)|,\s*,", request):
        found.append("gap")
    if re.search(r"\b(?:we|our|ours|us)\b", request.replace("US", ""), re.I) or \
            re.search(r"\bthis (?:paper|work|article)\b", low):
        found.append("first_person")
    if re.search(r"\bet\.?\s?al\b", low) or any(re.search(rf"\b{re.escape(s)}\b", request) for s in surnames):
        found.append("cited_author")
    claim = claim_words(raw_sentence)
    if claim and not any(w in low for w in claim):
        found.append("cited_claim_cut_off")
    return found


# ---------------------------------------------------------------------------
# Real text through stages 04 and 05, DOIs from unarXive's matches
# ---------------------------------------------------------------------------

def run_stage(script: str, *args: str) -> None:
    result = subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{script} failed: {result.stderr.strip().splitlines()[-1:]}")


def prepare(real: Path, work: Path) -> Path:
    """stage 04 (unarXive reader) -> stage 05 -> a stage-06-shaped folder with DOIs."""
    if not sorted(Path(real).glob("*.jsonl*")):
        raise SystemExit(f"{real}: no unarXive *.jsonl")
    run_stage("04_xml_to_csv/xml_to_csv.py", "--input-format", "unarxive", "--input-dir", str(real),
              "--output-dir", str(work / "04"))
    run_stage("05_merge_clean/merge_clean.py", "--input-dir", str(work / "04"), "--output-dir", str(work / "05"))
    refs = pu.read_csv_rows(work / "05" / "references.csv")
    doi_of = {}
    for r in refs:
        arxiv = re.sub(r"v\d+$", "", r.get("arxiv_id", "") or "")
        r["doi"] = (r.get("doi") or (f"10.48550/arxiv.{arxiv}" if arxiv else "")).lower()
        if r["doi"]:
            doi_of[r["ref_uid"]] = r["doi"]
    sentences = pu.read_csv_rows(work / "05" / "sentences.csv")
    for s in sentences:
        s["dois"] = pu.join_list(dict.fromkeys(doi_of[u] for u in pu.split_list(s["ref_uids"]) if u in doi_of))
    out = work / "06"
    pu.atomic_write_csv(out / "references.csv", refs, list(refs[0].keys()))
    pu.atomic_write_csv(out / "sentences.csv", sentences, list(sentences[0].keys()))
    return out


def load_stage07():
    spec = importlib.util.spec_from_file_location("stage07_bench", HERE / "qa_formatting.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(config: Config) -> dict:
    stage = load_stage07()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        input_dir = prepare(Path(config.real), work)
        timings, summary = [], {}
        for run in range(config.runs):
            cfg = stage.Config(input_dir=input_dir, output_dir=work / "07", backend="template", force=True,
                               cache_path=work / f"cache{run}.sqlite", context_dir=work / "none",
                               metadata_csv=work / "none.csv", min_keep_share=0.0)
            started = time.perf_counter()
            summary = stage.main(cfg)
            timings.append(time.perf_counter() - started)
        sentences = {(r["paper_id"], r["sentence_id"]): r for r in pu.read_csv_rows(input_dir / "sentences.csv")}
        raws = {r["ref_uid"]: r.get("raw", "") for r in pu.read_csv_rows(input_dir / "references.csv")}
        kept = pu.read_csv_rows(work / "07" / "qa.csv")
        dropped = pu.read_csv_rows(work / "07" / "dropped.csv")

    def judge(rows: list[dict], text_of) -> dict:
        counts: dict[str, int] = {}
        any_defect, shown = 0, {}
        for row in rows:
            s = sentences[(row["paper_id"], row["sentence_id"])]
            names = cited_surnames([raws.get(u, "") for u in pu.split_list(s["ref_uids"])])
            found = defects(text_of(row, s, names), s["sentence"], names)
            any_defect += bool(found)
            for kind in found:
                counts[kind] = counts.get(kind, 0) + 1
                shown.setdefault(kind, [])
                if len(shown[kind]) < config.examples:
                    shown[kind].append(text_of(row, s, names))
        n = max(1, len(rows))
        return {"requests": len(rows), "with_any_defect": any_defect, "share_with_any_defect": round(any_defect / n, 3),
                "by_kind": {k: f"{v} ({v / n:.1%})" for k, v in sorted(counts.items())}, "examples": shown}

    with_doi = [s for s in sentences.values() if s["dois"]]
    first_try = judge(with_doi, lambda row, s, names: stage.template_request(
        s["sentence_clean"], s["sentence"], sorted(names), 0, 42))
    result = {
        "papers": len({s["paper_id"] for s in with_doi}),
        "sentences_with_doi": len(with_doi),
        "pairs_kept": len(kept),
        "kept_share": round(len(kept) / max(1, len(with_doi)), 3),
        "dropped_by_reason": summary.get("dropped", {}),
        "kept_requests": judge(kept, lambda row, s, names: row["input"]),
        "all_first_try_requests": first_try,
        "seconds_per_run": [round(t, 3) for t in timings],
        "median_seconds": round(statistics.median(timings), 3),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else [],
    }
    if not config.examples:
        for part in ("kept_requests", "all_first_try_requests"):
            result[part].pop("examples")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
