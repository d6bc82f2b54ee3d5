"""A real (small) GPAW + D3 calculation through the project's pipeline."""
import json

import numpy as np
import pytest

pytest.importorskip("gpaw", reason="the [dft] extra is installed by .ci/install")

from wander_gui.core.builder import build_aligned  # noqa: E402
from wander_gui.dft.run import d3_energy_forces, scf  # noqa: E402
from wander_gui.dft.settings import DFTSettings  # noqa: E402

TINY = DFTSettings(ecut=200.0, k_density=6.0, conv_energy=1e-4, conv_density=1e-3, conv_forces=1e-2)


@pytest.fixture(scope="module")
def tiny_scf(tmp_path_factory):
    atoms = build_aligned("MoS2", "H", supercell=1, d_interlayer=6.3)
    atoms.positions[0, 2] += 0.05  # break the mirror symmetry a little: non-zero forces
    res = scf(atoms, TINY, txt=str(tmp_path_factory.mktemp("gpaw") / "scf.txt"))
    return atoms, res


def test_scf_energy_forces(tiny_scf):
    atoms, res = tiny_scf
    assert np.isfinite(res.energy)
    assert res.forces.shape == (len(atoms), 3)
    assert np.abs(res.forces.sum(axis=0)).max() < 0.05  # translation invariance (no net force)
    # the displaced Mo is pushed back (restoring force along -z)
    assert res.forces[0, 2] < -0.1
    assert res.kmesh == (2, 2)
    # vacuum level above the Fermi level by a work-function-like amount
    assert 3.0 < res.vacuum - res.fermi < 8.0


def test_d3_is_included(tiny_scf):
    atoms, res = tiny_scf
    e3, f3 = d3_energy_forces(atoms)
    assert e3 < 0
    assert res.energy_d3 == pytest.approx(e3)
    assert np.allclose(res.forces_d3, f3)


@pytest.fixture(scope="module")
def tiny_wannier(tiny_scf, tmp_path_factory):
    from wander_gui.dft.run import wannier_label
    atoms, res = tiny_scf
    work = tmp_path_factory.mktemp("w90")
    lab = wannier_label(res.calc, atoms, vacuum=res.vacuum, mesh=(4, 4), workdir=work, txt=str(work / "nscf.txt"))
    return atoms, res, lab


def test_wannier_hamiltonian_is_hermitian(tiny_wannier):
    atoms, _, lab = tiny_wannier
    p = lab.pairs
    index = {(int(i), int(j), *map(int, s)): k for k, ((i, j), s) in enumerate(zip(p.ij, p.shift))}
    checked = 0
    for k, ((i, j), s) in enumerate(zip(p.ij, p.shift)):
        partner = index.get((int(j), int(i), *map(int, -s)))
        assert partner is not None, "every hopping needs its Hermitian partner"
        assert np.allclose(p.block[k], p.block[partner].T, atol=2e-5)
        checked += 1
    assert checked == len(p.ij)
    assert lab.imag_max < 0.02  # real orbitals, no spin-orbit: H(R) is real


def test_wannier_mapping_and_fidelity(tiny_wannier):
    atoms, res, lab = tiny_wannier
    assert lab.centre_offset_max < 0.5  # each function sits on its atom
    assert lab.centres.shape == (22, 3)
    assert lab.cbm - lab.vbm > 0.5  # semiconducting bilayer
    # a coarse 4x4 mesh at 200 eV: interpolation is good to tens of meV near the gap
    assert lab.fidelity_near_gap_eV < 0.15
    assert lab.frozen[1] >= lab.cbm + 1.0 - 1e-9  # frozen window covers CBM + 1 eV (mesh CBM >= true CBM)


