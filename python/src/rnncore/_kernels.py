"""RNNCore's C kernels on numpy arrays through ctypes (no compiled extension: the package loads librnncore.so).

    import rnncore
    hs, h_last = rnncore.rnn_forward(xs, h0, wx, wh, b)        # xs (N,T,D) -> hs (N,T,H)
    grads = rnncore.rnn_backward(dhs, xs, h0, hs, wx, wh)       # dxs, dh0, dwx, dwh, db; rnn_relu_* likewise
    hs, cs, gates, h_last, c_last = rnncore.lstm_forward(xs, h0, c0, wx, wh, b)   # wx (D,4H), gates i,f,g,o
    grads = rnncore.lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh)       # dxs, dh0, dc0, dwx, dwh, db
    hs, h_last, cache = rnncore.gru_forward(xs, h0, wx, wh, bx, bh)   # wx = weight_ihᵀ (D,3H), gates r,z,n
    grads = rnncore.gru_backward(dhs, xs, h0, hs, cache, wx, wh)      # dxs, dh0, dwx, dwh, dbx, dbh
    loss, dlogits = rnncore.softmax_cross_entropy(logits, targets)
    out = rnncore.embedding_forward(ids, w); y = rnncore.affine_forward(x, w, b); c = rnncore.sgemm(a, b)
    rnncore.adam_step(param, m, v, grad, step=1); norm = rnncore.clip_grad_norm([g1, g2], max_norm=0.25)

The library is the librnncore.so bundled next to this file (pip install ./python puts it there), else
$RNNCORE_LIBRARY (a path to librnncore.so), else the system search path.
Arrays are converted to C-contiguous float32 (int32 for ids); shapes are checked here and again by the library,
whose status codes become RNNCoreError with the library's own message. The in-place kernels (sgd_step,
adam_step, clip_grad_norm, the *_backward accumulators) need float32 C-contiguous arrays and say so otherwise.
"""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["RNNCoreError", "version", "library_path", "rnn_forward", "rnn_backward", "rnn_relu_forward",
           "rnn_relu_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "embedding_forward",
           "embedding_backward", "affine_forward", "affine_backward", "softmax_cross_entropy", "softmax", "sgemm",
           "sgd_step", "adam_step", "clip_grad_norm", "adaptive_softmax_log_prob", "adaptive_softmax_loss",
           "threads", "set_threads", "NO_IGNORE_INDEX"]

NO_IGNORE_INDEX = -(2**31)  # RNNCORE_NO_IGNORE_INDEX


def _library_path():
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "librnncore.so")
    if os.path.exists(bundled):
        return bundled
    path = os.environ.get("RNNCORE_LIBRARY") or ctypes.util.find_library("rnncore")
    if not path:
        raise OSError(f"librnncore not found: no {bundled} (install the package with pip install ./python), "
                      "and RNNCORE_LIBRARY is not set to the path of librnncore.so")
    return path


library_path = _library_path()
try:
    _lib = ctypes.CDLL(library_path)
except OSError as error:
    raise OSError(f"cannot load {library_path}: {error}") from None
_f32 = ctypes.POINTER(ctypes.c_float)
_i32 = ctypes.POINTER(ctypes.c_int32)
_i64 = ctypes.c_int64

_lib.rnncore_status_string.restype = ctypes.c_char_p
_lib.rnncore_status_string.argtypes = [ctypes.c_int]
_lib.rnncore_version.restype = ctypes.c_char_p


class _Window(ctypes.Structure):
    _fields_ = [("N", _i64), ("T", _i64), ("D", _i64), ("H", _i64), ("truncation", _i64)]


class _Weights(ctypes.Structure):
    _fields_ = [("wx", _f32), ("wh", _f32), ("b", _f32), ("b_hidden", _f32)]


class _Gradients(ctypes.Structure):
    _fields_ = [("dwx", _f32), ("dwh", _f32), ("db", _f32), ("db_hidden", _f32)]


