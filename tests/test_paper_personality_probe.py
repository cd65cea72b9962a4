"""Personality-probe notebook: the statement files, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.personality_probe import (ANSWERS, TRAIT_PROMPTS, agreement_prompt, caa_vector, control_prompts,
                                                draw_balanced, group_contrast, passage_nll, persona_frame, purify, shift_draws, swapped_arms)

SLUG = "personality_probe"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(traits=["openness", "conscientiousness", "neuroticism"], n_train=8, n_test=4, depth=0.3, strength=0.25,
                    n_controls=8, n_control=2, n_texts=8, n_control_texts=2, text_tokens=16, n_swaps=50)
FIGURES = ("trait_shift", "capability_cost")
CLAIMS = [f"C{i}" for i in range(1, 13)]


def test_statement_files_and_split():
    "Each Big-Five file holds 500 statements at each pole; the draws are disjoint, balanced per trait and pole, and fixed by the seed."
    statements = pd.concat([persona_frame(load(f"anthropic_persona_{t}"), t) for t in TRAIT_PROMPTS], ignore_index=True)
    assert statements.groupby(["trait", "pole"]).size().eq(500).all() and set(statements.answer) == set(ANSWERS)
    assert ((statements.pole > 0) == (statements.answer == "Yes")).all()
    train, test = draw_balanced(statements, [8, 8], seed=3)
    assert train.groupby(["trait", "pole"]).size().eq(8).all() and test.groupby(["trait", "pole"]).size().eq(8).all()
    assert not set(train.statement) & set(test.statement)
    assert draw_balanced(statements, [8, 8], seed=3)[1].statement.tolist() == test.statement.tolist()


@pytest.mark.notebook
def test_shift_rows_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    n_traits, n_items = len(params["traits"]), len(params["traits"]) * params["n_test"]
    assert results["n_test_statements"] == n_items and results["n_train_statements"] == n_traits * params["n_train"]
    shifts = pd.read_csv(folder / "results" / "shifts.csv")
    counts = shifts.groupby("condition").size()
    assert counts[["base", "prompt", "steer"]].eq(n_items).all()
    for kind in ("control", "random"):
        assert sum(counts.index.str.startswith(kind)) == params["n_controls"] >= sl.controls.MIN_DRAWS
        assert counts[counts.index.str.startswith(kind)].eq(n_traits * params["n_control"]).all()
    assert results["n_scored_rows"] == len(shifts) == 3 * n_items + 2 * params["n_controls"] * n_traits * params["n_control"]
    assert shifts[shifts.condition == "control 0"].groupby(["trait", "pole"]).size().eq(params["n_control"] // 2).all()  # balanced controls
    assert results["control_norm_error"] < 1e-4 and results["control_length_gap"] <= 2 and np.isfinite(shifts.logodds).all()
    assert abs(results["steer_norm"] / results["raw_vector_norm"]) > 0  # the vector was rescaled, not zero


@pytest.mark.notebook
def test_nll_rows_and_purification(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    nll = pd.read_csv(folder / "results" / "nll.csv")
    counts = nll.groupby("condition").size()
    assert counts[["base", "prompt", "steer"]].eq(params["n_texts"]).all()
    assert counts[counts.index.str.startswith(("control", "random"))].eq(params["n_control_texts"]).all()
    assert results["n_nll_rows"] == len(nll) and (nll.nll > 0).all() and np.isfinite(nll.nll).all()
    cos = pd.read_csv(folder / "results" / "cosines.csv").set_index("trait")
    assert list(cos.index) == params["traits"] and np.allclose(np.diag(cos), 1, atol=1e-5) and np.allclose(cos, cos.T, atol=1e-6)
    assert abs(results["purified_oc_cosine"]) < 1e-4


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert (table.iloc[[4, 5, 10, 11]].verdict == "not run").all() and table.iloc[6].verdict == "not testable at this scale"
    assert table.iloc[[0, 1, 7, 8]].null.str.contains("control|random").all() and table.iloc[[2, 3]].null.str.contains("swapped").all()
    assert table.iloc[9].verdict in ("reproduced", "not reproduced") and "identity" in table.iloc[9].metric


@pytest.mark.notebook
def test_personality_probe_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert other_run.results["layer"] == 8 and other_run.results["n_test_statements"] == 12
    assert table.iloc[7].verdict == "not run"  # no agreeableness among the traits
    assert set(table.iloc[[0, 1, 2, 3, 8]].verdict) <= set(sl.claims.STRENGTH)


def test_shift_rule_rejects_noise():
    "Shifts that are noise: the mean shift does not clear controls scored on fewer statements in >= 95% of draws."
    def rule(rng):
        signed = {"prompt": rng.normal(size=48), **{f"control {k}": rng.normal(size=6) for k in range(8)}}
        return sl.bootstrap(np.mean, signed["prompt"], n_boot=200, seed=0), sl.Null.from_draws(shift_draws(signed, "control", 8), "controls"), 1
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("sign", [1, -1])
def test_arm_difference_rule_rejects_noise(sign):
    "Two arms that act alike on 16 items: their per-item difference does not clear the swapped-arms null in >= 95% of draws, either way."
    def rule(rng):
        differences = rng.normal(size=16) - rng.normal(size=16)
        return sl.bootstrap(np.mean, differences, n_boot=200, seed=0), sl.Null.from_draws(swapped_arms(differences, 200, int(rng.integers(1 << 30))), "swapped arms"), sign
    assert sl.noise_passes(rule) <= 5


def test_trait_contrast_rule_rejects_noise():
    "Shifts that do not depend on the trait: one trait's contrast does not clear the controls' contrasts in >= 95% of draws."
    groups, control_groups = np.repeat([0, 1, 2], 16), np.repeat([0, 1, 2], 2)
    def rule(rng):
        effect = sl.bootstrap(lambda s, g: group_contrast(s, g, 2), rng.normal(size=48), groups, paired=True, n_boot=200, seed=0)
        null = [group_contrast(rng.normal(size=6), control_groups, 2) for _ in range(8)]
        return effect, sl.Null.from_draws(null, "controls"), -1
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama", "gemma2"])  # the smoke model's family and Gemma-2-2B-IT's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 2}.hook_resid_post"
    statements = ["I love new ideas", "I hate change", "I plan every day", "I leave things to chance"]
    prompts = [agreement_prompt(tokenizer, s) for s in statements]
    vector, norm = caa_vector(net, tokenizer, prompts, ["Yes", "No", "Yes", "No"], site, batch_size=3)
    assert vector.shape == (d,) and vector.dtype == torch.float32 and torch.isfinite(vector).all() and norm > 0
    assert abs(float(purify(vector, torch.ones(d)) @ torch.ones(d, dtype=torch.float64))) < 1e-6 * float(vector.norm()) * d ** 0.5
    plan = {site: sl.Add(sl.unit(vector) * norm, 1.0)}
    mixed = sl.answer_logodds(net, tokenizer, prompts * 2, ANSWERS, 3, plans=[None] * 4 + [plan] * 4, rows_per_call=5)
    plain = sl.answer_logodds(net, tokenizer, prompts, ANSWERS)
    assert mixed.shape == (8,) and mixed.dtype == np.float32 and np.isfinite(mixed).all()
    assert np.allclose(mixed[:4], plain, atol=10 * sl.tolerance(torch.bfloat16) * (1 + np.abs(plain).max()))
    assert not np.allclose(mixed[4:], mixed[:4])  # the vector acts
    systems = control_prompts(tokenizer, ["A river flows through the old town and into the sea beyond the hills."], 6) + [TRAIT_PROMPTS["openness"]]
    nll = passage_nll(net, tokenizer, ["The Thames is a river.", "Paris is a city."] * 2, systems * 2, [None, None, plan, plan], batch_size=3)
    assert nll.shape == (4,) and np.isfinite(nll).all() and (nll > 0).all()
    assert sl.answer_token_ids(tokenizer, ANSWERS) == [tokenizer("Yes", add_special_tokens=False)["input_ids"][0], tokenizer("No", add_special_tokens=False)["input_ids"][0]]
