"""YaPO notebook: the BiPO behaviour files, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

import steerlab as sl
from steerlab.data import load
from steerlab.methods.yapo import LatentVector, behavior_pairs, bipo_step_loss, heldout_bipo_loss, pair_logprobs

SLUG = "yapo"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(sae="default-l5", behavior="wealth-seeking", n_train=8, n_test=12, steps=2, train_batch=2, n_controls=8, n_control=1, n_swaps=50)
FIGURES = ("loss_curves", "behaviour_shift")
CLAIMS = [f"C{i}" for i in range(1, 10)]


def test_behavior_files(tokenizer):
    "Each BiPO file keeps question, matching and not-matching answers; the length filter keeps rows within the limits."
    for key in ("power_seeking", "wealth_seeking", "hallucination"):
        pairs = behavior_pairs(load(f"bipo_{key}_train"), tokenizer, 48, 24)
        assert len(pairs) >= 32 and pairs.prompt.str.contains("assistant").all() and (pairs.matching != pairs.not_matching).all()


@pytest.mark.notebook
def test_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    scores = pd.read_csv(folder / "results" / "scores.csv")
    counts = scores.groupby(["condition", "multiplier"]).size()
    assert counts[("base", 0.0)] == params["n_test"] and all(counts[(a, m)] == params["n_test"] for a in ("BiPO", "YaPO", "DiM") for m in (1.0, -1.0))
    for kind in ("random", "random latent"):
        assert sum(c == f"{kind} {k}" for c in scores.condition.unique() for k in range(params["n_controls"])) == params["n_controls"] >= sl.controls.MIN_DRAWS
    assert results["n_scored_rows"] == len(scores) and np.isfinite(scores.logodds).all()
    assert np.allclose(scores.logodds, scores.matching - scores.not_matching, atol=1e-3)
    curves = pd.read_csv(folder / "results" / "loss_curves.csv")
    assert (curves.groupby("method").size() == params["steps"]).all() and (curves.loss > 0).all()
    assert results["bipo_norm"] > 0 and results["identity_error"] >= 0


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[[0, 1]].null.str.contains("random").all() and table.iloc[[2, 3, 4]].null.str.contains("swapped").all()
    assert "identity" in table.iloc[5].metric and table.iloc[6].verdict == "not run" and table.iloc[7].verdict == "not testable at this scale"


@pytest.mark.notebook
def test_yapo_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer"] == 5 and other_run.results["n_test_items"] == 12
    assert set(table.iloc[:5].verdict) <= set(sl.claims.STRENGTH)


def test_shift_rule_rejects_noise():
    "C1/C2: shifts that are noise do not clear random controls scored on fewer items in >= 95% of draws."
    def rule(rng):
        return sl.bootstrap(np.mean, rng.normal(size=12), n_boot=200, seed=0), sl.Null.from_draws([float(rng.normal(size=2).mean()) for _ in range(8)], "random")
    assert sl.noise_passes(rule, 100) <= 0.05


def test_swap_rule_rejects_noise():
    "C3-C5: two arms that act alike do not clear the swapped-arms null in >= 95% of draws."
    def rule(rng):
        a, b = rng.normal(size=12), rng.normal(size=12)
        return sl.bootstrap(np.mean, a - b, n_boot=200, seed=0), sl.Null.from_draws(sl.swapped_means(a, b, 50, 0), "swapped")
    assert sl.noise_passes(rule, 100) <= 0.05


def test_heldout_loss():
    assert np.isclose(heldout_bipo_loss(np.zeros(1), np.zeros(1), np.zeros(1))[0], np.log(2))
    assert heldout_bipo_loss(np.zeros(1), np.full(1, 9.0), np.full(1, -9.0))[0] < heldout_bipo_loss(np.zeros(1), np.full(1, -9.0), np.full(1, 9.0))[0]


@pytest.mark.parametrize("arch", ["llama", "gemma2"])  # the smoke model's family and Gemma-2-2B-it's
def test_method_on_bf16_tiny_model(arch, tokenizer):
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    site = "blocks.1.hook_resid_post"
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=sl.dims(net)["d_model"], d_sae=128, k=8, metadata=SAEMetadata(hook_name=site)))
    pairs = pd.DataFrame(dict(prompt=["Would you take power?", "Do you want money?"], matching=["Yes.", "Yes, please."], not_matching=["No.", "No thanks."]))
    reference = pair_logprobs(net, tokenizer, pairs)
    assert reference.shape == (2, 2) and np.isfinite(reference).all()
    zero = LatentVector(sae)
    with torch.no_grad():
        np.testing.assert_allclose(pair_logprobs(net, tokenizer, pairs, [{site: zero}] * 2), reference, atol=0.1)  # the error term kept
    vector = LatentVector(sae)
    loss = bipo_step_loss(net, tokenizer, site, vector, pairs, reference)([0, 1])
    loss.backward()
    assert vector.latent.grad is not None and all(p.grad is None for p in net.parameters()) and all(p.grad is None for p in sae.parameters())
    record = sl.fit(vector, bipo_step_loss(net, tokenizer, site, vector, pairs, reference), [0, 1], model=net, steps=2, lr=0.1, batch_size=2)
    assert len(record.train) == 2 and vector.latent.detach().norm() > 0
