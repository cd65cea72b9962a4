"""GrAInS notebook: the TruthfulQA pairs, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load_truthfulqa
from steerlab.methods.grains import (contrastive_attribution, grains_direction, last_states, pair_logodds, qa_pairs, random_tokens, sequences,
                                     top_tokens)

SLUG = "grains"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(layer=20, n_steer=6, n_test=12, max_tokens=32, method="grad_x_input", k=5, mode="pos", strength=0.25, n_control=2, n_swaps=50)
FIGURES = ("attributions", "ablation", "logodds_change")
CLAIMS = [f"C{i}" for i in range(1, 9)]


def test_truthfulqa_pairs(tokenizer):
    "Both halves give truthful and false answers that differ, in the paper's template, within the token limit."
    for split in ("train", "test"):
        pairs = qa_pairs(load_truthfulqa(split), tokenizer, 40)
        assert len(pairs) >= 300 and pairs.prompt.str.startswith("Q: ").all() and pairs.prompt.str.endswith("\nA:").all()
        assert (pairs.truthful != pairs.false).all()
    assert not set(qa_pairs(load_truthfulqa("train"), tokenizer, 40).question) & set(qa_pairs(load_truthfulqa("test"), tokenizer, 40).question)


@pytest.mark.notebook
def test_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    scores = pd.read_csv(folder / "results" / "scores.csv")
    counts = scores.groupby("condition").size()
    assert all(counts[c] == params["n_test"] for c in ("base", "GrAInS", "DiM"))
    randoms = [c for c in counts.index if c.startswith("random")]
    assert len(randoms) == params["n_controls"] >= sl.controls.MIN_DRAWS and all(counts[c] == params["n_control"] for c in randoms)
    assert results["n_scored_rows"] == len(scores) and np.isfinite(scores.logodds).all()
    assert ((scores.logodds > 0) == (scores.correct == 1)).all()
    drops = pd.read_csv(folder / "results" / "ablation_drops.csv")
    assert (drops.groupby("selection").size() == params["n_steer"]).all() and drops.selection.nunique() == params["n_controls"] + 1
    attributions = pd.read_csv(folder / "results" / "attributions.csv", keep_default_na=False)
    assert set(attributions.answer) == {"truthful", "false"} and attributions.pair.nunique() == params["n_steer"]
    assert results["added_norm"] > 0 and -1 <= results["grains_dim_cosine"] <= 1 and results["norm_error"] >= 0


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[[0, 1]].null.str.contains("random directions").all() and "swapped" in table.iloc[2].null and "random tokens" in table.iloc[3].null
    assert "identity" in table.iloc[4].metric and table.iloc[5].verdict == "not testable at this scale"
    assert (table.iloc[[6, 7]].verdict == "not run").all() and "multimodal" in table.iloc[7].reason


@pytest.mark.notebook
def test_grains_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer"] == 20 and other_run.results["n_test_pairs"] == 12
    assert set(table.iloc[:4].verdict) <= set(sl.claims.STRENGTH)


def test_shift_rule_rejects_noise():
    "C1/C2: changes that are noise do not clear random controls scored on fewer items in >= 95% of draws."
    def rule(rng):
        return sl.bootstrap(np.mean, rng.normal(size=40), n_boot=200, seed=0), sl.Null.from_draws([float(rng.normal(size=12).mean()) for _ in range(8)], "random")
    assert sl.noise_passes(rule, 100) <= 5  # a count of 100: at most 5 %


def test_accuracy_rule_rejects_noise():
    "C2: per-item accuracy changes in {-1, 0, 1} that are noise do not clear the controls' changes."
    def rule(rng):
        flips = lambda n: rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.1, 0.8, 0.1])
        return sl.bootstrap(np.mean, flips(40), n_boot=200, seed=0), sl.Null.from_draws([float(flips(12).mean()) for _ in range(8)], "random")
    assert sl.noise_passes(rule, 100) <= 5  # a count of 100: at most 5 %


def test_swap_rule_rejects_noise():
    "C3: two arms that act alike do not clear the swapped-arms null in >= 95% of draws."
    def rule(rng):
        a, b = rng.normal(size=40), rng.normal(size=40)
        return sl.bootstrap(np.mean, a - b, n_boot=200, seed=0), sl.Null.from_draws([float((x - y).mean()) for x, y in sl.swapped(a, b, 50, 0)], "swapped")
    assert sl.noise_passes(rule, 100) <= 5  # a count of 100: at most 5 %


def test_selection_rule_rejects_noise():
    "C4: with random attributions, ablating the 'top' tokens drops the score no more than random tokens in >= 95% of draws."
    def rule(rng):
        effect = rng.normal(size=(12, 30))                   # each pair's drop for each of 30 tokens ablated alone (additive)
        scores = torch.as_tensor(rng.normal(size=(12, 30)))  # an attribution with no information
        mask = torch.ones(12, 30, dtype=torch.bool)
        drop = lambda m: (effect * m.numpy()).sum(1)
        return (sl.bootstrap(np.mean, drop(top_tokens(scores, mask, 5)), n_boot=200, seed=0),
                sl.Null.from_draws([float(drop(m).mean()) for m in random_tokens(mask, 5, 8, int(rng.integers(1 << 30)))], "random tokens"))
    assert sl.noise_passes(rule, 100) <= 5  # a count of 100: at most 5 %


def test_token_selection():
    mask = torch.tensor([[False, True, True, True], [True, True, False, False]])
    picked = top_tokens(torch.tensor([[9.0, 1.0, 3.0, 2.0], [1.0, 2.0, 9.0, 9.0]]), mask, 2)
    assert picked.tolist() == [[False, False, True, True], [True, True, False, False]]  # padding is never picked; short rows give all they have
    assert all((m & ~mask).sum() == 0 and (m.sum(1) == 2).all() for m in random_tokens(mask, 2, 8, 0))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # the smoke model's family and the paper's two (Llama-3.1, Qwen2.5)
def test_method_on_bf16_tiny_model(arch, tokenizer):
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    site, width = "blocks.2.hook_resid_post", sl.dims(net)["d_model"]
    pairs = pd.DataFrame(dict(question=["a", "b", "c"], prompt=["Q: Is the sky blue?\nA:", "Q: Do fish fly?\nA:", "Q: Is ice cold?\nA:"],
                              truthful=["Yes", "No, they swim", "Yes"], false=["No", "Yes", "No, it is hot"]))
    att = contrastive_attribution(net, tokenizer, pairs, steps=2)
    assert att.scores.dtype == torch.float32 and torch.isfinite(att.scores).all() and (att.scores[~att.mask] == 0).all()
    f_full, h_full = last_states(net, tokenizer, pairs, site)
    f_pos, h_pos = last_states(net, tokenizer, pairs, site, ablate=top_tokens(att.scores, att.mask, 3))
    _, h_neg = last_states(net, tokenizer, pairs, site, ablate=top_tokens(att.scores, att.mask, 3, sign=-1))
    assert h_full.shape == (6, width) and torch.isfinite(f_pos).all()
    v = grains_direction(h_full, h_pos, h_neg, site=site)
    assert v.shape == (width,) and torch.isclose(v.norm(), torch.tensor(1.0), atol=1e-4)
    plan = {site: sl.Add(v * float(h_full.norm(dim=-1).mean()), 1.0, renorm=True)}
    _, h_steered = last_states(net, tokenizer, pairs, site, intervention=plan[site])
    assert torch.allclose(h_steered.norm(dim=-1), h_full.norm(dim=-1), rtol=2 * sl.tolerance("bfloat16"))
    logodds = pair_logodds(net, tokenizer, pairs, [plan] * 3)
    assert logodds.shape == (3,) and np.isfinite(logodds).all()
    np.testing.assert_allclose(pair_logodds(net, tokenizer, pairs), (f_full[:3] + f_full[3:]).numpy(), atol=0.1)
