#!/usr/bin/env python3
"""Quick self-check of the benchmark peers (numpy + standard library only).

  python3 benchmarks/test_peers.py

* the textbook layers' analytic gradients match central differences (float64,
  tiny model, non-zero carried hidden state), for SimpleRnnlm, for the
  2-layer LstmRnnlm (non-zero carried h and c in both layers) and for the
  2-layer GruRnnlm (non-zero carried h in both layers, non-zero biases);
* if torch is importable: a stack of two numpy TimeLSTMs computes what
  torch.nn.LSTM(num_layers=2, batch_first=True) computes from the same weights
  and initial states (outputs, final states, weight and input gradients,
  float64), and two TimeGRUs what torch.nn.GRU(num_layers=2) computes;
* if torch is importable: the two peers' GRU language models (numpy_rnnlm's
  and torch_rnnlm's, built by their own build_model and make_steps) given the
  same weights give the same losses over three training steps (carried state,
  clipping, SGD) and a forward-only step, in float64 (1e-10) and float32
  (1e-5), at a tiny size;
* global-norm clipping and SGD behave as specified;
* a float32 model (SimpleRnnlm, LstmRnnlm, GruRnnlm) stays float32 through a
  training step;
* the loss decreases over 20 SGD steps on a tiny repeating sequence;
* numpy_rnnlm.py --config BOOK --steps 2 --warmup 1 --json prints exactly one
  JSON object with the required keys;
* torch_rnnlm.py --config BOOK --steps 2 --warmup 1 --json either does the
  same or reports "skipped";
* both peers do the same for the 2-layer LSTM configuration L200
  (--steps 1 --warmup 0);
* both peers' main() prints the same JSON for a tiny 2-layer GRU configuration
  registered in-process (G650 itself takes seconds per numpy step), and G650
  is L650 with GRU layers.

Exits non-zero on failure.
"""

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import numpy_rnnlm  # noqa: E402
import peer_common as pc  # noqa: E402
import torch_rnnlm  # noqa: E402
from textbook_layers import SGD, GruRnnlm, LstmRnnlm, SimpleRnnlm, TimeGRU, TimeLSTM, clip_grads  # noqa: E402

REQUIRED_KEYS = {
    "impl", "config", "V", "D", "H", "N", "T", "cell", "layers", "train_step_ms", "forward_ms",
    "train_tokens_per_s", "forward_tokens_per_s", "steps", "numpy", "blas", "env",
}


def tiny_model(V=7, D=4, H=5, seed=1):
    return SimpleRnnlm(V, D, H, seed=seed)


def central_difference_errors(model, loss, eps=1e-5):
    """(parameter index, relative error, largest |numerical gradient|) for every parameter of ``model``: its
    analytic gradient after ``loss()`` and ``model.backward()`` against central differences of ``loss``."""
    loss()
    model.backward()
    analytic = [g.copy() for g in model.grads]
    out = []
    for k, (p, ga) in enumerate(zip(model.params, analytic)):
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
        out.append((k, np.max(np.abs(ga - gn)) / max(1e-8, np.max(np.abs(gn))), np.max(np.abs(gn))))
    return out


