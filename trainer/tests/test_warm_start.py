"""Warm start: the level-token rows begin as a ridge projection of the RQ-VAE codebook.

Each anime pairs the mean codebook vector of its 8 codes (input) with the mean embedding of
its title's tokens (target); the fitted map is applied to code c and written into <Lk_c>.
"""

import io
import json
from pathlib import Path

import pytest
import torch

from animind_trainer.config import WarmStartSettings, parse_config
from animind_trainer.errors import WorkerError
from animind_trainer.model_loading import build_tiny_model
from animind_trainer.protocol import EventWriter
from animind_trainer.tokens import SPECIAL_COUNT, extend_tokenizer, load_tokenizer, resize_embeddings
from animind_trainer.warm_start import load_codebook, warm_start
from animind_trainer.worker import run
from configs import QWEN_TOKENIZER, tiny_config
from frames import ADDED_TOKENS, end, example_row, hello, optimizer_step, pack, phase
from worker_process import REPO_ROOT

LEVEL_TOKENS = ADDED_TOKENS[SPECIAL_COUNT:]
CODES, LATENT, HIDDEN = 2048, 16, 64  # HIDDEN: the tiny model's
N_ANIME = 600


def save_codebook(path: Path, codebook: torch.Tensor) -> str:
    """The RQ-VAE checkpoint layout the worker reads (spec: model_state_dict["quantizer.codebook"])."""
    torch.save({"model_state_dict": {"quantizer.codebook": codebook, "encoder.weight": torch.zeros(2)}}, path)
    return str(path)


def write_semantic_ids(path: Path, titles: list[str], codes: torch.Tensor) -> str:
    with path.open("w", encoding="utf-8") as out:
        for anime_id, (title, row) in enumerate(zip(titles, codes.tolist(), strict=True)):
            sid = "".join(f"<L{level}_{code}>" for level, code in enumerate(row, 1))
            out.write(json.dumps({"anime_id": anime_id, "name": title, "semantic_id": sid}) + "\n")
    return str(path)


def settings(semantic_ids: str, checkpoint: str, **overrides) -> WarmStartSettings:
    values = {"enabled": True, "ridge_lambda": 1e-3, "max_fit_samples": 50000} | overrides
    return WarmStartSettings(semantic_ids_path=semantic_ids, rqvae_checkpoint_path=checkpoint, **values)


@pytest.fixture
def extended():
    """The tiny model and the Qwen tokenizer with the 16,390 tokens added: (model, tokenizer, level ids)."""
    tokenizer = load_tokenizer(str(QWEN_TOKENIZER), None)
    model = build_tiny_model(len(tokenizer))
    ids = extend_tokenizer(tokenizer, ADDED_TOKENS)
    resize_embeddings(model, tokenizer)
    return model, tokenizer, ids[SPECIAL_COUNT:]


def single_token_words(tokenizer, count: int) -> list[tuple[str, int]]:
    """Plain words that encode to one token each, so a title's mean embedding is one row we can set."""
    found = []
    for token_id in range(20000, 60000):
        word = tokenizer.decode([token_id])
        plain = word.isascii() and word.isalpha() and len(word) >= 4
        if plain and tokenizer(word, add_special_tokens=False)["input_ids"] == [token_id]:
            found.append((word, token_id))
            if len(found) == count:
                return found
    raise AssertionError(f"only {len(found)} single-token words")


