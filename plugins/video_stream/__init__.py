"""The video_stream service."""
