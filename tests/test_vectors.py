"""Vector: validation, arithmetic, save/load; extraction methods on synthetic activations; llama.cpp GGUF export."""
import json

import gguf
import numpy as np
import pytest
import torch

from steerlab.vectors import (L2_GRID, Vector, diff_in_means, export_gguf, hash_data, import_gguf, lda_direction,
                              load_vectors, pca_direction, probe_direction, save_vectors)

D = 12


def contrast(n=60, gap=2.0, noise=0.3, seed=0):
    "Paired activations: pos[i] = neg[i] + gap·e0 + noise."
    g = torch.Generator().manual_seed(seed)
    neg = torch.randn(n, D, generator=g) + 5.0
    return neg + gap * torch.eye(D)[0] + noise * torch.randn(n, D, generator=g), neg


def correlated_classes(n, seed):
    "Balanced classes separated along e0, with strong shared noise along e0 + e1 that hides them from the mean difference."
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2 == 1
    shared = 3 * torch.randn(n, 1, generator=g) * (torch.eye(D)[0] + torch.eye(D)[1])
    x = 0.5 * torch.randn(n, D, generator=g) + shared + labels[:, None] * torch.eye(D)[0]
    return x[labels], x[~labels]


def midpoint_accuracy(v, pos, neg):
    "Accuracy of thresholding the projection on v at the midpoint of the two class means."
    p, q = pos @ v.unit().tensor, neg @ v.unit().tensor
    mid = (p.mean() + q.mean()) / 2
    return torch.cat([p > mid, q <= mid]).float().mean().item()


def cos(a, b):
    return (a.unit().tensor @ b.unit().tensor).item()


# --- Vector ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [torch.tensor([1.0, float("nan")]), torch.tensor([float("inf"), 1.0]),
                                 torch.ones(2, 3), torch.tensor(1.0), torch.tensor([1, 2]), torch.empty(0)])
def test_vector_rejects_bad_tensors(bad):
    with pytest.raises(ValueError):
        Vector(bad)


def test_vector_rejects_bad_meta_and_norm_ref():
    with pytest.raises(ValueError, match="JSON"):
        Vector(torch.ones(3), meta={"x": object()})
    with pytest.raises(ValueError, match="norm_ref"):
        Vector(torch.ones(3), norm_ref=float("nan"))


def test_vector_arithmetic_keeps_provenance():
    v = Vector(torch.tensor([3.0, 4.0]), model="m", site="blocks.2.hook_resid_post", method="pca", norm_ref=7.0,
               data_hash="h", meta={"k": 1})
    assert v.norm == pytest.approx(5.0)
    assert v.unit().norm == pytest.approx(1.0) and torch.allclose(v.unit().tensor, torch.tensor([0.6, 0.8]))
    assert torch.equal((-v).tensor, torch.tensor([-3.0, -4.0]))
    assert torch.equal((2 * v).tensor, torch.tensor([6.0, 8.0])) and torch.equal((v * 2).tensor, (2 * v).tensor)
    assert (v / 5).norm == pytest.approx(1.0)
    for w in (v.unit(), -v, 3 * v):
        assert (w.model, w.site, w.method, w.norm_ref, w.data_hash, w.meta) == ("m", v.site, "pca", 7.0, "h", {"k": 1})
    with pytest.raises(ValueError, match="zero"):
        Vector(torch.zeros(3)).unit()
    with pytest.raises(TypeError):
        v * v


def test_save_load_round_trip_is_exact(tmp_path):
    v = Vector(torch.randn(33, dtype=torch.bfloat16), model="SmolLM2", site="blocks.15.hook_resid_post",
               method="probe", data_hash=hash_data(["a"]), norm_ref=0.1 + 0.2, meta={"lam": 1e-3, "curve": [[1, 0.5]]})
    path = v.save(tmp_path / "sub" / "v.safetensors")
    assert path == tmp_path / "sub" / "v.safetensors" and (tmp_path / "sub" / "v.json").is_file()
    back = Vector.load(tmp_path / "sub" / "v")
    assert torch.equal(back.tensor, v.tensor) and back.tensor.dtype == torch.bfloat16
    for name in ("model", "site", "method", "data_hash", "norm_ref", "meta"):
        assert getattr(back, name) == getattr(v, name), name
    assert [p.name for p in (tmp_path / "sub").iterdir() if p.name.startswith(".")] == []  # no temp files left
    assert path.stat().st_mode & 0o777 == 0o644


