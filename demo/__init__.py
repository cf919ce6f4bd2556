"""`make demo` (`runner`: the stages; `console`: what the terminal shows; `verdict`: whether
the loop closed), the Dagster processes it starts (`dagster_processes`) and the local services
the tests and the benchmarks start when they are down (`services`)."""
