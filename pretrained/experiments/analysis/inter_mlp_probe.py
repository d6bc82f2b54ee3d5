"""Are the 6-10 A inter-layer hoppings of the labelled 1x1 cells a learnable function of the geometry?

An MLP on the raw global-frame labels from (pair vector, cell's metal-metal distance and lattice,
stacking, species, orbitals); ``--no-cell`` leaves out the cell's distance and lattice, ``--no-stacking`` the stacking (R/H);
``--frame-inputs`` gives the pair vector in atom i's crystal frame, as the heads see it, and
``--all-cells-only`` skips the runs on 1/4 and 1/2 of the training cells. Train error =
representability; held-out error (12 cells) vs number of training cells = data need. Model card,
"What holds the Hamiltonian MAE". Run from the repository root:
    python pretrained/experiments/analysis/inter_mlp_probe.py [--no-cell] [--no-stacking] [--frame-inputs] [--all-cells-only]
(~15 min on one core)."""
import glob
import json
import sys

import numpy as np
from wander_gui.dft.dataset import structure_from_arrays, unpack_pairs, has_current_label
from wander_gui.core.layers import ensure_layers
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler


def load_cells(no_cell: bool = False, no_stacking: bool = False, frame_inputs: bool = False,
               d_min: float = 6.0, d_max: float = 10.0) -> list:
    """(name, sigma, X, Y) per labelled 1x1 cell of the 18 A rule: one row per orbital element of
    every inter-layer pair with d_min <= |r| < d_max (columns: see the module docstring)."""
    if frame_inputs:  # the pair vector in atom i's crystal frame (as the heads see it) instead of the global one
        from wander_gui.ml.graph import atoms_to_graph
        from wander_gui.ml.hamiltonian import crystal_frames, layer_normal
    cells = []
    for f in sorted(glob.glob("pretrained/dataset/chunks/*-1x1-*.npz")):
        ch = dict(np.load(f, allow_pickle=False))
        if "pair_values" not in ch or not has_current_label(ch): continue
        meta = json.loads(str(ch["meta"]))
        if meta["settings"]["k_density"] != 18.0: continue
        atoms = structure_from_arrays(ch); lay = ensure_layers(atoms)
        sym = np.array(atoms.get_chemical_symbols()); cnt = np.where(sym == "Mo", 5, 3)
        ij, shift, block = unpack_pairs(ch, cnt)
        pos = atoms.positions; cell = atoms.cell.array
        dmm = pos[(sym == "Mo") & (lay == 1), 2].mean() - pos[(sym == "Mo") & (lay == 0), 2].mean()
        a1, a2 = np.linalg.norm(cell[0]), np.linalg.norm(cell[1]); g = cell[0, :2] @ cell[1, :2] / a1 / a2
        st = 1.0 if "-H" in f else 0.0
        X, Y = [], []
        if frame_inputs:
            g = atoms_to_graph(atoms, 5.2)
            frames = crystal_frames(g.species, g.layer, g.edge_i, g.edge_j, g.vectors(), layer_normal(cell),
                                    sublayer=True).numpy()
        for (i, j), s, b in zip(ij, shift, block):
            if lay[i] == lay[j]: continue
            r = pos[j] + s @ cell - pos[i]; d = np.linalg.norm(r)
            if not d_min <= d < d_max: continue
            if frame_inputs:
                r = frames[i].T @ r
            for a in range(cnt[i]):
                for c in range(cnt[j]):
                    oh = np.zeros(16); oh[a] = 1; oh[8 + c] = 1  # orbital a of i (Mo 0-4 / S 5-7 shifted), c of j
                    if sym[i] == "S": oh[a] = 0; oh[5 + a] = 1
                    if sym[j] == "S": oh[8 + c] = 0; oh[13 + c] = 1
                    cell_x = [] if no_cell else [dmm, a1, a2, g]
                    X.append([*r, d, *cell_x, *([] if no_stacking else [st]), float(sym[i] == "Mo"), float(sym[j] == "Mo"), float(lay[i]), *oh])
                    Y.append(b[a, c])
        cells.append((f.split("/")[-1][:-4], meta["spec"]["sigma"], np.array(X), np.array(Y)))
    return cells


if __name__ == "__main__":
    cells = load_cells("--no-cell" in sys.argv, "--no-stacking" in sys.argv, "--frame-inputs" in sys.argv)
    print(len(cells), "cells")
    rng = np.random.default_rng(0); order = rng.permutation(len(cells))
    test = [cells[k] for k in order[:12]]; pool = [cells[k] for k in order[12:]]
    Xt = np.concatenate([c[2] for c in test]); Yt = np.concatenate([c[3] for c in test]); bt = np.abs(Yt) > 1e-3
    print("zero MAE test", 1000 * np.abs(Yt)[bt].mean())
    for n in ([len(pool)] if "--all-cells-only" in sys.argv else [len(pool) // 4, len(pool) // 2, len(pool)]):
        X = np.concatenate([c[2] for c in pool[:n]]); Y = np.concatenate([c[3] for c in pool[:n]]); b = np.abs(Y) > 1e-3
        sc = StandardScaler().fit(X)
        m = MLPRegressor(hidden_layer_sizes=(256, 256, 128), max_iter=150, early_stopping=False, random_state=0, learning_rate_init=1e-3, batch_size=512)
        m.fit(sc.transform(X), 1000 * Y)
        e_tr = np.abs(m.predict(sc.transform(X)) - 1000 * Y)[b].mean(); e_te = np.abs(m.predict(sc.transform(Xt)) - 1000 * Yt)[bt].mean()
        print(f"MLP train cells {n}: train {e_tr:.2f}  test {e_te:.2f} meV (zero train {1000*np.abs(Y)[b].mean():.2f})", flush=True)
