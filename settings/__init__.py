"""The settings every layer reads: where embedded state lives (`settings.env`), the stream's
address (`settings.stream`) and the currencies the platform accepts (`settings.currencies`).
Imports nothing of the project."""
