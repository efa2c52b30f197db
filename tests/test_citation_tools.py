"""citation_tools: the catalogue, retrieval, the grounded prompt, and constrained decoding of distinct DOIs."""
from __future__ import annotations

import json

import pytest

import citation_tools as ct
import pipeline_utils as pu
from demo.tiny_model import build_tiny_model


class MarkTokenizer:
    """Characters as tokens, with SentencePiece's habit (Llama 2): every encoded text starts with a
    word mark, so "\\n" encodes to two tokens (mark + newline) and every DOI starts with the same mark."""

    eos_token_id = 1
    MARK, NEWLINE = 4, 5

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.MARK] + [self.NEWLINE if c == "\n" else ord(c) + 10 for c in text]


TOK = MarkTokenizer()
A, B, C = "10.5555/a.1", "10.5555/b.2", "10.5555/a.10"


def walk(trie: ct.DoiTrie, tokens: list[int]) -> None:
    """Assert the grammar allows every token of ``tokens`` in turn."""
    for i, tok in enumerate(tokens):
        assert tok in trie.allowed(tokens[:i]), f"token {i} ({tok}) refused"



def overfit(model, ids, labels, steps: int = 30) -> None:
    """Train the tiny model on one sequence until it has learnt it (the loss on the labelled positions only)."""
    import torch

    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        optimiser.step()

def test_two_token_newline_separates_dois_and_both_are_read_back():
    trie = ct.DoiTrie([A, B], TOK, max_dois=5)
    assert trie.sep == [TOK.MARK, TOK.NEWLINE]
    answer = TOK.encode(A) + trie.sep + TOK.encode(B) + [TOK.eos_token_id]
    walk(trie, answer)
    assert trie.dois_in(answer) == [A, B]
    # inside the separator only its second token may follow
    assert trie.allowed(TOK.encode(A) + [TOK.MARK]) == [TOK.NEWLINE]


def test_a_doi_already_answered_is_never_offered_again():
    trie = ct.DoiTrie([A, B], TOK, max_dois=5)
    after_a = TOK.encode(A) + trie.sep
    prefix = TOK.encode("10.5555/")
    assert ord("a") + 10 not in trie.allowed(after_a + prefix)  # only b.2 is left
    assert trie.allowed(after_a + prefix) == [ord("b") + 10]
    # a repeat forced past the constraint ends the answer; the DOI counts once
    assert trie.dois_in(after_a + TOK.encode(A) + [TOK.eos_token_id]) == [A]


def test_a_doi_that_is_a_prefix_of_another_stays_distinct():
    trie = ct.DoiTrie([A, C], TOK, max_dois=5)
    a = TOK.encode(A)
    assert TOK.eos_token_id in trie.allowed(a) and ord("0") + 10 in trie.allowed(a)
    answer = a + trie.sep + TOK.encode(A)  # a.1 used: only a.10 remains along this path
    assert TOK.eos_token_id not in trie.allowed(answer) and trie.allowed(answer) == [ord("0") + 10]


def test_a_doi_cut_by_the_token_limit_is_dropped():
    trie = ct.DoiTrie([A, B, C], TOK, max_dois=5)
    cut = TOK.encode(A) + trie.sep + TOK.encode(B)[:5]
    assert trie.dois_in(cut) == [A]
    # cut exactly after b.2's last token: no longer DOI continues it, so it is whole
    assert trie.dois_in(TOK.encode(A) + trie.sep + TOK.encode(B)) == [A, B]
    # cut right after a.1, which a.10 extends: it may have been a.10, so it is dropped
    assert trie.dois_in(TOK.encode(B) + trie.sep + TOK.encode(A)) == [B]


def test_after_max_dois_only_the_end_is_allowed():
    trie = ct.DoiTrie([A, B, C], TOK, max_dois=2)
    first = TOK.encode(B)
    assert trie.sep[0] in trie.allowed(first)
    second = first + trie.sep + TOK.encode(C)
    assert trie.allowed(second) == [TOK.eos_token_id]
    # a catalogue of one DOI: no separator is ever offered
    assert ct.DoiTrie([A], TOK, max_dois=5).allowed(TOK.encode(A)) == [TOK.eos_token_id]


