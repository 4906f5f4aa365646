#!/bin/bash
# The numbers and the σ-VAE figure in docs/objectives.md: each objective and likelihood trained on mnist-5k
# (4,000 train, 1,000 test digits), 10-D latent, 10 epochs, then `pyro-vae evaluate --is-samples 500`.
#   bash benchmarks/objectives.sh [OUT]   (OUT defaults to runs/objectives; ~6 min on a 2-core CPU;
#                                          a run whose OUT/NAME.json exists is kept: delete OUT to redo all)
set -e
out=${1:-runs/objectives}
mkdir -p "$out"
common="--dataset mnist-5k --latent-dim 10 --epochs 10 --seed 0 --quiet --overwrite"
run() {
    name=$1; shift
    if [ ! -f "$out/$name.json" ]; then
        pyro-vae train $common "$@" --out "$out/$name" > /dev/null
        pyro-vae evaluate "$out/$name" --is-samples 500 > "$out/$name.json"
    fi
    echo "$name: $*"
}
binary="--likelihood bernoulli --binarize dynamic"
run trace $binary
run iwae-5 $binary --elbo iwae --particles 5
run warmup-5 $binary --kl-warmup 5
run free-bits $binary --elbo meanfield --free-bits 0.5
run gaussian-c1 --likelihood gaussian --c 1
run gaussian-c0.1 --likelihood gaussian --c 0.1
run gaussian-c0.001 --likelihood gaussian --c 0.001
run gaussian-learned --likelihood gaussian-learned --c 1   # starts at c = 1 and learns it
run continuous-bernoulli --likelihood continuous-bernoulli
python - "$out" <<'PY'
import json, pathlib, sys

import torch

from pyro_vae import plots, runs

out = pathlib.Path(sys.argv[1])
print(f"{'run':20} {'test ELBO':>10} {'IS log p(x)':>12} {'bits/dim':>9} {'MSE':>7} {'KL':>6} {'active':>7} {'c':>7}")
for path in sorted(out.glob("*.json")):
    r = json.loads(path.read_text())
    active = sum(kl > 0.01 for kl in r["test_kl_per_dim"])
    c = f"{r['learned_c']:.4f}" if "learned_c" in r else ""
    print(f"{path.stem:20} {r['test_elbo']:10.2f} {r['test_log_likelihood']:12.2f} {r['test_bits_per_dim']:9.4f} "
          f"{r['test_reconstruction_mse']:7.2f} {r['test_kl']:6.2f} {active:7d} {c:>7}")

# σ-VAE: decoded prior draws of the fixed-c runs and of the learned-c run, the same z for all
names = ["gaussian-c1", "gaussian-c0.001", "gaussian-learned"]
grids = [plots.image_grid(plots.generate_samples(runs.load(out / n).model, 36, seed=1), [1, 28, 28], rows=6)
         for n in names]
fig, axes = plots.plt.subplots(1, 3, figsize=(10, 3.8))
for ax, grid, name in zip(axes, grids, names):
    c = json.loads((out / f"{name}.json").read_text()).get("learned_c")
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name} (learned c = {c:.3f})" if c else name, fontsize=10)
    ax.axis("off")
print(plots.save_figure(fig, out / "sigma-vae.png"))
PY
