"""A tiny world for the recommend tests: a run folder (the extended Qwen tokenizer, a tiny random
model saved as the trainer saves it), a catalog of semantic IDs that share prefixes, held-out users
and training histories. Built once per test process: the tokenizer alone takes seconds."""

from __future__ import annotations

import atexit
import json
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from peft import TrainableTokensConfig, get_peft_model

from animind_trainer.atomic import write_json
from animind_trainer.model_loading import TINY_MODEL_NAME, build_tiny_model
from animind_trainer.outputs import MANIFEST, ModelManifest, load_trained
from animind_trainer.recommend.prompt import task_b_prompt
from animind_trainer.tokens import extend_tokenizer, load_tokenizer, resize_embeddings
from configs import QWEN_TOKENIZER
from frames import ADDED_TOKENS
from worker_process import REPO_ROOT, worker_env

N_ANIME = 24


def semantic_ids(n: int = N_ANIME, seed: int = 0) -> list[list[int]]:
    """Distinct 8-code IDs from few codes per level, so many share their first levels."""
    rng = random.Random(seed)
    found: dict[tuple, None] = {}
    while len(found) < n:
        found[tuple([rng.randrange(3), rng.randrange(3)] + [rng.randrange(4) for _ in range(6)])] = None
    return [list(codes) for codes in found]


def sid_tokens(codes: list[int]) -> list[str]:
    return [f"<L{level}_{code}>" for level, code in enumerate(codes, 1)]


def write_catalog(path: Path, codes: list[list[int]], first_id: int = 100) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i, row in enumerate(codes):
            tokens = sid_tokens(row)
            entry = {
                "anime_id": first_id + i,
                "name": f"Show {i}",
                "english_name": f"Show {i} (en)",
                "semantic_id": "".join(tokens),
                "tokens": tokens,
                "codes": row,
            }
            out.write(json.dumps(entry) + "\n")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@dataclass(frozen=True)
class World:
    root: Path
    run_dir: Path  # tokenizer/ and final_model/
    catalog_path: Path
    codes: list[list[int]]

    def load(self):
        """(model, tokenizer) as evaluate loads them."""
        return load_trained(self.run_dir, "final_model")


def _save_run(run_dir: Path) -> None:
    tokenizer = load_tokenizer(str(QWEN_TOKENIZER), None)
    base_tokens = len(tokenizer)
    model = build_tiny_model(base_tokens)
    ids = extend_tokenizer(tokenizer, ADDED_TOKENS)
    torch.manual_seed(0)
    vocab_size = resize_embeddings(model, tokenizer)
    # Mean-resized rows would give every level token nearly the same logit; these spread them out.
    with torch.no_grad():
        for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            matrix[base_tokens:] = torch.randn(vocab_size - base_tokens, matrix.shape[1]) * 0.5
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))
    manifest = ModelManifest(TINY_MODEL_NAME, True, base_tokens, base_tokens, vocab_size, lora=False, tied=False)
    # The trainer's layout with the rows only (as with lora.enabled = false): every added row restored.
    config = TrainableTokensConfig(
        target_modules=["model.embed_tokens", "lm_head"], token_indices=manifest.restored_ids(ids)
    )
    adapter = get_peft_model(model, config)
    adapter.save_pretrained(str(run_dir / "final_model"))
    write_json(run_dir / "final_model" / MANIFEST, manifest.to_json())


@cache
def world() -> World:
    root = Path(tempfile.mkdtemp(prefix="recommend-world-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    run_dir = root / "run"
    _save_run(run_dir)
    codes = semantic_ids()
    return World(root, run_dir, write_catalog(root / "semantic_ids.jsonl", codes), codes)


@cache
def loaded():
    return world().load()


class Steered(torch.nn.Module):
    """A model whose next token is forced: after token `a` it puts +`strength` on the logit of
    `follow[a]`. The inner model still runs (its cache and positions are what decoding handles)."""

    def __init__(self, inner, follow: dict[int, int], strength: float = 100.0):
        super().__init__()
        self.inner = inner
        self.follow = follow
        self.strength = strength

    def forward(self, input_ids, **kwargs):
        out = self.inner(input_ids=input_ids, **kwargs)
        # The logits kept (all positions, or the last with logits_to_keep=1) and the tokens they follow.
        kept = input_ids[:, input_ids.shape[1] - out.logits.shape[1] :]
        for row, tokens in enumerate(kept.tolist()):
            for position, token in enumerate(tokens):
                if token in self.follow:
                    out.logits[row, position, self.follow[token]] += self.strength
        return out


def eval_files(folder: Path, users: int = 12, train_users: int = 60, seed: int = 1) -> dict:
    """Held-out users (prep's field names), training histories and a train summary over the
    world's catalog: the request fields that name them."""
    w = world()
    catalog = [json.loads(line) for line in w.catalog_path.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)

    def held_out(user_id: int) -> dict:
        watched = rng.sample(range(len(catalog)), rng.randrange(3, 10))
        history, target = watched[:-1], watched[-1]
        sentiments = [rng.choice(["<liked>", "<watch>", "<dropped>"]) for _ in history]
        return {
            "user_id": user_id,
            "history": [catalog[i]["anime_id"] for i in history],
            "target_anime_id": catalog[target]["anime_id"],
            "target_sid": catalog[target]["semantic_id"],
            "target_sentiment": rng.choice(["<liked>", "<watch>"]),
            "history_len": len(history),
            "prompt": task_b_prompt([catalog[i]["semantic_id"] for i in history], sentiments),
        }

    train = [
        {"user_id": 1000 + i, "anime_ids": [catalog[rng.randrange(len(catalog))]["anime_id"] for _ in range(8)]}
        for i in range(train_users)
    ]
    summary = {
        "phases": [
            {
                "name": "phase1_linking",
                "step_losses": [3.0, 2.5, 2.1, 1.9],
                "evals": [{"step": 2, "eval_loss": 2.6}, {"step": 4, "eval_loss": 2.2}],
                "english_evals": [{"step": 2, "perplexity": 21.0}, {"step": 4, "perplexity": 22.5}],
            },
            {"name": "phase2_reasoning", "step_losses": [1.8, 1.7], "evals": [{"step": 2, "eval_loss": 2.0}]},
        ]
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_run_summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return {
        "semantic_ids_path": str(w.catalog_path),
        "heldout_path": str(write_jsonl(folder / "heldout.jsonl", [held_out(i) for i in range(users)])),
        "train_histories_path": str(write_jsonl(folder / "train_histories.jsonl", train)),
        "train_summary_path": str(folder / "train_run_summary.json"),
    }


def run_module(module: str, folder: Path, request: dict):
    """Run an entry point as the TypeScript side does: (the finished process, its stdout events)."""
    path = folder / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", module, str(path)], capture_output=True, text=True, env=worker_env(), cwd=REPO_ROOT
    )
    return done, [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds events only
