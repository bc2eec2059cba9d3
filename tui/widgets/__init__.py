"""Dumb widgets: they show what they are given and post messages; screens own the logic."""
