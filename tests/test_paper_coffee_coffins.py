"Coffee/coffins notebook: the lab's coffee contexts, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."
import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

import steerlab as sl
from steerlab.methods.coffee_coffins import (cell_success, coffee_contexts, concept_logprob, precision_at_k, rest_kl, steered_next_token,
                                             word_activation, working_share)

SLUG = "coffee_coffins"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(saes=["default-l5", "default"], magnitudes=[2.0, 5.0], k=8, n_validation=6, n_control=2, n_boot=200)
FIGURES = ("steering_map", "precision_confounds")
CLAIMS = ["C1a", "C2a", "C1b", "C2b", "C1c", "C2c", "C3", "C4", "C5"]


def test_coffee_contexts_and_their_masks():
    "The lexicon marks 'coffee' in every coffee sentence and nowhere else; each look-alike sentence holds its word."
    tokenizer = sl.load_tokenizer()
    contexts = coffee_contexts()
    sentences = contexts[contexts.kind != "prompt"]
    marked = [bool(m.any()) for m in sl.lexicon_masks(tokenizer, list(sentences.text), ["coffee", "coffees"])]
    assert marked == list(sentences.kind == "coffee")
    looks = contexts[contexts.kind == "lookalike"]
    assert looks.word.value_counts().to_dict() == {"coffin": 4, "coffer": 4, "toffee": 4, "cough": 4}
    assert all(m.any() for m in (sl.lexicon_masks(tokenizer, [t], [w, w + "s"])[0] for t, w in zip(looks.text, looks.word)))
    assert contexts.text.is_unique and (contexts[contexts.kind == "prompt"].split == "steer").all()


@pytest.mark.notebook
def test_latents_checks_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    found = pd.read_csv(folder / "results" / "found_latents.csv")
    assert list(found.sae) == params["saes"] and (found.max_activation > 0).all()
    for row in found.itertuples():
        randoms = [int(j) for j in row.random_latents.split(", ")]
        assert len(randoms) == params["n_controls"] >= sl.controls.MIN_DRAWS and row.latent not in randoms
    checks = pd.read_csv(folder / "results" / "held_out_checks.csv")
    assert checks.groupby(["sae", "which"]).size().to_dict() == {**{(s, "found"): 1 for s in params["saes"]}, **{(s, "random"): params["n_controls"] for s in params["saes"]}}
    assert checks.precision.between(0, 1).all() and checks.confound_rate.between(0, 1).all()
    rates = checks[[c for c in checks.columns if c.startswith("fires_")]]
    assert np.allclose(rates.mean(axis=1), checks.confound_rate)  # four look-alike words, four sentences each


