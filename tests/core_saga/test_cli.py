"""The stepsaga command line: graph export, clear errors."""

from __future__ import annotations

from typer.testing import CliRunner

from core_saga.cli import app

runner = CliRunner()


def test_graph_prints_mermaid_and_dot() -> None:
    result = runner.invoke(app, ["graph", "examples.quickstart.article_saga:ArticleOrderSaga"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("stateDiagram-v2\n")
    assert "ShippingPending --> Completed: ShipmentCreated" in result.output
    dot = runner.invoke(app, ["graph", "examples.quickstart.article_saga:ArticleOrderSaga",
                              "--format", "dot", "--highlight", "Failed"])
    assert dot.exit_code == 0 and dot.output.startswith('digraph "ArticleOrderSaga" {')


def test_graph_errors_are_clear() -> None:
    bad = runner.invoke(app, ["graph", "no_such_module:Saga"])
    assert bad.exit_code == 2 and "cannot import 'no_such_module'" in bad.output
    shape = runner.invoke(app, ["graph", "just-a-name"])
    assert shape.exit_code == 2 and "package.module:Name" in shape.output
    fmt = runner.invoke(app, ["graph", "examples.quickstart.article_saga:ArticleOrderSaga",
                              "--format", "png"])
    assert fmt.exit_code == 2 and "mermaid or dot" in fmt.output


def test_every_command_has_help() -> None:
    for command in ([], ["graph"], ["worker"], ["migrate"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output