def test_label_keeps_the_dft_eigenvalues_as_a_band_reference(tiny_wannier):
    """The DFT eigenvalues on the mesh and check points travel with the label; on the mesh the
    Wannier H reproduces them inside the frozen window (it is fitted there)."""
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.electronic.solvers import eigenvalues_at
    atoms, res, lab = tiny_wannier
    assert lab.mesh_kpts.shape == (16, 3) and lab.check_kpts.shape == (5, 3)
    assert lab.mesh_eps.shape[0] == 16 and lab.check_eps.shape[0] == 5
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(), "Mo")
    p = lab.pairs
    tb = TBHamiltonian.from_pair_blocks(atoms, p.ij, p.shift, p.block, offsets, counts)
    m0 = 2 * 6  # semicore and chalcogen-s bands below the d–p manifold (two formula units)
    worst = 0.0
    for k, eps in zip(lab.mesh_kpts, lab.mesh_eps):
        ew = np.sort(eigenvalues_at(tb.hk(k), nbands=None, sigma=None, solver="dense"))
        ed = eps[m0:m0 + 22]
        inside = (ed > lab.frozen[0]) & (ed < lab.frozen[1])
        worst = max(worst, np.abs(ew - ed)[inside].max())
    assert worst < 0.01


def test_wannier_label_resumes_from_stored_nscf_runs(tiny_wannier, tmp_path):
    """With ``store`` both non-self-consistent runs are kept with their wave functions; a rerun
    (an interrupted twisted-cell label) reuses them without calling GPAW again and gives the
    label of an uninterrupted run."""
    from wander_gui.dft.run import wannier_label
    atoms, res, ref = tiny_wannier
    kw = dict(vacuum=res.vacuum, mesh=(4, 4), txt=str(tmp_path / "nscf.txt"), store=tmp_path / "store")
    first = wannier_label(res.calc, atoms, workdir=tmp_path / "w1", **kw)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["nscf-check.gpw", "nscf-mesh.gpw"]

    class NoNewRuns:
        def fixed_density(self, **_):
            raise AssertionError("the stored runs should have been used")
    again = wannier_label(NoNewRuns(), atoms, workdir=tmp_path / "w2", **kw)
    for lab in (first, again):
        assert np.array_equal(lab.pairs.ij, ref.pairs.ij) and np.array_equal(lab.pairs.shift, ref.pairs.shift)
        assert np.abs(lab.pairs.block - ref.pairs.block).max() < 1e-5
        assert np.allclose(lab.check_eps, ref.check_eps, atol=1e-6)
    # runs stored for another structure are not reused
    moved = atoms.copy()
    moved.positions[2, 2] += 0.05
    with pytest.raises(AssertionError, match="stored runs"):
        wannier_label(NoNewRuns(), moved, workdir=tmp_path / "w3", **kw)


def test_large_cell_nscf_runs_are_stored_in_parts(tiny_wannier, tmp_path, monkeypatch):
    """A cell with many atom-k-points has its mesh and check points computed in several
    non-self-consistent runs, each stored when it finishes (a rerun after an interruption
    redoes only the unfinished parts); the Wannier label is that of a single run."""
    import wander_gui.dft.run as run
    atoms, res, ref = tiny_wannier
    monkeypatch.setattr(run, "NSCF_ATOM_KPOINTS_PER_RUN", 6 * len(atoms))  # 6 k-points per run
    kw = dict(vacuum=res.vacuum, mesh=(4, 4), txt=str(tmp_path / "nscf.txt"), store=tmp_path / "store")
    split = run.wannier_label(res.calc, atoms, workdir=tmp_path / "w1", **kw)
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "nscf-check.gpw", "nscf-mesh-1of3.gpw", "nscf-mesh-2of3.gpw", "nscf-mesh-3of3.gpw"]
    assert np.array_equal(split.pairs.ij, ref.pairs.ij) and np.array_equal(split.pairs.shift, ref.pairs.shift)
    assert np.abs(split.pairs.block - ref.pairs.block).max() < 1e-4
    assert np.allclose(split.mesh_eps, ref.mesh_eps, atol=1e-4)
    assert np.allclose(split.check_eps, ref.check_eps, atol=1e-4)

    # an interrupted label: the last part is missing and is the only run done again
    (tmp_path / "store" / "nscf-mesh-3of3.gpw").unlink()
    calls = []

    class Counting:
        def fixed_density(self, **kwargs):
            calls.append(np.asarray(kwargs["kpts"]))
            return res.calc.fixed_density(**kwargs)
    again = run.wannier_label(Counting(), atoms, workdir=tmp_path / "w2", **kw)
    assert len(calls) == 1 and np.allclose(calls[0], split.mesh_kpts[11:])
    assert np.abs(again.pairs.block - split.pairs.block).max() < 1e-4


