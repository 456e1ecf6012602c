"""The odour service."""
