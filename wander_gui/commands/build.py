"""Build a commensurate twisted bilayer and write it (extxyz keeps layer tags)."""
from __future__ import annotations

import numpy as np

from wander_gui.commands._common import add_material, add_strain

NAME = "build"
HELP = "build a twisted bilayer cell"


def add_arguments(p) -> None:
    add_material(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--angle", type=float, help="twist angle in degrees, in (0, 60)")
    g.add_argument("--mn", type=int, nargs=2, metavar=("M", "N"), help="exact (m, n) cell")
    add_strain(p)
    p.add_argument("--max-atoms", type=int, default=2000, help="atom budget (default 2000)")
    p.add_argument("--d-interlayer", type=float, default=None, help="metal–metal distance, Å")
    p.add_argument("--vacuum", type=float, default=15.0, help="vacuum thickness, Å (default 15)")
    p.add_argument("-o", "--output", required=True, help="output file (.extxyz, POSCAR, .vasp)")


def run(args) -> int:
    from wander_gui.core.builder import build_twisted
    from wander_gui.core.io import write_structure

    atoms = build_twisted(args.material, args.stacking, angle=args.angle,
                          mn=tuple(args.mn) if args.mn else None, strain_percent=args.strain,
                          strain_mode=args.strain_mode, strain_direction_deg=args.strain_direction,
                          max_atoms=args.max_atoms, max_residual_strain=args.max_residual_strain / 100,
                          d_interlayer=args.d_interlayer, vacuum=args.vacuum)
    write_structure(atoms, args.output)
    print(describe(atoms))
    print(f"wrote {args.output}")
    return 0


def describe(atoms) -> str:
    """Human-readable summary of a built cell."""
    info = atoms.info
    layer = atoms.arrays["layer"]
    st = np.array(info["strain_top"]).reshape(2, 2)
    eig = np.linalg.eigvalsh(st) * 100
    lines = [
        f"{info['material']} {info['stacking']}-stacked bilayer: {len(atoms)} atoms "
        f"({int(np.sum(layer == 0))} + {int(np.sum(layer == 1))} per layer)",
        f"twist: nominal {info['twist_deg']:.4f}°, effective {info['twist_eff_deg']:.4f}°"
        + (f", (m, n) = {tuple(info['mn'])}" if "mn" in info else ""),
        f"top-layer strain (principal, %): {eig[0]:+.4f}, {eig[1]:+.4f}; "
        f"residual beyond request: {100 * info['residual_strain_max']:.4f} %",
        f"cell: |a| = {np.linalg.norm(atoms.cell[0]):.4f} Å, |b| = {np.linalg.norm(atoms.cell[1]):.4f} Å, "
        f"c = {atoms.cell[2, 2]:.2f} Å, d(M–M) = {info['d_interlayer']:.3f} Å",
    ]
    return "\n".join(lines)
