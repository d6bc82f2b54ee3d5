"""Exactly rotation-equivariant building blocks for Hamiltonian blocks (torch, vectorised).

Orbital convention (wander_gui.core.orbitals): p = (x, y, z), d = (z², xz, yz, x²−y², xy).
A block between shells l1, l2 of a structure rotated by R becomes D_l1(R) H D_l2(R)ᵀ with
D_1(R) = R and D_2(R)_{m'm} = tr(M_m' R M_m Rᵀ)/tr(M_m' M_m') (M_m: the quadratic form of
d orbital m; the five forms are orthogonal with equal norms).

Two-centre ("Slater–Koster") channels: in a bond frame whose z axis is the bond direction,
the matrices E_c invariant under rotations about z (σ, π, δ couplings of equal |m|). For a
bond along r̂, T_c(r̂) = D_l1(Q) E_c D_l2(Q)ᵀ with Q ẑ = r̂; the azimuth of Q drops out, so
T_c is a smooth equivariant function of r̂ and any block Σ_c f_c T_c with rotation-invariant
coefficients f_c is exactly equivariant (J. C. Slater, G. F. Koster, Phys. Rev. 94, 1498 (1954)).
"""
from __future__ import annotations

import numpy as np
import torch

S3 = np.sqrt(3.0)
#: quadratic forms M_m (Y_m(r) = rᵀ M_m r) of the five d orbitals, project order
_D_FORMS = np.array([
    [[-0.5, 0, 0], [0, -0.5, 0], [0, 0, 1.0]],
    [[0, 0, S3 / 2], [0, 0, 0], [S3 / 2, 0, 0]],
    [[0, 0, 0], [0, 0, S3 / 2], [0, S3 / 2, 0]],
    [[S3 / 2, 0, 0], [0, -S3 / 2, 0], [0, 0, 0]],
    [[0, S3 / 2, 0], [S3 / 2, 0, 0], [0, 0, 0]],
])
#: |m| of each orbital and its cos/sin partner index, per l
_M = {1: [1, 1, 0], 2: [0, 1, 1, 2, 2]}
_PAIRS = {1: {0: [(2,)], 1: [(0, 1)]}, 2: {0: [(0,)], 1: [(1, 2)], 2: [(3, 4)]}}


def sk_channels(l1: int, l2: int) -> np.ndarray:
    """Bond-frame matrices E_c ((n_c, 2l1+1, 2l2+1)) for |m| = 0 .. min(l1, l2)."""
    out = []
    for m in range(min(l1, l2) + 1):
        E = np.zeros((2 * l1 + 1, 2 * l2 + 1))
        a, b = _PAIRS[l1][m][0], _PAIRS[l2][m][0]
        for x, y in zip(a, b):
            E[x, y] = 1.0
        out.append(E)
    return np.array(out)


def wigner_d(Q: torch.Tensor, l: int) -> torch.Tensor:
    """D_l(Q) for a batch of rotations Q (..., 3, 3)."""
    if l == 1:
        return Q
    M = torch.as_tensor(_D_FORMS, dtype=Q.dtype, device=Q.device)
    rot = Q[..., None, :, :] @ M @ Q[..., None, :, :].transpose(-1, -2)  # (..., 5, 3, 3)
    return torch.einsum("pab,...mab->...pm", M, rot) / 1.5


def bond_frames(rhat: torch.Tensor) -> torch.Tensor:
    """Rotations Q (P, 3, 3) with Q ẑ = r̂ (any azimuth; Rodrigues, stable for r̂ ≈ −ẑ)."""
    z = torch.zeros_like(rhat)
    z[:, 2] = 1.0
    flip = rhat[:, 2] < -0.5
    # rotate from +z for the upper hemisphere and from -z (then flip) for the lower one
    target = torch.where(flip[:, None], -rhat, rhat)
    v = torch.cross(z, target, dim=1)
    c = target[:, 2]
    vx = torch.zeros(len(rhat), 3, 3, dtype=rhat.dtype, device=rhat.device)
    vx[:, 0, 1], vx[:, 0, 2] = -v[:, 2], v[:, 1]
    vx[:, 1, 0], vx[:, 1, 2] = v[:, 2], -v[:, 0]
    vx[:, 2, 0], vx[:, 2, 1] = -v[:, 1], v[:, 0]
    eye = torch.eye(3, dtype=rhat.dtype, device=rhat.device).expand_as(vx)
    Q = eye + vx + (vx @ vx) / (1.0 + c)[:, None, None]
    # for flipped bonds compose with a rotation by π about x (maps ẑ -> −ẑ)
    Rx = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=rhat.dtype, device=rhat.device))
    return torch.where(flip[:, None, None], Q @ Rx, Q)


def sk_basis(rhat: torch.Tensor, l1: int, l2: int) -> torch.Tensor:
    """T_c(r̂) for every bond: (P, n_c, 2l1+1, 2l2+1)."""
    Q = bond_frames(rhat)
    E = torch.as_tensor(sk_channels(l1, l2), dtype=rhat.dtype, device=rhat.device)
    D1, D2 = wigner_d(Q, l1), wigner_d(Q, l2)
    return torch.einsum("pab,cbd,ped->pcae", D1, E, D2)
