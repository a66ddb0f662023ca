"""``otwamp web``: the dashboard over the archive, served by otwamp itself (docs/WEB.md).

``app(location, settings)`` is the aiohttp Application (the agent mounts it in
its own event loop), ``serving(location, settings)`` runs it on
``settings.listen``; ``web_settings`` reads a ``[web]`` table. Needs aiohttp
(the ``agent`` extra).
"""

from otwamp.web.app import app, serving
from otwamp.web.settings import WebSettings, load_web_config, web_settings

__all__ = ["WebSettings", "app", "load_web_config", "serving", "web_settings"]
