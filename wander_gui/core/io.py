"""Structure and Wannier90 file I/O.

Structures go through ASE (extxyz keeps the per-atom ``layer`` array and ``info``;
POSCAR keeps positions and cell, layers are re-detected on reading).

Wannier90 real-space Hamiltonians
---------------------------------
``seed_hr.dat`` (Wannier90 ``write_hr``): a header line, ``num_wann``, ``nrpts``, the
degeneracies ``ndegen`` 15 per line, then for every lattice vector R and every pair one
line ``R1 R2 R3 m n Re Im`` with the row index m running fastest, in eV.
``seed_tb.dat`` (``write_tb``): header, the three lattice vectors (Å), ``num_wann``,
``nrpts``, ``ndegen``, then per R a blank line, ``R1 R2 R3`` and lines ``m n Re Im``,
followed by the same blocks for the position matrix ``m n Re(x) Im(x) Re(y) Im(y) Re(z)
Im(z)`` (Å).

In memory, :class:`WannierHR` stores ``H_Rmn = H(R)/ndegen(R)`` so that
H(k) = Σ_R e^{ik·R} H_Rmn needs no weights: ``ndegen`` is handled here only.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wander_gui.errors import DataError, InputError

STRUCTURE_FORMATS = {".extxyz": "extxyz", ".xyz": "extxyz", ".vasp": "vasp", ".poscar": "vasp"}


def read_structure(path, *, index=-1):
    """Read a bilayer (extxyz, POSCAR/CONTCAR/.vasp, or any ASE format) and ensure layers."""
    import ase.io

    from wander_gui.core.layers import ensure_layers
    path = Path(path)
    if not path.exists():
        raise InputError(f"structure file {str(path)!r} does not exist")
    fmt = _structure_format(path)
    try:
        atoms = ase.io.read(path, index=index, format=fmt)
    except Exception as exc:  # ASE raises many kinds of parse errors
        raise InputError(f"could not read structure {str(path)!r}: {exc}") from exc
    ensure_layers(atoms)
    return atoms


def write_structure(atoms, path, *, fmt: str | None = None) -> Path:
    """Write atoms; extxyz keeps ``layer`` and info, POSCAR writes sorted-by-layer order."""
    import ase.io
    path = Path(path)
    fmt = fmt or _structure_format(path) or "extxyz"
    if fmt == "vasp":
        ase.io.write(path, atoms, format="vasp", direct=True)
    else:
        ase.io.write(path, atoms, format=fmt)
    return path


def _structure_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.startswith(("poscar", "contcar")):
        return "vasp"
    return STRUCTURE_FORMATS.get(path.suffix.lower())


@dataclass
class WannierHR:
    """Real-space Wannier Hamiltonian.

    Attributes
    ----------
    R_Rc : (nR, 3) int array
        Lattice vectors in units of the cell vectors.
    H_Rmn : (nR, nw, nw) complex array
        ⟨w_m,0|H|w_n,R⟩ / ndegen(R), eV.
    ndegen_R : (nR,) int array
        Wigner–Seitz degeneracies as read (kept for faithful writing).
    cell_cv : (3, 3) array or None
        Lattice vectors (rows), Å (tb.dat carries them).
    r_Rmnc : (nR, nw, nw, 3) complex array or None
        Position matrix elements ⟨w_m,0|r|w_n,R⟩ / ndegen, Å (tb.dat only).
    header : str
    """

    R_Rc: np.ndarray
    H_Rmn: np.ndarray
    ndegen_R: np.ndarray
    cell_cv: np.ndarray | None = None
    r_Rmnc: np.ndarray | None = None
    header: str = field(default="")

    @property
    def num_wann(self) -> int:
        return int(self.H_Rmn.shape[1])

    def hermiticity_error(self) -> float:
        """max |H_mn(R) − conj(H_nm(−R))| over all R present in pairs (eV)."""
        index = {tuple(r): i for i, r in enumerate(self.R_Rc)}
        err = 0.0
        for i, r in enumerate(self.R_Rc):
            j = index.get(tuple(-r))
            if j is None:
                err = max(err, float(np.abs(self.H_Rmn[i]).max()))
                continue
            err = max(err, float(np.abs(self.H_Rmn[i] - self.H_Rmn[j].conj().T).max()))
        return err


def _ints(tokens, n, what, path):
    try:
        vals = [int(t) for t in tokens[:n]]
    except ValueError:
        raise DataError(f"{path}: could not parse {what}") from None
    if len(vals) != n:
        raise DataError(f"{path}: expected {n} values for {what}, found {len(vals)}")
    return vals


def read_hr(path) -> WannierHR:
    """Read a Wannier90 ``seed_hr.dat``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Wannier90 file {str(path)!r} does not exist")
    with _open_text(path) as fh:
        header = fh.readline().rstrip("\n")
        try:
            nw = int(fh.readline().split()[0])
            nR = int(fh.readline().split()[0])
        except (ValueError, IndexError):
            raise DataError(f"{path}: not a Wannier90 _hr.dat file (bad num_wann/nrpts lines)") from None
        tokens = []
        while len(tokens) < nR:
            line = fh.readline()
            if not line:
                raise DataError(f"{path}: file ends inside the ndegen list")
            tokens += line.split()
        ndegen = np.array(_ints(tokens, nR, "ndegen", path), dtype=np.int64)
        data = np.loadtxt(fh, ndmin=2)
    if data.shape != (nR * nw * nw, 7):
        raise DataError(f"{path}: expected {nR * nw * nw} lines of 7 columns, got {data.shape}")
    data = data.reshape(nR, nw, nw, 7)  # [R, n (column), m (row), :]
    R = data[:, 0, 0, :3].astype(np.int64)
    H = (data[..., 5] + 1j * data[..., 6]).transpose(0, 2, 1)  # -> [R, m, n]
    m_idx = data[0, :, :, 3].astype(int) - 1
    n_idx = data[0, :, :, 4].astype(int) - 1
    if not (np.all(m_idx.T == np.arange(nw)[:, None]) and np.all(n_idx.T == np.arange(nw)[None, :])):
        raise DataError(f"{path}: orbital indices are not in Wannier90 order (row index fastest)")
    if np.any(ndegen <= 0):
        raise DataError(f"{path}: ndegen must be positive")
    return WannierHR(R_Rc=R, H_Rmn=H / ndegen[:, None, None], ndegen_R=ndegen, header=header)


