{# Per entity and day: transaction count, exact (decimal) amount sum and largest amount.
   `keys`: the entity's key columns. Decimal sums are exact, so re-runs give identical features
   whatever the thread order. #}
{% macro daily_totals(keys, relation) %}
    select {{ keys | join(', ') }}, day, count(*) as txn_count,
           sum(cast(amount_usd as decimal(18, 2))) as amount_sum,
           max(amount_usd) as amount_max
    from {{ relation }}
    group by {{ keys | join(', ') }}, day
{% endmacro %}

{# Every entity on every covered day that has activity in the 30 days ending with that day. #}
{% macro trailing_spine(keys, daily, days) %}
    select distinct {% for key in keys %}{{ daily }}.{{ key }}, {% endfor %}{{ days }}.day
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

{# Sums of `value` over the 1, 7 and 30 days that end `delay` days before the spine's day `s`,
   as settled_<name>_1d/7d/30d, from rows `d` of those 30 days. #}
{% macro settled_counts(value, delay, name='txn_count') %}
        cast(coalesce(sum({{ value }}) filter (where d.day = s.day - {{ delay }}), 0) as bigint) as settled_{{ name }}_1d,
        cast(coalesce(sum({{ value }}) filter (where d.day > s.day - {{ delay }} - 7), 0) as bigint) as settled_{{ name }}_7d,
        cast(coalesce(sum({{ value }}), 0) as bigint) as settled_{{ name }}_30d
{% endmacro %}

{% macro trailing_join(keys, spine, other, days=30) %}
    from {{ spine }} as s
    join {{ other }} as d
        on {% for key in keys %}d.{{ key }} = s.{{ key }} and {% endfor -%}
        d.day between s.day - {{ days - 1 }} and s.day
{% endmacro %}

{# Per customer, one other key (a device, a country) and day D: how familiar the pair is over
   the 30 days ending with D. A pair absent from this table is new to the customer (or, for a
   transaction without that key, unknown: it reads as missing too). #}
{% macro customer_pair_features(other) %}
{%- set keys = ['customer_id', other] -%}
with txns as (
    select customer_id, {{ other }}, amount_usd, day
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - 29 and {{ end_day() }}
        and {{ other }} is not null  -- a card-present payment may carry no device
),

daily as ({{ daily_totals(keys, 'txns') }}),

days as ({{ covered_days('txns') }}),

spine as ({{ trailing_spine(keys, 'daily', 'days') }}),

windowed as (
    select
        s.customer_id,
        s.{{ other }},
        s.day,
        cast(sum(d.txn_count) as bigint) as txn_count_30d,
        cast(count(*) as bigint) as active_days_30d,
        max(d.amount_max) as amount_max_30d
    {{ trailing_join(keys, 'spine', 'daily') }}
    group by s.customer_id, s.{{ other }}, s.day
)

select
    customer_id,
    {{ other }},
    day,
    {{ end_of_day('day') }} as feature_timestamp,
    txn_count_30d,
    active_days_30d,
    amount_max_30d
from windowed
{% endmacro %}
