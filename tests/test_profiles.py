"Paper profiles name pinned models of recorded shapes, and `steerlab prefetch` stages what a profile reads."
import re

import pytest
import yaml

import steerlab as sl
from steerlab.lab import cli
from steerlab.lab.params import paper_slugs, params_dir, resolve_params
from steerlab.lab.prefetch import COMMIT, model_params, prefetch

PROFILES = [(slug, path.stem) for slug in paper_slugs() for path in sorted((params_dir() / slug).glob("*.yaml"))
            if path.stem != "smoke"]


@pytest.mark.parametrize("slug, profile", PROFILES)
def test_profile_models_are_pinned_and_shaped(slug, profile):
    values = resolve_params(slug, profile=profile)
    for name, model in model_params(values).items():
        repo, revision = sl.split_revision(model)
        assert revision and COMMIT.fullmatch(revision), f"{slug}/{profile}: {name} {model!r} is not pinned at a commit"
    if values.get("model"):  # the profile's own model has a recorded shape, so random:<id> can run it
        assert sl.split_revision(values["model"])[0] in sl.model_shapes()


def test_prefetch_downloads_pinned_models_and_the_papers_data(monkeypatch):
    import huggingface_hub
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, revision: calls.append((repo_id, revision)))
    done = prefetch("guiding_giants", profile="paper")
    assert calls == [sl.split_revision(resolve_params("guiding_giants", profile="paper")["model"])]
    fetched = {need.name for need, _, ok in done if need.kind == "data" and ok}
    assert fetched == {e.name for e in sl.data.registry().values() if "guiding_giants" in e.papers} and fetched
    assert all(sl.data.fetch(name).is_file() for name in fetched)  # in the cache now, through the served mirror


def test_prefetch_reports_what_it_cannot_stage_and_stages_the_rest(capsys):
    assert cli.main(["prefetch", "thinkedit", "--dry-run"]) == 1  # the registry holds GSM8K's parquet files without a sha256
    lines = capsys.readouterr().out.splitlines()
    assert re.match(r"model  \S+@[0-9a-f]{40}: hub snapshot ", lines[0])
    assert any(line.startswith("data ") and "FAILED: " not in line for line in lines)
    assert any("gsm8k_hf_train: FAILED: gsm8k_hf_train: the registry has no sha256" in line for line in lines)
