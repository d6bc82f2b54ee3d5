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


@pytest.fixture(scope="module", params=["frame", "sk", "frame+dipole", "frame+inter-raer", "sk+inter-raer",
                                        "frame+sublayer", "frame+stacking+vector", "frame+sublayer+radial"])
def models(request):
    """Random-weight heads of each block form; "+inter-raer": inter-layer inputs from the RAER
    with no intra-layer atom inputs (the two feature sets are then different); "+radial": the
    own-layer RAER with the other layer's radial density (intra_input="raer_layer_radial")."""
    torch.manual_seed(3)
    ff = ForceField().double()
    inter_raer = request.param.endswith("inter-raer")
    hm = HamiltonianModel(r_max=8.0, block_form=request.param.split("+")[0],
                          layer_dipole=request.param.endswith("dipole"), inter_uses_raer=inter_raer,
                          intra_input="none" if inter_raer else
                          ("raer_layer_radial" if request.param.endswith("radial") else "raer"),
                          sublayer_frames="sublayer" in request.param,
                          inter_stacking="stacking" in request.param,
                          local_vector=request.param.endswith("vector")).double()
    with torch.no_grad():  # output scales of trained models: unequal, so the symmetry tests see them
        hm.onsite_scale.uniform_(0.1, 2.0)
        hm.hop_scale.uniform_(0.01, 2.0)
    return ff, hm


@pytest.fixture(scope="module")
def cell():
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(4).normal(0, 0.04, a.positions.shape)
    return a


def as_dict(p):
    return {(int(i), int(j), *map(int, s)): b for (i, j), s, b in zip(p.ij, p.shift, p.blocks)}


F64 = dict(dtype=torch.float64)  # the symmetry tests check exactness, in double precision


def test_hermiticity(models, cell):
    p = predict_blocks(*models, cell, **F64)
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
    p = as_dict(predict_blocks(*models, cell, **F64))
    b = cell.copy()
    b.positions = cell.positions @ R.T
    b.cell = cell.cell.array @ R.T
    pr = as_dict(predict_blocks(*models, b, **F64))
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


def test_float32_default_matches_double_and_leaves_models_alone(models, cell):
    """The default single-precision path agrees with double precision to well below the
    meV scale of the labels, and runs on a copy: the shared double models stay as they are."""
    ff, hm = models
    before = [p.detach().clone() for p in hm.parameters()]
    p32, p64 = predict_blocks(ff, hm, cell), predict_blocks(ff, hm, cell, **F64)
    assert np.array_equal(p32.ij, p64.ij)
    assert np.abs(p32.blocks - p64.blocks).max() < 1e-4
    assert np.abs(p32.blocks - p64.blocks).max() > 0  # it really ran in single precision
    assert all(p.dtype == torch.float64 for p in hm.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, hm.parameters()))
    bias = hm.intra["01s"][-1].bias  # Mo–S short-range output: every nearest-neighbour block
    with torch.no_grad():  # a weight update reaches the next prediction (no stale copy)
        bias.add_(0.5)
    try:
        assert np.abs(predict_blocks(ff, hm, cell).blocks - p32.blocks).max() > 0.1
    finally:
        with torch.no_grad():
            bias.sub_(0.5)


