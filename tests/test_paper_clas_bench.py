"""CLaS-Bench notebook: the lab's parallel texts, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.clas_bench import (METHODS, SOURCE, TARGETS, family_gap, language_direction, language_states,
                                         score_gap, shuffled_targets, steering_score, swapped_gaps)

SLUG = "clas_bench"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_vector=12, n_eval=6, depth=0.6, early_depth=0.2, strength=0.3, max_new_tokens=8, n_random=8, n_control=2, n_permutations=8)
FIGURES = ("steering_scores", "direction_cosines")
CLAIMS = [f"C{i}" for i in range(1, 10)]


def test_parallel_texts():
    "24 sentences and 24 questions, each in the four languages, each text identified as its own language; the question draw is fixed by the seed."
    texts = load("parallel_texts")
    sentences, questions = sl.parallel_texts(texts, "sentence", (SOURCE, *TARGETS)), sl.parallel_texts(texts, "question", (SOURCE, *TARGETS))
    assert len(sentences) == len(questions) == 24 and list(sentences.columns) == [SOURCE, *TARGETS]
    assert not set(sentences.en) & set(questions.en)
    for lang in (SOURCE, *TARGETS):
        assert sl.language_of(list(sentences[lang]) + list(questions[lang]), [SOURCE, *TARGETS]) == [lang] * 48, lang
    items = sl.draw_with_targets(questions, 16, TARGETS, seed=2)
    assert items.en.is_unique and items.target.value_counts().to_dict() == {"fr": 6, "es": 5, "de": 5}
    assert sl.draw_with_targets(questions, 16, TARGETS, seed=2).en.tolist() == items.en.tolist()


@pytest.mark.notebook
def test_replies_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    replies = pd.read_csv(folder / "results" / "replies.csv", keep_default_na=False)
    counts = replies.groupby("method").size()
    assert counts[["unsteered", *METHODS, "diffmean early"]].eq(params["n_eval"]).all()
    randoms = replies[replies.method == "random"]
    assert randoms.draw.nunique() == params["n_random"] >= sl.controls.MIN_DRAWS and randoms.groupby("draw").size().eq(params["n_control"]).all()
    assert results["n_replies"] == len(replies) == (len(METHODS) + 2) * params["n_eval"] + params["n_random"] * params["n_control"]
    assert set(replies.target) <= set(TARGETS) and set(replies.language) <= {SOURCE, *TARGETS, "und"}
    assert replies.success.isin([0, 1]).all() and replies.relevance.between(-1, 1).all()
    assert (replies.success == (replies.language == replies.target)).all()
    for method, part in replies[replies.method != "random"].groupby("method"):
        assert sorted(part.item) == list(range(params["n_eval"])), method  # every method answers every question once
    assert results["control_norm_error"] < 1e-5 and results["late_block"] > results["early_block"]


@pytest.mark.notebook
def test_directions_and_family_null(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    cos = pd.read_csv(folder / "results" / "directions.csv").set_index("direction")
    assert len(cos) == (len(METHODS) + 1) * len(TARGETS) and list(cos.columns) == list(cos.index)
    assert np.allclose(cos.to_numpy(), cos.to_numpy().T, atol=1e-5) and np.allclose(np.diag(cos), 1, atol=1e-5)
    assert results["n_label_shuffles"] == params["n_permutations"] >= sl.controls.MIN_DRAWS and results["n_sentences"] == params["n_vector"]


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert (table.iloc[7:].verdict == "not run").all()
    assert table.iloc[:2].null.str.contains("random").all() and table.iloc[2:6].null.str.contains("swapped").all()
    assert "shuffled" in table.iloc[6].null


@pytest.mark.notebook
def test_clas_bench_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["late_block"] == 17 and other_run.results["early_block"] == 5 and other_run.results["n_sentences"] == 12
    assert set(table.iloc[:7].verdict) <= set(sl.claims.STRENGTH)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_random_direction_rules_reject_noise(p):
    "C1/C2: a direction that steers like the random ones (same success rate, same relevance) does not clear them in >= 95% of draws."
    def lfs_rule(rng):
        effect = sl.bootstrap(np.mean, (rng.random(16) < p).astype(float), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([float(np.mean(rng.random(4) < p)) for _ in range(8)], "random directions")
    def score_rule(rng):
        draw = lambda n: ((rng.random(n) < p).astype(float), rng.uniform(0, 0.8, n))
        effect = sl.bootstrap(steering_score, *draw(16), paired=True, n_boot=200, seed=0)
        return effect, sl.Null.from_draws([steering_score(*draw(4)) for _ in range(8)], "random directions")
    for rule in (lfs_rule, score_rule):
        assert sl.noise_passes(rule) <= 5, rule.__name__


def test_method_difference_rule_rejects_noise():
    "C3–C6: two directions that steer alike on 16 questions: their paired score gap does not clear random swaps of the replies in >= 95% of draws."
    def rule(rng):
        draw = lambda: ((rng.random(16) < 0.7).astype(float), rng.uniform(0, 0.8, 16))
        first, second = draw(), draw()
        effect = sl.bootstrap(score_gap, *first, *second, paired=True, seed=0)
        return effect, sl.Null.from_draws(swapped_gaps(first, second, 32, seed=int(rng.integers(1 << 30))), "swapped replies")
    assert sl.noise_passes(rule) <= 5


def test_family_rule_rejects_no_family():
    "C7: three targets that share one shift from the source, with no family structure: the gap does not clear shuffled labels in >= 95% of draws."
    def rule(rng):
        shift = rng.normal(size=16)
        states = {SOURCE: rng.normal(size=(24, 16))}
        states |= {t: states[SOURCE] + shift + rng.normal(size=(24, 16)) for t in TARGETS}
        effect = sl.bootstrap(lambda rows: family_gap(states, rows), np.arange(24), n_boot=200, seed=0)
        return effect, sl.Null.from_draws([family_gap(s) for s in shuffled_targets(states, 8, seed=int(rng.integers(1 << 30)))], "shuffled labels")
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.1-8B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    site = f"blocks.{sl.dims(net)['n_layers'] - 1}.hook_resid_post"
    english = ["The sun rises early.", "My sister works here.", "It rained all night.", "The museum is closed."]
    french = ["Le soleil se lève tôt.", "Ma sœur travaille ici.", "Il a plu toute la nuit.", "Le musée est fermé."]
    source, target = (language_states(net, tokenizer, texts, [site])[site] for texts in (english, french))
    assert source.shape == (4, sl.dims(net)["d_model"]) and source.dtype == np.float32 and np.isfinite(source).all()
    assert sl.token_norm(net, tokenizer, english, site, chat=False) > 0
    for method in METHODS:
        direction = language_direction(target, source, method)
        assert direction.dtype == torch.float32 and abs(float(direction.norm()) - 1) < 1e-5
        assert float(direction @ torch.as_tensor(target.mean(0) - source.mean(0))) > 0, method  # points towards the target
    vector = language_direction(target, source)
    conditions = {"plain": (["How do bees make honey?"] * 2, None),
                  "steered": (["How do bees make honey?"] * 2, lambda rows: sl.steer(net, {site: sl.Add(vector, 50.0)}, positions=rows))}
    out = sl.generate_conditions(net, tokenizer, conditions, max_new_tokens=4, system="")
    assert len(out["plain"]) == len(out["steered"]) == 2 and out["plain"][0] == out["plain"][1]
    assert out["plain"] == sl.generate(net, tokenizer, ["How do bees make honey?"] * 2, max_new_tokens=4, system="")
