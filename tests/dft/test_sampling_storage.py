import json
from pathlib import Path

import numpy as np
import pytest

from wander_gui.dft import dataset as ds
from wander_gui.dft.sampling import build_config, config_spec, finetune_spec
from wander_gui.dft.settings import WANNIER_VERSION, DFTSettings

#: the meta of a chunk computed with the current settings
CURRENT = {"meta": np.array(json.dumps({"spec": {}, "settings": DFTSettings().asdict()}))}


def test_plan_is_deterministic_and_in_range():
    specs = [config_spec(i) for i in range(200)]
    assert [s.asdict() for s in specs[:20]] == [config_spec(i).asdict() for i in range(20)]
    assert {s.supercell for s in specs} == {1, 2, 3}
    assert {s.stacking for s in specs} == {"R", "H"}
    assert all(5.8 <= s.d_interlayer <= 7.5 for s in specs)
    assert all(abs(s.strain_percent) <= 3.0 for s in specs)
    sig = np.array([s.sigma for s in specs])
    assert 0.8 < np.mean(sig > 0) < 0.97
    assert sig[sig > 0].min() >= 0.02 and sig.max() <= 0.10
    assert sum(s.wannier for s in specs) >= 0.3 * len(specs)


def test_build_config_is_bilayer_with_displacements():
    s = config_spec(1)
    a = build_config(s)
    assert len(a) == 3 * 2 * s.supercell ** 2
    b = build_config(s)
    assert np.allclose(a.positions, b.positions)


def test_finetune_cells_are_perturbed_strained_twisted_cells_apart_from_the_validation_cells(tmp_path, monkeypatch):
    from wander_gui.core.builder import build_twisted
    specs = [finetune_spec(i) for i in range(8)]
    assert [s.stacking for s in specs[:4]] == ["R", "H", "R", "H"]
    assert len({s.name for s in specs} | {config_spec(i).name for i in range(50)}) == 58  # no clash
    for s in specs[:2]:
        a = build_config(s)
        flat = build_twisted("MoS2", s.stacking, mn=(1, 2), d_interlayer=s.d_interlayer)
        assert len(a) == 42 and abs(a.info["twist_deg"] - 21.787) < 0.01
        assert np.isclose(a.cell.lengths()[0] / flat.cell.lengths()[0], 1 + s.strain_percent / 100)
        ideal = flat.get_scaled_positions() @ a.cell.array
        assert 0.5 * s.sigma < np.sqrt(((a.positions - ideal) ** 2).mean() * 3) < 2 * s.sigma
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, st, **kw: calls.append(spec.name) or {})
    ds.generate(tmp_path / "ft", tmp_path / "work", n_configs=2, plan="finetune")
    assert calls == [specs[0].name, specs[1].name]


def test_near_equilibrium_finetune_cells_are_shifted_twisted_cells_with_small_displacements(tmp_path, monkeypatch):
    """The finetune-equilibrium plan: 21.79° R / H cells whose top layer is translated by the drawn
    fraction of the cell (the bottom layer stays where the builder puts it), strained biaxially, with
    small displacements on most cells; names of their own; labelled by ``generate``."""
    from wander_gui.core.builder import build_twisted
    from wander_gui.dft.sampling import EQUILIBRIUM_SIGMA, FINETUNE_PLANS, finetune_equilibrium_spec, plan_of
    specs = [finetune_equilibrium_spec(i) for i in range(40)]
    assert finetune_equilibrium_spec(5) == specs[5]
    assert [s.stacking for s in specs[:4]] == ["R", "H", "R", "H"]
    names = {s.name for s in specs}
    assert len(names | {finetune_spec(i).name for i in range(40)} | {config_spec(i).name for i in range(40)}) == 120
    assert all(plan_of(n) == "finetune-equilibrium" for n in names) and "finetune-equilibrium" in FINETUNE_PLANS
    sig = np.array([s.sigma for s in specs])
    assert 0.1 < (sig == 0).mean() < 0.5 and sig.max() <= EQUILIBRIUM_SIGMA[1]
    assert len({s.shift_frac for s in specs}) == 40 and max(abs(s.strain_percent) for s in specs) <= 1.5
    s = next(x for x in specs if x.sigma == 0 and x.stacking == "H")
    a = build_config(s)
    flat = build_twisted("MoS2", "H", mn=(1, 2), d_interlayer=s.d_interlayer)
    flat.set_cell(a.cell, scale_atoms=True)
    top = a.arrays["layer"] == 1
    assert np.allclose(a.positions[~top], flat.positions[~top])
    shift = a.positions[top] - flat.positions[top]
    assert np.allclose(shift, shift[0]) and np.allclose(shift[0, :2], np.array(s.shift_frac) @ a.cell.array[:2, :2])
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, st, **kw: calls.append(spec.name) or {})
    ds.generate(tmp_path / "ft", tmp_path / "work", n_configs=2, plan="finetune-equilibrium")
    assert calls == [specs[0].name, specs[1].name]


