"""RNNCore's C kernels from Python through ctypes: no compilation step, numpy arrays in and out.

    import rnncore
    hs, h_last = rnncore.rnn_forward(xs, h0, wx, wh, b)        # xs (N,T,D) -> hs (N,T,H)
    grads = rnncore.rnn_backward(dhs, xs, h0, hs, wx, wh)       # dxs, dh0, dwx, dwh, db
    hs, cs, gates, h_last, c_last = rnncore.lstm_forward(xs, h0, c0, wx, wh, b)   # wx (D,4H), gates i,f,g,o
    grads = rnncore.lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh)       # dxs, dh0, dc0, dwx, dwh, db
    loss, dlogits = rnncore.softmax_cross_entropy(logits, targets)

The library is found through $RNNCORE_LIBRARY (a path to librnncore.so), else the system search path.
Arrays are converted to C-contiguous float32 (int32 for ids); shapes are checked here and again by the library,
whose status codes become RNNCoreError with the library's own message.
"""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["RNNCoreError", "version", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
           "softmax_cross_entropy", "NO_IGNORE_INDEX"]

NO_IGNORE_INDEX = -(2**31)  # RNNCORE_NO_IGNORE_INDEX


def _load():
    path = os.environ.get("RNNCORE_LIBRARY") or ctypes.util.find_library("rnncore")
    if not path:
        raise OSError("librnncore not found: set RNNCORE_LIBRARY to the path of librnncore.so")
    return ctypes.CDLL(path)


_lib = _load()
_f32 = ctypes.POINTER(ctypes.c_float)
_i32 = ctypes.POINTER(ctypes.c_int32)
_i64 = ctypes.c_int64

_lib.rnncore_status_string.restype = ctypes.c_char_p
_lib.rnncore_status_string.argtypes = [ctypes.c_int]
_lib.rnncore_version.restype = ctypes.c_char_p
_lib.rnncore_rnn_forward.argtypes = [_f32, _f32, _f32, _f32, _f32, _f32, _f32, _i64, _i64, _i64, _i64]
_lib.rnncore_rnn_backward_workspace_size.argtypes = [ctypes.POINTER(_i64), _i64, _i64, _i64]
_lib.rnncore_rnn_backward.argtypes = [_f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32, _f32,
                                      _i64, _i64, _i64, _i64]
_lib.rnncore_lstm_forward.argtypes = [_f32] * 11 + [_i64] * 4
_lib.rnncore_lstm_backward_workspace_size.argtypes = [ctypes.POINTER(_i64), _i64, _i64, _i64, _i64]
_lib.rnncore_lstm_backward.argtypes = [_f32] * 18 + [_i64] * 5
_lib.rnncore_softmax_cross_entropy.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(_i64), _f32, _f32,
                                               _i32, _i64, _i64, ctypes.c_int32, ctypes.c_float]
for _name in ("rnncore_rnn_forward", "rnncore_rnn_backward_workspace_size", "rnncore_rnn_backward",
              "rnncore_lstm_forward", "rnncore_lstm_backward_workspace_size", "rnncore_lstm_backward",
              "rnncore_softmax_cross_entropy"):
    getattr(_lib, _name).restype = ctypes.c_int


class RNNCoreError(RuntimeError):
    """A status code returned by the C library, with its message."""

    def __init__(self, status, operation):
        self.status = status
        super().__init__(f"{operation}: {_lib.rnncore_status_string(status).decode()} (status {status})")


def version():
    """The loaded library's version string."""
    return _lib.rnncore_version().decode()


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


def rnn_forward(xs, h0, wx, wh, b=None):
    """hs[:, t] = tanh(xs[:, t]·Wx + hs[:, t-1]·Wh + b) with hs[:, -1] = h0 (None for zeros).
    Returns hs (N,T,H) and the last state (N,H)."""
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    N, T, D = xs.shape
    wx = _floats(wx, name="wx")
    H = wx.shape[1] if wx.ndim == 2 else -1
    wx = _floats(wx, (D, H), "wx")
    wh = _floats(wh, (H, H), "wh")
    h0 = None if h0 is None else _floats(h0, (N, H), "h0")
    b = None if b is None else _floats(b, (H,), "b")
    hs = np.empty((N, T, H), dtype=np.float32)
    h_last = np.empty((N, H), dtype=np.float32)
    _check(_lib.rnncore_rnn_forward(_ptr(hs), _ptr(h_last), _ptr(xs), _ptr(h0), _ptr(wx), _ptr(wh), _ptr(b),
                                    N, T, D, H), "rnn_forward")
    return hs, h_last


