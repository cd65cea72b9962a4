"Learned steering: trainable interventions reach only their own parameters, export to plain steering, losses match hand-worked values, fit trains (also in bfloat16)."
import math

import pytest
import torch
from fastcore.test import test_close as close

import steerlab as sl
from steerlab.hooks import Pass

SITE = "blocks.1.hook_resid_post"
PROMPTS = ["The sky is", "Water boils at a temperature of", "Hi"]
COMPLETIONS = [" blue", " one hundred degrees", " there, how are you?"]
PAIRS = [("The sky is", " green", " blue"), ("Grass is", " green", " blue"), ("The sea is", " green", " blue"), ("Leaves are", " green", " blue")]


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return sl.tiny_model("llama", vocab_size=len(tokenizer))


def randomised(module):
    "The module with random parameters, so that it changes what it steers."
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters(): p.copy_(torch.randn_like(p) * 0.5)
    return module


MODULES = {"vector": lambda: sl.LearnedVector(64), "affine": lambda: sl.UnitAffine(64), "clamp": lambda: sl.Rank1Clamp(64, value=2.0)}


@pytest.mark.parametrize("kind", list(MODULES))
def test_gradients_reach_only_the_intervention(tiny, tokenizer, kind):
    module = randomised(MODULES[kind]())
    lp = sl.sequence_logprobs(tiny, tokenizer, PROMPTS, COMPLETIONS, plan={SITE: module})
    assert lp.dtype == torch.float32 and lp.requires_grad
    lp.sum().backward()
    assert all(p.grad is None for p in tiny.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert all(p.requires_grad for p in tiny.parameters())  # frozen only for the pass
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tiny.modules())


def test_frozen_restores_each_flag_after_an_error(tiny):
    first = next(tiny.parameters())
    first.requires_grad_(False)
    with pytest.raises(RuntimeError), sl.frozen(tiny):
        assert not any(p.requires_grad for p in tiny.parameters())
        raise RuntimeError("boom")
    assert not first.requires_grad and all(p.requires_grad for p in list(tiny.parameters())[1:])
    first.requires_grad_(True)


def test_sequence_logprobs_are_the_evals_scores_and_padding_safe(tiny, tokenizer):
    batched = sl.sequence_logprobs(tiny, tokenizer, PROMPTS, COMPLETIONS)
    alone = torch.cat([sl.sequence_logprobs(tiny, tokenizer, [p], [c]) for p, c in zip(PROMPTS, COMPLETIONS)])
    close(batched, alone, eps=1e-4)
    scored = sl.continuation_logprobs(tiny, tokenizer, PROMPTS, COMPLETIONS)
    close(batched, torch.stack([s.sum() for s in scored]), eps=1e-4)
    close(sl.sequence_logprobs(tiny, tokenizer, PROMPTS, COMPLETIONS, reduce="mean"), torch.stack([s.mean() for s in scored]), eps=1e-4)
    logits, targets, mask = sl.completion_logits(tiny, tokenizer, PROMPTS, COMPLETIONS)
    assert mask.sum(1).tolist() == [len(s) for s in scored] and logits.shape[:2] == targets.shape == mask.shape
    with pytest.raises(ValueError, match="completion 0 is empty"): sl.sequence_logprobs(tiny, tokenizer, ["Hi"], [""])
    with pytest.raises(ValueError, match="reduce must be"): sl.sequence_logprobs(tiny, tokenizer, ["Hi"], [" there"], reduce="max")


def test_positions_read_each_rows_own_prompt_end(tiny, tokenizer):
    "Steering the completion only leaves the first completion token's prediction as it was."
    vec = randomised(sl.LearnedVector(64))
    plain, _, mask = sl.completion_logits(tiny, tokenizer, PROMPTS, COMPLETIONS)
    steered, _, _ = sl.completion_logits(tiny, tokenizer, PROMPTS, COMPLETIONS, plan={SITE: vec}, positions="generated")
    first = mask.float().argmax(1)  # (n,) where each row's completion starts
    rows = torch.arange(len(PROMPTS))
    close(steered[rows, first], plain[rows, first], eps=1e-5)
    assert not torch.allclose(steered[mask], plain[mask])


def logits(model, tokenizer, plan):
    batch = sl.completion_batch(tokenizer, PROMPTS, COMPLETIONS)
    with sl.steer(model, plan), torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]).logits


