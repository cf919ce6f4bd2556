{# Each reported transaction once, with its first report's time. #}
{% macro first_reports() %}
    select transaction_id, min(reported_at) as reported_at
    from {{ source('silver', 'fraud_reports') }}
    group by transaction_id
{% endmacro %}
