from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.core.signals import request_finished
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform"

    def ready(self):
        from core.metrics import lojix_collector_register
        from core.request_id import request_id_clear
        from core.roles import sync_role_permissions

        lojix_collector_register()
        request_finished.connect(request_id_clear, dispatch_uid="core.request_id.clear")

        # Permissions exist only after migrate has run, so roles are synced then, after every
        # app's migrations (each app's permissions are created by its own post_migrate).
        post_migrate.connect(sync_role_permissions, dispatch_uid="core.roles.sync_role_permissions")


class LojixAdminConfig(admin_apps.AdminConfig):
    """Django's admin on lojix's site (core.admin_site): the second-approval queue. Named in
    INSTALLED_APPS; not the default config of `core` (that is CoreConfig)."""

    default = False
    default_site = "core.admin_site.LojixAdminSite"
