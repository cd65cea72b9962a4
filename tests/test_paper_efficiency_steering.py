"Efficiency Steering notebook, smoke profile: the concise/verbose pairs, the direction, the steered generations and their controls."
import numpy as np
import pytest
import torch

import steerlab as sl
from steerlab.methods.efficiency_steering import concise_verbose_pairs, cut_to_lengths

SLUG = "efficiency_steering"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_train=8, n_samples=2, temperature=0.8, instructions=["Answer briefly."], train_tokens=24, n_eval=6,
                    max_new_tokens=24, layer=10, strengths=[1.0, 2.0], strength=2.0)
FIGURES = ("length_vs_strength", "train_lengths")


@pytest.mark.notebook
def test_pairs_direction_and_controls(smoke_run):
    results = smoke_run.results
    assert results["n_pairs"] >= 2 and results["concise_length"] < results["verbose_length"]
    assert results["direction_norm"] > 0 and results["resid_norm"] > 0
    assert results["n_controls"] >= 8 and abs(results["control_norm_ratio"] - 1) < 1e-4  # controls have the norm of v
    assert 0 <= results["base_accuracy"] <= 1 and 0 <= results["n_solved"] <= 12


@pytest.mark.notebook
def test_figures_and_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert [c.split(":")[0] for c in table.claim] == ["C1", "C2", "C3"]
    assert table.verdict.iloc[2] == sl.claims.VERDICTS[4]  # the RL method is never run here
    testable = smoke_run.results["n_solved"] >= 2  # C2's testability follows the run's own counts
    assert (table.verdict.iloc[1] != sl.claims.VERDICTS[3]) == testable
    tests = smoke_run.folder / "results" / "test.csv"
    import pandas as pd
    test = pd.read_csv(tests)
    assert set(test.direction) == {"none", "efficiency", "random"}
    assert test.groupby(["direction", "alpha", "draw"]).size().eq(12).all()  # every condition answered every test question
    assert ((test.cut_correct == test.correct) | (test.direction != "none")).all()  # the unsteered answer cut to itself is itself


@pytest.mark.notebook
def test_efficiency_steering_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert len(table) == 3 and other_run.results["n_pairs"] >= 2


def test_change_claim_does_not_pass_noise():
    "Steered and control changes drawn from one distribution: the rule must not find an effect in either direction."
    rng = np.random.default_rng(0)
    passed = {1: 0, -1: 0}
    for trial in range(200):
        before = rng.integers(20, 41, 12).astype(float)
        change = lambda: rng.normal(-3, 6, 12).round()  # every condition shortens a little, with noise
        effect, null = sl.change_claim(before, before + change(), [(before, before + change()) for _ in range(8)], "noise", seed=trial)
        for sign in passed: passed[sign] += sl.decide(effect, null, sign=sign)[0] != sl.claims.VERDICTS[2]
    assert max(passed.values()) <= 0.05 * 200, passed


def test_change_claim_on_binary_noise():
    "C2's form of the rule (0/1 correctness against truncation) on noise: no effect found."
    rng = np.random.default_rng(1)
    passed = 0
    for trial in range(200):
        pair = lambda: ((rng.random(12) < 0.3).astype(float), (rng.random(12) < 0.3).astype(float))
        effect, null = sl.change_claim(*pair(), [pair() for _ in range(8)], "noise", seed=trial)
        passed += sl.decide(effect, null)[0] != sl.claims.VERDICTS[2]
    assert passed <= 0.05 * 200, passed


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # the smoke model's family and DeepSeek-R1-Distill-Qwen's
def test_method_functions_bf16(arch):
    tok = sl.load_tokenizer()
    model = sl.tiny_model(arch, vocab_size=len(tok)).to(torch.bfloat16)
    D = sl.dims(model)
    site = f"blocks.{D['n_layers'] - 1}.hook_resid_post"
    prompts = ["What is 2 + 2?", "Name a colour.", "Count to three."] * 2
    texts, acts = sl.generate(model, tok, prompts, max_new_tokens=6, capture=site, do_sample=True, seed=0, system="")
    lengths = sl.response_lengths(tok, texts)
    questions = [0, 1, 2, 0, 1, 2]
    concise, verbose = concise_verbose_pairs(lengths + np.array([0, 0, 0, 1, 1, 1]), questions)  # the second answer of each counts longer
    assert concise.tolist() == [0, 1, 2] and verbose.tolist() == [3, 4, 5]
    v = sl.diff_in_means(acts[site][concise], acts[site][verbose]).tensor
    assert acts[site].dtype == torch.float32 and v.shape == (D["d_model"],) and v.isfinite().all()
    controls = sl.random_directions(v, n=8)
    plain = sl.generate(model, tok, prompts[:3], max_new_tokens=6, system="")
    out = sl.generate_conditions(model, tok, {"v": (prompts[:3], lambda rows: sl.steer(model, {site: sl.Add(v, 1.0)}, positions=rows)),
                                             "random": (prompts[:3], lambda rows: sl.steer(model, {site: sl.Add(controls[0], 1.0)}, positions=rows)),
                                             "none": (prompts[:3], None)}, max_new_tokens=6, system="")
    assert out["none"] == plain and all(len(t) == 3 for t in out.values())
    cut = cut_to_lengths(tok, plain, [2, 2, 100])
    assert (sl.response_lengths(tok, cut)[:2] <= 2).all() and cut[2] == plain[2]
