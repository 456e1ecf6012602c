"""Media file names as a client sends them: only a clean base name is kept, never a path, never
control characters, and never more than the column holds (a 500 on PostgreSQL before)."""

from __future__ import annotations

import pytest

from core.media import MAX_FILENAME, safe_filename


def send(make_token, make_observation, client, small_png: bytes, filename: str) -> dict:
    """The media entry as its contributor reads it back (the public may see no name at all)."""
    owner = make_token("contributor", "gamma")
    obs = make_observation("gamma", token=owner, files=[(filename, small_png, "image/png")])
    again = client.get(f"/api/v1/observations/{obs['id']}", headers={"Authorization": f"Bearer {owner}"})
    assert again.status_code == 200
    assert again.json()["media"][0]["filename"] == obs["media"][0]["filename"]
    return obs["media"][0]


def test_a_path_is_stored_as_its_base_name(make_token, make_observation, client, small_png):
    mine = send(make_token, make_observation, client, small_png, "../../../../tmp/pwn.png")
    assert mine["filename"] == "pwn.png"


def test_a_windows_path_and_format_characters_are_dropped(make_token, make_observation, client, small_png):
    mine = send(make_token, make_observation, client, small_png,
                         "C:\\Users\\jane.planted\\Desktop\\fox\u202egnp.\u200bpng")
    assert mine["filename"] == "foxgnp.png"
    assert "jane" not in mine["filename"]


def test_a_300_character_name_is_kept_shortened_with_its_extension(make_token, make_observation, client,
                                                                    small_png):
    mine = send(make_token, make_observation, client, small_png, "é" * 300 + ".png")
    assert len(mine["filename"]) == MAX_FILENAME == 255
    assert mine["filename"] == "é" * 251 + ".png"


@pytest.mark.parametrize("sent,kept", [
    ("pwn.jpg", "pwn.jpg"), ("a/b/c.jpg", "c.jpg"), ("..", None), ("../", None), ("\x00\x01", None),
    ("  fox .jpg  ", "fox .jpg"), ("x" * 400, "x" * 255), (None, None),
])
def test_safe_filename(sent, kept):
    assert safe_filename(sent) == kept


def test_a_refusal_names_the_file_without_its_path(make_token, client, auth):
    import json

    from tests.conftest import draft

    token = make_token("contributor", "gamma")
    response = client.post("/api/v1/projects/gamma/observations", headers=auth(token),
                           data={"draft": json.dumps(draft())},
                           files=[("media", ("../../../../home/jane/empty.jpg", b"", "image/jpeg"))])
    assert response.status_code == 422
    message = response.json()["error"]["details"][0]["message"]
    assert message.startswith("empty.jpg:") and "jane" not in message