def test_merge_ranked_keeps_the_best_answer_first_and_no_duplicates():
    assert ct.merge_ranked([[A, B], [B, C], [A]], k=10) == [A, B, C]
    assert ct.merge_ranked([[A, B], [C]], k=2) == [A, B]


def test_free_answer_cut_by_the_limit_loses_its_last_doi_only():
    text = "10.5555/a.1\n10.5555/b.2\n10.5555/mdig.20"
    assert ct.answer_dois(text, finished=True) == ["10.5555/a.1", "10.5555/b.2", "10.5555/mdig.20"]
    assert ct.answer_dois(text, finished=False) == ["10.5555/a.1", "10.5555/b.2"]
    assert ct.answer_dois("10.5555/a.1\nand more", finished=False) == ["10.5555/a.1"]


def test_base_model_of_an_adapter_reads_its_config_then_the_run(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base-7b"}))
    assert ct.base_model_of(tmp_path) == "org/base-7b"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    (tmp_path / "run_config.json").write_text(json.dumps({"config": {"model": "org/other"}}))
    assert ct.base_model_of(tmp_path) == "org/other"
    assert ct.base_model_of(tmp_path / "missing") == ""


# --------------------------------------------------------------------------- the catalogue and the prompt

def test_catalogue_loads_normalised_and_the_grounded_prompt_round_trips(tmp_path):
    rows = [{"doi": "https://doi.org/10.5555/GNSS.2", "title": "GNSS spoofing of ships", "authors": "Doe, Jane|Roe, R",
             "year": "2019.0", "venue": "J. Nav.", "abstract": "Spoofed positions at sea.", "cited_by_papers": "p1"},
            {"doi": "10.5555/port.3", "title": "Port call optimisation", "authors": "Lind, M", "year": "",
             "venue": "", "abstract": "", "cited_by_papers": ""},
            {"doi": "10.5555/gnss.2", "title": "duplicate", "authors": "", "year": "", "venue": "", "abstract": "",
             "cited_by_papers": ""}]
    pu.atomic_write_csv(tmp_path / "catalogue.csv", rows, ct.CATALOGUE_COLUMNS)
    works = ct.load_catalogue(tmp_path / "catalogue.csv")
    assert [w["doi"] for w in works] == ["10.5555/gnss.2", "10.5555/port.3"]
    assert works[0]["year"] == "2019" and works[0]["authors"] == ["Doe, Jane", "Roe, R"]
    hits = ct.CatalogueIndex(works).search("spoofing ships", k=5)
    assert [w["doi"] for w, _ in hits] == ["10.5555/gnss.2"]
    message = ct.grounded_user_message("GNSS spoofing?", works)
    assert ct.candidates_in_message(message) == ["10.5555/gnss.2", "10.5555/port.3"]
    with pytest.raises(SystemExit, match="run stage 06 first"):
        ct.load_catalogue(tmp_path / "none.csv")


# --------------------------------------------------------------------------- decoding with a real (tiny) model

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch

    torch.set_num_threads(1)  # a 2-layer model is fastest on one thread, and the machine is shared
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return ct.load_model(str(folder))


DOIS = ["10.5555/mdig.2020.0102", "10.5555/mdig.2019.0105", "10.48550/arxiv.2213.04417", "10.5555/mdig.2001.0001"]
CHATS = [[{"role": "system", "content": "Answer with DOIs."}, {"role": "user", "content": q}]
         for q in ("Studies on digital twins?", "Work on port calls?", "Anything on AIS anomalies?")]


def test_constrained_beam_search_answers_distinct_allowed_dois_even_untrained(tiny):
    model, tokenizer = tiny
    ranked = ct.generate_constrained(model, tokenizer, CHATS, DOIS, k=3, num_beams=3)
    for answer in ranked:
        assert answer and len(answer) <= 3 and len(set(answer)) == len(answer)
        assert set(answer) <= set(DOIS)
    free = ct.generate_free(model, tokenizer, CHATS, max_new_tokens=24)
    assert not any(d in DOIS for text, finished in free for d in ct.answer_dois(text, finished))


def test_each_prompt_is_held_to_its_own_candidates_with_a_multi_token_separator(tiny):
    model, tokenizer = tiny
    assert len(tokenizer.encode(" ;\n", add_special_tokens=False)) >= 2
    allowed = [DOIS[:2], DOIS[2:], []]
    ranked = ct.generate_constrained(model, tokenizer, CHATS, allowed, k=4, num_beams=2, separator=" ;\n")
    assert set(ranked[0]) <= set(DOIS[:2]) and ranked[0]
    assert set(ranked[1]) <= set(DOIS[2:]) and ranked[1]
    assert ranked[2] == []


def test_a_token_limit_that_cuts_the_answer_keeps_only_whole_dois(tiny):
    model, tokenizer = tiny
    longest = max(len(tokenizer.encode(d, add_special_tokens=False)) for d in DOIS)
    ranked = ct.generate_constrained(model, tokenizer, CHATS, DOIS, k=4, num_beams=1, max_new_tokens=longest + 3)
    for answer in ranked:
        assert len(answer) <= 1 and set(answer) <= set(DOIS)


MANY = DOIS + [f"10.{1000 + i}/x.{7 * i}" for i in range(40)] + [f"10.5555/mdig.20{i:02d}.{i:04d}" for i in range(30)]


def test_greedy_constrained_decoding_without_generate_answers_what_generate_answers(tiny):
    """One beam: the decoder that runs the model only where the trie leaves a choice (forced tokens go through
    the cache together with the next choice) gives the DOIs of model.generate under prefix_allowed_tokens_fn,
    with one trie for all prompts, with a list per prompt (one of them empty), with a multi-token separator and
    with a token limit that cuts the answer."""
    model, tokenizer = tiny
    chats = CHATS + [[{"role": "user", "content": "Berth allocation under uncertainty?"}]]

    def both(allowed, **kw):
        shared = None if isinstance(allowed[0], list) else ct.DoiTrie(allowed, tokenizer, max_dois=kw["k"],
                                                                     separator=kw.get("separator", "\n"))
        reference = ct._generate_beams(model, tokenizer, chats, allowed if shared is None else None, shared,
                                       kw["k"], 1, kw.get("max_new_tokens", 0), 3, kw.get("separator", "\n"))
        return ct.generate_constrained(model, tokenizer, chats, allowed, num_beams=1, **kw), reference

    fast, reference = both(MANY, k=10)
    assert fast == reference and all(fast)
    fast, reference = both([MANY[:5], MANY[10:40], [], MANY], k=3)
    assert fast == reference and fast[2] == []
    fast, reference = both(MANY, k=4, separator=" ;\n")
    assert fast == reference
    longest = max(len(tokenizer.encode(d, add_special_tokens=False)) for d in MANY)
    fast, reference = both(MANY, k=4, max_new_tokens=2 * longest + 1)
    assert fast == reference and all(len(a) <= 2 for a in fast)


def test_greedy_constrained_decoding_runs_the_model_only_at_choices(tiny):
    """Most tokens of a DOI are the only way on in the trie: the greedy decoder runs far fewer forward passes
    than it writes tokens."""
    model, tokenizer = tiny
    calls = []
    original = model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs.get("input_ids").shape[1] if kwargs.get("input_ids") is not None else 0)
        return original(*args, **kwargs)

    model.forward = counting
    try:
        answer = ct.generate_constrained(model, tokenizer, CHATS[:1], MANY, k=5, num_beams=1)[0]
    finally:
        del model.forward
    written = sum(len(tokenizer.encode(d, add_special_tokens=False)) + 1 for d in answer)
    assert answer and len(calls) < written / 2


