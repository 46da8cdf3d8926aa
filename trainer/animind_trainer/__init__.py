"""AniMind training worker: receives packed batches over a pipe and trains a LoRA model.

Run as `python -m animind_trainer.worker` with PYTHONPATH=trainer; see trainer/PROTOCOL.md.
"""
