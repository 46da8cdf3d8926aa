"""`python -m animind_trainer.recommend.evaluate REQUEST.json` end to end on the tiny run: JSON-line
events on stdout, eval_metrics.json with every model, a self-contained eval_report.html; a mistake
is one error line naming the file and line, or the request key."""

import io
import json
from pathlib import Path

import pytest

from animind_trainer.protocol import EventWriter
from animind_trainer.recommend import evaluate
from animind_trainer.recommend.cli import run_entry
from recommend_world import eval_files, run_module, world

MODELS = ["llm", "most_popular", "item_knn", "sasrec"]


def request(tmp_path, **overrides) -> dict:
    return {
        "model_dir": str(world().run_dir),
        "model_name": "final_model",
        **eval_files(tmp_path / "inputs"),
        "out_dir": str(tmp_path / "out"),
        "k_values": [1, 5, 10],
        "top_k": 10,
        "batch_size": 4,
        "device": "cpu",
        "precision": "auto",
        "seed": 5,
        "sasrec": {"epochs": 2, "hidden": 16},
        **overrides,
    }


def run_in_process(tmp_path, value: dict):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    stream = io.StringIO()
    code = run_entry(evaluate.run, path, EventWriter(stream))
    return code, [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("evaluate")
    done, events = run_module("animind_trainer.recommend.evaluate", tmp_path, request(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path / "out", events


def test_the_run_reports_progress_and_ends_with_done_naming_both_files(evaluated):
    out, events = evaluated
    stages = {e["stage"] for e in events if e["event"] == "progress"}
    assert stages == {"model", "baseline:most_popular", "baseline:item_knn", "train:sasrec", "baseline:sasrec"}
    model = [e for e in events if e["event"] == "progress" and e["stage"] == "model"]
    assert [e["done"] for e in model] == [4, 8, 12] and all(e["total"] == 12 and e["users_per_s"] > 0 for e in model)
    assert events[-1] == {
        "event": "done",
        "metrics": str(out / "eval_metrics.json"),
        "report": str(out / "eval_report.html"),
    }
    assert sorted(p.name for p in out.iterdir()) == ["eval_metrics.json", "eval_report.html"]  # no temp files left


def test_the_metrics_hold_every_model_scored_the_same_way(evaluated):
    out, _ = evaluated
    metrics = json.loads((out / "eval_metrics.json").read_text(encoding="utf-8"))
    assert (metrics["users"], metrics["k_values"], metrics["top_k"], metrics["exclude_history"]) == (
        12,
        [1, 5, 10],
        10,
        True,
    )
    assert list(metrics["models"]) == MODELS
    for name, model in metrics["models"].items():
        assert model["users"] == 12, name
        assert list(model["recall"]) == list(model["ndcg"]) == ["1", "5", "10"]
        assert model["recall"]["1"] <= model["recall"]["5"] <= model["recall"]["10"] <= 1
        assert 0 <= model["mrr"] <= 1
        assert list(model["level_accuracy"]) == [f"L{level}" for level in range(1, 9)]
        assert sum(g["users"] for g in model["breakdowns"]["history_length"].values()) == 12
        assert set(model["breakdowns"]["sentiment"]) <= {"<liked>", "<watch>"}
        assert model["timing"]["users_per_s"] > 0
    assert 0 <= metrics["models"]["llm"]["invalid_id_rate"] <= 1
    assert metrics["models"]["sasrec"]["timing"]["train_seconds"] > 0
    assert metrics["sasrec"]["hidden"] == 16 and metrics["sasrec"]["blocks"] == 2  # the request, then the defaults


def test_the_report_is_one_self_contained_page_with_the_table_and_plots(evaluated):
    out, _ = evaluated
    page = (out / "eval_report.html").read_text(encoding="utf-8")
    # Recall/NDCG curves, per-level bars, invalid-ID rate, training curves.
    assert page.count('src="data:image/png;base64,') == 4
    assert "<table>" in page and "Recall@10" in page and "LLM (final_model)" in page and "SASRec" in page
    assert "history is <b>excluded</b>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_without_a_model_only_the_baselines_are_scored(tmp_path):
    code, events = run_in_process(
        tmp_path, request(tmp_path, model_dir=None, train_summary_path=None, sasrec={"enabled": False})
    )
    assert code == 0, events
    metrics = json.loads((tmp_path / "out" / "eval_metrics.json").read_text(encoding="utf-8"))
    assert list(metrics["models"]) == ["most_popular", "item_knn"]
    page = (tmp_path / "out" / "eval_report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png") == 2 and "Invalid-ID rate" not in page


def test_a_held_out_line_naming_an_unknown_anime_is_one_error_line_and_exit_1(tmp_path):
    value = request(tmp_path, model_dir=None)
    heldout = Path(value["heldout_path"])
    lines = heldout.read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps(json.loads(lines[1]) | {"target_anime_id": 999})
    heldout.write_text("\n".join(lines), encoding="utf-8")
    done, events = run_module("animind_trainer.recommend.evaluate", tmp_path, value)
    assert done.returncode == 1
    assert events[-1] == {
        "event": "error",
        "message": f"{value['heldout_path']}:2: anime 999 is not in {value['semantic_ids_path']}",
    }
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k_values": [1, 50]}, "`k_values` may not exceed top_k (10)"),
        ({"beam_size": 4}, "`beam_size` must be at least top_k (10), got 4"),
        ({"heldout_path": None}, "`heldout_path` is required"),
        ({"device": "gpu"}, "`device` must be auto, cpu, cuda or cuda:N"),
        ({"sasrec": {"heads": 3}}, "`sasrec.heads` must divide sasrec.hidden (64)"),
        ({"model_name": "nope"}, "nope/animind_model.json does not exist"),
    ],
)
def test_a_wrong_request_key_is_one_error_naming_it(tmp_path, change, message):
    code, events = run_in_process(tmp_path, request(tmp_path, **change))
    assert code == 1
    assert events[-1]["event"] == "error" and message in events[-1]["message"]


def test_an_out_dir_that_cannot_be_made_is_named_before_any_work(tmp_path):
    (tmp_path / "file").write_text("")
    code, events = run_in_process(tmp_path, request(tmp_path, out_dir=str(tmp_path / "file" / "out")))
    assert code == 1
    assert events[-1] == {
        "event": "error",
        "message": f"cannot write {tmp_path / 'file' / 'out'}: not a directory (ENOTDIR)",
    }


def test_a_bug_is_its_traceback_on_stderr_and_one_error_line(tmp_path, capsys):
    def broken(request, events):
        raise KeyError("boom")

    stream = io.StringIO()
    assert run_entry(broken, tmp_path / "request.json", EventWriter(stream)) == 1
    assert json.loads(stream.getvalue()) == {"event": "error", "message": "internal error: KeyError: 'boom'"}
    assert "Traceback" in capsys.readouterr().err
