"""Write docs/pytorch-coverage.md: every name of torch.nn.functional, torch.nn, torch.optim (+
lr_scheduler) and a list of commonly used torch / Tensor functions, marked implemented, not yet,
or not applicable to a CPU numpy engine (with the reason), plus the share of applicable names
implemented. tests/test_pytorch_coverage.py fails when the committed file is stale.

    PYTHONPATH=. python tools/pytorch_coverage.py            # rewrite docs/pytorch-coverage.md
    PYTHONPATH=. python tools/pytorch_coverage.py --check    # exit 1 if it is stale
"""
import argparse
import inspect
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "pytorch-coverage.md"

_DISPATCH = "torch's __torch_function__ override machinery (tensor-subclass dispatch)"
_INTERNAL = "a torch-internal helper, not an API"
_CUDA_MM = "CUDA kernels for grouped / low-precision (fp8) matrix products"
_DEPRECATED = "deprecated in torch"

NOT_APPLICABLE = {
    "F": {
        "handle_torch_function": _DISPATCH, "has_torch_function": _DISPATCH,
        "has_torch_function_unary": _DISPATCH, "has_torch_function_variadic": _DISPATCH,
        "boolean_dispatch": _INTERNAL, "assert_int_or_pair": _INTERNAL,
        "grouped_mm": _CUDA_MM, "scaled_grouped_mm": _CUDA_MM, "scaled_mm": _CUDA_MM,
    },
    "nn": {
        "DataParallel": "single-process multi-GPU replication; distbp's data parallelism is "
                        "nn.parallel.DistributedDataParallel over processes",
        "Container": _DEPRECATED + " (use Module)",
        "NLLLoss2d": _DEPRECATED + " (NLLLoss takes (N, C, H, W))",
    },
    "init": {n: _DEPRECATED + f" (use {n}_)" for n in (
        "constant", "dirac", "eye", "kaiming_normal", "kaiming_uniform", "normal", "orthogonal",
        "sparse", "uniform", "xavier_normal", "xavier_uniform")},
    "optim": {
        "SparseAdam": "needs sparse gradients; distbp's tensors are dense numpy arrays",
    },
}

# signature differences that cannot be removed: qualified name -> the note shown instead
UNAVOIDABLE = {
    "Tensor.uniform_": "first parameter named `from_`: torch's `from` is a Python keyword, which no "
                       "Python function can take; positional calls are the same",
}

# why a name is still "not yet" where that is a decision, not a gap: section -> {name: note}
NOT_YET = {
    "nn": {"CrossMapLRN2d": "left out on purpose: torch's legacy implementation disagrees with itself "
                            "(its backward is not the derivative of its forward, which also keeps "
                            "channel 0 in every later window); use LocalResponseNorm"},
}

# commonly used torch.* functions and Tensor methods (not counted in the headline percentages)
COMMON_TORCH = """
tensor as_tensor from_numpy zeros ones empty full zeros_like ones_like empty_like full_like arange
linspace eye rand randn randint randperm rand_like randn_like normal bernoulli multinomial
manual_seed Generator no_grad enable_grad inference_mode set_grad_enabled is_grad_enabled
get_default_dtype set_default_dtype device save load is_tensor is_floating_point numel
add sub mul div pow neg abs exp log log2 log10 log1p expm1 sqrt rsqrt square reciprocal sin cos
tanh sigmoid relu sign floor ceil round trunc clamp clip maximum minimum where
eq ne lt le gt ge isclose allclose equal isnan isinf isfinite logical_and logical_or logical_not
sum mean var std max min amax amin argmax argmin logsumexp norm cumsum prod any all count_nonzero
matmul mm bmm einsum outer dot softmax log_softmax
reshape flatten unflatten squeeze unsqueeze transpose swapaxes t permute movedim flip roll
broadcast_to cat concat stack split chunk tensor_split unbind narrow select tril triu gather
take_along_dim index_select masked_select masked_fill nonzero sort argsort topk clone detach
""".split()

COMMON_TENSOR = """
shape dtype device ndim grad requires_grad is_leaf grad_fn T mT size dim numel item tolist numpy
backward detach detach_ clone requires_grad_ retain_grad to cpu cuda float double half long int
bool type type_as is_floating_point contiguous
add sub mul div pow neg abs exp log sqrt rsqrt sin cos tanh sigmoid relu sign floor ceil round
clamp clip clamp_min clamp_max eq ne lt le gt ge logical_not isnan isfinite
sum mean var std max min amax amin argmax argmin logsumexp norm cumsum prod any all
matmul mm bmm softmax log_softmax
reshape view view_as reshape_as flatten unflatten squeeze unsqueeze transpose permute movedim
expand expand_as repeat flip roll split chunk unbind narrow select tril triu gather index_select
masked_fill masked_select nonzero sort argsort topk multinomial where
add_ sub_ mul_ div_ pow_ clamp_ fill_ zero_ copy_ masked_fill_ uniform_ normal_ __setitem__
""".split()


