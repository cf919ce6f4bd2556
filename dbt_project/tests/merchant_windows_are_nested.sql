-- A shorter window can never hold more than a longer one that contains it; a rate is a share.
select merchant_id, day
from {{ ref('merchant_daily_features') }}
where txn_count_1d > txn_count_7d or txn_count_7d > txn_count_30d
   or distinct_cards_1d > distinct_cards_7d or fraud_rate_30d > 1
