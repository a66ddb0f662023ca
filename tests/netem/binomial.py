"""The exact binomial interval the loss checks use."""

import math


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central ``confidence`` interval of a Binomial(n, p) count, exactly."""
    tail = (1 - confidence) / 2
    cumulative, low, high = 0.0, None, n
    for k in range(n + 1):
        cumulative += math.exp(
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + (k * math.log(p) if k else 0.0) + ((n - k) * math.log1p(-p) if n > k else 0.0)
        )  # fmt: skip
        if low is None and cumulative >= tail:
            low = k
        if cumulative >= 1 - tail:
            high = k
            break
    return (low or 0), high