def exported(module):
    "The plain plan entry that steers like `module`."
    if isinstance(module, sl.UnitAffine): return module.export()
    v = module.export(site=SITE)
    return sl.Cap(v, lo=v.meta["value"], hi=v.meta["value"]) if isinstance(module, sl.Rank1Clamp) else sl.Add(v)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])
@pytest.mark.parametrize("kind", list(MODULES))
def test_export_gives_the_modules_logits(tokenizer, arch, kind):
    model = sl.tiny_model(arch, vocab_size=len(tokenizer))
    module = randomised(MODULES[kind]())
    trained = logits(model, tokenizer, {SITE: module})
    close(logits(model, tokenizer, {SITE: exported(module)}), trained, eps=1e-4)
    assert not torch.allclose(trained, logits(model, tokenizer, {SITE: sl.Add(torch.zeros(64))}))


def test_learned_vector_multiplier_and_export():
    vec = sl.LearnedVector(4, init=torch.tensor([1.0, 2.0, 3.0, 4.0]), multiplier=-1.0)
    h = torch.zeros(1, 2, 4)
    p = Pass(None, torch.ones(1, 2, dtype=torch.bool), torch.arange(2), 2)
    close(vec(h, p), -torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(1, 2, 4))
    v = vec.export(site=SITE)
    assert v.site == SITE and v.method == "learned_vector" and v.meta == {"multiplier": -1.0}
    close(v.tensor, -torch.tensor([1.0, 2.0, 3.0, 4.0]))


def test_losses_match_hand_worked_values():
    lp = torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0])  # z = 1 − (−1) = 2
    close(sl.bipo_loss(*lp, beta=0.5), math.log(1 + math.exp(-1)))
    close(sl.bipo_loss(*lp, beta=0.5, multiplier=-1.0), math.log(1 + math.exp(1)))  # swapped preference
    close(sl.bipo_loss(*[torch.zeros(3)] * 4), math.log(2))
    with pytest.raises(ValueError, match="multiplier 0"): sl.bipo_loss(*lp, multiplier=0)
    p, q = torch.tensor([0.5, 0.5]).log(), torch.tensor([0.25, 0.75]).log()
    close(sl.kl_divergence(p, q), 0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    close(sl.kl_divergence(q, p), 0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    m = (0.375, 0.625)
    jsd = 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])) + 0.5 * (0.25 * math.log(0.25 / m[0]) + 0.75 * math.log(0.75 / m[1]))
    close(sl.js_divergence(p, q), jsd)
    close(sl.js_divergence(q, p), jsd)
    both = torch.stack([p, q])[None]  # (1, 2, vocab): two positions, the second masked out
    close(sl.js_divergence(both, torch.stack([q, q])[None], mask=torch.tensor([[True, False]])), jsd)
    x, y = torch.tensor([[0.0, 1.0], [4.0, 1.0]]), torch.tensor([[1.0, 3.0], [1.0, 1.0]])  # unit 0: −1, 3; unit 1: 0, −2
    close(sl.wasserstein_1d(x, y), torch.tensor([2.0, 1.0]))
    close(sl.wasserstein_1d(x, y, p=2), torch.tensor([5.0, 2.0]))
    close(sl.wasserstein_1d(torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [0.25], [0.75], [1.0]])), torch.tensor([0.0]))
    close(sl.wasserstein_1d(torch.tensor([[0.0], [2.0]]), torch.tensor([[0.0], [0.5], [1.5], [2.0]])), torch.tensor([0.0]))
    close(sl.wasserstein_1d(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [1.0], [1.0], [1.0]])), torch.tensor([0.75]))  # |0,.5,1.5,2 − 1|
    groups = [torch.tensor([3.0, 4.0]), (torch.tensor([0.3]), torch.tensor([0.4]))]
    sl.prox_group_lasso(groups, lam=1.0)
    close(groups[0], torch.tensor([2.4, 3.2]))
    assert groups[1][0].item() == 0 and groups[1][1].item() == 0
    t = torch.tensor([0.5, -2.0, 0.1])
    sl.prox_group_lasso([t], lam=0.0, l1=0.2)
    close(t, torch.tensor([0.3, -1.8, 0.0]))
    close(sl.interchange(torch.tensor([1.0, 2.0]), torch.tensor([5.0, 0.0]), torch.tensor([1.0, 0.0])), torch.tensor([5.0, 2.0]))
    close(sl.interchange(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 1.0]), torch.tensor([0.6, 0.8])), torch.tensor([1.72, 1.96]))  # (2·0.6)·u


