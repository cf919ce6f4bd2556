"""The currencies a transaction may carry, and the reference rates that express amounts in USD."""

KNOWN_CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD", "BRL", "NGN", "RUB", "THB")
# Reference FX rates (USD per unit) used to express every amount in USD.
USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1 / 0.92,
    "GBP": 1 / 0.79,
    "CAD": 1 / 1.36,
    "BRL": 1 / 5.0,
    "NGN": 1 / 1500.0,
    "RUB": 1 / 92.0,
    "THB": 1 / 36.0,
}
