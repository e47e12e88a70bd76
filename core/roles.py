"""The staff roles of D-4 and what each may see and do in admin."""

from typing import TypeAlias

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q

# The type of every `actor` a service takes: the project's user model (settings.AUTH_USER_MODEL
# is Django's default `auth.User`, an AbstractUser).
User: TypeAlias = AbstractUser
SUPPORT_AGENT = "support_agent"
SUPERVISOR = "supervisor"

# What agents look at while they help a buyer or a restaurant: everything, read-only...
_AGENT_VIEW = {
    "orders": [
        "policyversion",
        "restaurant",
        "menuitem",
        "order",
        "orderitem",
        "orderevent",
        "payment",
        "gatewayoperation",
    ],
    "refunds": [
        "refund",
        "restaurantledgerentry",
        "refundrequest",
        "refundrequestitem",
        "refundevidence",
        "heldphoto",
        "refundmessage",
        "refundrequestevent",
        "deductiondispute",
    ],
    "credits": ["creditgrant", "credittransaction", "discountcode"],
    "disputes": [
        "intervention",
        "escalation",
        "chargeback",
        "suspension",
        "gatewayevent",
        "incident",
    ],
    # What each user was told, the outbox backlog (task names and ids only) and each periodic
    # task's last run; not
    # idempotency records, whose stored API responses are only for superusers debugging a client.
    "core": ["notification", "outboxmessage", "taskrun"],
}
# ...except the order (whose admin form edits only the delivery address; its lifecycle and
# cancellation buttons call services), discount codes, which agents issue as a resolution
# (L-7.2), and interventions and refund requests: "change" is what lets an agent decide an
# open case (K-OV) or a refund request (L-4.1) through the decision buttons; the admin edits no
# field of either. Money records (payments, refunds, credit, the restaurant ledger)
# are never edited in admin, whatever the permission says.
_AGENT_EDIT = {
    "orders": {"order": ["change"]},
    "credits": {"discountcode": ["add", "change"]},
    "disputes": {
        "intervention": ["change"],
        "chargeback": ["add", "change"],
        "incident": ["change"],
    },
    "refunds": {"refundrequest": ["change"]},
}
# Agents enter chargebacks and send their evidence ("change" opens the chargeback's buttons; the
# admin edits no field of it), see the incidents and work allergen investigations (L-10,
# "change": assign, findings, close, through the admin's buttons). Supervisors also publish
# policy versions (D-4), enter outages and force majeure ("add"), run an outage's bulk refund
# (checked by the service), suspend and reinstate buyers (L-8.2) and decide a restaurant's
# dispute of a deduction (L-9, K-DR); the second approval of a large refund and a chargeback's
# outcome are theirs too, checked by the services (D-6, L-8.2).
_SUPERVISOR_EDIT = {
    "orders": {"policyversion": ["add", "change"]},
    "disputes": {"incident": ["add"], "suspension": ["add", "change"]},
    "refunds": {"deductiondispute": ["change"]},
}


def _permissions(
    actions_by_model_by_app: dict[str, dict[str, list[str]]], using: str
) -> list[Permission]:
    query = Q(pk__in=[])
    for app_label, actions_by_model in actions_by_model_by_app.items():
        codenames = [
            f"{action}_{model}" for model, actions in actions_by_model.items() for action in actions
        ]
        query |= Q(content_type__app_label=app_label, codename__in=codenames)
    return list(Permission.objects.using(using).filter(query))


def _view(models_by_app: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    return {app: {model: ["view"] for model in models} for app, models in models_by_app.items()}


def sync_role_permissions(sender=None, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Create the groups and give them their admin permissions (idempotent, after migrate).

    Connected to post_migrate for every app; does its work once per app the roles cover. The
    permissions of those apps are created here first, so the groups are complete whatever
    order the apps' signals come in (create_permissions is idempotent too).
    """
    if sender is not None and sender.label not in _AGENT_VIEW:
        return
    for app_label in _AGENT_VIEW:
        create_permissions(
            global_apps.get_app_config(app_label), verbosity=0, using=using, apps=global_apps
        )
    agent, _ = Group.objects.using(using).get_or_create(name=SUPPORT_AGENT)
    supervisor, _ = Group.objects.using(using).get_or_create(name=SUPERVISOR)
    agent_permissions = _permissions(_view(_AGENT_VIEW), using) + _permissions(_AGENT_EDIT, using)
    agent.permissions.set(agent_permissions)
    supervisor.permissions.set(agent_permissions + _permissions(_SUPERVISOR_EDIT, using))


def is_supervisor(user) -> bool:
    """Supervisors (and superusers) give second approvals and see incidents (D-4, D-6)."""
    return user.is_authenticated and (
        user.is_superuser or user.groups.filter(name=SUPERVISOR).exists()
    )
