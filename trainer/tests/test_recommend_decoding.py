"""Constrained beam search and greedy decoding on the tiny model: every answer is a valid semantic
ID, scores are the model's own log-probabilities, and batching or ties change nothing."""

import pytest
import torch

from animind_trainer.recommend.data import load_catalog
from animind_trainer.recommend.decoding import decode
from animind_trainer.recommend.prompt import PromptFormat, task_b_prompt
from animind_trainer.recommend.trie import SemanticIdTrie
from recommend_world import N_ANIME, Steered, loaded, world


@pytest.fixture(scope="module")
def setup():
    model, tokenizer = loaded()
    catalog = load_catalog(world().catalog_path)
    trie = SemanticIdTrie.of(catalog, tokenizer)
    fmt = PromptFormat.of(tokenizer)
    return model, tokenizer, catalog, trie, fmt


def prompt_ids(setup, history: list[int]) -> list[int]:
    _, _, catalog, _, fmt = setup
    sids = [catalog.semantic_ids[i] for i in history]
    return fmt.input_ids([task_b_prompt(sids, ["<liked>"] * len(history))])[0]


def run(setup, prompts, histories, *, beam_size=N_ANIME, top_k=N_ANIME, model=None, greedy=False):
    base, tokenizer, _, trie, _ = setup
    exclusions = trie.exclusions(histories)
    return decode(
        model or base,
        prompts,
        trie,
        exclusions,
        beam_size=beam_size,
        top_k=top_k,
        pad_id=tokenizer.pad_token_id,
        greedy=greedy,
    )


@torch.no_grad()
def teacher_forced(model, prompt: list[int], ids: torch.Tensor) -> torch.Tensor:
    """log P(ID | prompt) of every row of `ids` (anime, 8), from one plain forward pass each."""
    inputs = torch.cat([torch.tensor(prompt).expand(len(ids), -1), ids], dim=1)
    logprobs = torch.log_softmax(model(input_ids=inputs).logits.float(), -1)
    start = len(prompt) - 1  # the logits at position t predict token t + 1
    steps = logprobs[:, start : start + 8].gather(2, ids[:, :, None]).squeeze(2)
    return steps.sum(1)


def test_with_a_beam_per_anime_the_search_is_exact_and_scores_are_log_probabilities(setup):
    model, _, _, trie, _ = setup
    prompt = prompt_ids(setup, [3, 7, 11])
    [ranking] = run(setup, [prompt], [[]]).rankings
    exact = teacher_forced(model, prompt, trie.rows[trie.row_of_anime])  # catalog order
    expected = sorted(range(N_ANIME), key=lambda a: -exact[a].item())
    assert [anime for anime, _ in ranking] == expected
    assert [score for _, score in ranking] == pytest.approx([exact[a].item() for a in expected], abs=1e-4)


def test_the_history_is_never_offered_and_the_rest_keep_their_order(setup):
    history = [3, 7, 11]
    prompt = prompt_ids(setup, history)
    [everything] = run(setup, [prompt], [[]]).rankings
    [without] = run(setup, [prompt], [history]).rankings
    assert [a for a, _ in without] == [a for a, _ in everything if a not in history]


def test_excluded_anime_take_no_beam_even_when_the_model_wants_them_most(setup):
    model, tokenizer, catalog, _, _ = setup
    history = [9]
    prompt = prompt_ids(setup, history)
    ids = tokenizer.convert_tokens_to_ids(list(catalog.tokens[9]))
    steered = Steered(model, dict(zip([prompt[-1], *ids[:-1]], ids, strict=True)))
    [ranking] = run(setup, [prompt], [history], model=steered, beam_size=5, top_k=5).rankings
    # Pruned from the trie, anime 9's path never holds one of the 5 beams: the list stays full.
    assert len(ranking) == 5 and 9 not in [a for a, _ in ranking]


