"""Demo function: writes a few log lines per invocation so that the pipeline has something to ship."""

import json
import logging
import os
import random

logger = logging.getLogger()
logger.setLevel(logging.INFO)

ORDERS = ["coffee", "tea", "water", "juice"]


def handler(event, context):
    order = random.choice(ORDERS)
    logger.info("received scheduled event %s", event.get("id", "manual"))
    print(json.dumps({"level": "info", "msg": "order served", "order": order, "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}))
    if random.random() < 0.1:
        logger.warning("order %s took longer than expected", order)
    return {"order": order}
