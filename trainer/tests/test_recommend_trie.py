"""The trie of valid semantic IDs: what it offers after each prefix, and what excluding a user's
history takes away. Token ids here are plain numbers; the run's tokenizer maps the real ones."""

import pytest
import torch

from animind_trainer.errors import WorkerError
from animind_trainer.recommend.data import load_catalog
from animind_trainer.recommend.trie import SemanticIdTrie, catalog_token_ids
from recommend_world import loaded, write_catalog

# Catalog positions 0..4, in no particular order: 0 and 3 share 7 tokens, 0, 3 and 1 share the first two.
IDS = torch.tensor(
    [
        [10, 20, 30, 40, 50, 60, 70, 80],
        [10, 20, 31, 40, 50, 60, 70, 80],
        [11, 20, 30, 40, 50, 60, 70, 80],
        [10, 20, 30, 40, 50, 60, 70, 81],
        [12, 21, 30, 40, 50, 60, 70, 80],
    ]
)


def choices(trie, depth, node, exclusions, user=0):
    """{token: child node} offered after one node."""
    _, child, token = trie.children(depth, torch.tensor([node]), torch.tensor([user]), exclusions)
    return dict(zip(token.tolist(), child.tolist(), strict=True))


def walk(trie, tokens, exclusions, user=0):
    """The node reached by following `tokens`, or None when a step is not offered."""
    node = 0
    for depth, token in enumerate(tokens):
        offered = choices(trie, depth, node, exclusions, user)
        if token not in offered:
            return None
        node = offered[token]
    return node


def test_the_first_step_offers_each_first_token_once():
    trie = SemanticIdTrie(IDS)
    nothing = trie.exclusions([[]])
    assert sorted(choices(trie, 0, 0, nothing)) == [10, 11, 12]


def test_after_a_prefix_only_its_continuations_are_offered():
    trie = SemanticIdTrie(IDS)
    nothing = trie.exclusions([[]])
    node = walk(trie, [10, 20], nothing)
    assert sorted(choices(trie, 2, node, nothing)) == [30, 31]
    node = walk(trie, [10, 20, 30, 40, 50, 60, 70], nothing)
    assert sorted(choices(trie, 7, node, nothing)) == [80, 81]
    # 11 is followed by 20 only: 21 exists at level 2, but not after 11.
    assert walk(trie, [11, 21], nothing) is None


def test_every_full_path_is_one_anime_of_the_catalog():
    trie = SemanticIdTrie(IDS)
    nothing = trie.exclusions([[]])
    for anime, ids in enumerate(IDS.tolist()):
        leaf = walk(trie, ids, nothing)
        assert trie.anime_of_leaf(leaf, nothing, 0) == [anime]
        assert trie.path(leaf) == ids
        assert trie.is_valid(ids)
    assert not trie.is_valid([10, 20, 31, 40, 50, 60, 70, 81])


def test_excluding_anime_removes_their_paths_and_prunes_emptied_prefixes():
    trie = SemanticIdTrie(IDS)
    # User 0 watched anime 0 and 3 (the two under 10-20-30); user 1 watched nothing.
    exclusions = trie.exclusions([[0, 3], []])
    assert walk(trie, IDS[0].tolist(), exclusions, user=0) is None
    assert walk(trie, IDS[3].tolist(), exclusions, user=0) is None
    node = walk(trie, [10, 20], exclusions, user=0)
    assert sorted(choices(trie, 2, node, exclusions, user=0)) == [31]  # 30 leads nowhere any more
    assert sorted(choices(trie, 2, node, exclusions, user=1)) == [30, 31]
    # Excluding one of two anime under a prefix keeps the prefix.
    one = trie.exclusions([[0]])
    assert sorted(choices(trie, 2, walk(trie, [10, 20], one), one)) == [30, 31]


def test_anime_sharing_one_id_share_its_leaf():
    ids = torch.cat([IDS, IDS[2:3]])  # anime 5 has anime 2's ID
    trie = SemanticIdTrie(ids)
    nothing = trie.exclusions([[]])
    leaf = walk(trie, IDS[2].tolist(), nothing)
    assert trie.anime_of_leaf(leaf, nothing, 0) == [2, 5]
    one = trie.exclusions([[5]])
    assert walk(trie, IDS[2].tolist(), one) == leaf
    assert trie.anime_of_leaf(leaf, one, 0) == [2]


def test_catalog_tokens_map_to_the_runs_token_ids(tmp_path):
    _, tokenizer = loaded()
    catalog = load_catalog(write_catalog(tmp_path / "ids.jsonl", [[5, 6, 7, 8, 9, 10, 11, 2047]]))
    expected = tokenizer.convert_tokens_to_ids(
        [f"<L{level}_{code}>" for level, code in enumerate([5, 6, 7, 8, 9, 10, 11, 2047], 1)]
    )
    assert catalog_token_ids(catalog, tokenizer).tolist() == [expected]


def test_a_level_token_the_tokenizer_lacks_is_one_error_naming_the_file(tmp_path):
    _, tokenizer = loaded()
    catalog = load_catalog(write_catalog(tmp_path / "ids.jsonl", [[1, 2, 3, 4, 5, 6, 7, 4096]]))
    with pytest.raises(WorkerError, match=r"ids\.jsonl: anime 100's token <L8_4096> is not a single token"):
        catalog_token_ids(catalog, tokenizer)
