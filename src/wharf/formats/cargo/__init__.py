"""Cargo sparse registries."""
