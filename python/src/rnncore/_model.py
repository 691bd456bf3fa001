"""RNNCore language models (the .safetensors files of `rnncore train --out`) on the C kernels.

    model = rnncore.load("model.safetensors")
    model.perplexity(open("test.txt").read())        # as `rnncore eval --json` (batch 1, bptt 35)
    model.generate("the cat", count=20, temperature=0.8, top_k=40, seed=1)   # a list of tokens
    state = model.to_pytorch_state_dict()            # numpy arrays under torch's word_language_model names
"""
import json
import os
import struct
import unicodedata

import numpy as np

from . import _kernels as k

__all__ = ["RNNCoreModelError", "Vocabulary", "LanguageModel", "load"]

_CELLS = {"rnn": (1, "rnn", ("wx", "wh", "b")), "rnn-relu": (1, "rnn_relu", ("wx", "wh", "b")),
          "lstm": (4, "lstm", ("wx", "wh", "b")), "gru": (3, "gru", ("wx", "wh", "b", "bh"))}
_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8"}
_WHITESPACE = " \t\r\v\f"  # ASCII whitespace inside a line, as Swift's Vocabulary (the line end is "\n")
EOS, UNK = "<eos>", "<unk>"


class RNNCoreModelError(ValueError):
    """A model file, state dict or text that cannot be used, with the file and the reason."""


