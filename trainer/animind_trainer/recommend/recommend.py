"""`python -m animind_trainer.recommend.recommend REQUEST.json`: the top_k anime a trained model gives
one watch history, by beam search constrained to valid semantic IDs.

The history becomes the Task B prompt the model was trained on, each watch tagged with its
`sentiments` entry (default <liked>: a list handed to a recommender reads as anime the user liked)
and the next one masked. Prints one event: {"event": "recommendations", "items": [{"rank",
"anime_id", "title", "semantic_id", "score"}]}, score being the ID's log-probability under the model.
"""

from __future__ import annotations

from pathlib import Path

from ..protocol import EventWriter
from .cli import load_model, main
from .data import load_catalog
from .decoding import decode
from .prompt import PromptFormat, task_b_prompt
from .request import RecommendRequest, parse_recommend, read_request_file, unknown_keys
from .trie import SemanticIdTrie


def run(request_path: Path, events: EventWriter) -> None:
    value = read_request_file(request_path)
    req = parse_recommend(request_path, value)
    for key in unknown_keys(value, RecommendRequest):
        events.log("warning", f"{request_path}: unknown key `{key}` ignored")
    catalog = load_catalog(req.semantic_ids_path)
    history = [catalog.position(anime, f"{request_path}: `history`") for anime in req.history]
    sentiments = list(req.sentiments or ["<liked>"] * len(history))
    prompt = task_b_prompt([catalog.semantic_ids[i] for i in history], sentiments)
    loaded = load_model(req.model_dir, req.model_name, req.device, req.precision, events)
    trie = SemanticIdTrie.of(catalog, loaded.tokenizer, device=loaded.runtime.device)
    decoded = decode(
        loaded.model,
        PromptFormat.of(loaded.tokenizer).input_ids([prompt]),
        trie,
        trie.exclusions([history if req.exclude_history else []]),
        beam_size=req.beams,
        top_k=req.top_k,
        pad_id=loaded.pad_id,
    )
    items = [
        {
            "rank": rank,
            "anime_id": catalog.anime_ids[anime],
            "title": catalog.titles[anime],
            "semantic_id": catalog.semantic_ids[anime],
            "score": score,
        }
        for rank, (anime, score) in enumerate(decoded.rankings[0], 1)
    ]
    events.emit("recommendations", items=items)


if __name__ == "__main__":
    main(run, "animind_trainer.recommend.recommend")
