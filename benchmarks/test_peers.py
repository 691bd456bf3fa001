#!/usr/bin/env python3
"""Quick self-check of the benchmark peers (numpy + standard library only).

  python3 benchmarks/test_peers.py

* the textbook layers' analytic gradients match central differences (float64,
  tiny model, non-zero carried hidden state);
* global-norm clipping and SGD behave as specified;
* a float32 model stays float32 through a training step;
* the loss decreases over 20 SGD steps on a tiny repeating sequence;
* numpy_rnnlm.py --config BOOK --steps 2 --warmup 1 --json prints exactly one
  JSON object with the required keys;
* torch_rnnlm.py --config BOOK --steps 2 --warmup 1 --json either does the
  same or reports "skipped".

Exits non-zero on failure.
"""

import json
import math
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from textbook_layers import SGD, SimpleRnnlm, clip_grads  # noqa: E402

REQUIRED_KEYS = {
    "impl", "config", "V", "D", "H", "N", "T", "train_step_ms", "forward_ms",
    "train_tokens_per_s", "forward_tokens_per_s", "steps", "numpy", "blas", "env",
}


def tiny_model(V=7, D=4, H=5, seed=1):
    return SimpleRnnlm(V, D, H, seed=seed)


class GradientCheck(unittest.TestCase):
    def test_central_differences_float64(self):
        V, D, H, N, T = 7, 4, 5, 2, 3
        model = tiny_model(V, D, H).astype(np.float64)
        rng = np.random.RandomState(2)
        # make the (zero-initialised) biases non-trivial too
        for p in model.params:
            p += 0.1 * rng.randn(*p.shape)
        xs = rng.randint(0, V, size=(N, T))
        ts = rng.randint(0, V, size=(N, T))
        xs[0, 0] = xs[0, 1] = xs[1, 2]  # repeated ids exercise np.add.at
        h0 = 0.5 * np.tanh(rng.randn(N, H))  # carried state from a "previous window"

        def loss():
            model.rnn_layer.set_state(h0.copy())
            return float(model.forward(xs, ts))

        for p in model.params:
            self.assertEqual(p.dtype, np.float64)

        loss()
        model.backward()
        analytic = [g.copy() for g in model.grads]
        names = ["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"]

        eps = 1e-5
        for name, p, ga in zip(names, model.params, analytic):
            gn = np.zeros_like(p)
            it = np.nditer(p, flags=["multi_index"])
            for _ in it:
                i = it.multi_index
                orig = p[i]
                p[i] = orig + eps
                lp = loss()
                p[i] = orig - eps
                lm = loss()
                p[i] = orig
                gn[i] = (lp - lm) / (2 * eps)
            err = np.max(np.abs(ga - gn)) / max(1e-8, np.max(np.abs(gn)))
            self.assertLess(err, 1e-6, "%s: relative gradient error %.3g" % (name, err))
            self.assertGreater(np.max(np.abs(gn)), 0, "%s: zero gradient" % name)


class ClipAndSGD(unittest.TestCase):
    def test_clip_global_norm(self):
        grads = [np.array([3.0, 0.0], dtype=np.float32), np.array([[4.0]], dtype=np.float32)]
        norm = clip_grads(grads, 0.25)
        self.assertAlmostEqual(float(norm), 5.0, places=5)
        new = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
        self.assertAlmostEqual(new, 0.25 * 5.0 / (5.0 + 1e-6), places=6)
        self.assertEqual(grads[0].dtype, np.float32)

    def test_clip_leaves_small_gradients(self):
        grads = [np.array([0.1, 0.1], dtype=np.float32)]
        clip_grads(grads, 0.25)
        np.testing.assert_array_equal(grads[0], np.array([0.1, 0.1], dtype=np.float32))

    def test_sgd(self):
        p = [np.ones(3, dtype=np.float32)]
        g = [np.array([1.0, 2.0, 3.0], dtype=np.float32)]
        SGD(lr=0.1).update(p, g)
        np.testing.assert_allclose(p[0], [0.9, 0.8, 0.7], rtol=1e-6)


