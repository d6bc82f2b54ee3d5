import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from wander_gui.core.builder import build_aligned, build_twisted
from wander_gui.ml.calculator import WanderCalculator
from wander_gui.ml.forcefield import ForceField, switch
from wander_gui.ml.graph import atoms_to_graph


@pytest.fixture(scope="module", params=[{}, {"pair_embedding": True}, {"layer_split": True}],
                ids=["neighbour-embedding", "pair-embedding", "layer-split"])
def model(request):
    torch.manual_seed(1)
    m = ForceField(**request.param).double()
    # non-trivial normalisation and references, as after fitting
    m.d_mean.normal_(0, 0.01)
    m.e_ref[:] = torch.tensor([-10.0, -5.0])
    return m


@pytest.fixture(scope="module")
def cell():
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(0).normal(0, 0.05, a.positions.shape)
    return a


def energy_forces(model, atoms):
    E, F, Z = model(atoms_to_graph(atoms, model.config["r_c"]))
    return E.item(), F.detach().numpy(), Z.detach().numpy()


def test_forces_are_minus_energy_gradient(model, cell):
    E, F, _ = energy_forces(model, cell)
    h = 1e-5
    for i, c in [(0, 0), (5, 2), (30, 1)]:
        p, m = cell.copy(), cell.copy()
        p.positions[i, c] += h
        m.positions[i, c] -= h
        fd = -(energy_forces(model, p)[0] - energy_forces(model, m)[0]) / (2 * h)
        assert fd == pytest.approx(F[i, c], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("rot", [Rotation.from_euler("z", 23.0, degrees=True), Rotation.random(random_state=7)])
def test_rotation_equivariance(model, cell, rot):
    R = rot.as_matrix()
    E, F, Z = energy_forces(model, cell)
    b = cell.copy()
    b.positions = cell.positions @ R.T
    b.cell = cell.cell.array @ R.T
    b.pbc = cell.pbc
    Eb, Fb, Zb = energy_forces(model, b)
    assert Eb == pytest.approx(E, abs=1e-10)
    assert np.allclose(Fb, F @ R.T, atol=1e-10)
    assert np.allclose(Zb, Z, atol=1e-10)  # latent features are invariant


def test_permutation_and_translation_invariance(model, cell):
    E, F, Z = energy_forces(model, cell)
    perm = np.random.default_rng(1).permutation(len(cell))
    b = cell[perm]
    b.positions += [1.3, -0.7, 0.4]
    Eb, Fb, Zb = energy_forces(model, b)
    assert Eb == pytest.approx(E, abs=1e-10)
    assert np.allclose(Fb, F[perm], atol=1e-10)
    assert np.allclose(Zb, Z[perm], atol=1e-10)


@pytest.mark.parametrize("layer_split", [False, True])
def test_layer_split_descriptor_is_blind_to_the_other_layers_orientation(layer_split):
    """Rotating the other layer about the vertical through atom i (locally, what a twist does)
    changes nothing atom i sees with the layer-split descriptor: own-layer and other-layer
    neighbours are contracted separately. The joint descriptor does see it."""
    torch.manual_seed(3)
    m = ForceField(layer_split=layer_split, r_s=3.5).double()
    a = build_aligned(supercell=3, shift_frac=(0.1, 0.2))
    a.positions += np.random.default_rng(4).normal(0, 0.03, a.positions.shape)
    from wander_gui.core.layers import ensure_layers
    layer = ensure_layers(a)
    i = int(np.flatnonzero((layer == 0) & (a.numbers == 42))[0])
    b = a.copy()
    top = layer == 1
    rot = Rotation.from_euler("z", 17.0, degrees=True)
    axis = a.positions[i] * [1, 1, 0]
    b.positions[top] = rot.apply(a.positions[top] - axis) + axis
    # the rotated layer no longer fits the periodic cell: compare in a cell so large that
    # only the atoms around i matter (no images within the cutoff)
    for x in (a, b):
        x.pbc = False
    D_a = m.descriptor(atoms_to_graph(a, m.config["r_c"]))[0][i]
    D_b = m.descriptor(atoms_to_graph(b, m.config["r_c"]))[0][i]
    assert np.linalg.norm(a.positions[top] - a.positions[i], axis=1).min() < m.config["r_c"]  # it sees the other layer
    if layer_split:
        assert torch.allclose(D_a, D_b, atol=1e-12)
    else:
        assert (D_a - D_b).abs().max() > 1e-6


def test_supercell_consistency(model):
    a = build_aligned(supercell=2, shift_frac=(0.2, 0.1))
    a.positions += np.random.default_rng(2).normal(0, 0.03, a.positions.shape)
    E, F, _ = energy_forces(model, a)
    big = a.repeat((2, 2, 1))
    Eb, Fb, _ = energy_forces(model, big)
    assert Eb == pytest.approx(4 * E, rel=1e-12)
    assert np.allclose(Fb[: len(a)], F, atol=1e-10)


def test_smooth_cutoff(model):
    r = torch.linspace(4.0, 5.5, 301, dtype=torch.float64, requires_grad=True)
    s = switch(r, 4.7, 5.2)
    (ds,) = torch.autograd.grad(s.sum(), r)
    assert s[r >= 5.2].abs().max() == 0 and ds[r >= 5.2].abs().max() == 0
    assert torch.all(s[r <= 4.7] == 1)
    assert ds.abs().max() < 4.0  # bounded derivative: no jump


def test_ase_calculator(model, cell):
    a = cell.copy()
    a.calc = WanderCalculator(model, device="cpu")
    E, F, Z = energy_forces(model, cell)
    assert a.get_potential_energy() == pytest.approx(E)
    assert np.allclose(a.get_forces(), F)
    assert a.calc.results["raer"].shape == (len(a), model.latent_dim)


def test_single_precision_for_large_cells(model, cell):
    """dtype="auto" switches to float32 from AUTO_FLOAT32_ATOMS atoms on; its forces agree
    with double precision far below any relaxation threshold and the shared model stays double."""
    a = cell.copy()
    a.calc = WanderCalculator(model, device="cpu", dtype="auto")
    a.calc.AUTO_FLOAT32_ATOMS = len(a)  # this small cell counts as large
    E, F, _ = energy_forces(model, cell)
    assert a.calc.dtype_for(len(a)) == torch.float32 and a.calc.dtype_for(len(a) - 1) == torch.float64
    f32 = a.get_forces()
    assert np.abs(f32 - F).max() < 1e-4  # eV/Å
    assert np.abs(f32 - F).max() > 0  # it really ran in single precision
    assert a.get_potential_energy() == pytest.approx(E, abs=1e-3)
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_checkpoint_round_trip(model, cell, tmp_path):
    torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp_path / "ff.pt")
    ck = torch.load(tmp_path / "ff.pt", weights_only=True)
    m2 = ForceField(**ck["config"]).double()
    m2.load_state_dict(ck["state_dict"])
    assert energy_forces(m2, cell)[0] == pytest.approx(energy_forces(model, cell)[0], abs=1e-12)


