"""A tiny causal LM and a locally trained tokenizer, built in seconds on the CPU, for the demo and the tests.

No hub access: a byte-level BPE tokenizer (so DOIs round-trip exactly) is trained
with `tokenizers` on text that looks like the pipeline's data, given a ChatML
chat template, and paired with a 2-layer Llama-architecture model initialised
from a config. ``build_tiny_model(folder)`` saves both as a normal Hugging Face
model folder that `from_pretrained` loads like any hub model.
"""
from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "Could you point me to studies on digital twins of ship propulsion systems?",
    "I'm looking for research on port call optimisation and shared arrival times.",
    "Which papers discuss GNSS spoofing detection on merchant vessels?",
    "You are a research assistant for maritime digitalisation. Answer a request for literature with the DOIs "
    "of the papers that address it, one per line, and nothing else.",
    "10.5555/mdig.2020.0102\n10.5555/mdig.2019.0105\n10.48550/arxiv.2213.04417",
] + [f"10.5555/mdig.{2000 + i}.{i:04d}" for i in range(120)]


def build_tiny_model(folder: Path, layers: int = 2, hidden: int = 64, seed: int = 0, positions: int = 512) -> Path:
    """Train the tokenizer, initialise the model, save both to ``folder``; returns ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<pad>", unk_token=None)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=positions, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(folder)
    return folder