def test_chunk_write_skip_and_failure_log(tmp_path):
    out = tmp_path / "ds"
    ds.save_chunk(ds.chunk_path(out, "c0000-1x1-R"), {"energy": np.float64(-1.0),
                                                      "meta": np.array(json.dumps({"spec": {}}))})
    assert ds.is_done(out, "c0000-1x1-R")
    assert not list((out / "chunks").glob("*.tmp.npz"))
    spec = config_spec(3)
    ds.record_failure(out, spec, "SCF did not converge")
    assert ds.is_done(out, spec.name)
    assert spec.name in ds.failed_names(out)


def test_locks_exclude_second_worker_and_reclaim_stale(tmp_path):
    assert ds._lock(tmp_path, "x")
    assert not ds._lock(tmp_path, "x")  # held by this (alive) process
    (tmp_path / "locks" / "x.lock").write_text("999999999")  # dead pid
    assert ds._lock(tmp_path, "x")
    ds._unlock(tmp_path, "x")
    assert not (tmp_path / "locks" / "x.lock").exists()


def test_generate_skips_finished_chunks(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, s, **kw: calls.append(spec.name) or {"name": spec.name})
    s0, s1, s2 = (config_spec(i) for i in range(3))
    assert s0.wannier and not s2.wannier
    ds.save_chunk(ds.chunk_path(out, s0.name), {"x": np.zeros(1), "pair_values": np.zeros(1),
                                                "wannier_version": np.int16(WANNIER_VERSION), **CURRENT})
    ds.save_chunk(ds.chunk_path(out, s2.name), {"x": np.zeros(1), **CURRENT})  # energy/forces only: done
    ds.generate(out, tmp_path / "work", n_configs=3, max_supercell=2)
    assert calls == [s1.name]


def test_outdated_wannier_labels_and_failures_are_redone(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, s, **kw: calls.append(spec.name) or {"name": spec.name})
    s0, s1, s2, s3 = (config_spec(i) for i in range(4))
    assert s0.wannier and s3.wannier
    # an older method's label, and an old-format failure record of a Wannier step: both redone
    ds.save_chunk(ds.chunk_path(out, s0.name), {"x": np.zeros(1), "pair_values": np.zeros(1), **CURRENT})
    ds.save_chunk(ds.chunk_path(out, s3.name), {"x": np.zeros(1), **CURRENT})
    (out / "failed.jsonl").write_text(json.dumps({"name": s3.name, "reason": "centre off"}) + "\n")
    # a failed SCF stays failed; a current-method Wannier failure is not retried
    ds.record_failure(out, s1, "SCF did not converge", stage="scf")
    ds.save_chunk(ds.chunk_path(out, s2.name), {"x": np.zeros(1), **CURRENT})
    ds.generate(out, tmp_path / "work", n_configs=4, max_supercell=2)
    assert calls == [s0.name, s3.name]
    assert ds.failed_names(out) == {s1.name}
    ds.record_failure(out, s3, "fidelity 40 meV", stage="wannier")
    calls.clear()
    ds.generate(out, tmp_path / "work", n_configs=4, max_supercell=2)
    assert calls == [s0.name]
    assert ds.failed_names(out) == {s1.name, s3.name}


