{# The partition range Dagster asks for, as DuckDB dates. #}
{% macro start_day() %}cast('{{ var("start_day") }}' as date){% endmacro %}
{% macro end_day() %}cast('{{ var("end_day") }}' as date){% endmacro %}

{# When a feature of `day` becomes known: the end of that day, in UTC. #}
{% macro end_of_day(day) %}timezone('UTC', cast({{ day }} + 1 as timestamp)){% endmacro %}

{# Every day of the requested range that `relation` covers, one row each; none if it is empty. #}
{% macro covered_days(relation) %}
    select cast(g.day as date) as day
    from (
        select greatest(min(day), {{ start_day() }}) as first_day,
               least(max(day), {{ end_day() }}) as last_day
        from {{ relation }}
        having count(*) > 0
    ) as bounds,
    generate_series(bounds.first_day, bounds.last_day, interval 1 day) as g(day)
{% endmacro %}
