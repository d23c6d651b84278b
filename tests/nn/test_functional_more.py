"""The nn.functional additions against torch.nn.functional in float64 (outputs and every input
grad, then finite differences), one line per case, new arguments included."""
import numpy as np
import pytest

from tests.opcheck import check, const, pos

rng = np.random.default_rng(3)
T3 = const(np.array([0, 3, 1]))
T23 = const(np.array([[0, 3, 1, 2], [1, 1, 0, 3]]))
W4 = const(np.array([0.5, 2.0, 1.0, 0.25]))
W34 = const(rng.uniform(0.5, 2, size=(3, 4)))
PROB = const(rng.dirichlet(np.ones(4), size=3))
SIGNS = const(np.array([1, -1, 1, -1, -1]))
BOOL_MASK = const(np.tril(np.ones((4, 5), dtype=bool)) | np.eye(4, 5, 3, dtype=bool))
UNIT = const(rng.uniform(0.05, 0.95, size=(3, 4)))
TARGET01 = const(rng.uniform(0, 1, size=(3, 4)))
PROB_IN = const(rng.uniform(0.05, 0.95, size=(3, 4)))

ACTIVATIONS = [
    ("elu", lambda m, x: m.F.elu(x)), ("elu_alpha", lambda m, x: m.F.elu(x, alpha=0.7)),
    ("selu", lambda m, x: m.F.selu(x)), ("celu", lambda m, x: m.F.celu(x, alpha=1.5)),
    ("softplus", lambda m, x: m.F.softplus(x)),
    ("softplus_beta_threshold", lambda m, x: m.F.softplus(x * 10, beta=2, threshold=3)),
    ("mish", lambda m, x: m.F.mish(x)), ("silu", lambda m, x: m.F.silu(x)),
    ("hardswish", lambda m, x: m.F.hardswish(x * 3)), ("hardsigmoid", lambda m, x: m.F.hardsigmoid(x * 3)),
    ("relu6", lambda m, x: m.F.relu6(x * 4)), ("leaky_relu_default", lambda m, x: m.F.leaky_relu(x)),
    ("leaky_relu", lambda m, x: m.F.leaky_relu(x, 0.2)), ("logsigmoid", lambda m, x: m.F.logsigmoid(x * 5)),
    ("hardtanh", lambda m, x: m.F.hardtanh(x * 2)), ("hardtanh_bounds", lambda m, x: m.F.hardtanh(x, -0.5, 0.3)),
    ("softsign", lambda m, x: m.F.softsign(x)), ("tanhshrink", lambda m, x: m.F.tanhshrink(x)),
    ("softshrink", lambda m, x: m.F.softshrink(x, 0.3)), ("hardshrink", lambda m, x: m.F.hardshrink(x, 0.3)),
    ("threshold", lambda m, x: m.F.threshold(x, 0.1, -2.0)),
    ("rrelu_eval", lambda m, x: m.F.rrelu(x)), ("gelu_tanh", lambda m, x: m.F.gelu(x, approximate="tanh")),
    ("softmin", lambda m, x: m.F.softmin(x, dim=1)), ("softmax_dtype", lambda m, x: m.F.softmax(x, -1, dtype=m.float64)),
    ("log_softmax_dim0", lambda m, x: m.F.log_softmax(x, 0)),
]
SHAPED = [
    ("glu", lambda m, x: m.F.glu(x), (3, 6)), ("glu_dim0", lambda m, x: m.F.glu(x, 0), (4, 3)),
    ("prelu_scalar", lambda m, x, w: m.F.prelu(x, w), (2, 3, 4), (1,)),
    ("prelu_channels", lambda m, x, w: m.F.prelu(x, w), (2, 3, 4), (3,)),
]

