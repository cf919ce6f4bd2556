{# Each reported transaction once, with its first report's time. #}
{% macro first_reports() %}
    select transaction_id, min(reported_at) as reported_at
    from {{ source('silver', 'fraud_reports') }}
    group by transaction_id
{% endmacro %}

{# Spine `s` joined to the reported transactions `reported` (entity `key`, `day`,
   `reported_at`) of the 30 days that end `delay` days before each spine day, counting only the
   reports already in when that day ends: no look-ahead. The joined rows are `alias`. #}
{% macro known_by_day_end(key, alias='r', delay=0) %}
    from spine as s
    join reported as {{ alias }}
        on {{ alias }}.{{ key }} = s.{{ key }}
        and {{ alias }}.day between s.day - {{ delay }} - 29 and s.day - {{ delay }}
        and {{ alias }}.reported_at < {{ end_of_day('s.day') }}
{% endmacro %}