def test_validation_wannier_step_redoes_a_lost_density(tiny_scf, tmp_path, monkeypatch):
    """A validation result whose SCF density is gone (a fresh machine) gets its Wannier label
    from a redone SCF, whose energy and forces replace the stored ones; the stored
    non-self-consistent runs are removed once the label is saved."""
    from wander_gui.backend import dft_point_bands
    from wander_gui.dft.validation import single_point
    monkeypatch.setattr("wander_gui.dft.dataset.FIDELITY_LIMIT_EV", 0.15)  # the 200 eV test basis, 4x4 mesh
    atoms, ref = tiny_scf
    out, work = tmp_path / "out", tmp_path / "work"
    opts = dict(settings=TINY, wannier_mesh_length=10.0, n_check=2, bands_npoints=0)
    first = single_point(atoms, out, work, wannier=False, **opts)
    assert "pair_values" not in first and (work / "scf.gpw").exists()
    scf_bands = dft_point_bands(first)  # without a Wannier step: the SCF's own eigenvalues
    assert scf_bands.source == "DFT eigenvalues at the SCF k-mesh" and scf_bands.kpts_kc.shape == (4, 3)
    assert scf_bands.layer0_weight_kn.shape == scf_bands.e_kn.shape
    # a result stored before layer weights existed gets them from its density (same states)
    stored = dict(np.load(out / "result.npz"))
    w_scf = stored.pop("scf_layer0_weight").astype(float)
    np.savez_compressed(out / "result.npz", **stored)
    again = single_point(atoms, out, work, wannier=False, **opts)
    assert np.abs(again["scf_layer0_weight"].astype(float) - w_scf)[:, :2 * 17].max() < 0.02
    assert "scf_layer0_weight" in np.load(out / "result.npz").files
    (work / "scf.gpw").unlink()
    stored = dict(np.load(out / "result.npz"))
    stored["forces"] = stored["forces"] + np.float32(0.5)  # a stale result is replaced, not kept
    np.savez_compressed(out / "result.npz", **stored)
    res = single_point(atoms, out, work, wannier=True, **opts)
    assert "pair_values" in res and tuple(res["wannier_mesh"]) == (4, 4)
    assert res["energy"] == pytest.approx(ref.energy, abs=2e-3)
    assert np.abs(res["forces"] - ref.forces).max() < 2e-2
    assert "scf_redo_seconds" in np.load(out / "result.npz").files
    assert not (work / "nscf").exists()
    # the SCF's 2x2 mesh is part of the label's Γ-centred 4x4 mesh: same d–p eigenvalues there
    wan = dft_point_bands(res)
    assert wan.source.startswith("DFT eigenvalues at the Wannier mesh")
    for k, e in zip(scf_bands.kpts_kc, scf_bands.e_kn):
        d = np.abs((wan.kpts_kc - k + 0.5) % 1.0 - 0.5).sum(axis=1)
        assert d.min() < 1e-6
        assert np.abs(wan.e_kn[d.argmin()] - e).max() < 0.01
    assert scf_bands.n_valence == wan.n_valence


