"""Clients: the profile and its contacts, validation, currencies and reference data."""
