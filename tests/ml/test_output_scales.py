"""Output scales of the Hamiltonian heads, fitted to the RMS of the training targets."""
import numpy as np
import pytest
import torch

from wander_gui.dft.dataset import has_current_label, label_blocks
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.train_h import HTrainConfig, fit_output_scales, prepare, train_hamiltonian


def _labelled(n):
    return [s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk)][:n]


@pytest.mark.parametrize("below", [None, 0.05])
def test_scales_are_the_rms_of_each_networks_targets(below):
    """Recomputed here from the stored labels with numpy: per species the on-site elements
    less onsite_ref on the diagonal, per (intra/inter, species pair, short/long range) the
    hopping elements, either order of the pair."""
    samples = _labelled(3)
    torch.manual_seed(0)
    ff = ForceField().double()
    hm = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim, r_max=8.0).double()
    with torch.no_grad():
        hm.onsite_ref.copy_(torch.tensor([-1.5, -4.0]))
    fit_output_scales(hm, [prepare(s, ff, 8.0, heads=hm) for s in samples], below=below)
    kept = 0
    on = {0: [], 1: []}
    hop = {}
    for s in samples:
        a = s.atoms
        sym = a.get_chemical_symbols()
        _, counts, ij, shift, block = label_blocks(sym, s.chunk)
        sp = np.array([0 if x == "Mo" else 1 for x in sym])
        layer = a.arrays["layer"]
        for (i, j), S, b in zip(ij, shift, block):
            ni, nj = counts[i], counts[j]
            if i == j and not S.any():
                on[sp[i]].append((b[:ni, :ni] - hm.onsite_ref[sp[i]].item() * np.eye(ni)).ravel())
                continue
            r = np.linalg.norm(a.positions[j] + S @ a.cell.array - a.positions[i])
            if r > 8.0:
                continue
            key = (int(layer[i] != layer[j]), min(sp[i], sp[j]), max(sp[i], sp[j]), int(r >= 6.0))
            hop.setdefault(key, []).append(b[:ni, :nj].ravel())
    for t in (0, 1):
        rms = np.sqrt(np.mean(np.concatenate(on[t]) ** 2))
        if below is not None and rms >= below:
            rms, kept = 1.0, kept + 1
        assert abs(hm.onsite_scale[t].item() - rms) < 1e-6 * rms
    assert len(hop) >= 10
    for c, lo, hi, k in np.ndindex(2, 2, 2, 2):
        vals = hop.get((c, min(lo, hi), max(lo, hi), k))
        rms = np.sqrt(np.mean(np.concatenate(vals) ** 2)) if vals else 1.0  # no examples: scale 1
        if below is not None and rms >= below:
            rms, kept = 1.0, kept + 1
        assert abs(hm.hop_scale[c, lo, hi, k].item() - rms) < 1e-6 * rms, (c, lo, hi, k)
    assert (kept > 0) == (below is not None)  # the nearest-neighbour hoppings are tenths of an eV


def test_training_with_scaled_outputs_keeps_the_scales_in_its_checkpoint(tmp_path):
    """The scales are part of the model: they travel in the checkpoint, and on the DFT labels
    the 6–10 Å inter-layer hoppings are meV-sized where the nearest intra-layer Mo–S ones are
    tenths of an eV."""
    cfg = HTrainConfig(epochs=1, scale_outputs=True)
    cfg.model["r_max"] = 10.0
    torch.manual_seed(0)
    hm, _ = train_hamiltonian(_labelled(4), ForceField().double(), cfg, out_dir=tmp_path, progress=False)
    sd = torch.load(tmp_path / "h_best.pt", weights_only=True)["state_dict"]
    assert torch.equal(sd["hop_scale"], hm.hop_scale) and torch.equal(sd["onsite_scale"], hm.onsite_scale)
    assert hm.hop_scale[1, :, :, 1].max() < 0.02
    assert hm.hop_scale[0, 0, 1, 0] > 0.1