@pytest.fixture(scope="module")
def shifted_wannier(tmp_path_factory):
    """A rigid shift puts the first Mo just outside the cell (GPAW wraps it back): the labels
    must still refer to the positions as given."""
    from wander_gui.dft.run import wannier_label
    atoms = build_aligned("MoS2", "H", supercell=1, d_interlayer=6.3)
    atoms.positions[:, :2] -= 0.03
    assert np.linalg.solve(atoms.cell.array.T, atoms.positions[0])[0] < 0
    work = tmp_path_factory.mktemp("shifted")
    res = scf(atoms, TINY, txt=str(work / "scf.txt"))
    lab = wannier_label(res.calc, atoms, vacuum=res.vacuum, mesh=(4, 4), workdir=work, txt=str(work / "nscf.txt"))
    return atoms, res, lab


def test_symmetry_related_bonds_have_rotated_blocks(shifted_wannier):
    """The three Mo–S bonds to the upper S of a C3-symmetric cell carry the same block in
    their bond frames: orbitals and lattice vectors are assigned consistently (also for
    the Mo that GPAW wrapped into the cell)."""
    from scipy.spatial.transform import Rotation

    from wander_gui.core.orbitals import real_harmonic_rotation
    atoms, _, lab = shifted_wannier
    assert lab.hopping_centroid_max < 0.1
    p = lab.pairs
    vec = atoms.positions[p.ij[:, 1]] + p.shift @ atoms.cell.array - atoms.positions[p.ij[:, 0]]
    d = np.linalg.norm(vec, axis=1)
    up = atoms.positions[0, 2] + 1.0
    sel = np.flatnonzero((p.ij[:, 0] == 0) & (d < 2.7) & (atoms.positions[p.ij[:, 1], 2] > up - 2.5)
                         & (vec[:, 2] > 0) & (atoms.arrays["layer"][p.ij[:, 1]] == atoms.arrays["layer"][0]))
    assert len(sel) == 3
    rotated = []
    for k in sel:
        R = Rotation.from_euler("z", -np.arctan2(vec[k, 1], vec[k, 0])).as_matrix()
        rotated.append(real_harmonic_rotation(R, 2) @ p.block[k][:5, :3] @ R.T)
    assert np.abs(rotated[0]).max() > 0.3  # a real nearest-neighbour hopping
    for b in rotated[1:]:
        assert np.abs(b - rotated[0]).max() < 0.02