@pytest.mark.notebook
def test_steering_grid(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    grid = pd.read_csv(folder / "results" / "steering_grid.csv")
    n_cells = len(params["saes"]) * len(params["magnitudes"])
    assert len(grid) == results["n_grid_rows"] == n_cells * (24 + params["n_controls"] * params["n_control"])
    assert np.allclose(grid.norm_ratio, 1, atol=1e-4)  # random latents steered with the found latent's norm
    assert (grid.distortion > -1e-4).all() and (grid.concept_logprob <= 1e-6).all() and grid.success.isin([0, 1]).all()
    randoms = grid[grid.which == "random"]
    assert (randoms.split == "test").all() and randoms.groupby(["sae", "magnitude", "draw"]).size().eq(params["n_control"]).all()
    ok = (np.exp(grid.concept_logprob) >= params["min_prob"]) & (grid.rise >= params["min_rise"]) & (grid.distortion <= params["max_distortion"])
    assert (ok.astype(float) == grid.success).all()


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[8].verdict == "not run" and table.iloc[:8].null.str.contains("random latent").all()
    assert set(table.iloc[:8].verdict) <= set(sl.claims.STRENGTH)


@pytest.mark.notebook
def test_coffee_coffins_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == ["C1a", "C2a", "C1b", "C2b", "C3", "C4", "C5"]
    assert other_run.results["n_grid_rows"] == 4 * (24 + 8 * 2)


@pytest.mark.parametrize("p", [0.1, 0.4, 0.8])
def test_share_rules_reject_noise(p):
    "C1–C3: a latent that hits as often as the matched random ones does not clear them in >= 95% of draws."
    def rule(rng):
        effect = sl.bootstrap(np.mean, (rng.random(16) < p).astype(float), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([float(np.mean(rng.random(16) < p)) for _ in range(8)], "random latents")
    assert sl.noise_passes(rule) <= 5


def test_precision_rule_rejects_noise():
    "C1: precision at k of a unit with random activations does not clear random units' precision in >= 95% of draws."
    def rule(rng):
        masks = [torch.as_tensor(rng.random(10) < 0.2) for _ in range(48)]
        acts = [torch.as_tensor(rng.random((10, 9)), dtype=torch.float32) for _ in range(48)]
        effect = sl.bootstrap(lambda i: precision_at_k(acts, masks, 0, 16, i), np.arange(48.0), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([precision_at_k(acts, masks, j, 16) for j in range(1, 9)], "random latents")
    assert sl.noise_passes(rule) <= 5


def test_working_share_rule_rejects_noise():
    "C4: a latent whose per-prompt success is a coin like the random latents' does not clear their working shares in >= 95% of draws."
    def rule(rng):
        p = rng.uniform(0.2, 0.8)
        effect = sl.bootstrap(working_share, (rng.random((16, 9)) < p).astype(float), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([working_share((rng.random((4, 3)) < p).astype(float)) for _ in range(24)], "random latents")
    assert sl.noise_passes(rule) <= 5


def test_helpers():
    acts = [torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 3.0]]), torch.tensor([[4.0, 4.0], [0.0, 1.0]])]
    masks = [torch.tensor([False, True, True]), torch.tensor([False, False])]
    assert torch.equal(word_activation(acts, masks), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    assert precision_at_k(acts, masks, 0, 2) == 1.0 and precision_at_k(acts, masks, 1, 1) == 1.0
    grid = pd.DataFrame(dict(which=["found"] * 4, draw=[-1] * 4, sae=["a", "a", "b", "b"], magnitude=[1.0] * 4, prompt=["p", "q"] * 2, success=[1, 0, 0, 0]))
    assert cell_success(grid).shape == (2, 2) and working_share(cell_success(grid)) == 0.5


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.1-8B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 1}.hook_resid_post"
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=d, d_sae=4 * d, k=8, metadata=SAEMetadata(hook_name=site)))
    prompts, ids = ["The cat sat on the", "A cup of", "She went out to buy"], [7, 11]
    vectors = torch.stack([torch.zeros(d), 3.0 * sae.W_dec[5].detach(), 3.0 * sae.W_dec[5].detach()])
    concept, distortion = steered_next_token(net, tokenizer, prompts, site, vectors, ids, batch_size=2)
    clean = sl.next_token_logprobs(net, tokenizer, prompts)
    latent = sl.next_token_logprobs(net, tokenizer, prompts, plans=[{site: sl.AddLatent(sae, {5: 3.0})}] * 3)
    tol = 10 * sl.tolerance(torch.bfloat16)
    assert concept.dtype == torch.float32 and torch.isfinite(concept).all() and torch.allclose(concept[0], concept_logprob(clean, ids)[0], atol=tol)
    assert distortion[0].abs() < tol and torch.allclose(distortion[1:], rest_kl(clean, latent, ids)[1:], atol=tol)
    feats = sl.sae.sae_features(net, tokenizer, prompts, sae, positions="all", chat=False)
    marks = sl.lexicon_masks(tokenizer, prompts, ["cup", "cat"])
    assert 0 <= precision_at_k([f.float() for f in feats], marks, 0, 4) <= 1
