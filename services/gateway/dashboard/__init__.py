"""The gateway's dashboard: attainment, credit profiles and the public lists as HTML pages."""

from services.gateway.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