@pytest.mark.parametrize("form", ["frame", "sk"])
def test_output_scales_multiply_their_own_networks(form, cell):
    """onsite_scale multiplies the on-site networks (onsite_ref stays), hop_scale[c, a, b, k]
    the hopping networks of category c (intra, inter) and range k (short, long); and a buffer
    change reaches the single-precision copy too."""
    torch.manual_seed(5)
    ff, hm = ForceField().double(), HamiltonianModel(r_max=8.0, block_form=form).double()
    with torch.no_grad():
        hm.onsite_ref.copy_(torch.tensor([-1.0, -3.0]))
    base = predict_blocks(ff, hm, cell, **F64)
    pi, pj = base.ij[:, 0], base.ij[:, 1]
    layer = np.array([0 if z < cell.positions[:, 2].mean() else 1 for z in cell.positions[:, 2]])
    on = (pi == pj) & np.all(base.shift == 0, axis=1)
    inter = layer[pi] != layer[pj]
    r = np.linalg.norm(cell.positions[pj] + base.shift @ cell.cell.array - cell.positions[pi], axis=1)
    ref = np.array([np.diag([float(hm.onsite_ref[0 if c == 5 else 1])] * c + [0.0] * (5 - c)) for c in base.counts])
    saved = hm.hop_scale.clone()
    predict_blocks(ff, hm, cell)  # (caches the single-precision copy)
    with torch.no_grad():
        hm.onsite_scale.mul_(2.0)
        hm.hop_scale[1].zero_()  # inter-layer off
        hm.hop_scale[0, :, :, 1].zero_()  # long-range intra-layer off
    p = predict_blocks(ff, hm, cell, **F64)
    assert np.allclose(p.blocks[on] - ref[pi[on]], 2 * (base.blocks[on] - ref[pi[on]]), atol=1e-12)
    assert np.abs(base.blocks[inter & ~on]).max() > 1e-3
    assert np.all(p.blocks[inter & ~on] == 0)
    far = ~inter & ~on & (r > hm.config["r_split"] + 0.5)
    near = ~inter & ~on & (r < hm.config["r_split"] - 0.5)
    assert far.any() and np.all(p.blocks[far] == 0)
    assert np.allclose(p.blocks[near], base.blocks[near], atol=1e-12)
    assert np.all(predict_blocks(ff, hm, cell).blocks[inter & ~on] == 0)  # the float32 copy follows
    with torch.no_grad():
        hm.hop_scale.copy_(saved)
    assert np.abs(predict_blocks(ff, hm, cell).blocks[inter & ~on]).max() > 1e-3


def test_blocks_continuous_across_range_split(models):
    ff, hm = models
    r = torch.linspace(5.0, 7.0, 401, dtype=torch.float64)
    vec = torch.stack([r, torch.zeros_like(r), torch.zeros_like(r)], 1)
    species = torch.tensor([0, 0])
    layer = torch.tensor([0, 0])
    Z = torch.zeros(2, hm.z_mean.shape[1], dtype=torch.float64)
    frames = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    n = len(r)
    blk = hm.hoppings(species, layer, hm.atom_features(species, Z, None), torch.zeros(n, dtype=torch.long),
                      torch.ones(n, dtype=torch.long), vec, frames=frames, inter_feats=hm.inter_features(species, Z))
    jumps = (blk[1:] - blk[:-1]).abs().amax(dim=(1, 2))
    assert jumps.max() < 20 * jumps.median() + 1e-9  # no step at 6 Å


def _frame_angles(atoms):
    from wander_gui.ml.graph import atoms_to_graph
    from wander_gui.ml.hamiltonian import crystal_frames, layer_normal
    g = atoms_to_graph(atoms, 5.2)
    F = crystal_frames(g.species, g.layer, g.edge_i, g.edge_j, g.vectors(), layer_normal(atoms.cell.array))
    return np.degrees(np.arctan2(F[:, 1, 0].numpy(), F[:, 0, 0].numpy())), g


def _mod120(x):
    return (np.asarray(x) + 60.0) % 120.0 - 60.0


def test_crystal_frames_follow_each_layer():
    """Every atom of a flat layer gets the same frame (mod 120°); the second layer of a
    twisted cell gets a frame turned by the twist angle."""
    a = build_twisted(mn=(1, 2), stacking="R")
    theta = a.info["twist_deg"]
    ang, g = _frame_angles(a)
    for sp in (0, 1):
        l0 = ang[(g.layer.numpy() == 0) & (g.species.numpy() == sp)]
        l1 = ang[(g.layer.numpy() == 1) & (g.species.numpy() == sp)]
        assert np.abs(_mod120(l0 - l0[0])).max() < 1e-6
        assert np.abs(_mod120(l1 - l1[0])).max() < 1e-6
        assert abs(abs(_mod120(l1[0] - l0[0])) - abs(_mod120(theta))) < 1e-6


