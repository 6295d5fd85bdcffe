"""Experiments through the real client: create, read, search, rename, delete, restore, tags."""

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException


def test_default_experiment_exists(client):
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == "active"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_get_and_get_by_name(client, unique):
    name = f"create-{unique}"
    exp_id = client.create_experiment(name, tags={"team": "vision", "owner": "ada"})
    assert isinstance(exp_id, str) and exp_id != "0"

    exp = client.get_experiment(exp_id)
    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.tags == {"team": "vision", "owner": "ada"}
    assert exp.artifact_location  # the server chose one
    assert exp.creation_time > 0
    assert exp.last_update_time >= exp.creation_time

    assert client.get_experiment_by_name(name).experiment_id == exp_id
    assert client.get_experiment_by_name(f"missing-{unique}") is None


def test_explicit_artifact_location_is_kept(client, unique):
    exp_id = client.create_experiment(f"loc-{unique}", artifact_location=f"file:///tmp/loc-{unique}")
    assert client.get_experiment(exp_id).artifact_location == f"file:///tmp/loc-{unique}"


def test_fluent_set_experiment_creates_once(tracking, unique):
    name = f"fluent-{unique}"
    first = mlflow.set_experiment(name)
    again = mlflow.set_experiment(name)
    assert first.experiment_id == again.experiment_id
    assert mlflow.get_experiment_by_name(name).experiment_id == first.experiment_id


def test_duplicate_name_is_rejected(client, unique):
    name = f"dup-{unique}"
    client.create_experiment(name)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_rename(client, unique):
    exp_id = client.create_experiment(f"old-{unique}")
    client.rename_experiment(exp_id, f"new-{unique}")
    assert client.get_experiment(exp_id).name == f"new-{unique}"
    assert client.get_experiment_by_name(f"old-{unique}") is None
    assert client.get_experiment_by_name(f"new-{unique}").experiment_id == exp_id


def test_rename_onto_a_taken_name_is_rejected(client, unique):
    a = client.create_experiment(f"a-{unique}")
    client.create_experiment(f"b-{unique}")
    with pytest.raises(MlflowException) as e:
        client.rename_experiment(a, f"b-{unique}")
    # MLflow's SQL store surfaces the unique-constraint violation as a generic BAD_REQUEST; the
    # more precise RESOURCE_ALREADY_EXISTS is equally a 400 to the client, so both are accepted.
    assert e.value.error_code in ("RESOURCE_ALREADY_EXISTS", "BAD_REQUEST")
    assert e.value.get_http_status_code() == 400
    assert client.get_experiment(a).name == f"a-{unique}"


def test_delete_and_restore(client, unique):
    name = f"del-{unique}"
    exp_id = client.create_experiment(name)
    client.delete_experiment(exp_id)

    # A deleted experiment is tombstoned: still readable, by id and by name, but hidden from
    # the default (active-only) search.
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    flt = f"name = '{name}'"
    assert client.search_experiments(filter_string=flt) == []
    assert [e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=flt)] == [exp_id]
    assert [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, filter_string=flt)] == [exp_id]

    # Its name stays taken while it is deleted, as in MLflow.
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert e.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert [e.experiment_id for e in client.search_experiments(filter_string=flt)] == [exp_id]


def test_experiment_tags(client, unique):
    exp_id = client.create_experiment(f"tags-{unique}", tags={"a": "1"})
    client.set_experiment_tag(exp_id, "b", "2")
    client.set_experiment_tag(exp_id, "a", "overwritten")
    assert client.get_experiment(exp_id).tags == {"a": "overwritten", "b": "2"}
    client.delete_experiment_tag(exp_id, "a")
    assert client.get_experiment(exp_id).tags == {"b": "2"}


def test_search_filter_order_and_pagination(client, unique):
    prefix = f"srch-{unique}"
    ids = {}
    for i, color in enumerate(["red", "blue", "red", "green", "red"]):
        ids[i] = client.create_experiment(f"{prefix}-{i}", tags={"color": color, "idx": str(i)})

    by_name = client.search_experiments(filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"])
    assert [e.name for e in by_name] == [f"{prefix}-{i}" for i in (4, 3, 2, 1, 0)]

    reds = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%' AND tags.color = 'red'", order_by=["name ASC"]
    )
    assert [e.experiment_id for e in reds] == [ids[0], ids[2], ids[4]]

    # ILIKE is case-insensitive, LIKE is not.
    upper = prefix.upper()
    assert client.search_experiments(filter_string=f"name LIKE '{upper}-%'") == []
    assert len(client.search_experiments(filter_string=f"name ILIKE '{upper}-%'")) == 5

    # Walk all pages of two and check the union is exactly the five, in order, without repeats.
    seen, token = [], None
    pages = 0
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"], max_results=2, page_token=token
        )
        assert len(page) <= 2
        seen += [e.name for e in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == [f"{prefix}-{i}" for i in range(5)]
    assert pages == 3


def test_search_order_by_creation_time_and_id(client, unique):
    prefix = f"ord-{unique}"
    created = [client.create_experiment(f"{prefix}-{i}") for i in range(3)]
    newest_first = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["creation_time DESC", "experiment_id DESC"]
    )
    assert [e.experiment_id for e in newest_first] == list(reversed(created))


def test_search_by_tag_like(client, unique):
    exp_id = client.create_experiment(f"tl-{unique}", tags={"note": f"hello-{unique}-world"})
    found = client.search_experiments(filter_string=f"tags.note LIKE '%{unique}%'")
    assert [e.experiment_id for e in found] == [exp_id]
