"""The one error the warehouse layer raises: the warehouse cannot be read as asked."""

from __future__ import annotations

from pipelines.trigg.errors import TriggError


class WarehouseError(TriggError):
    """The warehouse file is missing, busy or not a DuckDB file: one sentence says which."""
