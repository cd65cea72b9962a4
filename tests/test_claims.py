"Verdict rules fed pure noise must not say `reproduced`; controls are seeded, matched and the right shape."
import numpy as np
import pytest
import torch

import steerlab as sl
from steerlab.claims import decide, identity
from steerlab.errors import SteerlabError

DRAWS = 400


def noise_effect(rng, statistic=np.mean, n_items=12):
    return sl.bootstrap(statistic, rng.normal(size=n_items), n_boot=200, seed=int(rng.integers(1 << 30)))


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("n_items", [4, 12, 48])
def test_noise_does_not_clear_a_null_of_noise(sign, n_items):
    "The rule `decide` on a mean of noise items against eight noise draws of the same statistic."
    rng = np.random.default_rng(n_items * sign + 100)
    verdicts = [decide(noise_effect(rng, n_items=n_items),
                       sl.Null.from_draws([rng.normal(size=n_items).mean() for _ in range(8)], "noise"), sign)[0]
                for _ in range(DRAWS)]
    assert np.mean([v == "reproduced" for v in verdicts]) <= 0.05
    assert np.mean([v != "not reproduced" for v in verdicts]) <= 0.05


def test_top_share_of_noise_writes_does_not_clear_random_directions():
    "ThinkEdit's C2 rule: the top-k share of the positive writes of heads of unequal norms, against the same rule along random directions."
    passed = 0
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        head_scale = torch.rand(30, 9, generator=g) * 3  # heads of unequal output norms, as in a model
        writes = torch.randn(6, 30, 9, generator=g) * head_scale  # (n_short, n_layers, n_heads) along the "short" direction
        controls = (torch.randn(8, 6, 30, 9, generator=g) * head_scale).mean(1)  # mean writes along random directions
        effect, null = sl.top_share_claim(lambda idx: writes[idx].mean(0), 6, controls, 11, "noise", n_boot=200, seed=seed)
        passed += decide(effect, null, form=effect.value > 0.5)[0] == "reproduced"
    assert passed <= 5, passed


def test_top_abs_share_of_noise_scores_does_not_clear_random_directions():
    "Steer2Edit's C1 rule: the top-m |g| share, bootstrapped over probe items, against the same share of random-direction scores."
    passed = 0
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        scale = torch.rand(30, 9, generator=g) + 0.2  # components of unequal typical |g|
        per_item = torch.randn(12, 30, 9, generator=g) * scale  # (n_probe, ...) noise scores per probe item
        controls = [torch.randn(30, 9, generator=g) * scale / 12 ** 0.5 for _ in range(8)]  # noise of the mean's spread
        effect, null = sl.top_share_claim(lambda idx: per_item[idx].mean(0), 12, controls, 20, "noise", mass="abs", n_boot=200, seed=seed)
        passed += decide(effect, null)[0] == "reproduced"
    assert passed <= 5, passed


def test_top_share_masses():
    assert sl.top_share([3.0, -1.0, 1.0], 2) == 1.0 and sl.top_share([3.0, -1.0, 1.0], 2, mass="abs") == 0.8
    with pytest.raises(SteerlabError, match="mass must be"): sl.top_share([1.0], 1, mass="signed")


def test_auroc_of_noise_against_permuted_labels():
    "A classifier claim on noise scores, against the same statistic with permuted labels."
    rng = np.random.default_rng(7)
    def auroc(scores, labels):
        pos, neg = scores[labels == 1], scores[labels == 0]
        return ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    passes = 0
    for _ in range(100):
        scores, labels = rng.normal(size=40), np.repeat([0, 1], 20)
        effect = sl.bootstrap(auroc, scores, labels, n_boot=100, paired=True, seed=int(rng.integers(1 << 30)))
        null = sl.Null.from_draws([auroc(scores, p.numpy()) for p in sl.permuted(torch.tensor(labels), n=8, seed=int(rng.integers(1 << 30)))],
                                  "permuted labels")
        passes += decide(effect, null)[0] == "reproduced"
    assert passes / 100 <= 0.05


def test_a_real_effect_is_reproduced():
    "The rule can say yes: a clear effect against a noise null."
    rng = np.random.default_rng(0)
    effect = sl.bootstrap(np.mean, rng.normal(2.0, 1.0, size=24), seed=1)
    null = sl.Null.from_draws(rng.normal(0, 0.2, size=8), "noise")
    assert decide(effect, null) == ("reproduced", "clears the null (above) and meets the paper's stated form")


def test_identity_rows_use_dtype_tolerances():
    assert identity(5e-3, sl.tolerance(torch.bfloat16))[0] == "reproduced"
    assert identity(5e-3, sl.tolerance("float32"))[0] == "not reproduced"
    assert identity(float("nan"), 1.0)[0] == "not reproduced"
    with pytest.raises(SteerlabError, match="no identity tolerance"): sl.tolerance("int8")


def test_table_refuses_duplicate_ids_and_keeps_columns():
    table = sl.ClaimTable()
    table.not_testable("C1", "accuracy drops", "-10 %", "GSM8K accuracy", "SmolLM2-135M", "needs a model that solves GSM8K")
    with pytest.raises(SteerlabError, match="twice"):
        table.not_run("C1", "x", "y", "z", "-", "no data")
    assert table.frame().loc[0, "verdict"] == "not testable at this scale"


def test_controls_are_seeded_and_matched():
    like = torch.randn(64)
    a, b = sl.random_directions(like, seed=3), sl.random_directions(like, seed=3)
    assert torch.equal(a, b) and torch.allclose(a.norm(dim=1), like.norm().expand(8))
    u, k = sl.random_rank1(64, 16, norm=0.7, n=9, seed=0)
    assert torch.allclose((u.norm(dim=1) * k.norm(dim=1)), torch.full((9,), 0.7))
    subspaces = sl.random_subspaces(10, 3, seed=1)
    assert torch.allclose(subspaces @ subspaces.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-5)
    with pytest.raises(SteerlabError, match="at least 8"): sl.permutations(5, n=2)
