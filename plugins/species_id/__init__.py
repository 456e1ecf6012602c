"""The species_id service."""
