"""Site-resolved force errors of bilayers (metal, outer and inner chalcogen; in-plane and outward)."""
from types import SimpleNamespace

import numpy as np
import torch

from wander_gui.core.builder import build_twisted
from wander_gui.ml.data import Sample
from wander_gui.ml.forcefield import ForceField
from wander_gui.core.layers import bilayer_sites
from wander_gui.ml.parity import parity


def _sample(atoms, forces, name):
    return Sample(name, atoms, np.nan, forces, None)


def test_bilayer_sites_label_outer_and_inner_chalcogens_and_outward_normals():
    a = build_twisted("MoS2", "H", mn=(1, 2))  # 21.79°, 42 atoms
    labels, outward = bilayer_sites(a)
    layer = a.arrays["layer"]
    for lay in (0, 1):
        sel = layer == lay
        assert (labels[sel] == "Mo").sum() == (labels[sel] == "S outer").sum() == (labels[sel] == "S inner").sum()
        assert np.all(outward[sel] == (-1 if lay == 0 else 1))
    z = a.positions[:, 2]
    assert z.min() in z[labels == "S outer"] and z.max() in z[labels == "S outer"]
    inner = z[labels == "S inner"]
    assert inner.min() > z[(labels == "Mo") & (layer == 0)].max()
    assert inner.max() < z[(labels == "Mo") & (layer == 1)].min()
    mono = a[layer == 0]
    assert bilayer_sites(mono) is None


def test_site_errors_are_the_same_for_the_mirrored_bilayer():
    """Mirror z → −z swaps the layers; with outward-signed z components every site's MAE and
    mean error must be unchanged (the force field is invariant under reflections)."""
    torch.manual_seed(0)
    ff = ForceField().double()
    ff.eval()
    a = build_twisted("MoS2", "R", mn=(1, 2))
    rng = np.random.default_rng(0)
    a.positions += rng.normal(0, 0.03, a.positions.shape)
    ref = rng.normal(0, 0.2, (len(a), 3))  # stand-in "DFT" forces: only the bookkeeping is tested
    m = a.copy()
    m.positions[:, 2] *= -1
    m.arrays["layer"] = 1 - a.arrays["layer"]
    ref_m = ref * [1, 1, -1]
    model = SimpleNamespace(ff=ff, hm=None)
    s1 = parity(model, [_sample(a, ref, "a")]).summary()["forces"]
    s2 = parity(model, [_sample(m, ref_m, "m")]).summary()["forces"]
    keys = [k for k in s1 if "outward" in k or "in-plane" in k]
    assert len(keys) == 6 and set(keys) == set(k for k in s2 if "outward" in k or "in-plane" in k)
    for k in keys:
        assert np.isclose(s1[k]["mae_meV_per_A"], s2[k]["mae_meV_per_A"], rtol=1e-8)
        assert np.isclose(s1[k]["mean_error_meV_per_A"], s2[k]["mean_error_meV_per_A"], rtol=1e-8, atol=1e-9)
    # (raw z components would flip the sign of every out-of-plane mean error under the mirror)
    assert np.isclose(s1["all"]["mean_error_meV_per_A"],
                      1000 * np.mean(parity(model, [_sample(a, ref, "a")]).forces["all"][0] - ref.ravel()))


def test_layer_onsite_offsets_see_a_constant_added_to_one_layer():
    """A constant added to the DFT on-site energies of the top layer (the paper's C) shows up,
    with its sign, as the layer difference of the on-site errors; the bottom layer is untouched."""
    from wander_gui.dft.dataset import label_blocks, pack_pairs
    from wander_gui.dft.validation import load_result
    from wander_gui.ml.data import sample_from_arrays
    from wander_gui.ml.parity import layer_onsite_offsets
    from wander_gui.ml.registry import load_model
    model = load_model()
    r = dict(load_result("pretrained/validation", "tw21.79-R"))
    before = layer_onsite_offsets(model.ff, model.hm, sample_from_arrays("cell", r))
    a = sample_from_arrays("cell", r).atoms
    _, counts, ij, shift, blocks = label_blocks(a.get_chemical_symbols(), r)
    top = a.positions[:, 2] > a.positions[:, 2].mean()
    onsite_top = (ij[:, 0] == ij[:, 1]) & ~shift.any(axis=1) & top[ij[:, 0]]
    blocks[onsite_top] += 0.025 * np.eye(5)
    r.update(pack_pairs(SimpleNamespace(ij=ij, shift=shift, block=blocks), counts))
    after = layer_onsite_offsets(model.ff, model.hm, sample_from_arrays("cell", r))
    assert before["layers"]["top"]["atoms"] == before["layers"]["bottom"]["atoms"] == 21
    assert np.isclose(after["top_minus_bottom"] - before["top_minus_bottom"], -25.0, atol=1e-3)
    assert np.isclose(after["layers"]["bottom"]["mean"], before["layers"]["bottom"]["mean"], atol=1e-4)
    assert np.isclose(after["layers"]["top"]["Mo"] - before["layers"]["top"]["Mo"], -25.0, atol=1e-3)
