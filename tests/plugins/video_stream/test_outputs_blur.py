"""Faces blurred before a keyframe of people leaves the engine: on scikit-image's astronaut
(Eileen Collins, a real face) the face's detail is gone and the rest of the picture untouched;
a picture with no one in it comes back unchanged."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from plugins.video_stream.blur import blur_faces, find_faces

# where the astronaut's face is in the 512 x 512 photo (x0, y0, x1, y1), measured by eye
FACE = (180, 70, 265, 160)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _detail(image: np.ndarray) -> float:
    """Fine detail: the variance of the Laplacian of the grey image."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_the_astronauts_face_is_found_and_its_detail_is_gone() -> None:
    photo = _bgr(skdata.astronaut())
    faces = find_faces(photo)
    assert len(faces) == 1
    x, y, w, h = faces[0]
    x0, y0, x1, y1 = FACE
    assert x <= (x0 + x1) / 2 <= x + w and y <= (y0 + y1) / 2 <= y + h   # the box holds the face

    blurred = blur_faces(photo)
    face_before, face_after = photo[y0:y1, x0:x1], blurred[y0:y1, x0:x1]
    assert _detail(face_after) < 0.02 * _detail(face_before)          # eyes, mouth: gone
    assert np.abs(face_after.astype(int) - face_before.astype(int)).mean() > 10
    # the rest of the picture (the flag, the suit's lower part) is untouched, the input too
    assert np.array_equal(blurred[300:, :150], photo[300:, :150])
    assert np.array_equal(photo, _bgr(skdata.astronaut()))


def test_the_face_is_blurred_in_a_small_keyframe_too() -> None:
    """A person at camera-trap scale: the astronaut photo at 200 x 200."""
    small = cv2.resize(_bgr(skdata.astronaut()), (200, 200), interpolation=cv2.INTER_AREA)
    blurred = blur_faces(small)
    x0, y0, x1, y1 = (int(v * 200 / 512) for v in FACE)
    assert _detail(blurred[y0:y1, x0:x1]) < 0.1 * _detail(small[y0:y1, x0:x1])


def test_a_person_too_small_for_the_cascades_is_blurred_from_their_box() -> None:
    """A camera trap's person: the astronaut 96 px tall on grass (her face about 17 px, below
    the cascades' 24 px). The caller's box of the person: its upper part is blurred."""
    scene = cv2.cvtColor(skdata.grass(), cv2.COLOR_GRAY2BGR)[:240, :320].copy()
    person = cv2.resize(_bgr(skdata.astronaut())[:, 100:420], (60, 96), interpolation=cv2.INTER_AREA)
    scene[100:196, 130:190] = person
    assert find_faces(scene) == []
    box = [130 / 320, 100 / 240, 60 / 320, 96 / 240]
    blurred = blur_faces(scene, people=[box])
    head, legs = (slice(102, 128), slice(132, 188)), (slice(150, 196), slice(130, 190))
    assert _detail(blurred[head]) < 0.1 * _detail(scene[head])
    assert np.array_equal(blurred[legs], scene[legs])


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_a_picture_with_no_one_comes_back_unchanged(name: str) -> None:
    photo = _bgr(getattr(skdata, name)())
    assert np.array_equal(blur_faces(photo), photo)


def test_blur_faces_refuses_what_is_not_a_colour_picture() -> None:
    with pytest.raises(ValueError):
        blur_faces(skdata.camera())  # grey
