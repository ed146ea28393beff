"""rocstack's state directory and its config.json, as the registry code uses them.

``$ROCSTACK_HOME`` (default ``~/.rocstack``) holds ``config.json``; this module reads
it and updates it atomically (temp file + os.replace), keeping keys other parts of
rocstack may have written. Keys used here: ``trusted_keys`` (key id -> public key
record), ``signing_key`` (key id of the key ``push`` signs with) and ``registry``
(default ``HOST/REPO``; the ``ROCSTACK_REGISTRY`` environment variable wins).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

from rocstack.contracts import rocstack_home
from rocstack.errors import RocstackError
from rocstack.fsutil import write_atomic


def config_path(home: Path | None = None) -> Path:
    return (home or rocstack_home()) / "config.json"


def _check_private(path: Path) -> None:
    """Refuse a config (or home) that another local user can write, as ssh refuses such files:
    whoever can write it decides which keys are trusted."""
    for item in (path, path.parent):
        st = item.stat()
        if st.st_mode & 0o022 or st.st_uid not in (0, os.geteuid()):
            who = "group/other-writable" if st.st_mode & 0o022 else f"owned by uid {st.st_uid}"
            raise RocstackError(
                f"refusing to trust {path}: {item} is {who} (mode {stat.filemode(st.st_mode)}), so another "
                "local user could change which keys are trusted",
                f"chmod 700 {path.parent} && chmod 600 {path} (and check their contents)",
            )


def load_config(home: Path | None = None) -> dict[str, Any]:
    path = config_path(home)
    if not path.exists():
        return {}
    _check_private(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RocstackError(
            f"cannot read rocstack config {path}: {exc}",
            "fix the JSON or move the file away (it holds trusted keys and the default registry)",
        ) from None
    if not isinstance(data, dict):
        raise RocstackError(f"rocstack config {path} is not a JSON object", "fix or move the file away")
    return data


def update_config(change: Callable[[dict[str, Any]], None], home: Path | None = None) -> dict[str, Any]:
    """Apply ``change`` to the config and write it back atomically; returns the new config."""
    data = load_config(home)
    change(data)
    write_json_atomic(config_path(home), data)
    return data


def write_json_atomic(path: Path, data: Any, mode: int = 0o600) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=mode)


def default_registry(explicit: str | None = None, home: Path | None = None) -> str:
    """The registry to talk to: the flag, else $ROCSTACK_REGISTRY, else config.json's ``registry``."""
    for value in (explicit, os.environ.get("ROCSTACK_REGISTRY"), load_config(home).get("registry")):
        if value and str(value).strip():
            return str(value).strip()
    raise RocstackError(
        "no registry given",
        "pass --registry HOST/REPO, set ROCSTACK_REGISTRY, or put \"registry\" in $ROCSTACK_HOME/config.json",
    )
