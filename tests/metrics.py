"""What a service's /metrics says, read with prometheus_client's own parser
rather than patterns over the text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = dict[str, str]


def samples(text: str, name: str) -> list[tuple[Labels, float]]:
    """Every sample of this name (e.g. `http_requests_total`, or a histogram's
    `..._bucket`): its labels and its value."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def metric_types(text: str) -> dict[str, str]:
    """Each metric family's type by its name: `http_requests` is a "counter"
    (its samples are `http_requests_total`)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
