"""Regenerate the real Wannier90 output shipped for the I/O and band tests.

Monolayer MoS2 (a = 3.18 Å, S–S 3.13 Å), GPAW PW 350 eV PBE, 6×6 Γ-centred mesh, Wannier90
(3.1, Debian) disentanglement of Mo-d/S-p (11 functions), 0 localisation steps: the project's
own pipeline (wander_gui.dft.wannier). Writes mos2_monolayer_hr.dat.gz (Wannier90's file,
untouched) and mos2_monolayer_ref.npz (DFT eigenvalues at the mesh points, eV, same frame).

    python tests/data/make_reference_hr.py
"""
import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
from gpaw import GPAW, PW, FermiDirac

from wander_gui.core.builder import build_aligned
from wander_gui.dft.wannier import MeshStates, wannier90_mesh_hamiltonian

here = Path(__file__).parent
bi = build_aligned("MoS2", "H", supercell=1)
mono = bi[bi.arrays["layer"] == 0]
mono.center(axis=2)
nb = 3 * 6 + 11 + 5  # excluded + Wannier + outer states (per formula unit)
calc = GPAW(mode=PW(350), xc="PBE", kpts={"size": (6, 6, 1), "gamma": True}, symmetry="off",
            occupations=FermiDirac(0.05), nbands=nb, convergence={"bands": 6 + 11}, txt=None)
mono.calc = calc
mono.get_potential_energy()
e = np.array([calc.get_eigenvalues(kpt=k) for k in range(36)])
ef = calc.get_fermi_level()
cbm = e[:, 13].min()
with tempfile.TemporaryDirectory() as tmp:
    wannier90_mesh_hamiltonian(MeshStates.from_calc(calc), mono, frozen=(e[:, 6].min() - 0.1, cbm + 1.0), outer=(e[:, 6].min() - 0.1, e[:, -1].max() + 1),
                               n1=6, n2=nb, metal="Mo", workdir=tmp, num_iter=0)
    with open(Path(tmp) / "w_hr.dat", "rb") as src, gzip.open(here / "mos2_monolayer_hr.dat.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
np.savez_compressed(here / "mos2_monolayer_ref.npz", kpts=calc.get_ibz_k_points(), eps=e[:, 6:6 + 11],
                    fermi=ef, frozen_max=cbm + 1.0, cell=mono.cell.array)
print("written")
