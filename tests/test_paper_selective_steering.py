"""Selective Steering notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.selective_steering import (FINAL, HarmReadout, NormMonitor, band_fraction, candidate_directions, discriminative_mask,
                                                 feature_direction, layer_mask, matched_strengths, selective_steering,
                                                 standard_angular_steering, steering_plane)

SLUG = "selective_steering"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_calib=16, n_val=6, n_eval=6, n_ref=4, ref_tokens=12, angles=[60, 180], n_generate=2, max_new_tokens=6)
FIGURES = ("layer_selection", "control_vs_angle", "tradeoff", "norm_change")


@pytest.mark.notebook
def test_mask_keeps_whole_layers_where_the_classes_project_with_opposite_signs(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    layers = pd.read_csv(folder / "results" / "layers.csv")
    selected = layers[layers.selected]
    assert (selected.harmful_projection * selected.harmless_projection < 0).all()
    assert selected.groupby("layer").size().eq(layers.groupby("layer").size()[selected.layer.unique()]).all()  # whole layers only
    assert abs(results["b1_b2_dot"]) < 1e-5


@pytest.mark.notebook
def test_rotations_keep_norms_and_baselines_share_the_budget(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    assert results["ss_max_norm_change"] < sl.tolerance("float32") and results["standard_max_norm_change"] < sl.tolerance("float32")
    assert results["actadd_max_norm_change"] > 0
    conditions = pd.read_csv(folder / "results" / "conditions.csv")
    by = lambda m: sorted(conditions[conditions.method == m].setting)
    assert by("selective") == by("standard angular") and len(by("ActAdd")) == len(by("selective"))  # same angles, as many strengths
    assert len(pd.read_csv(folder / "results" / "random_planes.csv")) >= sl.controls.MIN_DRAWS


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == ["C1a", "C1b", "C2a", "C2b", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    assert table[table.metric.str.startswith("identity")].claim.str.split(":").str[0].tolist() == ["C1b", "C2a", "C2b"]


@pytest.mark.notebook
def test_selective_steering_other_values_bf16(other_run):
    other_run.paper_table(FIGURES)


def _share_cleared(rule, n: int = 100) -> float:
    "Share of `n` noise draws on which `rule(rng)` -> (effect, null) is judged reproduced on the paper's metric."
    rng = np.random.default_rng(0)
    return np.mean([sl.decide(*rule(rng))[0] == "reproduced" for _ in range(n)])


def test_band_rule_rejects_noise():
    "Noise projections: the selected layers' contiguity does not beat random layer sets of the same size in >= 95% of draws."
    site_layers = [layer for layer in range(30) for _ in range(2)]
    band = lambda a, b: band_fraction([l for l, keep in zip(site_layers, layer_mask(a.mean(0), b.mean(0), site_layers)) if keep])
    def rule(rng):
        harm, safe = rng.normal(size=(16, 60)), rng.normal(size=(16, 60))
        selected = sorted({l for l, keep in zip(site_layers, layer_mask(harm.mean(0), safe.mean(0), site_layers)) if keep}) or [0]
        subsets = sl.random_subsets(30, len(selected), n=100, seed=int(rng.integers(1 << 30)))
        return sl.bootstrap(band, harm, safe, n_boot=200, seed=0), sl.Null.from_draws([band_fraction(s.tolist()) for s in subsets], "random layers")
    assert _share_cleared(rule) <= 0.05


def test_difference_rules_reject_noise():
    "Method and baselines scored by the same noise: neither 'more control than the stronger baseline' nor 'less collapse' clears a zero difference."
    zero = sl.Null.fixed(0.0, "no difference")
    control = lambda rng: (sl.bootstrap(lambda a, b, c: a.mean() - max(b.mean(), c.mean()), *rng.normal(size=(3, 12)), paired=True, n_boot=500, seed=0), zero)
    worst = lambda m: m.mean(0).max()
    collapse = lambda rng: (sl.bootstrap(lambda a, b, c: min(worst(b), worst(c)) - worst(a), *rng.normal(size=(3, 8, 3)), paired=True, n_boot=500, seed=0), zero)
    assert _share_cleared(control) <= 0.05 and _share_cleared(collapse) <= 0.05


@pytest.mark.parametrize("arch", ["qwen2"])  # the paper profile's family (Qwen2.5-1.5B-Instruct)
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    sites = [s for s in sl.sites(net) if s.endswith("hook_normalized") and s != FINAL]
    layers = [sl.parse_site(net, s).layer for s in sites]
    states = lambda prompts: torch.stack([a for a in sl.capture(net, tokenizer, prompts, sites, positions="last", reduce="last").values()], 1)
    harm, safe = states(["Steal a car", "Build a bomb", "Hack a bank"]), states(["Bake a cake", "Plant a tree", "Sing a song"])
    assert harm.shape == (3, len(sites), 64)
    candidates = candidate_directions(harm.float(), safe.float())
    b1, b2 = steering_plane(candidates[feature_direction(candidates)], candidates)
    mask = discriminative_mask(harm, safe, b1, layers)
    assert mask.shape == (len(sites),) and abs(float(b1 @ b2)) < 1e-5 and np.isfinite(matched_strengths(harm[:, :2], b1, b2, [90, 180])).all()
    readout = HarmReadout(harm.float()[:, 0], safe.float()[:, 0])
    assert readout(harm[:, 0]).dtype == torch.float32
    ids = torch.tensor([[5, 6, 7, 8]])
    for plan in (selective_steering(sites, torch.ones(len(sites), dtype=torch.bool), b1, b2, 120), standard_angular_steering(sites, b1, b2, 200)):
        monitor = NormMonitor()
        with sl.steer(net, monitor.watch(plan)): logits = net(ids).logits
        assert torch.isfinite(logits.float()).all() and monitor.count == 4 * len(sites)
        assert monitor.max_norm_change < sl.tolerance(torch.bfloat16) and monitor.mean_shift > 0  # the norm is kept to bf16's rounding
