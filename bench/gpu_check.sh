#!/usr/bin/env bash
# The GPU check of issues 3 and 5 as one command for the device tool. UNVERIFIED: no GPU was lent to the
# session that wrote it. It measures the npsc-nynorsk architecture (random init, 315 M parameters) on
# NPSC-like audio: ours vs the seed's settings, audio-s/s, samples/s, padding, peak memory, MFU against a
# measured bf16 matmul peak, and appends the JSON lines to $OUT/gpu.jsonl (copy them into bench/results.jsonl).
#
# Prepare once, here (the GPU image has torch, transformers, accelerate, pyarrow, pandas, psutil, xxhash,
# but not datasets, soundfile, soxr): from the repository root,
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl datasets==5.2.0 dill multiprocess soundfile==0.14.0 cffi pycparser soxr
# then call the device tool with carry [".whl"] and the command `bash bench/gpu_check.sh`.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m nynorsk_asr.cli bench train --arch npsc-nynorsk --steps 50 --batch_size 16 --results "$OUT/gpu.jsonl" 2>&1 \
  | grep -v "it/s]" | tee "$OUT/bench_train.log"
python3 -m nynorsk_asr.cli bench infer --arch npsc-nynorsk --n_clips 64 --results "$OUT/gpu.jsonl" 2>&1 \
  | grep -v "it/s]" | tee -a "$OUT/bench_train.log"
