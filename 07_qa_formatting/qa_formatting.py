"""Stage 07: citing sentences -> research requests paired with their DOIs, split by paper for fine-tuning.

    OPENAI_API_KEY=... python 07_qa_formatting/qa_formatting.py                        # OpenAI (default)
    python 07_qa_formatting/qa_formatting.py --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    python 07_qa_formatting/qa_formatting.py --backend transformers --model Qwen/Qwen2.5-1.5B-Instruct
    python 07_qa_formatting/qa_formatting.py --backend template                          # no model at all

Each sentence with at least one DOI becomes a pair: input = a request a
researcher would type ("Could you point me to studies on ...?"), output = the
DOIs, one per line. Every generated request is checked (one sentence, a
request, no citation marker, no author/year/title of the cited works, not a
copy of the sentence); a failing one is regenerated once, then dropped and
counted. Papers, not sentences, are split into train/val/test.
"""
from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz import fuzz  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
SYSTEM_MESSAGE = ("You are a research assistant for maritime digitalisation. Answer a request for literature with "
                  "the DOIs of the papers that address it, one per line, and nothing else.")


@dataclass
class Config:
    """Turn citing sentences into (request -> DOIs) pairs and split them by paper."""

    input_dir: Path = HERE.parent / "06_crossref_doi" / "output"
    """Stage 06's output (sentences.csv with dois, references.csv)."""
    output_dir: Path = HERE / "output"
    """Where qa.csv and train/val/test.jsonl go."""
    backend: Literal["openai", "transformers", "template"] = "openai"
    """openai: any OpenAI-compatible API; transformers: a local instruct model; template: no model."""
    model: str = "gpt-4o-mini"
    """Chat model (openai backend) or Hugging Face model id / local folder (transformers backend)."""
    base_url: str = ""
    """OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama; empty: OpenAI."""
    prompt_file: Path = HERE / "prompt.md"
    """The editable prompt: system message, few-shot examples, the template for each sentence."""
    temperature: float = 0.7
    """Sampling temperature of the rewriting model (0: greedy)."""
    max_tokens: int = 96
    """Longest request the model may write, in tokens."""
    concurrency: int = 8
    """Requests to the API in flight at once."""
    retries: int = 5
    """Retries of a failed API call (429 and 5xx, with the client's exponential back-off and Retry-After)."""
    timeout: float = 60.0
    """Seconds per API call."""
    batch_size: int = 8
    """Sentences per generation batch (transformers backend)."""
    system_message: str = SYSTEM_MESSAGE
    """The assistant's system message in the training data; stages 08 and 09 use it as written here."""
    answer_line: str = "{doi}"
    """How each cited work is written in the answer, one per line; fields {doi}, {title}, {year}."""
    max_similarity: float = 0.85
    """A request whose similarity (0-1, rapidfuzz ratio of the lower-cased words) to the sentence is above this is a copy."""
    min_words: int = 5
    """Shortest acceptable request, in words."""
    max_words: int = 45
    """Longest acceptable request, in words."""
    train_share: float = 0.8
    """Share of papers in train."""
    val_share: float = 0.1
    """Share of papers in val (the rest is test)."""
    seed: int = 42
    """Seed of the paper split and of the template's choices."""
    cache_path: Path = HERE / "llm_cache.sqlite"
    """SQLite cache of every generated answer, keyed by model and prompt."""
    force: bool = False
    """Ignore cached answers (new ones are still cached)."""
    verbose: bool = False
    """Debug logging."""


# ---------------------------------------------------------------------------
# The prompt
# ---------------------------------------------------------------------------

