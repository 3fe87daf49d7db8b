"""HTTP views served by every worker: each module's ROUTES, put on the app by register()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderflow.auth.guard import Guard
from orderflow.views import admin, dead_letters, inventory, metrics, orders, products, sagas, search

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

MODULES = (orders, inventory, products, search, sagas, admin, dead_letters, metrics)


def register(app: OrderflowApp) -> None:
    # Before any route: a worker without a way to verify tokens must not serve the API.
    app.guard = Guard.from_settings(app.settings)
    for module in MODULES:
        for path, view in module.ROUTES.items():
            app.page(path)(view)
