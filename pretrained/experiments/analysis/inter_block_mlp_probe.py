"""Mo-Mo inter-layer hoppings: can a small network that outputs the whole 5x5 block fit them?

On the 1x1 cells of the 18 A k-mesh rule (same 12 held-out cells as inter_mlp_probe.py), an MLP
(64, 32) maps (pair vector in atom i's crystal frame, |r|, stacking, layer of i; standardised) of
every inter-layer Mo-Mo pair within [--min, --max) A to its 25 block elements (meV, global frame),
and the per-element form (the same inputs plus the orbital pair, one element out) for comparison;
prints the MAE (meV, elements with |H| > 1 meV) of the 6-10 A pairs. Model card, "What holds the
Hamiltonian MAE". Run from the repository root (~5 min on one core):
    python pretrained/experiments/analysis/inter_block_mlp_probe.py [--min 6 --max 10] [--epochs 300]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

p = argparse.ArgumentParser()
p.add_argument("--min", type=float, default=6.0)
p.add_argument("--max", type=float, default=10.0)
p.add_argument("--epochs", type=int, default=300)
args = p.parse_args()
# the data of inter_mlp_probe.py (pair vector in the crystal frame, no cell inputs), other distance window
sys.path.insert(0, str(Path(__file__).parent))
from inter_mlp_probe import load_cells  # noqa: E402

cells = load_cells(no_cell=True, frame_inputs=True, d_min=args.min, d_max=args.max)
order = np.random.default_rng(0).permutation(len(cells))
held_out, pool = [cells[k] for k in order[:12]], [cells[k] for k in order[12:]]
# columns: r in i's frame (3), |r|, stacking, i is Mo, j is Mo, layer of i, orbital one-hots (16);
# the 25 rows of a Mo-Mo pair are consecutive (orbital of i major)


def mo_mo(cs):
    X = np.concatenate([c[2] for c in cs])
    Y = 1000 * np.concatenate([c[3] for c in cs])
    m = (X[:, 5] == 1) & (X[:, 6] == 1)
    return X[m], Y[m]


def mae(pred, ref, dist):
    sel = np.repeat((dist >= 6) & (dist < 10), pred.size // len(dist)).reshape(pred.shape)
    big = sel & (np.abs(ref) > 1)
    return np.abs(pred - ref)[big].mean()


X, Y = mo_mo(pool)
Xt, Yt = mo_mo(held_out)
Xb, Yb, Xbt, Ybt = X[::25, :8], Y.reshape(-1, 25), Xt[::25, :8], Yt.reshape(-1, 25)
print(f"{len(Xb)} training / {len(Xbt)} held-out Mo-Mo pairs in [{args.min}, {args.max}) A; zero MAE 6-10 A "
      f"held-out {mae(np.zeros_like(Ybt), Ybt, Xbt[:, 3]):.2f} meV", flush=True)
sb = StandardScaler().fit(Xb)
block = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=args.epochs, random_state=0, batch_size=32)
block.fit(sb.transform(Xb), Yb)
steps = args.epochs * -(-len(Xb) // 32)
print(f"block out, {steps} steps of 32 pairs: 6-10 A train {mae(block.predict(sb.transform(Xb)), Yb, Xb[:, 3]):.2f}, "
      f"held-out {mae(block.predict(sb.transform(Xbt)), Ybt, Xbt[:, 3]):.2f} meV", flush=True)
se = StandardScaler().fit(X)
element = MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=60, random_state=0, batch_size=256)
element.fit(se.transform(X), Y)
print(f"element out (orbital pair as input), 60 epochs of 256: 6-10 A train "
      f"{mae(element.predict(se.transform(X)), Y, X[:, 3]):.2f}, held-out {mae(element.predict(se.transform(Xt)), Yt, Xt[:, 3]):.2f} meV")
