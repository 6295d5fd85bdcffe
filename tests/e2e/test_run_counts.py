"""`GET /api/cairn/v1/experiments/run-counts`: the UI's experiment list shows run counts without
reading the runs. Counts follow the view type, keep the order asked, and bad requests are refused."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.cairn_only

ROUTE = "/api/cairn/v1/experiments/run-counts"


def test_counts_follow_the_view_and_the_order_asked(client, tracking, unique):
    busy = client.create_experiment(f"counted-{unique}")
    empty = client.create_experiment(f"empty-{unique}")
    runs = [client.create_run(busy).info.run_id for _ in range(3)]
    client.delete_run(runs[0])

    def counts(**query):
        answer = requests.get(tracking.url + ROUTE, params={"experiment_ids": [empty, busy], **query}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()["counts"]

    assert counts() == [{"experiment_id": empty, "runs": 0}, {"experiment_id": busy, "runs": 2}]
    assert counts(view_type="DELETED_ONLY")[1] == {"experiment_id": busy, "runs": 1}
    assert counts(view_type="ALL")[1] == {"experiment_id": busy, "runs": 3}


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "INVALID_PARAMETER_VALUE"),
        ({"experiment_ids": [str(n) for n in range(101)]}, 400, "INVALID_PARAMETER_VALUE"),
        ({"experiment_ids": "0", "view_type": "SOME"}, 400, "INVALID_PARAMETER_VALUE"),
        ({"experiment_ids": "987654321"}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"experiment_ids": "not-a-number"}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_bad_requests_get_a_precise_error(tracking, query, status, code):
    answer = requests.get(tracking.url + ROUTE, params=query, timeout=30)
    assert (answer.status_code, answer.json()["error_code"]) == (status, code), answer.text
