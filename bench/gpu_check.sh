#!/usr/bin/env bash
# The GPU check (issue 14) in ONE call of at most 8 minutes, from the repository root of a copy of the tree:
#   1. preflight: Python; the carried wheels (bench/gpu_wheels.sh: soundfile, librosa, ... that the GPU
#      machine's python3 lacks) installed offline into $GPU_SITE, first thing; asdlib (offline `pip install -e .
#      --no-deps` only if it is not importable); every module of asdlib and of the check's scripts imported
#      (exit 4 naming what is missing, before any GPU work); PyTorch and CUDA (bench/gpu_env.py); without a usable
#      CUDA device it stops here, exit 2, having measured nothing;
#   2. the CUDA tests: pytest -m cuda tests/test_cuda.py (JUnit report cuda_tests.xml);
#   3. training throughput, ours vs naive (bench/train_throughput.py): the four models at 10-s clips, batch 256
#      and 64, bf16, plain; then TASTgram-MFN at batch 256 compiled + channels-last (the goal line);
#   4. a short full-size training (bench/gpu_train.py): TASTgram-MFN + Noisy-ArcMix on a `full`-layout
#      procedural dataset of $TRAIN_TYPES (generated in the background during step 2) for as many epochs as fit
#      in min($TRAIN_BUDGET, what is left) seconds, then scoring (AUC / pAUC);
#   5. the other compiled + channels-last configurations, as long as time is left;
#   6. the summary table (bench/gpu_summary.py), also written to OUT/summary.md.
# Every step runs under `timeout` within a global deadline, so a hang costs one step, not the budget; a step
# that no longer fits is recorded as skipped. JSON lines and logs go to OUT (steps.jsonl, gpu_env.jsonl,
# train_throughput.jsonl, gpu_train.jsonl, cuda_tests.xml, nvidia_smi.csv, logs/*.log); the benchmark lines
# are also appended to bench/results/. Nothing is installed from the internet.
#
# Generation time within the budget (measured on one AMD EPYC core, 2026-12-01: 29.5 ten-second clips per
# CPU-second for fan + valve in the `full` layout, 880 clips per CPU-second to decode them into the cache):
#   train_data, 14 IDs x 300 + 8 development IDs x (100 + 150) = 6,200 clips on GEN_WORKERS=12 processes:
#   6,200 / (12 x 29.5) = 18 s, twice that for a slower or shared host = 35 s, + the cache in one process
#   6,200 / 880 = 7 s, + start-up ~10 s: ~50 s of its 150-s limit, in the background during the CUDA tests;
#   bench_data, 41 IDs x 8 + 23 development IDs x 2 = 374 clips on 16 processes: ~1 s + start-up, of 90 s.
#   (The whole `full` size, 41 IDs x 900 + 23 x 250 = 42,650 clips, would take 42,650 / (16 x 29.5) = 90 s at
#   best, ~3 min in practice, and a 13.6-GB cache: a training call of its own, not this check.)
#   The default budget, 470 s, counts from the start (wheels, imports and preflight included); each step ends,
#   its 10-s kill grace too, by the deadline, so the call stays under 8 minutes: give the device call
#   timeout_s=540, room for the summary and the transfers.
#
# Usage: bash bench/gpu_check.sh OUT [--budget SECONDS] [--only tests,throughput,train] [--summary]
#   --budget   total seconds (default 470; env GPU_CHECK_BUDGET)
#   --only     run only these parts (the preflight always runs)
#   --summary  print the summary of an existing OUT and exit (no Python packages needed beyond the stdlib)
# Environment: PYTHON (default: .venv/bin/python if present, else python3), WORKERS (DataLoader workers, 8),
#   GPU_SITE (where the carried wheels go, /tmp/asdlib-gpu-site), GEN_WORKERS (12), TRAIN_TYPES (fan,valve),
#   TRAIN_CLIPS (training clips per ID, 300), TRAIN_BUDGET (180), TIMED_CLIPS (timed clips per throughput
#   configuration, 2048).
# Exit status: 0 every step passed; 1 a step failed or timed out; 2 no CUDA; 3 no Python/PyTorch;
#   4 asdlib or a module it needs cannot be imported; 64 bad arguments.
# On the lent GPU machine (bench/wheels is git-ignored, so name it): run(command="bash bench/gpu_check.sh
#   $OUT/check", carry=["bench/wheels"], timeout_s=540).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 3
T0=$(date +%s)
WORKERS=${WORKERS:-8}
GEN_WORKERS=${GEN_WORKERS:-12}
TRAIN_TYPES=${TRAIN_TYPES:-fan,valve}
TRAIN_CLIPS=${TRAIN_CLIPS:-300}
TRAIN_BUDGET=${TRAIN_BUDGET:-180}
TIMED_CLIPS=${TIMED_CLIPS:-2048}
SITE=${GPU_SITE:-${TMPDIR:-/tmp}/asdlib-gpu-site}
MODELS=tastgram_mfn,stgram_mfn,stsasgram_mfn,stgram_mfn_paper

