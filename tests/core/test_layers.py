import numpy as np
import pytest
from ase import Atoms

from wander_gui.core.builder import build_twisted
from wander_gui.core.layers import detect_layers, ensure_layers, validate_structure
from wander_gui.errors import InputError, StructureError


def test_detects_layers_after_shuffle_and_corrugation():
    a = build_twisted(mn=(2, 3))
    truth = a.arrays["layer"].copy()
    rng = np.random.default_rng(0)
    # smooth corrugation of 0.4 A amplitude, opposite in the two layers
    xy = a.positions[:, :2]
    a.positions[:, 2] += 0.4 * np.sin(xy[:, 0] / 3) * np.where(truth == 0, 1, -1)
    perm = rng.permutation(len(a))
    b = a[perm]
    del b.arrays["layer"]
    assert np.array_equal(detect_layers(b), truth[perm])


def test_ensure_layers_sets_array():
    a = build_twisted(mn=(1, 2))
    del a.arrays["layer"]
    layer = ensure_layers(a)
    assert "layer" in a.arrays and set(layer) == {0, 1}


def test_monolayer_is_rejected():
    a = build_twisted(mn=(1, 2))
    mono = a[a.arrays["layer"] == 0]
    with pytest.raises(StructureError, match="gap"):
        detect_layers(mono)


def test_unknown_elements_rejected():
    a = Atoms("C4", positions=[[0, 0, 0], [1.4, 0, 0], [0, 0, 6], [1.4, 0, 6]], cell=[5, 5, 20])
    with pytest.raises(InputError, match="supported"):
        detect_layers(a)


def test_missing_chalcogen_rejected():
    a = build_twisted(mn=(1, 2))
    del a[10]
    del a.arrays["layer"]
    with pytest.raises(StructureError, match="2 S per Mo"):
        detect_layers(a)


def test_nan_and_overlap_rejected():
    a = build_twisted(mn=(1, 2))
    b = a.copy()
    b.positions[3] = np.nan
    with pytest.raises(StructureError, match="NaN"):
        validate_structure(b)
    c = a.copy()
    c.positions[1] = c.positions[0] + [0.5, 0, 0]
    with pytest.raises(StructureError, match="apart"):
        validate_structure(c)
