"ESR notebook: the paper's prompts and answers, the attempt splitter, a headless smoke run and its invariants, its verdict rules under noise, and its method on bf16 tiny models."
import numpy as np
import pandas as pd
import pytest
import torch
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

import steerlab as sl
from steerlab.methods.esr import (RESTART_PHRASES, answer_latents, arm_scores, esr_data, find_detectors, generate_rows, latent_boost,
                                  mismatched, set_activity, silent_latents, split_attempts, split_prompts, trial_outcomes)

SLUG = "esr"  # the notebook the shared smoke_run fixture runs
OTHER_PARAMS = dict(sae="default-l22", n_latents=2, n_trials=8, max_new_tokens=24, response_tokens=24, n_control=1, n_boot=200)
FIGURES = ("relevance_by_arm", "detector_activity")
CLAIMS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11"]
ARMS = {"unsteered", "steered", "meta", "ablated", "random"}


def test_paper_data_and_split():
    "38 prompts, each with its reference answer; the split is disjoint, seeded and covers every prompt."
    prompts, answers = esr_data()
    assert len(prompts) == 38 == len(set(prompts)) and set(answers) == set(prompts)
    search, held = split_prompts(prompts, 22, seed=3)
    assert sorted(search + held) == sorted(prompts) and len(held) == 16
    with pytest.raises(ValueError, match="n_search"): split_prompts(prompts, 38)


def test_attempt_splitter():
    "Every restart phrase opens a new attempt after a sentence end; text without one is a single attempt."
    for phrase in RESTART_PHRASES:
        assert split_attempts(f"Boil the water first. {phrase} pour it slowly.") == ["Boil the water first.", f"{phrase} pour it slowly."]
    assert split_attempts("Boil the water, then pour it.") == ["Boil the water, then pour it."]
    out = trial_outcomes([np.array([0.3]), np.array([0.1, 0.4]), np.array([0.5, 0.2])])
    assert out.multi_attempt.tolist() == [0, 1, 1] and out.esr.tolist() == [0, 1, 0] and out["first"].tolist() == [0.3, 0.1, 0.5]


def test_helpers():
    assert sorted(mismatched(7, 1)) == list(range(7)) and all(i != j for i, j in enumerate(mismatched(7, 1)))
    with pytest.raises(ValueError): mismatched(1)
    assert silent_latents(torch.tensor([[0.0, 0, 1]]), torch.tensor([[0.0, 2, 2]])).tolist() == [1]
    assert np.allclose(set_activity(torch.tensor([[2.0, 4.0]]), [[0, 1], [1]]), [[3.0, 4.0]])
    table = sl.unit_table(torch.tensor([[2.0, 1, 0], [3, 1, 0]]), torch.tensor([[0.0, 1, 0], [0, 0, 1]]))
    assert find_detectors(table, "firing_neg == 0 and firing_pos >= 0.8", 4).tolist() == [0]
    assert find_detectors(table, "auroc > 2", 2).tolist()[0] == 0  # none passes: the AUROC ranking
    trials = pd.DataFrame(dict(arm=["x"] * 3, draw=[-1] * 3, trial=[2, 0, 1], last=[0.3, 0.1, 0.2]))
    assert arm_scores(trials, "x", "last").tolist() == [0.1, 0.2, 0.3]


@pytest.mark.notebook
def test_trials_and_controls(smoke_run):
    folder, results, params = smoke_run.folder, smoke_run.results, smoke_run.manifest["params"]
    trials = pd.read_csv(folder / "results" / "trials.csv")
    n = params["n_trials"]
    assert len(trials) == results["n_generated"] and set(trials.arm) <= ARMS
    counts = trials.groupby("arm").size().to_dict()
    assert counts["unsteered"] == counts["steered"] == counts["meta"] == n
    if results["n_detectors_used"]:
        assert counts["ablated"] == n and counts["random"] == params["n_controls"] * params["n_control"] >= sl.controls.MIN_DRAWS * params["n_control"]
        activity = pd.read_csv(folder / "results" / "detector_activity.csv")
        assert len(activity) == 2 * n and activity.columns.str.startswith("random_").sum() == params["n_controls"]
    assert trials.attempts.ge(1).all() and trials.esr.le(trials.multi_attempt).all()
    assert trials[["first", "last"]].abs().le(1 + 1e-5).all().all()
    assert (trials.groupby("trial").latent.nunique() == 1).all() and trials.latent.nunique() == params["n_latents"]
    assert results["identity_error"] < 10 * sl.tolerance(torch.float32)
    latents = pd.read_csv(folder / "results" / "latents.csv")
    assert latents.detector.sum() == results["n_detectors_passing"]
    assert results["n_detectors_used"] == (min(results["n_detectors_passing"], params["max_detectors"]) if results["n_detectors_passing"] else params["max_detectors"])