# --------------------------------------------------------------------------- ranking by likelihood

def full_sequence_loglik(model, tokenizer, chat, doi) -> float:
    """log P(doi, then the end of the line or of the answer | chat prompt), from one forward pass over the whole
    sequence and no cache: what score_candidates must give."""
    import torch

    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer = tokenizer(doi, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([prompt + answer])).logits[0].float(), dim=-1)
    total = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(answer))
    ends = sorted({int(tokenizer.eos_token_id), tokenizer.encode("\n", add_special_tokens=False)[0]})
    return total + float(torch.logsumexp(logp[len(prompt) + len(answer) - 1, ends], dim=0))


def test_candidate_scores_with_the_shared_prompt_cache_equal_full_sequence_log_likelihoods(tiny):
    model, tokenizer = tiny
    scored = ct.score_candidates(model, tokenizer, CHATS[:2], [DOIS, DOIS[:3]], batch_size=3)
    assert [len(s) for s in scored] == [4, 3]
    for chat, row, dois in zip(CHATS, scored, [DOIS, DOIS[:3]]):
        for (total, n), doi in zip(row, dois):
            assert n == len(tokenizer(doi, add_special_tokens=False)["input_ids"])
            assert total == pytest.approx(full_sequence_loglik(model, tokenizer, chat, doi), abs=1e-3)
    assert ct.score_candidates(model, tokenizer, CHATS[:1], [[]]) == [[]]


