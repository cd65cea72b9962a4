"The lab's structure: the core never imports the lab, no module imports another's private names, and `import steerlab` and the command line load nothing heavy."
import ast, json, subprocess, sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "steerlab"
LAB = PACKAGE / "lab"
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "_modidx.py"))
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_modidx.py")
HEAVY = ("torch", "transformers", "pandas", "matplotlib", "seaborn", "scipy", "sae_lens", "papermill")


def imported_names(path: Path) -> list[tuple[str, str | None]]:
    "(module, name) for every import in a file, relative imports resolved against the steerlab package."
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import): found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module])) if node.level else node.module
            found += [(module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_the_core_never_imports_the_lab(path):
    lab = [module for module, _ in imported_names(path) if module.startswith("steerlab.lab")]
    assert not lab, f"{path.name} imports {lab}: record through steerlab.provenance instead"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_modules(path):
    private = [f"{module}.{name}" for module, name in imported_names(path)
               if module.startswith("steerlab") and name and name.startswith("_") and name != "__version__"]
    assert not private, f"{path.relative_to(PACKAGE)} imports private names {private}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "methods").glob("*.py")), ids=lambda p: p.name)
def test_paper_modules_use_the_public_api(path):
    "A paper module reaches the core through `import steerlab as sl` (or `from steerlab import name`), not through its modules."
    inside = [module for module, name in imported_names(path) if module.startswith("steerlab.")]
    assert not inside, f"{path.name} imports {inside}; use `import steerlab as sl` and public names"


def loaded_after(code: str) -> set[str]:
    "The heavy packages a fresh interpreter has imported after running `code`."
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted(set(m.split('.')[0] for m in sys.modules))))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1])) & set(HEAVY)


def test_import_steerlab_loads_nothing_heavy():
    assert loaded_after("import steerlab as sl; sl.__all__") == set()


def test_cli_help_and_list_load_nothing_heavy():
    assert loaded_after("from steerlab.lab.cli import main; main(['list'])") == set()
    assert loaded_after("from steerlab.lab.cli import build_parser; build_parser().format_help()") == set()


def test_public_names_resolve():
    import steerlab as sl
    for name in sl.__all__: assert getattr(sl, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"): sl.nope
    assert sl.data.load_advbench is sl.fetch.__globals__["load_advbench"]  # submodules load on first use too
    import steerlab.capture, steerlab.generate, steerlab.sites  # importing a module keeps its namesake function public
    assert [f.__module__ for f in (sl.capture, sl.generate, sl.sites)] == ["steerlab.capture", "steerlab.generate", "steerlab.sites"]


PAPERS = sorted((PACKAGE.parent / "nbs" / "papers").glob("*.ipynb"))


@pytest.mark.parametrize("path", PAPERS, ids=lambda p: p.stem)
def test_no_verdict_is_typed_in_a_paper_notebook(path):
    "A verdict is computed by steerlab.claims, so no string constant in a paper's code is a verdict (markdown prose may name them)."
    from steerlab.claims import VERDICTS
    code = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")
    typed = [node.value for node in ast.walk(ast.parse(code.replace("\n%", "\n#").replace("\n!", "\n#")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and node.value.strip().lower() in {*VERDICTS, "not testable"}]
    assert not typed, f"{path.stem} types verdicts {typed}: build its table with sl.ClaimTable"
