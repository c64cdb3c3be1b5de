"""The one module that knows how a ``/Volumes/...`` path (and a UC table name) maps
to local disk. On Databricks paths are used as they are; in local mode
``/Volumes/<catalog>/<schema>/<volume>/rest`` lives under ``<local_root>/Volumes/...``
and a table ``catalog.schema.table`` is a Parquet directory under
``<local_root>/tables/catalog/schema/table``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from lakefine.core.errors import ConfigError
from lakefine.core.session import on_databricks

LOCAL_ROOT_ENV = "LAKEFINE_LOCAL_ROOT"


class VolumePath(NamedTuple):
    """``/Volumes/<catalog>/<schema>/<volume>/<rest...>``, parsed."""

    catalog: str
    schema: str
    volume: str
    rest: tuple[str, ...]

    @property
    def posix(self) -> PurePosixPath:
        return PurePosixPath("/Volumes", self.catalog, self.schema, self.volume, *self.rest)


def parse_volume_path(path: str, key: str = "path") -> VolumePath:
    """The one parser of volume paths: absolute, under /Volumes/<catalog>/<schema>/<volume>,
    no ``..``; ``key`` names the config key in the error."""
    posix = PurePosixPath(path)
    if ".." in posix.parts:
        raise ConfigError(f"{key}: {path!r} contains '..'; give the full path under /Volumes/...")
    if not posix.is_absolute() or posix.parts[:2] != ("/", "Volumes") or len(posix.parts) < 5:
        raise ConfigError(f"{key}: {path!r} is not under a volume; use /Volumes/<catalog>/<schema>/<volume>/...")
    catalog, schema, volume, *rest = posix.parts[2:]
    return VolumePath(catalog, schema, volume, tuple(rest))


def local_root(configured: str = ".lakefine") -> Path:
    """The stand-in for the workspace: ``$LAKEFINE_LOCAL_ROOT`` beats the config."""
    return Path(os.environ.get(LOCAL_ROOT_ENV) or configured).absolute()


def resolve(path: str, root: str = ".lakefine", key: str = "path") -> Path:
    """Map a volume path to where it really is in this mode."""
    posix = parse_volume_path(path, key).posix
    if on_databricks():
        return Path(str(posix))
    return local_root(root).joinpath(*posix.parts[1:])


def table_location(full_name: str, root: str = ".lakefine") -> Path:
    """Local mode only: where the Parquet directory of ``catalog.schema.table`` lives."""
    return local_root(root).joinpath("tables", *full_name.split("."))


def scratch_dir(configured: str | None, purpose: str) -> Path:
    """Local-SSD scratch (``/local_disk0`` on Databricks, a temp dir locally)."""
    if configured:
        base = Path(configured)
    elif on_databricks() and Path("/local_disk0").is_dir():
        base = Path("/local_disk0/lakefine")
    else:
        base = Path(tempfile.gettempdir()) / "lakefine"
    path = base / purpose
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_root(volume: str, pipeline: str, root: str = ".lakefine") -> Path:
    """Where a pipeline's published dataset versions live (both sides need it)."""
    return resolve(f"{volume}/datasets/{pipeline}", root)
