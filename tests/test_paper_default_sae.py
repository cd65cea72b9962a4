"The default-SAE notebook: the SAE trains (or loads), meets its quality bars, and steering one latent moves generations toward it."
import pandas as pd
import pytest

SLUG = "default_sae"  # the notebook the shared smoke_run fixture runs


@pytest.mark.notebook
def test_quality_numbers_are_recorded_and_meet_the_bars(smoke_run):
    manifest = smoke_run.manifest
    r = manifest["results"]
    assert r["sae_explained_variance"] > 0.7 and r["sae_ce_loss_recovered"] > 0.8, r
    assert r["sae_l0"] <= r["sae_k"] and r["sae_dead_fraction"] < 0.1, r
    assert r["sae_nll_clean"] < r["sae_nll_sae"] < r["sae_nll_zero"], r
    assert any(m.get("kind") == "sae" and m.get("weights_sha256") == r["sae_weights_sha256"] for m in manifest["models"])


@pytest.mark.notebook
def test_steering_the_latent_raises_it_and_moves_words_toward_its_contexts(smoke_run):
    folder, manifest = smoke_run.folder, smoke_run.manifest
    r = manifest["results"]
    assert r["activation_monotone"] and r["activation_top"] > r["random_activation_top"] + 1, r
    assert r["vocab_best"] > max(r["vocab_unsteered"], r["random_vocab_best"]), r  # more replies use the words it fires on
    top = pd.read_csv(folder / "results" / "top_contexts.csv")
    assert len(top) > 0 and top.activation.is_monotonic_decreasing
    smoke_run.paper_table(("latent_steering",))
