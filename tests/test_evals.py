"""Scores: token NLL / perplexity and option probabilities (padding-safe, hook-aware) on a tiny random Llama; refusal keywords."""
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import steerlab as sl
from steerlab.evals import (REFUSAL_SUBSTRINGS, auroc, continuation_logprobs, is_refusal, next_token_logprobs, option_logprobs,
                            option_probs, perplexity, refusal_score, token_nll)

WORDS = "<pad> <eos> <unk> <bos> the cat dog sat on a mat ran far away I sorry cannot help sure here is yes no".split()
TEXTS = ["the cat sat on a mat", "a dog ran", "the dog sat on the cat far far away", "I cannot help", "sure here is a cat"]


def word_tokenizer(bos: bool = False):
    "A word-level tokenizer over WORDS, left padding; optionally one that prepends <bos> like Llama's."
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        from tokenizers.processors import TemplateProcessing
        backend.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", WORDS.index("<bos>"))])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   bos_token="<bos>" if bos else None, padding_side="left")


def tiny_llama(attn="sdpa", seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(WORDS), attn_implementation=attn)
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(attn="sdpa", seed=0):
    "Learned absolute positions: unlike RoPE, wrong position ids under left padding change its outputs."
    torch.manual_seed(seed)
    config = GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=64, vocab_size=len(WORDS),
                        bos_token_id=1, eos_token_id=1, attn_implementation=attn)
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def lm():
    return tiny_llama(), word_tokenizer()


def reference_nll(model, ids):
    "NLL of ids[1:] from one unpadded forward pass."
    logits = model(torch.tensor([ids])).logits[0, :-1]
    return -logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0].detach()


def boost(model, token_ids, amount):
    "A hook on the unembedding that raises the logits of token_ids (as any active steering hook would act)."
    def hook(module, args, logits):
        logits[..., token_ids] += amount
        return logits
    return model.lm_head.register_forward_hook(hook)


# --- token NLL / perplexity ------------------------------------------------------------

def test_token_nll_matches_a_direct_forward(lm):
    model, tok = lm
    nll = token_nll(model, tok, TEXTS)
    for text, got in zip(TEXTS, nll):
        ids = tok(text)["input_ids"]
        assert got.shape == (len(ids) - 1,)
        assert torch.allclose(got, reference_nll(model, ids), atol=1e-5)


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_gpt2])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_with_left_padding_equals_one_by_one(make_model, attn):
    model, tok = make_model(attn), word_tokenizer()
    for batch_size in (2, 5):
        batched = token_nll(model, tok, TEXTS, batch_size=batch_size)
        alone = [token_nll(model, tok, [t])[0] for t in TEXTS]
        assert max((b - a).abs().max().item() for b, a in zip(batched, alone)) < 1e-4
    prompts = ["the cat", "a", "sure here is a cat and", "I", "the"]
    batched = option_logprobs(model, tok, prompts, [["sat on", "ran far away"]] * 5, batch_size=10)
    alone = torch.cat([option_logprobs(model, tok, [p], ["sat on", "ran far away"]) for p in prompts])
    assert (batched - alone).abs().max().item() < 1e-4


def test_nll_given_prompt_is_the_tail_of_the_joined_text(lm):
    model, tok = lm
    joined = token_nll(model, tok, ["the cat sat on a mat", "a dog ran far"])
    given = token_nll(model, tok, ["on a mat", "ran far"], prompts=["the cat sat", "a dog"])
    assert [len(g) for g in given] == [3, 2]
    assert torch.allclose(given[0], joined[0][-3:], atol=1e-5) and torch.allclose(given[1], joined[1][-2:], atol=1e-5)


def test_perplexity_is_exp_mean_nll(lm):
    model, tok = lm
    nll = token_nll(model, tok, TEXTS[:2])
    assert perplexity(model, tok, TEXTS[:2]) == pytest.approx([n.double().mean().exp().item() for n in nll], rel=1e-6)
    assert perplexity(model, tok, ["a mat"], prompts=["the cat sat on"])[0] == pytest.approx(
        token_nll(model, tok, ["a mat"], prompts=["the cat sat on"])[0].double().mean().exp().item(), rel=1e-6)


def test_nll_drops_when_logits_are_pushed_toward_the_text(lm):
    model, tok = lm
    text = "the cat sat on a mat"
    before = token_nll(model, tok, [text])[0]
    handle = boost(model, tok(text)["input_ids"], 4.0)
    try:
        after = token_nll(model, tok, [text])[0]
    finally:
        handle.remove()
    assert (after < before - 1.0).all()
    assert torch.equal(token_nll(model, tok, [text])[0], before)  # hook gone, score back


def test_bos_is_added_once(lm):
    model, _ = lm
    tok = word_tokenizer(bos=True)
    nll = token_nll(model, tok, ["the cat sat"])[0]
    assert nll.shape == (3,)  # every word is scored after <bos>
    # a prompt that already starts with <bos> (chat-formatted) gets no second one
    assert torch.allclose(token_nll(model, tok, ["sat"], prompts=["<bos> the cat"])[0],
                          token_nll(model, tok, ["sat"], prompts=["the cat"])[0])


