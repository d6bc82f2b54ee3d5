"""Relaxation speed with the shipped force field (issue: relaxation engine).

Goals (2-core machine): the 1302-atom 3.89° cell relaxes to fmax 0.01 eV/Å in <= 60 s; a ~1e4-atom
cell in <= 15 min; a 1e5-atom cell runs within 24 GB (a few FIRE steps, peak RSS). Also the force-evaluation cost from 1e3 to
1e5 atoms, with its scaling exponent fitted in this run (goal: linear), and forces for 1e4 atoms
(<= 2 s). Prints time/goal ratios and appends them to bench/RESULTS.md.

    python bench/bench_relax.py [--model-dir DIR] [--skip-10k]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

from wander_gui import backend
from wander_gui.core.builder import build_twisted
from wander_gui.core.relax import relax

sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--skip-10k", action="store_true", help="skip the ~1e4-atom relaxation (up to 15+ min)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--max-m", type=int, default=72, help="largest (m, m+1) cell of the force-cost scan "
                    "(72: 94,614 atoms; needs a quiet machine with most of its 24 GB free)")
    ap.add_argument("--big-steps", type=int, default=5, help="FIRE steps on the largest cell (memory check)")
    args = ap.parse_args()
    calc = backend.calculator(model_dir=args.model_dir)
    name = backend.get_model(None, args.model_dir).name
    rows = []
    # force cost vs size: (m, m+1) cells of 1302 ... ~1e5 atoms
    sizes, times = [], []
    for m in [m for m in (8, 23, 40, 72) if m <= args.max_m]:
        a = build_twisted(mn=(m, m + 1), max_atoms=200_000)
        a.calc = calc
        a.get_forces()  # warm-up (neighbour list, allocation)
        a.positions[0, 2] += 1e-4
        t = time.perf_counter()
        a.get_forces()
        dt = time.perf_counter() - t
        sizes.append(len(a))
        times.append(dt)
        goal = 2.0 if 5000 < len(a) < 20000 else None
        rows.append([f"forces ({len(a)} atoms)", f"{dt:.3f}", f"{goal}" if goal else "—",
                     f"{dt / goal:.2f}" if goal else "—", f"{peak_rss_gb():.1f}"])
    slope = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
    if args.big_steps and sizes[-1] > 50_000:  # 1e5 atoms: a few relaxation steps within 24 GB
        a = build_twisted(mn=(args.max_m, args.max_m + 1), max_atoms=200_000)
        t = time.perf_counter()
        res = relax(a, calc, optimizer="fire", fmax=0.01, steps=args.big_steps)
        dt = time.perf_counter() - t
        rows.append([f"relax {len(a)} atoms, {res.steps} FIRE steps (per-step maps included)", f"{dt:.1f}",
                     "—", "—", f"{peak_rss_gb():.1f}"])
    cells = [("3.89° R", (8, 9), 60.0)] + ([] if args.skip_10k else [("~1e4 atoms R", (23, 24), 900.0)])
    for label, mn, goal in cells:
        a = build_twisted(mn=mn, max_atoms=200_000)
        t = time.perf_counter()
        res = relax(a, calc, optimizer="fire", fmax=0.01, steps=args.steps)
        dt = time.perf_counter() - t
        s = res.summary()
        rows.append([f"relax {label} ({len(a)} atoms) to fmax 0.01: {res.steps} steps, "
                     f"{'converged' if res.converged else 'NOT converged'}, corrugation "
                     f"{'/'.join(f'{c:.3f}' for c in s['corrugation_A'])} Å", f"{dt:.1f}", f"{goal:.0f}",
                     f"{dt / goal:.2f}", f"{peak_rss_gb():.1f}"])
    report("bench_relax.py", ["task", "time (s)", "goal (s)", "time/goal", "peak RSS (GB)"], rows,
           f"model {name}; force cost ∝ N^{slope:.2f} from {sizes[0]} to {sizes[-1]} atoms (goal: linear)")


if __name__ == "__main__":
    main()
