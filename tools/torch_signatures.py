"""Compare distbp's public callables with torch's, by introspection (used by
tests/test_torch_conformance.py and tools/pytorch_coverage.py; needs torch, so it is not in distbp/).

torch's Python-level callables have real signatures (inspect.signature). Its C++ builtins
(torch.add, Tensor.view, ...) have none; their documented signatures are parsed from __doc__
("add(input, other, *, alpha=1, out=None) -> Tensor" and the ".. function::" overloads).

The rule (`mismatches`): distbp may omit torch's parameters (a call that uses one then fails with
a TypeError, loudly), but every parameter distbp has must be torch's: at the same position if
positional, with the same name, and with torch's default wherever torch has one. So a positional
argument can never mean something else than in torch (nn.Conv2d's sixth is `dilation`, not `bias`).
"""
import ast
import inspect
import re
from dataclasses import dataclass

P, VARP, KW, VARKW = "positional", "*args", "keyword-only", "**kwargs"
_NO_DEFAULT = object()
_UNPARSED = object()  # a documented default that is not a python literal (torch.strided, ...)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: object = _NO_DEFAULT
    int_list: bool = False  # torch's parser also takes an int list as varargs: x.view(2, 3)

    def __str__(self):
        star = {VARP: "*", VARKW: "**"}.get(self.kind, "")
        d = "" if self.default is _NO_DEFAULT else f"={self.default!r}"
        return f"{star}{self.name}{d}"


_KINDS = {inspect.Parameter.POSITIONAL_ONLY: P, inspect.Parameter.POSITIONAL_OR_KEYWORD: P,
          inspect.Parameter.VAR_POSITIONAL: VARP, inspect.Parameter.KEYWORD_ONLY: KW,
          inspect.Parameter.VAR_KEYWORD: VARKW}


