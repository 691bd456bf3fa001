"""Textbook-style numpy layers for a simple RNN language model.

These follow the well-known semantics of the layers in "Deep Learning from
Scratch 2" (Embedding / TimeEmbedding, RNN / TimeRNN, LSTM / TimeLSTM,
GRU / TimeGRU in PyTorch's variant, TimeAffine, TimeSoftmaxWithLoss,
SimpleRnnlm, stacked LSTM and GRU language models, SGD, clip_grads).  They
were written for RNNCore's benchmark suite from those semantics; they are intentionally *not*
optimised: like the textbook they create one layer object per time step,
allocate per-step gradient buffers, scatter embedding gradients with
``np.add.at`` and keep everything in float32.

Conventions (as in the textbook):
  * every layer has ``params`` and ``grads`` lists; gradients are written into
    the ``grads`` arrays in place (``g[...] = value``) so that a model's
    flat ``grads`` list stays valid across steps;
  * ``forward`` caches what ``backward`` needs;
  * arrays are float32 unless a caller casts the parameters (the gradient
    check casts them to float64; activations then follow the parameters'
    dtype).
"""

import numpy as np


# ---------------------------------------------------------------------------
# single-step layers
# ---------------------------------------------------------------------------

class Embedding:
    """Row lookup: out = W[idx]."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        W = self.params[0]
        self.idx = idx
        return W[idx]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        # repeated ids must accumulate, hence the unbuffered scatter-add
        np.add.at(dW, self.idx, dout)
        return None


class RNN:
    """One tanh RNN step: h_next = tanh(h_prev @ Wh + x @ Wx + b)."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        a = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next = np.tanh(a)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache

        dt = dh_next * (1 - h_next ** 2)
        db = np.sum(dt, axis=0)
        dWh = np.dot(h_prev.T, dt)
        dh_prev = np.dot(dt, Wh.T)
        dWx = np.dot(x.T, dt)
        dx = np.dot(dt, Wx.T)

        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db
        return dx, dh_prev


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class LSTM:
    """One LSTM step with the four gates in one fused affine, gate order i, f, g, o
    (PyTorch's and RNNCore's; the textbook uses f, g, i, o):

        A = x @ Wx + h_prev @ Wh + b          Wx (D, 4H), Wh (H, 4H), b (4H)
        i, f, o = sigmoid(A_i, A_f, A_o); g = tanh(A_g)
        c_next = f * c_prev + i * g;  h_next = o * tanh(c_next)
    """

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        N, H = h_prev.shape

        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b

        i = sigmoid(A[:, :H])
        f = sigmoid(A[:, H:2 * H])
        g = np.tanh(A[:, 2 * H:3 * H])
        o = sigmoid(A[:, 3 * H:])

        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)

        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache

        tanh_c_next = np.tanh(c_next)

        ds = dc_next + (dh_next * o) * (1 - tanh_c_next ** 2)

        dc_prev = ds * f

        di = ds * g
        df = ds * c_prev
        do = dh_next * tanh_c_next
        dg = ds * i

        di *= i * (1 - i)
        df *= f * (1 - f)
        do *= o * (1 - o)
        dg *= (1 - g ** 2)

        dA = np.hstack((di, df, dg, do))

        dWh = np.dot(h_prev.T, dA)
        dWx = np.dot(x.T, dA)
        db = dA.sum(axis=0)

        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db

        dx = np.dot(dA, Wx.T)
        dh_prev = np.dot(dA, Wh.T)

        return dx, dh_prev, dc_prev