def test_the_fitted_rows_recover_a_known_linear_map(extended, tmp_path):
    model, tokenizer, level_ids = extended
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(CODES, LATENT, generator=g)
    codes = torch.randint(0, CODES, (N_ANIME, 8), generator=g)
    # The truth: title embedding = mean code vector · M + b, plus a little noise; one map per matrix.
    truth = {
        "embed": (torch.randn(LATENT, HIDDEN, generator=g) / 4, torch.randn(HIDDEN, generator=g) / 10),
        "head": (torch.randn(LATENT, HIDDEN, generator=g) / 4, torch.randn(HIDDEN, generator=g) / 10),
    }
    words = single_token_words(tokenizer, N_ANIME)
    title_ids = torch.tensor([token_id for _, token_id in words])
    x = codebook[codes].mean(dim=1)
    matrices = {"embed": model.get_input_embeddings().weight, "head": model.get_output_embeddings().weight}
    with torch.no_grad():
        for name, (m, b) in truth.items():
            matrices[name][title_ids] = x @ m + b + 0.01 * torch.randn(N_ANIME, HIDDEN, generator=g)
    before = {name: w.detach().clone() for name, w in matrices.items()}

    report = warm_start(
        model,
        tokenizer,
        LEVEL_TOKENS,
        level_ids,
        settings(
            write_semantic_ids(tmp_path / "semantic_ids.jsonl", [w for w, _ in words], codes),
            save_codebook(tmp_path / "rqvae.pt", codebook),
        ),
        seed=7,
    )

    # <Lk_c> should now hold code c's vector under the true map, for every level and code.
    code_of_token = torch.tensor([int(t.split("_")[1][:-1]) for t in LEVEL_TOKENS])
    ids = torch.tensor(level_ids)
    for name, (m, b) in truth.items():
        ideal = codebook[code_of_token] @ m + b
        fitted_error = ((matrices[name].detach()[ids] - ideal) ** 2).mean()
        default_error = ((before[name][ids] - ideal) ** 2).mean()
        assert fitted_error < default_error / 100, (name, fitted_error, default_error)
        others = torch.ones(len(before[name]), dtype=torch.bool)
        others[ids] = False
        assert torch.equal(matrices[name].detach()[others], before[name][others]), "only level-token rows change"
    assert (report["fit_rows"], report["heldout_rows"], report["rows_written"]) == (540, 60, 16384)
    for name in ("embed_tokens", "lm_head"):  # noise variance 1e-4: both fits sit close to it
        assert report[name]["train_mse"] < 2e-4 and report[name]["heldout_mse"] < 3e-4, report


def test_max_fit_samples_caps_the_pairs_and_a_tenth_is_held_out(extended, tmp_path):
    model, tokenizer, level_ids = extended
    titles = [f"Show number {i}" for i in range(100)]
    codes = torch.randint(0, CODES, (100, 8), generator=torch.Generator().manual_seed(1))
    report = warm_start(
        model,
        tokenizer,
        LEVEL_TOKENS,
        level_ids,
        settings(
            write_semantic_ids(tmp_path / "ids.jsonl", titles, codes),
            save_codebook(tmp_path / "rqvae.pt", torch.randn(CODES, 4)),
            max_fit_samples=50,
        ),
        seed=7,
    )
    assert (report["fit_rows"], report["heldout_rows"]) == (45, 5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "warm start: no RQ-VAE checkpoint at {path}"),
        (b"not a checkpoint", "warm start: cannot read the RQ-VAE checkpoint {path}: "),
        (
            {"state_dict": {}},
            'warm start: {path}: expected model_state_dict["quantizer.codebook"], a float tensor [codes, latent] '
            "(or [8, codes, latent]); found no such tensor",
        ),
        (
            {"model_state_dict": {"quantizer.codebook": torch.zeros(3, 2048, 4)}},
            "found shape [3, 2048, 4]",
        ),
        (
            {"model_state_dict": {"quantizer.codebook": torch.zeros(2048, 4, dtype=torch.long)}},
            "found shape [2048, 4]",
        ),
    ],
)
def test_a_missing_or_malformed_checkpoint_is_one_line(tmp_path, content, message):
    path = tmp_path / "rqvae.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(WorkerError) as failure:
        load_codebook(str(path))
    assert message.format(path=path) in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_codebook_with_fewer_codes_than_the_level_tokens_is_refused(extended, tmp_path):
    model, tokenizer, level_ids = extended
    ids = write_semantic_ids(tmp_path / "ids.jsonl", ["A"], torch.zeros(1, 8, dtype=torch.long))
    small = save_codebook(tmp_path / "small.pt", torch.randn(1024, 4))
    with pytest.raises(WorkerError, match=r"the codebook has 1024 codes, too few for the level token <L1_1024>"):
        warm_start(model, tokenizer, LEVEL_TOKENS, level_ids, settings(ids, small), seed=7)


