"""W&B tracking: a short real run, offline, read back from its `.wandb` file; the key is never written."""

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from animind_trainer.config import parse_config
from animind_trainer.errors import WorkerError
from animind_trainer.protocol import EventWriter
from animind_trainer.tracking import Tracker
from configs import tiny_config
from frames import end, eval_batch, hello, optimizer_step, pack, phase
from synthetic import anime_examples
from worker_process import WorkerProcess, worker_env

CONFIG_KEY = "wandbcfgkey-0123456789abcdef0123456789abcdef"
ENV_KEY = "wandbenvkey-fedcba9876543210fedcba9876543210"
PHASE1_STEPS, PHASE2_STEPS, SEQ_LEN = 3, 2, 64
WANDB = {
    "enabled": True,
    "mode": "offline",
    "project": "animind-test",
    "api_key": CONFIG_KEY,
    "api_key_env": "WANDB_API_KEY",
    "run_name": "wandb-test-run",
    "group": "ci",
    "tags": ["dry-run", "tiny"],
}


def _frames(tokenizer: Tokenizer, pad_id: int) -> list[bytes]:
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False).ids  # noqa: E731
    examples = anime_examples(encode, n_anime=2)
    heldout = eval_batch(pack(examples[:2], SEQ_LEN, pad_id))
    text = encode("The quick brown fox jumps over the lazy dog.")
    english = eval_batch(pack([(text, [-100, *text[1:]])], SEQ_LEN, pad_id), english=True)
    out = [phase("phase1_linking", PHASE1_STEPS)]
    for step in range(1, PHASE1_STEPS + PHASE2_STEPS + 1):
        if step == PHASE1_STEPS + 1:
            out.append(phase("phase2_reasoning", PHASE2_STEPS))
        out += optimizer_step([pack(examples[:2], SEQ_LEN, pad_id), pack(examples[2:], SEQ_LEN, pad_id)])
        if step == 1:
            out.append(heldout)
        if step in (PHASE1_STEPS, PHASE1_STEPS + PHASE2_STEPS):
            out += [heldout, english]
    return [*out, end()]