def test_top_k_cuts_the_list_and_a_narrow_beam_still_returns_valid_distinct_anime(setup):
    [ranking] = run(setup, [prompt_ids(setup, [1, 2])], [[1, 2]], beam_size=5, top_k=5).rankings
    anime = [a for a, _ in ranking]
    assert len(anime) == 5 == len(set(anime))
    assert all(0 <= a < N_ANIME and a not in (1, 2) for a in anime)
    scores = [s for _, s in ranking]
    assert scores == sorted(scores, reverse=True)


def test_a_model_steered_to_an_invalid_id_cannot_emit_it(setup):
    model, tokenizer, catalog, trie, _ = setup
    prompt = prompt_ids(setup, [4])
    target = catalog.tokens[0]
    # The first four levels of anime 0, then a level-5 code no anime has after them.
    invalid = [*target[:4], "<L5_1000>", "<L6_1000>", "<L7_1000>", "<L8_1000>"]
    ids = tokenizer.convert_tokens_to_ids(invalid)
    steered = Steered(model, dict(zip([prompt[-1], *ids[:-1]], ids, strict=True)))
    decoded = run(setup, [prompt], [[]], model=steered, greedy=True)
    assert decoded.greedy == [ids]  # unconstrained, the model writes the invalid ID
    assert not trie.is_valid(decoded.greedy[0])
    top, _ = decoded.rankings[0][0]
    # Constrained, it follows the steered prefix as far as valid IDs go, then takes a real continuation.
    assert list(catalog.tokens[top][:4]) == invalid[:4]
    assert all(trie.is_valid(trie.rows[trie.row_of_anime[a]].tolist()) for a, _ in decoded.rankings[0])


def test_the_constraint_keeps_a_greedy_answer_that_is_already_valid(setup):
    model, tokenizer, catalog, trie, _ = setup
    prompt = prompt_ids(setup, [4])
    ids = tokenizer.convert_tokens_to_ids(list(catalog.tokens[9]))
    steered = Steered(model, dict(zip([prompt[-1], *ids[:-1]], ids, strict=True)), strength=30.0)
    decoded = run(setup, [prompt], [[]], model=steered, greedy=True)
    assert decoded.greedy == [ids] and trie.is_valid(ids)
    top, score = decoded.rankings[0][0]
    assert top == 9
    exact = teacher_forced(steered, prompt, torch.tensor([ids]))
    assert score == pytest.approx(exact.item(), abs=1e-4)


class Flat(torch.nn.Module):
    """Every token equally likely: all IDs tie."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits.zero_()
        return out


def test_ties_are_broken_by_token_path_lowest_first(setup):
    model, _, _, trie, _ = setup
    [ranking] = run(setup, [prompt_ids(setup, [0])], [[]], model=Flat(model)).rankings
    by_path = sorted(range(N_ANIME), key=lambda a: trie.rows[trie.row_of_anime[a]].tolist())
    assert [a for a, _ in ranking] == by_path
    assert len({s for _, s in ranking}) == 1


def test_batching_and_left_padding_change_neither_rankings_nor_greedy_tokens(setup):
    histories = [[1], [2, 5, 8, 13, 21], [6, 6, 9]]
    prompts = [prompt_ids(setup, h) for h in histories]
    assert len({len(p) for p in prompts}) == 3
    together = run(setup, prompts, histories, beam_size=8, top_k=8, greedy=True)
    for i, (prompt, history) in enumerate(zip(prompts, histories, strict=True)):
        alone = run(setup, [prompt], [history], beam_size=8, top_k=8, greedy=True)
        assert [a for a, _ in together.rankings[i]] == [a for a, _ in alone.rankings[0]]
        assert [s for _, s in together.rankings[i]] == pytest.approx([s for _, s in alone.rankings[0]], abs=1e-4)
        assert together.greedy[i] == alone.greedy[0]


def test_a_user_whose_history_is_the_whole_catalog_gets_an_empty_list(setup):
    decoded = run(setup, [prompt_ids(setup, [0])], [list(range(N_ANIME))], greedy=True)
    assert decoded.rankings == [[]]
    assert len(decoded.greedy[0]) == 8
