#!/bin/bash
# The train speed check on a GPU machine that has Python and PyTorch but no Node (the device
# machine): our worker on the frames `npm run bench:train -- --record-frames DIR` recorded, then
# the TRL + PEFT baseline at that run's settings, for each preset in DIR/bench.json. Writes
# bench.json, <preset>.json (our run's summary, the baseline's result or why either failed) and
# gpu-check.log into $OUT (default: DIR/results); `npm run bench:train -- --results <that folder>`
# prints the table. Wheels in .whl/ (bench/README.md says which) are installed first. VARIANTS
# (variants split by ';', each a space-separated list of worker config keys, e.g.
# VARIANTS='compile=true; attention=flex') runs ours again per variant, beside the default.
#   bash bench/gpu-check.sh DIR
set -uo pipefail
bundle=${1:?usage: bash bench/gpu-check.sh DIR (a --record-frames folder)}
out=${OUT:-$bundle/results}
mkdir -p "$out"
python=${PYTHON:-python3}
device=${DEVICE:-cuda}  # cpu: the check of this script itself (test/bench/train-bench.test.ts)
if compgen -G '.whl/*.whl' >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=trainer${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
cp "$bundle/bench.json" "$out/"
setting() { "$python" -c "import json,sys; print(json.load(open('$bundle/bench.json'))[sys.argv[1]])" "$1"; }
presets=$("$python" -c "import json; print(' '.join(json.load(open('$bundle/bench.json'))['presets']))")
log=$out/gpu-check.log
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"; } >"$log" 2>&1
"$python" -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' >>"$log" 2>&1
for preset in $presets; do
  run=$(mktemp -d)/run
  echo "== $preset: ours" >>"$log"
  "$python" bench/replay_frames.py --frames "$bundle/frames.bin" --preset "$preset" --device "$device" \
    --tokenizer "$bundle/tokenizer" --run-dir "$run" >>"$log" 2>&1
  variants=()
  IFS=';' read -ra specs <<<"${VARIANTS:-}"
  for spec in "${specs[@]}"; do
    [ -n "${spec// /}" ] || continue
    variant=$(mktemp -d)/run
    sets=()
    for pair in $spec; do sets+=(--set "$pair"); done
    echo "== $preset: ours with $spec" >>"$log"
    "$python" bench/replay_frames.py --frames "$bundle/frames.bin" --preset "$preset" --device "$device" \
      --tokenizer "$bundle/tokenizer" --run-dir "$variant" "${sets[@]}" >>"$log" 2>&1
    variants+=("$spec=>$variant")
  done
  echo "== $preset: baseline" >>"$log"
  "$python" bench/train_baseline.py --like-run "$run" --preset "$preset" --prep "$(setting prep)" \
    --tokenizer "$bundle/tokenizer" --semantic-vocab fixtures/semantic_vocab.json --device "$device" \
    --warmup "$(setting warmup)" --steps "$(setting steps)" >"$run.baseline" 2>>"$log"
  "$python" - "$run" "$out/$preset.json" "$log" "${variants[@]}" <<'PY'
import json, sys
from pathlib import Path
run, out, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
lines = log.read_text(errors="replace").splitlines()
last = lambda: next((l for l in reversed(lines) if l.strip()), "")
result = {}
summary = run / "train_run_summary.json"
if summary.exists():
    result["summary"] = json.loads(summary.read_text())
else:
    result["error"] = last()
baseline = Path(f"{run}.baseline")
text = baseline.read_text().strip().splitlines() if baseline.exists() else []
if text and text[-1].startswith("{"):
    result["baseline"] = json.loads(text[-1])
else:
    result["baseline_error"] = last()
result["variants"] = []
for entry in sys.argv[4:]:
    spec, _, folder = entry.partition("=>")
    summary = Path(folder) / "train_run_summary.json"
    found = {"summary": json.loads(summary.read_text())} if summary.exists() else {"error": last()}
    result["variants"].append({"set": spec.strip(), **found})
out.write_text(json.dumps(result))
PY
done
echo "done: $out" >>"$log"
