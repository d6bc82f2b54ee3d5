"""ASE calculator around the force field (energy, forces; layers detected automatically)."""
from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.graph import atoms_to_graph


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class WanderCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and per-atom latent features (``results['raer']``).

    Parameters
    ----------
    model : ForceField
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"``.
    dtype : torch dtype or "auto"
        float32 for speed on large cells (2-3x faster, half the memory; forces agree with
        float64 to ~1e-5 eV/Å), float64 for finite-difference-grade accuracy; "auto": float64
        below :attr:`AUTO_FLOAT32_ATOMS` atoms, float32 from there on. The energy is always
        summed in float64. The model passed in is not modified (a cached copy is used when
        the device or precision differs).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces"]
    AUTO_FLOAT32_ATOMS = 2000

    def __init__(self, model: ForceField, *, device: str | None = None, dtype=torch.float64, **kw):
        super().__init__(**kw)
        self.device = device or default_device()
        self.dtype = dtype
        self.base_model = model

    def dtype_for(self, n_atoms: int):
        if self.dtype == "auto":
            return torch.float32 if n_atoms >= self.AUTO_FLOAT32_ATOMS else torch.float64
        return self.dtype

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from wander_gui.ml.predict import inference_copy, torch_threads_for
        super().calculate(atoms, properties, system_changes)
        dtype = self.dtype_for(len(self.atoms))
        model = inference_copy(self.base_model, self.device, dtype)
        with torch_threads_for(len(self.atoms), self.device):
            g = atoms_to_graph(self.atoms, model.config["r_c"], dtype=dtype).to(self.device)
            g.pos.requires_grad_(True)
            E_i, Z, _ = model.atomic(g)
            (grad,) = torch.autograd.grad(E_i.sum(), g.pos)
        self.results["energy"] = self.results["free_energy"] = float(E_i.detach().double().sum().cpu())
        self.results["energies"] = E_i.detach().cpu().numpy().astype(np.float64)
        self.results["forces"] = (-grad).detach().cpu().numpy().astype(np.float64)
        self.results["raer"] = Z.detach().cpu().numpy()
