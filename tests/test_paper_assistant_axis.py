"""Assistant Axis notebook: a headless smoke run, its invariants, the method on tiny bf16 Qwen 3, and its verdict rules on noise."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import steerlab as sl
from steerlab.methods import assistant_axis as A

SLUG = "assistant_axis"  # the notebook the shared smoke_run fixture runs
FIGURES = ("persona_space", "alignment", "steering", "capping", "projection_trace")
OTHER_PARAMS = dict(n_roles=6, near_roles=["consultant", "analyst"], far_roles=["ghost", "bard"], n_questions=1,
                    max_new_tokens=6, axis_layer=10, steer_coeffs=[-0.3, 0.3], cap_layers=[18, 19], cap_percentile=0.5,
                    n_boot=200)


@pytest.mark.notebook
def test_table_rows_have_nulls_and_computed_verdicts(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    ids = [claim.split(":")[0] for claim in table.claim]
    assert ids == ["C1", "C2a", "C2b", "C3a", "C3b", "C4", "C5a", "C5b", "C5c", "C5d"]
    assert table.set_index(table.claim.str.split(":").str[0]).metric["C5c"].startswith("identity")
    for name in FIGURES:  # each figure is drawn from the table of its own name
        assert json.loads((smoke_run.folder / "figures" / f"{name}.json").read_text())["source"]["table"] == name


@pytest.mark.notebook
def test_roles_are_a_random_subset_and_the_cap_is_evaluated_on_held_out_answers(smoke_run):
    r = smoke_run.results
    sampled = set(r["space_roles"].split(", "))
    held_out = {"consultant", "analyst", "evaluator", "reviewer", "coach", "generalist", "ghost", "leviathan", "bard", "pirate", "demon", "jester"}
    assert not sampled & held_out and r["n_roles"] == len(sampled) <= 16  # the archetypes never build the axis
    assert r["n_calibration"] > 0 and r["n_evaluation"] > 0                     # two disjoint sets of default answers
    steering = pd.read_csv(smoke_run.folder / "results" / "steering.csv")
    assert set(steering.direction) == {"assistant axis", "random", "prompting", "default prompt"}


@pytest.mark.notebook
def test_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert len(table) == 10 and other_run.manifest["results"]["n_roles"] <= 6


def test_method_on_tiny_bf16_qwen3():
    tok = sl.load_tokenizer()
    lm = sl.tiny_model("qwen3", vocab_size=len(tok)).to(torch.bfloat16)
    prompts, responses = ["Hello there", "Hi", "Good day", "Hey"], [" general Kenobi", " you", " to you", " hey"]
    means = A.response_means(lm, tok, prompts, responses, [0, 2], batch_size=3)
    assert means.shape == (4, 2, 64) and means.dtype == torch.float32 and means.isfinite().all()
    names, vectors = A.label_means(means, ["default", "a", "b", "c"])
    axis = A.assistant_axis(vectors[0], vectors[1:])
    assert A.pc1_alignment(axis, vectors[1:]).shape == (2,) and A.default_position(vectors[0], vectors[1:]).isfinite().all()
    acts = A.response_activations(lm, tok, prompts, responses, [2])
    directions = {2: axis[1]}
    floors = A.cap_floors(A.token_projections(acts, directions), 0.25)
    with sl.steer(lm, A.capping_plan(directions, floors)):
        capped = A.response_activations(lm, tok, prompts, responses, [2])
    lowest = torch.cat(capped[2]).float() @ torch.nn.functional.normalize(axis[1], dim=0)
    norm = torch.cat(acts[2]).float().norm(dim=-1).mean()
    assert ((floors[2] - lowest).clamp(min=0).max() / norm) <= sl.tolerance(torch.bfloat16)  # the floor holds within bf16 rounding
    logodds = A.ai_identity_logodds(lm, tok, prompts[:2], ["ghost", "oracle"])
    assert logodds.shape == (2,) and logodds.float().isfinite().all()


def _verdict(effect, null) -> str:
    return sl.decide(effect, null)[0]


def test_alignment_and_position_rules_on_noise():
    "Pure-noise responses: the axis-vs-PC1 cosine and the default's position do not clear the permuted-label null."
    hits = 0
    for draw in range(100):
        g = torch.Generator().manual_seed(draw)
        means = torch.randn(26, 1, 32, generator=g)
        labels = ["default"] * 6 + [f"r{i}" for i in range(10) for _ in range(2)]
        names, vectors = A.label_means(means, labels)
        default, roles = vectors[0], vectors[1:]
        for statistic in (lambda d, r: A.pc1_alignment(A.assistant_axis(d, r), r)[0], lambda d, r: A.default_position(d, r)[0]):
            null = sl.Null.from_draws([float(v) for v in A.permuted_roles(statistic, means, labels, n=8, seed=draw)], "permuted")
            hits += _verdict(A.over_roles(statistic, default, roles, seed=draw, n_boot=200), null) == "reproduced"
    assert hits <= 0.05 * 200, hits


def test_ordering_rule_on_noise():
    "Pure-noise projections of 6 near and 6 far roles: the AUROC does not clear the permuted-label null."
    rng = np.random.default_rng(0)
    hits = 0
    for draw in range(200):
        near, far = rng.normal(size=6), rng.normal(size=6)
        null = sl.Null.from_draws(A.permuted_auc(near, far, 100, draw), "permuted")
        hits += _verdict(sl.bootstrap(sl.auroc, near, far, n_boot=200, seed=draw), null) == "reproduced"
    assert hits <= 0.05 * 200, hits


def test_components_rule_on_noise():
    "Isotropic noise roles: fewer PCs than the coordinate-shuffled null is not claimed."
    hits = 0
    for draw in range(100):
        roles = torch.randn(60, 1, 16, generator=torch.Generator().manual_seed(draw))
        null = sl.Null.from_draws([A.n_components(r) for r in A.shuffled_coordinates(roles[:, 0], 8, draw)], "shuffled")
        effect = A.over_roles(lambda d, r: A.n_components(r[:, 0]), roles[0], roles, seed=draw, n_boot=100)
        hits += sl.decide(effect, null, sign=-1)[0] == "reproduced"
    assert hits <= 0.05 * 100, hits