class _Sizes(ctypes.Structure):
    _fields_ = [("gates", _i64), ("states", _i64), ("cache", _i64), ("workspace", _i64)]


_P = ctypes.POINTER
for _cell in ("rnn", "rnn_relu", "lstm", "gru"):
    getattr(_lib, f"rnncore_{_cell}_sizes").argtypes = [_P(_Sizes), _P(_Window)]
    getattr(_lib, f"rnncore_{_cell}_forward").argtypes = [_f32] * 5 + [_P(_Weights), _P(_Window)]
    getattr(_lib, f"rnncore_{_cell}_backward").argtypes = ([_f32, _f32, _P(_Gradients)] + [_f32] * 7 +
                                                            [_P(_Weights), _P(_Window)])
    for _fn in ("sizes", "forward", "backward"):
        getattr(_lib, f"rnncore_{_cell}_{_fn}").restype = ctypes.c_int
_lib.rnncore_softmax_cross_entropy.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(_i64), _f32, _f32,
                                               _i32, _i64, _i64, ctypes.c_int32, ctypes.c_float]
_lib.rnncore_softmax_cross_entropy.restype = ctypes.c_int
_c_int, _c_float, _c_double = ctypes.c_int, ctypes.c_float, ctypes.c_double


class _AdaptiveShape(ctypes.Structure):
    _fields_ = [("H", _i64), ("clusters", _i64), ("cutoffs", ctypes.POINTER(_i64)),
                ("projections", ctypes.POINTER(_i64))]


class _AdaptiveWeights(ctypes.Structure):
    _fields_ = [("head_weight", _f32), ("head_bias", _f32), ("tail_projection", ctypes.POINTER(_f32)),
                ("tail_output", ctypes.POINTER(_f32))]


_lib.rnncore_adaptive_softmax_workspace.argtypes = [ctypes.POINTER(_i64), ctypes.POINTER(_AdaptiveShape), _i64]
_lib.rnncore_adaptive_softmax_log_prob.argtypes = [_f32, _f32, _i64, ctypes.POINTER(_AdaptiveShape),
                                                   ctypes.POINTER(_AdaptiveWeights), _f32, _i64]
_lib.rnncore_adaptive_softmax_cross_entropy.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(_i64), _f32,
                                                        ctypes.c_void_p, _f32, _i32, _i64,
                                                        ctypes.POINTER(_AdaptiveShape),
                                                        ctypes.POINTER(_AdaptiveWeights), ctypes.c_int32,
                                                        ctypes.c_float, _f32, _i64]
for _fn in ("workspace", "log_prob", "cross_entropy"):
    getattr(_lib, f"rnncore_adaptive_softmax_{_fn}").restype = ctypes.c_int


class _AdamParams(ctypes.Structure):
    _fields_ = [("lr", _c_float), ("beta1", _c_float), ("beta2", _c_float), ("eps", _c_float),
                ("weight_decay", _c_float)]


for _name, _args in {
    "embedding_forward": [_f32, _i32, _f32, _i64, _i64, _i64],
    "embedding_backward": [_f32, _f32, _i32, _i64, _i64, _i64],
    "affine_forward": [_f32, _f32, _f32, _f32, _i64, _i64, _i64],
    "affine_backward": [_f32, _f32, _f32, _f32, _f32, _f32, _i64, _i64, _i64],
    "softmax_forward": [_f32, _f32, _i64, _i64],
    "sgemm": [_f32, _f32, _f32, _i64, _i64, _i64, _c_int, _c_int, _c_float, _c_float],
    "sgd_step": [_f32, _f32, _i64, _c_float],
    "adam_step": [_f32, _f32, _f32, _f32, _i64, ctypes.POINTER(_AdamParams), _i64],
    "clip_grad_norm": [ctypes.POINTER(_c_double), ctypes.POINTER(_f32), ctypes.POINTER(_i64), _i64, _c_double],
}.items():
    getattr(_lib, f"rnncore_{_name}").argtypes = _args
    getattr(_lib, f"rnncore_{_name}").restype = ctypes.c_int