def test_dii_loss_is_zero_on_itself_and_trains_only_the_direction(tiny, tokenizer):
    clamp = sl.Rank1Clamp(64)
    same = sl.dii_loss(tiny, tokenizer, SITE, clamp, PROMPTS, PROMPTS, COMPLETIONS, positions="last")
    close(same, 0.0, eps=1e-6)  # each row takes its own projection at that token: nothing moves
    moved = sl.dii_loss(tiny, tokenizer, SITE, clamp, PROMPTS[::-1], PROMPTS, COMPLETIONS)
    assert moved > 0 and clamp.source is None
    moved.backward()
    assert clamp.direction.grad.abs().sum() > 0 and all(p.grad is None for p in tiny.parameters())


def preference_loss(model, tokenizer, vec):
    "How much more likely the steered model finds each pair's second completion than its first (the vector should lower it)."
    def loss(items):
        prompts, good, bad = zip(*items)
        plan = {SITE: vec}
        return (sl.sequence_logprobs(model, tokenizer, prompts, bad, plan) - sl.sequence_logprobs(model, tokenizer, prompts, good, plan)).mean()
    return loss


def test_fit_learns_a_preference_and_records_its_curve(tiny, tokenizer):
    vec = sl.LearnedVector(64)
    loss = preference_loss(tiny, tokenizer, vec)
    before = loss(PAIRS).item()
    record = sl.fit(vec, loss, PAIRS, val=PAIRS, model=tiny, steps=10, lr=0.05, batch_size=2, eval_every=5, seed=0, progress=False)
    assert loss(PAIRS).item() < before - 0.5
    assert len(record.train) == 10 and record.val_steps == [5, 10] and not record.stopped_early
    assert all(math.isfinite(v) for v in record.train + record.val)
    table = record.table()
    assert list(table.columns) == ["step", "split", "loss"] and len(table) == 12 and set(table.split) == {"train", "val"}
    assert all(p.grad is None for p in tiny.parameters()) and all(p.requires_grad for p in tiny.parameters())
    vec2 = sl.LearnedVector(64)
    sl.fit(vec2, preference_loss(tiny, tokenizer, vec2), PAIRS, val=PAIRS, model=tiny, steps=10, lr=0.05, batch_size=2, eval_every=5, seed=0,
           progress=False)
    assert torch.equal(vec2.vector, vec.vector)  # the same seed repeats the fit


def test_fit_stops_early_keeps_the_best_and_applies_prox(tiny, tokenizer):
    vec = sl.LearnedVector(64)
    record = sl.fit(vec, preference_loss(tiny, tokenizer, vec), PAIRS, val=PAIRS, steps=50, lr=0.0, eval_every=1, patience=2, progress=False)
    assert record.stopped_early and len(record.train) == 3 and record.best_step == 1  # no check improves on the first
    affine = sl.UnitAffine(64)
    plan = {SITE: [affine, sl.Add(torch.zeros(64))]}  # plain interventions in a plan are left alone
    def shift_loss(items):
        return -sl.sequence_logprobs(tiny, tokenizer, [p for p, _, _ in items], [g for _, g, _ in items], plan).mean()
    sl.fit(plan, shift_loss, PAIRS, steps=3, lr=0.1, progress=False, prox=lambda: sl.prox_group_lasso([(affine.scale, affine.shift)], lam=1e6))
    assert (affine.scale == 0).all() and (affine.shift == 0).all()  # the group is zeroed after every step
    with pytest.raises(ValueError, match="no trainable parameters"): sl.fit({SITE: sl.Add(torch.zeros(64))}, shift_loss, PAIRS)
    bad = sl.LearnedVector(64)
    with pytest.raises(ValueError, match="the loss is nan at step 1"):
        sl.fit(bad, lambda items: bad.vector.sum() * float("nan"), PAIRS, progress=False)


