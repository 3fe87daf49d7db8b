"""HTTP views served by every worker: each module's ROUTES, put on the app by register()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderflow.auth.guard import Guard
from orderflow.views import (
    admin,
    base,
    dead_letters,
    inventory,
    metrics,
    openapi,
    orders,
    products,
    sagas,
    search,
)
from orderflow.views.base import ApiView
from orderflow.views.parameters import path_schemas as path_schemas

if TYPE_CHECKING:
    from orderflow.app import OrderflowApp

MODULES = (orders, inventory, products, search, sagas, admin, dead_letters, metrics, openapi)


def api_routes() -> dict[str, type[ApiView]]:
    """Every route of the API (the views that check access), by path pattern."""
    return {
        path: view
        for module in MODULES
        for path, view in module.ROUTES.items()
        if isinstance(view, type) and issubclass(view, ApiView)
    }


def register(app: OrderflowApp) -> None:
    # Before any route: a worker without a way to verify tokens must not serve the API.
    app.guard = Guard.from_settings(app.settings)
    base.install(app)
    for module in MODULES:
        for path, view in module.ROUTES.items():
            app.page(path)(view)
