"""docs/console.md stays true to the console: every setting, every API route and every
screenshot it names is there."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.console import ConsoleSettings, create_app

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "console.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in ConsoleSettings.model_fields:
        assert f"`STEPSAGA_{name.upper()}`" in text, name


def test_every_api_route_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    app = create_app(ConsoleSettings(console_tokens={}))
    paths = {route.path.replace(":path", "") for route in app.routes
             if getattr(route, "path", "").startswith("/api/")}
    for path in paths:
        documented = re.sub(r"\{[a-z_]+\}", "{id}", path)
        assert documented in text, path


def test_the_screenshots_it_shows_exist() -> None:
    text = DOC.read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", text)
    assert len(shown) >= 4
    for image in shown:
        assert (DOC.parent / image).stat().st_size > 10_000, image