@pytest.mark.parametrize("stacking, mn", [("R", (1, 2)), ("H", (1, 2)), ("R", (2, 3))])
def test_stacking_cosine_is_cos_3_theta_between_layers(stacking, mn):
    """cos 3Δ over pairs: 1 within a layer (all four species pairs), cos 3θ across layers twisted
    by θ, and its negative for the H stacking (the upper layer turned by a further 60°), also
    with random displacements (σ 0.03 Å: frames turned by ~1°, cos 3θ by up to ~3 sin 3θ · 1°)
    only slightly off, and always in [−1, 1]."""
    from wander_gui.ml.graph import atoms_to_graph
    from wander_gui.ml.hamiltonian import layer_normal
    from wander_gui.ml.predict import pair_inputs
    a = build_twisted(mn=mn, stacking=stacking)
    theta = np.radians(a.info["twist_deg"])
    expect = np.cos(3 * theta) * (1 if stacking == "R" else -1)
    for sigma, tol in ((0.0, 1e-9), (0.03, 0.12)):
        b = a.copy()
        b.positions += np.random.default_rng(5).normal(0, sigma, b.positions.shape)
        g = atoms_to_graph(b, 5.2)
        F = HamiltonianModel(block_form="frame").frames(g.species, g.layer, g.edge_i, g.edge_j, g.vectors(),
                                                        layer_normal(b.cell.array))
        pi, pj, _, _ = pair_inputs(b, 6.0)
        c = HamiltonianModel.stacking_cosine(g.species, F, pi, pj).numpy()
        inter = (g.layer[pi] != g.layer[pj]).numpy()
        both = {(int(x), int(y)) for x, y in zip(g.species[pi].numpy(), g.species[pj].numpy())}
        assert both == {(0, 0), (0, 1), (1, 0), (1, 1)}
        assert np.abs(c[~inter] - 1).max() < tol
        assert np.abs(c[inter] - expect).max() < tol
        assert np.abs(c).max() <= 1 + 1e-12


@pytest.mark.parametrize("option", ["inter_stacking", "local_vector"])
def test_frame_only_options_need_the_frame_form(option):
    with pytest.raises(ValueError, match=option):
        HamiltonianModel(block_form="sk", **{option: True})


def test_frame_form_tells_mirror_related_bonds_apart():
    """Mo–Mo bonds at 0° and 60° in one layer are related by a mirror, not a rotation: the
    two-centre form must give them the same bond-frame block, the frame form need not
    (the DFT blocks differ by up to 0.56 eV)."""
    from wander_gui.core.builder import build_aligned
    a = build_aligned("MoS2", "R", supercell=3)
    mo = [k for k, s in enumerate(a.get_chemical_symbols()) if s == "Mo" and a.arrays["layer"][k] == 0]
    i = mo[0]
    d = a.get_distances(i, mo, mic=True, vector=True)
    near = [k for k, v in zip(mo, d) if 3.0 < np.linalg.norm(v) < 3.4]
    vecs = {round(float(np.degrees(np.arctan2(v[1], v[0])))) % 360: (k, v)
            for k, v in zip(mo, d) if 3.0 < np.linalg.norm(v) < 3.4}
    assert len(near) == 6
    a0, a60 = sorted(vecs)[0], sorted(vecs)[1]
    from wander_gui.ml.graph import atoms_to_graph
    from wander_gui.ml.hamiltonian import layer_normal
    torch.manual_seed(0)
    ff = ForceField().double()
    g = atoms_to_graph(a, 5.2)
    with torch.no_grad():
        _, Z, Dn = ff.atomic(g)
    nb = (g.edge_i, g.edge_j, g.vectors())
    out = {}
    for form in ("sk", "frame"):
        hm = HamiltonianModel(r_max=5.0, block_form=form).double()
        frames = hm.frames(g.species, g.layer, *nb, layer_normal(a.cell.array))
        pj = torch.tensor([vecs[a0][0], vecs[a60][0]])
        vec = torch.tensor(np.array([vecs[a0][1], vecs[a60][1]]))
        with torch.no_grad():
            blk = hm.hoppings(g.species, g.layer, hm.atom_features(g.species, Z, Dn), torch.tensor([i, i]), pj, vec,
                              frames=frames).numpy()
        rot = []
        for b, ang in zip(blk, (a0, a60)):
            D = real_harmonic_rotation(Rotation.from_euler("z", -ang, degrees=True).as_matrix(), 2)
            rot.append(D @ b @ D.T)
        out[form] = np.abs(rot[0] - rot[1]).max()
    assert out["sk"] < 1e-10
    assert out["frame"] > 1e-4


