"""docs/plugin_api.md documents every public type, attribute, method and function of core.types,
core.queries and core.errors (with its type, default or signature), describes nothing they no
longer have, covers every hook when it says what an exception does, and its >>> examples give
the output they show, run on a fresh engine."""

from __future__ import annotations

import ast
import dataclasses
import doctest
import importlib
import inspect
import json
import re
import typing
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugin_api.md"
MODULES = ("core.types", "core.queries", "core.errors")
HOOKS_SECTION = "When a hook raises"
EXAMPLE_PLUGIN = "photo_count=docs.examples.photo_count"
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


# -- the page ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    text: str
    line: int  # of the heading, 1-based


def split_sections(text: str, level: int, first_line: int = 1) -> dict[str, Section]:
    """The parts of ``text`` under each heading of ``level`` (headings inside code blocks ignored)."""
    found: dict[str, Section] = {}
    title, start, body = None, 0, []
    fenced = False

    def close() -> None:
        if title is not None:
            assert title not in found, f"docs/plugin_api.md: two '{'#' * level} {title}' headings"
            found[title] = Section(title, "\n".join(body), start)

    for number, line in enumerate(text.splitlines(), first_line):
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.fullmatch(rf"{'#' * level} +(\S.*?)\s*", line)
        if heading:
            close()
            title, start, body = heading.group(1), number, []
        elif title is not None:
            body.append(line)
    close()
    return found


def rows(text: str) -> list[list[str]]:
    """The cells of each table row of ``text`` whose first cell is code (``| `name` | ...``);
    ``\\|`` inside a cell is a literal pipe."""
    out = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        out.append(cells)
    return out


def code(cell: str) -> str | None:
    """The text of a cell that is one code span, else None."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


def normalised(text: str) -> str:
    """Signatures compared whatever their line breaks: one space for any run of white space, none
    inside the brackets' ends, no trailing comma."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\( ", "(", text)
    return re.sub(r",? \)", ")", text)


PAGE = DOC.read_text(encoding="utf-8")
PARTS = split_sections(PAGE, 2)


def members(module_name: str) -> dict[str, Section]:
    part = PARTS[module_name]
    return split_sections(part.text, 3, part.line + 1)


def section_of(module_name: str, name: str) -> Section:
    found = members(module_name).get(name)
    assert found is not None, f"docs/plugin_api.md has no '### {name}' under '## {module_name}'"
    return found


# -- the code ------------------------------------------------------------------------------------


def public_names(module: ModuleType) -> list[str]:
    """What the module itself defines (not what it imports) under a name without a leading ``_``:
    its classes and functions, and its top-level assignments (aliases, constants)."""
    names = [name for name, obj in vars(module).items()
             if getattr(obj, "__module__", None) == module.__name__
             and (inspect.isclass(obj) or inspect.isfunction(obj))]
    for node in ast.parse(inspect.getsource(module)).body:
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign)
                   else [])
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return sorted({n for n in names if not n.startswith("_")})


