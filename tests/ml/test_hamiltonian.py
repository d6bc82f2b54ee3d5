import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from wander_gui.core.builder import build_twisted
from wander_gui.core.orbitals import real_harmonic_rotation
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.predict import predict_blocks

L = {5: 2, 3: 1}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(3)
    ff = ForceField().double()
    hm = HamiltonianModel(r_max=8.0).double()
    return ff, hm


@pytest.fixture(scope="module")
def cell():
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(4).normal(0, 0.04, a.positions.shape)
    return a


def as_dict(p):
    return {(int(i), int(j), *map(int, s)): b for (i, j), s, b in zip(p.ij, p.shift, p.blocks)}


def test_hermiticity(models, cell):
    p = predict_blocks(*models, cell)
    d = as_dict(p)
    for (i, j, *s), b in d.items():
        partner = d[(j, i, *(-np.array(s)))]
        ni, nj = p.counts[i], p.counts[j]
        assert np.allclose(b[:ni, :nj], partner[:nj, :ni].T, atol=1e-12)
    # on-site blocks are symmetric
    for i in range(len(cell)):
        b = d[(i, i, 0, 0, 0)]
        assert np.allclose(b, b.T, atol=1e-12)


@pytest.mark.parametrize("rot", [Rotation.from_euler("z", 21.787, degrees=True), Rotation.random(random_state=11)])
def test_rotation_equivariance(models, cell, rot):
    R = rot.as_matrix()
    p = as_dict(predict_blocks(*models, cell))
    b = cell.copy()
    b.positions = cell.positions @ R.T
    b.cell = cell.cell.array @ R.T
    pr = as_dict(predict_blocks(*models, b))
    D = {1: real_harmonic_rotation(R, 1), 2: real_harmonic_rotation(R, 2)}
    counts = [5 if s == "Mo" else 3 for s in cell.get_chemical_symbols()]
    assert set(p) == set(pr)
    worst = 0.0
    for key, blk in p.items():
        i, j = key[:2]
        ni, nj = counts[i], counts[j]
        expect = D[L[ni]] @ blk[:ni, :nj] @ D[L[nj]].T
        worst = max(worst, np.abs(pr[key][:ni, :nj] - expect).max())
    assert worst < 1e-10


def test_blocks_continuous_across_range_split(models):
    ff, hm = models
    r = torch.linspace(5.0, 7.0, 401, dtype=torch.float64)
    vec = torch.stack([r, torch.zeros_like(r), torch.zeros_like(r)], 1)
    species = torch.tensor([0, 0])
    layer = torch.tensor([0, 0])
    Z = torch.zeros(2, hm.config["latent_dim"], dtype=torch.float64)
    n = len(r)
    blk = hm.hoppings(species, layer, Z, torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long), vec)
    jumps = (blk[1:] - blk[:-1]).abs().amax(dim=(1, 2))
    assert jumps.max() < 20 * jumps.median() + 1e-9  # no step at 6 Å
