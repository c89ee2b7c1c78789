"""YAML for configuration documents, bounded before anything else looks at them.

A YAML alias ("*a") refers to an earlier anchored node ("&a"). PyYAML shares the node instead
of copying it, so loading is cheap, but everything after it (interpolation, validation, the
snapshot compile) walks the document as a tree: 373 bytes of nested aliases expand to ~10^7
nodes and froze a gateway for seconds ("billion laughs", CVE-2019-11253 for Kubernetes).

Rules:
  1. A document larger than MAX_DOCUMENT_BYTES (bytes, or characters for text) is refused
     unparsed; declarative.load_file reads at most one more than that.
  2. The document is composed (parsed into nodes, aliases still shared), then the size it would
     have as a tree is counted on the node graph (each distinct node once, memoized, no
     recursion). It is refused when that size exceeds both MAX_EXPANDED_NODES_FLOOR and
     MAX_ALIAS_EXPANSION times the number of distinct nodes, before any Python object is
     constructed from it.
  3. Only then is it constructed, with the safe loader (the C one when PyYAML has it): no tags
     that build arbitrary Python objects.
  4. Every refusal is YamlLimitError (a ValueError) with a message for the operator; syntax
     errors stay yaml.YAMLError.
"""
from __future__ import annotations

from typing import Any

import yaml

# Admin API bodies are bounded at the same size (fastgw.admin.server.MAX_BODY); Kong's admin
# server sets nginx client_max_body_size 10m, and a declarative file for 100k entities is a
# few tens of MiB.
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# go-yaml (v2.2.8+, the fix for CVE-2019-11253) allows any alias use up to 400,000 decoded
# nodes and then a falling alias ratio; here: up to 400,000 tree nodes anything goes, beyond
# that the tree may be at most 10x the distinct nodes written.
MAX_EXPANDED_NODES_FLOOR = 400_000
MAX_ALIAS_EXPANSION = 10

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(ValueError):
    """A document refused by Rule 1 or 2 (the message says which limit and why)."""


def _tree_size(root: yaml.Node, limit: int) -> int:
    """Nodes the document has when its aliases are expanded (stops counting past `limit`)."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size and not done:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            size[key] = -1          # in progress (on the path from the root)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        total = 1
        for c in children:
            s = size[id(c)]
            if s < 0:
                # only a node still on the walk's path is unfinished: an alias to an ancestor
                raise YamlLimitError("recursive alias: a node contains itself")
            total += s
            if total > limit:
                return total
        size[key] = total
    return size.get(id(root), 1)


def safe_load(text: str | bytes) -> Any:
    """Rules 1-3: the document's data, or YamlLimitError / yaml.YAMLError."""
    if len(text) > MAX_DOCUMENT_BYTES:
        unit = "bytes" if isinstance(text, bytes) else "characters"
        raise YamlLimitError(f"document too large: more than {MAX_DOCUMENT_BYTES} {unit}")
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        distinct = _count_distinct(node)
        limit = max(MAX_EXPANDED_NODES_FLOOR, MAX_ALIAS_EXPANSION * distinct)
        if _tree_size(node, limit) > limit:
            raise YamlLimitError(
                f"too many aliases: the document expands to more than {limit} nodes from "
                f"{distinct} written (YAML anchors/aliases are limited to "
                f"{MAX_ALIAS_EXPANSION}x expansion)")
        return loader.construct_document(node)
    finally:
        loader.dispose()
        # the loader refers to itself (its states are bound methods) and keeps every node it
        # built: 100,000s of objects of cyclic garbage for the collector (a long pause on the
        # proxy's loop). Emptied here, one node at a time, they are plain garbage instead.
        for name in ("constructed_objects", "recursive_objects", "anchors"):
            d = getattr(loader, name, None)
            if isinstance(d, dict):
                while d:
                    d.popitem()


def _count_distinct(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.append(k)
                stack.append(v)
    return len(seen)
