"""Materials table for 2H transition-metal dichalcogenide monolayers MX2.

Lattice constants ``a`` and chalcogen–chalcogen thicknesses ``t_XX`` are PBE values
as tabulated by the Computational 2D Materials Database (C2DB; S. Haastrup et al.,
2D Mater. 5, 042002 (2018)), rounded to 0.01 Å. For MoS2 they agree with the
project's plane-wave GPAW reference geometry (a = 3.18 Å, S–S = 3.13 Å).

Interlayer metal–metal starting distances are *starting guesses* for relaxation:
H (2H-like) stacking takes half the bulk 2H c axis (experimental, Wyckoff, Crystal
Structures, 1963: MoS2 12.30 Å, MoSe2 12.93 Å, WS2 12.32 Å, WSe2 12.96 Å,
MoTe2 13.97 Å); R (rhombohedral/AA-containing) stacking starts 0.2 Å further apart
because twisted R cells contain AA regions with larger local spacing.
"""
from __future__ import annotations

from dataclasses import dataclass

from wander_gui.errors import InputError


@dataclass(frozen=True)
class Material:
    """A 2H MX2 monolayer.

    Attributes
    ----------
    name : str
        Chemical formula, e.g. ``"MoS2"``.
    metal, chalcogen : str
        Element symbols.
    a : float
        In-plane lattice constant, Å (PBE).
    t_XX : float
        Vertical chalcogen–chalcogen distance inside one layer, Å (PBE).
    d_MM : dict
        Starting interlayer metal–metal distance per stacking (``"R"``, ``"H"``), Å.
    """

    name: str
    metal: str
    chalcogen: str
    a: float
    t_XX: float
    d_MM: dict

    @property
    def elements(self) -> tuple[str, str]:
        return (self.metal, self.chalcogen)


def _m(name, metal, chalc, a, t, c_bulk):
    half = round(c_bulk / 2, 3)
    return Material(name, metal, chalc, a, t, {"H": half, "R": round(half + 0.2, 3)})


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        _m("MoS2", "Mo", "S", 3.18, 3.13, 12.30),
        _m("MoSe2", "Mo", "Se", 3.32, 3.34, 12.93),
        _m("WS2", "W", "S", 3.18, 3.14, 12.32),
        _m("WSe2", "W", "Se", 3.32, 3.36, 12.96),
        _m("MoTe2", "Mo", "Te", 3.55, 3.61, 13.97),
    )
}
DEFAULT_MATERIAL = "MoS2"
STACKINGS = ("R", "H")


def get_material(name: str | Material) -> Material:
    """Look up a material by formula; raise :class:`InputError` listing the known ones."""
    if isinstance(name, Material):
        return name
    for key, mat in MATERIALS.items():
        if str(name).lower() == key.lower():
            return mat
    raise InputError(f"material={name!r} is unknown; allowed: {', '.join(MATERIALS)}")


def material_from_elements(symbols) -> Material:
    """Identify the material from a set of element symbols (e.g. from a file)."""
    found = set(symbols)
    for mat in MATERIALS.values():
        if found == set(mat.elements):
            return mat
    raise InputError(
        f"elements {sorted(found)} do not form a supported bilayer; supported: "
        + ", ".join(f"{m.name} ({m.metal}+{m.chalcogen})" for m in MATERIALS.values()))
