"""Stage 07 benchmark: how often a request has a defect a researcher would notice, on real citing text.

    python 07_qa_formatting/bench.py --real ../shared/realtext       # unarXive JSONL -> stages 04, 05 -> stage 07
    python 07_qa_formatting/bench.py --backend transformers --model smollm2 --sample 120   # + a local model

The real text (unarXive's JSONL of arXiv papers parsed from LaTeX) goes through stage 04
(``--input-format unarxive``) and stage 05 as in the pipeline; stage 06's DOIs are taken from
unarXive's own matches (``ids.doi``, or the arXiv DOI of ``ids.arxiv_id``) so no network is needed.
Stage 07 then runs with the template backend. Every request, kept or not, is judged by the
defect detector below, written apart from the stage's checks (its own patterns and word
lists), so the figure does not just restate them. Run it three times: it prints the timing
of each and the median, with the load average.

With ``--backend transformers`` a local instruct model (``--model``) writes the requests too, on
the same sentences (``--sample N`` draws N of them with ``--seed``: a small model on a CPU takes
seconds per request), and the template runs on that sample again so the two stand side by side:
pairs kept, the detector's defect share of the kept requests and of every first try, and how many
first tries stage 07's own checks refused and had regenerated (and how many of those were kept).
Greedy decoding by default (``--temperature 0``), so the model's figures are deterministic too.
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
from typing import Literal

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
    backend: Literal["template", "transformers"] = "template"
    """template: the template alone; transformers: also the local model --model, beside the template."""
    model: str = "smollm2"
    """The local instruct model (transformers): a name citation_tools.resolve_model knows, a hub id or a folder."""
    sample: int = 0
    """Sentences the model writes requests for, drawn with --seed from those with a DOI (0: all of them)."""
    seed: int = 42
    """Seed of the sample."""
    batch_size: int = 16
    """Prompts per generation batch (transformers)."""
    threads: int = 1
    """torch's CPU threads for the model (on 2 cores shared with other jobs, 2 threads spin against each other:
    a decode step took 1.9 s with 2, 0.24 s with 1, batch 8, load average 5.5)."""
    max_tokens: int = 64
    """Longest request the model may write, in tokens."""
    temperature: float = 0.0
    """Sampling temperature of the model (0: greedy, deterministic figures)."""


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


class CheckRecorder:
    """Wraps stage 07's ``check_request`` to keep each verdict in the order made: the first verdict on a
    sentence is its first try, a second one its regeneration."""

    def __init__(self, stage):
        self.stage, self.original, self.calls = stage, stage.check_request, []

    def __enter__(self):
        def recording(request, sentence, works, config, *rest):
            reason = self.original(request, sentence, works, config, *rest)
            self.calls.append((sentence, request, reason))
            return reason
        self.stage.check_request = recording
        return self

    def __exit__(self, *exc):
        self.stage.check_request = self.original

    def tries(self) -> dict:
        """first tries: {sentence_clean: (request, reason)}; regenerations likewise."""
        first, second = {}, {}
        for sentence, request, reason in self.calls:
            (second if sentence in first else first).setdefault(sentence, (request, reason))
        return {"first": first, "second": second}


def run_backend(stage, input_dir: Path, work: Path, name: str, **kw) -> dict:
    """One stage-07 run on ``input_dir`` with its checks recorded; wall and CPU seconds."""
    cfg = stage.Config(input_dir=input_dir, output_dir=work / name, force=True, cache_path=work / f"{name}.sqlite",
                       context_dir=work / "none", metadata_csv=work / "none.csv", min_keep_share=0.0, **kw)
    with CheckRecorder(stage) as recorder:
        wall, cpu = time.perf_counter(), time.process_time()
        summary = stage.main(cfg)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"summary": summary, "kept": pu.read_csv_rows(cfg.output_dir / "qa.csv"), "tries": recorder.tries(),
            "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}


def count_tokens(stage) -> list[int]:
    """Counts the tokens the transformers backend generates (its own tokenizer), by wrapping its generate."""
    counted = [0]
    original = stage.TransformersBackend.generate

    def generate(self, prompts, on_result):
        def counting(i, answer, error):
            if answer:
                counted[0] += len(self.tokenizer(answer, add_special_tokens=False)["input_ids"])
            on_result(i, answer, error)
        return original(self, prompts, counting)

    stage.TransformersBackend.generate = generate
    return counted


def main(config: Config) -> dict:
    stage = load_stage07()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        input_dir = prepare(Path(config.real), work)
        timings, cpu, summary = [], [], {}
        for run in range(config.runs):
            cfg = stage.Config(input_dir=input_dir, output_dir=work / "07", backend="template", force=True,
                               cache_path=work / f"cache{run}.sqlite", context_dir=work / "none",
                               metadata_csv=work / "none.csv", min_keep_share=0.0)
            started, started_cpu = time.perf_counter(), time.process_time()
            summary = stage.main(cfg)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        sentences = {(r["paper_id"], r["sentence_id"]): r for r in pu.read_csv_rows(input_dir / "sentences.csv")}
        raws = {r["ref_uid"]: r.get("raw", "") for r in pu.read_csv_rows(input_dir / "references.csv")}
        kept = pu.read_csv_rows(work / "07" / "qa.csv")
        dropped = pu.read_csv_rows(work / "07" / "dropped.csv")
        side_by_side = None
        if config.backend == "transformers":
            side_by_side = model_beside_template(stage, config, input_dir, work)

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
        "cpu_seconds_per_run": [round(t, 3) for t in cpu],
        "median_cpu_seconds": round(statistics.median(cpu), 3),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else [],
    }
    if side_by_side:
        result["loadavg_before_model"] = side_by_side["loadavg"]
    if side_by_side:
        result["same_sentences"] = {
            "sentences": side_by_side["sentences"],
            "template": side_by_side["template"](judge),
            config.model: side_by_side["model"](judge),
        }
    if not config.examples:
        for part in ("kept_requests", "all_first_try_requests"):
            result[part].pop("examples")
        for part in result.get("same_sentences", {}).values():
            if isinstance(part, dict):
                for judged in ("kept_requests", "all_first_try_requests"):
                    part[judged].pop("examples")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def model_beside_template(stage, config: Config, input_dir: Path, work: Path) -> dict:
    """The model and the template on the same (sampled) sentences; each part is judged later by ``judge``."""
    import random

    rows = pu.read_csv_rows(input_dir / "sentences.csv")
    with_doi = [r for r in rows if r["dois"]]
    chosen = with_doi if not config.sample or config.sample >= len(with_doi) else \
        random.Random(config.seed).sample(with_doi, config.sample)
    sample_dir = work / "06-sample"
    pu.atomic_write_csv(sample_dir / "sentences.csv", chosen, list(rows[0].keys()))
    (sample_dir / "references.csv").write_bytes((input_dir / "references.csv").read_bytes())
    template = run_backend(stage, sample_dir, work, "07-template", backend="template")
    loadavg = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    tokens = count_tokens(stage)
    import torch

    torch.set_num_threads(max(1, config.threads))
    model = run_backend(stage, sample_dir, work, "07-model", backend="transformers", model=config.model,
                        batch_size=config.batch_size, max_tokens=config.max_tokens, temperature=config.temperature,
                        seed=config.seed)
    model["tokens"] = tokens[0]
    by_clean = {r["sentence_clean"]: r for r in chosen}

    def part(run: dict):
        def judged(judge) -> dict:
            first, second = run["tries"]["first"], run["tries"]["second"]
            refused: dict[str, int] = {}
            for _, reason in first.values():
                if reason:
                    refused[reason] = refused.get(reason, 0) + 1
            first_rows = [{**by_clean[c], "input": req} for c, (req, _) in first.items() if c in by_clean]
            out = {
                "pairs_kept": len(run["kept"]),
                "kept_share": round(len(run["kept"]) / max(1, len(chosen)), 3),
                "dropped_by_reason": run["summary"].get("dropped", {}),
                "first_tries_refused_by_checks": sum(refused.values()),
                "first_tries_refused_by_reason": dict(sorted(refused.items(), key=lambda kv: -kv[1])),
                "regenerated": len(second),
                "kept_after_regeneration": sum(1 for _, reason in second.values() if not reason),
                "kept_requests": judge(run["kept"], lambda row, s, names: row["input"]),
                "all_first_try_requests": judge(first_rows, lambda row, s, names: row["input"]),
                "seconds": run["seconds"],
                "cpu_seconds": run["cpu_seconds"],
            }
            if "tokens" in run:
                out["generated_tokens"] = run["tokens"]
                out["tokens_per_second"] = round(run["tokens"] / max(run["seconds"], 1e-9), 1)
                out["requests_per_second"] = run["summary"].get("requests_per_second")
            return out
        return judged

    return {"sentences": len(chosen), "template": part(template), "model": part(model), "loadavg": loadavg}


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
