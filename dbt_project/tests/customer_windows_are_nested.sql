-- A shorter window can never hold more than a longer one that contains it.
select customer_id, day
from {{ ref('customer_daily_features') }}
where txn_count_1d > txn_count_7d or txn_count_7d > txn_count_30d
   or amount_sum_1d > amount_sum_7d + 0.01 or amount_sum_7d > amount_sum_30d + 0.01
