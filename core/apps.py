from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform"

    def ready(self):
        from core.roles import sync_role_permissions

        # Permissions exist only after migrate has run, so roles are synced then. Not with
        # sender=self: post_migrate is only sent for apps with a models module, and core has none.
        post_migrate.connect(sync_role_permissions, dispatch_uid="core.roles.sync_role_permissions")
