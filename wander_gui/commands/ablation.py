"""Ablation of the Hamiltonian-head inputs (paper Fig. 4) on the project's data."""
from __future__ import annotations

NAME = "ablation"
HELP = "retrain the Hamiltonian heads with each input variant; MAE/R² table (paper Fig. 4)"


def add_arguments(p) -> None:
    p.add_argument("--ff", required=True, help="force-field checkpoint (ff.pt) whose RAER the heads use")
    p.add_argument("--data", default="pretrained/dataset")
    p.add_argument("--validation", nargs="+", default=["pretrained/validation"],
                   help="twisted validation cells: one folder or several, merged per cell (first wins)")
    p.add_argument("--config", default=None, help="JSON with an 'h' section (HTrainConfig), as for `wander train`")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--k-density", type=float, default=None, metavar="A",
                   help="only chunks computed with this k-mesh rule (Å), as for `wander train`")
    p.add_argument("--only", nargs="+", default=None, help="variant names to run (default: all)")


def run(args) -> int:
    import json
    from pathlib import Path

    import torch

    from wander_gui.errors import InputError
    from wander_gui.ml.ablation import VARIANTS, run_ablation
    from wander_gui.ml.data import load_samples, select_k_density
    from wander_gui.ml.forcefield import ForceField
    from wander_gui.ml.train_h import HTrainConfig
    cfg = json.loads(Path(args.config).read_text()) if args.config else {}
    hcfg = HTrainConfig(**cfg.get("h", {}))
    variants = VARIANTS
    if args.only:
        unknown = [v for v in args.only if v not in VARIANTS]
        if unknown:
            raise InputError(f"unknown variant(s) {unknown}; allowed: {list(VARIANTS)}")
        variants = {k: VARIANTS[k] for k in args.only}
    ck = torch.load(args.ff, weights_only=True)
    ff = ForceField(**ck["config"]).double()
    ff.load_state_dict(ck["state_dict"])
    ff.eval()
    samples, _ = select_k_density(load_samples(args.data), args.k_density)
    res = run_ablation(samples, ff, hcfg, args.out, validation_dir=args.validation,
                       variants=variants)
    print((Path(args.out) / "ablation.md").read_text())
    return 0 if res else 1
