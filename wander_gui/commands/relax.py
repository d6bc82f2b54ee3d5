"""Relax a bilayer (fixed cell) with the pretrained force field."""
from __future__ import annotations

NAME = "relax"
HELP = "relax positions with the ML force field"


def add_arguments(p) -> None:
    from wander_gui.commands._model import add_model
    p.add_argument("structure")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--fmax", type=float, default=0.01, help="eV/Å (default 0.01)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--optimizer", default="fire", choices=["fire", "bfgs", "lbfgs", "paper"])
    p.add_argument("--traj", default=None, help="trajectory file (.traj or .extxyz)")
    p.add_argument("--fix-layer-inplane", type=int, default=None, choices=[0, 1])
    add_model(p)


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from wander_gui import backend
    from wander_gui.core.io import read_structure, write_structure
    from wander_gui.core.relax import relax
    atoms = read_structure(args.structure)
    calc = backend.calculator(model=args.model, model_dir=args.model_dir)
    bar = tqdm(total=args.steps, desc="relax", unit="step")

    def on_step(info):
        bar.update(1)
        bar.set_postfix(E=f"{info.energy:.4f}", fmax=f"{info.fmax:.4f}")
    from wander_gui.errors import RelaxationError
    try:
        res = relax(atoms, calc, optimizer=args.optimizer, fmax=args.fmax, steps=args.steps,
                    fix_layer_inplane=args.fix_layer_inplane, trajectory=args.traj, on_step=on_step)
    except RelaxationError as exc:  # keep the last good structure
        if exc.result is not None:
            write_structure(exc.result.atoms, args.output)
        print(f"wander relax: error: {exc} -> {args.output}", file=sys.stderr)
        return 4
    finally:
        bar.close()
    a = res.atoms
    a.set_array("forces", a.get_forces())
    a.info["energy"] = float(a.get_potential_energy())
    a.calc = None
    write_structure(a, args.output)
    s = res.summary()
    print(f"{'converged' if res.converged else 'NOT converged'} after {res.steps} steps: "
          f"E = {s['energy_eV']:.6f} eV, fmax = {s['fmax_eV_per_A']:.5f} eV/Å, corrugation "
          f"{s['corrugation_A'][0]:.3f} / {s['corrugation_A'][1]:.3f} Å -> {args.output}")
    if "interlayer_distance_A" in s:
        print("interlayer M–M distance: " + ", ".join(f"{k} {v:.3f} Å" for k, v in s["interlayer_distance_A"].items()))
    if not res.converged:
        print(f"wander relax: error: did not converge: fmax {s['fmax_eV_per_A']:.5f} > {args.fmax} eV/Å after {args.steps} steps "
              "(the last structure was written)", file=sys.stderr)
        return 3
    return 0
