"""Scoring: the champion's bento, which the online API serves."""

import time

import dagster as dg

from assets.registry import CHAMPION

BENTO = dg.AssetKey(["scoring", "bento"])


@dg.asset(key=BENTO, group_name="scoring", deps=[CHAMPION], kinds={"bentoml"})
def bento(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The champion copied into BentoML's model store and its scoring bento, tagged by version."""
    from serving.bento import build_in_subprocess

    started = time.perf_counter()
    built = build_in_subprocess()
    context.log.info(f"{built['bento_tag']} ({'built' if built['built'] else 'already built'})")
    return dg.MaterializeResult(
        metadata={
            "model_tag": built["model_tag"],
            "bento_tag": built["bento_tag"],
            "built": built["built"],
            "serve": dg.MetadataValue.md(
                f"`bentoml serve {built['bento_tag']}` or `make serve` (FRAUD_API_KEY set)"
            ),
            "duration_s": round(time.perf_counter() - started, 1),
        }
    )
