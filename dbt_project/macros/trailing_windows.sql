{# Per entity and day: transaction count, exact (decimal) amount sum and largest amount.
   Decimal sums are exact, so re-runs give identical features whatever the thread order. #}
{% macro daily_totals(entity, relation) %}
    select {{ entity }}, day, count(*) as txn_count,
           sum(cast(amount_usd as decimal(18, 2))) as amount_sum,
           max(amount_usd) as amount_max
    from {{ relation }}
    group by {{ entity }}, day
{% endmacro %}

{# Every entity on every covered day that has activity in the 30 days ending with that day. #}
{% macro trailing_spine(entity, daily, days) %}
    select distinct {{ daily }}.{{ entity }}, {{ days }}.day
    from {{ daily }}
    join {{ days }} on {{ days }}.day between {{ daily }}.day and {{ daily }}.day + 29
{% endmacro %}

{# Counts over the 1, 7 and 30 days ending with the spine's day, from spine `s` joined to the
   daily totals `d` of the trailing 30 days (see trailing_join). #}
{% macro trailing_counts() %}
        cast(coalesce(sum(d.txn_count) filter (where d.day = s.day), 0) as bigint) as txn_count_1d,
        cast(coalesce(sum(d.txn_count) filter (where d.day > s.day - 7), 0) as bigint) as txn_count_7d,
        cast(sum(d.txn_count) as bigint) as txn_count_30d,
        sum(d.amount_sum) / sum(d.txn_count) as amount_avg_30d
{% endmacro %}

{% macro trailing_join(entity, spine, other, days=30) %}
    from {{ spine }} as s
    join {{ other }} as d
        on d.{{ entity }} = s.{{ entity }} and d.day between s.day - {{ days - 1 }} and s.day
{% endmacro %}
