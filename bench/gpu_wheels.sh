#!/usr/bin/env bash
# The Python packages the GPU machine lacks, as wheels that travel with the working tree (bench/wheels/,
# git-ignored) and a lockfile of their names and SHA-256 sums (bench/gpu_wheels.txt, committed).
#
# The GPU machine runs its own python3 (CPython 3.12, x86_64 Linux) with torch, torchaudio, numpy, scipy,
# pandas, scikit-learn, matplotlib, seaborn, tqdm, PyYAML, pytest, numba, llvmlite, joblib, msgpack,
# lazy-loader, requests, packaging, typing-extensions and nvidia-ml-py (pynvml) already there, and it reaches
# no package index. What asdlib and the check's scripts import beyond that, each with the reason:
#   soundfile  audio I/O (asdlib.data.audio, data.synth, experiment)   + cffi, pycparser (its C bindings)
#   librosa    the baseline's features (asdlib.evaluation.baseline, imported by the package), bench/naive.py
#              + audioread, decorator, pooch (+ platformdirs), soxr: librosa's needs the machine lacks
#   umap-learn asdlib.teaching.embeddings (lazily)                     + pynndescent
# Left behind on purpose: the Jupyter stack (IPython, ipywidgets, nbformat, nbclient, nbconvert, jupyter_client,
# zmq). asdlib imports them only inside the functions that display in, or run, notebooks (teaching.widgets,
# plots.training, series); no step of the GPU check calls those, and they would be 44 more wheels (17 MB,
# pyzmq, tornado and rpds-py compiled) beside these 11 (2.5 MB). tests/test_gpu_check.py fails when an import
# is neither on the GPU machine nor here, or when one of these is imported at module level.
# Versions: the ones the project's test suite runs with.
#
# Usage: bash bench/gpu_wheels.sh            download into bench/wheels/, rewrite bench/gpu_wheels.txt
#        bash bench/gpu_wheels.sh --check    check bench/wheels/ against bench/gpu_wheels.txt (offline)
# Environment: PYTHON (a Python with pip, any version; default python3).
# On the GPU machine bench/gpu_check.sh installs them first thing, offline; carry the folder with the call
# (the device tool's carry: ["bench/wheels"]).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=$REPO/bench/wheels
LOCK=$REPO/bench/gpu_wheels.txt
PY=${PYTHON:-python3}
PACKAGES=(soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
          librosa==0.11.0 audioread==3.1.0 decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.9 soxr==1.1.0
          umap-learn==0.5.12 pynndescent==0.7.0)
# CPython 3.12 on x86_64 Linux; pip matches each manylinux tag exactly, so name the glibc levels wheels use.
TARGET=(--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
        --platform any)

check() {  # every wheel of the lockfile is in bench/wheels with its sum, and nothing else is there
  [[ -f $LOCK ]] || { echo "gpu_wheels: no $LOCK; run bash bench/gpu_wheels.sh" >&2; return 1; }
  local listed extra
  listed=$(grep -v '^#' "$LOCK" | awk 'NF {print $2}' | sort)
  if ! (cd "$WHEELS" 2> /dev/null && grep -v '^#' "$LOCK" | sha256sum --check --quiet --strict -); then
    echo "gpu_wheels: bench/wheels does not match $LOCK; run bash bench/gpu_wheels.sh" >&2
    return 1
  fi
  extra=$(comm -13 <(echo "$listed") <(cd "$WHEELS" && ls -1 -- *.whl | sort))
  [[ -z $extra ]] || { echo "gpu_wheels: not in the lockfile (remove them): $extra" >&2; return 1; }
  echo "gpu_wheels: bench/wheels holds the $(echo "$listed" | wc -l) wheels of bench/gpu_wheels.txt" \
       "($(du -sh "$WHEELS" | cut -f1))"
}

download() {  # exactly PACKAGES, no dependencies (each needed one is named above), then the lockfile
  rm -rf "$WHEELS"
  mkdir -p "$WHEELS"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: "${TARGET[@]}" --dest "$WHEELS" "${PACKAGES[@]}"
  {
    echo "# Wheels for the GPU machine (CPython 3.12, manylinux x86_64): sha256 and file, as sha256sum writes."
    echo "# Written by bench/gpu_wheels.sh (which says why each is needed); the files go in bench/wheels/."
    (cd "$WHEELS" && sha256sum -- *.whl)
  } > "$LOCK"
  check
}

case ${1:-} in
  --check) check ;;
  "") download ;;
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
  *) echo "gpu_wheels: unknown argument $1 (see --help)" >&2; exit 64 ;;
esac