def test_chunks_of_an_older_k_mesh_rule_are_recomputed(tmp_path, monkeypatch):
    """Chunks record the k-mesh rule they were computed with (those written before the rule was
    recorded used the legacy 12 Å); generate recomputes chunks of another rule and dataset
    info counts each rule."""
    from wander_gui.dft.settings import LEGACY_K_DENSITY
    out = tmp_path / "ds"
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, s, **kw: calls.append(spec.name) or {"name": spec.name})
    s0, s1, s2 = (config_spec(i) for i in range(3))
    legacy = {"meta": np.array(json.dumps({"spec": {}, "settings": {**DFTSettings().asdict(), "k_density": 12.0}}))}
    unrecorded = {"meta": np.array(json.dumps({"spec": {}}))}
    ds.save_chunk(ds.chunk_path(out, s0.name), {"x": np.zeros(1), **legacy})
    ds.save_chunk(ds.chunk_path(out, s1.name), {"x": np.zeros(1), **unrecorded})
    ds.save_chunk(ds.chunk_path(out, s2.name), {"x": np.zeros(1), **CURRENT})
    assert ds.chunk_k_density(unrecorded["meta"]) == LEGACY_K_DENSITY == 12.0
    assert DFTSettings().k_density != LEGACY_K_DENSITY
    assert ds.is_done(out, s0.name) and not ds.is_done(out, s0.name, k_density=DFTSettings().k_density)
    ds.generate(out, tmp_path / "work", n_configs=3, max_supercell=2, wannier=False)
    assert calls == [s0.name, s1.name]


def test_pack_unpack_pairs_round_trip():
    from wander_gui.dft.wannier import PairBlocks
    rng = np.random.default_rng(0)
    counts = np.array([5, 3, 3, 5, 3, 3])
    ij = rng.integers(0, 6, size=(40, 2))
    block = np.zeros((40, 5, 5))
    for p, (i, j) in enumerate(ij):
        block[p, :counts[i], :counts[j]] = rng.normal(size=(counts[i], counts[j]))
    pairs = PairBlocks(ij, rng.integers(-2, 3, size=(40, 3)), block)
    packed = ds.pack_pairs(pairs, counts)
    assert packed["pair_values"].size == sum(counts[i] * counts[j] for i, j in ij)
    ij2, sh2, bl2 = ds.unpack_pairs(packed, counts)
    assert np.array_equal(ij2, ij) and np.array_equal(sh2, pairs.shift)
    assert np.allclose(bl2, block, atol=1e-6)


def test_samples_load_from_several_folders_and_names_must_not_repeat(tmp_path):
    import shutil
    from pathlib import Path

    import pytest

    from wander_gui.errors import DataError
    from wander_gui.ml.data import load_samples
    chunks = sorted((Path(__file__).parents[2] / "pretrained/dataset/chunks").glob("c*.npz"))[:2]
    for folder, chunk in zip(("a", "b"), chunks):
        (tmp_path / folder / "chunks").mkdir(parents=True)
        shutil.copy(chunk, tmp_path / folder / "chunks")
    both = load_samples([tmp_path / "a", tmp_path / "b"])
    assert [s.name for s in both] == [c.stem for c in chunks]
    shutil.copy(chunks[0], tmp_path / "b" / "chunks")
    with pytest.raises(DataError, match=chunks[0].stem):
        load_samples([tmp_path / "a", tmp_path / "b"])


def test_validation_results_of_two_k_mesh_rules_are_never_mixed(tmp_path, monkeypatch):
    """A validation result records its k-mesh rule (legacy results, without one, are 12 Å); a run
    with another rule refuses to add to it before any DFT starts, and one with the same rule
    resumes it without redoing the SCF."""
    import pytest

    from wander_gui.dft import validation
    from wander_gui.errors import DataError
    res = tmp_path / "tw" / "result.npz"
    ds.save_chunk(res, {"energy": np.float64(-1.0), "meta": np.array(json.dumps({"level_of_theory": "x"}))})
    monkeypatch.setattr("wander_gui.dft.run.scf", lambda *a, **k: pytest.fail("SCF started"))
    atoms = validation.cell_atoms("tw21.79-R")
    with pytest.raises(DataError, match=r"ceil\(12 Å / L\).*ceil\(18 Å / L\)"):
        validation.single_point(atoms, tmp_path / "tw", tmp_path / "work", settings=DFTSettings(k_density=18.0))
    kept = validation.single_point(atoms, tmp_path / "tw", tmp_path / "work", settings=DFTSettings(k_density=12.0))
    assert float(kept["energy"]) == -1.0


