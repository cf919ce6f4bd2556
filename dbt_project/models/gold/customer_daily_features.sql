{#- Per customer and day D: spending over the 1, 7 and 30 days ending with D, known at D's end. -#}
with txns as (
    select customer_id, merchant_id, merchant_country, device_id, amount_usd, day
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - 29 and {{ end_day() }}
),

daily as (
    select customer_id, day, count(*) as txn_count,
           -- decimal sums are exact, so re-runs give identical features whatever the thread order
           sum(cast(amount_usd as decimal(18, 2))) as amount_sum,
           max(amount_usd) as amount_max
    from txns
    group by customer_id, day
),

days as ({{ covered_days('txns') }}),

-- every customer on every day of the range with activity in the trailing 30 days
spine as (
    select distinct daily.customer_id, days.day
    from daily
    join days on days.day between daily.day and daily.day + 29
),

windowed as (
    select
        s.customer_id,
        s.day,
        cast(coalesce(sum(d.txn_count) filter (where d.day = s.day), 0) as bigint) as txn_count_1d,
        cast(coalesce(sum(d.txn_count) filter (where d.day > s.day - 7), 0) as bigint) as txn_count_7d,
        cast(sum(d.txn_count) as bigint) as txn_count_30d,
        coalesce(sum(d.amount_sum) filter (where d.day = s.day), 0) as amount_sum_1d,
        coalesce(sum(d.amount_sum) filter (where d.day > s.day - 7), 0) as amount_sum_7d,
        sum(d.amount_sum) as amount_sum_30d,
        sum(d.amount_sum) / sum(d.txn_count) as amount_avg_30d,
        max(d.amount_max) as amount_max_30d
    from spine as s
    join daily as d on d.customer_id = s.customer_id and d.day between s.day - 29 and s.day
    group by s.customer_id, s.day
),

distinct_counts as (
    select
        s.customer_id,
        s.day,
        count(distinct t.merchant_id) as distinct_merchants_30d,
        count(distinct t.merchant_country) as distinct_countries_30d,
        count(distinct t.device_id) as distinct_devices_30d
    from spine as s
    join txns as t on t.customer_id = s.customer_id and t.day between s.day - 29 and s.day
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
    c.distinct_devices_30d
from windowed as w
join distinct_counts as c using (customer_id, day)
