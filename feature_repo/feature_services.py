"""Feature services: exactly the features a model version reads."""

from feast import FeatureService
from feature_views import (
    card_velocity,
    customer_country,
    customer_daily,
    customer_device,
    customer_velocity,
    merchant_daily,
    merchant_fraud_reports,
)

fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    features=[
        customer_daily,
        merchant_daily,
        merchant_fraud_reports,
        customer_device,
        customer_country,
        card_velocity,
        customer_velocity,
    ],
    description="Features of the fraud-detector model, version 1.",
)
