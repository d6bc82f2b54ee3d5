"""List commensurate cells: the exact ladder, or candidates near an angle (+ strain)."""
from __future__ import annotations

import json

import numpy as np

from wander_gui.commands._common import add_material, add_strain

NAME = "angles"
HELP = "list commensurate twist angles / coincidence cells"


def add_arguments(p) -> None:
    add_material(p, stacking=False)
    p.add_argument("--max-atoms", type=int, default=2000, help="atom budget (default 2000)")
    p.add_argument("--near", type=float, default=None, metavar="DEG",
                   help="list cells nearest to this angle instead of the whole ladder")
    p.add_argument("-k", type=int, default=10, help="number of cells with --near (default 10)")
    add_strain(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    from wander_gui.core.coincidence import search_cells
    from wander_gui.core.moire import ladder_table, nearest_cells

    rows = []
    if args.near is None:
        for m, n, th, at in ladder_table(args.max_atoms):
            rows.append(dict(theta_deg=float(th), n_atoms=int(at), n_fu=[int(at) // 6] * 2,
                             mn=[int(m), int(n)], residual_strain_percent=0.0))
    elif args.strain == 0.0 and args.max_residual_strain == 0.0:
        for c in nearest_cells(args.near, max_atoms=args.max_atoms, k=args.k):
            rows.append(dict(theta_deg=c["theta_deg"], n_atoms=c["n_atoms"], n_fu=[c["n_atoms"] // 6] * 2,
                             mn=[c["m"], c["n"]], residual_strain_percent=0.0))
    else:
        for c in search_cells(args.near, material=args.material, strain_percent=args.strain,
                              strain_mode=args.strain_mode, strain_direction_deg=args.strain_direction,
                              max_atoms=args.max_atoms, max_residual_strain=args.max_residual_strain / 100,
                              k=args.k):
            rows.append(dict(theta_deg=c.theta_eff_deg, n_atoms=c.n_atoms, n_fu=list(c.n_fu),
                             S1=c.S1.ravel().tolist(), S2=c.S2.ravel().tolist(),
                             strain_top_percent=(100 * np.linalg.eigvalsh(c.strain_top)).round(4).tolist(),
                             residual_strain_percent=round(100 * c.max_residual_strain, 4)))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'theta (deg)':>12} {'atoms':>7} {'per layer':>12} {'residual %':>10}  cell")
    for r in rows:
        cell = f"(m,n)={tuple(r['mn'])}" if "mn" in r else f"S1={r['S1']} S2={r['S2']}"
        print(f"{r['theta_deg']:12.4f} {r['n_atoms']:7d} {str(tuple(r['n_fu'])):>12} "
              f"{r['residual_strain_percent']:10.4f}  {cell}")
    print(f"{len(rows)} cell(s)")
    return 0
