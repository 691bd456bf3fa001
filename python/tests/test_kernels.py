"""The wrappers of the embedding, affine, softmax, sgemm and optimizer kernels against float64 numpy (run by pytest
and, without pytest, by ctest through unittest).

Tolerances: float32 kernels against float64 references: 1e-5 relative + 1e-5 absolute covers float32 rounding of
the sums used here (at most 64 terms, values of order 1; typical errors are near 1e-7). Copies and scatters
(embedding) and one multiply-add per element (sgd) are compared more tightly.
"""
import unittest

import numpy as np

import rnncore

TOL = dict(rtol=1e-5, atol=1e-5)


class KernelTests(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(11)

    def f32(self, *shape):
        return self.rng.standard_normal(shape).astype(np.float32)

    def test_embedding_forward_and_backward(self):
        w = self.f32(7, 5)
        ids = np.array([[0, 3, 3], [6, 1, 0]])
        np.testing.assert_array_equal(rnncore.embedding_forward(ids, w), w[ids])
        dout = self.f32(2, 3, 5)
        want = np.zeros((7, 5))
        np.add.at(want, ids.ravel(), dout.reshape(-1, 5).astype(np.float64))
        np.testing.assert_allclose(rnncore.embedding_backward(dout, ids, 7), want, rtol=1e-6, atol=1e-6)
        with self.assertRaises(rnncore.RNNCoreError):
            rnncore.embedding_forward([7], w)

    def test_affine_forward_and_backward(self):
        x, w, b = self.f32(2, 3, 8), self.f32(8, 4), self.f32(4)
        y = rnncore.affine_forward(x, w, b)
        np.testing.assert_allclose(y, x.astype(np.float64) @ w + b, **TOL)
        np.testing.assert_allclose(rnncore.affine_forward(x, w), x.astype(np.float64) @ w, **TOL)
        dy = self.f32(2, 3, 4)
        dx, dw, db = rnncore.affine_backward(dy, x, w)
        d64, x64 = dy.astype(np.float64).reshape(-1, 4), x.astype(np.float64).reshape(-1, 8)
        np.testing.assert_allclose(dx, (d64 @ w.T).reshape(2, 3, 8), **TOL)
        np.testing.assert_allclose(dw, x64.T @ d64, **TOL)
        np.testing.assert_allclose(db, d64.sum(axis=0), **TOL)
        with self.assertRaises(ValueError):
            rnncore.affine_forward(self.f32(2, 7), w)

    def test_softmax(self):
        z = self.f32(3, 4, 9) * 5
        e = np.exp(z.astype(np.float64) - z.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(rnncore.softmax(z), e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)

    def test_sgemm_with_transposes_alpha_and_beta(self):
        a, b, c = self.f32(6, 5), self.f32(5, 4), self.f32(6, 4)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        np.testing.assert_allclose(rnncore.sgemm(a, b), a64 @ b64, **TOL)
        np.testing.assert_allclose(rnncore.sgemm(a.T.copy(), b.T.copy(), c, trans_a=True, trans_b=True, alpha=2,
                                                 beta=0.5), 2 * a64 @ b64 + 0.5 * c, **TOL)
        with self.assertRaises(ValueError):
            rnncore.sgemm(a, a)

    def test_sgd_step(self):
        p, g = self.f32(10), self.f32(10)
        want = p.astype(np.float64) - 0.1 * g
        rnncore.sgd_step(p, g, 0.1)
        np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-7)
        with self.assertRaises(TypeError):
            rnncore.sgd_step(p.astype(np.float64), g, 0.1)  # a copy would be updated, not the caller's array

    def test_adam_steps(self):
        p, m, v = self.f32(12), np.zeros(12, np.float32), np.zeros(12, np.float32)
        rp, rm, rv = p.astype(np.float64), np.zeros(12), np.zeros(12)
        lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
        for step in (1, 2, 3):
            g = self.f32(12)
            rnncore.adam_step(p, m, v, g, step, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
            rm = b1 * rm + (1 - b1) * g
            rv = b2 * rv + (1 - b2) * g.astype(np.float64) ** 2
            rp = rp - lr * wd * rp - lr * (rm / (1 - b1 ** step)) / (np.sqrt(rv / (1 - b2 ** step)) + eps)
        np.testing.assert_allclose(p, rp, **TOL)
        np.testing.assert_allclose(m, rm, **TOL)
        np.testing.assert_allclose(v, rv, **TOL)

    def test_clip_grad_norm(self):
        a, b = self.f32(5) * 3, self.f32(2, 3) * 3
        norm = np.sqrt((a.astype(np.float64) ** 2).sum() + (b.astype(np.float64) ** 2).sum())
        a0, b0 = a.copy(), b.copy()
        self.assertAlmostEqual(rnncore.clip_grad_norm([a, b]), norm, delta=1e-6 * norm)
        np.testing.assert_array_equal(a, a0)  # max_norm 0 only measures
        self.assertAlmostEqual(rnncore.clip_grad_norm([a, b], max_norm=1.0), norm, delta=1e-6 * norm)
        np.testing.assert_allclose(a, a0 * (1 / (norm + 1e-6)), rtol=1e-6)
        np.testing.assert_allclose(b, b0 * (1 / (norm + 1e-6)), rtol=1e-6)
        bad = np.array([np.nan], np.float32)
        with self.assertRaises(rnncore.RNNCoreError):
            rnncore.clip_grad_norm([bad], max_norm=1.0)


if __name__ == "__main__":
    unittest.main()
