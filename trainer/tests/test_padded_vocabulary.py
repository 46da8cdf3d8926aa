"""Checkpoints whose embedding matrix is padded beyond the tokenizer's vocabulary.

Qwen2.5 and DeepSeek-R1-Distill-Qwen ship 151,936 or 152,064 embedding and head rows for a
tokenizer of ~151,665 tokens: the rows past the vocabulary are unused padding. The added tokens
get the tokenizer's next ids, so the first few hundred of them land on those padding rows and
the rest on rows the resize appends. Every added token must start from the same place, not
from whatever the checkpoint's padding held."""

import io

import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from animind_trainer.config import parse_config
from animind_trainer.protocol import EventWriter
from animind_trainer.startup import prepare
from configs import QWEN_TOKENIZER, tiny_config
from frames import ADDED_TOKENS

PADDED_ROWS = 151_936  # Qwen2.5's embedding rows
PADDING_EMBED, PADDING_HEAD = 5.0, -5.0  # what the checkpoint's unused rows hold here


@pytest.fixture(scope="module")
def padded(tmp_path_factory):
    """prepare() on a full run of a small local checkpoint with Qwen2.5's padded matrices."""
    base_vocab = len(AutoTokenizer.from_pretrained(str(QWEN_TOKENIZER)))
    assert base_vocab < PADDED_ROWS < base_vocab + len(ADDED_TOKENS)
    config = Qwen2Config(
        vocab_size=PADDED_ROWS,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=32,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight[base_vocab:] = PADDING_EMBED
        model.get_output_embeddings().weight[base_vocab:] = PADDING_HEAD
    checkpoint = tmp_path_factory.mktemp("padded-checkpoint")
    model.save_pretrained(str(checkpoint))
    out = tmp_path_factory.mktemp("padded-run")
    # No warm start: it would overwrite the level tokens' rows, which this test follows from load to training.
    hello = tiny_config(out, base_model=str(checkpoint), tiny_model=False, dry_run=False, warm_start={"enabled": False})
    events = io.StringIO()
    prepared = prepare(parse_config(hello), ADDED_TOKENS, EventWriter(events))
    return prepared, model, base_vocab, events.getvalue()


def test_added_tokens_take_the_tokenizers_next_ids_and_the_model_grows_to_match(padded):
    prepared, _, base_vocab, _ = padded
    ids = prepared.added_token_ids
    assert ids == list(range(base_vocab, base_vocab + len(ADDED_TOKENS)))
    assert prepared.tokenizer.convert_tokens_to_ids(ADDED_TOKENS) == ids
    assert prepared.manifest.base_vocab_size == PADDED_ROWS
    assert len(prepared.tokenizer) == ids[-1] + 1
    # Rounded up to a multiple of 64, as the standard loading's resize does.
    assert prepared.manifest.vocab_size == -(-len(prepared.tokenizer) // 64) * 64 > len(prepared.tokenizer)
    # Token id i reads and predicts row i: its trainable row, in HELLO order.
    trainable = prepared.trainable
    with torch.no_grad():
        assert torch.equal(trainable.embedding(torch.tensor([ids])), trainable.embedding.new_rows.unsqueeze(0))
        hidden = torch.randn(2, 16)
        assert torch.allclose(trainable.head(hidden)[:, ids], hidden @ trainable.head.new_rows.T, atol=1e-6)


def test_every_added_token_starts_at_the_mean_of_the_original_vocabulary(padded):
    prepared, checkpoint, base_vocab, _ = padded
    on_padding = slice(0, PADDED_ROWS - base_vocab)  # slots of the ids that fell on padding rows
    assert on_padding.stop > 200
    for rows, original in (
        (prepared.trainable.embedding.new_rows, checkpoint.get_input_embeddings().weight[:base_vocab]),
        (prepared.trainable.head.new_rows, checkpoint.get_output_embeddings().weight[:base_vocab]),
    ):
        start = original.detach().mean(dim=0).expand_as(rows)
        # The resize samples its rows around that mean with a 1e-9-scaled covariance: within 1e-5.
        assert torch.allclose(rows[on_padding], start[on_padding], atol=1e-5), "ids on padding rows"
        assert torch.allclose(rows, start, atol=1e-5), "ids on appended rows"


def test_the_run_says_what_it_did_with_the_padding(padded):
    _, _, base_vocab, events = padded
    assert (
        f"has {PADDED_ROWS - base_vocab} padding rows past the tokenizer's {base_vocab} tokens: "
        "set to the vocabulary's mean row, so the added tokens that land there start like the others"
    ) in events


def test_the_original_vocabulary_rows_are_the_checkpoints(padded):
    prepared, checkpoint, base_vocab, _ = padded
    trainable = prepared.trainable
    assert torch.equal(
        trainable.embedding.base.weight[:base_vocab], checkpoint.get_input_embeddings().weight[:base_vocab]
    )
    assert torch.equal(trainable.head.base.weight[:base_vocab], checkpoint.get_output_embeddings().weight[:base_vocab])
