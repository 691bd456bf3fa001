"""A shim for running from a checkout without installing: loads the rnncore package from python/src/rnncore (the one
copy of the ctypes bindings) under the name rnncore. With the package installed (pip install ./python) just
`import rnncore`; here the library comes from $RNNCORE_LIBRARY, e.g.

    RNNCORE_LIBRARY=build/librnncore.so python3 -c 'import sys; sys.path.insert(0, "examples/python"); import rnncore'
"""
import importlib.util
import os
import sys

_package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "src", "rnncore")
_spec = importlib.util.spec_from_file_location("rnncore", os.path.join(_package, "__init__.py"),
                                               submodule_search_locations=[_package])
_module = importlib.util.module_from_spec(_spec)
sys.modules["rnncore"] = _module
_spec.loader.exec_module(_module)
