"""Administration pages: the grid tree, people, Excel import and export, the form builder and flow editor."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ...models import GridNode
from ...web import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@admin_required
def index():
    """Show what this administrator manages."""
    from ...definitions.overlays import conflicts

    tops = list(GridNode.select().where(GridNode.path.in_(g.scope.admin_paths)).order_by(GridNode.path))
    return render_template("admin/index.html", tops=tops, conflicts=conflicts(g.scope.admin_paths))


from . import builder, flowedit, grids, people, sheets  # noqa: E402,F401 - the routes register on bp
