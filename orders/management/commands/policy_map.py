"""`manage.py policy_map`: write docs/policy-map.md from the code (`orders.policy_map`);
`--check` writes nothing and fails when the file differs from a fresh generation."""

from django.core.management.base import BaseCommand, CommandError

from orders.policy_map import ROOT, render_policy_map

DEFAULT_PATH = ROOT / "docs" / "policy-map.md"


class Command(BaseCommand):
    help = "Generate docs/policy-map.md: every clause, the functions implementing it, its tests."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(DEFAULT_PATH), help="Where to write it.")
        parser.add_argument(
            "--check", action="store_true", help="Fail if the file is not up to date."
        )

    def handle(self, *args, output, check, **options):
        fresh = render_policy_map()
        path = type(DEFAULT_PATH)(output)
        if check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != fresh:
                raise CommandError(f"{path} is out of date: run `make docs`.")
            self.stdout.write(f"{path} is up to date.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fresh, encoding="utf-8")
        self.stdout.write(f"Wrote {path}.")
