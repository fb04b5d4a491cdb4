"""Label selectors evaluated locally (for listers), with the API server's syntax.

Supported: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
``!k`` (does not exist), comma-separated (all must match). A ``Mapping`` selector means
equality on every pair, like ``matchLabels``. :func:`format_label_selector` turns a
``metav1.LabelSelector`` (``matchLabels`` + ``matchExpressions``, as custom resources
spell selectors) into that syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LabelSelector", "format_label_selector", "parse_label_selector"]

LabelSelector = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t.strip() for t in terms if t.strip()]


def _term(term: str) -> LabelSelector:
    for op in ("!=", "==", "="):
        if op in term and "(" not in term:
            key, _, value = term.partition(op)
            key, value = key.strip(), value.strip()
            if not key:
                raise ValueError(f"invalid label selector term {term!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    m = _SET_RE.match(term)
    if not m:
        raise ValueError(f"invalid label selector term {term!r}")
    neg, key, op, values = m.groups()
    if op is not None:
        if neg:
            raise ValueError(f"invalid label selector term {term!r}")
        allowed = frozenset(v.strip() for v in values.split(",") if v.strip())
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if neg:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def parse_label_selector(selector: str | Mapping[str, str] | None) -> LabelSelector:
    """A predicate on a labels mapping; ``None`` or ``""`` matches everything.

    Raises ``ValueError`` naming the term that does not parse.
    """
    if selector is None:
        return lambda labels: True
    if isinstance(selector, Mapping):
        items = tuple(selector.items())
        return lambda labels: all(labels.get(k) == v for k, v in items)
    terms = [_term(t) for t in _split_terms(selector)]
    if not terms:
        return lambda labels: True
    if len(terms) == 1:
        return terms[0]
    return lambda labels: all(t(labels) for t in terms)


_OPERATORS = {"In": "in", "NotIn": "notin"}


def format_label_selector(selector: Mapping[str, Any]) -> str:
    """The selector string of a ``metav1.LabelSelector`` dict (apimachinery's
    ``FormatLabelSelector``, but ``""`` for the empty selector, which matches everything):
    ``{"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "t", "operator": "In",
    "values": ["x", "y"]}]}`` -> ``"a=b,t in (x,y)"``. Usable as an API ``labelSelector``
    and by :func:`parse_label_selector`. ``ValueError`` names an unknown operator or an
    ``In``/``NotIn`` without values (the API server rejects both).
    """
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op in _OPERATORS and values:
            terms.append(f"{key} {_OPERATORS[op]} ({','.join(sorted(values))})")
        elif op in ("Exists", "DoesNotExist") and not values:
            terms.append(key if op == "Exists" else f"!{key}")
        else:
            raise ValueError(
                f"label selector expression {dict(expr)!r}: operator must be In or NotIn "
                "with values, or Exists or DoesNotExist without"
            )
    return ",".join(terms)
