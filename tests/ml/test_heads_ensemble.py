"""Heads ensembles: the mean of independently trained heads, their spread as the uncertainty."""
import numpy as np
import pytest
import torch

from wander_gui.core.builder import build_aligned
from wander_gui.dft.dataset import has_current_label
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel, HeadsEnsemble, heads_checkpoint
from wander_gui.ml.predict import predict_blocks

F64 = dict(dtype=torch.float64)


def heads(seed, **kw):
    torch.manual_seed(seed)
    hm = HamiltonianModel(r_max=8.0, block_form="frame", **kw).double()
    with torch.no_grad():  # members differ in their statistics too, as trained ones do
        hm.onsite_scale.uniform_(0.1, 2.0)
        hm.hop_scale.uniform_(0.01, 2.0)
        hm.z_mean.normal_(0, 0.5)
    return hm


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    ff = ForceField().double()
    a = build_aligned("MoS2", "H", supercell=2)
    a.positions += np.random.default_rng(1).normal(0, 0.03, a.positions.shape)
    return ff, [heads(1), heads(2), heads(3)], a


def test_ensemble_predicts_the_members_mean_with_their_spread(setup):
    ff, members, a = setup
    single = [predict_blocks(ff, m, a, **F64) for m in members]
    ens = predict_blocks(ff, HeadsEnsemble(members), a, **F64)
    stack = np.stack([p.blocks for p in single])
    assert np.array_equal(ens.ij, single[0].ij) and np.array_equal(ens.shift, single[0].shift)
    assert np.allclose(ens.blocks, stack.mean(0), atol=1e-12)
    assert np.allclose(ens.spread, stack.std(0), atol=1e-12)
    assert ens.spread.max() > 1e-3  # random members disagree: the spread shows it
    assert single[0].spread is None
    same = predict_blocks(ff, HeadsEnsemble([members[0], members[0]]), a, **F64)
    assert np.allclose(same.blocks, single[0].blocks, atol=1e-12) and same.spread.max() < 1e-12


def test_ensemble_checkpoint_round_trip_and_loading(setup, tmp_path):
    from wander_gui.ml.registry import load_model
    ff, members, a = setup
    ens = HeadsEnsemble(members[:2])
    torch.save({"config": ff.config, "state_dict": ff.state_dict()}, tmp_path / "ff.pt")
    torch.save(heads_checkpoint(ens), tmp_path / "h.pt")
    loaded = load_model(directory=tmp_path)
    assert isinstance(loaded.hm, HeadsEnsemble) and len(loaded.hm.members) == 2
    assert np.allclose(predict_blocks(loaded.ff, loaded.hm, a, **F64).blocks,
                       predict_blocks(ff, ens, a, **F64).blocks, atol=1e-12)
    with pytest.raises(ValueError, match="architecture"):
        HeadsEnsemble([members[0], heads(4, local_vector=True)])
    with pytest.raises(ValueError, match="two"):
        HeadsEnsemble(members[:1])


def test_parity_of_an_ensemble_compares_the_members_mean(setup):
    from wander_gui.ml.parity import predicted_label_pairs
    ff, members, _ = setup
    labelled = [s for s in load_samples("pretrained/dataset") if has_current_label(s.chunk)][:2]
    per = [predicted_label_pairs(ff, m, labelled) for m in members[:2]]
    ens = predicted_label_pairs(ff, HeadsEnsemble(members[:2]), labelled)
    for k in ("onsite", "intra", "inter"):
        assert np.allclose(ens[k][0], (per[0][k][0] + per[1][k][0]) / 2)
        assert np.array_equal(ens[k][1], per[0][k][1])
