"""The reading order of docs/reading-order.md is true: every module of the package is
listed, and each imports only modules listed before it, so a reader never meets a name
that is explained later. Two exceptions, named on that page: ``_tensor.py`` gives
``Tensor`` its operator methods (``a + b``, ``a @ b``) through ``functional.py``, imported
at its bottom; ``graph_picture.py``'s front-page picture imports the tracer and two layers
when it is called."""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READING_ORDER = os.path.join(ROOT, "docs", "reading-order.md")
PACKAGE = os.path.join(ROOT, "minitransformer")
# (module, what it may import although listed later): both named on the page.
EXCEPTIONS = {("minitransformer/_tensor.py", "minitransformer/functional.py"),
              # the front page's picture runs real layers, importing them when called
              ("minitransformer/graph_picture.py", "minitransformer/trace.py"),
              ("minitransformer/graph_picture.py", "minitransformer/nn/attention.py"),
              ("minitransformer/graph_picture.py", "minitransformer/nn/recurrent.py")}


def reading_order():
    """The module paths of docs/reading-order.md's numbered list, in order. A token
    ending in "/" names the folder that the bare file names after it are in."""
    with open(READING_ORDER, encoding="utf-8") as f:
        section = f.read()
    numbered = section[re.search(r"^1\. ", section, re.M).start():]   # the list itself
    order, folder = [], "minitransformer/"
    for token in re.findall(r"`([\w/]+(?:\.py|/))`", numbered):
        if token.startswith("minitransformer/"):
            if token.endswith("/"):
                folder = token
            else:
                order.append(token)
                folder = os.path.dirname(token) + "/"
        elif "/" not in token:                    # a bare file name, in the current folder
            order.append(folder + token)
    return order


def package_modules():
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py") and not (name == "__init__.py" and folder != PACKAGE):
                found.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return sorted(found)


def _module_path(dotted):
    """The file of a package module named ``dotted``, or None."""
    for candidate in (dotted.replace(".", "/") + ".py", dotted.replace(".", "/") + "/__init__.py"):
        if candidate.startswith("minitransformer") and os.path.exists(os.path.join(ROOT, candidate)):
            return candidate
    return None


def imported_modules(path):
    """Package modules that ``path`` imports (anywhere in the file), as paths."""
    module = path[:-3].replace("/", ".")
    package = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module[:-9]
    targets = set()
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            # "from .pkg import mod" imports the module; "from .mod import name" the module
            submodules = [path for path in (_module_path(f"{base}.{alias.name}")
                                            for alias in node.names) if path]
            found = submodules or [_module_path(base)]
        elif isinstance(node, ast.Import):
            found = [_module_path(alias.name) for alias in node.names]
        else:
            continue
        targets |= {path for path in found if path}
    targets.discard(path)
    return targets


def test_the_reading_order_lists_every_module_once():
    order = reading_order()
    assert len(order) == len(set(order)), [m for m in order if order.count(m) > 1]
    assert sorted(order) == package_modules()


@pytest.mark.parametrize("path", reading_order())
def test_a_module_imports_only_what_comes_before_it(path):
    order = reading_order()
    earlier = set(order[:order.index(path)])
    later = {target for target in imported_modules(path)
             if target not in earlier and not target.endswith("/__init__.py")
             and (path, target) not in EXCEPTIONS}
    # A package's __init__ gathers its own modules: importing it counts as importing them.
    for target in imported_modules(path):
        if target.endswith("/__init__.py") and target != "minitransformer/__init__.py":
            folder = os.path.dirname(target) + "/"
            later |= {m for m in order if m.startswith(folder) and m not in earlier
                      and m != path and (path, m) not in EXCEPTIONS}
    assert not later, f"{path} imports {sorted(later)}, which docs/reading-order.md lists after it"


def test_no_name_shadows_its_module():
    """``from minitransformer.x import x`` must never replace the module ``x`` by a function
    of the same name in its package (``torch`` renamed its ``tensor.py`` for this reason)."""
    import importlib
    import pkgutil
    import types
    for package_name in ("minitransformer", "minitransformer.nn", "minitransformer.ops",
                         "minitransformer.translation", "minitransformer.benchmarks"):
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if info.name == "__main__":          # importing it would run the command line
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            attribute = getattr(package, info.name)
            assert isinstance(attribute, types.ModuleType) and attribute is module, \
                f"{package_name}.{info.name} is {attribute!r}, not the module"
