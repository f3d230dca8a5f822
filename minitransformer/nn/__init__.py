"""Layers, as in ``torch.nn``. Read in this order:

``module`` (Module, Parameter) -> ``init`` -> ``layers`` (Linear, Embedding,
LayerNorm, Dropout) -> ``masks`` -> ``recurrent`` (RNN, LSTM: a loop over time) ->
``blockwise`` (attention in memory linear in n) -> ``attention`` (all tokens at
once; MultiheadAttention) -> ``transformer`` (the encoder and decoder layers) ->
``loss``.
"""
from . import init
from .attention import (
    MultiheadAttention, causal_mask, masked_softmax, scaled_dot_product_attention,
)
from .blockwise import blockwise_attention
from .layers import Dropout, Embedding, LayerNorm, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, ModuleList, Parameter
from .recurrent import LSTM, RNN, LSTMCell, RNNCell
from .transformer import (
    PositionalEncoding, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "Module", "ModuleList", "Parameter",
    "Linear", "Embedding", "LayerNorm", "Dropout",
    "RNNCell", "LSTMCell", "RNN", "LSTM",
    "scaled_dot_product_attention", "masked_softmax", "causal_mask", "MultiheadAttention",
    "blockwise_attention",
    "PositionalEncoding", "TransformerEncoderLayer", "TransformerDecoderLayer",
    "TransformerEncoder", "TransformerDecoder",
    "CrossEntropyLoss", "MSELoss",
]
