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
    dtype : torch dtype
        float32 for speed on large cells, float64 for finite-difference-grade accuracy.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces"]

    def __init__(self, model: ForceField, *, device: str | None = None, dtype=torch.float64, **kw):
        super().__init__(**kw)
        self.device = device or default_device()
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        g = atoms_to_graph(self.atoms, self.model.config["r_c"], dtype=self.dtype).to(self.device)
        g.pos.requires_grad_(True)
        E_i, Z, _ = self.model.atomic(g)
        E = E_i.sum()
        (grad,) = torch.autograd.grad(E, g.pos)
        self.results["energy"] = self.results["free_energy"] = float(E.detach().cpu())
        self.results["energies"] = E_i.detach().cpu().numpy().astype(np.float64)
        self.results["forces"] = (-grad).detach().cpu().numpy().astype(np.float64)
        self.results["raer"] = Z.detach().cpu().numpy()