@pytest.mark.notebook
def test_paper_table(smoke_run):
    table = smoke_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    verdicts = dict(zip(CLAIMS, table.verdict))
    assert {verdicts[c] for c in ("C1", "C2", "C3", "C7", "C9")} == {"not testable at this scale"} and verdicts["C11"] == "not run"
    assert verdicts["C0"] in ("reproduced", "not reproduced")
    assert {verdicts[c] for c in ("C4", "C5", "C10")} <= set(sl.claims.STRENGTH)
    assert table.set_index(table.claim.str.split(":").str[0]).loc[["C4", "C10"], "null"].str.contains("swapped").all()


@pytest.mark.notebook
def test_esr_other_values_bf16(other_run):
    table = other_run.paper_table(FIGURES)
    assert list(table.claim.str.split(":").str[0]) == CLAIMS
    assert other_run.results["n_generated"] >= 3 * 8


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_paired_swap_rule_rejects_noise(p):
    "C4, C10: two arms of the same distribution (with a shared per-trial offset) do not clear their swapped pairs in >= 95% of draws."
    def rule(rng):
        base = rng.normal(0, 1, 16)
        first, second = base + rng.normal(p, 0.3, 16), base + rng.normal(p, 0.3, 16)
        gap = lambda a, b: float(np.mean(a - b))
        return (sl.bootstrap(gap, first, second, paired=True, n_boot=200, seed=0),
                sl.Null.from_draws([gap(a, b) for a, b in sl.swapped(first, second, 16, int(rng.integers(1 << 30)))], "swapped"))
    assert sl.noise_passes(rule) <= 5


def test_matched_set_rule_rejects_noise():
    "C6, C8: a latent set whose per-trial change is drawn like the random sets' does not clear them in >= 95% of draws (either sign)."
    def rule(rng, sign):
        change = rng.normal(0, 1, (16, 9))  # column 0: the detectors, the rest: random sets
        return (sl.bootstrap(np.mean, change[:, 0], n_boot=200, seed=0), sl.Null.from_draws(change[:, 1:].mean(0).tolist(), "random sets"), sign)
    assert sl.noise_passes(lambda rng: rule(rng, 1)) <= 5 and sl.noise_passes(lambda rng: rule(rng, -1)) <= 5


def test_count_rule_rejects_noise():
    "C5: the detector count on noise activations does not clear the shuffled-label counts in >= 95% of draws."
    rule_text = "(firing_neg == 0 and firing_pos >= 0.8) or auroc == 1"
    count = lambda pos, neg: float(sl.count_units(sl.unit_table(pos, neg), rule_text))
    def rule(rng):
        acts = torch.as_tensor(np.maximum(rng.normal(-1.5, 1, (24, 64)), 0), dtype=torch.float32)
        pos, neg = acts[:12], acts[12:]
        return (sl.bootstrap(count, pos, neg, paired=True, n_boot=100, seed=0),
                sl.Null.from_draws([count(p, n) for p, n in sl.permuted_labels(pos, neg, 8, int(rng.integers(1 << 30)))], "shuffled"))
    assert sl.noise_passes(rule, n=100) <= 5


@pytest.mark.parametrize("arch", ["llama"])  # the smoke model's family and Llama-3.3-70B-Instruct's
def test_method_on_bf16_tiny_model(arch):
    tokenizer = sl.load_tokenizer()
    net = sl.tiny_model(arch, vocab_size=len(tokenizer)).to(torch.bfloat16)
    d = sl.dims(net)["d_model"]
    site = f"blocks.{sl.dims(net)['n_layers'] - 1}.hook_resid_post"
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=d, d_sae=4 * d, k=8, metadata=SAEMetadata(hook_name=site)))
    acts = answer_latents(net, tokenizer, sae, ["Explain how to boil an egg.", "How do you tie a knot?"], ["Put the egg in water.", "Loop the rope."])
    assert acts.shape == (2, 4 * d) and acts.dtype == torch.float32 and torch.isfinite(acts).all()
    boost = latent_boost(sae, 3, 5.0)
    plan = {site: [sl.AblateLatents(sae, [1, 2]), sl.AddLatent(sae, {3: boost})]}
    texts = generate_rows(net, tokenizer, ["Explain how to boil an egg."] * 2, [None, plan], max_new_tokens=3, chat=True)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    prompts = [sl.format_chat(tokenizer, "Explain how to boil an egg.")]
    by_latent = sl.next_token_logprobs(net, tokenizer, prompts, plans=[{site: sl.AddLatent(sae, {3: boost})}])
    by_vector = sl.next_token_logprobs(net, tokenizer, prompts, plans=[{site: sl.Add(sae.W_dec[3].detach().float(), boost)}])
    assert torch.allclose(by_latent.float(), by_vector.float(), atol=10 * sl.tolerance(torch.bfloat16))
