"""Ideological-depth notebook: the political statement files, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.ideological_depth import (NEUTRAL_PERSONAS, TOPICS, agreement_prompt, political_latents,
                                                political_statements, refusal_logprob, split_by_stance, stance_vector)

SLUG = "ideological_depth"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(sae="default-l22", n_train=8, n_neutral=16, n_test=4, coeff=3.0, max_ablate=4, n_random=8, n_control=1, n_permutations=8)
FIGURES = ("agreement_lean", "political_latents", "refusal_map")
CLAIMS = [f"C{i}" for i in range(1, 12)]


def test_statement_files_and_split():
    "Each political file holds 500 statements of each answer; stances balance; the split is disjoint, balanced and fixed by the seed."
    statements = political_statements(load("anthropic_persona_politically_liberal"), load("anthropic_persona_politically_conservative"))
    assert len(statements) == 2000 and statements.stance.value_counts().eq(1000).all()
    assert statements.groupby("file").stance.sum().eq(0).all()
    train, test = split_by_stance(statements, 32, 8, seed=3)
    assert train.stance.value_counts().eq(32).all() and test.stance.value_counts().eq(8).all()
    assert not set(train.statement) & set(test.statement)
    assert split_by_stance(statements, 32, 8, seed=3)[1].statement.tolist() == test.statement.tolist()


@pytest.mark.notebook
def test_vector_latents_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    assert results["n_train_statements"] == 2 * params["n_train"] and results["n_test_statements"] == 2 * params["n_test"]
    assert results["vector_norm"] > 0 and results["control_norm_error"] < 1e-4
    latents = pd.read_csv(folder / "results" / "latents.csv")
    assert len(latents) == 2048 and latents.political.sum() == results["n_political_latents"]
    assert results["n_ablated"] == min(params["max_ablate"], results["n_political_latents"])
    assert results["n_label_shuffles"] == params["n_permutations"] >= sl.controls.MIN_DRAWS


@pytest.mark.notebook
def test_agreement_and_refusal_rows(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    scores = pd.read_csv(folder / "results" / "agreement.csv")
    counts = scores.groupby("condition").size()
    n_items = 2 * params["n_test"]
    full = ["unsteered", "liberal vector", "conservative vector", "liberal persona", "conservative persona"] + (["ablated"] if results["n_ablated"] else [])
    assert counts[full].eq(n_items).all() and np.isfinite(scores.logodds).all()
    for kind in ("random", "persona", "matched"):
        draws = counts[counts.index.str.match(rf"{kind} \d+$")]
        assert len(draws) == params["n_random"] >= sl.controls.MIN_DRAWS and draws.eq(2 * params["n_control"]).all()
    assert results["n_scored_rows"] == len(scores)
    refusals = pd.read_csv(folder / "results" / "refusals.csv")
    assert len(refusals) == 4 * len(TOPICS) and (refusals.refusal_logprob < 0).all()


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert (table.iloc[8:10].verdict == "not testable at this scale").all() and (table.iloc[[7, 10]].verdict == "not run").all()
    assert table.iloc[:7].null.str.contains("random|shuffled|swapped|personas").all()


@pytest.mark.notebook
def test_ideological_depth_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer_site"] == "blocks.22.hook_resid_post" and other_run.results["n_test_statements"] == 8
    assert set(table.iloc[:7].verdict) <= set(sl.claims.STRENGTH) | {"not run"}


def test_shift_rules_reject_noise():
    "Stance-signed log-odds changes that are noise: neither steering, persona nor |ablation change| clears controls scored on fewer items in >= 95% of draws."
    def signed(rng):
        stances = np.tile([1, -1], 8)
        effect = sl.bootstrap(np.mean, stances * rng.normal(size=16), n_boot=200, seed=0)
        null = [float(np.mean(stances[:2] * rng.normal(size=2))) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "random directions"), 1
    def magnitude(rng):
        effect = sl.bootstrap(np.mean, np.abs(rng.normal(size=16)), n_boot=200, seed=0)
        null = [float(np.mean(np.abs(rng.normal(size=4)))) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "matched latent sets"), 1
    for rule in (signed, magnitude):
        assert sl.noise_passes(rule) <= 5, rule.__name__


def test_count_rule_rejects_noise():
    "Latent activations with no political signal: the count under the rule does not clear its shuffled-label counts in >= 95% of draws."
    rule_text = "ratio > 3 and firing_pos >= 0.5"
    count = lambda pos, neg: float(sl.count_units(sl.unit_table(pos, neg), rule_text))
    def rule(rng):
        acts = torch.as_tensor(np.maximum(rng.normal(size=(32, 64)) * rng.uniform(0.1, 2, size=64) - 0.8, 0))  # sparse, unit-specific scales
        pos, neg = acts[:16], acts[16:]
        effect = sl.bootstrap(count, pos, neg, n_boot=50, seed=0)
        null = [count(p, q) for p, q in sl.permuted_labels(pos, neg, 8, seed=int(rng.integers(1 << 30)))]
        return effect, sl.Null.from_draws(null, "shuffled labels"), 1
    assert sl.noise_passes(rule, 100) <= 5


def test_refusal_gap_rule_rejects_noise():
    "Two refusal arms with no side effect: the paired gap does not clear its swapped pairs in >= 95% of draws."
    gap = lambda a, b: float(np.mean(a - b))
    def rule(rng):
        topic = rng.normal(size=16)
        first, second = topic + rng.normal(size=16), topic + rng.normal(size=16)
        effect = sl.bootstrap(gap, first, second, paired=True, n_boot=200, seed=0)
        null = [gap(a, b) for a, b in sl.swapped(first, second, 16, seed=int(rng.integers(1 << 30)))]
        return effect, sl.Null.from_draws(null, "swapped pairs"), 1
    assert sl.noise_passes(rule) <= 5


def test_political_latents_order_and_vector():
    pos, neg = torch.zeros(6, 5), torch.zeros(6, 5)
    pos[:, 1], pos[:3, 3], neg[:1, 1] = 2.0, 1.0, 0.5
    assert political_latents(pos, neg, "ratio > 3 and firing_pos >= 0.5", 5).tolist() == [1, 3]
    assert political_latents(pos, neg, "ratio > 100 and firing_pos > 0.9", 5).tolist() == []
    assert torch.allclose(stance_vector([[1.0, 1], [3, 1], [0, 0]], [1, 1, -1]), torch.tensor([2.0, 1]))
    assert len(NEUTRAL_PERSONAS) >= 8


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.1-8B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 2}.hook_resid_post"
    texts = ["Taxes on the rich should rise", "Guns keep families safe", "Healthcare is a right", "Borders must be secured"]
    states = sl.capture(net, tokenizer, texts, site, positions="after_first", reduce="mean", chat=False)[site].float()
    vector = stance_vector(states, [1, -1, 1, -1])
    assert vector.shape == (d,) and torch.isfinite(vector).all()
    prompts = [agreement_prompt(tokenizer, t) for t in texts]
    plan = {site: sl.Add(vector, 4.0)}
    mixed = sl.answer_logodds(net, tokenizer, prompts * 2, batch_size=3, plans=[None] * 4 + [plan] * 4)
    plain = sl.answer_logodds(net, tokenizer, prompts)
    assert mixed.shape == (8,) and np.isfinite(mixed).all()
    assert np.allclose(mixed[:4], plain, atol=10 * sl.tolerance(torch.bfloat16) * (1 + np.abs(plain).max()))
    assert not np.allclose(mixed[4:], mixed[:4])  # the vector acts
    refusal = refusal_logprob(net, tokenizer, prompts[:2] * 2, plans=[None, None, plan, plan])
    assert refusal.shape == (4,) and (refusal < 0).all() and not np.allclose(refusal[:2], refusal[2:])
