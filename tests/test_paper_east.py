"EAST notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.east import Bandits, arm_labels, bandit_prompt, entropy_weighted_direction, episode_outcomes, play

SLUG = "east"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_arms=2, horizon=3, n_collect=4, n_eval=3, layer=10, strengths=[1.0, 2.0], strength=2.0, eval_wording="buttons")
FIGURES = ("entropy_vs_strength", "exploration")


@pytest.mark.notebook
def test_episodes_and_controls(smoke_run):
    results, params = smoke_run.results, smoke_run.manifest["params"]
    assert results["n_states"] == params["n_collect"] * params["horizon"] and results["state_norm"] > 0
    assert results["n_controls"] >= sl.controls.MIN_DRAWS and abs(results["control_norm_ratio"] - 1) < 1e-4  # controls have EAST's norm
    episodes = pd.read_csv(smoke_run.folder / "results" / "episodes.csv")
    n_conditions = 1 + len(params["strengths"]) + params["n_draws"]
    assert len(episodes) == n_conditions * params["n_eval"] and episodes.groupby(["direction", "beta", "draw"]).size().eq(params["n_eval"]).all()
    assert set(episodes.direction) == {"none", "east", "random"} and (episodes[episodes.direction == "random"].beta == params["strength"]).all()
    assert episodes.entropy.between(0, np.log(params["n_arms"]) + 1e-5).all() and episodes.arms_tried.between(1, params["n_arms"]).all()
    assert episodes.label_mass.between(0, 1).all()
    steps = pd.read_csv(smoke_run.folder / "results" / "steps.csv")
    assert len(steps) == len(episodes) * params["horizon"] and (steps.regret >= 0).all()
    first = steps[steps.step == 0].groupby(["direction", "beta", "draw"]).entropy.nunique()
    assert first.eq(1).all()  # every episode opens with the same empty history


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert [c.split(":")[0] for c in table.claim] == ["C1", "C2", "C3", "C4", "C5"]
    assert table.null.iloc[:2].str.contains("random directions of the same norm").all() and "no change" in table.null.iloc[2]
    assert (table.verdict.iloc[3:] == sl.claims.VERDICTS[3]).all()


@pytest.mark.notebook
def test_east_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert len(table) == 5 and other_run.results["n_states"] == 4 * 3


def _gain_rule(rng, n_episodes: int = 6, n_draws: int = 8) -> str:
    "C1/C2's rule on noise: steered, unsteered and control episodes drawn alike."
    base, steered = rng.uniform(0, 1.1, n_episodes), rng.uniform(0, 1.1, n_episodes)
    effect = sl.bootstrap(lambda b, s: float(np.mean(s - b)), base, steered, paired=True, n_boot=200, seed=int(rng.integers(1 << 30)))
    null = sl.Null.from_draws(np.maximum([np.mean(rng.uniform(0, 1.1, n_episodes) - base) for _ in range(n_draws)], 0.0), "noise")
    return sl.decide(effect, null)[0]


def test_gain_rule_rejects_noise():
    "Entropies that do not depend on the direction: the gain does not clear the random-direction null in >= 95% of draws."
    rng = np.random.default_rng(0)
    verdicts = [_gain_rule(rng) for _ in range(200)]
    assert sum(v != sl.claims.VERDICTS[2] for v in verdicts) <= 10, verdicts


def test_gain_rule_rejects_a_direction_that_does_nothing():
    "Random directions that lower the entropy must not let a direction with no effect pass: the null is floored at no change."
    rng = np.random.default_rng(1)
    for trial in range(100):
        base = rng.uniform(0.8, 1.1, 6)
        effect = sl.bootstrap(lambda b, s: float(np.mean(s - b)), base, base.copy(), paired=True, n_boot=200, seed=trial)
        harmful = [np.mean(-rng.uniform(0.2, 0.6, 6)) for _ in range(8)]
        assert sl.decide(effect, sl.Null.from_draws(harmful, "harmful controls"))[0] != sl.claims.VERDICTS[2]  # what the floor prevents
        assert sl.decide(effect, sl.Null.from_draws(np.maximum(harmful, 0.0), "harmful controls, floored"))[0] == sl.claims.VERDICTS[2]


def test_collapse_rule_rejects_noise():
    "First and last step entropies drawn alike: C3's change does not clear 0 (downwards) in >= 95% of draws."
    rng = np.random.default_rng(2)
    passed = 0
    for trial in range(200):
        first, last = rng.uniform(0, 1.1, 6), rng.uniform(0, 1.1, 6)
        effect = sl.bootstrap(lambda f, l: float(np.mean(l - f)), first, last, paired=True, n_boot=200, seed=trial)
        passed += sl.decide(effect, sl.Null.fixed(0.0, "no change"), sign=-1)[0] != sl.claims.VERDICTS[2]
    assert passed <= 10, passed


def test_entropy_weighted_direction():
    states = torch.randn(10, 8)
    assert torch.allclose(entropy_weighted_direction(states, torch.full((10,), 0.7)), torch.zeros(8), atol=1e-6)
    weights = torch.rand(10)
    expected = (weights[:, None] * states).sum(0) / weights.sum() - states.mean(0)
    assert torch.allclose(entropy_weighted_direction(states, weights), expected, atol=1e-6)
    with pytest.raises(ValueError, match="do not match"): entropy_weighted_direction(states, torch.ones(9))


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and the paper profile's (Llama-3.1-8B-Instruct)
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    bandits = Bandits.draw(2, 3, 3, seed=0)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 1}.hook_resid_post"
    plan = {site: sl.Add(torch.randn(d), 4.0)}
    played = play(net, tokenizer, bandits, [0, 1, 0, 1], [None, None, plan, plan], "machines", batch_size=8)
    assert len(played) == 4 * 3 and np.isfinite(played.entropy).all() and played.entropy.between(0, np.log(3) + 1e-3).all()
    outcomes = episode_outcomes(played)
    assert len(outcomes) == 4 and outcomes.arms_tried.between(1, 3).all()
    states = sl.capture(net, tokenizer, played.prompt.tolist(), site, positions="last", chat=False)[site]
    u = entropy_weighted_direction(torch.as_tensor(states).float().reshape(len(played), -1), played.entropy.to_numpy())
    assert u.shape == (d,) and torch.isfinite(u).all()
    prompt = bandit_prompt(tokenizer, [(1, 0)], 3, "buttons")
    probs, entropy, mass = sl.option_entropy(net, tokenizer, [prompt], [f" {label}" for label in arm_labels(3)])
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1) < 1e-3 and 0 <= float(entropy[0]) <= np.log(3) + 1e-3 and 0 < float(mass[0]) <= 1
