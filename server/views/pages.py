"""The signed-in person's home: forms to fill, drafts to resume, recent submissions, roles."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from ..definitions.versions import latest_forms
from ..grids import department_names, level_names, role_names
from ..models import Draft, GridNode, Membership, Submission
from ..web import login_required

bp = Blueprint("pages", __name__)


@bp.get("/")
@login_required
def home():
    """Show the forms the person may fill, their drafts and recent submissions, and where they serve."""
    memberships = list(Membership.select(Membership, GridNode).join(GridNode)
                       .where(Membership.person == g.person.id).order_by(GridNode.path))
    drafts = list(Draft.select(Draft.id, Draft.form, Draft.updated_at).where(Draft.person == g.person.id)
                  .order_by(Draft.updated_at.desc()).limit(5))
    recent = list(Submission.select(Submission.id, Submission.form, Submission.status, Submission.created_at)
                  .where(Submission.created_by == g.person.id)
                  .order_by(Submission.created_at.desc(), Submission.id.desc()).limit(5))
    forms = latest_forms() if g.scope.grants else []
    return render_template("pages/home.html", forms=forms, memberships=memberships, drafts=drafts,
                           recent=recent, titles={v.form.key: v.form.title for v in latest_forms()},
                           roles=role_names(), levels=level_names(), departments=department_names())