class RNNCoreError(RuntimeError):
    """A status code returned by the C library, with its message."""

    def __init__(self, status, operation):
        self.status = status
        super().__init__(f"{operation}: {_lib.rnncore_status_string(status).decode()} (status {status})")


def version():
    """The loaded library's version string."""
    return _lib.rnncore_version().decode()


_lib.rnncore_threads.argtypes = []
_lib.rnncore_threads.restype = ctypes.c_int
_lib.rnncore_set_threads.argtypes = [ctypes.c_int]
_lib.rnncore_set_threads.restype = ctypes.c_int


def threads():
    """How many threads the kernels run on (RNNCORE_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the processors,
    unless set_threads changed it)."""
    return _lib.rnncore_threads()


def set_threads(count):
    """Runs the kernels on `count` threads (1 to 256; 0: the default from the environment again)."""
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(f"thread count must be an int, got {type(count).__name__}")
    _check(_lib.rnncore_set_threads(count), "set_threads")


def _check(status, operation):
    if status != 0:
        raise RNNCoreError(status, operation)


def _floats(a, shape=None, name="array"):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")
    return a


def _ptr(a):
    return None if a is None else a.ctypes.data_as(_f32)


def _sizes(cell, N, T, D, H, truncation):
    sizes = _Sizes()
    window = _Window(N, T, D, H, truncation)
    _check(getattr(_lib, f"rnncore_{cell}_sizes")(ctypes.byref(sizes), ctypes.byref(window)), f"{cell}_sizes")
    return sizes, window


def _shapes(xs, wx, gates):
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    N, T, D = xs.shape
    wx = _floats(wx, name="wx")
    if wx.ndim != 2 or wx.shape[1] % gates:
        raise ValueError(f"wx must be (D, {gates}H), got shape {wx.shape}")
    H = wx.shape[1] // gates
    return xs, _floats(wx, (D, gates * H), "wx"), N, T, D, H


def _cell_forward(cell, gates, xs, state0, wx, wh, b, b_hidden):
    """One window of `cell`: returns hs (N,T,H), the cache and the last state (S,N,H)."""
    xs, wx, N, T, D, H = _shapes(xs, wx, gates)
    G = gates * H
    wh = _floats(wh, (H, G), "wh")
    b = None if b is None else _floats(b, (G,), "b")
    b_hidden = None if b_hidden is None else _floats(b_hidden, (G,), "b_hidden")
    sizes, window = _sizes(cell, N, T, D, H, 0)
    S = sizes.states
    state0 = None if state0 is None else _floats(state0, (S, N, H), "state0")
    hs = np.empty((N, T, H), dtype=np.float32)
    cache = np.empty(max(sizes.cache, 1), dtype=np.float32)
    state_last = np.empty((S, N, H), dtype=np.float32)
    weights = _Weights(_ptr(wx), _ptr(wh), _ptr(b), _ptr(b_hidden))
    _check(getattr(_lib, f"rnncore_{cell}_forward")(_ptr(hs), _ptr(cache) if sizes.cache else None, _ptr(state_last),
                                                     _ptr(xs), _ptr(state0), ctypes.byref(weights),
                                                     ctypes.byref(window)), f"{cell}_forward")
    return hs, cache[:sizes.cache], state_last