def type_text(annotation: Any) -> str:
    """An annotation as the source writes it (the modules use ``from __future__ import annotations``)."""
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def shown(value: Any) -> str:
    """A default value as the page shows it: strings in double quotes, an empty dataclass as ``Name()``."""
    if isinstance(value, str):
        return json.dumps(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and value == type(value)():
        return f"{type(value).__name__}()"
    if isinstance(value, tuple) and value:
        return f"({', '.join(map(shown, value))}{',' if len(value) == 1 else ''})"
    return repr(value)


def signature_text(name: str, function: Callable[..., Any], *, returns: bool = True) -> str:
    """``name(a: int, *, b: str | None = None) -> bool``; ``self`` left out."""
    parts = []
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    star = any(p.kind is p.VAR_POSITIONAL for p in params)
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            text += f": {type_text(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {shown(p.default)}"
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    text = f"{name}({', '.join(parts)})"
    annotation = inspect.signature(function).return_annotation
    if returns and annotation is not inspect.Signature.empty:
        text += f" -> {type_text(annotation)}"
    return text


def methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Public methods the class defines itself (a dataclass's generated ones are dunders)."""
    return {name: obj for name, obj in vars(cls).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or isinstance(obj, (staticmethod, classmethod)))}


def instance_attributes(cls: type) -> list[str]:
    """Names its own methods assign as ``self.name = ...``."""
    try:
        tree = ast.parse(inspect.getsource(cls).strip())
    except (OSError, TypeError):
        return []
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        found += [t.attr for t in targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                  and t.value.id == "self"]
    return found


def class_attributes(cls: type) -> dict[str, str]:
    """Public attributes that a class defines itself (what it inherits is documented with its
    base), with their types: class attributes (``code = "not_found"``), properties, and names
    its methods assign to ``self`` (typed by the ``__init__`` parameter of that name)."""
    init = vars(cls).get("__init__")
    annotations = {p.name: type_text(p.annotation) for p in inspect.signature(init).parameters.values()
                   if p.annotation is not p.empty} if inspect.isfunction(init) else {}
    out: dict[str, str] = {}
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            out[name] = type_text(inspect.signature(value.fget).return_annotation) if value.fget else "Any"
        elif not callable(value) and not isinstance(value, (staticmethod, classmethod)):
            out[name] = type(value).__name__
    for name in instance_attributes(cls):
        if not name.startswith("_"):
            out.setdefault(name, annotations.get(name, "Any"))
    return out


def documented_things() -> list[tuple[str, str]]:
    return [(module, name) for module in MODULES for name in public_names(importlib.import_module(module))]


def classes_of(module_name: str, dataclass: bool) -> list[str]:
    module = importlib.import_module(module_name)
    return [name for name in public_names(module)
            if inspect.isclass(getattr(module, name)) and dataclasses.is_dataclass(getattr(module, name)) == dataclass]


DATACLASSES = [(m, n) for m in MODULES for n in classes_of(m, True)]
OTHER_CLASSES = [(m, n) for m in MODULES for n in classes_of(m, False)]
FUNCTIONS = [(m, n) for m in MODULES for n in public_names(importlib.import_module(m))
             if inspect.isfunction(getattr(importlib.import_module(m), n))]


# -- completeness --------------------------------------------------------------------------------


def test_the_page_has_a_part_per_module():
    assert set(MODULES) <= set(PARTS), f"docs/plugin_api.md needs a '## {{module}}' part for each of {MODULES}"
    stale = {t for t in PARTS if t.startswith("core.")} - set(MODULES)
    assert not stale, f"docs/plugin_api.md has parts for modules this test does not check: {sorted(stale)}"


def test_the_modules_public_names_are_found():
    """The introspection sees what a plugin sees (a test that found nothing would pass)."""
    types = set(public_names(importlib.import_module("core.types")))
    assert {"ObservationView", "ProjectContext", "Severity", "GRADES"} <= types
    assert {"observations", "enrichment_results"} <= set(public_names(importlib.import_module("core.queries")))
    assert {"EngineError", "ValidationFailed", "NotFound"} <= set(public_names(importlib.import_module("core.errors")))


@pytest.mark.parametrize(("module_name", "name"), documented_things())
def test_every_public_name_is_documented(module_name, name):
    obj = getattr(importlib.import_module(module_name), name)
    sections = members(module_name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert name in sections, f"docs/plugin_api.md has no '### {name}' under '## {module_name}'"
        return
    named = [r for r in rows(PARTS[module_name].text) if code(r[0]) == name]
    assert named, f"docs/plugin_api.md has no row '| `{name}` | value | meaning |' under '## {module_name}'"
    expected = value_text(obj)
    assert code(named[0][1]) == expected, f"docs/plugin_api.md shows {name} as {named[0][1]}, it is `{expected}`"
    assert len(named[0]) >= 3 and named[0][2], f"docs/plugin_api.md: the row of {name} says nothing of its meaning"


def value_text(obj: Any) -> str:
    """An alias or a constant as the page shows it: ``Literal["a", "b"]``, ``("a", "b")``."""
    if typing.get_origin(obj) is typing.Literal:
        return f"Literal[{', '.join(shown(a) for a in typing.get_args(obj))}]"
    return shown(obj)


@pytest.mark.parametrize("module_name", MODULES)
def test_the_page_describes_nothing_the_module_lacks(module_name):
    """A '### name' heading or a constant's row for something renamed or removed fails too;
    headings that are not identifiers (`### Worked example`) are prose."""
    names = set(public_names(importlib.import_module(module_name)))
    headings = {t for t in members(module_name) if IDENTIFIER.fullmatch(t)}
    assert headings - names == set(), (
        f"docs/plugin_api.md documents {sorted(headings - names)}, which {module_name} lacks")
    for title, section in members(module_name).items():
        if IDENTIFIER.fullmatch(title):
            continue
        listed = {code(r[0]) for r in rows(section.text)} - {None}
        assert listed <= names, (
            f"docs/plugin_api.md '### {title}' lists {sorted(listed - names)}, which {module_name} lacks")


@pytest.mark.parametrize(("module_name", "name"), DATACLASSES)
def test_every_attribute_is_documented_with_its_type_and_default(module_name, name):
    """The attribute rows are the dataclass's fields, in the constructor's order, each with its
    type as annotated, its default and a meaning; nothing more."""
    cls = getattr(importlib.import_module(module_name), name)
    section = section_of(module_name, name)
    expected = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f"`{shown(f.default)}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{shown(f.default_factory())}`"
        else:
            default = "required"
        expected.append((f.name, type_text(f.type), default))
    expected += [(n, t, "read-only") for n, t in class_attributes(cls).items()
                 if isinstance(vars(cls).get(n), property)]
    documented = [r for r in rows(section.text) if code(r[0]) and IDENTIFIER.fullmatch(code(r[0]))]
    shown_rows = [(code(r[0]), code(r[1]) if len(r) > 1 else None, r[2] if len(r) > 2 else None) for r in documented]
    assert shown_rows == expected, (
        f"docs/plugin_api.md '### {name}': the rows (attribute, type, default) differ from {module_name}.{name}'s "
        f"fields\n documented: {shown_rows}\n in code:    {expected}")
    assert all(len(r) >= 4 and r[3] for r in documented), f"docs/plugin_api.md '### {name}': a row has no meaning"


@pytest.mark.parametrize(("module_name", "name"), DATACLASSES + OTHER_CLASSES)
def test_every_method_is_documented_with_its_signature(module_name, name):
    cls = getattr(importlib.import_module(module_name), name)
    section = section_of(module_name, name)
    expected = {signature_text(n, m.__func__ if isinstance(m, (staticmethod, classmethod)) else m)
                for n, m in methods(cls).items()}
    documented = {code(r[0]) for r in rows(section.text) if code(r[0]) and "(" in code(r[0])}
    assert documented == expected, (
        f"docs/plugin_api.md '### {name}': methods documented {sorted(documented)}, in code {sorted(expected)}")


@pytest.mark.parametrize(("module_name", "name"), OTHER_CLASSES)
def test_every_class_is_documented_with_its_constructor_and_attributes(module_name, name):
    """An error class: how to make one, each public attribute with its type (``code`` and
    ``http_status`` with their values), and nothing it lacks."""
    cls = getattr(importlib.import_module(module_name), name)
    section = section_of(module_name, name)
    constructor = signature_text(name, cls, returns=False)
    assert normalised(constructor) in normalised(section.text), (
        f"docs/plugin_api.md '### {name}' does not show its constructor {constructor}")
    expected = class_attributes(cls)
    documented = {code(r[0]): r for r in rows(section.text) if code(r[0]) and IDENTIFIER.fullmatch(code(r[0]))}
    assert set(documented) == set(expected), (
        f"docs/plugin_api.md '### {name}': attributes documented {sorted(documented)}, in code {sorted(expected)}")
    for attribute, type_name in expected.items():
        row = documented[attribute]
        assert len(row) >= 3 and code(row[1]) == type_name, (
            f"'### {name}': `{attribute}` is a `{type_name}`, shown as {row[1:2]}")
        assert row[2], f"'### {name}': the row of `{attribute}` says nothing of its meaning"
        value = getattr(cls, attribute, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            shown_value = f"`{value}`" if isinstance(value, str) else str(value)
            assert re.search(rf"(?<![\w`]){re.escape(shown_value)}(?![\w`])", row[2]), (
                f"'### {name}': the row of `{attribute}` does not say its value {shown_value}")


@pytest.mark.parametrize(("module_name", "name"), FUNCTIONS)
def test_every_function_is_documented_with_its_signature_and_parameters(module_name, name):
    function = getattr(importlib.import_module(module_name), name)
    section = section_of(module_name, name)
    signature = signature_text(name, function)
    assert normalised(signature) in normalised(section.text), (
        f"docs/plugin_api.md '### {name}' does not show the signature {signature}")
    expected = [p for p in inspect.signature(function).parameters]
    documented = [code(r[0]) for r in rows(section.text) if code(r[0])]
    assert sorted(documented) == sorted(expected), (
        f"docs/plugin_api.md '### {name}': parameters described {documented}, in code {expected}")
    assert all(len(r) >= 2 and r[1] for r in rows(section.text)), f"'### {name}': a parameter's row is empty"


def hook_names() -> set[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)}


def test_what_an_exception_does_is_said_for_every_hook():
    assert HOOKS_SECTION in PARTS, f"docs/plugin_api.md has no '## {HOOKS_SECTION}' part"
    table = {code(r[0]): r for r in rows(PARTS[HOOKS_SECTION].text)}
    hooks = hook_names()
    assert len(hooks) >= 10, f"expected the engine's hooks, found {sorted(hooks)}"
    assert set(table) == hooks, (f"docs/plugin_api.md '## {HOOKS_SECTION}': missing {sorted(hooks - set(table))}, "
                                 f"not hooks {sorted(set(table) - hooks)}")
    assert all(len(r) >= 2 and r[1] for r in table.values())


# -- the examples --------------------------------------------------------------------------------


def example_registry() -> str:
    """The registry.yaml the page says its examples run on (its first yaml block)."""
    block = re.search(r"```yaml\n(.*?)```", PAGE, flags=re.DOTALL)
    assert block, "docs/plugin_api.md shows no registry.yaml for its examples"
    return block.group(1)


def console_blocks(text: str) -> str:
    """``text`` with only the lines inside its ```pycon blocks (the others blank, so that
    doctest's line numbers are the page's)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```pycon"
            out.append("")
        else:
            out.append(line if inside else "")
    return "\n".join(out) + "\n"


EXAMPLES = [title for title, part in PARTS.items() if ">>> " in console_blocks(part.text)]


def test_the_examples_are_found():
    assert set(MODULES) <= set(EXAMPLES), f"every module's part needs an example; those with one: {EXAMPLES}"


@pytest.mark.parametrize("part", EXAMPLES)
def test_the_examples_give_the_output_shown(part, make_engine):
    """Each part's examples, in order, on a fresh engine (a database of its own rows)."""
    engine = make_engine(example_registry(), plugin_modules=EXAMPLE_PLUGIN)
    section = PARTS[part]
    test = doctest.DocTestParser().get_doctest(console_blocks(section.text), {"engine": engine},
                                               f"plugin_api.md: {part}", str(DOC), section.line)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=report.append)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
