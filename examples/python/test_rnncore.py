"""Checks the ctypes binding against plain numpy references in float64 (run by ctest when python3 has numpy).

Tolerances: float32 kernels against float64 references differ by float32 rounding, which grows with the
reduction length (D + H terms per hidden unit, N·T terms per weight gradient): 1e-5 absolute + 1e-5 relative
covers the shapes used here with a wide margin (typical errors are around 1e-7).
"""
import sys
import unittest

import numpy as np

import rnncore

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

    def test_version(self):
        self.assertRegex(rnncore.version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