class GradientCheck(unittest.TestCase):
    def check(self, model, names, set_carried_state, V, N, T):
        rng = np.random.RandomState(2)
        # make the (zero-initialised) biases non-trivial too
        for p in model.params:
            self.assertEqual(p.dtype, np.float64)
            p += 0.1 * rng.randn(*p.shape)
        xs = rng.randint(0, V, size=(N, T))
        ts = rng.randint(0, V, size=(N, T))
        xs[0, 0] = xs[0, 1] = xs[1, 2]  # repeated ids exercise np.add.at
        carried = set_carried_state(rng)  # states from a "previous window"

        def loss():
            carried()
            return float(model.forward(xs, ts))

        self.assertEqual(len(names), len(model.params))
        for k, err, largest in central_difference_errors(model, loss):
            self.assertLess(err, 1e-6, "%s: relative gradient error %.3g" % (names[k], err))
            self.assertGreater(largest, 0, "%s: zero gradient" % names[k])

    def test_central_differences_float64(self):
        V, D, H, N, T = 7, 4, 5, 2, 3
        model = tiny_model(V, D, H).astype(np.float64)

        def set_carried_state(rng):
            h0 = 0.5 * np.tanh(rng.randn(N, H))
            return lambda: model.rnn_layer.set_state(h0.copy())

        self.check(model, ["embed.W", "rnn.Wx", "rnn.Wh", "rnn.b", "affine.W", "affine.b"],
                   set_carried_state, V, N, T)

    def test_lstm_central_differences_float64(self):
        V, D, H, N, T = 7, 4, 5, 2, 3
        model = LstmRnnlm(V, D, H, layers=2, seed=1).astype(np.float64)

        def set_carried_state(rng):
            states = [(0.5 * np.tanh(rng.randn(N, H)), rng.randn(N, H)) for _ in model.lstm_layers]
            return lambda: [layer.set_state(h.copy(), c.copy()) for layer, (h, c) in zip(model.lstm_layers, states)]

        names = ["embed.W"] + ["lstm%d.%s" % (l, w) for l in range(2) for w in ("Wx", "Wh", "b")] + \
            ["affine.W", "affine.b"]
        self.check(model, names, set_carried_state, V, N, T)

    def test_gru_central_differences_float64(self):
        V, D, H, N, T = 7, 4, 5, 2, 3
        model = GruRnnlm(V, D, H, layers=2, seed=1).astype(np.float64)

        def set_carried_state(rng):
            states = [0.5 * np.tanh(rng.randn(N, H)) for _ in model.gru_layers]
            return lambda: [layer.set_state(h.copy()) for layer, h in zip(model.gru_layers, states)]

        names = ["embed.W"] + ["gru%d.%s" % (l, w) for l in range(2) for w in ("Wx", "Wh", "bx", "bh")] + \
            ["affine.W", "affine.b"]
        self.check(model, names, set_carried_state, V, N, T)


def import_torch(test):
    try:
        import torch
    except Exception as e:  # not installed, or installed but broken
        test.skipTest("torch not importable: %s" % e)
    return torch


class LstmAgainstTorch(unittest.TestCase):
    """Two stacked numpy TimeLSTMs against torch.nn.LSTM(num_layers=2, batch_first=True), float64."""

    def test_matches_torch_lstm(self):
        try:
            import torch
        except Exception as e:  # not installed, or installed but broken
            self.skipTest("torch not importable: %s" % e)
        N, T, D, H, L = 3, 4, 6, 5, 2
        rng = np.random.RandomState(4)
        xs = rng.randn(N, T, D)
        h0, c0 = 0.5 * rng.randn(L, N, H), rng.randn(L, N, H)
        weights = [(rng.randn(D if l == 0 else H, 4 * H) * 0.4, rng.randn(H, 4 * H) * 0.4, rng.randn(4 * H) * 0.2)
                   for l in range(L)]
        R = rng.randn(N, T, H)  # loss = sum(R * hs) of the top layer

        layers = [TimeLSTM(Wx.copy(), Wh.copy(), b.copy(), stateful=True) for Wx, Wh, b in weights]
        out = xs
        for l, layer in enumerate(layers):
            layer.set_state(h0[l].copy(), c0[l].copy())
            out = layer.forward(out)
        hs = out
        dout = R
        for layer in reversed(layers):
            dout = layer.backward(dout)
        dxs = dout

        lstm = torch.nn.LSTM(D, H, num_layers=L, batch_first=True).double()
        with torch.no_grad():
            for l, (Wx, Wh, b) in enumerate(weights):
                getattr(lstm, "weight_ih_l%d" % l).copy_(torch.from_numpy(Wx.T))
                getattr(lstm, "weight_hh_l%d" % l).copy_(torch.from_numpy(Wh.T))
                getattr(lstm, "bias_ih_l%d" % l).copy_(torch.from_numpy(b))
                getattr(lstm, "bias_hh_l%d" % l).zero_()
        txs = torch.from_numpy(xs).requires_grad_(True)
        ths, (thn, tcn) = lstm(txs, (torch.from_numpy(h0), torch.from_numpy(c0)))
        (ths * torch.from_numpy(R)).sum().backward()

        def close(a, b, what):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=what)

        close(hs, ths, "outputs")
        for l, layer in enumerate(layers):
            close(layer.h, thn[l], "h_n[%d]" % l)
            close(layer.c, tcn[l], "c_n[%d]" % l)
            dWx, dWh, db = layer.grads
            close(dWx.T, getattr(lstm, "weight_ih_l%d" % l).grad, "dWx[%d]" % l)
            close(dWh.T, getattr(lstm, "weight_hh_l%d" % l).grad, "dWh[%d]" % l)
            close(db, getattr(lstm, "bias_ih_l%d" % l).grad, "db[%d]" % l)
            close(db, getattr(lstm, "bias_hh_l%d" % l).grad, "db[%d] (bias_hh)" % l)
        close(dxs, txs.grad, "dxs")


