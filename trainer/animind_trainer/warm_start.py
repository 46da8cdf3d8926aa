"""Warm start of the level-token rows from the RQ-VAE codebook, by ridge regression.

The spec (train.md, "warm start"): fit a ridge regression from the RQ-VAE codebook to the
LLM's embedding space, using for each anime the mean codebook vector of its codes as input
and the mean input-embedding of its title's tokens as target; write the projection of code c
into every `<Lk_c>` row; report fit rows and MSE.

Choices where the spec is silent:
- Codebook file: `torch.save({"model_state_dict": {"quantizer.codebook": C}}, path)`, C a
  float tensor [codes, latent] shared by all 8 levels (the spec's shape). A per-level
  codebook [8, codes, latent] is accepted too: level k then uses its own C[k - 1].
- Anime: the rows of semantic_ids.jsonl; the codes come from `semantic_id`
  (`<L1_c1>…<L8_c8>`, the field prep reads); the title is `name`, else `english_name`;
  rows with neither are skipped. Titles are tokenized without special tokens.
- Samples: at most `max_fit_samples` anime, a seeded random subset when there are more.
  A tenth of them (none below 10) is held out: the map is fitted on the rest, and the MSE
  (mean over anime and embedding dimensions) is reported on both.
- The map is affine, with an unpenalized intercept (as scikit-learn's Ridge): the
  embedding space is not centred at 0. Solved in float64 on the CPU.
- An untied output head gets the same treatment with its own map, fitted on the mean
  head rows of the title tokens; a tied head shares the input rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from .config import WarmStartSettings
from .errors import WorkerError
from .jsonl import json_objects

CODEBOOK_KEY = "quantizer.codebook"
LEVELS = 8
HELD_OUT_SHARE = 10  # one anime in ten
_SEMANTIC_ID = re.compile(r"<L([1-8])_(\d+)>")
_WHOLE_ID = re.compile(rf"(?:<L[1-8]_\d+>){{{LEVELS}}}")
_CHUNK = 4096  # rows of the float64 fit at a time
_TITLE_CHUNK = 1024  # titles whose token rows are gathered at once (on the model's device)


@dataclass(frozen=True)
class Anime:
    title: str
    codes: tuple[int, ...]  # one per level, level 1 first


def load_codebook(path: str) -> torch.Tensor:
    """The codebook as float64 [levels or 1, codes, latent]; a bad file is one line naming it."""
    if not Path(path).is_file():
        raise WorkerError(f"warm start: no RQ-VAE checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors alike: the file is not a checkpoint
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WorkerError(f"warm start: cannot read the RQ-VAE checkpoint {path}: {reason}") from None
    state = checkpoint.get("model_state_dict") if isinstance(checkpoint, dict) else None
    codebook = state.get(CODEBOOK_KEY) if isinstance(state, dict) else None
    shape_ok = isinstance(codebook, torch.Tensor) and codebook.is_floating_point()
    if shape_ok and codebook.dim() == 3:
        shape_ok = codebook.shape[0] == LEVELS
    elif shape_ok:
        shape_ok = codebook.dim() == 2
        codebook = codebook.unsqueeze(0) if shape_ok else codebook
    if not shape_ok or codebook.shape[1] == 0 or codebook.shape[2] == 0:
        found = f"shape {list(codebook.shape)}" if isinstance(codebook, torch.Tensor) else "no such tensor"
        raise WorkerError(
            f'warm start: {path}: expected model_state_dict["{CODEBOOK_KEY}"], a float tensor '
            f"[codes, latent] (or [{LEVELS}, codes, latent]); found {found}"
        )
    if not torch.isfinite(codebook).all():
        raise WorkerError(f"warm start: {path}: the codebook holds NaN or infinite values")
    return codebook.double()


def read_anime(path: str, codes: int) -> tuple[list[Anime], int]:
    """The anime of semantic_ids.jsonl with a title, and how many were skipped for having none."""
    anime, untitled = [], 0
    for number, row in json_objects(path, "warm start: "):
        sid = row.get("semantic_id")
        whole = isinstance(sid, str) and _WHOLE_ID.fullmatch(sid)
        found = [(int(k), int(c)) for k, c in _SEMANTIC_ID.findall(sid)] if whole else []
        if [k for k, _ in found] != list(range(1, LEVELS + 1)):
            raise WorkerError(f"warm start: {path}:{number}: expected semantic_id <L1_c>…<L8_c>, got {sid!r}")
        if any(c >= codes for _, c in found):
            raise WorkerError(f"warm start: {path}:{number}: a code of {sid} is beyond the codebook's {codes} codes")
        title = next((t for t in (row.get("name"), row.get("english_name")) if isinstance(t, str) and t.strip()), None)
        if title is None:
            untitled += 1
            continue
        anime.append(Anime(title.strip(), tuple(c for _, c in found)))
    return anime, untitled


def _inputs(codebook: torch.Tensor, anime: list[Anime]) -> torch.Tensor:
    """Each anime's mean codebook vector over its 8 codes: [n, latent]."""
    codes = torch.tensor([a.codes for a in anime], dtype=torch.long)  # [n, 8]
    if codebook.shape[0] == 1:
        return codebook[0][codes].mean(dim=1)
    return torch.stack([codebook[k][codes[:, k]] for k in range(LEVELS)], dim=1).mean(dim=1)


