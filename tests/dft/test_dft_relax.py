"""The DFT relaxation driver resumes where it stopped, with its BFGS curvature history
(a cheap anisotropic spring surface stands in for GPAW)."""
import json

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from wander_gui.core.builder import build_aligned
from wander_gui.dft.relax import dft_relax


class AnisotropicSprings(Calculator):
    """E = ½ Σ k_ia (x_ia − x0_ia)² with stiffnesses spread over a decade (BFGS needs
    several steps to learn them, so a lost Hessian changes the path)."""
    implemented_properties = ["energy", "forces"]

    def __init__(self, x0, k):
        super().__init__()
        self.x0, self.k = x0, k

    calls = 0  # evaluations, over all instances

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        AnisotropicSprings.calls += 1
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.x0
        self.results = {"energy": 0.5 * float((self.k * d ** 2).sum()), "forces": -self.k * d}


def _case():
    a = build_aligned(d_interlayer=6.3)
    rng = np.random.default_rng(1)
    x0 = a.positions.copy()
    k = rng.uniform(2.0, 30.0, x0.shape)
    a.positions += rng.normal(0, 0.08, x0.shape)
    return a, (lambda atoms, out: AnisotropicSprings(x0, k))


def test_interrupted_relaxation_continues_on_the_same_path(tmp_path):
    atoms, calc = _case()
    full = dft_relax(atoms, tmp_path / "full", fmax=1e-9, steps=6, make_calculator=calc)
    # stop after 3 steps, rerun for 3 more: the rerun takes the last written structure's energy
    # and forces from the trajectory (no SCF again), then BFGS goes on with the stored Hessian
    dft_relax(atoms, tmp_path / "split", fmax=1e-9, steps=3, make_calculator=calc)
    before = AnisotropicSprings.calls
    resumed = dft_relax(atoms, tmp_path / "split", fmax=1e-9, steps=3, make_calculator=calc)
    assert AnisotropicSprings.calls - before == 3  # the three new structures only
    np.testing.assert_allclose(resumed["atoms"].positions, full["atoms"].positions, atol=1e-10)
    n_full = len(read(tmp_path / "full" / "relax.traj", index=":"))
    assert len(read(tmp_path / "split" / "relax.traj", index=":")) == n_full
    assert len(json.loads((tmp_path / "split" / "steps.json").read_text())) == n_full

    # without the stored Hessian the resumed path differs (what the restart file is for)
    (tmp_path / "split" / "bfgs_hessian.json").unlink()
    for f in ("relax.traj", "steps.json"):
        (tmp_path / "split" / f).unlink()
    dft_relax(atoms, tmp_path / "split", fmax=1e-9, steps=3, make_calculator=calc)
    (tmp_path / "split" / "bfgs_hessian.json").unlink()
    lost = dft_relax(atoms, tmp_path / "split", fmax=1e-9, steps=3, make_calculator=calc)
    assert np.abs(lost["atoms"].positions - full["atoms"].positions).max() > 1e-4


def test_a_relaxation_keeps_the_dft_settings_it_started_with(tmp_path):
    """A resumed trajectory never switches level of theory: its settings are stored with it,
    and a trajectory from before they were stored continues with the legacy k-mesh rule."""
    import pytest

    from wander_gui.dft.relax import _pinned_settings
    from wander_gui.dft.settings import LEGACY_K_DENSITY, QUICK, DFTSettings
    from wander_gui.errors import InputError
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert _pinned_settings(fresh, None, resumed=False) == DFTSettings()
    assert _pinned_settings(fresh, None, resumed=True) == DFTSettings()  # stored on the first start
    with pytest.raises(InputError, match="other DFT settings"):
        _pinned_settings(fresh, QUICK, resumed=True)
    old = tmp_path / "old"
    old.mkdir()
    assert _pinned_settings(old, None, resumed=True).k_density == LEGACY_K_DENSITY
    assert _pinned_settings(old, None, resumed=True).k_density == LEGACY_K_DENSITY


def test_validation_relaxation_state_is_kept_beside_the_result(tmp_path, monkeypatch):
    """The resumable state of a validation cell's DFT relaxation lives in the versioned
    results folder (a relaxation outlasts a working session; the work folder does not survive
    a fresh checkout), logs in the work folder; a state left in the work folder by an earlier
    version is carried over, and a started relaxation keeps its own DFT settings."""
    from wander_gui.dft import relax, validation
    from wander_gui.dft.settings import DFTSettings
    calls = []

    def fake(atoms, out_dir, *, settings=None, fmax=0.02, steps=200, make_calculator=None, log_dir=None,
             hessian_from=None):
        calls.append({"out": out_dir, "logs": log_dir, "settings": settings,
                      "carried": (out_dir / "relax.traj").exists()})
        (out_dir / "settings.json").write_text(json.dumps({"k_density": 12.0}))
        (out_dir / "steps.json").write_text(json.dumps([{"seconds": 1.0, "fmax": 0.01}]))
        return {"converged": True, "steps": 1, "fmax": 0.01, "atoms": atoms}
    monkeypatch.setattr(relax, "dft_relax", fake)
    out, work = tmp_path / "validation", tmp_path / "work"
    (work / "tw21.79-R" / "relax").mkdir(parents=True)
    (work / "tw21.79-R" / "relax" / "relax.traj").write_bytes(b"old state")
    twelve = DFTSettings(k_density=12.0)
    validation.relax_reference("tw21.79-R", out, work, settings=twelve)
    state = out / "tw21.79-R" / "relax"
    assert calls[0] == {"out": state, "logs": work / "tw21.79-R" / "relax", "settings": twelve, "carried": True}
    with np.load(out / "tw21.79-R" / "result.npz") as z:
        assert bool(z["relax_converged"]) and int(z["relax_steps"]) == 1
    validation.relax_reference("tw21.79-R", out, work, settings=DFTSettings())  # started: its own settings
    assert calls[1]["settings"] is None


def test_force_field_curvature_restarts_bfgs_and_converges_in_fewer_steps(tmp_path):
    """``hessian_from``: BFGS starts from the cheap calculator's finite-difference curvature at
    the current structure (here the exact one of the spring surface: a Newton step), instead
    of creeping along the soft directions from its isotropic guess."""
    from wander_gui.dft.relax import model_hessian
    atoms, calc = _case()
    springs = calc(atoms, None)
    H = model_hessian(atoms, springs)
    np.testing.assert_allclose(H, np.diag(springs.k.ravel()), atol=1e-6)
    plain = dft_relax(atoms, tmp_path / "plain", fmax=1e-4, steps=60, make_calculator=calc)
    # start plain for two steps, then restart it from the curvature: done in one more step
    dft_relax(atoms, tmp_path / "pre", fmax=1e-4, steps=2, make_calculator=calc)
    pre = dft_relax(atoms, tmp_path / "pre", fmax=1e-4, steps=60, make_calculator=calc, hessian_from=springs)
    assert plain["converged"] and pre["converged"]
    n_pre = len(json.loads((tmp_path / "pre" / "steps.json").read_text()))  # structures evaluated
    assert n_pre <= 3 + 3 and plain["steps"] > n_pre + 5, (n_pre, plain["steps"])
    np.testing.assert_allclose(pre["atoms"].positions, springs.x0, atol=1e-4)
    assert json.loads((tmp_path / "pre" / "preconditioned.json").read_text()) == [
        {"model": "AnisotropicSprings", "at_step": 3}]  # the start + 2 BFGS steps were evaluated
