"""``POST /api/v1/identify`` through the real app, with a token."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.tokens import create_token
from tests.plugins.species_id.conftest import CAT_CLASSES, DEFAULT

URL = "/api/v1/identify"


@pytest.fixture
def engine(species_engine: Callable[..., Engine]) -> Engine:
    return species_engine(max_upload_bytes=2_000_000)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def headers(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(engine, 'contributor', 'wildlife', 'app').token}"}


def post(client: TestClient, headers: dict[str, str], *photos: tuple[str, bytes], **fields: Any) -> Any:
    files = [("images", (name, data, "application/octet-stream")) for name, data in photos]
    data = {k: v for k, v in fields.items() if k != "organs"}
    if "organs" in fields:
        data["organs"] = fields["organs"]
    return client.post(URL, files=files, data=data, headers=headers)


def test_a_token_is_needed(client: TestClient, shots: dict[str, bytes]) -> None:
    response = post(client, {}, ("cat.jpg", shots["cat"]))
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    wrong = post(client, {"Authorization": "Bearer obs_nope"}, ("cat.jpg", shots["cat"]))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"


def test_the_cat_in_plantnet_shape(client: TestClient, headers: dict[str, str], shots: dict[str, bytes]) -> None:
    response = post(client, headers, ("cat.jpg", shots["cat"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bestMatch"] == "Felis catus" and body["rejected"] is False
    assert body["model"] == {"name": DEFAULT, "version": "57934424.r1"} and body["version"] == "57934424.r1"
    assert body["query"] == {"images": ["cat.jpg"], "organs": ["auto"], "model": DEFAULT, "top_k": 5,
                             "no_reject": False}
    assert isinstance(body["elapsedMs"], float) and body["elapsedMs"] > 0
    first = body["results"][0]
    assert first["score"] > 0.8 and first["gbif"] == {"id": None}
    species = first["species"]
    assert species["scientificNameWithoutAuthor"] == species["scientificName"] == "Felis catus"
    assert species["genus"]["scientificName"] == "Felis" and set(species["commonNames"]) <= CAT_CLASSES
    assert len(body["results"]) == 5 and all(r["organism"] for r in body["results"])
    assert body["images"] == [{"name": "cat.jpg", "bestMatch": "Felis catus", "score": first["score"],
                               "rejected": False}]


def test_coffee_is_rejected_unless_no_reject(client: TestClient, headers: dict[str, str],
                                             shots: dict[str, bytes]) -> None:
    rejected = post(client, headers, ("coffee.jpg", shots["coffee"])).json()
    assert rejected["rejected"] is True and rejected["results"] == [] and rejected["bestMatch"] == ""
    assert rejected["message"] == "no organism recognised" and rejected["bestGuess"]["name"] == "espresso"
    listed = post(client, headers, ("coffee.jpg", shots["coffee"]), no_reject="true", top_k="2").json()
    assert listed["rejected"] is False and len(listed["results"]) == 2
    assert listed["results"][0]["species"]["commonNames"] == ["espresso"]
    assert listed["results"][0]["species"]["scientificName"] is None and listed["bestMatch"] == "espresso"


def test_several_images_with_organs(client: TestClient, headers: dict[str, str], shots: dict[str, bytes]) -> None:
    body = post(client, headers, ("a.jpg", shots["cat"]), ("b.jpg", shots["cat_again"]),
                organs=["auto", "other"]).json()
    assert body["query"]["organs"] == ["auto", "other"] and body["bestMatch"] == "Felis catus"
    assert [i["name"] for i in body["images"]] == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize(
    ("photos", "fields", "path", "code"),
    [
        ([], {}, ["images"], "image_count"),
        ([("cat.jpg", "cat")] * 6, {}, ["images"], "image_count"),
        ([("cat.jpg", "cat")], {"top_k": "0"}, ["top_k"], "out_of_range"),
        ([("cat.jpg", "cat")], {"top_k": "many"}, ["top_k"], "invalid_integer"),
        ([("cat.jpg", "cat")], {"no_reject": "perhaps"}, ["no_reject"], "invalid_boolean"),
        ([("cat.jpg", "cat")], {"organs": ["leaf", "flower"]}, ["organs"], "organs_mismatch"),
        ([("cat.jpg", "cat")], {"organs": ["paw"]}, ["organs", 0], "unknown_organ"),
        ([("cat.jpg", "cat")], {"model": "nope"}, ["model"], "unknown_model"),
        ([("cat.jpg", "cat"), ("notes.txt", "text")], {}, ["images", 1], "media_unknown_type"),
        ([("empty.jpg", "")], {}, ["images", 0], "media_empty"),
        ([("broken.jpg", "damaged")], {}, ["images", 0], "media_corrupt"),
        ([("bomb.png", "bomb")], {}, ["images", 0], "media_too_many_pixels"),
    ],
    ids=["none", "six", "top_k-0", "top_k-text", "no_reject", "organs-count", "organ", "model", "text", "empty",
         "damaged", "bomb"],
)
def test_bad_requests_get_the_json_error_shape(client: TestClient, headers: dict[str, str], shots: dict[str, bytes],
                                              photos: list, fields: dict, path: list, code: str) -> None:
    files = [(name, shots[key] if key else b"") for name, key in photos]
    if not files:  # multipart with a field but no file
        response = client.post(URL, files={"model": (None, DEFAULT)}, headers=headers)
    else:
        response = post(client, headers, *files, **fields)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and error["message"].startswith("the request was refused")
    assert {"path": path, "code": code} in [{"path": d["path"], "code": d["code"]} for d in error["details"]]


def test_too_large(client: TestClient, headers: dict[str, str], shots: dict[str, bytes]) -> None:
    big = shots["cat"] + b"\x00" * 2_100_000  # over the engine's 2 MB limit of this test
    response = post(client, headers, ("big.jpg", big))
    assert response.status_code == 413 and response.json()["error"]["details"][0]["code"] == "media_too_large"
    huge = post(client, headers, *[("big.jpg", big)] * 6)  # the whole body is over 5 photos' worth
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"


def test_not_multipart(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post(URL, json={"images": []}, headers=headers)
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"


def test_a_broken_model_answers_503(species_engine: Callable[..., Engine], tmp_path, shots: dict[str, bytes]) -> None:
    from tests.plugins.species_id.conftest import species_registry

    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"PK\x03\x04 a zip file, not a network")
    (tmp_path / "labels.txt").write_text("a\n")
    config = {"models": [{"name": "fake", "onnx": str(fake), "labels": str(tmp_path / "labels.txt"),
                          "input_size": 224}]}
    engine = species_engine(species_registry({"wildlife": {}}, config))
    token = create_token(engine, "operator").token
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        response = post(client, {"Authorization": f"Bearer {token}"}, ("cat.jpg", shots["cat"]))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert "not an ONNX model" in response.json()["error"]["message"]


def test_documented_in_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["images"] and schema["properties"]["images"]["maxItems"] == 5
    assert {"200", "401", "413", "422", "503"} <= set(operation["responses"])


@pytest.mark.parametrize("value", ["maybe", "2", "1", "0", "yes", "on", "True", "FALSE", "", " true"])
def test_no_reject_is_a_strict_boolean(client: TestClient, headers: dict[str, str], shots: dict[str, bytes],
                                       value: str) -> None:
    response = post(client, headers, ("cat.jpg", shots["cat"]), no_reject=value)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == ["no_reject"] and detail["code"] == "invalid_boolean"


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_no_reject_true_and_false(client: TestClient, headers: dict[str, str], shots: dict[str, bytes],
                                  value: str, expected: bool) -> None:
    response = post(client, headers, ("cat.jpg", shots["cat"]), no_reject=value)
    assert response.status_code == 200 and response.json()["query"]["no_reject"] is expected


@pytest.mark.parametrize("value", ["5_0", " 5", "+5", "5.0", "", "1" * 30])
def test_top_k_is_a_strict_integer(client: TestClient, headers: dict[str, str], shots: dict[str, bytes],
                                   value: str) -> None:
    response = post(client, headers, ("cat.jpg", shots["cat"]), top_k=value)
    assert response.status_code == 422 and response.json()["error"]["details"][0]["path"] == ["top_k"]


def test_organs_as_the_schema_says(client: TestClient, headers: dict[str, str], shots: dict[str, bytes]) -> None:
    schema = client.get("/openapi.json").json()["paths"][URL]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["properties"]
    assert schema["organs"]["maxItems"] == schema["images"]["maxItems"] == 5
    assert schema["no_reject"]["type"] == "boolean" and "true" in schema["no_reject"]["description"]
    photos = [("cat.jpg", shots["cat"])] * 5
    assert post(client, headers, *photos, organs=["leaf"] * 5).status_code == 200
    for count in (1, 4, 6):  # none, or exactly one per image
        response = post(client, headers, *photos, organs=["leaf"] * count)
        assert response.status_code == 422, count
        assert response.json()["error"]["details"][0]["code"] == "organs_mismatch"
    as_file = client.post(URL, files=[("images", ("cat.jpg", shots["cat"], "image/jpeg")),
                                      ("organs", ("leaf.txt", b"leaf", "text/plain"))], headers=headers)
    assert as_file.status_code == 422 and as_file.json()["error"]["details"][0]["code"] == "not_a_field"


@pytest.mark.parametrize("body", [
    b"no boundary here",
    b"--XyZ\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\n\r\nabc",  # no closing line
    b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XyZ--\r\n",  # no name
    b"--XyZ\r\nnot a header\r\n\r\nabc\r\n--XyZ--\r\n",
], ids=["no-boundary", "unclosed", "no-name", "bad-header"])
def test_malformed_multipart_is_400(client: TestClient, headers: dict[str, str], body: bytes) -> None:
    response = client.post(URL, content=body, headers={**headers, "Content-Type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_multipart"


def test_multipart_with_a_preamble_and_quoted_names(client: TestClient, headers: dict[str, str],
                                                    shots: dict[str, bytes]) -> None:
    body = (b"a preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"images\"; filename=\"my \\\"cat\\\".jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + shots["cat"] + b"\r\n--XyZ\r\n"
            b"Content-Disposition: form-data; name=\"top_k\"\r\n\r\n2\r\n--XyZ--\r\nan epilogue")
    response = client.post(URL, content=body, headers={**headers, "Content-Type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["query"]["images"] == ['my "cat".jpg'] and answer["query"]["top_k"] == 2
    assert answer["bestMatch"] == "Felis catus"
