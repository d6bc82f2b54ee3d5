"""WANDER Hamiltonian heads: on-site, intra-layer and inter-layer blocks, exactly equivariant.

The physics-informed split of the paper (Qi, Gong, Yan 2025), with the symmetry made exact:

* on-site block of atom i: f₀(D_i)·I + Σ_k Σ_c g_c(D_i, r_ik, species_k) T_c(r̂_ik) — a
  crystal field summed over neighbours k within the force-field cutoff, with D_i the
  force field's (normalised) input descriptor;
* intra-layer hopping i→j: Σ_c f_c(RAER_i, RAER_j, r) T_c(r̂_ij);
* inter-layer hopping i→j: Σ_c f_c(r) T_c(r̂_ij) — relative position only.

T_c are the two-centre channels of :mod:`wander_gui.ml.equivariant`, so every block rotates
exactly with the structure. Networks are separate per unordered species pair (Mo–Mo, Mo–S,
S–S; S–Mo blocks are transposes of Mo–S blocks of the reversed bond, which makes
H_ji(−R) = H_ij(R)ᵀ hold exactly) and per distance range (short < 6 Å, long ≥ 6 Å, blended
smoothly over 5.5–6.5 Å so H stays continuous). Hidden layers (64, 32) for on-site and
intra-layer, (32, 16) for inter-layer, as in the paper.
"""
from __future__ import annotations

import torch
from torch import nn

from wander_gui.ml.equivariant import sk_basis
from wander_gui.ml.forcefield import mlp, switch

L_OF = (2, 1)  # species 0 = metal (d), 1 = chalcogen (p)
N_OF = (5, 3)
PAIR_TYPES = ((0, 0), (0, 1), (1, 1))


def rbf(r: torch.Tensor, r_max: float, n: int) -> torch.Tensor:
    """Gaussian radial basis times a smooth cutoff at r_max."""
    mu = torch.linspace(0.0, r_max, n, dtype=r.dtype, device=r.device)
    w = r_max / n
    return torch.exp(-0.5 * ((r[:, None] - mu) / w) ** 2) * switch(r, r_max - 1.0, r_max)[:, None]


