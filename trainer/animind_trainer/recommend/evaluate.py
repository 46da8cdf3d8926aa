"""`python -m animind_trainer.recommend.evaluate REQUEST.json`: the model and the baselines on the
same held-out users, scored by the same metric code -> eval_metrics.json and eval_report.html.

See README.md in this folder for the request, the events and the outputs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..atomic import write_json, writing
from ..errors import WorkerError
from ..protocol import EventWriter
from . import report
from .baselines import ItemKNN, MostPopular, rank_with
from .cli import load_model, main, write_text
from .data import Catalog, HeldOutUser, load_catalog, load_heldout, load_train_histories
from .decoding import decode
from .metrics import HISTORY_BUCKETS, Outcome, breakdown, bucket_order, from_list, history_bucket, summarize
from .prompt import PromptFormat
from .request import SENTIMENTS, EvaluateRequest, parse_evaluate, read_request_file, unknown_keys
from .sasrec import train_sasrec
from .trie import SemanticIdTrie

METRICS_FILE = "eval_metrics.json"
REPORT_FILE = "eval_report.html"
LABELS = {"llm": "LLM", "most_popular": "Most popular", "item_knn": "Item-kNN", "sasrec": "SASRec"}


class Progress:
    """`progress` events of one stage: cumulative `done` of `total` users, and users per second."""

    def __init__(self, events: EventWriter, stage: str, total: int):
        self.events, self.stage, self.total = events, stage, total
        self.started = time.perf_counter()
        self.seconds = 0.0

    def __call__(self, done: int) -> None:
        self.seconds = time.perf_counter() - self.started
        rate = done / self.seconds if self.seconds > 0 else None
        self.events.emit("progress", stage=self.stage, done=done, total=self.total, users_per_s=rate)

    def timing(self, users: int) -> dict:
        return {"seconds": self.seconds, "users_per_s": users / self.seconds if self.seconds > 0 else None}


def _chunks(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def evaluate_llm(req: EvaluateRequest, catalog: Catalog, users: list[HeldOutUser], groups, events) -> dict:
    loaded = load_model(req.model_dir, req.model_name, req.device, req.precision, events)
    fmt = PromptFormat.of(loaded.tokenizer)
    trie = SemanticIdTrie.of(catalog, loaded.tokenizer, device=loaded.runtime.device)
    outcomes: list[Outcome] = []
    invalid = 0
    progress = Progress(events, "model", len(users))
    for batch in _chunks(users, req.batch_size):
        exclusions = trie.exclusions([u.history if req.exclude_history else [] for u in batch])
        decoded = decode(
            loaded.model,
            fmt.input_ids([u.prompt for u in batch]),
            trie,
            exclusions,
            beam_size=req.beams,
            top_k=req.top_k,
            pad_id=loaded.pad_id,
            greedy=True,
        )
        for user, ranking, greedy in zip(batch, decoded.rankings, decoded.greedy, strict=True):
            outcomes.append(from_list([anime for anime, _ in ranking], user.target, groups))
            invalid += not trie.is_valid(greedy)
        progress(len(outcomes))
    label = f"LLM ({req.model_name})"
    return _model_entry(label, outcomes, users, req, progress.timing(len(users))) | {
        "invalid_id_rate": invalid / len(users),
        "device": str(loaded.runtime.device),
        "dtype": loaded.runtime.precision,
    }


def _model_entry(label: str, outcomes: list[Outcome], users: list[HeldOutUser], req: EvaluateRequest, timing) -> dict:
    ks, top_k = req.k_values, req.top_k
    lengths = [history_bucket(u.history_length) for u in users]
    return {
        "label": label,
        **summarize(outcomes, ks, top_k),
        "breakdowns": {
            "history_length": breakdown(outcomes, lengths, ks, top_k, order=bucket_order()),
            "sentiment": breakdown(outcomes, [u.sentiment for u in users], ks, top_k, order=list(SENTIMENTS)),
        },
        "timing": timing,
    }


def _baseline(name: str, scores: Callable, users, groups, req, events, extra_timing=None) -> dict:
    progress = Progress(events, f"baseline:{name}", len(users))
    outcomes = rank_with(scores, users, groups, exclude_history=req.exclude_history, progress=progress)
    return _model_entry(LABELS[name], outcomes, users, req, progress.timing(len(users)) | (extra_timing or {}))


def _baseline_device(req: EvaluateRequest) -> torch.device:
    if req.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if req.device.startswith("cuda") and not torch.cuda.is_available():
        raise WorkerError(f"device {req.device} requested but CUDA is not available")
    return torch.device(req.device)


def _read_summary(path: Path | None, events: EventWriter) -> dict | None:
    if path is None:
        return None
    if not path.is_file():
        events.log("warning", f"{path} does not exist: the report has no training curves")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkerError(f"cannot read the train summary {path}: {exc}") from None
    if not isinstance(value, dict):
        raise WorkerError(f"{path}: the train summary must be a JSON object")
    return value


def _headline(name: str, entry: dict, ks) -> str:
    k = 10 if 10 in ks else ks[-1]
    recall, ndcg = entry["recall"][str(k)], entry["ndcg"][str(k)]
    text = f"{name}: Recall@{k} {recall:.4f}, NDCG@{k} {ndcg:.4f}, MRR {entry['mrr']:.4f}"
    if entry.get("invalid_id_rate") is not None:
        text += f", invalid IDs (greedy) {100 * entry['invalid_id_rate']:.1f}%"
    rate = entry["timing"].get("users_per_s")
    return text + (f" ({rate:.1f} users/s)" if rate else "")


def run(request_path: Path, events: EventWriter) -> None:
    value = read_request_file(request_path)
    req = parse_evaluate(request_path, value)
    for key in unknown_keys(value, EvaluateRequest):
        events.log("warning", f"{request_path}: unknown key `{key}` ignored")
    with writing(req.out_dir):  # fail now, not after hours of decoding
        req.out_dir.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(req.semantic_ids_path)
    if catalog.duplicate_ids():
        events.log(
            "warning",
            f"{catalog.duplicate_ids()} anime share a semantic ID with another: those tie in the model's ranking",
        )
    users = load_heldout(req.heldout_path, catalog, req.max_users)
    train = load_train_histories(req.train_histories_path, catalog)
    if train.unknown:
        events.log(
            "warning", f"{req.train_histories_path}: {train.unknown} watches of anime missing from the catalog left out"
        )
    if not any(train.sequences):
        events.log(
            "warning", f"{req.train_histories_path}: no training histories: the baselines have nothing to learn from"
        )
    summary = _read_summary(req.train_summary_path, events)
    excluded = "excluding each user's history" if req.exclude_history else "history items included"
    events.log("info", f"evaluating {len(users)} held-out users over {len(catalog)} anime ({excluded})")
    groups = catalog.prefix_groups()

    models: dict[str, dict] = {}
    if req.model_dir is not None:
        models["llm"] = evaluate_llm(req, catalog, users, groups, events)
        events.log("info", _headline("llm", models["llm"], req.k_values))
    device = _baseline_device(req)
    for name, scorer in (("most_popular", MostPopular), ("item_knn", ItemKNN)):
        scores = scorer(train.sequences, len(catalog), device).scores
        models[name] = _baseline(name, scores, users, groups, req, events)
        events.log("info", _headline(name, models[name], req.k_values))
    if req.sasrec.enabled:
        started = time.perf_counter()

        def epoch_done(epoch: int, epochs: int, loss: float) -> None:
            events.emit("progress", stage="train:sasrec", done=epoch, total=epochs, unit="epochs", loss=loss)

        scorer = train_sasrec(
            train.sequences, len(catalog), req.sasrec, seed=req.seed, device=device, progress=epoch_done
        )
        trained = {"train_seconds": time.perf_counter() - started}
        models["sasrec"] = _baseline("sasrec", scorer.scores, users, groups, req, events, trained)
        events.log("info", _headline("sasrec", models["sasrec"], req.k_values))

    metrics = {
        "users": len(users),
        "k_values": list(req.k_values),
        "top_k": req.top_k,
        "beam_size": req.beams if req.model_dir is not None else None,
        "exclude_history": req.exclude_history,
        "seed": req.seed,
        "model_dir": str(req.model_dir) if req.model_dir is not None else None,
        "model_name": req.model_name if req.model_dir is not None else None,
        "catalog_size": len(catalog),
        "train_users": len(train.sequences),
        "history_buckets": [history_bucket(low) for low, _ in HISTORY_BUCKETS],
        "sasrec": dataclasses.asdict(req.sasrec),
        "models": models,
    }
    metrics_path, report_path = req.out_dir / METRICS_FILE, req.out_dir / REPORT_FILE
    write_json(metrics_path, metrics)
    write_text(report_path, report.render(metrics, summary))
    events.emit("done", metrics=str(metrics_path), report=str(report_path))


if __name__ == "__main__":
    main(run, "animind_trainer.recommend.evaluate")