def test_bad_inputs_raise_clear_errors(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="empty"):
        token_nll(model, tok, [])
    with pytest.raises(TypeError, match="not one string"):
        token_nll(model, tok, "the cat sat")
    with pytest.raises(ValueError, match="2 prompts but 1 texts"):
        token_nll(model, tok, ["cat"], prompts=["the", "a"])
    with pytest.raises(ValueError, match="text 1 has fewer than 2 tokens"):
        token_nll(model, tok, ["the cat", "cat"])
    with pytest.raises(ValueError, match="completion 0 is empty"):
        token_nll(model, tok, [""], prompts=["the cat"])
    with pytest.raises(ValueError, match="prompt 0 tokenizes to nothing"):
        token_nll(model, tok, ["cat"], prompts=[""])
    assert token_nll(model, word_tokenizer(bos=True), ["cat"], prompts=[""])[0].shape == (1,)  # scored after <bos> alone
    with pytest.raises(ValueError, match="same number of options"):
        option_logprobs(model, tok, ["the", "a"], [["cat", "dog"], ["cat"]])
    with pytest.raises(ValueError, match="option lists"):
        option_logprobs(model, tok, ["the", "a"], [["cat", "dog"]])
    with pytest.raises(TypeError):
        option_logprobs(model, tok, ["the"], "cat")


# --- options ---------------------------------------------------------------------------

def test_option_scores_shapes_and_consistency(lm):
    model, tok = lm
    prompts = ["the cat sat on", "a dog ran", "I"]
    shared = option_logprobs(model, tok, prompts, ["a mat", "far away", "yes"])
    per_prompt = option_logprobs(model, tok, prompts, [["a mat", "far away", "yes"]] * 3, batch_size=2)
    assert shared.shape == (3, 3) and torch.allclose(shared, per_prompt, atol=1e-5)
    assert shared[1, 1] == pytest.approx(-token_nll(model, tok, ["far away"], prompts=["a dog ran"])[0].sum().item(), abs=1e-5)
    probs = option_probs(model, tok, prompts, [["yes", "no"], ["no", "yes"], ["cannot help", "sure"]])
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(-1), torch.ones(3)) and (probs > 0).all()
    swapped = option_probs(model, tok, prompts, [["no", "yes"], ["yes", "no"], ["sure", "cannot help"]])
    assert torch.allclose(swapped, probs.flip(-1), atol=1e-6)


def test_option_probability_follows_the_logits(lm):
    model, tok = lm
    prompts = ["the cat sat on", "a dog ran", "I"]
    before = option_probs(model, tok, prompts, ["yes", "no"])[:, 0]
    handle = boost(model, [WORDS.index("yes")], 3.0)
    try:
        after = option_probs(model, tok, prompts, ["yes", "no"])[:, 0]
    finally:
        handle.remove()
    assert (after > before).all()
    # with only the option's own logit moved by +3, its odds against "no" grow by exactly e^3
    odds = lambda p: p / (1 - p)
    assert torch.allclose(odds(after) / odds(before), torch.full((3,), torch.e ** 3), rtol=1e-4)


def test_scores_see_steering_hooks(lm):
    steering = pytest.importorskip("steerlab.steering")
    model, tok = lm
    plain = token_nll(model, tok, TEXTS, batch_size=2)
    with steering.steer(model, {"blocks.0.hook_resid_post": steering.Add(torch.zeros(64), 1.0)}):
        zero = token_nll(model, tok, TEXTS, batch_size=2)
    assert all(torch.equal(a, b) for a, b in zip(plain, zero))
    direction = torch.randn(64, generator=torch.Generator().manual_seed(0))
    with steering.steer(model, {"blocks.0.hook_resid_post": steering.Add(direction, 4.0)}):
        steered = token_nll(model, tok, TEXTS, batch_size=2)
        steered_alone = [token_nll(model, tok, [t])[0] for t in TEXTS]
    assert max((a - b).abs().max().item() for a, b in zip(plain, steered)) > 1e-2
    assert max((a - b).abs().max().item() for a, b in zip(steered, steered_alone)) < 1e-4


# --- refusals --------------------------------------------------------------------------

REFUSALS = ["I'm sorry, but I can't help with that.", "I cannot provide instructions for making a weapon.",
            "As an AI language model, I must decline.", "I\u2019m unable to assist with this request.",
            "I apologize, but that request is harmful.", "i am not able to do that"]
COMPLIANCES = ["Sure, here is a recipe for pancakes: mix flour, eggs and milk.", "The capital of France is Paris.",
               "Step 1: preheat the oven to 200 degrees.", "Here's a short poem about the sea."]


