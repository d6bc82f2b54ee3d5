"""Validation results combined from folders of two k-mesh rules (forces of one, H of the other)."""
import numpy as np
import pytest

from wander_gui.dft.validation import load_merged
from wander_gui.errors import DataError


def _write(folder, name, **arrays):
    (folder / name).mkdir(parents=True)
    np.savez(folder / name / "result.npz", **arrays)


def test_first_folder_wins_and_later_ones_fill_missing_arrays(tmp_path):
    numbers, pos = np.array([42, 16, 16]), np.arange(9.0).reshape(3, 3)
    k18, k12 = tmp_path / "k18", tmp_path / "k12"
    _write(k18, "cell", numbers=numbers, positions=pos, forces=np.ones((3, 3)))
    _write(k12, "cell", numbers=numbers, positions=pos + 1e-8, forces=np.zeros((3, 3)), pair_values=np.full(4, 2.0))
    _write(k12, "only12", numbers=numbers, positions=pos, forces=np.zeros((3, 3)))
    r = load_merged([k18, k12], "cell")
    assert (r["forces"] == 1).all() and (r["pair_values"] == 2).all()
    assert r["sources"]["forces"] == str(k18) and r["sources"]["pair_values"] == str(k12)
    assert load_merged([k18, k12], "only12")["sources"]["forces"] == str(k12)
    assert load_merged(k12, "cell")["sources"]["forces"] == str(k12)  # one folder as before
    assert load_merged([k18, k12], "absent") is None


def test_results_of_different_structures_are_not_combined(tmp_path):
    numbers, pos = np.array([42, 16, 16]), np.arange(9.0).reshape(3, 3)
    _write(tmp_path / "a", "cell", numbers=numbers, positions=pos, forces=np.ones((3, 3)))
    _write(tmp_path / "b", "cell", numbers=numbers, positions=pos + 0.01, pair_values=np.ones(4))
    with pytest.raises(DataError, match="different structures"):
        load_merged([tmp_path / "a", tmp_path / "b"], "cell")
