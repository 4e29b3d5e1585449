"""The package's dependencies run one way, and the lab (the benchmark harness) stays outside it.

configs -> registry -> heads -> losses (loss modules -> focal family and contract -> fast
paths -> kernels). Read from the source with ``ast``, so a lazy import inside a function
counts as much as one at the top of a module.
"""
import ast
import os
import subprocess
import sys
from typing import Iterator, Set

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'imbfocal')
LOSS_MODULES = {'imbfocal.losses.class_balanced_focal_loss', 'imbfocal.losses.adaptive_focal_loss',
                'imbfocal.losses.dual_focal_loss', 'imbfocal.losses.equalized_focal_loss',
                'imbfocal.losses.parameter_free_loss'}


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-len('.py')].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def _modules(under: str = '') -> Iterator[str]:
    for root, _, files in os.walk(os.path.join(PACKAGE, under)):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(root, name)


def _imports(path: str) -> Set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f'{base}.{alias.name}' for alias in node.names)
    return found


def _imported_private_names(path: str) -> Set[str]:
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
        if isinstance(node, ast.ImportFrom):
            names.update(a.name for a in node.names if a.name.startswith('_'))
    return names


@pytest.mark.parametrize('path', list(_modules('kernels')), ids=_module_name)
def test_kernels_import_nothing_from_losses(path):
    assert not [m for m in _imports(path) if m.startswith('imbfocal.losses')]


@pytest.mark.parametrize('path', list(_modules('losses/fast')), ids=_module_name)
def test_fast_paths_import_only_dispatch_and_kernels(path):
    ours = [m for m in _imports(path) if m.startswith('imbfocal.')]
    assert all(m.startswith(('imbfocal.losses.fast', 'imbfocal.kernels')) for m in ours), ours


@pytest.mark.parametrize('name', ['focal_family', 'contract', 'adaptive_gradient',
                                  'distributed'])
def test_shared_layers_import_no_loss_module(name):
    imports = _imports(os.path.join(PACKAGE, 'losses', f'{name}.py'))
    assert not imports & LOSS_MODULES
    if name == 'contract':
        assert not [m for m in imports if m.startswith('imbfocal')]


@pytest.mark.parametrize('path', list(_modules()), ids=_module_name)
def test_no_private_name_crosses_a_module_boundary(path):
    assert not _imported_private_names(path)


@pytest.mark.parametrize('path', list(_modules()), ids=_module_name)
def test_the_package_never_imports_the_lab(path):
    assert not [m for m in _imports(path) if m == 'lab' or m.startswith('lab.')]


def test_import_imbfocal_loads_no_lab_and_no_triton():
    code = ('import sys, imbfocal; print(sorted(m for m in sys.modules if m == "lab" or '
            'm.startswith(("triton", "lab.", "imbfocal.kernels."))))')
    out = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                         text=True, cwd=os.path.dirname(PACKAGE)).stdout
    assert out.strip() == '[]'
