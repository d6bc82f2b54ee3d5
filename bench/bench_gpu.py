"""GPU paths (run on a machine with a CUDA device): forces, H prediction and dense eigh on
the GPU vs the CPU of the same machine, ratios measured in one run.

Goals it informs (issues 3, 4, 6): forces for 1e4 atoms <= 2 s; H prediction ~1e4 atoms
<= 10 s; ~1e4-atom cell, 16 bands at Γ, M, K <= 60 s; 10^5 atoms within memory.
Models are freshly initialised (weights do not change the cost).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from wander_gui.core.builder import build_twisted
from wander_gui.electronic.hamiltonian import TBHamiltonian
from wander_gui.electronic.solvers import eigenpairs_at
from wander_gui.ml.calculator import WanderCalculator
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.predict import predict_blocks

sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def timed(fn, sync=True):
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if sync and torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=23, help="m of the (m, m+1) ~1e4-atom cell (23 -> 9942 atoms)")
    ap.add_argument("--huge", type=int, default=72, help="m of the ~1e5-atom cell for the force check (72 -> 94614 atoms)")
    ap.add_argument("--eigh-max", type=int, default=40000, help="largest H(k) to diagonalise densely")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA device")
    torch.manual_seed(0)
    ff = ForceField(m1=64, m2=8, embed=(32, 64), hidden=(64, 32)).double()  # the shipped model's size
    hm = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim, block_form="frame").double()
    rows = []
    cells = {"3.89 deg": build_twisted(mn=(8, 9)),
             "~1e4": build_twisted(mn=(args.big, args.big + 1), max_atoms=10**6),
             "~1e5": build_twisted(mn=(args.huge, args.huge + 1), max_atoms=10**7)}
    for name, a in cells.items():
        for dev, dtype in (("cpu", torch.float64), ("cuda", torch.float64), ("cuda", torch.float32)):
            if dev == "cpu" and len(a) > 20000:
                continue
            b = a.copy()
            b.calc = WanderCalculator(ff, device=dev, dtype=dtype)  # copies ff to the device / precision
            b.get_forces()  # warm-up (CUDA context, kernels)
            b.positions = b.positions + 1e-4
            t, _ = timed(b.get_forces)
            peak = torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else float("nan")
            rows.append((f"forces {name} ({len(a)} atoms, {dev}, {str(dtype)[6:]}); GPU peak {peak:.1f} GB", t,
                         2.0 if 5000 < len(a) < 20000 else None))
            torch.cuda.reset_peak_memory_stats()
    del b
    torch.cuda.empty_cache()
    ff = ff.double()
    for name in ("3.89 deg", "~1e4"):
        a = cells[name]
        for dev in ("cpu", "cuda"):
            predict_blocks(ff, hm, cells["3.89 deg"], device=dev)  # warm-up
            t, p = timed(lambda: predict_blocks(ff, hm, a, device=dev))
            rows.append((f"H prediction {name} ({len(a)} atoms, {len(p.ij)} blocks, {dev})", t,
                         2.0 if len(a) < 2000 else 10.0))
        tb = TBHamiltonian.from_pair_blocks(a, p.ij, p.shift, p.blocks, p.offsets, p.counts)
        n = int(p.counts.sum())
        if n > args.eigh_max:
            continue
        kpts = [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0)]
        sigma = 0.0
        t_gpu = 0.0
        try:
            for k in kpts:
                H = tb.hk(k)
                t, _ = timed(lambda: eigenpairs_at(H, nbands=16, sigma=sigma, solver="torch"))
                t_gpu += t
                torch.cuda.empty_cache()
        except torch.OutOfMemoryError as exc:
            rows.append((f"16 bands at Γ, M, K, GPU eigh ({n} orbitals): out of GPU memory ({exc})"[:160], 0.0, None))
            continue
        prec = "complex64" if n > 20000 else "complex128"
        rows.append((f"16 bands at Γ, M, K, GPU eigh {prec} ({n} orbitals)", t_gpu, 60.0 if n > 20000 else None))
        if n < 10000:
            H = tb.hk(kpts[0])
            t_cpu, _ = timed(lambda: eigenpairs_at(H, nbands=16, sigma=sigma, solver="dense"))
            rows.append((f"one k-point, LAPACK eigh on {torch.get_num_threads()} CPU threads ({n} orbitals)",
                         t_cpu, None))
            rows.append((f"60 k-points x 16 bands, GPU eigh estimate ({n} orbitals)", 20 * t_gpu, 60.0))
    report("bench_gpu.py", ["task", "time (s)", "goal (s)", "time/goal"],
           [[name, f"{t:.3f}", f"{goal}" if goal else "—", f"{t / goal:.3f}" if goal else "—"]
            for name, t, goal in rows],
           f"device: {torch.cuda.get_device_name(0)}")


if __name__ == "__main__":
    main()
