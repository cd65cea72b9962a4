"""Cultural-alignment notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."""
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.data import load
from steerlab.methods.cultural_alignment import (BASE_FORMAT, FORMAT_KEYS, answer_probs, answer_targets, expected_answer,
                                                 shuffled_spread_gaps, shuffled_within, single_token_ids, spread_gap,
                                                 steer_letters, steering_gap, survey_items, survey_prompt, weighted_mean_difference)

SLUG = "cultural_alignment"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_questions=4, n_personas=2, paper_wording=True, n_permutations=8, n_steer_questions=4, n_steer_countries=3)
FIGURES = ("answers_by_question", "spreads")
CLAIMS = ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"]


def test_formats_reverse_the_scale_and_keep_the_human_answers():
    "Each question comes in the 8 formats; the reversed order shows the scale positions reversed; every format carries the same country means."
    items = survey_items(load("global_opinions_formats"))
    assert items.groupby("question_idx").format.nunique().eq(8).all() and len(items) == 8 * 77
    for _, rows in items.groupby("question_idx"):
        ascending = rows[rows.direction_format == "ascending"].positions.tolist()
        descending = rows[rows.direction_format == "descending"].positions.tolist()
        assert all(p == sorted(p) and p[0] == 0 and p[-1] == 1 for p in ascending)
        assert all(d == a[::-1] for a, d in zip(ascending, descending))
        assert len({tuple(sorted(h.items())) for h in rows.human}) == 1 and len(rows.human.iloc[0]) == 15
    base = items[(items[list(FORMAT_KEYS)] == pd.Series(dict(zip(FORMAT_KEYS, BASE_FORMAT)))).all(axis=1)]
    assert len(base) == 77 and (base.labels.str[0] == "A").all()


def test_steerability_files_parse():
    "The steerability files: 14 + 3 countries over the same 180 questions, each with at least 2 lettered options."
    main, held_out = load("global_opinions_steer"), load("global_opinions_held_out")
    assert len(main) == 14 and len(held_out) == 3 and list(main.columns) == list(held_out.columns) and main.shape[1] == 181
    assert all(2 <= len(steer_letters(q)) <= 11 for q in main.columns[1:])


@pytest.mark.notebook
def test_answers_and_controls(smoke_run):
    folder, results = smoke_run.folder, smoke_run.results
    answers = pd.read_csv(folder / "results" / "answers.csv")
    n_q, personas = smoke_run.manifest["params"]["n_questions"], results["personas"].split(", ")
    counts = answers.groupby("kind").size()
    assert counts["format"] == 8 * n_q and counts["persona"] == len(personas) * n_q and counts["human country"] == 15 * n_q
    model_rows = answers[answers.kind != "human country"]
    assert model_rows.answer.between(0, 1).all() and model_rows.top_share.between(0.2, 1).all()  # at most 5 options
    assert set(answers[answers.kind == "persona"].condition) == set(personas)
    spreads = pd.read_csv(folder / "results" / "spreads.csv")
    by_format = answers[answers.kind == "format"].groupby("question_idx").answer.std(ddof=0)
    assert np.allclose(spreads.set_index("question_idx").format_sd, by_format.loc[spreads.question_idx], atol=1e-5)
    assert results["n_null_draws"] == smoke_run.manifest["params"]["n_permutations"] >= sl.controls.MIN_DRAWS
    assert results["n_prompts"] == (8 + len(personas)) * n_q and abs(results["human_between_country_sd"] - 0.1143) < 1e-3
    identifier = answers[(answers.kind == "persona") | answers.condition.str.endswith("/identifier_only")]
    assert len(identifier) == (4 + len(personas)) * n_q and 0 <= results["first_option_share"] <= 1


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    measured = table.iloc[:5]
    assert measured.null.str.contains("shuffled within questions|equal spreads|target country").all()
    assert (table.iloc[5:].verdict == "not run").all()  # the steerability-file arm is off in the smoke profile


