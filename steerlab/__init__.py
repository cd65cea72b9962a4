"""steerlab: a reproducible lab for activation-steering research.

`import steerlab as sl` loads nothing heavy: each public name below is imported from its module
the first time it is used, so the command line starts at once and a notebook pays for torch only
when it touches the model.
"""
__version__ = "0.1.0"

import importlib, sys, types

_PUBLIC = {  # module -> the public names it gives `steerlab`
    "errors": ["SteerlabError", "UnknownName"],
    "config": ["settings", "seed_everything", "resolve_device", "resolve_dtype"],
    "models": ["load_model", "load_tokenizer", "tiny_model", "random_model", "model_shapes", "split_revision", "model_identity"],
    "sites": ["sites", "parse_site", "dims", "submodule"],
    "hooks": ["Positions"],
    "prompts": ["format_chat", "format_prompts", "Delimiter"],
    "capture": ["capture", "token_norm"],
    "steering": ["Add", "RowAdd", "Ablate", "Rotate", "Cap", "Gate", "Scale", "HeadRank1", "NeuronRank1", "steer", "unit"],
    "generate": ["generate", "generate_conditions"],
    "editing": ["Edit", "Edits", "out_matrix", "fold", "orthogonalize", "ablate_everywhere", "edit_head", "edit_neuron", "head_write_direction",
                "save_edited"],
    "data": ["fetch", "load", "serve_mirror", "files_for", "parallel_texts", "draw_with_targets"],
    "vectors": ["Vector", "hash_data", "save_vectors", "load_vectors", "diff_in_means", "pca_direction",
                "probe_direction", "lda_direction", "export_gguf", "import_gguf"],
    "evals": ["token_nll", "perplexity", "option_logprobs", "option_probs", "option_entropy", "next_token_logprobs", "continuation_logprobs",
              "branch_logprobs", "answer_token_ids", "answer_logodds", "auroc", "is_refusal", "refusal_score", "final_number", "is_correct", "response_lengths"],
    "learn": ["Trainable", "LearnedVector", "UnitAffine", "Rank1Clamp", "interchange", "frozen", "completion_batch", "completion_logits",
              "sequence_logprobs", "pooled_activations", "bipo_loss", "kl_divergence", "js_divergence", "wasserstein_1d",
              "prox_group_lasso", "dii_loss", "trainable_parameters", "fit", "FitRecord"],
    "attribution": ["Attribution", "completion_logprob", "integrated_gradients", "grad_x_input", "token_ablation"],
    "sae": ["load_sae", "AddLatent", "ClampLatents", "AblateLatents"],
    "features": ["pool_tokens", "top_units", "mean_difference", "standardised_difference", "unit_auroc", "firing_rate", "unit_table",
                 "lexicon_masks", "lexicon_contrast", "top_token_match", "logit_lens_tokens", "label_latent", "select_units",
                 "count_units", "matched_random_units", "permuted_labels"],
    "controls": ["random_directions", "random_subspaces", "random_planes", "random_rank1", "permutations", "permuted", "swapped", "swapped_means",
                 "random_subsets"],
    "claims": ["ClaimTable", "Interval", "Null", "bootstrap", "decide", "tolerance", "weakest", "top_share", "top_share_claim", "change_claim", "noise_passes"],
    "scorers": ["language_of", "language_share", "readability", "lexical_diversity", "distinct_n", "embed", "similarity",
                "relevance", "toxicity", "formality", "FORMALITY_WORDS"],
    "lab.run": ["Run"],
    "lab.figures": ["save_figure"],
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_HOME)

def __getattr__(name: str):
    "Import a public name from its module, or a submodule (`sl.data`, `sl.lab`), on first use (PEP 562)."
    if name not in _HOME:
        try: return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}": raise
        raise AttributeError(f"module 'steerlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value

def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))

class _Package(types.ModuleType):
    "This package, whose public functions `capture`, `generate` and `sites` are not replaced by their modules on import."
    def __setattr__(self, name: str, value):
        if name in _HOME and isinstance(value, types.ModuleType): return  # the import system binds each submodule here
        super().__setattr__(name, value)

sys.modules[__name__].__class__ = _Package