class GRU:
    """One GRU step as torch.nn.GRU computes it, gates r, z, n in one fused affine per input, with two biases
    (PyTorch's bias_ih and bias_hh; the second one's n part sits inside the reset gate):

        A = x @ Wx + bx,  U = h_prev @ Wh + bh      Wx (D, 3H), Wh (H, 3H), bx (3H), bh (3H)
        r = sigmoid(A_r + U_r);  z = sigmoid(A_z + U_z);  n = tanh(A_n + r * U_n)
        h_next = (1 - z) * n + z * h_prev

    (The textbook's appendix GRU has one bias, applies r to h_prev before the product with Wh and lets z weight
    the new candidate rather than h_prev; this is PyTorch's variant, which RNNCore implements.)
    """

    def __init__(self, Wx, Wh, bx, bh):
        self.params = [Wx, Wh, bx, bh]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(bx), np.zeros_like(bh)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, bx, bh = self.params
        H = Wh.shape[0]

        A = np.dot(x, Wx) + bx
        U = np.dot(h_prev, Wh) + bh

        r = sigmoid(A[:, :H] + U[:, :H])
        z = sigmoid(A[:, H:2 * H] + U[:, H:2 * H])
        u_n = U[:, 2 * H:]
        n = np.tanh(A[:, 2 * H:] + r * u_n)
        h_next = (1 - z) * n + z * h_prev

        self.cache = (x, h_prev, r, z, n, u_n)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, bx, bh = self.params
        x, h_prev, r, z, n, u_n = self.cache

        dn = dh_next * (1 - z)
        dz = dh_next * (h_prev - n)
        dh_prev = dh_next * z

        dan = dn * (1 - n ** 2)
        dr = dan * u_n
        dar = dr * r * (1 - r)
        daz = dz * z * (1 - z)

        dA = np.hstack((dar, daz, dan))
        dU = np.hstack((dar, daz, dan * r))

        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dU)
        self.grads[2][...] = dA.sum(axis=0)
        self.grads[3][...] = dU.sum(axis=0)

        dx = np.dot(dA, Wx.T)
        dh_prev += np.dot(dU, Wh.T)
        return dx, dh_prev


# ---------------------------------------------------------------------------
# time-distributed layers (inputs shaped (N, T, ...))
# ---------------------------------------------------------------------------

class TimeEmbedding:
    """One Embedding layer object per time step; gradients summed over T."""

    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.layers = None

    def forward(self, xs):
        W = self.params[0]
        N, T = xs.shape
        V, D = W.shape
        out = np.empty((N, T, D), dtype=W.dtype)
        self.layers = []
        for t in range(T):
            layer = Embedding(W)
            out[:, t, :] = layer.forward(xs[:, t])
            self.layers.append(layer)
        return out

    def backward(self, dout):
        N, T, D = dout.shape
        total = 0
        for t in range(T):
            layer = self.layers[t]
            layer.backward(dout[:, t, :])
            total += layer.grads[0]
        self.grads[0][...] = total
        return None


class TimeRNN:
    """T RNN steps sharing (Wx, Wh, b).

    stateful=True carries the last hidden state over to the next forward call
    (truncated BPTT: the backward pass stops at the window boundary; the
    gradient that would flow into the carried state is kept in ``self.dh``).
    """

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h = None
        self.dh = None
        self.stateful = stateful

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        D, H = Wx.shape

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape

        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, g in enumerate(layer.grads):
                grads[i] += g

        for i, g in enumerate(grads):
            self.grads[i][...] = g
        self.dh = dh
        return dxs


class TimeLSTM:
    """T LSTM steps sharing (Wx, Wh, b); stateful=True carries both h and c
    over to the next forward call (truncated BPTT, as TimeRNN)."""

    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c = None, None
        self.dh = None
        self.stateful = stateful

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=Wx.dtype)

        for t in range(T):
            layer = LSTM(*self.params)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D = Wx.shape[0]

        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh, dc = 0, 0

        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs


