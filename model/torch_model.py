"""The network in plain PyTorch (``torch.nn`` + a hand-written loop); no Keras in the import graph.

The recurrent stack is one fused multi-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM``
(oneDNN's RNN primitive on x86 CPUs), the fastest idiomatic torch path.

Equivalence with the Keras model:
* Keras' LSTM gates (i, f, c, o) are torch's (i, f, g, o); Keras' GRU gates
  (z, r, h) become torch's (r, z, n); Keras' ``reset_after=True`` GRU is
  torch's GRU formula.
* torch keeps two bias vectors (input and recurrent) where Keras' LSTM and
  SimpleRNN keep one. Their sum is all that matters, so the recurrent one is
  frozen at zero: the trainable parameters are exactly Keras'.
* bf16 (``precision="bf16"``): ``torch.autocast("cpu", dtype=torch.bfloat16)``
  around the forward pass, as torch's CPU AMP recipe does: weights, gradients
  and Adam's state stay fp32, the logits are cast to fp32 before the loss.
  What autocast computes in bf16 depends on the cell (torch 2.13): the LSTM
  through oneDNN's bf16 RNN primitive, SimpleRNN in bf16, but ``nn.GRU`` has
  no autocast rule and stays fp32; the record's kernel path names the dtype
  observed. On a CPU without bf16 instructions oneDNN cannot build its bf16
  LSTM primitive (an error, not a fallback), so there the forward pass runs
  with oneDNN off and the LSTM computes in fp32 on ATen's loop.
* Adam: torch adds epsilon to the bias-corrected sqrt(v); Keras and TF add it
  to the raw sqrt(v). Setting torch's epsilon to eps / sqrt(1 - beta_2**t)
  at step t makes the two updates identical.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.preprocess import PAD
from model.spec import ModelSpec, TrainSpec, learning_rate_at, ngram_ids
from model.weights import GATES

RECURRENT_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
_GRU_TO_TORCH = (1, 0, 2)  # Keras (z, r, h) -> torch (r, z, n)


class SentimentRNN(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.embedding = nn.Embedding(spec.vocab_size, spec.embedding_dim)
        self.ngrams = nn.Embedding(spec.ngram_buckets, spec.embedding_dim) if spec.ngram_buckets else None
        self.embedding_dropout = nn.Dropout(spec.embedding_dropout)
        self.recurrent = RECURRENT_MODULES[spec.cell](spec.embedding_dim, spec.units, num_layers=spec.layers,
                                                      batch_first=True, bidirectional=spec.bidirectional
                                                      ) if spec.layers else None
        self.dropout = nn.Dropout(spec.dropout)
        self.logit = nn.Linear(spec.pooled_features, 1)
        if spec.cell != "gru" and self.recurrent is not None:
            for name, parameter in self.recurrent.named_parameters():
                if name.startswith("bias_hh"):
                    parameter.requires_grad_(False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)  # (batch, time, embedding)
        if self.ngrams is not None:  # each position's n-grams, n = 2..order, ending at it
            tokens = tokens.long()
            back = [tokens] + [nn.functional.pad(tokens[:, :-k], (k, 0)) for k in range(1, self.spec.ngram_order)]
            for n in range(2, self.spec.ngram_order + 1):
                history = back[n - 1::-1]  # oldest first
                real = torch.stack([h != PAD for h in history]).all(0).unsqueeze(-1).to(x.dtype)
                x = x + self.ngrams(ngram_ids(history, self.spec)) * real
        x = self.embedding_dropout(x)
        if self.spec.segment_len:  # each segment a row of its own: (batch * segments, segment_len, embedding)
            x = x.reshape(-1, self.spec.segment_len, x.shape[-1])
        if self.recurrent is not None:
            x, _ = self.recurrent(x)  # (rows, time, directions * units)
        x = x.reshape(tokens.shape[0], -1, x.shape[-1])  # (batch, time, features), a review's segments in a row
        pooled = x.amax(dim=1)  # max over time
        if self.spec.pooling == "max-mean":  # and the mean over the real tokens
            real = (tokens != PAD).unsqueeze(-1).float()  # summed in fp32: bf16 cannot count past 256 exactly
            mean = (x.float() * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)
            pooled = torch.cat([pooled, mean.to(pooled.dtype)], dim=-1)
        return self.logit(self.dropout(pooled)).squeeze(-1)  # (batch,)


def _suffixes(spec: ModelSpec):
    for layer in range(spec.layers):
        for direction in range(spec.directions):
            yield f"_l{layer}" + ("_reverse" if direction else "")


def _to_torch_gates(matrix: np.ndarray, cell: str) -> np.ndarray:
    """Keras (in, G*units) or (G*units,) -> torch row order (G*units, ...)."""
    if cell != "gru":
        return matrix
    blocks = np.split(matrix, GATES[cell], axis=-1)
    return np.concatenate([blocks[i] for i in _GRU_TO_TORCH], axis=-1)


def _from_torch_gates(matrix: np.ndarray, cell: str) -> np.ndarray:
    if cell != "gru":
        return matrix
    blocks = np.split(matrix, GATES[cell], axis=-1)
    inverse = np.argsort(_GRU_TO_TORCH)
    return np.concatenate([blocks[i] for i in inverse], axis=-1)


def load_canonical(module: SentimentRNN, weights: list[np.ndarray]) -> None:
    spec, state = module.spec, {}
    state["embedding.weight"] = weights[0]
    if spec.ngram_buckets:
        state["ngrams.weight"] = weights[1]
    rest = iter(weights[spec.embeddings:-2])
    for suffix in _suffixes(spec):
        kernel, recurrent, bias = next(rest), next(rest), next(rest)
        state[f"recurrent.weight_ih{suffix}"] = _to_torch_gates(kernel, spec.cell).T
        state[f"recurrent.weight_hh{suffix}"] = _to_torch_gates(recurrent, spec.cell).T
        if spec.cell == "gru":
            state[f"recurrent.bias_ih{suffix}"] = _to_torch_gates(bias[0], spec.cell)
            state[f"recurrent.bias_hh{suffix}"] = _to_torch_gates(bias[1], spec.cell)
        else:
            state[f"recurrent.bias_ih{suffix}"] = bias
            state[f"recurrent.bias_hh{suffix}"] = np.zeros_like(bias)
    state["logit.weight"] = weights[-2].T
    state["logit.bias"] = weights[-1]
    module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
                            for name, value in state.items()})


def canonical_weights(module: SentimentRNN) -> list[np.ndarray]:
    return to_canonical(module.spec, {name: value.detach().cpu().numpy().copy()
                                      for name, value in module.state_dict().items()})


def canonical_gradients(module: SentimentRNN) -> list[np.ndarray]:
    """Each parameter's ``.grad`` in the canonical layout. The frozen recurrent biases of the LSTM and SimpleRNN
    have none, and the canonical bias is their sum with the input bias: its gradient is the input bias's."""
    return to_canonical(module.spec, {name: (np.zeros(tuple(p.shape), np.float32) if p.grad is None
                                             else p.grad.detach().cpu().numpy().copy())
                                      for name, p in module.named_parameters()})


