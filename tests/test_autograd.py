"""Every primitive and composed Tensor op against torch in float64, one line per op."""
import numpy as np
import pytest

from tests.opcheck import check, const, pos

OPS = [
    # binary with broadcasting (explicit shape pairs)
    ("add", lambda m, a, b: a + b, (3, 4), (3, 4)),
    ("add_bcast", lambda m, a, b: a + b, (3, 1), (1, 4)),
    ("add_scalar_tensor", lambda m, a, b: a + b, (2, 3), ()),
    ("sub_bcast", lambda m, a, b: a - b, (2, 3, 4), (4,)),
    ("mul_bcast", lambda m, a, b: a * b, (2, 3, 4), (4,)),
    ("mul_bcast_mid", lambda m, a, b: a * b, (2, 1, 4), (3, 1)),
    ("div_bcast", lambda m, a, b: a / b, (2, 3), pos((3,))),
    ("pow_scalar", lambda m, a: a ** 3, (2, 3)),
    ("pow_tensor", lambda m, a, b: a ** b, pos((2, 3)), (3,)),
    ("rpow", lambda m, a: 2.0 ** a, (2, 3)),
    ("radd", lambda m, a: 1.5 + a, (3,)),
    ("rsub", lambda m, a: 1.5 - a, (3,)),
    ("rmul", lambda m, a: 2.5 * a, (3,)),
    ("rdiv", lambda m, a: 2.5 / a, pos((3,))),
    ("neg", lambda m, a: -a, (3, 2)),
    ("used_twice", lambda m, a: a * a + a, (4,)),
    # matmul incl. 1-D and batched
    ("matmul", lambda m, a, b: a @ b, (3, 4), (4, 5)),
    ("matmul_vec_mat", lambda m, a, b: a @ b, (4,), (4, 5)),
    ("matmul_mat_vec", lambda m, a, b: a @ b, (3, 4), (4,)),
    ("matmul_vec_vec", lambda m, a, b: a @ b, (4,), (4,)),
    ("matmul_batched", lambda m, a, b: a @ b, (2, 3, 4), (2, 4, 5)),
    ("matmul_batched_bcast", lambda m, a, b: a @ b, (2, 3, 4), (4, 5)),
    ("matmul_bcast_batch", lambda m, a, b: a @ b, (2, 1, 3, 4), (3, 4, 2)),
    # unary
    ("exp", lambda m, a: a.exp(), (3, 4)),
    ("log", lambda m, a: a.log(), pos((3, 4))),
    ("sqrt", lambda m, a: a.sqrt(), pos((3, 4))),
    ("abs", lambda m, a: a.abs(), (3, 4)),
    ("relu", lambda m, a: a.relu(), (3, 4)),
    ("tanh", lambda m, a: a.tanh(), (3, 4)),
    ("sigmoid", lambda m, a: a.sigmoid(), (3, 4)),
    ("clamp", lambda m, a: a.clamp(-0.5, 0.5), (3, 4)),
    ("clamp_min", lambda m, a: a.clamp(min=0.1), (3, 4)),
    ("clip_max", lambda m, a: a.clip(max=0.2), (3, 4)),
    ("softmax", lambda m, a: a.softmax(1), (3, 4)),
    ("log_softmax", lambda m, a: a.log_softmax(0), (3, 4)),
    ("fn_exp_tanh", lambda m, a: m.tanh(m.exp(a)), (3,)),
    # reductions
    ("sum", lambda m, a: a.sum(), (3, 4)),
    ("sum_dim", lambda m, a: a.sum(1), (3, 4)),
    ("sum_dims_keep", lambda m, a: a.sum((0, 2), keepdim=True), (2, 3, 4)),
    ("mean", lambda m, a: a.mean(), (3, 4)),
    ("mean_dim_neg", lambda m, a: a.mean(-1, keepdim=True), (3, 4)),
    ("var", lambda m, a: a.var(), (3, 4)),
    ("var_dim", lambda m, a: a.var(0), (3, 4)),
    ("std_dim", lambda m, a: a.std(1, keepdim=True), (3, 4)),
    ("max", lambda m, a: a.max(), (3, 4)),
    ("min", lambda m, a: a.min(), (3, 4)),
    ("max_dim", lambda m, a: a.max(1), (3, 4)),
    ("min_dim_keep", lambda m, a: a.min(0, keepdim=True), (3, 4)),
    ("amax", lambda m, a: a.amax((0, 1)), (3, 4, 2)),
    # shape
    ("reshape", lambda m, a: a.reshape(4, 3), (3, 4)),
    ("view_neg", lambda m, a: a.view(-1, 2), (3, 4)),
    ("transpose", lambda m, a: a.transpose(0, 2), (2, 3, 4)),
    ("permute", lambda m, a: a.permute(2, 0, 1), (2, 3, 4)),
    ("T", lambda m, a: a.T, (3, 4)),
    ("flatten", lambda m, a: a.flatten(1), (2, 3, 4)),
    ("flatten_mid", lambda m, a: a.flatten(1, 2), (2, 3, 4, 2)),
    ("squeeze", lambda m, a: a.squeeze(), (3, 1, 4)),
    ("squeeze_dim", lambda m, a: a.squeeze(1), (3, 1, 4)),
    ("unsqueeze", lambda m, a: a.unsqueeze(-1), (3, 4)),
    ("expand", lambda m, a: a.expand(2, 3, 4), (3, 1)),
    # indexing
    ("index_int", lambda m, a: a[1], (3, 4)),
    ("slice", lambda m, a: a[:, 1:3], (3, 4)),
    ("slice_step", lambda m, a: a[::2, 1::2], (5, 4)),
    ("index_array_repeat", lambda m, a, i: a[i], (3, 4), const([0, 2, 0, 0])),
    ("index_pair_arrays", lambda m, a, i, j: a[i, j], (3, 4), const([0, 2, 2]), const([1, 3, 3])),
    ("index_bool", lambda m, a, k: a[k], (3, 4), const(np.array([True, False, True]))),
    ("index_ellipsis", lambda m, a: a[..., 0], (2, 3, 4)),
    # functions
    ("cat", lambda m, a, b: m.cat([a, b], 1), (2, 3), (2, 2)),
    ("stack", lambda m, a, b: m.stack([a, b], 1), (2, 3), (2, 3)),
    ("where", lambda m, c, a, b: m.where(c, a, b), const(np.array([True, False, True])), (2, 3), (3,)),
    ("to_float_roundtrip", lambda m, a: (a * 2).double(), (3,)),
]


@pytest.mark.parametrize("name,fn,specs", [(o[0], o[1], o[2:]) for o in OPS], ids=[o[0] for o in OPS])
def test_op_matches_torch(name, fn, specs):
    check(fn, *specs)


def test_comparisons_are_bool_without_grad():
    check(lambda m, a, b: [a > b, a <= b, a == a, a != b], (3,), (3,), gradcheck=False)
