"""Predict a structure's Wannier Hamiltonian (atom-pair blocks) with FF + Hamiltonian heads."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from wander_gui.core.neighbors import neighbor_list
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.graph import atoms_to_graph
from wander_gui.ml.hamiltonian import HamiltonianModel, HeadsEnsemble, layer_normal


@dataclass
class PredictedH:
    ij: np.ndarray  # (P, 2) including on-site (i, i, 0)
    shift: np.ndarray  # (P, 3)
    blocks: np.ndarray  # (P, 5, 5) eV
    counts: np.ndarray  # orbitals per atom
    offsets: np.ndarray
    #: (P, 5, 5) eV, heads ensembles only: the members' standard deviation of each element
    spread: np.ndarray | None = None


def pair_inputs(atoms, r_max: float, dtype=torch.float64):
    """All pairs within r_max (both orientations), on-site excluded."""
    i, j, S, D = neighbor_list(atoms, r_max)
    return (torch.as_tensor(i), torch.as_tensor(j), torch.as_tensor(S), torch.as_tensor(D, dtype=dtype))


def _canonical(i, j, S) -> np.ndarray:
    """True for the representative orientation of each bond (i, j, S) ~ (j, i, −S)."""
    sgn = np.where(S[:, 0] != 0, np.sign(S[:, 0]), np.where(S[:, 1] != 0, np.sign(S[:, 1]), np.sign(S[:, 2])))
    return (i < j) | ((i == j) & (sgn > 0))


def _partner_index(i, j, S) -> np.ndarray:
    """Index of the reversed pair (j, i, −S) for every pair of a full neighbour list."""
    n = max(int(i.max()), int(j.max())) + 1 if len(i) else 0
    s = S - S.min() if len(S) else S
    span = int(s.max()) + 1 if len(S) else 1
    off = -S.min() if len(S) else 0

    def code(a, b, sh):
        t = sh + off
        return ((a * n + b) * span + t[:, 0]) * span ** 2 + t[:, 1] * span + t[:, 2]
    fwd = code(i, j, S)
    rev = code(j, i, -S)
    order = np.argsort(fwd)
    pos = np.searchsorted(fwd[order], rev)
    if np.any(fwd[order][np.minimum(pos, len(fwd) - 1)] != rev):
        raise RuntimeError("neighbour list is not symmetric; please report")
    return order[pos]


_INFERENCE_COPIES: dict = {}

#: below this many atoms a single torch thread is used: the operations are too small to gain
#: from threads, and on a busy 2-core machine (app server, background DFT) waiting threads
#: made a 42-atom prediction 3-10x slower (0.25 s on one thread vs 0.8-2.5 s on two, measured)
SINGLE_THREAD_BELOW_ATOMS = 200


@contextlib.contextmanager
def torch_threads_for(n_atoms: int, device):
    """One intra-op torch thread for small CPU work (restored afterwards), else unchanged."""
    small = torch.device(device).type == "cpu" and n_atoms < SINGLE_THREAD_BELOW_ATOMS
    before = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(before)


def inference_copy(model: torch.nn.Module, device, dtype) -> torch.nn.Module:
    """``model`` on ``device`` in ``dtype`` without touching the (shared) original: the model
    itself when it already is, else a cached copy, rebuilt when the original's weights or
    buffers change."""
    p0 = next(model.parameters())
    if p0.device == torch.device(device) and p0.dtype == dtype:
        return model
    stamp = tuple((p.data_ptr(), p._version) for p in (*model.parameters(), *model.buffers()))
    key = (id(model), str(device), dtype)
    hit = _INFERENCE_COPIES.get(key)
    if hit is None or hit[0] is not model or hit[1] != stamp:
        import copy
        hit = (model, stamp, copy.deepcopy(model).to(device=device, dtype=dtype).eval())
        _INFERENCE_COPIES[key] = hit
    return hit[2]


def predict_blocks(ff: ForceField, hm: HamiltonianModel | HeadsEnsemble, atoms, *, dtype=torch.float32,
                   pairs=None, device: str | None = None) -> PredictedH:
    """Blocks for on-site terms and every pair within ``hm.config['r_max']``; the networks
    run on ``device`` (default: where the models' weights are) in ``dtype`` (float32 by
    default: blocks agree with float64 to ~1e-6 eV at twice the speed; the shared models
    are not modified — a cached copy is used)."""
    if isinstance(hm, HeadsEnsemble):  # the members' mean, their spread as the uncertainty
        pairs = pairs if pairs is not None else pair_inputs(atoms, hm.config["r_max"], dtype)
        parts = [predict_blocks(ff, m, atoms, dtype=dtype, pairs=pairs, device=device) for m in hm.members]
        stack = np.stack([q.blocks for q in parts])
        first = parts[0]
        return PredictedH(first.ij, first.shift, stack.mean(0), first.counts, first.offsets, spread=stack.std(0))
    from wander_gui.core.orbitals import orbital_offsets
    from wander_gui.core.materials import material_from_elements
    dev = torch.device(device) if device else next(hm.parameters()).device
    ff, hm = inference_copy(ff, dev, dtype), inference_copy(hm, dev, dtype)
    with torch.no_grad(), torch_threads_for(len(atoms), dev):
        g = atoms_to_graph(atoms, ff.config["r_c"], dtype=dtype).to(dev)
        _, Z, Dn = ff.atomic(g)
        inter_feats = hm.inter_features(g.species, Z)
        Z = hm.intra_latent(ff, g, Z)
        feats = hm.atom_features(g.species, Z, Dn)
        nb = (g.edge_i, g.edge_j, g.vectors())
        frames = hm.frames(g.species, g.layer, *nb, layer_normal(atoms.cell.array))
        onsite = hm.onsite(g.species, Dn, *nb, frames=frames,
                           electrostatics=hm.electrostatics(atoms.positions, atoms.cell.array, dtype, dev))
        pi, pj, S, vec = pairs if pairs is not None else pair_inputs(atoms, hm.config["r_max"], dtype)
        # evaluate each bond once (i < j, or i == j with the first non-zero shift positive) and
        # fill its reverse by transposition: H_ji(−S) = H_ij(S)ᵀ exactly, at half the cost
        key = _canonical(pi.numpy(), pj.numpy(), S.numpy())
        first = np.flatnonzero(key)
        hop_half = hm.hoppings(g.species, g.layer, feats, pi[first].to(dev), pj[first].to(dev),
                               vec[first].to(dev), frames=frames, inter_feats=inter_feats).cpu()
        onsite = onsite.cpu()
        partner = _partner_index(pi.numpy(), pj.numpy(), S.numpy())
        hop = torch.empty(len(pi), 5, 5, dtype=hop_half.dtype)
        hop[first] = hop_half
        rest = np.flatnonzero(~key)
        slot = np.empty(len(pi), dtype=np.int64)
        slot[first] = np.arange(len(first))
        hop[rest] = hop_half[slot[partner[rest]]].transpose(1, 2)
    n = len(atoms)
    ij = np.concatenate([np.stack([np.arange(n), np.arange(n)], 1), np.stack([pi.numpy(), pj.numpy()], 1)])
    shift = np.concatenate([np.zeros((n, 3), np.int64), S.numpy()])
    blocks = np.concatenate([onsite.numpy(), hop.numpy()]).astype(np.float64)
    offsets, counts = orbital_offsets(atoms.get_chemical_symbols(),
                                      material_from_elements(atoms.get_chemical_symbols()).metal)
    return PredictedH(ij, shift, blocks, counts, offsets)