CONV = [
    ("conv2d_groups", lambda m, x, w, b: m.F.conv2d(x, w, b, groups=2), (2, 4, 5, 5), (6, 2, 3, 3), (6,)),
    ("conv2d_depthwise", lambda m, x, w: m.F.conv2d(x, w, groups=3, padding=1), (1, 3, 4, 4), (3, 1, 3, 3)),
    ("conv2d_dilation", lambda m, x, w: m.F.conv2d(x, w, dilation=2, padding=2), (1, 2, 7, 6), (3, 2, 3, 3)),
    ("conv2d_dilation_pair", lambda m, x, w: m.F.conv2d(x, w, stride=(2, 1), dilation=(1, 2)), (1, 2, 7, 8), (2, 2, 2, 3)),
    ("conv2d_same_even", lambda m, x, w: m.F.conv2d(x, w, padding="same"), (1, 2, 5, 6), (3, 2, 4, 2)),
    ("conv2d_same_dilated", lambda m, x, w: m.F.conv2d(x, w, padding="same", dilation=2), (1, 2, 6, 6), (2, 2, 3, 3)),
    ("conv2d_valid", lambda m, x, w: m.F.conv2d(x, w, padding="valid"), (1, 2, 5, 5), (2, 2, 3, 3)),
    ("conv2d_unbatched", lambda m, x, w: m.F.conv2d(x, w, padding=1), (2, 4, 4), (3, 2, 3, 3)),
    ("conv1d_groups_dilation", lambda m, x, w, b: m.F.conv1d(x, w, b, dilation=2, groups=2), (2, 4, 9), (4, 2, 3), (4,)),
    ("conv1d_same", lambda m, x, w: m.F.conv1d(x, w, padding="same"), (2, 3, 7), (2, 3, 4)),
    ("conv_transpose2d", lambda m, x, w, b: m.F.conv_transpose2d(x, w, b), (2, 3, 4, 4), (3, 2, 3, 3), (2,)),
    ("conv_transpose2d_stride_pad_outpad", lambda m, x, w: m.F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), (1, 2, 3, 4), (2, 3, 3, 3)),
    ("conv_transpose2d_groups_dilation", lambda m, x, w: m.F.conv_transpose2d(x, w, stride=(2, 1), groups=2, dilation=(1, 2)), (1, 4, 3, 3), (4, 1, 2, 3)),
    ("conv_transpose1d", lambda m, x, w, b: m.F.conv_transpose1d(x, w, b, stride=3, padding=1), (2, 3, 5), (3, 2, 4), (2,)),
    ("unfold", lambda m, x: m.F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), (2, 3, 5, 6)),
    ("fold", lambda m, x: m.F.fold(x, (4, 5), (2, 2), padding=1, stride=(2, 1)), (2, 8, 18)),
    ("bilinear", lambda m, a, b, w, c: m.F.bilinear(a, b, w, c), (4, 3), (4, 2), (5, 3, 2), (5,)),
]

POOL = [
    ("max_pool2d_ceil", lambda m, x: m.F.max_pool2d(x, 3, stride=2, ceil_mode=True), (1, 2, 6, 7)),
    ("max_pool2d_ceil_pad", lambda m, x: m.F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (1, 2, 6, 6)),
    ("max_pool2d_dilation", lambda m, x: m.F.max_pool2d(x, 2, stride=1, dilation=2), (1, 2, 5, 6)),
    ("max_pool2d_indices", lambda m, x: m.F.max_pool2d(x, 2, padding=1, return_indices=True), (1, 2, 5, 5)),
    ("max_pool1d_ceil_dilation", lambda m, x: m.F.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True), (2, 2, 10)),
    ("max_pool1d_indices", lambda m, x: m.F.max_pool1d(x, 3, return_indices=True), (2, 2, 9)),
    ("avg_pool2d_exclude_pad", lambda m, x: m.F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 5, 6)),
    ("avg_pool2d_ceil", lambda m, x: m.F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (1, 2, 6, 6)),
    ("avg_pool2d_ceil_exclude", lambda m, x: m.F.avg_pool2d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False), (1, 2, 5, 6)),
    ("avg_pool2d_divisor", lambda m, x: m.F.avg_pool2d(x, 2, divisor_override=3), (1, 2, 4, 4)),
    ("avg_pool1d_ceil", lambda m, x: m.F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 8)),
    ("lp_pool2d", lambda m, x: m.F.lp_pool2d(x, 2, 2), (1, 2, 4, 4)),
    ("lp_pool1d", lambda m, x: m.F.lp_pool1d(x, 3, 2, stride=1), pos((1, 2, 5))),
    ("adaptive_avg_pool2d", lambda m, x: m.F.adaptive_avg_pool2d(x, (3, 2)), (2, 2, 7, 5)),
    ("adaptive_avg_pool2d_none", lambda m, x: m.F.adaptive_avg_pool2d(x, (None, 3)), (1, 2, 4, 7)),
    ("adaptive_avg_pool1d", lambda m, x: m.F.adaptive_avg_pool1d(x, 4), (2, 3, 10)),
    ("adaptive_max_pool2d", lambda m, x: m.F.adaptive_max_pool2d(x, (3, 2)), (2, 2, 7, 5)),
    ("adaptive_max_pool2d_even", lambda m, x: m.F.adaptive_max_pool2d(x, 2, return_indices=True), (1, 2, 4, 6)),
    ("adaptive_max_pool2d_indices", lambda m, x: m.F.adaptive_max_pool2d(x, 3, return_indices=True), (1, 2, 5, 7)),
    ("adaptive_max_pool1d", lambda m, x: m.F.adaptive_max_pool1d(x, 3), (2, 3, 8)),
    ("adaptive_avg_pool3d", lambda m, x: m.F.adaptive_avg_pool3d(x, (2, 3, 1)), (1, 2, 3, 5, 4)),
    ("max_pool2d_with_indices", lambda m, x: m.F.max_pool2d_with_indices(x, 3, 2, 1), (1, 2, 6, 5)),
    ("adaptive_max_pool2d_with_indices", lambda m, x: m.F.adaptive_max_pool2d_with_indices(x, (2, 3)), (1, 2, 5, 7)),
    ("pad_reflect_3d", lambda m, x: m.F.pad(x, (1, 1, 2, 0, 1, 2), mode="reflect"), (1, 1, 3, 4, 3)),
]

