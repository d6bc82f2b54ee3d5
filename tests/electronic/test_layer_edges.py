"""Layer-resolved band edges and the per-layer offset in the band errors (the paper's C, measured)."""
import numpy as np

from wander_gui.backend import band_errors, layer_band_edges
from wander_gui.electronic.bands import BandResult


def _bands(e, w0, nv=2):
    e = np.asarray(e, float)
    return BandResult(np.zeros((len(e), 3)), e, nv, float(e[:, nv - 1].max()), float(e[:, nv].min()),
                      layer0_weight_kn=np.asarray(w0, float))


def test_a_constant_on_one_layer_shows_as_the_layer_edge_offset():
    # two k-points, 4 bands: valence (bottom, top), conduction (top, bottom) — a type-II pair
    e = [[-1.2, -1.0, 0.5, 0.7], [-1.3, -1.1, 0.6, 0.8]]
    w0 = [[0.9, 0.2, 0.1, 0.95], [0.85, 0.3, 0.05, 0.9]]
    ref = _bands(e, w0)
    edges = layer_band_edges(ref)
    assert edges["bottom"] == {"vbm": -1.2, "cbm": 0.7} and edges["top"] == {"vbm": -1.0, "cbm": 0.5}
    shifted = np.array(e) + 0.03 * (np.array(w0) < 0.5)  # +30 meV on every top-layer state
    err = band_errors(_bands(shifted, w0), ref, window=5.0)
    assert np.allclose(list(err["layer_offset_meV"].values()), 30.0)
    assert np.isclose(err["layer_edge_errors_meV"]["top"]["vbm"], 30.0)
    assert np.isclose(err["layer_edge_errors_meV"]["bottom"]["cbm"], 0.0)
    assert np.isclose(err["vbm_error_meV"], 30.0) and np.isclose(err["cbm_error_meV"], 30.0)
    both = band_errors(_bands(np.array(e) + 0.02, w0), ref, window=5.0)  # a uniform shift is no layer offset
    assert np.allclose(list(both["layer_offset_meV"].values()), 0.0) and np.isclose(both["vbm_error_meV"], 20.0)
    gap = np.array(e) - 0.01 * ((np.array(w0) < 0.5) & (np.arange(4) >= 2))  # top conduction states only
    assert np.allclose([band_errors(_bands(gap, w0), ref, window=5.0)["layer_offset_meV"][k] for k in ("vbm", "cbm")],
                       [0.0, -10.0])
    no_weights = BandResult(ref.kpts_kc, ref.e_kn, 2, ref.vbm, ref.cbm)
    assert "layer_offset_meV" not in band_errors(_bands(e, w0), no_weights)
