"""Sample controllers."""