NORM = [
    ("group_norm", lambda m, x, w, b: m.F.group_norm(x, 2, w, b), (3, 4, 5), (4,), (4,)),
    ("group_norm_4d_noaffine", lambda m, x: m.F.group_norm(x, 3, eps=1e-3), (2, 6, 2, 3)),
    ("instance_norm", lambda m, x, w, b: m.F.instance_norm(x, weight=w, bias=b), (2, 3, 5), (3,), (3,)),
    ("instance_norm_4d", lambda m, x: m.F.instance_norm(x), (2, 3, 3, 4)),
    ("layer_norm_weight_only", lambda m, x, w: m.F.layer_norm(x, (4,), w), (3, 4), (4,)),
    ("rms_norm", lambda m, x, w: m.F.rms_norm(x, (4,), w), (3, 4), (4,)),
    ("rms_norm_eps", lambda m, x: m.F.rms_norm(x, (2, 4), eps=1e-3), (3, 2, 4)),
    ("local_response_norm", lambda m, x: m.F.local_response_norm(x, 3, alpha=0.1), (2, 5, 3, 2)),
    ("local_response_norm_3d", lambda m, x: m.F.local_response_norm(x, 2), (2, 4, 3)),
    ("normalize", lambda m, x: m.F.normalize(x), (3, 4)),
    ("normalize_p1_dim0", lambda m, x: m.F.normalize(x, p=1, dim=0), (3, 4)),
    ("batch_norm_5d", lambda m, x, w, b: m.F.batch_norm(x, None, None, w, b, training=True), (2, 3, 2, 2, 2), (3,), (3,)),
]

