"""The .pyi stubs document both twins: their names and signatures must not drift.

Each stub is parsed with ast and compared with the runtime modules of every available twin:
same public names as __all__, same parameter names, kinds and which ones have defaults.
"""
import ast
import importlib
import inspect
import pathlib

import pytest

NATIVE = pathlib.Path(importlib.import_module("occystrap._native").__file__).parent
MODULES = ["tarstream", "rewrite", "globset"]


def _stub(module):
    return ast.parse((NATIVE / (module + ".pyi")).read_text())


def _public(tree):
    return {node.name: node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and not node.name.startswith("_")}


def _stub_params(func):
    """[(name, kind, has_default)] of an ast function, self excluded."""
    args = func.args
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    params = [(a.arg, "POSITIONAL_OR_KEYWORD", d) for a, d in zip(positional, defaults)]
    if args.vararg:
        params.append((args.vararg.arg, "VAR_POSITIONAL", False))
    params += [(a.arg, "KEYWORD_ONLY", d is not None)
               for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append((args.kwarg.arg, "VAR_KEYWORD", False))
    return [p for p in params if p[0] != "self"]


def _runtime_params(obj):
    params = inspect.signature(obj).parameters.values()
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in params if p.name != "self"]


def _module(twin, name):
    return getattr(twin, name)


@pytest.mark.parametrize("module", MODULES)
def test_stub_names_are_the_twins_public_api(impl, module):
    runtime = _module(impl, module)
    assert set(_public(_stub(module))) == set(runtime.__all__)


@pytest.mark.parametrize("module", MODULES)
def test_stub_signatures_match(impl, module):
    runtime = _module(impl, module)
    checked = 0
    for name, node in _public(_stub(module)).items():
        obj = getattr(runtime, name)
        if isinstance(node, ast.FunctionDef):
            assert _stub_params(node) == _runtime_params(obj), name
            checked += 1
            continue
        if any(isinstance(b, ast.Name) and b.id == "NamedTuple" for b in node.bases):
            fields = [n.target.id for n in node.body if isinstance(n, ast.AnnAssign)]
            assert fields == list(obj._fields), name
            checked += 1
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                assert _stub_params(item) == _runtime_params(getattr(obj, item.name)), \
                    "%s.%s" % (name, item.name)
                checked += 1
    assert checked >= 3


def test_stub_attributes_exist_on_instances(impl):
    rewriter = impl.rewrite.TarRewriter(collect=True)
    for node in _public(_stub("rewrite"))["TarRewriter"].body:
        if isinstance(node, ast.AnnAssign):
            assert hasattr(rewriter, node.target.id), node.target.id
    globs = impl.globset.GlobSet([b"a*"])
    assert globs.patterns == (b"a*",)


def test_stubs_ship_in_the_package_data():
    tomllib = pytest.importorskip("tomllib")        # Python 3.11+
    data = tomllib.loads((NATIVE.parent.parent / "pyproject.toml").read_text())
    shipped = data["tool"]["setuptools"]["package-data"]["occystrap._native"]
    assert "*.pyi" in shipped
