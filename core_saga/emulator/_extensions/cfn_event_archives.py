"""``AWS::Events::Archive`` from CloudFormation.

The gap (moto 5.2.5): an archive's ``EventPattern`` arrives from the template as an
object and moto parses it as JSON text, so the stack fails (``TypeError: the JSON
object must be str...``); an update reads ``Retention`` instead of ``RetentionDays``;
deleting the stack leaves the archive behind (the next deploy fails with "Archive …
already exists"); the stack lists it without a physical id.

The fix: the pattern is passed on as JSON text, updates read ``RetentionDays``, an
archive that exists with the same name and source is adopted (updated) rather than
refused, the archive goes with its stack, and its physical id is its name (as on AWS).
"""

from __future__ import annotations

import importlib
import json
from typing import Any


def _pattern(properties: dict[str, Any]) -> str | None:
    pattern = properties.get("EventPattern")
    if pattern is None or isinstance(pattern, str):
        return pattern
    return json.dumps(pattern)


def apply() -> None:
    """Replace the CloudFormation class methods of ``moto.events.models.Archive``."""
    models = importlib.import_module("moto.events.models")
    archive_class = models.Archive

    def create(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        backend = models.events_backends[account_id][region_name]
        name = properties.get("ArchiveName") or resource_name
        existing = backend.archives.get(name)
        if existing is not None and existing.source_arn == properties.get("SourceArn"):
            existing.update(properties.get("Description"), _pattern(properties),
                            properties.get("RetentionDays"))
            return existing
        return backend.create_archive(name, properties.get("SourceArn"),
                                      properties.get("Description"), _pattern(properties),
                                      properties.get("RetentionDays"))

    def update(cls: Any, /, original_resource: Any, new_resource_name: str,
               cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        properties = cloudformation_json["Properties"]
        if (properties.get("ArchiveName") or new_resource_name) == original_resource.name:
            original_resource.update(properties.get("Description"), _pattern(properties),
                                     properties.get("RetentionDays"))
            return original_resource
        original_resource.delete(account_id, region_name)
        return create(cls, new_resource_name, cloudformation_json, account_id, region_name)

    def delete(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str) -> None:
        backend = models.events_backends[account_id][region_name]
        name = (cloudformation_json.get("Properties") or {}).get("ArchiveName") or resource_name
        if name in backend.archives:
            backend.delete_archive(name)

    archive_class.physical_resource_id = property(lambda self: self.name)
    archive_class.create_from_cloudformation_json = classmethod(create)
    archive_class.update_from_cloudformation_json = classmethod(update)
    archive_class.delete_from_cloudformation_json = classmethod(delete)
