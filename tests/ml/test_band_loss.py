"""The band-structure term of the Hamiltonian training: H(k) assembled in torch from blocks
must give the band engine's eigenvalues, and its loss must reach the network weights."""
import numpy as np
import torch

from wander_gui import backend
from wander_gui.electronic.bands import compute_bands
from wander_gui.electronic.kpoints import band_path
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.train_h import band_energies, band_loss, forward, prepare


def _labelled_sample():
    from wander_gui.dft.dataset import has_current_label
    return next(s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk))


def test_band_target_matches_the_band_engine_on_dft_labels():
    s = _labelled_sample()
    torch.manual_seed(0)
    ex = prepare(s, ForceField().double(), 12.0, band_kpoints=9)
    k, _, _ = band_path(s.atoms.cell.array, "GMKG", 9)
    ref = compute_bands(backend.reference_tb(s.chunk), k)
    e = band_energies(ex.bands, ex.onsite_target, ex.hop_target).numpy()
    assert np.abs(e - ref.e_kn).max() < 1e-9
    nv = ref.n_valence  # the target window straddles the gap: valence and conduction bands
    idx = ex.bands.band_index.numpy()
    assert idx.min() < nv <= idx.max()
    assert np.allclose(ex.bands.target.numpy(), ref.e_kn[:, idx])


def test_band_loss_is_zero_on_the_labels_and_reaches_the_weights():
    s = _labelled_sample()
    torch.manual_seed(0)
    ff = ForceField().double()
    ex = prepare(s, ff, 12.0, band_kpoints=6)
    assert float(band_loss(ex, ex.onsite_target, ex.hop_target)) < 1e-20
    hm = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim, block_form="frame").double()
    on, hop = forward(hm, ex)
    loss = band_loss(ex, on, hop)
    assert loss.item() > 1e-4
    loss.backward()
    assert hm.intra["01s"][0].weight.grad.abs().sum() > 0 and hm.onsite0[0][0].weight.grad.abs().sum() > 0


def test_band_error_attribution_substitutes_each_category(tiny_model_dir):
    from wander_gui.ml.parity import band_error_attribution
    from wander_gui.ml.registry import load_model
    m = load_model(directory=tiny_model_dir)
    s = _labelled_sample()
    row = band_error_attribution(m.ff, m.hm, [s], npoints=8)[s.name]
    assert set(row) == {"predicted", "DFT on-site", "DFT intra", "DFT inter"}
    assert row["predicted"] > 1.0  # a two-epoch model is far from DFT
    # each substitution changes the error: the categories partition the blocks
    assert len({round(v, 6) for v in row.values()}) == 4