def _cell_backward(cell, gates, dhs, dstate_last, xs, state0, hs, cache, wx, wh, truncation, hidden_bias=False):
    """Backpropagation through the window of _cell_forward. Returns dxs, dstate0, dwx, dwh, db and db_hidden (None
    unless hidden_bias), fresh arrays (the parameter gradients start from zeros)."""
    xs, wx, N, T, D, H = _shapes(xs, wx, gates)
    G = gates * H
    wh = _floats(wh, (H, G), "wh")
    hs = _floats(hs, (N, T, H), "hs")
    dhs = _floats(dhs, (N, T, H), "dhs")
    sizes, window = _sizes(cell, N, T, D, H, truncation)
    S = sizes.states
    cache = _floats(cache, (sizes.cache,), "cache") if sizes.cache else None
    state0 = None if state0 is None else _floats(state0, (S, N, H), "state0")
    dstate_last = None if dstate_last is None else _floats(dstate_last, (S, N, H), "dstate_last")
    workspace = np.empty(sizes.workspace, dtype=np.float32)
    dxs = np.empty((N, T, D), dtype=np.float32)
    dstate0 = np.empty((S, N, H), dtype=np.float32)
    dwx = np.zeros((D, G), dtype=np.float32)  # the kernels accumulate parameter gradients
    dwh = np.zeros((H, G), dtype=np.float32)
    db = np.zeros((G,), dtype=np.float32)
    db_hidden = np.zeros((G,), dtype=np.float32) if hidden_bias else None
    weights = _Weights(_ptr(wx), _ptr(wh), None, None)
    grads = _Gradients(_ptr(dwx), _ptr(dwh), _ptr(db), _ptr(db_hidden))
    _check(getattr(_lib, f"rnncore_{cell}_backward")(_ptr(dxs), _ptr(dstate0), ctypes.byref(grads), _ptr(workspace),
                                                      _ptr(dhs), _ptr(dstate_last), _ptr(xs), _ptr(state0), _ptr(hs),
                                                      _ptr(cache), ctypes.byref(weights), ctypes.byref(window)),
           f"{cell}_backward")
    return dxs, dstate0, dwx, dwh, db, db_hidden


def _one_state(h, N, H, name):
    return None if h is None else _floats(h, (N, H), name).reshape(1, N, H)


def rnn_forward(xs, h0, wx, wh, b=None, nonlinearity="tanh"):
    """hs[:, t] = f(xs[:, t]·Wx + hs[:, t-1]·Wh + b) with hs[:, -1] = h0 (None for zeros), f = tanh or relu.
    Returns hs (N,T,H) and the last state (N,H)."""
    cell = {"tanh": "rnn", "relu": "rnn_relu"}[nonlinearity]
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    H = np.shape(wx)[1] if np.ndim(wx) == 2 else -1
    hs, _, state_last = _cell_forward(cell, 1, xs, _one_state(h0, xs.shape[0], H, "h0"), wx, wh, b, None)
    return hs, state_last[0]


def rnn_backward(dhs, xs, h0, hs, wx, wh, dh_last=None, truncation=0, nonlinearity="tanh"):
    """Backpropagation through the window of rnn_forward; truncation > 0 lets each output's error flow back at most
    that many steps (0: the whole window). Returns dxs, dh0, dwx, dwh, db (fresh arrays)."""
    cell = {"tanh": "rnn", "relu": "rnn_relu"}[nonlinearity]
    N, H = np.shape(xs)[0], np.shape(wx)[1]
    dxs, dstate0, dwx, dwh, db, _ = _cell_backward(cell, 1, dhs, _one_state(dh_last, N, H, "dh_last"), xs,
                                                   _one_state(h0, N, H, "h0"), hs, None, wx, wh, truncation)
    return dxs, dstate0[0], dwx, dwh, db


def rnn_relu_forward(xs, h0, wx, wh, b=None):
    """rnn_forward with f = max(0, ·) (torch.nn.RNN(nonlinearity='relu'))."""
    return rnn_forward(xs, h0, wx, wh, b, nonlinearity="relu")


def rnn_relu_backward(dhs, xs, h0, hs, wx, wh, dh_last=None, truncation=0):
    """rnn_backward of rnn_relu_forward."""
    return rnn_backward(dhs, xs, h0, hs, wx, wh, dh_last, truncation, nonlinearity="relu")


