{#- Per customer, merchant country and day D: how often the customer used it over the 30 days ending with D. -#}
{{ config(meta={'delta_lookahead_days': 29}) }}
{{ customer_pair_features('merchant_country') }}
