"""steerlab: a reproducible lab for activation-steering research."""
__version__ = "0.1.0"

from .config import settings, seed_everything
from .models import load_model, load_tokenizer, tiny_model
from .sites import sites, parse_site
from .hooks import Positions
from .prompts import format_chat
from .capture import capture
from .steering import Add, Ablate, Rotate, Cap, Gate, Scale, HeadRank1, NeuronRank1, steer
from .generate import generate, generate_conditions
from .editing import fold, orthogonalize, ablate_everywhere, edit_head, edit_neuron, head_write_direction, save_edited
from .data import fetch, load, serve_mirror, files_for
from .runs import Run
from .figures import save_figure
from .vectors import Vector, hash_data, save_vectors, load_vectors, diff_in_means, pca_direction, probe_direction, lda_direction, export_gguf, import_gguf
from .evals import token_nll, perplexity, option_logprobs, option_probs, is_refusal, refusal_score, Judge

def __getattr__(name: str):
    "steerlab.load_sae, imported on first use: sae-lens takes seconds to import."
    if name == "load_sae":
        from .sae import load_sae
        return load_sae
    raise AttributeError(f"module 'steerlab' has no attribute {name!r}")
