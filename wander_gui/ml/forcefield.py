"""Deep-potential force field with smooth, symmetry-preserving descriptors.

Descriptor (DeepPot-SE "se_e2_a"; L. Zhang et al., NeurIPS 31 (2018)): for each
neighbour j of atom i within R_c, the generalised coordinate

    R̃_ij = s(r) (1, x/r, y/r, z/r),   s(r) = sw(r)/r,

carries the paper's (1/R, x/R², y/R², z/R²) inputs multiplied by a switching function
sw that goes smoothly (C²) from 1 at R_s to 0 at R_c, so nothing jumps when neighbours
cross the cutoff. An embedding net G(s) (per neighbour species, or per centre–neighbour
species pair with ``pair_embedding`` as in DeePMD's default; tanh, standardised input)
gives M1 channels;
T_i = (1/N_c) Σ_j G(s_ij) ⊗ R̃_ij (M1 × 4) and the descriptor D_i = T_i T_iᵀ[:, :M2]
is invariant to rotations (R̃ → R̃ diag(1, R)), translations and permutations.
With ``layer_split`` the own-layer and the other-layer neighbours give two such descriptors
(concatenated), each invariant on its own: rotating the other layer about atom i — locally
what a twist does — then changes only the registry atom i sees.

Fitting net per centre species: D_i (standardised) → 64 → 32 → E_i with SiLU (the paper
uses ReLU; its kinks make forces discontinuous, which breaks optimisers and MD). The
32-dimensional last hidden layer is the atom's *reduced atomic environment
representation* (RAER), reused by the Hamiltonian heads. E = Σ_i E_i + Σ_i e_ref(species),
forces F = −∂E/∂r by automatic differentiation (energy conserving by construction).
"""
from __future__ import annotations

import torch
from torch import nn

from wander_gui.ml.graph import Graph

N_SPECIES = 2


def switch(r: torch.Tensor, r_s: float, r_c: float) -> torch.Tensor:
    """C² switching: 1 below r_s, 0 above r_c, x³(−6x² + 15x − 10) + 1 between."""
    x = ((r - r_s) / (r_c - r_s)).clamp(0.0, 1.0)
    return x ** 3 * (-6.0 * x ** 2 + 15.0 * x - 10.0) + 1.0


def mlp(sizes, act=nn.SiLU, last_act=False) -> nn.Sequential:
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2 or last_act:
            layers.append(act())
    return nn.Sequential(*layers)


class AddedBuffers(nn.Module):
    """Loads checkpoints written before some buffers existed: each buffer named in
    ``ADDED_BUFFERS`` that a checkpoint lacks is filled with its neutral value."""

    ADDED_BUFFERS: dict = {}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        sd = dict(state_dict)
        for name, value in self.ADDED_BUFFERS.items():
            sd.setdefault(name, torch.full_like(getattr(self, name), value))
        return super().load_state_dict(sd, strict=strict, assign=assign)


def neighbour_slots(edge_i: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, int]:
    """Position of every edge among its centre atom's edges, and the largest neighbour count."""
    if len(edge_i) == 0:
        return edge_i, 0
    counts = torch.bincount(edge_i, minlength=n_atoms)
    order = torch.argsort(edge_i, stable=True)
    start = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(edge_i)
    slot[order] = torch.arange(len(edge_i), device=edge_i.device) - start[edge_i[order]]
    return slot, int(counts.max())


