#!/usr/bin/env bash
# Proves on a CPU machine that the GPU check will find what it imports: a stand-in for the GPU machine's python3
# (CPython 3.12 holding only that image's packages, README "GPU machine preparation" says how to make one) runs
# the CPU-safe part of the check in a copy of the tree as the device tool sends it (tracked and untracked,
# not-ignored files, plus bench/wheels as carried):
#   1. without bench/wheels, bench/gpu_check.sh stops in its preflight, exit 4, naming a missing module;
#   2. with them, it installs them offline and stops at the CUDA check, exit 2, every module imported;
#   3. each subpackage of asdlib imports in a process of its own (PYTHONPATH: the installed wheels);
#   4. pytest -m cuda tests/test_cuda.py collects its tests (all skipped without CUDA), and
#      tests/test_gpu_check.py (the script's CPU-safe checks) passes under this interpreter;
#   5. the check's steps, tiny and on the CPU: the throughput benchmark, ours and naive (librosa.load, soxr,
#      torchaudio), and gpu_train.py prepare + train + scoring (soundfile, the cache, the loop, evaluate_run).
# Prints one line per part, then PASS or FAIL; logs in WORK/logs.
#
# Usage: bash bench/gpu_prove.sh PYTHON [WORK]     (WORK: an empty folder; default a new temporary one)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${1:?usage: bash bench/gpu_prove.sh PYTHON [WORK]}
WORK=${2:-$(mktemp -d)}
TREE=$WORK/tree
SITE=$WORK/site
FAILED=0
mkdir -p "$WORK/logs"

part() {  # part NAME EXPECTED_RC CMD...: run CMD in the copy, log it, compare its exit status
  local name=$1 want=$2 tic=$SECONDS
  shift 2
  (cd "$TREE" && "$@") > "$WORK/logs/$name.log" 2>&1
  local rc=$?
  if (( rc == want )); then echo "ok    $name (exit $rc, $(( SECONDS - tic )) s)"
  else echo "FAIL  $name (exit $rc, expected $want; $WORK/logs/$name.log)"; tail -n 15 "$WORK/logs/$name.log"; FAILED=1
  fi
  return 0
}

has() {  # has NAME TEXT: the log of part NAME contains TEXT
  grep -qF -- "$2" "$WORK/logs/$1.log" || { echo "FAIL  $1: its log lacks '$2'"; FAILED=1; }
}

copy_tree() {  # what a device call sends: git's tracked and untracked-not-ignored files; bench/wheels apart
  mkdir -p "$TREE"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$TREE" 2>/dev/null)
  bash "$REPO/bench/gpu_wheels.sh" --check || exit 1
}

main() {
  echo "gpu_prove: $("$PY" --version 2>&1) at $PY; work in $WORK"
  copy_tree
  local check=(env PYTHON="$PY" GPU_SITE="$SITE" bash bench/gpu_check.sh)
  part check_without_wheels 4 "${check[@]}" "$WORK/out_without"
  has check_without_wheels "No module named"
  cp -r "$REPO/bench/wheels" "$TREE/bench/wheels"
  part check_with_wheels 2 "${check[@]}" "$WORK/out_with"
  has check_with_wheels "installed offline into $SITE"
  has check_with_wheels "no usable CUDA device"
  export PYTHONPATH=$SITE MPLBACKEND=Agg
  local pkg modules
  for pkg in data nn training evaluation experiment teaching cli; do
    modules=$(cd "$TREE" && find "asdlib/$pkg" "asdlib/$pkg.py" -name '*.py' ! -path '*/solutions/*' 2>/dev/null \
              | sed 's/\.py$//; s#/__init__$##; s#/#.#g' | paste -sd,)
    part "import_$pkg" 0 "$PY" -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1].split(',')];
print(len(sys.argv[1].split(',')), 'modules')" "$modules"
  done
  part cuda_tests_collected 0 "$PY" -m pytest -m cuda tests/test_cuda.py -q -rs -p no:cacheprovider
  has cuda_tests_collected "skipped"
  part gpu_check_tests 0 env GPU_SITE="$WORK/site_tests" "$PY" -m pytest tests/test_gpu_check.py -q \
    -p no:cacheprovider --basetemp "$WORK/pytest"  # its own temporary folder, away from other runs'
  has gpu_check_tests "passed"
  part synth_smoke 0 "$PY" -m asdlib synth --size smoke --types fan,valve --out data/prove --quiet
  part throughput_cpu 0 "$PY" bench/train_throughput.py --device cpu --data data/prove --seconds 2 \
    --model tastgram_mfn --loss auto --batch 4 --warmup 1 --steps 1 --pipeline both --no-save
  local small=(--types fan --clips-per-id 4 --test-clips 2 2 --seconds 2 --no-save)
  part train_data_cpu 0 "$PY" bench/gpu_train.py prepare "${small[@]}" --workers 2
  part train_cpu 0 "$PY" bench/gpu_train.py train "${small[@]}" --device cpu --workers 0 --budget-s 1
  has train_cpu '"auc"'
  (( FAILED )) && { echo "gpu_prove: FAIL"; exit 1; }
  echo "gpu_prove: PASS"
}

main
