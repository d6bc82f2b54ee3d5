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


def test_validation_cells_are_recognised_by_structure():
    """The app shows a DFT reference when the built cell is a validation cell: same species,
    cell and positions (up to lattice vectors), however it was built."""
    from wander_gui.core.builder import build_twisted
    from wander_gui.core.layers import ensure_layers
    from wander_gui.dft.validation import matching_cell
    assert matching_cell(build_twisted("MoS2", "R", mn=(1, 2))) == "tw21.79-R"
    assert matching_cell(build_twisted("MoS2", "H", mn=(1, 2))) == "tw21.79-H"
    shifted = build_twisted("MoS2", "R", mn=(2, 3))
    shifted.positions[5] += shifted.cell[0] - shifted.cell[1]
    assert matching_cell(shifted) == "tw13.17-R"
    moved = build_twisted("MoS2", "R", mn=(1, 2))
    moved.positions[3, 2] += 0.01
    assert matching_cell(moved) is None
    assert matching_cell(build_twisted("MoS2", "R", angle=21.79, strain_percent=1.0)) is None
    het = build_twisted("MoS2", "R", angle=11.0, strain_percent=2.0, max_atoms=400, max_residual_strain=0.002)
    assert matching_cell(het) == "het10.89-R"
    layer = ensure_layers(het)
    assert len(het) == 165 and sorted(np.bincount(layer)) == [81, 84]  # 27 + 28 formula units
    small = build_twisted("MoS2", "R", angle=16.1, strain_percent=4.0, strain_mode="heterostrain", max_atoms=100,
                          max_residual_strain=0.003)
    assert matching_cell(small) == "het16.10-R"
    layer = ensure_layers(small)
    assert len(small) == 75 and sorted(np.bincount(layer)) == [36, 39]  # 12 + 13 formula units
    a = small.cell.array[:2, :2]  # each layer strained by 2 % the other way: lattice mismatch 4 %
    assert np.allclose(np.linalg.norm(a, axis=1), np.sqrt(13) * 3.18 * 0.98, rtol=1e-3)


def test_unknown_validation_cell_is_refused_with_the_allowed_names():
    from wander_gui.dft.validation import CELLS, run_validation
    from wander_gui.errors import InputError
    with pytest.raises(InputError, match="tw21.79-R.*het10.89-R"):
        run_validation(names=["tw21.79-R", "tw99-X"])
    assert "het10.89-R" in CELLS


def test_validation_info_lists_every_folder_and_takes_times_from_the_first(tmp_path):
    from wander_gui.dft.validation import validation_info
    numbers, pos = np.array([42, 16, 16]), np.arange(9.0).reshape(3, 3)
    k18, k12 = tmp_path / "validation-k18", tmp_path / "validation"
    _write(k18, "tw21.79-R", numbers=numbers, positions=pos, forces=np.ones((3, 3)), scf_seconds=2.0,
           scf_eps_eV=np.zeros((1, 4)))
    _write(k12, "tw21.79-R", numbers=numbers, positions=pos, forces=np.ones((3, 3)), scf_seconds=5.0)
    _write(k12, "tw13.17-R", numbers=numbers, positions=pos, forces=np.ones((3, 3)), scf_seconds=7.0)
    cells, secs = validation_info([k18, k12])
    assert [(c["name"], c["folder"]) for c in cells] == [("tw21.79-R", "validation-k18"), ("tw21.79-R", "validation"),
                                                         ("tw13.17-R", "validation")]
    assert cells[0]["kinds"] == ["energy+forces", "eigenvalues (SCF k-mesh)"]
    assert secs == {"tw21.79-R": {"scf_seconds": 2.0}, "tw13.17-R": {"scf_seconds": 7.0}}
