"""Band structure of a bilayer from a Wannier Hamiltonian (predicted, or a Wannier90 _hr.dat)."""
from __future__ import annotations

import numpy as np

NAME = "bands"
HELP = "band structure on the moiré path or explicit k-points"


def add_arguments(p) -> None:
    p.add_argument("structure", help="bilayer structure (extxyz, POSCAR)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--path", default="GMKG", help="path of special points G, M, K (default GMKG)")
    g.add_argument("--kpts", help="file with one k-point per line (3 fractional coordinates)")
    p.add_argument("--npoints", type=int, default=60)
    p.add_argument("--nbands", type=int, default=None, help="bands around the gap (default: all for small cells)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="pretrained model name (default: the shipped MoS2 model)")
    src.add_argument("--model-dir", default=None, help="directory with ff.pt and h.pt from `wander train`")
    src.add_argument("--hr", default=None, help="Wannier90 seed_hr.dat instead of a model prediction")
    p.add_argument("--n-valence", type=int, default=None, help="filled bands (default 7 per 11 orbitals)")
    p.add_argument("--sigma", type=float, default=None, help="energy inside the gap for the sparse solver, eV")
    p.add_argument("--solver", default="auto", choices=["auto", "dense", "sparse", "torch", "subspace"],
                   help="subspace: exact only at a few anchor k-points, certified reduced-basis bands "
                        "elsewhere (large cells, many k-points)")
    p.add_argument("--tol", type=float, default=0.03,
                   help="subspace solver: largest residual |Hx - ex| per state, eV (default 0.03)")
    p.add_argument("--fat", action="store_true",
                   help="also store the layer-0 weight of every state (fat bands; model predictions only)")
    p.add_argument("--dask", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="parallel over k-points with dask.distributed: a LocalCluster, or a scheduler address")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.add_argument("--plot", default=None, help="also write a plot (PNG/PDF)")


def run(args) -> int:
    from wander_gui.core.io import read_hr, read_structure
    from wander_gui.electronic.bands import compute_bands, plot_bands
    from wander_gui.electronic.hamiltonian import TBHamiltonian
    from wander_gui.electronic.kpoints import band_path, read_kpoints
    from wander_gui.errors import InputError

    atoms = read_structure(args.structure)
    orbital_layer = None
    if args.hr:
        if args.fat:
            raise InputError("--fat needs the orbital-to-atom mapping of a model prediction (not --hr)")
        hr = read_hr(args.hr)
        tb = TBHamiltonian.from_wannier_hr(hr, cell_cv=atoms.cell.array)
        err = tb.hermiticity_error()
        if err > 1e-5:
            raise InputError(f"{args.hr} is not Hermitian: max |H(k) - H(k)^†| = {err:.2e} eV")
    else:
        from wander_gui import backend
        tb = backend.predict_tb(atoms, model=args.model, model_dir=args.model_dir)
        if args.fat:
            from wander_gui.core.layers import ensure_layers
            from wander_gui.core.materials import material_from_elements
            from wander_gui.core.orbitals import orbital_offsets
            layer = ensure_layers(atoms)
            metal = material_from_elements(atoms.get_chemical_symbols()).metal
            _, counts = orbital_offsets(atoms.get_chemical_symbols(), metal)
            orbital_layer = np.repeat(layer, counts)
    if args.kpts:
        kpts, x, labels = read_kpoints(args.kpts), None, None
    else:
        kpts, x, labels = band_path(atoms.cell.array, args.path, args.npoints)
    res = compute_bands(tb, kpts, nbands=args.nbands, n_valence=args.n_valence, sigma=args.sigma,
                        solver=args.solver, orbital_layer=orbital_layer, dask=args.dask,
                        on_step=_progress(len(kpts)), subspace_tol=args.tol)
    res.x_k, res.labels = x, labels
    res.save(args.output)
    print(f"{len(kpts)} k-points x {res.e_kn.shape[1]} bands; VBM {res.vbm:.4f} eV, CBM {res.cbm:.4f} eV, "
          f"gap {res.cbm - res.vbm:.4f} eV -> {args.output}")
    if res.residual_kn is not None:
        print(f"subspace solver: largest residual {1000 * res.residual_kn.max():.2f} meV "
              "(every eigenvalue is within its residual of an exact one)")
    if args.plot:
        plot_bands(res, args.plot, title=atoms.get_chemical_formula())
        print(f"plot -> {args.plot}")
    return 0


def _progress(nk):
    """tqdm bar over k-points (stderr)."""
    from tqdm.auto import tqdm
    bar = tqdm(total=nk, desc="bands", unit="k")

    def step(done, total):
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return step