def torch_names():
    """{section: [names]} of torch's public API per section."""
    import torch
    import torch.nn.functional as tF

    def public(mod, keep):
        return sorted(n for n in dir(mod) if not n.startswith("_") and keep(getattr(mod, n)))

    sched = torch.optim.lr_scheduler
    return {
        "F": public(tF, lambda o: callable(o) and not inspect.isclass(o)
                    and not (getattr(o, "__module__", "") or "").startswith("typing")),
        "nn": public(torch.nn, inspect.isclass),
        "optim": public(torch.optim, lambda o: inspect.isclass(o) and issubclass(o, torch.optim.Optimizer))
                 + ["lr_scheduler." + n for n in public(sched, lambda o: inspect.isclass(o)
                                                         and o.__module__ == sched.__name__)],
        "init": public(torch.nn.init, lambda o: inspect.isfunction(o)
                       and o.__module__ == "torch.nn.init"),
        "torch": sorted(set(COMMON_TORCH)),
        "Tensor": sorted(set(COMMON_TENSOR)),
    }


def _ours(section, name):
    import distbp
    import distbp.nn
    import distbp.nn.functional
    import distbp.optim
    where = {"F": distbp.nn.functional, "nn": distbp.nn, "optim": distbp.optim, "torch": distbp,
             "Tensor": distbp.Tensor, "init": distbp.nn.init}[section]
    obj = where
    for part in name.split("."):
        if part == "__setitem__" or hasattr(obj, part):
            obj = getattr(obj, part, obj)
        else:
            return None
    return obj


_QUAL = {"F": "F.", "nn": "nn.", "optim": "optim.", "torch": "distbp.", "Tensor": "Tensor.",
         "init": "nn.init."}


def rows(section, names, problems):
    out = []
    for name in names:
        na = NOT_APPLICABLE.get(section, {}).get(name)
        if na:
            out.append((name, "not applicable", na))
            continue
        if _ours(section, name) is None:
            out.append((name, "not yet", NOT_YET.get(section, {}).get(name, "")))
            continue
        differs = sorted(p for (q, p) in problems if q == _QUAL[section] + name)
        note = f"signature differs from torch's in: {', '.join(differs)}" if differs else ""
        note = UNAVOIDABLE.get(_QUAL[section] + name, note) if differs else note
        out.append((name, "implemented", note))
    return out


def render():
    import torch

    from tools.torch_signatures import check_all
    problems, _ = check_all()
    titles = {"F": "torch.nn.functional", "nn": "torch.nn", "optim": "torch.optim (+ lr_scheduler)",
              "init": "torch.nn.init",
              "torch": "commonly used torch.* functions", "Tensor": "commonly used Tensor methods"}
    tables, summary = [], []
    for section, names in torch_names().items():
        r = rows(section, names, problems)
        applicable = [x for x in r if x[1] != "not applicable"]
        done = [x for x in applicable if x[1] == "implemented"]
        pct = 100.0 * len(done) / len(applicable) if applicable else 100.0
        summary.append(f"| {titles[section]} | {len(done)} | {len(applicable)} | "
                       f"{len(r) - len(applicable)} | {pct:.1f}% |")
        lines = [f"## {titles[section]}", "", "| name | status | note |", "|---|---|---|"]
        lines += [f"| `{n}` | {s} | {note} |" for n, s, note in r]
        tables.append("\n".join(lines))
    head = [
        "# PyTorch coverage", "",
        f"Generated by `PYTHONPATH=. python tools/pytorch_coverage.py` against torch "
        f"{torch.__version__.split('+')[0]}; `tests/test_pytorch_coverage.py` fails when this file "
        "is stale. \"implemented\" means the name exists in distbp; the conformance test "
        "(`tests/test_torch_conformance.py`) checks that it takes torch's parameters, and a note "
        "here names any parameter that still differs. \"not applicable\" names what a CPU numpy "
        "engine cannot or need not offer, with the reason.", "",
        "| namespace | implemented | applicable | not applicable | implemented / applicable |",
        "|---|---|---|---|---|", *summary, ""]
    return "\n".join(head) + "\n" + "\n\n".join(tables) + "\n"


def percentages():
    """{section: percent of applicable names implemented} (for the report and tests)."""
    out = {}
    for line in render().splitlines():
        if line.startswith("| torch") or line.startswith("| commonly"):  # the summary rows
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = float(cells[-1].rstrip("%"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run PYTHONPATH=. python tools/pytorch_coverage.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(text.split("\n## ")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
