"""GPU paths (run where torch sees a CUDA device; CI machines have none, so these are
skipped there and run on the project's GPU machine: see bench/RESULTS.md for the record)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from wander_gui.core.builder import build_twisted
from wander_gui.electronic.solvers import choose_solver, eigenpairs_at
from wander_gui.ml.calculator import WanderCalculator
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.hamiltonian import HamiltonianModel
from wander_gui.ml.predict import predict_blocks

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def cell():
    a = build_twisted(mn=(2, 3))
    a.positions += np.random.default_rng(1).normal(0, 0.03, a.positions.shape)
    return a


def test_forces_on_gpu_match_cpu(cell):
    torch.manual_seed(0)
    ff = ForceField().double()
    out = {}
    for dev in ("cpu", "cuda"):
        a = cell.copy()
        a.calc = WanderCalculator(ff, device=dev)  # the calculator copies the model to the device
        out[dev] = (a.get_potential_energy(), a.get_forces())
    assert out["cuda"][0] == pytest.approx(out["cpu"][0], abs=1e-8)
    assert np.abs(out["cuda"][1] - out["cpu"][1]).max() < 1e-8


@pytest.mark.parametrize("form", ["frame", "sk"])
def test_hamiltonian_on_gpu_matches_cpu(cell, form):
    torch.manual_seed(0)
    ff, hm = ForceField().double(), HamiltonianModel(r_max=8.0, block_form=form).double()
    cpu = predict_blocks(ff, hm, cell, device="cpu")
    gpu = predict_blocks(ff, hm, cell, device="cuda")
    assert np.array_equal(cpu.ij, gpu.ij)
    assert np.abs(cpu.blocks - gpu.blocks).max() < 1e-9


def test_gpu_eigh_matches_lapack_and_is_chosen_for_large_matrices():
    rng = np.random.default_rng(0)
    n = 600
    A = sp.random(n, n, density=0.02, random_state=1) + 1j * sp.random(n, n, density=0.02, random_state=2)
    H = (A + A.getH()).tocsr() + sp.diags(rng.normal(size=n))
    e_cpu = eigenpairs_at(H, nbands=None, sigma=None, solver="dense")
    e_gpu = eigenpairs_at(H, nbands=None, sigma=None, solver="torch")
    assert np.abs(e_cpu - e_gpu).max() < 1e-9
    e16_cpu = eigenpairs_at(H, nbands=16, sigma=0.1, solver="dense")
    e16_gpu, V = eigenpairs_at(H, nbands=16, sigma=0.1, solver="torch", vectors=True)
    assert np.abs(e16_cpu - e16_gpu).max() < 1e-9
    assert np.abs(H @ V - V * e16_gpu).max() < 1e-8
    assert choose_solver(10_000, 16) == "torch"
    assert choose_solver(500, 16) == "dense"