def test_likelihood_ranker_puts_first_the_candidate_whose_doi_the_model_was_trained_to_write(tmp_path):
    import torch

    torch.manual_seed(0)
    model, tokenizer = ct.load_model(str(build_tiny_model(tmp_path / "tiny")))
    chat, gold = CHATS[1], DOIS[2]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer = tokenizer(gold, add_special_tokens=False)["input_ids"] + [int(tokenizer.eos_token_id)]
    ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])  # the SFT loss: on the answer only
    overfit(model, ids, labels)
    ranked = ct.rank_by_likelihood(model, tokenizer, [chat], [DOIS], batch_size=2)[0]
    assert ranked[0] == gold and sorted(ranked) == sorted(DOIS)
    # fused with a retriever that puts the gold work last: weight 1 keeps the retriever's order
    retrieval = [[4.0, 3.0, 1.0, 2.0]]
    assert ct.rank_by_likelihood(model, tokenizer, [chat], [DOIS], retrieval, weight=1.0)[0] == \
        [DOIS[0], DOIS[1], DOIS[3], DOIS[2]]


def test_fusion_standardises_both_scores_and_ties_keep_the_retrievers_order():
    dois = ["a", "b", "c"]
    assert ct.fuse_ranking(dois, [-10.0, -2.0, -5.0]) == ["b", "c", "a"]
    assert ct.fuse_ranking(dois, [-10.0, -2.0, -5.0], [0.9, 0.5, 0.1], weight=1.0) == ["a", "b", "c"]
    # a log-likelihood on another scale than a cosine does not swamp it: half and half, standardised
    assert ct.fuse_ranking(dois, [-300.0, -100.0, -200.0], [0.90, 0.10, 0.85], weight=0.5) == ["c", "b", "a"]
    assert ct.fuse_ranking(dois, [-1.0, -1.0, -1.0]) == dois


# --------------------------------------------------------------------------- ranking by query likelihood

WORKS = [{"doi": DOIS[0], "title": "Digital twins of ship engines", "authors": ["Smith, Jane"], "year": "2020",
          "venue": "Marine Systems", "abstract": ""},
         {"doi": DOIS[1], "title": "Port call optimisation with arrival windows", "authors": [], "year": "2019",
          "venue": "", "abstract": "We time arrivals at berth so that ships wait less " * 6},
         {"doi": DOIS[2], "title": "Anomalies in AIS tracks", "authors": ["Lee, K."], "year": "", "venue": "",
          "abstract": ""},
         {"doi": DOIS[3], "title": "Slow steaming and fuel", "authors": [], "year": "2001", "venue": "",
          "abstract": ""}]