def test_compare_labels_finds_a_site_bias_and_refuses_other_structures(tmp_path):
    """A label whose outer chalcogens are pushed 50 meV/Å further out (layer thickness bias) shows
    exactly that as the outer sites' mean outward difference, nothing at the other sites."""
    import subprocess
    import sys

    import pytest

    from wander_gui.core.layers import bilayer_sites
    from wander_gui.errors import DataError
    path = sorted(Path("pretrained/dataset/chunks").glob("*-1x1-*.npz"))[0]
    with np.load(path) as z:
        b = dict(z)
    a = dict(b)
    from ase import Atoms
    at = Atoms(numbers=b["numbers"], positions=b["positions"], cell=b["cell"])
    at.arrays["layer"] = b["layer"].astype(int)
    labels, outward = bilayer_sites(at)
    f = b["forces"].astype(float).copy()
    outer = labels == "S outer"
    f[outer, 2] += 0.05 * outward[outer]
    a["forces"] = f
    r = ds.compare_labels(a, b)
    assert r["sites"]["S outer"]["outward_mean_diff_meV_per_A"] == pytest.approx(50.0, abs=1e-3)
    assert abs(r["sites"]["S inner"]["outward_mean_diff_meV_per_A"]) < 1e-3
    assert abs(r["sites"]["Mo"]["outward_mean_diff_meV_per_A"]) < 1e-3
    assert r["energy_diff_meV_per_atom"] == 0.0
    moved = dict(b, positions=b["positions"] + 0.1)
    with pytest.raises(DataError, match="different structures"):
        ds.compare_labels(moved, b)
    ds.save_chunk(tmp_path / "a.npz", a)
    out = subprocess.run([sys.executable, "-m", "wander_gui.cli", "dataset", "compare", str(tmp_path / "a.npz"),
                          str(path), "--json"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["a"]["sites"]["S outer"]["outward_mean_diff_meV_per_A"] == \
        pytest.approx(50.0, abs=1e-3)


def test_generate_command_passes_the_k_mesh_rule(tmp_path, monkeypatch):
    """`wander dataset generate --k-density 12` labels with that rule (the fine-tuning cells);
    without it, the current rule."""
    from wander_gui.cli import main
    seen = []
    monkeypatch.setattr(ds, "generate", lambda out, work, **kw: seen.append((out, kw["settings"].k_density, kw["plan"])) or [])
    assert main(["dataset", "generate", "--plan", "finetune", "-n", "1", "--k-density", "12",
                 "--out", str(tmp_path / "ft"), "--work", str(tmp_path / "w")]) == 0
    assert main(["dataset", "generate", "-n", "1", "--out", str(tmp_path / "ds"), "--work", str(tmp_path / "w")]) == 0
    assert seen == [(str(tmp_path / "ft"), 12.0, "finetune"), (str(tmp_path / "ds"), DFTSettings().k_density, "bilayers")]


def test_equilibrium_plan_has_small_displacements_and_its_own_names():
    from wander_gui.dft.sampling import EQUILIBRIUM_SIGMA, STRAIN_MAX, equilibrium_spec
    specs = [equilibrium_spec(i) for i in range(300)]
    assert equilibrium_spec(7) == specs[7]  # deterministic
    names = {s.name for s in specs}
    assert len(names) == 300 and not names & {config_spec(i).name for i in range(300)}
    sig = np.array([s.sigma for s in specs])
    assert (sig == 0).mean() == pytest.approx(0.3, abs=0.08)
    assert sig[sig > 0].min() >= EQUILIBRIUM_SIGMA[0] and sig.max() <= EQUILIBRIUM_SIGMA[1]
    assert {s.supercell for s in specs} == {1, 2} and all(s.wannier == (s.supercell == 1) for s in specs)
    assert max(abs(s.strain_percent) for s in specs) <= STRAIN_MAX
    atoms = build_config(specs[2])
    assert len(atoms) == 24 and atoms.info["config"] == specs[2].name


def test_wannier_backfill_redoes_the_scf_when_the_density_is_gone(tmp_path, monkeypatch, caplog):
    """A chunk with energy and forces but no Wannier label and no stored density (a fresh
    checkout) is completed by a new SCF: the chunk is rewritten from that run, its density is
    kept, and a disagreement with the stored label beyond SCF tolerance is reported."""
    import logging
    from types import SimpleNamespace

    from wander_gui.dft import run
    spec = next(config_spec(i) for i in range(50) if config_spec(i).supercell == 1 and config_spec(i).wannier)
    atoms = build_config(spec)
    out, work = tmp_path / "ds", tmp_path / "work"
    f_stored = np.full((len(atoms), 3), 0.1)
    ds.save_chunk(ds.chunk_path(out, spec.name), {**ds.structure_arrays(atoms), "energy": np.float64(-50.0),
                                                   "forces": f_stored.astype(np.float32), **CURRENT})

    def fake_scf(a, settings, txt=None, shift=0.0):
        calc = SimpleNamespace(write=lambda p: Path(p).write_text("density"))
        return SimpleNamespace(energy=-50.0 + shift * len(a), forces=f_stored + shift, energy_d3=-1.0, vacuum=4.0,
                               vacuum_step=0.0, fermi=-5.0, seconds=1.0, kmesh=(1, 1, 1), calc=calc)
    calls = []
    monkeypatch.setattr(run, "scf", lambda a, s, txt=None: calls.append("scf") or fake_scf(a, s, shift=0.0005))
    monkeypatch.setattr(ds, "wannier_arrays", lambda calc, a, vac, w, name, txt: {
        "pair_values": np.zeros((1, 5, 5), np.float32), "wannier_version": np.int16(WANNIER_VERSION),
        "fidelity_near_gap_eV": np.float32(0.003)})
    with caplog.at_level(logging.WARNING, logger=ds.log.name):
        info = ds.label_config(spec, out, work, DFTSettings())
    assert calls == ["scf"] and info["fidelity_meV"] == pytest.approx(3.0)
    assert (work / "gpw" / f"{spec.name}.gpw").exists()
    assert ds.is_done(out, spec.name, wannier=True, k_density=DFTSettings().k_density)
    with np.load(ds.chunk_path(out, spec.name)) as z:
        assert float(z["energy"]) == pytest.approx(-50.0 + 0.0005 * len(atoms))  # from the new run
        assert np.allclose(z["forces"], f_stored + 0.0005)
    assert not [r for r in caplog.records if "differs" in r.message]  # within SCF tolerance
    # a redone SCF far from the stored label is reported (and its result kept)
    ds.save_chunk(ds.chunk_path(out, spec.name), {**ds.structure_arrays(atoms), "energy": np.float64(-50.0),
                                                   "forces": f_stored.astype(np.float32), **CURRENT})
    (work / "gpw" / f"{spec.name}.gpw").unlink()
    monkeypatch.setattr(run, "scf", lambda a, s, txt=None: fake_scf(a, s, shift=0.05))
    with caplog.at_level(logging.WARNING, logger=ds.log.name):
        ds.label_config(spec, out, work, DFTSettings())
    assert [r for r in caplog.records if "differs" in r.message]


def test_twisted_finetune_cells_get_wannier_labels_only_when_asked(tmp_path, monkeypatch):
    """`--twisted-wannier`: fine-tuning cells with energies and forces are completed with a Wannier
    label from their stored density, on the validation cells' mesh (3×3 at 21.79°, 3 check points),
    the finished non-self-consistent runs kept in work/nscf/NAME until the label is saved; without
    the option they count as done."""
    from wander_gui.dft.sampling import finetune_equilibrium_spec
    out, work = tmp_path / "ft", tmp_path / "work"
    specs = [finetune_equilibrium_spec(i) for i in range(2)]
    assert specs[0].strain_percent < -0.5  # compressed: 25 Å / L alone would give a 4×4 mesh
    for spec in specs:
        atoms = build_config(spec)
        ds.save_chunk(ds.chunk_path(out, spec.name), {**ds.structure_arrays(atoms), "energy": np.float64(-300.0),
                                                       "forces": np.zeros((len(atoms), 3), np.float32),
                                                       "vacuum_level": np.float64(4.0), **CURRENT})
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, s, **kw: calls.append((spec.name, kw)) or {})
    ds.generate(out, work, n_configs=2, plan="finetune-equilibrium")
    assert calls == []
    ds.generate(out, work, n_configs=2, plan="finetune-equilibrium", twisted_wannier=True)
    assert [c[0] for c in calls] == [s.name for s in specs] and all(c[1]["twisted_wannier"] for c in calls)
    monkeypatch.undo()

    gpw = work / "gpw" / f"{specs[0].name}.gpw"
    gpw.parent.mkdir(parents=True)
    gpw.write_text("density")
    monkeypatch.setattr("gpaw.GPAW", lambda path, txt=None: f"calc from {Path(path).name}")
    seen = {}

    def fake_wannier(calc, a, vac, w, name, txt, **kw):
        kw["store"].mkdir(parents=True)  # a finished non-self-consistent run kept for a rerun
        seen.update(kw, calc=calc, vacuum=vac)
        return {"pair_values": np.zeros((1, 5, 5), np.float32), "wannier_version": np.int16(WANNIER_VERSION),
                "fidelity_near_gap_eV": np.float32(0.004)}
    monkeypatch.setattr(ds, "wannier_arrays", fake_wannier)
    monkeypatch.setattr("wander_gui.dft.run.scf", lambda *a, **k: pytest.fail("SCF started"))
    info = ds.label_config(specs[0], out, work, DFTSettings(), twisted_wannier=True)
    assert seen["mesh"] == (3, 3) and seen["n_check"] == 3 and seen["store"] == work / "nscf" / specs[0].name
    assert seen["calc"] == f"calc from {gpw.name}" and seen["vacuum"] == 4.0
    assert info["fidelity_meV"] == pytest.approx(4.0) and not seen["store"].exists()
    assert ds.is_done(out, specs[0].name, wannier=True, k_density=DFTSettings().k_density)
    with np.load(ds.chunk_path(out, specs[0].name)) as z:
        assert float(z["energy"]) == -300.0 and "pair_values" in z.files


def test_registry_plan_is_pristine_unstrained_1x1_cells_that_differ_only_in_registry(tmp_path, monkeypatch):
    """The registry plan: 1×1, no strain, no displacements, R / H alternating, translations spread
    over the cell, near-equilibrium distances, every cell with a Wannier label; names of its own."""
    from wander_gui.dft.sampling import D_RANGE, equilibrium_spec, plan_of, registry_spec
    specs = [registry_spec(i) for i in range(60)]
    assert registry_spec(7) == specs[7] and [s.stacking for s in specs[:4]] == ["R", "H", "R", "H"]
    assert all(s.supercell == 1 and s.sigma == 0 and s.strain_percent == 0 and s.wannier for s in specs)
    names = {s.name for s in specs}
    assert all(plan_of(n) == "registry" for n in names)
    assert not names & ({config_spec(i).name for i in range(60)} | {equilibrium_spec(i).name for i in range(60)})
    shifts = np.array([s.shift_frac for s in specs])
    assert len({tuple(x) for x in shifts}) == 60 and shifts.min() >= 0 and shifts.max() < 1
    assert np.histogram(shifts[:, 0], bins=3, range=(0, 1))[0].min() >= 10  # spread over the cell
    d = np.array([s.d_interlayer for s in specs])
    assert D_RANGE[0] <= d.min() and d.max() <= D_RANGE[1] and abs(np.median(d) - 6.35) < 0.1
    # the structures: unstrained primitive cells whose layers are pristine MoS2 (one S–S thickness,
    # one Mo–S bond length in every cell); only the top layer's translation and height differ
    from ase.geometry import get_distances

    from wander_gui.core.materials import MATERIALS
    mos2 = MATERIALS["MoS2"]
    bonds = []
    for s in specs[:6]:
        a = build_config(s)
        assert len(a) == 6 and np.allclose(a.cell.lengths()[:2], mos2.a)
        for layer in (0, 1):
            sel = a.arrays["layer"] == layer
            z = a.positions[sel, 2]
            assert np.isclose(np.ptp(z), mos2.t_XX)
            mo = np.flatnonzero(sel & (a.numbers == 42))
            s_at = np.flatnonzero(sel & (a.numbers == 16))
            _, dist = get_distances(a.positions[mo], a.positions[s_at], cell=a.cell, pbc=True)
            bonds.append(dist.min())
    assert np.ptp(bonds) < 1e-9
    calls = []
    monkeypatch.setattr(ds, "label_config", lambda spec, o, w, st, **kw: calls.append(spec.name) or {})
    ds.generate(tmp_path / "ds", tmp_path / "work", n_configs=2, plan="registry")
    assert calls == [specs[0].name, specs[1].name]