def test_a_bad_semantic_id_names_its_line(extended, tmp_path):
    model, tokenizer, level_ids = extended
    path = tmp_path / "ids.jsonl"
    path.write_text('{"name": "A", "semantic_id": "<L1_1><L2_2><L3_3><L4_4><L5_5><L6_6><L7_7><L8_8>"}\n{"name": "B"}\n')
    with pytest.raises(WorkerError, match=rf"warm start: {path}:2: expected semantic_id <L1_c>…<L8_c>, got None"):
        warm_start(
            model,
            tokenizer,
            LEVEL_TOKENS,
            level_ids,
            settings(str(path), save_codebook(tmp_path / "c.pt", torch.randn(CODES, 4))),
            seed=7,
        )


def test_config_defaults_to_off_and_requires_both_paths_when_on():
    assert parse_config({"base_model": "m", "out_dir": "/o"}).warm_start == WarmStartSettings(
        enabled=False, semantic_ids_path="", rqvae_checkpoint_path="", ridge_lambda=1e-3, max_fit_samples=50000
    )
    with pytest.raises(WorkerError, match=r"config\.warm_start\.rqvae_checkpoint_path is required when"):
        parse_config({"base_model": "m", "out_dir": "/o", "warm_start": {"enabled": True, "semantic_ids_path": "x"}})
    with pytest.raises(WorkerError, match=r"config\.warm_start\.ridge_lambda must be > 0, got 0"):
        parse_config({"base_model": "m", "out_dir": "/o", "warm_start": {"ridge_lambda": 0}})


def test_a_run_reports_the_fit_in_a_log_line_the_summary_and_the_snapshot(tmp_path):
    """The fixture's 800 anime with their real titles, and a random codebook shared by the 8 levels."""
    checkpoint = save_codebook(tmp_path / "rqvae.pt", torch.randn(CODES, 8, generator=torch.Generator().manual_seed(3)))
    warm = {
        "enabled": True,
        "semantic_ids_path": str(REPO_ROOT / "fixtures" / "semantic_ids.jsonl"),
        "rqvae_checkpoint_path": checkpoint,
        "ridge_lambda": 1e-3,
        "max_fit_samples": 50000,
    }
    out = tmp_path / "run"
    tokenizer = load_tokenizer(str(QWEN_TOKENIZER), None)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    rows = pack([example_row(encode("Name an anime:"), encode(" Cowboy Bebop"))], 64, tokenizer.pad_token_id or 0)
    frames = hello(tiny_config(out, warm_start=warm)) + phase("phase1_linking", 1) + b"".join(optimizer_step([rows]))
    events = io.StringIO()
    assert run(io.BytesIO(frames + end()), EventWriter(events)) == 0, events.getvalue()

    logged = [json.loads(line) for line in events.getvalue().splitlines()]
    lines = [e["message"] for e in logged if e["event"] == "log" and e["message"].startswith("warm start:")]
    assert len(lines) == 1, logged
    line = lines[0]
    assert "16,384 level-token rows" in line and "fitted on 720 anime (80 held out)" in line, line
    assert "embed_tokens MSE train" in line and "lm_head MSE train" in line, line
    summary = json.loads((out / "train_run_summary.json").read_text())
    snapshot = json.loads((out / "train_config_snapshot.json").read_text())
    assert summary["runtime"]["warm_start"] == snapshot["warm_start"]
    assert snapshot["warm_start"]["fit_rows"] == 720 and snapshot["config"]["warm_start"] == warm
    assert snapshot["warm_start"]["embed_tokens"]["heldout_mse"] > 0
