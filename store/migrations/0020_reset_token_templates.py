"""0020_reset_token_templates: the reset email carries the token itself, and the
"Portal Invitation" email (issue 12).

Over SSH a client pastes the token into the portal's reset page (there is no browser
to follow the link), so "Password Reset Validation" shows ``{{ reset_token }}`` as well
as ``{{ reset_url }}``: replaced only where the body is still the 0002 default (staff
edits are kept). "Portal Invitation" is new: a set-password link for a client with no
password yet. Both are sensitive: their bodies are masked once delivered. Frozen text.
"""

from __future__ import annotations

from typing import Any

SIGN_OFF = """
{{ company.signature or ("The " + company.name + " team") }}
{{ company.system_url }}
"""
OLD_VALIDATION = (
    "Dear {{ client.first_name }},\n\nSomeone asked to reset the password of your client"
    " account. To choose a new password, open this link within 2 hours:\n\n"
    "  {{ reset_url }}\n\nIf you did not ask for this, ignore this email: your password"
    " stays as it is.\n" + SIGN_OFF
)
VALIDATION = (
    "Dear {{ client.first_name }},\n\nSomeone asked to reset the password of your client"
    " account. To choose a new password within 2 hours, open this link:\n\n"
    "  {{ reset_url }}\n\nor paste this code on the Reset Password page of the client"
    " portal:\n\n  {{ reset_token }}\n\nIf you did not ask for this, ignore this email:"
    " your password stays as it is.\n" + SIGN_OFF
)
INVITATION = "Portal Invitation"
INVITATION_SUBJECT = "Your {{ company.name }} client area is ready"
INVITATION_BODY = (
    "Dear {{ client.first_name }},\n\nYou can now use our client area to see your"
    " invoices and keep your details up to date. To choose your password within 7 days,"
    " open this link:\n\n  {{ invite_url }}\n\nor paste this code on the Reset Password"
    " page of the client portal:\n\n  {{ invite_token }}\n\nYou log in with this email"
    " address: {{ client.email }}\n" + SIGN_OFF
)


def up(migrator: Any, db: Any) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    mark = db.param
    db.execute_sql(
        f'UPDATE "email_template" SET "body_text" = {mark}, "updated_at" = {mark} '
        f'WHERE "name" = {mark} AND "body_text" = {mark}',
        (VALIDATION, now, "Password Reset Validation", OLD_VALIDATION),
    )
    marks = ", ".join([mark] * 7)
    db.execute_sql(
        'INSERT INTO "email_template" ("name", "subject", "body_text", "body_html",'
        f' "sensitive", "disabled", "updated_at") VALUES ({marks})',
        (INVITATION, INVITATION_SUBJECT, INVITATION_BODY, "", True, False, now),
    )