def _pair(a, b, N, H, names):
    if a is None and b is None:
        return None
    s = np.zeros((2, N, H), dtype=np.float32)
    if a is not None:
        s[0] = _floats(a, (N, H), names[0])
    if b is not None:
        s[1] = _floats(b, (N, H), names[1])
    return s


def lstm_forward(xs, h0, c0, wx, wh, b=None):
    """LSTM over the window from (h0, c0) (None for zeros), gates i, f, g, o along the 4H columns of
    wx (D,4H), wh (H,4H) and b (4H,). Returns hs, cs (N,T,H), the activated gates (N,T,4H), h_last and c_last (N,H);
    lstm_backward needs hs, cs and gates."""
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    N, T, _ = xs.shape
    if np.ndim(wx) != 2 or np.shape(wx)[1] % 4:
        raise ValueError(f"wx must be (D, 4H), got shape {np.shape(wx)}")
    H = np.shape(wx)[1] // 4
    hs, cache, state_last = _cell_forward("lstm", 4, xs, _pair(h0, c0, N, H, ("h0", "c0")), wx, wh, b, None)
    cs = cache[:N * T * H].reshape(N, T, H)  # the cache: cs, then the gates
    gates = cache[N * T * H:].reshape(N, T, 4 * H)
    return hs, cs, gates, state_last[0], state_last[1]


def lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh, dh_last=None, dc_last=None, truncation=0):
    """Backpropagation through the window of lstm_forward; truncation > 0 lets each output's error flow back at most
    that many steps (0: the whole window). Returns dxs, dh0, dc0, dwx, dwh, db (fresh arrays)."""
    N, T, _ = np.shape(xs)
    H = np.shape(wx)[1] // 4
    cache = np.concatenate([_floats(cs, (N, T, H), "cs").ravel(), _floats(gates, (N, T, 4 * H), "gates").ravel()])
    dxs, dstate0, dwx, dwh, db, _ = _cell_backward("lstm", 4, dhs, _pair(dh_last, dc_last, N, H, ("dh_last", "dc_last")),
                                                   xs, _pair(h0, c0, N, H, ("h0", "c0")), hs, cache, wx, wh,
                                                   truncation)
    return dxs, dstate0[0], dstate0[1], dwx, dwh, db


def gru_forward(xs, h0, wx, wh, bx=None, bh=None):
    """torch.nn.GRU over the window from h0 (N,H) (None for zeros), gates r, z, n: wx (D,3H) is weight_ihᵀ,
    wh (H,3H) weight_hhᵀ, bx (3H,) bias_ih, bh (3H,) bias_hh. Returns hs (N,T,H), h_last (N,H) and the cache
    gru_backward needs."""
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    if np.ndim(wx) != 2 or np.shape(wx)[1] % 3:
        raise ValueError(f"wx must be (D, 3H), got shape {np.shape(wx)}")
    N, H = xs.shape[0], np.shape(wx)[1] // 3
    hs, cache, state_last = _cell_forward("gru", 3, xs, _one_state(h0, N, H, "h0"), wx, wh, bx, bh)
    return hs, state_last[0], cache


def gru_backward(dhs, xs, h0, hs, cache, wx, wh, dh_last=None, truncation=0):
    """Backpropagation through the window of gru_forward; truncation > 0 lets each output's error flow back at most
    that many steps (0: the whole window). Returns dxs, dh0, dwx, dwh, dbx, dbh (fresh arrays)."""
    N, H = np.shape(xs)[0], np.shape(wx)[1] // 3
    dxs, dstate0, dwx, dwh, dbx, dbh = _cell_backward("gru", 3, dhs, _one_state(dh_last, N, H, "dh_last"), xs,
                                                      _one_state(h0, N, H, "h0"), hs, cache, wx, wh, truncation,
                                                      hidden_bias=True)
    return dxs, dstate0[0], dwx, dwh, dbx, dbh


