"""DFT checks of your own small cell (GPAW PBE+D3 at the project's level of theory)."""
from __future__ import annotations

NAME = "dft"
HELP = "DFT single point / relaxation / validation cells (needs the [dft] extra)"


ML_HESSIAN_HELP = ("(re)start BFGS from the pretrained force field's curvature at the current structure "
                   "instead of an isotropic guess (soft interlayer modes converge in a few steps)")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for name, hlp in (("single-point", "energy, forces (+ --wannier: H and bands)"),
                      ("relax", "fixed-cell DFT relaxation (BFGS)")):
        q = sub.add_parser(name, help=hlp)
        q.add_argument("structure")
        q.add_argument("--out", default=None, help="output folder (default: <structure>_dft)")
        q.add_argument("--quick", action="store_true", help="cheap preview setting (250 eV, sparse k), labelled")
        if name == "single-point":
            q.add_argument("--wannier", action="store_true")
        else:
            q.add_argument("--fmax", type=float, default=0.02)
            q.add_argument("--steps", type=int, default=200)
            q.add_argument("--ml-hessian", action="store_true", help=ML_HESSIAN_HELP)
    v = sub.add_parser("validation", help="compute the twisted validation cells (resumable)")
    v.add_argument("--names", nargs="*", default=None)
    v.add_argument("--out", default="pretrained/validation",
                   help="results folder (one k-mesh rule per folder: pretrained/validation holds the cells "
                        "computed with the former ceil(12 Å / L) rule, pretrained/validation-k18 the current one)")
    v.add_argument("--work", default=None, help="scratch folder (default: work_dft/<name of --out>)")
    v.add_argument("--k-density", type=float, default=None, metavar="A",
                   help="k-mesh rule ceil(A / L) (default: the current rule; 12 resumes the former one)")
    v.add_argument("--no-wannier", action="store_true")
    v.add_argument("--relax", action="store_true",
                   help="also the fixed-cell DFT relaxation (fmax 0.02 eV/Å; hours, resumable)")
    v.add_argument("--ml-hessian", action="store_true", help=ML_HESSIAN_HELP)
    v.add_argument("--mesh-length", type=float, default=25.0,
                   help="Wannier mesh n = ceil(length / L) per direction (default 25 Å: 3x3 at 21.79°)")
    v.add_argument("--check-points", type=int, default=3, help="off-mesh k-points of the fidelity check")
    v.add_argument("--band-points", type=int, default=0,
                   help="points of a direct DFT band path G-M-K-G (default 0: none)")
    c = sub.add_parser("convergence", help="forces at 450 eV and on a 2x denser k mesh vs the stored reference")
    c.add_argument("names", nargs="+", help="dataset configurations, e.g. c0000-1x1-R")
    c.add_argument("--data", default="pretrained/dataset")
    c.add_argument("--variants", nargs="+", default=["ecut450", "k2x"], choices=["ecut450", "k2x", "k3x"],
                   help="ecut450: 450 eV; k2x / k3x: twice / three times the k-point density")


def run(args) -> int:
    from pathlib import Path

    from wander_gui.core.io import read_structure
    from wander_gui.dft.settings import QUICK, DFTSettings
    if args.action == "convergence":
        import json

        from wander_gui.dft.convergence import check_convergence
        res = check_convergence(args.names, dataset=args.data, variants=args.variants)
        for r in res.values():
            print(json.dumps(r))
        return 0
    if args.action == "validation":
        from wander_gui.dft.validation import run_validation
        work = args.work or str(Path("work_dft") / Path(args.out).name)
        vset = DFTSettings() if args.k_density is None else DFTSettings(k_density=args.k_density)
        from wander_gui.dft.relax import model_calculator
        run_validation(args.out, work, names=args.names, wannier=not args.no_wannier, relax=args.relax,
                       settings=vset, hessian_from=model_calculator() if args.ml_hessian else None,
                       wannier_mesh_length=args.mesh_length, n_check=args.check_points, bands_npoints=args.band_points)
        return 0
    atoms = read_structure(args.structure)
    settings = QUICK if args.quick else DFTSettings()
    out = Path(args.out or (Path(args.structure).with_suffix("").as_posix() + "_dft"))
    if args.action == "single-point":
        from wander_gui.dft.validation import single_point
        r = single_point(atoms, out, out / "work", settings=settings, wannier=args.wannier)
        print(f"[{settings.label()}] E = {float(r['energy']):.6f} eV, max |F| = {abs(r['forces']).max():.4f} eV/Å, "
              f"SCF {float(r['scf_seconds']):.0f} s -> {out}/result.npz")
        return 0
    from wander_gui.dft.relax import dft_relax, model_calculator
    r = dft_relax(atoms, out, settings=settings, fmax=args.fmax, steps=args.steps,
                  hessian_from=model_calculator() if args.ml_hessian else None)
    print(f"[{settings.label()}] {'converged' if r['converged'] else 'NOT converged'} in {r['steps']} steps, "
          f"fmax {r['fmax']:.4f} eV/Å -> {out}")
    return 0 if r["converged"] else 3
