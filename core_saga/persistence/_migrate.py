"""Run the packaged Alembic migrations against a database URL.

Each package owns its tables and their migrations: core_saga's (instances, index,
history, inbox, outbox, errors) are the ``core`` branch here; another package adds its
own branch by naming its versions directory in the ``stepsaga.migrations`` entry-point
group (the bridge's review tasks do). All branches share one Alembic environment and
version table, and ``stepsaga migrate`` brings every installed branch to its head.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
ENTRY_POINT_GROUP = "stepsaga.migrations"


def _alembic() -> Any:
    """Alembic, imported when migrations run (the engine itself does not need it)."""
    try:
        import alembic.command
        import alembic.config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError("running migrations needs Alembic: pip install 'stepsaga[cli]' "
                          "(or alembic)") from exc
    return alembic


def migration_locations(packages: Sequence[str] | None = None) -> dict[str, Path]:
    """The versions directory of each package's migrations, by package name: core_saga's
    and every registered one (only those named in `packages`, when given)."""
    found: dict[str, Path] = {"core_saga": MIGRATIONS / "versions"}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found[point.name] = Path(str(point.load()))
    if packages is not None:
        unknown = sorted(set(packages) - set(found))
        if unknown:
            raise ValueError(f"no migrations registered for {', '.join(unknown)} (known: "
                             f"{', '.join(sorted(found))})")
        found = {name: path for name, path in found.items() if name in packages}
    return found


def alembic_config(url: str, *, schema: str | None = None,
                   packages: Sequence[str] | None = None) -> Config:
    """An Alembic Config for the packaged migrations (for ``command.*`` calls): core's
    branch and every registered package's, or only those in `packages`."""
    config: Config = _alembic().config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(
        str(path) for path in migration_locations(packages).values()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade_sync(url: str, *, schema: str | None = None, revision: str = "heads",
                 packages: Sequence[str] | None = None) -> None:
    """Migrate the database at `url` up to `revision` (default: every branch to its
    head), from a plain thread."""
    _alembic().command.upgrade(alembic_config(url, schema=schema, packages=packages), revision)


def downgrade_sync(url: str, *, schema: str | None = None, revision: str = "base",
                   packages: Sequence[str] | None = None) -> None:
    """Migrate the database at `url` down to `revision` (default: remove everything)."""
    _alembic().command.downgrade(alembic_config(url, schema=schema, packages=packages),
                                 revision)


async def upgrade(url: str, *, schema: str | None = None, revision: str = "heads",
                  packages: Sequence[str] | None = None) -> None:
    """Migrate the database at `url` up to `revision`, from async code."""
    await asyncio.to_thread(upgrade_sync, url, schema=schema, revision=revision,
                            packages=packages)