def softmax_cross_entropy(logits, targets, ignore_index=NO_IGNORE_INDEX, dloss=1.0):
    """Mean cross-entropy of softmax(logits) over the rows whose target is not ignore_index, and its gradient.
    logits (..., V), targets (...) ints in [0, V). Returns (loss, dlogits)."""
    logits = _floats(logits, name="logits")
    V = logits.shape[-1]
    M = logits.size // V
    targets = np.ascontiguousarray(targets, dtype=np.int32)
    if targets.size != M:
        raise ValueError(f"{targets.size} targets for {M} rows of logits")
    loss = ctypes.c_double()
    dlogits = np.empty_like(logits)
    _check(_lib.rnncore_softmax_cross_entropy(ctypes.byref(loss), None, _ptr(dlogits), _ptr(logits),
                                              targets.ctypes.data_as(_i32), M, V, ignore_index, dloss),
           "softmax_cross_entropy")
    return loss.value, dlogits


def _adaptive_call(x, cutoffs, head_weight, head_bias, tail_projections, tail_weights, body):
    """Builds the C shape and weight structs of an adaptive softmax over the rows of x (..., H) and calls
    body(x (M,H), M, V, shape, weights, workspace, workspace_floats)."""
    head_weight = _floats(head_weight, name="head_weight")
    H = head_weight.shape[0]
    x, M = _rows(x, H, "x")
    x = x.reshape(M, H)
    C = len(tail_projections)
    if len(cutoffs) != C or len(tail_weights) != C or C < 1:
        raise ValueError(f"{len(cutoffs)} cutoffs, {C} tail projections and {len(tail_weights)} tail weights: "
                         "one of each per tail cluster, at least one")
    projections = [_floats(p, name=f"tail_projections[{i}]") for i, p in enumerate(tail_projections)]
    outputs = [_floats(w, name=f"tail_weights[{i}]") for i, w in enumerate(tail_weights)]
    V = int(cutoffs[-1]) + outputs[-1].shape[1]
    bounds = (_i64 * (C + 1))(*[int(c) for c in cutoffs], V)
    sizes = (_i64 * C)(*[p.shape[1] for p in projections])
    shape = _AdaptiveShape(H, C, bounds, sizes)
    bias = None if head_bias is None else _floats(head_bias, name="head_bias")
    weights = _AdaptiveWeights(_ptr(head_weight), None if bias is None else _ptr(bias),
                               (_f32 * C)(*[_ptr(p) for p in projections]), (_f32 * C)(*[_ptr(w) for w in outputs]))
    floats = _i64()
    _check(_lib.rnncore_adaptive_softmax_workspace(ctypes.byref(floats), ctypes.byref(shape), M),
           "adaptive_softmax_workspace")
    workspace = np.empty(max(floats.value, 1), dtype=np.float32)
    return body(x, M, V, shape, weights, workspace, floats.value)


def adaptive_softmax_log_prob(x, cutoffs, head_weight, head_bias, tail_projections, tail_weights):
    """log p(w | x) for every word of an adaptive softmax (PyTorch's AdaptiveLogSoftmaxWithLoss with weights
    stored (in, out)): x (..., H); cutoffs the cluster boundaries below V (cutoffs[0] words in the head);
    head_weight (H, cutoffs[0] + C), head_bias (cutoffs[0] + C) or None; tail_projections[i] (H, P_i) and
    tail_weights[i] (P_i, S_i). Returns (..., V) log-probabilities."""
    shape_in = np.shape(x)

    def body(x, M, V, shape, weights, workspace, floats):
        out = np.empty((M, V), dtype=np.float32)
        _check(_lib.rnncore_adaptive_softmax_log_prob(_ptr(out), _ptr(x), M, ctypes.byref(shape),
                                                      ctypes.byref(weights), _ptr(workspace), floats),
               "adaptive_softmax_log_prob")
        return out
    out = _adaptive_call(x, cutoffs, head_weight, head_bias, tail_projections, tail_weights, body)
    return out.reshape(tuple(shape_in[:-1]) + (out.shape[1],))


