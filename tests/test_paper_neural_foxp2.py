"""Neural FOXP2 notebook: the lab's parallel texts, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.neural_foxp2 import (SOURCE, TARGETS, block_states, compact_shift, language_neurons, mismatched, neuron_shift,
                                           reply_success)

SLUG = "neural_foxp2"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_vector=12, n_eval=4, window_depth=0.3, max_rank=2, neuron_share=0.1, strength=0.3, max_new_tokens=8, n_random=8, n_control=2,
                    n_permutations=8)
FIGURES = ("shift_spectra", "target_language_share")
CLAIMS = [f"C{i}" for i in range(1, 8)]


def test_parallel_texts():
    "24 sentences per language in English, French and Spanish, each identified as its own language; the question draw alternates fr, es."
    texts = load("parallel_texts")
    sentences, questions = sl.parallel_texts(texts, "sentence", (SOURCE, *TARGETS)), sl.parallel_texts(texts, "question", (SOURCE, *TARGETS))
    assert len(sentences) == len(questions) == 24 and list(sentences.columns) == [SOURCE, *TARGETS]
    for lang in (SOURCE, *TARGETS):
        assert reply_success(list(sentences[lang]), [lang] * 24).success.eq(1).all(), lang
    items = sl.draw_with_targets(questions, 16, TARGETS, seed=3)
    assert items.target.value_counts().to_dict() == {"fr": 8, "es": 8} and items.en.is_unique


@pytest.mark.notebook
def test_spectra_and_window(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    spectra = pd.read_csv(folder / "results" / "spectra.csv")
    n_window = round(params["window_depth"] * 30)
    assert set(spectra.target) == set(TARGETS) and spectra.block.nunique() == n_window == spectra.block.max() + 1
    assert spectra.groupby(["target", "block"]).size().eq(params["n_vector"]).all()  # one singular value per pair
    assert (spectra.effective_rank >= 1).all() and (spectra.effective_rank <= params["n_vector"]).all()
    assert 0 <= results["window_block"] < n_window and all(1 <= results[f"rank_{t}"] <= params["max_rank"] for t in TARGETS)
    assert results["n_mismatched"] == params["n_permutations"] >= sl.controls.MIN_DRAWS and results["n_sentences"] == params["n_vector"]
    assert 0 <= results["held_out_share"] <= 1


@pytest.mark.notebook
def test_replies_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    replies = pd.read_csv(folder / "results" / "replies.csv", keep_default_na=False)
    counts = replies.groupby("method").size()
    assert counts[["unsteered", "foxp2", "diffmean"]].eq(params["n_eval"]).all()
    randoms = replies[replies.method == "random"]
    assert randoms.draw.nunique() == params["n_random"] >= sl.controls.MIN_DRAWS and randoms.groupby("draw").size().eq(params["n_control"]).all()
    assert results["n_replies"] == len(replies) == 3 * params["n_eval"] + params["n_random"] * params["n_control"]
    assert set(replies.target) <= set(TARGETS) and replies.success.isin([0, 1]).all() and (replies.success == (replies.language == replies.target)).all()
    assert results["control_norm_error"] < 1e-5 and results["n_neurons"] == round(params["neuron_share"] * 576)
    assert results["identity_error"] < 1e-3 and results["off_neuron_change"] == 0


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[1].metric.startswith("identity") and (table.iloc[5:].verdict == "not run").all()
    assert table.iloc[4].verdict == "not testable at this scale"
    assert "mismatched" in table.iloc[0].null and "random neuron sets" in table.iloc[2].null and "swapped" in table.iloc[3].null


@pytest.mark.notebook
def test_neural_foxp2_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["window_block"] < 9 and other_run.results["n_sentences"] == 12 and other_run.results["n_neurons"] == 58
    assert set(table.iloc[[0, 2, 3]].verdict) <= set(sl.claims.STRENGTH)


def test_compact_shift_rule_rejects_unpaired_states():
    "C1: states whose 'translations' share nothing with their English pair: matched pairs are no more compact than mismatched ones in >= 95% of draws."
    def rule(rng):
        shift = rng.normal(size=(3, 1, 24))  # a language shift per block, common to all pairs
        source = rng.normal(size=(3, 12, 24))
        targets = {t: rng.normal(size=(3, 12, 24)) + shift for t in TARGETS}  # no pairing with the source
        shares = compact_shift(source, targets, 2)[2]
        effect = sl.bootstrap(np.mean, shares, n_boot=200, seed=0)
        draws = [float(np.mean(compact_shift(source, {t: s[:, o] for t, s in targets.items()}, 2)[2])) for o in mismatched(12, 8, seed=int(rng.integers(1 << 30)))]
        return effect, sl.Null.from_draws(draws, "mismatched pairs")
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_random_set_rule_rejects_noise(p):
    "C3: neurons that steer like random ones (same success rate): the share does not clear the random sets in >= 95% of draws."
    def rule(rng):
        effect = sl.bootstrap(np.mean, (rng.random(16) < p).astype(float), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([float(np.mean(rng.random(4) < p)) for _ in range(8)], "random neuron sets")
    assert sl.noise_passes(rule) <= 5


def test_arm_difference_rule_rejects_noise():
    "C4: two arms that steer alike on 16 questions: their paired gap does not clear random swaps in >= 95% of draws."
    def rule(rng):
        first, second = (rng.random(16) < 0.6).astype(float), (rng.random(16) < 0.6).astype(float)
        effect = sl.bootstrap(lambda a, b: float(np.mean(a) - np.mean(b)), first, second, paired=True, n_boot=500, seed=0)
        swaps = [float(np.mean(a) - np.mean(b)) for a, b in sl.swapped(first, second, 32, seed=int(rng.integers(1 << 30)))]
        return effect, sl.Null.from_draws(swaps, "swapped replies")
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.1-8B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    sites = [f"blocks.{b}.hook_resid_post" for b in range(sl.dims(net)["n_layers"])]
    english = ["The sun rises early.", "My sister works here.", "It rained all night.", "The museum is closed."]
    french = ["Le soleil se lève tôt.", "Ma sœur travaille ici.", "Il a plu toute la nuit.", "Le musée est fermé."]
    source, target = (block_states(net, tokenizer, texts, sites) for texts in (english, french))
    assert source.shape == (len(sites), 4, d) and source.dtype == np.float64 and np.isfinite(source).all()
    block, ranks, shares = compact_shift(source, {"fr": target}, 2)
    assert 0 <= block < len(sites) and 1 <= ranks["fr"] <= 2 and shares.shape == (4,) and ((shares >= 0) & (shares <= 1 + 1e-9)).all()
    neurons = language_neurons(target[block] - source[block], ranks["fr"], 3)
    shift = neuron_shift(target[block] - source[block], ranks["fr"], neurons)
    assert shift.dtype == torch.float32 and int((shift != 0).sum()) <= 3
    site = sites[block]
    plain = sl.capture(net, tokenizer, ["How do bees make honey?"], site, positions="all", reduce="none")[site][0]
    with sl.steer(net, {site: sl.Add(shift, 1.0)}):
        steered = sl.capture(net, tokenizer, ["How do bees make honey?"], site, positions="all", reduce="none")[site][0]
    off = [c for c in range(d) if c not in set(neurons.tolist())]
    assert (steered - plain).float()[:, off].abs().max() == 0  # bf16: the coordinates off the neurons are untouched
