"""Headless CRM: a typed JSON API for sales teams."""

__version__ = "0.1.0"
