"The default-SAE notebook: every claim row against its null, the invariants it must hold, the method on a tiny bf16 Llama, and its verdict rules on noise."
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab import sae as S, sae_train
from steerlab.methods import default_sae as D

SLUG = "default_sae"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(concept="music", n_context_texts=24, n_top=5, n_held_out=4, coeffs=[0.1, 0.5], max_new_tokens=8, n_boot=200)


@pytest.mark.notebook
def test_table_and_invariants(smoke_run):
    manifest, r = smoke_run.manifest, smoke_run.results
    table = smoke_run.paper_table(("latent_steering",))
    assert [claim.split(":")[0] for claim in table.claim] == ["C1a", "C1b", "C1c", "C2", "C3a", "C3b"]
    assert r["l0_max"] <= r["sae_k"] and r["sae_nll_clean"] < r["sae_nll_zero"]  # TopK; zeroing the site hurts
    assert any(m.get("kind") == "sae" and m.get("weights_sha256") == r["sae_weights_sha256"] for m in manifest["models"])
    steering = pd.read_csv(smoke_run.folder / "results" / "steering.csv")
    assert steering[steering.which == "random latent"].steered.nunique() >= 8  # the controls ran
    top = pd.read_csv(smoke_run.folder / "results" / "top_contexts.csv")
    assert len(top) > 0 and top.activation.is_monotonic_decreasing


@pytest.mark.notebook
def test_default_sae_other_values_bf16(other_run):
    table = other_run.paper_table(("latent_steering",))
    assert len(table) == 6 and other_run.results["held_out_tokens"] > 0


def test_method_on_tiny_bf16_llama():
    tok = sl.load_tokenizer()
    lm = sl.tiny_model("llama", vocab_size=len(tok)).to(torch.bfloat16)
    site = "blocks.1.hook_resid_post"
    train = torch.cat(sl.capture(lm, tok, ["Hello there, how are you today?"] * 4 + ["Bake bread at home."] * 4, site, "all", chat=False)[site]).float()
    sae = sae_train.train_sae(torch.cat([train] * 8), d_sae=32, k=4, epochs=1.0, batch_size=32, site=site)
    prompts, answers = ["Hi", "Tell me a joke"], [" hello there", " a joke"]
    acts = D.site_activations(lm, tok, sae, prompts, answers, batch_size=1)
    assert [a.dtype for a in acts] == [torch.float32] * 2 and all(a.isfinite().all() for a in acts)
    stats = D.text_stats(sae, acts, torch.cat(acts).mean(0))
    assert int(stats["l0_max"].max()) <= 4 and stats["fired"].shape == (2, 32) and np.isfinite(D.explained_variance(stats))
    control = D.random_sae(sae, seed=1)
    assert control.W_dec.shape == sae.W_dec.shape and np.isfinite(D.explained_variance(D.text_stats(control, acts, torch.cat(acts).mean(0))))
    clean = D.text_nll(lm, tok, prompts, answers)
    spliced = D.text_nll(lm, tok, prompts, answers, {site: S.Reconstruct(sae)})
    assert clean.shape == spliced.shape == (2,) and clean.dtype == torch.float32 and spliced.isfinite().all()
    vectors = torch.stack([0.5 * D.unit_latent(sae, 0), torch.zeros(64)])
    replies = D.steer_rows(lm, tok, sae, ["Hi", "Hey"], vectors, max_new_tokens=3)
    assert len(replies) == 2
    read = D.read_back(lm, tok, sae, ["Hi", "Hey"], replies, 0)
    assert read.shape == (2,) and read.dtype == torch.float32 and read.isfinite().all()
    with sl.steer(lm, {site: sl.RowAdd(torch.zeros(2, 64))}):  # a zero row vector changes nothing
        same = sl.capture(lm, tok, ["Hi", "Hey"], site, "last", chat=False)[site]
    assert torch.equal(same, sl.capture(lm, tok, ["Hi", "Hey"], site, "last", chat=False)[site])


def test_quality_rules_on_noise():
    "Noise SAE statistics drawn like the controls': explained variance and dead share do not clear a null of the same kind."
    hits = 0
    for draw in range(100):
        g = torch.Generator().manual_seed(draw)
        def noise_stats():
            return dict(sse=torch.rand(16, generator=g) + 1, sst=torch.rand(16, generator=g) + 1,
                        fired=torch.rand(16, 64, generator=g) < 0.1)
        stats, controls = noise_stats(), [noise_stats() for _ in range(8)]
        effect = sl.bootstrap(lambda i: D.explained_variance(stats, i), np.arange(16.0), n_boot=200, seed=draw)
        hits += sl.decide(effect, sl.Null.from_draws([D.explained_variance(c) for c in controls], "noise"))[0] == "reproduced"
        effect = sl.bootstrap(np.mean, D.dead_latents(stats), n_boot=200, seed=draw)  # over latents, as the notebook
        null = sl.Null.from_draws([D.dead_latents(c).mean().item() for c in controls], "noise")
        hits += sl.decide(effect, null, sign=-1)[0] == "reproduced"
    assert hits <= 0.05 * 200, hits


def test_steering_rule_on_noise():
    "Noise read-backs: the concept latent's rise does not clear random latents' rises."
    rng = np.random.default_rng(0)
    hits = 0
    for draw in range(200):
        low, high = rng.normal(size=4), rng.normal(size=4)
        controls = [(rng.normal(size=4) - low).mean() for _ in range(8)]
        effect = sl.bootstrap(np.mean, high - low, n_boot=200, seed=draw)
        hits += sl.decide(effect, sl.Null.from_draws(controls, "noise"))[0] == "reproduced"
    assert hits <= 0.05 * 200, hits
