"""CLI commands that need a model, run on a small model trained here on the shipped DFT chunks."""
import subprocess
import sys

import numpy as np
import pytest

from wander_gui.core.builder import build_twisted
from wander_gui.core.io import read_hr, read_structure, write_structure

DATA = "pretrained/dataset"


def wander(*args):
    return subprocess.run([sys.executable, "-m", "wander_gui.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    cfg = out / "cfg.json"
    cfg.write_text('{"ff": {"epochs": 3}, "h": {"epochs": 3, "model": {"r_max": 8.0}}}')
    r = wander("train", "--data", DATA, "--out", str(out), "--config", str(cfg), "--no-resume")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "ff.pt").exists() and (out / "h.pt").exists()
    return out


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    p = tmp_path_factory.mktemp("cell") / "c.extxyz"
    a = build_twisted(mn=(1, 2))
    a.info["junk"] = "ignored"
    write_structure(a, p)
    return p


def test_forces_command(model_dir, cell, tmp_path):
    r = wander("forces", str(cell), "-o", str(tmp_path / "f.extxyz"), "--model-dir", str(model_dir))
    assert r.returncode == 0, r.stderr
    a = read_structure(tmp_path / "f.extxyz")
    # ASE reads the extxyz `forces` column and `energy` key back as calculator results
    assert a.get_forces().shape == (42, 3) and np.isfinite(a.get_potential_energy())
    assert "forces" in open(tmp_path / "f.extxyz").readline() + open(tmp_path / "f.extxyz").readlines()[1]


def test_relax_exit_code_when_not_converged(model_dir, cell, tmp_path):
    out = tmp_path / "r.extxyz"
    r = wander("relax", str(cell), "-o", str(out), "--model-dir", str(model_dir), "--steps", "2",
               "--fmax", "0.00001")
    assert r.returncode != 0
    assert "did not converge" in r.stderr or "fmax" in r.stderr
    a = read_structure(out)  # the structure so far is still written
    assert a.get_forces().shape == (42, 3) and len(a) == 42


def test_hamiltonian_and_bands_commands(model_dir, cell, tmp_path):
    hr_path = tmp_path / "p_hr.dat"
    r = wander("hamiltonian", str(cell), "-o", str(hr_path), "--model-dir", str(model_dir))
    assert r.returncode == 0, r.stderr
    hr = read_hr(hr_path)
    assert hr.num_wann == 14 * 5 + 28 * 3
    assert hr.hermiticity_error() < 1e-5
    r = wander("bands", str(cell), "--model-dir", str(model_dir), "-o", str(tmp_path / "b.npz"), "--npoints", "10")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "b.npz")
    assert z["kpts_frac"].shape == (10, 3) and z["eps_eV"].shape == (10, 154)
    assert np.all(np.diff(z["eps_eV"], axis=1) >= -1e-9)
    # the same bands from the written _hr.dat
    r = wander("bands", str(cell), "--hr", str(hr_path), "-o", str(tmp_path / "b2.npz"), "--npoints", "10")
    assert r.returncode == 0, r.stderr
    assert np.allclose(np.load(tmp_path / "b2.npz")["eps_eV"], z["eps_eV"], atol=1e-4)


def test_missing_model_gives_clear_error(cell, tmp_path):
    r = wander("forces", str(cell), "-o", str(tmp_path / "x.extxyz"), "--model-dir", str(tmp_path / "nope"))
    assert r.returncode == 2 and "missing" in r.stderr


