{#- Per merchant and day D: volume, card diversity and the fraud rate from chargebacks known at D's end. -#}
with txns as (
    select transaction_id, merchant_id, card_id, amount_usd, day
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - 29 and {{ end_day() }}
),

first_reports as (
    select transaction_id, min(reported_at) as reported_at
    from {{ source('silver', 'fraud_reports') }}
    group by transaction_id
),

daily as (
    select merchant_id, day, count(*) as txn_count,
           -- decimal sums are exact, so re-runs give identical features whatever the thread order
           sum(cast(amount_usd as decimal(18, 2))) as amount_sum
    from txns
    group by merchant_id, day
),

reported as (
    select t.merchant_id, t.day, r.reported_at
    from txns as t
    join first_reports as r using (transaction_id)
),

days as ({{ covered_days('txns') }}),

spine as (
    select distinct daily.merchant_id, days.day
    from daily
    join days on days.day between daily.day and daily.day + 29
),

windowed as (
    select
        s.merchant_id,
        s.day,
        cast(coalesce(sum(d.txn_count) filter (where d.day = s.day), 0) as bigint) as txn_count_1d,
        cast(coalesce(sum(d.txn_count) filter (where d.day > s.day - 7), 0) as bigint) as txn_count_7d,
        cast(sum(d.txn_count) as bigint) as txn_count_30d,
        sum(d.amount_sum) / sum(d.txn_count) as amount_avg_30d
    from spine as s
    join daily as d on d.merchant_id = s.merchant_id and d.day between s.day - 29 and s.day
    group by s.merchant_id, s.day
),

cards as (
    select
        s.merchant_id,
        s.day,
        count(distinct t.card_id) filter (where t.day = s.day) as distinct_cards_1d,
        count(distinct t.card_id) as distinct_cards_7d
    from spine as s
    join txns as t on t.merchant_id = s.merchant_id and t.day between s.day - 6 and s.day
    group by s.merchant_id, s.day
),

-- only chargebacks already reported when the day ends count: no look-ahead
known_fraud as (
    select s.merchant_id, s.day, count(*) as fraud_reports_known_30d
    from spine as s
    join reported as r
        on r.merchant_id = s.merchant_id
        and r.day between s.day - 29 and s.day
        and r.reported_at < {{ end_of_day('s.day') }}
    group by s.merchant_id, s.day
)

select
    w.merchant_id,
    w.day,
    {{ end_of_day('w.day') }} as feature_timestamp,
    w.txn_count_1d,
    w.txn_count_7d,
    w.txn_count_30d,
    cast(round(w.amount_avg_30d, 2) as double) as amount_avg_30d,
    coalesce(c.distinct_cards_1d, 0) as distinct_cards_1d,
    coalesce(c.distinct_cards_7d, 0) as distinct_cards_7d,
    coalesce(f.fraud_reports_known_30d, 0) as fraud_reports_known_30d,
    coalesce(f.fraud_reports_known_30d, 0) / w.txn_count_30d as fraud_rate_30d
from windowed as w
left join cards as c using (merchant_id, day)
left join known_fraud as f using (merchant_id, day)
