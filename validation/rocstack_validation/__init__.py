"""The validation suite that runs inside a rocstack image (or, with --local, in the current env).

It writes one JSON document (schema ``rocstack.validation-suite/v1``) that the host side
(``rocstack.validate``) turns into the signed ``rocstack.validation/v1`` report.
"""

from rocstack.contracts import SUITE_SCHEMA

__version__ = "0.1.0"
__all__ = ["SUITE_SCHEMA", "__version__"]
