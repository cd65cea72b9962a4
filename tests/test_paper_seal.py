"SEAL notebook: a headless smoke run, its invariants, its verdict rules under noise, and its method on bf16 tiny models."
import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods.seal import KINDS, delimiter_states, onset_logprobs, seal_direction, seal_positions, step_kind, trace_bootstrap

SLUG = "seal"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(n_traces=12, trace_tokens=256, layer=15, onset_tokens=2, n_exec=6, n_generate=3, max_new_tokens=16)
FIGURES = ("delimiter_states", "steering")


@pytest.mark.notebook
def test_delimiters_direction_and_controls(smoke_run):
    results, params = smoke_run.results, smoke_run.manifest["params"]
    assert results["n_traces"] >= 2 and results["n_delimiters"] == results["n_vector_other"] + results["n_vector_exec"] \
        + results["n_held_other"] + results["n_held_exec"]
    assert results["direction_norm"] > 0 and results["n_controls"] >= sl.controls.MIN_DRAWS
    assert abs(results["control_norm_ratio"] - 1) < 1e-4  # controls have the norm of v
    delims = pd.read_csv(smoke_run.folder / "results" / "delimiters.csv")
    assert set(delims.kind) <= set(KINDS) and set(delims.split) == {"vector", "held-out"}
    assert delims.groupby("trace").split.nunique().eq(1).all()  # the split is by trace: no trace on both sides
    assert delims.groupby("trace").token.apply(lambda t: t.is_monotonic_increasing and t.is_unique).all()


@pytest.mark.notebook
def test_branches_and_generation_cover_every_condition(smoke_run):
    params = smoke_run.manifest["params"]
    onset = pd.read_csv(smoke_run.folder / "results" / "onset.csv")
    per_delimiter = onset.groupby(["trace", "token"]).size()
    assert per_delimiter.eq(1 + params["n_draws"]).all()  # SEAL and every random direction at every scored delimiter
    assert set(onset.direction) == {"seal", "random"} and (onset.logprob < 0).all()
    assert (onset.groupby(["trace", "token"]).apply(lambda d: np.ptp(d.logprob - d["shift"])) < 1e-4).all()  # one unsteered base each
    gen = pd.read_csv(smoke_run.folder / "results" / "generation.csv")
    assert gen.groupby(["direction", "draw"]).size().eq(params["n_generate"]).all() and len(gen) == (2 + params["n_draws"]) * params["n_generate"]
    assert (gen.reflect_steps <= gen.steps).all() and (gen.length <= params["max_new_tokens"]).all()


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table, results = smoke_run.paper_table(FIGURES), smoke_run.results
    assert [c.split(":")[0] for c in table.claim] == ["C1", "C2", "C3", "C4", "C5"]
    assert "shuffled step kinds" in table.null.iloc[0] and table.null.iloc[1].count("random directions") == 1
    assert (table.verdict.iloc[2] == sl.claims.VERDICTS[3]) == (results["base_reflect_steps"] + results["seal_reflect_steps"] < 2)
    assert (table.verdict.iloc[3] == sl.claims.VERDICTS[3]) == (results["n_ended"] < 2)  # testability read from the run
    assert (table.verdict.iloc[4] == sl.claims.VERDICTS[3]) == (results["n_solved"] < 2)


@pytest.mark.notebook
def test_seal_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert len(table) == 5 and other_run.results["n_held_other"] >= 1


def test_separation_rule_rejects_noise():
    "C1's rule on noise states: a direction from the vector traces separates the held-out kinds no better than shuffled kinds do."
    rng = np.random.default_rng(1)
    passed = 0
    for trial in range(100):
        states, kinds = torch.randn(48, 16), np.array(["reflection"] * 24 + ["execution"] * 24)[rng.permutation(48)]
        traces = np.repeat(np.arange(16), 3)  # three delimiters per trace; the first 8 traces build v
        fit, held = traces < 8, traces >= 8
        other = kinds != "execution"
        def held_auroc(labels):
            u = sl.unit(seal_direction(states[fit], labels))
            return sl.auroc((states[held & other] @ u).numpy(), (states[held & ~other] @ u).numpy())
        proj = (states @ sl.unit(seal_direction(states[fit], kinds[fit]))).numpy()
        effect = trace_bootstrap(sl.auroc, traces[held], other[held], proj[held], seed=trial)  # the notebook's C1 rule
        shuffles = [np.where(rng.permutation(other[fit]), "reflection", "execution") for _ in range(8)]
        passed += sl.decide(effect, sl.Null.from_draws([held_auroc(s) for s in shuffles], "noise"), proxy=True)[0] != sl.claims.VERDICTS[2]
    assert passed <= 0.05 * 100, passed


def test_trace_bootstrap_rejects_noise():
    "C2's rule (the gap resampled by trace) on noise shared within traces: no effect found against draws of the same noise."
    rng = np.random.default_rng(2)
    gap = lambda o, e: float(np.mean(o) - np.mean(e))
    passed = 0
    for trial in range(100):
        traces = np.repeat(np.arange(12), 3)
        def draw():
            values = rng.normal(size=12)[traces] + 0.3 * rng.normal(size=36)  # a trace's delimiters share its problem
            return values, rng.random(36) < 0.4
        values, other = draw()
        effect = trace_bootstrap(gap, traces, other, values, seed=trial)
        null = sl.Null.from_draws([gap(v[o], v[~o]) for v, o in (draw() for _ in range(8))], "noise")
        passed += sl.decide(effect, null, sign=-1, proxy=True)[0] != sl.claims.VERDICTS[2]
    assert passed <= 0.05 * 100, passed


def test_step_kinds_follow_seals_rules():
    assert step_kind("  wait, no") == "reflection" and step_kind("Let me check the sum.") == "reflection"
    assert step_kind("There is another method.") == "transition" and step_kind("Then x = 2.") == "execution"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # the smoke model's family and DeepSeek-R1-Distill-Qwen's
def test_method_functions_bf16(arch):
    tok = sl.load_tokenizer()
    model = sl.tiny_model(arch, vocab_size=len(tok)).to(torch.bfloat16)
    steps = sl.Delimiter(tok, "\n\n")
    traces = ["2 + 3 = 5.\n\nWait, check it: 5.\n\nSo 5.", "1 + 1 = 2.\n\nAlternatively, count.\n\nSo 2.\n\nDone."]
    table, states, dropped = delimiter_states(model, tok, ["Add 2 and 3.", "Add 1 and 1."], traces, "blocks.2.hook_resid_pre", steps, batch_size=2)
    assert states.dtype == torch.float32 and states.shape == (len(table), 64) and table.kind.tolist().count("execution") == 3 and not dropped
    v = seal_direction(states, table.kind)
    assert torch.isfinite(v).all() and v.norm() > 0
    plans = [None, {"blocks.2.hook_resid_pre": sl.Add(v, -1.0)}]
    scored = onset_logprobs(model, tok, ["Add 2 and 3.", "Add 1 and 1."], traces, table, plans, n_tokens=1, batch_size=3)
    assert scored.shape == (len(table), 2) and np.isfinite(scored).all()
    rule = seal_positions(steps, tok("Done", add_special_tokens=False)["input_ids"])
    with sl.steer(model, plans[1], positions=rule):
        out = sl.generate(model, tok, ["Add 2 and 3."], max_new_tokens=4)
    assert len(out) == 1