def test_save_vectors_dict_round_trip(tmp_path):
    vectors = {f"blocks.{L}.hook_resid_post": Vector(torch.randn(8), site=f"blocks.{L}.hook_resid_post", norm_ref=float(L))
               for L in (3, 4, 5)}
    save_vectors(vectors, tmp_path / "set")
    back = load_vectors(tmp_path / "set.json")
    assert list(back) == list(vectors)
    assert all(torch.equal(back[k].tensor, v.tensor) and back[k].norm_ref == v.norm_ref for k, v in vectors.items())
    with pytest.raises(ValueError, match="load_vectors"):
        Vector.load(tmp_path / "set")


def test_load_rejects_mismatched_sidecar(tmp_path):
    Vector(torch.ones(4)).save(tmp_path / "v")
    sidecar = json.loads((tmp_path / "v.json").read_text())
    sidecar["vectors"]["other"] = sidecar["vectors"].pop("vector")
    (tmp_path / "v.json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="do not match"):
        load_vectors(tmp_path / "v")


def test_hash_data_is_canonical():
    assert hash_data({"a": [1, 2], "b": "x"}) == hash_data({"b": "x", "a": [1, 2]})
    assert hash_data(["p1", "p2"]) != hash_data(["p2", "p1"]) != hash_data(["p1", "p2", ""])
    with pytest.raises(TypeError):
        hash_data({"x": object()})


# --- extraction -----------------------------------------------------------------------

def test_diff_in_means_values_and_provenance():
    pos, neg = contrast()
    v = diff_in_means(pos, neg, site="blocks.1.hook_resid_post", model="tiny", data={"prompts": ["a", "b"]})
    assert torch.allclose(v.tensor, pos.mean(0) - neg.mean(0), atol=1e-5)
    assert v.norm_ref == pytest.approx(torch.cat([pos, neg]).norm(dim=1).mean().item(), rel=1e-6)
    assert (v.site, v.model, v.method, v.data_hash) == ("blocks.1.hook_resid_post", "tiny", "diff_in_means",
                                                        hash_data({"prompts": ["a", "b"]}))
    assert diff_in_means(pos, neg).data_hash is None
    assert v.tensor.dtype == torch.float32
    unpaired = diff_in_means(pos[:10], neg)  # counts may differ
    assert torch.allclose(unpaired.tensor, pos[:10].mean(0) - neg.mean(0), atol=1e-5)


@pytest.mark.parametrize("extract", [diff_in_means, pca_direction, probe_direction, lda_direction])
def test_extractors_reject_bad_activations(extract):
    pos, neg = contrast(n=8)
    bad_inputs = [(pos, neg[:, :-1]), (pos[:0], neg), (pos, neg[0]), (pos.clone().index_fill_(1, torch.tensor([2]), float("nan")), neg)]
    for bad_pos, bad_neg in bad_inputs:
        with pytest.raises(ValueError):
            extract(bad_pos, bad_neg)


def test_pca_recovers_direction_sign_and_length():
    pos, neg = contrast()
    v = pca_direction(pos, neg)
    assert v.unit().tensor[0] > 0.99  # the concept axis, pointing from neg to pos
    along = ((pos.mean(0) - neg.mean(0)) @ v.unit().tensor).item()
    assert along > 0 and v.norm == pytest.approx(along, rel=1e-5)
    assert pca_direction(neg, pos).unit().tensor[0] < -0.99
    assert v.meta["explained_variance"] > 0.7 and v.meta["center"] is False
    with pytest.raises(ValueError, match="paired"):
        pca_direction(pos[:-1], neg)
    with pytest.raises(ValueError, match="zero"):
        pca_direction(neg, neg)


def test_pca_center_reads_the_axis_of_variation():
    g = torch.Generator().manual_seed(3)
    neg = torch.randn(50, D, generator=g)
    # every pair differs by 2·e0, and by a varying amount along e1
    pos = neg + 2 * torch.eye(D)[0] + torch.randn(50, 1, generator=g) * torch.eye(D)[1]
    assert abs(pca_direction(pos, neg).unit().tensor[0]) > 0.9
    assert abs(pca_direction(pos, neg, center=True).unit().tensor[1]) > 0.99


def test_probe_beats_diff_in_means_on_correlated_noise():
    pos, neg = correlated_classes(400, seed=1)
    test_pos, test_neg = correlated_classes(2000, seed=2)
    probe, dim = probe_direction(pos, neg, data="toy"), diff_in_means(pos, neg)
    assert midpoint_accuracy(probe, test_pos, test_neg) > midpoint_accuracy(dim, test_pos, test_neg) + 0.1
    assert probe.meta["lam"] in L2_GRID and 0.5 < probe.meta["val_accuracy"] <= 1
    assert len(probe.meta["val_curve"]) == len(L2_GRID)
    # meta recovers the probe's own logits in activation space
    x = torch.cat([pos, neg])
    labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).bool()
    logits = probe.meta["weight_norm"] * (x @ probe.unit().tensor) + probe.meta["bias"]
    assert ((logits > 0) == labels).float().mean().item() == pytest.approx(probe.meta["accuracy"], abs=1e-6)
    # scaled like the others: the class-mean gap along the direction
    assert probe.norm == pytest.approx(abs(((pos.mean(0) - neg.mean(0)) @ probe.unit().tensor).item()), rel=1e-4)