class TimeGRU:
    """T GRU steps sharing (Wx, Wh, bx, bh); stateful=True carries h over to the next forward call (truncated
    BPTT, as TimeRNN)."""

    def __init__(self, Wx, Wh, bx, bh, stateful=False):
        self.params = [Wx, Wh, bx, bh]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(bx), np.zeros_like(bh)]
        self.layers = None
        self.h = None
        self.dh = None
        self.stateful = stateful

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None

    def forward(self, xs):
        Wx, Wh, bx, bh = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]

        self.layers = []
        hs = np.empty((N, T, H), dtype=Wx.dtype)

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)

        for t in range(T):
            layer = GRU(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx, Wh, bx, bh = self.params
        N, T, H = dhs.shape
        D = Wx.shape[0]

        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh = 0
        grads = [0, 0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs


class TimeAffine:
    """Affine applied to every time step with a single (N*T, H) @ (H, V) matmul."""

    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        rx = x.reshape(N * T, -1)
        out = np.dot(rx, W) + b
        self.x = x
        return out.reshape(N, T, -1)

    def backward(self, dout):
        x = self.x
        N, T, D = x.shape
        W, b = self.params

        dout = dout.reshape(N * T, -1)
        rx = x.reshape(N * T, -1)

        db = np.sum(dout, axis=0)
        dW = np.dot(rx.T, dout)
        dx = np.dot(dout, W.T)
        dx = dx.reshape(*x.shape)

        self.grads[0][...] = dW
        self.grads[1][...] = db
        return dx


def softmax(x):
    """Numerically stable softmax over the last axis."""
    if x.ndim == 2:
        x = x - x.max(axis=1, keepdims=True)
        x = np.exp(x)
        x /= x.sum(axis=1, keepdims=True)
    elif x.ndim == 1:
        x = x - np.max(x)
        x = np.exp(x) / np.sum(np.exp(x))
    return x


class TimeSoftmaxWithLoss:
    """Softmax cross-entropy averaged over all N*T positions.

    Targets equal to ``ignore_label`` (-1) are masked out, as in the textbook;
    the benchmark never uses it, so the mean is over exactly N*T positions and
    the gradient is (p - onehot) / (N*T).
    """

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape

        if ts.ndim == 3:  # one-hot targets
            ts = ts.argmax(axis=2)

        mask = (ts != self.ignore_label)

        xs = xs.reshape(N * T, V)
        ts = ts.reshape(N * T)
        mask = mask.reshape(N * T)

        ys = softmax(xs)
        ls = np.log(ys[np.arange(N * T), ts])
        ls *= mask
        loss = -np.sum(ls)
        loss /= mask.sum()

        self.cache = (ts, ys, mask, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache

        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]

        return dx.reshape((N, T, V))


# ---------------------------------------------------------------------------
# model, optimiser, clipping
# ---------------------------------------------------------------------------

class TimeLayerLm:
    """What SimpleRnnlm and LstmRnnlm share: ``self.layers`` (time layers, input
    side first) feeding ``self.loss_layer``; flat ``params`` / ``grads`` lists;
    subclasses define ``reset_state``."""

    def _collect(self):
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def astype(self, dtype):
        """Cast every parameter (and gradient buffer) to ``dtype`` in place of
        the originals and reset the recurrent state.  Used by the float64
        gradient check."""
        for layer in self.layers:
            layer.params[:] = [p.astype(dtype) for p in layer.params]
            layer.grads[:] = [g.astype(dtype) for g in layer.grads]
        self._collect()
        self.reset_state()
        return self

    def forward(self, xs, ts):
        for layer in self.layers:
            xs = layer.forward(xs)
        loss = self.loss_layer.forward(xs, ts)
        return loss

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


class SimpleRnnlm(TimeLayerLm):
    """TimeEmbedding -> TimeRNN(stateful) -> TimeAffine -> TimeSoftmaxWithLoss.

    Textbook initialisation (float32):
      embed W  ~ randn(V, D) / 100
      rnn Wx   ~ randn(D, H) / sqrt(D)
      rnn Wh   ~ randn(H, H) / sqrt(H)
      rnn b    = 0
      affine W ~ randn(H, V) / sqrt(H)
      affine b = 0
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, seed=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.RandomState(seed).randn if seed is not None else np.random.randn

        embed_W = (rn(V, D) / 100).astype('f')
        rnn_Wx = (rn(D, H) / np.sqrt(D)).astype('f')
        rnn_Wh = (rn(H, H) / np.sqrt(H)).astype('f')
        rnn_b = np.zeros(H).astype('f')
        affine_W = (rn(H, V) / np.sqrt(H)).astype('f')
        affine_b = np.zeros(V).astype('f')

        self.layers = [
            TimeEmbedding(embed_W),
            TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True),
            TimeAffine(affine_W, affine_b),
        ]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.rnn_layer = self.layers[1]
        self._collect()

    def reset_state(self):
        self.rnn_layer.reset_state()


class LstmRnnlm(TimeLayerLm):
    """TimeEmbedding -> L x TimeLSTM(stateful) -> TimeAffine -> TimeSoftmaxWithLoss.

    The textbook's Rnnlm with its LSTM layers stacked (its BetterRnnlm without
    dropout and weight tying).  Textbook initialisation (float32):
      embed W  ~ randn(V, D) / 100
      lstm Wx  ~ randn(D_l, 4H) / sqrt(D_l)   (D_0 = D, D_l = H above)
      lstm Wh  ~ randn(H, 4H) / sqrt(H)
      lstm b   = 0
      affine W ~ randn(H, V) / sqrt(H)
      affine b = 0
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, layers=2, seed=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.RandomState(seed).randn if seed is not None else np.random.randn

        self.layers = [TimeEmbedding((rn(V, D) / 100).astype('f'))]
        for l in range(layers):
            D_l = D if l == 0 else H
            lstm_Wx = (rn(D_l, 4 * H) / np.sqrt(D_l)).astype('f')
            lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype('f')
            lstm_b = np.zeros(4 * H).astype('f')
            self.layers.append(TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True))
        self.layers.append(TimeAffine((rn(H, V) / np.sqrt(H)).astype('f'), np.zeros(V).astype('f')))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layers = self.layers[1:-1]
        self._collect()

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


