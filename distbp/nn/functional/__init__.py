"""distbp.nn.functional: torch.nn.functional's names and signatures on distbp Tensors.

One file per family; this file only re-exports. Primitives (own backward, in distbp/ops): linear,
conv2d/conv_transpose2d/unfold/fold, 2-D pooling, batch_norm, layer_norm, log_softmax/softmax, the
pointwise activations, scaled_dot_product_attention, constant pad. Everything else is composed
(the 3-D convolutions and pools from the 2-D primitives, conv3d.py and pooling3d.py).
"""
from .activation import (celu, celu_, elu, elu_, gelu, get_activation, glu, gumbel_softmax,
                         hardshrink, hardsigmoid, hardswish, hardtanh, hardtanh_, leaky_relu,
                         leaky_relu_, log_softmax, logsigmoid, mish, prelu, relu, relu6, relu_,
                         rrelu, rrelu_, selu, selu_, sigmoid, silu, softmax, softmin, softplus,
                         softshrink, softsign, tanh, tanhshrink, threshold, threshold_)
from .attention import multi_head_attention_forward, scaled_dot_product_attention
from .conv import (bilinear, conv1d, conv2d, conv_transpose1d, conv_transpose2d, fold, linear,
                   unfold)
from .conv3d import conv3d, conv_transpose3d
from .conv import conv_tbc
from .ctc import ctc_loss
from .grid import affine_grid, grid_sample
from .linear_ce import linear_cross_entropy
from .fractional import (fractional_max_pool2d, fractional_max_pool2d_with_indices,
                         fractional_max_pool3d, fractional_max_pool3d_with_indices)
from .distance import cosine_similarity, pairwise_distance, pdist
from .dropout import (alpha_dropout, dropout, dropout1d, dropout2d, dropout3d,
                      feature_alpha_dropout)
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cosine_embedding_loss,
                   cross_entropy, gaussian_nll_loss, hinge_embedding_loss, huber_loss, kl_div,
                   l1_loss, margin_ranking_loss, mse_loss, multi_margin_loss,
                   multilabel_margin_loss, multilabel_soft_margin_loss, nll_loss,
                   poisson_nll_loss, smooth_l1_loss, soft_margin_loss, triplet_margin_loss,
                   triplet_margin_with_distance_loss)
from .norm import (batch_norm, group_norm, instance_norm, layer_norm, local_response_norm,
                   normalize, rms_norm)
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
                      adaptive_max_pool1d, adaptive_max_pool1d_with_indices, adaptive_max_pool2d,
                      adaptive_max_pool2d_with_indices, avg_pool1d, avg_pool2d, lp_pool1d,
                      lp_pool2d, max_pool1d, max_pool1d_with_indices, max_pool2d,
                      max_pool2d_with_indices)
from .pooling3d import (adaptive_max_pool3d, adaptive_max_pool3d_with_indices, avg_pool3d,
                        lp_pool3d, max_pool3d, max_pool3d_with_indices, max_unpool1d,
                        max_unpool2d, max_unpool3d)
from .sparse import embedding, embedding_bag, one_hot
from .vision import (channel_shuffle, interpolate, native_channel_shuffle, pad, pixel_shuffle,
                     pixel_unshuffle, upsample, upsample_bilinear, upsample_nearest)
