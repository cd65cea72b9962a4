"""LinEAS notebook: its data, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.lineas import (affine_plan, first_tokens, kept_units, local_ot_maps, mean_shift_plan, random_sparse_maps,
                                     sparsity_step, text_logprobs, transport_cost, transport_loss)

SLUG = "lineas"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(layers=[5, 12, 20], max_tokens=16, n_source=8, n_val=4, n_target=12, steps=3, eval_every=2, n_eval=12,
                    new_tokens=6, n_test=12, n_wiki_val=4, dim_strengths=[0.5, 1.0], n_controls=8, n_control=1, n_swaps=50)
FIGURES = ("loss_curve", "toxicity", "likelihood_change")
CLAIMS = [f"C{i}" for i in range(1, 9)]


def test_data_files(tokenizer):
    "The hate-speech statements, the Jigsaw sample (38 non-toxic comments) and the Wikipedia passages load and cut to tokens."
    statements = {r["Input"] for r in load("rw_hate_speech")}
    jigsaw, wiki = load("jigsaw_sample"), load("wikipedia_sentences")
    assert len(statements) >= 500 and (jigsaw[jigsaw.columns[2:]].sum(axis=1) == 0).sum() >= 30 and len(wiki) >= 60
    cut = first_tokens(tokenizer, list(wiki.text[:3]), 12)
    assert all(len(tokenizer(c, add_special_tokens=False)["input_ids"]) <= 13 for c in cut)


@pytest.mark.notebook
def test_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    gens = pd.read_csv(folder / "results" / "generations.csv", keep_default_na=False)
    counts = gens.groupby("arm").size()
    assert all(counts[a] == params["n_eval"] for a in ("base", "LinEAS", "DiM"))
    assert sum(a.startswith("random") for a in counts.index) == params["n_controls"] >= sl.controls.MIN_DRAWS
    assert gens.toxicity.between(0, 1).all() and results["n_generated"] == len(gens)
    scores = pd.read_csv(folder / "results" / "logprobs.csv")
    assert (scores.groupby(["arm", "kind"]).size().loc[["base", "LinEAS", "DiM", "Linear-AcT"]] == params["n_test"]).all()
    assert np.isfinite(scores.logprob).all() and (scores.logprob < 0).all()
    curve = pd.read_csv(folder / "results" / "loss_curve.csv")
    assert 1 <= (curve.split == "train").sum() <= params["steps"] and (curve.loss > 0).all() and (curve.split == "val").any()
    assert 0 < results["units_kept"] <= results["units_total"] == 576 * len(params["layers"])
    assert results["dim_strength"] in params["dim_strengths"] and results["export_error"] >= 0
    costs = pd.read_csv(folder / "results" / "transport_cost.csv")
    assert set(costs.arm) == {"LinEAS", "Linear-AcT", "base"} and (costs.transport_cost > 0).all()


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[[0, 1]].null.str.contains("random maps").all() and table.iloc[[2, 3]].null.str.contains("swapped").all()
    assert "identity" in table.iloc[4].metric and table.iloc[5].verdict == "not testable at this scale"
    assert list(table.iloc[6:].verdict) == ["not run", "not run"]
    assert table.iloc[0].metric.count("units kept") == 1


@pytest.mark.notebook
def test_lineas_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["units_total"] == 576 * 3 and other_run.results["n_eval"] == 12
    assert set(table.iloc[:4].verdict) <= set(sl.claims.STRENGTH)


def test_change_rule_rejects_noise():
    "C1: toxicity changes that are noise do not clear random maps scored on fewer prompts in >= 95% of draws."
    def rule(rng):
        before, after = rng.random(24), rng.random(24)
        controls = [(rng.random(3), rng.random(3)) for _ in range(8)]
        effect, null = sl.change_claim(before, after, controls, "random", seed=0, n_boot=200)
        return effect, null, -1
    assert sl.noise_passes(rule, 100) <= 0.05


def test_gap_rule_rejects_noise():
    "C2: a toxic-minus-neutral likelihood gap that is noise does not clear random maps scored on fewer texts in >= 95% of draws."
    gap = lambda a, b: float(np.mean(a) - np.mean(b))
    def rule(rng):
        effect = sl.bootstrap(gap, rng.normal(size=24), rng.normal(size=24), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([gap(rng.normal(size=3), rng.normal(size=3)) for _ in range(8)], "random"), -1
    assert sl.noise_passes(rule, 100) <= 0.05


def test_swap_rules_reject_noise():
    "C3, C4: two arms that act alike do not clear the swapped-arms null in >= 95% of draws (per-item means and the transport-cost gap)."
    def rule(rng):
        a, b = rng.normal(size=24), rng.normal(size=24)
        return sl.bootstrap(np.mean, a - b, n_boot=200, seed=0), sl.Null.from_draws(sl.swapped_means(a, b, 50, 0), "swapped"), -1
    assert sl.noise_passes(rule, 100) <= 0.05
    def cost_rule(rng):
        a, b, t = rng.normal(size=(16, 6)), rng.normal(size=(16, 6)), rng.normal(size=(12, 6))
        stat = lambda i, j: transport_cost(a[i.astype(int)], t[j.astype(int)]) - transport_cost(b[i.astype(int)], t[j.astype(int)])
        effect = sl.bootstrap(stat, np.arange(16), np.arange(12), n_boot=100, seed=0)
        null = sl.Null.from_draws([transport_cost(x, t) - transport_cost(y, t) for x, y in sl.swapped(a, b, 50, 0)], "swapped")
        return effect, null, -1
    assert sl.noise_passes(cost_rule, 100) <= 0.05


def test_transport_cost():
    assert np.isclose(transport_cost(np.zeros((4, 2)), np.full((4, 2), 2.0)), 2.0)
    assert np.isclose(transport_cost(np.arange(8.0).reshape(4, 2), np.arange(8.0).reshape(4, 2)[::-1]), 0.0)


def test_local_maps_match_moments():
    "Linear-AcT's per-unit map sends the source sample onto the target's mean; diff-in-means adds strength × the mean gap."
    g = torch.Generator().manual_seed(0)
    x, y = {"s": torch.randn(64, 5, generator=g) * 3 + 2}, {"s": torch.randn(64, 5, generator=g) - 1}
    moved = local_ot_maps(x, y)["s"](x["s"], None)
    assert torch.allclose(moved.mean(0), y["s"].mean(0), atol=0.05) and torch.allclose(moved.std(0), y["s"].std(0), rtol=0.15)
    add = mean_shift_plan(x, y, 2.0)["s"]
    assert torch.allclose(add.v * add.coeff, 2 * (y["s"].mean(0) - x["s"].mean(0)), atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gemma2"])  # the smoke model's family and Gemma-2-2B's
def test_method_on_bf16_tiny_model(arch, tokenizer):
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    sites = ["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"]
    d = sl.dims(net)["d_model"]
    texts, other = ["you are a fool and a liar", "shut up you idiot", "go away now"], ["thanks for the edit", "the page looks good", "see the talk page"]
    with torch.no_grad(): target = sl.pooled_activations(net, tokenizer, other, sites)
    plan = affine_plan(sites, d)
    loss = transport_loss(net, tokenizer, plan, target)(texts)
    loss.backward()
    assert torch.isfinite(loss) and all(m.shift.grad is not None and m.shift.grad.abs().sum() > 0 for m in plan.values())
    assert all(p.grad is None for p in net.parameters())
    plan = affine_plan(sites, d)
    record = sl.fit(plan, transport_loss(net, tokenizer, plan, target), texts, texts[:2], model=net, steps=4, lr=1e-3, batch_size=3,
                    eval_every=2, prox=sparsity_step(plan, group=1e-5, l1=1e-4))
    assert len(record.train) == 4 and np.isfinite(record.train).all() and record.train[-1] < record.train[0]
    kept = kept_units(plan)
    assert all(0 <= k <= d for k in kept.values())
    draws = random_sparse_maps(plan, 8, seed=0)
    assert all(kept_units(p) == kept for p in draws)
    lp = text_logprobs(net, tokenizer, ["you are", "you are"], [" a fool", " a fool"], [None, {s: m.export() for s, m in plan.items()}])
    assert lp.shape == (2,) and np.isfinite(lp).all()