# -- layer electrostatics (layer_dipole) -----------------------------------------------------

@pytest.fixture(scope="module")
def dipole_model():
    torch.manual_seed(5)
    ff = ForceField().double()
    hm = HamiltonianModel(r_max=8.0, block_form="frame", layer_dipole=True).double()
    # random weights give dipoles of ~1e-3 eV·Å²; scale the last layers up so the checks bite
    with torch.no_grad():
        for net in hm.dipole:
            net[-1].weight.mul_(50.0)
    return ff, hm


def _layer_potential(ff, hm, atoms):
    from wander_gui.ml.graph import atoms_to_graph
    g = atoms_to_graph(atoms, ff.config["r_c"])
    with torch.no_grad():
        _, _, Dn = ff.atomic(g)
        phi, step = hm.layer_potential(g.species, Dn, g.edge_i, g.edge_j, g.vectors(),
                                       *hm.electrostatics(atoms.positions, atoms.cell.array))
    return phi.numpy(), float(step)


def _perturbed_aligned(**kw):
    from wander_gui.core.builder import build_aligned
    a = build_aligned(stacking="R", shift_frac=(0.21, 0.07), **kw)
    a.positions += np.random.default_rng(7).normal(0, 0.05, a.positions.shape)
    return a


def test_dipole_step_flips_under_the_layer_mirror(dipole_model):
    a = _perturbed_aligned()
    phi, step = _layer_potential(*dipole_model, a)
    assert abs(step) > 1e-3  # a polar (R-stacked, distorted) bilayer has a step
    m = a.copy()  # mirror z → −z about the cell's middle; the cell (and so "top") stays
    m.positions[:, 2] = a.cell[2, 2] - a.positions[:, 2]
    phi_m, step_m = _layer_potential(*dipole_model, m)
    assert step_m == pytest.approx(-step, abs=1e-10)  # the step is odd under the mirror,
    assert np.allclose(phi_m, phi, atol=1e-10)  # each atom's potential energy is a scalar


def test_dipole_potential_is_intensive_under_a_supercell_repeat(dipole_model):
    a = _perturbed_aligned()
    phi, step = _layer_potential(*dipole_model, a)
    phi2, step2 = _layer_potential(*dipole_model, a.repeat((2, 2, 1)))
    assert step2 == pytest.approx(step, abs=1e-10)
    assert np.allclose(phi2, np.tile(phi, 4), atol=1e-10)


def test_dipole_step_symmetry_of_high_symmetry_stackings(dipole_model):
    """2H (AA′) is centrosymmetric and AA mirror-symmetric: no step. The 3R stackings AB and BA
    are mirror images of each other (sliding ferroelectricity): opposite steps."""
    from wander_gui.core.builder import build_aligned
    steps = {name: _layer_potential(*dipole_model, build_aligned(stacking=st, shift_frac=sh))[1]
             for name, st, sh in (("2H", "H", (0, 0)), ("AA", "R", (0, 0)),
                                  ("AB", "R", (1 / 3, 1 / 3)), ("BA", "R", (2 / 3, 2 / 3)))}
    assert abs(steps["2H"]) < 1e-10 and abs(steps["AA"]) < 1e-10
    assert abs(steps["AB"]) > 1e-3
    assert steps["BA"] == pytest.approx(-steps["AB"], abs=1e-10)


def test_layer_potential_enters_the_onsite_diagonal_only(dipole_model):
    ff, hm = dipole_model
    a = _perturbed_aligned()
    phi, _ = _layer_potential(ff, hm, a)
    with_phi = predict_blocks(ff, hm, a, dtype=torch.float64)
    hm.config["layer_dipole"] = False
    try:
        without = predict_blocks(ff, hm, a, dtype=torch.float64)
    finally:
        hm.config["layer_dipole"] = True
    n = len(a)
    diff = with_phi.blocks - without.blocks
    assert np.abs(diff[n:]).max() == 0.0  # hoppings unchanged
    for i in range(n):
        k = with_phi.counts[i]
        assert np.allclose(diff[i][:k, :k], phi[i] * np.eye(k), atol=1e-12)
        assert np.abs(diff[i][k:]).max(initial=0) == 0.0 and np.abs(diff[i][:, k:]).max(initial=0) == 0.0