LOSS = [
    ("cross_entropy_weight", lambda m, x, t, w: m.F.cross_entropy(x, t, w), (3, 4), T3, W4),
    ("cross_entropy_weight_ignore", lambda m, x, t, w: m.F.cross_entropy(x, t, w, ignore_index=3), (3, 4), T3, W4),
    ("cross_entropy_weight_smooth", lambda m, x, t, w: m.F.cross_entropy(x, t, w, label_smoothing=0.2), (3, 4), T3, W4),
    ("cross_entropy_weight_smooth_sum", lambda m, x, t, w: m.F.cross_entropy(x, t, w, reduction="sum", label_smoothing=0.2), (3, 4), T3, W4),
    ("cross_entropy_weight_none_nCL", lambda m, x, t, w: m.F.cross_entropy(x, t, w, reduction="none"), (2, 4, 4), T23, W4),
    ("cross_entropy_probs", lambda m, x, t: m.F.cross_entropy(x, t), (3, 4), PROB),
    ("cross_entropy_probs_weight_smooth", lambda m, x, t, w: m.F.cross_entropy(x, t, w, label_smoothing=0.1), (3, 4), PROB, W4),
    ("cross_entropy_unbatched", lambda m, x: m.F.cross_entropy(x, m.tensor(2)), (4,)),
    ("nll_loss_weight", lambda m, x, t, w: m.F.nll_loss(x, t, w), (3, 4), T3, W4),
    ("nll_loss_weight_ignore_sum", lambda m, x, t, w: m.F.nll_loss(x, t, w, ignore_index=1, reduction="sum"), (3, 4), T3, W4),
    ("nll_loss_nCL", lambda m, x, t: m.F.nll_loss(x, t, reduction="none"), (2, 4, 4), T23),
    ("mse_loss_none", lambda m, x, y: m.F.mse_loss(x, y, reduction="none"), (3, 4), (3, 4)),
    ("mse_loss_weight", lambda m, x, y, w: m.F.mse_loss(x, y, weight=w), (3, 4), (3, 4), pos((3, 4))),
    ("mse_loss_legacy_sum", lambda m, x, y: m.F.mse_loss(x, y, size_average=False), (3, 4), (3, 4)),
    ("l1_loss", lambda m, x, y: m.F.l1_loss(x, y), (3, 4), (3, 4)),
    ("l1_loss_weight_sum", lambda m, x, y, w: m.F.l1_loss(x, y, reduction="sum", weight=w), (3, 4), (3, 4), pos((3, 4))),
    ("smooth_l1_loss", lambda m, x, y: m.F.smooth_l1_loss(x, y), (3, 4), (3, 4)),
    ("smooth_l1_loss_beta", lambda m, x, y: m.F.smooth_l1_loss(x, y, beta=0.5, reduction="sum"), (3, 4), (3, 4)),
    ("smooth_l1_loss_beta0", lambda m, x, y: m.F.smooth_l1_loss(x, y, beta=0.0), (3, 4), (3, 4)),
    ("huber_loss", lambda m, x, y: m.F.huber_loss(x, y, delta=0.7), (3, 4), (3, 4)),
    ("huber_loss_weight", lambda m, x, y, w: m.F.huber_loss(x, y, weight=w), (3, 4), (3, 4), pos((3, 4))),
    ("bce", lambda m, x, t: m.F.binary_cross_entropy(x, t), PROB_IN, TARGET01),
    ("bce_grad", lambda m, x: m.F.binary_cross_entropy(m.sigmoid(x), m.tensor(TARGET01.array)), (3, 4)),
    ("bce_weight", lambda m, x, w: m.F.binary_cross_entropy(m.sigmoid(x), m.tensor(TARGET01.array), w, reduction="sum"), (3, 4), W34),
    ("bce_logits", lambda m, x, t: m.F.binary_cross_entropy_with_logits(x * 5, t), (3, 4), TARGET01),
    ("bce_logits_pos_weight", lambda m, x, w, pw: m.F.binary_cross_entropy_with_logits(x, m.tensor(TARGET01.array), w, pos_weight=pw), (3, 4), W34, const([0.5, 2.0, 3.0, 1.0])),
    ("kl_div", lambda m, x, t: m.F.kl_div(m.F.log_softmax(x, 1), t, reduction="batchmean"), (3, 4), PROB),
    ("kl_div_log_target", lambda m, x, t: m.F.kl_div(m.F.log_softmax(x, 1), t.log(), reduction="sum", log_target=True), (3, 4), pos((3, 4))),
    ("kl_div_target_grad", lambda m, x, t: m.F.kl_div(x, t, reduction="mean"), (3, 4), pos((3, 4))),
    ("poisson_nll", lambda m, x, t: m.F.poisson_nll_loss(x, t), (3, 4), pos((3, 4))),
    ("poisson_nll_full_nolog", lambda m, x, t: m.F.poisson_nll_loss(x, t * 3, log_input=False, full=True), pos((3, 4)), pos((3, 4))),
    ("gaussian_nll", lambda m, x, t, v: m.F.gaussian_nll_loss(x, t, v), (3, 4), (3, 4), pos((3, 4))),
    ("gaussian_nll_homo_full", lambda m, x, t, v: m.F.gaussian_nll_loss(x, t, v, full=True, reduction="sum"), (3, 4), (3, 4), pos((3,))),
    ("cosine_embedding", lambda m, a, b: m.F.cosine_embedding_loss(a, b, m.tensor(SIGNS.array), margin=0.1), (5, 3), (5, 3)),
    ("margin_ranking", lambda m, a, b: m.F.margin_ranking_loss(a, b, m.tensor(SIGNS.array), 0.2), (5,), (5,)),
    ("hinge_embedding", lambda m, x: m.F.hinge_embedding_loss(x, m.tensor(SIGNS.array), margin=0.5), (5,)),
    ("soft_margin", lambda m, x: m.F.soft_margin_loss(x, m.tensor(SIGNS.array).double()), (5,)),
    ("multilabel_soft_margin", lambda m, x, w: m.F.multilabel_soft_margin_loss(x, m.tensor(TARGET01.array.round()), w), (3, 4), W4),
    ("multi_margin", lambda m, x: m.F.multi_margin_loss(x, m.tensor([0, 3, 1])), (3, 4)),
    ("multi_margin_p2_weight", lambda m, x, w: m.F.multi_margin_loss(x, m.tensor([0, 3, 1]), p=2, margin=0.5, weight=w), (3, 4), W4),
    ("multilabel_margin", lambda m, x: m.F.multilabel_margin_loss(x, m.tensor([[3, 0, -1, 1], [1, 2, 3, -1], [0, 0, -1, 2]])), (3, 4)),
    ("triplet_margin_with_distance", lambda m, a, p, n: m.F.triplet_margin_with_distance_loss(a, p, n, margin=0.3, swap=True), (4, 3), (4, 3), (4, 3)),
    ("triplet_margin_with_cosine", lambda m, a, p, n: m.F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: 1 - m.F.cosine_similarity(x, y)), (4, 3), (4, 3), (4, 3)),
    ("triplet_margin", lambda m, a, p, n: m.F.triplet_margin_loss(a, p, n), (4, 3), (4, 3), (4, 3)),
    ("triplet_margin_swap_p1", lambda m, a, p, n: m.F.triplet_margin_loss(a, p, n, 0.5, p=1, swap=True), (4, 3), (4, 3), (4, 3)),
]