usage() {  # the header comment above, without the leading '# '
  sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

die_usage() {
  echo "gpu_check: $1" >&2
  usage >&2
  exit 64
}

parse_args() {  # sets OUT, BUDGET, ONLY, SUMMARY_ONLY
  OUT="" BUDGET=${GPU_CHECK_BUDGET:-470} ONLY="tests,throughput,train" SUMMARY_ONLY=0
  while (( $# )); do
    case $1 in
      -h|--help) usage; exit 0 ;;
      --budget) [[ ${2:-} =~ ^[0-9]+$ ]] || die_usage "--budget needs a number of seconds"; BUDGET=$2; shift ;;
      --only) [[ ${2:-} =~ ^(tests|throughput|train)(,(tests|throughput|train))*$ ]] \
                || die_usage "--only takes a comma list of tests, throughput, train"; ONLY=$2; shift ;;
      --summary) SUMMARY_ONLY=1 ;;
      -*) die_usage "unknown option $1" ;;
      *) [[ -z $OUT ]] || die_usage "one output folder only (got $OUT and $1)"; OUT=$1 ;;
    esac
    shift
  done
  [[ -n $OUT ]] || die_usage "missing the output folder"
  DEADLINE=$(( T0 + BUDGET ))
}

say() {  # a time-stamped line on stdout and in the log
  printf '[%s +%3ds] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*" | tee -a "$LOG"
}

record() {  # record NAME STATUS RC SECONDS TIMEOUT: one JSON line in OUT/steps.jsonl
  printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d, "timeout_s": %d}\n' "$@" >> "$OUT/steps.jsonl"
}

wants() { [[ ,$ONLY, == *,$1,* ]]; }

step() {  # step NAME CAP RESERVE MIN CMD...: run CMD under timeout min(CAP, time left - RESERVE), or skip it
  local name=$1 cap=$2 reserve=$3 min=$4
  shift 4
  local left=$(( DEADLINE - $(date +%s) - reserve ))
  local limit=$(( cap < left ? cap : left ))
  if (( limit < min )); then
    say "$name: skipped, ${limit}s left for it (needs ${min}s)"
    record "$name" skipped 0 0 "$limit"
    return 0
  fi
  say "$name: start (limit ${limit}s) $*"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$? took=$(( SECONDS - start )) status=ok
  (( rc == 124 || rc == 137 )) && status=timeout
  (( rc != 0 && status == ok )) && status=failed
  record "$name" "$status" "$rc" "$took" "$limit"
  say "$name: $status (exit $rc) in ${took}s"
  [[ $status == ok ]] || tail -n 25 "$OUT/logs/$name.log" | sed "s/^/  $name| /"
  return "$rc"
}

finish() {  # print and write the summary; exit with the given status
  "$PY" bench/gpu_summary.py "$OUT" --write "$OUT/summary.md" 2>>"$LOG" \
    || python3 bench/gpu_summary.py "$OUT" --write "$OUT/summary.md"
  say "gpu_check: done in $(( $(date +%s) - T0 ))s, exit $1 (summary in $OUT/summary.md, logs in $OUT/logs)"
  exit "$1"
}

