"""Speed of the ML path: forces, Hamiltonian prediction and bands (weights do not affect speed).

Goals (issues 3, 4, 6; 2-core machine): H prediction 1302 atoms <= 2 s and ~1e4 atoms <= 10 s;
forces for 1e4 atoms <= 2 s; 16 bands of the 1302-atom cell at 60 k-points <= 60 s;
sparse shift-invert >= 20x faster than dense eigh at >= 5000 orbitals.
Prints ratios measured in this run and appends them to bench/RESULTS.md.
Forces and H prediction use freshly initialised models of the shipped size (weights do not
change their cost); the band solvers need a real gap, so they use the shipped model's H.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wander_gui.core.builder import build_twisted
from wander_gui import backend
from wander_gui.electronic.bands import n_valence_total
from wander_gui.electronic.solvers import eigenvalues_at, find_gap_sigma
from wander_gui.ml.calculator import WanderCalculator
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel, HeadsEnsemble, heads_members
from wander_gui.ml.predict import predict_blocks
from wander_gui.ml.registry import load_model

sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=20, help="m of the (m, m+1) 'large' cell (20 -> 7566 atoms)")
    ap.add_argument("--solver-m", type=int, default=9, help="m of the (m, m+1) cell of the solver comparison "
                    "(9 -> 1626 atoms, 5962 orbitals)")
    args = ap.parse_args()
    torch.manual_seed(0)
    ff = ForceField(m1=64, m2=8, embed=(32, 64), hidden=(64, 32)).double()  # the shipped model's size
    hm = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim, block_form="frame").double()
    # the same heads plus the layer-dipole on-site potential (mos2-preview-7): O(N^2) pair sum
    hm_dipole = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim, block_form="frame",
                                 layer_dipole=True).double()
    # the shipped heads' configuration (inputs, frames), fresh weights: what the app runs
    shipped_model = load_model()
    n_members = len(heads_members(shipped_model.hm))  # a heads ensemble costs one prediction per member
    hm_shipped = HamiltonianModel(**shipped_model.hm.config).double()
    if n_members > 1:
        hm_shipped = HeadsEnsemble([hm_shipped] + [HamiltonianModel(**shipped_model.hm.config).double()
                                                   for _ in range(n_members - 1)])
    rows = []
    cells = {"3.89 deg": build_twisted(mn=(8, 9)), "large": build_twisted(mn=(args.big, args.big + 1), max_atoms=10**5)}
    for name, a in cells.items():
        for dtype in (torch.float32, torch.float64):
            calc = WanderCalculator(ff, device="cpu", dtype=dtype)
            b = a.copy()
            b.calc = calc
            t, _ = timed(b.get_forces)
            rows.append((f"forces {name} ({len(a)} atoms, {str(dtype)[6:]})", t, 2.0 if len(a) > 5000 else None))
        t, p = timed(lambda: predict_blocks(ff, hm, a))
        rows.append((f"H prediction {name} ({len(a)} atoms, {len(p.ij)} blocks)", t, 2.0 if len(a) < 2000 else 10.0))
        t, p = timed(lambda: predict_blocks(ff, hm_dipole, a))
        rows.append((f"H prediction with layer dipole {name} ({len(a)} atoms)", t, 2.0 if len(a) < 2000 else 10.0))
        t, p = timed(lambda: predict_blocks(ff, hm_shipped, a))
        rows.append((f"H prediction, {shipped_model.name} heads' configuration ({n_members} member{'s' if n_members > 1 else ''}) {name} ({len(a)} atoms)", t,
                     2.0 if len(a) < 2000 else 10.0))
    a = build_twisted(mn=(args.solver_m, args.solver_m + 1))
    tb = backend.predict_tb(a)  # the shipped model: a real gap for the shift
    t_sigma, sigma = timed(lambda: find_gap_sigma(tb, n_valence_total(tb.n_orb)))
    H = tb.hk([0.1, 0.2, 0.0])
    n = H.shape[0]
    t_sparse, e_sparse = timed(lambda: eigenvalues_at(H, nbands=16, sigma=sigma, solver="sparse"))
    t_dense, e_dense = timed(lambda: eigenvalues_at(H, nbands=16, sigma=sigma, solver="dense"))
    err = float(np.abs(e_sparse - e_dense).max())
    rows.append((f"mid-gap shift, inertia counts at G, M, K ({len(a)} atoms, {n} orbitals)", t_sigma, None))
    rows.append((f"16 eigenvalues, sparse shift-invert ({n} orbitals, H(k) {H.nnz / n**2:.0%} filled)", t_sparse, None))
    rows.append((f"16 eigenvalues, dense eigh ({n} orbitals; max difference {err * 1e3:.1e} meV)", t_dense, None))
    rows.append((f"60 k-points x 16 bands estimate (sparse, {n} orbitals)", t_sigma + 60 * t_sparse,
                 60.0 if args.solver_m == 8 else None))  # the goal is for the 1302-atom cell
    report("bench_ml.py", ["task", "time (s)", "goal (s)", "time/goal"],
           [[name, f"{t:.3f}", f"{goal}" if goal else "—", f"{t / goal:.3f}" if goal else "—"]
            for name, t, goal in rows],
           f"sparse vs dense at {n} orbitals: {t_dense / t_sparse:.1f}x faster (goal >= 20x at >= 5000)")

if __name__ == "__main__":
    main()
