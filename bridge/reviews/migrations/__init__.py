"""The bridge's own Alembic branch (``bridge``): the review tasks table.

Registered in the ``stepsaga.migrations`` entry-point group, so that ``stepsaga
migrate`` runs it with core_saga's branch; core_saga's migrations own only its tables.
"""

from pathlib import Path

VERSIONS = Path(__file__).parent / "versions"
"""The directory of the bridge's migration scripts."""