def test_parity_command(model_dir, tmp_path):
    import json
    from wander_gui.dft.dataset import dataset_info
    info = dataset_info(DATA)
    r = wander("parity", "--model-dir", str(model_dir), "--split", "all", "--json", "--plot", str(tmp_path / "p.png"))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout[:r.stdout.rindex("}") + 1])
    assert s["forces"]["all"]["n"] == 3 * info["n_atoms_total"]
    assert s["forces"]["Mo"]["n"] + s["forces"]["S"]["n"] == s["forces"]["all"]["n"]
    if info["n_hamiltonian_configs"]:
        assert {"onsite", "intra", "inter"} <= set(s["hamiltonian"])
        assert s["hamiltonian"]["onsite"]["n"] > 0
        # "all" pools the three categories: its count and MAE are their count-weighted sums
        cats = [s["hamiltonian"][c] for c in ("onsite", "intra", "inter")]
        assert s["hamiltonian"]["all"]["n"] == sum(c["n"] for c in cats)
        assert np.isclose(s["hamiltonian"]["all"]["mae_meV"] * s["hamiltonian"]["all"]["n"],
                          sum(c["mae_meV"] * c["n"] for c in cats), rtol=1e-4)
    assert (tmp_path / "p.png").stat().st_size > 10_000
    r = wander("parity", "--model-dir", str(model_dir), "--split", "test", "--json", "--attribution")
    att = json.loads(r.stdout[:r.stdout.rindex("}") + 1])["band_error_attribution_meV"]
    assert att and all(set(row) == {"predicted", "DFT on-site", "DFT intra", "DFT inter"} for row in att.values())
    # an extxyz with DFT forces works the same way; one without forces is refused clearly
    from ase.io import write
    from wander_gui.ml.data import load_samples
    smp = load_samples(DATA)[0]
    a = smp.atoms.copy()
    a.arrays["forces"] = smp.forces
    write(tmp_path / "dft.extxyz", a, format="extxyz")
    r = wander("parity", "--model-dir", str(model_dir), "--structure", str(tmp_path / "dft.extxyz"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["forces"]["all"]["n"] == 3 * len(a)
    del a.arrays["forces"]
    write(tmp_path / "bare.extxyz", a, format="extxyz")
    r = wander("parity", "--model-dir", str(model_dir), "--structure", str(tmp_path / "bare.extxyz"))
    assert r.returncode == 2 and "no `forces`" in r.stderr


def test_bands_command_subspace_solver(model_dir, cell, tmp_path):
    """`wander bands --solver subspace` on a predicted H: the 4 states below and 4 above σ at
    every k, equal to the dense solution, with the residuals stored."""
    r = wander("bands", str(cell), "--model-dir", str(model_dir), "-o", str(tmp_path / "d.npz"), "--npoints", "9")
    assert r.returncode == 0, r.stderr
    dense = np.load(tmp_path / "d.npz")["eps_eV"]
    e = np.sort(dense.ravel())
    mid = e[len(e) // 4: 3 * len(e) // 4]
    j = int(np.argmax(np.diff(mid)))
    sigma = 0.5 * (mid[j] + mid[j + 1])  # inside the widest spacing of the central spectrum
    r = wander("bands", str(cell), "--model-dir", str(model_dir), "-o", str(tmp_path / "s.npz"), "--npoints", "9",
               "--solver", "subspace", "--nbands", "8", "--sigma", f"{sigma:.10f}", "--tol", "1e-4")
    assert r.returncode == 0, r.stderr
    assert "largest residual" in r.stdout
    z = np.load(tmp_path / "s.npz")
    assert z["residual_eV"].max() <= 1e-4 and int(z["n_valence"]) == 4
    for i, row in enumerate(dense):
        nv = int((row < sigma).sum())
        np.testing.assert_allclose(z["eps_eV"][i], row[nv - 4:nv + 4], atol=1e-5)


def test_train_refuses_fine_tuning_cells_named_like_training_cells(tmp_path):
    import shutil
    from pathlib import Path
    chunk = sorted(Path(DATA, "chunks").glob("*.npz"))[0]
    (tmp_path / "tune" / "chunks").mkdir(parents=True)
    shutil.copy(chunk, tmp_path / "tune" / "chunks" / chunk.name)
    r = wander("train", "--data", DATA, "--finetune", str(tmp_path / "tune"), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "repeat across the dataset folders" in r.stderr and chunk.stem in r.stderr


def test_train_k_density_selects_training_data_but_keeps_fine_tuning_cells(tmp_path):
    """The fine-tuning cells (computed under the former 12 Å rule) stay when --k-density 18
    selects the training data."""
    from pathlib import Path
    from wander_gui.dft.dataset import chunk_k_density
    rules = {}
    for c in sorted(Path(DATA, "chunks").glob("*.npz")):
        rules.setdefault(chunk_k_density(np.load(c)["meta"]), []).append(c.stem)
    tune = sorted(Path(DATA).parent.glob("finetune/chunks/*.npz"))
    assert 18.0 in rules and tune and {chunk_k_density(np.load(t)["meta"]) for t in tune} == {12.0}
    r = wander("train", "--data", DATA, "--finetune", str(tune[0].parent.parent), "--k-density", "18",
               "--what", "none", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert f"training data: {len(rules[18.0])} configurations of the 18 Å k-mesh rule + {len(tune)} fine-tuning cells" \
        in r.stdout


def test_heads_train_on_h_data_when_given(model_dir, tmp_path):
    """--h-data: the heads learn from that folder's Wannier labels, whatever --data holds (here
    the fine-tuning cells that carry none: without --h-data there is nothing to fit)."""
    import shutil
    from pathlib import Path
    from wander_gui.dft.dataset import has_current_label
    tune = tmp_path / "unlabelled"
    (tune / "chunks").mkdir(parents=True)
    for c in sorted((Path(DATA).parent / "finetune" / "chunks").glob("*.npz")):
        if not has_current_label(np.load(c)):
            shutil.copy(c, tune / "chunks" / c.name)
    assert any((tune / "chunks").iterdir())
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"h": {"epochs": 1, "model": {"r_max": 6.0}}}')
    for d in ("plain", "h-data"):
        (tmp_path / d).mkdir()
        shutil.copy(model_dir / "ff.pt", tmp_path / d / "ff.pt")
    r = wander("train", "--data", str(tune), "--what", "h", "--config", str(cfg), "--out", str(tmp_path / "plain"))
    assert r.returncode != 0 and "no configuration carries a current Wannier label" in r.stderr
    r = wander("train", "--data", str(tune), "--h-data", DATA, "--what", "h", "--config", str(cfg),
               "--out", str(tmp_path / "h-data"))
    assert r.returncode == 0, r.stderr[-2000:]
    n = sum(has_current_label(np.load(c)) for c in Path(DATA, "chunks").glob("*.npz"))
    assert f"Hamiltonian heads: {n} Wannier-labelled configurations of {DATA}" in r.stdout
    assert (tmp_path / "h-data" / "h.pt").exists()
