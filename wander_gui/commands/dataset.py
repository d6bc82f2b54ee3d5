"""Generate, inspect and validate the project's DFT dataset (PBE+D3, GPAW)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NAME = "dataset"
HELP = "DFT dataset: generate | info | validate | vacuum-steps | import-wannier90"
DEFAULT_OUT = "pretrained/dataset"
DEFAULT_WORK = "work_dft"
FINETUNE_OUT = "pretrained/finetune"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    g = sub.add_parser("generate", help="label plan configurations (resumable, skips finished ones)")
    g.add_argument("--out", default=None, help=f"dataset folder (default {DEFAULT_OUT}; {FINETUNE_OUT} "
                   "with --plan finetune or finetune-equilibrium)")
    g.add_argument("--work", default=DEFAULT_WORK, help="scratch folder (locks, logs, densities)")
    from wander_gui.dft.sampling import PLAN_PREFIX
    g.add_argument("--plan", choices=list(PLAN_PREFIX),
                   default="bilayers",
                   help="bilayers: the untwisted training plan; equilibrium: the same bilayers with small "
                        "displacements (σ ≤ 0.02 Å; Wannier H on the 1×1 cells); registry: pristine unstrained "
                        "1×1 bilayers at random translations and near-equilibrium distances, with Wannier H; "
                        "finetune: perturbed 21.79° cells kept for fine-tuning (energies and forces); "
                        "finetune-equilibrium: 21.79° cells with a random interlayer translation and small displacements (σ ≤ 0.02 Å), kept for fine-tuning")
    g.add_argument("-n", "--n-configs", type=int, default=300, help="size of the plan to cover")
    g.add_argument("--start", type=int, default=0)
    g.add_argument("--workers", type=int, default=1, help="parallel single-threaded workers")
    g.add_argument("--max-supercell", type=int, default=3)
    g.add_argument("--held-out-first", action="store_true",
                   help="label the validation/test-split configurations first (training seed 0)")
    g.add_argument("--no-wannier", action="store_true",
                   help="energies and forces only (densities kept for a later Wannier pass)")
    g.add_argument("--twisted-wannier", action="store_true",
                   help="with --plan finetune or finetune-equilibrium: also the Wannier H of each twisted cell "
                        "(the validation cells' mesh, 3×3 at 21.79°; 2–3.5 h of one core per cell, resumable after "
                        "each non-self-consistent run; finished cells are completed from their stored density)")
    g.add_argument("--k-density", type=float, default=None, metavar="A",
                   help="k-mesh rule n_k = ceil(A / L) (default: the current rule, 18 Å); the fine-tuning "
                        "cells use 12 (2×2 k for 21.79°: their forces agree with the 18 Å rule to "
                        "0.7 meV/Å MAE, README 'DFT data')")
    i = sub.add_parser("info", help="summary of a dataset")
    i.add_argument("--out", default=DEFAULT_OUT)
    i.add_argument("--json", action="store_true")
    v = sub.add_parser("validate", help="check every chunk (shapes, finite values, units)")
    v.add_argument("--out", default=DEFAULT_OUT)
    s = sub.add_parser("vacuum-steps",
                       help="add the dipole step between the two vacuum levels to finished chunks and "
                            "validation cells, from their stored densities (no new SCF)")
    s.add_argument("--out", nargs="+", default=[DEFAULT_OUT, FINETUNE_OUT], help="dataset folders")
    s.add_argument("--work", default=DEFAULT_WORK, help="scratch folder holding gpw/ (densities)")
    s.add_argument("--validation", default="pretrained/validation",
                   help="validation results (densities in WORK/validation/NAME/scf.gpw)")
    c = sub.add_parser("compare", help="how two DFT labels of the same structures differ (e.g. two k-mesh "
                                       "rules): forces per bilayer site, energy")
    c.add_argument("a", help="chunk .npz, or a dataset folder (its chunks with a namesake in B)")
    c.add_argument("b", help="chunk .npz or dataset folder; differences are A minus B")
    c.add_argument("--json", action="store_true")
    w = sub.add_parser("import-wannier90",
                       help="add a Wannier90 calculation from another code (QE, VASP, ...) as a training chunk")
    w.add_argument("structure", help="structure (extxyz with DFT energy/forces, POSCAR, ...)")
    w.add_argument("--hr", required=True, help="seed_hr.dat (Mo:d; S:p projections)")
    w.add_argument("--centres", required=True, help="seed_centres.xyz (write_xyz = .true.)")
    w.add_argument("--vacuum-level", type=float, required=True, metavar="EV",
                   help="vacuum level in that calculation's energy frame (becomes the zero)")
    w.add_argument("--name", default=None, help="chunk name (default: the seed)")
    w.add_argument("--r-max", type=float, default=12.0, help="keep pair blocks up to this distance, Å")
    w.add_argument("--out", default="my_dataset", help="dataset directory to add the chunk to")


def run(args) -> int:
    if args.action == "generate":
        return _generate(args)
    if args.action == "info":
        from wander_gui.dft.dataset import dataset_info
        info = dataset_info(args.out)
        print(json.dumps(info, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
        return 0
    if args.action == "vacuum-steps":
        from wander_gui.dft.dataset import add_vacuum_steps
        from wander_gui.dft.validation import add_validation_vacuum_steps
        for out in args.out:
            rep = add_vacuum_steps(out, args.work, progress=True)
            print(f"{out}: added {rep['added']}; no stored density: {len(rep['missing_density'])}; "
                  f"locked by a worker (rerun later): {len(rep['locked'])}")
        done = add_validation_vacuum_steps(args.validation, Path(args.work) / "validation")
        print(f"{args.validation}: added {', '.join(done) or 'none'}")
        return 0
    if args.action == "compare":
        return _compare(args)
    if args.action == "import-wannier90":
        from wander_gui.dft.importer import import_wannier90
        path = import_wannier90(args.structure, args.hr, args.centres, energy_zero=args.vacuum_level,
                                out=args.out, name=args.name, r_max=args.r_max)
        print(f"imported -> {path}")
        return 0
    from wander_gui.dft.validate import validate_dataset
    problems = validate_dataset(args.out)
    for pr in problems:
        print(pr)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def _generate(args) -> int:
    from wander_gui.dft.sampling import FINETUNE_PLANS
    if args.twisted_wannier and (args.plan not in FINETUNE_PLANS or args.no_wannier):
        print(f"error: --twisted-wannier labels the twisted cells of --plan {' or '.join(sorted(FINETUNE_PLANS))} "
              "(and cannot be combined with --no-wannier)", file=sys.stderr)
        return 2
    if args.out is None:
        args.out = FINETUNE_OUT if args.plan in FINETUNE_PLANS else DEFAULT_OUT
    if args.workers > 1:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "wander_gui.cli", "dataset", "generate", "--out", args.out,
               "--work", args.work, "-n", str(args.n_configs), "--start", str(args.start),
               "--max-supercell", str(args.max_supercell), "--workers", "1", "--plan", args.plan]
        if args.no_wannier:
            cmd.append("--no-wannier")
        if args.held_out_first:
            cmd.append("--held-out-first")
        if args.twisted_wannier:
            cmd.append("--twisted-wannier")
        if args.k_density is not None:
            cmd += ["--k-density", str(args.k_density)]
        procs = [subprocess.Popen(cmd, env=env) for _ in range(args.workers)]
        return max(p.wait() for p in procs)
    from wander_gui.dft.dataset import generate
    from wander_gui.dft.settings import DFTSettings
    Path(args.work).mkdir(parents=True, exist_ok=True)
    done = generate(args.out, args.work, n_configs=args.n_configs, start=args.start,
                    settings=DFTSettings() if args.k_density is None else DFTSettings(k_density=args.k_density),
                    max_supercell=args.max_supercell, wannier=not args.no_wannier,
                    held_out_first=args.held_out_first, plan=args.plan, twisted_wannier=args.twisted_wannier,
                    on_step=lambda info: print(json.dumps(info), flush=True))
    print(f"labelled {len(done)} configuration(s)")
    return 0


def _compare(args) -> int:
    import numpy as np

    from wander_gui.dft.dataset import compare_labels
    from wander_gui.errors import InputError

    def files(p):
        p = Path(p)
        if p.is_dir():
            return {f.stem: f for f in sorted((p / "chunks" if (p / "chunks").is_dir() else p).glob("*.npz"))
                    if not f.name.endswith(".tmp.npz")}  # a worker's chunk being written
        if not p.exists():
            raise InputError(f"{p} does not exist")
        return {p.stem: p}
    fa, fb = files(args.a), files(args.b)
    pairs = [(n, fa[n], fb[n]) for n in fa if n in fb] if len(fa) > 1 or len(fb) > 1 else \
        [(next(iter(fa)), next(iter(fa.values())), next(iter(fb.values())))]
    if not pairs:
        raise InputError(f"no chunk of {args.a} has a namesake in {args.b}")
    rows = {}
    for name, x, y in pairs:
        with np.load(x) as za, np.load(y) as zb:
            rows[name] = compare_labels(dict(za), dict(zb))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    sites = sorted({s for r in rows.values() for s in r["sites"]})
    print("A minus B: energy (meV/atom), force MAE (meV/Å), per site: mean outward component (in-plane MAE), meV/Å")
    print(f"{'configuration':16s} {'k rules':>10s} {'energy':>8s} {'forces':>7s} " + " ".join(f"{s:>16s}" for s in sites))
    for name, r in rows.items():
        k = "/".join(f"{v:g}" for v in r["k_density"])
        cells = [f"{r['sites'][s]['outward_mean_diff_meV_per_A']:+7.1f} ({r['sites'][s]['in_plane_mae_diff_meV_per_A']:5.1f})"
                 if s in r["sites"] else "–" for s in sites]
        print(f"{name:16s} {k:>10s} {r['energy_diff_meV_per_atom']:+8.2f} {r['force_mae_diff_meV_per_A']:7.1f} "
              + " ".join(f"{c:>16s}" for c in cells))
    if len(rows) > 1:
        mean = [np.mean([r["sites"][s]["outward_mean_diff_meV_per_A"] for r in rows.values() if s in r["sites"]])
                for s in sites]
        print(f"{'mean':16s} {'':>10s} {'':>8s} {'':>7s} " + " ".join(f"{m:+16.1f}" for m in mean))
    return 0
