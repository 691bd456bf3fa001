"""Checks the ctypes bindings of the cells (tanh and ReLU RNN, LSTM, GRU) and softmax cross-entropy against plain numpy references in float64 (run by pytest, and by ctest through unittest when python3 has numpy).

Tolerances: float32 kernels against float64 references differ by float32 rounding, which grows with the
reduction length (D + H terms per hidden unit, N·T terms per weight gradient): 1e-5 absolute + 1e-5 relative
covers the shapes used here with a wide margin (typical errors are around 1e-7).
"""
import sys
import unittest

import numpy as np

import rnncore  # the package in python/src (PYTHONPATH, or pip install ./python)

TOL = dict(rtol=1e-5, atol=1e-5)


def ref_rnn_forward(xs, h0, wx, wh, b):
    N, T, _ = xs.shape
    h = np.zeros((N, wx.shape[1])) if h0 is None else h0.astype(np.float64)
    hs = []
    for t in range(T):
        h = np.tanh(xs[:, t] @ wx + h @ wh + b)
        hs.append(h)
    return np.stack(hs, axis=1)


def ref_rnn_backward(dhs, xs, h0, hs, wx, wh):
    N, T, D = xs.shape
    H = wx.shape[1]
    dxs, dwx, dwh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dh = np.zeros((N, H))
    for t in reversed(range(T)):
        dt = (dhs[:, t] + dh) * (1 - hs[:, t] ** 2)
        h_prev = hs[:, t - 1] if t > 0 else (np.zeros((N, H)) if h0 is None else h0)
        dxs[:, t] = dt @ wx.T
        dwx += xs[:, t].T @ dt
        dwh += h_prev.T @ dt
        db += dt.sum(axis=0)
        dh = dt @ wh.T
    return dxs, dh, dwx, dwh, db


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def ref_lstm_forward(xs, h0, c0, wx, wh, b):
    N, T, _ = xs.shape
    H = wh.shape[0]
    h = np.zeros((N, H)) if h0 is None else h0
    c = np.zeros((N, H)) if c0 is None else c0
    hs, cs, gates = [], [], []
    for t in range(T):
        a = xs[:, t] @ wx + h @ wh + b
        i, f, g, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
        gates.append(np.concatenate([i, f, g, o], axis=1))
    return np.stack(hs, axis=1), np.stack(cs, axis=1), np.stack(gates, axis=1)


def ref_lstm_backward(dhs, dh_last, dc_last, xs, h0, c0, cs, gates, wx, wh):
    """Full BPTT from the forward's cs and gates (h_prev recomputed as o·tanh(c))."""
    N, T, D = xs.shape
    H = wh.shape[0]
    dxs, dwx, dwh, db = np.zeros((N, T, D)), np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dh, dc = dh_last.copy(), dc_last.copy()
    for t in reversed(range(T)):
        i, f, g, o = (gates[:, t, k * H:(k + 1) * H] for k in range(4))
        c_prev = cs[:, t - 1] if t > 0 else c0
        h_prev = gates[:, t - 1, 3 * H:] * np.tanh(cs[:, t - 1]) if t > 0 else h0
        tc = np.tanh(cs[:, t])
        dh = dh + dhs[:, t]
        dc = dc + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                             dh * tc * o * (1 - o)], axis=1)
        dxs[:, t] = da @ wx.T
        dwx += xs[:, t].T @ da
        dwh += h_prev.T @ da
        db += da.sum(axis=0)
        dh, dc = da @ wh.T, dc * f
    return dxs, dh, dc, dwx, dwh, db


def ref_rnn_relu_forward(xs, h0, wx, wh, b):
    N, T, _ = xs.shape
    h = np.zeros((N, wx.shape[1])) if h0 is None else h0
    hs = []
    for t in range(T):
        h = np.maximum(0, xs[:, t] @ wx + h @ wh + b)
        hs.append(h)
    return np.stack(hs, axis=1)


