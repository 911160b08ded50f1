"""Revenue in one base currency: the one conversion the profile updater and the exporter apply.

``Rates`` holds the configured table (``LUMEN_CURRENCY_RATES``: units of the base currency per
unit of each other currency) and the base (``LUMEN_CURRENCY_BASE``). An amount in the base
currency, or without a currency, is kept as is; one in a listed currency is multiplied by its
rate; one in a currency the table does not list cannot be converted: ``to_base`` returns None
and the caller keeps it out of the converted total and counts it (the profile updater's
``lumen_profiles_limited_total{limit="revenue_currency"}``, the exporter's revenue under that currency's own
label).

Pure, no dependencies: any service may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CODE = re.compile(r"^[A-Z]{3}$")
DEFAULT_BASE = "USD"


def code_of(value: Any, base: str = DEFAULT_BASE) -> str | None:
    """The ISO 4217 code an event names (case folded), ``base`` when it names none, None when
    the value is not a code."""
    if value is None or value == "":
        return base
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if _CODE.match(code) else None


@dataclass(frozen=True)
class Rates:
    base: str = DEFAULT_BASE
    rates: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Any) -> Rates:
        """From ``CurrencySettings`` (``shared.settings``)."""
        return cls(settings.base, {k.upper(): float(v) for k, v in settings.rates.items()})

    def to_base(self, amount: float, currency: str | None) -> float | None:
        """``amount`` in the base currency; None when ``currency`` cannot be converted."""
        if currency == self.base:
            return amount
        rate = self.rates.get(currency or "")
        return None if rate is None else amount * rate
