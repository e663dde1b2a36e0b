"""The signed-in person's pages: home (forms to fill; tasks and drafts come with the flow issues)."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ..definitions.versions import latest_forms
from ..grids import department_names, level_names, role_names
from ..models import GridNode, Membership
from ..web import login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
@login_required
def home():
    """Show the forms the person may fill and where they serve."""
    memberships = list(Membership.select(Membership, GridNode).join(GridNode)
                       .where(Membership.person == g.person.id).order_by(GridNode.path))
    return render_template("pages/home.html", forms=latest_forms(), memberships=memberships,
                           roles=role_names(), levels=level_names(), departments=department_names())