def unpacked_query_loglik(model, tokenizer, work, request, max_reference_tokens=64) -> float:
    """log P(request | the work's reference prompt) from one forward pass over that sequence alone."""
    import torch

    ref = tokenizer(ct.reference_text(work), add_special_tokens=False)["input_ids"][:max_reference_tokens]
    head = tokenizer(ct.query_prompt(tokenizer.decode(ref, skip_special_tokens=True)),
                     add_special_tokens=False)["input_ids"]
    asked = tokenizer(" " + request, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([head + asked])).logits[0].float(), dim=-1)
    return sum(float(logp[len(head) - 1 + i, t]) for i, t in enumerate(asked))


def test_query_likelihood_scores_of_packed_candidates_equal_one_pass_per_candidate(tiny):
    model, tokenizer = tiny
    requests = ["Studies on digital twins?", "Work on port calls?"]
    scored = ct.score_queries(model, tokenizer, requests, [WORKS, WORKS[1:3]], batch_size=3,
                              max_reference_tokens=12)
    assert [len(s) for s in scored] == [4, 2]
    for request, row, works in zip(requests, scored, [WORKS, WORKS[1:3]]):
        for value, work in zip(row, works):
            assert value == pytest.approx(unpacked_query_loglik(model, tokenizer, work, request, 12), abs=1e-3)
    assert ct.score_queries(model, tokenizer, ["Anything?"], [[]]) == [[]]


def test_query_likelihood_never_reads_the_doi_so_a_long_doi_is_not_favoured_or_penalised(tiny):
    """Two works alike but for their DOIs (one of 4 tokens' worth, one of 40): the DOI likelihood of the grounded
    prompt tells them apart by length alone, the query likelihood scores them the same."""
    model, tokenizer = tiny
    short, long = "10.5555/a", "10.5555/" + "x9" * 30
    twins = [dict(WORKS[0], doi=short), dict(WORKS[0], doi=long)]
    chat = CHATS[:1]
    chat = [chat[0][:1] + [{"role": "user", "content": ct.grounded_user_message("Digital twins?", twins)}]]
    (s_short, n_short), (s_long, n_long) = ct.score_candidates(model, tokenizer, chat, [[short, long]])[0]
    assert n_long > 4 * n_short and s_long < s_short - 10  # summed log-likelihood: the long DOI is punished
    q_short, q_long = ct.score_queries(model, tokenizer, ["Digital twins?"], [twins])[0]
    assert q_short == pytest.approx(q_long, abs=1e-4)


def test_query_likelihood_ranks_first_the_work_after_whose_reference_the_model_learnt_the_request(tmp_path):
    import torch

    torch.manual_seed(0)
    model, tokenizer = ct.load_model(str(build_tiny_model(tmp_path / "tiny")))
    request, gold = "Where can I read about anomalies in AIS tracks?", WORKS[2]
    head = tokenizer(ct.query_prompt(ct.reference_text(gold)), add_special_tokens=False)["input_ids"]
    asked = tokenizer(" " + request, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([head + asked])
    labels = torch.tensor([[-100] * len(head) + asked])  # the request after the gold work's reference
    overfit(model, ids, labels)
    ranked = ct.rank_by_query_likelihood(model, tokenizer, [request], [WORKS], batch_size=3)[0]
    assert ranked[0] == gold["doi"] and sorted(ranked) == sorted(DOIS)
    # fused with a retriever that puts the gold work last: weight 1 keeps the retriever's order
    retrieval = [[4.0, 3.0, 1.0, 2.0]]
    assert ct.rank_by_query_likelihood(model, tokenizer, [request], [WORKS], retrieval, weight=1.0)[0] == \
        [DOIS[0], DOIS[1], DOIS[3], DOIS[2]]


def test_a_reference_is_printed_once_where_the_title_is_the_printed_references_first_words():
    printed = "Dixon, M. J., et al. (2018). Dark flow, depression and multiline slot machine play. J. Gambl. Stud."
    work = {"doi": "10.1/x", "title": "Dixon, M. J., et al. (2018). Dark flow, depression …", "abstract": printed,
            "authors": [], "year": "2018", "venue": ""}
    assert ct.reference_text(work) == printed
    assert ct.reference_text(WORKS[0]) == "Digital twins of ship engines. Smith (2020). Marine Systems"
    assert ct.reference_text({"doi": "10.1/y"}) == "10.1/y"
