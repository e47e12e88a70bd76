from django.core.management.base import BaseCommand, CommandError

from core.ledgers import ledger_violations


class Command(BaseCommand):
    help = "Check the money invariants of D-7; exits non-zero with a report when one breaks."

    def handle(self, *args, **options):
        problems = ledger_violations()
        if problems:
            report = "\n".join(f"  - {problem}" for problem in problems)
            raise CommandError(f"{len(problems)} ledger problem(s):\n{report}")
        self.stdout.write(self.style.SUCCESS("Ledgers balance: every invariant of D-7 holds."))