def test_own_layer_latent_keeps_intra_hoppings_independent_of_the_other_layer():
    """With intra_input="raer_layer" a layer's intra-layer blocks see only that layer: sliding
    the other layer leaves them unchanged (they change with the full-bilayer RAER)."""
    from wander_gui.core.layers import ensure_layers
    from wander_gui.ml.graph import atoms_to_graph
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(5).normal(0, 0.05, a.positions.shape)
    g = atoms_to_graph(a, 5.2)
    own = g.same_layer()
    assert len(own.edge_i) < len(g.edge_i)
    assert bool((own.layer[own.edge_i] == own.layer[own.edge_j]).all())
    kept = {(int(i), int(j), tuple(np.round(s.numpy(), 6))) for i, j, s in zip(own.edge_i, own.edge_j, own.shift_vec)}
    intra = {(int(i), int(j), tuple(np.round(s.numpy(), 6))) for i, j, s in zip(g.edge_i, g.edge_j, g.shift_vec)
             if g.layer[i] == g.layer[j]}
    assert kept == intra

    b = a.copy()
    top = ensure_layers(b) == 1
    b.positions[top] += [0.9, 0.4, 0.0]  # another registry
    torch.manual_seed(3)
    ff = ForceField().double()
    for kind, same in (("raer_layer", True), ("raer", False)):
        torch.manual_seed(4)
        hm = HamiltonianModel(r_max=6.0, block_form="frame", intra_input=kind).double()
        pa, pb = as_dict(predict_blocks(ff, hm, a, **F64)), as_dict(predict_blocks(ff, hm, b, **F64))
        bottom = [k for k in pa if not top[k[0]] and not top[k[1]] and k in pb
                  and not (k[0] == k[1] and not any(k[2:]))]  # on-site blocks see both layers
        diff = max(np.abs(pa[k] - pb[k]).max() for k in bottom)
        assert (diff < 1e-10) == same, (kind, diff)


def test_inter_layer_raer_needs_the_whole_bilayer_latent():
    with pytest.raises(ValueError, match="use one of them"):
        HamiltonianModel(intra_input="raer_layer", inter_uses_raer=True)
    hm = HamiltonianModel(intra_input="none", inter_uses_raer=True).double()
    species, layer = torch.tensor([0, 1]), torch.tensor([0, 1])
    Z = torch.randn(2, hm.config["latent_dim"], dtype=torch.float64)
    with pytest.raises(ValueError, match="inter_feats"):
        hm.hoppings(species, layer, hm.atom_features(species, Z, None), torch.tensor([0]), torch.tensor([1]),
                    torch.tensor([[1.0, 0.5, 3.0]], dtype=torch.float64), frames=torch.eye(3, dtype=torch.float64)[None].repeat(2, 1, 1))


def test_sublayer_frames_let_bonds_within_a_chalcogen_sheet_couple_p_z_to_p_xy():
    """The two S sheets of a layer are mirror images (σ_h): the upper S sits right above the
    lower one, and a bond inside the upper sheet has the p_z–p_x,y couplings of its partner
    below with the opposite sign (DFT: ±68 meV for the nearest S–S pairs). With one frame per
    layer the two bonds give the networks identical inputs and so identical blocks — the best
    fit is zero; turning the upper sheet's frames by 180° about e₁ lets them differ."""
    a = build_twisted(mn=(1, 2))
    sym = np.array(a.get_chemical_symbols())
    pos, layer = a.positions, a.arrays["layer"]
    lower = {}
    for k in np.flatnonzero((sym == "S") & (layer == 0)):
        if pos[k, 2] < pos[(layer == 0) & (sym == "Mo"), 2].mean():
            lower[k] = int(np.flatnonzero((sym == "S") & (layer == 0) & (np.abs(pos[:, :2] - pos[k, :2]).max(1) < 1e-6)
                                          & (pos[:, 2] > pos[k, 2]))[0])
    torch.manual_seed(3)
    ff = ForceField().double()
    for sub in (False, True):
        torch.manual_seed(5)
        hm = HamiltonianModel(r_max=6.0, block_form="frame", intra_input="none", sublayer_frames=sub).double()
        d = as_dict(predict_blocks(ff, hm, a, **F64))
        diffs = []
        for (i, j, *s), b in d.items():
            if i in lower and j in lower and i != j and np.linalg.norm(
                    pos[j] + np.array(s) @ a.cell.array - pos[i]) < 3.3:
                up = d[(lower[i], lower[j], *s)]
                diffs.append(np.abs(up[2, :2] - b[2, :2]).max())
        assert len(diffs) == 7 * 6  # every lower-sheet S of the bottom layer, six neighbours each
        assert (max(diffs) > 1e-4) == sub, (sub, max(diffs))