MISC = [
    ("pad_constant", lambda m, x: m.F.pad(x, (1, 2, 0, 1), value=0.5), (2, 3, 4)),
    ("pad_negative", lambda m, x: m.F.pad(x, (-1, 2, 1, -2)), (2, 5, 4)),
    ("pad_reflect", lambda m, x: m.F.pad(x, (2, 1, 1, 2), mode="reflect"), (1, 2, 4, 5)),
    ("pad_reflect_1d", lambda m, x: m.F.pad(x, (3, 2), mode="reflect"), (2, 3, 5)),
    ("pad_reflect_full", lambda m, x: m.F.pad(x, (2, 2), mode="reflect"), (2, 3, 3)),
    ("pad_replicate", lambda m, x: m.F.pad(x, (2, 1, 0, 3), mode="replicate"), (1, 2, 3, 4)),
    ("pad_circular", lambda m, x: m.F.pad(x, (2, 1, 1, 3), mode="circular"), (1, 2, 3, 4)),
    ("pad_circular_negative", lambda m, x: m.F.pad(x, (-1, 2), mode="circular"), (1, 2, 5)),
    ("interp_nearest_size", lambda m, x: m.F.interpolate(x, size=(5, 7)), (1, 2, 3, 4)),
    ("interp_nearest_scale", lambda m, x: m.F.interpolate(x, scale_factor=2), (1, 2, 3, 4)),
    ("interp_nearest_down", lambda m, x: m.F.interpolate(x, size=(2, 3)), (1, 2, 5, 7)),
    ("interp_nearest_exact", lambda m, x: m.F.interpolate(x, size=(5, 3), mode="nearest-exact"), (1, 2, 3, 7)),
    ("interp_nearest_1d_frac", lambda m, x: m.F.interpolate(x, scale_factor=1.7), (2, 2, 5)),
    ("interp_linear", lambda m, x: m.F.interpolate(x, size=7, mode="linear"), (2, 2, 4)),
    ("interp_linear_align", lambda m, x: m.F.interpolate(x, size=7, mode="linear", align_corners=True), (2, 2, 4)),
    ("interp_bilinear_scale", lambda m, x: m.F.interpolate(x, scale_factor=(1.5, 2.5), mode="bilinear"), (1, 2, 4, 3)),
    ("interp_bilinear_recompute", lambda m, x: m.F.interpolate(x, scale_factor=1.5, mode="bilinear", recompute_scale_factor=True), (1, 2, 5, 3)),
    ("interp_bilinear_align_down", lambda m, x: m.F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=True), (1, 2, 6, 5)),
    ("interp_bicubic", lambda m, x: m.F.interpolate(x, size=(6, 5), mode="bicubic"), (1, 2, 4, 3)),
    ("interp_bicubic_align", lambda m, x: m.F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=True), (1, 1, 3, 4)),
    ("interp_trilinear", lambda m, x: m.F.interpolate(x, size=(3, 4, 2), mode="trilinear"), (1, 1, 2, 3, 3)),
    ("interp_area", lambda m, x: m.F.interpolate(x, size=(2, 3), mode="area"), (1, 2, 5, 7)),
    ("upsample_bilinear", lambda m, x: m.F.upsample_bilinear(x, scale_factor=2), (1, 2, 3, 3)),
    ("pixel_shuffle", lambda m, x: m.F.pixel_shuffle(x, 2), (2, 8, 3, 2)),
    ("pixel_unshuffle", lambda m, x: m.F.pixel_unshuffle(x, 2), (2, 2, 4, 6)),
    ("channel_shuffle", lambda m, x: m.F.channel_shuffle(x, 3), (2, 6, 2)),
    ("cosine_similarity", lambda m, a, b: m.F.cosine_similarity(a, b), (3, 4), (3, 4)),
    ("cosine_similarity_dim", lambda m, a, b: m.F.cosine_similarity(a, b, dim=-1), (2, 3, 4), (2, 3, 4)),
    ("pairwise_distance", lambda m, a, b: m.F.pairwise_distance(a, b), (3, 4), (3, 4)),
    ("pairwise_distance_p3_keepdim", lambda m, a, b: m.F.pairwise_distance(a, b, 3, keepdim=True), (3, 4), (3, 4)),
    ("pdist", lambda m, x: m.F.pdist(x), (4, 3)),
    ("embedding_padding_idx", lambda m, i, w: m.F.embedding(i, w, padding_idx=1), T23, (4, 3)),
    ("embedding_negative_padding_idx", lambda m, i, w: m.F.embedding(i, w, padding_idx=-1), T23, (4, 3)),
    ("embedding_scale_grad_by_freq", lambda m, i, w: m.F.embedding(i, w, scale_grad_by_freq=True), T23, (4, 3)),
    ("embedding_bag_mean", lambda m, i, w: m.F.embedding_bag(i, w), T23, (4, 3)),
    ("embedding_bag_sum_offsets", lambda m, w: m.F.embedding_bag(m.tensor([0, 2, 1, 3, 3]), w, m.tensor([0, 2]), mode="sum"), (4, 3)),
    ("one_hot", lambda m, i: m.F.one_hot(i), T23),
    ("one_hot_classes", lambda m, i: m.F.one_hot(i, 6), T3),
    ("dropout_p0", lambda m, x: m.F.dropout(x, 0.0), (3, 4)),
    ("dropout2d_eval", lambda m, x: m.F.dropout2d(x, 0.5, training=False), (2, 3, 2, 2)),
    ("alpha_dropout_eval", lambda m, x: m.F.alpha_dropout(x, 0.5), (3, 4)),
]

