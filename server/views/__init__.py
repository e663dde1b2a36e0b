"""Blueprints: the JSON API, health check and the web pages."""