def test_bipo_trains_in_bfloat16(tokenizer):
    model = sl.tiny_model("qwen2", vocab_size=len(tokenizer)).to(torch.bfloat16)
    vec = sl.LearnedVector(64)
    prompts, chosen, rejected = zip(*PAIRS)
    with torch.no_grad():
        ref = sl.sequence_logprobs(model, tokenizer, prompts, chosen), sl.sequence_logprobs(model, tokenizer, prompts, rejected)
    index = {p: i for i, p in enumerate(prompts)}
    def loss(items, multiplier=None):
        "BiPO: draw ±1, steer with it, score the batch against the unsteered reference."
        m = multiplier if multiplier is not None else float(torch.randint(0, 2, ()).item() * 2 - 1)
        vec.multiplier = m
        ps, good, bad = zip(*items)
        rows = torch.tensor([index[p] for p in ps])
        plan = {SITE: vec}
        return sl.bipo_loss(sl.sequence_logprobs(model, tokenizer, ps, good, plan), sl.sequence_logprobs(model, tokenizer, ps, bad, plan),
                            ref[0][rows], ref[1][rows], beta=1.0, multiplier=m)
    both = lambda: (loss(PAIRS, 1.0) + loss(PAIRS, -1.0)).item() / 2
    with torch.no_grad(): before = both()
    record = sl.fit(vec, loss, PAIRS, model=model, steps=12, lr=0.1, batch_size=4, seed=0, progress=False)
    with torch.no_grad(): after = both()
    assert after < before and all(math.isfinite(v) for v in record.train)
    assert vec.vector.dtype == torch.float32 and torch.isfinite(vec.vector).all()
    assert all(p.grad is None for p in model.parameters())


def test_add_renorm_keeps_each_tokens_norm(tiny):
    torch.manual_seed(0)
    h, v = torch.randn(2, 5, 64) * 3, torch.randn(64)
    p = Pass(None, torch.ones(2, 5, dtype=torch.bool), torch.arange(5), 5)
    close(sl.Add(v, 4.0, renorm=True)(h, p).norm(dim=-1), h.norm(dim=-1), eps=1e-4)
    assert torch.equal(sl.Add(v, 4.0, renorm=False)(h, p), sl.Add(v, 4.0)(h, p))
    half = h.to(torch.bfloat16)
    kept = sl.Add(v, 4.0, renorm=True)(half, p)
    assert kept.dtype == torch.bfloat16 and ((kept.float().norm(dim=-1) / half.float().norm(dim=-1) - 1).abs() < 1e-2).all()
    seen = {}
    record = lambda h: seen.update(h=h)
    from steerlab.hooks import hook_site, hooks_removed_after
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad(), hooks_removed_after(hook_site(tiny, SITE, record)): tiny(ids)
    plain = seen["h"].norm(dim=-1)
    with torch.no_grad(), sl.steer(tiny, {SITE: sl.Add(v, 4.0, renorm=True)}), hooks_removed_after(hook_site(tiny, SITE, record)): tiny(ids)
    close(seen["h"].norm(dim=-1), plain, eps=1e-4)  # the hook after the steering one sees the same norms


def test_lineas_style_fit_moves_pooled_activations_toward_a_target(tiny, tokenizer):
    sites = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    source, target_texts = ["You are a fool", "I hate this", "What a stupid idea", "Go away"], ["You are kind", "I love this", "What a fine idea", "Welcome"]
    with torch.no_grad(): target = sl.pooled_activations(tiny, tokenizer, target_texts, sites)
    maps = {s: sl.UnitAffine(64) for s in sites}
    def transport(items):
        pooled = sl.pooled_activations(tiny, tokenizer, list(items), sites, plan=maps)
        return sum(sl.wasserstein_1d(pooled[s], target[s]).sum() for s in sites)
    before = transport(source).item()
    prox = lambda: sl.prox_group_lasso([(m.scale, m.shift) for m in maps.values()], lam=1e-4, l1=1e-3)
    record = sl.fit(maps, transport, source, model=tiny, steps=15, lr=0.01, batch_size=4, prox=prox, progress=False)
    assert transport(source).item() < 0.8 * before and all(math.isfinite(v) for v in record.train)
    assert ((maps[sites[0]].scale == 0) | (maps[sites[0]].shift == 0)).any()  # the l1 step holds some units at exactly zero
    identity = logits(tiny, tokenizer, {s: m.export(strength=0.0) for s, m in maps.items()})
    close(identity, logits(tiny, tokenizer, {sites[0]: sl.Add(torch.zeros(64))}), eps=1e-5)  # strength 0: the identity
