"""Atomic graphs for torch models: neighbour pairs (compiled vesin list) and batching."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wander_gui.core.neighbors import neighbor_list


@dataclass
class Graph:
    """One or several structures as a single disconnected graph.

    Attributes (torch tensors)
    ----------
    pos : (N, 3) float  positions, Å (leaf tensor when forces are needed)
    species : (N,) long  0 = metal, 1 = chalcogen
    layer : (N,) long
    edge_i, edge_j : (P,) long  pair (centre i, neighbour j)
    shift_vec : (P, 3) float  Cartesian image shift S·cell, so r_ij = pos[j] + shift − pos[i]
    batch : (N,) long  structure index of each atom
    n_structures : int
    """

    pos: torch.Tensor
    species: torch.Tensor
    layer: torch.Tensor
    edge_i: torch.Tensor
    edge_j: torch.Tensor
    shift_vec: torch.Tensor
    batch: torch.Tensor
    n_structures: int

    def vectors(self) -> torch.Tensor:
        return self.pos[self.edge_j] + self.shift_vec - self.pos[self.edge_i]

    def same_layer(self) -> "Graph":
        """The graph with only the edges within a layer (each layer as if isolated)."""
        keep = self.layer[self.edge_i] == self.layer[self.edge_j]
        kw = dict(self.__dict__, edge_i=self.edge_i[keep], edge_j=self.edge_j[keep], shift_vec=self.shift_vec[keep])
        return Graph(**kw)

    def to(self, device) -> "Graph":
        kw = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Graph(**kw)


def species_of(symbols, metal: str) -> np.ndarray:
    return np.array([0 if s == metal else 1 for s in symbols], dtype=np.int64)


def atoms_to_graph(atoms, cutoff: float, *, metal: str | None = None, dtype=torch.float64) -> Graph:
    """Graph of one structure with all pairs within ``cutoff`` (Å), images included."""
    return batch_graphs([atoms], cutoff, metal=metal, dtype=dtype)


def batch_graphs(structures, cutoff: float, *, metal: str | None = None, dtype=torch.float64) -> Graph:
    """Concatenate structures (ase.Atoms) into one graph."""
    from wander_gui.core.layers import ensure_layers
    from wander_gui.core.materials import material_from_elements
    pos, spec, lay, ei, ej, sh, bt = [], [], [], [], [], [], []
    offset = 0
    for b, atoms in enumerate(structures):
        syms = atoms.get_chemical_symbols()
        m = metal or material_from_elements(syms).metal
        i, j, S, _ = neighbor_list(atoms, cutoff)
        pos.append(atoms.positions)
        spec.append(species_of(syms, m))
        lay.append(ensure_layers(atoms))
        ei.append(i + offset)
        ej.append(j + offset)
        sh.append(S @ atoms.cell.array)
        bt.append(np.full(len(atoms), b))
        offset += len(atoms)
    t = lambda x, d: torch.as_tensor(np.concatenate(x), dtype=d)  # noqa: E731
    return Graph(pos=t(pos, dtype), species=t(spec, torch.long), layer=t(lay, torch.long),
                 edge_i=t(ei, torch.long), edge_j=t(ej, torch.long), shift_vec=t(sh, dtype),
                 batch=t(bt, torch.long), n_structures=len(structures))