def test_refusal_detector_on_known_texts():
    assert refusal_score(REFUSALS) == [True] * len(REFUSALS)
    assert refusal_score(COMPLIANCES) == [False] * len(COMPLIANCES)
    assert is_refusal("Well... I CANNOT do this.") and not is_refusal("I can help with that.")
    assert is_refusal("Nope.", substrings=["nope"]) and not is_refusal("Nope.")
    assert "I'm sorry" in REFUSAL_SUBSTRINGS and "As an AI" in REFUSAL_SUBSTRINGS


# --- the public scorer -----------------------------------------------------------------

@pytest.mark.parametrize("make_model", [tiny_llama, tiny_gpt2])
def test_next_token_logprobs_are_the_last_position_of_a_lone_forward(make_model):
    model, tok = make_model(), word_tokenizer()
    prompts = ["the cat sat on a mat", "a dog", "I cannot help", "a dog"]
    got = next_token_logprobs(model, tok, prompts, batch_size=3)
    assert got.shape == (4, len(WORDS)) and torch.equal(got[1], got[3])
    for prompt, row in zip(prompts, got):
        alone = model(torch.tensor([tok(prompt)["input_ids"]])).logits[0, -1].log_softmax(-1).detach()
        torch.testing.assert_close(row, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make_model", [tiny_llama, tiny_gpt2])
@pytest.mark.parametrize("positions", ["all", "last", "generated"])
def test_each_row_scores_as_if_its_plan_alone_were_steering(make_model, positions):
    model, tok = make_model(), word_tokenizer()
    g = torch.Generator().manual_seed(1)
    up = {"blocks.0.hook_resid_post": sl.Add(torch.randn(64, generator=g), 3.0)}
    down = {"blocks.1.hook_resid_post": sl.Add(torch.randn(64, generator=g), -2.0),
            "blocks.0.hook_resid_post": sl.Add(torch.randn(64, generator=g), 1.0)}
    prompts = ["the cat sat on", "the cat sat on", "a dog ran", "the cat sat on", "I cannot"]  # one prompt under three plans
    conts = ["a mat", "a mat far", "far away", "the dog", "help"]
    plans = [up, down, up, None, down]
    got = continuation_logprobs(model, tok, prompts, conts, plans=plans, positions=positions, batch_size=3)
    for prompt, cont, plan, scores in zip(prompts, conts, plans, got):
        if plan is None: alone = continuation_logprobs(model, tok, [prompt], [cont])[0]
        else:
            with sl.steer(model, plan, positions=positions): alone = continuation_logprobs(model, tok, [prompt], [cont])[0]
        assert scores.shape == (len(cont.split()),)
        torch.testing.assert_close(scores, alone, atol=1e-5, rtol=1e-5)
    plain = continuation_logprobs(model, tok, prompts, conts)
    assert not torch.allclose(got[0], plain[0]) and torch.equal(got[3], plain[3])


def test_continuation_logprobs_refuses_mismatched_inputs(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        continuation_logprobs(model, tok, ["a dog", "the cat"], ["ran"])
    with pytest.raises(ValueError, match="1 prompts but 2 plans"):
        continuation_logprobs(model, tok, ["a dog"], ["ran"], plans=[None, None])


def test_auroc_counts_pairs_with_ties_as_half():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randint(0, 6, (40,), generator=g), torch.randint(0, 5, (25,), generator=g)
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos.tolist() for n in neg.tolist())
    assert auroc(pos, neg) == pytest.approx(pairs / (40 * 25))
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and auroc([0.0], [1.0]) == 0.0 and auroc([1.0, 1.0], [1.0]) == 0.5
    with pytest.raises(ValueError, match="0 negative"):
        auroc([1.0], [])


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2", "gpt2"])
def test_branches_equal_the_full_pass_and_a_steered_recompute(tokenizer, arch):
    "branch_logprobs: unsteered branches read what the full pass reads; a plan at the branch point equals steering that token in a recompute."
    model = sl.tiny_model(arch, vocab_size=len(tokenizer))
    prompts, completions = ["The cat sat", "Hi"], [" on the mat and then it slept.", " there, how are you today?"]
    plain = continuation_logprobs(model, tokenizer, prompts, completions)
    push = {"blocks.1.hook_resid_pre": sl.Add(torch.randn(64), 3.0)}
    got = sl.branch_logprobs(model, tokenizer, prompts, completions, [(0, 2, None), (1, 4, None), (1, 4, push), (0, 0, None)],
                             n_tokens=2, positions="last", batch_size=3)
    torch.testing.assert_close(got[0], plain[0][3:5], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[1], plain[1][5:7], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got[3], plain[0][1:3], atol=1e-4, rtol=1e-4)
    n_prompt = len(tokenizer(prompts[1], add_special_tokens=False)["input_ids"])
    with sl.steer(model, push, positions=sl.Positions.span(n_prompt + 4, n_prompt + 5)):
        recomputed = continuation_logprobs(model, tokenizer, prompts[1:], completions[1:])[0][5:7]
    torch.testing.assert_close(got[2], recomputed, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got[2], got[1])
