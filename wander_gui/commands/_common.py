"""Argument helpers shared by subcommands."""
from __future__ import annotations

from wander_gui.core.materials import DEFAULT_MATERIAL, MATERIALS, STACKINGS
from wander_gui.core.strain import STRAIN_MODES


def add_material(p, *, stacking: bool = True) -> None:
    p.add_argument("--material", default=DEFAULT_MATERIAL, help=f"one of {', '.join(MATERIALS)}")
    if stacking:
        p.add_argument("--stacking", default="R", choices=STACKINGS,
                       help="R: AA-like at 0° (near-0° twists); H: 2H-like at 0° (near-60° twists)")


def add_strain(p) -> None:
    p.add_argument("--strain", type=float, default=0.0, metavar="PERCENT",
                   help="strain on the top layer in percent (|s| <= 5)")
    p.add_argument("--strain-mode", default="biaxial", choices=STRAIN_MODES)
    p.add_argument("--strain-direction", type=float, default=0.0, metavar="DEG",
                   help="direction of uniaxial/shear strain, degrees from x")
    p.add_argument("--max-residual-strain", type=float, default=1.0, metavar="PERCENT",
                   help="largest accepted residual strain of a coincidence cell, percent")
