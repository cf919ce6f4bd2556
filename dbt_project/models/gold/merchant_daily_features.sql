{#- Per merchant and day D: volume, card diversity and the fraud rate from chargebacks known at D's
    end; and the settled windows: the 1, 7 and 30 days that end `settled_delay_days` before D,
    whose reports have (mostly) arrived, so that a fraud wave at a merchant is not diluted by the
    last days' transactions that no one has reported yet. -#}
{%- set delay = var('settled_delay_days') -%}
{{ config(meta={'delta_lookahead_days': 29 + delay}) }}
with txns as (
    select transaction_id, merchant_id, card_id, amount_usd, day
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - 29 - {{ delay }} and {{ end_day() }}
),

daily as ({{ daily_totals(['merchant_id'], 'txns') }}),

reported as (
    select t.merchant_id, t.day, r.reported_at
    from txns as t
    join ({{ first_reports() }}) as r using (transaction_id)
),

days as ({{ covered_days('txns') }}),

spine as ({{ trailing_spine(['merchant_id'], 'daily', 'days') }}),

windowed as (
    select s.merchant_id, s.day, {{ trailing_counts() }}
    {{ trailing_join(['merchant_id'], 'spine', 'daily') }}
    group by s.merchant_id, s.day
),

cards as (
    select
        s.merchant_id,
        s.day,
        count(distinct d.card_id) filter (where d.day = s.day) as distinct_cards_1d,
        count(distinct d.card_id) as distinct_cards_7d
    {{ trailing_join(['merchant_id'], 'spine', 'txns', days=7) }}
    group by s.merchant_id, s.day
),

known_fraud as (
    select s.merchant_id, s.day, count(*) as fraud_reports_known_30d
    {{ known_by_day_end('merchant_id') }}
    group by s.merchant_id, s.day
),

settled as (
    select
        s.merchant_id,
        s.day,
        {{ settled_counts('d.txn_count', delay) }}
    from spine as s
    join daily as d
        on d.merchant_id = s.merchant_id
        and d.day between s.day - {{ delay }} - 29 and s.day - {{ delay }}
    group by s.merchant_id, s.day
),

settled_fraud as (
    select
        s.merchant_id,
        s.day,
        {{ settled_counts('1', delay, 'fraud_count') }}
    {{ known_by_day_end('merchant_id', alias='d', delay=delay) }}
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
    coalesce(f.fraud_reports_known_30d, 0) / w.txn_count_30d as fraud_rate_30d,
    {%- for window in ['1d', '7d', '30d'] %}
    coalesce(st.settled_txn_count_{{ window }}, 0) as settled_txn_count_{{ window }},
    coalesce(sf.settled_fraud_count_{{ window }}, 0) as settled_fraud_count_{{ window }},
    coalesce(sf.settled_fraud_count_{{ window }} / nullif(st.settled_txn_count_{{ window }}, 0), 0)
        as settled_fraud_rate_{{ window }}{{ ',' if not loop.last }}
    {%- endfor %}
from windowed as w
left join cards as c using (merchant_id, day)
left join known_fraud as f using (merchant_id, day)
left join settled as st using (merchant_id, day)
left join settled_fraud as sf using (merchant_id, day)