def _records(path: Path):
    """The records of a `.wandb` file: wandb's LevelDB-style log of `wandb_internal_pb2.Record`s
    (7-byte file header, 32 KiB blocks, each chunk behind a crc32/length/type header)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:7] == struct.pack("<4sHB", b":W&B", 0xBEE1, 0), data[:7]
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is zero padding
            pos += 32768 - pos % 32768
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        if (crc, length, kind) == (0, 0, 0):
            break
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad checksum at byte {pos}"
        pos += 7 + length
        pending += chunk
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    out, staging = root / "out", root / "stage"
    dirs = {name: root / name.lower() for name in ("HOME", "WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")}
    dirs.update(WANDB_DATA_DIR=root / "wandb_data", XDG_CACHE_HOME=root / "xdg_cache", XDG_CONFIG_HOME=root / "xdg")
    for path in dirs.values():
        path.mkdir()
    env = {k: v for k, v in worker_env().items() if not k.startswith("WANDB_")}
    env.update({name: str(path) for name, path in dirs.items()}, WANDB_API_KEY=ENV_KEY)
    config = tiny_config(out, staging_dir=str(staging), checkpoint_every_steps=100, wandb=WANDB)
    worker = WorkerProcess(env)
    try:
        worker.send(hello(config))
        events = worker.events_until("ready")
        ready = events[-1]
        assert ready["event"] == "ready", f"{events}\n{worker.output()}"
        tokenizer = Tokenizer.from_file(f"{ready['tokenizer_dir']}/tokenizer.json")
        worker.send(*_frames(tokenizer, tokenizer.token_to_id("<|endoftext|>")))
        worker.close_input()
        events += worker.remaining_events(timeout=120)
        code = worker.wait()
        log = worker.output()
    finally:
        worker.stop()
    assert code == 0, f"{events[-3:]}\n{log[-3000:]}"
    (run_dir,) = (staging / "wandb").glob("offline-run-*")
    (wandb_file,) = run_dir.glob("run-*.wandb")
    records = list(_records(wandb_file))
    summary = json.loads((staging / "train_run_summary.json").read_text())
    return {
        "events": events,
        "log": log,
        "root": root,
        "out": out,
        "run_dir": run_dir,
        "records": records,
        "summary": summary,
    }


def _of(run, kind: str) -> list:
    return [getattr(r, kind) for r in run["records"] if r.WhichOneof("record_type") == kind]


def _history(run) -> list[dict]:
    rows = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in h.item}
        for h in _of(run, "history")
    ]
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]


def test_the_run_record_names_the_run(run):
    (record,) = _of(run, "run")
    assert (record.project, record.display_name, record.run_group) == ("animind-test", "wandb-test-run", "ci")
    assert list(record.tags) == ["dry-run", "tiny"]
    config = {u.key: json.loads(u.value_json) for u in record.config.update}
    assert config["learning_rate"] == 5e-3 and config["wandb"]["api_key"] == "<redacted>"
    assert "staging_dir" not in config
    (exit_record,) = _of(run, "exit")
    assert exit_record.exit_code == 0


def test_every_step_is_logged_with_a_global_step_across_phases(run):
    steps = [e for e in run["events"] if e["event"] == "step"]
    logged = [row for row in _history(run) if "train/loss" in row]
    assert [(r["global_step"], r["train/phase"], r["train/phase_step"]) for r in logged] == [
        (1, 1, 1),
        (2, 1, 2),
        (3, 1, 3),
        (4, 2, 1),
        (5, 2, 2),
    ]
    for row, event in zip(logged, steps, strict=True):
        for key in ("loss", "lr", "grad_norm", "completion_tokens", "pipe_wait_s", "step_time_s"):
            assert row[f"train/{key}"] == pytest.approx(event[key], rel=1e-12), key
        # The run's rate (every rank's positions), not the rank's own share.
        assert row["train/tokens_per_s"] == pytest.approx(event["run_tokens_per_s"], rel=1e-12)


def test_every_eval_is_logged_per_set(run):
    evals = [e for e in run["events"] if e["event"] == "eval"]
    assert sorted((e["phase"], e["set"], e["step"]) for e in evals) == [
        ("phase1_linking", "english", 3),
        ("phase1_linking", "heldout", 1),
        ("phase1_linking", "heldout", 3),
        ("phase2_reasoning", "english", 2),
        ("phase2_reasoning", "heldout", 2),
    ]
    logged = [row for row in _history(run) if "eval/phase" in row]
    assert len(logged) == len(evals)
    for row, event in zip(logged, evals, strict=True):
        prefix = f"eval/{event['set']}"
        assert row["global_step"] == {"phase1_linking": 0, "phase2_reasoning": 3}[event["phase"]] + event["step"]
        assert row[f"{prefix}/loss"] == pytest.approx(event["eval_loss"], rel=1e-12)
        assert row[f"{prefix}/perplexity"] == pytest.approx(event["perplexity"], rel=1e-12)
        assert row[f"{prefix}/tokens"] == event["tokens"]


def test_the_summary_says_where_the_run_is(run):
    entry = run["summary"]["wandb"]
    assert entry == {
        "enabled": True,
        "mode": "offline",
        "project": "animind-test",
        "entity": None,
        "run_name": "wandb-test-run",
        "run_id": entry["run_id"],
        "group": "ci",
        "tags": ["dry-run", "tiny"],
        "dir": str(run["out"] / "wandb" / run["run_dir"].name),  # where the supervisor publishes it
        "url": None,
    }
    assert run["run_dir"].name.endswith(entry["run_id"])


def test_no_key_is_written_anywhere(run):
    # Everything the run wrote: the run folder, HOME (.netrc), wandb's cache/config/data dirs.
    files = [p for p in run["root"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "debug-internal.log" for p in files)
    texts = [(p, p.read_bytes()) for p in files]
    texts += [("events", json.dumps(run["events"]).encode()), ("worker log", run["log"].encode())]
    for where, data in texts:
        for key in (CONFIG_KEY, ENV_KEY):
            assert key.encode() not in data, f"{key[:11]}... found in {where}"
    assert not (run["root"] / "home" / ".netrc").exists()


# Settings and failures, without a worker process.

BASE = {"base_model": "m", "out_dir": "/o"}


def test_wandb_is_off_by_default_and_offline_when_enabled(monkeypatch):
    for name in ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert parse_config(BASE).wandb.enabled is False
    settings = parse_config({**BASE, "wandb": {"enabled": True}}).wandb
    assert (settings.mode, settings.project, settings.entity, settings.api_key) == ("offline", "animind", "", "")


def test_project_entity_and_key_come_from_the_named_env_vars(monkeypatch):
    monkeypatch.setenv("MY_PROJECT", "p-env")
    monkeypatch.setenv("MY_ENTITY", "e-env")
    monkeypatch.setenv("MY_KEY", ENV_KEY)
    names = {"project_env": "MY_PROJECT", "entity_env": "MY_ENTITY", "api_key_env": "MY_KEY"}
    settings = parse_config({**BASE, "wandb": {"enabled": True, "mode": "online", **names}}).wandb
    assert (settings.project, settings.entity, settings.api_key) == ("p-env", "e-env", ENV_KEY)
    table = {"enabled": True, "project": "p", "entity": "e", "api_key": CONFIG_KEY, **names}
    settings = parse_config({**BASE, "wandb": table}).wandb
    assert (settings.project, settings.entity, settings.api_key) == ("p", "e", CONFIG_KEY)
    assert settings.secrets == (CONFIG_KEY, ENV_KEY)  # both are masked, only the config's is used
    assert CONFIG_KEY not in repr(settings) and ENV_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"mode": "cloud"}, r"config.wandb.mode must be one of offline, online, got 'cloud'"),
        ({"tags": "a,b"}, "config.wandb.tags must be list"),
        ({"tags": ["a", 1]}, "config.wandb.tags must be a list of non-empty strings"),
        (
            {"enabled": True, "mode": "online", "api_key_env": "NO_SUCH_KEY"},
            "config.wandb.mode is online but there is no W&B API key: set config.wandb.api_key, or NO_SUCH_KEY",
        ),
    ],
)
def test_bad_wandb_settings_are_one_line(table, message, monkeypatch, tmp_path):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    with pytest.raises(WorkerError, match=message):
        parse_config({**BASE, "wandb": table})


def test_online_without_a_key_accepts_a_wandb_login(monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password from-wandb-login-0123456789\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    settings = parse_config({**BASE, "wandb": {"enabled": True, "mode": "online", "api_key_env": "NO_SUCH_KEY"}})
    assert settings.wandb.api_key == ""  # wandb finds the login itself; nothing of it passes through here


def test_a_wandb_startup_failure_is_one_error_line(monkeypatch, tmp_path):
    import wandb

    def broken_init(**_):
        raise RuntimeError(f"cannot reach server with {CONFIG_KEY}\nsecond line")

    monkeypatch.setattr(wandb, "init", broken_init)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # start() sets it; monkeypatch restores it
    settings = parse_config({**BASE, "wandb": {"enabled": True, "api_key": CONFIG_KEY}}).wandb
    events = EventWriter(io.StringIO())
    with pytest.raises(WorkerError) as failure:
        Tracker(settings, events, tmp_path, tmp_path).start({})
    message = events.scrub(str(failure.value))
    assert (
        message
        == "cannot start the W&B offline run (project 'animind'): RuntimeError: cannot reach server with <redacted>"
    )


class FailingRun:
    def __init__(self):
        self.finished = []

    def log(self, _values):
        raise ConnectionError("service gone")

    def finish(self, exit_code):
        self.finished.append(exit_code)


def test_a_logging_failure_warns_once_and_training_goes_on(tmp_path):
    stream = io.StringIO()
    events = EventWriter(stream)
    tracker = Tracker(parse_config({**BASE, "wandb": {"enabled": True}}).wandb, events, tmp_path, tmp_path)
    tracker._run = failing = FailingRun()
    events.add_listener(tracker._on_event)
    for step in (1, 2):
        events.emit("step", phase="p", step=step, loss=1.0)
    tracker.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["step", "log", "step"]
    assert lines[1] == {
        "event": "log",
        "level": "warning",
        "message": "W&B logging stopped: ConnectionError: service gone",
    }
    assert failing.finished == [1]


class RecordingRun:
    def __init__(self):
        self.calls = []

    def log(self, values):
        self.calls.append(("log", values))

    def mark_preempting(self):
        self.calls.append("mark_preempting")

    def finish(self, exit_code):
        self.calls.append(("finish", exit_code))


def test_a_resumed_run_counts_on_and_a_preempted_one_is_marked_preempting(tmp_path):
    events = EventWriter(io.StringIO())
    tracker = Tracker(parse_config({**BASE, "wandb": {"enabled": True}}).wandb, events, tmp_path, tmp_path)
    tracker._run = run = RecordingRun()
    events.add_listener(tracker._on_event)
    tracker.resumed([{"name": "phase1_linking", "steps_done": 8}])
    events.emit("step", phase="phase2_reasoning", step=4, loss=1.0)
    tracker.preempted()
    tracker.close()  # nothing left to close
    assert run.calls == [
        ("log", {"global_step": 12, "train/loss": 1.0, "train/phase": 2, "train/phase_step": 4}),
        "mark_preempting",
        ("finish", 75),
    ]


def test_with_several_ranks_the_logged_tokens_per_s_is_the_runs_not_rank_0s_share(tmp_path):
    events = EventWriter(io.StringIO())
    tracker = Tracker(parse_config({**BASE, "wandb": {"enabled": True}}).wandb, events, tmp_path, tmp_path)
    tracker._run = run = RecordingRun()
    events.add_listener(tracker._on_event)
    events.emit("step", phase="phase1_linking", step=1, loss=1.0, tokens_per_s=1000.0, run_tokens_per_s=4000.0)
    tracker.close()
    assert run.calls[0][1]["train/tokens_per_s"] == 4000.0