ATTENTION = [
    ("sdpa", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v), (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)),
    ("sdpa_3d", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v), (2, 4, 3), (2, 5, 3), (2, 5, 3)),
    ("sdpa_causal", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v, is_causal=True), (2, 2, 5, 3), (2, 2, 5, 3), (2, 2, 5, 3)),
    ("sdpa_causal_rect", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v, is_causal=True), (1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4)),
    ("sdpa_bool_mask", lambda m, q, k, v, mk: m.F.scaled_dot_product_attention(q, k, v, attn_mask=mk), (2, 4, 3), (2, 5, 3), (2, 5, 3), BOOL_MASK),
    ("sdpa_float_mask_grad", lambda m, q, k, v, mk: m.F.scaled_dot_product_attention(q, k, v, attn_mask=mk), (2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 3), (2, 1, 4, 5)),
    ("sdpa_scale", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v, scale=0.3), (2, 4, 3), (2, 5, 3), (2, 5, 3)),
    ("sdpa_gqa", lambda m, q, k, v: m.F.scaled_dot_product_attention(q, k, v, enable_gqa=True, is_causal=True), (2, 4, 3, 2), (2, 2, 3, 2), (2, 2, 3, 2)),
]

# the grads here are deliberately not the true derivative (padding row frozen, grads rescaled by
# frequency), as in torch: compared with torch only, no finite differences
NOT_TRUE_GRADS = {"embedding_padding_idx", "embedding_negative_padding_idx",
                  "embedding_scale_grad_by_freq"}

CASES = ACTIVATIONS + SHAPED + CONV + POOL + NORM + LOSS + MISC + ATTENTION


def _specs(case):
    return case[2:] if len(case) > 2 else ((3, 4),)


@pytest.mark.parametrize("name,fn,specs", [(c[0], c[1], _specs(c)) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_functional_matches_torch(name, fn, specs):
    check(fn, *specs, gradcheck=name not in NOT_TRUE_GRADS)
