"""Predict a structure's Wannier Hamiltonian (atom-pair blocks) with FF + Hamiltonian heads."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wander_gui.core.neighbors import neighbor_list
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.graph import atoms_to_graph
from wander_gui.ml.hamiltonian import HamiltonianModel


@dataclass
class PredictedH:
    ij: np.ndarray  # (P, 2) including on-site (i, i, 0)
    shift: np.ndarray  # (P, 3)
    blocks: np.ndarray  # (P, 5, 5) eV
    counts: np.ndarray  # orbitals per atom
    offsets: np.ndarray


def pair_inputs(atoms, r_max: float, dtype=torch.float64):
    """All pairs within r_max (both orientations), on-site excluded."""
    i, j, S, D = neighbor_list(atoms, r_max)
    return (torch.as_tensor(i), torch.as_tensor(j), torch.as_tensor(S), torch.as_tensor(D, dtype=dtype))


def predict_blocks(ff: ForceField, hm: HamiltonianModel, atoms, *, dtype=torch.float64,
                   pairs=None) -> PredictedH:
    """Blocks for on-site terms and every pair within ``hm.config['r_max']``."""
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.core.materials import material_from_elements
    with torch.no_grad():
        g = atoms_to_graph(atoms, ff.config["r_c"], dtype=dtype)
        _, Z, Dn = ff.atomic(g)
        Zn = hm.normalised_latent(g.species, Z)
        onsite = hm.onsite(g.species, Dn, g.edge_i, g.edge_j, g.vectors())
        pi, pj, S, vec = pairs if pairs is not None else pair_inputs(atoms, hm.config["r_max"], dtype)
        hop = hm.hoppings(g.species, g.layer, Zn, pi, pj, vec)
    n = len(atoms)
    ij = np.concatenate([np.stack([np.arange(n), np.arange(n)], 1), np.stack([pi.numpy(), pj.numpy()], 1)])
    shift = np.concatenate([np.zeros((n, 3), np.int64), S.numpy()])
    blocks = np.concatenate([onsite.numpy(), hop.numpy()])
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(),
                                      material_from_elements(atoms.get_chemical_symbols()).metal)
    return PredictedH(ij, shift, blocks, counts, offsets)
