"""Host side of validation: run the in-image suite, judge it, write the reports.

``validate_image`` runs ``validation/`` (package ``rocstack_validation``, installed in every
image) in a container of the image; ``validate_local`` runs it in this environment.
Both return a :class:`~rocstack.validate.report.Report` and write it atomically.
"""

from rocstack.validate.runner import validate_image, validate_local

__all__ = ["validate_image", "validate_local"]
