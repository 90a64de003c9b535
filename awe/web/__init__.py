"""The web application: target processing (form, plan tree, job queue), object pages
with lineage, previews and quality control, calibration timelines, trends, and a
Simple Cone Search, with a JSON API described by an OpenAPI document (``/openapi.json``).

``awe web`` serves it; `create_app` builds it (for uvicorn or a test).
"""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