def test_registry_checks_sha256(model, tmp_path, monkeypatch):
    import json

    from wander_gui.errors import ModelError
    from wander_gui.ml import registry
    torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp_path / "ff.pt")
    manifest = {"models": [{"name": "toy", "material": "MoS2",
                            "files": {"ff": {"path": "ff.pt", "sha256": registry.sha256(tmp_path / "ff.pt")}}}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(registry, "PRETRAINED", tmp_path)
    loaded = registry.load_model()
    assert loaded.name == "toy" and loaded.hm is None
    with open(tmp_path / "ff.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelError, match="corrupt"):
        registry.load_model("toy")
    (tmp_path / "ff.pt").unlink()
    with pytest.raises(ModelError, match="missing"):
        registry.load_model("toy")
    with pytest.raises(ModelError, match="not in the manifest"):
        registry.load_model("other")


def test_checkpoints_from_before_added_buffers_still_load(model):
    """Weights saved before the OOD statistics (force field) and the descriptor
    re-standardisation and output scales (Hamiltonian heads) load, with those buffers at their
    neutral values."""
    from wander_gui.ml.hamiltonian import HamiltonianModel
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("ood_")}
    ff = ForceField(**model.config).double()
    ff.load_state_dict(sd)
    assert not ff.has_ood and torch.equal(ff.d_mean, model.d_mean)
    hm = HamiltonianModel(latent_dim=ff.latent_dim, desc_dim=ff.descriptor.dim).double()
    added = ("d_mean", "d_std", "onsite_scale", "hop_scale")
    old = {k: v for k, v in hm.state_dict().items() if k not in added}
    hm.d_mean.fill_(3.0)
    hm.hop_scale.fill_(0.01)
    hm.load_state_dict(old)
    assert torch.all(hm.d_mean == 0) and torch.all(hm.d_std == 1)
    assert torch.all(hm.onsite_scale == 1) and torch.all(hm.hop_scale == 1)
    with pytest.raises(RuntimeError):  # anything else missing is still an error
        hm.load_state_dict({k: v for k, v in old.items() if k != "z_mean"})
