"""RepE trade-offs notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.repe_tradeoffs import (alignment_logits, correct_probs, corollary_form, heldout_gain, injection_plan,
                                             linear_share, opening_ids, tanh_form)

SLUG = "repe_tradeoffs"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(layers=[5, 6], read_at="answer", r_max=0.2, n_r=5, n_pairs=8, n_align=6, n_qa=6, n_options=2, n_generate=0)
FIGURES = ("alignment_helpfulness", "tradeoff")


@pytest.mark.notebook
def test_sweep_and_controls(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    sweep = pd.read_csv(folder / "results" / "sweep.csv")
    assert np.allclose(sweep.r_e.to_numpy(), -sweep.r_e.to_numpy()[::-1]) and (sweep.r_e == 0).sum() == 1  # a symmetric grid holding 0
    baselines = pd.read_csv(folder / "results" / "baselines.csv")
    none = baselines[baselines.method == "none"].iloc[0]
    assert none.align_score == sweep[sweep.r_e == 0].iloc[0].align_score                 # the zero point is the unsteered model
    draws = pd.read_csv(folder / "results" / "random_direction_statistics.csv")
    assert len(draws) == results["n_random_directions"] >= sl.controls.MIN_DRAWS and np.isfinite(draws.drop(columns="draw").to_numpy()).all()
    assert (baselines.method == "random direction").sum() == 2 * len(draws)               # each draw at −r_e,max and +r_e,max


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == ["C1", "C2", "C3", "C4a", "C4b", "C5a", "C5b", "C6a", "C6b"]
    assert table.null.str.contains("random directions|no held-out gain").all()


@pytest.mark.notebook
def test_repe_tradeoffs_other_values_bf16(other_run):
    other_run.paper_table(FIGURES)


@pytest.mark.parametrize("form", [tanh_form, corollary_form(1 / 3, 2 / 3)], ids=["tanh", "corollary"])
def test_heldout_rule_rejects_noise(form):
    "A form fitted to pure noise does not beat a line on held-out halves (null: no gain) in >= 95% of draws."
    r = np.linspace(-1, 1, 7)
    def rule(rng):
        items = rng.normal(0.4, 0.1, size=(12, 7))
        effect = sl.bootstrap(lambda a, b: heldout_gain(r, a, b, form), items[0::2], items[1::2], n_boot=30, seed=int(rng.integers(1 << 30)))
        return effect, sl.Null.fixed(0.0, "no held-out gain"), 1
    assert sl.noise_passes(rule) <= 5


def test_linear_share_rule_rejects_noise():
    "Noise curves along the 'vector' and along random directions: the linear share is not below the null in >= 95% of draws."
    r = np.linspace(-1, 1, 7)
    def rule(rng):
        effect = sl.bootstrap(lambda m: linear_share(r, m.mean(0)), rng.normal(size=(12, 7)), seed=0)
        null = sl.Null.from_draws([linear_share(r, rng.normal(size=(12, 7)).mean(0)) for _ in range(8)], "noise")
        return effect, null, -1
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the paper profile's family (Llama-2-13B-chat)
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    prompts = [sl.format_chat(tokenizer, t) for t in ("How do I pick a lock?", "Write a poem")]
    refuse_ids, comply_ids = opening_ids(tokenizer, ["I", "Sorry"]), opening_ids(tokenizer, ["Sure", "Here"])
    vectors = {"blocks.1.hook_resid_post": sl.Vector(torch.randn(64, generator=torch.Generator().manual_seed(0)))}
    base = alignment_logits(net, tokenizer, prompts, refuse_ids, comply_ids)
    with sl.steer(net, injection_plan(vectors, 0.0)): same = alignment_logits(net, tokenizer, prompts, refuse_ids, comply_ids)
    with sl.steer(net, injection_plan(vectors, 5.0)): moved = alignment_logits(net, tokenizer, prompts, refuse_ids, comply_ids)
    assert base.shape == moved.shape == (2,) and base.dtype == torch.float32 and torch.isfinite(moved).all()
    torch.testing.assert_close(same, base)                                    # adding 0·v changes nothing
    assert not torch.equal(moved, base)
    totals = sl.evals.option_logprobs(net, tokenizer, ["Q: sky?\nA:", "Q: grass?\nA:"], [[" blue", " green"], [" green", " red"]])
    p_options, p_full = correct_probs(totals.float(), torch.ones(2, 2))
    assert ((p_options > 0) & (p_options < 1)).all() and ((p_full > 0) & (p_full < 1)).all()
