"""The per-layer offset of the band errors (the WANDER paper's C, measured)."""
import numpy as np

from wander_gui.backend import band_errors
from wander_gui.electronic.bands import BandResult


def _bands(e, w0, nv=3):
    e = np.asarray(e, float)
    return BandResult(np.zeros((len(e), 3)), e, nv, float(e[:, nv - 1].max()), float(e[:, nv].min()),
                      layer0_weight_kn=None if w0 is None else np.asarray(w0, float))


def test_a_constant_on_one_layer_is_fitted_as_the_layer_offset():
    rng = np.random.default_rng(0)
    e = np.sort(rng.uniform(-0.8, -0.1, (5, 3)), axis=1)
    e = np.concatenate([e, np.sort(rng.uniform(1.2, 1.9, (5, 3)), axis=1)], axis=1)  # gap 1.3 eV
    w0 = rng.uniform(0, 1, e.shape)  # DFT share of each state on the bottom layer
    ref = _bands(e, w0)
    top_shift = 0.03 * (1 - w0)  # +30 meV on a pure top-layer state, in proportion to its weight
    err = band_errors(_bands(e + 0.005 + top_shift, None), ref, window=5.0)["layer_offset_meV"]
    for part in ("valence", "conduction"):
        assert np.isclose(err[part]["C"], 30.0) and err[part]["C_err"] < 1e-6 and err[part]["n"] == 15
    # a uniform shift is no layer offset; a gap error of the top layer shows in the conduction part only
    assert abs(band_errors(_bands(e + 0.02, None), ref, window=5.0)["layer_offset_meV"]["valence"]["C"]) < 1e-6
    gap = e + np.where(np.arange(6) >= 3, -0.01 * (1 - w0), 0.0)
    off = band_errors(_bands(gap, None), ref, window=5.0)["layer_offset_meV"]
    assert np.isclose(off["conduction"]["C"], -10.0) and abs(off["valence"]["C"]) < 1e-6
    # without layer contrast (every state shared evenly) there is nothing to fit; without weights, no entry
    even = band_errors(_bands(e + top_shift, None), _bands(e, np.full(e.shape, 0.5)), window=5.0)
    assert even["layer_offset_meV"] == {}
    assert "layer_offset_meV" not in band_errors(_bands(e, None), _bands(e, None), window=5.0)
