"""Assemble twisted / strained / shifted MX2 bilayers as ``ase.Atoms``.

Geometry conventions
--------------------
* Primitive 60° basis a1 = a(1, 0), a2 = a(1/2, √3/2); metal at fractional (0, 0),
  chalcogens at (1/3, 1/3) with z = ±t_XX/2 (2H monolayer, trigonal prismatic).
* R stacking: the top layer is the same monolayer rotated counter-clockwise by θ about
  the origin (θ = 0 is AA: metal over metal, chalcogen over chalcogen).
* H stacking: the top layer is rotated by 180° and shifted by (1/3, 1/3), then by θ; at
  θ = 0 this is 2H (AA′): metal over chalcogen and chalcogen over metal. An R bilayer at
  θ and an H bilayer at 60° − θ are the same structure up to an in-plane shift.
* Atom order: layer 0 (bottom) then layer 1; inside a layer all metals, then lower
  chalcogens, then upper chalcogens, each in the order of
  :func:`~wander_gui.core.lattice.lattice_points_in_cell`.
* Cell: in-plane supercell vectors (right-handed) and c along z; pbc (True, True, False).
"""
from __future__ import annotations

import numpy as np
from ase import Atoms

from wander_gui.core.coincidence import search_cells
from wander_gui.core.lattice import hex_basis, lattice_points_in_cell
from wander_gui.core.layers import validate_structure
from wander_gui.core.materials import STACKINGS, get_material
from wander_gui.core.moire import MAX_ATOMS_LIMIT, SupercellSpec, exact_cell, snap_angle
from wander_gui.core.strain import layer_deformations
from wander_gui.errors import InputError, check_range

MOTIF = {"bottom": ((0.0, 0.0), (1 / 3, 1 / 3)), "R": ((0.0, 0.0), (1 / 3, 1 / 3)),
         "H": ((1 / 3, 1 / 3), (0.0, 0.0))}
VACUUM_RANGE = (10.0, 60.0)
D_RANGE = (4.0, 12.0)


def build_bilayer(spec: SupercellSpec, *, material="MoS2", stacking: str = "R",
                  d_interlayer: float | None = None, vacuum: float = 15.0,
                  shift_frac=(0.0, 0.0), validate: bool = True) -> Atoms:
    """Atoms of a bilayer described by ``spec``.

    Parameters
    ----------
    spec : SupercellSpec
        Supercell and per-layer integer matrices (from :func:`exact_cell`,
        :func:`~wander_gui.core.coincidence.search_cells` or ``make_spec``).
    material : str
        Key of :data:`~wander_gui.core.materials.MATERIALS`.
    stacking : {"R", "H"}
    d_interlayer : float, optional
        Metal–metal interlayer distance, Å; default the material's starting value.
    vacuum : float
        Vacuum between the outer chalcogen planes of periodic images, Å (10–60).
    shift_frac : (float, float)
        Extra in-plane translation of the top layer, fractional coordinates of its
        primitive cell.
    validate : bool
        Check atom counts and the minimum interatomic distance (default True).
    """
    mat = get_material(material)
    if stacking not in STACKINGS:
        raise InputError(f"stacking={stacking!r} is unknown; allowed: {', '.join(STACKINGS)}")
    d = mat.d_MM[stacking] if d_interlayer is None else d_interlayer
    d = check_range("d_interlayer", d, *D_RANGE, unit="Å")
    vacuum = check_range("vacuum", vacuum, *VACUUM_RANGE, unit="Å")
    if spec.n_atoms > MAX_ATOMS_LIMIT:
        raise InputError(f"the cell has {spec.n_atoms} atoms; the limit is {MAX_ATOMS_LIMIT}")
    t = mat.t_XX
    z_m0 = vacuum / 2 + t / 2
    c = d + t + vacuum
    blocks_sym, blocks_pos, blocks_layer = [], [], []
    for lay, (S, motif_key) in enumerate(((spec.S1, "bottom"), (spec.S2, stacking))):
        A = spec.L_cv @ np.linalg.inv(S.astype(float))  # actual primitive lattice
        pts = lattice_points_in_cell(S).astype(float)
        m_frac, x_frac = (np.asarray(f) for f in MOTIF[motif_key])
        shift = np.asarray(shift_frac, float) if lay == 1 else np.zeros(2)
        zm = z_m0 + lay * d
        for frac, z, sym in ((m_frac, zm, mat.metal), (x_frac, zm - t / 2, mat.chalcogen),
                             (x_frac, zm + t / 2, mat.chalcogen)):
            xy = (pts + frac + shift) @ A.T
            blocks_pos.append(np.column_stack([xy, np.full(len(xy), z)]))
            blocks_sym += [sym] * len(xy)
            blocks_layer.append(np.full(len(xy), lay))
    cell = np.zeros((3, 3))
    cell[0, :2] = spec.L_cv[:, 0]
    cell[1, :2] = spec.L_cv[:, 1]
    cell[2, 2] = c
    atoms = Atoms(blocks_sym, positions=np.vstack(blocks_pos), cell=cell, pbc=(True, True, False))
    atoms.wrap(pbc=(True, True, False))
    atoms.set_array("layer", np.concatenate(blocks_layer).astype(np.int64))
    n1, n2 = spec.n_fu
    atoms.info.update(
        material=mat.name, stacking=stacking, twist_deg=float(spec.theta_deg),
        twist_eff_deg=float(spec.theta_eff_deg), S1=spec.S1.astype(int).ravel().tolist(),
        S2=spec.S2.astype(int).ravel().tolist(), n_fu_layer0=n1, n_fu_layer1=n2,
        strain_top=np.round(spec.strain_top, 10).ravel().tolist(),
        strain_bottom=np.round(spec.strain_bottom, 10).ravel().tolist(),
        residual_strain_max=float(spec.max_residual_strain), d_interlayer=float(d))
    if spec.mn is not None:
        atoms.info["mn"] = list(spec.mn)
    if validate:
        if len(atoms) != 3 * (n1 + n2):
            raise RuntimeError(f"built {len(atoms)} atoms, expected {3 * (n1 + n2)}; please report")
        validate_structure(atoms, mat)
    return atoms