class HamiltonianModel(nn.Module):
    def __init__(self, *, latent_dim: int = 32, desc_dim: int = 64, r_max: float = 12.0, r_split: float = 6.0,
                 onsite_cut: float = 5.2, n_rbf: int = 24, hidden_intra=(64, 32), hidden_inter=(32, 16),
                 use_raer: bool = True, inter_uses_raer: bool = False):
        super().__init__()
        self.config = dict(latent_dim=latent_dim, desc_dim=desc_dim, r_max=r_max, r_split=r_split,
                           onsite_cut=onsite_cut, n_rbf=n_rbf, hidden_intra=list(hidden_intra),
                           hidden_inter=list(hidden_inter), use_raer=use_raer, inter_uses_raer=inter_uses_raer)
        self.register_buffer("z_mean", torch.zeros(2, latent_dim))
        self.register_buffer("z_std", torch.ones(2, latent_dim))
        self.register_buffer("onsite_ref", torch.zeros(2))
        nc = {t: min(L_OF[t[0]], L_OF[t[1]]) + 1 for t in PAIR_TYPES}
        feat = 2 * latent_dim if use_raer else 0
        self.onsite0 = nn.ModuleList([mlp((desc_dim, *hidden_intra, 1)) for _ in range(2)])
        self.crystal = nn.ModuleList([mlp((desc_dim + n_rbf + 2, *hidden_intra, L_OF[t] + 1)) for t in range(2)])
        self.intra = nn.ModuleDict({f"{a}{b}{rng}": mlp((feat + n_rbf, *hidden_intra, nc[(a, b)]))
                                    for a, b in PAIR_TYPES for rng in ("s", "l")})
        ifeat = 2 * latent_dim if inter_uses_raer else 0
        self.inter = nn.ModuleDict({f"{a}{b}{rng}": mlp((ifeat + n_rbf, *hidden_inter, nc[(a, b)]))
                                    for a, b in PAIR_TYPES for rng in ("s", "l")})

    # -- helpers -----------------------------------------------------------------
    def _pair_features(self, Z, a, b, same, r, use):
        R = rbf(r, self.config["r_max"], self.config["n_rbf"])
        if not use:
            return R
        za, zb = Z[a], Z[b]
        if same:  # symmetric in (a, b): H_ji(−R) = H_ij(R)ᵀ needs f(a, b) = f(b, a)
            return torch.cat([za + zb, za * zb, R], dim=1)
        return torch.cat([za, zb, R], dim=1)

    def _hop(self, nets, key, feats, r):
        w = switch(r, self.config["r_split"] - 0.5, self.config["r_split"] + 0.5)[:, None]
        return w * nets[key + "s"](feats) + (1 - w) * nets[key + "l"](feats)

    # -- blocks ------------------------------------------------------------------
    def onsite(self, species, Dn, nb_i, nb_j, nb_vec):
        """On-site blocks (N, 5, 5) from descriptors and neighbours within onsite_cut."""
        N = len(species)
        out = torch.zeros(N, 5, 5, dtype=Dn.dtype, device=Dn.device)
        r = nb_vec.norm(dim=1)
        for t in range(2):
            n, l = N_OF[t], L_OF[t]
            m = species == t
            if m.any():
                eye = torch.eye(n, dtype=Dn.dtype, device=Dn.device)
                out[m, :n, :n] = (self.onsite0[t](Dn[m]) + self.onsite_ref[t])[:, :, None] * eye
            e = species[nb_i] == t
            if e.any():
                R = rbf(r[e], self.config["onsite_cut"], self.config["n_rbf"])
                onehot = nn.functional.one_hot(species[nb_j[e]], 2).to(Dn.dtype)
                g = self.crystal[t](torch.cat([Dn[nb_i[e]], R, onehot], dim=1))  # (E, n_c)
                T = sk_basis(nb_vec[e] / r[e, None], l, l)  # (E, n_c, n, n)
                cf = torch.einsum("ec,ecab->eab", g, T)
                out[:, :n, :n] = out[:, :n, :n].index_add(0, nb_i[e], cf)
        return out

    def hoppings(self, species, layer, Z, pi, pj, vec):
        """Blocks (P, 5, 5) for pairs i→j (vec = r_j + shift − r_i), i ≠ j or shift ≠ 0."""
        P = len(pi)
        out = torch.zeros(P, 5, 5, dtype=vec.dtype, device=vec.device)
        si, sj = species[pi], species[pj]
        swap = si > sj  # chalcogen→metal: compute metal→chalcogen for the reversed bond, transpose
        a = torch.where(swap, pj, pi)
        b = torch.where(swap, pi, pj)
        v = torch.where(swap[:, None], -vec, vec)
        r = v.norm(dim=1)
        intra = layer[pi] == layer[pj]
        for ta, tb in PAIR_TYPES:
            m = (species[a] == ta) & (species[b] == tb)
            if not m.any():
                continue
            la, lb, na, nb = L_OF[ta], L_OF[tb], N_OF[ta], N_OF[tb]
            T = sk_basis(v[m] / r[m, None], la, lb)
            coeff = torch.zeros(int(m.sum()), T.shape[1], dtype=vec.dtype, device=vec.device)
            key = f"{ta}{tb}"
            im, em = intra[m], ~intra[m]
            idx = torch.nonzero(m).squeeze(1)
            if im.any():
                f = self._pair_features(Z, a[idx[im]], b[idx[im]], ta == tb, r[idx[im]], self.config["use_raer"])
                coeff[im] = self._hop(self.intra, key, f, r[idx[im]])
            if em.any():
                f = self._pair_features(Z, a[idx[em]], b[idx[em]], ta == tb, r[idx[em]],
                                        self.config["inter_uses_raer"])
                coeff[em] = self._hop(self.inter, key, f, r[idx[em]])
            blk = torch.einsum("pc,pcab->pab", coeff, T)  # (Pm, na, nb) metal-first orientation
            sw = swap[m]
            full = torch.zeros(len(blk), 5, 5, dtype=vec.dtype, device=vec.device)
            full[:, :na, :nb] = blk
            full = torch.where(sw[:, None, None], full.transpose(1, 2), full)
            out[m] = full
        return out

    def normalised_latent(self, species, Z):
        return (Z - self.z_mean[species]) / self.z_std[species]
