"""``States.Format``: literal braces, escapes, and ``{`` ``}`` anywhere in the template.

The gap (moto 5.2.5): ``StringFormat`` hands the template to Python's ``str.format``, so a
template with an escaped brace (``\\{`` — in the JSON of the definition ``\\\\{``) or any
lone ``{`` or ``}`` fails the execution with ``States.Runtime`` (``KeyError``/
``ValueError``). AWS treats ``{}`` as the only placeholder and ``\\`` as escaping the next
character. (moto's definition parser also keeps the JSON escaping of a backslash: the
template text holds ``\\\\`` where the definition means ``\\``.)

The fix: a literal template is read the AWS way — the JSON-level ``\\\\`` becomes ``\\``,
then ``\\x`` is a literal ``x``, ``{}`` takes the next argument (rendered as moto does),
and every other character is itself. A template taken from a path is not unescaped, only
filled. (An escaped quote ``\\'`` still fails earlier, in moto's intrinsic lexer.)
"""

from __future__ import annotations

import importlib
from typing import Any


def format_template(template: str, values: list[str], *, escapes: bool) -> str:
    """Fill ``{}`` with `values` in order; with `escapes`, ``\\`` escapes the next
    character."""
    out: list[str] = []
    pending = iter(values)
    position = 0
    while position < len(template):
        char = template[position]
        if escapes and char == "\\" and position + 1 < len(template):
            out.append(template[position + 1])
            position += 2
        elif template.startswith("{}", position):
            out.append(next(pending, "{}"))
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


def apply() -> None:
    """Replace ``StringFormat._eval_body``."""
    module = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.generic"
        ".string_format")
    argument = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.intrinsic.argument.argument")
    string_format = module.StringFormat

    def _eval_body(self: Any, env: Any) -> None:
        self.argument_list.eval(env=env)
        args = env.stack.pop()
        literal = isinstance(self.argument_list.arguments[0], argument.ArgumentLiteral)
        template: str = args[0].replace("\\\\", "\\") if literal else args[0]
        values = [string_format._to_str_repr(value) for value in args[1:]]
        env.stack.append(format_template(template, values, escapes=literal))

    string_format._eval_body = _eval_body
