"""The input files: the catalog of semantic IDs, the held-out users, the training users' histories.

Anime are referred to by their index in the catalog (file order) everywhere after loading; a line
that does not fit is one error naming the file and the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WorkerError
from ..jsonl import json_objects
from .request import SENTIMENTS

LEVELS = 8
_LEVEL_TOKEN = re.compile(r"<L([1-8])_(\d+)>")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Catalog:
    """Every valid semantic ID and its anime, in the file's order."""

    path: Path
    anime_ids: list[int]
    titles: list[str]
    semantic_ids: list[str]
    tokens: list[tuple[str, ...]]  # the 8 level tokens of each anime
    index: dict[int, int]  # anime_id -> position in the catalog

    def __len__(self) -> int:
        return len(self.anime_ids)

    def position(self, anime_id: int, where: str) -> int:
        found = self.index.get(anime_id)
        if found is None:
            raise WorkerError(f"{where}: anime {anime_id} is not in {self.path}")
        return found

    def prefix_groups(self) -> torch.Tensor:
        """(anime, 8): column L-1 numbers the distinct first-L-token prefixes, so two anime share a
        prefix of length L exactly when their column L-1 values are equal (per-level accuracy)."""
        groups = torch.empty(len(self), LEVELS, dtype=torch.long)
        for level in range(LEVELS):
            seen: dict[tuple[str, ...], int] = {}
            for i, tokens in enumerate(self.tokens):
                groups[i, level] = seen.setdefault(tokens[: level + 1], len(seen))
        return groups

    def duplicate_ids(self) -> int:
        """How many anime share their semantic ID with an earlier one."""
        return len(self.semantic_ids) - len(set(self.semantic_ids))


def load_catalog(path: Path) -> Catalog:
    anime_ids, titles, sids, tokens = [], [], [], []
    index: dict[int, int] = {}
    for number, row in json_objects(path):
        where = f"{path}:{number}"
        anime_id, sid = row.get("anime_id"), row.get("semantic_id")
        if not _is_int(anime_id):
            raise WorkerError(f"{where}: `anime_id` must be an integer, got {json.dumps(anime_id)}")
        if anime_id in index:
            raise WorkerError(f"{where}: anime {anime_id} is listed twice (first on another line)")
        if not isinstance(sid, str):
            raise WorkerError(f"{where}: `semantic_id` must be a string of 8 level tokens")
        parts = row.get("tokens")
        if parts is None:
            parts = re.findall(r"<[^<>]*>", sid)
        if not isinstance(parts, list) or len(parts) != LEVELS or "".join(map(str, parts)) != sid:
            raise WorkerError(f"{where}: `semantic_id` {sid!r} is not 8 level tokens (or `tokens` disagrees with it)")
        for level, token in enumerate(parts, 1):
            match = _LEVEL_TOKEN.fullmatch(token)
            if not match or int(match.group(1)) != level:
                raise WorkerError(f"{where}: token {level} of {sid!r} is {token!r}, expected <L{level}_code>")
        name = row.get("name")
        index[anime_id] = len(anime_ids)
        anime_ids.append(anime_id)
        titles.append(name if isinstance(name, str) and name else str(anime_id))
        sids.append(sid)
        tokens.append(tuple(parts))
    if not anime_ids:
        raise WorkerError(f"{path}: no semantic IDs")
    return Catalog(path, anime_ids, titles, sids, tokens, index)


@dataclass(frozen=True)
class HeldOutUser:
    user_id: object
    history: list[int]  # catalog positions, oldest first
    target: int  # catalog position
    prompt: str  # the Task B `last`-mask prompt: the user turn
    sentiment: str  # the target's: <liked>, <watch>, <disliked> or <dropped>
    history_length: int


def _field(row: dict, names: tuple[str, ...], where: str):
    """Prep writes `target_sentiment` and `history_len`; the documented names are accepted too."""
    for name in names:
        if name in row:
            return row[name]
    raise WorkerError(f"{where}: `{names[0]}` is missing")


def load_heldout(path: Path, catalog: Catalog, max_users: int = 0) -> list[HeldOutUser]:
    users = []
    for number, row in json_objects(path):
        if max_users and len(users) == max_users:
            break
        where = f"{path}:{number}"
        history = _field(row, ("history",), where)
        if not isinstance(history, list) or not all(_is_int(a) for a in history):
            raise WorkerError(f"{where}: `history` must be a list of anime ids")
        target_id = _field(row, ("target_anime_id",), where)
        if not _is_int(target_id):
            raise WorkerError(f"{where}: `target_anime_id` must be an integer")
        target = catalog.position(target_id, where)
        target_sid = row.get("target_sid")
        if target_sid is not None and target_sid != catalog.semantic_ids[target]:
            raise WorkerError(
                f"{where}: target_sid {target_sid!r} is not anime {target_id}'s semantic ID in {catalog.path} "
                f"({catalog.semantic_ids[target]}): the files come from different semantic ID sets"
            )
        prompt = _field(row, ("prompt",), where)
        if not isinstance(prompt, str) or not prompt:
            raise WorkerError(f"{where}: `prompt` must be the Task B prompt text")
        sentiment = _field(row, ("sentiment", "target_sentiment"), where)
        if sentiment not in SENTIMENTS:
            raise WorkerError(f"{where}: `sentiment` must be one of {', '.join(SENTIMENTS)}, got {sentiment!r}")
        length = row.get("history_length", row.get("history_len", len(history)))
        if not _is_int(length):
            raise WorkerError(f"{where}: `history_length` must be an integer")
        users.append(
            HeldOutUser(
                user_id=row.get("user_id"),
                history=[catalog.position(a, where) for a in history],
                target=target,
                prompt=prompt,
                sentiment=sentiment,
                history_length=length,
            )
        )
    if not users:
        raise WorkerError(f"{path}: no held-out users")
    return users


@dataclass(frozen=True)
class TrainHistories:
    sequences: list[list[int]]  # catalog positions, oldest first; one list per training user
    unknown: int  # watches of anime missing from the catalog, left out


def load_train_histories(path: Path, catalog: Catalog) -> TrainHistories:
    sequences, unknown = [], 0
    for number, row in json_objects(path):
        ids = row.get("anime_ids")
        if not isinstance(ids, list) or not all(_is_int(a) for a in ids):
            raise WorkerError(f"{path}:{number}: `anime_ids` must be a list of anime ids")
        known = [catalog.index[a] for a in ids if a in catalog.index]
        unknown += len(ids) - len(known)
        sequences.append(known)
    return TrainHistories(sequences, unknown)
