{#- Each transaction with its chargeback, if one has arrived. Labels of the `label_refresh_days`
    before the range are rebuilt too, since chargebacks arrive up to 45 days late. -#}
{{ config(meta={'delta_lookback_days': var('label_refresh_days')}) }}

with txns as (
    select *
    from {{ source('silver', 'transactions') }}
    where day between {{ start_day() }} - {{ var('label_refresh_days') }} and {{ end_day() }}
),

first_reports as (
    select transaction_id, reported_at, reason_code
    from {{ source('silver', 'fraud_reports') }}
    qualify row_number() over (partition by transaction_id order by reported_at, report_id) = 1
)

select
    t.transaction_id,
    t.event_timestamp,
    t.day,
    t.customer_id,
    t.card_id,
    t.merchant_id,
    t.merchant_category,
    t.merchant_country,
    t.device_id,
    t.channel,
    t.amount_usd,
    r.transaction_id is not null as is_fraud,
    r.reported_at,
    r.reason_code,
    round(date_diff('second', t.event_timestamp, r.reported_at) / 86400.0, 3) as label_delay_days
from txns as t
left join first_reports as r using (transaction_id)