class Float32AndTraining(unittest.TestCase):
    def test_float32_everywhere(self):
        V, D, H, N, T = 11, 6, 8, 3, 4
        model = tiny_model(V, D, H)
        rng = np.random.RandomState(0)
        xs = rng.randint(0, V, size=(N, T))
        ts = rng.randint(0, V, size=(N, T))
        for _ in range(2):  # second step uses the carried state
            model.forward(xs, ts)
            model.backward()
            clip_grads(model.grads, 0.25)
            SGD(0.1).update(model.params, model.grads)
        for p, g in zip(model.params, model.grads):
            self.assertEqual(p.dtype, np.float32)
            self.assertEqual(g.dtype, np.float32)
        self.assertEqual(model.rnn_layer.h.dtype, np.float32)
        self.assertEqual(model.layers[0].forward(xs).dtype, np.float32)

    def test_loss_decreases_on_repeating_sequence(self):
        V, D, H, N, T = 5, 8, 8, 2, 4
        model = tiny_model(V, D, H, seed=3)
        # lr 1.0 (with the benchmark's clipping at 0.25) so that 20 steps learn
        # clearly: first-3 vs last-3 mean loss drops by about 1.4 nats
        opt = SGD(lr=1.0)
        seq = np.arange(V)
        # two streams reading the repeating sequence 0 1 2 3 4 0 1 ... at offsets 0 and 2
        pos = 0
        losses = []
        for _ in range(20):
            idx = np.array([[0], [2]]) + pos + np.arange(T)[None, :]
            xs = seq[idx % V]
            ts = seq[(idx + 1) % V]
            pos += T
            losses.append(float(model.forward(xs, ts)))
            model.backward()
            clip_grads(model.grads, 0.25)
            opt.update(model.params, model.grads)
        self.assertTrue(all(math.isfinite(x) for x in losses))
        first = sum(losses[:3]) / 3
        last = sum(losses[-3:]) / 3
        self.assertLess(last, first - 0.5,
                        "loss did not decrease: first %.4f last %.4f (%s)" % (first, last, losses))


def run_peer(script, *extra):
    cmd = [sys.executable, os.path.join(HERE, script), "--config", "BOOK",
           "--steps", "2", "--warmup", "1", "--json"] + list(extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return proc


def check_result(test, obj, impl):
    missing = REQUIRED_KEYS - set(obj)
    test.assertFalse(missing, "missing keys: %s" % sorted(missing))
    test.assertEqual(obj["impl"], impl)
    test.assertEqual(obj["config"], "BOOK")
    test.assertEqual((obj["V"], obj["D"], obj["H"], obj["N"], obj["T"]), (10000, 100, 100, 10, 5))
    test.assertEqual(obj["steps"], 2)
    for key in ("train_step_ms", "forward_ms"):
        test.assertEqual(set(obj[key]), {"median", "min"})
        test.assertGreater(obj[key]["median"], 0)
        test.assertLessEqual(obj[key]["min"], obj[key]["median"])
    for key in ("train_tokens_per_s", "forward_tokens_per_s"):
        test.assertGreater(obj[key], 0)
    test.assertAlmostEqual(obj["train_tokens_per_s"],
                           50 / (obj["train_step_ms"]["median"] / 1e3), delta=1e-6 * obj["train_tokens_per_s"])
    test.assertIsInstance(obj["blas"], str)
    test.assertIsInstance(obj["env"], dict)
    test.assertIn("OPENBLAS_CORETYPE", obj["env"])
    test.assertIn("OMP_NUM_THREADS", obj["env"])
    if "last_loss" in obj:
        test.assertTrue(math.isfinite(obj["last_loss"]))


class PeerScripts(unittest.TestCase):
    def test_numpy_peer_json(self):
        proc = run_peer("numpy_rnnlm.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        obj = json.loads(proc.stdout)  # the whole stdout is exactly one JSON object
        self.assertIsInstance(obj, dict)
        check_result(self, obj, "numpy-textbook")
        self.assertEqual(obj["numpy"], np.__version__)
        self.assertEqual(obj.get("dtype"), "float32")

    def test_torch_peer_json_or_skipped(self):
        proc = run_peer("torch_rnnlm.py")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        obj = json.loads(proc.stdout)
        self.assertIsInstance(obj, dict)
        self.assertEqual(obj.get("impl"), "pytorch")
        if "skipped" in obj:
            self.assertIsInstance(obj["skipped"], str)
            self.assertIn("pip install torch", obj["skipped"])
            print("\n  (torch peer skipped: %s)" % obj["skipped"], file=sys.stderr)
        else:
            check_result(self, obj, "pytorch")
            self.assertIn("torch", obj)


if __name__ == "__main__":
    unittest.main(verbosity=2)
