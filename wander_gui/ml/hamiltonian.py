"""WANDER Hamiltonian heads: on-site, intra-layer and inter-layer blocks, exactly equivariant.

The physics-informed split of the paper (Qi, Gong, Yan 2025), with the symmetry made exact:

* on-site block of atom i: f₀(D_i)·I + Σ_k Σ_c g_c(D_i, r_ik, species_k) T_c(r̂_ik) — a
  crystal field summed over neighbours k within the force-field cutoff, with D_i the
  force field's (normalised) input descriptor;
* intra-layer hopping i→j from (RAER_i, RAER_j, relative position r_ij);
* inter-layer hopping i→j from the relative position r_ij only.

Two block forms (``block_form``):

``"frame"`` (default) — each atom carries a *local crystal frame* F_i = (e₁, e₂, n): n is the
layer normal (from the cell), e₁ the in-plane direction of the trigonal harmonic
Σ_k w(r_ik) e^{3iφ_ik} of its other-species neighbours in the same layer (the orientation of
the S triangle around Mo, of the Mo triangle around S), defined up to 120°. A network
predicts the full orbital block X from the inputs with r_ij written in that frame, and
the block is rotated back, X → D_li(F) X D_lj(F)ᵀ, averaged over the three equivalent
frames F·C₃ᵏ. This is the paper's model with its global-frame relative position replaced
by the layer's own crystal frame: on untwisted data the two coincide, but only the local
frame follows a rotated (twisted) layer. It is needed because hoppings depend on how the
bond sits in the crystal, not only on its length: the Mo–Mo bonds at 0° and 60° are
related by a mirror, not a rotation, and their DFT blocks differ by up to 0.56 eV in the
bond frame, which no two-centre form can express. Hoppings are
H_ij = G(i, j, r_ij; F_i) + G′(j, i, −r_ij; F_j)ᵀ with G′ = G for equal species, so
H_ji(−R) = H_ij(R)ᵀ holds exactly and both atoms' crystal frames enter.

``"sk"`` — two-centre channels only (Σ_c f_c T_c(r̂_ij), see :mod:`wander_gui.ml.equivariant`);
kept for the ablation and for models trained with it.

Layer electrostatics (``layer_dipole=True``): the labels are referenced to the mean of the two
vacuum levels, and a bilayer whose mirror symmetry is broken (sliding, heterostrain, a
distorted layer) carries a dipole that shifts one layer's on-site energies against the
other's by up to ~0.25 eV in the DFT data — a non-local effect that no 5.2 Å environment can
see (for a Mo atom the dipole sits in the far layer). Each atom carries a dipole
p_j = Σ_k g(D_j, r_jk, species_k) (n·r̂_jk) (odd under the mirror n → −n, invariant under
in-plane rotations), and the planar average of a sheet of such dipoles gives every atom the
potential energy

    φ_i = Σ_j p_j / (2A) · tanh(n·(r_i − r_j) / w)   (A: cell area, w = 0.5 Å),

relative to the mean vacuum level, added to its on-site diagonal; the step between the two
vacua, ΔV = Σ_j p_j / A, is fitted to the DFT step of every configuration (energies-and-forces
ones included). This is the uniform (q = 0) part of the electrostatics: exact for the
untwisted training cells, a cell average for moiré cells, where the local interlayer
potential of AB/BA domains is not resolved.

Both forms rotate exactly with the structure. Networks are separate per species pair (S–Mo
blocks are transposes of Mo–S blocks of the reversed bond) and per distance range (short
< 6 Å, long ≥ 6 Å, blended smoothly over 5.5–6.5 Å so H stays continuous). Hidden layers
(64, 32) for on-site and intra-layer, (32, 16) for inter-layer, as in the paper.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from wander_gui.ml.equivariant import sk_basis, wigner_d
from wander_gui.ml.forcefield import AddedBuffers, mlp, switch

L_OF = (2, 1)  # species 0 = metal (d), 1 = chalcogen (p)
N_OF = (5, 3)
PAIR_TYPES = ((0, 0), (0, 1), (1, 1))
#: neighbours that set an atom's crystal frame: other species, same layer, within this radius (Å)
FRAME_CUT = (2.9, 3.3)


def layer_normal(cell) -> np.ndarray:
    """Unit normal a₁ × a₂ of a bilayer cell (the periodic plane)."""
    c = np.asarray(cell, dtype=float)
    n = np.cross(c[0], c[1])
    return n / np.linalg.norm(n)


def crystal_frames(species, layer, nb_i, nb_j, nb_vec, normal, *, sublayer: bool = False) -> torch.Tensor:
    """Local crystal frames (N, 3, 3), columns (e₁, e₂, n), of every atom (see module doc).

    e₁ points along the phase of Σ_k w(r_ik) e^{3iφ_ik} / 3 over neighbours k of the other
    species in the same layer (φ measured in any fixed basis of the plane ⊥ n; the result
    does not depend on that basis), so the frame rotates with the structure. Defined up to
    a rotation by 120° about n, which the models average over.

    ``sublayer``: the frame of a chalcogen whose metal neighbours lie on the −n side (the
    upper chalcogen sheet of a layer) is turned by 180° about e₁, (e₁, e₂, n) → (e₁, −e₂, −n),
    so that every chalcogen sees its metal plane on the +n side of its own frame. e₁ points at
    one of the three metal neighbours, so the turn maps the upper sheet's environment onto the
    lower one's. Without it the two sheets — mirror images under σ_h — give the networks the
    same inputs, and the couplings that change sign between them (p_z–p_x,y of a bond within
    one sheet: ±68 meV for the nearest S–S pairs in DFT) are forced to zero.
    """
    dt, dev = nb_vec.dtype, nb_vec.device
    n = torch.as_tensor(normal, dtype=dt, device=dev)
    # a basis (u, v) of the plane ⊥ n, built from n alone
    helper = torch.tensor([1.0, 0.0, 0.0] if abs(float(n[0])) < 0.9 else [0.0, 1.0, 0.0], dtype=dt, device=dev)
    u = helper - (helper @ n) * n
    u = u / u.norm()
    v = torch.linalg.cross(n, u)
    sel = (species[nb_i] != species[nb_j]) & (layer[nb_i] == layer[nb_j])
    r = nb_vec[sel].norm(dim=1)
    w = switch(r, *FRAME_CUT)
    phi = torch.atan2(nb_vec[sel] @ v, nb_vec[sel] @ u)
    N = len(species)
    re = torch.zeros(N, dtype=dt, device=dev).index_add(0, nb_i[sel], w * torch.cos(3 * phi))
    im = torch.zeros(N, dtype=dt, device=dev).index_add(0, nb_i[sel], w * torch.sin(3 * phi))
    phi0 = torch.atan2(im, re) / 3
    e1 = torch.cos(phi0)[:, None] * u + torch.sin(phi0)[:, None] * v
    e2 = torch.linalg.cross(n.expand_as(e1), e1)
    F = torch.stack([e1, e2, n.expand_as(e1)], dim=2)
    if sublayer:  # which side of the atom its (other-species, same-layer) neighbours sit on
        side = torch.zeros(N, dtype=dt, device=dev).index_add(0, nb_i[sel], w * (nb_vec[sel] @ n))
        # chalcogens only: a metal sits on its layer's mirror plane, its side sum is ~0 and a flip
        # there would jump with the smallest displacement (the chalcogen's is ~±4.7 Å)
        flip = torch.where((side < 0) & (species != 0), -1.0, 1.0).to(dt)
        F = F * torch.stack([torch.ones_like(flip), flip, flip], dim=1)[:, None, :]
    return F


def _c3_rotations(dtype, device) -> list[torch.Tensor]:
    """R_z(2πk/3), k = 0, 1, 2."""
    out = []
    for k in range(3):
        c, s = math.cos(2 * math.pi * k / 3), math.sin(2 * math.pi * k / 3)
        out.append(torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device))
    return out


def _c3_frames(F: torch.Tensor) -> list[torch.Tensor]:
    """F·R_z(2πk/3), k = 0, 1, 2: the three equivalent crystal frames."""
    return [F @ Rz for Rz in _c3_rotations(F.dtype, F.device)]


def _sym_from_vector(x: torch.Tensor, n: int) -> torch.Tensor:
    """(E, n(n+1)/2) → symmetric (E, n, n)."""
    iu = torch.triu_indices(n, n)
    out = torch.zeros(len(x), n, n, dtype=x.dtype, device=x.device)
    out[:, iu[0], iu[1]] = x
    return out + out.transpose(1, 2) - torch.diag_embed(torch.diagonal(out, dim1=1, dim2=2))


#: the intra-layer heads' per-atom inputs (``intra_input``): the RAER of the whole bilayer, of the
#: atom's own layer, of its own layer plus radial sums over the other layer, the force-field
#: descriptor, or nothing (the ablation's relative-position-only heads)
INTRA_INPUTS = ("raer", "raer_layer", "raer_layer_radial", "descriptor", "none")
N_RADIAL = 8  # Gaussians per other-layer species in interlayer_radial
RADIAL_MIN = 2.5  # Å: centre of the first of them (the closest interlayer S–S distance is ~3 Å)
#: floor of the radial sums' standard deviation (z_std) fitted on the training data: a Gaussian
#: that the training cells barely reach must not turn a small value elsewhere into many σ
RADIAL_STD_FLOOR = 0.05


def interlayer_radial(g, cutoff: float) -> torch.Tensor:
    """(N, 2 · N_RADIAL) radial density of the other layer around each atom: per other-layer species,
    Σ_j exp(−((r_ij − μ_k)/w)²) · f_c(r_ij) over the graph's interlayer edges, μ_k evenly from
    RADIAL_MIN to ``cutoff`` (w their spacing), f_c = (1 + cos πr/r_c)/2. It depends on distances
    only, so a twisted layer above looks like the untwisted registries of the same local spacing —
    unlike the RAER's angular part, which sees the other layer's lattice orientation, a direction the
    untwisted training cells never vary."""
    inter = g.layer[g.edge_i] != g.layer[g.edge_j]
    i, j = g.edge_i[inter], g.edge_j[inter]
    r = torch.linalg.norm(g.vectors()[inter], dim=1)
    mu = torch.linspace(RADIAL_MIN, cutoff, N_RADIAL, dtype=r.dtype, device=r.device)
    w = mu[1] - mu[0]
    fc = 0.5 * (1 + torch.cos(torch.pi * (r / cutoff).clamp(max=1.0)))
    val = torch.exp(-(((r[:, None] - mu) / w) ** 2)) * fc[:, None]
    out = torch.zeros(len(g.species), 2, N_RADIAL, dtype=r.dtype, device=r.device)
    out.index_put_((i, g.species[j]), val, accumulate=True)
    return out.reshape(len(g.species), 2 * N_RADIAL)


def rbf(r: torch.Tensor, r_max: float, n: int) -> torch.Tensor:
    """Gaussian radial basis times a smooth cutoff at r_max."""
    mu = torch.linspace(0.0, r_max, n, dtype=r.dtype, device=r.device)
    w = r_max / n
    return torch.exp(-0.5 * ((r[:, None] - mu) / w) ** 2) * switch(r, r_max - 1.0, r_max)[:, None]


class HamiltonianModel(AddedBuffers):
    # neutral values of buffers that older checkpoints lack: the descriptor re-standardisation and
    # the output scales (identity when absent)
    ADDED_BUFFERS = {"d_mean": 0.0, "d_std": 1.0, "onsite_scale": 1.0, "hop_scale": 1.0}

    def __init__(self, *, latent_dim: int = 32, desc_dim: int = 64, r_max: float = 12.0, r_split: float = 6.0,
                 onsite_cut: float = 5.2, n_rbf: int = 24, hidden_intra=(64, 32), hidden_inter=(32, 16),
                 use_raer: bool = True, inter_uses_raer: bool = False, block_form: str = "sk",
                 intra_input: str = "raer", layer_dipole: bool = False, sublayer_frames: bool = False,
                 inter_stacking: bool = False, local_vector: bool = False):
        super().__init__()
        if block_form not in ("sk", "frame"):
            raise ValueError(f"block_form must be 'sk' or 'frame', got {block_form!r}")
        self.config = dict(latent_dim=latent_dim, desc_dim=desc_dim, r_max=r_max, r_split=r_split,
                           onsite_cut=onsite_cut, n_rbf=n_rbf, hidden_intra=list(hidden_intra),
                           hidden_inter=list(hidden_inter), use_raer=use_raer, inter_uses_raer=inter_uses_raer,
                           block_form=block_form, layer_dipole=layer_dipole, sublayer_frames=sublayer_frames,
                           inter_stacking=inter_stacking, local_vector=local_vector)
        for option, on in (("inter_stacking", inter_stacking), ("local_vector", local_vector)):
            if on and block_form != "frame":
                raise ValueError(f"{option} needs the crystal frames of block_form='frame'")
        if not use_raer:  # older configurations switched the intra-layer inputs off with use_raer
            intra_input = "none"
        if intra_input not in INTRA_INPUTS:
            raise ValueError(f"intra_input must be one of {', '.join(map(repr, INTRA_INPUTS))}, got {intra_input!r}")
        if intra_input.startswith("raer_layer") and inter_uses_raer:
            raise ValueError("inter_uses_raer needs the whole bilayer's RAER, intra_input='raer_layer' standardises "
                             "each layer's own: use one of them")
        self.config["intra_input"] = intra_input
        # per-atom features standardised with z_mean / z_std: the latent (and the interlayer radial sums)
        zdim = latent_dim + (2 * N_RADIAL if intra_input == "raer_layer_radial" else 0)
        self.register_buffer("z_mean", torch.zeros(2, zdim))
        self.register_buffer("z_std", torch.ones(2, zdim))
        self.register_buffer("onsite_ref", torch.zeros(2))
        # the force field's normalised descriptor still spans ~±100 in some components:
        # standardised again on the Hamiltonian training data before the heads see it
        self.register_buffer("d_mean", torch.zeros(desc_dim))
        self.register_buffer("d_std", torch.ones(desc_dim))
        # output scales (eV): a network's output is multiplied by the typical size of its targets, set
        # from the training data (HTrainConfig.scale_outputs; 1: predicted in eV). The 6–10 Å hoppings are a
        # few meV: predicted in eV, the last layer's weights would be ~1e-3, where Adam's steps
        # (~ the learning rate, whatever the gradient) are as large as the weights themselves.
        # onsite_scale[t]: the on-site networks of species t; hop_scale[c, a, b, k]: the hopping
        # networks of category c (0 intra, 1 inter), species a → b, range k (0 short, 1 long)
        self.register_buffer("onsite_scale", torch.ones(2))
        self.register_buffer("hop_scale", torch.ones(2, 2, 2, 2))
        self.onsite0 = nn.ModuleList([mlp((desc_dim, *hidden_intra, 1)) for _ in range(2)])
        self.crystal = nn.ModuleList([mlp((desc_dim + n_rbf + 2, *hidden_intra, L_OF[t] + 1)) for t in range(2)])
        fdim = {"raer": latent_dim, "raer_layer": latent_dim, "raer_layer_radial": zdim, "descriptor": desc_dim,
                "none": 0}[intra_input]
        if block_form == "sk":
            nc = {t: min(L_OF[t[0]], L_OF[t[1]]) + 1 for t in PAIR_TYPES}
            feat = 2 * fdim
            self.intra = nn.ModuleDict({f"{a}{b}{rng}": mlp((feat + n_rbf, *hidden_intra, nc[(a, b)]))
                                        for a, b in PAIR_TYPES for rng in ("s", "l")})
            ifeat = 2 * latent_dim if inter_uses_raer else 0
            self.inter = nn.ModuleDict({f"{a}{b}{rng}": mlp((ifeat + n_rbf, *hidden_inter, nc[(a, b)]))
                                        for a, b in PAIR_TYPES for rng in ("s", "l")})
        else:
            ordered = ((0, 0), (0, 1), (1, 0), (1, 1))
            self.onsite_frame = nn.ModuleList([mlp((desc_dim, *hidden_intra, N_OF[t] * (N_OF[t] + 1) // 2))
                                               for t in range(2)])
            n_loc = 6 if local_vector else 3  # Fᵀ r̂ (and Fᵀ r / VECTOR_SCALE)
            self.intra = nn.ModuleDict({f"{a}{b}{rng}": mlp((2 * fdim + n_rbf + n_loc, *hidden_intra, N_OF[a] * N_OF[b]))
                                        for a, b in ordered for rng in ("s", "l")})
            ifeat = 2 * latent_dim if inter_uses_raer else 0
            n_pair = n_rbf + int(inter_stacking)
            self.inter = nn.ModuleDict({f"{a}{b}{rng}": mlp((ifeat + n_pair + n_loc, *hidden_inter, N_OF[a] * N_OF[b]))
                                        for a, b in ordered for rng in ("s", "l")})
        # created last: the other heads' initial weights do not depend on this option
        if layer_dipole:  # per central species: weight of each neighbour's n·r̂ in the atom's dipole
            self.dipole = nn.ModuleList([mlp((desc_dim + n_rbf + 2, *hidden_inter, 1)) for _ in range(2)])

    def descriptor_inputs(self, Dn) -> torch.Tensor:
        return (Dn - self.d_mean) / self.d_std

    @property
    def latent_of_own_layer(self) -> bool:
        """The intra-layer inputs are the RAER of each atom's own layer alone (``intra_input
        = "raer_layer"``: the force field evaluated with the interlayer neighbours left out),
        so intra-layer hoppings follow the layer's own strain and distortion but not the
        interlayer registry, which the untwisted training cells sample only as uniform shifts."""
        return self.config["intra_input"] in ("raer_layer", "raer_layer_radial")

    def latent_graph(self, g):
        """The graph whose force-field latent features feed :meth:`atom_features`."""
        return g.same_layer() if self.latent_of_own_layer else g

    def intra_latent(self, ff, g, Z) -> torch.Tensor:
        """The per-atom latent inputs of :meth:`atom_features` for graph ``g`` whose whole-bilayer
        force-field latent is ``Z``: ``Z`` itself, the own-layer latent (``"raer_layer"``), or the
        own-layer latent followed by :func:`interlayer_radial` (``"raer_layer_radial"``)."""
        if not self.latent_of_own_layer:
            return Z
        _, Z_own, _ = ff.atomic(self.latent_graph(g))
        if self.config["intra_input"] == "raer_layer_radial":
            Z_own = torch.cat([Z_own, interlayer_radial(g, ff.config["r_c"])], dim=1)
        return Z_own

    def inter_features(self, species, Z) -> torch.Tensor:
        """Per-atom inputs of the inter-layer networks: with ``inter_uses_raer`` the normalised
        RAER of the whole bilayer (``Z`` from the full graph: it sees the registry), else none."""
        return self.normalised_latent(species, Z) if self.config["inter_uses_raer"] else Z[:, :0]

    def atom_features(self, species, Z, Dn) -> torch.Tensor:
        """Per-atom inputs of the intra-layer networks: normalised RAER (default; with
        ``"raer_layer"`` / ``"raer_layer_radial"`` Z must come from :meth:`intra_latent`), the
        normalised force-field descriptor, or nothing (``intra_input``; for the ablation)."""
        kind = self.config["intra_input"]
        if kind == "descriptor":
            return self.descriptor_inputs(Dn)
        if kind == "none":
            return Z[:, :0]
        return self.normalised_latent(species, Z)

    def frames(self, species, layer, nb_i, nb_j, nb_vec, normal):
        """Local crystal frames (None for the two-centre form, which needs none)."""
        if self.config["block_form"] != "frame":
            return None
        return crystal_frames(species, layer, nb_i, nb_j, nb_vec, normal, sublayer=self.config["sublayer_frames"])

    # -- helpers -----------------------------------------------------------------
    def _pair_features(self, Z, a, b, same, r, use):
        R = rbf(r, self.config["r_max"], self.config["n_rbf"])
        if not use:
            return R
        za, zb = Z[a], Z[b]
        if same:  # symmetric in (a, b): H_ji(−R) = H_ij(R)ᵀ needs f(a, b) = f(b, a)
            return torch.cat([za + zb, za * zb, R], dim=1)
        return torch.cat([za, zb, R], dim=1)

    def _out_scale(self, nets, key: str, rng: str) -> torch.Tensor:
        """Output scale (eV) of the hopping network ``nets[key + rng]``."""
        return self.hop_scale[int(nets is self.inter), int(key[0]), int(key[1]), int(rng == "l")]

    def _hop(self, nets, key, feats, r):
        w = switch(r, self.config["r_split"] - 0.5, self.config["r_split"] + 0.5)[:, None]
        return w * self._out_scale(nets, key, "s") * nets[key + "s"](feats) + \
            (1 - w) * self._out_scale(nets, key, "l") * nets[key + "l"](feats)

    # -- layer electrostatics ------------------------------------------------------
    DIPOLE_SMOOTHING = 0.5  # Å: w in tanh(Δh / w), the smooth sign between dipole sheets

    def atomic_dipoles(self, species, Dn, nb_i, nb_j, nb_vec, normal) -> torch.Tensor:
        """p_j (N,), eV·Å²: Σ_k g(D_j, r_jk, species_k) n·r̂_jk over neighbours within onsite_cut."""
        Dn = self.descriptor_inputs(Dn)
        r = nb_vec.norm(dim=1)
        cut = r < self.config["onsite_cut"]
        i, j, v, r = nb_i[cut], nb_j[cut], nb_vec[cut], r[cut]
        R = rbf(r, self.config["onsite_cut"], self.config["n_rbf"])
        onehot = nn.functional.one_hot(species[j], 2).to(Dn.dtype)
        cos_n = (v @ torch.as_tensor(normal, dtype=v.dtype, device=v.device)) / r
        p = torch.zeros(len(species), dtype=Dn.dtype, device=Dn.device)
        for t in range(2):
            e = species[i] == t
            if e.any():
                g = self.dipole[t](torch.cat([Dn[i[e]], R[e], onehot[e]], dim=1))[:, 0]
                p = p.index_add(0, i[e], g * cos_n[e])
        return p

    def layer_potential(self, species, Dn, nb_i, nb_j, nb_vec, heights, area: float, normal,
                        chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """(φ_i (N,), ΔV) in eV: the dipole-sheet potential energy of every atom relative to
        the mean vacuum level and the step V_top − V_bottom (module docstring)."""
        p = self.atomic_dipoles(species, Dn, nb_i, nb_j, nb_vec, normal) / area
        w = self.DIPOLE_SMOOTHING
        phi = torch.cat([0.5 * torch.tanh((h[:, None] - heights[None, :]) / w) @ p
                         for h in torch.split(heights, chunk)])
        return phi, p.sum()

    # -- blocks ------------------------------------------------------------------
    def onsite(self, species, Dn, nb_i, nb_j, nb_vec, frames=None, electrostatics=None):
        """On-site blocks (N, 5, 5) from descriptors and neighbours within onsite_cut (plus,
        for the frame form, a full symmetric block in the atom's crystal frame, and, with
        ``layer_dipole``, the layer potential φ_i on the diagonal; ``electrostatics`` =
        (heights along the normal (N,), cell area, normal) is needed for it)."""
        N = len(species)
        if self.config.get("layer_dipole"):
            if electrostatics is None:
                raise ValueError("this model adds the layers' dipole potential to the on-site blocks: pass "
                                 "electrostatics=(heights, area, normal) (HamiltonianModel.electrostatics)")
            phi, _ = self.layer_potential(species, Dn, nb_i, nb_j, nb_vec, *electrostatics)
        else:
            phi = None
        Dn = self.descriptor_inputs(Dn)
        out = torch.zeros(N, 5, 5, dtype=Dn.dtype, device=Dn.device)
        r = nb_vec.norm(dim=1)
        for t in range(2):
            n, l = N_OF[t], L_OF[t]
            m = species == t
            if m.any():
                eye = torch.eye(n, dtype=Dn.dtype, device=Dn.device)
                out[m, :n, :n] = (self.onsite_scale[t] * self.onsite0[t](Dn[m]) + self.onsite_ref[t])[:, :, None] * eye
            e = species[nb_i] == t
            if e.any():
                R = rbf(r[e], self.config["onsite_cut"], self.config["n_rbf"])
                onehot = nn.functional.one_hot(species[nb_j[e]], 2).to(Dn.dtype)
                g = self.onsite_scale[t] * self.crystal[t](torch.cat([Dn[nb_i[e]], R, onehot], dim=1))  # (E, n_c)
                T = sk_basis(nb_vec[e] / r[e, None], l, l)  # (E, n_c, n, n)
                cf = torch.einsum("ec,ecab->eab", g, T)
                out[:, :n, :n] = out[:, :n, :n].index_add(0, nb_i[e], cf)
            if self.config["block_form"] == "frame" and m.any():
                X = _sym_from_vector(self.onsite_scale[t] * self.onsite_frame[t](Dn[m]), n)
                acc = 0
                for F in _c3_frames(frames[m]):
                    D = wigner_d(F, l)
                    acc = acc + D @ X @ D.transpose(1, 2)
                out[m, :n, :n] = out[m, :n, :n] + acc / 3
        if phi is not None:  # on the diagonal of the atom's own orbitals (3 of the 5 slots for S)
            n_orb = torch.as_tensor(N_OF, device=out.device)[species]
            own = torch.arange(5, device=out.device)[None, :] < n_orb[:, None]
            out = out + torch.diag_embed(phi[:, None] * own.to(out.dtype))
        return out

    @staticmethod
    def electrostatics(positions, cell, dtype=torch.float64, device=None) -> tuple:
        """(heights along the layer normal, cell area in Å², normal) for :meth:`onsite`. The
        normal points along the third cell vector, the "top" of the DFT's vacuum step."""
        cell = np.asarray(cell, dtype=float)
        normal = layer_normal(cell)
        if normal @ cell[2] < 0:
            normal = -normal
        area = float(np.linalg.norm(np.cross(cell[0], cell[1])))
        pos = torch.as_tensor(positions, dtype=dtype, device=device)
        return pos @ torch.as_tensor(normal, dtype=dtype, device=device), area, normal

    VECTOR_SCALE = 5.0  # Å: the local pair vector enters as Fᵀ r / VECTOR_SCALE (``local_vector``)

    def _framed_end(self, nets, key, feats, own, other, vec, r, R, w, la, lb, F_own, D_own):
        """G(own, other, r; F_own): the block (P, 2la+1, 2lb+1) predicted in the own atom's
        crystal frame from (features, r in that frame), rotated to the global frame and
        averaged over the three C₃-equivalent frames F_k = F R_z(2πk/3):

            G = (1/3) Σ_k D(F_k) X(F_kᵀ r̂) D(F_k)ᵀ = D(F) [(1/3) Σ_k D(R_k) X_k D(R_k)ᵀ] D(F)ᵀ.

        The network sees cat[f_own, f_other, rbf(r), F_kᵀ r̂] (with ``local_vector`` also
        F_kᵀ r / VECTOR_SCALE; with ``inter_stacking`` the inter-layer nets also cos 3Δ after the
        radial basis); its first layer is applied as
        W_own f_own + W_other f_other + W_R rbf + W_loc F_kᵀ r̂ (atom terms once per atom, the
        radial term once per pair, only the last per frame). Pairs must be sorted by r, so the
        short- and long-range networks act on a prefix and a suffix. ``D_own``: the own atoms'
        Wigner matrices (D_la(F), D_lb(F)) and ``F_own`` their frames, gathered per pair.
        """
        na, nb = 2 * la + 1, 2 * lb + 1
        P = len(r)
        rot = _c3_rotations(vec.dtype, vec.device)
        # D(R_k) X D(R_k)ᵀ on flattened blocks: X_flat @ kron(D_la(R_k), D_lb(R_k))ᵀ
        kron = [torch.kron(wigner_d(Rk, la), wigner_d(Rk, lb)).T for Rk in rot]
        local0 = torch.einsum("pab,pa->pb", F_own, vec / r[:, None])  # Fᵀ r̂
        if self.config.get("local_vector"):  # also Fᵀ r itself: a ReLU net builds functions of k·r from it directly
            local0 = torch.cat([local0, local0 * (r[:, None] / self.VECTOR_SCALE)], dim=1)
        n_loc = local0.shape[1]
        Y = torch.zeros(P, na * nb, dtype=vec.dtype, device=vec.device)
        fdim = feats.shape[1]
        n_short, n_full = int((w > 0).sum()), int((w >= 1).sum())
        for rng, part, weight in (("s", slice(0, n_short), w), ("l", slice(n_full, P), 1 - w)):
            if part.stop <= part.start:
                continue
            net = nets[key + rng]
            W_own, W_other, W_R, W_loc = torch.split(net[0].weight, [fdim, fdim, R.shape[1], n_loc], dim=1)
            pre = R[part] @ W_R.T + net[0].bias
            if fdim:
                pre = pre + (feats @ W_own.T)[own[part]] + (feats @ W_other.T)[other[part]]
            loc, wt = local0[part], weight[part, None]
            acc = 0
            for k in range(3):
                loc_k = (loc.view(-1, n_loc // 3, 3) @ rot[k]).view(-1, n_loc)
                acc = acc + net[1:](pre + loc_k @ W_loc.T) @ kron[k]
            Y[part] += (self._out_scale(nets, key, rng) * wt) * acc
        Da, Db = D_own
        return Da @ Y.view(P, na, nb) @ Db.transpose(1, 2) / 3

    @staticmethod
    def stacking_cosine(species, frames, pi, pj) -> torch.Tensor:
        """cos 3Δ_ij (P,): Δ_ij is the angle between the crystal orientations of atoms i and j
        about the layer normal — 1 for two atoms of one layer or of R-stacked (0°) layers, −1 for
        H-stacked (60°) layers, cos 3θ across layers twisted by θ. From the frames' e₁ (which the
        sublayer flip leaves alone): cos 3x = 4c³ − 3c with c = e₁ᵢ·e₁ⱼ; a metal's e₁ points at a
        chalcogen and a chalcogen's at a metal, 180° (mod 120°) apart, hence the sign per
        chalcogen. Invariant under rotations and under i ↔ j, so H_ji(−R) = H_ij(R)ᵀ still holds."""
        c = (frames[pi, :, 0] * frames[pj, :, 0]).sum(1).clamp(-1.0, 1.0)
        sign = 1.0 - 2.0 * ((species[pi] + species[pj]) % 2).to(c.dtype)
        return sign * (4 * c ** 3 - 3 * c)

    def _hoppings_frame(self, species, layer, feats, pi, pj, vec, frames, latent):
        P = len(pi)
        out = torch.zeros(P, 5, 5, dtype=vec.dtype, device=vec.device)
        intra = layer[pi] == layer[pj]
        D = {l: wigner_d(frames, l) for l in (1, 2)}  # per atom
        r_all = vec.norm(dim=1)
        rs = self.config["r_split"]
        for ta in range(2):
            for tb in range(2):
                m = (species[pi] == ta) & (species[pj] == tb)
                la, lb, na, nb = L_OF[ta], L_OF[tb], N_OF[ta], N_OF[tb]
                for nets, sel, f in ((self.intra, m & intra, feats), (self.inter, m & ~intra, latent)):
                    idx = torch.nonzero(sel).squeeze(1)
                    if len(idx) == 0:
                        continue
                    idx = idx[torch.argsort(r_all[idx])]  # by distance: short/long nets on slices
                    i, j, v, r = pi[idx], pj[idx], vec[idx], r_all[idx]
                    R = rbf(r, self.config["r_max"], self.config["n_rbf"])
                    if nets is self.inter and self.config.get("inter_stacking"):
                        R = torch.cat([R, self.stacking_cosine(species, frames, i, j)[:, None]], dim=1)
                    w = switch(r, rs - 0.5, rs + 0.5)
                    # H_ij = G(i, j, r; F_i) + G(j, i, −r; F_j)ᵀ: exact H_ji(−R) = H_ij(R)ᵀ
                    blk = self._framed_end(nets, f"{ta}{tb}", f, i, j, v, r, R, w, la, lb,
                                           frames[i], (D[la][i], D[lb][i])) + \
                        self._framed_end(nets, f"{tb}{ta}", f, j, i, -v, r, R, w, lb, la,
                                         frames[j], (D[lb][j], D[la][j])).transpose(1, 2)
                    out[idx, :na, :nb] = blk
        return out

    def hoppings(self, species, layer, Z, pi, pj, vec, frames=None, inter_feats=None):
        """Blocks (P, 5, 5) for pairs i→j (vec = r_j + shift − r_i), i ≠ j or shift ≠ 0.
        ``Z``: per-atom features from :meth:`atom_features`; ``frames``: from :meth:`frames`;
        ``inter_feats``: from :meth:`inter_features` (needed with ``inter_uses_raer`` unless the
        intra-layer inputs are the same RAER)."""
        if inter_feats is None:
            if self.config["inter_uses_raer"] and self.config["intra_input"] != "raer":
                raise ValueError("inter_uses_raer: pass inter_feats=HamiltonianModel.inter_features(species, Z)")
            inter_feats = Z if self.config["inter_uses_raer"] else Z[:, :0]
        if self.config["block_form"] == "frame":
            if frames is None:
                raise ValueError("the frame block form needs the atoms' crystal frames (HamiltonianModel.frames)")
            return self._hoppings_frame(species, layer, Z, pi, pj, vec, frames, inter_feats)
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
                f = self._pair_features(Z, a[idx[im]], b[idx[im]], ta == tb, r[idx[im]],
                                        self.config["intra_input"] != "none")
                coeff[im] = self._hop(self.intra, key, f, r[idx[im]])
            if em.any():
                f = self._pair_features(inter_feats, a[idx[em]], b[idx[em]], ta == tb, r[idx[em]],
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


class HeadsEnsemble(nn.Module):
    """Independently trained Hamiltonian heads (one architecture, other seeds and splits) on one
    force field. Predictions are the members' mean; their spread is a per-element uncertainty
    (:func:`~wander_gui.ml.predict.predict_blocks`). Members differ in their statistics
    (z_mean, d_std, output scales: fitted on each member's training split), so each member
    evaluates its own inputs; only the outputs are averaged."""

    def __init__(self, members):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        if any(m.config != members[0].config for m in members[1:]):
            raise ValueError("ensemble members must share one architecture (config)")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> dict:
        return self.members[0].config


def heads_members(hm) -> list:
    """The Hamiltonian models whose mean a prediction is: the members of an ensemble, else [hm]."""
    return list(hm.members) if isinstance(hm, HeadsEnsemble) else [hm]


def heads_from_checkpoint(ck: dict):
    """A HamiltonianModel from ``{config, state_dict}``, a HeadsEnsemble from ``{config, members}``."""
    def one(state):
        hm = HamiltonianModel(**ck["config"]).double()
        hm.load_state_dict(state)
        return hm
    if "members" in ck:
        return HeadsEnsemble([one(sd) for sd in ck["members"]])
    return one(ck["state_dict"])


def heads_checkpoint(hm) -> dict:
    """What :func:`heads_from_checkpoint` reads back."""
    if isinstance(hm, HeadsEnsemble):
        return {"config": hm.config, "members": [m.state_dict() for m in hm.members]}
    return {"config": hm.config, "state_dict": hm.state_dict()}