def _open_text(path: Path):
    """Open plain or gzip-compressed text."""
    if path.suffix == ".gz":
        import gzip
        return gzip.open(path, "rt")
    return open(path)


def write_hr(hr: WannierHR, path, *, header: str | None = None) -> Path:
    """Write ``hr`` in Wannier90 ``_hr.dat`` format (values multiplied back by ndegen)."""
    path = Path(path)
    nR, nw, _ = hr.H_Rmn.shape
    H = hr.H_Rmn * hr.ndegen_R[:, None, None]
    header = header or hr.header or f"written by wander_gui on {_dt.datetime.now():%d%b%Y at %H:%M:%S}"
    with open(path, "w") as fh:
        fh.write(header.strip() + "\n")
        fh.write(f"{nw:12d}\n{nR:12d}\n")
        _write_ndegen(fh, hr.ndegen_R)
        n, m = np.meshgrid(np.arange(nw), np.arange(nw), indexing="ij")  # m fastest
        for iR in range(nR):
            r = hr.R_Rc[iR]
            vals = H[iR][m.ravel(), n.ravel()]
            block = np.column_stack([np.tile(r, (nw * nw, 1)), m.ravel() + 1, n.ravel() + 1])
            # Wannier90's (5I5, 2F12.6); the explicit space keeps columns apart for |H| >= 1000 eV
            lines = [f"{a:5d}{b:5d}{c:5d}{d:5d}{e:5d} {v.real:11.6f} {v.imag:11.6f}"
                     for (a, b, c, d, e), v in zip(block.tolist(), vals)]
            fh.write("\n".join(lines) + "\n")
    return path


def _write_ndegen(fh, ndegen):
    for i in range(0, len(ndegen), 15):
        fh.write("".join(f"{int(x):5d}" for x in ndegen[i:i + 15]) + "\n")


