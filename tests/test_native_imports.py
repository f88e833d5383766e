"""The native implementations stand alone: no Keras, and not the other framework, in their import graph."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

CHECK = """
import sys
import {module}
from runners import session  # the driver that runs it must not pull the others in either
print(sorted(m for m in ("keras", "torch", "tensorflow") if m in sys.modules))
"""


@pytest.mark.parametrize("module, expected", [("model.torch_model", ["torch"]),
                                              ("model.tf_model", ["tensorflow"])])
def test_native_module_imports_only_its_framework(module, expected):
    done = subprocess.run([sys.executable, "-c", CHECK.format(module=module)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(expected)
