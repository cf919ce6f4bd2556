-- A chargeback is reported after the transaction it disputes, never before.
select transaction_id
from {{ ref('transaction_labels') }}
where is_fraud and reported_at < event_timestamp
