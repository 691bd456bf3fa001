"""rnncore.load, perplexity, generate and the PyTorch state dicts (pytest).

The perplexity tests train tiny models with the Swift tool (`rnncore train --out`) in a scratch directory and compare
with `rnncore eval --json`. The tool is $RNNCORE_TOOL, else the one `swift build --show-bin-path` names (scripts/test.sh
builds it before this step); without it those tests are skipped, saying so.

Tolerance of the perplexity comparison: relative 1e-6. Both sides run the same C kernels on the same windows
(batch 1, bptt 35) and sum the per-window mean losses in double, so on one machine they agree to the last bits; the
margin allows a different grouping of a float32 sum (float32 rounding, about 6e-8 relative per operation, averaged
over the text's predictions), which cannot move the perplexity by 1e-6 for these few-hundred-token texts.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import rnncore

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN = ("the cat sat on the mat\nthe dog sat on the log\na cat and a dog <unk>\n"
         "the log and the mat\na dog sat on a cat\n") * 3
TEST = "the cat sat on a log\nan unseen dog and the mat\n"  # "an" and "unseen" become <unk>


def _tool():
    tool = os.environ.get("RNNCORE_TOOL")
    if tool:
        return tool if os.access(tool, os.X_OK) else None
    if shutil.which("swift") is None:
        return None
    try:
        bin_path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=REPO, capture_output=True, text=True,
                                  check=True, timeout=120).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    tool = os.path.join(bin_path, "rnncore")
    return tool if os.access(tool, os.X_OK) else None


@pytest.fixture(scope="module")
def tool():
    found = _tool()
    if found is None:
        pytest.skip("the Swift tool rnncore is not built (run swift build in the repository, or set RNNCORE_TOOL)")
    return found


def _train(tool, tmp_path, name, text, *options):
    (tmp_path / f"{name}.txt").write_text(text)
    out = tmp_path / f"{name}.safetensors"
    subprocess.run([tool, "train", "--train", str(tmp_path / f"{name}.txt"), "--epochs", "2", "--batch", "2",
                    "--bptt", "6", "--seed", "3", "--out", str(out), *options], check=True, capture_output=True)
    return out


def _eval(tool, model, data):
    result = subprocess.run([tool, "eval", "--model", str(model), "--data", str(data), "--json"], check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout)["perplexity"]


@pytest.mark.parametrize("options", [
    ("--cell", "rnn", "--embed", "6", "--hidden", "5"),
    ("--cell", "rnn-relu", "--embed", "6", "--hidden", "5", "--layers", "2"),
    ("--cell", "lstm", "--embed", "4", "--hidden", "7", "--layers", "2"),
    ("--cell", "gru", "--embed", "5", "--hidden", "6", "--layers", "2"),
    ("--cell", "lstm", "--embed", "6", "--hidden", "6", "--tie-weights"),
    ("--cell", "gru", "--embed", "5", "--hidden", "6", "--softmax", "adaptive", "--cutoffs", "3,6", "--div-value", "2"),
], ids=lambda o: "-".join(o[1:2] + o[6:]))
def test_word_perplexity_equals_rnncore_eval(tool, tmp_path, options):
    model = _train(tool, tmp_path, "words", TRAIN, *options)
    (tmp_path / "test.txt").write_text(TEST * 20)  # 240 predictions: several 35-step windows
    lm = rnncore.load(model)
    assert lm.cell == options[1]
    got = lm.perplexity(TEST * 20)
    assert got == pytest.approx(_eval(tool, model, tmp_path / "test.txt"), rel=1e-6)


def test_character_one_hot_perplexity_equals_rnncore_eval(tool, tmp_path):
    model = _train(tool, tmp_path, "chars", TRAIN.replace(" <unk>", ""), "--level", "char", "--input", "one-hot",
                   "--hidden", "8", "--cell", "lstm")
    (tmp_path / "test.txt").write_text("a cat sat\non the dog\n" * 5)
    lm = rnncore.load(model)
    assert lm.vocabulary.level == "character" and lm.input == "one-hot"
    assert lm.perplexity("a cat sat\non the dog\n" * 5) == pytest.approx(_eval(tool, model, tmp_path / "test.txt"),
                                                                        rel=1e-6)


def test_unknown_word_without_unk_is_an_error(tool, tmp_path):
    lm = rnncore.load(_train(tool, tmp_path, "nounk", TRAIN.replace(" <unk>", ""), "--hidden", "4", "--embed", "4"))
    with pytest.raises(rnncore.RNNCoreModelError, match="not in the vocabulary"):
        lm.perplexity("the zebra")


# ---- without the tool: models from random tensors ----

def _model(cell, layers=2, V=9, D=5, H=4, seed=0, **output):
    """A model of random tensors; output may hold softmax, cutoffs, divValue, tiedWeights."""
    rng = np.random.default_rng(seed)
    tokens = ["<eos>", "<unk>"] + [f"w{i}" for i in range(V - 2)]
    configuration = {"vocabularySize": V, "embeddingSize": D, "hiddenSize": H, "layers": layers, "cell": cell,
                     "dropout": 0, "input": "embedding"} | output
    probe = rnncore.LanguageModel.__new__(rnncore.LanguageModel)
    probe.V, probe.D, probe.H, probe.layers, probe.cell, probe.input = V, D, H, layers, cell, "embedding"
    probe.softmax, probe.cutoffs = output.get("softmax", "full"), output.get("cutoffs", [])
    probe.div_value, probe.tied = output.get("divValue", 4), output.get("tiedWeights", False)
    tensors = {n: rng.standard_normal(s).astype(np.float32) * 0.5 for n, s in probe.parameter_shapes().items()}
    return rnncore.LanguageModel(configuration, tensors, rnncore.Vocabulary(tokens, "word"))


@pytest.mark.parametrize("cell", ["rnn", "rnn-relu", "lstm", "gru"])
def test_generate_returns_count_tokens_deterministically(cell):
    lm = _model(cell)
    a = lm.generate("w1 w2", count=12, temperature=0.9, top_k=5, top_p=0.95, seed=4)
    assert len(a) == 12 and all(t in lm.vocabulary.tokens for t in a)
    assert lm.generate("w1 w2", count=12, temperature=0.9, top_k=5, top_p=0.95, seed=4) == a
    assert len(lm.generate("", count=3, seed=1)) == 3
    assert lm.generate("w3", count=0) == []
    greedy = lm.generate("w3", count=6, temperature=0, seed=1)
    assert lm.generate("w3", count=6, temperature=0, seed=99) == greedy  # temperature 0: the most likely, any seed
    assert lm.generate("w3", count=6, top_k=1, seed=5) == greedy
    with pytest.raises(rnncore.RNNCoreModelError):
        lm.generate("w3", count=2, top_k=0)


@pytest.mark.parametrize("cell", ["rnn", "rnn-relu", "lstm", "gru"])
def test_pytorch_state_dict_round_trip(cell):
    lm = _model(cell, V=9, D=5, H=4)
    G = {"rnn": 1, "rnn-relu": 1, "lstm": 4, "gru": 3}[cell] * 4
    sd = lm.to_pytorch_state_dict()
    assert sd["encoder.weight"].shape == (9, 5) and sd["decoder.weight"].shape == (9, 4)
    assert sd["rnn.weight_ih_l0"].shape == (G, 5) and sd["rnn.weight_ih_l1"].shape == (G, 4)
    assert sd["rnn.weight_hh_l1"].shape == (G, 4) and sd["rnn.bias_hh_l0"].shape == (G,)
    np.testing.assert_array_equal(sd["rnn.weight_ih_l0"], lm.tensors[f"{cell}.0.wx"].T)
    np.testing.assert_array_equal(sd["decoder.weight"], lm.tensors["output.weight"].T)
    if cell != "gru":
        np.testing.assert_array_equal(sd["rnn.bias_hh_l1"], 0)
    back = rnncore.LanguageModel.from_pytorch_state_dict(sd, lm.vocabulary, cell=cell if cell == "rnn-relu" else None)
    assert back.configuration == lm.configuration
    assert back.tensors.keys() == lm.tensors.keys()
    for name, t in lm.tensors.items():
        np.testing.assert_array_equal(back.tensors[name], t, err_msg=name)
    text = "w1 w2 w3\nw4 w0 w5 w6\n"
    assert back.perplexity(text) == lm.perplexity(text)


def test_bias_hh_folds_into_b():
    lm = _model("lstm", layers=1)
    sd = lm.to_pytorch_state_dict()
    sd["rnn.bias_hh_l0"] = np.full_like(sd["rnn.bias_ih_l0"], 0.25)
    back = rnncore.LanguageModel.from_pytorch_state_dict(sd, lm.vocabulary)
    np.testing.assert_allclose(back.tensors["lstm.0.b"], lm.tensors["lstm.0.b"] + 0.25)


def test_load_reports_the_file_and_the_reason(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x0a\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(rnncore.RNNCoreModelError, match="bad.safetensors.*header is not JSON"):
        rnncore.load(bad)
    with pytest.raises(rnncore.RNNCoreModelError, match="missing.safetensors: cannot read"):
        rnncore.load(tmp_path / "missing.safetensors")
    header = json.dumps({"__metadata__": {"format": "other"}}).encode()
    other = tmp_path / "other.safetensors"
    other.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(rnncore.RNNCoreModelError, match="not an RNNCore model"):
        rnncore.load(other)


def test_vocabulary_tokenises_as_swift():
    v = rnncore.Vocabulary(["a", "b", "<eos>", "<unk>"], "word")
    assert v.split("a b\nb\n") == v.split("a b\nb") == ["a", "b", "<eos>", "b", "<eos>"]
    assert v.split("a\n\nb\t a") == ["a", "<eos>", "<eos>", "b", "a", "<eos>"]
    assert v.encode("a zebra") == [0, 3, 2]
    assert v.decode([0, 1, 2, 1]) == "a b\nb"


# ---- output layers: the adaptive softmax and tied weights ----

def test_adaptive_log_probabilities_are_normalised_and_give_the_loss():
    """exp of every row of log-probabilities sums to 1 within float32 rounding of 12 terms (1e-5), and the fused
    C loss equals −mean log p at the targets (the same float32 values summed in double: 1e-5 relative)."""
    lm = _model("lstm", layers=1, V=12, D=5, H=6, softmax="adaptive", cutoffs=[4, 8], divValue=2)
    assert lm.tail_projection_sizes() == [3, 1]
    ids = np.arange(12) % 12
    scores = lm.logits(ids[None, :-1], lm.zero_state())
    assert scores.shape == (1, 11, 12)
    assert np.allclose(np.exp(scores.astype(np.float64)).sum(-1), 1, atol=1e-5)
    expected = -np.mean([scores[0, t, ids[t + 1]] for t in range(11)])
    assert abs(lm.mean_loss(ids) - expected) <= 1e-5 * abs(expected)


def test_tied_model_equals_the_untied_model_with_the_embedding_transposed():
    tied = _model("gru", layers=1, V=9, D=4, H=4, tiedWeights=True)
    assert "output.weight" not in tied.tensors
    config = tied.configuration | {"tiedWeights": False}
    tensors = dict(tied.tensors) | {"output.weight": np.ascontiguousarray(tied.tensors["embedding.weight"].T)}
    untied = rnncore.LanguageModel(config, tensors, tied.vocabulary)
    ids = np.array([[1, 4, 2, 7, 3]])
    # The same products through a transposed copy of the table: equal up to float32 summation order.
    assert np.allclose(tied.logits(ids, tied.zero_state()), untied.logits(ids, untied.zero_state()), atol=1e-6)


@pytest.mark.parametrize("output", [{"tiedWeights": True}, {"softmax": "adaptive", "cutoffs": [3, 6], "divValue": 2}],
                         ids=["tied", "adaptive"])
def test_output_layers_round_trip_through_the_pytorch_state_dict(output):
    lm = _model("lstm", layers=2, V=9, D=4, H=4, **output)
    sd = lm.to_pytorch_state_dict()
    if "tiedWeights" in output:
        assert np.array_equal(sd["decoder.weight"], sd["encoder.weight"])
    else:
        assert sd["decoder.head.weight"].shape == (5, 4) and sd["decoder.tail.1.1.weight"].shape == (3, 1)
    back = rnncore.LanguageModel.from_pytorch_state_dict(sd, lm.vocabulary)
    assert back.configuration == lm.configuration
    assert set(back.tensors) == set(lm.tensors)
    for name, t in lm.tensors.items():
        assert np.array_equal(back.tensors[name], t), name
