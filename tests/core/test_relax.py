import threading

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from wander_gui.core.builder import build_aligned, build_twisted
from wander_gui.core.relax import PAPER_ALPHA, corrugation, displacement_map, out_of_plane_displacement, relax
from wander_gui.errors import InputError, RelaxationError, StructureError


class Springs(Calculator):
    """E = k/2 Σ |x − x0|² (a known, convex test surface)."""
    implemented_properties = ["energy", "forces"]

    def __init__(self, x0, k=5.0):
        super().__init__()
        self.x0, self.k = np.array(x0), k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.x0
        self.results = {"energy": 0.5 * self.k * float((d ** 2).sum()), "forces": -self.k * d}


@pytest.fixture
def perturbed():
    a = build_aligned(supercell=2, d_interlayer=6.3)
    x0 = a.positions.copy()
    a.positions += np.random.default_rng(0).normal(0, 0.05, a.positions.shape)
    return a, x0


@pytest.mark.parametrize("opt", ["fire", "bfgs", "lbfgs", "paper"])
def test_converges(perturbed, opt):
    a, x0 = perturbed
    r = relax(a, Springs(x0), optimizer=opt, fmax=1e-3, steps=2000)
    assert r.converged and r.fmaxes[-1] < 1e-3
    assert np.allclose(r.atoms.positions, x0, atol=1e-3)
    if opt in ("bfgs", "lbfgs"):
        assert np.all(np.diff(r.energies) <= 1e-12)  # line-search optimisers decrease monotonically


def test_paper_step_on_harmonic_case(perturbed):
    a, x0 = perturbed
    k = 5.0
    d0 = a.positions - x0
    r = relax(a, Springs(x0, k), optimizer="paper", fmax=1e-12, steps=3)
    # x <- x + alpha f  with f = -k d  =>  d_n = (1 - alpha k)^n d_0
    assert np.allclose(r.atoms.positions - x0, (1 - PAPER_ALPHA * k) ** 3 * d0)
    assert PAPER_ALPHA == pytest.approx(0.529 / 13.605693, rel=1e-6)


def test_every_step_reports_maps_of_that_step():
    from wander_gui.core.relax import interlayer_distance_map
    a = build_twisted(mn=(2, 3), d_interlayer=6.4)
    x0 = a.positions.copy()
    frac = a.get_scaled_positions()
    bump = 0.2 * np.cos(np.pi * frac[:, 0]) ** 2 * np.cos(np.pi * frac[:, 1]) ** 2  # relaxes back to flat
    a.positions[:, 2] += np.where(a.arrays["layer"] == 1, bump, 0.0)
    seen = []
    relax(a, Springs(x0), optimizer="fire", fmax=1e-4, steps=200, on_step=seen.append)
    first, last = seen[0], seen[-1]
    assert first.atoms is not last.atoms and first.atoms.calc is None
    assert np.allclose(first.atoms.positions, a.positions)  # a snapshot, not the moving structure
    _, _, d0 = first.interlayer_distance_map(n=16)
    assert np.allclose(d0, interlayer_distance_map(a, n=16)[2], equal_nan=True)
    assert np.nanmax(d0) - np.nanmin(d0) > 0.15  # the bump is seen at step 0 ...
    _, _, d1 = last.interlayer_distance_map(n=16)
    assert np.nanmax(np.abs(d1 - 6.4)) < 1e-3  # ... and gone at the end
    x, y, dz = last.displacement_map(1, n=16, repeat=2)
    assert dz.shape == (32, 32) and np.nanmax(np.abs(dz)) < 1e-3


class FailsAt(Springs):
    """Springs that raise (or return NaN forces) from the n-th evaluation on."""

    def __init__(self, x0, n, nan=False):
        super().__init__(x0)
        self.n, self.nan, self.calls = n, nan, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        self.calls += 1
        super().calculate(atoms, properties, system_changes)
        if self.calls >= self.n:
            if not self.nan:
                raise RuntimeError("calculator blew up")
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("opt", ["fire", "paper"])
def test_failed_step_keeps_the_last_good_structure(perturbed, opt, nan):
    a, x0 = perturbed
    seen = []
    with pytest.raises(RelaxationError, match="4 good step.*step 3 is kept") as err:
        relax(a, FailsAt(x0, 5, nan), optimizer=opt, fmax=1e-6, steps=100, on_step=seen.append)
    res = err.value.result
    assert res.steps == 3 and len(res.energies) == 4
    assert np.allclose(res.atoms.positions, seen[-1].atoms.positions)  # step 3, not the failed step 4
    assert not np.allclose(res.atoms.positions, a.positions)


