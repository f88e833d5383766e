"""keras-torch-fused: Keras' torch backend sends CPU tensors to the fused LSTM/GRU kernels it ships for CUDA.

Keras 3.15's torch backend already holds a fused path: ``_cudnn_lstm`` and
``_cudnn_gru`` in ``keras/src/backend/torch/rnn.py`` call ``torch._VF.lstm`` /
``torch._VF.gru`` (the functions behind ``nn.LSTM``/``nn.GRU``), but
``lstm()``/``gru()`` only take it when the inputs live on CUDA. Nothing in
those two functions needs CUDA: on the CPU ``torch._VF.lstm`` runs oneDNN's
RNN primitive, the kernel native torch uses (keras-team/keras issue 20902,
"pytorch backend lstm +10x slow", is this gap). This module is that patch,
applied only when a run asks for it (the ``keras-torch-fused`` implementation,
variant ``rnn_path=fused``); the default keras-torch result never uses it.

It takes the fused path under the same conditions as upstream's CUDA path
(no mask, tanh/sigmoid activations, a bias, not unrolled, batch-major, and for
the GRU ``reset_after=True``), after the same conversions and the same
``go_backwards`` flip; anything else goes to Keras' own function unchanged.
SimpleRNN is not covered: Keras' SimpleRNN layer never calls a backend hook
(it has no cuDNN path on any backend), so reaching ``torch._VF.rnn_tanh``
would mean replacing the layer's loop, not opening a backend function.
"""

from __future__ import annotations

import importlib

import torch

_PATCHED = "_rnnbench_fused_cpu"


def _fusable(inputs, mask, activation, recurrent_activation, unroll, bias) -> bool:
    from keras.src import activations, ops

    device = inputs.device.type if isinstance(inputs, torch.Tensor) else "cpu"
    return (device == "cpu" and mask is None and not unroll and bias is not None
            and activation in (activations.tanh, torch.tanh, ops.tanh)
            and recurrent_activation in (activations.sigmoid, torch.sigmoid, ops.sigmoid))


def install() -> None:
    """Route Keras' torch-backend ``lstm``/``gru`` to the fused kernels for CPU tensors (idempotent)."""
    rnn = importlib.import_module("keras.src.backend.torch.rnn")
    backend = importlib.import_module("keras.src.backend")
    if getattr(rnn.lstm, _PATCHED, False):
        return
    keras_lstm, keras_gru = rnn.lstm, rnn.gru
    from keras.src.backend.torch.core import convert_to_tensor

    def lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias, activation,
             recurrent_activation, return_sequences=False, go_backwards=False, unroll=False, batch_first=True):
        if not (batch_first and _fusable(inputs, mask, activation, recurrent_activation, unroll, bias)):
            return keras_lstm(inputs, initial_state_h, initial_state_c, mask, kernel, recurrent_kernel, bias,
                              activation, recurrent_activation, return_sequences, go_backwards, unroll, batch_first)
        kernel, recurrent_kernel, bias = (convert_to_tensor(w) for w in (kernel, recurrent_kernel, bias))
        inputs = convert_to_tensor(inputs).to(kernel.dtype)
        if go_backwards:
            inputs = torch.flip(inputs, dims=[1])
        return rnn._cudnn_lstm(inputs, convert_to_tensor(initial_state_h).to(kernel.dtype),
                               convert_to_tensor(initial_state_c).to(kernel.dtype), kernel, recurrent_kernel, bias,
                               return_sequences=return_sequences, device=inputs.device)

    def gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation, recurrent_activation,
            return_sequences=False, go_backwards=False, unroll=False, reset_after=True):
        if not (reset_after and _fusable(inputs, mask, activation, recurrent_activation, unroll, bias)):
            return keras_gru(inputs, initial_state, mask, kernel, recurrent_kernel, bias, activation,
                             recurrent_activation, return_sequences, go_backwards, unroll, reset_after)
        kernel, recurrent_kernel, bias = (convert_to_tensor(w) for w in (kernel, recurrent_kernel, bias))
        inputs = convert_to_tensor(inputs).to(kernel.dtype)
        if go_backwards:
            inputs = torch.flip(inputs, dims=[1])
        return rnn._cudnn_gru(inputs, convert_to_tensor(initial_state).to(kernel.dtype), kernel, recurrent_kernel,
                              bias, return_sequences=return_sequences, device=inputs.device)

    for function in (lstm, gru):
        setattr(function, _PATCHED, True)
    # The layers call keras.src.backend.lstm/gru, bound when the backend was imported: patch both names.
    for module in (rnn, backend):
        module.lstm, module.gru = lstm, gru
