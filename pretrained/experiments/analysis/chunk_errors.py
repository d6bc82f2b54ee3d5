"""Errors of models on one labelled DFT chunk (a dataset or fine-tuning cell with a Wannier
label): force MAE, Hamiltonian MAE per category (elements with |H| > 1 meV) and near-gap band
errors at the DFT k-points of the Wannier step (aligned at the valence-band maximum).
README, "First twisted Wannier label". Run from the repository root:
    python pretrained/experiments/analysis/chunk_errors.py CHUNK.npz MODEL_OR_RUN_DIR/ ...
(a published model name, or a training run's folder with ff.pt and h.pt; ~1 min per model for a
42-atom cell on one core)."""
import sys

import numpy as np
import torch

from wander_gui.ml.data import sample_from_arrays
from wander_gui.ml.parity import parity
from wander_gui.ml.publish import validation_band_errors
from wander_gui.ml.registry import load_model

torch.set_num_threads(1)
chunk = dict(np.load(sys.argv[1]))
sample = sample_from_arrays("cell", chunk)
for arg in sys.argv[2:]:
    model = load_model(None, directory=arg) if "/" in arg else load_model(arg)
    summary = parity(model, [sample]).summary()
    h_mae = {k: round(v["mae_meV"], 2) for k, v in summary["hamiltonian"].items() if v and " " not in k}
    bands = validation_band_errors(model, chunk).get("bands_dft_points", {})
    print(f"{arg:28s} forces {summary['forces']['all']['mae_meV_per_A']:.1f} meV/Å  H MAE (meV) {h_mae}  "
          f"bands {bands.get('mae_meV', float('nan')):.1f} meV, gap error {bands.get('gap_error_meV', float('nan')):+.1f} meV",
          flush=True)