def test_probe_tends_to_diff_in_means_under_heavy_ridge():
    pos, neg = correlated_classes(200, seed=4)
    assert cos(probe_direction(pos, neg, l2_grid=[1e6]), diff_in_means(pos, neg)) > 0.999
    assert cos(probe_direction(pos, neg, l2_grid=[1e-4]), diff_in_means(pos, neg)) < 0.9


def test_probe_is_reproducible_and_validates_arguments():
    pos, neg = correlated_classes(80, seed=5)
    a, b = probe_direction(pos, neg, seed=7, l2_grid=[1e-2, 1.0]), probe_direction(pos, neg, seed=7, l2_grid=[1e-2, 1.0])
    assert torch.equal(a.tensor, b.tensor) and a.meta == b.meta
    with pytest.raises(ValueError, match="at least 2"):
        probe_direction(pos[:1], neg)
    with pytest.raises(ValueError, match="val_frac"):
        probe_direction(pos, neg, val_frac=1.0)
    with pytest.raises(ValueError, match="l2_grid"):
        probe_direction(pos, neg, l2_grid=[0.0, 1.0])


def test_lda_matches_fisher_direction_and_generalises():
    pos, neg = correlated_classes(400, seed=1)
    test_pos, test_neg = correlated_classes(2000, seed=2)
    lda = lda_direction(pos, neg, shrinkage=0.0)
    centred = torch.cat([pos - pos.mean(0), neg - neg.mean(0)]).double()
    fisher = torch.linalg.solve(centred.T @ centred, (pos.mean(0) - neg.mean(0)).double())
    assert cos(lda, Vector(fisher.float())) > 0.9999
    assert midpoint_accuracy(lda, test_pos, test_neg) > midpoint_accuracy(diff_in_means(pos, neg), test_pos, test_neg) + 0.1
    # fewer examples than dimensions: only shrinkage keeps it defined
    few_pos, few_neg = pos[:3], neg[:3]
    assert torch.isfinite(lda_direction(few_pos, few_neg, shrinkage=0.5).tensor).all()
    with pytest.raises(ValueError):
        lda_direction(pos, neg, shrinkage=1.5)


# --- llama.cpp GGUF -------------------------------------------------------------------

def field_value(reader, name):
    return reader.get_field(name).contents()