def ref_rnn_relu_backward(dhs, xs, h0, hs, wx, wh):
    N, T, D = xs.shape
    H = wx.shape[1]
    dxs, dwx, dwh, db = np.zeros((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dh = np.zeros((N, H))
    for t in reversed(range(T)):
        dt = (dhs[:, t] + dh) * (hs[:, t] > 0)
        h_prev = hs[:, t - 1] if t > 0 else h0
        dxs[:, t] = dt @ wx.T
        dwx += xs[:, t].T @ dt
        dwh += h_prev.T @ dt
        db += dt.sum(axis=0)
        dh = dt @ wh.T
    return dxs, dh, dwx, dwh, db


def ref_gru(xs, h0, w_ih, w_hh, b_ih, b_hh, dhs=None):
    """torch.nn.GRU written out in float64 from PyTorch's own parameters (weight_ih (3H,D), weight_hh (3H,H), rows
    r, z, n): the forward, and with dhs the backward by plain backprop. Returns hs, or hs and (dxs, dh0, dW_ih, dW_hh,
    db_ih, db_hh) in PyTorch's shapes."""
    N, T, _ = xs.shape
    H = w_hh.shape[1]
    Wir, Wiz, Win = w_ih[:H], w_ih[H:2 * H], w_ih[2 * H:]
    Whr, Whz, Whn = w_hh[:H], w_hh[H:2 * H], w_hh[2 * H:]
    h = h0
    hs, saved = [], []
    for t in range(T):
        x = xs[:, t]
        r = _sigmoid(x @ Wir.T + b_ih[:H] + h @ Whr.T + b_hh[:H])
        z = _sigmoid(x @ Wiz.T + b_ih[H:2 * H] + h @ Whz.T + b_hh[H:2 * H])
        hn = h @ Whn.T + b_hh[2 * H:]
        n = np.tanh(x @ Win.T + b_ih[2 * H:] + r * hn)
        saved.append((x, h, r, z, n, hn))
        h = (1 - z) * n + z * h
        hs.append(h)
    hs = np.stack(hs, axis=1)
    if dhs is None:
        return hs
    dw_ih, dw_hh, db_ih, db_hh = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(3 * H), np.zeros(3 * H)
    dxs = np.zeros_like(xs)
    dh = np.zeros_like(h0)
    for t in reversed(range(T)):
        x, hp, r, z, n, hn = saved[t]
        dh = dh + dhs[:, t]
        dn = dh * (1 - z)
        dan = dn * (1 - n ** 2)           # through the tanh of n
        daz = dh * (hp - n) * z * (1 - z)
        dar = dan * hn * r * (1 - r)      # n = tanh(a_n + r * hn)
        da = np.concatenate([dar, daz, dan], axis=1)        # gradient of x·W_ihᵀ + b_ih
        du = np.concatenate([dar, daz, dan * r], axis=1)    # gradient of h·W_hhᵀ + b_hh
        dxs[:, t] = da @ w_ih
        dw_ih += da.T @ x
        dw_hh += du.T @ hp
        db_ih += da.sum(axis=0)
        db_hh += du.sum(axis=0)
        dh = dh * z + du @ w_hh
    return hs, (dxs, dh, dw_ih, dw_hh, db_ih, db_hh)


def ref_softmax_cross_entropy(logits, targets):
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    rows = np.arange(len(targets))
    loss = -np.log(p[rows, targets]).mean()
    p[rows, targets] -= 1
    return loss, (p / len(targets)).reshape(logits.shape)


class BindingTests(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(7)

    def test_rnn_forward_and_backward_match_numpy(self):
        for (N, T, D, H) in [(1, 1, 3, 2), (3, 5, 4, 6), (8, 16, 32, 24)]:
            r = self.rng
            xs = r.standard_normal((N, T, D)).astype(np.float32)
            h0 = r.standard_normal((N, H)).astype(np.float32) * 0.5
            wx = (r.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
            wh = (r.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
            b = r.standard_normal(H).astype(np.float32) * 0.1
            hs, h_last = rnncore.rnn_forward(xs, h0, wx, wh, b)
            ref = ref_rnn_forward(xs.astype(np.float64), h0, wx.astype(np.float64), wh.astype(np.float64), b)
            np.testing.assert_allclose(hs, ref, **TOL)
            np.testing.assert_array_equal(h_last, hs[:, -1])

            dhs = r.standard_normal((N, T, H)).astype(np.float32)
            got = rnncore.rnn_backward(dhs, xs, h0, hs, wx, wh)
            want = ref_rnn_backward(dhs.astype(np.float64), xs.astype(np.float64), h0.astype(np.float64),
                                    hs.astype(np.float64), wx.astype(np.float64), wh.astype(np.float64))
            for name, g, w in zip(("dxs", "dh0", "dwx", "dwh", "db"), got, want):
                np.testing.assert_allclose(g, w, err_msg=f"{name} N={N} T={T}", **TOL)

    def test_zero_initial_state(self):
        xs = self.rng.standard_normal((2, 3, 4)).astype(np.float32)
        wx = self.rng.standard_normal((4, 5)).astype(np.float32) * 0.3
        wh = self.rng.standard_normal((5, 5)).astype(np.float32) * 0.3
        hs, _ = rnncore.rnn_forward(xs, None, wx, wh)
        np.testing.assert_allclose(hs, ref_rnn_forward(xs, None, wx, wh, 0), **TOL)

    def test_lstm_forward_and_backward_match_numpy(self):
        for (N, T, D, H) in [(1, 1, 3, 2), (3, 5, 4, 6), (8, 16, 32, 24)]:
            r = self.rng
            f64 = lambda a: a.astype(np.float64)  # noqa: E731
            xs = r.standard_normal((N, T, D)).astype(np.float32)
            h0 = (r.standard_normal((N, H)) * 0.5).astype(np.float32)
            c0 = (r.standard_normal((N, H)) * 0.5).astype(np.float32)
            wx = (r.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
            wh = (r.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
            b = (r.standard_normal(4 * H) * 0.1).astype(np.float32)
            hs, cs, gates, h_last, c_last = rnncore.lstm_forward(xs, h0, c0, wx, wh, b)
            want = ref_lstm_forward(f64(xs), f64(h0), f64(c0), f64(wx), f64(wh), f64(b))
            for name, got, ref in zip(("hs", "cs", "gates"), (hs, cs, gates), want):
                np.testing.assert_allclose(got, ref, err_msg=f"{name} N={N} T={T}", **TOL)
            np.testing.assert_array_equal(h_last, hs[:, -1])
            np.testing.assert_array_equal(c_last, cs[:, -1])

            dhs = r.standard_normal((N, T, H)).astype(np.float32)
            dh_last = r.standard_normal((N, H)).astype(np.float32)
            dc_last = r.standard_normal((N, H)).astype(np.float32)
            got = rnncore.lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh, dh_last, dc_last)
            want = ref_lstm_backward(f64(dhs), f64(dh_last), f64(dc_last), f64(xs), f64(h0), f64(c0), f64(cs),
                                     f64(gates), f64(wx), f64(wh))
            for name, g, w in zip(("dxs", "dh0", "dc0", "dwx", "dwh", "db"), got, want):
                np.testing.assert_allclose(g, w, err_msg=f"{name} N={N} T={T}", **TOL)
            # truncation >= T is the whole window; truncation 1 < T lets no error reach the initial state
            for g, w in zip(rnncore.lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh, dh_last, dc_last, T), got):
                np.testing.assert_allclose(g, w, **TOL)
            if T > 1:
                _, dh0, dc0, _, _, _ = rnncore.lstm_backward(dhs, xs, h0, c0, hs, cs, gates, wx, wh, dh_last, dc_last,
                                                             1)
                np.testing.assert_array_equal(dh0, 0)
                np.testing.assert_array_equal(dc0, 0)

    def test_rnn_relu_matches_numpy(self):
        for (N, T, D, H) in [(1, 1, 3, 2), (3, 5, 4, 6), (8, 16, 32, 24)]:
            r = self.rng
            f64 = lambda a: a.astype(np.float64)  # noqa: E731
            xs = r.standard_normal((N, T, D)).astype(np.float32)
            h0 = np.abs(r.standard_normal((N, H))).astype(np.float32) * 0.5
            wx = (r.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32)
            wh = (r.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
            b = (r.standard_normal(H) * 0.1).astype(np.float32)
            hs, h_last = rnncore.rnn_relu_forward(xs, h0, wx, wh, b)
            np.testing.assert_allclose(hs, ref_rnn_relu_forward(f64(xs), f64(h0), f64(wx), f64(wh), f64(b)), **TOL)
            np.testing.assert_array_equal(h_last, hs[:, -1])
            dhs = r.standard_normal((N, T, H)).astype(np.float32)
            # the reference backward masks with the kernel's own hs, so both agree on which units are alive
            got = rnncore.rnn_relu_backward(dhs, xs, h0, hs, wx, wh)
            want = ref_rnn_relu_backward(f64(dhs), f64(xs), f64(h0), f64(hs), f64(wx), f64(wh))
            for name, g, w in zip(("dxs", "dh0", "dwx", "dwh", "db"), got, want):
                np.testing.assert_allclose(g, w, err_msg=f"relu {name} N={N} T={T}", **TOL)

    def _gru_problem(self, N, T, D, H):
        r = self.rng
        k = 1 / np.sqrt(H)  # PyTorch's initialisation range
        u = lambda *shape: r.uniform(-k, k, shape)  # noqa: E731
        return (r.standard_normal((N, T, D)), r.standard_normal((N, H)) * 0.5, u(3 * H, D), u(3 * H, H), u(3 * H),
                u(3 * H))

    def test_gru_matches_numpy(self):
        for (N, T, D, H) in [(1, 1, 3, 2), (3, 5, 4, 6), (8, 16, 32, 24)]:
            xs, h0, w_ih, w_hh, b_ih, b_hh = (a.astype(np.float32) for a in self._gru_problem(N, T, D, H))
            f64 = lambda a: a.astype(np.float64)  # noqa: E731
            hs, h_last, cache = rnncore.gru_forward(xs, h0, w_ih.T, w_hh.T, b_ih, b_hh)
            dhs = self.rng.standard_normal((N, T, H)).astype(np.float32)
            want_hs, want = ref_gru(f64(xs), f64(h0), f64(w_ih), f64(w_hh), f64(b_ih), f64(b_hh), f64(dhs))
            np.testing.assert_allclose(hs, want_hs, err_msg=f"gru hs N={N} T={T}", **TOL)
            np.testing.assert_array_equal(h_last, hs[:, -1])
            dxs, dh0, dwx, dwh, dbx, dbh = rnncore.gru_backward(dhs, xs, h0, hs, cache, w_ih.T, w_hh.T)
            # the binding's weight gradients are those of wx = weight_ihᵀ and wh = weight_hhᵀ
            for name, g, w in zip(("dxs", "dh0", "dwx", "dwh", "dbx", "dbh"), (dxs, dh0, dwx.T, dwh.T, dbx, dbh), want):
                np.testing.assert_allclose(g, w, err_msg=f"gru {name} N={N} T={T}", **TOL)
            # truncation >= T is the whole window, bit for bit; truncation 1 < T lets no error reach h0
            for g, w in zip(rnncore.gru_backward(dhs, xs, h0, hs, cache, w_ih.T, w_hh.T, truncation=T),
                            (dxs, dh0, dwx, dwh, dbx, dbh)):
                np.testing.assert_array_equal(g, w)
            if T > 1:
                np.testing.assert_array_equal(rnncore.gru_backward(dhs, xs, h0, hs, cache, w_ih.T, w_hh.T,
                                                                   truncation=1)[1], 0)

    def test_gru_gradients_match_central_differences(self):
        """The float64 numpy backprop above, checked once against central differences of its own forward."""
        N, T, D, H = 2, 3, 3, 4
        xs, h0, w_ih, w_hh, b_ih, b_hh = self._gru_problem(N, T, D, H)
        dhs = self.rng.standard_normal((N, T, H))
        _, grads = ref_gru(xs, h0, w_ih, w_hh, b_ih, b_hh, dhs)
        params = [xs, h0, w_ih, w_hh, b_ih, b_hh]
        for p, g in zip(params, grads):
            num = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                keep = p[i]
                p[i] = keep + 1e-6
                lp = (ref_gru(*params) * dhs).sum()
                p[i] = keep - 1e-6
                lm = (ref_gru(*params) * dhs).sum()
                p[i] = keep
                num[i] = (lp - lm) / 2e-6
            np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)  # float64 differences: ~1e-10 error

    def test_softmax_cross_entropy_matches_numpy(self):
        for (M, V) in [(1, 2), (7, 13), (20, 10000)]:
            logits = (self.rng.standard_normal((M, V)) * 3).astype(np.float32)
            targets = self.rng.integers(0, V, M)
            loss, grad = rnncore.softmax_cross_entropy(logits, targets)
            ref_loss, ref_grad = ref_softmax_cross_entropy(logits, targets)
            self.assertAlmostEqual(loss, ref_loss, delta=1e-6 * max(1.0, abs(ref_loss)))
            np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)

    def test_library_errors_become_exceptions(self):
        with self.assertRaises(rnncore.RNNCoreError) as caught:
            rnncore.softmax_cross_entropy(np.zeros((2, 3), np.float32), [0, 3])
        self.assertIn("outside [0, V)", str(caught.exception))
        with self.assertRaises(ValueError):
            rnncore.rnn_forward(np.zeros((2, 3), np.float32), None, np.zeros((3, 4)), np.zeros((4, 4)))
        with self.assertRaises(ValueError):
            rnncore.lstm_forward(np.zeros((2, 3, 4), np.float32), None, None, np.zeros((4, 6)), np.zeros((6, 6)))
        with self.assertRaises(ValueError):
            rnncore.gru_forward(np.zeros((2, 3, 4), np.float32), None, np.zeros((4, 4)), np.zeros((4, 4)))
        with self.assertRaises(rnncore.RNNCoreError) as caught:
            rnncore.gru_backward(np.zeros((1, 2, 1)), np.zeros((1, 2, 3)), None, np.zeros((1, 2, 1)), np.zeros(8),
                                 np.zeros((3, 3)), np.zeros((1, 3)), truncation=-1)
        self.assertEqual(caught.exception.status, -4)
        z = np.zeros((1, 2, 3), np.float32)
        with self.assertRaises(rnncore.RNNCoreError) as caught:
            rnncore.lstm_backward(z[..., :1], z, None, None, z[..., :1], z[..., :1], np.zeros((1, 2, 4), np.float32),
                                  np.zeros((3, 4)), np.zeros((1, 4)), truncation=-1)
        self.assertEqual(caught.exception.status, -4)

    def test_version(self):
        self.assertRegex(rnncore.version(), r"^\d+\.\d+\.\d+$")

    def test_threads(self):
        # the count can be set and read back; a bad count is the library's error; row-wise kernels give the same
        # bits on 1 and 3 threads (the C tests check every kernel; this checks the binding)
        before = rnncore.threads()
        self.assertGreaterEqual(before, 1)
        rng = np.random.default_rng(5)
        logits = rng.standard_normal((300, 1000)).astype(np.float32)
        targets = rng.integers(0, 1000, 300).astype(np.int32)
        try:
            results = []
            for n in (1, 3):
                rnncore.set_threads(n)
                self.assertEqual(rnncore.threads(), n)
                results.append(rnncore.softmax_cross_entropy(logits, targets))
            loss1, grad1 = results[0][0], results[0][1]
            loss3, grad3 = results[1][0], results[1][1]
            self.assertEqual(loss1, loss3)
            self.assertTrue(np.array_equal(grad1, grad3))
            with self.assertRaises(rnncore.RNNCoreError):
                rnncore.set_threads(-1)
            with self.assertRaises(TypeError):
                rnncore.set_threads(2.5)
        finally:
            rnncore.set_threads(0)


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
