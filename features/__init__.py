"""Feature serving: Feast's configuration (`store`), point-in-time offline joins (`offline`), the
online lookup (`lookup`, over `views`, `stores` and `keys`) and the velocity features
(`velocity`); no Dagster imports."""
