"""The condition grammar (condition.lark, LALR via lark) and the transformer to the AST.

Kept apart from condition.py so that only the loader imports lark: parse workers unpickle rules
whose conditions are already parsed.
"""

from __future__ import annotations

import re
from pathlib import Path

from lark import (
    Lark,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)

from monitor.matching.condition import (
    FIELDS,
    MAX_DISTANCE,
    And,
    AtLeast,
    Condition,
    ConditionSyntaxError,
    Near,
    Not,
    Or,
    Terms,
)

_KEYWORDS = {"and", "or", "not", "of", "any", "all"}

_PARSER = Lark(
    (Path(__file__).with_name("condition.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    propagate_positions=True,
    maybe_placeholders=False,
)


@v_args(inline=True)
class _Build(Transformer[Token, Condition]):
    def operand(self, token: Token) -> Terms:
        offset = token.start_pos or 0
        if token.type == "PHRASE":
            return Terms(None, phrase=str(token)[1:-1], offset=offset)
        return Terms(str(token), offset=offset)

    def or_expr(self, *items: Condition) -> Condition:
        return Or(items)

    def and_expr(self, *items: Condition) -> Condition:
        return And(items)

    def negation(self, item: Condition) -> Condition:
        return Not(item)

    def any_of(self, name: Token) -> Condition:
        return Terms(str(name), offset=name.start_pos or 0)

    def all_of(self, name: Token) -> Condition:
        return Terms(str(name), every=True, offset=name.start_pos or 0)

    def at_least(self, count: Token, *items: Condition) -> Condition:
        number = int(count)
        if not 1 <= number <= len(items):
            raise ConditionSyntaxError(
                f"'{number} of' needs between 1 and {len(items)} (the number of items listed)",
                count.start_pos or 0,
            )
        return AtLeast(number, items, offset=count.start_pos or 0)

    def proximity(self, left: Terms, operator: Token, right: Terms) -> Condition:
        kind, _, number = str(operator).partition("/")
        distance = int(number)
        if not 1 <= distance <= MAX_DISTANCE:
            raise ConditionSyntaxError(
                f"{kind} distance must be between 1 and {MAX_DISTANCE} (got {distance})",
                operator.start_pos or 0,
            )
        return Near(left, right, distance, kind == "BEFORE", offset=left.offset)

    def scoped(self, name: Token, item: Condition) -> Condition:
        if str(name) not in FIELDS:
            raise ConditionSyntaxError(
                f"unknown field '{name}' (fields: {', '.join(FIELDS)})", name.start_pos or 0
            )
        return _scope(item, str(name))


def _scope(node: Condition, scope: str) -> Condition:
    """Push a field scope down to the leaves that have none yet (inner scopes win)."""
    match node:
        case Terms():
            return (
                node
                if node.scope
                else Terms(node.name, node.phrase, scope, node.every, node.offset)
            )
        case Not(item):
            return Not(_scope(item, scope))
        case And(items):
            return And(tuple(_scope(item, scope) for item in items))
        case Or(items):
            return Or(tuple(_scope(item, scope) for item in items))
        case AtLeast(count, items, offset):
            return AtLeast(count, tuple(_scope(item, scope) for item in items), offset)
        case Near(left, right, distance, ordered, offset):
            return Near(
                _scope_terms(left, scope), _scope_terms(right, scope), distance, ordered, offset
            )


def _scope_terms(node: Terms, scope: str) -> Terms:
    result = _scope(node, scope)
    assert isinstance(result, Terms)
    return result


def parse(text: str) -> Condition:
    """Parse a condition string; raise ConditionSyntaxError pointing at the offending offset."""
    if not text.strip():
        raise ConditionSyntaxError("condition is empty", 0, "write list names joined by and/or")
    try:
        tree = _PARSER.parse(text)
    except ConditionSyntaxError:
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        result: Condition = _Build().transform(tree)
    except Exception as exc:  # lark wraps transformer errors in VisitError
        original = getattr(exc, "orig_exc", exc)
        if isinstance(original, ConditionSyntaxError):
            raise original from None
        raise
    return result


def _syntax_error(text: str, exc: UnexpectedInput) -> ConditionSyntaxError:
    offset = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
    unmatched = _unmatched_parenthesis(text)
    if unmatched is not None:
        return unmatched
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if at_end or isinstance(exc, UnexpectedEOF) or offset >= len(text):
        return ConditionSyntaxError(
            "condition ends too early", len(text), "check for a missing operand or ')'"
        )
    word = text[offset:].split(maxsplit=1)[0] if text[offset:].strip() else text[offset]
    before = _PROXIMITY.search(text[:offset])
    if _PROXIMITY.fullmatch(word) or before is not None:
        operator = word if before is None else before.group(1)
        kind = operator.split("/")[0]
        return ConditionSyntaxError(
            f"{operator} needs a list name or a quoted phrase on each side"
            + ("" if before is None else f" (got '{word}' after it)"),
            offset,
            f"{kind} does not take a group: write one {kind} per list, "
            f"(a {operator} b) or (a {operator} c), or put the terms in one list",
        )
    lower = _PROXIMITY.fullmatch(word.upper())
    if lower is not None and word != word.upper():
        return ConditionSyntaxError(
            f"'{word}' must be upper-case: {word.upper()}",
            offset,
            "NEAR/n and BEFORE/n are upper-case; and, or, not are lower-case",
        )
    hint = None
    if word.lower() in {"and", "or", "not"} and word != word.lower():
        hint = "keywords are lower-case: and, or, not"
    elif isinstance(exc, UnexpectedCharacters) and text[offset] == "'":
        hint = "quote phrases with double quotes"
    elif isinstance(exc, UnexpectedCharacters) and text[offset].isupper():
        hint = "list names are lower-case; NEAR/n and BEFORE/n need a number"
    elif isinstance(exc, UnexpectedToken) and word in _KEYWORDS:
        hint = f"'{word}' is a keyword and cannot be a list name"
    return ConditionSyntaxError(f"condition syntax error at '{word}'", offset, hint)


_PROXIMITY = re.compile(r"((?:NEAR|BEFORE)/[0-9]+)\s*$|(?:NEAR|BEFORE)/[0-9]+")


def _unmatched_parenthesis(text: str) -> ConditionSyntaxError | None:
    """The first ')' that closes nothing, or the first '(' never closed (outside phrases)."""
    opened: list[int] = []
    quoted = False
    for offset, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            opened.append(offset)
        elif char == ")" and not opened:
            return ConditionSyntaxError(
                f"unmatched ')' at column {offset + 1} of the condition",
                offset,
                "remove it or add the '(' it closes",
            )
        elif char == ")":
            opened.pop()
    if opened:
        return ConditionSyntaxError(
            f"'(' at column {opened[0] + 1} of the condition is never closed",
            opened[0],
            "add the ')' that ends the group",
        )
    return None
