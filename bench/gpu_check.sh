#!/usr/bin/env bash
# The GPU check (issue 11) as one command for the device tool, and the same path on a CPU as a dry run.
#
#   bash bench/gpu_check.sh            on a CUDA machine: the npsc-nynorsk architecture (random init,
#                                      ~315 M parameters) end to end through papermill on an NPSC-shaped
#                                      corpus (bf16 chosen automatically), then `bench train` / `bench infer`
#   bash bench/gpu_check.sh --dry-run  the same steps on a CPU with a tiny architecture and a few steps, so a
#                                      typo never costs GPU minutes (tests/test_gpu_check.py runs it)
#
# Everything it measures lands in $OUT (default /tmp/gpu-check): gpu.jsonl (copy the lines into
# bench/results.jsonl), the executed notebook, the card, train_record.json, logs.
#
# The GPU image has torch, transformers, accelerate, pyarrow, but not datasets, evaluate, jiwer, soundfile,
# soxr: download wheels here first (from the repository root), then call the device tool with carry [".whl"]:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl datasets==5.2.0 evaluate==0.4.6 jiwer soundfile==0.14.0 soxr papermill ipykernel
set -euo pipefail
mode=gpu
[ "${1:-}" = "--dry-run" ] && mode=dry-run
OUT=${OUT:-/tmp/gpu-check}; WORK=${WORK:-/tmp/gpu-check-work}
mkdir -p "$OUT" "$WORK"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ "$mode" = gpu ] && [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --find-links .whl --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}

if [ "$mode" = gpu ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  good=150; steps=200; bench_steps=50; batch=16; arch=npsc-nynorsk; clips=64
  overrides="model_name_or_path: null"
else
  echo "dry run on $(uname -m), no GPU" | tee "$OUT/gpu.txt"
  good=3; steps=4; bench_steps=4; batch=2; arch=demo; clips=4
  # a tiny model in the npsc-nynorsk layout (LayerNorm conv, pre-LN transformer), so CPU minutes stay short
  overrides="model_name_or_path: null
hidden_size: 32
num_hidden_layers: 2
num_attention_heads: 2
intermediate_size: 64
conv_channels: 16
per_device_train_batch_size: 2
per_device_eval_batch_size: 2
gradient_accumulation_steps: 1
warmup_steps: 1
logging_steps: 1
mask_feature_length: 8"
fi
echo "$overrides" > "$WORK/overrides.yaml"

# 1. an NPSC-shaped corpus (raw layout: JSON lines + MP3 tarballs, NPSC-like durations, every bad-row kind)
"$PY" tests/npsc_fixture.py "$WORK/npsc" --good "$good" --durations npsc

# 2. the papermill entry point end to end: prepare, train (precision chosen by hardware), evaluate, card
"$PY" -m papermill nbs/train.ipynb "$OUT/train.ipynb" --cwd nbs --log-output \
  -p preset npsc-nynorsk -p dataset_name "$WORK/npsc" -p config_file "$WORK/overrides.yaml" \
  -p output_dir "$WORK/run" -p max_steps "$steps" -p eval_steps "$((steps / 2))" -p save_steps "$((steps / 2))" \
  -p cache_dir "$WORK/cache" -p final_eval_split test 2>&1 | grep -v "it/s]" > "$OUT/train.log"
cp "$WORK/run/README.md" "$WORK/run/train_record.json" "$WORK/run/eval/test_greedy.json" "$OUT/"

# 3. throughput, ours vs the seed's settings, in the same process; then inference
"$PY" -m nynorsk_asr.cli bench train --arch "$arch" --steps "$bench_steps" --batch_size "$batch" --results "$OUT/gpu.jsonl" \
  2>&1 | grep -v "it/s]" | tee "$OUT/bench.log"
"$PY" -m nynorsk_asr.cli bench infer --arch "$arch" --n_clips "$clips" --busy 0 --results "$OUT/gpu.jsonl" \
  2>&1 | grep -v "it/s]" | tee -a "$OUT/bench.log"
echo "gpu check ($mode) done: $(ls "$OUT" | tr '\n' ' ')"