def build_twisted(material="MoS2", stacking: str = "R", *, angle: float | None = None,
                  mn: tuple[int, int] | None = None, strain_percent: float = 0.0,
                  strain_mode: str = "biaxial", strain_direction_deg: float = 0.0,
                  max_atoms: int = 2000, max_residual_strain: float = 0.01,
                  d_interlayer: float | None = None, vacuum: float = 15.0) -> Atoms:
    """Build a twisted bilayer from (m, n) or from an angle (+ optional strain).

    With ``mn`` the exact cell is built. With ``angle`` and no strain, the nearest exact
    cell within ``max_atoms`` (snap to nearest); with strain, the best cell of the
    coincidence search.
    """
    mat = get_material(material)
    if mn is not None:
        spec = exact_cell(*mn, a=mat.a)
        if spec.n_atoms > max_atoms:
            raise InputError(f"(m, n)={tuple(mn)} has {spec.n_atoms} atoms, above max_atoms={max_atoms}")
    elif angle is None:
        raise InputError("give either angle (0°, 60°) or mn=(m, n)")
    elif strain_percent == 0.0:
        snap = snap_angle(angle, max_atoms=max_atoms, strict=True)
        spec = exact_cell(snap["m"], snap["n"], a=mat.a)
    else:
        cells = search_cells(angle, material=mat, strain_percent=strain_percent,
                             strain_mode=strain_mode, strain_direction_deg=strain_direction_deg,
                             max_atoms=max_atoms, max_residual_strain=max_residual_strain, k=1)
        if not cells:
            raise InputError(
                f"no cell within max_atoms={max_atoms} matches angle={angle}° and strain="
                f"{strain_percent}% to max_residual_strain={max_residual_strain}; raise max_atoms "
                "or max_residual_strain")
        spec = cells[0]
    return build_bilayer(spec, material=mat, stacking=stacking, d_interlayer=d_interlayer, vacuum=vacuum)


def build_aligned(material="MoS2", stacking: str = "H", *, supercell: int = 1,
                  shift_frac=(0.0, 0.0), d_interlayer: float | None = None,
                  strain_percent: float = 0.0, strain_mode: str = "biaxial",
                  strain_direction_deg: float = 0.0, vacuum: float = 15.0) -> Atoms:
    """Untwisted n×n bilayer (θ = 0) with an interlayer shift and a homogeneous strain.

    Both layers share the deformation F = I + ε (an untwisted commensurate cell cannot
    hold different layer lattices); locally, a heterostrained moiré looks like this
    with a slowly varying shift, which is what the training set needs to cover.
    """
    mat = get_material(material)
    n = int(check_range("supercell", supercell, 1, 12))
    if strain_mode == "heterostrain":
        raise InputError("strain_mode='heterostrain' needs a twisted/coincidence cell; "
                         "allowed here: biaxial, uniaxial, shear")
    _, F = layer_deformations(strain_percent, strain_mode, direction_deg=strain_direction_deg)
    S = n * np.eye(2, dtype=np.int64)
    spec = SupercellSpec(L_cv=F @ hex_basis(mat.a) @ S, S1=S, S2=S.copy(), theta_deg=0.0,
                         theta_eff_deg=0.0, strain_top=F - np.eye(2), strain_bottom=F - np.eye(2))
    return build_bilayer(spec, material=mat, stacking=stacking, d_interlayer=d_interlayer,
                         vacuum=vacuum, shift_frac=shift_frac)