def load_prompt(path: Path) -> tuple[list[dict], str]:
    """(fixed messages: system + few-shot examples, template of the last user message)."""
    text = Path(path).read_text(encoding="utf-8")
    parts = re.split(r"^##\s*(system|user|assistant)\s*$", text, flags=re.M | re.I)
    messages = [{"role": role.lower(), "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2])]
    if not messages or messages[-1]["role"] != "user" or "{sentence}" not in messages[-1]["content"]:
        raise SystemExit(f"error: {path}: the last section must be '## user' containing {{sentence}}")
    return messages[:-1], messages[-1]["content"]


def build_messages(fixed: list[dict], template: str, sentence: str, feedback: str = "") -> list[dict]:
    user = template.replace("{sentence}", sentence)
    if feedback:
        user += f"\n\nA previous answer was rejected ({feedback}). Write a different request that follows every rule."
    return fixed + [{"role": "user", "content": user}]


# ---------------------------------------------------------------------------
# Checking a request
# ---------------------------------------------------------------------------

REQUEST_START = re.compile(
    r"^(could|can|would|will|please|i'?m|i am|i'd|i would|i need|i want|i'm|are there|is there|what|which|where|"
    r"how|who|do you|does|any|find|recommend|suggest|point|show|list|give|help|looking|seeking|searching|"
    r"kindly|id like|i like)\b", re.I)
MARKER = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]|\bet al\b|\(\s*[A-Z][A-Za-z'’-]+[^()]*\d{4}[a-z]?\s*\)", re.I)
YEAR = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")


def check_request(request: str, sentence: str, works: list[dict], config: Config) -> str:
    """'' when the request is acceptable, else the reason it is not."""
    text = request.strip().strip('"').strip()
    if not text:
        return "empty"
    words = text.split()
    if len(words) < config.min_words:
        return "too_short"
    if len(words) > config.max_words:
        return "too_long"
    if re.search(r"[.!?]\s+[A-Z]", text.rstrip(".?! ")) or "\n" in text:
        return "not_one_sentence"
    if not (text.endswith("?") or REQUEST_START.match(text)):
        return "not_a_request"
    if MARKER.search(text) or re.search(r"\bprior work\b", text, re.I):
        return "citation_marker"
    lowered = text.lower()
    for work in works:
        for surname in work["surnames"]:
            if len(surname) >= 3 and re.search(rf"\b{re.escape(surname.lower())}\b", lowered) \
                    and not re.search(rf"\b{re.escape(surname.lower())}\b", sentence.lower()):
                return "author_name"
        if work["year"] and work["year"] in text:
            return "year"
        title = work["title"]
        if len(title.split()) >= 4 and fuzz.partial_ratio(title.lower(), lowered) >= 90 \
                and fuzz.partial_ratio(title.lower(), sentence.lower()) < 90:
            return "title_copied"
    if YEAR.search(text) and not YEAR.search(sentence):
        return "year"
    if fuzz.ratio(re.sub(r"\W+", " ", lowered), re.sub(r"\W+", " ", sentence.lower())) / 100 > config.max_similarity:
        return "copy_of_sentence"
    return ""


def clean_request(text: str) -> str:
    """What a model wraps around the request: quotes, 'Request:' labels, surrounding whitespace."""
    text = (text or "").strip()
    text = re.sub(r"^(request|rewritten request|answer)\s*:\s*", "", text, flags=re.I)
    return text.strip().strip('"“”').strip()


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------

OPENINGS = [
    "Could you point me to studies showing that {clause}?",
    "I'm looking for research on whether {clause}.",
    "What evidence is there that {clause}?",
    "Which papers discuss how {clause}?",
    "Can you recommend literature showing that {clause}?",
    "Are there studies finding that {clause}?",
    "Please suggest work examining whether {clause}.",
    "I need references on how {clause}.",
]
QUESTION_OPENINGS = [
    "Could you point me to studies on {clause}?",
    "I'm looking for research on {clause}.",
    "Which papers examine {clause}?",
    "Can you recommend literature on {clause}?",
]
LEADING = re.compile(r"^(however|moreover|furthermore|in addition|finally|thus|therefore|hence|in particular|"
                     r"for example|for instance|in shipping|in practice|in contrast|similarly|recently|today|"
                     r"as noted by prior work|as reviewed by prior work)\s*,?\s*", re.I)


MAX_CLAUSE_WORDS = 14
# cut before a preposition or a subordinator, never inside a list ("crewed and autonomous vessels")
PHRASE_BOUNDARY = {"for", "in", "on", "with", "by", "when", "before", "after", "from", "to", "at", "between",
                   "since", "because", "once", "if", "than", "while", "rather"}


# "relies on", "used for", "seen as": cutting after these leaves a broken phrase
NEEDS_ITS_PREPOSITION = {"relies", "rely", "depends", "depend", "based", "focus", "focuses", "used", "needed", "compared",
                         "associated", "known", "seen", "presented", "able", "likely", "expected", "required", "designed",
                         "aimed", "applied", "related", "due", "according", "leads", "lead", "refers", "belongs",
                         "allows", "step", "digital", "only", "more", "less", "most", "from", "intermediate"}


def template_request(sentence: str, attempt: int, seed: int) -> str:
    """A deterministic request from the sentence: its main clause inside one of several request frames."""
    text = re.sub(r"\s*\([^()]*\)", "", sentence).strip().rstrip(".;:!? ")
    text = re.sub(r"^prior work \w+ (that |how |whether )?", "", text, flags=re.I)
    while (m := LEADING.match(text)) and m.end() < len(text):
        text = text[m.end():]
    clause = text
    # The main clause, when the sentence goes on after a comma or a semicolon with something else.
    for sep in (";", ":", ", which", ", and ", ", but ", ", while ", ", whereas ", ", so ", ", since ", ", as ",
                ", e.g.", ", i.e.", ", rather than", ", allowing", ", driven by"):
        head = clause.split(sep)[0]
        if len(head.split()) >= 6:
            clause = head
    # A researcher's request is shorter than the claim: cut a long clause at a phrase boundary.
    words = clause.split()
    if len(words) > MAX_CLAUSE_WORDS:
        cuts = [i for i, w in enumerate(words) if w.lower() in PHRASE_BOUNDARY and 7 <= i <= MAX_CLAUSE_WORDS
                and words[i - 1].lower().strip(",") not in NEEDS_ITS_PREPOSITION]
        if cuts:
            words = words[:cuts[-1]]
            words[-1] = words[-1].rstrip(",")
            while words and words[-1].lower() in PHRASE_BOUNDARY | {"and", "or", "the", "a", "an", "of", "as"}:
                words = words[:-1]
            clause = " ".join(words)
    if clause[:1].isupper() and not clause.split()[0].isupper():  # "Ships" -> "ships", "AIS" stays
        clause = clause[0].lower() + clause[1:]
    rng = random.Random(f"{seed}:{sentence}")
    # "whether X is still debated" asks for X: the verdict is what the literature should tell
    clause = re.sub(r"\s+(is|are|remains?|was|were)\s+(still\s+)?(debated|unclear|unknown|open|an open question|"
                    r"controversial|disputed)$", "", clause)
    # a clause that is already a question ("whether autonomous ships can be safer ...") needs no "that"
    frames = QUESTION_OPENINGS[:] if re.match(r"(whether|how|why|what|which|when)\b", clause) else OPENINGS[:]
    rng.shuffle(frames)
    return frames[attempt % len(frames)].format(clause=clause)


class OpenAIBackend:
    """Any OpenAI-compatible chat API; retries and back-off are the openai client's own."""

    def __init__(self, config: Config):
        from openai import OpenAI

        pu.load_env()
        key = os.environ.get("OPENAI_API_KEY", "")
        if not key and not config.base_url:
            raise SystemExit("error: OPENAI_API_KEY is not set (environment or .env); set it, point --base-url at a "
                             "local OpenAI-compatible server, or use --backend template")
        self.client = OpenAI(api_key=key or "not-needed-for-local-servers", base_url=config.base_url or None,
                             max_retries=config.retries, timeout=config.timeout)
        self.config = config

    def generate(self, prompts: list[list[dict]]) -> list[str]:
        from openai import APIError

        def one(messages: list[dict]) -> str:
            try:
                resp = self.client.chat.completions.create(model=self.config.model, messages=messages,
                                                           temperature=self.config.temperature,
                                                           max_tokens=self.config.max_tokens)
            except APIError as exc:
                raise GenerationError(f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc
            return resp.choices[0].message.content or ""

        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            return list(pool.map(one, prompts))


class TransformersBackend:
    """A local instruct model, batched, on the GPU when there is one."""

    def __init__(self, config: Config):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.config = config
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(config.model)
            self.model = AutoModelForCausalLM.from_pretrained(
                config.model, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device)
        except OSError as exc:
            raise SystemExit(f"error: cannot load model {config.model!r}: {str(exc).splitlines()[0]}") from exc
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device

    def generate(self, prompts: list[list[dict]]) -> list[str]:
        out: list[str] = []
        torch = self.torch
        for start in range(0, len(prompts), max(1, self.config.batch_size)):
            batch = prompts[start:start + self.config.batch_size]
            texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            sample = self.config.temperature > 0
            with torch.no_grad():
                generated = self.model.generate(
                    **enc, max_new_tokens=self.config.max_tokens, do_sample=sample,
                    temperature=self.config.temperature if sample else None, top_p=0.95 if sample else None,
                    pad_token_id=self.tokenizer.pad_token_id)
            new = generated[:, enc["input_ids"].shape[1]:]
            out.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out


class GenerationError(Exception):
    """An API call that failed after the client's retries."""


# ---------------------------------------------------------------------------
# Splits and output
# ---------------------------------------------------------------------------

def split_papers(paper_ids: list[str], config: Config) -> dict[str, str]:
    """Whole papers to train/val/test, seeded; with three papers or more, val and test get at least one."""
    papers = sorted(set(paper_ids))
    random.Random(config.seed).shuffle(papers)
    n = len(papers)
    n_train = round(n * config.train_share)
    n_val = round(n * config.val_share)
    if n >= 3:
        n_val = max(1, n_val)
        n_train = min(n_train, n - n_val - 1)
    split = {}
    for i, paper in enumerate(papers):
        split[paper] = "train" if i < n_train else ("val" if i < n_train + n_val else "test")
    return split


def example(system: str, request: str, answer: str, row: dict) -> dict:
    """One line of train/val/test.jsonl: TRL's conversational prompt-completion format."""
    return {"prompt": [{"role": "system", "content": system}, {"role": "user", "content": request}],
            "completion": [{"role": "assistant", "content": answer}],
            "dois": pu.split_list(row["dois"]), "paper_id": row["paper_id"], "sentence_id": row["sentence_id"]}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    pu.atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Generate, check, split, write; returns the summary."""
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    s_path, r_path = input_dir / "sentences.csv", input_dir / "references.csv"
    for path in (s_path, r_path):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: run stage 06 first (or pass --input-dir)")
    sentences = [r for r in pu.read_csv_rows(s_path) if pu.split_list(r.get("dois", ""))]
    if not sentences:
        raise SystemExit(f"error: no sentence in {s_path} has a DOI: check stage 06's match_report.json")
    works_by_uid = {}
    work_by_doi = {}
    for r in pu.read_csv_rows(r_path):
        surnames = [a.split(",")[0].strip() for a in pu.split_list(r.get("authors", ""))]
        work = {"surnames": surnames, "year": r.get("matched_year") or r.get("year", ""),
                "title": r.get("matched_title") or r.get("title", ""), "doi": r.get("doi", "")}
        works_by_uid[r["ref_uid"]] = work
        if work["doi"]:
            work_by_doi[work["doi"]] = work
    fixed, template = load_prompt(config.prompt_file) if config.backend != "template" else ([], "")

    backend = None
    if config.backend == "openai":
        backend = OpenAIBackend(config)
    elif config.backend == "transformers":
        backend = TransformersBackend(config)
    cache = pu.KeyValueCache(Path(config.cache_path))
    model_id = {"openai": f"openai:{config.base_url or 'api.openai.com'}:{config.model}",
                "transformers": f"transformers:{config.model}", "template": "template"}[config.backend]

    requests: dict[str, str] = {}
    reasons: dict[str, str] = {}
    drops: dict[str, int] = {}
    cache_hits = generated = 0
    started = time.perf_counter()
    pending = list(sentences)
    bar = tqdm(total=len(sentences), desc=f"requests ({config.backend})", unit="sentence")
    for attempt in range(2):  # the first try, then one regeneration of each failure
        prompts, keys, todo = [], [], []
        for row in pending:
            feedback = reasons.get(row["sentence_id"], "") if attempt else ""
            if config.backend == "template":
                messages = [{"role": "template", "content": row["sentence_clean"], "attempt": attempt}]
            else:
                messages = build_messages(fixed, template, row["sentence_clean"], feedback)
            key = pu.KeyValueCache.key(model_id, messages, config.temperature, config.max_tokens, config.seed)
            cached = None if config.force else cache.get(key)
            if cached is not None:
                cache_hits += 1
                requests[row["sentence_id"]] = cached
            else:
                prompts.append(messages)
                keys.append(key)
                todo.append(row)
        if config.backend == "template":
            answers = [template_request(m[0]["content"], m[0]["attempt"], config.seed) for m in prompts]
        else:
            answers = []
            for start in range(0, len(prompts), 64):  # in chunks, so the cache fills as the run goes
                chunk = prompts[start:start + 64]
                try:
                    answers.extend(backend.generate(chunk))
                except GenerationError as exc:
                    log.error("generation failed after retries: %s", exc)
                    answers.extend([None] * len(chunk))
                for key, answer in zip(keys[start:start + 64], answers[start:start + 64]):
                    if answer is not None:
                        cache.put(key, answer)
        for key, row, answer in zip(keys, todo, answers):
            if answer is None:
                reasons[row["sentence_id"]] = "api_error"
                continue
            generated += 1
            if config.backend == "template":
                cache.put(key, answer)
            requests[row["sentence_id"]] = answer
        failed = []
        for row in pending:
            sid = row["sentence_id"]
            if sid not in requests:
                failed.append(row)
                continue
            works = [works_by_uid[u] for u in pu.split_list(row.get("ref_uids", "")) if u in works_by_uid] or \
                [work_by_doi[d] for d in pu.split_list(row["dois"]) if d in work_by_doi]
            request = clean_request(requests[sid])
            reason = check_request(request, row["sentence_clean"], works, config)
            if reason:
                reasons[sid] = reason
                requests.pop(sid)
                failed.append(row)
            else:
                requests[sid] = request
                reasons.pop(sid, None)
                bar.update(1)
        pending = failed
    bar.update(len(pending))
    bar.close()
    for row in pending:
        reason = reasons.get(row["sentence_id"], "unknown")
        drops[reason] = drops.get(reason, 0) + 1
    elapsed = time.perf_counter() - started
    cache.close()

    split_of = split_papers([r["paper_id"] for r in sentences], config)
    qa_rows, jsonl = [], {"train": [], "val": [], "test": []}
    for row in sentences:
        sid = row["sentence_id"]
        if sid not in requests:
            continue
        dois = pu.split_list(row["dois"])
        lines = []
        for doi in dois:
            work = work_by_doi.get(doi, {})
            lines.append(config.answer_line.format(doi=doi, title=work.get("title", ""), year=work.get("year", "")))
        answer = "\n".join(lines)
        split = split_of[row["paper_id"]]
        qa_rows.append({"paper_id": row["paper_id"], "sentence_id": sid, "sentence": row.get("sentence", ""),
                        "input": requests[sid], "output": answer, "dois": row["dois"], "split": split})
        jsonl[split].append(example(config.system_message, requests[sid], answer, row))
    out.mkdir(parents=True, exist_ok=True)
    pu.atomic_write_csv(out / "qa.csv", qa_rows, ["paper_id", "sentence_id", "sentence", "input", "output", "dois",
                                                  "split"])
    for split, rows in jsonl.items():
        write_jsonl(out / f"{split}.jsonl", rows)
    train_dois = {d for r in jsonl["train"] for d in r["dois"]}
    test_dois = {d for r in jsonl["test"] for d in r["dois"]}
    summary = {
        "sentences_with_doi": len(sentences),
        "pairs": len(qa_rows),
        "pairs_by_split": {k: len(v) for k, v in jsonl.items()},
        "papers_by_split": {k: sum(1 for v in split_of.values() if v == k) for k in ("train", "val", "test")},
        "dropped": drops,
        "backend": config.backend,
        "generated": generated,
        "cache_hits": cache_hits,
        "requests_per_second": round(generated / elapsed, 1) if generated and elapsed else 0.0,
        "test_dois": len(test_dois),
        "test_dois_never_in_train": len(test_dois - train_dois),
    }
    pu.atomic_write_json(out / "qa_report.json", summary)
    pu.print_summary("stage 07: research requests", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
