"""Eigenvalue solvers for H(k): dense LAPACK, sparse shift-invert, torch (GPU)."""
from __future__ import annotations

import functools
import logging
import warnings

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from wander_gui.errors import Cancelled, InputError

log = logging.getLogger(__name__)
DENSE_LIMIT = 3000  # orbitals: above this "auto" uses a GPU (torch) if there is one, else sparse shift-invert
GPU_DENSE_MAX = 40000  # orbitals: largest H(k) "auto" diagonalises densely on a GPU
#: above this size the GPU eigh runs in complex64 (cuSOLVER's complex128 workspace for 36k
#: orbitals is 79 GB, more than an 80 GB card holds next to H); eigenvalue error ~1e-5 eV
GPU_SINGLE_ABOVE = 20000
#: below this size one BLAS thread is used: threads gain nothing on small matrices, and on a
#: busy machine OpenBLAS's spinning threads made a 418-orbital eigh 160x slower (15 s vs 0.09 s)
SINGLE_THREAD_BELOW = 1500
SOLVERS = ("auto", "dense", "sparse", "torch")
#: fraction of non-zeros in H(k) above which shift-invert factorises H − σ densely
DENSE_FACTOR_ABOVE = 0.05
DENSE_FACTOR_MAX = 12000  # orbitals: a dense complex H − σ of this size is 2.3 GB


def _torch_eigh(H: np.ndarray, vectors: bool = False):
    """torch.linalg.eigh on the GPU when there is one (else on the CPU)."""
    import torch
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    Ht = torch.as_tensor(H, device=dev)
    if dev == "cuda" and H.shape[0] > GPU_SINGLE_ABOVE:
        Ht = Ht.to(torch.complex64 if Ht.is_complex() else torch.float32)
    if vectors:
        e, V = torch.linalg.eigh(Ht)
        return e.double().cpu().numpy(), V.cpu().numpy().astype(H.dtype)
    return torch.linalg.eigvalsh(Ht).double().cpu().numpy(), None


def gpu_available() -> bool:
    """True when torch is installed and sees a CUDA device (torch is imported only here)."""
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        return False
    import torch
    return bool(torch.cuda.is_available())


