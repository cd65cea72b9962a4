"Feature search: pooling, contrast / AUROC / lexicon / top-context rankings on planted units, labels, counts, and the selection controls."
import pandas as pd
import pytest
import torch
from sae_lens.saes.sae import SAEMetadata
from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

import steerlab as sl
from steerlab import features as F
from steerlab.sites import final_norm


def planted(seed=0, n_units=16, unit=3):
    "Noise activations for 20 target and 30 baseline prompts, with `unit` firing on every target prompt and never on the baseline."
    g = torch.Generator().manual_seed(seed)
    pos, neg = torch.rand(20, n_units, generator=g), torch.rand(30, n_units, generator=g)
    pos[:, unit], neg[:, unit] = 0.5 + torch.rand(20, generator=g), 0.0
    return pos, neg


def test_pool_tokens_by_hand():
    acts = [torch.tensor([[100.0, 0.0], [1.0, 2.0], [3.0, 0.0]]), torch.tensor([[100.0, 100.0], [0.0, 4.0]])]
    assert torch.equal(sl.pool_tokens(acts), torch.tensor([[3.0, 2.0], [0.0, 4.0]]))  # the sink token is never pooled
    assert torch.equal(sl.pool_tokens(acts, "mean"), torch.tensor([[2.0, 1.0], [0.0, 4.0]]))
    masks = [torch.tensor([True, False, True]), torch.tensor([True, True])]
    assert torch.equal(sl.pool_tokens(acts, "max", masks), torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    with pytest.raises(ValueError, match="how must be"): sl.pool_tokens(acts, "sum")
    with pytest.raises(ValueError, match="prompt 1 has no tokens"): sl.pool_tokens(acts, masks=[masks[0], torch.tensor([True, False])])


@pytest.mark.parametrize("score", [F.mean_difference, F.standardised_difference, F.unit_auroc])
def test_a_planted_separating_unit_ranks_first(score):
    for seed in range(5):
        pos, neg = planted(seed, unit=seed + 2)
        assert sl.top_units(score(pos, neg))[0] == seed + 2


def test_a_loud_unit_wins_the_raw_difference_but_not_the_standardised_one():
    pos, neg = planted()
    pos[:, 9], neg[:, 9] = 40 + 100 * torch.rand(20), 100 * torch.rand(30)  # louder on pos, but overlapping
    assert sl.top_units(sl.mean_difference(pos, neg))[0] == 9
    assert sl.top_units(sl.standardised_difference(pos, neg))[0] == 3 and sl.top_units(sl.unit_auroc(pos, neg))[0] == 3


def test_unit_auroc_matches_auroc_unit_by_unit_with_ties():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randint(0, 4, (13, 9), generator=g).float(), torch.randint(0, 4, (7, 9), generator=g).float()  # many ties
    vectorised = sl.unit_auroc(pos, neg)
    for j in range(9): assert vectorised[j].item() == pytest.approx(sl.auroc(pos[:, j], neg[:, j]), abs=1e-12)
    assert sl.unit_auroc(torch.ones(3, 1), torch.zeros(2, 1)).item() == 1.0
    assert sl.unit_auroc(torch.zeros(3, 1), torch.zeros(2, 1)).item() == 0.5


def test_unit_table_and_counts():
    pos, neg = planted()
    table = sl.unit_table(pos, neg)
    assert list(table.index) == list(range(16)) and table.loc[3, "ratio"] == float("inf") and table.loc[3, "auroc"] == 1.0
    assert sl.count_units(table, "firing_neg == 0 and firing_pos >= 0.8") == 1  # ESR's detector rule
    assert sl.select_units(table, "ratio > 3 and firing_pos >= 0.5").tolist() == [3]  # ideological depth's richness rule
    assert sl.count_units(table, "firing_pos > 0") == 16
    silent = sl.unit_table(torch.zeros(2, 1), torch.zeros(2, 1))
    assert pd.isna(silent.loc[0, "ratio"]) and sl.count_units(silent, "ratio > 3") == 0 and silent.loc[0, "standardised"] == 0
    with pytest.raises(ValueError, match="does not run on columns"): sl.count_units(table, "nope > 1")


def test_lexicon_masks_follow_character_offsets(tokenizer):
    texts = ["She likes COFFEE and tea.", "A coffin is not a coffee cup", "coffee"]
    masks = sl.lexicon_masks(tokenizer, texts, ["coffee", "tea"])
    words = [[tokenizer.decode([tokenizer(t)["input_ids"][i]]).strip().lower() for i in m.nonzero().flatten().tolist()] for t, m in zip(texts, masks)]
    assert "".join(words[0]) == "coffeetea" and words[1] == ["coffee"] and "".join(words[2]) == "coffee"
    assert [len(m) for m in masks] == [len(tokenizer(t)["input_ids"]) for t in texts]


def test_lexicon_contrast_and_top_token_match_by_hand():
    acts = [torch.tensor([[0.0, 0.0], [4.0, 1.0], [0.0, 3.0]]), torch.tensor([[9.0, 9.0], [2.0, 1.0], [0.0, 0.0]])]
    masks = [torch.tensor([False, True, False]), torch.tensor([True, True, False])]
    # after each first token: unit 0 reads 4, 2 on the lexicon and 0, 0 elsewhere; unit 1 reads 1, 1 and 3, 0
    assert torch.allclose(sl.lexicon_contrast(acts, masks), torch.tensor([3.0, -0.5], dtype=torch.float64))
    assert sl.top_token_match(acts, masks, k=2).tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="need some of each"): sl.lexicon_contrast(acts, [torch.zeros(3, dtype=torch.bool)] * 2)
    with pytest.raises(ValueError, match="tokenised differently"): sl.lexicon_contrast(acts, [torch.zeros(2, dtype=torch.bool)] * 2)


