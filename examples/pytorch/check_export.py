#!/usr/bin/env python3
"""Checks `rnncore export` against PyTorch (optional; needs torch and safetensors, not run in CI).

    python3 examples/pytorch/check_export.py RNNCORE MODEL.safetensors TEXT

RNNCORE is the built tool (.build/debug/rnncore), MODEL a word-level model written by `rnncore train --out`, TEXT a
UTF-8 text without empty lines. The script exports MODEL twice (as the RNNModel of PyTorch's word_language_model
example and, with --module rnn, as the bare recurrent module), loads both with load_state_dict(strict=True) into
modules of the same layout (encoder / rnn / decoder), computes the exact batch-1 perplexity of TEXT with PyTorch and
compares it with `rnncore eval --json`. Exits 0 when they agree to 1e-4 (relative).
"""

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file


class WordLanguageModel(torch.nn.Module):
    """The module layout of word_language_model's RNNModel: encoder, rnn, decoder (no dropout at evaluation)."""

    def __init__(self, cell, vocabulary, embedding, hidden, layers):
        super().__init__()
        self.encoder = torch.nn.Embedding(vocabulary, embedding)
        self.rnn = recurrent_module(cell, embedding, hidden, layers)
        self.decoder = torch.nn.Linear(hidden, vocabulary)

    def forward(self, ids):
        output, _ = self.rnn(self.encoder(ids))
        return self.decoder(output)


def recurrent_module(cell, embedding, hidden, layers):
    if cell in ("rnn", "rnn-relu"):
        nonlinearity = "relu" if cell == "rnn-relu" else "tanh"
        return torch.nn.RNN(embedding, hidden, layers, nonlinearity=nonlinearity, batch_first=True)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](embedding, hidden, layers, batch_first=True)


def main():
    tool, model_path, text_path = sys.argv[1:4]
    with safe_open(model_path, "pt") as f:
        metadata = f.metadata()
    config = json.loads(metadata["configuration"])
    tokens = json.loads(metadata["vocabulary"])["tokens"]
    index = {t: i for i, t in enumerate(tokens)}
    V, H, L, cell = config["vocabularySize"], config["hiddenSize"], config["layers"], config["cell"]

    with tempfile.TemporaryDirectory() as scratch:
        lm_path, rnn_path = Path(scratch, "lm.safetensors"), Path(scratch, "rnn.safetensors")
        subprocess.run([tool, "export", "--model", model_path, "--pytorch", str(lm_path)], check=True)
        subprocess.run([tool, "export", "--model", model_path, "--pytorch", str(rnn_path), "--module", "rnn"], check=True)
        lm_state = load_file(lm_path)
        D = lm_state["encoder.weight"].shape[1]
        lm = WordLanguageModel(cell, V, D, H, L)
        lm.load_state_dict(lm_state, strict=True)
        recurrent_module(cell, D, H, L).load_state_dict(load_file(rnn_path), strict=True)
    lm.eval()

    words = []
    for line in Path(text_path).read_text(encoding="utf-8").splitlines():
        words += line.split() + ["<eos>"]
    missing = sorted({w for w in words if w not in index})
    if missing and "<unk>" not in index:
        sys.exit(f"{text_path}: {len(missing)} words are not in the model's vocabulary (first: {missing[0]!r})")
    ids = torch.tensor([[index[w] if w in index else index["<unk>"] for w in words]])
    with torch.no_grad():
        logits = lm(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), ids[0, 1:], reduction="mean").item()
    ours = math.exp(loss)
    result = subprocess.run([tool, "eval", "--model", model_path, "--data", text_path, "--json"],
                            check=True, capture_output=True, text=True)
    theirs = json.loads(result.stdout.strip().splitlines()[-1])["perplexity"]
    ok = abs(ours - theirs) <= 1e-4 * theirs
    print(f"load_state_dict(strict=True): ok; PyTorch perplexity {ours:.6f}, rnncore eval {theirs:.6f}: "
          + ("agree" if ok else "DISAGREE"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
