"""RNNCore from Python: the C kernels on numpy arrays (ctypes, librnncore.so bundled in the package) and RNNCore
language models: rnncore.load("model.safetensors") → perplexity, generate, to_pytorch_state_dict."""
from ._kernels import *  # noqa: F401,F403
from ._kernels import __all__ as _kernel_names
from ._model import LanguageModel, RNNCoreModelError, Vocabulary, load

__version__ = "0.4.0"
__all__ = list(_kernel_names) + ["LanguageModel", "RNNCoreModelError", "Vocabulary", "load"]