def _title_means(weight: torch.Tensor, title_ids: list[list[int]]) -> torch.Tensor:
    """Mean row of `weight` over each title's tokens, float32 on the CPU: [n, hidden]."""
    means = torch.empty(len(title_ids), weight.shape[1], dtype=torch.float32)
    for start in range(0, len(title_ids), _TITLE_CHUNK):
        chunk = title_ids[start : start + _TITLE_CHUNK]
        flat = torch.tensor([i for ids in chunk for i in ids], dtype=torch.long, device=weight.device)
        owner = torch.repeat_interleave(torch.tensor([len(ids) for ids in chunk], device=weight.device))
        sums = torch.zeros(len(chunk), weight.shape[1], dtype=torch.float32, device=weight.device)
        sums.index_add_(0, owner, weight.detach()[flat].float())
        counts = torch.tensor([len(ids) for ids in chunk], dtype=torch.float32, device=weight.device)
        means[start : start + len(chunk)] = (sums / counts.unsqueeze(1)).cpu()
    return means


@dataclass(frozen=True)
class RidgeMap:
    weight: torch.Tensor  # [latent, hidden], float64
    bias: torch.Tensor  # [hidden], float64

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.double() @ self.weight + self.bias

    def mse(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        if len(x) == 0:
            return None
        total = sum(
            float(((self(x[s : s + _CHUNK]) - y[s : s + _CHUNK].double()) ** 2).sum()) for s in range(0, len(x), _CHUNK)
        )
        return total / (len(x) * y.shape[1])


def fit_ridge(x: torch.Tensor, y: torch.Tensor, ridge_lambda: float) -> RidgeMap:
    """argmin_W,b ||(x W + b) - y||² + lambda ||W||², b unpenalized (x and y centred)."""
    x = x.double()
    x_mean = x.mean(dim=0)
    y_mean = torch.zeros(y.shape[1], dtype=torch.float64)
    for s in range(0, len(y), _CHUNK):
        y_mean += y[s : s + _CHUNK].double().sum(dim=0)
    y_mean /= len(y)
    xc = x - x_mean
    cross = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64)
    for s in range(0, len(y), _CHUNK):
        cross += xc[s : s + _CHUNK].T @ (y[s : s + _CHUNK].double() - y_mean)
    gram = xc.T @ xc + ridge_lambda * torch.eye(x.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(gram, cross)
    return RidgeMap(weight, y_mean - x_mean @ weight)


def _level_code(token: str) -> tuple[int, int]:
    level, code = _SEMANTIC_ID.fullmatch(token).groups()
    return int(level), int(code)


def warm_start(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    level_tokens: list[str],
    level_ids: list[int],
    settings: WarmStartSettings,
    seed: int,
) -> dict:
    """Overwrite the level tokens' input-embedding rows (and an untied head's) in place; the report."""
    codebook = load_codebook(settings.rqvae_checkpoint_path)
    codes = codebook.shape[1]
    beyond = next((t for t in level_tokens if _level_code(t)[1] >= codes), None)
    if beyond is not None:
        raise WorkerError(f"warm start: the codebook has {codes} codes, too few for the level token {beyond}")
    anime, untitled = read_anime(settings.semantic_ids_path, codes)
    if len(anime) > settings.max_fit_samples:
        order = torch.randperm(len(anime), generator=torch.Generator().manual_seed(seed))
        anime = [anime[i] for i in sorted(order[: settings.max_fit_samples].tolist())]
    held = len(anime) // HELD_OUT_SHARE
    pick = torch.randperm(len(anime), generator=torch.Generator().manual_seed(seed + 1))
    is_held = torch.zeros(len(anime), dtype=torch.bool)
    is_held[pick[:held]] = True
    fit_rows = len(anime) - held
    if fit_rows < 2:
        raise WorkerError(
            f"warm start: {settings.semantic_ids_path} has {fit_rows} titled anime to fit on; at least 2 are needed"
        )

    x = _inputs(codebook, anime)
    title_ids = [tokenizer(a.title, add_special_tokens=False)["input_ids"] or [] for a in anime]
    empty = next((a.title for a, ids in zip(anime, title_ids, strict=True) if not ids), None)
    if empty is not None:
        raise WorkerError(f"warm start: the title {empty!r} encodes to no tokens")
    embedding, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    targets = {"embed_tokens": embedding}
    if head is not embedding:
        targets["lm_head"] = head
    level_x = torch.stack(
        [codebook[0 if codebook.shape[0] == 1 else level - 1][code] for level, code in map(_level_code, level_tokens)]
    )
    ids = torch.tensor(level_ids, dtype=torch.long)
    report = {
        "semantic_ids_path": settings.semantic_ids_path,
        "rqvae_checkpoint_path": settings.rqvae_checkpoint_path,
        "codebook_shape": list(codebook.shape[1:] if codebook.shape[0] == 1 else codebook.shape),
        "ridge_lambda": settings.ridge_lambda,
        "anime_untitled": untitled,
        "fit_rows": fit_rows,
        "heldout_rows": held,
        "rows_written": len(level_ids),
    }
    for name, weight in targets.items():
        y = _title_means(weight, title_ids)
        projection = fit_ridge(x[~is_held], y[~is_held], settings.ridge_lambda)
        report[name] = {
            "train_mse": projection.mse(x[~is_held], y[~is_held]),
            "heldout_mse": projection.mse(x[is_held], y[is_held]),
        }
        rows = projection(level_x)
        with torch.no_grad():
            weight[ids.to(weight.device)] = rows.to(device=weight.device, dtype=weight.dtype)
    return report


def describe(report: dict) -> str:
    """The log line: fit rows and the MSE of each fitted map."""

    def mse(value):
        return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"

    parts = [
        f"{name} MSE train {mse(report[name]['train_mse'])} held-out {mse(report[name]['heldout_mse'])}"
        for name in ("embed_tokens", "lm_head")
        if name in report
    ]
    return (
        f"warm start: {report['rows_written']:,} level-token rows from the RQ-VAE codebook by ridge projection, "
        f"fitted on {report['fit_rows']:,} anime ({report['heldout_rows']:,} held out); " + "; ".join(parts)
    )
