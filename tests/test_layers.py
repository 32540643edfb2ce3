"""The package's architecture, checked: imports run one way through the layers,
and no module imports another module's private names."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "gridcore"
# Lowest first; a module may import from its own layer and the layers below.
LAYERS = ["util", "model", "backends", "sim", "train", "analysis", "report", "sweep", "cli"]
# Top-level modules: the version sits with util; the entry points and the
# package facade (__init__) sit on top.
TOP_LEVEL = {"version": "util", "analyze": "cli", "reproduce": "cli", "info": "cli", "export": "cli",
             "__main__": "cli", "__init__": "cli", "workflow": "cli"}


def layer_of(module):
    """Layer name of a dotted module path inside gridcore."""
    parts = module.split(".")
    if len(parts) == 1:
        return "cli"                              # `import gridcore`
    if parts[-1] == "__main__":
        return "cli"                              # python -m entry points
    return TOP_LEVEL.get(parts[1], parts[1]) if len(parts) == 2 else parts[1]


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        yield name.removesuffix(".__init__") if name.endswith(".__init__") else name, path


def imports(path):
    """(imported module, names, line) of every gridcore import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gridcore":
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gridcore":
                    yield alias.name, [], node.lineno


ALL = list(modules())


def test_every_package_module_has_a_layer():
    for name, _ in ALL:
        assert layer_of(name) in LAYERS, name


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_imports_run_down_the_layers(name, path):
    own = LAYERS.index(layer_of(name))
    for module, names, line in imports(path):
        # `from gridcore import x` takes x from the facade: judge x itself
        targets = [f"gridcore.{n}" for n in names] if module == "gridcore" else [module]
        for target in targets:
            assert LAYERS.index(layer_of(target)) <= own, (
                f"{path.relative_to(PACKAGE.parent)}:{line}: layer {LAYERS[own]!r} imports {target} "
                f"from the layer above, {layer_of(target)!r}")


@pytest.mark.parametrize("name,path", ALL, ids=[n for n, _ in ALL])
def test_no_private_names_across_modules(name, path):
    for module, names, line in imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{path.relative_to(PACKAGE.parent)}:{line}: imports private {private} from {module}"
