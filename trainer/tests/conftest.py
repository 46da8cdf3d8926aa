"""Shared setup for the trainer tests."""

import os

# The CI and dev machines have 2 shared cores: oversubscribed OpenMP threads make the
# tiny model's matmuls ~20x slower, so tests (and the workers they spawn) use one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
