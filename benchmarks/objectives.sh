#!/bin/bash
# The numbers in docs/objectives.md: each objective and likelihood trained on mnist-5k (4,000 train,
# 1,000 test digits), 10-D latent, 10 epochs, then `pyro-vae evaluate --is-samples 500`.
#   bash benchmarks/objectives.sh [OUT]      (OUT defaults to runs/objectives; ~1 h on a 2-core CPU)
set -e
out=${1:-runs/objectives}
mkdir -p "$out"
common="--dataset mnist-5k --latent-dim 10 --epochs 10 --seed 0 --quiet --overwrite"
run() {
    name=$1; shift
    pyro-vae train $common "$@" --out "$out/$name" > /dev/null
    pyro-vae evaluate "$out/$name" --is-samples 500 > "$out/$name.json"
    echo "$name $*"
}
binary="--likelihood bernoulli --binarize dynamic"
run trace $binary
run iwae-5 $binary --elbo iwae --particles 5
run warmup-5 $binary --kl-warmup 5
run free-bits $binary --elbo meanfield --free-bits 0.5
run gaussian-c0.1 --likelihood gaussian --c 0.1
run gaussian-learned --likelihood gaussian-learned
python - "$out" <<'PY'
import json, pathlib, sys
print(f"{'run':18} {'test ELBO':>10} {'IS log p(x)':>12} {'bits/dim':>9} {'active dims':>12} {'learned c':>10}")
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    r = json.loads(path.read_text())
    active = sum(kl > 0.01 for kl in r["test_kl_per_dim"])
    c = f"{r['learned_c']:.4f}" if "learned_c" in r else ""
    print(f"{path.stem:18} {r['test_elbo']:10.2f} {r['test_log_likelihood']:12.2f} {r['test_bits_per_dim']:9.4f} "
          f"{active:12d} {c:>10}")
PY
