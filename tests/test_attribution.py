"Gradient attribution: integrated gradients are complete (to an error that shrinks with steps), gradient × input and token ablation match hand computations, the model gets no gradients."
import pytest
import torch
from fastcore.test import test_close as close

import steerlab as sl

PROMPTS = ["The capital of France is", "Hi"]
COMPLETIONS = [" Paris", " there, friend"]


def completeness_error(a) -> float:
    return (a.scores.sum(1) - (a.f_input - a.f_baseline)).abs().max().item()


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_integrated_gradients_are_complete(tokenizer, arch):
    model = sl.tiny_model(arch, vocab_size=len(tokenizer))
    errors = [completeness_error(sl.integrated_gradients(model, tokenizer, PROMPTS, completions=COMPLETIONS, baseline="pad", steps=s))
              for s in (2, 8, 32)]
    fine = sl.integrated_gradients(model, tokenizer, PROMPTS, completions=COMPLETIONS, baseline="pad", steps=32)
    assert errors[2] < errors[1] < errors[0] and errors[2] < 1e-3 * max(1.0, (fine.f_input - fine.f_baseline).abs().max().item())
    assert (fine.scores[~fine.mask] == 0).all() and fine.scores.shape == fine.input_ids.shape
    close(fine.f_input, torch.stack([s.sum() for s in sl.continuation_logprobs(model, tokenizer, PROMPTS, COMPLETIONS)]), eps=1e-4)
    assert all(p.grad is None for p in model.parameters()) and all(p.requires_grad for p in model.parameters())


def test_zero_baseline_and_a_contrastive_target(tokenizer):
    model = sl.tiny_model("llama", vocab_size=len(tokenizer))
    zeros = sl.integrated_gradients(model, tokenizer, PROMPTS, completions=COMPLETIONS, steps=4)
    assert zeros.scores.isfinite().all() and zeros.f_baseline.isfinite().all()
    constant = torch.tensor([1.0, -2.0])  # the other side of a contrast: a constant, it moves no attribution
    gap = sl.integrated_gradients(model, tokenizer, PROMPTS, lambda logits, batch: sl.completion_logprob(logits, batch) - constant,
                                  completions=COMPLETIONS, steps=4)
    close(gap.scores, zeros.scores, eps=1e-5)
    close(gap.f_input, zeros.f_input - constant, eps=1e-5)
    with pytest.raises(ValueError, match="one score per row"):
        sl.integrated_gradients(model, tokenizer, PROMPTS, lambda logits, batch: logits.sum(), completions=COMPLETIONS, steps=1)
    with pytest.raises(ValueError, match="baseline must be"): sl.integrated_gradients(model, tokenizer, PROMPTS, baseline="mean")


def test_grad_x_input_and_token_ablation_by_hand(tokenizer):
    model = sl.tiny_model("llama", vocab_size=len(tokenizer))
    batch = sl.completion_batch(tokenizer, PROMPTS, COMPLETIONS)
    embed = model.get_input_embeddings()
    def f(embeds):
        out = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"])
        return sl.completion_logprob(out.logits, batch)
    x = embed(batch["input_ids"]).detach().requires_grad_()
    grad, = torch.autograd.grad(f(x).sum(), x)  # the model's own parameters take no .grad
    gxi = sl.grad_x_input(model, tokenizer, PROMPTS, completions=COMPLETIONS)
    close(gxi.scores, (x * grad).sum(-1).detach() * batch["attention_mask"], eps=1e-5)
    ablated = sl.token_ablation(model, tokenizer, PROMPTS, completions=COMPLETIONS)
    row, t = 1, int(batch["attention_mask"][1].nonzero()[0])  # the shorter row's first real token
    ids = batch["input_ids"].clone()
    ids[row, t] = tokenizer.pad_token_id
    with torch.no_grad(): by_hand = f(embed(ids))
    close(ablated.scores[row, t], ablated.f_input[row] - by_hand[row], eps=1e-4)
    assert (ablated.scores[~ablated.mask] == 0).all()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="baseline must be 'pad' or a token id"): sl.token_ablation(model, tokenizer, PROMPTS, baseline=10**9)


def test_attribution_runs_in_bfloat16(tokenizer):
    model = sl.tiny_model("gemma2", vocab_size=len(tokenizer)).to(torch.bfloat16)
    a = sl.integrated_gradients(model, tokenizer, PROMPTS, completions=COMPLETIONS, baseline="pad", steps=8)
    assert a.scores.dtype == torch.float32 and a.scores.isfinite().all()
    assert completeness_error(a) < 0.1 * max(1.0, (a.f_input - a.f_baseline).abs().max().item())