def rnn_backward(dhs, xs, h0, hs, wx, wh, dh_last=None):
    """Backpropagation through the window of rnn_forward. Returns dxs, dh0, dwx, dwh, db (fresh arrays)."""
    xs = _floats(xs, name="xs")
    N, T, D = xs.shape
    H = np.shape(wx)[1]
    hs = _floats(hs, (N, T, H), "hs")
    dhs = _floats(dhs, (N, T, H), "dhs")
    wx = _floats(wx, (D, H), "wx")
    wh = _floats(wh, (H, H), "wh")
    h0 = None if h0 is None else _floats(h0, (N, H), "h0")
    dh_last = None if dh_last is None else _floats(dh_last, (N, H), "dh_last")
    count = _i64()
    _check(_lib.rnncore_rnn_backward_workspace_size(ctypes.byref(count), N, T, H), "rnn_backward_workspace_size")
    workspace = np.empty(count.value, dtype=np.float32)
    dxs = np.empty((N, T, D), dtype=np.float32)
    dh0 = np.empty((N, H), dtype=np.float32)
    dwx = np.zeros((D, H), dtype=np.float32)  # the kernel accumulates parameter gradients
    dwh = np.zeros((H, H), dtype=np.float32)
    db = np.zeros((H,), dtype=np.float32)
    _check(_lib.rnncore_rnn_backward(_ptr(dxs), _ptr(dh0), _ptr(dwx), _ptr(dwh), _ptr(db), _ptr(workspace),
                                     _ptr(dhs), _ptr(dh_last), _ptr(xs), _ptr(h0), _ptr(hs), _ptr(wx), _ptr(wh),
                                     N, T, D, H), "rnn_backward")
    return dxs, dh0, dwx, dwh, db


def lstm_forward(xs, h0, c0, wx, wh, b=None):
    """LSTM over the window from (h0, c0) (None for zeros), gates i, f, g, o along the 4H columns of
    wx (D,4H), wh (H,4H) and b (4H,). Returns hs, cs (N,T,H), the activated gates (N,T,4H), h_last and c_last (N,H);
    lstm_backward needs hs, cs and gates."""
    xs = _floats(xs, name="xs")
    if xs.ndim != 3:
        raise ValueError(f"xs must be (N, T, D), got shape {xs.shape}")
    N, T, D = xs.shape
    wx = _floats(wx, name="wx")
    if wx.ndim != 2 or wx.shape[1] % 4:
        raise ValueError(f"wx must be (D, 4H), got shape {wx.shape}")
    H = wx.shape[1] // 4
    wx = _floats(wx, (D, 4 * H), "wx")
    wh = _floats(wh, (H, 4 * H), "wh")
    h0 = None if h0 is None else _floats(h0, (N, H), "h0")
    c0 = None if c0 is None else _floats(c0, (N, H), "c0")
    b = None if b is None else _floats(b, (4 * H,), "b")
    hs = np.empty((N, T, H), dtype=np.float32)
    cs = np.empty((N, T, H), dtype=np.float32)
    gates = np.empty((N, T, 4 * H), dtype=np.float32)
    h_last = np.empty((N, H), dtype=np.float32)
    c_last = np.empty((N, H), dtype=np.float32)
    _check(_lib.rnncore_lstm_forward(_ptr(hs), _ptr(cs), _ptr(gates), _ptr(h_last), _ptr(c_last), _ptr(xs), _ptr(h0),
                                     _ptr(c0), _ptr(wx), _ptr(wh), _ptr(b), N, T, D, H), "lstm_forward")
    return hs, cs, gates, h_last, c_last


def lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh, dh_last=None, dc_last=None, truncation=0):
    """Backpropagation through the window of lstm_forward; truncation > 0 lets each output's error flow back at most
    that many steps (0: the whole window). Returns dxs, dh0, dc0, dwx, dwh, db (fresh arrays)."""
    xs = _floats(xs, name="xs")
    N, T, D = xs.shape
    H = np.shape(wx)[1] // 4
    hs = _floats(hs, (N, T, H), "hs")
    cs = _floats(cs, (N, T, H), "cs")
    gates = _floats(gates, (N, T, 4 * H), "gates")
    dhs = _floats(dhs, (N, T, H), "dhs")
    wx = _floats(wx, (D, 4 * H), "wx")
    wh = _floats(wh, (H, 4 * H), "wh")
    h0 = None if h0 is None else _floats(h0, (N, H), "h0")
    c0 = None if c0 is None else _floats(c0, (N, H), "c0")
    dh_last = None if dh_last is None else _floats(dh_last, (N, H), "dh_last")
    dc_last = None if dc_last is None else _floats(dc_last, (N, H), "dc_last")
    count = _i64()
    _check(_lib.rnncore_lstm_backward_workspace_size(ctypes.byref(count), N, T, H, truncation),
           "lstm_backward_workspace_size")
    workspace = np.empty(count.value, dtype=np.float32)
    dxs = np.empty((N, T, D), dtype=np.float32)
    dh0 = np.empty((N, H), dtype=np.float32)
    dc0 = np.empty((N, H), dtype=np.float32)
    dwx = np.zeros((D, 4 * H), dtype=np.float32)  # the kernel accumulates parameter gradients
    dwh = np.zeros((H, 4 * H), dtype=np.float32)
    db = np.zeros((4 * H,), dtype=np.float32)
    _check(_lib.rnncore_lstm_backward(_ptr(dxs), _ptr(dh0), _ptr(dc0), _ptr(dwx), _ptr(dwh), _ptr(db),
                                      _ptr(workspace), _ptr(dhs), _ptr(dh_last), _ptr(dc_last), _ptr(xs), _ptr(h0),
                                      _ptr(c0), _ptr(hs), _ptr(cs), _ptr(gates), _ptr(wx), _ptr(wh), N, T, D, H,
                                      truncation), "lstm_backward")
    return dxs, dh0, dc0, dwx, dwh, db


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
