{#- Per customer, merchant country and day D: how often the customer used it over the 30 days ending with D. -#}
{{ customer_pair_features('merchant_country') }}
