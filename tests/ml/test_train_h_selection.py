import json

import numpy as np
import torch

from wander_gui.ml.data import load_samples, split
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.train_h import HTrainConfig, aligned_band_mae, prepare, train_hamiltonian


def test_aligned_band_error_is_zero_for_the_dft_blocks_and_blind_to_a_rigid_shift():
    s = next(s for s in load_samples("pretrained/dataset") if "pair_values" in s.chunk)
    torch.manual_seed(0)
    ex = prepare(s, ForceField().double(), 6.0, band_kpoints=6)
    assert ex.bands.n_valence > 0 and len(ex.bands.band_index) > ex.bands.n_valence
    assert float(aligned_band_mae(ex, ex.onsite_target, ex.hop_target)) < 1e-9
    eye = torch.zeros_like(ex.onsite_target)
    eye[ex.mask_onsite & torch.eye(5, dtype=torch.bool)] = 0.3  # every orbital energy up by 0.3 eV
    assert float(aligned_band_mae(ex, ex.onsite_target + eye, ex.hop_target)) < 1e-9
    on = ex.onsite_target.clone()
    on[ex.species == 0, 0, 0] += 0.05  # Mo d_z² up by 50 meV: the near-gap bands move
    assert float(aligned_band_mae(ex, on, ex.hop_target)) > 1e-3


def test_heads_are_selected_on_validation_blocks_plus_bands(tmp_path):
    samples = [s for s in load_samples("pretrained/dataset") if "pair_values" in s.chunk]
    parts = split([s.name for s in samples])
    assert "val" in parts.values()  # else there is nothing to select on
    torch.manual_seed(0)
    cfg = HTrainConfig(epochs=4, patience=100, band_kpoints=4, select_on_bands=True)
    cfg.model["r_max"] = 6.0
    _, m = train_hamiltonian(samples, ForceField().double(), cfg, out_dir=tmp_path, progress=False)
    hist = np.array(m["val_history"], float)
    assert hist.shape == (4, 3) and np.all(np.isfinite(hist)) and np.all(hist[:, 2] > 0)
    assert m["best_epoch"] == int(hist[np.argmin(hist[:, 1] + hist[:, 2]), 0])
    assert json.loads((tmp_path / "h_metrics.json").read_text())["val_history"] == m["val_history"]
    cfg.select_on_bands = False
    _, m2 = train_hamiltonian(samples, ForceField().double(), cfg, out_dir=tmp_path / "blocks", progress=False)
    assert all(b is None for _, _, b in m2["val_history"])
