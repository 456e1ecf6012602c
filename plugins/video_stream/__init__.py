"""The video_stream service: camera-trap and underwater video, files and live streams, into
machine observations, with Camtrap DP and MegaDetector-format outputs (docs/video_stream.md).

Modules: ``db`` (the service's tables), ``source`` (opening files and streams with time limits),
``stream`` (live streams in windows, reconnecting), ``detect`` (background subtraction and noise
suppression), ``tracks`` (regions tracked into events), ``people`` (OpenCV's people detectors),
``pipeline`` (frames to events, checkpointable), ``classify`` (species_id's model on crops),
``jobs`` (the job store: states, progress, leases, checkpoints, cancellation), ``runner`` (the
background task), ``observations`` (events into machine observations), ``camtrap``,
``megadetector``, ``summary``, ``contact_sheet``, ``blur`` (the outputs), ``routes`` (the API),
``commands`` (the CLI), ``plugin`` (the hooks).
"""