def _from_inspect(sig, drop_first):
    params = list(sig.parameters.values())
    if drop_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [Param(p.name, _KINDS[p.kind],
                  _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
            for p in params]


def _split_top(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [t.strip() for t in out]


def parse_doc_signature(text):
    """'add(input, other, *, alpha=1, out=None)' (the part inside the parentheses) -> [Param] or None."""
    params, kw = [], False
    for tok in _split_top(text.replace("\\*", "*")):
        if tok == "*":
            kw = True
            continue
        if tok.startswith("**"):
            params.append(Param(tok[2:], VARKW))
            continue
        if tok.startswith("*"):
            params.append(Param(tok[1:], VARP))
            kw = True
            continue
        name, eq, default = tok.partition("=")
        name = name.split(":")[0].strip()
        if not name.isidentifier():
            return None
        value = _NO_DEFAULT
        if eq:
            try:
                value = ast.literal_eval(default.strip())
            except (ValueError, SyntaxError):
                value = _UNPARSED
        params.append(Param(name, KW if kw else P, value))
    return params


def doc_overloads(obj, name):
    """Every documented signature of a torch builtin, from its docstring."""
    doc = getattr(obj, "__doc__", None) or ""
    pat = re.compile(r"^\s*(?:\.\. (?:function|method):: )?(?:torch\.)?(?:Tensor\.)?"
                     + re.escape(name) + r"\((.*?)\)\s*(?:->.*)?$")
    out = []
    for line in doc.splitlines():
        m = pat.match(line)
        if m:
            parsed = parse_doc_signature(m.group(1))
            if parsed is not None and parsed not in out:
                out.append(parsed)
    return out


# torch callables without an introspectable signature, as torch's documentation gives them
DOCUMENTED = {
    "nn.RNN": "input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, "
              "batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None",
    "nn.LSTM": "input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, "
               "bidirectional=False, proj_size=0, device=None, dtype=None",
    "nn.GRU": "input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, "
              "bidirectional=False, device=None, dtype=None",
    "nn.Parameter": "data=None, requires_grad=True",
    "distbp.device": "type, index=None",
    "distbp.Generator": "device='cpu'",
    # parameters torch's Python bindings add to what inspect / the aten schemas show
    "Tensor.nonzero": "*, as_tuple=False",
    "distbp.normal": "mean, std, size, *, generator=None, out=None, dtype=None, layout=torch.strided, "
                     "device=None, pin_memory=False, requires_grad=False",
    "distbp.no_grad": "orig_func=None",  # _NoParamDecoratorContextManager.__new__: bare @no_grad
}


def schema_overloads(name, method):
    """The aten operator schemas of torch builtin `name`: the argument names, kinds and defaults
    torch's Python argument parser really uses (its docstrings are sometimes off, e.g. 'value'
    for Tensor.div's 'other'). Methods drop `self`; functions call it `input`."""
    import torch
    out = []
    for s in torch._C._jit_get_schemas_for_operator(f"aten::{name}"):
        args = list(s.arguments)
        selfs = [a for a in args if a.name == "self"]
        if method and (not selfs or "Tensor" not in str(selfs[0].type)):
            continue
        params = []
        for a in args:
            if a.name == "self" and method:
                continue
            default = a.default_value if a.has_default_value() else _NO_DEFAULT
            if "ScalarType" in str(a.type) and isinstance(default, int):
                default = _UNPARSED  # an enum number (4 = torch.long): not comparable to a dtype
            params.append(Param("input" if a.name == "self" else a.name, KW if a.kwarg_only else P,
                                default, "List[int]" in str(a.type)))
        if params not in out:
            out.append(params)
    return out


def _is_star_star(params):
    return len(params) == 2 and params[0].kind == VARP and params[1].kind == VARKW


def torch_overloads(obj, name, *, method=False, qualname=None):
    """torch's signatures of `obj` (a function, method or class) as a list of [Param] lists:
    DOCUMENTED[qualname] for torch.*/Tensor names listed there (what their bindings really take),
    else inspect.signature where torch has a real one, else DOCUMENTED[qualname], else (builtins)
    the aten schemas or the parsed docstring."""
    if qualname in DOCUMENTED and qualname.startswith(("Tensor.", "distbp.")):
        return [parse_doc_signature(DOCUMENTED[qualname])]
    try:
        params = _from_inspect(inspect.signature(obj), drop_first=method)
    except (TypeError, ValueError):
        params = None
    if params is not None and not _is_star_star(params):
        return [params]
    if qualname in DOCUMENTED:
        return [parse_doc_signature(DOCUMENTED[qualname])]
    if not inspect.isclass(obj) and not inspect.isfunction(obj):  # a C++ builtin
        # the python binding adds a few arguments to the aten schema (requires_grad, pin_memory,
        # as_tuple ...) that only its docstring shows: take both
        found = schema_overloads(name, method)
        found += [o for o in doc_overloads(obj, name) if o not in found]
        if found:
            return found
    return [params] if params is not None else []


def distbp_params(obj, *, method=False):
    return _from_inspect(inspect.signature(obj), drop_first=method)


def _same_default(a, b):
    if b is _UNPARSED or a is b:
        return True
    if isinstance(b, list) and not isinstance(a, (list, tuple)):
        # torch's parser reads an int for an int list (stride=1 == [1, 1]); [] means "not given"
        return (a is None and b == []) or (bool(b) and all(_same_default(a, x) for x in b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same_default(x, y) for x, y in zip(a, b))
    if callable(a) and callable(b):  # activation=F.relu: distbp's function vs torch's
        return getattr(a, "__name__", a) == getattr(b, "__name__", b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1)
    try:
        return bool(a == b)
    except Exception:  # numpy dtypes vs torch dtypes and the like
        return str(a).removeprefix("torch.") == str(b).removeprefix("torch.")


def mismatches(ours, overloads):
    """Problems of our [Param] list against torch's overloads, as (param name, message) pairs."""
    if not overloads:
        return [("*", "torch's signature is unknown (no signature and no parsable docstring)")]
    problems = []
    by_name = {}
    for o in overloads:
        for q in o:
            by_name.setdefault(q.name, []).append(q)
    pos = [q for q in ours if q.kind == P]
    for i, q in enumerate(ours):
        if q.kind == P:
            i = pos.index(q)
            at = [o[i] for o in overloads if i < len(o) and o[i].kind == P]
            takes_any = any(t.kind == VARP for o in overloads for t in o[:i + 1])
            if not takes_any and not any(t.name == q.name for t in at):
                names = sorted({t.name for t in at}) or ["nothing (keyword-only or absent)"]
                problems.append((q.name, f"positional #{i} is '{q.name}', torch has "
                                         f"{' / '.join(names)} there"))
                continue
        elif q.kind == VARP:
            i = len([t for t in ours[:ours.index(q)] if t.kind == P])
            if not any((len(o) > i and o[i].int_list) or any(t.kind == VARP for t in o[:i + 1])
                       for o in overloads):
                problems.append((q.name, f"*{q.name} where torch takes no variadic positional"))
            continue
        elif q.kind == VARKW:
            if not any(t.kind == VARKW for o in overloads for t in o):
                problems.append((q.name, f"**{q.name} where torch takes no arbitrary keywords"))
            continue
        elif q.name not in by_name:
            problems.append((q.name, f"keyword '{q.name}' does not exist in torch"))
            continue
        if q.default is not _NO_DEFAULT:
            theirs = [t.default for t in by_name.get(q.name, []) if t.default is not _NO_DEFAULT]
            if theirs and not any(_same_default(q.default, d) for d in theirs):
                problems.append((q.name, f"default {q.name}={q.default!r}, torch's is {theirs[0]!r}"))
    return problems


def format_overloads(overloads):
    def one(o):
        out, star = [], False
        for q in o:
            if q.kind == KW and not star:
                out.append("*")
                star = True
            star = star or q.kind == VARP
            out.append(str(q))
        return "(" + ", ".join(out) + ")"
    return " | ".join(one(o) for o in overloads)


# ---------------------------------------------------------------- what distbp exposes

def _defined_in_distbp(obj):
    return (getattr(obj, "__module__", None) or "").startswith("distbp")


def _public_callables(module, names=None):
    names = names if names is not None else [n for n in dir(module) if not n.startswith("_")]
    for n in names:
        obj = getattr(module, n, None)
        if obj is None or inspect.ismodule(obj) or not callable(obj):
            continue
        if not _defined_in_distbp(obj) and not inspect.isclass(obj):
            continue
        yield n, obj


def surface():
    """(qualified name, distbp object, torch object or None, is_method, extra torch overloads) for
    every public callable of distbp, distbp.Tensor, distbp.nn (+ functional, init, utils) and
    distbp.optim (+ lr_scheduler)."""
    import torch

    import distbp
    import distbp.nn as dnn
    import distbp.nn.functional as dF
    import distbp.optim as doptim
    from distbp.nn import Module

    out = []
    for n, obj in _public_callables(distbp, list(distbp.__all__)):
        if obj is distbp.Tensor or n in ("nn", "optim"):
            continue
        out.append((f"distbp.{n}", obj, getattr(torch, n, None), False, ()))
    T = distbp.Tensor
    for n in sorted(dir(T)):
        if n.startswith("_") or isinstance(inspect.getattr_static(T, n), property):
            continue
        obj = getattr(T, n)
        if callable(obj) and not isinstance(obj, type):
            out.append((f"Tensor.{n}", obj, getattr(torch.Tensor, n, None), True, ()))
    seen_methods = set()
    for n, cls in _public_callables(dnn, list(dnn.__all__)):
        if not inspect.isclass(cls):
            continue
        tcls = getattr(torch.nn, n, None)
        out.append((f"nn.{n}", cls, tcls, False, ()))
        for c in cls.__mro__:
            if not (_defined_in_distbp(c) and issubclass(c, Module)) or (c is Module and cls is not Module):
                continue
            for m, fn in vars(c).items():
                if m.startswith("_") or not callable(fn) or (c.__name__, m) in seen_methods:
                    continue
                seen_methods.add((c.__name__, m))
                tm = getattr(tcls, m, None) if tcls is not None else None
                out.append((f"nn.{c.__name__}.{m}", fn, tm, True, ()))
    for prefix, mod, tmod in (("F", dF, torch.nn.functional), ("nn.init", dnn.init, torch.nn.init),
                              ("nn.utils", dnn.utils, torch.nn.utils)):
        for n, fn in _public_callables(mod):
            if _defined_in_distbp(fn) and not inspect.isclass(fn):
                out.append((f"{prefix}.{n}", fn, getattr(tmod, n, None), False, ()))
    for prefix, mod, tmod in (("optim", doptim, torch.optim),
                              ("optim.lr_scheduler", doptim.lr_scheduler, torch.optim.lr_scheduler)):
        for n, cls in _public_callables(mod):
            if not inspect.isclass(cls) or not _defined_in_distbp(cls):
                continue
            tcls = getattr(tmod, n, None)
            out.append((f"{prefix}.{n}", cls, tcls, False, ()))
            for m, fn in vars(cls).items():
                if not m.startswith("_") and callable(fn) and tcls is not None:
                    out.append((f"{prefix}.{n}.{m}", fn, getattr(tcls, m, None), True, ()))
    return out


def check_all():
    """-> (problems {(qualname, param): message}, distbp-only names [qualname])."""
    problems, extensions = {}, []
    for qual, ours, theirs, method, extra in surface():
        if theirs is None:
            extensions.append(qual)
            continue
        name = qual.rsplit(".", 1)[-1]
        try:
            mine = distbp_params(ours, method=method)
        except (TypeError, ValueError):
            continue  # a builtin without a signature on our side (numpy dtype constructors)
        overloads = torch_overloads(theirs, name, method=method, qualname=qual)
        for param, msg in mismatches(mine, overloads):
            problems[(qual, param)] = f"{msg}; torch: {format_overloads(overloads)}"
    return problems, extensions
