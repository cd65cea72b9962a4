"RAPTOR notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.raptor import (SIMPLE, direction_logits, fit_directions, probe_logits, resample_cosines, steered_states,
                                     target_coefficients, tracking_slopes)

SLUG = "raptor"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(concept="morality", layer=10, read_layer=14, n_train=24, n_test=16, l2_grid=[1e-3, 1.0, 100.0],
                    n_resamples=3, targets=[0.2, 0.8], n_steer=4)
FIGURES = ("lambda_sweep", "steering")
IDS = ["C1a", "C1b", "C2", "C3", "C4", "C5a", "C5b", "C6a", "C6b", "C7", "C8"]


@pytest.mark.notebook
def test_probes_sweep_and_controls(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    methods = pd.read_csv(folder / "results" / "methods.csv")
    assert set(methods.method) == {"raptor", *SIMPLE} and methods.test_accuracy.between(0, 1).all()
    assert methods.stability.between(-1, 1 + 1e-9).all()
    lambdas = pd.read_csv(folder / "results" / "lambdas.csv")
    true = lambdas[lambdas.labels == "true"]
    assert len(true) == 7 and true.test_accuracy.between(0, 1).all()                  # one row per λ of the grid
    assert lambdas[lambdas.labels == "shuffled"].draw.nunique() == results["n_controls"] >= 8
    assert results["strongest_simple"] in SIMPLE and results["lam_star"] in true.lam.tolist()
    items = pd.read_csv(folder / "results" / "items.csv")
    assert len(items) == 80 and items.label.sum() == 40


@pytest.mark.notebook
def test_steering_rows(smoke_run):
    steering = pd.read_csv(smoke_run.folder / "results" / "steering.csv")
    assert steering.groupby(["condition", "draw", "target"]).size().eq(8).all()        # every condition steered every text
    assert steering[steering.condition == "random"].draw.nunique() == smoke_run.results["n_controls"]
    raptor = steering[steering.condition == "raptor"].reset_index(drop=True)
    random = steering[(steering.condition == "random") & (steering.draw == 0)].reset_index(drop=True)
    assert np.allclose(raptor.edit_norm, random.edit_norm, rtol=1e-4)                   # controls have the edit's size
    assert smoke_run.results["edit_norm_ratio_min"] >= 1 - 1e-4                          # the probe's own direction is the smallest edit


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == IDS
    assert list(table.verdict[-2:]) == [sl.claims.VERDICTS[4]] * 2                       # C7, C8 are never run here


@pytest.mark.notebook
def test_raptor_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == IDS


def test_paired_difference_rule_rejects_noise():
    "C1b/C4/C6b: two classifiers right at random on the same items: their paired difference does not clear 0 in >= 95% of draws."
    diff = lambda a, b: float(np.mean(a - b))
    def rule(rng):
        a, b = (rng.random(96) < 0.7).astype(float), (rng.random(96) < 0.7).astype(float)
        return sl.bootstrap(diff, a, b, paired=True, n_boot=300, seed=int(rng.integers(1 << 30))), sl.Null.fixed(0.0, "no difference")
    assert sl.noise_passes(rule) <= 5


def test_stability_rule_rejects_noise():
    "C2/C3: refit cosines of the probe and of shuffled-label probes from one distribution: the rule does not find a gain in >= 95% of draws."
    cosines = lambda rng: np.clip(rng.normal(0.9, 0.03, 8), -1, 1)  # one fit's 8 refit cosines
    diff = lambda a, b: float(np.mean(a - b))
    def rule(rng):
        effect = sl.bootstrap(diff, cosines(rng), cosines(rng), paired=True, n_boot=300, seed=int(rng.integers(1 << 30)))
        return effect, sl.Null.from_draws([diff(cosines(rng), cosines(rng)) for _ in range(8)], "noise")
    assert sl.noise_passes(rule) <= 5


def test_resample_cosines_of_a_probe():
    "Refits of a probe on pure noise move more than refits on a clear contrast."
    g = torch.Generator().manual_seed(0)
    shift = torch.zeros(8); shift[0] = 3.0
    fit = lambda p, n: sl.probe_direction(p, n, l2_grid=[1.0])
    clear = resample_cosines(fit, torch.randn(16, 8, generator=g) + shift, torch.randn(16, 8, generator=g) - shift, n=4)
    noise = resample_cosines(fit, torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g), n=4)
    assert clear.shape == noise.shape == (4,) and clear.mean() > noise.mean()


def test_tracking_rule_rejects_noise():
    "C6a: achieved logits that ignore the target: the mean slope does not clear random-direction slopes in >= 95% of draws."
    targets = np.log(np.array([0.1, 0.5, 0.9]) / np.array([0.9, 0.5, 0.1]))
    slopes = lambda rng: tracking_slopes(targets, rng.normal(size=(3, 12)))
    def rule(rng):
        return sl.bootstrap(lambda s: float(np.mean(s)), slopes(rng), n_boot=300), sl.Null.from_draws([slopes(rng).mean() for _ in range(8)], "noise")
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2", "mistral"])  # the smoke model's family and the paper profile's
def test_method_on_bf16_tiny_model(arch):
    tok = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tok)).to(torch.bfloat16)
    texts = ["How do I bake bread?", "Tell me a joke.", "Steal a car now.", "Hack a bank."] * 3
    site, later = "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"
    acts = sl.capture(net, tok, texts, [site, later], system="")[site].float()
    assert acts.dtype == torch.float32 and acts.shape == (12, sl.dims(net)["d_model"])
    pos, neg = acts[[2, 3, 6, 7, 10, 11]], acts[[0, 1, 4, 5, 8, 9]]
    directions = fit_directions(pos, neg, [1e-2, 1.0])
    assert set(direction_logits(directions, pos, neg, acts)) == {"raptor", *SIMPLE}
    probe = directions["raptor"]
    alpha = target_coefficients(probe, acts[:4], [0.2, 0.8])  # (2, 4)
    edits = torch.cat([alpha[k, :, None].float() * probe.unit().tensor for k in range(2)])  # (8, d)
    states = steered_states(net, tok, texts[:4] * 2, site, edits, [site, later], batch_size=3)
    reached = torch.sigmoid(probe_logits(probe, states[site])).view(2, 4)
    assert torch.allclose(reached, torch.tensor([[0.2] * 4, [0.8] * 4], dtype=torch.float64), atol=0.05)  # bf16 activations round the edit
    assert torch.isfinite(states[later]).all()