def to_canonical(spec: ModelSpec, state: dict) -> list[np.ndarray]:
    """torch's parameter names and layouts -> the canonical list (``model/weights.py``)."""
    out = [state["embedding.weight"]] + ([state["ngrams.weight"]] if spec.ngram_buckets else [])
    for suffix in _suffixes(spec):
        out.append(_from_torch_gates(state[f"recurrent.weight_ih{suffix}"].T, spec.cell))
        out.append(_from_torch_gates(state[f"recurrent.weight_hh{suffix}"].T, spec.cell))
        input_bias = _from_torch_gates(state[f"recurrent.bias_ih{suffix}"], spec.cell)
        recurrent_bias = _from_torch_gates(state[f"recurrent.bias_hh{suffix}"], spec.cell)
        out.append(np.stack([input_bias, recurrent_bias]) if spec.cell == "gru" else input_bias + recurrent_bias)
    out += [state["logit.weight"].T.copy(), state["logit.bias"]]
    return [np.ascontiguousarray(w, dtype=np.float32) for w in out]


class TorchImplementation:
    """Native PyTorch: eager ``nn.Module``, ``torch.optim.Adam``, global-norm gradient clipping."""


    def __init__(self, spec: ModelSpec, train: TrainSpec, weights: list[np.ndarray], compile: bool = False,
                 precision: str = "fp32", total_steps: int = 1):
        self.spec, self.train, self.compiled, self.total_steps = spec, train, compile, total_steps
        self.precision = precision
        self.module = SentimentRNN(spec)
        load_canonical(self.module, weights)
        # torch.compile (Inductor): compiled at the first call of each mode, so the first step holds it.
        self.forward = torch.compile(self.module) if compile else self.module
        self.parameters = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.parameters, lr=train.learning_rate,
                                          betas=(train.beta_1, train.beta_2), eps=train.epsilon)
        self.loss_function = nn.BCEWithLogitsLoss()
        self.steps = 0

    def _logits(self, tokens: np.ndarray) -> torch.Tensor:
        with precision_context(self.precision):
            logits = self.forward(torch.from_numpy(tokens))
        return logits.float()

    def train_step(self, tokens: np.ndarray, labels: np.ndarray) -> torch.Tensor:
        """One Adam step on one batch; returns the loss (a 0-d tensor, not yet read)."""
        self.module.train()
        self.steps += 1
        # Keras' epsilon placement (see module docstring), set for this step.
        group = self.optimizer.param_groups[0]
        group["eps"] = self.train.epsilon / (1 - self.train.beta_2 ** self.steps) ** 0.5
        group["lr"] = learning_rate_at(self.train, self.steps - 1, self.total_steps)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_function(self._logits(tokens), torch.from_numpy(labels))
        loss.backward()
        # The norm before clipping, left for the loop to read after the step (the clip binds when it is above).
        self.gradient_norm = nn.utils.clip_grad_norm_(self.parameters, self.train.clip_global_norm)
        self.optimizer.step()
        return loss.detach()

    def gradients(self, tokens: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        """d loss / d each canonical weight on one batch, before clipping (training mode; no step is taken)."""
        self.module.train()
        self.module.zero_grad(set_to_none=True)
        self.loss_function(self._logits(tokens), torch.from_numpy(labels)).backward()
        gradients = canonical_gradients(self.module)
        self.module.zero_grad(set_to_none=True)
        return gradients

    @torch.inference_mode()
    def predict_batch(self, tokens: np.ndarray) -> np.ndarray:
        self.module.eval()
        return self._logits(tokens).numpy()

    def get_weights(self) -> list[np.ndarray]:
        return canonical_weights(self.module)

    def set_weights(self, weights: list[np.ndarray]) -> None:
        load_canonical(self.module, weights)

    def save(self, run_dir: Path) -> list[str]:
        torch.save(self.module.state_dict(), run_dir / "model.pt")
        return ["model.pt"]

    def info(self) -> dict:
        compiled = f"; torch.compile (Inductor): {graph_breaks(self.module)}" if self.compiled else ""
        path = observed_kernel_path(self.module, self.precision) + compiled
        return dict(kernel_path=path, jit_compile=self.compiled, precision=self.precision,
                    training_api=("torch.compile'd" if self.compiled else "eager") + " nn.Module + torch.optim.Adam",
                    parameter_count=sum(p.numel() for p in self.parameters))


def precision_context(precision: str):
    """autocast for bf16, with oneDNN off where it has no bf16 kernels (see the module docstring)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        with warnings.catch_warnings():  # a note about TF32 on Intel GPUs, irrelevant here
            warnings.simplefilter("ignore")
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
    return stack


def graph_breaks(module: SentimentRNN) -> str:
    """What TorchDynamo made of the forward pass, as its ``explain`` reports it on a tiny batch: how many graphs,
    where each break fell (the source line) and why, and the operations the compiled graphs hold."""
    import linecache

    import torch._dynamo

    explained = torch._dynamo.explain(module)(torch.zeros((2, min(module.spec.maxlen, 8)), dtype=torch.long))
    breaks = []
    for reason in explained.break_reasons:
        frame = reason.user_stack[-1] if reason.user_stack else None
        line = linecache.getline(frame.filename, frame.lineno).split("#")[0].strip() if frame else ""
        where = f" at `{line}`" if line else ""
        breaks.append(f"{reason.reason}{where}")
    ops = sorted({getattr(op, "__name__", str(op)) for graph in explained.ops_per_graph for op in graph})
    return (f"{explained.graph_count} graph(s) of {', '.join(ops) or 'no operations'}; "
            f"{len(breaks)} break(s): {'; '.join(breaks) or 'none'} (TorchDynamo explain); the rest runs eagerly")


def autograd_kernel(output: torch.Tensor) -> str:
    """Which CPU kernel produced ``output``, read from the autograd graph behind it (a tiny forward is enough)."""
    nodes, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and type(node).__name__ not in nodes:
            nodes.add(type(node).__name__)
            stack += [parent for parent, _ in node.next_functions]
    if any(name.startswith("MkldnnRnnLayer") for name in nodes):
        return "oneDNN RNN primitive (aten::mkldnn_rnn_layer)"
    return "ATen CPU loop, one autograd op per gate per timestep (no oneDNN kernel for this cell)"


def observed_kernel_path(module: SentimentRNN, precision: str = "fp32") -> str:
    """Name the kernel torch really dispatched to, and the dtype it computed in, read from the autograd graph
    and the output of a tiny forward."""
    if module.recurrent is None:
        return "no recurrent layer (the embeddings pooled)"
    tokens = torch.zeros((2, min(module.spec.maxlen, 4)), dtype=torch.long)
    with torch.enable_grad(), precision_context(precision):
        output, _ = module.recurrent(module.embedding(tokens))
    dtype = "" if precision == "fp32" else f", computing in {str(output.dtype).removeprefix('torch.')}" + (
        "" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else " (oneDNN off: no bf16 primitives on this CPU)")
    return f"torch fused multi-layer nn.{type(module.recurrent).__name__}: {autograd_kernel(output)}{dtype}"