class GruAgainstTorch(unittest.TestCase):
    """Two stacked numpy TimeGRUs against torch.nn.GRU(num_layers=2, batch_first=True), and the two peers' GRU
    language models against each other."""

    def test_matches_torch_gru(self):
        torch = import_torch(self)
        N, T, D, H, L = 3, 4, 6, 5, 2
        rng = np.random.RandomState(5)
        xs = rng.randn(N, T, D)
        h0 = 0.5 * rng.randn(L, N, H)
        weights = [(rng.randn(D if l == 0 else H, 3 * H) * 0.4, rng.randn(H, 3 * H) * 0.4,
                    rng.randn(3 * H) * 0.2, rng.randn(3 * H) * 0.2) for l in range(L)]
        R = rng.randn(N, T, H)  # loss = sum(R * hs) of the top layer + sum(S * h_n)
        S = rng.randn(L, N, H)

        layers = [TimeGRU(*(w.copy() for w in ws), stateful=True) for ws in weights]
        out = xs
        for l, layer in enumerate(layers):
            layer.set_state(h0[l].copy())
            out = layer.forward(out)
        hs = out
        # the final states' gradient S enters each layer's last step: run the backward by hand for the top layer's
        # dhs plus S at t = T-1 of every layer (a lower layer's last output is the upper one's last input, so S[l]
        # adds to the gradient that flows down into it at the last step)
        dout = R.copy()
        for l in reversed(range(L)):
            dout[:, -1, :] += S[l]
            dout = layers[l].backward(dout)
        dxs = dout

        gru = torch.nn.GRU(D, H, num_layers=L, batch_first=True).double()
        with torch.no_grad():
            for l, (Wx, Wh, bx, bh) in enumerate(weights):
                getattr(gru, "weight_ih_l%d" % l).copy_(torch.from_numpy(Wx.T))
                getattr(gru, "weight_hh_l%d" % l).copy_(torch.from_numpy(Wh.T))
                getattr(gru, "bias_ih_l%d" % l).copy_(torch.from_numpy(bx))
                getattr(gru, "bias_hh_l%d" % l).copy_(torch.from_numpy(bh))
        txs = torch.from_numpy(xs).requires_grad_(True)
        ths, thn = gru(txs, torch.from_numpy(h0))
        ((ths * torch.from_numpy(R)).sum() + (thn * torch.from_numpy(S)).sum()).backward()

        def close(a, b, what):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=what)

        close(hs, ths, "outputs")
        for l, layer in enumerate(layers):
            close(layer.h, thn[l], "h_n[%d]" % l)
            dWx, dWh, dbx, dbh = layer.grads
            close(dWx.T, getattr(gru, "weight_ih_l%d" % l).grad, "dWx[%d]" % l)
            close(dWh.T, getattr(gru, "weight_hh_l%d" % l).grad, "dWh[%d]" % l)
            close(dbx, getattr(gru, "bias_ih_l%d" % l).grad, "dbx[%d]" % l)
            close(dbh, getattr(gru, "bias_hh_l%d" % l).grad, "dbh[%d]" % l)
        close(dxs, txs.grad, "dxs")

    def peers_losses(self, torch, dtype, tolerance):
        """Both peers' GRU models with the numpy peer's weights: the losses of three training steps and a
        forward-only step on the same batches."""
        config = pc.Config(11, 6, 5, 3, 4, "gru", 2)
        model = numpy_rnnlm.build_model(config, seed=3).astype(dtype)
        rng = np.random.RandomState(6)
        for p in model.params:  # non-zero biases (both of them), weights a little off the initialisation
            p += (0.1 * rng.randn(*p.shape)).astype(dtype)
        tmodel = torch_rnnlm.build_model(torch, config, seed=3).to(torch.float64 if dtype == np.float64
                                                                  else torch.float32)
        embed, *grus, affine_W, affine_b = [p.copy() for p in model.params]
        with torch.no_grad():
            tmodel.embed.weight.copy_(torch.from_numpy(embed))
            for l in range(config.layers):
                Wx, Wh, bx, bh = grus[4 * l:4 * l + 4]
                getattr(tmodel.rnn, "weight_ih_l%d" % l).copy_(torch.from_numpy(Wx.T.copy()))
                getattr(tmodel.rnn, "weight_hh_l%d" % l).copy_(torch.from_numpy(Wh.T.copy()))
                getattr(tmodel.rnn, "bias_ih_l%d" % l).copy_(torch.from_numpy(bx))
                getattr(tmodel.rnn, "bias_hh_l%d" % l).copy_(torch.from_numpy(bh))
            tmodel.affine.weight.copy_(torch.from_numpy(affine_W.T.copy()))
            tmodel.affine.bias.copy_(torch.from_numpy(affine_b))

        train, forward, state = numpy_rnnlm.make_steps(model)
        ttrain, tforward, tstate = torch_rnnlm.make_steps(torch, tmodel, config)
        batches = numpy_rnnlm.Batches(pc.make_corpus(config.V, 200, 7), config.N, config.T)
        norms = []
        for step in range(3):
            xs, ts = batches.next()
            train(xs, ts)
            norms.append(float(state["grad_norm"]))
            ttrain(torch.from_numpy(xs), torch.from_numpy(ts))
            self.assertTrue(math.isfinite(state["loss"]))
            self.assertAlmostEqual(state["loss"], tstate["loss"], delta=tolerance * abs(state["loss"]),
                                   msg="training step %d" % step)
        xs, ts = batches.next()
        loss, tloss = float(forward(xs, ts)), tforward(torch.from_numpy(xs), torch.from_numpy(ts))
        self.assertAlmostEqual(loss, tloss, delta=tolerance * abs(loss), msg="forward-only step")
        # the steps clipped (the norm of the gradients before clipping exceeded 0.25), so clipping was compared
        self.assertGreater(min(norms), pc.CLIP_NORM, norms)

    def test_peers_agree_on_the_loss_float64(self):
        self.peers_losses(import_torch(self), np.float64, 1e-10)

    def test_peers_agree_on_the_loss_float32(self):
        self.peers_losses(import_torch(self), np.float32, 1e-5)


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

    def test_lstm_float32_everywhere(self):
        V, D, H, N, T = 11, 6, 8, 3, 4
        model = LstmRnnlm(V, D, H, layers=2, seed=0)
        rng = np.random.RandomState(0)
        xs = rng.randint(0, V, size=(N, T))
        ts = rng.randint(0, V, size=(N, T))
        for _ in range(2):  # second step uses the carried states
            model.forward(xs, ts)
            model.backward()
            clip_grads(model.grads, 0.25)
            SGD(0.1).update(model.params, model.grads)
        for p, g in zip(model.params, model.grads):
            self.assertEqual(p.dtype, np.float32)
            self.assertEqual(g.dtype, np.float32)
        for layer in model.lstm_layers:
            self.assertEqual(layer.h.dtype, np.float32)
            self.assertEqual(layer.c.dtype, np.float32)

    def test_gru_float32_everywhere(self):
        V, D, H, N, T = 11, 6, 8, 3, 4
        model = GruRnnlm(V, D, H, layers=2, seed=0)
        rng = np.random.RandomState(0)
        xs = rng.randint(0, V, size=(N, T))
        ts = rng.randint(0, V, size=(N, T))
        for _ in range(2):  # second step uses the carried states
            model.forward(xs, ts)
            model.backward()
            clip_grads(model.grads, 0.25)
            SGD(0.1).update(model.params, model.grads)
        for p, g in zip(model.params, model.grads):
            self.assertEqual(p.dtype, np.float32)
            self.assertEqual(g.dtype, np.float32)
        for layer in model.gru_layers:
            self.assertEqual(layer.h.dtype, np.float32)

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