def read_tb(path) -> WannierHR:
    """Read a Wannier90 ``seed_tb.dat`` (lattice, H(R) and position matrix elements)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Wannier90 file {str(path)!r} does not exist")
    lines = path.read_text().splitlines()
    try:
        header = lines[0]
        cell = np.array([[float(x) for x in lines[i].split()[:3]] for i in (1, 2, 3)])
        nw = int(lines[4].split()[0])
        nR = int(lines[5].split()[0])
    except (ValueError, IndexError):
        raise DataError(f"{path}: not a Wannier90 _tb.dat file") from None
    pos = 6
    tokens = []
    while len(tokens) < nR:
        tokens += lines[pos].split()
        pos += 1
    ndegen = np.array(_ints(tokens, nR, "ndegen", path), dtype=np.int64)
    body = [ln.split() for ln in lines[pos:] if ln.strip()]
    per_R = 1 + nw * nw
    if len(body) != 2 * nR * per_R:
        raise DataError(f"{path}: expected {2 * nR * per_R} non-empty data lines, found {len(body)}")
    R = np.zeros((nR, 3), dtype=np.int64)
    H = np.zeros((nR, nw, nw), complex)
    r = np.zeros((nR, nw, nw, 3), complex)
    for iR in range(nR):
        blk = body[iR * per_R:(iR + 1) * per_R]
        R[iR] = [int(x) for x in blk[0][:3]]
        arr = np.array(blk[1:], dtype=float)
        mi, ni = arr[:, 0].astype(int) - 1, arr[:, 1].astype(int) - 1
        H[iR, mi, ni] = arr[:, 2] + 1j * arr[:, 3]
        blk = body[(nR + iR) * per_R:(nR + iR + 1) * per_R]
        if [int(x) for x in blk[0][:3]] != R[iR].tolist():
            raise DataError(f"{path}: position block {iR} has R={blk[0][:3]}, expected {R[iR].tolist()}")
        arr = np.array(blk[1:], dtype=float)
        mi, ni = arr[:, 0].astype(int) - 1, arr[:, 1].astype(int) - 1
        r[iR, mi, ni] = arr[:, 2::2] + 1j * arr[:, 3::2]
    w = ndegen[:, None, None]
    return WannierHR(R_Rc=R, H_Rmn=H / w, ndegen_R=ndegen, cell_cv=cell, r_Rmnc=r / w[..., None],
                     header=header)


def write_tb(hr: WannierHR, path, *, header: str | None = None) -> Path:
    """Write ``hr`` in Wannier90 ``_tb.dat`` format (needs ``cell_cv``; positions default 0)."""
    if hr.cell_cv is None:
        raise InputError("write_tb needs the lattice vectors (WannierHR.cell_cv)")
    path = Path(path)
    nR, nw, _ = hr.H_Rmn.shape
    w = hr.ndegen_R[:, None, None]
    H = hr.H_Rmn * w
    r = np.zeros((nR, nw, nw, 3), complex) if hr.r_Rmnc is None else hr.r_Rmnc * w[..., None]
    header = header or hr.header or f"written by wander_gui on {_dt.datetime.now():%d%b%Y at %H:%M:%S}"
    n, m = np.meshgrid(np.arange(nw), np.arange(nw), indexing="ij")
    mm, nn = m.ravel(), n.ravel()
    with open(path, "w") as fh:
        fh.write(header.strip() + "\n")
        for v in hr.cell_cv:
            fh.write(" ".join(f"{x:24.15E}" for x in v) + "\n")
        fh.write(f"{nw:12d}\n{nR:12d}\n")
        _write_ndegen(fh, hr.ndegen_R)
        for iR in range(nR):
            fh.write("\n" + "".join(f"{x:5d}" for x in hr.R_Rc[iR]) + "\n")
            fh.write("\n".join(f"{a + 1:5d}{b + 1:5d}   {v.real:15.8E} {v.imag:15.8E}"
                               for a, b, v in zip(mm, nn, H[iR][mm, nn])) + "\n")
        for iR in range(nR):
            fh.write("\n" + "".join(f"{x:5d}" for x in hr.R_Rc[iR]) + "\n")
            rows = r[iR][mm, nn]
            fh.write("\n".join(
                f"{a + 1:5d}{b + 1:5d}   " + " ".join(f"{c.real:15.8E} {c.imag:15.8E}" for c in v)
                for a, b, v in zip(mm, nn, rows)) + "\n")
    return path
