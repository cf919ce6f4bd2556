{#- Per customer and day D: spending over the 1, 7 and 30 days ending with D, known at D's end;
    and the card risk: the customer's frauds of the last 7 and 30 days reported by D's end. -#}
{{ config(meta={'delta_lookahead_days': 29}) }}
with txns as (
    select transaction_id, customer_id, merchant_id, merchant_country, device_id, amount_usd, day
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - 29 and {{ end_day() }}
),

daily as ({{ daily_totals(['customer_id'], 'txns') }}),

days as ({{ covered_days('txns') }}),

spine as ({{ trailing_spine(['customer_id'], 'daily', 'days') }}),

windowed as (
    select
        s.customer_id,
        s.day,
        {{ trailing_counts() }},
        coalesce(sum(d.amount_sum) filter (where d.day = s.day), 0) as amount_sum_1d,
        coalesce(sum(d.amount_sum) filter (where d.day > s.day - 7), 0) as amount_sum_7d,
        sum(d.amount_sum) as amount_sum_30d,
        max(d.amount_max) as amount_max_30d
    {{ trailing_join(['customer_id'], 'spine', 'daily') }}
    group by s.customer_id, s.day
),

distinct_counts as (
    select
        s.customer_id,
        s.day,
        count(distinct d.merchant_id) as distinct_merchants_30d,
        count(distinct d.merchant_country) as distinct_countries_30d,
        count(distinct d.device_id) as distinct_devices_30d
    {{ trailing_join(['customer_id'], 'spine', 'txns') }}
    group by s.customer_id, s.day
),

reported as (
    select t.customer_id, t.day, r.reported_at
    from txns as t
    join ({{ first_reports() }}) as r using (transaction_id)
),

known_fraud as (
    select
        s.customer_id,
        s.day,
        count(*) filter (where r.day > s.day - 7) as fraud_reports_known_7d,
        count(*) as fraud_reports_known_30d
    {{ known_by_day_end('customer_id') }}
    group by s.customer_id, s.day
)

select
    w.customer_id,
    w.day,
    {{ end_of_day('w.day') }} as feature_timestamp,
    w.txn_count_1d,
    w.txn_count_7d,
    w.txn_count_30d,
    cast(w.amount_sum_1d as double) as amount_sum_1d,
    cast(w.amount_sum_7d as double) as amount_sum_7d,
    cast(w.amount_sum_30d as double) as amount_sum_30d,
    cast(round(w.amount_avg_30d, 2) as double) as amount_avg_30d,
    w.amount_max_30d,
    c.distinct_merchants_30d,
    c.distinct_countries_30d,
    c.distinct_devices_30d,
    coalesce(f.fraud_reports_known_7d, 0) as fraud_reports_known_7d,
    coalesce(f.fraud_reports_known_30d, 0) as fraud_reports_known_30d
from windowed as w
join distinct_counts as c using (customer_id, day)
left join known_fraud as f using (customer_id, day)