@pytest.mark.notebook
def test_cultural_alignment_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    steer = pd.read_csv(other_run.folder / "results" / "steer_answers.csv")
    assert len(steer) == 4 * (1 + 3) and steer.answer.between(0, 1).all() and steer[steer.condition != "unsteered"].human.notna().all()
    assert table.iloc[5].verdict in sl.claims.STRENGTH  # C6 is measured when the arm runs


def test_format_effect_rule_rejects_noise():
    "Answers that ignore the format: the order effect does not clear its within-question label shuffles in >= 95% of draws."
    order = np.array(["ascending", "descending"] * 4)
    def rule(rng):
        answers = rng.uniform(size=(6, 8))
        groups = lambda values: np.broadcast_to(order, values.shape)
        effect = sl.bootstrap(lambda v: weighted_mean_difference(v, groups(v)), answers, n_boot=200, seed=int(rng.integers(1 << 30)))
        null = sl.Null.from_draws([weighted_mean_difference(d, groups(d)) for d in shuffled_within(answers, 50, int(rng.integers(1 << 30)))], "shuffles")
        return effect, null, 1
    assert sl.noise_passes(rule) <= 5


def test_spread_rules_reject_noise():
    "Formats, personas and countries drawn alike: neither spread gap clears its null in >= 95% of draws."
    def against_countries(rng):
        effect = sl.bootstrap(spread_gap, rng.uniform(size=(6, 8)), rng.uniform(size=(6, 15)), paired=True, n_boot=200, seed=0)
        return effect, sl.Null.fixed(0.0, "equal spreads"), 1
    def against_personas(rng):
        formats, personas = rng.uniform(size=(6, 8)), rng.uniform(size=(6, 4)) + rng.uniform(size=(6, 1))  # a shift per question is not spread
        effect = sl.bootstrap(spread_gap, formats, personas, paired=True, n_boot=200, seed=0)
        return effect, sl.Null.from_draws(shuffled_spread_gaps(formats, personas, 50, int(rng.integers(1 << 30))), "shuffles"), 1
    for rule in (against_countries, against_personas):
        assert sl.noise_passes(rule) <= 5, rule.__name__


def test_steering_rule_rejects_noise():
    "Steered, unsteered and human answers drawn alike: the steering gap does not clear 0 in >= 95% of draws."
    def rule(rng):
        effect = sl.bootstrap(steering_gap, rng.uniform(size=(6, 4)), rng.uniform(size=6), rng.uniform(size=(6, 4)), paired=True, n_boot=200, seed=0)
        return effect, sl.Null.fixed(0.0, "as near"), 1
    assert sl.noise_passes(rule) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the paper profile's family (Llama-3.1-8B-Instruct) and the smoke model's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    item = dict(question="Is tea good?", options=["Very good", "Somewhat good", "Bad"], labels=["A", "B", "C"], response_format="identifier_only")
    prompts = [survey_prompt(tokenizer, item), survey_prompt(tokenizer, dict(item, response_format="option_text"), persona="Kenya")]
    targets = [answer_targets(item), answer_targets(dict(item, response_format="option_text"))]
    assert single_token_ids(tokenizer, targets[0]) is not None and single_token_ids(tokenizer, targets[1]) is None
    probs = answer_probs(net, tokenizer, prompts, targets)
    assert [p.shape for p in probs] == [(3,), (3,)] and all(np.isfinite(p).all() and abs(p.sum() - 1) < 1e-3 for p in probs)
    continued = sl.option_logprobs(net, tokenizer, prompts[:1], [targets[0]]).float().softmax(-1)[0].numpy()
    assert np.allclose(continued, probs[0], atol=10 * sl.tolerance(torch.bfloat16))  # one-token answers read from one distribution
    assert 0 <= expected_answer(probs[1], [0.0, 0.5, 1.0]) <= 1
