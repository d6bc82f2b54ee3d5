import numpy as np
import torch

from wander_gui.core.builder import build_aligned
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.graph import atoms_to_graph
from wander_gui.ml.train_ff import fit_ood_statistics


def scores(ff, atoms):
    g = atoms_to_graph(atoms, ff.config["r_c"])
    with torch.no_grad():
        _, Z, _ = ff.atomic(g)
    return ff.ood_score(Z, g.species).numpy()


def test_latent_distance_flags_environments_unlike_the_training_data():
    torch.manual_seed(0)
    ff = ForceField().double()
    samples = load_samples("pretrained/dataset")
    assert not ff.has_ood
    fit_ood_statistics(ff, samples)
    assert ff.has_ood
    train = np.concatenate([scores(ff, s.atoms) for s in samples])
    assert (train <= 1.0 + 1e-9).mean() >= 0.99  # the limit is the training set's 99.5th percentile
    # a bilayer squeezed to a 5.0 Å Mo–Mo distance (S–S 1.9 Å across the gap) is far outside
    squeezed = build_aligned("MoS2", "R", supercell=2, d_interlayer=5.0)
    assert scores(ff, squeezed).max() > 1.5
    # the statistics survive a save/load round trip, and old checkpoints load without them
    sd = ff.state_dict()
    ff2 = ForceField().double()
    ff2.load_state_dict(sd)
    assert torch.equal(ff2.ood_limit, ff.ood_limit)
    old = {k: v for k, v in sd.items() if not k.startswith("ood_")}
    ff3 = ForceField().double()
    ff3.load_state_dict(old)
    assert not ff3.has_ood
