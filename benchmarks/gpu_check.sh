#!/usr/bin/env bash
# The GPU check (issue 22, item 5): at most 5 minutes on one CUDA GPU.
#
#   bash benchmarks/gpu_check.sh --prepare   here, with the package index and Fashion-MNIST at hand: fills the
#                                           ignored folder .gpu-check/ (~31 MB) with the wheels a bare GPU
#                                           machine lacks (pyro-ppl, pyro-api) and Fashion-MNIST's IDX files
#   bash benchmarks/gpu_check.sh             on the GPU machine, from the repository root, .gpu-check/ carried
#
# On the GPU machine it
#   1. takes .venv if its torch sees a GPU, else makes .gpu-check/venv that sees the packages of the machine's
#      python3 (its CUDA torch; $PYTHON3 to pick another), adds pyro-ppl from .gpu-check/wheels and this
#      checkout (editable, no deps);
#   2. runs the tests that need CUDA (tests/test_cuda.py: a VAE epoch on the GPU, no host sync per step,
#      resume on the GPU); a test skipped there counts as a failure;
#   3. times one Fashion-MNIST epoch of fit against the hand-written loop on the GPU (benchmarks/train_epoch.py
#      --device cuda, paired rounds) and prints the ratio; the table goes to $OUT/gpu_check.md (or .gpu-check/).
# Exit status: 0 when every stage passed; the first failing stage's otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=.gpu-check
STARTED=$SECONDS
BUDGET=${BUDGET:-300}  # seconds for the whole check: every command below gets what is left of it
stage() { echo "== $1 (at $((SECONDS - STARTED)) s)"; }
left() { local n=$((BUDGET - (SECONDS - STARTED))); echo $((n > 1 ? n : 1)); }

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p "$HERE/wheels" "$HERE/fashion-mnist"
    PY=${PYTHON:-.venv/bin/python}
    version=$("$PY" -c "import pyro; print(pyro.__version__)")
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$HERE/wheels" \
        "pyro-ppl==$version" pyro-api
    cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$HERE/fashion-mnist/"
    du -sh "$HERE"/*
    echo "carry $HERE to the GPU machine, e.g. run(command='bash benchmarks/gpu_check.sh', carry=['$HERE'])"
    exit 0
fi

stage "1. the virtual environment"
mkdir -p "$HERE"
PY=.venv/bin/python
if ! timeout "$(left)" "$PY" -c "import pyro_vae, torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    PY=$HERE/venv/bin/python
    if ! timeout "$(left)" "$PY" -c "import pyro_vae" 2>/dev/null; then
        BASE=${PYTHON3:-python3}  # the image's python3, itself a venv: --system-site-packages would not see its torch
        "$BASE" -m venv --without-pip "$HERE/venv"  # pip, setuptools: the image's, through zz_base.pth
        "$BASE" -c "import site; print('\n'.join(site.getsitepackages()))" \
            > "$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_base.pth"
        "$PY" -c "import pyro" 2>/dev/null || timeout "$(left)" "$PY" -m pip install --quiet --disable-pip-version-check \
            --no-index --no-deps --find-links "$HERE/wheels" pyro-ppl pyro-api
        timeout "$(left)" "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    fi
fi
"$PY" -c "import sys, torch, pyro
torch.cuda.is_available() or sys.exit('gpu_check: no CUDA GPU visible; this check needs one')
print(f'python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), pyro {pyro.__version__}, '
      f'{torch.cuda.get_device_name(0)}')"

stage "2. the tests that need CUDA"
# digits comes with scikit-learn: nothing to download; -rs lists skips, and a skip fails the check
timeout "$(left)" "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py | tee "$HERE/tests.log"
if grep -q "skipped" "$HERE/tests.log"; then echo "a CUDA test was skipped on a GPU machine"; exit 1; fi

stage "3. one Fashion-MNIST epoch on the GPU: fit against the hand-written loop"
[[ -d "$HERE/fashion-mnist" ]] && export FASHION_MNIST_DIR=$HERE/fashion-mnist
REPORT=${OUT:-$HERE}/gpu_check.md
mkdir -p "$(dirname "$REPORT")"
# 2 rounds of every GPU variant, then to 10 rounds for fit's two ELBOs (pairs with the hand loop, order swapped)
timeout "$(left)" "$PY" benchmarks/train_epoch.py --device cuda --likelihoods bernoulli --repeats 2 --target-rounds 10 \
    --json "$HERE/epoch.json" > "$REPORT"
cat "$REPORT"
"$PY" - "$HERE/epoch.json" <<'EOF'
import json, sys
sys.path.insert(0, "benchmarks")
from train_epoch import TARGETS

results = json.load(open(sys.argv[1]))["bernoulli"]
for name in TARGETS:
    r = results[name]
    low, high, cover = r.get("interval_wall") or (float("nan"),) * 3
    print(f"GPU, one Fashion-MNIST epoch (bernoulli): {name} / hand-written loop = {r['ratio_wall']:.2f}x "
          f"({cover:.0%} interval {low:.2f}-{high:.2f}; median {r['wall']:.2f} s against "
          f"{results['hand-written PyTorch']['wall']:.2f} s)")
EOF
echo "gpu_check passed in $((SECONDS - STARTED)) s"
