"""The project's reference level of theory (one place, used by every DFT run).

GPAW plane waves 350 eV, PBE, default PAW setups (14-electron Mo), Fermi–Dirac 0.05 eV,
no symmetry, pbc (T, T, F) with ≥ 15 Å vacuum and a dipole-layer correction, Γ-centred
in-plane k mesh n_k = ceil(18 Å / L) (L: shorter in-plane cell length), plus
D3(BJ) dispersion (simple-dftd3) added to energies and forces.

The k-mesh rule was ceil(12 Å / L) until 2026-11-23 (``LEGACY_K_DENSITY``; chunks record the
rule they were computed with). Measured on the 1×1 2H bilayer (Mo–Mo 6.2 Å), SCF mesh
4×4 / 6×6 / 8×8: valence maximum at Γ −5.484 / −5.505 / −5.505 eV and conduction minimum at K
−4.257 / −4.286 / −4.287 eV below the vacuum level, S force along z 0.166 / 0.130 / 0.134 eV/Å;
on three perturbed 1×1 cells 4×4 → 8×8 moved forces by up to 47–64 meV/Å and energies by
17–20 meV/atom, 8×8 → 12×12 by < 1 meV/Å (``dataset/convergence.json``). The 12 Å rule thus put
every 1×1 label ~25 meV off in its levels and ~40 meV/Å off in its forces — above the model's
accuracy goals — while 18 Å (6×6 for 1×1, 3×3 for 2×2 and 21.79° cells) is within ~3 meV and
~4 meV/Å of the converged mesh for 1.6× the SCF time of a 1×1 cell.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

K_DENSITY = 18.0  # Å: n_k = ceil(K_DENSITY / L)
LEGACY_K_DENSITY = 12.0  # the rule of chunks computed before 2026-11-23 (their meta has no k_density)


def level_of_theory(k_density: float = K_DENSITY) -> str:
    return ("GPAW 26.7 plane waves 350 eV, PBE, PAW setups (Mo 14 e), Fermi-Dirac 0.05 eV, "
            f"dipole-layer correction, k mesh ceil({k_density:g} A / L), + D3(BJ) (simple-dftd3)")


LEVEL_OF_THEORY = level_of_theory()

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
    k_density: float = K_DENSITY  # Å: n_k = ceil(k_density / L)
    d3: bool = True
    conv_energy: float = 1e-6  # eV / valence electron (GPAW 'energy' criterion, per electron)
    conv_density: float = 1e-5
    conv_forces: float = 1e-3  # eV/Å change between iterations
    maxiter: int = 200
    quick: bool = False  # preview setting, never stored as reference

    def label(self) -> str:
        return "QUICK PREVIEW (not reference)" if self.quick else level_of_theory(self.k_density)

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


#: folders (under pretrained/) of the validation results of each k-mesh rule, the current rule's
#: first: a cell is taken from the first that holds it, completed from the others
VALIDATION_FOLDERS = ("validation-k18", "validation")
