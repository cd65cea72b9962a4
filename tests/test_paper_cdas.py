"""CDAS notebook: the refusal sets, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.cdas import (chat_prompts, first_tokens, interchange_jsd, last_states, pair_loss, reference_nll, refusal_openers,
                                   refusal_score, steering_factors)

SLUG = "cdas"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(layer=10, n_train=8, n_val=4, n_test=12, steps=2, train_batch=2, eval_every=1, patience=1, n_controls=8, n_control=2,
                    reference_tokens=8, n_swaps=50)
FIGURES = ("loss_curve", "refusal_change", "nll_cost")
CLAIMS = [f"C{i}" for i in range(1, 10)]


def test_refusal_set(tokenizer):
    "The AxBench-format refusal set pairs each harmless instruction with a refusal and a compliance opener whose first tokens differ."
    openers = refusal_openers(load("cdas_refusal_train"))
    assert len(openers) == 128 and (openers.refusal != openers.compliance).all()
    assert not set(first_tokens(tokenizer, openers.refusal)) & set(first_tokens(tokenizer, openers.compliance))
    assert len(load("cdas_jailbreakbench")) == 100 and all(r["output"] for r in load("cdas_alpaca_eval")[:5])


@pytest.mark.notebook
def test_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    scores = pd.read_csv(folder / "results" / "scores.csv")
    counts = scores.groupby(["condition", "kind"]).size()
    assert all(counts[(c, k)] == params["n_test"] for c in ("base", "CDAS", "DiM") for k in ("harmless", "harmful"))
    randoms = [c for c in scores.condition.unique() if c.startswith("random ")]
    assert len(randoms) == params["n_controls"] >= sl.controls.MIN_DRAWS and all(counts[(c, "harmful")] == params["n_control"] for c in randoms)
    assert results["n_scored_rows"] == len(scores) and np.isfinite(scores.refusal_score).all()
    costs = pd.read_csv(folder / "results" / "nll_cost.csv")
    assert len(costs) == 3 * params["n_test"] and (costs.nll > 0).all()
    jsd = pd.read_csv(folder / "results" / "interchange_jsd.csv")
    assert (jsd.jsd >= 0).all() and (jsd.jsd <= np.log(2) + 1e-4).all() and jsd.subspace.str.startswith("random").sum() == 2 * params["n_controls"] * params["n_control"]
    curve = pd.read_csv(folder / "results" / "loss_curve.csv")
    assert 1 <= (curve.split == "train").sum() <= params["steps"] and (curve.split == "val").sum() >= 1 and (curve.loss >= 0).all()
    assert results["s_plus"] != results["s_minus"] and results["identity_error"] >= 0


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[[0, 1, 4]].null.str.contains("random").all() and table.iloc[[2, 3]].null.str.contains("swapped").all()
    assert "identity" in table.iloc[5].metric and list(table.iloc[6:].verdict) == ["not run", "not testable at this scale", "not run"]


@pytest.mark.notebook
def test_cdas_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer"] == 10 and other_run.results["n_test_items"] == 12
    assert set(table.iloc[:5].verdict) <= set(sl.claims.STRENGTH)


def test_change_rule_rejects_noise():
    "C1/C2: per-item changes that are noise do not clear random controls scored on fewer items in >= 95% of draws."
    def rule(rng):
        return sl.change_claim(rng.normal(size=16), rng.normal(size=16), [(rng.normal(size=4), rng.normal(size=4)) for _ in range(8)], "random")
    assert sl.noise_passes(rule, 100) <= 0.05


def test_swap_rule_rejects_noise():
    "C3/C4: two arms that act alike do not clear the swapped-arms null in >= 95% of draws."
    def rule(rng):
        a, b = rng.normal(size=16), rng.normal(size=16)
        return sl.bootstrap(np.mean, a - b, n_boot=200, seed=0), sl.Null.from_draws(sl.swapped_means(a, b, 50, 0), "swapped")
    assert sl.noise_passes(rule, 100) <= 0.05


def test_interchange_rule_rejects_noise():
    "C5: a JSD reduction that is noise does not clear the reductions of random subspaces on fewer pairs in >= 95% of draws."
    def rule(rng):
        effect = sl.bootstrap(np.mean, rng.normal(size=32), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([float(rng.normal(size=8).mean()) for _ in range(8)], "random")
    assert sl.noise_passes(rule, 100) <= 0.05


def test_steering_factors():
    directions = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    s_plus, s_minus = steering_factors(directions, torch.tensor([[1.0, 1.0], [3.0, 3.0]]), torch.tensor([[-1.0, 0.5]]))
    assert torch.allclose(s_plus, torch.tensor([2.0, 2.0])) and torch.allclose(s_minus, torch.tensor([-1.0, 0.5]))


@pytest.mark.parametrize("arch", ["llama", "gemma2"])  # the smoke model's and Llama-3.1-8B-Instruct's family, and Gemma-2-2B-it's (AxBench)
def test_method_on_bf16_tiny_model(arch, tokenizer):
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    site, d = "blocks.1.hook_resid_post", sl.dims(net)["d_model"]
    pairs = pd.DataFrame(dict(harmless=chat_prompts(tokenizer, ["Name a fruit.", "Write a haiku."]), harmful=chat_prompts(tokenizer, ["Build a bomb.", "Steal a car."]),
                              refusal=["I cannot", "As an AI"], compliance=["Sure", "Here is"]))
    subspace = sl.Rank1Clamp(d)
    loss = pair_loss(net, tokenizer, site, subspace, pairs)([0, 1])
    loss.backward()
    assert torch.isfinite(loss) and subspace.direction.grad is not None and all(p.grad is None for p in net.parameters())
    record = sl.fit(subspace, pair_loss(net, tokenizer, site, subspace, pairs), [0, 1], model=net, steps=2, lr=0.04, batch_size=2)
    assert len(record.train) == 2 and np.isfinite(record.train).all()
    u = subspace.export(site=site).tensor
    states = last_states(net, tokenizer, pairs.harmful, site)
    assert states.shape == (2, d) and states.dtype == torch.float32
    (s_plus,), (s_minus,) = steering_factors(u[None], states, last_states(net, tokenizer, pairs.harmless, site))
    plan = {site: sl.Cap(u, lo=float(s_plus), hi=float(s_plus))}
    ids = (first_tokens(tokenizer, pairs.refusal), first_tokens(tokenizer, pairs.compliance))
    scores = refusal_score(net, tokenizer, pairs.harmless, *ids, plans=[None, plan])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    nll = reference_nll(net, tokenizer, pd.DataFrame(dict(prompt=pairs.harmless, reference=["Apple.", "Soft rain falls."])), 4, plans=[plan, None])
    assert (nll > 0).all()
    jsd = interchange_jsd(net, tokenizer, site, [None, u, -u], list(pairs.harmless), list(pairs.harmful), list(pairs.refusal))
    assert jsd.shape == (3, 2) and (jsd >= 0).all()
    assert np.allclose(jsd[1], jsd[2], atol=1e-3)  # the subspace of u and of −u is the same
