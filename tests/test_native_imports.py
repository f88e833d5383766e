"""The native implementations stand alone: no Keras, and not the other framework, in their import graph."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

# As a native run does: Keras is made unimportable first (TensorFlow itself would load it), so any
# import of Keras on the native path fails loudly instead of passing unnoticed.
CHECK = """
import sys
from runners.harness import policy
policy.import_framework("{name}")
import {module}
from runners.harness import session  # the driver that runs it must not pull the others in either
print(sorted(m for m in ("keras", "torch", "tensorflow") if sys.modules.get(m) is not None))
"""


@pytest.mark.parametrize("name, module, expected", [("torch", "model.torch_model", ["torch"]),
                                                    ("tensorflow", "model.tf_model", ["tensorflow"])])
def test_native_module_imports_only_its_framework(name, module, expected):
    done = subprocess.run([sys.executable, "-c", CHECK.format(name=name, module=module)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(expected)