class GruRnnlm(TimeLayerLm):
    """TimeEmbedding -> L x TimeGRU(stateful) -> TimeAffine -> TimeSoftmaxWithLoss: LstmRnnlm with GRU layers.
    Textbook initialisation (float32):
      embed W  ~ randn(V, D) / 100
      gru Wx   ~ randn(D_l, 3H) / sqrt(D_l)   (D_0 = D, D_l = H above)
      gru Wh   ~ randn(H, 3H) / sqrt(H)
      gru bx   = 0, gru bh = 0
      affine W ~ randn(H, V) / sqrt(H)
      affine b = 0
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, layers=2, seed=None):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.RandomState(seed).randn if seed is not None else np.random.randn

        self.layers = [TimeEmbedding((rn(V, D) / 100).astype('f'))]
        for l in range(layers):
            D_l = D if l == 0 else H
            gru_Wx = (rn(D_l, 3 * H) / np.sqrt(D_l)).astype('f')
            gru_Wh = (rn(H, 3 * H) / np.sqrt(H)).astype('f')
            self.layers.append(TimeGRU(gru_Wx, gru_Wh, np.zeros(3 * H).astype('f'), np.zeros(3 * H).astype('f'),
                                       stateful=True))
        self.layers.append(TimeAffine((rn(H, V) / np.sqrt(H)).astype('f'), np.zeros(V).astype('f')))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.gru_layers = self.layers[1:-1]
        self._collect()

    def reset_state(self):
        for layer in self.gru_layers:
            layer.reset_state()


class SGD:
    """Plain SGD: p -= lr * g."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for i in range(len(params)):
            params[i] -= self.lr * grads[i]


def clip_grads(grads, max_norm):
    """Global-norm clipping: scale every gradient by max_norm / (norm + 1e-6)
    when that rate is below 1.  Returns the (pre-clipping) global norm."""
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)

    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate
    return total_norm