def test_export_gguf_writes_llama_cpp_control_vector(tmp_path):
    vectors = {5: Vector(torch.randn(16)), 2: Vector(torch.randn(16, dtype=torch.bfloat16)), 9: Vector(torch.randn(16))}
    path = export_gguf(vectors, tmp_path / "cv.gguf", model_hint="llama")
    reader = gguf.GGUFReader(path)
    assert field_value(reader, "general.architecture") == "controlvector"
    assert field_value(reader, "controlvector.model_hint") == "llama"
    assert field_value(reader, "controlvector.layer_count") == 3
    tensors = {t.name: t for t in reader.tensors}
    assert sorted(tensors) == ["direction.2", "direction.5", "direction.9"]
    for layer, v in vectors.items():
        t = tensors[f"direction.{layer}"]
        assert t.tensor_type == gguf.GGMLQuantizationType.F32 and t.data.shape == (16,)
        np.testing.assert_array_equal(t.data, v.tensor.float().numpy())


def test_export_gguf_maps_site_names_to_block_outputs(tmp_path):
    vectors = {"blocks.3.hook_resid_post": Vector(torch.randn(8)), "blocks.7.hook_resid_pre": Vector(torch.randn(8))}
    back = import_gguf(export_gguf(vectors, tmp_path / "cv.gguf", model_hint="qwen2"))
    assert list(back) == [3, 6]  # resid_pre of block 7 is the output of block 6
    assert torch.equal(back[6].tensor, vectors["blocks.7.hook_resid_pre"].tensor)
    assert back[3].site == "blocks.3.hook_resid_post" and back[3].meta == {"model_hint": "qwen2"}


@pytest.mark.parametrize("vectors, message", [
    ({0: Vector(torch.ones(4))}, "layers >= 1"),
    ({"blocks.0.hook_resid_pre": Vector(torch.ones(4))}, "layers >= 1"),
    ({"blocks.2.hook_mlp_out": Vector(torch.ones(4))}, "block outputs only"),
    ({1: Vector(torch.ones(4)), 2: Vector(torch.ones(5))}, "same width"),
    ({"blocks.2.hook_resid_post": Vector(torch.ones(4)), "blocks.3.hook_resid_pre": Vector(torch.ones(4))}, "two vectors"),
    ({}, "no vectors"),
])
def test_export_gguf_rejects_what_llama_cpp_cannot_use(tmp_path, vectors, message):
    with pytest.raises(ValueError, match=message):
        export_gguf(vectors, tmp_path / "cv.gguf", model_hint="llama")
    assert list(tmp_path.iterdir()) == []


def test_import_gguf_rejects_other_architectures(tmp_path):
    writer = gguf.GGUFWriter(tmp_path / "model.gguf", "llama")
    writer.add_tensor("direction.1", np.ones(4, dtype=np.float32))
    writer.write_header_to_file(); writer.write_kv_data_to_file(); writer.write_tensors_to_file(); writer.close()
    with pytest.raises(ValueError, match="not a control-vector"):
        import_gguf(tmp_path / "model.gguf")


def test_a_vector_steers_and_folds_only_at_the_site_it_was_read_at():
    import steerlab as sl
    model = sl.tiny_model()
    ids = torch.tensor([[3, 4, 5, 6]])
    v = Vector(torch.randn(64, generator=torch.Generator().manual_seed(0)), site="blocks.1.hook_resid_post", norm_ref=9.0)
    with pytest.raises(ValueError, match="made at blocks.1.hook_resid_post, not at blocks.2.hook_resid_post"):
        sl.steer(model, {"blocks.2.hook_resid_post": sl.Add(v)}).__enter__()
    with pytest.raises(ValueError, match="made at blocks.1.hook_resid_post, not at blocks.0.hook_resid_post"):
        sl.fold(model, "blocks.0.hook_resid_post", v)
    with torch.no_grad():
        with sl.steer(model, {"blocks.2.hook_resid_post": sl.Add(v.tensor, 0.5)}): anywhere = model(ids).logits  # a tensor has no site
        with sl.steer(model, {v.site: sl.Add(v, 0.3, relative=True)}): hooked = model(ids).logits
        with sl.fold(model, v.site, v, 0.3, relative=True): folded = model(ids).logits  # norm_ref from the Vector
    torch.testing.assert_close(folded, hooked, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(anywhere, hooked)
