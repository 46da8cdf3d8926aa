"""A tiny synthetic anime dataset: titles <-> semantic ids, in both directions."""

from __future__ import annotations

import random
from collections.abc import Callable

from frames import example_row


def anime_examples(encode: Callable[[str], list[int]], n_anime: int = 16, seed: int = 0):
    """Each anime gives a title->SID example (new tokens as targets) and a
    SID->title one (new tokens as inputs), so both kinds of new rows get gradients."""
    rng = random.Random(seed)
    examples = []
    for i in range(n_anime):
        sid = "".join(f"<L{level}_{rng.randrange(2048)}>" for level in range(1, 9))
        title = f"Show {i}"
        examples.append(
            example_row(
                encode(f"The anime titled '{title}' has semantic id"), encode(f" <anime_start>{sid}<anime_end>")
            )
        )
        examples.append(
            example_row(encode(f"The anime <anime_start>{sid}<anime_end> has the title"), encode(f" {title}"))
        )
    return examples