def test_cli_writes_the_last_good_structure_when_a_step_fails(perturbed, tmp_path, monkeypatch):
    from ase.io import read, write

    from wander_gui import backend
    from wander_gui.cli import main
    a, x0 = perturbed
    write(tmp_path / "in.extxyz", a)
    monkeypatch.setattr(backend, "calculator", lambda **kw: FailsAt(x0, 3))
    code = main(["relax", str(tmp_path / "in.extxyz"), "-o", str(tmp_path / "out.extxyz"), "--steps", "50"])
    assert code == 4
    out = read(tmp_path / "out.extxyz")
    assert len(out) == len(a) and not np.allclose(out.positions, a.positions)


def test_cancel_keeps_last_structure(perturbed):
    a, x0 = perturbed
    cancel = threading.Event()
    seen = []

    def on_step(info):
        seen.append(info.step)
        if info.step == 3:
            cancel.set()
    r = relax(a, Springs(x0), optimizer="fire", fmax=1e-6, steps=500, on_step=on_step, cancel=cancel)
    assert r.cancelled and not r.converged
    assert seen[-1] == 3
    assert not np.allclose(r.atoms.positions, a.positions)  # moved, and the moved structure is returned
    assert r.atoms.positions.shape == a.positions.shape


def test_displacement_zero_for_flat_and_correct_for_known_corrugation():
    a = build_twisted(mn=(2, 3))
    for dz in out_of_plane_displacement(a, species="Mo"):
        assert np.allclose(dz, 0)
    assert corrugation(a) == [pytest.approx(0), pytest.approx(0)]
    b = a.copy()
    frac = b.get_scaled_positions()
    amp = 0.2
    bump = amp * np.cos(2 * np.pi * frac[:, 0]) * np.cos(2 * np.pi * frac[:, 1])
    b.positions[:, 2] += np.where(b.arrays["layer"] == 0, bump, -bump)
    dz0, dz1 = out_of_plane_displacement(b, species="Mo")
    mo = np.array(b.get_chemical_symbols()) == "Mo"
    l0 = mo & (b.arrays["layer"] == 0)
    assert np.allclose(dz0, bump[l0] - bump[l0].mean())
    gx, gy, grid = displacement_map(b, 0, n=24)
    assert np.nanmax(np.abs(grid)) <= amp + 1e-9
    assert np.nanmax(grid) - np.nanmin(grid) > amp  # the map resolves the bump
    # tiled over 2×2 moiré cells: four copies, on coordinates shifted by the cell vectors
    tx, ty, tiled = displacement_map(b, 0, n=24, repeat=2)
    assert tiled.shape == (48, 48)
    assert np.allclose(tiled[24:, 24:], grid, equal_nan=True) and np.allclose(tiled[:24, 24:], grid, equal_nan=True)
    a1, a2 = b.cell.array[0, :2], b.cell.array[1, :2]
    assert np.allclose(tx[24:, 24:] - gx, a1[0] + a2[0]) and np.allclose(ty[24:, 24:] - gy, a1[1] + a2[1])


def test_bad_input(perturbed):
    a, x0 = perturbed
    with pytest.raises(InputError, match="optimizer"):
        relax(a, Springs(x0), optimizer="newton")
    b = a.copy()
    b.positions[0] = np.nan
    with pytest.raises(StructureError, match="NaN"):
        relax(b, Springs(x0))
    c = a.copy()
    c.positions[1] = c.positions[0]
    with pytest.raises(StructureError, match="apart"):
        relax(c, Springs(x0))
    mono = a[a.arrays["layer"] == 0]
    del mono.arrays["layer"]
    with pytest.raises(StructureError):
        relax(mono, Springs(x0[: len(mono)]))
    big = build_twisted(mn=(8, 9))  # 1302 atoms: fine for BFGS; a 2x2 repeat is not
    big = big.repeat((2, 2, 1))
    with pytest.raises(InputError, match="bfgs.*1500 atoms.*5208.*lbfgs"):
        relax(big, Springs(big.positions.copy()), optimizer="bfgs")


def test_interlayer_distance_map_and_stacking_points():
    from wander_gui.core.relax import interlayer_distance_map, stacking_distances
    a = build_twisted(mn=(3, 4), d_interlayer=6.4)
    x, y, d = interlayer_distance_map(a, n=20)
    assert np.nanmax(np.abs(d - 6.4)) < 1e-9  # flat layers: constant distance
    b = a.copy()
    frac = b.get_scaled_positions()
    # open the gap by 0.3 Å at the AA corner: a bump of the top layer centred on the origin
    bump = 0.3 * np.cos(np.pi * frac[:, 0]) ** 2 * np.cos(np.pi * frac[:, 1]) ** 2
    b.positions[:, 2] += np.where(b.arrays["layer"] == 1, bump, 0.0)
    s = stacking_distances(b)
    assert set(s) == {"AA", "AB", "BA"}
    assert s["AA"] > s["AB"] and s["AA"] > s["BA"]
    assert s["AA"] == pytest.approx(6.7, abs=0.05)
