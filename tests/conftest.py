import os

import pytest
import torch

import steerlab as sl

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker (and per notebook kernel it starts): the workers fill the cores
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def default_model():
    "The embedded SmolLM2-135M-Instruct in fp32 on the CPU (converted once into the cache)."
    return sl.load_model("default", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tokenizer():
    return sl.load_tokenizer("default")


@pytest.fixture(scope="session", autouse=True)
def data_mirror():
    "Serve the shared data mirror on loopback for the whole session, so pooch's real download path runs."
    from pathlib import Path
    from steerlab.data import serve_mirror
    folder = Path(__file__).resolve().parents[2] / "shared" / "data-mirror"
    if not folder.is_dir() or os.environ.get("STEERLAB_DATA_MIRROR"):
        yield None
        return
    with serve_mirror(folder) as url:
        os.environ["STEERLAB_DATA_MIRROR"] = url
        yield url
        del os.environ["STEERLAB_DATA_MIRROR"]
