"""Geometry-of-persona notebook: the statement files, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.geometry_of_persona import (TRAITS, agreement_prompt, alignment_excess, band_gap, cosines,
                                                  mean_abs_cosine, pole_auroc, pole_scores, shuffled_traits, split_statements, trait_directions,
                                                  trait_predictions, trait_statements)

SLUG = "geometry_of_persona"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_train=8, n_test=4, depth=0.5, probe_band=[0.3, 0.6], ridge=0.1, boost=3.0, n_random=8, n_control=2, n_permutations=8)
FIGURES = ("layer_profile", "trait_cosines", "state_map", "steering_shifts")
CLAIMS = [f"C{i}" for i in range(1, 11)]


def test_statement_files_and_split():
    "Each Big-Five file holds 500 statements at each pole; the split is disjoint and balanced per trait and pole."
    statements = pd.concat([trait_statements(load(f"anthropic_persona_{trait}"), trait) for trait in TRAITS], ignore_index=True)
    assert statements.groupby(["trait", "pole"]).size().eq(500).all() and len(statements) == 5000
    train, test = split_statements(statements, 32, 8, seed=3)
    assert train.groupby(["trait", "pole"]).size().eq(16).all() and test.groupby(["trait", "pole"]).size().eq(4).all()
    assert not set(train.statement) & set(test.statement)
    assert split_statements(statements, 32, 8, seed=3)[1].statement.tolist() == test.statement.tolist()  # the seed fixes the draw


@pytest.mark.notebook
def test_readouts_geometry_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    assert results["n_train_statements"] == 5 * params["n_train"] and results["n_test_statements"] == 5 * params["n_test"]
    layers = pd.read_csv(folder / "results" / "layers.csv")
    assert len(layers) == 30 and layers.auroc.between(0, 1).all() and layers.in_band.any() and not layers.in_band.all()
    assert results["n_shuffles"] == params["n_permutations"] >= sl.controls.MIN_DRAWS
    cos = pd.read_csv(folder / "results" / "cosines.csv").set_index("trait")
    assert list(cos.index) == list(TRAITS) and np.allclose(cos.to_numpy(), cos.to_numpy().T, atol=1e-6) and np.allclose(np.diag(cos), 1, atol=1e-6)
    assert 0 <= results["random_mean_abs_cosine"] < results["shuffled_trait_cosine"] + 1  # both nulls ran
    readout = pd.read_csv(folder / "results" / "readout.csv")
    assert len(readout) == results["n_test_statements"] and set(readout.predicted_trait) <= set(TRAITS)


@pytest.mark.notebook
def test_steering_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    shifts = pd.read_csv(folder / "results" / "shifts.csv")
    n_items = 5 * params["n_test"]
    counts = shifts.groupby("condition").size()
    assert counts[["unsteered", "own", "next"]].eq(n_items).all()
    assert sum(counts.index.str.startswith("random")) == params["n_random"] >= sl.controls.MIN_DRAWS
    assert counts[counts.index.str.startswith("random")].eq(5 * params["n_control"]).all()
    assert results["n_scored_rows"] == len(shifts) == 3 * n_items + params["n_random"] * 5 * params["n_control"]
    controls = shifts[shifts.condition == "random 0"]
    assert controls.groupby(["trait", "pole"]).size().eq(params["n_control"] // 2).all()  # controls balanced per trait and pole
    assert results["control_norm_error"] < 1e-4 and np.isfinite(shifts.logodds).all()


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[6].verdict == "not testable at this scale" and (table.iloc[7:].verdict == "not run").all()
    assert table.iloc[:6].null.str.contains("shuffled|random").all()


@pytest.mark.notebook
def test_geometry_of_persona_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer"] == 14 and other_run.results["n_test_statements"] == 20
    assert set(table.iloc[:6].verdict) <= set(sl.claims.STRENGTH)


def _noise_split(rng, n_traits=3, n_train=12, n_test=8, d=16):
    "States with no trait or pole information, and balanced trait/pole labels."
    traits_train, traits_test = np.repeat(np.arange(n_traits), n_train), np.repeat(np.arange(n_traits), n_test)
    poles_train, poles_test = np.tile([1, -1], n_traits * n_train // 2), np.tile([1, -1], n_traits * n_test // 2)
    return rng.normal(size=(len(traits_train), d)), traits_train, poles_train, rng.normal(size=(len(traits_test), d)), traits_test, poles_test


def test_readout_rules_reject_noise():
    "Read-outs of states that hold nothing: neither pole AUROC nor trait accuracy clears its shuffled-label fits in >= 95% of draws."
    def pole_rule(rng):
        x, t, p, xt, tt, pt = _noise_split(rng)
        effect = sl.bootstrap(pole_auroc, pole_scores(x, t, p, xt, tt), pt, paired=True, n_boot=200, seed=0)
        null = [pole_auroc(pole_scores(x, t, rng.permutation(p), xt, tt), pt) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "shuffled poles"), 1
    def trait_rule(rng):
        x, t, p, xt, tt, pt = _noise_split(rng)
        effect = sl.bootstrap(np.mean, (trait_predictions(x, t, xt, 3) == tt).astype(float), n_boot=200, seed=0)
        null = [float((trait_predictions(x, rng.permutation(t), xt, 3) == tt).mean()) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "shuffled traits"), 1
    for rule in (pole_rule, trait_rule):
        assert sl.noise_passes(rule) <= 5, rule.__name__


def test_band_rule_rejects_noise():
    "Read-outs at 6 blocks of noise: the mid-band gap does not clear its shuffled-pole fits in >= 95% of draws."
    band = np.array([False, False, True, True, False, False])
    def rule(rng):
        splits = [_noise_split(rng) for _ in band]
        t, p, tt, pt = splits[0][1], splits[0][2], splits[0][4], splits[0][5]
        scores = lambda poles: np.stack([pole_scores(s[0], t, poles, s[3], tt) for s in splits], 1)
        effect = sl.bootstrap(lambda s, q: band_gap(s, q, band), scores(p), pt, paired=True, n_boot=200, seed=0)
        null = [band_gap(scores(rng.permutation(p)), pt, band) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "shuffled poles"), 1
    assert sl.noise_passes(rule) <= 5


def test_orthogonality_rule_rejects_one_shared_axis():
    "Five 'traits' that are one pole axis plus noise: their vectors are not less aligned than vectors of shuffled traits in >= 95% of draws."
    def rule(rng):
        axis = rng.normal(size=32)
        traits, poles = np.repeat(np.arange(5), 16), np.tile([1, -1], 40)
        states = rng.normal(size=(80, 32)) + 0.5 * poles[:, None] * axis
        inner = shuffled_traits(traits, poles, 8, seed=int(rng.integers(1 << 30)))
        stat = lambda s, t, p, ids: alignment_excess(s, t, p, ids, inner, 5)
        effect = sl.bootstrap(stat, states, traits, poles, np.arange(80), paired=True, n_boot=200, seed=0)
        null = [stat(states, t, poles, np.arange(80)) for t in shuffled_traits(traits, poles, 8, seed=int(rng.integers(1 << 30)))]
        return effect, sl.Null.from_draws(null, "shuffled traits"), -1
    assert sl.noise_passes(rule) <= 5


def test_steering_rules_reject_noise():
    "Steered log-odds that are noise: neither the own shift nor own-minus-next clears random directions scored on fewer items in >= 95% of draws."
    def rule(rng):
        poles = np.tile([1, -1], 20)
        effect = sl.bootstrap(np.mean, poles * rng.normal(size=40), n_boot=200, seed=0)
        null = [float(np.mean(poles[:10] * rng.normal(size=10))) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "random directions"), 1
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # the smoke model's family and Qwen2.5-0.5B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 2}.hook_resid_post"
    texts = ["I love new ideas", "I hate change", "I plan every day", "I leave things to chance"]
    states = sl.capture(net, tokenizer, texts, site, positions="after_first", reduce="mean", chat=False)[site].float().numpy()
    assert states.shape == (4, d) and np.isfinite(states).all()
    directions = trait_directions(states, [0, 0, 1, 1], [1, -1, 1, -1], 2)
    assert directions.shape == (2, d) and np.allclose(np.diag(cosines(directions)), 1, atol=1e-6) and 0 <= mean_abs_cosine(directions) <= 1
    prompts = [agreement_prompt(tokenizer, t) for t in texts]
    plan = {site: sl.Add(torch.tensor(directions[0], dtype=torch.float32), 4.0)}
    mixed = sl.answer_logodds(net, tokenizer, prompts * 2, batch_size=3, plans=[None] * 4 + [plan] * 4, rows_per_call=5)
    plain = sl.answer_logodds(net, tokenizer, prompts)
    assert mixed.shape == (8,) and mixed.dtype == np.float32 and np.isfinite(mixed).all()
    assert np.allclose(mixed[:4], plain, atol=10 * sl.tolerance(torch.bfloat16) * (1 + np.abs(plain).max()))
    assert not np.allclose(mixed[4:], mixed[:4])  # the vector acts
