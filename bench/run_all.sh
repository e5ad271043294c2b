#!/usr/bin/env bash
# The full CPU benchmark set (about 10 minutes on a quiet 2-core machine; the first run also generates
# data/bench/, about 2 more minutes). Each command appends one JSON line to bench/results/<name>.jsonl;
# `python bench/report.py` then prints the tables for bench/README.md. Run it when nothing else is running.
#   bash bench/run_all.sh            (from the repository root; PY=python3 bash bench/run_all.sh to pick Python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python
start=$(date +%s)

$PY bench/feature_throughput.py --batch 64 --seconds 10 --repeats 5
$PY bench/loader_throughput.py --batch 64 --seconds 10 --batches 6 --threads 1
$PY bench/loader_throughput.py --batch 64 --seconds 10 --batches 6 --threads 2
for m in stgram_mfn_paper stgram_mfn; do
  $PY bench/train_throughput.py --model $m --loss arcface --batch 16 --seconds 10 --steps 3 --warmup 1
done
for m in stsasgram_mfn tastgram_mfn; do
  $PY bench/train_throughput.py --model $m --loss noisy_arcmix --batch 16 --seconds 10 --steps 3 --warmup 1
done
$PY bench/train_throughput.py --model tastgram_mfn --loss noisy_arcmix --batch 16 --seconds 10 --steps 3 --warmup 1 \
  --threads 1
$PY bench/train_throughput.py --model tastgram_mfn --loss noisy_arcmix --batch 16 --seconds 10 --steps 3 --warmup 1 \
  --channels-last
# the CPU fast path: torch.compile + channels-last (the first steps compile, ~1 min each)
$PY bench/train_throughput.py --model stgram_mfn --loss arcface --batch 16 --seconds 10 --steps 4 --warmup 2 --rounds 2 \
  --compile --channels-last
$PY bench/train_throughput.py --model tastgram_mfn --loss noisy_arcmix --batch 16 --seconds 10 --steps 4 --warmup 2 \
  --rounds 2 --compile --channels-last
for m in stgram_mfn_paper stgram_mfn stsasgram_mfn tastgram_mfn; do
  $PY bench/eval_throughput.py --model $m --batch 64 --seconds 10 --clips 128
done
$PY bench/memory_scaling.py --sizes 1000,4000,16000 --seconds 2 --model stgram_mfn --loss arcface --batch 32

echo "benchmark set done in $(( $(date +%s) - start )) s" >&2
