"""Steerability evaluation notebook: the lab's source passages, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.steerability_eval import (ATTRIBUTES, NO_EXPLAIN, PAPER_RANGES, PLAIN, attributes, gap_claim, goal_metrics, normaliser,
                                                prompt, request, request_direction)

SLUG = "steerability_eval"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(goals="reading_difficulty=-0.6, textual_diversity=+0.15", n_vector=4, n_eval=4, depth=0.3, strength=0.3,
                    max_new_tokens=24, n_random=8, n_control=2, n_permutations=8)
FIGURES = ("goal_moves", "goal_metrics")
CLAIMS = [f"C{i}" for i in range(1, 9)]


def test_rewrite_sources():
    "24 English passages of 57–65 words, four per genre, each with its own id."
    sources = pd.DataFrame(load("rewrite_sources"))
    assert len(sources) == 24 and sources.id.is_unique and sources.genre.value_counts().eq(4).all() and sources.genre.nunique() == 6
    raw = attributes(list(sources.text))
    assert raw.text_length.between(57, 65).all() and np.isfinite(raw.to_numpy()).all()
    assert sl.language_of(list(sources.text)) == ["en"] * 24
    z = normaliser(PAPER_RANGES | {"text_length": (0.0, 2 * raw.text_length.max())})(raw)
    assert z.text_length.between(0.4, 0.5).all()  # the sources sit in the middle of the length axis


@pytest.mark.notebook
def test_rewrites_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    rewrites = pd.read_csv(folder / "results" / "rewrites.csv", keep_default_na=False)
    n_goals, n_eval = results["n_goals"], params["n_eval"]
    counts = rewrites.groupby("arm").size()
    assert counts.to_dict() == {"plain": n_eval, "prompt": n_eval * n_goals, "steer": n_eval * n_goals, "random": params["n_random"] * params["n_control"]}
    assert results["n_rewrites"] == len(rewrites) and rewrites[rewrites.arm == "random"].draw.nunique() == params["n_random"] >= sl.controls.MIN_DRAWS
    for (arm, goal), part in rewrites[rewrites.arm.isin(["prompt", "steer"])].groupby(["arm", "goal"]):
        assert sorted(part.item) == list(range(n_eval)), (arm, goal)  # every passage once per arm and goal
    unscored = ~np.isfinite(rewrites[[f"z_{a}" for a in ATTRIBUTES]].replace("", np.nan).astype(float)).all(axis=1)
    assert results["n_unscored"] == int(unscored.sum())
    assert results["control_norm_error"] < 1e-5 and results["n_vector_passages"] == params["n_vector"]


@pytest.mark.notebook
def test_metrics_are_consistent(smoke_run):
    "Each scored rewrite's error splits into its miss along the request and its move off it; overshoot is the along move in units of the request, minus 1."
    scored = pd.read_csv(smoke_run.folder / "results" / "scored.csv", keep_default_na=False)
    assert set(scored.arm) == {"plain", "prompt", "steer", "random"} and len(scored) > 0
    np.testing.assert_allclose(scored.error ** 2, (scored.along - scored.requested) ** 2 + scored.off ** 2, rtol=1e-4, atol=1e-6)  # the saved table rounds
    np.testing.assert_allclose(scored.overshoot, scored.along / scored.requested - 1, rtol=1e-4, atol=1e-6)  # the saved table rounds
    np.testing.assert_allclose(scored.miscalibration, (scored.overshoot).abs(), rtol=1e-4, atol=1e-6)  # the saved table rounds
    assert scored.orthogonality.between(0, 1).all()
    own = scored[scored.arm.isin(["prompt", "steer"])]
    assert len(own) == len(own.drop_duplicates(["arm", "goal", "item"]))  # a requested rewrite is scored against its own goal only


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert table.iloc[5].verdict == "not testable at this scale" and (table.iloc[6:].verdict == "not run").all()
    assert table.iloc[[0, 2, 4]].null.str.contains("swapped").all() and "random directions" in table.iloc[3].null and "calibrated" in table.iloc[1].null


@pytest.mark.notebook
def test_steerability_eval_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["block"] == 8 and other_run.results["n_goals"] == 2 and other_run.results["n_eval_passages"] == 4
    assert set(table.iloc[:5].verdict) <= set(sl.claims.STRENGTH)


@pytest.mark.parametrize("spread", [0.1, 1.0])
def test_arm_comparison_rule_rejects_noise(spread):
    "C1, C3, C5: two arms whose per-passage values come from one distribution (with a missing cell) do not clear the swaps in >= 95% of draws."
    def rule(rng):
        first, second = rng.normal(0.5, spread, (12, 2)), rng.normal(0.5, spread, (12, 2))
        first[3, 1] = np.nan
        return gap_claim(first, second, 32, seed=int(rng.integers(1 << 30)))
    assert sl.noise_passes(rule) <= 5


def test_overshoot_rule_rejects_rewrites_that_ignore_the_request():
    "C2: rewrites that move at random, ignoring the request, fall short of it and never clear 0."
    def rule(rng):
        z0 = rng.uniform(0, 1, (24, 4))
        delta = np.zeros((24, 4))
        delta[:12, 2], delta[12:, 3] = -0.3, 0.3
        over = goal_metrics(z0, z0 + rng.normal(0, 0.2, (24, 4)), delta).overshoot.to_numpy().reshape(2, 12).T  # (passages, goals)
        return sl.bootstrap(lambda x: float(np.nanmean(x)), over, n_boot=200, seed=0), sl.Null.fixed(0.0, "calibrated")
    assert sl.noise_passes(rule) == 0


def test_steering_rule_rejects_a_random_direction():
    "C4: a direction that moves the text like the random ones does not clear them in >= 95% of draws."
    def rule(rng):
        plain = rng.normal(0, 0.2, (12, 2))
        steer = rng.normal(0, 0.5, (12, 2))
        effect = sl.bootstrap(lambda a, b: float(np.nanmean(a - b)), steer, plain, paired=True, n_boot=200, seed=0)
        draws = [float(np.nanmean(rng.normal(0, 0.5, (2, 2)) - plain[:2])) for _ in range(8)]
        return effect, sl.Null.from_draws(draws, "random directions")
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.1-8B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    site = f"blocks.{sl.dims(net)['n_layers'] - 1}.hook_resid_post"
    passages = ["The council met on Monday to discuss the new bridge.", "We went to the beach and it was great fun, honestly."]
    direction = request_direction(net, tokenizer, passages, "formality", 0.3, site)
    assert direction.dtype == torch.float32 and abs(float(direction.norm()) - 1) < 1e-5 and torch.isfinite(direction).all()
    norm = sl.token_norm(net, tokenizer, [prompt(PLAIN + NO_EXPLAIN, p) for p in passages], site, system="")
    plain = [prompt(PLAIN + NO_EXPLAIN, passages[0])] * 2
    conditions = {"plain": (plain, None), "asked": ([prompt(request("formality", 0.3), passages[0])] * 2, None),
                  "steered": (plain, lambda rows: sl.steer(net, {site: sl.Add(direction, 0.5 * norm)}, positions=rows))}
    out = sl.generate_conditions(net, tokenizer, conditions, max_new_tokens=4, system="")
    assert all(len(texts) == 2 for texts in out.values()) and out["plain"][0] == out["plain"][1]
    assert out["plain"] == sl.generate(net, tokenizer, plain, max_new_tokens=4, system="")
    assert attributes(out["steered"]).shape == (2, len(ATTRIBUTES))
