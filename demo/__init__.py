"""`make demo` (`runner`), the Dagster processes it starts (`dagster_processes`) and the local
services it, the tests and the benchmarks start when they are down (`services`)."""
