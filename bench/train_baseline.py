"""The baseline of `npm run bench:train`: the ordinary fine-tuning stack at our run's settings.

TRL's SFTTrainer with a PEFT LoRA adapter on the same random-weight model (the preset and seed
of animind_trainer.model_presets), the same added tokens (the semantic-ID vocabulary) trained as
new embedding and head rows through PEFT's trainable_token_indices, TRL's own packing and
completion-only loss on the same prep rows as conversational prompt/completion messages (so
TRL applies the tokenizer's chat template, as our feeder does). Without TRL it falls back to
transformers' Trainer with the same packing and loss, and says so in "stack".

It times the optimizer steps after --warmup steps (step end to step end: data loading included,
as our run's step time includes its wait on the pipe) and prints one JSON line on stdout;
everything else goes to stderr. Run by the trainer's venv with PYTHONPATH=trainer; under
torch.distributed.run each process trains one GPU's share and rank 0 prints.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

from animind_trainer.model_presets import PRESETS, build_random_model
from animind_trainer.tokens import extend_tokenizer, resize_embeddings

try:
    from trl import SFTConfig, SFTTrainer
except ImportError:
    SFTTrainer = None

ATTENTION = "sdpa"  # transformers' default, what the ordinary stack runs without flash-attn installed


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--like-run", required=True, type=Path, help="our run's folder: the settings to match")
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--prep", required=True, help="prep JSONL: rows with input and output")
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder")
    parser.add_argument("--semantic-vocab", required=True, help="semantic_vocab.json: the tokens to add")
    parser.add_argument("--device", choices=("cpu", "cuda"), required=True)
    parser.add_argument("--warmup", type=int, required=True, help="optimizer steps before the timed ones")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps timed")
    args = parser.parse_args()
    return argparse.Namespace(**vars(args), **settings_of(args.like_run))


def settings_of(run: Path) -> dict:
    """Our run's training settings, as its config snapshot and summary record them: rows a step,
    sequence length, learning rate, seed, LoRA, and the micro-batch and checkpointing its worker
    chose, split over as many GPUs."""
    config = json.loads((run / "train_config_snapshot.json").read_text(encoding="utf-8"))["config"]
    summary = json.loads((run / "train_run_summary.json").read_text(encoding="utf-8"))
    performance, world = summary["performance"], summary["runtime"]["world_size"]
    step_rows = config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]
    # null: the feeder's micro-batches as sent (the CPU).
    micro = performance["micro_batch_rows"] or config["per_device_train_batch_size"]
    accumulation = max(1, step_rows // (micro * world))
    if micro * accumulation * world != step_rows:
        print(f"baseline: {micro * accumulation * world} rows a step, not our {step_rows}", file=sys.stderr)
    lora = config["lora"]
    return {
        "max_length": config["max_seq_len"],
        "micro_rows": micro,
        "accumulation": accumulation,
        "gradient_checkpointing": performance["gradient_checkpointing"],
        "learning_rate": config["learning_rate"],
        "seed": config["seed"],
        "lora_r": lora["r"],
        "lora_alpha": lora["alpha"],
        "lora_dropout": lora["dropout"],
        "lora_target_modules": lora["target_modules"],
    }


def conversations(prep: Path) -> Dataset:
    """Each prep row as one user turn and the assistant's answer (prep rows carry no system message)."""
    rows = [json.loads(line) for line in prep.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": row["input"]}],
                "completion": [{"role": "assistant", "content": row["output"]}],
            }
            for row in rows
        ]
    )