def test_label_latent_on_a_tiny_model(tokenizer):
    tiny = sl.tiny_model(vocab_size=len(tokenizer))
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=64, d_sae=128, k=8, metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post")))
    target = 123
    with torch.no_grad(): sae.W_dec[5] = tiny.get_output_embeddings().weight[target] / final_norm(tiny).weight
    label = sl.label_latent(tiny, tokenizer, sae, ["The cat sat on the mat", "Dogs bark"], 5, k=4, n_tokens=3)
    assert label["tokens"][0] == tokenizer.decode([target]) and len(label["tokens"]) == 3
    assert len(label["contexts"]) == 4 and label["contexts"].activation.is_monotonic_decreasing


def test_matched_random_units_have_the_size_and_bins_asked_for():
    g = torch.Generator().manual_seed(0)
    freq = torch.rand(200, generator=g) ** 3  # skewed, like latent frequencies
    units = sl.top_units(freq, 5).tolist() + [int(freq.argmin())]  # the busiest five and the rarest
    draws = sl.matched_random_units(freq, units, n=20, n_bins=10, seed=3)
    bins = F._bins(freq, 10)
    assert draws.shape == (20, 6) and not torch.isin(draws, torch.tensor(units)).any()
    assert (bins[draws] == bins[torch.tensor(units)]).all()  # slot by slot, each draw's unit shares the selected unit's bin
    assert all(len(set(d.tolist())) == 6 for d in draws) and len({tuple(d.tolist()) for d in draws}) > 1
    assert freq[draws[:, :5]].min() > freq.median() and torch.equal(draws, sl.matched_random_units(freq, units, n=20, n_bins=10, seed=3))
    with pytest.raises(ValueError, match="distinct units"): sl.matched_random_units(freq, [1, 1])
    with pytest.raises(sl.SteerlabError, match="at least 8"): sl.matched_random_units(freq, [1], n=3)
    with pytest.raises(IndexError, match="out of range"): sl.matched_random_units(freq, [200])


def test_permuted_labels_do_not_find_the_planted_unit():
    "Noise test: the selection rule on shuffled labels picks the planted unit about as often as any other (1/16), not always."
    found, total = 0, 0
    for seed in range(10):
        pos, neg = planted(seed)
        splits = sl.permuted_labels(pos, neg, n=8, seed=seed)
        assert all(p.shape == pos.shape and q.shape == neg.shape for p, q in splits)
        assert torch.equal(torch.cat(splits[0]).sort(0).values, torch.cat([pos, neg]).sort(0).values)  # the same prompts, relabelled
        for p, q in splits:
            found += int(sl.top_units(sl.unit_auroc(p, q))[0] == 3)
            total += 1
            assert sl.count_units(sl.unit_table(p, q), "firing_neg == 0 and firing_pos >= 0.8") == 0
    assert found <= 0.25 * total, (found, total)  # chance is 1/16 per split; the real labels find it every time
