"Bad input to the core gets a clear error before the model is touched; unsupported architectures name their adapter."
import pytest
import torch

import steerlab as sl
from steerlab.sites import ADAPTERS, parse_site


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return sl.tiny_model("llama", vocab_size=len(tokenizer))


def untouched(model):
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_unknown_site_lists_valid_ones(tiny):
    with pytest.raises(KeyError, match="blocks.1.hook_resid_post"):
        sl.steer(tiny, {"blocks.1.hook_resid_psot": sl.Add(torch.ones(64))}).__enter__()
    assert untouched(tiny)


def test_site_on_missing_layer(tiny, tokenizer):
    with pytest.raises(KeyError, match="3 layers"):
        sl.capture(tiny, tokenizer, ["hi"], "blocks.7.hook_resid_post")
    with pytest.raises(KeyError, match="blocks.2.ln1.hook_normalized"):
        parse_site(tiny, "blocks.3.ln1.hook_normalized")
    with pytest.raises(KeyError):
        parse_site(tiny, "blocks.-1.hook_resid_post")


@pytest.mark.parametrize("make", [
    lambda: sl.Add(torch.ones(65)),
    lambda: sl.Ablate(torch.ones(10)),
    lambda: sl.Cap(torch.ones(32), hi=1.0),
    lambda: sl.Rotate(torch.ones(63), torch.arange(63.0), 10.0),
])
def test_wrong_width(tiny, make):
    with pytest.raises(ValueError, match="width|shape"):
        with sl.steer(tiny, {"blocks.0.hook_resid_post": make()}):
            pass
    assert untouched(tiny)


def test_nan_and_inf_vectors(tiny):
    bad = torch.ones(64)
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        with sl.steer(tiny, {"blocks.0.hook_resid_post": sl.Add(bad)}):
            pass
    with pytest.raises(ValueError, match="NaN"):
        sl.Add(torch.ones(64), float("inf"))
    with pytest.raises(ValueError):
        sl.Vector(torch.full((64,), float("inf")))
    assert untouched(tiny)


def test_positions(tiny, tokenizer):
    with pytest.raises(ValueError, match="unknown positions"):
        sl.steer(tiny, {"blocks.0.hook_resid_post": sl.Add(torch.ones(64))}, positions="middle").__enter__()
    with pytest.raises(ValueError, match="does not cover"):
        with sl.steer(tiny, {"blocks.0.hook_resid_post": sl.Add(torch.ones(64))}, positions=torch.ones(1, 2, dtype=torch.bool)):
            tiny(torch.tensor([[1, 2, 3, 4]]))
    with pytest.raises(ValueError, match="unknown positions"):
        sl.capture(tiny, tokenizer, ["hi"], "blocks.0.hook_resid_post", positions="first")
    with pytest.raises(ValueError, match="unknown reduce"):
        sl.capture(tiny, tokenizer, ["hi"], "blocks.0.hook_resid_post", positions="all", reduce="max")
    with pytest.raises(ValueError, match="needs completions"):
        sl.capture(tiny, tokenizer, ["hi"], "blocks.0.hook_resid_post", positions="completion")
    assert untouched(tiny)


def test_empty_prompts(tiny, tokenizer):
    with pytest.raises(ValueError, match="empty"):
        sl.capture(tiny, tokenizer, [], "blocks.0.hook_resid_post")
    with pytest.raises(ValueError, match="empty"):
        sl.generate(tiny, tokenizer, [], max_new_tokens=2)
    with pytest.raises(TypeError):
        sl.generate(tiny, tokenizer, "one string", max_new_tokens=2)


def test_component_indices(tiny):
    with pytest.raises(ValueError, match="out of range"):
        with sl.steer(tiny, {"blocks.0.attn.hook_z": sl.Scale({9: 0.0})}):
            pass
    with pytest.raises(ValueError, match="out of range"):
        with sl.steer(tiny, {"blocks.0.attn.hook_z": sl.HeadRank1(4, torch.ones(64), torch.ones(16))}):
            pass
    with pytest.raises(ValueError):
        sl.edit_neuron(tiny, 0, 128, torch.ones(64))


def test_unsupported_architecture_names_the_adapter():
    from transformers import BloomConfig, AutoModelForCausalLM
    model = AutoModelForCausalLM.from_config(BloomConfig(hidden_size=32, n_layer=1, n_head=2, vocab_size=64))
    assert model.config.model_type not in ADAPTERS
    with pytest.raises(NotImplementedError, match="Adapter"):
        sl.sites(model)


def test_relative_coefficients(tiny):
    v = sl.Vector(torch.randn(64), norm_ref=12.0)
    add = sl.Add(v, 0.5, relative=True)
    assert torch.isclose(add.v.norm(), torch.tensor(12.0))
    with pytest.raises(ValueError, match="norm_ref"):
        sl.Add(torch.randn(64), 0.5, relative=True)


def test_relative_scale_uses_site_norm(default_model, tokenizer):
    "A norm-relative coefficient moves the residual by that fraction of its typical norm."
    model, tok = default_model
    site = "blocks.15.hook_resid_post"
    acts = sl.capture(model, tok, ["Tell me a joke.", "What is two plus two?"], site, positions="all")[site]
    pos, neg = acts[0][1:], acts[1][1:]
    v = sl.diff_in_means(pos, neg, site=site)
    before = sl.capture(model, tok, ["Hello there"], site, positions="mean")[site]
    with sl.steer(model, {site: sl.Add(v, 0.25, relative=True)}):
        after = sl.capture(model, tok, ["Hello there"], site, positions="mean")[site]
    assert torch.isclose((after - before).norm(), torch.tensor(0.25 * v.norm_ref), rtol=1e-3)