pick_python() {  # PY: $PYTHON, else the venv make builds (if it was carried), else python3
  if [[ -n ${PYTHON:-} ]]; then PY=$PYTHON
  elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
  else PY=python3
  fi
  [[ $PY == */* && $PY != /* ]] && PY="$REPO/$PY"  # absolute (steps run elsewhere); a venv's symlink is kept
  if ! command -v "$PY" > /dev/null; then
    say "gpu_check: FAILED: no Python interpreter '$PY'; set PYTHON=/path/to/python"
    record python failed 3 0 0
    exit 3
  fi
}

check_asdlib() {  # installed (editable, offline) when missing; this checkout on PYTHONPATH as the last resort
  local probe="import asdlib, os; print(os.path.dirname(asdlib.__file__))"
  if ! (cd / && timeout 60 "$PY" -c "$probe") >> "$LOG" 2>&1; then
    say "asdlib is not importable: pip install -e . --no-deps (offline, no build isolation)"
    timeout 120 "$PY" -m pip install --no-index --no-build-isolation --no-deps -e . >> "$LOG" 2>&1 \
      || say "pip install failed (see $LOG)"
  fi
  local found
  found=$(cd / && timeout 60 "$PY" -c "$probe" 2>> "$LOG")
  if [[ $found != "$REPO/asdlib" ]]; then
    say "using this checkout's asdlib through PYTHONPATH (found: ${found:-none})"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  fi
}

missing_wheels() {  # the lockfile's wheels whose distribution $PY does not have, one file name a line
  grep -v '^#' bench/gpu_wheels.txt | awk 'NF {print $2}' | "$PY" -c '
import importlib.metadata as md, sys
for wheel in sys.stdin.read().split():
    try:
        md.version(wheel.split("-")[0])  # the distribution name as the wheel spells it; lookup normalises it
    except md.PackageNotFoundError:
        print(wheel)'
}

install_wheels() {  # the carried wheels (bench/gpu_wheels.sh) that $PY lacks: offline, into $SITE (PYTHONPATH)
  local missing
  missing=$(missing_wheels) || { say "cannot list the carried wheels with $PY (see $LOG)"; return 0; }
  if [[ -z $missing ]]; then
    say "carried wheels: $PY already has all of bench/gpu_wheels.txt"
    return 0
  fi
  if ! bash bench/gpu_wheels.sh --check >> "$LOG" 2>&1; then  # absent, incomplete, or not the locked files
    say "carried wheels: bench/wheels is missing or does not match bench/gpu_wheels.txt (see $LOG); the import" \
        "check below says what that breaks. Carry it: bash bench/gpu_wheels.sh here, carry=[\"bench/wheels\"]"
    return 0
  fi
  local files=() name
  for name in $missing; do files+=("bench/wheels/$name"); done
  mkdir -p "$SITE"
  if ! timeout 120 "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "${files[@]}" >> "$LOG" 2>&1; then  # no pip, or it failed: a wheel is a zip of its files
    say "pip could not install the wheels (see $LOG); unpacking them into $SITE"
    for name in "${files[@]}"; do "$PY" -m zipfile -e "$name" "$SITE" >> "$LOG" 2>&1; done
  fi
  export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$SITE"  # after what the caller put there: theirs wins
  say "carried wheels: ${#files[@]} installed offline into $SITE ($(echo $missing | sed 's/-[0-9][^ ]*//g'))"
}

preflight() {  # Python, the carried wheels, asdlib, then every import, PyTorch and CUDA (bench/gpu_env.py)
  pick_python
  say "gpu_check: OUT=$OUT budget=${BUDGET}s python=$PY ($("$PY" --version 2>&1)) only=$ONLY"
  install_wheels
  check_asdlib
  timeout -k 5 120 "$PY" bench/gpu_env.py --out-dir "$OUT" > "$OUT/logs/gpu_env.log" 2>&1
  local rc=$? took=$(( $(date +%s) - T0 ))
  tail -n 1 "$OUT/logs/gpu_env.log" | tee -a "$LOG"
  case $rc in
    0) record preflight ok 0 "$took" 120 ;;
    2) record preflight no_cuda 2 "$took" 120
       say "gpu_check: FAILED: no usable CUDA device. Run this on the GPU machine; nothing was measured."
       finish 2 ;;
    3) record preflight no_torch 3 "$took" 120
       say "gpu_check: FAILED: PyTorch is not importable by $PY. This script installs nothing from the internet:" \
           "run it with a Python that has torch (PYTHON=/path/to/python)."
       exit 3 ;;
    4) record preflight no_asdlib 4 "$took" 120
       say "gpu_check: FAILED: asdlib cannot be imported by $PY (the line above names the modules); nothing" \
           "was measured. Missing packages travel as wheels: bash bench/gpu_wheels.sh, carry bench/wheels."
       finish 4 ;;
    *) record preflight failed "$rc" "$took" 120
       say "gpu_check: FAILED: preflight exit $rc (see $OUT/logs/gpu_env.log)"
       finish 1 ;;
  esac
}