class Descriptor(nn.Module):
    """Smooth se_e2_a descriptor; returns D_i (N, M1·M2) and the radial inputs."""

    def __init__(self, r_c: float = 5.2, r_s: float = 4.7, m1: int = 16, m2: int = 4,
                 embed=(16, 16), n_norm: float = 10.0, pair_embedding: bool = False, layer_split: bool = False):
        super().__init__()
        self.r_c, self.r_s, self.m1, self.m2, self.n_norm = r_c, r_s, m1, m2, n_norm
        self.pair_embedding, self.layer_split = pair_embedding, layer_split
        # neighbour classes: its species, and with ``layer_split`` whether it is in the other layer
        self.n_classes = N_SPECIES * (2 if layer_split else 1)
        # embedding inputs are standardised per neighbour class (DeePMD does the same per
        # species): s -> (s - mean) / std
        self.register_buffer("s_mean", torch.zeros(self.n_classes))
        self.register_buffer("s_std", torch.ones(self.n_classes))
        # one embedding net per neighbour class, or per (centre species, neighbour class)
        n_nets = N_SPECIES * self.n_classes if pair_embedding else self.n_classes
        self.embed = nn.ModuleList([mlp((1, *embed, m1), act=nn.Tanh, last_act=True) for _ in range(n_nets)])

    def edge_class(self, g: Graph) -> torch.Tensor:
        """Neighbour class of every edge: species of j (+ N_SPECIES if j is in the other layer
        and the descriptor is ``layer_split``)."""
        c = g.species[g.edge_j]
        if self.layer_split:
            c = c + N_SPECIES * (g.layer[g.edge_i] != g.layer[g.edge_j]).long()
        return c

    @property
    def dim(self) -> int:
        return self.m1 * self.m2 * (2 if self.layer_split else 1)

    def forward(self, g: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        vec = g.vectors()
        r = vec.norm(dim=1)
        s = switch(r, self.r_s, self.r_c) / r
        Rt = torch.cat([s[:, None], s[:, None] * vec / r[:, None]], dim=1)  # (P, 4)
        G = torch.zeros(len(r), self.m1, dtype=vec.dtype, device=vec.device)
        cls = self.edge_class(g)
        net_of_edge = g.species[g.edge_i] * self.n_classes + cls if self.pair_embedding else cls
        for k, net in enumerate(self.embed):
            m = net_of_edge == k
            if m.any():
                t = k % self.n_classes  # neighbour class: its input standardisation
                G[m] = net(((s[m] - self.s_mean[t]) / self.s_std[t])[:, None])
        if not self.layer_split:
            D, T = self._contract(g.edge_i, G, Rt, len(g.pos))
            return D, T
        # own-layer and other-layer neighbours contracted separately: each part is invariant
        # on its own, so rotating the other layer about atom i (locally, what a twist does)
        # changes only which registry the atom sees, never an angle between the two sets
        inter = g.layer[g.edge_i] != g.layer[g.edge_j]
        parts = [self._contract(g.edge_i[m], G[m], Rt[m], len(g.pos)) for m in (~inter, inter)]
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def _contract(self, edge_i, G, Rt, N) -> tuple[torch.Tensor, torch.Tensor]:
        """D_i = T_i T_iᵀ[:, :M2] with T_i = Σ_j G_ij ⊗ R̃_ij / n_norm over the given edges."""
        # one batched matrix product over each atom's neighbour slots (no (P, M1, 4)
        # outer-product tensor: 3x faster, less memory with autograd)
        slot, width = neighbour_slots(edge_i, N)
        Gp = torch.zeros(N, width, self.m1, dtype=G.dtype, device=G.device).index_put((edge_i, slot), G)
        Rp = torch.zeros(N, width, 4, dtype=G.dtype, device=G.device).index_put((edge_i, slot), Rt)
        T = Gp.transpose(1, 2) @ Rp / self.n_norm  # (N, M1, 4)
        D = torch.einsum("nac,nbc->nab", T, T[:, : self.m2, :])  # (N, M1, M2)
        return D.reshape(N, -1), T


class ForceField(AddedBuffers):
    """Per-atom energy model; ``forward`` returns energies per structure and per-atom RAER."""

    ADDED_BUFFERS = {"ood_mean": 0.0, "ood_prec": 0.0, "ood_limit": 0.0}  # 0: statistics not fitted

    def __init__(self, *, r_c: float = 5.2, r_s: float = 4.7, m1: int = 16, m2: int = 4,
                 embed=(16, 16), hidden=(64, 32), pair_embedding: bool = False, layer_split: bool = False):
        super().__init__()
        self.config = dict(r_c=r_c, r_s=r_s, m1=m1, m2=m2, embed=list(embed), hidden=list(hidden),
                           pair_embedding=pair_embedding)
        if layer_split:  # only when set: earlier checkpoints' configurations stay as they were
            self.config["layer_split"] = True
        self.descriptor = Descriptor(r_c, r_s, m1, m2, embed, pair_embedding=pair_embedding, layer_split=layer_split)
        d = self.descriptor.dim
        self.register_buffer("d_mean", torch.zeros(N_SPECIES, d))
        self.register_buffer("d_std", torch.ones(N_SPECIES, d))
        self.register_buffer("e_ref", torch.zeros(N_SPECIES))
        # out-of-distribution score: Mahalanobis distance of an atom's RAER from the training
        # atoms of its species, in units of the training set's 99.5th percentile (0 = not fitted)
        L = hidden[-1]
        self.register_buffer("ood_mean", torch.zeros(N_SPECIES, L))
        self.register_buffer("ood_prec", torch.zeros(N_SPECIES, L, L))
        self.register_buffer("ood_limit", torch.zeros(N_SPECIES))
        self.hidden = nn.ModuleList([mlp((d, *hidden), last_act=True) for _ in range(N_SPECIES)])
        self.out = nn.ModuleList([nn.Linear(hidden[-1], 1) for _ in range(N_SPECIES)])

    @property
    def latent_dim(self) -> int:
        return self.config["hidden"][-1]

    @property
    def has_ood(self) -> bool:
        return bool((self.ood_limit > 0).all())

    @torch.no_grad()
    def fit_ood(self, Z: torch.Tensor, species: torch.Tensor, *, quantile: float = 0.995, ridge: float = 1e-3):
        """Fit the RAER statistics of the training atoms (mean, regularised inverse covariance,
        the ``quantile`` of their own distances)."""
        for t in range(N_SPECIES):
            z = Z[species == t].double()
            if len(z) < 2:
                continue
            mu = z.mean(0)
            cov = torch.cov((z - mu).T) if z.shape[1] > 1 else z.var().reshape(1, 1)
            cov = cov + ridge * torch.eye(len(mu), dtype=cov.dtype) * cov.diagonal().mean()
            prec = torch.linalg.inv(cov)
            d = torch.sqrt(torch.einsum("na,ab,nb->n", z - mu, prec, z - mu))
            self.ood_mean[t], self.ood_prec[t] = mu.to(self.ood_mean), prec.to(self.ood_prec)
            self.ood_limit[t] = torch.quantile(d, quantile).to(self.ood_limit)

    @torch.no_grad()
    def ood_score(self, Z: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-atom distance from the training data in units of the fitted limit (> 1: outside
        what the model was trained on). Needs :meth:`fit_ood` (see :attr:`has_ood`)."""
        mu, prec, lim = self.ood_mean[species], self.ood_prec[species], self.ood_limit[species]
        dz = Z - mu
        return torch.sqrt(torch.einsum("na,nab,nb->n", dz, prec, dz).clamp_min(0)) / lim.clamp_min(1e-12)

    def atomic(self, g: Graph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(E_i (N,), RAER (N, latent), normalised descriptor (N, d))."""
        D, _ = self.descriptor(g)
        Dn = (D - self.d_mean[g.species]) / self.d_std[g.species]
        E = torch.zeros(len(D), dtype=D.dtype, device=D.device)
        Z = torch.zeros(len(D), self.latent_dim, dtype=D.dtype, device=D.device)
        for t in range(N_SPECIES):
            m = g.species == t
            if m.any():
                z = self.hidden[t](Dn[m])
                Z[m] = z
                E[m] = self.out[t](z).squeeze(-1) + self.e_ref[t]
        return E, Z, Dn

    def forward(self, g: Graph, *, forces: bool = True, create_graph: bool = False):
        """Energies per structure (eV), forces (N, 3) eV/Å (if requested) and RAER."""
        if forces and not g.pos.requires_grad:
            g.pos.requires_grad_(True)
        E_i, Z, _ = self.atomic(g)
        E = torch.zeros(g.n_structures, dtype=E_i.dtype, device=E_i.device).index_add(0, g.batch, E_i)
        F = None
        if forces:
            (grad,) = torch.autograd.grad(E.sum(), g.pos, create_graph=create_graph)
            F = -grad
        return E, F, Z
