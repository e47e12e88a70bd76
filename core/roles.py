"""The staff roles of D-4 and what each may see and do in admin."""

from django.contrib.auth.models import Group, Permission

SUPPORT_AGENT = "support_agent"
SUPERVISOR = "supervisor"

_AGENT_MODELS = {
    "orders": ["restaurant", "menuitem", "order", "orderitem", "orderevent", "payment"],
    "refunds": ["refund"],
    "credits": ["creditgrant", "credittransaction", "discountcode"],
}
_SUPERVISOR_EXTRA = {"orders": ["policyversion"]}


def _permissions(models_by_app, actions):
    return Permission.objects.filter(
        content_type__app_label__in=list(models_by_app),
        codename__in=[
            f"{action}_{model}"
            for models in models_by_app.values()
            for model in models
            for action in actions
        ],
    )


def sync_role_permissions(**kwargs) -> None:
    """Create the groups and give them their admin permissions (idempotent, after migrate).

    Agents view everything they review and change orders, discount codes and credit; every
    money movement still goes through services. Supervisors also manage policy versions.
    """
    agent, _ = Group.objects.get_or_create(name=SUPPORT_AGENT)
    supervisor, _ = Group.objects.get_or_create(name=SUPERVISOR)
    view = list(_permissions(_AGENT_MODELS, ["view"]))
    change = list(
        _permissions({"orders": ["order"], "credits": ["discountcode"]}, ["add", "change"])
    )
    agent.permissions.set(view + change)
    supervisor.permissions.set(
        view + change + list(_permissions(_SUPERVISOR_EXTRA, ["view", "add", "change"]))
    )
