"""A ``TemplateURL`` on a loopback address (``http://127.0.0.1:PORT/bucket/key``).

The gap: moto reads a template from S3 path-style only when the URL contains
``localhost``; any other host is taken as virtual-hosted (``bucket.host/key``). The CDK
CLI pointed at ``AWS_ENDPOINT_URL=http://127.0.0.1:PORT`` uploads the template there and
hands CloudFormation that URL, so moto looked for a bucket called ``127`` and the
deploy failed with "The specified bucket does not exist" (only ``localhost`` worked).

The fix: a URL whose host is a loopback address (``127.0.0.0/8``, ``::1``,
``localhost``) is read path-style, as the S3 client wrote it.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import urllib.parse
from collections.abc import Callable
from typing import Any


def is_loopback_url(url: str) -> bool:
    """True when `url`'s host is ``localhost`` or a loopback IP address."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def apply() -> None:
    """Wrap ``get_stack_from_s3_url`` where moto's CloudFormation calls it."""
    utils: Any = importlib.import_module("moto.cloudformation.utils")
    original: Callable[..., str] = utils.get_stack_from_s3_url

    @functools.wraps(original)
    def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
        if not is_loopback_url(template_url):
            return original(template_url, account_id, partition)
        s3: Any = importlib.import_module("moto.s3.models")
        path = urllib.parse.urlsplit(template_url).path.lstrip("/")
        bucket, _, key = path.partition("/")
        found = s3.s3_backends[account_id][partition].get_object(
            bucket, urllib.parse.unquote(key))
        return str(found.value.decode("utf-8"))

    for module in ("moto.cloudformation.utils", "moto.cloudformation.responses",
                   "moto.cloudformation.models"):
        importlib.import_module(module).get_stack_from_s3_url = get_stack_from_s3_url  # type: ignore[attr-defined]
