"""Model prices and the cost of a call: dollars per million input and output tokens, from TOML.

The table ships as ``mulligan/models/prices.toml``; ``$MULLIGAN_PRICES`` names a replacement file.
Entries are keyed by the model name given to mulligan (``openai/gpt-4o-mini``). A dated snapshot
(``openai/gpt-4o-mini-2024-07-18``) falls back to its undated entry, because providers price
snapshots like their alias. A model with no entry costs 0 and is *flagged* (``Price.known`` is
False) so reports can say "cost unknown" rather than print a misleading $0.00.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mulligan.errors import MulliganError

PRICES_ENV = "MULLIGAN_PRICES"
_SNAPSHOT_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceTableError(MulliganError, ValueError):
    """The price file is missing or malformed; the message names the file and the entry."""


class Price(BaseModel):
    """Dollars per one million tokens; ``known`` is False for models absent from the table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0.0, description="US$ per 1M prompt tokens")
    output: float = Field(ge=0.0, description="US$ per 1M completion tokens")
    known: bool = True

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US$ for one call with these token counts."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


UNKNOWN_PRICE = Price(input=0.0, output=0.0, known=False)


class PriceTable:
    """Prices by model name.

    Args:
        prices: ``{model name: Price}``.
        source: where the table came from (shown in error messages).
    """

    def __init__(self, prices: dict[str, Price], source: str = "<memory>") -> None:
        self.prices = dict(prices)
        self.source = source

    @classmethod
    def load(cls, path: Path | str | None = None) -> PriceTable:
        """Read a price file: ``path``, else ``$MULLIGAN_PRICES``, else the bundled table.

        Raises:
            PriceTableError: the file cannot be read or an entry is not ``{input, output}``.
        """
        if path is None and os.environ.get(PRICES_ENV):
            path = os.environ[PRICES_ENV]
        if path is None:
            text = resources.files("mulligan.models").joinpath("prices.toml").read_text("utf-8")
            source = "mulligan/models/prices.toml"
        else:
            source = str(path)
            try:
                text = Path(path).expanduser().read_text("utf-8")
            except OSError as e:
                raise PriceTableError(f"cannot read price table {source}: {e}") from e
        return cls.from_toml(text, source)

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> PriceTable:
        """Parse a price table: ``[models."provider/model"]`` tables with ``input`` and ``output``."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PriceTableError(f"{source}: not valid TOML: {e}") from e
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise PriceTableError(f"{source}: 'models' must be a table of model names")
        prices: dict[str, Price] = {}
        for name, entry in models.items():
            try:
                prices[name] = Price.model_validate(entry)
            except ValidationError as e:
                raise PriceTableError(
                    f"{source}: entry models.{name!r} must be {{input = <$/1M>, output = <$/1M>}}:"
                    f" {e.errors()[0]['msg']}"
                ) from e
        return cls(prices, source)

    def price(self, model: str) -> Price:
        """The price of ``model`` (exact name, then without a ``-YYYY-MM-DD`` suffix), or
        :data:`UNKNOWN_PRICE`."""
        found = self.prices.get(model)
        if found is None:
            found = self.prices.get(_SNAPSHOT_SUFFIX.sub("", model))
        return found if found is not None else UNKNOWN_PRICE

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
        """``(US$, known)`` for one call; unknown models cost 0."""
        price = self.price(model)
        return price.cost(prompt_tokens, completion_tokens), price.known


@lru_cache(maxsize=1)
def default_price_table() -> PriceTable:
    """The table from ``$MULLIGAN_PRICES`` or the bundled file, read once per process."""
    return PriceTable.load()