def test_dft_single_point_command_quick_is_labelled(tmp_path):
    import subprocess
    import sys

    from wander_gui.core.io import write_structure
    a = build_aligned("MoS2", "R", supercell=1, d_interlayer=6.5)
    write_structure(a, tmp_path / "c.extxyz")
    r = subprocess.run([sys.executable, "-m", "wander_gui.cli", "dft", "single-point", str(tmp_path / "c.extxyz"),
                        "--quick", "--out", str(tmp_path / "dft")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "QUICK PREVIEW" in r.stdout
    z = np.load(tmp_path / "dft" / "result.npz")
    assert z["forces"].shape == (6, 3) and float(z["scf_seconds"]) > 0
    assert "QUICK PREVIEW" in str(z["meta"])
    # a second run skips the finished SCF (resumable) and returns the same energy
    r2 = subprocess.run([sys.executable, "-m", "wander_gui.cli", "dft", "single-point", str(tmp_path / "c.extxyz"),
                         "--quick", "--out", str(tmp_path / "dft")], capture_output=True, text=True)
    assert r2.returncode == 0 and r.stdout.split("E = ")[1][:12] == r2.stdout.split("E = ")[1][:12]


def test_scf_checkpoint_continues_an_interrupted_run(tiny_scf, tmp_path):
    """An SCF stopped by its iteration limit leaves a checkpoint; the rerun continues from it
    (fewer iterations than from scratch), reaches the same energy and removes the file."""
    from dataclasses import replace

    from wander_gui.dft.run import ConvergenceError
    atoms, ref = tiny_scf
    ck = tmp_path / "scf-checkpoint.gpw"
    with pytest.raises(ConvergenceError):
        scf(atoms, replace(TINY, maxiter=6), txt=str(tmp_path / "a.txt"), checkpoint=ck, checkpoint_every=3)
    assert ck.exists()
    part = json.loads(ck.with_suffix(".json").read_text())  # the interrupted run's time and iterations
    assert part["iterations"] == 6 and part["seconds"] > 0
    res = scf(atoms, TINY, txt=str(tmp_path / "a.txt"), checkpoint=ck, checkpoint_every=3)
    # the interrupted run's log (its 6 iterations' timings) is kept beside the continued run's
    assert (tmp_path / "a.part1.txt").read_text().count("iter:") == 6
    assert (tmp_path / "a.txt").read_text().count("iter:") == res.n_iter - 6
    assert res.energy == pytest.approx(ref.energy, abs=2e-3)
    assert np.abs(res.forces - ref.forces).max() < 2e-2
    assert 0 < res.n_iter - 6 < ref.n_iter  # the rerun continued; its result counts both parts
    assert res.seconds > part["seconds"]
    assert not ck.exists() and not ck.with_suffix(".json").exists()
    # a checkpoint of another structure is not used
    with pytest.raises(ConvergenceError):
        scf(atoms, replace(TINY, maxiter=4), txt=str(tmp_path / "c.txt"), checkpoint=ck, checkpoint_every=2)
    moved = atoms.copy()
    moved.positions[1, 2] += 0.05
    res2 = scf(moved, TINY, txt=str(tmp_path / "d.txt"), checkpoint=ck)
    assert res2.n_iter >= ref.n_iter - 2 and not ck.exists()
    # the first iteration (the costly initial guess) is banked before the first regular checkpoint
    with pytest.raises(ConvergenceError):
        scf(atoms, replace(TINY, maxiter=2), txt=str(tmp_path / "e.txt"), checkpoint=ck, checkpoint_every=5)
    assert ck.exists()


def test_vacuum_step_is_odd_under_the_layer_mirror(tiny_scf, tmp_path):
    """The dipole step between the two vacuum levels (V_top − V_bottom) of the distorted 2H
    bilayer changes sign for its mirror image z → c − z (same total energy)."""
    atoms, res = tiny_scf
    mirror = atoms.copy()
    mirror.positions[:, 2] = atoms.cell[2, 2] - atoms.positions[:, 2]
    res_m = scf(mirror, TINY, txt=str(tmp_path / "m.txt"))
    assert abs(res.vacuum_step) > 0.005  # the displaced Mo polarises the bilayer
    assert res_m.vacuum_step == pytest.approx(-res.vacuum_step, abs=0.002)
    assert res_m.energy == pytest.approx(res.energy, abs=0.01)


def test_vacuum_steps_are_added_to_finished_chunks_from_stored_densities(tiny_scf, tmp_path):
    from wander_gui.dft.dataset import add_vacuum_steps, save_chunk, structure_arrays
    atoms, res = tiny_scf
    out, work = tmp_path / "data", tmp_path / "work"
    (work / "gpw").mkdir(parents=True)
    res.calc.write(str(work / "gpw" / "c0000-1x1-H.gpw"))
    arrays = structure_arrays(atoms)
    arrays.update(energy=np.float64(res.energy), forces=res.forces.astype(np.float32),
                  vacuum_level=np.float64(res.vacuum))
    save_chunk(out / "chunks" / "c0000-1x1-H.npz", arrays)
    save_chunk(out / "chunks" / "c0001-1x1-R.npz", arrays)  # no stored density for this one
    rep = add_vacuum_steps(out, work)
    assert rep["added"] == 1 and rep["missing_density"] == ["c0001-1x1-R"]
    with np.load(out / "chunks" / "c0000-1x1-H.npz") as z:
        assert float(z["vacuum_step"]) == pytest.approx(res.vacuum_step, abs=1e-6)
        assert float(z["energy"]) == pytest.approx(res.energy)  # the rest of the chunk is kept
    assert add_vacuum_steps(out, work)["added"] == 0  # done once
    # a density from another run is refused rather than attached to the wrong chunk
    arrays["vacuum_level"] = np.float64(res.vacuum + 0.1)
    save_chunk(out / "chunks" / "c0002-1x1-H.npz", arrays)
    res.calc.write(str(work / "gpw" / "c0002-1x1-H.gpw"))
    from wander_gui.errors import DataError
    with pytest.raises(DataError, match="another run"):
        add_vacuum_steps(out, work)


def test_dft_layer_weights_agree_with_the_wannier_states(tmp_path):
    """Each Kohn–Sham state's share on the bottom layer (PAW projections on the Wannier basis's
    partial waves, stored with every validation SCF) agrees with that of the same state of the
    Wannier Hamiltonian; with the top layer thickened the states near the gap are layer-polarised,
    and the per-layer offset between the two band sets is zero within the Wannier fit."""
    from wander_gui.backend import band_errors, orbital_layers
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.dft.run import wannier_label
    from wander_gui.dft.wannier import layer0_weights
    from wander_gui.electronic.bands import BandResult, compute_bands
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    atoms = build_aligned("MoS2", "R", supercell=1, d_interlayer=6.3)
    layer = atoms.arrays["layer"]
    sulfur = np.array(atoms.get_chemical_symbols()) == "S"
    mo_z = atoms.positions[(layer == 1) & ~sulfur, 2].mean()
    top_s = (layer == 1) & sulfur
    atoms.positions[top_s, 2] += 0.12 * np.sign(atoms.positions[top_s, 2] - mo_z)  # thicker top layer
    res = scf(atoms, TINY, txt=str(tmp_path / "scf.txt"))
    w_dft = layer0_weights(res.calc, atoms)
    eps = np.array([res.calc.get_eigenvalues(kpt=k) for k in range(len(w_dft))]) - res.vacuum
    assert w_dft.shape == eps.shape and w_dft.min() > -1e-9 and w_dft.max() < 1 + 1e-9
    lab = wannier_label(res.calc, atoms, vacuum=res.vacuum, mesh=(4, 4), workdir=tmp_path / "w90",
                        txt=str(tmp_path / "nscf.txt"))
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(), "Mo")
    tb = TBHamiltonian.from_pair_blocks(atoms, lab.pairs.ij, lab.pairs.shift, lab.pairs.block, offsets, counts)
    kpts = np.asarray(res.calc.get_bz_k_points(), float)
    tbb = compute_bands(tb, kpts, orbital_layer=orbital_layers(atoms)[0])
    m0, nv = 2 * 6, 14  # bands below the d–p manifold; its 28 electrons fill 14 bands
    e_d, w_d = eps[:, m0:m0 + 22], w_dft[:, m0:m0 + 22]
    near = (e_d > lab.vbm - 1.0) & (e_d < lab.cbm + 1.0)
    apart = np.ones_like(near)  # non-degenerate states (a degenerate pair may mix the layers either way)
    gaps = np.diff(e_d, axis=1) > 0.02
    apart[:, 1:] &= gaps
    apart[:, :-1] &= gaps
    sel = near & apart
    assert sel.sum() >= 8
    assert np.abs(w_d[sel] - 0.5).max() > 0.35  # layer-polarised states: the test can tell the layers apart
    assert np.abs(w_d[sel] - tbb.layer0_weight_kn[sel]).max() < 0.1
    # the Wannier H reproduces the DFT states, so no per-layer offset shows between them
    dft = BandResult(kpts, e_d, nv, float(e_d[:, nv - 1].max()), float(e_d[:, nv].min()), layer0_weight_kn=w_d)
    off = band_errors(tbb, dft)["layer_offset_meV"]
    assert set(off) == {"valence", "conduction"}
    assert all(abs(v["C"]) < 20 for v in off.values())
