"""Predicted Wannier Hamiltonian in Wannier90 _hr.dat format.

Orbital order: atom by atom (file order); metal d (z², xz, yz, x²−y², xy), chalcogen
p (x, y, z); energies in eV relative to the vacuum level (the DFT reference frame).
"""
from __future__ import annotations

NAME = "hamiltonian"
HELP = "predicted H(R) as Wannier90 seed_hr.dat"


def add_arguments(p) -> None:
    from wander_gui.commands._model import add_model
    p.add_argument("structure")
    p.add_argument("-o", "--output", required=True, help="seed_hr.dat")
    p.add_argument("--centres", action="store_true", help="also write seed_centres.xyz (orbital centres)")
    p.add_argument("--spread", default=None, metavar="SPREAD_hr.dat",
                   help="models with a heads ensemble: also write the members' standard deviation of every "
                        "element (eV, the prediction's uncertainty) in the same format")
    add_model(p)


def run(args) -> int:
    from wander_gui import backend
    from wander_gui.core.io import read_structure, write_hr
    atoms = read_structure(args.structure)
    tb = backend.predict_tb(atoms, model=args.model, model_dir=args.model_dir, with_spread=bool(args.spread))
    if args.spread:
        tb, spread = tb
    hr = tb.to_wannier_hr()
    write_hr(hr, args.output, header="WANDER predicted Hamiltonian (eV, vacuum level = 0)")
    print(f"{tb.n_orb} orbitals, {len(hr.R_Rc)} lattice vectors -> {args.output}")
    if args.spread:
        write_hr(spread.to_wannier_hr(), args.spread,
                 header="WANDER heads-ensemble spread: members' standard deviation of each element (eV)")
        print(f"ensemble spread -> {args.spread}")
    if args.centres:
        path = args.output.replace("_hr.dat", "") + "_centres.xyz"
        with open(path, "w") as fh:
            fh.write(f"{tb.n_orb}\norbital centres (Å)\n")
            for x in tb.tau_mv:
                fh.write(f"X {x[0]:14.8f} {x[1]:14.8f} {x[2]:14.8f}\n")
        print(f"centres -> {path}")
    return 0