@functools.cache
def _blas_controller():
    """One threadpoolctl controller (finding the BLAS libraries costs ~3 ms; done once)."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def choose_solver(n: int, nbands: int | None) -> str:
    """What "auto" runs for an n×n H(k): LAPACK up to DENSE_LIMIT orbitals; above it a GPU
    dense eigh when a GPU is present (up to GPU_DENSE_MAX), else sparse shift-invert when
    only a few bands are wanted, else LAPACK."""
    if n <= DENSE_LIMIT:
        return "dense"
    if n <= GPU_DENSE_MAX and gpu_available():
        return "torch"
    return "sparse" if (nbands is not None and nbands < n // 4) else "dense"


class SymmetricFactor:
    """L D L^† factorisation of H − σ: the inertia count and solves (H − σ)⁻¹ X for blocks X.

    Sylvester's law of inertia: H − σ = L D L^† has as many negative eigenvalues as D, i.e.
    the number of eigenvalues of H below σ (spectrum slicing). Dense-ish H(k) (Wannier tails to
    12 Å fill 20 % of a 4,774-orbital H(k), and a sparse factorisation fills 85–95 %) use
    LAPACK's Bunch–Kaufman ``?hetrf`` through ``scipy.linalg.ldl`` (~4 s there, vs 10–13 s for
    SuperLU), kept as a column-major triangular factor so that a block of right-hand sides is
    two BLAS-3 triangular solves (64 vectors in 0.16 s, 2.5 ms each, against 44 ms for one
    vector through ``?hetrs``); sparser H(k) use SuperLU with a symmetric pivot order.
    """

    def __init__(self, Hk, sigma: float):
        n = Hk.shape[0]
        self.n, self.sigma = n, float(sigma)
        nnz = Hk.nnz if sp.issparse(Hk) else n * n
        if n <= DENSE_FACTOR_MAX and nnz > DENSE_FACTOR_ABOVE * n * n:
            A = Hk.toarray() if sp.issparse(Hk) else np.array(Hk, dtype=complex)
            A[np.diag_indices(n)] -= sigma
            with warnings.catch_warnings():  # ldl notes that it ignores round-off imaginary parts of diag(A)
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                lu, d, perm = sla.ldl(A, lower=True, hermitian=True, overwrite_a=True, check_finite=False)
            del A
            self._L = np.asfortranarray(lu[perm])  # unit lower triangular
            del lu
            self._perm = perm
            upper, diag, lower = np.diag(d, 1), np.diag(d).copy(), np.diag(d, -1)
            self._d_banded = np.array([np.r_[0, upper], diag, np.r_[lower, 0]])
            self.count = _block_diagonal_negatives(diag.real, lower)
            self._lu = None
        else:
            A = (sp.csc_matrix(Hk) - sigma * sp.identity(n, format="csc")).tocsc()
            self._lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                 options=dict(SymmetricMode=True))
            if not np.array_equal(self._lu.perm_r, self._lu.perm_c):
                raise RuntimeError("sparse LU did not keep a symmetric pivot order; cannot count eigenvalues")
            self.count = int((self._lu.U.diagonal().real < 0).sum())

    def solve(self, X: np.ndarray) -> np.ndarray:
        """(H − σ)⁻¹ X for a vector or an (n, m) block."""
        X = np.asarray(X, dtype=complex)
        if self._lu is not None:
            return self._lu.solve(X)
        # A = P^T L D L^† P with (P X) = X[perm]
        Y = sla.solve_triangular(self._L, X[self._perm], lower=True, unit_diagonal=True, check_finite=False)
        Y = sla.solve_banded((1, 1), self._d_banded, Y, check_finite=False)
        Y = sla.solve_triangular(self._L, Y, lower=True, trans="C", unit_diagonal=True, check_finite=False)
        out = np.empty_like(Y)
        out[self._perm] = Y
        return out

    @property
    def op(self) -> spla.LinearOperator:
        """(H − σ)⁻¹ as a LinearOperator (``OPinv`` of ``eigsh``)."""
        return spla.LinearOperator((self.n, self.n), matvec=self.solve, matmat=self.solve, dtype=complex)


def _block_diagonal_negatives(diag: np.ndarray, lower: np.ndarray) -> int:
    """Negative eigenvalues of a Hermitian block diagonal D with 1×1 and 2×2 blocks (Bunch–Kaufman):
    ``lower[k] != 0`` marks the 2×2 block [[a, conj(b)], [b, c]] at rows k, k+1 (eigenvalue signs
    from its determinant and trace)."""
    two = np.flatnonzero(lower != 0)
    single = np.ones(len(diag), bool)
    single[two] = single[two + 1] = False
    a, c, b = diag[two], diag[two + 1], lower[two]
    det = a * c - np.abs(b) ** 2
    return int((diag[single] < 0).sum() + np.where(det < 0, 1, np.where(a + c < 0, 2, 0)).sum())


def shift_invert_pairs(Hk, sigma: float, *, n_below: int = 0, n_above: int = 0, nearest: int = 0,
                       factor: SymmetricFactor | None = None, tol: float = 1e-10):
    """Eigenpairs of H next to ``sigma``: the ``n_below`` just below and ``n_above`` just above
    it, or the ``nearest`` closest on either side. Returns (eigenvalues sorted, vectors as columns).

    Shift-invert Lanczos (ARPACK ``eigsh``) on one factorisation of H − σ (``factor``, made
    here when not given): the spectrum of (H − σ)⁻¹ is ω = 1/(ε − σ), its most negative / most
    positive values are the states just below / above σ — a run per side, so an asymmetric gap
    cannot leave one side short — and its largest |ω| the nearest states. (A block Krylov
    variant with BLAS-3 solves was measured slower here: 15 s against 12 s for 16 + 16 states of
    a 4,774-orbital H(k) with σ mid-gap, because it needed ~4× more vectors to converge.)
    """
    n = Hk.shape[0]
    want = nearest if nearest else n_below + n_above
    if want < 1 or want > n - 2:
        raise InputError(f"{want} eigenpairs requested; must be in [1, {n - 2}]")
    f = factor if factor is not None else SymmetricFactor(Hk, sigma)
    A = Hk.tocsc() if sp.issparse(Hk) else np.asarray(Hk)
    es, Vs = [], []
    with _blas_controller().limit(limits=1 if n < SINGLE_THREAD_BELOW else None, user_api="blas"):
        for c, which in ((nearest, "LM"),) if nearest else ((n_below, "SA"), (n_above, "LA")):
            if c > 0:  # a roomy Krylov space: supercell spectra have degenerate clusters
                e, V = spla.eigsh(A, k=c, sigma=f.sigma, which=which, OPinv=f.op, tol=tol,
                                  ncv=min(n - 1, max(2 * c + 1, c + 32)))
                es.append(e.real)
                Vs.append(V)
    e, V = np.concatenate(es), np.hstack(Vs)
    order = np.argsort(e)
    return e[order], V[:, order]


def count_below(Hk: sp.spmatrix, sigma: float) -> int:
    """Number of eigenvalues of the Hermitian ``Hk`` below ``sigma``, without diagonalising
    (inertia of the L D L^† factorisation of H − σ)."""
    return SymmetricFactor(Hk, sigma).count


def _point_in_gap(Hk: sp.spmatrix, n_valence: int, guess: float | None, tol: float = 1e-3):
    """An energy with exactly ``n_valence`` eigenvalues below it, and the
    :class:`SymmetricFactor` of H − σ there.

    Starts from ``guess`` (default: between the n_valence-th and next on-site energy), brackets
    the gap by doubling steps from it, then bisects on inertia counts: a few factorisations
    instead of a bisection over the whole Gershgorin interval.
    """
    bound = float(abs(Hk).sum(axis=1).max()) + 1.0  # Gershgorin: the spectrum is inside [-bound, bound]
    if guess is None:
        d = np.sort(Hk.diagonal().real)
        guess = 0.5 * (d[n_valence - 1] + d[min(n_valence, len(d) - 1)])
    f = SymmetricFactor(Hk, guess)
    c = f.count
    if c == n_valence:
        return guess, f
    lo, hi = (guess, None) if c < n_valence else (None, guess)
    step = 0.5
    while lo is None or hi is None:
        trial = float(np.clip(guess + step if hi is None else guess - step, -bound, bound))
        f = SymmetricFactor(Hk, trial)
        c = f.count
        if c == n_valence:
            return trial, f
        if c < n_valence:
            lo = trial
        else:
            hi = trial
        if abs(trial) >= bound and (lo is None or hi is None):
            break
        step *= 2
    if lo is not None and hi is not None:
        while hi - lo >= tol:
            mid = 0.5 * (lo + hi)
            f = SymmetricFactor(Hk, mid)
            c = f.count
            if c == n_valence:
                return mid, f
            lo, hi = (mid, hi) if c < n_valence else (lo, mid)
    raise InputError(f"no gap after band {n_valence}: the Hamiltonian is metallic at this k-point")


def find_gap_sigma(tb, n_valence: int, kpts_kc=None, *, keep: tuple[int, int] | None = None):
    """Mid-gap energy for shift-invert, found automatically (at Γ, M, K of the cell by default).

    At each k an energy inside the gap is found from inertia counts (:func:`_point_in_gap`,
    starting from the previous k-point's gap centre), the band edges next to it by
    shift-invert Lanczos on the same factorisation; σ = (max VBM + min CBM) / 2 over the k-points.

    ``keep=(n_below, n_above)``: also return, per k-point, the eigenvalues and lattice-gauge
    eigenvectors of that many states below and above the gap (computed on the same
    factorisation, e.g. as anchors of the subspace solver): ``(sigma, [(eps, V), ...])``.
    """
    if kpts_kc is None:
        from wander_gui.electronic.kpoints import special_points
        kpts_kc = list(special_points(tb.cell_cv).values())
    vbm, cbm = -np.inf, np.inf
    guess = None
    kept = []
    nb, na = keep if keep is not None else (1, 1)
    for k in kpts_kc:
        Hk = tb.hk(k)
        s, f = _point_in_gap(Hk, n_valence, guess)
        e, V = shift_invert_pairs(Hk, s, n_below=max(nb, 1), n_above=max(na, 1), factor=f)
        v, c = float(e[e < s].max()), float(e[e > s].min())
        vbm, cbm = max(vbm, v), min(cbm, c)
        guess = 0.5 * (v + c)
        kept.append((e, V))
    if cbm <= vbm:
        raise InputError(f"no global gap: VBM {vbm:.3f} eV is above CBM {cbm:.3f} eV; give sigma explicitly")
    sigma = 0.5 * (vbm + cbm)
    return (sigma, kept) if keep is not None else sigma


def eigenpairs_at(Hk: sp.spmatrix, *, nbands: int | None, sigma: float | None, solver: str = "auto",
                  vectors: bool = False):
    """Sorted eigenvalues (and eigenvectors as columns when ``vectors``) of one H(k).

    ``nbands=None`` returns all (dense). With ``nbands`` and the sparse solver, the
    ``nbands`` eigenvalues closest to ``sigma`` (shift-invert Lanczos,
    :func:`shift_invert_pairs`); dense solvers return the ``nbands`` closest to ``sigma``.
    """
    n = Hk.shape[0]
    if solver not in SOLVERS:
        raise InputError(f"solver={solver!r} is unknown; allowed: {', '.join(SOLVERS)}")
    if nbands is not None and not 1 <= nbands <= n:
        raise InputError(f"nbands={nbands} must be in [1, {n}] (the size of the Wannier basis)")
    if solver == "auto":
        solver = choose_solver(n, nbands)
    if solver == "sparse":
        if nbands is None or sigma is None:
            raise InputError("the sparse solver needs nbands and sigma (energy inside the gap)")
        e, V = shift_invert_pairs(Hk, sigma, nearest=min(nbands, n - 2))
        return (e, V) if vectors else e
    Hd = Hk.toarray() if sp.issparse(Hk) else np.asarray(Hk)
    if solver == "torch":
        e, V = _torch_eigh(Hd, vectors)
    else:
        with _blas_controller().limit(limits=1 if n < SINGLE_THREAD_BELOW else None, user_api="blas"):
            if vectors:
                e, V = sla.eigh(Hd, check_finite=False)
            else:
                e, V = sla.eigh(Hd, eigvals_only=True, check_finite=False), None
    if nbands is None or nbands == n:
        idx = np.arange(n)
    else:
        ref = 0.0 if sigma is None else sigma
        idx = np.sort(np.argsort(np.abs(e - ref))[:nbands])
    return (e[idx], V[:, idx]) if vectors else e[idx]


def eigenvalues_at(Hk: sp.spmatrix, *, nbands: int | None, sigma: float | None, solver: str = "auto") -> np.ndarray:
    """Sorted eigenvalues of one H(k) (see :func:`eigenpairs_at`)."""
    return eigenpairs_at(Hk, nbands=nbands, sigma=sigma, solver=solver)


def _solve_batch(tb, kpts_kc, nbands, sigma, solver, gauge, weights_of):
    """Eigenvalues (and orbital-group weights Σ_{m∈group} |ψ_mn|²) of a batch of k-points."""
    es, ws = [], []
    dense = (solver if solver != "auto" else choose_solver(tb.n_orb, nbands)) in ("dense", "torch")
    for k in kpts_kc:
        Hk = tb.hk_dense(k, gauge=gauge) if dense else tb.hk(k, gauge=gauge)
        res = eigenpairs_at(Hk, nbands=nbands, sigma=sigma, solver=solver,
                            vectors=weights_of is not None)
        if weights_of is None:
            es.append(res)
        else:
            e, V = res
            es.append(e)
            ws.append(np.stack([(np.abs(V[g]) ** 2).sum(0) for g in weights_of]))
    return np.array(es), (np.array(ws) if ws else None)


def solve_bands(tb, kpts_kc, *, nbands: int | None = None, sigma: float | None = None, solver: str = "auto",
                gauge: str = "lattice", on_step=None, cancel=None, weights_of=None, dask=None,
                batch: int = 8):
    """Eigenvalues (nk, nb) along ``kpts_kc`` in batches of k-points; reports progress and
    honours ``cancel``. With ``weights_of`` (a list of orbital-index arrays) also returns the
    weights (nk, n_groups, nb) of each state on each group (e.g. the two layers).

    ``dask``: None (serial), ``"local"`` (a ``dask.distributed.LocalCluster`` on this
    machine), a scheduler address (``"tcp://host:8786"``) or a ``Client``; batches are then
    solved in parallel with identical results.
    """
    kpts_kc = np.asarray(kpts_kc, float)
    if kpts_kc.ndim != 2 or kpts_kc.shape[1] != 3:
        raise InputError(f"k-points must be an (nk, 3) array of fractional coordinates, got shape {kpts_kc.shape}")
    batches = [kpts_kc[i:i + batch] for i in range(0, len(kpts_kc), batch)]
    args = (nbands, sigma, solver, gauge, weights_of)
    results = []
    if dask is None:
        done = 0
        for b in batches:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"band calculation cancelled after {done} of {len(kpts_kc)} k-points")
            results.append(_solve_batch(tb, b, *args))
            done += len(b)
            if on_step:
                on_step(done, len(kpts_kc))
    else:
        results = _solve_dask(tb, batches, args, dask, on_step=on_step, cancel=cancel, nk=len(kpts_kc))
    e = np.concatenate([r[0] for r in results])
    if weights_of is None:
        return e
    return e, np.concatenate([r[1] for r in results])


def _solve_dask(tb, batches, args, dask, *, on_step, cancel, nk):
    from dask.distributed import Client, LocalCluster, as_completed
    own = None
    if isinstance(dask, Client):
        client = dask
    elif dask == "local":
        own = client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None))
    else:
        own = client = Client(dask)
    try:
        tb_f = client.scatter(tb, broadcast=True)
        futures = [client.submit(_solve_batch, tb_f, b, *args, pure=False) for b in batches]
        index = {f.key: i for i, f in enumerate(futures)}
        results, done = [None] * len(futures), 0
        for f in as_completed(futures):
            if cancel is not None and cancel.is_set():
                client.cancel(futures)
                raise Cancelled(f"band calculation cancelled after {done} of {nk} k-points")
            results[index[f.key]] = f.result()
            done += len(batches[index[f.key]])
            if on_step:
                on_step(done, nk)
        return results
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            if cluster is not None:
                cluster.close()


def dos(e_kn: np.ndarray, *, width: float = 0.02, energies=None, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-broadened density of states (states/eV per cell, averaged over k)."""
    e = np.asarray(e_kn).ravel()
    if energies is None:
        energies = np.linspace(e.min() - 5 * width, e.max() + 5 * width, n)
    g = np.exp(-0.5 * ((energies[:, None] - e[None, :]) / width) ** 2).sum(1)
    g /= width * np.sqrt(2 * np.pi) * len(e_kn)
    return energies, g
