#!/usr/bin/env bash
# The GPU check on a machine with Python 3.12, numpy, OpenCV, Pillow and onnx but no
# onnxruntime-gpu, no TensorFlow, no Qt and no registry (see README, "GPU check").
#
#   benchmarks/gpu_check.sh prepare      here: onnxruntime-gpu, pydicom, isal wheels into .gpu/,
#                                        the big wheel split into .gpu/p00 ... p04 (52 MB each)
#   benchmarks/gpu_check.sh part         there, once per carried .gpu/pN: keep it in /tmp/parts
#   benchmarks/gpu_check.sh run [ARGS]   there: join the parts, install into /tmp/site, run
#                                        python -m benchmarks.gpu_check ARGS (JSON into $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
ORT=onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
PARTS=/tmp/parts
SITE=/tmp/site
PY="${PYTHON:-python3}"  # the interpreter that has numpy, OpenCV, Pillow and onnx

keep_parts() {
    mkdir -p "$PARTS"
    for f in .gpu/p*/part.* .gpu/p*/*.whl; do
        [ -f "$f" ] && cp -n "$f" "$PARTS"/
    done
    echo "gpu_check: parts kept: $(ls "$PARTS" | tr '\n' ' ')"
}

case "${1:-run}" in
prepare)
    mkdir -p .gpu/dl
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 -d .gpu/dl \
        onnxruntime-gpu==1.31.1 pydicom 'isal>=1.6,<2'
    (cd .gpu/dl && split -b 52m -d "$ORT" part.)
    for f in .gpu/dl/part.*; do
        d=".gpu/p${f##*part.}"
        mkdir -p "$d" && mv "$f" "$d"/
    done
    # the small wheels ride with the last (shortest) part: each call carries at most 64 MiB,
    # the tracked tree included
    last=$(ls -d .gpu/p* | sort | tail -n 1)
    mv .gpu/dl/pydicom-*.whl .gpu/dl/isal-*.whl "$last"/ && rm -rf .gpu/dl
    ls -R .gpu
    ;;
part)
    keep_parts
    ;;
run)
    shift || true
    keep_parts
    if [ ! -d "$SITE/onnxruntime" ]; then
        if ls "$PARTS"/part.* >/dev/null 2>&1; then
            cat "$PARTS"/part.* >"/tmp/$ORT"
            "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "/tmp/$ORT" \
                || echo "gpu_check: onnxruntime-gpu did not install (missing part?)"
        else
            echo "gpu_check: no onnxruntime-gpu parts here: the CPU onnxruntime is used"
        fi
        for w in "$PARTS"/pydicom-*.whl "$PARTS"/isal-*.whl; do
            [ -f "$w" ] && "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "$w"
        done
    fi
    export OUT="${OUT:-/tmp}"
    PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" \
        "$PY" -m benchmarks.gpu_check --json "$OUT/gpu-check.json" "$@"
    ;;
*)
    echo "usage: $0 prepare | part | run [--phantoms N] [--films N] [--scaling N]" >&2
    exit 2
    ;;
esac