def adaptive_softmax_loss(x, targets, cutoffs, head_weight, head_bias, tail_projections, tail_weights,
                          ignore_index=NO_IGNORE_INDEX):
    """The mean cross-entropy of an adaptive softmax (arguments as adaptive_softmax_log_prob) against one target
    per row of x, from the fused C call, without gradients. Returns (loss, counted rows)."""
    targets = np.ascontiguousarray(targets, dtype=np.int32).reshape(-1)

    def body(x, M, V, shape, weights, workspace, floats):
        if targets.size != M:
            raise ValueError(f"{targets.size} targets for {M} rows")
        loss, count = ctypes.c_double(), _i64()
        _check(_lib.rnncore_adaptive_softmax_cross_entropy(
            ctypes.byref(loss), ctypes.byref(count), None, None, _ptr(x), targets.ctypes.data_as(_i32), M,
            ctypes.byref(shape), ctypes.byref(weights), ignore_index, 1.0, _ptr(workspace), floats),
            "adaptive_softmax_cross_entropy")
        return loss.value, count.value
    return _adaptive_call(x, cutoffs, head_weight, head_bias, tail_projections, tail_weights, body)


def _ids(ids, name="ids"):
    return np.ascontiguousarray(ids, dtype=np.int32)


def _inplace(a, name):
    """An array a kernel updates in place: it must already be float32 and C-contiguous (a copy would be lost)."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"{name} is updated in place: it must be a writeable C-contiguous float32 numpy array")
    return a


def embedding_forward(ids, w):
    """out[...] = w[ids[...]]: ids (...) ints in [0, V), w (V,D). Returns (..., D)."""
    w = _floats(w, name="w")
    if w.ndim != 2:
        raise ValueError(f"w must be (V, D), got shape {w.shape}")
    ids = _ids(ids)
    V, D = w.shape
    out = np.empty(ids.shape + (D,), dtype=np.float32)
    _check(_lib.rnncore_embedding_forward(_ptr(out), ids.ctypes.data_as(_i32), _ptr(w), ids.size, V, D),
           "embedding_forward")
    return out


def embedding_backward(dout, ids, V):
    """The gradient of the (V,D) table from dout (..., D): dw[ids[m]] += dout[m]. Returns a fresh dw."""
    ids = _ids(ids)
    dout = _floats(dout, name="dout")
    D = dout.shape[-1] if dout.ndim else 0
    dout = _floats(dout, ids.shape + (D,), "dout")
    dw = np.zeros((V, D), dtype=np.float32)
    _check(_lib.rnncore_embedding_backward(_ptr(dw), _ptr(dout), ids.ctypes.data_as(_i32), ids.size, V, D),
           "embedding_backward")
    return dw


def _rows(x, D, name):
    x = _floats(x, name=name)
    if x.ndim < 1 or x.shape[-1] != D:
        raise ValueError(f"{name} has shape {x.shape}, expected (..., {D})")
    return x, x.size // D


def affine_forward(x, w, b=None):
    """y = x·w + b: x (..., D), w (D,O), b (O,) or None. Returns (..., O)."""
    w = _floats(w, name="w")
    if w.ndim != 2:
        raise ValueError(f"w must be (D, O), got shape {w.shape}")
    D, O = w.shape
    x, M = _rows(x, D, "x")
    b = None if b is None else _floats(b, (O,), "b")
    y = np.empty(x.shape[:-1] + (O,), dtype=np.float32)
    _check(_lib.rnncore_affine_forward(_ptr(y), _ptr(x), _ptr(w), _ptr(b), M, D, O), "affine_forward")
    return y


def affine_backward(dy, x, w):
    """Backward of affine_forward: returns dx (..., D), dw (D,O) and db (O,) (fresh arrays)."""
    w = _floats(w, name="w")
    if w.ndim != 2:
        raise ValueError(f"w must be (D, O), got shape {w.shape}")
    D, O = w.shape
    x, M = _rows(x, D, "x")
    dy = _floats(dy, x.shape[:-1] + (O,), "dy")
    dx = np.empty_like(x)
    dw = np.zeros((D, O), dtype=np.float32)
    db = np.zeros((O,), dtype=np.float32)
    _check(_lib.rnncore_affine_backward(_ptr(dx), _ptr(dw), _ptr(db), _ptr(dy), _ptr(x), _ptr(w), M, D, O),
           "affine_backward")
    return dx, dw, db


def softmax(logits):
    """softmax over the last axis of logits (..., V), stable. Returns a fresh float32 array."""
    logits = _floats(logits, name="logits")
    if logits.ndim < 1 or logits.shape[-1] == 0:
        raise ValueError(f"logits must be (..., V) with V > 0, got shape {logits.shape}")
    V = logits.shape[-1]
    probs = np.empty_like(logits)
    _check(_lib.rnncore_softmax_forward(_ptr(probs), _ptr(logits), logits.size // V, V), "softmax_forward")
    return probs


def sgemm(a, b, c=None, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """alpha·op(a)·op(b) + beta·c through the library's BLAS (op transposes when trans_*). Returns a fresh (M,N)
    array (c, when given, is read, not modified)."""
    a, b = _floats(a, name="a"), _floats(b, name="b")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be matrices, got shapes {a.shape} and {b.shape}")
    M, K = a.shape[::-1] if trans_a else a.shape
    K2, N = b.shape[::-1] if trans_b else b.shape
    if K != K2:
        raise ValueError(f"op(a) is ({M}, {K}) but op(b) is ({K2}, {N})")
    out = np.zeros((M, N), dtype=np.float32) if c is None else _floats(c, (M, N), "c").copy()
    _check(_lib.rnncore_sgemm(_ptr(out), _ptr(a), _ptr(b), M, N, K, int(bool(trans_a)), int(bool(trans_b)), alpha,
                              beta), "sgemm")
    return out


def sgd_step(param, grad, lr):
    """param -= lr · grad, in place (param: float32 C-contiguous)."""
    param = _inplace(param, "param")
    grad = _floats(grad, param.shape, "grad")
    _check(_lib.rnncore_sgd_step(_ptr(param), _ptr(grad), param.size, lr), "sgd_step")


def adam_step(param, m, v, grad, step, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One bias-corrected Adam step (step counts from 1) on param, m and v in place (float32 C-contiguous, m and v
    zeros before step 1); weight_decay is decoupled (AdamW)."""
    param, m, v = _inplace(param, "param"), _inplace(m, "m"), _inplace(v, "v")
    if m.shape != param.shape or v.shape != param.shape:
        raise ValueError(f"m {m.shape} and v {v.shape} must have param's shape {param.shape}")
    grad = _floats(grad, param.shape, "grad")
    params = _AdamParams(lr, beta1, beta2, eps, weight_decay)
    _check(_lib.rnncore_adam_step(_ptr(param), _ptr(m), _ptr(v), _ptr(grad), param.size, ctypes.byref(params), step),
           "adam_step")


def clip_grad_norm(grads, max_norm=0.0):
    """The global L2 norm of the gradient arrays (float32 C-contiguous); when max_norm > 0 and the norm exceeds it,
    every array is scaled in place by max_norm / (norm + 1e-6). Returns the norm before clipping."""
    grads = [_inplace(g, f"grads[{i}]") for i, g in enumerate(grads)]
    if not grads:
        raise ValueError("clip_grad_norm needs at least one gradient array")
    pointers = (_f32 * len(grads))(*[_ptr(g) for g in grads])
    counts = (_i64 * len(grads))(*[g.size for g in grads])
    norm = ctypes.c_double()
    _check(_lib.rnncore_clip_grad_norm(ctypes.byref(norm), pointers, counts, len(grads), max_norm), "clip_grad_norm")
    return norm.value