# config -> (V, D, H, N, T, cell, layers, timed steps, warm-up steps) of the peer runs checked below
PEER_RUNS = {
    "BOOK": (10000, 100, 100, 10, 5, "rnn", 1, 2, 1),
    "L200": (10000, 200, 200, 20, 20, "lstm", 2, 1, 0),
    "GTINY": (97, 8, 8, 4, 5, "gru", 2, 2, 1),  # registered in-process only (PeerScripts.tiny_gru_json)
}


def run_peer(script, config="BOOK", extra=()):
    steps, warmup = PEER_RUNS[config][7:]
    cmd = [sys.executable, os.path.join(HERE, script), "--config", config,
           "--steps", str(steps), "--warmup", str(warmup), "--json", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return proc


def check_result(test, obj, impl, config="BOOK"):
    V, D, H, N, T, cell, layers, steps, _ = PEER_RUNS[config]
    missing = REQUIRED_KEYS - set(obj)
    test.assertFalse(missing, "missing keys: %s" % sorted(missing))
    test.assertEqual(obj["impl"], impl)
    test.assertEqual(obj["config"], config)
    test.assertEqual((obj["V"], obj["D"], obj["H"], obj["N"], obj["T"]), (V, D, H, N, T))
    test.assertEqual((obj["cell"], obj["layers"]), (cell, layers))
    test.assertEqual(obj["steps"], steps)
    for key in ("train_step_ms", "forward_ms"):
        test.assertEqual(set(obj[key]), {"median", "min"})
        test.assertGreater(obj[key]["median"], 0)
        test.assertLessEqual(obj[key]["min"], obj[key]["median"])
    for key in ("train_tokens_per_s", "forward_tokens_per_s"):
        test.assertGreater(obj[key], 0)
    test.assertAlmostEqual(obj["train_tokens_per_s"],
                           N * T / (obj["train_step_ms"]["median"] / 1e3), delta=1e-6 * obj["train_tokens_per_s"])
    test.assertIsInstance(obj["blas"], str)
    test.assertIsInstance(obj["env"], dict)
    test.assertIn("OPENBLAS_CORETYPE", obj["env"])
    test.assertIn("OMP_NUM_THREADS", obj["env"])
    if "last_loss" in obj:
        test.assertTrue(math.isfinite(obj["last_loss"]))


class PeerScripts(unittest.TestCase):
    def check_numpy_peer(self, config):
        proc = run_peer("numpy_rnnlm.py", config)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        obj = json.loads(proc.stdout)  # the whole stdout is exactly one JSON object
        self.assertIsInstance(obj, dict)
        check_result(self, obj, "numpy-textbook", config)
        self.assertEqual(obj["numpy"], np.__version__)
        self.assertEqual(obj.get("dtype"), "float32")

    def check_torch_peer(self, config, extra=()):
        proc = run_peer("torch_rnnlm.py", config, extra)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        obj = json.loads(proc.stdout)
        self.assertIsInstance(obj, dict)
        self.assertEqual(obj.get("impl"), "pytorch")
        if "skipped" in obj:
            self.assertIsInstance(obj["skipped"], str)
            self.assertIn("pip install torch", obj["skipped"])
            print("\n  (torch peer skipped: %s)" % obj["skipped"], file=sys.stderr)
        else:
            check_result(self, obj, "pytorch", config)
            self.assertIn("torch", obj)

    def test_numpy_peer_json(self):
        self.check_numpy_peer("BOOK")

    def test_torch_peer_json_or_skipped(self):
        self.check_torch_peer("BOOK")

    def test_torch_peer_adaptive_json_or_skipped(self):
        # nn.AdaptiveLogSoftmaxWithLoss of rnncore bench --softmax adaptive's shape, on Zipf targets
        self.check_torch_peer("BOOK", ["--softmax", "adaptive"])

    def test_numpy_peer_adaptive_skipped(self):
        proc = run_peer("numpy_rnnlm.py", "BOOK", ["--softmax", "adaptive"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("only the full softmax", json.loads(proc.stdout)["skipped"])

    def test_torch_peer_generation_or_skipped(self):
        proc = run_peer("torch_rnnlm.py", "BOOK", ["--generate", "5"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        obj = json.loads(proc.stdout)
        if "skipped" not in obj:
            self.assertEqual(obj["generate_tokens"], 5)
            self.assertGreater(obj["generate_tokens_per_s"], 0)

    def test_zipf_corpus(self):
        # reproducible, in range, and skewed the way Zipf's law is: id 0 about 1/H_V of the draws
        a = pc.make_corpus(1000, 20000, 3, zipf=True)
        self.assertEqual(a, pc.make_corpus(1000, 20000, 3, zipf=True))
        self.assertTrue(all(0 <= t < 1000 for t in a))
        harmonic = sum(1.0 / (k + 1) for k in range(1000))
        self.assertAlmostEqual(a.count(0) / len(a), 1 / harmonic, delta=0.02)
        self.assertGreater(a.count(0), 10 * a.count(99))

    def test_numpy_peer_lstm_json(self):
        self.check_numpy_peer("L200")

    def test_torch_peer_lstm_json_or_skipped(self):
        self.check_torch_peer("L200")

    def tiny_gru_json(self, module):
        """main() of a peer module on the in-process configuration GTINY, its stdout parsed as one JSON object."""
        V, D, H, N, T, cell, layers, steps, warmup = PEER_RUNS["GTINY"]
        pc.CONFIGS["GTINY"] = pc.Config(V, D, H, N, T, cell, layers)
        try:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = module.main(["--config", "gtiny", "--steps", str(steps), "--warmup", str(warmup), "--json"])
        finally:
            del pc.CONFIGS["GTINY"]
        self.assertEqual(rc, 0)
        return json.loads(out.getvalue())

    def test_numpy_peer_gru_json(self):
        obj = self.tiny_gru_json(numpy_rnnlm)
        check_result(self, obj, "numpy-textbook", "GTINY")
        self.assertEqual(obj.get("dtype"), "float32")

    def test_torch_peer_gru_json_or_skipped(self):
        obj = self.tiny_gru_json(torch_rnnlm)
        if "skipped" in obj:
            self.assertIn("pip install torch", obj["skipped"])
        else:
            check_result(self, obj, "pytorch", "GTINY")
            self.assertEqual(obj.get("dtype"), "float32")

    def test_g650_is_l650_with_gru_layers(self):
        self.assertEqual(pc.CONFIGS["G650"], pc.CONFIGS["L650"]._replace(cell="gru"))
        self.assertEqual(pc.parse_args("", ["--config", "g650"]).config, "G650")


if __name__ == "__main__":
    unittest.main(verbosity=2)
