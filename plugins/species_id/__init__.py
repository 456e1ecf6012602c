"""The species_id service: species suggestions for photos, from ONNX classifiers.

``plugin`` holds the hooks (entry point ``observatory: species_id``); ``catalogue`` the models on
offer; ``inference`` decoding, preprocessing, sessions and ranking; ``photo`` the photo checks;
``service`` the enrichment and the quality flags; ``routes`` ``POST /api/v1/identify``; ``kit``
and ``evaluate`` the ``observatory models`` commands; ``model_build`` the default model, built
without torch. See docs/species_id.md.
"""
