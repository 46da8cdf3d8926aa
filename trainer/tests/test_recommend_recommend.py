"""`python -m animind_trainer.recommend.recommend REQUEST.json`: the top_k anime for one history as
one `recommendations` event; an unknown anime id is one error line."""

import io
import json

from animind_trainer.protocol import EventWriter
from animind_trainer.recommend import recommend
from animind_trainer.recommend.cli import run_entry
from animind_trainer.recommend.data import load_catalog
from recommend_world import N_ANIME, run_module, world

HISTORY = [100, 105, 117]  # anime ids of the world's catalog (100 + position)


def request(**overrides) -> dict:
    w = world()
    return {
        "model_dir": str(w.run_dir),
        "model_name": "final_model",
        "semantic_ids_path": str(w.catalog_path),
        "history": HISTORY,
        "top_k": 5,
        "exclude_history": True,
        "device": "cpu",
        "precision": "auto",
        **overrides,
    }


def run_in_process(tmp_path, value):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    stream = io.StringIO()
    code = run_entry(recommend.run, path, EventWriter(stream))
    return code, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_history_gets_top_k_valid_anime_best_first(tmp_path):
    code, events = run_in_process(tmp_path, request())
    assert code == 0, events
    [event] = [e for e in events if e["event"] == "recommendations"]
    items = event["items"]
    catalog = load_catalog(world().catalog_path)
    assert [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    for item in items:
        position = catalog.index[item["anime_id"]]
        assert item["semantic_id"] == catalog.semantic_ids[position]
        assert item["title"] == f"Show {position}"
        assert item["anime_id"] not in HISTORY
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True) and scores[0] < 0  # log-probabilities


def test_with_the_history_included_it_may_be_recommended_again(tmp_path):
    code, events = run_in_process(tmp_path, request(top_k=N_ANIME, exclude_history=False))
    assert code == 0
    ids = [i["anime_id"] for i in events[-1]["items"]]
    assert len(ids) == N_ANIME and set(HISTORY) <= set(ids)


def test_an_unknown_anime_id_is_one_error_line(tmp_path):
    done, events = run_module("animind_trainer.recommend.recommend", tmp_path, request(history=[100, 999]))
    assert done.returncode == 1
    assert events == [
        {
            "event": "error",
            "message": f"{tmp_path / 'request.json'}: `history`: anime 999 is not in {world().catalog_path}",
        }
    ]
    assert "Traceback" not in done.stderr


def test_sentiments_must_match_the_history(tmp_path):
    code, events = run_in_process(tmp_path, request(sentiments=["<liked>"]))
    assert code == 1
    assert "`sentiments` must be a list as long as `history` (3)" in events[-1]["message"]
