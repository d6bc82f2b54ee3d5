"""The project's reference level of theory (one place, used by every DFT run).

GPAW plane waves 350 eV, PBE, default PAW setups (14-electron Mo), Fermi–Dirac 0.05 eV,
no symmetry, pbc (T, T, F) with ≥ 15 Å vacuum and a dipole-layer correction, Γ-centred
in-plane k mesh n_k = ceil(12 Å / L) (L: shorter in-plane cell length), plus
D3(BJ) dispersion (simple-dftd3) added to energies and forces.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

LEVEL_OF_THEORY = ("GPAW 26.7 plane waves 350 eV, PBE, PAW setups (Mo 14 e), Fermi-Dirac 0.05 eV, "
                   "dipole-layer correction, k mesh ceil(12 A / L), + D3(BJ) (simple-dftd3)")

#: Band windows for the Wannier basis, relative to the conduction-band minimum / manifold
FROZEN_ABOVE_CBM = 1.0  # eV: frozen window top = CBM + this
OUTER_ABOVE_CBM = 4.0   # eV: outer (disentanglement) window top = CBM + this
#: Version of the Wannier labelling method; labels and Wannier failures of older versions are
#: recomputed. 1: GPAW's calculate_overlaps (PAW phase bug off the origin) and an outer window
#: up to the last computed band. 2: our paw_overlaps and a fixed outer window (CBM + 4 eV).
#: 3: pair shifts of atoms that GPAW wraps into the cell expressed for the positions as given
#: (version-2 labels of such cells put those atoms' hoppings one lattice vector off), checked
#: by the in-plane hopping centroid of every atom.
WANNIER_VERSION = 3
HOPPING_CENTROID_LIMIT = 0.5  # Å: largest allowed in-plane hopping centroid of an atom
EXCLUDED_PER_FU = 6     # semicore Mo 4s/4p and chalcogen s bands below the d–p manifold
WANNIER_PER_FU = 11     # 5 metal d + 2 × 3 chalcogen p
EXTRA_BANDS_PER_FU = 5  # outer-window states for disentanglement


@dataclass(frozen=True)
class DFTSettings:
    ecut: float = 350.0
    xc: str = "PBE"
    width: float = 0.05
    k_density: float = 12.0  # Å: n_k = ceil(k_density / L)
    d3: bool = True
    conv_energy: float = 1e-6  # eV / valence electron (GPAW 'energy' criterion, per electron)
    conv_density: float = 1e-5
    conv_forces: float = 1e-3  # eV/Å change between iterations
    maxiter: int = 200
    quick: bool = False  # preview setting, never stored as reference

    def label(self) -> str:
        return "QUICK PREVIEW (not reference)" if self.quick else LEVEL_OF_THEORY

    def asdict(self) -> dict:
        return asdict(self)


QUICK = DFTSettings(ecut=250.0, k_density=8.0, conv_energy=1e-5, conv_density=1e-4,
                    conv_forces=1e-2, quick=True)


def kmesh(atoms, k_density: float) -> tuple[int, int]:
    """In-plane mesh n_k × n_k with n_k = ceil(k_density / L), L the shorter in-plane length."""
    L = min(np.linalg.norm(atoms.cell[0]), np.linalg.norm(atoms.cell[1]))
    n = max(1, math.ceil(k_density / L - 1e-9))
    return (n, n)


def n_formula_units(atoms, metal: str) -> int:
    return int(sum(1 for s in atoms.get_chemical_symbols() if s == metal))