class Vocabulary:
    """The tokens of a model, tokenised as Swift's Vocabulary: `word` splits each line on ASCII whitespace and ends
    it with "<eos>" (a final "\\n" starts no new line); `character` takes each character ("\\r\\n" is one)."""

    def __init__(self, tokens, level):
        if level not in ("word", "character"):
            raise RNNCoreModelError(f"unknown vocabulary level {level!r} (word or character)")
        self.tokens, self.level = list(tokens), level
        self.ids = {unicodedata.normalize("NFC", t): i for i, t in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise RNNCoreModelError("the vocabulary holds a token twice")

    def __len__(self):
        return len(self.tokens)

    def split(self, text):
        if self.level == "character":
            return _characters(text)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        words = []
        for line in lines:
            words += [w for w in _split_ascii(line) if w] + [EOS]
        return words

    def encode(self, text):
        """Token ids of text; an unknown token becomes "<unk>" when the vocabulary has it, else an error."""
        unk = self.ids.get(UNK)
        out = []
        for token in self.split(text):
            i = self.ids.get(unicodedata.normalize("NFC", token), unk)
            if i is None:
                raise RNNCoreModelError(f"the token {token[:60]!r} is not in the vocabulary, which has no {UNK}")
            out.append(i)
        return out

    def decode(self, ids):
        if self.level == "character":
            return "".join(self.tokens[i] for i in ids)
        text, line_start = "", True
        for i in ids:
            t = self.tokens[i]
            if t == EOS:
                text, line_start = text + "\n", True
            else:
                text, line_start = text + ("" if line_start else " ") + t, False
        return text


def _split_ascii(line):
    word, out = [], []
    for ch in line:
        if ch in _WHITESPACE:
            out.append("".join(word))
            word = []
        else:
            word.append(ch)
    out.append("".join(word))
    return out


def _characters(text):
    """Characters, with "\\r\\n" and a base letter with its combining marks kept together (an approximation of
    Swift's extended grapheme clusters that is exact for text without emoji sequences)."""
    out = []
    for ch in text:
        if out and ((out[-1].endswith("\r") and ch == "\n") or unicodedata.combining(ch)):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _read_safetensors(path):
    """The tensors (name -> numpy array) and the __metadata__ of a safetensors file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise RNNCoreModelError(f"{path}: cannot read the file ({error.strerror})") from None
    if len(data) < 8:
        raise RNNCoreModelError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise RNNCoreModelError(f"{path}: the header length {n} runs past the end of the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RNNCoreModelError(f"{path}: the header is not JSON ({error})") from None
    if not isinstance(header, dict):
        raise RNNCoreModelError(f"{path}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, entry in header.items():
        try:
            dtype, shape, (start, end) = _DTYPES[entry["dtype"]], [int(s) for s in entry["shape"]], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise RNNCoreModelError(f"{path}: tensor {name!r} has an unsupported dtype or a malformed entry") from None
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if not (0 <= start <= end <= len(body)) or end - start != size:
            raise RNNCoreModelError(f"{path}: tensor {name!r} has data offsets {start}..{end}, which do not hold "
                                    f"shape {shape} of {entry['dtype']} inside the file")
        tensors[name] = np.frombuffer(body[start:end], dtype=dtype).reshape(shape).astype(np.float32)
    return tensors, metadata


class LanguageModel:
    """An RNNCore language model: embedding (or one-hot inputs), stacked recurrent layers, output affine layer."""

    def __init__(self, configuration, tensors, vocabulary, source="the model"):
        c = configuration
        try:
            self.V, self.D, self.H = int(c["vocabularySize"]), int(c["embeddingSize"]), int(c["hiddenSize"])
            self.layers, self.cell = int(c["layers"]), c["cell"]
            self.input, self.dropout = c.get("input", "embedding"), float(c.get("dropout", 0))
            # Absent from files written before the output layers: the full, untied softmax.
            self.softmax, self.cutoffs = c.get("softmax", "full"), [int(x) for x in c.get("cutoffs", [])]
            self.div_value, self.tied = float(c.get("divValue", 4)), bool(c.get("tiedWeights", False))
        except (KeyError, TypeError, ValueError) as error:
            raise RNNCoreModelError(f"{source}: the configuration lacks or misstates {error}") from None
        if self.cell not in _CELLS:
            raise RNNCoreModelError(f"{source}: unknown cell {self.cell!r} (one of {', '.join(_CELLS)})")
        if self.input not in ("embedding", "one-hot"):
            raise RNNCoreModelError(f"{source}: unknown input {self.input!r} (embedding or one-hot)")
        if self.softmax not in ("full", "adaptive") or (self.softmax == "adaptive") != bool(self.cutoffs):
            raise RNNCoreModelError(f"{source}: unknown softmax {self.softmax!r} or cutoffs {self.cutoffs} that do "
                                    "not fit it (full: none; adaptive: at least one)")
        if self.tied and (self.softmax != "full" or self.input != "embedding" or self.D != self.H):
            raise RNNCoreModelError(f"{source}: tied weights need the full softmax and D = H")
        self.vocabulary = vocabulary
        if len(vocabulary) != self.V:
            raise RNNCoreModelError(f"{source}: the vocabulary holds {len(vocabulary)} tokens, the configuration "
                                    f"says {self.V}")
        expected = self.parameter_shapes()
        extra = sorted(set(tensors) - set(expected))
        if extra:
            raise RNNCoreModelError(f"{source}: tensor {extra[0]!r} belongs to no parameter of this configuration")
        self.tensors = {}
        for name, shape in expected.items():
            if name not in tensors:
                raise RNNCoreModelError(f"{source}: tensor {name!r} is missing")
            t = np.ascontiguousarray(tensors[name], dtype=np.float32)
            if t.shape != shape:
                raise RNNCoreModelError(f"{source}: tensor {name!r} has shape {t.shape}, expected {shape}")
            if not np.all(np.isfinite(t)):
                raise RNNCoreModelError(f"{source}: tensor {name!r} holds NaN or infinite values")
            self.tensors[name] = t

    @property
    def configuration(self):
        return {"vocabularySize": self.V, "embeddingSize": self.D, "hiddenSize": self.H, "layers": self.layers,
                "cell": self.cell, "dropout": self.dropout, "input": self.input, "softmax": self.softmax,
                "cutoffs": list(self.cutoffs), "divValue": self.div_value, "tiedWeights": self.tied}

    def tail_projection_sizes(self):
        """P_i = ⌊H / divValue^(i+1)⌋ of each adaptive-softmax tail cluster, as Swift's tailProjectionSizes."""
        return [int(np.floor(self.H / self.div_value ** (i + 1))) for i in range(len(self.cutoffs))]

    def parameter_shapes(self):
        """Tensor name -> shape, as Swift's Configuration.parameterShapes."""
        gates, _, names = _CELLS[self.cell]
        G = gates * self.H
        shapes = {} if self.input == "one-hot" else {"embedding.weight": (self.V, self.D)}
        for l in range(self.layers):
            shapes.update({f"{self.cell}.{l}.wx": (self.D if l == 0 else self.H, G), f"{self.cell}.{l}.wh": (self.H, G),
                           f"{self.cell}.{l}.b": (G,)})
            if "bh" in names:
                shapes[f"{self.cell}.{l}.bh"] = (G,)
        if self.softmax == "adaptive":
            C, bounds = len(self.cutoffs), self.cutoffs + [self.V]
            shapes.update({"output.head.weight": (self.H, self.cutoffs[0] + C), "output.head.bias": (self.cutoffs[0] + C,)})
            for i, P in enumerate(self.tail_projection_sizes()):
                shapes.update({f"output.tail.{i}.projection": (self.H, P),
                               f"output.tail.{i}.weight": (P, bounds[i + 1] - bounds[i])})
        else:
            shapes.update(({} if self.tied else {"output.weight": (self.H, self.V)}) | {"output.bias": (self.V,)})
        return shapes

    def _adaptive(self):
        t, C = self.tensors, len(self.cutoffs)
        return (self.cutoffs, t["output.head.weight"], t["output.head.bias"],
                [t[f"output.tail.{i}.projection"] for i in range(C)], [t[f"output.tail.{i}.weight"] for i in range(C)])

    # ---- forward ----

    def zero_state(self, N=1):
        S = 2 if self.cell == "lstm" else 1
        return [np.zeros((S, N, self.H), dtype=np.float32) for _ in range(self.layers)]

    def logits(self, ids, state):
        """Scores (N,T,V) of the ids (N,T) from state (a list of (S,N,H) per layer, updated in place) whose softmax
        is the model's distribution: logits of the full softmax, log-probabilities of the adaptive one."""
        xs = self._top(ids, state)
        if self.softmax == "adaptive":
            return k.adaptive_softmax_log_prob(xs, *self._adaptive())
        w = np.ascontiguousarray(self.tensors["embedding.weight"].T) if self.tied else self.tensors["output.weight"]
        return k.affine_forward(xs, w, self.tensors["output.bias"])

    def _top(self, ids, state):
        """The last recurrent layer's outputs (N,T,H) for the ids (N,T), advancing state."""
        ids = np.asarray(ids, dtype=np.int32)
        if self.input == "one-hot":
            xs = np.eye(self.V, dtype=np.float32)[ids]
        else:
            xs = k.embedding_forward(ids, self.tensors["embedding.weight"])
        _, cell, _ = _CELLS[self.cell]
        for l in range(self.layers):
            p = f"{self.cell}.{l}."
            wx, wh, b = self.tensors[p + "wx"], self.tensors[p + "wh"], self.tensors[p + "b"]
            if self.cell == "lstm":
                xs, _, _, h, c = k.lstm_forward(xs, state[l][0], state[l][1], wx, wh, b)
                state[l][0], state[l][1] = h, c
            elif self.cell == "gru":
                xs, state[l][0], _ = k.gru_forward(xs, state[l][0], wx, wh, b, self.tensors[p + "bh"])
            else:
                xs, state[l][0] = k.rnn_forward(xs, state[l][0], wx, wh, b,
                                                nonlinearity="relu" if self.cell == "rnn-relu" else "tanh")
        return xs

    def mean_loss(self, ids, bptt=35):
        """Mean cross-entropy (nats) of predicting every token after the first from those before it, read as one
        stream from a zero state in windows of bptt steps (Swift's meanLoss(on:batchSize: 1, bptt:))."""
        ids = np.asarray(ids, dtype=np.int32)
        if ids.size < 2:
            raise RNNCoreModelError(f"perplexity needs at least 2 tokens, got {ids.size}")
        if bptt < 1:
            raise RNNCoreModelError(f"bptt must be positive, got {bptt}")
        state, total, predictions = self.zero_state(), 0.0, ids.size - 1
        for start in range(0, predictions, bptt):
            T = min(bptt, predictions - start)
            targets = ids[start + 1:start + 1 + T]
            if self.softmax == "adaptive":  # the fused C loss, as Swift computes it
                loss, _ = k.adaptive_softmax_loss(self._top(ids[None, start:start + T], state), targets,
                                                  *self._adaptive())
            else:
                loss, _ = k.softmax_cross_entropy(self.logits(ids[None, start:start + T], state), targets)
            total += loss * T
        return total / predictions

    def perplexity(self, text, bptt=35):
        """exp(mean_loss) of the text tokenised by the model's vocabulary: `rnncore eval --batch 1 --bptt 35`.
        Give text with "\\n" line ends (files opened in Python's text mode are)."""
        return float(np.exp(self.mean_loss(self.vocabulary.encode(text), bptt)))

    def generate(self, prompt="", count=20, temperature=1.0, top_k=None, top_p=None, seed=0):
        """Feeds the prompt from a zero state, then draws count tokens from softmax(logits / temperature) (0: the most
        likely), restricted to the top_k most likely and to the smallest set whose probability reaches top_p, each fed
        back in. A word-level prompt is one line (its closing "<eos>" is dropped); an empty prompt starts at a line
        start. Returns the generated tokens (strings, the prompt not included); the same seed gives the same tokens.
        vocabulary.decode(vocabulary.encode-able ids) turns them into text: "".join at the character level,
        " ".join with "<eos>" as a line end at the word level."""
        if count < 0:
            raise RNNCoreModelError(f"count must be ≥ 0, got {count}")
        if not (temperature >= 0 and np.isfinite(temperature)):
            raise RNNCoreModelError(f"temperature must be a finite number ≥ 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise RNNCoreModelError(f"top_k must be at least 1, got {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise RNNCoreModelError(f"top_p must lie in (0, 1], got {top_p}")
        ids = self.vocabulary.encode(prompt) if prompt else []
        if ids and self.vocabulary.level == "word" and ids[-1] == self.vocabulary.ids.get(EOS):
            ids.pop()
        if not ids:
            start = self.vocabulary.ids.get(EOS, self.vocabulary.ids.get("\n", 0))
            ids = [start]
        rng, state = np.random.default_rng(seed), self.zero_state()
        logits = self.logits(np.array([ids]), state)[0, -1]
        out = []
        for _ in range(count):
            token = self._sample(logits.astype(np.float64), temperature, top_k, top_p, rng)
            out.append(token)
            logits = self.logits(np.array([[token]]), state)[0, -1]
        return [self.vocabulary.tokens[i] for i in out]

    @staticmethod
    def _sample(z, temperature, top_k, top_p, rng):
        order = np.argsort(-z, kind="stable")
        if temperature == 0:
            return int(order[0])
        if top_k is not None:
            order = order[:top_k]
        w = np.exp((z[order] - z[order[0]]) / temperature)
        p = w / w.sum()
        if top_p is not None:
            keep = int(np.searchsorted(np.cumsum(p), top_p * (1 - 1e-12))) + 1
            order, p = order[:keep], p[:keep] / p[:keep].sum()
        return int(order[rng.choice(len(order), p=p)])

    # ---- PyTorch ----

    def to_pytorch_state_dict(self):
        """The parameters under the names of PyTorch's word_language_model RNNModel: encoder.weight (V,D),
        rnn.weight_ih_l{l} = wxᵀ, rnn.weight_hh_l{l} = whᵀ, rnn.bias_ih_l{l} = b, rnn.bias_hh_l{l} (zeros, or the
        GRU's bh), decoder.weight = output.weightᵀ (V,H), decoder.bias (V): fresh float32 numpy arrays
        (torch.from_numpy each to load them into torch). A one-hot model has no encoder.weight."""
        t, out = self.tensors, {}
        if self.input == "embedding":
            out["encoder.weight"] = t["embedding.weight"].copy()
        for l in range(self.layers):
            p = f"{self.cell}.{l}."
            out[f"rnn.weight_ih_l{l}"] = np.ascontiguousarray(t[p + "wx"].T)
            out[f"rnn.weight_hh_l{l}"] = np.ascontiguousarray(t[p + "wh"].T)
            out[f"rnn.bias_ih_l{l}"] = t[p + "b"].copy()
            out[f"rnn.bias_hh_l{l}"] = t[p + "bh"].copy() if self.cell == "gru" else np.zeros_like(t[p + "b"])
        if self.softmax == "adaptive":  # an nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value, head_bias=True)
            out["decoder.head.weight"] = np.ascontiguousarray(t["output.head.weight"].T)
            out["decoder.head.bias"] = t["output.head.bias"].copy()
            for i in range(len(self.cutoffs)):
                out[f"decoder.tail.{i}.0.weight"] = np.ascontiguousarray(t[f"output.tail.{i}.projection"].T)
                out[f"decoder.tail.{i}.1.weight"] = np.ascontiguousarray(t[f"output.tail.{i}.weight"].T)
        else:
            out["decoder.weight"] = (t["embedding.weight"].copy() if self.tied
                                     else np.ascontiguousarray(t["output.weight"].T))
            out["decoder.bias"] = t["output.bias"].copy()
        return out

    @classmethod
    def from_pytorch_state_dict(cls, state_dict, vocabulary, cell=None, dropout=0.0):
        """The model of a word_language_model state dict (numpy arrays, or anything np.asarray reads, torch tensors
        via .numpy()); the sizes come from the shapes, the cell from rnn.weight_hh_l0 ((H,H): "rnn" unless cell says
        "rnn-relu"; (4H,H) "lstm"; (3H,H) "gru"). bias_ih + bias_hh fold into b except for the GRU.
        vocabulary is a Vocabulary or a (tokens, level) pair."""
        sd = {n: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32) for n, v in state_dict.items()}
        if not isinstance(vocabulary, Vocabulary):
            vocabulary = Vocabulary(*vocabulary)
        adaptive = "decoder.head.weight" in sd
        required = ("rnn.weight_hh_l0", "rnn.weight_ih_l0") + (() if adaptive else ("decoder.bias",))
        for name in required:
            if name not in sd:
                raise RNNCoreModelError(f"the state dict has no {name!r}")
        G, H = sd["rnn.weight_hh_l0"].shape
        gates = G // H
        inferred = {1: "rnn", 4: "lstm", 3: "gru"}.get(gates) if G % H == 0 else None
        if inferred is None:
            raise RNNCoreModelError(f"rnn.weight_hh_l0 has shape {(G, H)}, which is (H,H), (4H,H) or (3H,H) for none H")
        cell = cell or inferred
        if _CELLS.get(cell, (None,))[0] != gates:
            raise RNNCoreModelError(f"cell {cell!r} does not match rnn.weight_hh_l0 of shape {(G, H)}")
        layers = 0
        while f"rnn.weight_ih_l{layers}" in sd:
            layers += 1
        one_hot = "encoder.weight" not in sd
        D = sd["rnn.weight_ih_l0"].shape[1]
        extras = {}
        known = {"encoder.weight", "decoder.weight", "decoder.bias"}
        if adaptive:  # an nn.AdaptiveLogSoftmaxWithLoss: cutoffs from the shapes, div_value from the first projection
            C = 0
            while f"decoder.tail.{C}.0.weight" in sd:
                C += 1
            if C == 0:
                raise RNNCoreModelError("the state dict has decoder.head.weight but no 'decoder.tail.0.0.weight'")
            K = sd["decoder.head.weight"].shape[0]
            cutoffs = [K - C]
            tensors = {"output.head.weight": sd["decoder.head.weight"].T,
                       "output.head.bias": sd.get("decoder.head.bias", np.zeros(K, dtype=np.float32))}
            for i in range(C):
                tensors[f"output.tail.{i}.projection"] = sd[f"decoder.tail.{i}.0.weight"].T
                tensors[f"output.tail.{i}.weight"] = sd[f"decoder.tail.{i}.1.weight"].T
                cutoffs.append(cutoffs[-1] + sd[f"decoder.tail.{i}.1.weight"].shape[0])
                known |= {f"decoder.tail.{i}.0.weight", f"decoder.tail.{i}.1.weight"}
            known |= {"decoder.head.weight", "decoder.head.bias"}
            V = cutoffs.pop()
            extras = {"softmax": "adaptive", "cutoffs": cutoffs,
                      "divValue": H / sd["decoder.tail.0.0.weight"].shape[0]}
        else:
            tensors = {"output.bias": sd["decoder.bias"]}
            V = sd["decoder.bias"].shape[0]
            decoder = sd.get("decoder.weight")
            # --tied: decoder.weight is the encoder's tensor, or left out as a duplicate.
            if decoder is None or ("encoder.weight" in sd and np.array_equal(decoder, sd["encoder.weight"])):
                if one_hot:
                    raise RNNCoreModelError("the state dict has no 'decoder.weight' and no encoder to tie it to")
                extras = {"tiedWeights": True}
            else:
                tensors["output.weight"] = decoder.T
        if not one_hot:
            tensors["embedding.weight"] = sd["encoder.weight"]
        for l in range(layers):
            p, s = f"{cell}.{l}.", f"_l{l}"
            tensors[p + "wx"], tensors[p + "wh"] = sd["rnn.weight_ih" + s].T, sd["rnn.weight_hh" + s].T
            b_ih, b_hh = sd.get("rnn.bias_ih" + s), sd.get("rnn.bias_hh" + s)
            zeros = np.zeros(G, dtype=np.float32)
            b_ih, b_hh = (zeros if b_ih is None else b_ih), (zeros if b_hh is None else b_hh)
            if cell == "gru":
                tensors[p + "b"], tensors[p + "bh"] = b_ih, b_hh
            else:
                tensors[p + "b"] = b_ih + b_hh
        known |= {f"rnn.{w}_l{l}" for l in range(layers) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        extra = sorted(set(sd) - known)
        if extra:
            raise RNNCoreModelError(f"the state dict's {extra[0]!r} belongs to no parameter of the model")
        configuration = {"vocabularySize": V, "embeddingSize": D, "hiddenSize": H, "layers": layers, "cell": cell,
                         "dropout": dropout, "input": "one-hot" if one_hot else "embedding"} | extras
        model = cls(configuration, tensors, vocabulary, source="the state dict")
        if adaptive and model.tail_projection_sizes() != [tensors[f"output.tail.{i}.projection"].shape[1]
                                                          for i in range(len(model.cutoffs))]:
            raise RNNCoreModelError("the adaptive softmax's tail projections do not follow one div_value")
        return model


def load(path):
    """Reads a model written by `rnncore train --out` (safetensors with the rnncore-lm metadata)."""
    path = os.fspath(path)
    tensors, metadata = _read_safetensors(path)
    if metadata.get("format") != "rnncore-lm":
        raise RNNCoreModelError(f"{path}: not an RNNCore model (the metadata's format is "
                                f"{metadata.get('format')!r}, not 'rnncore-lm')")
    try:
        configuration = json.loads(metadata["configuration"])
        vocabulary = json.loads(metadata["vocabulary"])
        vocabulary = Vocabulary(vocabulary["tokens"], vocabulary["level"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise RNNCoreModelError(f"{path}: the metadata's configuration or vocabulary is missing or malformed "
                                f"({error})") from None
    except RNNCoreModelError as error:
        raise RNNCoreModelError(f"{path}: {error}") from None
    return LanguageModel(configuration, tensors, vocabulary, source=path)
