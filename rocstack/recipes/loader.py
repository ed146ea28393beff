"""Load recipe and stack YAML into models, with errors that point at file:line.

ruamel.yaml keeps the line of every key, so a pydantic error's location
(``build.memory_per_job_gb``) can be turned back into the line a user must edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from rocstack.errors import RecipeError, RocstackError
from rocstack.recipes.models import ComponentRecipe, Stack

Model = TypeVar("Model", bound=BaseModel)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: file not found", "check the path, or list what exists with `rocstack recipes` / `rocstack stacks`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read: {exc}", "make it a readable UTF-8 YAML file") from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise RecipeError(f"{path}{line}: invalid YAML: {problem}", "fix the YAML syntax at that line") from None


def _line_of(doc: Any, loc: tuple) -> int | None:
    """1-based line of the deepest node along a pydantic error location."""
    node, line = doc, None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedMap) and isinstance(node.lc.line, int) and line is None:
            line = node.lc.line + 1
    return line


def _field_name(loc: tuple) -> str:
    # Discriminated unions add the tag ("git", "pypi") to the path; users never wrote it.
    parts = [str(p) for p in loc if p not in ("git", "pypi", "local", "function-after[_pinned(), str]")]
    return ".".join(parts) or "(top level)"


def _to_plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    return node


def load_model(path: Path, model: type[Model]) -> Model:
    path = Path(path)
    doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise RecipeError(f"{path}: expected a mapping of fields at the top level", f"see the {model.__name__} reference in README.md")
    try:
        return model.model_validate(_to_plain(doc))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(doc, loc)
        where = f"{path}:{line}" if line else str(path)
        field = _field_name(loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RecipeError(f"{where}: field '{field}': {message}{more}", f"fix the {model.__name__} field in {path.name}") from None
    except RocstackError as exc:  # e.g. the arch registry rejecting a name inside a validator
        raise RecipeError(f"{path}: {exc.message}", exc.hint) from None


def load_component(path: Path) -> ComponentRecipe:
    recipe = load_model(path, ComponentRecipe)
    if Path(path).stem != recipe.name:
        raise RecipeError(f"{path}: recipe is named '{recipe.name}' but the file is '{Path(path).name}'", f"rename the file to {recipe.name}.yaml")
    return recipe


def load_stack(path: Path) -> Stack:
    stack = load_model(path, Stack)
    if Path(path).stem != stack.name:
        raise RecipeError(f"{path}: stack is named '{stack.name}' but the file is '{Path(path).name}'", f"rename the file to {stack.name}.yaml")
    return stack


def field_line(path: Path, dotted: str) -> int | None:
    """1-based line of a field (``validation.imports``) in a recipe or stack file (its deepest present
    parent's line when the field itself is absent); None for an unreadable file."""
    try:
        doc = _read_yaml(Path(path))
    except RocstackError:
        return None
    if not isinstance(doc, CommentedMap):
        return None
    return _line_of(doc, tuple(dotted.split("."))) or 1


def recipe_audit_policy(path: Path):
    """The audit policy of a component recipe's ``validation`` block (``rocstack audit --policy recipe.yaml``)."""
    from rocstack.audit.policy import AuditPolicy

    recipe = load_component(path)
    if recipe.validation is None:
        raise RocstackError(f"recipe {path} has no validation block", "add `validation:` to the recipe")
    return AuditPolicy.from_validation(recipe.validation, name=recipe.name)
