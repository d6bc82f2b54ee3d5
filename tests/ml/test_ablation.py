import json

import torch

from wander_gui.ml.ablation import VARIANTS, ablation_table, run_ablation, variant_dir
from wander_gui.ml.data import load_samples
from wander_gui.ml.forcefield import ForceField
from wander_gui.ml.train_h import HTrainConfig


def test_ablation_trains_each_variant_with_its_inputs(tmp_path):
    torch.manual_seed(0)
    ff = ForceField().double()
    cfg = HTrainConfig(epochs=2)
    cfg.model["r_max"] = 6.0
    res = run_ablation(load_samples("pretrained/dataset"), ff, cfg, tmp_path, validation_dir=None, progress=False)
    assert list(res) == list(VARIANTS)
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert set(saved) == set(VARIANTS)
    n_rbf = cfg.model["n_rbf"]
    widths = {}
    for name in VARIANTS:
        sd = torch.load(variant_dir(tmp_path, name) / "h_best.pt", weights_only=True)
        widths[name] = (sd["state_dict"]["intra.00s.0.weight"].shape[1], sd["state_dict"]["inter.00s.0.weight"].shape[1]
                        if "inter.00s.0.weight" in sd["state_dict"] else None)
    lat, desc = ff.latent_dim, ff.descriptor.dim
    assert widths["WANDER: intra RAER + r, inter r"][0] == 2 * lat + n_rbf + 3
    assert widths["intra: r only"][0] == n_rbf + 3
    assert widths["intra: descriptor + r"][0] == 2 * desc + n_rbf + 3
    assert widths["inter: RAER + r"][1] == 2 * lat + n_rbf + 3
    assert widths["sublayer frames, intra RAER + r"][0] == 2 * lat + n_rbf + 3
    assert widths["sublayer frames, intra r only"][0] == n_rbf + 3
    sublayer = {name: torch.load(variant_dir(tmp_path, name) / "h_best.pt", weights_only=True)["config"]
                .get("sublayer_frames", False) for name in VARIANTS}
    assert {name for name, on in sublayer.items() if on} == {"sublayer frames, intra RAER + r",
                                                             "sublayer frames, intra r only"}
    table = ablation_table(res)
    assert all(name in table for name in VARIANTS)


def test_select_k_density_keeps_one_k_mesh_rule_and_names_the_others():
    import pytest

    from wander_gui.dft.dataset import chunk_k_density
    from wander_gui.errors import DataError
    from wander_gui.ml.data import select_k_density
    samples = load_samples("pretrained/dataset")
    every, levels = select_k_density(samples, None)
    assert len(every) == len(samples) and levels
    picked = []
    for k in levels:
        chosen, _ = select_k_density(samples, k)
        assert chosen and all(chunk_k_density(s.chunk["meta"]) == k for s in chosen)
        picked += [s.name for s in chosen]
    assert sorted(picked) == sorted(s.name for s in samples)
    with pytest.raises(DataError, match="k_density=99"):
        select_k_density(samples, 99.0)


def test_ablation_reports_twisted_band_errors_per_cell(tmp_path):
    from wander_gui.ml.ablation import twisted_results
    torch.manual_seed(0)
    ff = ForceField().double()
    cfg = HTrainConfig(epochs=1)
    cfg.model["r_max"] = 6.0
    cells = twisted_results(["pretrained/validation"])
    assert {"tw21.79-R", "tw21.79-H"} <= set(cells)
    res = run_ablation(load_samples("pretrained/dataset")[:12], ff, cfg, tmp_path, validation_dir=["pretrained/validation"],
                       variants={"intra: r only": VARIANTS["intra: r only"]}, progress=False)
    bands = res["intra: r only"]["twisted_bands"]
    assert set(bands) == set(cells)
    # one epoch from random weights: far from DFT, and the table shows each cell's number
    assert all(b["mae_meV"] > 1.0 for b in bands.values())
    table = ablation_table(res)
    for name, b in bands.items():
        assert f"bands {name}" in table and f"{b['mae_meV']:.1f}" in table
