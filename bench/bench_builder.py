"""Builder speed: a ~10^5-atom exact cell, and candidate listing for angle + strain.

Prints ratios measured in this run and appends a line to bench/RESULTS.md.
Goals (issue 2): build a ~10^5-atom exact cell <= 5 s; list candidates for an arbitrary
angle + strain <= 1 s (2-core machine).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from wander_gui.core.builder import build_twisted
from wander_gui.core.coincidence import search_cells
from wander_gui.core.moire import nearest_cells

sys.path.insert(0, str(Path(__file__).parent))
from _report import report  # noqa: E402


def best_of(fn, n=3):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def main():
    t_big, atoms = best_of(lambda: build_twisted(angle=0.5, max_atoms=100_000))
    t_list, cells = best_of(lambda: nearest_cells(3.3, max_atoms=100_000, k=10))
    t_search, found = best_of(lambda: search_cells(3.3, strain_percent=0.7, strain_mode="uniaxial",
                                                   strain_direction_deg=20, max_atoms=5000,
                                                   max_residual_strain=0.005))
    t_search_big, _ = best_of(lambda: search_cells(1.1, strain_percent=-0.4, max_atoms=100_000,
                                                   max_residual_strain=0.003))
    rows = [
        ("build exact 0.50 deg cell", f"{len(atoms)} atoms", t_big, 5.0),
        ("list exact cells near 3.3 deg (budget 1e5)", f"{len(cells)} cells", t_list, 1.0),
        ("coincidence search 3.3 deg + 0.7 % uniaxial (budget 5000)", f"{len(found)} cells", t_search, 1.0),
        ("coincidence search 1.1 deg - 0.4 % biaxial (budget 1e5)", "", t_search_big, 1.0),
    ]
    report("bench_builder.py", ["task", "size", "time (s)", "goal (s)", "time/goal"],
           [[name, size, f"{t:.3f}", f"{goal:.1f}", f"{t / goal:.3f}"] for name, size, t, goal in rows])

if __name__ == "__main__":
    main()
