"""Can the inter-layer heads' own form fit the 6-10 A inter-layer hoppings of the labelled 1x1 cells?

Trains only the inter-layer networks of a frame-form HamiltonianModel (mos2-preview-10's
configuration, fresh weights) on the inter-layer elements of the 1x1 cells of the 18 A k-mesh rule,
with the same 12 held-out cells as inter_mlp_probe.py, and prints the MAE (meV, elements with
|H| > 1 meV) of the 6-10 A elements on the training and held-out cells during training, and of
all inter-layer distances on the held-out cells. Compare with inter_mlp_probe.py (a plain MLP on
the same elements). Model card, "What holds the Hamiltonian MAE". Run from the repository root:
    python pretrained/experiments/analysis/inter_head_probe.py --hidden 32 16 --steps 20000 --batch 1 --lr 1e-3
Options: --stacking / --local-vector (the model options of those names), --no-c3 (one crystal
frame instead of the average over the three C3-equivalent ones; breaks C3 covariance),
--mo-mo (Mo-Mo pairs only), --out-scale S (the inter-layer networks' outputs times S eV), --pairs-per-cell N (N random inter-layer pairs of each cell per step), --one-end (only the bottom atom's term G(i, j, r; F_i) on bottom->top pairs, no transposed partner
term), --l1 (absolute-error loss), --mev (squared loss in meV^2 rather than eV^2).
"""
import argparse
import glob
import json
import time
import types

import numpy as np
import torch

import wander_gui.ml.hamiltonian as hamiltonian
from wander_gui.dft.dataset import has_current_label
from wander_gui.ml.data import load_samples
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.registry import load_model
from wander_gui.ml.train_h import prepare

p = argparse.ArgumentParser()
p.add_argument("--hidden", type=int, nargs="+", default=[32, 16])
p.add_argument("--steps", type=int, default=3000)
p.add_argument("--batch", type=int, default=8, help="training cells per optimiser step")
p.add_argument("--mo-mo", action="store_true", help="only the Mo-Mo inter-layer pairs (compare inter_block_mlp_probe.py)")
p.add_argument("--out-scale", type=float, default=1.0,
               help="multiply the inter-layer networks' outputs by this (eV): outputs of order one")
p.add_argument("--pairs-per-cell", type=int, default=0, help="random inter-layer pairs of each cell per step (0: all)")
p.add_argument("--lr", type=float, default=3e-3, help="Adam, cosine decay to 1e-5 over the steps")
for flag in ("stacking", "local-vector", "no-c3", "one-end", "l1", "mev"):
    p.add_argument(f"--{flag}", action="store_true")
args = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
if args.no_c3:
    hamiltonian._c3_rotations = lambda dt, dev: [torch.eye(3, dtype=dt, device=dev)] * 3
ff = load_model("mos2-preview-10").ff
cfg = {**load_model("mos2-preview-10").hm.config, "hidden_inter": args.hidden, "inter_stacking": args.stacking,
       "local_vector": args.local_vector}
hm = HamiltonianModel(**cfg).double()
with torch.no_grad():  # the model's own output scale of the inter-layer networks
    hm.hop_scale[1].fill_(args.out_scale)
if args.one_end:  # _hoppings_frame calls _framed_end twice per block: keep the first, zero the second
    both_ends = HamiltonianModel._framed_end

    def first_end_only(self, nets, key, feats, own, other, vec, r, R, w, la, lb, F_own, D_own):
        self._second = not getattr(self, "_second", False)
        if not self._second:
            return torch.zeros(len(r), 2 * la + 1, 2 * lb + 1, dtype=vec.dtype)
        return both_ends(self, nets, key, feats, own, other, vec, r, R, w, la, lb, F_own, D_own)
    hm._framed_end = types.MethodType(first_end_only, hm)

names = []
for f in sorted(glob.glob("pretrained/dataset/chunks/*-1x1-*.npz")):
    ch = dict(np.load(f, allow_pickle=False))
    if "pair_values" in ch and has_current_label(ch) and json.loads(str(ch["meta"]))["settings"]["k_density"] == 18.0:
        names.append(f.split("/")[-1][:-4])
order = np.random.default_rng(0).permutation(len(names))  # as in inter_mlp_probe.py
held_out = {names[k] for k in order[:12]}
samples = {s.name: s for s in load_samples("pretrained/dataset")}
cells = []
for n in names:
    ex = prepare(samples[n], ff, 12.0, heads=hm)
    pi, pj, vec = ex.pairs
    inter = ex.layer[pi] != ex.layer[pj]
    if args.one_end:
        inter = inter & (ex.layer[pi] == 0)
    if args.mo_mo:
        inter = inter & (ex.species[pi] == 0) & (ex.species[pj] == 0)
    sel = torch.nonzero(inter).squeeze(1)
    cells.append((n, ex, sel, vec[sel].norm(dim=1)))
train = [c for c in cells if c[0] not in held_out]
test = [c for c in cells if c[0] in held_out]
print(f"{len(train)} training / {len(test)} held-out cells; inter hidden {args.hidden}", flush=True)
opt = torch.optim.Adam(hm.inter.parameters(), lr=args.lr)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=1e-5)


def predict(cell, n_pairs=0, rng=None):
    _, ex, sel, d = cell
    if n_pairs:
        pick = torch.as_tensor(rng.choice(len(sel), n_pairs, replace=False))
        sel, d = sel[pick], d[pick]
    pi, pj, vec = ex.pairs
    hop = hm.hoppings(ex.species, ex.layer, ex.Z[:, :0], pi[sel], pj[sel], vec[sel], frames=ex.frames)
    return hop, ex.hop_target[sel], ex.mask_hop[sel], d


def mae(part, lo=6.0, hi=10.0):
    err, cnt = 0.0, 0
    with torch.no_grad():
        for cell in part:
            hop, target, mask, d = predict(cell)
            within = (d >= lo) & (d < hi)
            pred, ref = hop[within][mask[within]], target[within][mask[within]]
            big = ref.abs() > 1e-3
            err += float((pred[big] - ref[big]).abs().sum())
            cnt += int(big.sum())
    return 1000 * err / cnt if cnt else float("nan")


t0 = time.time()
every = max(250, args.steps // 10)
for step in range(args.steps):
    opt.zero_grad()
    loss = 0
    rng = np.random.default_rng(step)
    for k in rng.choice(len(train), args.batch, replace=False):
        hop, target, mask, _ = predict(train[k], args.pairs_per_cell, rng)
        err = (hop - target)[mask] * (1000.0 if args.mev else 1.0)
        loss = loss + (err.abs().mean() if args.l1 else (err ** 2).mean())
    (loss / args.batch).backward()
    opt.step()
    sched.step()
    if step % every == 0 or step == args.steps - 1:
        print(f"step {step} ({time.time() - t0:.0f} s): 6-10 A train {mae(train):.2f}, held-out {mae(test):.2f} meV; "
              f"held-out < 6 A {mae(test, 0, 6):.2f}, all {mae(test, 0, 13):.2f}", flush=True)
