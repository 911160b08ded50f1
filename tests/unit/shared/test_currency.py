"""Revenue's currency: one conversion to the base, codes read leniently, the table checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.currency import Rates, code_of
from shared.settings import CurrencySettings


def test_amounts_convert_to_the_base_or_not_at_all() -> None:
    rates = Rates("USD", {"EUR": 1.08})
    assert rates.to_base(10.0, "USD") == 10.0
    assert rates.to_base(10.0, "EUR") == pytest.approx(10.8)
    assert rates.to_base(10.0, "JPY") is None  # no rate: kept out, the caller counts it
    assert Rates().to_base(3.0, "EUR") is None  # no table: only the base converts


def test_codes_are_read_as_events_send_them() -> None:
    assert code_of(" eur ") == "EUR"
    assert code_of(None) == code_of("") == "USD"
    assert code_of(None, base="EUR") == "EUR"
    assert code_of("euro") is None and code_of(978) is None


def test_the_table_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMEN_CURRENCY_BASE", "EUR")
    monkeypatch.setenv("LUMEN_CURRENCY_RATES", '{"usd": 0.9, "GBP": 1.17}')
    rates = Rates.of(CurrencySettings())
    assert rates == Rates("EUR", {"USD": 0.9, "GBP": 1.17})


@pytest.mark.parametrize(
    ("base", "table"),
    [("usd", "{}"), ("USD", '{"EUR": 0}'), ("USD", '{"EUR": -1}'), ("USD", '{"EURO": 1}')],
)
def test_a_bad_table_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch, base: str, table: str
) -> None:
    monkeypatch.setenv("LUMEN_CURRENCY_BASE", base)
    monkeypatch.setenv("LUMEN_CURRENCY_RATES", table)
    with pytest.raises(ValidationError):
        CurrencySettings()
