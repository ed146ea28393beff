"""Component recipes and stacks: models, YAML loading, the catalog under recipes/."""

from rocstack.recipes.catalog import Catalog, project_root
from rocstack.recipes.models import ComponentRecipe, Stack, ValidationPolicy

__all__ = ["Catalog", "ComponentRecipe", "Stack", "ValidationPolicy", "project_root"]
