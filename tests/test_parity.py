"Parity: steering is exactly what it claims, on tiny models of every family and on the default model."
import contextlib

import pytest
import torch

import steerlab as sl
from steerlab.models import TINY_CONFIGS
from steerlab.prompts import encode_batch
from steerlab.sites import adapter, dims, submodule

PROMPTS = ["The capital of France is", "Write a short poem about the sea and the", "Hi"]


def no_hooks(model):
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return {arch: sl.tiny_model(arch, vocab_size=len(tokenizer)) for arch in TINY_CONFIGS}


def logits(model, batch, **kw):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], **kw).logits


def cached_vs_full(model, tok, plan, positions, n_new=5):
    "Max |logit| difference between steered cached decoding and a steered full recompute."
    batch = encode_batch(tok, PROMPTS)
    P = batch["input_ids"].shape[1]
    with sl.steer(model, plan, positions=positions), torch.no_grad():
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=n_new,
                             min_new_tokens=n_new, do_sample=False, output_logits=True, return_dict_in_generate=True,
                             pad_token_id=tok.pad_token_id)
    stepwise = torch.stack(out.logits, 1)  # (batch, n_new, vocab)
    mask = torch.cat([batch["attention_mask"], torch.ones(len(PROMPTS), n_new, dtype=torch.long)], 1)
    full = dict(input_ids=out.sequences, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
    with sl.steer(model, plan, positions=positions, prompt_len=P):
        recomputed = logits(model, full)[:, P - 1:P - 1 + n_new]
    assert no_hooks(model)
    return (stepwise - recomputed).abs().max().item()


# 1. zero steering leaves logits bit-identical
@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_zero_vector_is_identity(tiny, tokenizer, arch):
    m = tiny[arch]
    batch = encode_batch(tokenizer, PROMPTS)
    base = logits(m, batch)
    plan = {f"blocks.{L}.hook_resid_post": sl.Add(torch.zeros(64), 5.0) for L in range(3)}
    plan["blocks.1.hook_attn_out"] = sl.Add(torch.randn(64), 0.0)
    with sl.steer(m, plan):
        assert torch.equal(logits(m, batch), base)


def test_zero_vector_is_identity_default(default_model):
    model, tok = default_model
    batch = encode_batch(tok, PROMPTS)
    base = logits(model, batch)
    with sl.steer(model, {"blocks.15.hook_resid_post": sl.Add(torch.zeros(576), 8.0)}):
        assert torch.equal(logits(model, batch), base)


# 2. cached decoding with steering equals recomputing the full sequence with the same steering
@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
@pytest.mark.parametrize("positions", ["all", "generated", "prompt", "tokens"])
def test_cached_decode_equals_full_recompute(tiny, tokenizer, arch, positions):
    torch.manual_seed(0)
    m = tiny[arch]
    if positions == "tokens":
        positions = sl.Positions.tokens(tokenizer(" the sea and")["input_ids"] + list(range(100, 30000)))
    plan = {"blocks.1.hook_resid_post": sl.Add(torch.randn(64), 2.0),
            "blocks.2.hook_resid_pre": sl.Ablate(torch.randn(64)),
            "blocks.0.attn.hook_z": sl.Scale({1: 0.0})}
    assert cached_vs_full(m, tokenizer, plan, positions) < 1e-4


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma2"])
def test_cached_decode_equals_full_recompute_gate_rotate_cap(tiny, tokenizer, arch):
    torch.manual_seed(1)
    m = tiny[arch]
    plan = {"blocks.1.hook_resid_post": [sl.Gate(torch.randn(64), sl.Add(torch.randn(64), 3.0), threshold=-0.05, on="prompt"),
                                         sl.Rotate(torch.randn(64), torch.randn(64), 40.0)],
            "blocks.2.hook_resid_pre": sl.Cap(torch.randn(64), lo=-0.1, hi=0.1)}
    if arch != "gpt2": plan["blocks.0.hook_resid_mid"] = sl.Gate(torch.randn(64), sl.Add(torch.randn(64), 1.0), threshold=0.0)
    assert cached_vs_full(m, tokenizer, plan, "all") < 1e-4


def test_cached_decode_equals_full_recompute_default(default_model):
    model, tok = default_model
    torch.manual_seed(0)
    plan = {"blocks.10.hook_resid_post": sl.Add(torch.randn(576), 1.0),
            "blocks.20.hook_resid_mid": sl.Rotate(torch.randn(576), torch.randn(576), 30.0)}
    assert cached_vs_full(model, tok, plan, "generated", n_new=4) < 1e-4
    assert cached_vs_full(model, tok, plan, sl.Positions.tokens(tok(" the a")["input_ids"]), n_new=4) < 1e-4


# 2b. scoring runs each prompt once and continues its options from the cache: the same as one full pass
#     per option with the prompt/completion boundary at the prompt's end, gates deciding from the prompt
SCORE_PROMPTS = ["The capital of France is", "Hi", "The capital of France is"]
OPTIONS = [" Paris", " a city far away in Europe", " not"]


def one_pass_option_logprob(model, tok, prompt, option, plan, positions):
    "Log-probability of `option` after `prompt` from one unpadded forward pass under `plan`."
    p_ids, o_ids = tok(prompt)["input_ids"], tok(option, add_special_tokens=False)["input_ids"]
    with sl.steer(model, plan, positions=positions, prompt_len=len(p_ids)), torch.no_grad():
        logprobs = model(torch.tensor([p_ids + o_ids])).logits[0, len(p_ids) - 1:-1].log_softmax(-1)
    return logprobs.gather(-1, torch.tensor(o_ids)[:, None]).sum()


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
@pytest.mark.parametrize("positions", ["all", "generated", "last"])
def test_cached_option_scoring_equals_one_pass(tiny, tokenizer, arch, positions):
    torch.manual_seed(2)
    m = tiny[arch]
    plan = {"blocks.1.hook_resid_post": [sl.Gate(torch.randn(64), sl.Add(torch.randn(64), 3.0), threshold=-0.05, on="prompt"),
                                         sl.Rotate(torch.randn(64), torch.randn(64), 40.0)],
            "blocks.0.attn.hook_z": sl.Scale({1: 0.0})}
    expected = torch.tensor([[one_pass_option_logprob(m, tokenizer, p, o, plan, positions) for o in OPTIONS] for p in SCORE_PROMPTS])
    for batch_size in (4, 16):  # the two distinct prompts in separate chunks, and together (3 and 6 rows)
        with sl.steer(m, plan, positions=positions):
            got = sl.option_logprobs(m, tokenizer, SCORE_PROMPTS, [OPTIONS, OPTIONS[::-1], OPTIONS], batch_size=batch_size)
        got[1] = got[1].flip(0)  # the second prompt listed its options in reverse
        assert (got - expected).abs().max().item() < 1e-4
    assert no_hooks(m)


def test_prompt_runs_once_per_distinct_prompt(tokenizer):
    m = sl.tiny_model("llama", vocab_size=len(tokenizer))
    seen = []
    handle = m.register_forward_pre_hook(lambda mod, args, kw: seen.append(kw["input_ids"].shape), with_kwargs=True)
    try: sl.option_logprobs(m, tokenizer, SCORE_PROMPTS, OPTIONS)
    finally: handle.remove()
    n_prompt = len(tokenizer(SCORE_PROMPTS[0])["input_ids"])
    assert seen[0] == (2, n_prompt) and seen[1][0] == 9 and len(seen) == 2  # 2 distinct prompts, then 9 continuations


def test_tracker_refuses_an_undeclared_change_of_rows(tiny, tokenizer):
    m = tiny["llama"]
    plan = {"blocks.1.hook_resid_post": sl.Gate(torch.randn(64), sl.Add(torch.randn(64), 3.0), on="prompt")}
    ids = torch.tensor(tokenizer(["The capital of France is"])["input_ids"])
    with sl.steer(m, plan), torch.no_grad():
        cache = m(input_ids=ids, use_cache=True).cache
        cache.reorder_cache(torch.tensor([0, 0]))
        with pytest.raises(ValueError, match="continuing"):
            m(input_ids=torch.tensor([[5], [6]]), cache=cache, use_cache=True)
    assert no_hooks(m)


# 3. left padding in a batch gives the same per-example results as running alone
def test_padding_safe_capture_and_steering(default_model):
    model, tok = default_model
    sites = ["blocks.3.hook_resid_post", "blocks.12.attn.hook_z", "blocks.20.mlp.hook_post"]
    together = sl.capture(model, tok, PROMPTS, sites, positions="mean")
    for i, p in enumerate(PROMPTS):
        alone = sl.capture(model, tok, [p], sites, positions="mean")
        for s in sites:
            torch.testing.assert_close(together[s][i], alone[s][0], atol=1e-4, rtol=1e-4)
    plan = {"blocks.8.hook_resid_post": sl.Add(torch.randn(576), 2.0)}
    batch = encode_batch(tok, PROMPTS)
    with sl.steer(model, plan):
        last = logits(model, batch)[:, -1]
        for i, p in enumerate(PROMPTS):
            torch.testing.assert_close(logits(model, encode_batch(tok, [p]))[0, -1], last[i], atol=1e-4, rtol=1e-4)


def test_padding_safe_absolute_positions(tiny, tokenizer):
    "GPT-2 has learned absolute positions: left padding must not shift them."
    m = tiny["gpt2"]
    together = sl.capture(m, tokenizer, PROMPTS, "blocks.2.hook_resid_post", positions="last")["blocks.2.hook_resid_post"]
    alone = sl.capture(m, tokenizer, PROMPTS[2:], "blocks.2.hook_resid_post", positions="last")["blocks.2.hook_resid_post"]
    torch.testing.assert_close(together[2], alone[0], atol=1e-5, rtol=1e-5)


def test_per_row_coefficients(default_model):
    model, tok = default_model
    v = torch.randn(576)
    batch = encode_batch(tok, PROMPTS[:2])
    with sl.steer(model, {"blocks.5.hook_resid_post": sl.Add(v, torch.tensor([0.0, 3.0]))}):
        mixed = logits(model, batch)
    with sl.steer(model, {"blocks.5.hook_resid_post": sl.Add(v, 3.0)}):
        steered = logits(model, batch)
    torch.testing.assert_close(mixed[0], logits(model, batch)[0])
    torch.testing.assert_close(mixed[1], steered[1])


def test_row_positions_steer_only_their_rows(tiny, tokenizer):
    "Positions.rows: rows under a plan and rows without it share one batch, each as if run alone."
    m = tiny["qwen2"]
    plan = {"blocks.1.attn.hook_z": sl.HeadRank1(2, torch.randn(64), torch.randn(16), -2.0),
            "blocks.0.hook_resid_post": sl.Add(torch.randn(64), 4.0)}
    batch = encode_batch(tokenizer, PROMPTS)
    with sl.steer(m, plan):
        steered = logits(m, batch)
    with sl.steer(m, plan, positions=sl.Positions.rows([True, False, True])):
        mixed = logits(m, batch)
    plain, real = logits(m, batch), batch["attention_mask"].bool()
    assert torch.equal(mixed[1][real[1]], plain[1][real[1]]) and not torch.allclose(mixed[0][real[0]], plain[0][real[0]])
    torch.testing.assert_close(mixed[0][real[0]], steered[0][real[0]])
    with pytest.raises(ValueError, match="row mask"), sl.steer(m, plan, positions=sl.Positions.rows([True, False])):
        logits(m, batch)
    assert no_hooks(m)


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_conditions_sharing_a_batch_generate_as_alone(tiny, tokenizer, arch):
    m = tiny[arch]
    g = torch.Generator().manual_seed(4)
    plans = {"add": {"blocks.0.hook_resid_post": sl.Add(torch.randn(64, generator=g), 6.0)},
             "head": {"blocks.1.attn.hook_z": sl.HeadRank1(1, torch.randn(64, generator=g), torch.randn(16, generator=g), 8.0)}}
    prompts = {"plain": PROMPTS[:2], "add": PROMPTS[1:], "head": PROMPTS[:1]}
    conditions = {name: (ps, None if name == "plain" else lambda rows, plan=plans[name]: sl.steer(m, plan, positions=rows))
                  for name, ps in prompts.items()}
    mixed = sl.generate_conditions(m, tokenizer, conditions, batch_size=3, max_new_tokens=6)  # batches of 3 rows cut across conditions
    for name, ps in prompts.items():
        with (sl.steer(m, plans[name]) if name in plans else contextlib.nullcontext()):
            assert mixed[name] == sl.generate(m, tokenizer, ps, max_new_tokens=6), name
    assert no_hooks(m)


# 3b. activations read while generating equal a teacher-forced pass over the generated tokens
def teacher_forced_means(model, tok, prompt, new_ids, sites, plan, row):
    "Per site, the mean activation over the positions predicting `new_ids`, from one unpadded pass steered at the new tokens."
    p_ids = tok(prompt)["input_ids"]
    plan = {site: sl.Add(iv.v, iv.coeff[row]) for site, iv in plan.items()}  # this row's coefficient
    seen = {}
    handles = [h for s in sites for h in sl.hooks.hook_site(model, s, lambda x, s=s: seen.__setitem__(s, x[0]))]
    with sl.steer(model, plan, positions="generated", prompt_len=len(p_ids)), sl.hooks.hooks_removed_after(handles), torch.no_grad():
        model(torch.tensor([p_ids + new_ids]))
    return {s: seen[s][len(p_ids) - 1:len(p_ids) - 1 + len(new_ids)].mean(0) for s in sites}


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_generate_capture_equals_teacher_forced(tiny, tokenizer, arch):
    m = tiny[arch]
    sites = [s for s in ("blocks.1.hook_resid_mid", "blocks.1.hook_resid_post", "blocks.0.attn.hook_z", "blocks.1.mlp.hook_post",
                         "blocks.1.ln2.hook_normalized", "blocks.0.hook_attn_out_pre_norm", "ln_final.hook_normalized")
             if s in sl.sites(m)]
    plan = {"blocks.0.hook_resid_post": sl.Add(torch.randn(64, generator=torch.Generator().manual_seed(3)), torch.tensor([2.0, -9.0, 0.0]))}
    prompts = sl.prompts.format_prompts(tokenizer, PROMPTS)
    batch = encode_batch(tokenizer, prompts)
    with sl.steer(m, plan, positions="generated"), torch.no_grad():
        first = m.generate(**{k: batch[k] for k in ("input_ids", "attention_mask")}, max_new_tokens=6, do_sample=False,
                           pad_token_id=tokenizer.pad_token_id)[:, batch["input_ids"].shape[1]:]
    stop = int(first[0, 2])  # row 0 ends by its third token, while a row without that token runs on
    assert any(stop not in row for row in first.tolist())
    with sl.steer(m, plan, positions="generated"):
        texts, acts = sl.generate(m, tokenizer, PROMPTS, max_new_tokens=6, capture=sites, eos_token_id=stop)
    for i, prompt in enumerate(prompts):
        ids = first[i].tolist()
        ids = ids[:ids.index(stop)] if stop in ids else ids
        expected = teacher_forced_means(m, tokenizer, prompt, ids, sites, plan, i)
        for s in sites:
            torch.testing.assert_close(acts[s][i], expected[s], atol=1e-4, rtol=1e-4)
    assert len(texts) == 3 and no_hooks(m)


# 3c. norm sites (ln1, ln2, ln_final) and the writers' pre-norm outputs behave like every other site
NORM_SITES = ["blocks.0.ln1.hook_normalized", "blocks.1.ln2.hook_normalized", "ln_final.hook_normalized"]
PRE_NORM_SITES = ["blocks.1.hook_attn_out_pre_norm", "blocks.2.hook_mlp_out_pre_norm"]


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_zero_steering_at_norm_sites_is_identity(tiny, tokenizer, arch):
    m = tiny[arch]
    batch = encode_batch(tokenizer, PROMPTS)
    base = logits(m, batch)
    with sl.steer(m, {s: sl.Add(torch.zeros(64), 5.0) for s in NORM_SITES + PRE_NORM_SITES}):
        assert torch.equal(logits(m, batch), base)
    with sl.steer(m, {s: sl.Add(torch.randn(64), 1.0) for s in NORM_SITES}):
        assert not torch.allclose(logits(m, batch), base)


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
@pytest.mark.parametrize("positions", ["all", "generated"])
def test_cached_decode_equals_full_recompute_at_norm_sites(tiny, tokenizer, arch, positions):
    torch.manual_seed(5)
    plan = {"blocks.0.ln1.hook_normalized": sl.Rotate(torch.randn(64), torch.randn(64), 60.0),
            "blocks.1.ln2.hook_normalized": sl.Add(torch.randn(64), 2.0),
            "blocks.1.hook_attn_out_pre_norm": sl.Add(torch.randn(64), 1.0),
            "blocks.2.hook_mlp_out_pre_norm": sl.Ablate(torch.randn(64)),
            "ln_final.hook_normalized": sl.Cap(torch.randn(64), lo=-0.5, hi=0.5)}
    assert cached_vs_full(tiny[arch], tokenizer, plan, positions) < 1e-4


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_final_norm_is_what_the_unembedding_reads(tiny, tokenizer, arch):
    m = tiny[arch]
    site = "ln_final.hook_normalized"
    h = sl.capture(m, tokenizer, PROMPTS, site, positions="last", chat=False)[site]  # (3, 64)
    with torch.no_grad():
        out = m.get_output_embeddings()(h)
    cap = getattr(m.config, "final_logit_softcapping", None)
    if cap: out = torch.tanh(out / cap) * cap
    torch.testing.assert_close(out, logits(m, encode_batch(tokenizer, PROMPTS))[:, -1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_padding_safe_capture_at_norm_sites(tiny, tokenizer, arch):
    m = tiny[arch]
    sites = NORM_SITES + PRE_NORM_SITES
    together = sl.capture(m, tokenizer, PROMPTS, sites, positions="mean", chat=False)
    for i, p in enumerate(PROMPTS):
        alone = sl.capture(m, tokenizer, [p], sites, positions="mean", chat=False)
        for s in sites:
            torch.testing.assert_close(together[s][i], alone[s][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_pre_norm_sites_are_the_writers_outputs(tiny, tokenizer, arch):
    "hook_*_out_pre_norm is what o_proj / down_proj write; the post-norm (gemma2/3) makes hook_*_out from it."
    m = tiny[arch]
    seen = {}
    record = lambda name: lambda module, args, out: seen.__setitem__(name, out)
    handles = [submodule(m, 1, "o_proj").register_forward_hook(record("o_proj")),
               submodule(m, 2, "down_proj").register_forward_hook(record("down_proj"))]
    handles += [h for s in PRE_NORM_SITES + ["blocks.1.hook_attn_out", "blocks.2.hook_mlp_out"]
                for h in sl.hooks.hook_site(m, s, lambda x, s=s: seen.__setitem__(s, x))]
    with sl.hooks.hooks_removed_after(handles), torch.no_grad():
        logits(m, encode_batch(tokenizer, PROMPTS))
        assert torch.equal(seen["blocks.1.hook_attn_out_pre_norm"], seen["o_proj"])
        assert torch.equal(seen["blocks.2.hook_mlp_out_pre_norm"], seen["down_proj"])
        if adapter(m).sandwich_norm:
            torch.testing.assert_close(submodule(m, 1, "attn_write")(seen["o_proj"]), seen["blocks.1.hook_attn_out"])
            torch.testing.assert_close(submodule(m, 2, "mlp_write")(seen["down_proj"]), seen["blocks.2.hook_mlp_out"])
            assert not torch.allclose(seen["o_proj"], seen["blocks.1.hook_attn_out"])
        else:
            assert torch.equal(seen["o_proj"], seen["blocks.1.hook_attn_out"])
            assert torch.equal(seen["down_proj"], seen["blocks.2.hook_mlp_out"])
    assert no_hooks(m)


# 4. weight edits equal their activation forms
def _real(batch, x):
    return x[batch["attention_mask"].bool()]


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_edits_equal_activation_forms(tiny, tokenizer, arch, tmp_path):
    torch.manual_seed(2)
    m = tiny[arch]
    batch = encode_batch(tokenizer, PROMPTS)
    base = logits(m, batch)
    d = dims(m)
    u, k = torch.randn(d["d_model"]), torch.randn(d["d_head"])
    with sl.steer(m, {"blocks.1.attn.hook_z": sl.HeadRank1(2, u, k, 0.7)}):
        hooked = logits(m, batch)
    with sl.edit_head(m, 1, 2, u, k, 0.7):
        torch.testing.assert_close(_real(batch, logits(m, batch)), _real(batch, hooked), atol=1e-4, rtol=1e-4)
    with sl.steer(m, {"blocks.2.mlp.hook_post": sl.NeuronRank1(5, u, 1.5)}):
        hooked = logits(m, batch)
    with sl.edit_neuron(m, 2, 5, u, 1.5):
        torch.testing.assert_close(_real(batch, logits(m, batch)), _real(batch, hooked), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits(m, batch), base, atol=0, rtol=0)  # undone exactly

    if adapter(m).sandwich_norm:
        with pytest.raises(NotImplementedError):
            sl.orthogonalize(m, u)
    else:
        with sl.steer(m, sl.ablate_everywhere(m, u)):
            hooked = logits(m, batch)
        with sl.orthogonalize(m, u):
            torch.testing.assert_close(_real(batch, logits(m, batch)), _real(batch, hooked), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(logits(m, batch), base, atol=0, rtol=0)

    foldable = arch in ("llama", "gpt2", "gpt_neox")
    for site in ["blocks.1.hook_resid_post", "blocks.2.hook_attn_out", "blocks.2.hook_resid_pre"]:
        if not foldable:
            with pytest.raises(NotImplementedError):
                sl.fold(m, site, u, 0.5)
            continue
        with sl.steer(m, {site: sl.Add(u, 0.5)}):
            hooked = logits(m, batch)
        with sl.fold(m, site, u, 0.5):
            torch.testing.assert_close(_real(batch, logits(m, batch)), _real(batch, hooked), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits(m, batch), base, atol=0, rtol=0)


def test_edited_checkpoint_loads_without_steerlab(tiny, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM
    m = tiny["llama"]
    batch = encode_batch(tokenizer, PROMPTS)
    u = torch.randn(64)
    with sl.fold(m, "blocks.1.hook_resid_post", u, 0.5), sl.orthogonalize(m, torch.randn(64)), sl.edit_head(m, 0, 1, u, torch.randn(16), 0.3):
        edited = logits(m, batch)
        sl.save_edited(m, tmp_path / "edited")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "edited").eval()
    torch.testing.assert_close(_real(batch, logits(reloaded, batch)), _real(batch, edited), atol=1e-5, rtol=1e-5)


def test_thinkedit_head_projection_removal(default_model):
    "edit_head with k = W_hᵀu/‖W_hᵀu‖ and lam = -‖W_hᵀu‖ leaves the head unable to write along u."
    model, tok = default_model
    u = torch.nn.functional.normalize(torch.randn(576), dim=0)
    k, gain = sl.head_write_direction(model, 14, 3, u)
    with sl.edit_head(model, 14, 3, u, k, -gain):
        W = model.model.layers[14].self_attn.o_proj.weight[:, 3 * 64:4 * 64]
        assert (u @ W).abs().max() < 1e-5


# 5. Rotate preserves every steered activation's norm
@pytest.mark.parametrize("mode", ["by", "to"])
def test_rotate_preserves_norm(default_model, mode):
    model, tok = default_model
    site = "blocks.12.hook_resid_post"
    before = sl.capture(model, tok, PROMPTS, site, positions="all")[site]
    with sl.steer(model, {site: sl.Rotate(torch.randn(576), torch.randn(576), 75.0, mode=mode)}):
        after = sl.capture(model, tok, PROMPTS, site, positions="all")[site]
    for b, a in zip(before, after):
        rel = ((a.norm(dim=-1) - b.norm(dim=-1)).abs() / b.norm(dim=-1)).max()
        assert rel < 1e-5 and (a - b).abs().max() > 1e-2


# 6. hooks are gone after the context exits, also after an exception inside it
def test_hooks_removed_on_exit_and_exception(tiny, tokenizer):
    m = tiny["llama"]
    with sl.steer(m, {"blocks.0.hook_resid_mid": sl.Add(torch.randn(64)), "blocks.1.attn.hook_z": sl.HeadRank1(0, torch.randn(64), torch.randn(16))}):
        assert not no_hooks(m)
    assert no_hooks(m)
    with pytest.raises(RuntimeError):
        with sl.steer(m, {"blocks.1.hook_resid_post": sl.Cap(torch.randn(64), hi=0.0)}):
            raise RuntimeError("inside")
    assert no_hooks(m)
    with pytest.raises(ValueError):  # a failing hook mid-forward (wrong number of row coefficients)
        with sl.steer(m, {"blocks.1.hook_resid_post": sl.Add(torch.randn(64), torch.ones(5))}):
            m(torch.tensor([[1, 2, 3]]))
    assert no_hooks(m)


def stepwise_vs_full(model, tok, plan, positions, texts, n_steps):
    "Max |logit| difference at real tokens: the last `n_steps` tokens of `texts` fed one by one from a cache vs one full pass, both steered."
    batch = encode_batch(tok, texts)
    ids, mask, pos = batch["input_ids"], batch["attention_mask"], batch["position_ids"]
    P = ids.shape[1] - n_steps
    with sl.steer(model, plan, positions=positions), torch.no_grad():
        out = model(input_ids=ids[:, :P], attention_mask=mask[:, :P], position_ids=pos[:, :P], use_cache=True)
        steps, cache = [out.logits[:, -1]], out.cache
        for t in range(P, ids.shape[1] - 1):
            out = model(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1], position_ids=pos[:, t:t + 1], cache=cache, use_cache=True)
            steps.append(out.logits[:, -1])
    with sl.steer(model, plan, positions=positions, prompt_len=P):
        full = logits(model, batch)[:, P - 1:-1]
    assert no_hooks(model)
    return (torch.stack(steps, 1) - full)[mask[:, P - 1:-1].bool()].abs().max().item()  # a pad position predicts nothing


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])
def test_rules_with_memory_decode_as_they_recompute(tiny, tokenizer, arch):
    "Delimiter and until rules remember each row's past across cached passes: token by token they act where a full pass does."
    torch.manual_seed(2)
    texts = ["Add 2 and 3.\n\nThat is 5.\n\nWait, check it.\n\nDone", "Hi.\n\nWait.\n\nOk\n\nend", "So x is 4.\n\nThen y is 2.\n\nWait"]
    rule = sl.Delimiter(tokenizer, "\n\n").positions() & "generated" & sl.Positions.until(tokenizer("Wait", add_special_tokens=False)["input_ids"])
    plan = {"blocks.1.hook_resid_pre": sl.Add(torch.randn(64), 3.0)}
    assert stepwise_vs_full(tiny[arch], tokenizer, plan, rule, texts, n_steps=16) < 1e-4  # row 0's prompt ends inside its first "\n\n"
    batch = encode_batch(tokenizer, texts)
    full = sl.hooks.Pass(batch["input_ids"], batch["attention_mask"].bool(), torch.arange(batch["input_ids"].shape[1]), 8)
    assert rule(full).sum(1).tolist() == [2, 1, 2]  # the "\n\n" steps after the prompt and before "Wait"