def test_interlayer_radial_is_the_other_layers_radial_density():
    """Recomputed with ASE's neighbour list: per atom and other-layer species, the sum of the
    Gaussians times the cosine cutoff over the other layer's atoms within r_c."""
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    from wander_gui.core.layers import ensure_layers
    from wander_gui.ml.graph import atoms_to_graph
    from wander_gui.ml.hamiltonian import N_RADIAL, RADIAL_MIN, interlayer_radial
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(6).normal(0, 0.05, a.positions.shape)
    rc = 5.2
    got = interlayer_radial(atoms_to_graph(a, rc), rc).numpy().reshape(len(a), 2, N_RADIAL)
    layer = ensure_layers(a)
    metal = np.array([s == "Mo" for s in a.get_chemical_symbols()])
    mu = np.linspace(RADIAL_MIN, rc, N_RADIAL)
    want = np.zeros_like(got)
    for i, j, r in zip(*ase_neighbor_list("ijd", a, rc)):
        if layer[i] != layer[j]:
            want[i, 0 if metal[j] else 1] += np.exp(-((r - mu) / (mu[1] - mu[0])) ** 2) * 0.5 * (1 + np.cos(np.pi * r / rc))
    assert np.allclose(got, want, atol=1e-12)
    inner = want.sum(axis=(1, 2)) > 0
    assert 0 < inner.sum() < len(a)  # the outer chalcogens lie beyond r_c of the other layer


def test_radial_inputs_see_the_registry_only_where_the_other_layer_is_within_reach():
    """intra_input="raer_layer_radial": sliding the top layer changes the bottom layer's blocks
    between atoms that have other-layer neighbours within r_c, and leaves those between atoms
    that have none (the outer chalcogens) exactly as they were."""
    from wander_gui.core.layers import ensure_layers
    from wander_gui.ml.graph import atoms_to_graph
    from wander_gui.ml.hamiltonian import interlayer_radial
    a = build_twisted(mn=(1, 2))
    a.positions += np.random.default_rng(5).normal(0, 0.05, a.positions.shape)
    b = a.copy()
    top = ensure_layers(b) == 1
    b.positions[top] += [0.9, 0.4, 0.0]
    reach = (interlayer_radial(atoms_to_graph(a, 5.2), 5.2).abs().sum(1) > 0).numpy() | \
        (interlayer_radial(atoms_to_graph(b, 5.2), 5.2).abs().sum(1) > 0).numpy()
    torch.manual_seed(3)
    ff = ForceField().double()
    torch.manual_seed(4)
    hm = HamiltonianModel(r_max=6.0, block_form="frame", intra_input="raer_layer_radial").double()
    pa, pb = as_dict(predict_blocks(ff, hm, a, **F64)), as_dict(predict_blocks(ff, hm, b, **F64))
    bottom = [k for k in pa if not top[k[0]] and not top[k[1]] and k in pb and not (k[0] == k[1] and not any(k[2:]))]
    far = [k for k in bottom if not reach[k[0]] and not reach[k[1]]]
    near = [k for k in bottom if reach[k[0]] and reach[k[1]]]
    assert far and near
    assert max(np.abs(pa[k] - pb[k]).max() for k in far) < 1e-10
    assert max(np.abs(pa[k] - pb[k]).max() for k in near) > 1e-6