start_gpu_log() {  # nvidia-smi every second for the whole run, stopped on exit
  command -v nvidia-smi > /dev/null || return 0
  nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used,power.draw,temperature.gpu \
    --format=csv -lms 1000 > "$OUT/nvidia_smi.csv" 2>> "$LOG" &
  SMI_PID=$!
}

cleanup() {  # stop what this script started in the background (by process id)
  [[ -n ${SMI_PID:-} ]] && kill "$SMI_PID" 2> /dev/null
  if [[ -n ${PREP_PID:-} ]]; then  # the background step's subshell and its timeout (which stops its command)
    pkill -TERM -P "$PREP_PID" 2> /dev/null
    kill "$PREP_PID" 2> /dev/null
  fi
  return 0
}

throughput() {  # throughput NAME CAP RESERVE MIN ARGS...: bench/train_throughput.py on CUDA, bf16, 10-s clips
  local name=$1 cap=$2 reserve=$3 min=$4
  shift 4
  step "$name" "$cap" "$reserve" "$min" "$PY" bench/train_throughput.py --device cuda --seconds 10 --loss auto \
    --amp bf16 --naive-amp --workers "$WORKERS" --warmup 2 --steps 4 --timed-clips "$TIMED_CLIPS" --gpu-util \
    --out-dir "$OUT" "$@"
}

train_data() {  # the training set, generated (and cached) in the background while the CUDA tests run
  local args=(--types "$TRAIN_TYPES" --clips-per-id "$TRAIN_CLIPS")
  step train_data 150 0 30 "$PY" bench/gpu_train.py prepare "${args[@]}" --workers "$GEN_WORKERS" --out-dir "$OUT" &
  PREP_PID=$!
}

short_training() {  # as many epochs as fit in min(TRAIN_BUDGET, what is left - scoring and start-up)
  local left=$(( DEADLINE - $(date +%s) - 10 ))
  local fit=$(( left - 60 < TRAIN_BUDGET ? left - 60 : TRAIN_BUDGET ))
  (( fit >= 30 )) || fit=30
  step train $(( fit + 90 )) 10 60 "$PY" bench/gpu_train.py train --types "$TRAIN_TYPES" \
    --clips-per-id "$TRAIN_CLIPS" --budget-s "$fit" --workers "$WORKERS" --out-dir "$OUT"
}

main() {
  parse_args "$@"
  mkdir -p "$OUT/logs" || { echo "gpu_check: cannot create $OUT/logs" >&2; exit 64; }
  LOG="$OUT/logs/gpu_check.log"
  if (( SUMMARY_ONLY )); then
    pick_python
    exec "$PY" bench/gpu_summary.py "$OUT"
  fi
  trap cleanup EXIT
  preflight
  start_gpu_log
  local failed=0
  if wants throughput; then  # the small benchmark dataset (41 IDs, 8 clips each), generated once
    step bench_data 90 300 20 "$PY" -c "import sys; sys.path.insert(0, 'bench'); import common; common.bench_cache(10)" \
      || failed=1
  fi
  wants train && train_data
  if wants tests; then
    step cuda_tests 150 250 30 "$PY" -m pytest -m cuda tests/test_cuda.py -q -rA -p no:cacheprovider \
      --junitxml="$OUT/cuda_tests.xml" || failed=1
  fi
  [[ -n ${PREP_PID:-} ]] && { wait "$PREP_PID" || failed=1; PREP_PID=""; }
  if wants throughput; then
    throughput throughput_plain 150 190 40 --model "$MODELS" --batch 256,64 --variants plain || failed=1
    throughput throughput_goal 150 130 40 --model tastgram_mfn --batch 256 --variants compile+channels_last \
      --pipeline ours || failed=1
  fi
  wants train && { short_training || failed=1; }
  if wants throughput; then
    throughput fast_tastgram_64 150 10 60 --model tastgram_mfn --batch 64 --variants compile+channels_last \
      --pipeline ours || failed=1
    for model in stgram_mfn stsasgram_mfn stgram_mfn_paper; do
      throughput "fast_$model" 150 10 60 --model "$model" --batch 256,64 --variants compile+channels_last \
        --pipeline ours || failed=1
    done
  fi
  finish "$failed"
}

main "$@"
