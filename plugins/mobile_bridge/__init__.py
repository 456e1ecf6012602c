"""The mobile_bridge service."""
