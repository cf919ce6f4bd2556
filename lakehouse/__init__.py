"""Landing, Delta IO, silver rules and contracts: the lakehouse logic, free of Dagster."""
