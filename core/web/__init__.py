"""The pages the engine serves itself, with no build step and nothing from a CDN: the staff
console under ``/console`` and the public map under ``/map`` (:func:`core.web.site.install_web`).

Pages are server-rendered Jinja2 templates (``templates/``), translated with gettext catalogues
read from ``locale/<language>/*.po`` (``core.web.i18n``); signed-in staff carry a signed,
``HttpOnly``, ``SameSite`` session cookie and every form a CSRF token (``core.web.session``);
Leaflet and its marker clustering come from the ``xstatic-*`` packages (``core.web.assets``).
"""
