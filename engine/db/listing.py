"""Filtered, keyset-paginated SELECTs: the one way a repository builds a list query whose
filters and order come from the caller.

Every value a caller passes becomes a bound parameter (`$n`); only identifiers the repository
itself names (a column of its allow-list, its table) are written into the SQL text. Pages are
keyset pages: the cursor is a row id, and the next page holds the rows strictly after that row in
the chosen order, ties on the sort column broken by id. So a page never repeats or skips a row,
however many rows arrive meanwhile, and it costs an index range scan, not an OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SortKey:
    """A column to order by and its direction. `column` is SQL text: it comes from a
    repository's allow-list, never from input."""

    column: str
    descending: bool = True

    def order_by(self, alias: str) -> str:
        direction = "DESC" if self.descending else "ASC"
        return f"{alias}.{self.column} {direction}, {alias}.id {direction}"


NEWEST_FIRST = SortKey("created_at")


class ListQuery:
    """WHERE clauses with their bound arguments, for one table aliased `alias`."""

    def __init__(self, table: str, alias: str) -> None:
        self._table = table
        self._alias = alias
        self._clauses: list[str] = []
        self.args: list[object] = []

    def bind(self, value: object) -> str:
        """The placeholder of a new bound argument."""
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, clause: str, value: object) -> None:
        """Add `clause` (its `{}` is the value's placeholder) unless `value` is None."""
        if value is not None:
            self._clauses.append(clause.format(self.bind(value)))

    def after(self, key: SortKey, cursor: UUID | None) -> None:
        """Only rows after the cursor row in `key`'s order (nothing if it does not exist)."""
        if cursor is None:
            return
        op = "<" if key.descending else ">"
        column = f"{self._alias}.{key.column}"
        self._clauses.append(
            f"({column}, {self._alias}.id) {op} "
            f"(SELECT c.{key.column}, c.id FROM {self._table} c WHERE c.id = {self.bind(cursor)})"
        )

    def page_sql(self, columns: str, key: SortKey, limit: int) -> str:
        """The SELECT of one page: `limit` rows and one more, which says whether more follow."""
        where = " AND ".join(self._clauses) or "TRUE"
        return (
            f"SELECT {columns} FROM {self._table} {self._alias} WHERE {where} "
            f"ORDER BY {key.order_by(self._alias)} LIMIT {self.bind(limit + 1)}"
        )


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """The page (`limit` rows at most) and whether more follow (it was asked for one more)."""
    return list(rows[:limit]), len(rows) > limit
