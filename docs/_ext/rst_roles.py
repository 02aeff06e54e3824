"""Griffe extension: render the Sphinx roles of chargeplan's numpydoc docstrings.

The library's docstrings follow numpydoc and cross-reference with Sphinx roles
(``:func:`chargeplan.optimize```, ``:class:`~chargeplan.Plan```,
``:mod:`.lp```). mkdocstrings renders docstrings as Markdown, where such roles would
show up verbatim. This extension rewrites every role, once the package is loaded, into

* an *optional* autorefs link to the object when the target is a chargeplan object
  (resolved through imports and aliases to the page where it is documented; when it
  is not documented anywhere the name is shown as code, without a warning), or
* inline code otherwise (``pandas.Series``, ``numpy.ndarray``, ...).

A trailing reST ``::`` (literal block marker) becomes ``:``.

Loaded by mkdocstrings from ``mkdocs.yml`` (``extensions: [docs/_ext/rst_roles.py]``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE_RE = re.compile(
    r":(?:py:)?(?P<role>func|meth|class|mod|attr|data|exc|obj|const|term|ref)"
    r":`(?P<body>[^`]+)`"
)
_LITERAL_MARKER_RE = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)
_CALLABLE_ROLES = {"func", "meth"}


def _lookup(root: griffe.Module, path: str) -> griffe.Object | griffe.Alias | None:
    """Find ``path`` (dotted, starting with the package name) in the loaded package."""
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    obj: Any = root
    for part in parts[1:]:
        try:
            obj = obj.get_member(part) if hasattr(obj, "get_member") else obj.members[part]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
    return obj


def _final_path(obj: griffe.Object | griffe.Alias) -> str | None:
    try:
        return obj.final_target.path if isinstance(obj, griffe.Alias) else obj.path
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _resolve(root: griffe.Module, context: griffe.Object, target: str) -> str | None:
    """Dotted path of the object a role names, seen from ``context``, or None."""
    module = context if isinstance(context, griffe.Module) else context.module
    scopes: list[str] = []
    if isinstance(context, griffe.Class):
        scopes.append(context.path)
    node: Any = module
    while node is not None:  # the module, then its parent packages
        scopes.append(node.path)
        node = node.parent
    relative = target.startswith(".")
    name = target.lstrip(".")
    candidates = [f"{scope}.{name}" for scope in scopes]
    if not relative:
        candidates.insert(0, name)
    for cand in candidates:
        found = _lookup(root, cand)
        if found is not None:
            return _final_path(found)
    return None


def _rewrite(text: str, root: griffe.Module, context: griffe.Object) -> str:
    def repl(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body
            short = body.startswith("~")
            target = target.lstrip("~")
            title = target.lstrip(".").split(".")[-1] if short else target.lstrip(".")
            if role in _CALLABLE_ROLES:
                title += "()"
        path = _resolve(root, context, target.lstrip("~")) if role not in {"term", "ref"} else None
        code = f"<code>{html.escape(title)}</code>"
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    text = _ROLE_RE.sub(repl, text)
    return _LITERAL_MARKER_RE.sub(":", text)


class RstRoles(griffe.Extension):
    """Rewrite Sphinx cross-reference roles in every docstring of the package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: D102
        self._walk(pkg, pkg, seen=set())

    def _walk(self, obj: griffe.Object, root: griffe.Module, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _rewrite(obj.docstring.value, root, obj)
        for member in obj.members.values():
            if isinstance(member, griffe.Alias):
                continue
            self._walk(member, root, seen)
