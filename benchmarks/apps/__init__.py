"""Tiny apps that `make bench` synthesizes in fresh processes (whole-app synthesis)."""
