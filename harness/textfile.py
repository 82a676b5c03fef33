"""Reading the small text files users write (manifests, gate configs) without trusting them.

A file is read only if it is a regular file of at most ``MAX_FILE_BYTES``; it must be UTF-8. YAML is
composed into its node graph first and checked there, before any Python object is built: a key given
twice in one mapping is refused (naming it and its lines), and so is a document that would expand
(through anchors and aliases) to more than ``MAX_YAML_NODES`` values or nest deeper than
``MAX_YAML_DEPTH`` levels. Every refusal is an :class:`~harness.errors.InputError` naming the file.
"""

from __future__ import annotations

import codecs
import reprlib
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

MAX_FILE_BYTES = 1 << 20
"""Largest manifest or config file read (1 MiB; the shipped manifests are a few hundred bytes)."""
MAX_YAML_NODES = 100_000
"""Most values a YAML document may hold once its aliases are expanded."""
MAX_YAML_DEPTH = 32
"""Deepest nesting of mappings and lists a YAML document may have."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxtuple = 4
_SHORT.maxlevel = 2


def short_repr(value: Any) -> str:
    """A repr of at most a line, whatever the value's size (for echoing user input in errors)."""
    return _SHORT.repr(value)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a user's file; ``what`` names it in errors (e.g. 'manifest')."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a {what} file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; expected a {what} file")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); expected a readable {what} file") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path}: larger than {MAX_FILE_BYTES // (1 << 20)} MiB; expected a {what} of a few "
                         "kilobytes")
    return decode_utf8(data, path)


def decode_utf8(data: bytes, path: Path) -> str:
    """``data`` as UTF-8 text (a byte-order mark is dropped); InputError names the line of a bad byte."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path}: is UTF-16 or UTF-32 text; expected UTF-8 (save the file as UTF-8)")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: a NUL byte (UTF-16 text or a binary file?); expected UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; expected UTF-8 text "
                         "(save the file as UTF-8)") from None


def load_yaml(text: str, where: str) -> Any:
    """Parse one YAML document safely; InputError names ``where`` (a file, or a file and an option)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply; expected at most {MAX_YAML_DEPTH} levels") from None
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, where: str) -> None:
    """Refuse duplicate keys, and sizes or depths past the limits, on the composed node graph (an
    alias is the node it names, so each node is visited once and sizes are counted expanded)."""
    size: dict[int, int] = {}  # id(node) -> values under it, aliases expanded
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    open_nodes: set[int] = set()
    while stack:
        node, path, done = stack.pop()
        key = id(node)
        children = _children(node, path, where)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(child)] for child, _ in children)
            depth[key] = 1 + max((depth[id(child)] for child, _ in children), default=0)
            if size[key] > MAX_YAML_NODES:
                raise InputError(f"{where}: {path or '(top level)'}: expands to more than {MAX_YAML_NODES:,} "
                                 "values (anchors and aliases repeated?); expected a small document")
            if depth[key] > MAX_YAML_DEPTH:
                raise InputError(f"{where}: {path or '(top level)'}: nested more than {MAX_YAML_DEPTH} levels "
                                 "deep; expected a shallow document")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise InputError(f"{where}: {path}: an alias refers to a node that contains it; expected no cycles")
        open_nodes.add(key)
        stack.append((node, path, True))
        # Reversed: children are visited in document order, so an error names the first place it shows.
        stack.extend((child, child_path, False) for child, child_path in reversed(children) if id(child) not in size)


def _children(node: yaml.Node, path: str, where: str) -> list[tuple[yaml.Node, str]]:
    """A node's children with their key paths; refuses a key given twice in one mapping."""
    if isinstance(node, yaml.SequenceNode):
        return [(child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    out: list[tuple[yaml.Node, str]] = []
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
        child_path = f"{path}.{name}" if path else str(name)
        out.append((key_node, child_path))
        out.append((value_node, child_path))
        if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
            continue
        ident = (key_node.tag, key_node.value)
        line = key_node.start_mark.line + 1
        if ident in first_line:
            raise InputError(f"{where}: {child_path}: duplicate key at line {line} (first at line "
                             f"{first_line[ident]}); expected each key once")
        first_line[ident] = line
    return out