class StepClock(TrainerCallback):
    """Times each optimizer step from the end of the one before, and counts the tokens of its micro-batches."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.step_time_s: list[float] = []
        self.input_tokens = self.real_tokens = 0
        self._step_input = self._step_real = 0
        self._last_end: float | None = None

    def micro_batch(self, inputs: dict) -> None:
        # Padding-free batches (TRL's packing) are one row of real tokens; padded ones have a mask.
        self._step_input += inputs["input_ids"].numel()
        mask = inputs.get("attention_mask")
        self._step_real += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()

    def on_step_end(self, args, state, control, **kwargs):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if state.global_step > self.warmup and self._last_end is not None:
            self.step_time_s.append(now - self._last_end)
            self.input_tokens += self._step_input
            self.real_tokens += self._step_real
        self._last_end, self._step_input, self._step_real = now, 0, 0


def counting(trainer_class: type[Trainer], clock: StepClock) -> type[Trainer]:
    """The trainer class with every micro-batch shown to the clock before it trains."""

    class Counting(trainer_class):
        def training_step(self, model, inputs, num_items_in_batch=None):
            clock.micro_batch(inputs)
            return super().training_step(model, inputs, num_items_in_batch)

    return Counting


def training_arguments(args: argparse.Namespace, out_dir: str, cuda: bool) -> dict:
    return {
        "output_dir": out_dir,
        "max_steps": args.warmup + args.steps,
        "per_device_train_batch_size": args.micro_rows,
        "gradient_accumulation_steps": args.accumulation,
        "learning_rate": args.learning_rate,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "bf16": cuda,
        "fp16": False,
        "use_cpu": not cuda,
        "gradient_checkpointing": args.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False},
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_steps": args.warmup + args.steps,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_pin_memory": cuda,
        "seed": args.seed,
    }


def trl_trainer(args, model, tokenizer, dataset, peft_config, clock: StepClock, out_dir: str, cuda: bool):
    config = SFTConfig(
        **training_arguments(args, out_dir, cuda),
        max_length=args.max_length,
        packing=True,  # best-fit decreasing bins, padding-free micro-batches
        completion_only_loss=True,
        pad_to_multiple_of=None,  # no padding positions: a padding-free row is all real tokens
    )
    trainer_class = counting(SFTTrainer, clock)
    return trainer_class(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )


def fallback_trainer(args, model, tokenizer, dataset, peft_config, clock: StepClock, out_dir: str, cuda: bool):
    """transformers' Trainer with what SFTTrainer does here: chat-template tokenization, prompt
    tokens out of the loss, best-fit decreasing packing into max_length bins, and padding-free
    micro-batches whose position_ids restart at each document."""
    documents = []
    for row in dataset:
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], return_dict=True)["input_ids"]
        labels = [-100] * len(prompt) + full[len(prompt) :]
        documents.append((full[: args.max_length], labels[: args.max_length]))
    bins: list[list[tuple[list[int], list[int]]]] = []
    for document in sorted(documents, key=lambda d: -len(d[0])):
        room = [b for b in bins if sum(len(d[0]) for d in b) + len(document[0]) <= args.max_length]
        if room:
            max(room, key=lambda b: sum(len(d[0]) for d in b)).append(document)
        else:
            bins.append([document])
    packed = Dataset.from_list(
        [
            {
                "input_ids": [t for ids, _ in b for t in ids],
                "labels": [-100 if i == 0 else t for _, labels in b for i, t in enumerate(labels)],
                "position_ids": [i for ids, _ in b for i in range(len(ids))],
            }
            for b in bins
        ]
    )

    def collate(examples: list[dict]) -> dict:
        return {key: torch.tensor([[v for e in examples for v in e[key]]]) for key in examples[0]}

    trainer_class = counting(Trainer, clock)
    return trainer_class(
        model=get_peft_model(model, peft_config),
        args=TrainingArguments(**training_arguments(args, out_dir, cuda), remove_unused_columns=False),
        train_dataset=packed,
        data_collator=collate,
    )


def flops_params(model: torch.nn.Module, tied: bool) -> dict:
    """The weights that multiply every token, for MFU: all but an untied input embedding's (a
    lookup, its trainable rows included) and the frozen head PEFT keeps beside the copy it trains."""
    counted = [
        p
        for name, p in model.named_parameters()
        if "original_module" not in name and (tied or "embed_tokens" not in name)
    ]
    return {"total": sum(p.numel() for p in counted), "trainable": sum(p.numel() for p in counted if p.requires_grad)}


def peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss if sys.platform == "darwin" else rss * 1024


def main() -> int:
    args = options()
    cuda = args.device == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    base_tokens = len(tokenizer)
    vocab = json.loads(Path(args.semantic_vocab).read_text(encoding="utf-8"))
    extend_tokenizer(tokenizer, vocab["tokens"])
    model = build_random_model(args.preset, base_tokens, device, torch.bfloat16 if cuda else torch.float32, ATTENTION)
    rows = resize_embeddings(model, tokenizer)  # pad_to_multiple_of=64, as our worker does
    model.config.use_cache = False
    # Every embedding row past the base vocabulary trains, as in our run: the added tokens and the
    # resize's padding rows. An untied head trains whole, TRL's recipe for added tokens: its fused
    # head cannot read the head through PEFT's trainable-token rows.
    peft_config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=args.lora_target_modules,
        trainable_token_indices={"embed_tokens": list(range(base_tokens, rows))},
        modules_to_save=None if model.config.tie_word_embeddings else ["lm_head"],
        task_type="CAUSAL_LM",
    )
    clock = StepClock(args.warmup, device)
    build = trl_trainer if SFTTrainer is not None else fallback_trainer
    stack = (
        f"trl {version('trl')} + peft {version('peft')}"
        if SFTTrainer is not None
        else f"transformers {version('transformers')} Trainer + peft {version('peft')} (no trl)"
    )
    with tempfile.TemporaryDirectory(prefix="animind-baseline-") as out_dir, contextlib.redirect_stdout(sys.stderr):
        trainer = build(args, model, tokenizer, conversations(Path(args.prep)), peft_config, clock, out_dir, cuda)
        trainer.add_callback(clock)
        trainer.train()
    counts = torch.tensor([clock.input_tokens, clock.real_tokens], dtype=torch.float64, device=device)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(counts)  # every rank's tokens; the times are rank 0's
        if torch.distributed.get_rank() != 0:
            return 0
    input_tokens, real_tokens = (int(c) for c in counts.tolist())
    seconds = sum(clock.step_time_s)
    result = {
        "stack": stack,
        "tokens_per_s": real_tokens / seconds if seconds > 0 else None,
        "non_padding_share": real_tokens / input_tokens if input_tokens else None,
        "peak_memory_bytes": peak_memory(device),
        "steps_timed": len(clock.step_time_s),
        "step_time_s": clock.step_time_s,
        "real_tokens": real_tokens,
        "input_tokens": input_tokens,
        "flops_params": flops_params(trainer.model, model.config.tie_word_embeddings),
        "micro_batch_rows": args.micro_rows,
        "gradient_checkpointing": args.gradient_checkpointing,
        "attention": ATTENTION,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
